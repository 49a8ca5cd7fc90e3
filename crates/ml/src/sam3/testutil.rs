//! Fixture helpers for the parity tests (tiny random-weight model recorded from transformers).

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};

use super::weights::WeightStore;

/// Directory of the shared `sam3-tiny` fixtures.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/sam3-tiny"
    ))
}

/// One recorded case (`text`, `text-box`, `box`, `meta-text`).
pub struct Case {
    pub inputs: WeightStore,
    pub inter: WeightStore,
    pub outputs: WeightStore,
}

pub fn case(name: &str) -> Case {
    let dir = fixture_dir().join(name);
    let open = |f: &str| WeightStore::open_files(&[dir.join(f)]).unwrap();
    Case {
        inputs: open("inputs.safetensors"),
        inter: open("intermediates.safetensors"),
        outputs: open("outputs.safetensors"),
    }
}

pub fn dev() -> Device {
    Device::flex()
}

/// A recorded float tensor.
pub fn t<const D: usize>(store: &WeightStore, name: &str) -> Tensor<D> {
    let (v, shape) = store.f32_vec(name).unwrap();
    let shape: [usize; D] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(v, shape), &dev())
}

/// A recorded integer tensor as i64 values.
pub fn ints(store: &WeightStore, name: &str) -> Vec<i64> {
    store.i64_vec(name).unwrap().0
}

/// Max abs difference; panics unless `max|a-b| <= 1e-4 + 1e-4 * max|ref|`.
pub fn assert_close<const D: usize>(what: &str, actual: Tensor<D>, expected: Tensor<D>) -> f32 {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shape");
    let a = actual.into_data().try_to_vec::<f32>().unwrap();
    let e = expected.into_data().try_to_vec::<f32>().unwrap();
    assert_close_vec(what, &a, &e)
}

pub fn assert_close_vec(what: &str, a: &[f32], e: &[f32]) -> f32 {
    assert_eq!(a.len(), e.len(), "{what}: length");
    let max_ref = e.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_err = a.iter().zip(e).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(max_err.is_finite(), "{what}: non-finite values");
    let tol = 1e-4 + 1e-4 * max_ref;
    eprintln!("parity {what}: max_err={max_err:.3e} max_ref={max_ref:.3e} tol={tol:.3e}");
    assert!(max_err <= tol, "{what}: max_err {max_err} > tol {tol}");
    max_err
}

/// Loads the tiny model's weights.
pub fn tiny_store() -> WeightStore {
    WeightStore::open_dir(&fixture_dir()).unwrap()
}

pub fn tiny_config() -> super::config::Sam3Config {
    super::config::Sam3Config::from_file(&fixture_dir().join("config.json")).unwrap()
}

/// Box prompts of a case (padding boxes dropped; none when the case has no boxes).
pub fn case_boxes(case: &Case) -> Vec<super::geometry::BoxPrompt> {
    if !case.inputs.contains("input_boxes") {
        return Vec::new();
    }
    let (coords, _) = case.inputs.f32_vec("input_boxes").unwrap();
    let labels = ints(&case.inputs, "input_boxes_labels");
    coords
        .chunks(4)
        .zip(labels)
        .filter(|(_, l)| *l != -10)
        .map(|(b, l)| super::geometry::BoxPrompt {
            cx: b[0],
            cy: b[1],
            w: b[2],
            h: b[3],
            positive: l == 1,
        })
        .collect()
}

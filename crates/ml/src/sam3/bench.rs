//! Full-size CPU benchmark: one forward of the default configuration (random weights unless a
//! checkpoint directory is given), then a second prompt on the same image.

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor};

use super::config::Sam3Config;
use super::error::Result;
use super::layers::to_vec;
use super::model::{Sam3Model, TextOnlyMode};
use super::weights::WeightStore;

/// Timings and memory of [`bench`].
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Seconds to build the model (random weights or checkpoint load).
    pub load_seconds: f64,
    /// Seconds of the first full forward (image encoding + one text prompt).
    pub first_forward_seconds: f64,
    /// Of which the image encoder (ViT + neck).
    pub image_encoder_seconds: f64,
    /// Seconds of a second prompt on the same image (backbone reused).
    pub second_prompt_seconds: f64,
    /// Peak resident set size (VmHWM) in MiB, if readable.
    pub peak_rss_mib: Option<f64>,
    /// Floating-point operations of the ViT backbone's products ([`super::config::VitConfig::product_flops`]).
    pub backbone_flops: f64,
    /// The ViT MLP's product shape `(tokens, hidden, intermediate)`.
    pub mlp_product_shape: (usize, usize, usize),
    /// Rate (GFLOPS) of one product of that shape on the same threads: what the backbone's bulk
    /// could run at, at best, on this machine.
    pub mlp_product_gflops: f64,
}

/// GFLOPS of `[m, k] · [k, n]` (best of three after a warm-up).
fn product_gflops(m: usize, k: usize, n: usize, device: &Device) -> Result<f64> {
    let uniform = burn::tensor::Distribution::Uniform(-1.0, 1.0);
    let a: Tensor<2> = Tensor::random([m, k], uniform, device);
    let b: Tensor<2> = Tensor::random([k, n], uniform, device);
    let mut best = f64::INFINITY;
    for round in 0..4 {
        let t = Instant::now();
        to_vec(a.clone().matmul(b.clone()).slice([0..1, 0..1]))?;
        if round > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    Ok(2.0 * (m * k * n) as f64 / best / 1e9)
}

/// Peak resident set size of this process in MiB (`VmHWM` from `/proc/self/status`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark with `config` (use [`Sam3Config::default`] for the released size).
pub fn bench(config: &Sam3Config, weights: Option<&Path>, device: &Device) -> Result<BenchReport> {
    // On SAM3's own compute threads, as the engine runs it.
    let pool = crate::device::compute_pool_if_possible("sam3");
    crate::device::on_pool_or_here(pool.as_ref(), || bench_here(config, weights, device))
}

fn bench_here(config: &Sam3Config, weights: Option<&Path>, device: &Device) -> Result<BenchReport> {
    let t0 = Instant::now();
    let model = match weights {
        Some(dir) => Sam3Model::load_dir(dir, device)?,
        None => Sam3Model::from_store(config.clone(), &WeightStore::random(0), device)?,
    };
    let load_seconds = t0.elapsed().as_secs_f64();
    let s = model.config().image_size();
    let pixels: Tensor<4> = Tensor::random(
        [1, 3, s, s],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        device,
    );
    let ctx = model.config().text_config.max_position_embeddings;
    let mut ids = vec![model.config().text_config.pad_token_id; ctx];
    let mut valid = vec![false; ctx];
    // "<start> cat <end>" and "<start> dog <end>" in the CLIP vocabulary.
    for (i, id) in [49406, 2368, 49407].into_iter().enumerate() {
        ids[i] = id;
        valid[i] = true;
    }
    let t1 = Instant::now();
    let image = model.encode_image(pixels)?;
    // Force execution before reading the clock.
    to_vec(
        image.levels[image.levels.len() - 1]
            .clone()
            .slice_dim(2, 0..1),
    )?;
    let image_encoder_seconds = t1.elapsed().as_secs_f64();
    let text = model.encode_text(&ids, &valid)?;
    let out = model.predict(&image, &text, &[], TextOnlyMode::Meta)?;
    to_vec(out.pred_masks.clone())?;
    let first_forward_seconds = t1.elapsed().as_secs_f64();
    ids[1] = 1929;
    let t2 = Instant::now();
    let text = model.encode_text(&ids, &valid)?;
    let out = model.predict(&image, &text, &[], TextOnlyMode::Meta)?;
    to_vec(out.pred_masks)?;
    let second_prompt_seconds = t2.elapsed().as_secs_f64();
    // Read before the product below allocates its own operands.
    let peak_rss_mib = peak_rss_mib();
    let vit = &model.config().vision_config.backbone_config;
    let grid = model.config().grid_size();
    let (m, k, n) = (grid * grid, vit.hidden_size, vit.intermediate_size);
    Ok(BenchReport {
        backbone_flops: vit.product_flops(),
        mlp_product_shape: (m, k, n),
        mlp_product_gflops: product_gflops(m, k, n, device)?,
        load_seconds,
        first_forward_seconds,
        image_encoder_seconds,
        second_prompt_seconds,
        peak_rss_mib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sam3::testutil::*;

    #[test]
    fn bench_runs_on_the_tiny_config() {
        let report = bench(&tiny_config(), None, &dev()).unwrap();
        assert!(report.first_forward_seconds > 0.0);
        assert!(report.peak_rss_mib.is_some());
    }

    /// Full-size run: `cargo test -p ml --release --lib sam3::bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_full_size() {
        let report = bench(&Sam3Config::default(), None, &dev()).unwrap();
        eprintln!("{report:#?}");
        assert!(report.image_encoder_seconds > 0.0);
        assert!(report.second_prompt_seconds < report.first_forward_seconds);
    }
}

//! Weight files in PyTorch's naming: export to and import from `safetensors`.
//!
//! burn paths map to torchvision state-dict keys by renaming BatchNorm `gamma`/`beta` to
//! `weight`/`bias` and the shortcut's `downsample.conv`/`downsample.bn` to `downsample.0`/`.1`;
//! linear weights are stored `[in, out]` in burn and `[out, in]` in PyTorch, so they are transposed.
//! Enum wrappers (like [`super::Classifier`]) add no segment.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::MlError;

/// One exported tensor in PyTorch layout.
#[derive(Debug, Clone)]
pub struct NamedTensor {
    /// State-dict key, e.g. `layer1.0.bn1.weight`.
    pub name: String,
    /// Data in PyTorch layout (f32).
    pub data: TensorData,
    /// `true` for BatchNorm running statistics (buffers, not trainable parameters).
    pub is_buffer: bool,
}

/// What [`load_safetensors`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors copied into the model.
    pub loaded: usize,
    /// Head tensors whose shape differed (class count) and that were kept freshly initialised.
    pub replaced_head: Vec<String>,
    /// Keys in the file that no model tensor uses (ignored).
    pub unused: Vec<String>,
}

/// Path tracker shared by the visitors and mappers of this crate.
#[derive(Default)]
pub(crate) struct PathStack {
    segments: Vec<Option<String>>,
}

impl PathStack {
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        let skip = container_type.starts_with("Enum:");
        self.segments.push((!skip).then(|| name.to_string()));
    }

    pub(crate) fn exit(&mut self) {
        self.segments.pop();
    }

    pub(crate) fn burn_path(&self) -> String {
        self.segments
            .iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// The PyTorch state-dict key of a burn parameter path.
pub fn torch_name(burn_path: &str) -> String {
    let parts: Vec<&str> = burn_path.split('.').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let previous = i.checked_sub(1).map(|j| parts[j]);
        let renamed = match (*part, previous) {
            ("conv", Some("downsample")) => "0",
            ("bn", Some("downsample")) => "1",
            ("gamma", _) => "weight",
            ("beta", _) => "bias",
            (other, _) => other,
        };
        out.push(renamed);
    }
    out.join(".")
}

fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

/// How a model's burn parameter paths map to the keys of a PyTorch state dict, and which keys
/// form the class-count-dependent head that a load may leave freshly initialised.
#[derive(Debug, Clone, Copy)]
pub struct StateDictLayout {
    /// burn path → state-dict key.
    pub key: fn(&str) -> String,
    /// Whether a state-dict key belongs to the replaceable head.
    pub is_head: fn(&str) -> bool,
}

fn is_fc(name: &str) -> bool {
    name.starts_with("fc.")
}

/// torchvision/timm classifiers: [`torch_name`] keys, head `fc.*`.
pub const TORCHVISION: StateDictLayout = StateDictLayout {
    key: torch_name,
    is_head: is_fc,
};

struct Collector {
    path: PathStack,
    layout: StateDictLayout,
    out: Vec<NamedTensor>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = (self.layout.key)(&self.path.burn_path());
        let tensor = param.transform_for_save().val();
        let data = if D == 2 {
            tensor.transpose().into_data()
        } else {
            tensor.into_data()
        };
        let is_buffer = is_buffer(&name);
        self.out.push(NamedTensor {
            name,
            data: data.convert::<f32>(),
            is_buffer,
        });
    }
}

/// Every parameter and buffer of `module`, under its PyTorch key and in PyTorch layout.
pub fn named_tensors<M: Module>(module: &M) -> Vec<NamedTensor> {
    named_tensors_with(module, TORCHVISION)
}

/// [`named_tensors`] with the keys of `layout`.
pub fn named_tensors_with<M: Module>(module: &M, layout: StateDictLayout) -> Vec<NamedTensor> {
    let mut collector = Collector {
        path: PathStack::default(),
        layout,
        out: Vec::new(),
    };
    module.visit(&mut collector);
    collector.out
}

/// Writes the module's weights as a PyTorch-compatible `safetensors` file (with
/// `num_batches_tracked` buffers so `load_state_dict(strict=True)` accepts it).
pub fn save_safetensors<M: Module>(
    module: &M,
    path: &Path,
    metadata: HashMap<String, String>,
) -> Result<(), MlError> {
    save_safetensors_with(module, path, metadata, TORCHVISION)
}

/// [`save_safetensors`] with the keys of `layout`.
pub fn save_safetensors_with<M: Module>(
    module: &M,
    path: &Path,
    metadata: HashMap<String, String>,
    layout: StateDictLayout,
) -> Result<(), MlError> {
    let tensors = named_tensors_with(module, layout);
    let zero = 0i64.to_le_bytes();
    let mut views: Vec<(String, TensorView<'_>)> = Vec::with_capacity(tensors.len() * 2);
    for tensor in &tensors {
        let shape = tensor.data.shape().as_slice().to_vec();
        let view = TensorView::new(Dtype::F32, shape, tensor.data.as_bytes())
            .map_err(|e| MlError::Weights(format!("{}: {e}", tensor.name)))?;
        views.push((tensor.name.clone(), view));
        if let Some(prefix) = tensor.name.strip_suffix(".running_mean") {
            let view = TensorView::new(Dtype::I64, Vec::new(), &zero)
                .map_err(|e| MlError::Weights(e.to_string()))?;
            views.push((format!("{prefix}.num_batches_tracked"), view));
        }
    }
    let metadata = (!metadata.is_empty()).then_some(metadata);
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|e| MlError::Weights(format!("writing {}: {e}", path.display())))
}

/// A tensor read from a file: shape and f32 values in PyTorch layout.
struct FileTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) & 1) as u32;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let value = match (exponent, mantissa) {
        (0, 0) => 0.0,
        (0, m) => (m as f32) * 2f32.powi(-24),
        (0x1f, 0) => f32::INFINITY,
        (0x1f, _) => f32::NAN,
        (e, m) => (1.0 + m as f32 / 1024.0) * 2f32.powi(e as i32 - 15),
    };
    if sign == 1 { -value } else { value }
}

fn decode(view: &TensorView<'_>, name: &str) -> Result<Vec<f32>, MlError> {
    let bytes = view.data();
    let values = match view.dtype() {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
            .collect(),
        other => {
            return Err(MlError::Weights(format!(
                "{name}: unsupported dtype {other:?} for a floating-point parameter"
            )));
        }
    };
    Ok(values)
}

struct Loader {
    path: PathStack,
    layout: StateDictLayout,
    tensors: HashMap<String, FileTensor>,
    used: HashSet<String>,
    loaded: usize,
    replaced_head: Vec<String>,
    errors: Vec<String>,
}

impl ModuleMapper for Loader {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = (self.layout.key)(&self.path.burn_path());
        let Some(file) = self.tensors.get(&name) else {
            self.errors.push(format!("{name}: missing from the file"));
            return param;
        };
        self.used.insert(name.clone());
        let target: Vec<usize> = param.lazy_shape().as_slice().to_vec();
        let torch_shape: Vec<usize> = if D == 2 {
            target.iter().rev().copied().collect()
        } else {
            target.clone()
        };
        if file.shape != torch_shape {
            if (self.layout.is_head)(&name) {
                self.replaced_head.push(name);
            } else {
                self.errors.push(format!(
                    "{name}: shape {:?} in the file, {:?} in the model",
                    file.shape, torch_shape
                ));
            }
            return param;
        }
        let device = param.lazy_device();
        let data = TensorData::new(file.values.clone(), torch_shape);
        let mut tensor = Tensor::<D>::from_data(data, &device);
        if D == 2 {
            tensor = tensor.transpose();
        }
        self.loaded += 1;
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

/// Loads a torchvision/timm `safetensors` state dict into `module`.
///
/// Keys may carry a `module.` prefix (DataParallel checkpoints). A classifier head (`fc.*`) whose
/// shape differs — another class count — keeps its fresh initialisation and is listed in the
/// report; any other missing or mis-shaped tensor is an error.
pub fn load_safetensors<M: Module>(module: M, path: &Path) -> Result<(M, LoadReport), MlError> {
    load_safetensors_with(module, path, TORCHVISION)
}

/// [`load_safetensors`] with the keys and head of `layout`.
pub fn load_safetensors_with<M: Module>(
    module: M,
    path: &Path,
    layout: StateDictLayout,
) -> Result<(M, LoadReport), MlError> {
    let bytes = std::fs::read(path).map_err(|e| MlError::io(path, e))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| MlError::Weights(format!("{}: {e}", path.display())))?;
    let mut tensors = HashMap::new();
    for (name, view) in file.tensors() {
        let key = name.strip_prefix("module.").unwrap_or(&name).to_string();
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let values = decode(&view, &key)?;
        tensors.insert(
            key,
            FileTensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    let mut loader = Loader {
        path: PathStack::default(),
        layout,
        tensors,
        used: HashSet::new(),
        loaded: 0,
        replaced_head: Vec::new(),
        errors: Vec::new(),
    };
    let module = module.map(&mut loader);
    if !loader.errors.is_empty() {
        return Err(MlError::Weights(format!(
            "{} does not fit the model: {}",
            path.display(),
            loader.errors.join("; ")
        )));
    }
    let mut unused: Vec<String> = loader
        .tensors
        .keys()
        .filter(|k| !loader.used.contains(*k))
        .cloned()
        .collect();
    unused.sort();
    Ok((
        module,
        LoadReport {
            loaded: loader.loaded,
            replaced_head: loader.replaced_head,
            unused,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Architecture, Classifier};
    use burn::tensor::{Device, Distribution, Tolerance};

    #[test]
    fn torchvision_names() {
        assert_eq!(
            torch_name("layer2.0.downsample.conv.weight"),
            "layer2.0.downsample.0.weight"
        );
        assert_eq!(
            torch_name("layer2.0.downsample.bn.gamma"),
            "layer2.0.downsample.1.weight"
        );
        assert_eq!(torch_name("bn1.beta"), "bn1.bias");
        assert_eq!(torch_name("bn1.running_var"), "bn1.running_var");
        let model = Classifier::new(Architecture::Resnet18, 10, &Device::flex()).unwrap();
        let names: Vec<String> = named_tensors(&model).into_iter().map(|t| t.name).collect();
        for expected in [
            "conv1.weight",
            "bn1.running_mean",
            "layer4.1.conv2.weight",
            "layer3.0.downsample.1.bias",
            "fc.weight",
            "fc.bias",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let fc = named_tensors(&model)
            .into_iter()
            .find(|t| t.name == "fc.weight");
        assert_eq!(
            fc.map(|t| t.data.shape().as_slice().to_vec()),
            Some(vec![10, 512])
        );
    }

    #[test]
    fn safetensors_round_trip_and_head_replacement() -> Result<(), MlError> {
        let device = Device::flex();
        let dir = tempfile::tempdir().map_err(|e| MlError::io("tempdir", e))?;
        let path = dir.path().join("w.safetensors");
        let source = Classifier::new(Architecture::SmallCnn, 5, &device)?;
        save_safetensors(&source, &path, HashMap::new())?;

        let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &device);
        let (same, report) =
            load_safetensors(Classifier::new(Architecture::SmallCnn, 5, &device)?, &path)?;
        assert!(report.replaced_head.is_empty());
        assert!(report.unused.is_empty());
        source
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&same.forward(x).into_data(), Tolerance::absolute(1e-6));

        let (_, report) =
            load_safetensors(Classifier::new(Architecture::SmallCnn, 3, &device)?, &path)?;
        assert_eq!(
            report.replaced_head,
            vec!["fc.weight".to_string(), "fc.bias".to_string()]
        );

        let wrong = load_safetensors(Classifier::new(Architecture::Resnet18, 5, &device)?, &path);
        assert!(matches!(wrong, Err(MlError::Weights(_))));
        Ok(())
    }

    #[test]
    fn half_precision_decoding() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert!((f16_to_f32(0x3555) - 0.333_25).abs() < 1e-4);
    }
}

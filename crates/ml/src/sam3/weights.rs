//! Checkpoint reading: transformers `safetensors` layout (single file or sharded with an index),
//! with or without the `detector_model.` prefix of the video checkpoint, f32/f16/bf16 → f32.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::error::{Result, Sam3Error};

/// Prefix of the image model inside the hub's `Sam3VideoModel` checkpoint.
pub const DETECTOR_PREFIX: &str = "detector_model.";

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDtype {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// Unsigned byte (also used for bool).
    U8,
}

impl StoredDtype {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::Bf16,
            "I64" => Self::I64,
            "I32" => Self::I32,
            "U8" | "BOOL" => Self::U8,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::I64 => 8,
            Self::U8 => 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: StoredDtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// Where the bytes of one safetensors file live.
#[derive(Debug)]
enum Source {
    /// Whole file in memory.
    Memory(Vec<u8>),
    /// Read tensor by tensor (keeps the load-time peak memory at the model size).
    Disk(std::fs::File),
}

/// Size figures of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightSummary {
    /// Elements of all floating-point tensors.
    pub parameters: u64,
    /// Stored bytes of all tensors.
    pub bytes: u64,
    /// The dtype holding most parameters.
    pub dtype: &'static str,
}

/// One or more safetensors files, indexed by tensor name (prefix-insensitive).
#[derive(Debug)]
pub struct WeightStore {
    files: Vec<(PathBuf, Source)>,
    entries: HashMap<String, Entry>,
    /// When set, every requested float tensor is generated (benchmarks without a checkpoint).
    random_seed: Option<u64>,
}

impl WeightStore {
    /// Opens a checkpoint directory: `model.safetensors`, or `model.safetensors.index.json`
    /// plus its shards.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            let text = read_string(&index)?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Sam3Error::Json {
                    path: index.clone(),
                    message: e.to_string(),
                })?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Sam3Error::Json {
                    path: index.clone(),
                    message: "no `weight_map` object".into(),
                })?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            let paths: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
            return Self::open_files(&paths);
        }
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Self::open_files(&[single]);
        }
        Err(Sam3Error::NoWeights(dir.to_path_buf()))
    }

    /// Opens the given safetensors files as one checkpoint.
    pub fn open_files(paths: &[PathBuf]) -> Result<Self> {
        let mut store = Self {
            files: Vec::new(),
            entries: HashMap::new(),
            random_seed: None,
        };
        for path in paths {
            let io = |source| Sam3Error::Io {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::File::open(path).map_err(io)?;
            let total = usize::try_from(file.metadata().map_err(io)?.len()).unwrap_or(usize::MAX);
            let mut len = [0u8; 8];
            file.read_exact(&mut len).map_err(io)?;
            let header_len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
            if header_len > total.saturating_sub(8) {
                return Err(Sam3Error::Safetensors {
                    path: path.clone(),
                    message: "header length exceeds the file".into(),
                });
            }
            let mut header = vec![0u8; header_len];
            file.read_exact(&mut header).map_err(io)?;
            store.add_header(
                path.clone(),
                &header,
                8 + header_len,
                total,
                Source::Disk(file),
            )?;
        }
        Ok(store)
    }

    /// Parses a safetensors buffer (`path` is only used in messages).
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>) -> Result<Self> {
        let mut store = Self {
            files: Vec::new(),
            entries: HashMap::new(),
            random_seed: None,
        };
        store.add_file(path, bytes)?;
        Ok(store)
    }

    /// A store that invents every float tensor it is asked for (uniform in ±1/√fan_in,
    /// LayerNorm/GroupNorm weights near 1), for benchmarks without the gated checkpoint.
    pub fn random(seed: u64) -> Self {
        Self {
            files: Vec::new(),
            entries: HashMap::new(),
            random_seed: Some(seed),
        }
    }

    fn add_file(&mut self, path: PathBuf, bytes: Vec<u8>) -> Result<()> {
        let bad = |message: String| Sam3Error::Safetensors {
            path: path.clone(),
            message,
        };
        if bytes.len() < 8 {
            return Err(bad("file shorter than its header length".into()));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[..8]);
        let header_len = usize::try_from(u64::from_le_bytes(len))
            .map_err(|_| bad("header length overflows".into()))?;
        let data_start = 8usize
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("header length exceeds the file".into()))?;
        let header = bytes[8..data_start].to_vec();
        let total = bytes.len();
        self.add_header(path, &header, data_start, total, Source::Memory(bytes))
    }

    fn add_header(
        &mut self,
        path: PathBuf,
        header: &[u8],
        data_start: usize,
        total: usize,
        source: Source,
    ) -> Result<()> {
        let bad = |message: String| Sam3Error::Safetensors {
            path: path.clone(),
            message,
        };
        let header: serde_json::Value =
            serde_json::from_slice(header).map_err(|e| bad(format!("header is not JSON: {e}")))?;
        let header = header
            .as_object()
            .ok_or_else(|| bad("header is not an object".into()))?;
        let file = self.files.len();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            let dtype_str = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
            let dtype =
                StoredDtype::parse(dtype_str).ok_or_else(|| Sam3Error::UnsupportedDtype {
                    name: name.clone(),
                    dtype: dtype_str.to_string(),
                })?;
            let shape: Vec<usize> = info
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad(format!("`{name}` has no shape")))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("`{name}` has a bad shape")))?;
            let offsets: Vec<usize> = info
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad(format!("`{name}` has no data_offsets")))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("`{name}` has bad data_offsets")))?;
            if offsets.len() != 2 {
                return Err(bad(format!("`{name}` has bad data_offsets")));
            }
            let start = data_start + offsets[0];
            let end = data_start + offsets[1];
            let numel: usize = shape.iter().product();
            if end > total || start > end || end - start != numel * dtype.size() {
                return Err(bad(format!("`{name}` data range does not match its shape")));
            }
            self.entries.insert(
                name.clone(),
                Entry {
                    file,
                    dtype,
                    shape,
                    start,
                    end,
                },
            );
        }
        self.files.push((path, source));
        Ok(())
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries
            .get(name)
            .or_else(|| self.entries.get(&format!("{DETECTOR_PREFIX}{name}")))
    }

    fn raw(&self, e: &Entry) -> Result<std::borrow::Cow<'_, [u8]>> {
        let (path, source) = &self.files[e.file];
        match source {
            Source::Memory(bytes) => Ok(std::borrow::Cow::Borrowed(&bytes[e.start..e.end])),
            Source::Disk(file) => {
                let io = |source| Sam3Error::Io {
                    path: path.clone(),
                    source,
                };
                let mut f = file;
                f.seek(SeekFrom::Start(e.start as u64)).map_err(io)?;
                let mut buf = vec![0u8; e.end - e.start];
                f.read_exact(&mut buf).map_err(io)?;
                Ok(std::borrow::Cow::Owned(buf))
            }
        }
    }

    /// Names of the stored tensors (as written in the files).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.keys().cloned().collect();
        names.sort();
        names
    }

    /// Whether the checkpoint holds `name` (with or without the detector prefix).
    pub fn contains(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Parameters (elements of floating-point tensors), stored bytes of all tensors, and the
    /// dtype holding most parameters (`float32`, `float16` or `bfloat16`).
    pub fn summary(&self) -> WeightSummary {
        let mut by_dtype = [0u64; 3];
        let mut bytes = 0u64;
        for e in self.entries.values() {
            bytes += (e.end - e.start) as u64;
            let elements: u64 = e.shape.iter().map(|&d| d as u64).product();
            match e.dtype {
                StoredDtype::F32 => by_dtype[0] += elements,
                StoredDtype::F16 => by_dtype[1] += elements,
                StoredDtype::Bf16 => by_dtype[2] += elements,
                _ => {}
            }
        }
        let names = ["float32", "float16", "bfloat16"];
        let dominant = (0..3).max_by_key(|&i| by_dtype[i]).unwrap_or(0);
        WeightSummary {
            parameters: by_dtype.iter().sum(),
            bytes,
            dtype: names[dominant],
        }
    }

    /// Number of tensors in the checkpoint.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the checkpoint is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Shape of a stored tensor.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.entry(name)
            .map(|e| e.shape.clone())
            .ok_or_else(|| Sam3Error::MissingTensor(name.to_string()))
    }

    /// A float tensor converted to f32, with its shape.
    pub fn f32_vec(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let e = self
            .entry(name)
            .ok_or_else(|| Sam3Error::MissingTensor(name.to_string()))?;
        let raw = self.raw(e)?;
        let raw = &raw[..];
        let values = match e.dtype {
            StoredDtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            StoredDtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            StoredDtype::Bf16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Sam3Error::UnsupportedDtype {
                    name: name.to_string(),
                    dtype: format!("{other:?} (a float tensor is needed)"),
                });
            }
        };
        Ok((values, e.shape.clone()))
    }

    /// An integer tensor converted to i64, with its shape.
    pub fn i64_vec(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>)> {
        let e = self
            .entry(name)
            .ok_or_else(|| Sam3Error::MissingTensor(name.to_string()))?;
        let raw = self.raw(e)?;
        let raw = &raw[..];
        let values = match e.dtype {
            StoredDtype::I64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            StoredDtype::I32 => raw
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            StoredDtype::U8 => raw.iter().map(|&b| i64::from(b)).collect(),
            other => {
                return Err(Sam3Error::UnsupportedDtype {
                    name: name.to_string(),
                    dtype: format!("{other:?} (an integer tensor is needed)"),
                });
            }
        };
        Ok((values, e.shape.clone()))
    }

    /// A float tensor that must have the `expected` shape, as f32 values.
    pub fn f32_checked(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        if let Some(seed) = self.random_seed {
            return Ok(random_values(seed, name, expected));
        }
        let (values, shape) = self.f32_vec(name)?;
        check_shape(name, &shape, expected)?;
        Ok(values)
    }

    /// A float tensor of the expected shape, as a burn tensor on `device`.
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>> {
        let values = self.f32_checked(name, &expected)?;
        Ok(Tensor::from_data(TensorData::new(values, expected), device))
    }

    /// A `nn.Linear` weight `[out, in]`, transposed to burn's `[in, out]` layout.
    pub fn linear_weight(
        &self,
        name: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<Tensor<2>> {
        let values = self.f32_checked(name, &[d_out, d_in])?;
        let mut t = vec![0f32; values.len()];
        for o in 0..d_out {
            for i in 0..d_in {
                t[i * d_out + o] = values[o * d_in + i];
            }
        }
        Ok(Tensor::from_data(TensorData::new(t, [d_in, d_out]), device))
    }
}

/// Deterministic pseudo-random values for `name` (xorshift seeded by the name).
fn random_values(seed: u64, name: &str, shape: &[usize]) -> Vec<f32> {
    let mut state = name.bytes().fold(seed ^ 0x9E37_79B9_7F4A_7C15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    }) | 1;
    let numel: usize = shape.iter().product();
    let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
    let is_norm_weight = shape.len() == 1 && name.ends_with(".weight");
    let amp = if shape.len() == 1 {
        0.1
    } else {
        1.0 / (fan_in as f32).sqrt()
    };
    let base = if is_norm_weight { 1.0 } else { 0.0 };
    (0..numel)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            base + amp * (2.0 * u - 1.0)
        })
        .collect()
}

/// Shape check with an error naming the tensor.
pub fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual != expected {
        return Err(Sam3Error::ShapeMismatch {
            name: name.to_string(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        });
    }
    Ok(())
}

fn read_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Sam3Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sam3::testutil::fixture_dir;

    /// Writes a safetensors buffer with the given tensors (f32 values, stored as `dtype`).
    pub(crate) fn write_safetensors(
        tensors: &[(&str, Vec<usize>, Vec<f32>)],
        dtype: &str,
    ) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, values) in tensors {
            let start = data.len();
            for v in values {
                match dtype {
                    "F16" => data.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes()),
                    "BF16" => data.extend_from_slice(&half::bf16::from_f32(*v).to_le_bytes()),
                    _ => data.extend_from_slice(&v.to_le_bytes()),
                }
            }
            header.insert(
                (*name).to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn reads_fixture_and_checks_shapes() {
        let store = WeightStore::open_dir(&fixture_dir()).unwrap();
        assert_eq!(store.len(), 368);
        let dev = Device::flex();
        let t = store
            .tensor("geometry_encoder.cls_embed.weight", [1, 32], &dev)
            .unwrap();
        assert_eq!(t.dims(), [1, 32]);
        let err = store
            .tensor("geometry_encoder.cls_embed.weight", [2, 32], &dev)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("geometry_encoder.cls_embed.weight"),
            "{err}"
        );
        let err = store.tensor("nope.weight", [1], &dev).unwrap_err();
        assert!(matches!(err, Sam3Error::MissingTensor(ref n) if n == "nope.weight"));
    }

    #[test]
    fn half_precision_prefix_and_shards() {
        let dir = tempfile::tempdir().unwrap();
        let values = vec![1.5f32, -2.25, 0.125, 3.0];
        let a = write_safetensors(
            &[("detector_model.a.weight", vec![2, 2], values.clone())],
            "BF16",
        );
        let b = write_safetensors(&[("detector_model.b.bias", vec![4], values.clone())], "F16");
        std::fs::write(dir.path().join("model-00001-of-00002.safetensors"), a).unwrap();
        std::fs::write(dir.path().join("model-00002-of-00002.safetensors"), b).unwrap();
        let index = serde_json::json!({"metadata": {}, "weight_map": {
            "detector_model.a.weight": "model-00001-of-00002.safetensors",
            "detector_model.b.bias": "model-00002-of-00002.safetensors"}});
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        let store = WeightStore::open_dir(dir.path()).unwrap();
        assert_eq!(store.f32_vec("a.weight").unwrap().0, values);
        assert_eq!(store.f32_vec("b.bias").unwrap().0, values);
        // Linear weights are transposed to [in, out].
        let w = store
            .linear_weight("a.weight", 2, 2, &Device::flex())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(w, vec![1.5, 0.125, -2.25, 3.0]);
        let err = store
            .linear_weight("a.weight", 4, 1, &Device::flex())
            .unwrap_err();
        assert!(matches!(err, Sam3Error::ShapeMismatch { .. }));
    }

    #[test]
    fn in_memory_store_and_corrupt_files() {
        let values = vec![0.5f32, -1.0];
        let bytes = write_safetensors(&[("x", vec![2], values.clone())], "F32");
        let store = WeightStore::from_bytes("mem".into(), bytes.clone()).unwrap();
        assert_eq!(store.f32_vec("x").unwrap().0, values);
        // Truncated data and a header length beyond the end are both rejected.
        let short = bytes[..bytes.len() - 1].to_vec();
        assert!(matches!(
            WeightStore::from_bytes("short".into(), short.clone()),
            Err(Sam3Error::Safetensors { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, &short).unwrap();
        assert!(matches!(
            WeightStore::open_dir(dir.path()),
            Err(Sam3Error::Safetensors { .. })
        ));
        std::fs::write(&path, u64::MAX.to_le_bytes()).unwrap();
        assert!(matches!(
            WeightStore::open_dir(dir.path()),
            Err(Sam3Error::Safetensors { .. })
        ));
    }

    #[test]
    fn missing_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            WeightStore::open_dir(dir.path()),
            Err(Sam3Error::NoWeights(_))
        ));
    }
}

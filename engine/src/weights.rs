//! Safetensors checkpoints, single-file or sharded (`model.safetensors.index.json`), memory-mapped.
//!
//! Every tensor is fetched with the shape the architecture expects, so a checkpoint that does not match its
//! `config.json` fails at load with the tensor, the file and both shapes named — never later as a matmul panic.
//! Headers are validated when a file is opened (a truncated or corrupt file is an error naming the file).
//! FP8 (`F8_E4M3`) tensors with a `{name}_scale_inv` sibling are dequantized block-wise on load (see
//! [`crate::source::fp8`]), so Qwen's official FP8 checkpoints load like any other.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;
use safetensors::tensor::{Dtype as StDtype, TensorInfo};
use safetensors::SafeTensors;

pub use crate::source::WeightsError;
use crate::source::{fp8, MatrixWeight, WeightSource};

pub use crate::source::{INDEX_FILE, SINGLE_FILE};

/// One tensor's stored bytes and description.
struct RawTensor<'a> {
    path: &'a Path,
    dtype: StDtype,
    shape: &'a [usize],
    bytes: &'a [u8],
}

struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
    /// Byte offset of the data section (8-byte length + JSON header).
    data_start: usize,
}

/// An opened checkpoint: memory maps plus an index from tensor name to file and location.
pub struct SafetensorsWeights {
    files: Vec<MappedFile>,
    tensors: HashMap<String, (usize, TensorInfo)>,
    /// Block shape of FP8 weights' inverse scales (`quantization_config.weight_block_size`).
    fp8_block: (usize, usize),
}

pub use crate::source::fp8::DEFAULT_FP8_BLOCK;

impl std::fmt::Debug for SafetensorsWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsWeights")
            .field(
                "files",
                &self.files.iter().map(|m| &m.path).collect::<Vec<_>>(),
            )
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafetensorsWeights {
    /// Opens the checkpoint in a model directory: the shard index if present, else `model.safetensors`,
    /// else every `*.safetensors` file.
    pub fn open_dir(dir: &Path) -> Result<Self, WeightsError> {
        let index = dir.join(INDEX_FILE);
        if index.is_file() {
            return Self::open_index(&index);
        }
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            return Self::open_files(&[single]);
        }
        let entries = std::fs::read_dir(dir).map_err(|source| WeightsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(WeightsError::NoWeights {
                dir: dir.to_path_buf(),
            });
        }
        Self::open_files(&files)
    }

    /// Opens a sharded checkpoint from its `model.safetensors.index.json`, checking that every tensor the
    /// index lists is in the shard it names.
    pub fn open_index(index: &Path) -> Result<Self, WeightsError> {
        let bad = |reason: String| WeightsError::Index {
            path: index.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(index).map_err(|source| WeightsError::Io {
            path: index.to_path_buf(),
            source,
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no `weight_map` object".to_string()))?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut shard_names: Vec<&str> = Vec::new();
        for (name, file) in map {
            let file = file
                .as_str()
                .ok_or_else(|| bad(format!("`weight_map.{name}` is not a file name")))?;
            if !shard_names.contains(&file) {
                shard_names.push(file);
            }
        }
        shard_names.sort_unstable();
        let paths: Vec<PathBuf> = shard_names.iter().map(|f| dir.join(f)).collect();
        let weights = Self::open_files(&paths)?;
        for (name, file) in map {
            let file = dir.join(file.as_str().unwrap_or_default());
            let found = weights
                .tensors
                .get(name)
                .map(|(i, _)| &weights.files[*i].path);
            if found != Some(&file) {
                return Err(WeightsError::Missing {
                    name: name.clone(),
                    expected: Vec::new(),
                    files: format!("{} (as listed in {})", file.display(), index.display()),
                });
            }
        }
        Ok(weights)
    }

    /// Opens and validates the given safetensors files (a tensor in two files is an error).
    pub fn open_files(paths: &[PathBuf]) -> Result<Self, WeightsError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for path in paths {
            let io = |source| WeightsError::Io {
                path: path.clone(),
                source,
            };
            let file = File::open(path).map_err(io)?;
            // SAFETY: the map is read-only; as with every mmap-based loader, the checkpoint must not be
            // modified while the engine runs (tensors are copied out at load, so only loading is exposed).
            let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
            let (header_len, metadata) =
                SafeTensors::read_metadata(&mmap).map_err(|e| WeightsError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let index = files.len();
            for (name, info) in metadata.tensors() {
                if let Some((other, _)) = tensors.insert(name.clone(), (index, info.clone())) {
                    let other: &MappedFile = &files[other];
                    return Err(WeightsError::Corrupt {
                        path: path.clone(),
                        reason: format!("tensor `{name}` is also in {}", other.path.display()),
                    });
                }
            }
            files.push(MappedFile {
                path: path.clone(),
                mmap,
                data_start: 8 + header_len,
            });
        }
        Ok(SafetensorsWeights {
            files,
            tensors,
            fp8_block: DEFAULT_FP8_BLOCK,
        })
    }

    /// Sets the block shape of FP8 weights' inverse scales (from `quantization_config.weight_block_size`).
    pub fn set_fp8_block_size(&mut self, block: (usize, usize)) {
        self.fp8_block = block;
    }

    /// Whether any tensor is stored as FP8 (`F8_E4M3`).
    pub fn has_fp8(&self) -> bool {
        self.tensors
            .values()
            .any(|(_, info)| info.dtype == StDtype::F8_E4M3)
    }

    /// Whether the checkpoint holds a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Names of all tensors (unordered).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Loads tensor `name`, checking it has exactly `shape`, converted to `dtype` on `device`. FP8 tensors are
    /// dequantized with their `{name}_scale_inv` block scales.
    pub fn load(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, WeightsError> {
        let raw = self.raw(name, Some(shape))?;
        let err = |source| WeightsError::Tensor {
            name: name.to_string(),
            file: raw.path.to_path_buf(),
            source: Box::new(source),
        };
        let stored = match raw.dtype {
            StDtype::F32 => DType::F32,
            StDtype::F16 => DType::F16,
            StDtype::BF16 => DType::BF16,
            StDtype::F64 => DType::F64,
            StDtype::F8_E4M3 => {
                let values = self.dequantize_fp8(name, &raw)?;
                let tensor = Tensor::from_vec(values, shape, &Device::Cpu).map_err(err)?;
                return tensor
                    .to_dtype(dtype)
                    .and_then(|t| t.to_device(device))
                    .map_err(err);
            }
            other => {
                return Err(WeightsError::DType {
                    name: name.to_string(),
                    file: raw.path.to_path_buf(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        let tensor =
            Tensor::from_raw_buffer(raw.bytes, stored, shape, &Device::Cpu).map_err(err)?;
        let tensor = if stored == dtype {
            tensor
        } else {
            tensor.to_dtype(dtype).map_err(err)?
        };
        tensor.to_device(device).map_err(err)
    }

    /// The stored bytes of `name`, checked against `shape` when given.
    fn raw(&self, name: &str, shape: Option<&[usize]>) -> Result<RawTensor<'_>, WeightsError> {
        let Some((index, info)) = self.tensors.get(name) else {
            return Err(WeightsError::Missing {
                name: name.to_string(),
                expected: shape.map(<[usize]>::to_vec).unwrap_or_default(),
                files: self.file_list(),
            });
        };
        let file = &self.files[*index];
        if let Some(shape) = shape {
            if info.shape != shape {
                return Err(WeightsError::Shape {
                    name: name.to_string(),
                    file: file.path.clone(),
                    expected: shape.to_vec(),
                    found: info.shape.clone(),
                });
            }
        }
        let (start, end) = info.data_offsets;
        // read_metadata validated the offsets against the file length; `get` keeps this panic-free anyway.
        let bytes = file
            .mmap
            .get(file.data_start + start..file.data_start + end)
            .ok_or_else(|| WeightsError::Corrupt {
                path: file.path.clone(),
                reason: format!("data of tensor `{name}` lies outside the file"),
            })?;
        Ok(RawTensor {
            path: &file.path,
            dtype: info.dtype,
            shape: &info.shape,
            bytes,
        })
    }

    /// Dequantizes the 2-D FP8 tensor `name` with its `{name}_scale_inv` block scales.
    fn dequantize_fp8(&self, name: &str, raw: &RawTensor<'_>) -> Result<Vec<f32>, WeightsError> {
        let invalid = |reason: String| WeightsError::Invalid {
            name: name.to_string(),
            file: raw.path.to_path_buf(),
            reason,
        };
        let &[out, inp] = raw.shape else {
            return Err(invalid(format!(
                "FP8 tensors must be 2-D matrices, found shape {:?}",
                raw.shape
            )));
        };
        let scale_name = format!("{name}_scale_inv");
        let (bm, bn) = self.fp8_block;
        let scale_shape = [out.div_ceil(bm.max(1)), inp.div_ceil(bn.max(1))];
        let scales = self
            .load(&scale_name, &scale_shape, DType::F32, &Device::Cpu)
            .and_then(|t| {
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|source| WeightsError::Tensor {
                        name: scale_name.clone(),
                        file: raw.path.to_path_buf(),
                        source: Box::new(source),
                    })
            })?;
        fp8::dequantize(raw.bytes, out, inp, &scales, self.fp8_block).map_err(invalid)
    }

    fn file_list(&self) -> String {
        let names: Vec<String> = self
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        names.join(", ")
    }
}

impl WeightSource for SafetensorsWeights {
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, WeightsError> {
        self.load(name, shape, dtype, device)
    }

    fn matrix(
        &self,
        name: &str,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<MatrixWeight, WeightsError> {
        self.load(name, &[out, inp], dtype, device)
            .map(MatrixWeight::Dense)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, tensors: &[(&str, Vec<f32>, Vec<usize>)]) {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, data, shape)| {
                let bytes: &[u8] = bytemuck_cast(data);
                let view = safetensors::tensor::TensorView::new(StDtype::F32, shape.clone(), bytes)
                    .unwrap();
                (n.to_string(), view)
            })
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }

    fn bytemuck_cast(data: &[f32]) -> &[u8] {
        // SAFETY: f32 has no padding and u8 has alignment 1.
        unsafe { std::slice::from_raw_parts(data.as_ptr().cast(), std::mem::size_of_val(data)) }
    }

    #[test]
    fn loads_converts_and_checks_shapes() {
        let dir = std::env::temp_dir().join(format!("qwen-engine-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SINGLE_FILE);
        write(&path, &[("a", vec![1.0, 2.0, 3.0, 4.5], vec![2, 2])]);
        let w = SafetensorsWeights::open_dir(&dir).unwrap();
        let t = w.load("a", &[2, 2], DType::F16, &Device::Cpu).unwrap();
        assert_eq!(t.dtype(), DType::F16);
        let back: Vec<f32> = t
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(back, [1.0, 2.0, 3.0, 4.5]);
        let e = w
            .load("a", &[4], DType::F32, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`a`")
                && e.contains("[2, 2]")
                && e.contains("[4]")
                && e.contains(SINGLE_FILE),
            "{e}"
        );
        let e = w
            .load("b", &[4], DType::F32, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`b`") && e.contains(SINGLE_FILE), "{e}");
        // Truncation is detected when the file is opened.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let e = SafetensorsWeights::open_dir(&dir).unwrap_err().to_string();
        assert!(e.contains(SINGLE_FILE) && e.contains("truncated"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! GGUF model files (llama.cpp / Ollama): memory-mapped, metadata → [`ModelConfig`] ([`config`]) and
//! [`Tokenizer`](crate::Tokenizer) ([`tokenizer`]), tensors served through [`WeightSource`] under Hugging Face
//! names ([`names`]).
//!
//! Matrices in the kernels' block types (Q4_K, Q6_K, Q8_0) stay in the memory map and run through
//! [`crate::kernels`] in place (no copy: a model costs its file size). Matrices in other block types (Q4_0,
//! Q5_K, …) are dequantized and re-quantized to Q8_0 at load (logged); F32 / F16 / BF16 matrices load dense.
//! Norms, biases and the MoE router are dequantized to f32. Stacked MoE expert tensors (`ffn_*_exps`,
//! `[experts, rows, cols]`) are handed to the MoE block whole ([`WeightSource::experts`]); single experts can
//! still be read by name (a byte-range view). Every tensor's byte range is checked against the file when it
//! is opened: a truncated download is an error naming the first tensor that lies past the end.

pub mod config;
pub mod names;
pub mod tokenizer;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;

use crate::config::ConfigError;
use crate::kernels::quant::{self, QuantType};
use crate::source::{ExpertWeights, MatrixWeight, QuantWeight, SharedBytes, WeightSource};
use crate::weights::WeightsError;
use names::gguf_name;

/// The first four bytes of every GGUF file.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Why a GGUF file could not be opened or understood.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("cannot read GGUF file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic.
    #[error("{path} is not a GGUF file (it does not start with the `GGUF` magic)")]
    NotGguf {
        /// The file.
        path: PathBuf,
    },
    /// The header or tensor table is corrupt, or the file is shorter than its tensors need.
    #[error("corrupt or truncated GGUF file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A metadata key is missing, has the wrong type, or holds a value the engine does not implement.
    #[error("GGUF metadata key `{key}` in {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The metadata describes a model the engine does not support.
    #[error("unsupported model in GGUF file {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The normalised-config error (field names are Hugging Face's).
        source: ConfigError,
    },
}

/// An opened GGUF file: its memory map, metadata and tensor table.
pub struct GgufFile {
    path: PathBuf,
    mmap: Arc<Mmap>,
    content: Content,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("tensors", &self.content.tensor_infos.len())
            .field("metadata", &self.content.metadata.len())
            .finish()
    }
}

/// Whether `path` starts with the GGUF magic (Ollama blobs have no extension).
pub fn is_gguf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == MAGIC)
}

/// One tensor of a GGUF file as stored ([`GgufFile::tensors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// The GGUF (llama.cpp) name, e.g. `blk.0.ffn_up_exps.weight`.
    pub name: String,
    /// The block type as llama.cpp names it (`"Q4_K"`, `"F32"`, …).
    pub ggml_type: &'static str,
    /// The shape in PyTorch order (`[rows, cols]`; `[experts, rows, cols]` for stacked experts).
    pub shape: Vec<usize>,
    /// Bytes in the file.
    pub bytes: u64,
}

/// A tensor's (or one expert's) stored block type, shape and bytes.
struct Slice<'a> {
    /// For errors: the GGUF name, with the expert when sliced.
    label: String,
    dtype: GgmlDType,
    shape: Vec<usize>,
    bytes: &'a [u8],
    /// Where `bytes` start in the file.
    start: usize,
}

impl GgufFile {
    /// Maps and parses `path`, checking that every tensor lies inside the file.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: read-only map; as with every mmap loader, the file must not change while it is open. Quantized
        // matrices are used in place: the map lives as long as the last model layer holding one.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        if mmap.get(..4) != Some(MAGIC.as_slice()) {
            return Err(GgufError::NotGguf {
                path: path.to_path_buf(),
            });
        }
        let corrupt = |reason: String| GgufError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        // candle's reader bounds every count by the file, but divides by `general.alignment` unchecked: a
        // hostile header must be an error, not a panic.
        let read = std::panic::catch_unwind(|| Content::read(&mut std::io::Cursor::new(&mmap[..])));
        let content = match read {
            Ok(content) => content
                .map_err(|e| corrupt(format!("cannot parse the header: {}", first_line(&e))))?,
            Err(_) => {
                return Err(corrupt(
                    "cannot parse the header: invalid values (general.alignment 0?)".to_string(),
                ))
            }
        };
        let data_start = content.tensor_data_offset;
        let mut infos: Vec<_> = content.tensor_infos.iter().collect();
        infos.sort_by_key(|(_, info)| info.offset);
        for (name, info) in infos {
            let dims = info.shape.dims();
            let block = info.ggml_dtype.block_size();
            let cols = dims.last().copied().unwrap_or(1);
            if !cols.is_multiple_of(block) {
                return Err(corrupt(format!(
                    "tensor `{name}` has rows of {cols} elements, not a multiple of {}'s block of {block}",
                    ggml_name(info.ggml_dtype)
                )));
            }
            // Every size below comes from the file: checked, so no later `elem_count` can overflow.
            let size = dims
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .and_then(|elems| (elems / block).checked_mul(info.ggml_dtype.type_size()))
                .ok_or_else(|| {
                    corrupt(format!(
                        "tensor `{name}` has the shape {dims:?}, whose size overflows"
                    ))
                })?;
            let end = data_start
                .checked_add(info.offset)
                .and_then(|s| s.checked_add(u64::try_from(size).ok()?));
            if end.is_none_or(|end| end > mmap.len() as u64) {
                return Err(corrupt(format!(
                    "tensor `{name}` ({size} bytes at offset {}) extends past the end of the file ({} bytes): \
                     the file is truncated",
                    data_start.saturating_add(info.offset),
                    mmap.len()
                )));
            }
        }
        Ok(GgufFile {
            path: path.to_path_buf(),
            mmap: Arc::new(mmap),
            content,
        })
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A metadata value.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// Whether the file holds tensor `name` (GGUF name).
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The shape of tensor `name` (GGUF name), in PyTorch order (`[rows, cols]`).
    pub fn tensor_shape(&self, name: &str) -> Option<&[usize]> {
        self.content
            .tensor_infos
            .get(name)
            .map(|info| info.shape.dims())
    }

    /// Every tensor as stored, sorted by name: GGUF name, block type, shape and size in bytes. What a
    /// benchmark needs to count the bytes a forward pass reads.
    pub fn tensors(&self) -> Vec<TensorEntry> {
        let mut entries: Vec<TensorEntry> = self
            .content
            .tensor_infos
            .iter()
            .map(|(name, info)| TensorEntry {
                name: name.clone(),
                ggml_type: ggml_name(info.ggml_dtype),
                shape: info.shape.dims().to_vec(),
                // Checked against the file in `open`: a whole number of blocks that fits.
                bytes: (info.shape.elem_count() / info.ggml_dtype.block_size()
                    * info.ggml_dtype.type_size()) as u64,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// How many tensors of each block type the file holds (`"Q4_K"` → 120, as llama.cpp names them).
    pub fn tensor_type_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for info in self.content.tensor_infos.values() {
            *counts
                .entry(ggml_name(info.ggml_dtype).to_string())
                .or_default() += 1;
        }
        counts
    }

    pub(crate) fn metadata_error(&self, key: &str, reason: impl Into<String>) -> GgufError {
        GgufError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// An unsigned integer value (any integer type), `None` when absent.
    pub(crate) fn opt_uint(&self, key: &str) -> Result<Option<u64>, GgufError> {
        match self.metadata(key) {
            None => Ok(None),
            Some(v) => as_u64(v).map(Some).ok_or_else(|| {
                self.metadata_error(
                    key,
                    format!("expected a non-negative integer, found {}", describe(v)),
                )
            }),
        }
    }

    /// A required unsigned integer value.
    pub(crate) fn uint(&self, key: &str) -> Result<u64, GgufError> {
        self.opt_uint(key)?
            .ok_or_else(|| self.metadata_error(key, "missing"))
    }

    /// A float value (any numeric type), `None` when absent.
    pub(crate) fn opt_float(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.metadata(key) {
            None => Ok(None),
            Some(v) => as_f64(v).map(Some).ok_or_else(|| {
                self.metadata_error(key, format!("expected a number, found {}", describe(v)))
            }),
        }
    }

    /// A string value, `None` when absent.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        match self.metadata(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => {
                Err(self.metadata_error(key, format!("expected a string, found {}", describe(v))))
            }
        }
    }

    /// A boolean value, `None` when absent.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.metadata(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => {
                Err(self.metadata_error(key, format!("expected a boolean, found {}", describe(v))))
            }
        }
    }

    /// An array value, `None` when absent.
    pub(crate) fn opt_array(&self, key: &str) -> Result<Option<&[Value]>, GgufError> {
        match self.metadata(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => {
                Err(self.metadata_error(key, format!("expected an array, found {}", describe(v))))
            }
        }
    }

    /// The bytes of GGUF tensor `name`, or of one expert's `[rows, cols]` matrix of a stacked tensor.
    fn slice(
        &self,
        name: &str,
        expert: Option<usize>,
        hf: &str,
        expected: &[usize],
    ) -> Result<Slice<'_>, WeightsError> {
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Err(WeightsError::Missing {
                name: format!("{name}` (`{hf}"),
                expected: expected.to_vec(),
                files: self.path.display().to_string(),
            });
        };
        let dtype = info.ggml_dtype;
        let dims = info.shape.dims();
        let bytes_of = |elems: usize| elems / dtype.block_size() * dtype.type_size();
        // Checked against the file length in `open`.
        let start = (self.content.tensor_data_offset + info.offset) as usize;
        let all = &self.mmap[start..start + bytes_of(info.shape.elem_count())];
        match expert {
            None => Ok(Slice {
                label: name.to_string(),
                dtype,
                shape: dims.to_vec(),
                bytes: all,
                start,
            }),
            Some(e) => {
                let label = format!("{name}[expert {e}]");
                let &[experts, rows, cols] = dims else {
                    return Err(WeightsError::Shape {
                        name: label,
                        file: self.path.clone(),
                        expected: [&[e + 1], expected].concat(),
                        found: dims.to_vec(),
                    });
                };
                if e >= experts {
                    return Err(WeightsError::Shape {
                        name: label,
                        file: self.path.clone(),
                        expected: [&[e + 1], expected].concat(),
                        found: dims.to_vec(),
                    });
                }
                let size = bytes_of(rows * cols);
                Ok(Slice {
                    label,
                    dtype,
                    shape: vec![rows, cols],
                    bytes: &all[e * size..(e + 1) * size],
                    start: start + e * size,
                })
            }
        }
    }

    /// Looks up `hf`'s GGUF tensor and checks its shape.
    fn checked(&self, hf: &str, expected: &[usize]) -> Result<Slice<'_>, WeightsError> {
        let Some(g) = gguf_name(hf) else {
            return Err(WeightsError::Missing {
                name: hf.to_string(),
                expected: expected.to_vec(),
                files: format!("{} (no GGUF name for it)", self.path.display()),
            });
        };
        let slice = self.slice(&g.name, g.expert, hf, expected)?;
        if slice.shape != expected {
            return Err(WeightsError::Shape {
                name: slice.label,
                file: self.path.clone(),
                expected: expected.to_vec(),
                found: slice.shape,
            });
        }
        Ok(slice)
    }

    fn tensor_error(&self, label: &str) -> impl Fn(candle_core::Error) -> WeightsError + '_ {
        let label = label.to_string();
        move |source| WeightsError::Tensor {
            name: label.clone(),
            file: self.path.clone(),
            source: Box::new(source),
        }
    }
}

impl WeightSource for GgufFile {
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, WeightsError> {
        let s = self.checked(name, shape)?;
        let err = self.tensor_error(&s.label);
        let t = match float_dtype(s.dtype) {
            Some(stored) => Tensor::from_raw_buffer(s.bytes, stored, shape, &Device::Cpu),
            None => qtensor(s.bytes, s.dtype, shape, &Device::Cpu)
                .and_then(|q| q.dequantize(&Device::Cpu)),
        }
        .map_err(&err)?;
        t.to_dtype(dtype)
            .and_then(|t| t.to_device(device))
            .map_err(err)
    }

    fn matrix(
        &self,
        name: &str,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<MatrixWeight, WeightsError> {
        let s = self.checked(name, &[out, inp])?;
        let err = self.tensor_error(&s.label);
        match float_dtype(s.dtype) {
            Some(stored) => Tensor::from_raw_buffer(s.bytes, stored, &[out, inp], &Device::Cpu)
                .and_then(|t| t.to_dtype(dtype))
                .and_then(|t| t.to_device(device))
                .map(MatrixWeight::Dense)
                .map_err(err),
            None => self.quantized(&s, 1, out, inp).map(MatrixWeight::Quantized),
        }
    }

    fn experts(
        &self,
        prefix: &str,
        proj: &str,
        n: usize,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<ExpertWeights, WeightsError> {
        let hf = format!("{prefix}.experts.0.{proj}.weight");
        let stacked = gguf_name(&hf).filter(|g| g.expert.is_some());
        let Some(g) = stacked else {
            return crate::source::experts_one_by_one(
                self, prefix, proj, n, out, inp, dtype, device,
            );
        };
        let expected = [n, out, inp];
        let s = self.slice(&g.name, None, &hf, &expected)?;
        if s.shape != expected {
            return Err(WeightsError::Shape {
                name: s.label,
                file: self.path.clone(),
                expected: expected.to_vec(),
                found: s.shape,
            });
        }
        match float_dtype(s.dtype) {
            Some(_) => {
                crate::source::experts_one_by_one(self, prefix, proj, n, out, inp, dtype, device)
            }
            None => self.quantized(&s, n, out, inp).map(ExpertWeights::Stacked),
        }
    }
}

impl GgufFile {
    /// A block-quantized slice (`experts × [rows, cols]`) as a weight: in place when the kernels know its type,
    /// else dequantized and re-quantized to Q8_0 (logged).
    fn quantized(
        &self,
        s: &Slice<'_>,
        experts: usize,
        rows: usize,
        cols: usize,
    ) -> Result<QuantWeight, WeightsError> {
        let invalid = |reason: String| WeightsError::Invalid {
            name: s.label.clone(),
            file: self.path.clone(),
            reason,
        };
        if let Some(ty) = QuantType::from_ggml_type_id(ggml_type_id(s.dtype)) {
            let owner: SharedBytes = self.mmap.clone();
            return QuantWeight::new(ty, experts, rows, cols, owner, s.start, s.bytes.len())
                .map_err(|e| invalid(e.to_string()));
        }
        if !cols.is_multiple_of(quant::QK8_0) {
            return Err(invalid(format!(
                "{} matrices are not supported by the quantized kernels, and rows of {cols} values cannot be                  re-quantized to Q8_0",
                ggml_name(s.dtype)
            )));
        }
        tracing::warn!(
            tensor = %s.label,
            "{} is not a block type of the quantized kernels: re-quantized to Q8_0 at load",
            ggml_name(s.dtype)
        );
        let values = qtensor(s.bytes, s.dtype, &[experts * rows, cols], &Device::Cpu)
            .and_then(|q| q.dequantize(&Device::Cpu))
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .map_err(self.tensor_error(&s.label))?;
        let bytes =
            quant::quantize_to_vec(QuantType::Q8_0, &values).map_err(|e| invalid(e.to_string()))?;
        let len = bytes.len();
        QuantWeight::new(
            QuantType::Q8_0,
            experts,
            rows,
            cols,
            Arc::new(bytes),
            0,
            len,
        )
        .map_err(|e| invalid(e.to_string()))
    }
}

/// The candle dtype of an unquantized GGUF type.
fn float_dtype(t: GgmlDType) -> Option<DType> {
    match t {
        GgmlDType::F32 => Some(DType::F32),
        GgmlDType::F16 => Some(DType::F16),
        GgmlDType::BF16 => Some(DType::BF16),
        _ => None,
    }
}

/// The `ggml_type` id of a block type (GGUF's tensor header value).
fn ggml_type_id(t: GgmlDType) -> u32 {
    match t {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

/// llama.cpp's name of a block type (`Q4_K`, not candle's `Q4K`).
pub fn ggml_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// A `QTensor` over `bytes` (exactly `shape`'s blocks: checked by the caller). candle reinterprets the bytes as
/// block structs and asserts their alignment, so a misaligned slice (only in a malformed file: GGUF aligns
/// tensor data) is first copied to an aligned buffer.
fn qtensor(
    bytes: &[u8],
    dtype: GgmlDType,
    shape: &[usize],
    device: &Device,
) -> candle_core::Result<QTensor> {
    let storage = if (bytes.as_ptr() as usize).is_multiple_of(8) {
        QStorage::from_data(Cow::Borrowed(bytes), device, dtype)?
    } else {
        let mut aligned = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: `aligned` owns at least `bytes.len()` initialised bytes; u8 has no alignment requirement.
        let view = unsafe {
            std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), bytes.len())
        };
        view.copy_from_slice(bytes);
        QStorage::from_data(Cow::Borrowed(&*view), device, dtype)?
    };
    QTensor::new(storage, shape)
}

/// The message of a candle error without the backtrace it may carry.
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

fn as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match *v {
        Value::F32(x) => Some(x.into()),
        Value::F64(x) => Some(x),
        _ => as_u64(v).map(|x| x as f64),
    }
}

/// A short description of a value for errors.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("an array of {} values", a.len()),
        other => format!("{other:?}"),
    }
}

//! Qwen's official FP8 checkpoints: weights stored as `float8_e4m3fn` with one inverse scale per 128×128 block
//! (`{name}.weight_scale_inv`, `[ceil(out/128), ceil(in/128)]`, f32), as transformers' `FineGrainedFP8Config`
//! writes them (`quantization_config: {quant_method: "fp8", fmt: "e4m3", weight_block_size: [128, 128]}`).
//!
//! They are loaded by dequantizing each block: `w[i, j] = e4m3(q[i, j]) * scale_inv[i / bm, j / bn]`, exactly
//! the function transformers' reference dequantization computes. Edge blocks may be partial (ceil-div), as
//! in the real format. Router, norms and lm_head are stored unquantized (bf16) and never reach this module.

use std::path::Path;

use serde_json::Value;

use crate::config::ConfigError;

/// Default FP8 block shape (Qwen's and DeepSeek's checkpoints).
pub const DEFAULT_FP8_BLOCK: (usize, usize) = (128, 128);

/// Reads `quantization_config` from a `config.json`: `Some(block)` for an FP8 checkpoint (`quant_method: fp8`,
/// `fmt: e4m3`, dynamic activations), `None` when the checkpoint is not quantized; other methods are errors.
pub fn block_size_from_config_file(path: &Path) -> Result<Option<(usize, usize)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|source| ConfigError::Json {
        path: Some(path.to_path_buf()),
        source,
    })?;
    block_size_from_config(&json).map_err(|(field, value, reason)| ConfigError::Unsupported {
        path: Some(path.to_path_buf()),
        field: format!("quantization_config.{field}"),
        value,
        reason,
    })
}

/// [`block_size_from_config_file`] on parsed JSON; errors are `(field, value, reason)`.
pub fn block_size_from_config(
    config: &Value,
) -> Result<Option<(usize, usize)>, (String, String, String)> {
    let q = match config.get("quantization_config") {
        None | Some(Value::Null) => return Ok(None),
        Some(q) => q,
    };
    let bad = |field: &str, value: &Value, reason: &str| {
        (field.to_string(), value.to_string(), reason.to_string())
    };
    let method = q.get("quant_method").unwrap_or(&Value::Null);
    if method.as_str() != Some("fp8") {
        return Err(bad(
            "quant_method",
            method,
            "only FP8 checkpoints (\"fp8\") are supported among pre-quantized safetensors; use a GGUF file \
             for other quantizations",
        ));
    }
    if let Some(fmt) = q.get("fmt").filter(|v| !v.is_null()) {
        if fmt.as_str() != Some("e4m3") {
            return Err(bad("fmt", fmt, "only e4m3 FP8 weights are supported"));
        }
    }
    if let Some(scheme) = q.get("activation_scheme").filter(|v| !v.is_null()) {
        if scheme.as_str() != Some("dynamic") {
            return Err(bad(
                "activation_scheme",
                scheme,
                "only \"dynamic\" is supported (static activation scales are not applied)",
            ));
        }
    }
    let block = match q.get("weight_block_size") {
        None | Some(Value::Null) => DEFAULT_FP8_BLOCK,
        Some(v) => match v
            .as_array()
            .map(|a| a.iter().map(Value::as_u64).collect::<Vec<_>>())
        {
            Some(dims) if dims.len() == 2 && dims.iter().all(|d| d.is_some_and(|d| d > 0)) => (
                dims[0].unwrap_or(128) as usize,
                dims[1].unwrap_or(128) as usize,
            ),
            _ => {
                return Err(bad(
                    "weight_block_size",
                    v,
                    "expected two positive integers",
                ))
            }
        },
    };
    Ok(Some(block))
}

/// e4m3fn (no infinities; `S.1111.111` is NaN) to f32, for all 256 byte values.
pub fn e4m3_table() -> [f32; 256] {
    let mut table = [0f32; 256];
    for (byte, out) in table.iter_mut().enumerate() {
        let sign = if byte & 0x80 != 0 { -1.0 } else { 1.0 };
        let exp = ((byte >> 3) & 0x0f) as i32;
        let mant = (byte & 0x07) as f32;
        *out = if exp == 0x0f && byte & 0x07 == 0x07 {
            f32::NAN
        } else if exp == 0 {
            sign * mant * 2f32.powi(-9)
        } else {
            sign * (1.0 + mant / 8.0) * 2f32.powi(exp - 7)
        };
    }
    table
}

/// Dequantizes an FP8 matrix `[out, inp]` (row-major bytes) with its inverse block scales
/// `[ceil(out / block.0), ceil(inp / block.1)]` (row-major). Errors describe a size mismatch.
pub fn dequantize(
    weight: &[u8],
    out: usize,
    inp: usize,
    scale_inv: &[f32],
    block: (usize, usize),
) -> Result<Vec<f32>, String> {
    let (bm, bn) = block;
    if bm == 0 || bn == 0 {
        return Err(format!("block size {bm}x{bn} must be positive"));
    }
    if weight.len() != out * inp {
        return Err(format!(
            "{} bytes of FP8 data for a [{out}, {inp}] matrix",
            weight.len()
        ));
    }
    let (sr, sc) = (out.div_ceil(bm), inp.div_ceil(bn));
    if scale_inv.len() != sr * sc {
        return Err(format!(
            "{} inverse scales, expected [{sr}, {sc}] for a [{out}, {inp}] matrix in {bm}x{bn} blocks",
            scale_inv.len()
        ));
    }
    let table = e4m3_table();
    let mut values = Vec::with_capacity(out * inp);
    for (i, row) in weight.chunks_exact(inp.max(1)).enumerate().take(out) {
        let scales = &scale_inv[(i / bm) * sc..(i / bm + 1) * sc];
        values.extend(
            row.iter()
                .enumerate()
                .map(|(j, &q)| table[q as usize] * scales[j / bn]),
        );
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fp8_quantization_config() {
        let cfg = |q: Value| serde_json::json!({ "quantization_config": q });
        assert_eq!(block_size_from_config(&serde_json::json!({})), Ok(None));
        let qwen = serde_json::json!({"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
            "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"]});
        assert_eq!(block_size_from_config(&cfg(qwen)), Ok(Some((128, 128))));
        let gptq = serde_json::json!({"quant_method": "gptq", "bits": 4});
        assert_eq!(
            block_size_from_config(&cfg(gptq)).unwrap_err().0,
            "quant_method"
        );
        let e5 = serde_json::json!({"quant_method": "fp8", "fmt": "e5m2"});
        assert_eq!(block_size_from_config(&cfg(e5)).unwrap_err().0, "fmt");
    }

    #[test]
    fn e4m3_decodes_known_values() {
        let t = e4m3_table();
        assert_eq!(t[0x00], 0.0);
        assert_eq!(t[0x38], 1.0); // exponent 7 = bias
        assert_eq!(t[0xb8], -1.0);
        assert_eq!(t[0x7e], 448.0); // largest finite
        assert_eq!(t[0x01], 2f32.powi(-9)); // smallest subnormal
        assert_eq!(t[0x08], 2f32.powi(-6)); // smallest normal
        assert_eq!(t[0x3c], 1.5);
        assert!(t[0x7f].is_nan() && t[0xff].is_nan());
    }

    #[test]
    fn dequantizes_partial_edge_blocks() {
        // [3, 5] in 2x4 blocks: scale grid [2, 2].
        let one = 0x38u8;
        let w = vec![one; 15];
        let scales = [1.0, 2.0, 3.0, 4.0];
        let d = dequantize(&w, 3, 5, &scales, (2, 4)).unwrap();
        assert_eq!(&d[0..5], &[1.0, 1.0, 1.0, 1.0, 2.0]);
        assert_eq!(&d[5..10], &[1.0, 1.0, 1.0, 1.0, 2.0]);
        assert_eq!(&d[10..15], &[3.0, 3.0, 3.0, 3.0, 4.0]);
        assert!(dequantize(&w, 3, 5, &scales[..3], (2, 4)).is_err());
        assert!(dequantize(&w[..14], 3, 5, &scales, (2, 4)).is_err());
    }
}

//! RoPE parameters: `rope_theta` + `rope_scaling` (transformers 4.x) or `rope_parameters` (5.x), normalised to
//! default RoPE or YaRN with transformers 4.57's defaults.

use serde_json::Value;

use super::{default_rope_theta, ConfigError};

/// YaRN RoPE scaling parameters (transformers `rope_type: "yarn"`).
#[derive(Debug, Clone, PartialEq)]
pub struct YarnScaling {
    /// Context extension factor.
    pub factor: f64,
    /// Context length the model was pre-trained with (falls back to `max_position_embeddings`).
    pub original_max_position_embeddings: usize,
    /// Extrapolation boundary of the ramp (default 32).
    pub beta_fast: f64,
    /// Interpolation boundary of the ramp (default 1).
    pub beta_slow: f64,
    /// Explicit cos/sin scale; when absent it is inferred from `factor`, `mscale`, `mscale_all_dim`.
    pub attention_factor: Option<f64>,
    /// DeepSeek-style numerator scale for the inferred attention factor.
    pub mscale: Option<f64>,
    /// DeepSeek-style denominator scale for the inferred attention factor.
    pub mscale_all_dim: Option<f64>,
    /// Whether the correction range is rounded to whole dimensions (default true).
    pub truncate: bool,
}

/// Rotary position embedding parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// Base wavelength (`rope_theta`).
    pub theta: f64,
    /// YaRN scaling, when the config asks for it.
    pub yarn: Option<YarnScaling>,
}

/// Builds the RoPE config from either the 4.x keys (`rope_theta`, `rope_scaling`) or the 5.x `rope_parameters`.
pub(super) fn parse_rope(
    rope_theta: Option<f64>,
    rope_scaling: Option<&Value>,
    rope_parameters: Option<&Value>,
    max_position_embeddings: usize,
) -> Result<RopeConfig, ConfigError> {
    let (params, prefix) = match (rope_scaling, rope_parameters) {
        (Some(v), _) if !v.is_null() => (Some(v), "rope_scaling"),
        (_, Some(v)) if !v.is_null() => (Some(v), "rope_parameters"),
        _ => (None, "rope_scaling"),
    };
    let field = |key: &str| format!("{prefix}.{key}");
    let obj = match params {
        None => None,
        Some(Value::Object(obj)) => Some(obj),
        Some(other) => {
            return Err(ConfigError::unsupported(
                prefix,
                other,
                "expected an object or null",
            ))
        }
    };
    let theta = rope_theta
        .or_else(|| {
            obj.and_then(|o| o.get("rope_theta"))
                .and_then(Value::as_f64)
        })
        .unwrap_or_else(default_rope_theta);
    if theta.is_nan() || theta <= 1.0 {
        return Err(ConfigError::invalid("rope_theta", "must be greater than 1"));
    }
    let Some(obj) = obj else {
        return Ok(RopeConfig { theta, yarn: None });
    };
    let rope_type = obj.get("rope_type").or_else(|| obj.get("type"));
    let rope_type = match rope_type {
        None => "default",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(ConfigError::unsupported(
                &field("rope_type"),
                other,
                "expected a string",
            ))
        }
    };
    match rope_type {
        "default" => Ok(RopeConfig { theta, yarn: None }),
        "yarn" => {
            let num = |key: &str| -> Result<Option<f64>, ConfigError> {
                match obj.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                        ConfigError::unsupported(&field(key), v, "expected a number")
                    }),
                }
            };
            let factor = num("factor")?
                .ok_or_else(|| ConfigError::invalid(&field("factor"), "missing for yarn"))?;
            if factor.is_nan() || factor < 1.0 {
                return Err(ConfigError::invalid(
                    &field("factor"),
                    format!("{factor} must be >= 1"),
                ));
            }
            // transformers uses `x or default`: 0 / null fall back like a missing key.
            let or_default = |v: Option<f64>, d: f64| v.filter(|x| *x != 0.0).unwrap_or(d);
            let original = match num("original_max_position_embeddings")? {
                Some(v) if v > 0.0 && v.fract() == 0.0 => v as usize,
                Some(v) if v != 0.0 => {
                    return Err(ConfigError::invalid(
                        &field("original_max_position_embeddings"),
                        format!("{v} is not a positive integer"),
                    ))
                }
                _ => max_position_embeddings,
            };
            let truncate = match obj.get("truncate") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(ConfigError::unsupported(
                        &field("truncate"),
                        other,
                        "expected a boolean",
                    ))
                }
            };
            Ok(RopeConfig {
                theta,
                yarn: Some(YarnScaling {
                    factor,
                    original_max_position_embeddings: original,
                    beta_fast: or_default(num("beta_fast")?, 32.0),
                    beta_slow: or_default(num("beta_slow")?, 1.0),
                    attention_factor: num("attention_factor")?,
                    mscale: num("mscale")?,
                    mscale_all_dim: num("mscale_all_dim")?,
                    truncate,
                }),
            })
        }
        other => Err(ConfigError::unsupported(
            &field("rope_type"),
            format!("{other:?}"),
            "supported RoPE types are \"default\" and \"yarn\"",
        )),
    }
}

//! Reading `config.json`: typed key lookups whose errors name the file and the key, and the
//! text-decoder settings every family shares. Each family parses its own file in
//! `families/<family>/config.rs`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::nn::Activation;

/// How rotary frequencies map to position axes (t, h, w).
#[derive(Clone, Debug, PartialEq)]
pub enum RopeMode {
    /// One position per token (all three axes equal).
    Default,
    /// Qwen2.5-VL: the first `s[0]` frequency slots use t, the next `s[1]` h, the last `s[2]` w.
    Sectioned([usize; 3]),
    /// Qwen3-VL: slot j uses h if j%3==1 and j<3·s[1], w if j%3==2 and j<3·s[2], else t.
    Interleaved([usize; 3]),
}

/// The language model of a checkpoint: one Qwen-style decoder with flags.
#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope: RopeMode,
    /// Bias on q/k/v projections (Qwen2.5).
    pub qkv_bias: bool,
    /// Per-head RMSNorm of q and k before RoPE (Qwen3).
    pub qk_norm: bool,
    pub hidden_act: Activation,
    pub tie_word_embeddings: bool,
    /// The longest sequence the model was built for (`max_position_embeddings`), if given.
    pub max_position_embeddings: Option<usize>,
}

/// The language model flavours the shared decoder implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// q/k/v bias, `head_dim = hidden / heads` (Qwen2, Qwen2.5).
    Qwen2,
    /// Per-head q/k RMSNorm, explicit `head_dim`, optional `attention_bias` (Qwen3).
    Qwen3,
}

/// The `model_type` of checkpoint directory `dir` (its `config.json`).
pub fn model_type(dir: &Path) -> Result<String> {
    let path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|source| ModelError::Json { path: path.clone(), source })?;
    Keys::root(&value, &path)?.string("model_type")
}

/// A JSON object with its dotted path, for typed lookups with precise errors.
#[derive(Clone)]
pub(crate) struct Keys<'a> {
    file: PathBuf,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Keys<'a> {
    pub(crate) fn root(value: &'a Value, file: &Path) -> Result<Self> {
        let map = value.as_object().ok_or_else(|| ModelError::Config {
            path: file.to_path_buf(),
            key: "<root>".into(),
            message: "config must be a JSON object".into(),
        })?;
        Ok(Self { file: file.to_path_buf(), prefix: String::new(), map })
    }

    pub(crate) fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) fn invalid(&self, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::Config { path: self.file.clone(), key: self.full_key(key), message: message.into() }
    }

    pub(crate) fn missing(&self, key: &str) -> ModelError {
        self.invalid(key, "missing")
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn child(&self, key: &str) -> Result<Option<Keys<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => {
                Ok(Some(Keys { file: self.file.clone(), prefix: format!("{}{key}.", self.prefix), map }))
            }
            Some(_) => Err(self.invalid(key, "expected an object")),
        }
    }

    pub(crate) fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| self.invalid(key, format!("expected a non-negative integer, found {v}")))
            })
            .transpose()
    }

    pub(crate) fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.missing(key))
    }

    /// A key that may sit here or (as in some Qwen2.5-VL files) in the text section.
    pub(crate) fn usize_in_either(&self, key: &str, other: &Keys) -> Result<usize> {
        match self.opt_usize(key)? {
            Some(v) => Ok(v),
            None => other.usize(key),
        }
    }

    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| v.as_f64().ok_or_else(|| self.invalid(key, format!("expected a number, found {v}"))))
            .transpose()
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| v.as_bool().ok_or_else(|| self.invalid(key, format!("expected true/false, found {v}"))))
            .transpose()
    }

    pub(crate) fn string(&self, key: &str) -> Result<String> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.invalid(key, format!("expected a string, found {v}")))
    }

    pub(crate) fn usize_list(&self, key: &str) -> Result<Vec<usize>> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        let list = v.as_array().ok_or_else(|| self.invalid(key, format!("expected a list, found {v}")))?;
        list.iter()
            .map(|x| {
                x.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| self.invalid(key, format!("expected integers, found {x}")))
            })
            .collect()
    }

    /// A per-channel value: three numbers, or one number for all channels (as transformers
    /// accepts).
    pub(crate) fn opt_channels(&self, key: &str) -> Result<Option<[f64; 3]>> {
        self.get(key)
            .map(|value| {
                let channels = match value {
                    Value::Array(items) => items
                        .iter()
                        .map(Value::as_f64)
                        .collect::<Option<Vec<f64>>>()
                        .and_then(|v| v.try_into().ok()),
                    _ => value.as_f64().map(|v| [v; 3]),
                };
                channels.ok_or_else(|| {
                    self.invalid(key, format!("expected a number or 3 numbers, found {value}"))
                })
            })
            .transpose()
    }

    pub(crate) fn activation(&self, key: &str, default: &str) -> Result<Activation> {
        let name = match self.get(key) {
            Some(_) => self.string(key)?,
            None => default.to_string(),
        };
        Activation::from_hf_name(&name).ok_or_else(|| {
            self.invalid(
                key,
                format!("unsupported activation `{name}` (silu, gelu, gelu_pytorch_tanh, quick_gelu)"),
            )
        })
    }
}

/// The decoder settings of text section `keys` (`root`: the whole file, where
/// `tie_word_embeddings` may also sit) for a `decoder` of that flavour. RoPE settings may be in
/// `rope_parameters` (transformers 5) or `rope_scaling` (4.x), `rope_theta` at the text level or
/// inside them; an `mrope_section` makes the rotary multimodal (sectioned for Qwen2,
/// interleaved for Qwen3, as transformers' Qwen2.5-VL and Qwen3-VL do). Errors name the key.
pub(crate) fn parse_text(root: &Keys, keys: &Keys, decoder: Decoder) -> Result<TextConfig> {
    let hidden_size = keys.usize("hidden_size")?;
    let num_attention_heads = keys.usize("num_attention_heads")?;
    if num_attention_heads == 0 {
        return Err(keys.invalid("num_attention_heads", "must be at least 1, got 0"));
    }
    let head_dim = match decoder {
        Decoder::Qwen3 => keys.opt_usize("head_dim")?,
        Decoder::Qwen2 => None,
    }
    .unwrap_or(hidden_size / num_attention_heads);
    // transformers 5 writes `rope_parameters`; 4.x writes `rope_scaling`.
    let rope_keys = match keys.child("rope_parameters")? {
        Some(k) => Some(k),
        None => keys.child("rope_scaling")?,
    };
    let rope_theta = match keys.opt_f64("rope_theta")? {
        Some(theta) => theta,
        None => rope_keys
            .as_ref()
            .and_then(|k| k.opt_f64("rope_theta").transpose())
            .transpose()?
            .ok_or_else(|| keys.missing("rope_theta"))?,
    };
    if let Some(k) = &rope_keys {
        let kind = k.get("rope_type").or_else(|| k.get("type")).and_then(Value::as_str);
        // Dynamic NTK scaling leaves the frequencies alone up to `max_position_embeddings`
        // (transformers rescales only past it); every other scaling changes all positions.
        if let Some(kind) = kind.filter(|kind| !["default", "mrope", "dynamic"].contains(kind)) {
            return Err(k.invalid(
                "rope_type",
                format!("RoPE scaling `{kind}` is not supported (default, mrope, dynamic)"),
            ));
        }
    }
    let rope = match &rope_keys {
        Some(k) if k.has("mrope_section") => {
            let section = k.usize_list("mrope_section")?;
            let section: [usize; 3] = section.try_into().map_err(|s: Vec<usize>| {
                k.invalid("mrope_section", format!("expected 3 entries, found {}", s.len()))
            })?;
            if 2 * section.iter().sum::<usize>() != head_dim {
                return Err(k.invalid(
                    "mrope_section",
                    format!("{section:?} must sum to head_dim/2 = {}", head_dim / 2),
                ));
            }
            // transformers interleaves for Qwen3-VL whatever `mrope_interleaved` says.
            if decoder == Decoder::Qwen3 {
                RopeMode::Interleaved(section)
            } else {
                RopeMode::Sectioned(section)
            }
        }
        _ => RopeMode::Default,
    };
    // transformers reads the flag from the text config, falling back to the top level.
    let tie_word_embeddings = match keys.opt_bool("tie_word_embeddings")? {
        Some(tied) => tied,
        None => root.opt_bool("tie_word_embeddings")?.unwrap_or(false),
    };
    let num_key_value_heads = keys.opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
    if num_attention_heads == 0 || num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0
    {
        return Err(keys.invalid(
            "num_key_value_heads",
            format!("{num_key_value_heads} must be positive and divide num_attention_heads = {num_attention_heads}"),
        ));
    }
    if head_dim == 0 || head_dim % 2 != 0 {
        return Err(keys.invalid("head_dim", format!("head dimension {head_dim} must be positive and even")));
    }
    Ok(TextConfig {
        vocab_size: keys.usize("vocab_size")?,
        hidden_size,
        intermediate_size: keys.usize("intermediate_size")?,
        num_hidden_layers: keys.usize("num_hidden_layers")?,
        num_attention_heads,
        num_key_value_heads: keys.opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads),
        head_dim,
        rms_norm_eps: keys.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta,
        rope,
        qkv_bias: match decoder {
            Decoder::Qwen2 => true,
            Decoder::Qwen3 => keys.opt_bool("attention_bias")?.unwrap_or(false),
        },
        qk_norm: decoder == Decoder::Qwen3,
        hidden_act: keys.activation("hidden_act", "silu")?,
        tie_word_embeddings,
        max_position_embeddings: keys.opt_usize("max_position_embeddings")?,
    })
}

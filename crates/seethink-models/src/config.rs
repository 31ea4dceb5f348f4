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

//! The checkpoint's own tokenizer (`tokenizer.json`) and its stop/pad ids.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};
use crate::processing::json::{id_list, read_optional, token_string};

/// A HuggingFace tokenizer with the special tokens generation needs.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    /// Generation stops on any of these (generation_config's `eos_token_id` list, else
    /// config.json's, else the tokenizer's `eos_token`).
    pub stop_ids: Vec<u32>,
    /// Id used for left padding (never attended).
    pub pad_id: u32,
    /// `bos_token`, `eos_token`, `pad_token`, `unk_token` strings from tokenizer_config.json,
    /// passed to chat templates.
    pub special_tokens: Vec<(String, String)>,
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json` with `tokenizer_config.json`, `generation_config.json` and
    /// `config.json` when present.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer.json not found"),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Tokenizer { path: path.clone(), message: e.to_string() })?;
        let tokenizer_config = read_optional(&dir.join("tokenizer_config.json"))?;
        let special_tokens: Vec<(String, String)> = ["bos_token", "eos_token", "pad_token", "unk_token"]
            .into_iter()
            .filter_map(|key| {
                let value = token_string(tokenizer_config.as_ref()?.get(key))?;
                Some((key.to_string(), value))
            })
            .collect();
        let special = |key: &str| special_tokens.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let generation_path = dir.join("generation_config.json");
        let generation = read_optional(&generation_path)?;
        let config_path = dir.join("config.json");
        let config = read_optional(&config_path)?;
        let from_json =
            |json: &Option<serde_json::Value>, path: &Path, key: &str| -> Result<Option<Vec<u32>>> {
                match json.as_ref().and_then(|j| j.get(key)).filter(|v| !v.is_null()) {
                    Some(v) => id_list(v, path, key).map(Some),
                    None => Ok(None),
                }
            };
        let mut stop_ids = match from_json(&generation, &generation_path, "eos_token_id")? {
            Some(ids) => ids,
            None => from_json(&config, &config_path, "eos_token_id")?.unwrap_or_default(),
        };
        if stop_ids.is_empty() {
            stop_ids.extend(special("eos_token").and_then(|t| inner.token_to_id(t)));
        }
        let pad_id = match from_json(&generation, &generation_path, "pad_token_id")? {
            Some(ids) if !ids.is_empty() => ids[0],
            _ => special("pad_token")
                .and_then(|t| inner.token_to_id(t))
                .or(stop_ids.first().copied())
                .unwrap_or(0),
        };
        Ok(Self { inner, path, stop_ids, pad_id, special_tokens })
    }

    /// Token ids of `text` (special tokens written in the text are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, true).map_err(|e| self.error(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| self.error(e))
    }

    /// The string of token `id`, if it exists.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of token `token`, if it exists.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    fn error(&self, e: tokenizers::Error) -> ModelError {
        ModelError::Tokenizer { path: self.path.clone(), message: e.to_string() }
    }
}

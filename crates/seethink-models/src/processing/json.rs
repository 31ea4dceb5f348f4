//! Small helpers for the JSON side files of a checkpoint (tokenizer/generation configs).

use std::path::Path;

use serde_json::Value;

use crate::error::{ModelError, Result};

/// Parses `path` as JSON; `Ok(None)` when the file does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| ModelError::Json { path: path.to_path_buf(), source })
}

/// A special token given as `"<tok>"` or `{"content": "<tok>", ...}`.
pub fn token_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Token ids given as one integer or a list of integers; `key` names the value in errors.
pub fn id_list(value: &Value, path: &Path, key: &str) -> Result<Vec<u32>> {
    let bad = || ModelError::Config {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: format!("expected a token id or a list of ids, found {value}"),
    };
    let one = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad);
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

//! Errors of model loading and running: every variant names the file, key or tensor at fault.

use std::path::PathBuf;

/// Everything that can go wrong while reading a checkpoint or feeding a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("malformed JSON in {path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: key `{key}`: {message}")]
    Config { path: PathBuf, key: String, message: String },
    #[error(
        "{path}: unknown model_type `{found}` (supported: qwen2_5_vl, qwen3_vl, internvl, internvl_chat)"
    )]
    UnknownModelType { path: PathBuf, found: String },
    #[error("invalid safetensors file {path}: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("checkpoint {dir}: missing tensor `{name}`")]
    MissingTensor { dir: PathBuf, name: String },
    #[error(
        "checkpoint {dir}: {count} tensors are not used by the model its config.json describes \
         (a config with fewer layers than the weights?), e.g. {first}; \
         set SEETHINK_ALLOW_UNUSED_TENSORS=1 to load anyway"
    )]
    UnusedTensors { dir: PathBuf, count: usize, first: String },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { path: PathBuf, name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error(
        "{path}: tensor `{name}` has dtype {dtype}, which cannot be read as floats (F32, F16, BF16, F64)"
    )]
    UnsupportedDtype { path: PathBuf, name: String, dtype: String },
    #[error("cannot decode image {source_name}: {message}")]
    Image { source_name: String, message: String },
    #[error("{path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("chat template from {path}: {message}")]
    Template { path: PathBuf, message: String },
    #[error("invalid model input: {0}")]
    Input(String),
    #[error("invalid LoRA setting: {0}")]
    Lora(String),
    #[error("cannot export the model: {0}")]
    Export(String),
}

pub type Result<T> = std::result::Result<T, ModelError>;

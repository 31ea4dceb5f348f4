//! Vision-language models on burn, generic over the backend, that load HuggingFace checkpoints
//! and match transformers numerically: Qwen2.5-VL and Qwen3-VL.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use seethink_models::{QwenVl, TokenBatch, Vlm};
//!
//! let device = Default::default();
//! let model = QwenVl::<NdArray>::load("path/to/Qwen3-VL-2B-Instruct", &device)?;
//! let logits = model.forward(&TokenBatch::single(vec![9707, 11, 1879]), None)?;
//! # Ok::<(), seethink_models::ModelError>(())
//! ```

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod generate;
pub mod model;
pub mod nn;
pub mod positions;
pub mod processing;
pub mod text;
pub mod vision;

pub use checkpoint::Checkpoint;
pub use config::{Family, VlmConfig};
pub use error::{ModelError, Result};
pub use model::{DecodeState, ImageInput, QwenVl, Vlm};
pub use positions::{mrope_positions, MropePositions, TokenBatch};
pub use text::KvCache;

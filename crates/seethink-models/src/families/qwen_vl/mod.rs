//! Qwen2.5-VL and Qwen3-VL (`model_type` `qwen2_5_vl`, `qwen3_vl`): config, key layouts, the
//! vision tower, the assembled model, M-RoPE positions, and the image processor with its
//! placeholder expansion.

pub mod config;
pub mod image;
mod image_config;
mod model;
pub mod positions;
mod processor;
pub mod vision;

pub use config::{QwenVersion, QwenVlConfig, TokenIds, VisionConfig};
pub use model::QwenVl;
pub use positions::{mrope_positions, MropePositions};
pub use processor::QwenVlImages;

use crate::checkpoint::KeyLayouts;

/// The `model_type`s of `config.json` this family reads.
pub const MODEL_TYPES: &[&str] = &["qwen2_5_vl", "qwen3_vl"];

/// Qwen-VL key layouts: legacy (transformers before 4.52: `visual.*`, `model.*` for the
/// language model) and current (`model.visual.*`, `model.language_model.*`); `lm_head.*` is the
/// same in both.
pub static KEYS: KeyLayouts = KeyLayouts {
    legacy: &[("model.visual.", "visual."), ("model.language_model.", "model.")],
    current: &[("model.visual.", "model.visual."), ("model.language_model.", "model.language_model.")],
};

//! InternVL3 and InternVL3.5 (`model_type` `internvl`, transformers' `-hf` conversion, and
//! `internvl_chat`, the original release): config, the two key layouts, InternViT with the
//! projector, the assembled model, and the tiling image processor with its placeholder
//! expansion.

pub mod config;
mod model;
pub(crate) mod names;
pub mod processor;
mod vision;

pub use config::{InternVisionConfig, InternVlConfig, TilingConfig};
pub use model::InternVl;
pub use processor::{tile_grid, InternVlImages, Tiling};
pub use vision::{InternStages, InternVision};

use crate::checkpoint::KeyLayouts;

/// The `model_type`s of `config.json` this family reads.
pub const MODEL_TYPES: &[&str] = &["internvl", "internvl_chat"];

/// The key layouts of transformers' InternVL: the hub's `-hf` checkpoints (and transformers 5's
/// `save_pretrained`) use `vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*`
/// and `language_model.lm_head.*`; transformers 4.52–4.57 wrote `model.*` and `lm_head.*`.
/// The original release's language model is stored like the legacy one, and its vision tower
/// and projector (`vision_model.*`, `mlp1.*`) match no rule: they keep their names.
pub static KEYS: KeyLayouts = KeyLayouts {
    legacy: &[
        ("model.vision_tower.", "vision_tower."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("model.language_model.", "language_model.model."),
        ("lm_head.", "language_model.lm_head."),
    ],
    current: &[
        ("model.vision_tower.", "model.vision_tower."),
        ("model.multi_modal_projector.", "model.multi_modal_projector."),
        ("model.language_model.", "model.language_model."),
    ],
};

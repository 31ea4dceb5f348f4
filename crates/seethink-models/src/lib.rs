//! Vision-language models on burn, generic over the backend, that load HuggingFace checkpoints
//! and match transformers numerically: Qwen2.5-VL and Qwen3-VL (`families/qwen_vl`), InternVL3
//! and InternVL3.5 (`families/internvl`, both checkpoint layouts).
//!
//! [`AnyVlm::load`] reads any supported checkpoint (the family comes from `config.json`'s
//! `model_type`) and [`Processor::from_dir`](processing::Processor::from_dir) its processor;
//! callers use the family-independent [`Vlm`] trait.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use seethink_models::{AnyVlm, TokenBatch, Vlm};
//!
//! let device = Default::default();
//! let model = AnyVlm::<NdArray>::load("path/to/Qwen3-VL-2B-Instruct", &device)?;
//! let tokens = TokenBatch::single(vec![9707, 11, 1879]);
//! let logits = model.forward(&tokens, None)?; // [1, 3, vocab]
//! let last = model.forward_at(&tokens, None, &mut model.new_state(), &[2])?; // [1, 1, vocab]
//! # Ok::<(), seethink_models::ModelError>(())
//! ```

pub mod allocator;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod device_sampling;
pub mod error;
pub mod families;
pub mod generate;
pub mod kernels;
pub mod nn;
pub mod parallel;
pub mod positions;
pub mod processing;
pub mod readback;
pub mod sampling;
pub mod text;
pub mod vision_stages;
pub mod vlm;

pub use checkpoint::Checkpoint;
pub use decode::{DecodeState, KvCache};
pub use error::{ModelError, Result};
pub use families::internvl::{self, InternVl};
pub use families::qwen_vl::{self, QwenVl};
pub use families::size::ModelSize;
pub use families::{AnyImages, AnyVlm};
pub use positions::TokenBatch;
/// The stable hash of names that parameter ids and seeded draws derive from (seethink-data's).
pub use seethink_data::fnv1a;
pub use vision_stages::{VisionFeatures, VisionStages};
pub use vlm::{GridThw, ImageGrid, ImageInput, Vlm};

//! Building blocks shared by every family: norms, activations, rotary embeddings, attention, MLPs.

mod activation;
mod attention;
pub mod frozen;
mod linear;
mod lora;
mod mlp;
mod norm;
pub mod precision;
mod rope;
mod token_logprobs;

pub use activation::Activation;
pub use attention::{attention, Segments};
pub use frozen::{store_frozen, weight_product, widen_trained};
pub use linear::{load_linear, matmul, Linear, LoraSite};
pub use lora::{LoraAdapter, LoraConfig, LoraPart, LORA_TARGETS};
pub use mlp::{GatedMlp, Mlp};
pub use norm::{load_layer_norm, Norm, NormKind, RmsNorm};
pub use precision::for_compute;
pub use rope::{apply_rotary, slot_axes, text_rope, vision_rope, Rope};
pub use token_logprobs::token_logprobs;

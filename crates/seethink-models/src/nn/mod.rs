//! Building blocks shared by every family: norms, activations, rotary embeddings, attention, MLPs.

mod activation;
mod attention;
pub mod frozen;
mod gelu;
mod linear;
mod lora;
mod mlp;
mod norm;
mod recomputed_attention;
mod rope;
mod token_logprobs;

pub use activation::Activation;
pub use attention::{attention, causal_blocked, decomposed_attention, Segments};
pub use frozen::{store_frozen, tracked_frozen_matmul, weight_product, widen_trained};
pub use gelu::tracked_gelu;
pub use linear::{load_linear, matmul, Linear};
pub use lora::{LoraAdapter, LoraConfig, LoraPart, LoraSite, LORA_TARGETS};
pub use mlp::{GatedMlp, Mlp};
pub use norm::{load_layer_norm, Norm, NormKind, RmsNorm};
pub use recomputed_attention::recomputed_attention;
pub use rope::{apply_rotary, slot_axes, text_rope, vision_rope, Rope};
pub use token_logprobs::{decomposed_token_logprobs, token_logprobs};

//! Building blocks shared by every family: norms, activations, rotary embeddings, attention, MLPs.

mod activation;
mod attention;
#[cfg(feature = "ndarray")]
mod host;
#[cfg(feature = "ndarray")]
mod host_attention;
#[cfg(feature = "ndarray")]
mod host_logprobs;
#[cfg(feature = "ndarray")]
mod host_matmul;
#[cfg(feature = "ndarray")]
mod host_optim;
#[cfg(feature = "ndarray")]
mod host_swiglu;
mod linear;
mod mlp;
mod norm;
mod rope;
mod token_logprobs;

pub use activation::Activation;
pub use attention::{attention, causal_blocked, decomposed_attention, Segments};
#[cfg(feature = "ndarray")]
pub use host_optim::{adamw_on_host, scale_on_host, squared_norm_on_host, AdamWStep, Moments};
pub use linear::{load_linear, matmul, Linear};
pub use mlp::{GatedMlp, Mlp};
pub use norm::{load_layer_norm, Norm, NormKind, RmsNorm};
pub use rope::{apply_rotary, slot_axes, text_rope, vision_rope, Rope};
pub use token_logprobs::token_logprobs;

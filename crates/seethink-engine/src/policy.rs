//! The trained model: [`PolicyModel`] wraps any model family; [`Sequence`]s move onto its
//! autodiff backend with [`to_autodiff`].

use burn::module::Module;
use burn::tensor::backend::Backend;
use seethink_models::kernels::Kernels;
use seethink_models::AnyVlm;

use crate::logprobs::Scoring;
pub use crate::logprobs::Sequence;
use crate::train_backend::TrainBackend;

/// The policy being trained: a model of any family, its tokenizer's pad id and the rows of
/// logits computed at a time.
#[derive(Module, Debug)]
pub struct PolicyModel<B: Backend> {
    pub model: AnyVlm<B>,
    pub pad_id: u32,
    pub logits_chunk_tokens: usize,
    /// Whether the trained pass recomputes each decoder layer in backward
    /// (seethink-rl's `actor.activation_checkpointing`).
    pub checkpoint_layers: bool,
}

impl<B: Kernels> PolicyModel<B> {
    /// How this policy scores responses at `temperature`.
    pub fn scoring(&self, temperature: f32) -> Scoring {
        Scoring {
            pad_id: self.pad_id,
            chunk_tokens: self.logits_chunk_tokens,
            temperature,
            checkpoint_layers: self.checkpoint_layers,
        }
    }
}

/// A sequence with its pixel values moved onto the autodiff backend (no gradient).
pub fn to_autodiff<B: TrainBackend>(sequence: Sequence<B::InnerBackend>) -> Sequence<B> {
    Sequence {
        prompt: sequence.prompt,
        response: sequence.response,
        images: sequence.images.map(|i| i.map_pixels(burn::tensor::Tensor::from_inner)),
    }
}

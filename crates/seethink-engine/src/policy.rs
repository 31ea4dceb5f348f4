//! The trained model: [`PolicyModel`] wraps any model family; [`Sequence`]s move onto its
//! autodiff backend with [`to_autodiff`]; [`with_own_leaves`] gives a pass on another thread a
//! graph of its own.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
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

/// `module` with each trained parameter a new leaf of the autodiff graph, with the same id and
/// the same values (shared, not copied); frozen parameters are kept. A pass through it builds
/// a graph of its own, which no backward pass through `module` or another such copy reaches,
/// on any thread, and its gradients are found by parameter id as `module`'s would be: so
/// micro-batches may run their forward and backward passes side by side.
pub fn with_own_leaves<B: AutodiffBackend, M: Module<B>>(module: M) -> M {
    struct OwnLeaves;
    impl<B: AutodiffBackend> ModuleMapper<B> for OwnLeaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if !param.is_require_grad() {
                return param;
            }
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor.detach().require_grad(), mapper)
        }
    }
    module.map(&mut OwnLeaves)
}

//! The trained model: [`PolicyModel`] wraps any model family; the SFT loss on a batch of
//! [`Sequence`]s.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use seethink_models::{AnyVlm, Result};

use crate::grpo::aggregate;
pub use crate::logprobs::Sequence;
use crate::logprobs::{chunked_gradients, Scoring};
use crate::train_backend::TrainBackend;
use seethink_models::kernels::Kernels;

/// The policy being trained: a model of any family, its tokenizer's pad id and the rows of
/// logits computed at a time.
#[derive(Module, Debug)]
pub struct PolicyModel<B: Backend> {
    pub model: AnyVlm<B>,
    pub pad_id: u32,
    pub logits_chunk_tokens: usize,
}

impl<B: Kernels> PolicyModel<B> {
    /// How this policy scores responses at `temperature`.
    pub fn scoring(&self, temperature: f32) -> Scoring {
        Scoring { pad_id: self.pad_id, chunk_tokens: self.logits_chunk_tokens, temperature }
    }
}

/// A micro-batch of SFT sequences with the normaliser of its mini-batch (the response tokens
/// of the whole mini-batch, so that micro-batch losses add up to the mini-batch loss).
#[derive(Clone, Debug)]
pub struct SftBatch<B: Backend> {
    pub sequences: Vec<Sequence<B>>,
    pub normaliser: f32,
}

/// What an SFT micro-step reports, on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SftItem {
    /// This micro-batch's share of the mini-batch loss.
    pub loss: f64,
    pub tokens: usize,
}

/// The SFT loss of one chunk of scored positions: `−Σ log π(y_t | …)·mask / normaliser`.
pub fn sft_loss<B: Kernels>(logp: Tensor<B, 2>, mask: Tensor<B, 2>, normaliser: f32) -> Tensor<B, 1> {
    aggregate(logp.neg(), mask, normaliser)
}

impl<B: TrainBackend> PolicyModel<B> {
    /// The gradients of the SFT loss of `batch` ([`sft_loss`], chunk by chunk) and its value.
    pub fn sft_gradients(&self, batch: &SftBatch<B>) -> Result<(GradientsParams, SftItem)> {
        let mut loss = 0.0;
        let grads = chunked_gradients(&self.model, &batch.sequences, self.scoring(1.0), |c| {
            let chunk = sft_loss(c.logp, c.mask, batch.normaliser);
            loss += chunk.clone().into_scalar().elem::<f64>();
            Ok(chunk)
        })?;
        Ok((grads, SftItem { loss, tokens: batch.sequences.iter().map(|s| s.response.len()).sum() }))
    }
}

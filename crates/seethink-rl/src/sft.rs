//! Supervised fine-tuning: cross-entropy on response tokens only (prompt tokens masked).

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use seethink_models::Result;

use crate::grpo::{aggregate, Aggregation};
use crate::learner::{apply_update, PolicyLearner, UpdateStats};
use crate::policy::{Policy, Sequence, SftBatch};

/// What one SFT update reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SftStats {
    /// Mean negative log-likelihood per response token.
    pub loss: f64,
    pub tokens: usize,
    pub update: UpdateStats,
}

/// The SFT loss of scored sequences: `−Σ log π(y_t | …)·mask / normaliser`, with
/// `normaliser` the response tokens of the whole (mini-)batch.
pub fn sft_loss<B: burn::tensor::backend::Backend>(
    scored: &crate::logprobs::ResponseLogprobs<B>,
    normaliser: f32,
) -> burn::tensor::Tensor<B, 1> {
    aggregate(scored.logp.clone().neg(), scored.mask.clone(), Aggregation::TokenMean, normaliser)
}

/// One SFT update on `batch`, processed in micro-batches of `micro_batch_size`:
/// `L = −Σ_{response tokens} log π(y_t | x, y_<t) / (response tokens in the batch)`, gradients
/// summed over micro-batches, then [`apply_update`].
pub fn sft_step<B: AutodiffBackend>(
    learner: &mut PolicyLearner<B>,
    batch: &[Sequence<B::InnerBackend>],
    micro_batch_size: usize,
    max_grad_norm: f64,
) -> Result<SftStats> {
    let tokens: usize = batch.iter().map(|s| s.response.len()).sum();
    let policy: Policy<B> = learner.model();
    let mut accumulator = GradientsAccumulator::<Policy<B>>::new();
    let mut loss = 0.0;
    for chunk in batch.chunks(micro_batch_size.max(1)) {
        let micro = SftBatch {
            sequences: chunk.iter().map(|s| to_autodiff(s.clone())).collect(),
            normaliser: tokens as f32,
        };
        let (micro_loss, item) = policy.sft_loss(&micro)?;
        loss += item.loss;
        accumulator.accumulate(&policy, GradientsParams::from_grads(micro_loss.backward(), &policy));
    }
    let update = apply_update(learner, accumulator.grads(), max_grad_norm);
    Ok(SftStats { loss, tokens, update })
}

/// A sequence with its pixel values moved onto the autodiff backend (no gradient).
pub fn to_autodiff<B: AutodiffBackend>(sequence: Sequence<B::InnerBackend>) -> Sequence<B> {
    Sequence {
        prompt: sequence.prompt,
        response: sequence.response,
        images: sequence.images.map(|i| i.map_pixels(burn::tensor::Tensor::from_inner)),
    }
}

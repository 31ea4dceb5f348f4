//! Supervised fine-tuning: cross-entropy on response tokens only (prompt tokens masked).

use burn::optim::GradientsAccumulator;

use crate::data_parallel::Worker;
use crate::error::Result;
use crate::learner::{apply_update, PolicyLearner, UpdateStats};
use crate::policy::{PolicyModel, Sequence, SftBatch};
use crate::train_backend::TrainBackend;

/// What one SFT update reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SftStats {
    /// Mean negative log-likelihood per response token.
    pub loss: f64,
    pub tokens: usize,
    pub update: UpdateStats,
}

/// One SFT update on `batch`, processed in micro-batches of `micro_batch_size`:
/// `L = −Σ_{response tokens} log π(y_t | x, y_<t) / (response tokens in the batch)`
/// ([`crate::policy::sft_loss`]), gradients summed over micro-batches, then [`apply_update`].
/// `worker` takes its contiguous share of the micro-batches (all of them alone), and the
/// gradients and the loss are summed over the workers.
pub fn sft_step<B: TrainBackend>(
    learner: &mut PolicyLearner<B>,
    batch: &[Sequence<B::InnerBackend>],
    micro_batch_size: usize,
    max_grad_norm: f64,
    worker: &Worker,
) -> Result<SftStats> {
    let tokens: usize = batch.iter().map(|s| s.response.len()).sum();
    let policy: PolicyModel<B> = learner.model();
    let mut accumulator = GradientsAccumulator::<PolicyModel<B>>::new();
    let mut loss = 0.0;
    let chunks: Vec<&[Sequence<B::InnerBackend>]> = batch.chunks(micro_batch_size.max(1)).collect();
    let own = worker.share(chunks.len());
    for chunk in &chunks[own] {
        let micro = SftBatch {
            sequences: chunk.iter().map(|s| to_autodiff(s.clone())).collect(),
            normaliser: tokens as f32,
        };
        let (grads, item) = policy.sft_gradients(&micro)?;
        loss += item.loss;
        accumulator.accumulate(&policy, grads);
    }
    let grads = worker.sum_gradients(&policy, accumulator.grads())?;
    let loss = worker.sum_scalar(loss)?;
    let update = apply_update(learner, grads, max_grad_norm);
    Ok(SftStats { loss, tokens, update })
}

/// A sequence with its pixel values moved onto the autodiff backend (no gradient).
pub fn to_autodiff<B: TrainBackend>(sequence: Sequence<B::InnerBackend>) -> Sequence<B> {
    Sequence {
        prompt: sequence.prompt,
        response: sequence.response,
        images: sequence.images.map(|i| i.map_pixels(burn::tensor::Tensor::from_inner)),
    }
}

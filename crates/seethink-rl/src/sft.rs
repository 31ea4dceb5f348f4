//! Supervised fine-tuning: cross-entropy on response tokens only (prompt tokens masked).

use burn::tensor::{backend::AutodiffBackend, ElementConversion};
use seethink_models::Result;

use crate::grpo::{aggregate, Aggregation};
use crate::trainer::{Learner, Sequence, UpdateStats};

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
/// `L = −Σ_{response tokens} log π(y_t | x, y_<t) / (response tokens in the batch)`.
pub fn sft_step<B: AutodiffBackend>(
    learner: &mut Learner<B>,
    batch: &[Sequence<B::InnerBackend>],
    micro_batch_size: usize,
    pad_id: u32,
) -> Result<SftStats> {
    let tokens: usize = batch.iter().map(|s| s.response.len()).sum();
    let chunks: Vec<&[Sequence<B::InnerBackend>]> = batch.chunks(micro_batch_size.max(1)).collect();
    let mut loss = 0.0;
    let update = learner.update(chunks.len(), |learner, k| {
        let scored = learner.logprobs(chunks[k], pad_id)?;
        let micro = sft_loss(&scored, tokens as f32);
        loss += micro.clone().into_scalar().elem::<f64>();
        Ok(micro)
    })?;
    Ok(SftStats { loss, tokens, update })
}

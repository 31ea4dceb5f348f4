//! Supervised fine-tuning: cross-entropy on response tokens only (prompt tokens masked): the
//! loss, its gradients on the policy and one update ([`sft_step`]); the run loop's SFT
//! algorithm is [`crate::builtin::Sft`].

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use seethink_models::kernels::Kernels;
use seethink_models::AnyVlm;

use crate::data_parallel::Worker;
use crate::error::Result;
use crate::gradient_sink::GradientSink;
use crate::grpo::aggregate;
use crate::layer_checkpoints::idle_micro_batch;
use crate::learner::{apply_update, PolicyLearner, UpdateStats};
use crate::logprobs::add_chunked_gradients;
use crate::policy::{to_autodiff, PolicyModel, Sequence};
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
/// ([`sft_loss`]), gradients summed over micro-batches, then [`apply_update`].
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
    let policy: PolicyModel<B> = learner.update_model()?;
    let mut sink = GradientSink::new(&policy.model, worker, policy.checkpoint_layers);
    let mut loss = 0.0;
    let chunks: Vec<&[Sequence<B::InnerBackend>]> = batch.chunks(micro_batch_size.max(1)).collect();
    let own = worker.share(chunks.len());
    for chunk in &chunks[own.clone()] {
        let micro = SftBatch {
            sequences: chunk.iter().map(|s| to_autodiff(s.clone())).collect(),
            normaliser: tokens as f32,
        };
        loss += add_sft_gradients(&policy, &micro, &mut sink)?.loss;
    }
    for _ in own.len()..chunks.len().div_ceil(worker.count()) {
        idle_micro_batch(&policy.model, &mut sink)?;
    }
    let grads = sink.finish(&policy.model)?;
    let loss = worker.sum_scalar(loss)?;
    let update = apply_update(learner, grads, max_grad_norm, worker)?;
    Ok(SftStats { loss, tokens, update })
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

/// Hands the gradients of `policy`'s SFT loss of the micro-batch `batch` ([`sft_loss`], chunk
/// by chunk) to `sink`, and returns its value.
pub fn add_sft_gradients<B: TrainBackend>(
    policy: &PolicyModel<B>,
    batch: &SftBatch<B>,
    sink: &mut GradientSink<AnyVlm<B>>,
) -> Result<SftItem> {
    let mut loss = 0.0;
    add_chunked_gradients(&policy.model, &batch.sequences, policy.scoring(1.0), false, sink, |c| {
        let chunk = sft_loss(c.logp, c.mask, batch.normaliser);
        loss += chunk.clone().into_scalar().elem::<f64>();
        Ok(chunk)
    })?;
    Ok(SftItem { loss, tokens: batch.sequences.iter().map(|s| s.response.len()).sum() })
}

//! The GRPO update both benchmarks measure: old and reference log-probs, chunked policy
//! gradients of the clipped + KL loss (token-mean), global-norm clip and AdamW.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData};
use seethink_models::AnyVlm;
use seethink_rl::data_parallel::Worker;
use seethink_rl::grpo::{vanilla, GrpoLossConfig, MiniBatch, TokenBatchLoss};
use seethink_rl::learner::{apply_update, inference_model, PolicyLearner};
use seethink_rl::logprobs::{chunked_gradients, response_logprobs, Scoring, Sequence};
use seethink_rl::policy::to_autodiff;

pub type B = Autodiff<NdArray<f32>>;
pub type I = NdArray<f32>;

/// The phases of one update, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The old and reference log-probs (forward passes without autodiff).
    Frozen,
    /// The policy's forward and backward passes.
    Gradients,
    /// The global-norm clip and the AdamW step.
    Optimizer,
}

/// One GRPO update of `learner` on `sequences` with one advantage per sequence;
/// `phase_done` runs as each [`Phase`] ends (for measurements between the phases).
pub fn grpo_update(
    learner: &mut PolicyLearner<B>,
    reference: &AnyVlm<I>,
    sequences: &[Sequence<I>],
    advantages: &[f32],
    scoring: Scoring,
    mut phase_done: impl FnMut(Phase),
) {
    let mini_batch = MiniBatch {
        tokens: sequences.iter().map(|s| s.response.len()).sum(),
        responses: sequences.len(),
        max_response_tokens: sequences.iter().map(|s| s.response.len()).max().unwrap_or(0),
    };
    let config = GrpoLossConfig::default();
    let policy = inference_model(learner).unwrap();
    let old = response_logprobs(&policy, sequences, scoring).unwrap().logp;
    let reference = response_logprobs(reference, sequences, scoring).unwrap().logp;
    drop(policy);
    phase_done(Phase::Frozen);
    let model = learner.model();
    let trained: Vec<Sequence<B>> = sequences.iter().cloned().map(to_autodiff).collect();
    let advantages = Tensor::<B, 2>::from_data(
        TensorData::new(advantages.to_vec(), [advantages.len(), 1]),
        &Default::default(),
    );
    let grads = chunked_gradients(&model.model, &trained, scoring, |c| {
        let columns =
            |t: &Tensor<I, 2>| Tensor::from_inner(t.clone().narrow(1, c.range.start, c.range.len()));
        Ok(TokenBatchLoss {
            logp: c.logp,
            old_logp: columns(&old),
            ref_logp: Some(columns(&reference)),
            advantages: advantages.clone(),
            mask: c.mask.clone(),
            weights: c.mask,
            mini_batch,
            sequence: None,
        }
        .terms(&config, vanilla)
        .loss)
    })
    .unwrap();
    drop(model);
    phase_done(Phase::Gradients);
    apply_update(learner, grads, 1.0, &Worker::alone()).unwrap();
    phase_done(Phase::Optimizer);
}

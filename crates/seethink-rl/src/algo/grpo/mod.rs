//! GRPO and its relatives: outcome advantages (GRPO, RLOO, REINFORCE++), the clipped,
//! KL-regularised token-level loss, and losses and estimators by name (plugins).

mod advantage;
mod loss;
mod plugins;
mod step;

pub use advantage::{advantages, AdvantageOptions, Estimator};
pub use loss::{
    aggregate, kl_k3, policy_loss, row_weights, sequence_policy_loss, sequence_ratio, Aggregation,
    GrpoLossConfig, KlPenalty, LossInputs, LossTerms, LossType, MiniBatch, PolicyLoss, PolicyLossFn,
    SequenceRatio, TokenBatchLoss,
};
pub use plugins::{
    cispo, dr_grpo, dr_grpo_advantages, vanilla, EstimatorFn, EstimatorInputs, PluginName, Plugins,
};
pub(crate) use step::{micro_batches, mini_batch_size};
pub use step::{prompts_per_call, Draw, Grpo, GrpoStats, RolloutPrompt, Scored};

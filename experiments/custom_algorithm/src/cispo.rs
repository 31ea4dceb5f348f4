//! CISPO (MiniMax-M1, arXiv 2506.13585) as a user's policy loss, registered by name and run by
//! seethink's stock GRPO step (rollout, filtering, data parallelism, sharding, …).

use seethink::models::kernels::Kernels;
use seethink::rl::builtin::WithPlugins;
use seethink::rl::grpo::{GrpoLossConfig, LossInputs, Plugins, PolicyLoss};
use seethink::rl::train_backend::TrainBackend;

/// `loss_t = −sg(min(ρ_t, 1 + ε_high)) · A · log π(y_t)`: every token's gradient through
/// `log π`, weighted by its importance ratio capped from above and detached.
pub fn cispo<B: Kernels>(x: LossInputs<B>, config: &GrpoLossConfig) -> PolicyLoss<B> {
    let ratio = (x.logp.clone() - x.old_logp).clamp(-20.0, 20.0).exp().detach();
    let cap = 1.0 + config.clip_high;
    let clipped = ratio.clone().greater_elem(cap).float();
    let per_token = ratio.clamp_max(cap) * x.advantages.expand(x.logp.dims()).neg() * x.logp;
    PolicyLoss { per_token, clipped }
}

/// seethink's algorithms with this loss as `algorithm.loss: "user_cispo"`.
pub fn with_cispo<B: TrainBackend>() -> WithPlugins<B> {
    WithPlugins(Plugins::builtin().with_loss("user_cispo", cispo::<B>))
}

//! The training state on burn-train's `Learner`: the policy (a [`PolicyModel`] module), AdamW and the
//! LR schedule, plus the one update rule GRPO and SFT share.

use burn::module::AutodiffModule;

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::train::{Learner, LearningComponentsMarker};
use seethink_models::AnyVlm;

use crate::config::ActorConfig;
use crate::optim::{clip_global_norm, AdamWSettings, KernelAdamW, LrSchedule};
use crate::policy::PolicyModel;
use crate::train_backend::TrainBackend;

/// burn-train's component types of a run: backend, schedule, policy module, AdamW.
pub type Components<B> =
    LearningComponentsMarker<B, Schedule, PolicyModel<B>, OptimizerAdaptor<KernelAdamW, PolicyModel<B>, B>>;

/// burn-train's `Learner` holding a run's policy, optimizer and LR schedule.
pub type PolicyLearner<B> = Learner<Components<B>>;

/// What one optimizer update reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    /// The gradient norm was NaN or infinite and the weights were left unchanged.
    pub skipped: bool,
}

/// [`LrSchedule`] as a burn LR scheduler, stepped once per training step (as EasyR1 steps its
/// scheduler once per rollout step): step t (0-based) uses `schedule.lr_at(base, t)`; the record
/// is the number of steps taken, so a restored schedule continues where it was.
#[derive(Clone, Debug)]
pub struct Schedule {
    base: f64,
    schedule: LrSchedule,
    steps: usize,
}

impl Schedule {
    pub fn new(base: f64, schedule: LrSchedule) -> Self {
        Self { base, schedule, steps: 0 }
    }
}

impl LrScheduler for Schedule {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> f64 {
        let lr = self.schedule.lr_at(self.base, self.steps);
        self.steps += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.steps
    }

    fn load_record<B: Backend>(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }
}

/// A learner for `model` with AdamW (torch's β = (0.9, 0.999), as EasyR1 uses them; the actor's
/// ε, 1e-8 by default as torch's, and weight decay) and the actor's LR schedule.
pub fn new_learner<B: TrainBackend>(model: AnyVlm<B>, actor: &ActorConfig, pad_id: u32) -> PolicyLearner<B> {
    let optimizer = KernelAdamW::init(AdamWSettings {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: actor.adam_epsilon as f32,
        weight_decay: actor.weight_decay as f32,
    });
    let policy = PolicyModel { model, pad_id, logits_chunk_tokens: actor.logits_chunk_tokens };
    Learner::new(policy, optimizer, Schedule::new(actor.lr, actor.schedule))
}

/// One optimizer update with gradients summed over a mini-batch's micro-batches: clipped to
/// the global norm `max_grad_norm` ([`clip_global_norm`]), then AdamW at the step's LR (the run
/// loop steps the schedule once per training step). A NaN or infinite norm skips the optimizer
/// step (weights and AdamW moments unchanged), as EasyR1's actor does, and is logged.
pub fn apply_update<B: TrainBackend>(
    learner: &mut PolicyLearner<B>,
    mut grads: GradientsParams,
    max_grad_norm: f64,
) -> UpdateStats {
    let grad_norm = clip_global_norm(&learner.model(), &mut grads, max_grad_norm);
    let lr = learner.lr_current();
    let skipped = !grad_norm.is_finite();
    if skipped {
        tracing::warn!(grad_norm, "gradient norm is not finite: update skipped");
    } else {
        learner.optimizer_step(grads);
    }
    UpdateStats { grad_norm, lr, skipped }
}

/// The policy without autodiff (for rollouts, frozen log-probs and export).
pub fn inference_model<B: TrainBackend>(learner: &PolicyLearner<B>) -> AnyVlm<B::InnerBackend> {
    learner.model().valid().model
}

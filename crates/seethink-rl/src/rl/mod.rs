//! GRPO on burn-train's reinforcement-learning paradigm (`RLTraining`).
//!
//! The pieces map onto burn-rl's traits as a bandit over token sequences:
//! - [`TaskEnv`] (`Environment`): the task set; an episode is one task answered once and the
//!   reward is the verifier's score;
//! - [`GrpoPolicy`] (`Policy`): observes tasks, acts with a group of sampled responses;
//! - [`GrpoAgent`] (`PolicyLearner`): one GRPO learning phase per rollout (advantages, old and
//!   reference log-probs, clipped + KL loss, AdamW), the optimizer state in its record;
//! - [`GrpoStrategy`] (`RLStrategy`): the on-policy loop (sample, score, learn, log, checkpoint).
//!
//! burn-train supplies the launcher and resume, the environment runner that plays the
//! episodes, the event processor with its episode metrics (cumulative reward per group,
//! episode length), metric loggers and renderer, the checkpointer (made atomic by
//! [`AtomicRecorder`]) and the interrupter. burn-train 0.21 keeps its event type private to
//! the crate, so a custom strategy cannot send learner (train-step) events: GRPO's step
//! metrics go to `metrics.jsonl` through [`crate::metrics::MetricsLog`] instead.

mod agent;
mod checkpoint;
mod env;
mod policy;
mod renderer;
mod strategy;

use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{CumulativeRewardMetric, EpisodeLengthMetric};
use burn::train::{RLComponentsMarker, RLStrategies, RLTraining};
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::Reward;

pub use agent::{GrpoAgent, GrpoAgentRecord};
pub use checkpoint::{complete_checkpoints, AtomicRecorder, EveryNKeepLast, CHECKPOINT_FILES};
pub use env::{task_at_position, TaskEnv, TaskSource};
pub use policy::{Batch, GrpoPolicy, PolicyWeights, Response, ResponseContext};
pub use renderer::SilentRenderer;
pub use strategy::GrpoStrategy;

use crate::error::Result;
use crate::grpo::Grpo;
use crate::metrics::MetricsLog;

/// burn-train's component types of a GRPO run.
pub type GrpoComponents<B> =
    RLComponentsMarker<B, TaskEnv<<B as AutodiffBackend>::InnerBackend>, TaskSource, GrpoAgent<B>>;

type CheckpointRecorder = AtomicRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

/// Schedule of a GRPO run on burn-train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrpoRun {
    pub steps: usize,
    pub prompts_per_step: usize,
    pub save_every: usize,
    pub keep_last: usize,
}

/// Trains `grpo` for `run.steps` steps on the tasks of `source` with burn-train's
/// `RLTraining`, in run directory `dir` (`metrics.jsonl`, `checkpoint/`, burn-train's metric
/// logs); resumes from the newest complete checkpoint there. Returns the trained weights.
pub fn train_grpo<B: AutodiffBackend>(
    grpo: Grpo<B>,
    processor: Arc<Processor>,
    source: TaskSource,
    run: GrpoRun,
    dir: &Path,
) -> Result<AnyVlm<B>> {
    let on_disk = complete_checkpoints(&dir.join("checkpoint"), "mpk");
    let resume_from = on_disk.last().copied();
    let failure = Arc::new(Mutex::new(None));
    let strategy = GrpoStrategy {
        prompts_per_step: run.prompts_per_step,
        metrics: MetricsLog::open(&dir.join("metrics.jsonl"), resume_from.unwrap_or(0) + 1)?,
        failure: failure.clone(),
    };
    let reward: Arc<dyn Reward> = source.reward.clone();
    let mut training = RLTraining::<GrpoComponents<B>>::new(dir, source)
        .with_learning_strategy(RLStrategies::Custom(Arc::new(strategy)))
        .with_application_logger(None)
        .with_file_checkpointer(CheckpointRecorder::default())
        .with_checkpointing_strategy(EveryNKeepLast::new(run.save_every, run.steps, run.keep_last, on_disk))
        .metrics_episode((CumulativeRewardMetric::new(), EpisodeLengthMetric::new()))
        .renderer(SilentRenderer)
        .num_steps(run.steps);
    if let Some(step) = resume_from {
        tracing::info!(step, "resuming");
        training = training.checkpoint(step);
    }
    let result = training.launch(GrpoAgent::new(grpo, processor, reward));
    if let Some(error) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(error);
    }
    Ok(result.policy.model)
}

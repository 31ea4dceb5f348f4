//! The algorithm seam of the run loop: a training step on the tasks a sampler draws. GRPO and
//! SFT are its two built-in impls, chosen by `algorithm.trainer`
//! ([`BuiltIn`](crate::builtin::BuiltIn)). Another algorithm (an
//! estimator such as CISPO, or a user's own objective) is one impl of [`Algorithm`] and one of
//! [`AlgorithmBuilder`], passed to [`run_tasks_with`](crate::run::run_tasks_with) or
//! [`train_curriculum_with`](crate::phases::train_curriculum_with): the stock loop then gives it
//! resume, checkpoints, metrics, curricula, evaluation and data parallelism
//! (`experiments/custom_algorithm` does so from a crate of its own).

use seethink_data::Task;
use seethink_models::processing::Processor;
use seethink_reward::Reward;

use crate::config::TrainConfig;
use crate::data_parallel::Worker;
use crate::error::Result;
use crate::learner::PolicyLearner;
use crate::metrics::StepMetrics;
use crate::shared_sampler::SharedSampler;
use crate::train_backend::TrainBackend;

/// What a step draws on: the run's tasks, the sampler that picks them (shared by the
/// data-parallel workers), the processor that encodes them, the reward that grades them and the
/// run's config.
pub struct StepInputs<'a> {
    pub config: &'a TrainConfig,
    pub tasks: &'a [Task],
    pub sampler: &'a mut SharedSampler,
    pub processor: &'a Processor,
    pub reward: &'a dyn Reward,
}

/// A training algorithm: one step updates the learner on `trainer.prompts_per_step` tasks the
/// sampler draws, tells the sampler the results, and returns the step's metrics (the line of
/// `metrics.jsonl`, the progress line, TensorBoard's `train/<key>`).
pub trait Algorithm<B: TrainBackend> {
    /// Step `learner` once (its LR already set for the step).
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<StepMetrics>;

    /// The state a checkpoint keeps besides the learner's (GRPO: the rollouts done, its
    /// sampling seed's offset), so that a resumed run continues bitwise.
    fn state(&self) -> serde_json::Value;

    /// Restores a state [`state`](Self::state) gave; a message on a malformed one.
    fn restore(&mut self, state: &serde_json::Value) -> std::result::Result<(), String>;
}

/// Makes a run's algorithm: for each of its workers (`worker`: its place and collective, for
/// the exchanges of data parallelism), from the learner at the start of the run or phase
/// (e.g. for a frozen reference model). Closures of that shape are builders too.
pub trait AlgorithmBuilder<B: TrainBackend>: Sync {
    fn build(
        &self,
        config: &TrainConfig,
        learner: &PolicyLearner<B>,
        worker: Worker,
    ) -> Result<Box<dyn Algorithm<B>>>;
}

impl<B: TrainBackend, F> AlgorithmBuilder<B> for F
where
    F: Fn(&TrainConfig, &PolicyLearner<B>, Worker) -> Result<Box<dyn Algorithm<B>>> + Sync,
{
    fn build(
        &self,
        config: &TrainConfig,
        learner: &PolicyLearner<B>,
        worker: Worker,
    ) -> Result<Box<dyn Algorithm<B>>> {
        self(config, learner, worker)
    }
}

/// A counter kept as `{"<key>": n}` in a checkpoint: what [`Algorithm::state`] gives for one.
pub fn counter_state(key: &str, value: usize) -> serde_json::Value {
    serde_json::json!({ key: value })
}

/// The counter `key` of a state [`counter_state`] gave (or a bare number, as checkpoints kept
/// GRPO's rollouts before algorithms had states of their own).
pub fn restore_counter(state: &serde_json::Value, key: &str) -> std::result::Result<usize, String> {
    state
        .get(key)
        .unwrap_or(state)
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("algorithm state: `{key}` is not a count in {state}"))
}

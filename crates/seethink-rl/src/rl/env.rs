//! The task set as a burn-rl environment: a bandit whose episodes are one task answered once,
//! rewarded by the verifier. Tasks come in an endless sequence of seeded shuffled epochs.

use std::marker::PhantomData;
use std::sync::Arc;

use burn::rl::{Environment, EnvironmentInit, StepResult};
use burn::tensor::backend::Backend;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seethink_data::Task;
use seethink_reward::{Reward, RewardBreakdown};

use super::policy::{Batch, Response};

/// The task index at `position` of the endless sequence of epochs, epoch `e` being a
/// permutation of the `tasks` indices shuffled with seed `data_seed + e`.
pub fn task_at_position(tasks: usize, position: usize, data_seed: u64) -> usize {
    let epoch = position / tasks;
    let mut order: Vec<usize> = (0..tasks).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(data_seed + epoch as u64));
    order[position % tasks]
}

/// Creates [`TaskEnv`]s over a shared task set and verifier.
#[derive(Clone)]
pub struct TaskSource {
    pub tasks: Arc<Vec<Task>>,
    pub reward: Arc<dyn Reward>,
    pub data_seed: u64,
    /// The position of the first task served (after the first reset).
    pub start: usize,
}

impl<B: Backend> EnvironmentInit<TaskEnv<B>> for TaskSource {
    fn init(&self) -> TaskEnv<B> {
        TaskEnv { source: self.clone(), position: None, _responses: PhantomData }
    }
}

/// A cursor in the task sequence with the verifier that scores answers to the current task
/// (`B`: the backend of the responses' prompt tensors).
pub struct TaskEnv<B: Backend> {
    source: TaskSource,
    /// `None` until the first reset.
    position: Option<usize>,
    _responses: PhantomData<fn() -> B>,
}

impl<B: Backend> TaskEnv<B> {
    /// The current task (the first one before the first reset).
    pub fn task(&self) -> &Task {
        let tasks = &self.source.tasks;
        let position = self.position.unwrap_or(self.source.start);
        &tasks[task_at_position(tasks.len(), position, self.source.data_seed)]
    }

    /// The verifier's score of `response` as an answer to the current task.
    pub fn score(&self, response: &str) -> RewardBreakdown {
        self.source.reward.score(self.task(), response)
    }
}

impl<B: Backend> Environment for TaskEnv<B> {
    type State = Batch<Task>;
    type Action = Batch<Response<B>>;

    const MAX_STEPS: usize = 1;

    fn state(&self) -> Batch<Task> {
        Batch(vec![self.task().clone()])
    }

    /// Scores the action's responses to the current task; the reward is their mean overall
    /// score and the episode ends.
    fn step(&mut self, action: Self::Action) -> StepResult<Batch<Task>> {
        let count = action.0.len().max(1) as f64;
        let reward = action.0.iter().map(|r| self.score(&r.text).overall as f64).sum::<f64>() / count;
        StepResult { next_state: self.state(), reward, done: true, truncated: false }
    }

    /// The next task (the first reset goes to position `start`).
    fn reset(&mut self) {
        self.position = Some(self.position.map_or(self.source.start, |p| p + 1));
    }
}

//! The run's task sampler as each data-parallel worker sees it: the leader's, whose draws,
//! gates and end it shares with the others ([`crate::data_parallel::Worker`]'s exchanges).

use seethink_curriculum::{GroupResult, TaskSampler};
use serde_json::Value;

use crate::data_parallel::Worker;
use crate::error::{Result, TrainError};

/// The run's task sampler as a worker sees it: worker 0's, whose draws, gates and end it
/// shares with the others (each answer one exchange, [`Worker::from_leader`],
/// [`Worker::leader_says`]), so the sampler's state lives in one place and every worker trains
/// on the same tasks. Alone, the sampler itself.
pub struct SharedSampler {
    /// The sampler: `None` on every worker but the leader.
    sampler: Option<Box<dyn TaskSampler>>,
    worker: Worker,
}

impl SharedSampler {
    /// `sampler` (the leader's; `None` on the others) for `worker`.
    pub fn new(sampler: Option<Box<dyn TaskSampler>>, worker: Worker) -> Self {
        Self { sampler, worker }
    }

    /// Whether this is a worker that receives the leader's answers.
    fn follows(&self) -> bool {
        !self.worker.leads()
    }

    /// The leader's sampler: an error on a worker without one.
    fn leader(&mut self) -> Result<&mut Box<dyn TaskSampler>> {
        self.sampler
            .as_mut()
            .ok_or_else(|| TrainError::Distributed("the leading worker has no task sampler".into()))
    }

    /// Indices of the next step's `count` tasks ([`TaskSampler::next_batch`]).
    pub fn next_batch(&mut self, count: usize) -> Result<Vec<usize>> {
        let drawn = match self.follows() {
            true => Vec::new(),
            false => self.leader()?.next_batch(count),
        };
        Ok(self.worker.indices_from_leader(&drawn)?)
    }

    /// Indices of `count` tasks replacing rejected groups of this step ([`TaskSampler::refill`]).
    pub fn refill(&mut self, count: usize) -> Result<Vec<usize>> {
        let drawn = match self.follows() {
            true => Vec::new(),
            false => self.leader()?.refill(count),
        };
        Ok(self.worker.indices_from_leader(&drawn)?)
    }

    /// Whether `group` enters the update ([`TaskSampler::admit`]).
    pub fn admit(&mut self, group: &GroupResult) -> Result<bool> {
        let admitted = match self.follows() {
            true => false,
            false => self.leader()?.admit(group),
        };
        Ok(self.worker.leader_says(admitted)?)
    }

    /// Tells the sampler the results of the tasks drawn since the last call (the leader's).
    pub fn observe(&mut self, results: &[GroupResult]) {
        if let Some(sampler) = self.sampler.as_mut() {
            sampler.observe(results);
        }
    }

    /// Whether the phase ends now ([`TaskSampler::finished`]), the leader's answer.
    pub fn finished(&mut self) -> Result<bool> {
        let finished = self.sampler.as_ref().is_some_and(|s| s.finished());
        Ok(self.worker.leader_says(finished)?)
    }

    /// The sampler's state to checkpoint (null on a worker without the sampler).
    pub fn state(&self) -> Value {
        self.sampler.as_ref().map_or(Value::Null, |s| s.state())
    }

    /// Restores a saved state into the sampler (where there is one).
    pub fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        match self.sampler.as_mut() {
            Some(sampler) => sampler.restore(state),
            None => Ok(()),
        }
    }
}

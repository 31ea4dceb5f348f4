//! An admission gate: a group enters the update only when its accuracy lies strictly inside a
//! band. With the band (0, 1) it is DAPO's dynamic sampling (groups every sample of which is
//! right, or wrong, carry no GRPO signal and are replaced by fresh draws); a narrower band is
//! online difficulty filtering.

use seethink_data::Task;
use serde_json::Value;

use crate::curriculum::Curriculum;
use crate::error::{CurriculumError, Result};
use crate::phase::Phase;
use crate::sampler::{GroupResult, TaskSampler};

/// `inner`'s phases and draws; a group is admitted when `inner`'s sampler admits it and
/// `low < accuracy < high`, its accuracy being the mean over its samples.
pub struct AccuracyBand<C> {
    pub inner: C,
    pub low: f32,
    pub high: f32,
}

impl<C> AccuracyBand<C> {
    /// DAPO's dynamic sampling: groups neither all right nor all wrong, band (0, 1).
    pub fn dynamic_sampling(inner: C) -> Self {
        Self { inner, low: 0.0, high: 1.0 }
    }
}

impl<C: Curriculum> Curriculum for AccuracyBand<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        if !(self.low < self.high) {
            return Err(CurriculumError::Invalid {
                policy: "accuracy band".into(),
                message: format!("the band ({}, {}) admits nothing", self.low, self.high),
            });
        }
        self.inner.phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let inner = self.inner.sampler(phase, pool, seed)?;
        Ok(Box::new(Band { inner, low: self.low, high: self.high }))
    }
}

struct Band {
    inner: Box<dyn TaskSampler>,
    low: f32,
    high: f32,
}

impl TaskSampler for Band {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        self.inner.next_batch(count)
    }

    fn refill(&mut self, count: usize) -> Vec<usize> {
        self.inner.refill(count)
    }

    fn observe(&mut self, results: &[GroupResult]) {
        self.inner.observe(results)
    }

    fn state(&self) -> Value {
        self.inner.state()
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        self.inner.restore(state)
    }

    fn admit(&mut self, group: &GroupResult) -> bool {
        self.inner.admit(group) && self.low < group.accuracy && group.accuracy < self.high
    }

    fn finished(&self) -> bool {
        self.inner.finished()
    }

    fn describe(&self) -> Value {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curriculum::Merged;
    use seethink_data::Capability;

    fn result(task: usize, accuracy: f32) -> GroupResult {
        GroupResult {
            task,
            capability: Capability::Perception,
            level: None,
            rewards: vec![accuracy],
            reward: accuracy,
            accuracy,
            response_length: 4.0,
            mean_abs_advantage: 0.0,
        }
    }

    #[test]
    fn dynamic_sampling_admits_only_groups_with_signal() {
        let task = |i: usize| Task::text(format!("t{i}"), "?", "1", Capability::Perception);
        let pool: Vec<Task> = (0..4).map(task).collect();
        let gate = AccuracyBand::dynamic_sampling(Merged::new());
        let phases = gate.phases(&pool, 0).unwrap();
        let mut sampler = gate.sampler(&phases[0], &pool, 0).unwrap();
        let admitted: Vec<bool> =
            [0.0, 0.125, 0.875, 1.0].iter().enumerate().map(|(i, &a)| sampler.admit(&result(i, a))).collect();
        assert_eq!(admitted, [false, true, true, false]);
        let empty = AccuracyBand { inner: Merged::new(), low: 0.5, high: 0.5 };
        assert!(matches!(empty.phases(&pool, 0), Err(CurriculumError::Invalid { .. })));
    }
}

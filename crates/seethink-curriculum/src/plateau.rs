//! An adaptive stage length: a phase ends when its reward stops improving.

use std::collections::VecDeque;

use seethink_data::Task;
use serde_json::{json, Value};

use crate::curriculum::Curriculum;
use crate::error::Result;
use crate::phase::Phase;
use crate::sampler::{GroupResult, TaskSampler};

/// Runs `inner`'s phases, each ending early once its reward has plateaued: with `r̄_s` the mean
/// reward of the last `window` steps at step `s` and `best` the highest `r̄` so far, the phase
/// ends when `patience` steps in a row brought no `r̄_s > best + min_delta`. The phase's step
/// budget stays the upper bound.
pub struct Plateau<C> {
    pub inner: C,
    pub window: usize,
    pub patience: usize,
    pub min_delta: f32,
}

impl<C: Curriculum> Plateau<C> {
    /// `inner` with plateau detection over a `window`-step moving average.
    pub fn new(inner: C, window: usize, patience: usize, min_delta: f32) -> Self {
        Self { inner, window: window.max(1), patience: patience.max(1), min_delta }
    }
}

impl<C: Curriculum> Curriculum for Plateau<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        self.inner.phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        Ok(Box::new(PlateauSampler {
            inner: self.inner.sampler(phase, pool, seed)?,
            window: self.window,
            patience: self.patience,
            min_delta: self.min_delta,
            recent: VecDeque::new(),
            best: f32::NEG_INFINITY,
            stale: 0,
        }))
    }
}

/// The sampler of a [`Plateau`] phase: its inner sampler's tasks, plus the plateau test.
struct PlateauSampler {
    inner: Box<dyn TaskSampler>,
    window: usize,
    patience: usize,
    min_delta: f32,
    /// Mean rewards of the last `window` steps.
    recent: VecDeque<f32>,
    best: f32,
    /// Steps since `best` last improved.
    stale: usize,
}

impl TaskSampler for PlateauSampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        self.inner.next_batch(count)
    }

    fn refill(&mut self, count: usize) -> Vec<usize> {
        self.inner.refill(count)
    }

    /// Updates the moving average with the step's mean reward (a step without results, SFT,
    /// changes nothing).
    fn observe(&mut self, results: &[GroupResult]) {
        self.inner.observe(results);
        if results.is_empty() {
            return;
        }
        let mean = results.iter().map(|r| r.reward).sum::<f32>() / results.len() as f32;
        self.recent.push_back(mean);
        if self.recent.len() > self.window {
            self.recent.pop_front();
        }
        if self.recent.len() < self.window {
            return;
        }
        let average = self.recent.iter().sum::<f32>() / self.window as f32;
        if average > self.best + self.min_delta {
            self.best = average;
            self.stale = 0;
        } else {
            self.stale += 1;
        }
    }

    fn state(&self) -> Value {
        json!({ "inner": self.inner.state(), "recent": self.recent, "best": self.best, "stale": self.stale })
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        let field = |key: &str| state.get(key).ok_or(format!("plateau: `{key}` missing"));
        self.inner.restore(field("inner")?)?;
        self.recent =
            serde_json::from_value(field("recent")?.clone()).map_err(|e| format!("plateau: {e}"))?;
        // JSON has no -inf: a best not yet set is saved as null
        self.best = field("best")?.as_f64().map_or(f32::NEG_INFINITY, |b| b as f32);
        self.stale = field("stale")?.as_u64().ok_or("plateau: `stale` is not a count")? as usize;
        Ok(())
    }

    /// The inner sampler's gate.
    fn admit(&mut self, group: &GroupResult) -> bool {
        self.inner.admit(group)
    }

    fn finished(&self) -> bool {
        self.stale >= self.patience
    }

    fn describe(&self) -> Value {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Merged;

    fn step(reward: f32) -> Vec<GroupResult> {
        vec![GroupResult {
            task: 0,
            capability: seethink_data::Capability::Perception,
            level: None,
            rewards: vec![reward],
            reward,
            accuracy: reward,
            response_length: 1.0,
            mean_abs_advantage: 0.0,
        }]
    }

    fn phase() -> Phase {
        Phase {
            name: "p".into(),
            tasks: vec![0, 1],
            order: crate::Order::Listed,
            settings: Default::default(),
        }
    }

    #[test]
    fn ends_after_patience_steps_without_improvement_and_resumes_so() {
        let plateau = Plateau::new(Merged::new(), 2, 3, 0.01);
        let mut sampler = plateau.sampler(&phase(), &[], 0).unwrap();
        for reward in [0.1, 0.3, 0.5, 0.7, 0.7] {
            sampler.observe(&step(reward));
            assert!(!sampler.finished(), "still improving at {reward}");
        }
        sampler.observe(&step(0.7));
        let mut resumed = plateau.sampler(&phase(), &[], 0).unwrap();
        resumed.restore(&serde_json::from_str(&sampler.state().to_string()).unwrap()).unwrap();
        for s in [&mut sampler, &mut resumed] {
            s.observe(&step(0.69));
            assert!(!s.finished(), "two stale steps of three");
            s.observe(&step(0.7));
            assert!(s.finished(), "three stale steps");
        }
        assert!(plateau.sampler(&phase(), &[], 0).unwrap().restore(&json!({})).is_err());
    }

    #[test]
    fn a_fresh_state_roundtrips_through_json() {
        let plateau = Plateau::new(Merged::new(), 4, 2, 0.0);
        let sampler = plateau.sampler(&phase(), &[], 0).unwrap();
        let mut restored = plateau.sampler(&phase(), &[], 0).unwrap();
        restored.restore(&serde_json::from_str(&sampler.state().to_string()).unwrap()).unwrap();
        assert_eq!(restored.state(), sampler.state());
    }
}

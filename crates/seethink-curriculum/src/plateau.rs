//! An adaptive stage length: a phase ends when a watched metric (reward by default) stops
//! improving.

use std::collections::VecDeque;

use seethink_data::{Capability, Task};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::curriculum::Curriculum;
use crate::error::Result;
use crate::phase::Phase;
use crate::sampler::{GroupResult, TaskSampler};

/// What a plateau watches: one value per step, the mean over the step's groups (or over its
/// groups of one capability) of their reward or accuracy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Watched {
    /// The groups' mean reward (format and accuracy together).
    #[default]
    Reward,
    /// The groups' mean accuracy.
    Accuracy,
    /// The mean accuracy of the step's groups of this capability (a step without one does not
    /// count).
    CapabilityAccuracy(Capability),
}

impl Watched {
    /// Whether this is the default, [`Watched::Reward`] (left out of a written config).
    pub fn is_reward(&self) -> bool {
        *self == Watched::Reward
    }

    /// The step's value: the mean of the watched quantity over the groups it reads, `None`
    /// when it reads none.
    pub fn of(&self, results: &[GroupResult]) -> Option<f32> {
        let values: Vec<f32> = results
            .iter()
            .filter_map(|r| match self {
                Watched::Reward => Some(r.reward),
                Watched::Accuracy => Some(r.accuracy),
                Watched::CapabilityAccuracy(c) => (r.capability == *c).then_some(r.accuracy),
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f32>() / values.len() as f32)
    }
}

/// Runs `inner`'s phases, each ending early once its watched metric has plateaued: with `m̄_s`
/// the mean of the last `window` steps' values at step `s` and `best` the highest `m̄` so far,
/// the phase ends when `patience` steps in a row brought no `m̄_s > best + min_delta`. The
/// phase's step budget stays the upper bound.
pub struct Plateau<C> {
    pub inner: C,
    pub window: usize,
    pub patience: usize,
    pub min_delta: f32,
    /// What it watches ([`Watched::Reward`] unless [`Plateau::watching`] says otherwise).
    pub watched: Watched,
}

impl<C: Curriculum> Plateau<C> {
    /// `inner` with plateau detection of the reward over a `window`-step moving average.
    pub fn new(inner: C, window: usize, patience: usize, min_delta: f32) -> Self {
        Self { inner, window: window.max(1), patience: patience.max(1), min_delta, watched: Watched::Reward }
    }

    /// The same plateau, watching `watched` instead.
    pub fn watching(self, watched: Watched) -> Self {
        Self { watched, ..self }
    }
}

impl<C: Curriculum> Curriculum for Plateau<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        self.inner.phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let inner = self.inner.sampler(phase, pool, seed)?;
        Ok(Box::new(PlateauSampler::new(inner, self.window, self.patience, self.min_delta, self.watched)))
    }
}

/// `inner`'s draws, finished once the watched metric plateaus (see [`Plateau`]); its moving
/// window is checkpointed with `inner`'s state. A user's own curriculum wraps any sampler with
/// it.
pub struct PlateauSampler {
    inner: Box<dyn TaskSampler>,
    window: usize,
    patience: usize,
    min_delta: f32,
    watched: Watched,
    /// Values of the last `window` steps that had one.
    recent: VecDeque<f32>,
    best: f32,
    /// Steps since `best` last improved.
    stale: usize,
}

impl PlateauSampler {
    /// `inner` ended by a plateau of `watched` over a `window`-step moving average, after
    /// `patience` steps without an improvement above `min_delta`.
    pub fn new(
        inner: Box<dyn TaskSampler>,
        window: usize,
        patience: usize,
        min_delta: f32,
        watched: Watched,
    ) -> Self {
        Self {
            inner,
            window: window.max(1),
            patience: patience.max(1),
            min_delta,
            watched,
            recent: VecDeque::new(),
            best: f32::NEG_INFINITY,
            stale: 0,
        }
    }
}

impl TaskSampler for PlateauSampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        self.inner.next_batch(count)
    }

    fn refill(&mut self, count: usize) -> Vec<usize> {
        self.inner.refill(count)
    }

    /// Updates the moving average with the step's watched value (a step without one, such as
    /// an SFT step, changes nothing).
    fn observe(&mut self, results: &[GroupResult]) {
        self.inner.observe(results);
        let Some(mean) = self.watched.of(results) else { return };
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
    fn a_plateau_of_one_capability_accuracy_ignores_reward_and_other_capabilities() {
        let watched = Watched::CapabilityAccuracy(seethink_data::Capability::TextReasoning);
        let plateau = Plateau::new(Merged::new(), 1, 2, 0.0).watching(watched);
        let mut sampler = plateau.sampler(&phase(), &[], 0).unwrap();
        let group = |capability, reward: f32, accuracy: f32| GroupResult {
            capability,
            reward,
            accuracy,
            ..step(0.0).remove(0)
        };
        let (text, seeing) =
            (seethink_data::Capability::TextReasoning, seethink_data::Capability::Perception);
        // rising text accuracy under a falling reward, then steps without a text group
        for a in [0.1, 0.2, 0.3] {
            sampler.observe(&[group(text, 1.0 - a, a), group(seeing, 0.0, 0.0)]);
        }
        for _ in 0..5 {
            sampler.observe(&[group(seeing, 0.0, 0.0)]);
        }
        assert!(!sampler.finished(), "improving text accuracy; perception-only steps do not count");
        sampler.observe(&[group(text, 1.0, 0.3)]);
        assert!(!sampler.finished(), "one stale step of two");
        sampler.observe(&[group(text, 1.0, 0.25)]);
        assert!(sampler.finished(), "two stale steps");
        assert_eq!(Watched::Accuracy.of(&[group(text, 0.9, 0.5), group(seeing, 0.1, 0.0)]), Some(0.25));
        assert_eq!(watched.of(&[group(seeing, 0.1, 0.0)]), None);
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

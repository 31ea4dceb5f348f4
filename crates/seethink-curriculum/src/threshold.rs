//! A threshold gate: a phase ends once the policy answers its tasks well enough, the phase's
//! step budget staying the upper bound (e.g. train perception until it is good, then reason).

use std::collections::VecDeque;

use seethink_data::Task;
use serde_json::{json, Value};

use crate::curriculum::Curriculum;
use crate::error::{CurriculumError, Result};
use crate::phase::{phase_named, Phase};
use crate::sampler::{GroupResult, TaskSampler};

/// `inner`'s phases and draws; each phase named in `phases` (every phase when it is empty) ends
/// once the mean step accuracy over its last `window` steps reaches `threshold`:
/// `(1/window) · Σ_{s = t−window+1}^{t} ā_s ≥ threshold`, `ā_s` the mean accuracy of step `s`'s
/// groups (a step without results, SFT, does not count).
pub struct ThresholdGate<C> {
    pub inner: C,
    pub threshold: f32,
    /// Steps in the moving average (≥ 1).
    pub window: usize,
    /// The phases it ends, by name; empty: every phase.
    pub phases: Vec<String>,
}

impl<C: Curriculum> Curriculum for ThresholdGate<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        if self.window == 0 || !self.threshold.is_finite() {
            return Err(CurriculumError::Invalid {
                policy: "threshold gate".into(),
                message: format!(
                    "needs a window ≥ 1 and a finite threshold, got window {} and threshold {}",
                    self.window, self.threshold
                ),
            });
        }
        let phases = self.inner.phases(pool, seed)?;
        for name in &self.phases {
            phase_named(&phases, name, "the threshold gate")?;
        }
        Ok(phases)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let inner = self.inner.sampler(phase, pool, seed)?;
        Ok(match self.phases.is_empty() || self.phases.contains(&phase.name) {
            true => Box::new(ThresholdSampler::new(inner, self.threshold, self.window)),
            false => inner,
        })
    }
}

/// `inner`'s draws, finished once the mean step accuracy over the last `window` steps reaches
/// `threshold` (see [`ThresholdGate`]); its moving window is checkpointed with `inner`'s state.
pub struct ThresholdSampler {
    inner: Box<dyn TaskSampler>,
    threshold: f32,
    window: usize,
    /// Mean accuracy of each of the last `window` steps.
    recent: VecDeque<f32>,
}

impl ThresholdSampler {
    /// `inner` ended at `threshold` over `window` steps.
    pub fn new(inner: Box<dyn TaskSampler>, threshold: f32, window: usize) -> Self {
        Self { inner, threshold, window: window.max(1), recent: VecDeque::new() }
    }
}

impl TaskSampler for ThresholdSampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        self.inner.next_batch(count)
    }

    fn refill(&mut self, count: usize) -> Vec<usize> {
        self.inner.refill(count)
    }

    fn observe(&mut self, results: &[GroupResult]) {
        self.inner.observe(results);
        if !results.is_empty() {
            self.recent.push_back(results.iter().map(|r| r.accuracy).sum::<f32>() / results.len() as f32);
            if self.recent.len() > self.window {
                self.recent.pop_front();
            }
        }
    }

    fn state(&self) -> Value {
        json!({ "inner": self.inner.state(), "recent": self.recent })
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        self.recent = serde_json::from_value(state["recent"].clone())
            .map_err(|e| format!("threshold gate: recent: {e}"))?;
        self.inner.restore(&state["inner"])
    }

    fn admit(&mut self, group: &GroupResult) -> bool {
        self.inner.admit(group)
    }

    fn finished(&self) -> bool {
        self.inner.finished()
            || (self.recent.len() == self.window
                && self.recent.iter().sum::<f32>() / self.window as f32 >= self.threshold)
    }

    fn describe(&self) -> Value {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curriculum::Staged;
    use seethink_data::Capability;

    fn step(task: usize, accuracy: f32) -> Vec<GroupResult> {
        vec![GroupResult {
            task,
            capability: Capability::Perception,
            level: None,
            rewards: vec![accuracy],
            reward: accuracy,
            accuracy,
            response_length: 2.0,
            mean_abs_advantage: 0.0,
        }]
    }

    #[test]
    fn a_named_phase_ends_once_its_window_reaches_the_threshold_and_resumes_its_window() {
        let task = |i: usize, capability| Task::text(format!("t{i}"), "?", "1", capability);
        let (p, t) = (Capability::Perception, Capability::TextReasoning);
        let pool: Vec<Task> = (0..4).map(|i| task(i, if i < 2 { p } else { t })).collect();
        let gate = ThresholdGate {
            inner: Staged::new([p, t]),
            threshold: 0.5,
            window: 2,
            phases: vec!["perception".into()],
        };
        let phases = gate.phases(&pool, 0).unwrap();
        let mut perception = gate.sampler(&phases[0], &pool, 0).unwrap();
        perception.observe(&step(0, 0.0));
        perception.observe(&step(1, 0.75));
        assert!(!perception.finished(), "mean 0.375 < 0.5");
        let mut resumed = gate.sampler(&phases[0], &pool, 0).unwrap();
        resumed.restore(&perception.state()).unwrap();
        resumed.observe(&step(0, 0.5));
        assert!(resumed.finished(), "mean of the last two 0.625 ≥ 0.5");
        let mut text = gate.sampler(&phases[1], &pool, 0).unwrap();
        (0..3).for_each(|_| text.observe(&step(2, 1.0)));
        assert!(!text.finished(), "the gate ends only the phases it names");
        let unknown = ThresholdGate { phases: vec!["colour".into()], ..gate };
        let error = unknown.phases(&pool, 0).unwrap_err();
        assert!(matches!(error, CurriculumError::UnknownPhase { .. }));
        // a misspelled phase is named by what the user wrote, with the nearest phase
        let misspelled = ThresholdGate { phases: vec!["perceptoin".into()], ..unknown };
        let message = misspelled.phases(&pool, 0).unwrap_err().to_string();
        assert_eq!(
            message,
            "the threshold gate names phase `perceptoin`, which is not a phase of this curriculum \
             (its phases: perception, text_reasoning); did you mean `perception`?"
        );
        assert!(!error.to_string().contains("did you mean"), "`colour` is near no phase: {error}");
    }
}

//! Learnability, after LILO (Foster et al., arXiv 2502.12272): draw the tasks whose success rate
//! p is nearest the frontier, in proportion to `p(1 − p)` — the variance of a task's reward,
//! zero for tasks always or never solved.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seethink_data::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::curriculum::Curriculum;
use crate::error::Result;
use crate::phase::Phase;
use crate::sampler::{GroupResult, TaskSampler};

/// `inner`'s phases, each step's tasks drawn without replacement with weight `p_i (1 − p_i)`:
/// `p_i` is task i's accuracy the last time it was drawn, before that its pass rate (the task's
/// `pass_rate`), else ½. Draw d takes the `count` largest keys `ln(u_i) / w_i` with `u_i`
/// uniform from random stream d (Efraimidis–Spirakis); when every weight is 0, all weigh 1.
/// LILO estimates p with extra rollouts of a larger batch and keeps the most learnable; this
/// reuses the training rollouts instead, so a task's p is as old as its last draw.
pub struct Learnability<C> {
    pub inner: C,
}

impl<C: Curriculum> Curriculum for Learnability<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        self.inner.phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let prior = phase.tasks.iter().map(|&i| pool[i].pass_rate.unwrap_or(0.5) as f32).collect();
        Ok(Box::new(LearnabilitySampler { tasks: phase.tasks.clone(), prior, seed, state: State::default() }))
    }
}

/// What a [`LearnabilitySampler`] checkpoints.
#[derive(Default, Serialize, Deserialize)]
struct State {
    /// Each drawn task's last accuracy, by pool index.
    observed: BTreeMap<usize, f32>,
    draws: u64,
}

struct LearnabilitySampler {
    tasks: Vec<usize>,
    prior: Vec<f32>,
    seed: u64,
    state: State,
}

impl TaskSampler for LearnabilitySampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        let p = |(k, i): (usize, &usize)| self.state.observed.get(i).copied().unwrap_or(self.prior[k]);
        let mut weights: Vec<f64> =
            self.tasks.iter().enumerate().map(|t| f64::from(p(t) * (1.0 - p(t)))).collect();
        if weights.iter().all(|&w| w <= 0.0) {
            weights.fill(1.0);
        }
        let mut batch = Vec::with_capacity(count);
        while batch.len() < count && !self.tasks.is_empty() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(self.state.draws);
            self.state.draws += 1;
            let mut keyed: Vec<(f64, usize)> =
                weights.iter().zip(&self.tasks).map(|(w, &i)| (rng.random::<f64>().ln() / w, i)).collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            batch.extend(keyed.iter().take(count - batch.len()).map(|&(_, i)| i));
        }
        batch
    }

    fn observe(&mut self, results: &[GroupResult]) {
        self.state.observed.extend(results.iter().map(|r| (r.task, r.accuracy)));
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| format!("learnability: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curriculum::Merged;
    use seethink_data::Capability;

    fn pool(pass_rates: &[f64]) -> Vec<Task> {
        let task = |(i, &p): (usize, &f64)| Task {
            pass_rate: Some(p),
            ..Task::text(format!("t{i}"), "?", "1", Capability::TextReasoning)
        };
        pass_rates.iter().enumerate().map(task).collect()
    }

    #[test]
    fn solved_and_hopeless_tasks_are_not_drawn_while_learnable_ones_are() {
        let pool = pool(&[1.0, 0.5, 0.0, 0.3]);
        let curriculum = Learnability { inner: Merged::new() };
        let phases = curriculum.phases(&pool, 0).unwrap();
        let mut sampler = curriculum.sampler(&phases[0], &pool, 0).unwrap();
        let mut drawn = sampler.next_batch(2);
        drawn.sort();
        assert_eq!(drawn, [1, 3], "weights 0, 0.25, 0, 0.21");
        // task 1 turns out solved: only task 3 stays learnable
        sampler.observe(&[GroupResult {
            task: 1,
            capability: pool[1].capability,
            level: None,
            rewards: vec![1.0; 4],
            reward: 1.0,
            accuracy: 1.0,
            response_length: 3.0,
            mean_abs_advantage: 0.0,
        }]);
        assert_eq!(sampler.next_batch(1), [3]);
        // the state resumes the same draws
        let mut resumed = curriculum.sampler(&phases[0], &pool, 0).unwrap();
        resumed.restore(&sampler.state()).unwrap();
        assert_eq!(resumed.next_batch(3), sampler.next_batch(3));
        assert!(resumed.restore(&serde_json::json!({"observed": 3})).is_err());
    }
}

//! E2H, easy to hard (Parashar et al., arXiv 2506.06632): a phase's tasks drawn level by level
//! with weights that move from the easiest level to the hardest over the phase's steps — the
//! Gaussian schedule of E2H-Reasoning's `TaskSampler._gaussian_schedule` (`src/trainer.py`).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seethink_data::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::curriculum::Curriculum;
use crate::error::{CurriculumError, Result};
use crate::phase::Phase;
use crate::sampler::{GroupResult, TaskSampler};

/// `inner`'s phases, each drawn by E2H's Gaussian schedule over its tasks' levels (every task
/// needs a `level`). With the phase's K distinct levels in ascending order, i = 0 … K−1, step
/// t of `steps`:
///
/// `μ_t = (t / steps)^mu_exp · (K − 1)`, `q_i ∝ exp(−(i − μ_t)² / 2σ²)`,
/// `p_i = p_min + (1 − K·p_min) · q_i` with `p_min = 2 / (K(K + 1))`.
///
/// Each task of step t draws its level from `p`; a level cycles through one seeded
/// permutation of its tasks. E2H's defaults: `σ = 0.5`, `mu_exp = 0.5` ([`E2h::new`]).
pub struct E2h<C> {
    pub inner: C,
    /// `T`: the phase's step budget.
    pub steps: usize,
    pub sigma: f64,
    pub mu_exp: f64,
}

impl<C: Curriculum> E2h<C> {
    /// `inner` with E2H's default schedule over `steps` steps.
    pub fn new(inner: C, steps: usize) -> Self {
        Self { inner, steps, sigma: 0.5, mu_exp: 0.5 }
    }

    /// The level weights `p` of step `t` over `levels` levels.
    pub fn weights(&self, t: usize, levels: usize) -> Vec<f64> {
        let k = levels as f64;
        let mu = (t as f64 / self.steps.max(1) as f64).powf(self.mu_exp) * (k - 1.0);
        let q: Vec<f64> =
            (0..levels).map(|i| (-(i as f64 - mu).powi(2) / (2.0 * self.sigma.powi(2))).exp()).collect();
        let (total, p_min) = (q.iter().sum::<f64>(), 2.0 / (k * (k + 1.0)));
        q.iter().map(|q| p_min + (1.0 - k * p_min) * q / total).collect()
    }
}

impl<C: Curriculum> Curriculum for E2h<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        self.inner.phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let mut by_level = std::collections::BTreeMap::<u32, Vec<usize>>::new();
        for &i in &phase.tasks {
            let message = format!("task `{}` has no level", pool[i].id);
            let level = pool[i].level.ok_or(CurriculumError::Invalid { policy: "e2h".into(), message })?;
            by_level.entry(level).or_default().push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let levels: Vec<Vec<usize>> =
            by_level.into_values().map(|mut l| (l.shuffle(&mut rng), l).1).collect();
        let weights = (0..self.steps.max(1)).map(|t| self.weights(t, levels.len())).collect();
        let state = State { step: 0, draws: 0, next: vec![0; levels.len()] };
        Ok(Box::new(E2hSampler { levels, weights, seed, state }))
    }
}

/// What an [`E2hSampler`] checkpoints.
#[derive(Serialize, Deserialize)]
struct State {
    /// Steps observed: the schedule's `t`.
    step: usize,
    /// Draws so far: draw `d` uses random stream `d` of the seed.
    draws: u64,
    /// Each level's position in its cycle.
    next: Vec<usize>,
}

/// Each level's tasks in one seeded permutation, cycled (as E2H-Reasoning's sampler).
struct E2hSampler {
    levels: Vec<Vec<usize>>,
    /// `p` of each step (the last one's after the budget).
    weights: Vec<Vec<f64>>,
    seed: u64,
    state: State,
}

impl TaskSampler for E2hSampler {
    /// Each task's level by inverse-CDF sampling of the step's weights.
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        let weights = &self.weights[self.state.step.min(self.weights.len() - 1)];
        let mut batch = Vec::with_capacity(count);
        while batch.len() < count && !self.levels.is_empty() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(self.state.draws);
            self.state.draws += 1;
            let mut u: f64 = rng.random();
            let level = weights
                .iter()
                .position(|&w| {
                    u -= w;
                    u < 0.0
                })
                .unwrap_or(weights.len() - 1);
            let tasks = &self.levels[level];
            batch.push(tasks[self.state.next[level] % tasks.len()]);
            self.state.next[level] += 1;
        }
        batch
    }

    fn observe(&mut self, _results: &[GroupResult]) {
        self.state.step += 1;
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        let state: State = serde_json::from_value(state.clone()).map_err(|e| format!("e2h: {e}"))?;
        if state.next.len() != self.levels.len() {
            return Err(format!(
                "e2h: the state has {} levels, the phase {}",
                state.next.len(),
                self.levels.len()
            ));
        }
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curriculum::Merged;

    #[test]
    fn weights_are_e2h_gaussian_schedule() {
        // E2H-Reasoning's _gaussian_schedule(t, T=10, num_tasks=3, mu_exp=0.5, sigma=0.5,
        // min_prob=True) by hand: t = 0 → μ = 0, q ∝ (1, e^-2, e^-8); p_min = 1/6
        let e2h = E2h::new(Merged::new(), 10);
        let q = [1.0, (-2.0f64).exp(), (-8.0f64).exp()];
        let total: f64 = q.iter().sum();
        let expected: Vec<f64> = q.iter().map(|q| 1.0 / 6.0 + 0.5 * q / total).collect();
        for (w, e) in e2h.weights(0, 3).iter().zip(&expected) {
            assert!((w - e).abs() < 1e-12, "{w} vs {e}");
        }
        // t = 5: μ = sqrt(0.5) · 2; the weights sum to 1 and peak at the middle level
        let p = e2h.weights(5, 3);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p[1] > p[0] && p[1] > p[2], "{p:?}");
        // t = 9: μ ≈ 1.90, so p rises with the level (≈ 0.17, 0.25, 0.58)
        let late = e2h.weights(9, 3);
        assert!(late[2] > late[1] && late[1] > late[0] && late[2] > 0.55, "{late:?}");
    }
}

//! A learning-progress bandit over capability × level cells (the idea of SEC, "Self-Evolving
//! Curriculum", arXiv 2505.14970): draw more from the cells the policy is learning most from.

use std::collections::{BTreeMap, HashMap};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seethink_data::{Capability, Task};
use serde_json::{json, Value};

use crate::curriculum::Curriculum;
use crate::error::{CurriculumError, Result};
use crate::phase::{Phase, PhaseSettings};
use crate::sampler::{GroupResult, TaskSampler};

/// One phase over all tasks, drawn cell by cell: cell `c` (a capability × level pair) has value
/// `Q_c`, the moving average of the mean |advantage| of its recent groups,
/// `Q_c ← α · mean_{groups of c in the step} |A| + (1 − α) · Q_c` (0 at the start; a group whose
/// samples all score alike has advantage 0: nothing left to learn there). Each draw picks a
/// cell with probability `softmax(Q / τ)_c`, then the cell's next task (its tasks in a seeded
/// shuffled cycle).
pub struct LearningProgress {
    /// Softmax temperature `τ` (> 0).
    pub temperature: f32,
    /// Step size `α` of the moving average, in (0, 1].
    pub alpha: f32,
    pub settings: PhaseSettings,
}

impl Default for LearningProgress {
    /// SEC's defaults: `τ = 1`, `α = 0.5`.
    fn default() -> Self {
        Self { temperature: 1.0, alpha: 0.5, settings: PhaseSettings::default() }
    }
}

impl Curriculum for LearningProgress {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        let mut merged = crate::Merged::new().with(self.settings.clone()).phases(pool, seed)?;
        for phase in &mut merged {
            phase.name = "learning_progress".into();
        }
        Ok(merged)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let mut cells: BTreeMap<(Capability, Option<u32>), Vec<usize>> = BTreeMap::new();
        for &i in &phase.tasks {
            cells.entry((pool[i].capability, pool[i].level)).or_default().push(i);
        }
        let mut cell_of = HashMap::new();
        let cells: Vec<Vec<usize>> = cells
            .into_values()
            .enumerate()
            .map(|(c, mut tasks)| {
                tasks.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(c as u64)));
                cell_of.extend(tasks.iter().map(|&t| (t, c)));
                tasks
            })
            .collect();
        let n = cells.len();
        Ok(Box::new(ProgressSampler {
            temperature: self.temperature,
            alpha: self.alpha,
            seed,
            cells,
            cell_of,
            values: vec![0.0; n],
            next: vec![0; n],
            draws: 0,
        }))
    }
}

impl LearningProgress {
    /// Checks `τ > 0` and `α ∈ (0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature > 0.0 && self.alpha > 0.0 && self.alpha <= 1.0) {
            let message = format!(
                "needs temperature > 0 and alpha in (0, 1], got {} and {}",
                self.temperature, self.alpha
            );
            return Err(CurriculumError::Invalid { policy: "learning_progress".into(), message });
        }
        Ok(())
    }
}

/// The sampler of a [`LearningProgress`] phase.
struct ProgressSampler {
    temperature: f32,
    alpha: f32,
    seed: u64,
    /// Each cell's tasks, in its cycle order.
    cells: Vec<Vec<usize>>,
    cell_of: HashMap<usize, usize>,
    /// `Q_c`.
    values: Vec<f32>,
    /// Each cell's position in its cycle.
    next: Vec<usize>,
    /// Draws so far: draw `d` uses random stream `d` of `seed`.
    draws: u64,
}

impl ProgressSampler {
    /// The cell of draw `self.draws`: inverse-CDF sampling of `softmax(Q / τ)`.
    fn draw_cell(&self) -> usize {
        let top = self.values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> =
            self.values.iter().map(|&q| f64::from((q - top) / self.temperature).exp()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(self.draws);
        let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
        for (c, w) in weights.iter().enumerate() {
            if u < *w {
                return c;
            }
            u -= w;
        }
        weights.len() - 1
    }
}

impl TaskSampler for ProgressSampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        if self.cells.is_empty() {
            return Vec::new();
        }
        (0..count)
            .map(|_| {
                let c = self.draw_cell();
                self.draws += 1;
                let task = self.cells[c][self.next[c] % self.cells[c].len()];
                self.next[c] += 1;
                task
            })
            .collect()
    }

    fn observe(&mut self, results: &[GroupResult]) {
        let mut sums: BTreeMap<usize, (f32, usize)> = BTreeMap::new();
        for r in results {
            if let Some(&c) = self.cell_of.get(&r.task) {
                let entry = sums.entry(c).or_default();
                entry.0 += r.mean_abs_advantage;
                entry.1 += 1;
            }
        }
        for (c, (sum, groups)) in sums {
            self.values[c] = self.alpha * sum / groups as f32 + (1.0 - self.alpha) * self.values[c];
        }
    }

    fn state(&self) -> Value {
        json!({ "values": self.values, "next": self.next, "draws": self.draws })
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        let field = |key: &str| state.get(key).cloned().ok_or(format!("learning_progress: `{key}` missing"));
        let values: Vec<f32> = serde_json::from_value(field("values")?).map_err(|e| e.to_string())?;
        let next: Vec<usize> = serde_json::from_value(field("next")?).map_err(|e| e.to_string())?;
        if values.len() != self.cells.len() || next.len() != self.cells.len() {
            return Err(format!(
                "learning_progress: the state has {} cells, the phase {}",
                values.len(),
                self.cells.len()
            ));
        }
        self.values = values;
        self.next = next;
        self.draws = field("draws")?.as_u64().ok_or("learning_progress: `draws` is not a count")?;
        Ok(())
    }
}

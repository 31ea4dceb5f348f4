//! A perception gate: train perception until the policy answers it well, then reason.
//!
//! Phase 1 draws perception tasks in shuffled epochs and ends early once the mean accuracy of
//! the last `window` steps reaches `threshold` (the phase's step budget, `trainer.steps`, stays
//! the upper bound). Phase 2 draws text and visual reasoning tasks mixed. The gate's moving
//! window is checkpointed with the epochs' position, so a killed run resumes bitwise.

use std::collections::VecDeque;

use seethink::curriculum::{Curriculum, Epochs, Order, Phase, Result, Staged, TaskResult, TaskSampler};
use seethink::data::{Capability, Task};
use serde_json::{json, Value};

/// Perception until its rolling accuracy reaches `threshold`, then reasoning.
pub struct PerceptionGate {
    pub threshold: f32,
    /// Steps in the moving average.
    pub window: usize,
}

impl Curriculum for PerceptionGate {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        let mut phases = Staged::new([Capability::Perception]).phases(pool, seed)?;
        let reasoning = (0..pool.len()).filter(|&i| pool[i].capability != Capability::Perception);
        let tasks = reasoning.collect();
        phases.push(Phase {
            name: "reasoning".into(),
            tasks,
            order: Order::Shuffled,
            settings: Default::default(),
        });
        Ok(phases)
    }

    fn sampler(&self, phase: &Phase, _pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let epochs = Epochs::shuffled(phase.tasks.clone(), seed);
        Ok(match phase.name.as_str() {
            "perception" => Box::new(Gate {
                epochs,
                threshold: self.threshold,
                window: self.window,
                recent: VecDeque::new(),
            }),
            _ => Box::new(epochs),
        })
    }
}

/// Epochs that end once the mean step accuracy over the last `window` steps reaches `threshold`.
struct Gate {
    epochs: Epochs,
    threshold: f32,
    window: usize,
    /// Mean accuracy of each of the last `window` steps.
    recent: VecDeque<f32>,
}

impl TaskSampler for Gate {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        self.epochs.next_batch(count)
    }

    fn observe(&mut self, results: &[TaskResult]) {
        self.epochs.observe(results);
        if !results.is_empty() {
            self.recent.push_back(results.iter().map(|r| r.accuracy).sum::<f32>() / results.len() as f32);
            if self.recent.len() > self.window {
                self.recent.pop_front();
            }
        }
    }

    fn state(&self) -> Value {
        json!({ "epochs": self.epochs.state(), "recent": self.recent })
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        self.recent = serde_json::from_value(state["recent"].clone()).map_err(|e| format!("recent: {e}"))?;
        self.epochs.restore(&state["epochs"])
    }

    fn finished(&self) -> bool {
        self.recent.len() == self.window
            && self.recent.iter().sum::<f32>() / self.window as f32 >= self.threshold
    }
}

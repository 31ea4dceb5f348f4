//! A perception gate: train perception until the policy answers it well, then reason.
//!
//! Phase 1 draws perception tasks in shuffled epochs and ends early once the mean accuracy of
//! the last `window` steps reaches `threshold` (the library's [`ThresholdSampler`]; the phase's
//! step budget stays the upper bound). Phase 2 draws text and visual reasoning tasks mixed, for
//! `reasoning_steps` steps. The gate's moving window is checkpointed with the epochs' position,
//! so a killed run resumes bitwise.

use seethink::curriculum::{default_sampler, Curriculum, Order, Phase, PhaseSettings, Result, Staged};
use seethink::curriculum::{TaskSampler, ThresholdSampler};
use seethink::data::{Capability, Task};

/// Perception until its rolling accuracy reaches `threshold`, then reasoning.
pub struct PerceptionGate {
    pub threshold: f32,
    /// Steps in the moving average.
    pub window: usize,
    /// Steps of the reasoning phase.
    pub reasoning_steps: usize,
}

impl Curriculum for PerceptionGate {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        let mut phases = Staged::new([Capability::Perception]).phases(pool, seed)?;
        let reasoning = (0..pool.len()).filter(|&i| pool[i].capability != Capability::Perception);
        phases.push(Phase {
            name: "reasoning".into(),
            tasks: reasoning.collect(),
            order: Order::Shuffled,
            settings: PhaseSettings { steps: Some(self.reasoning_steps), ..Default::default() },
        });
        Ok(phases)
    }

    fn sampler(&self, phase: &Phase, _pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let epochs = default_sampler(phase, seed);
        Ok(match phase.name.as_str() {
            "perception" => Box::new(ThresholdSampler::new(epochs, self.threshold, self.window)),
            _ => epochs,
        })
    }
}

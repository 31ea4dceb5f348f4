//! A perception gate: train perception until the policy answers it well, then reason.
//!
//! Phase 1 draws perception tasks in shuffled epochs and ends early once the mean accuracy of
//! the last `window` steps reaches `threshold` (the library's [`ThresholdSampler`]; the phase's
//! step budget stays the upper bound). Phase 2 draws text and visual reasoning tasks
//! interleaved half and half (the library's [`MixtureSampler`]), for `reasoning_steps` steps.
//! Both samplers checkpoint their position, so a killed run resumes bitwise.

use seethink::curriculum::{
    default_sampler, phase_named, Curriculum, MixtureSampler, Order, Phase, PhaseSettings,
};
use seethink::curriculum::{Result, Staged, TaskSampler, ThresholdSampler};
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

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        // the phase's position among this policy's own: a name it does not have fails, with
        // the nearest one suggested, rather than drawing with the wrong sampler
        let (position, _) = phase_named(&self.phases(pool, seed)?, &phase.name, "PerceptionGate's sampler")?;
        Ok(match position {
            0 => Box::new(ThresholdSampler::new(default_sampler(phase, seed), self.threshold, self.window)),
            _ => {
                let halves = [(Capability::TextReasoning, 1.0), (Capability::VisualReasoning, 1.0)];
                Box::new(MixtureSampler::new(pool, &phase.tasks, &halves, seed))
            }
        })
    }
}

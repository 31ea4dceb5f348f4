//! A mixture of capabilities with shares: one phase of their tasks, each step's prompts dealt
//! to the capabilities in proportion to their shares, interleaved.

use seethink_data::{Capability, Task};
use serde_json::{json, Value};

use crate::curriculum::Curriculum;
use crate::error::{CurriculumError, Result};
use crate::phase::{Order, Phase};
use crate::sampler::{Epochs, GroupResult, TaskSampler};

/// One phase, `mixture`, of the tasks of the listed capabilities, drawn by a [`MixtureSampler`]
/// with these shares (normalised to sum to 1). E.g. `Mixture::new([(Perception, 2.0),
/// (VisualReasoning, 1.0)])`: two perception prompts for each visual-reasoning one.
pub struct Mixture {
    pub shares: Vec<(Capability, f64)>,
}

impl Mixture {
    /// The mixture of `shares` (capability, positive weight).
    pub fn new(shares: impl Into<Vec<(Capability, f64)>>) -> Self {
        Self { shares: shares.into() }
    }
}

impl Curriculum for Mixture {
    fn phases(&self, pool: &[Task], _seed: u64) -> Result<Vec<Phase>> {
        let invalid = |message: String| CurriculumError::Invalid { policy: "mixture".into(), message };
        if self.shares.is_empty() {
            return Err(invalid("needs at least one capability with a share".into()));
        }
        for (k, (capability, share)) in self.shares.iter().enumerate() {
            if !(share.is_finite() && *share > 0.0) {
                return Err(invalid(format!(
                    "the share of {capability} is {share}; shares must be positive"
                )));
            }
            if self.shares[..k].iter().any(|(c, _)| c == capability) {
                return Err(invalid(format!("{capability} is listed twice")));
            }
            if !pool.iter().any(|t| t.capability == *capability) {
                return Err(CurriculumError::EmptyPhase { phase: format!("mixture ({capability})") });
            }
        }
        let tasks = (0..pool.len()).filter(|&i| self.shares.iter().any(|(c, _)| *c == pool[i].capability));
        Ok(vec![Phase {
            name: "mixture".into(),
            tasks: tasks.collect(),
            order: Order::Shuffled,
            settings: Default::default(),
        }])
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        Ok(Box::new(MixtureSampler::new(pool, &phase.tasks, &self.shares, seed)))
    }
}

/// Draws from one shuffled-epoch sampler per capability, dealing each slot of the run to the
/// capability furthest behind its share: with `w_c` the normalised shares and `n_c` the slots
/// dealt to `c` so far (`n` in all), slot `n + 1` goes to `argmax_c (w_c · (n + 1) − n_c)`, the
/// first listed on ties. Every capability's count then stays within one slot of `w_c · n`
/// over the whole run, across steps, and a step interleaves the capabilities. Its position is
/// checkpointed with its samplers'. Any phase of a user's curriculum may draw with it.
pub struct MixtureSampler {
    /// Per capability with tasks in the phase: its normalised share, its epochs, slots dealt.
    parts: Vec<(f64, Epochs, u64)>,
}

impl MixtureSampler {
    /// The sampler of `tasks` (indices into `pool`) with `shares`; capabilities without a task
    /// among `tasks`, or without a positive share, take no slot.
    pub fn new(pool: &[Task], tasks: &[usize], shares: &[(Capability, f64)], seed: u64) -> Self {
        let shares: Vec<(Vec<usize>, f64)> = shares
            .iter()
            .map(|(capability, share)| {
                (tasks.iter().copied().filter(|&t| pool[t].capability == *capability).collect(), *share)
            })
            .filter(|(own, share): &(Vec<usize>, f64)| !own.is_empty() && *share > 0.0)
            .collect();
        let total: f64 = shares.iter().map(|(_, share)| share).sum();
        let parts = shares
            .into_iter()
            .enumerate()
            .map(|(k, (own, share))| (share / total, Epochs::shuffled(own, seed.wrapping_add(k as u64)), 0))
            .collect();
        Self { parts }
    }

    /// The capability part the next slot goes to (see the type's doc).
    fn next_part(&self) -> usize {
        let dealt: u64 = self.parts.iter().map(|(_, _, n)| n).sum();
        let behind = |(share, _, n): &(f64, Epochs, u64)| share * (dealt + 1) as f64 - *n as f64;
        (0..self.parts.len()).fold(0, |best, k| match behind(&self.parts[k]) > behind(&self.parts[best]) {
            true => k,
            false => best,
        })
    }
}

impl TaskSampler for MixtureSampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        if self.parts.is_empty() {
            return Vec::new();
        }
        (0..count)
            .map(|_| {
                let k = self.next_part();
                let (_, epochs, dealt) = &mut self.parts[k];
                *dealt += 1;
                epochs.next_batch(1)[0]
            })
            .collect()
    }

    fn observe(&mut self, _results: &[GroupResult]) {}

    fn state(&self) -> Value {
        json!(self
            .parts
            .iter()
            .map(|(_, epochs, dealt)| json!({ "epochs": epochs.state(), "dealt": dealt }))
            .collect::<Vec<_>>())
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        let parts = state.as_array().ok_or("mixture: the state is not a list")?;
        if parts.len() != self.parts.len() {
            return Err(format!(
                "mixture: the state has {} capabilities, this sampler {}",
                parts.len(),
                self.parts.len()
            ));
        }
        for ((_, epochs, dealt), saved) in self.parts.iter_mut().zip(parts) {
            epochs.restore(&saved["epochs"])?;
            *dealt = saved["dealt"].as_u64().ok_or("mixture: `dealt` is not a count")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seethink_data::Capability::{Perception, TextReasoning, VisualReasoning};

    fn pool() -> Vec<Task> {
        let capabilities = [Perception, TextReasoning, VisualReasoning];
        (0..30).map(|i| Task::text(&format!("t{i}"), "?", "1", capabilities[i % 3])).collect()
    }

    #[test]
    fn each_capability_stays_within_one_slot_of_its_share_across_steps() {
        let pool = pool();
        let mixture = Mixture::new([(Perception, 5.0), (TextReasoning, 3.0), (VisualReasoning, 2.0)]);
        let phases = mixture.phases(&pool, 0).unwrap();
        assert_eq!(phases.len(), 1);
        let mut sampler = mixture.sampler(&phases[0], &pool, 0).unwrap();
        let mut counts = [0.0f64; 3];
        let mut n = 0.0;
        for step in 0..100 {
            for task in sampler.next_batch(7) {
                counts[task % 3] += 1.0;
                n += 1.0;
            }
            for (count, share) in counts.iter().zip([0.5, 0.3, 0.2]) {
                assert!((count - share * n).abs() < 1.0, "step {step}: {counts:?} of {n}");
            }
        }
    }

    #[test]
    fn a_restored_mixture_continues_the_same_draws() {
        let pool = pool();
        let mixture = Mixture::new([(Perception, 1.0), (VisualReasoning, 2.0)]);
        let phase = &mixture.phases(&pool, 3).unwrap()[0];
        assert!(phase.tasks.iter().all(|&t| pool[t].capability != TextReasoning));
        let mut sampler = mixture.sampler(phase, &pool, 3).unwrap();
        sampler.next_batch(5);
        let mut resumed = mixture.sampler(phase, &pool, 3).unwrap();
        resumed.restore(&serde_json::from_str(&sampler.state().to_string()).unwrap()).unwrap();
        assert_eq!(resumed.next_batch(9), sampler.next_batch(9));
        assert!(resumed.restore(&json!([])).is_err());
    }

    #[test]
    fn bad_shares_and_missing_capabilities_are_refused_by_name() {
        let pool: Vec<Task> = pool().into_iter().filter(|t| t.capability != TextReasoning).collect();
        let refused =
            |shares: Vec<(Capability, f64)>| Mixture::new(shares).phases(&pool, 0).unwrap_err().to_string();
        assert!(refused(vec![]).contains("at least one capability"));
        assert!(refused(vec![(Perception, 0.0)]).contains("shares must be positive"));
        assert!(refused(vec![(Perception, 1.0), (Perception, 2.0)]).contains("listed twice"));
        assert!(refused(vec![(Perception, 1.0), (TextReasoning, 1.0)]).contains("mixture (text_reasoning)"));
    }
}

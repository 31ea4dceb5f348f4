//! Replay: each phase also draws a fixed share of its tasks from the phases before it, so that
//! a later stage keeps rehearsing what the earlier ones taught (the rehearsal of continual
//! learning; VCRL's replay memory keeps high-variance prompts instead).

use seethink_data::Task;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::curriculum::Curriculum;
use crate::error::Result;
use crate::phase::{phase_named, Phase};
use crate::sampler::{Epochs, GroupResult, TaskSampler};

/// `inner`'s phases; phase k's steps draw `share` of their tasks from phases 1 … k−1 together
/// (shuffled epochs over their tasks) and the rest from phase k's own sampler. Draws of `count`
/// tasks take `r = ⌊owed + share·count⌋` replays, carrying `owed ← owed + share·count − r`, so
/// the replayed share over a phase is `share` exactly up to one task. The first phase has
/// nothing to replay and draws all its tasks from its own sampler, so every draw is full. The
/// own sampler observes only its own tasks' results; refills (replacing rejected groups, which
/// are never replays: replays are always admitted) come from the own sampler.
pub struct Replay<C> {
    pub inner: C,
    pub share: f64,
}

impl<C: Curriculum> Curriculum for Replay<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        self.inner.phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        let phases = self.inner.phases(pool, seed)?;
        let (k, _) = phase_named(&phases, &phase.name, "the phase given to the replay's sampler")?;
        let earlier: Vec<usize> = phases[..k].iter().flat_map(|p| p.tasks.iter().copied()).collect();
        let own = self.inner.sampler(phase, pool, seed)?;
        // nothing to replay: no share to take
        let share = if earlier.is_empty() { 0.0 } else { self.share };
        let replayed_tasks = earlier.len();
        let replays = Epochs::shuffled(earlier, seed.wrapping_add(k as u64));
        Ok(Box::new(ReplaySampler { own, replays, replayed_tasks, share, state: State::default(), asked: 0 }))
    }
}

/// What a [`ReplaySampler`] checkpoints besides its two samplers.
#[derive(Default, Serialize, Deserialize)]
struct State {
    owed: f64,
    /// Whether each task drawn since the last results is a replay.
    replayed: Vec<bool>,
}

struct ReplaySampler {
    own: Box<dyn TaskSampler>,
    replays: Epochs,
    /// How many tasks `replays` goes over.
    replayed_tasks: usize,
    share: f64,
    state: State,
    /// Groups of this step asked about in [`TaskSampler::admit`] so far (draw order).
    asked: usize,
}

impl TaskSampler for ReplaySampler {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        let owed = self.state.owed + self.share * count as f64;
        let r = (owed.floor() as usize).min(count);
        self.state.owed = owed - r as f64;
        let (own, replays) = (self.own.next_batch(count - r), self.replays.next_batch(r));
        self.state.replayed.extend(own.iter().map(|_| false).chain(replays.iter().map(|_| true)));
        own.into_iter().chain(replays).collect()
    }

    fn refill(&mut self, count: usize) -> Vec<usize> {
        let own = self.own.refill(count);
        self.state.replayed.extend(own.iter().map(|_| false));
        own
    }

    fn observe(&mut self, results: &[GroupResult]) {
        let own: Vec<GroupResult> =
            results.iter().zip(&self.state.replayed).filter(|(_, &r)| !r).map(|(t, _)| t.clone()).collect();
        self.state.replayed.clear();
        self.asked = 0;
        self.own.observe(&own);
    }

    fn state(&self) -> Value {
        let state = serde_json::to_value(&self.state).unwrap_or_default();
        serde_json::json!({ "own": self.own.state(), "replays": self.replays.state(), "replay": state })
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        self.state = serde_json::from_value(state["replay"].clone()).map_err(|e| format!("replay: {e}"))?;
        self.replays.restore(&state["replays"])?;
        self.own.restore(&state["own"])
    }

    /// Replayed groups are admitted; the own sampler's gate judges its own.
    fn admit(&mut self, group: &GroupResult) -> bool {
        let replayed = self.state.replayed.get(self.asked).copied().unwrap_or(false);
        self.asked += 1;
        replayed || self.own.admit(group)
    }

    fn finished(&self) -> bool {
        self.own.finished()
    }

    /// `{"replay_share": share, "replayed_tasks": tasks of the earlier phases, "own": …}`.
    fn describe(&self) -> Value {
        serde_json::json!({
            "replay_share": self.share,
            "replayed_tasks": self.replayed_tasks,
            "own": self.own.describe(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curriculum::Staged;
    use seethink_data::Capability;

    #[test]
    fn later_phases_replay_their_share_of_earlier_tasks() {
        let task = |i: usize, capability| Task::text(format!("t{i}"), "?", "1", capability);
        let (p, t) = (Capability::Perception, Capability::TextReasoning);
        let pool: Vec<Task> = (0..10).map(|i| task(i, if i < 5 { p } else { t })).collect();
        let curriculum = Replay { inner: Staged::new([p, t]), share: 0.25 };
        let phases = curriculum.phases(&pool, 0).unwrap();
        let mut first = curriculum.sampler(&phases[0], &pool, 0).unwrap();
        for _ in 0..4 {
            let drawn = first.next_batch(4);
            assert_eq!(drawn.len(), 4, "phase 1 draws full batches: {drawn:?}");
            assert!(drawn.iter().all(|&i| i < 5), "phase 1 has nothing to replay");
        }
        let mut second = curriculum.sampler(&phases[1], &pool, 0).unwrap();
        let batches: Vec<Vec<usize>> = (0..4).map(|_| second.next_batch(2)).collect();
        assert!(batches.iter().all(|b| b.len() == 2), "every batch full: {batches:?}");
        let drawn = batches.concat();
        assert_eq!(drawn.iter().filter(|&&i| i < 5).count(), 2, "a quarter of 8 draws: {drawn:?}");
        let refill = second.refill(3);
        assert_eq!(refill.len(), 3);
        assert!(refill.iter().all(|&i| i >= 5), "refills come from the phase's own tasks: {refill:?}");
        let mut resumed = curriculum.sampler(&phases[1], &pool, 0).unwrap();
        resumed.restore(&second.state()).unwrap();
        assert_eq!(resumed.next_batch(6), second.next_batch(6));
    }
}

//! The task sampler: the one place that decides which tasks a training step uses.
//!
//! A sampler is asked for the next step's tasks, is told that step's results, and keeps its
//! state in every checkpoint (as JSON), so a resumed run draws the same tasks. A
//! [`Curriculum`](crate::Curriculum) gives each of its phases a sampler; the default is
//! [`Epochs`] over the phase's tasks.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seethink_data::Capability;
use serde_json::Value;

/// What one drawn task's group gave in a step: its samples' rewards (GRPO: the group's `n`
/// samples; SFT tells the sampler nothing) and their means.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupResult {
    /// Index of the task in the run's task list.
    pub task: usize,
    /// The task's capability.
    pub capability: Capability,
    /// The task's difficulty level, if it has one.
    pub level: Option<u32>,
    /// Each sample's overall reward, in sample order.
    pub rewards: Vec<f32>,
    /// Mean reward over the samples.
    pub reward: f32,
    /// Mean accuracy over the samples.
    pub accuracy: f32,
    /// Mean response length in tokens.
    pub response_length: f32,
    /// Mean |advantage| of the group.
    pub mean_abs_advantage: f32,
}

impl GroupResult {
    /// Whether every sample got the same reward: a group that carries no signal for a
    /// group-relative estimator (GRPO's advantages are all 0), whatever the estimator.
    pub fn rewards_all_equal(&self) -> bool {
        self.rewards.windows(2).all(|pair| pair[0] == pair[1])
    }
}

/// Chooses the tasks of each step from live results; its state is checkpointed.
///
/// Costs O(batch) per step (amortised): a sampler never rescans the whole task list per task.
pub trait TaskSampler: Send {
    /// Indices (into the run's task list) of the next step's `count` tasks.
    fn next_batch(&mut self, count: usize) -> Vec<usize>;

    /// Indices of `count` tasks that replace groups rejected in this step (by the trainer's
    /// online filter or by [`admit`](Self::admit)), asked for after [`next_batch`](Self::next_batch)
    /// with just the number still missing, as often as the step needs (up to
    /// `algorithm.max_try_make_batch` draws in all). Default: the next `count` of
    /// [`next_batch`](Self::next_batch)'s sequence, so a refill moves an order (easy → hard) on
    /// by the tasks it takes, no more.
    fn refill(&mut self, count: usize) -> Vec<usize> {
        self.next_batch(count)
    }

    /// The results of the tasks drawn since the last call, in draw order (a GRPO step with
    /// online filtering may draw several batches).
    fn observe(&mut self, results: &[GroupResult]);

    /// The state to checkpoint.
    fn state(&self) -> Value;

    /// Restores a state saved by [`state`](Self::state); a message on a malformed state.
    fn restore(&mut self, state: &Value) -> Result<(), String>;

    /// Whether `group`, just rolled out (and kept by the trainer's own online filter, when
    /// that is on), enters the update: an admission gate such as DAPO's dynamic sampling
    /// ([`AccuracyBand`](crate::AccuracyBand)). A rejected group is replaced through
    /// [`refill`](Self::refill), as online filtering does; asked once per group in draw order,
    /// before [`observe`](Self::observe) sees every drawn group (refills included).
    /// Default: admit all.
    fn admit(&mut self, _group: &GroupResult) -> bool {
        true
    }

    /// Whether the phase should end now, before its step budget (an adaptive policy's call,
    /// e.g. [`Plateau`](crate::Plateau)); asked after every step.
    fn finished(&self) -> bool {
        false
    }

    /// What a run's `plan.json` records of how this sampler draws beyond the phase's own task
    /// list (e.g. [`Replay`](crate::Replay)'s share); `null`: nothing beyond it. A sampler that
    /// wraps another passes the inner one's on.
    fn describe(&self) -> Value {
        Value::Null
    }
}

/// Epochs over a list of tasks, endlessly: shuffled (epoch `e` a permutation of the list with
/// seed `seed + e`) or in list order; step `s` of `P` tasks takes positions `s·P … s·P + P − 1`.
/// Results do not change the order.
pub struct Epochs {
    /// Task indices, in list order.
    tasks: Vec<usize>,
    /// `None`: file order.
    seed: Option<u64>,
    /// Position of the next task in the endless sequence.
    position: usize,
    /// The current epoch's permutation (computed once per epoch).
    order: Option<(usize, Vec<usize>)>,
}

impl Epochs {
    /// Epochs over `tasks` (task indices) shuffled from `seed`, starting at the first position.
    pub fn shuffled(tasks: Vec<usize>, seed: u64) -> Self {
        Self { tasks, seed: Some(seed), position: 0, order: None }
    }

    /// Epochs over `tasks` (task indices) in their order, starting at the first.
    pub fn in_order(tasks: Vec<usize>) -> Self {
        Self { tasks, seed: None, position: 0, order: None }
    }

    /// The task at `position` of the endless sequence.
    fn task_at(&mut self, position: usize) -> usize {
        let epoch = position / self.tasks.len();
        if self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order = self.tasks.clone();
            if let Some(seed) = self.seed {
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(epoch as u64)));
            }
            self.order = Some((epoch, order));
        }
        self.order.as_ref().map_or(0, |(_, order)| order[position % order.len()])
    }
}

impl TaskSampler for Epochs {
    fn next_batch(&mut self, count: usize) -> Vec<usize> {
        if self.tasks.is_empty() {
            return Vec::new();
        }
        let batch = (self.position..self.position + count).map(|p| self.task_at(p)).collect();
        self.position += count;
        batch
    }

    fn observe(&mut self, _results: &[GroupResult]) {}

    fn state(&self) -> Value {
        serde_json::json!({ "position": self.position })
    }

    fn restore(&mut self, state: &Value) -> Result<(), String> {
        let position = state["position"].as_u64().ok_or("epochs: `position` missing")?;
        self.position = position as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_cover_every_task_once_and_are_reproducible() {
        let mut sampler = Epochs::shuffled((0..6).collect(), 9);
        let epoch: Vec<usize> = (0..3).flat_map(|_| sampler.next_batch(2)).collect();
        let mut sorted = epoch.clone();
        sorted.sort();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        let next_epoch = sampler.next_batch(6);
        assert_ne!(next_epoch, epoch, "each epoch has its own order");
        assert_eq!(Epochs::shuffled((0..6).collect(), 9).next_batch(6), epoch);
        assert_eq!(Epochs::in_order(vec![7, 2, 5]).next_batch(5), [7, 2, 5, 7, 2]);
    }

    #[test]
    fn restored_state_continues_the_sequence() {
        let mut a = Epochs::shuffled((0..5).collect(), 1);
        a.next_batch(7);
        let mut b = Epochs::shuffled((0..5).collect(), 1);
        b.restore(&a.state()).unwrap();
        assert_eq!(a.next_batch(4), b.next_batch(4));
        assert!(b.restore(&serde_json::json!({})).is_err());
    }
}

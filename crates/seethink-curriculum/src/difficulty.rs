//! The difficulty axis: how a phase's tasks are filtered and ordered by their pass rate (the
//! share of K sampled answers of the starting model that were correct, [`Task::pass_rate`];
//! written by `seethink passrate`). Easy = high pass rate.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seethink_data::Task;

use crate::error::{CurriculumError, Result};
use crate::phase::Order;

/// A phase's tasks after the difficulty axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arranged {
    /// Indices into the pool.
    pub tasks: Vec<usize>,
    pub order: Order,
}

/// Filters and orders the tasks of a phase. Tuples apply their members left to right:
/// `(DropSolved, EasyToHard)` drops the solved tasks, then sorts the rest.
pub trait Difficulty: Send + Sync {
    /// `arranged` (indices into `pool`) filtered or reordered; `seed` breaks ties.
    fn arrange(&self, arranged: Arranged, pool: &[Task], seed: u64) -> Result<Arranged>;
}

/// Tasks as they are (drawn in shuffled epochs).
#[derive(Clone, Copy, Debug, Default)]
pub struct AsIs;

/// Easy → hard: descending pass rate, ties in a shuffled order (seeded), drawn in that order
/// (the paper's difficulty curriculum).
#[derive(Clone, Copy, Debug, Default)]
pub struct EasyToHard;

/// Drops the tasks the starting model always solves (pass rate 1).
#[derive(Clone, Copy, Debug, Default)]
pub struct DropSolved;

/// Keeps the tasks whose pass rate is in `[low, high]`.
#[derive(Clone, Copy, Debug)]
pub struct PassRateBand {
    pub low: f64,
    pub high: f64,
}

/// The pass rate of task `index`, or an error naming the task.
fn pass_rate(pool: &[Task], index: usize) -> Result<f64> {
    pool[index].pass_rate.ok_or_else(|| CurriculumError::MissingPassRate { task: pool[index].id.clone() })
}

impl Difficulty for AsIs {
    fn arrange(&self, arranged: Arranged, _pool: &[Task], _seed: u64) -> Result<Arranged> {
        Ok(arranged)
    }
}

impl Difficulty for EasyToHard {
    /// Shuffles with `seed`, then stable-sorts by pass rate, highest first.
    fn arrange(&self, arranged: Arranged, pool: &[Task], seed: u64) -> Result<Arranged> {
        let mut keyed =
            arranged.tasks.into_iter().map(|i| Ok((pass_rate(pool, i)?, i))).collect::<Result<Vec<_>>>()?;
        keyed.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(Arranged { tasks: keyed.into_iter().map(|(_, i)| i).collect(), order: Order::Listed })
    }
}

impl Difficulty for DropSolved {
    fn arrange(&self, arranged: Arranged, pool: &[Task], seed: u64) -> Result<Arranged> {
        PassRateBand { low: 0.0, high: 1.0 - f64::EPSILON }.arrange(arranged, pool, seed)
    }
}

impl Difficulty for PassRateBand {
    fn arrange(&self, arranged: Arranged, pool: &[Task], _seed: u64) -> Result<Arranged> {
        let mut tasks = Vec::with_capacity(arranged.tasks.len());
        for i in arranged.tasks {
            if (self.low..=self.high).contains(&pass_rate(pool, i)?) {
                tasks.push(i);
            }
        }
        Ok(Arranged { tasks, order: arranged.order })
    }
}

impl<A: Difficulty, B: Difficulty> Difficulty for (A, B) {
    fn arrange(&self, arranged: Arranged, pool: &[Task], seed: u64) -> Result<Arranged> {
        self.1.arrange(self.0.arrange(arranged, pool, seed)?, pool, seed)
    }
}

impl Difficulty for Box<dyn Difficulty> {
    fn arrange(&self, arranged: Arranged, pool: &[Task], seed: u64) -> Result<Arranged> {
        self.as_ref().arrange(arranged, pool, seed)
    }
}

impl<D: Difficulty> Difficulty for Vec<D> {
    /// Each member in turn.
    fn arrange(&self, mut arranged: Arranged, pool: &[Task], seed: u64) -> Result<Arranged> {
        for d in self {
            arranged = d.arrange(arranged, pool, seed)?;
        }
        Ok(arranged)
    }
}

//! The [`Curriculum`] trait and the capability axis: [`Staged`] (one phase per capability, in
//! any order) and [`Merged`] (everything in one phase), each composed with a [`Difficulty`].

use std::collections::BTreeMap;

use seethink_data::{Capability, Task};

use crate::difficulty::{Arranged, AsIs, Difficulty};
use crate::error::{CurriculumError, Result};
use crate::phase::{Order, Phase, PhaseSettings};
use crate::sampler::{Epochs, TaskSampler};

/// A curriculum: turns a task pool into phases, and draws each phase's tasks.
///
/// Each phase is one training run (its own optimizer and reference model, starting from the
/// previous phase's final weights). Static policies only implement [`phases`](Self::phases);
/// adaptive ones also return their own [`sampler`](Self::sampler), which sees every step's
/// results and keeps its state in the checkpoint.
pub trait Curriculum: Send + Sync {
    /// The phases over `pool`, in training order; `seed` breaks ties and orders shuffles.
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>>;

    /// The sampler of `phase` (one of [`phases`](Self::phases) over `pool`; its
    /// [`Phase::tasks`] and the sampler's draws are indices into `pool`, the run's task list):
    /// by default epochs over its tasks, shuffled from `seed` or in list order. An error (e.g.
    /// a task without the pass rate the policy needs) stops the run before the phase starts.
    fn sampler(&self, phase: &Phase, _pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        Ok(default_sampler(phase, seed))
    }
}

/// Epochs over `phase.tasks`, shuffled from `seed` ([`Order::Shuffled`]) or in list order.
pub fn default_sampler(phase: &Phase, seed: u64) -> Box<dyn TaskSampler> {
    match phase.order {
        Order::Shuffled => Box::new(Epochs::shuffled(phase.tasks.clone(), seed)),
        Order::Listed => Box::new(Epochs::in_order(phase.tasks.clone())),
    }
}

impl<C: Curriculum + ?Sized> Curriculum for Box<C> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        self.as_ref().phases(pool, seed)
    }

    fn sampler(&self, phase: &Phase, pool: &[Task], seed: u64) -> Result<Box<dyn TaskSampler>> {
        self.as_ref().sampler(phase, pool, seed)
    }
}

/// The capability axis in stages: one phase per capability, in `order` (any permutation or
/// subset), each phase's tasks arranged by `within`.
pub struct Staged<D = AsIs> {
    pub order: Vec<Capability>,
    pub within: D,
    /// Settings of the phase of each capability.
    pub settings: BTreeMap<Capability, PhaseSettings>,
}

impl Staged<AsIs> {
    /// Phases in `order`, no per-phase settings.
    pub fn new(order: impl Into<Vec<Capability>>) -> Self {
        Self { order: order.into(), within: AsIs, settings: BTreeMap::new() }
    }

    /// The paper's: perception → textual reasoning → visual reasoning, the vision tower frozen
    /// in the textual-reasoning phase.
    pub fn paper() -> Self {
        let frozen = PhaseSettings::set("actor.freeze_vision", true);
        Self::new(Capability::ALL).with(Capability::TextReasoning, frozen)
    }

    /// The paper's order reversed: visual reasoning → textual reasoning → perception.
    pub fn reverse() -> Self {
        let mut paper = Self::paper();
        paper.order.reverse();
        paper
    }
}

impl<D: Difficulty> Staged<D> {
    /// The same stages with each phase's tasks arranged by `within`.
    pub fn within<E: Difficulty>(self, within: E) -> Staged<E> {
        Staged { order: self.order, within, settings: self.settings }
    }

    /// The same stages, the phase of `capability` with `settings` over its current ones.
    pub fn with(mut self, capability: Capability, settings: PhaseSettings) -> Self {
        let slot = self.settings.entry(capability).or_default();
        *slot = slot.overridden_by(&settings);
        self
    }
}

/// Indices of `pool`'s tasks that pass `settings.sources` (all when it is `None`).
fn from_sources(pool: &[Task], settings: &PhaseSettings, keep: impl Fn(&Task) -> bool) -> Vec<usize> {
    let source_ok = |t: &Task| settings.sources.as_ref().is_none_or(|s| s.contains(&t.source));
    (0..pool.len()).filter(|&i| keep(&pool[i]) && source_ok(&pool[i])).collect()
}

/// The phase `name` of `tasks` arranged by `within`; an error if none is left.
fn arranged_phase(
    name: &str,
    tasks: Vec<usize>,
    within: &dyn Difficulty,
    settings: PhaseSettings,
    pool: &[Task],
    seed: u64,
) -> Result<Phase> {
    let arranged = within.arrange(Arranged { tasks, order: Order::Shuffled }, pool, seed)?;
    if arranged.tasks.is_empty() {
        return Err(CurriculumError::EmptyPhase { phase: name.to_string() });
    }
    Ok(Phase { name: name.to_string(), tasks: arranged.tasks, order: arranged.order, settings })
}

impl<D: Difficulty> Curriculum for Staged<D> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        let mut seen = Vec::with_capacity(self.order.len());
        self.order
            .iter()
            .map(|&capability| {
                if seen.contains(&capability) {
                    return Err(CurriculumError::RepeatedStage { capability });
                }
                seen.push(capability);
                let settings = self.settings.get(&capability).cloned().unwrap_or_default();
                let tasks = from_sources(pool, &settings, |t| t.capability == capability);
                arranged_phase(capability.as_str(), tasks, &self.within, settings, pool, seed)
            })
            .collect()
    }
}

/// Every capability in one phase (the paper's baseline), arranged by `within`.
pub struct Merged<D = AsIs> {
    pub within: D,
    pub settings: PhaseSettings,
}

impl Merged<AsIs> {
    /// All tasks mixed, drawn in shuffled epochs.
    pub fn new() -> Self {
        Self { within: AsIs, settings: PhaseSettings::default() }
    }
}

impl Default for Merged<AsIs> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: Difficulty> Merged<D> {
    /// The same phase with its tasks arranged by `within`.
    pub fn within<E: Difficulty>(self, within: E) -> Merged<E> {
        Merged { within, settings: self.settings }
    }

    /// The same phase with `settings` over its current ones.
    pub fn with(mut self, settings: PhaseSettings) -> Self {
        self.settings = self.settings.overridden_by(&settings);
        self
    }
}

impl<D: Difficulty> Curriculum for Merged<D> {
    fn phases(&self, pool: &[Task], seed: u64) -> Result<Vec<Phase>> {
        let tasks = from_sources(pool, &self.settings, |_| true);
        Ok(vec![arranged_phase("merged", tasks, &self.within, self.settings.clone(), pool, seed)?])
    }
}

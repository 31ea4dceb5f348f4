//! A phase: one training run of a curriculum, with its own optimizer, its own reference model
//! (the phase's starting weights), its tasks and its settings.

use serde::{Deserialize, Serialize};

/// How a phase draws its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Seeded shuffled epochs (the run's `data.shuffle` decides; `false` keeps list order).
    Shuffled,
    /// Exactly the listed order, epoch after epoch (sorted curricula).
    Listed,
}

/// What a phase changes of the run: its length (`steps` or `epochs`), its tasks' sources, and
/// any run-config keys as `set` overrides (`"actor.lr=3e-7"`, `"actor.freeze_vision=true"`,
/// `"algorithm.trainer=Sft"`), one spelling for every key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhaseSettings {
    /// `trainer.steps`; when `epochs` is also set, `steps` wins.
    pub steps: Option<usize>,
    /// Passes over the phase's tasks: `⌈epochs · tasks / trainer.prompts_per_step⌉` steps.
    pub epochs: Option<f64>,
    /// Only tasks whose `source` is one of these (e.g. captions for an SFT perception phase).
    pub sources: Option<Vec<String>>,
    /// Run-config keys, as `key=value` overrides read like the CLI's `--set`
    /// (`"rollout.temperature=0.7"`, `"algorithm.reward=Math"`, `"actor.schedule=Warmup(warmup: 5)"`),
    /// applied in order (a later one wins) before steps are counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
}

impl PhaseSettings {
    /// The settings of one override `key=value`.
    pub fn set(key: &str, value: impl std::fmt::Display) -> Self {
        Self { set: vec![format!("{key}={value}")], ..Default::default() }
    }

    /// `self` with every field that `other` sets replaced by `other`'s (`set`: `self`'s
    /// overrides, then `other`'s, so `other`'s win).
    pub fn overridden_by(&self, other: &PhaseSettings) -> PhaseSettings {
        PhaseSettings {
            steps: other.steps.or(self.steps),
            epochs: other.epochs.or(self.epochs),
            sources: other.sources.clone().or_else(|| self.sources.clone()),
            set: self.set.iter().chain(&other.set).cloned().collect(),
        }
    }

    /// The number of steps of a phase of `tasks` tasks at `prompts_per_step`, given the run's
    /// `default_steps`: `steps`, else `⌈epochs · tasks / prompts_per_step⌉` (at least 1), else
    /// the default.
    pub fn steps_for(&self, tasks: usize, prompts_per_step: usize, default_steps: usize) -> usize {
        match (self.steps, self.epochs) {
            (Some(steps), _) => steps,
            (None, Some(epochs)) => {
                ((epochs * tasks as f64 / prompts_per_step.max(1) as f64).ceil() as usize).max(1)
            }
            (None, None) => default_steps,
        }
    }
}

/// One phase of a curriculum's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// A name for logs and the phase's run directory (`perception`, `merged`, …).
    pub name: String,
    /// Indices into the task pool, in the phase's list order.
    pub tasks: Vec<usize>,
    pub order: Order,
    pub settings: PhaseSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = PhaseSettings { epochs: Some(2.0), ..PhaseSettings::set("actor.lr", 1e-6) };
        let over = PhaseSettings { steps: Some(5), ..PhaseSettings::set("actor.lr", 3e-7) };
        let merged = base.overridden_by(&over);
        assert_eq!((merged.steps, merged.epochs), (Some(5), Some(2.0)));
        assert_eq!(merged.set, ["actor.lr=0.000001", "actor.lr=0.0000003"], "the later one wins");
    }

    #[test]
    fn steps_come_from_steps_then_epochs_then_the_default() {
        let epochs = PhaseSettings { epochs: Some(2.0), ..Default::default() };
        assert_eq!(epochs.steps_for(10, 4, 99), 5);
        let both = PhaseSettings { steps: Some(3), ..epochs.clone() };
        assert_eq!(both.steps_for(10, 4, 99), 3);
        assert_eq!(PhaseSettings::default().steps_for(10, 4, 99), 99);
        let tiny = PhaseSettings { epochs: Some(0.01), ..Default::default() };
        assert_eq!(tiny.steps_for(10, 4, 99), 1);
    }
}

//! A phase: one training run of a curriculum, with its own optimizer, its own reference model
//! (the phase's starting weights), its tasks and its settings.

use serde::{Deserialize, Serialize};

/// GRPO or SFT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trainer {
    Grpo,
    Sft,
}

/// How a phase draws its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Seeded shuffled epochs (the run's `data.shuffle` decides; `false` keeps list order).
    Shuffled,
    /// Exactly the listed order, epoch after epoch (sorted curricula).
    Listed,
}

/// The run settings a phase changes; `None` keeps the run's value. Each field names the run
/// config key it overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhaseSettings {
    /// `trainer.steps`; when `epochs` is also set, `steps` wins.
    pub steps: Option<usize>,
    /// Passes over the phase's tasks: `⌈epochs · tasks / trainer.prompts_per_step⌉` steps.
    pub epochs: Option<f64>,
    /// `actor.lr`.
    pub lr: Option<f64>,
    /// `algorithm.kl_coef`.
    pub kl_coef: Option<f32>,
    /// `actor.clip_low`.
    pub clip_low: Option<f32>,
    /// `actor.clip_high`.
    pub clip_high: Option<f32>,
    /// `actor.max_grad_norm`.
    pub max_grad_norm: Option<f64>,
    /// `actor.freeze_vision`.
    pub freeze_vision: Option<bool>,
    /// `algorithm.trainer`.
    pub trainer: Option<Trainer>,
    /// Only tasks whose `source` is one of these (e.g. captions for an SFT perception phase).
    pub sources: Option<Vec<String>>,
    /// Any other run-config keys, as `key=value` overrides read like the CLI's `--set`
    /// (`"rollout.temperature=0.7"`, `"algorithm.reward=Math"`, `"actor.schedule=Warmup(warmup: 5)"`),
    /// applied after the fields above and before steps are counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
}

impl PhaseSettings {
    /// `self` with every field that `other` sets replaced by `other`'s (`set`: `self`'s
    /// overrides, then `other`'s).
    pub fn overridden_by(&self, other: &PhaseSettings) -> PhaseSettings {
        PhaseSettings {
            steps: other.steps.or(self.steps),
            epochs: other.epochs.or(self.epochs),
            lr: other.lr.or(self.lr),
            kl_coef: other.kl_coef.or(self.kl_coef),
            clip_low: other.clip_low.or(self.clip_low),
            clip_high: other.clip_high.or(self.clip_high),
            max_grad_norm: other.max_grad_norm.or(self.max_grad_norm),
            freeze_vision: other.freeze_vision.or(self.freeze_vision),
            trainer: other.trainer.or(self.trainer),
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
        let base = PhaseSettings { lr: Some(1e-6), freeze_vision: Some(true), ..Default::default() };
        let over = PhaseSettings { lr: Some(3e-7), steps: Some(5), ..Default::default() };
        let merged = base.overridden_by(&over);
        assert_eq!(merged.lr, Some(3e-7));
        assert_eq!(merged.steps, Some(5));
        assert_eq!(merged.freeze_vision, Some(true));
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

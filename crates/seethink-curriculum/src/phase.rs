//! A phase: one training run of a curriculum, with its own optimizer, its own reference model
//! (the phase's starting weights), its tasks and its settings.

use serde::{Deserialize, Serialize};

use crate::error::{CurriculumError, Result};

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

/// The phase of `phases` named `name`, with its position. Otherwise the error says what named
/// it (`named_by`: the user's config key or policy, e.g. "the threshold gate"), lists the
/// phases there are, and suggests the nearest name when one is within a few edits
/// ([`unknown_phase`]).
pub fn phase_named<'a>(phases: &'a [Phase], name: &str, named_by: &str) -> Result<(usize, &'a Phase)> {
    phases
        .iter()
        .enumerate()
        .find(|(_, p)| p.name == name)
        .ok_or_else(|| unknown_phase(name, named_by, phases.iter().map(|p| p.name.as_str())))
}

/// [`CurriculumError::UnknownPhase`] for `name`, named by `named_by`, among the phase names
/// `known`: with a "did you mean" for the known name at the smallest edit distance, when that
/// distance is at most a third of the longer name (at least 2).
pub fn unknown_phase<'a>(
    name: &str,
    named_by: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> CurriculumError {
    let known: Vec<&str> = known.into_iter().collect();
    let nearest = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .min()
        .filter(|(d, k)| *d <= (name.chars().count().max(k.chars().count()) / 3).max(2));
    CurriculumError::UnknownPhase {
        name: name.to_string(),
        named_by: named_by.to_string(),
        phases: known.join(", "),
        hint: nearest.map_or_else(String::new, |(_, k)| format!("; did you mean `{k}`?")),
    }
}

/// Levenshtein distance between `a` and `b` in characters: the fewest insertions, deletions
/// and substitutions that turn one into the other, `d[i][j] = min(d[i−1][j] + 1, d[i][j−1] + 1,
/// d[i−1][j−1] + [a_i ≠ b_j])`, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
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

    fn phase(name: &str) -> Phase {
        Phase { name: name.into(), tasks: vec![], order: Order::Listed, settings: Default::default() }
    }

    #[test]
    fn a_phase_is_found_by_name_and_a_near_miss_suggests_the_nearest() {
        let phases = [phase("perception"), phase("text_reasoning"), phase("visual_reasoning")];
        let (k, found) = phase_named(&phases, "text_reasoning", "my sampler").unwrap();
        assert_eq!((k, found.name.as_str()), (1, "text_reasoning"));
        let miss = phase_named(&phases, "visual-reasoning", "my sampler").unwrap_err().to_string();
        assert!(miss.starts_with("my sampler names phase `visual-reasoning`"), "{miss}");
        assert!(miss.ends_with("did you mean `visual_reasoning`?"), "{miss}");
        let far = phase_named(&phases, "colour", "my sampler").unwrap_err().to_string();
        assert!(far.ends_with("(its phases: perception, text_reasoning, visual_reasoning)"), "{far}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

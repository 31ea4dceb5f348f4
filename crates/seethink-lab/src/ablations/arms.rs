//! The arms of the ablation suite: each a curriculum over the same task pool at the same
//! compute (the stages' steps P + T + V in all, of `prompts_per_step` prompts), from the same
//! base model.

use std::collections::BTreeMap;

use crate::curriculum::{CurriculumConfig, DifficultyKind, PhaseSettings, PlateauConfig, Policy, Watched};
use crate::data::synth::caption::CAPTION_SOURCE;
use crate::data::Capability;
use crate::perception_data::PERCEPTION_DATA_SOURCE;
use crate::preset::StageSteps;

/// The filtered arm's pool, relative to the seed's directory.
pub const FILTERED_POOL: &str = "data/perception-filtered";
/// The unfiltered arm's pool, relative to the seed's directory.
pub const UNFILTERED_POOL: &str = "data/perception-unfiltered";

/// One arm of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arm {
    /// All capabilities mixed in one phase (the paper's baseline).
    Merged,
    /// The paper's stages: perception → textual reasoning → visual reasoning.
    Staged,
    /// The stages in reverse: visual reasoning → textual reasoning → perception.
    Reverse,
    /// Stages 2–3 only (no perception data): textual reasoning → visual reasoning, the
    /// perception stage's steps shared between them.
    ReasoningOnly,
    /// The perception stage by SFT on captions instead of RL, then RL stages 2–3.
    SftPerception,
    /// Merged, drawn easy → hard by the starting model's pass rate.
    DifficultyOnly,
    /// The paper's stages, each drawn easy → hard.
    CapabilityXDifficulty,
    /// One phase drawn by the learning-progress bandit over capability × level cells.
    LearningProgress,
    /// The paper's stages, each ended early once its reward plateaus.
    Plateau,
    /// The paper's stages, the perception stage on synthesised questions the base model fails
    /// from the image alone (`seethink perception-data`'s filter).
    PerceptionFiltered,
    /// The paper's stages, the perception stage on as many synthesised questions, unfiltered.
    PerceptionUnfiltered,
    /// Merged with DAPO's overlong penalty on responses longer than a third of the budget: the
    /// positive control that a reward on length shortens responses.
    LengthPenalty,
    /// Merged with a bonus on the length of right answers: the positive control that a reward
    /// on length lengthens responses, where the base model can write them longer.
    VerbosityReward,
}

/// The length penalty of [`Arm::LengthPenalty`] for responses of at most `max_new_tokens`, as a
/// run-config override: DAPO's soft overlong punishment over the last two thirds of the budget
/// `L`, weight 1 (a response of `l > L/3` tokens loses `(l − L/3) / (2L/3)`; with the sandbox's
/// 96 tokens, `(l − 32) / 64`).
pub fn length_penalty(max_new_tokens: usize) -> String {
    let buffer = max_new_tokens - max_new_tokens / 3;
    format!("algorithm.overlong_penalty=Some((buffer: {buffer}, factor: 1.0))")
}

/// The bonus of [`Arm::VerbosityReward`], as a run-config override: a right answer of `l`
/// tokens out of at most `L` gains `0.5 · min(l, L) / L` (`algorithm.verbosity_bonus`).
pub const VERBOSITY_BONUS: &str = "algorithm.verbosity_bonus=Some((factor: 0.5))";

impl Arm {
    /// Every arm, in table order.
    pub const ALL: [Arm; 13] = [
        Arm::Merged,
        Arm::Staged,
        Arm::Reverse,
        Arm::ReasoningOnly,
        Arm::SftPerception,
        Arm::DifficultyOnly,
        Arm::CapabilityXDifficulty,
        Arm::LearningProgress,
        Arm::Plateau,
        Arm::PerceptionFiltered,
        Arm::PerceptionUnfiltered,
        Arm::LengthPenalty,
        Arm::VerbosityReward,
    ];

    /// The arm's name in files and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Arm::Merged => "merged",
            Arm::Staged => "staged",
            Arm::Reverse => "reverse",
            Arm::ReasoningOnly => "reasoning_only",
            Arm::SftPerception => "sft_perception",
            Arm::DifficultyOnly => "difficulty_only",
            Arm::CapabilityXDifficulty => "capability_x_difficulty",
            Arm::LearningProgress => "learning_progress",
            Arm::Plateau => "plateau",
            Arm::PerceptionFiltered => "perception_filtered",
            Arm::PerceptionUnfiltered => "perception_unfiltered",
            Arm::LengthPenalty => "length_penalty",
            Arm::VerbosityReward => "verbosity_reward",
        }
    }

    /// The arm's name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Arm::Merged => "merged",
            Arm::Staged => "staged (capability only)",
            Arm::Reverse => "reverse order",
            Arm::ReasoningOnly => "reasoning data only",
            Arm::SftPerception => "SFT perception",
            Arm::DifficultyOnly => "difficulty only",
            Arm::CapabilityXDifficulty => "capability × difficulty",
            Arm::LearningProgress => "learning progress",
            Arm::Plateau => "staged + plateau",
            Arm::PerceptionFiltered => "filtered perception questions",
            Arm::PerceptionUnfiltered => "unfiltered perception questions",
            Arm::LengthPenalty => "merged + length penalty",
            Arm::VerbosityReward => "merged + verbosity reward",
        }
    }

    /// What the arm runs, for the results' header.
    pub fn description(self) -> &'static str {
        match self {
            Arm::Merged => "all tasks mixed in one GRPO phase of P+T+V steps, vision tower frozen (the paper's merged script)",
            Arm::Staged => "GRPO perception → textual reasoning (vision frozen) → visual reasoning, P / T / V steps",
            Arm::Reverse => "GRPO visual reasoning → textual reasoning (vision frozen) → perception, V / T / P steps",
            Arm::ReasoningOnly => "GRPO textual reasoning (vision frozen) → visual reasoning, P+T+V steps split as T : V: the staged arm without perception data",
            Arm::SftPerception => "SFT on captions (\"describe the image in detail\" → caption from the scene ground truth) for P steps, then GRPO stages 2–3 (T, V steps)",
            Arm::DifficultyOnly => "merged, tasks drawn easy → hard by the base model's pass rate",
            Arm::CapabilityXDifficulty => "staged, each stage's tasks drawn easy → hard by pass rate",
            Arm::LearningProgress => "one GRPO phase of P+T+V steps drawn by the learning-progress bandit (τ = 1, α = 0.5), vision tower frozen",
            Arm::Plateau => "staged; a stage ends once the 5-step mean reward has not improved by 0.005 for 10 steps (P / T / V steps at most)",
            Arm::PerceptionFiltered => "staged; the perception stage (P steps) on synthesised questions about captioned scenes that the base model answers wrong from the image alone (perception-data's image side, greedy)",
            Arm::PerceptionUnfiltered => "staged; the perception stage (P steps) on as many synthesised questions about captioned scenes, unfiltered (the first of the same candidates)",
            Arm::LengthPenalty => "merged, with DAPO's overlong penalty: a response of l > L/3 of the L new tokens loses (l − L/3)/(2L/3) of reward (the positive control that length can shorten)",
            Arm::VerbosityReward => "merged, with a verbosity reward: a right answer of l of the L new tokens gains 0.5·l/L (the positive control that length can grow)",
        }
    }

    /// The arm named `key`.
    pub fn parse(key: &str) -> Option<Arm> {
        Arm::ALL.into_iter().find(|a| a.key() == key)
    }

    /// The pool of the filter arms, relative to the seed's directory: the rated pool with the
    /// synthesised perception questions, filtered or not (source
    /// [`PERCEPTION_DATA_SOURCE`]); `None` for the other arms.
    pub fn perception_pool(self) -> Option<&'static str> {
        match self {
            Arm::PerceptionFiltered => Some(FILTERED_POOL),
            Arm::PerceptionUnfiltered => Some(UNFILTERED_POOL),
            _ => None,
        }
    }

    /// Whether the arm's pool includes the caption tasks.
    pub fn uses_captions(self) -> bool {
        self == Arm::SftPerception
    }

    /// The arm's curriculum with `stages`' steps per stage (their total for one-phase arms, so
    /// every arm runs the same number of steps), for responses of at most `max_new_tokens`.
    pub fn curriculum(self, stages: StageSteps, max_new_tokens: usize) -> CurriculumConfig {
        let total = stages.total();
        let steps = |n: usize| PhaseSettings { steps: Some(n), ..Default::default() };
        let frozen = || vec!["actor.freeze_vision=true".to_string()];
        let one_phase = |name: &str| {
            let settings = PhaseSettings { set: frozen(), ..steps(total) };
            BTreeMap::from([(name.to_string(), settings)])
        };
        let staged = || stages.phases();
        let (policy, within, phases, plateau) = match self {
            Arm::Merged => (Policy::Merged, vec![], one_phase("merged"), None),
            Arm::LengthPenalty | Arm::VerbosityReward => {
                let reward = match self {
                    Arm::LengthPenalty => length_penalty(max_new_tokens),
                    _ => VERBOSITY_BONUS.to_string(),
                };
                let mut phases = one_phase("merged");
                phases.values_mut().for_each(|p| p.set.push(reward.clone()));
                (Policy::Merged, vec![], phases, None)
            }
            Arm::Staged => (Policy::Paper, vec![], staged(), None),
            Arm::Reverse => (Policy::Reverse, vec![], staged(), None),
            Arm::ReasoningOnly => {
                // T : V of the total, rounded down for text
                let text = total * stages.text_reasoning / (stages.text_reasoning + stages.visual_reasoning);
                let phases = BTreeMap::from([
                    ("text_reasoning".to_string(), PhaseSettings { set: frozen(), ..steps(text) }),
                    ("visual_reasoning".to_string(), steps(total - text)),
                ]);
                let order = vec![Capability::TextReasoning, Capability::VisualReasoning];
                (Policy::Staged(order), vec![], phases, None)
            }
            Arm::SftPerception => {
                let mut phases = staged();
                let sft = PhaseSettings {
                    set: vec!["algorithm.trainer=Sft".into()],
                    sources: Some(vec![CAPTION_SOURCE.to_string()]),
                    ..steps(stages.perception)
                };
                phases.insert("perception".into(), sft);
                (Policy::Paper, vec![], phases, None)
            }
            Arm::DifficultyOnly => {
                (Policy::Merged, vec![DifficultyKind::EasyToHard], one_phase("merged"), None)
            }
            Arm::CapabilityXDifficulty => (Policy::Paper, vec![DifficultyKind::EasyToHard], staged(), None),
            Arm::LearningProgress => (
                Policy::LearningProgress { temperature: 1.0, alpha: 0.5 },
                vec![],
                one_phase("learning_progress"),
                None,
            ),
            Arm::Plateau => (
                Policy::Paper,
                vec![],
                staged(),
                Some(PlateauConfig { window: 5, patience: 10, min_delta: 0.005, watched: Watched::Reward }),
            ),
            Arm::PerceptionFiltered | Arm::PerceptionUnfiltered => {
                let mut phases = staged();
                let synthesised = PhaseSettings {
                    sources: Some(vec![PERCEPTION_DATA_SOURCE.to_string()]),
                    ..steps(stages.perception)
                };
                phases.insert("perception".into(), synthesised);
                (Policy::Paper, vec![], phases, None)
            }
        };
        CurriculumConfig { policy, within, phases, plateau }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arm_builds_and_keys_round_trip() {
        for arm in Arm::ALL {
            assert_eq!(Arm::parse(arm.key()), Some(arm));
            arm.curriculum(StageSteps::uniform(5), 96)
                .build()
                .unwrap_or_else(|e| panic!("{}: {e}", arm.key()));
        }
        assert_eq!(Arm::parse("nope"), None);
    }

    #[test]
    fn the_length_penalty_takes_two_thirds_of_the_budget() {
        // the sandbox's 96 tokens: the penalty of the committed length-penalty runs
        assert_eq!(length_penalty(96), "algorithm.overlong_penalty=Some((buffer: 64, factor: 1.0))");
        assert_eq!(length_penalty(192), "algorithm.overlong_penalty=Some((buffer: 128, factor: 1.0))");
    }

    #[test]
    fn every_arm_gets_the_same_step_budget() {
        for arm in Arm::ALL {
            let stages = StageSteps { perception: 3, text_reasoning: 7, visual_reasoning: 4 };
            let total: usize = arm.curriculum(stages, 96).phases.values().map(|s| s.steps.unwrap()).sum();
            assert_eq!(total, 14, "{}", arm.key());
        }
    }
}

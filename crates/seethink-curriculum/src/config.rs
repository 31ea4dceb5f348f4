//! The `curriculum` section of a run's RON config: a built-in policy, the difficulty axis and
//! per-phase settings, turned into a [`Curriculum`] by [`CurriculumConfig::build`].

use std::collections::BTreeMap;

use seethink_data::Capability;
use serde::{Deserialize, Serialize};

use crate::curriculum::{Curriculum, Merged, Staged};
use crate::difficulty::{AsIs, Difficulty, DropSolved, EasyToHard, PassRateBand};
use crate::error::{CurriculumError, Result};
use crate::phase::{unknown_phase, PhaseSettings};
use crate::plateau::{Plateau, Watched};
use crate::progress::LearningProgress;

/// A curriculum as configured.
///
/// ```ron
/// curriculum: Some((
///     policy: Staged([perception, text_reasoning, visual_reasoning]),
///     within: [DropSolved, EasyToHard],
///     phases: { "text_reasoning": (epochs: Some(15.0), set: ["actor.lr=3e-7"]) },
/// )),
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurriculumConfig {
    pub policy: Policy,
    /// The difficulty axis inside each phase, applied left to right.
    #[serde(default)]
    pub within: Vec<DifficultyKind>,
    /// Settings per phase name (a capability's name for staged phases, `merged`,
    /// `learning_progress`), over the policy's own.
    #[serde(default)]
    pub phases: BTreeMap<String, PhaseSettings>,
    /// End each phase early once its reward plateaus.
    #[serde(default)]
    pub plateau: Option<PlateauConfig>,
}

/// The built-in capability-axis policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Policy {
    /// All tasks in one phase.
    Merged,
    /// The paper's stages (perception → textual reasoning → visual reasoning, the vision tower
    /// frozen in textual reasoning).
    Paper,
    /// The paper's stages in reverse.
    Reverse,
    /// One phase per listed capability, in this order.
    Staged(Vec<Capability>),
    /// The learning-progress bandit over capability × level cells.
    LearningProgress { temperature: f32, alpha: f32 },
}

/// The built-in difficulty arrangements.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum DifficultyKind {
    AsIs,
    EasyToHard,
    DropSolved,
    /// Pass rate in `[low, high]`.
    Band(f64, f64),
}

/// [`Plateau`]'s parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauConfig {
    pub window: usize,
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f32,
    /// What it watches: `Reward` (the default), `Accuracy` or `CapabilityAccuracy(perception)`.
    #[serde(default, skip_serializing_if = "Watched::is_reward")]
    pub watched: Watched,
}

impl DifficultyKind {
    fn build(self) -> Box<dyn Difficulty> {
        match self {
            Self::AsIs => Box::new(AsIs),
            Self::EasyToHard => Box::new(EasyToHard),
            Self::DropSolved => Box::new(DropSolved),
            Self::Band(low, high) => Box::new(PassRateBand { low, high }),
        }
    }
}

impl CurriculumConfig {
    /// The configured curriculum; an error names a phase setting that matches no phase, or an
    /// invalid parameter.
    pub fn build(&self) -> Result<Box<dyn Curriculum>> {
        let within = || self.within.iter().map(|d| d.build()).collect::<Vec<Box<dyn Difficulty>>>();
        let staged = |mut staged: Staged<AsIs>| -> Result<Box<dyn Curriculum>> {
            for (name, settings) in &self.phases {
                let capability = name
                    .parse::<Capability>()
                    .ok()
                    .filter(|c| staged.order.contains(c))
                    .ok_or_else(|| unknown(name, staged.order.iter().map(|c| c.as_str())))?;
                staged = staged.with(capability, settings.clone());
            }
            Ok(Box::new(staged.within(within())))
        };
        let single = |phase: &str| -> Result<PhaseSettings> {
            match self.phases.iter().find(|(name, _)| name.as_str() != phase) {
                Some((name, _)) => Err(unknown(name, [phase])),
                None => Ok(self.phases.get(phase).cloned().unwrap_or_default()),
            }
        };
        let curriculum: Box<dyn Curriculum> = match &self.policy {
            Policy::Merged => Box::new(Merged::new().with(single("merged")?).within(within())),
            Policy::Paper => staged(Staged::paper())?,
            Policy::Reverse => staged(Staged::reverse())?,
            Policy::Staged(order) => staged(Staged::new(order.clone()))?,
            Policy::LearningProgress { temperature, alpha } => {
                if !self.within.is_empty() {
                    let message =
                        "draws by cell value, not by a difficulty order: leave `within` empty".into();
                    return Err(CurriculumError::Invalid { policy: "learning_progress".into(), message });
                }
                let settings = single("learning_progress")?;
                let policy = LearningProgress { temperature: *temperature, alpha: *alpha, settings };
                policy.validate()?;
                Box::new(policy)
            }
        };
        Ok(match self.plateau {
            Some(p) => {
                Box::new(Plateau::new(curriculum, p.window, p.patience, p.min_delta).watching(p.watched))
            }
            None => curriculum,
        })
    }
}

/// The error for a phase setting named `name` when the phases are `phases`.
fn unknown<'a>(name: &str, phases: impl IntoIterator<Item = &'a str>) -> CurriculumError {
    unknown_phase(name, "`curriculum.phases`", phases)
}

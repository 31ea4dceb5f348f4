//! Errors of planning a curriculum.

use seethink_data::Capability;

/// Why a curriculum cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum CurriculumError {
    #[error("task `{task}` has no pass rate (`pass_rate`): run `seethink passrate` on the data first")]
    MissingPassRate { task: String },
    #[error("phase `{phase}` has no tasks (check the data's capabilities, the sources filter and the pass-rate filters)")]
    EmptyPhase { phase: String },
    #[error("the stage order names {capability} twice")]
    RepeatedStage { capability: Capability },
    #[error("{named_by} names phase `{name}`, which is not a phase of this curriculum (its phases: {phases}){hint}")]
    UnknownPhase {
        name: String,
        /// What named it: a config key (`curriculum.phases`) or a policy (`the threshold gate`).
        named_by: String,
        phases: String,
        /// `; did you mean `x`?` for the nearest phase name, or empty.
        hint: String,
    },
    #[error("curriculum {policy}: {message}")]
    Invalid { policy: String, message: String },
}

pub type Result<T> = std::result::Result<T, CurriculumError>;

//! Errors of training: model errors, and checkpoint/metrics files that cannot be written or read.

use std::path::PathBuf;

use seethink_engine::error::{EngineError, WorkerOutcome};
use seethink_models::ModelError;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Record { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error(transparent)]
    Eval(#[from] seethink_eval::EvalError),
    #[error(transparent)]
    Data(#[from] seethink_data::DataError),
    #[error(transparent)]
    Curriculum(#[from] seethink_curriculum::CurriculumError),
    #[error("rollout: {0}")]
    Rollout(String),
    #[error("run directory {dir} is in use by process {holder} (one writer per run directory; if no such run is going on, delete {dir}/.seethink.lock)")]
    Locked { dir: PathBuf, holder: String },
    #[error("interrupted: stopped after step {step} and saved its checkpoint in {dir}; run the same command again to resume")]
    Interrupted { step: usize, dir: PathBuf },
    #[error("data-parallel training: {0}")]
    Distributed(String),
    #[error(
        "data-parallel training: another worker stopped and closed the collective (its error is the run's)"
    )]
    WorkerStopped,
    /// A loss or estimator name the run's [`Plugins`](crate::grpo::Plugins) do not hold.
    #[error("{0}")]
    UnknownPlugin(String),
    /// A curriculum phase's settings do not fit the run config.
    #[error("phase `{phase}`: {message}")]
    Phase { phase: String, message: String },
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("saving the checkpoint in {dir} failed: {message}; the run stopped, and the newest complete checkpoint there is kept for resuming")]
    Checkpoint { dir: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, TrainError>;

/// The engine's errors, each as the variant of the same name.
impl From<EngineError> for TrainError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Model(e) => Self::Model(e),
            EngineError::Distributed(message) => Self::Distributed(message),
            EngineError::WorkerStopped => Self::WorkerStopped,
        }
    }
}

impl WorkerOutcome for TrainError {
    fn another_worker_stopped(&self) -> bool {
        matches!(self, Self::WorkerStopped)
    }
}

/// Attaches `path` to an I/O error.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_path_buf(), source }
}

//! Errors of the engine: model errors, and data-parallel workers that fail or stop. The crates
//! above it convert them into their own (`seethink_rl::EngineError` has a variant for each).

use seethink_models::ModelError;

/// Everything that can stop the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("data-parallel training: {0}")]
    Distributed(String),
    #[error(
        "data-parallel training: another worker stopped and closed the collective (its error is the run's)"
    )]
    WorkerStopped,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// An error of a worker's run that can say it only follows another worker's stop (the
/// collective closed under it), so that the stop's own cause is the run's error
/// ([`crate::data_parallel::run_data_parallel`]).
pub trait WorkerOutcome: From<EngineError> {
    /// Whether this error only says another worker stopped first.
    fn another_worker_stopped(&self) -> bool;
}

impl WorkerOutcome for EngineError {
    fn another_worker_stopped(&self) -> bool {
        matches!(self, Self::WorkerStopped)
    }
}

//! Errors of evaluating, loading benchmarks and writing reports: every variant names the task,
//! file or line at fault.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A task's record, meta or sub-questions are unusable (from `seethink-data`).
    #[error(transparent)]
    Data(#[from] seethink_data::DataError),
    /// The model or its processor failed on a task.
    #[error("task `{task}`: {source}")]
    Model {
        /// The task being answered (the first of its batch when the failure is batch-wide).
        task: String,
        /// The underlying error.
        source: seethink_models::ModelError,
    },
    /// A [`crate::Responder`] returned the wrong number of responses.
    #[error("responder returned {got} for {what}, expected {expected}")]
    ResponseCount {
        /// What was counted: `tasks` or `samples of task <id>`.
        what: String,
        /// The number asked for.
        expected: usize,
        /// The number returned.
        got: usize,
    },
    /// Two tasks given to one evaluation share an id.
    #[error("duplicate task id `{0}`")]
    DuplicateTask(String),
    /// A report refers to a task that is not among the tasks given.
    #[error("task `{0}` of the report is not among the tasks given")]
    UnknownTask(String),
    /// An argument is out of range (e.g. zero samples per task).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Drawing a plot failed.
    #[error("cannot draw plot {path}: {message}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A predictions file is unusable, or does not fit its benchmark.
    #[error("{}{}: {problem}", path.display(), line.map_or_else(String::new, |l| format!(":{l}")))]
    Predictions {
        /// The predictions file.
        path: PathBuf,
        /// The 1-based line at fault, when one is.
        line: Option<u64>,
        /// What is wrong.
        problem: String,
    },
    /// A failure inside a custom [`crate::Responder`].
    #[error("responder: {0}")]
    Responder(String),
}

/// Result with [`EvalError`].
pub type Result<T> = std::result::Result<T, EvalError>;

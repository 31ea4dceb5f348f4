//! Errors of loading, writing and generating tasks: every variant names the file, line, key or
//! task at fault.

use std::path::PathBuf;

/// What is wrong with one line of a JSONL file (the file and line number live in
/// [`DataError::Line`]).
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    /// The line is not valid JSON, or not a JSON object.
    #[error("bad JSON: {0}")]
    BadJson(String),
    /// A required key is absent (or `null`).
    #[error("missing key `{0}`")]
    MissingKey(String),
    /// A key holds a value of the wrong JSON type.
    #[error("key `{key}`: expected {expected}, found {found}")]
    WrongType {
        /// The offending key.
        key: String,
        /// What the key must hold.
        expected: &'static str,
        /// A short description of what it holds instead.
        found: String,
    },
    /// A key holds a value of the right type but outside its allowed set or range.
    #[error("key `{key}`: {reason}")]
    InvalidValue {
        /// The offending key.
        key: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// The `capability` key names no known capability.
    #[error("unknown capability `{0}` (expected perception, text_reasoning or visual_reasoning)")]
    UnknownCapability(String),
    /// An image listed on the line does not exist as a file.
    #[error("image file not found: {0}")]
    MissingImage(PathBuf),
    /// The prompt's `<image>` markers do not match the number of images.
    #[error("prompt has {markers} `<image>` markers but the line lists {images} images")]
    ImageMarkers {
        /// Number of `<image>` markers in the prompt.
        markers: usize,
        /// Number of images listed.
        images: usize,
    },
    /// The task id was already used by an earlier line.
    #[error("duplicate id `{id}` (first used on line {first_line})")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// The 1-based line that used it first.
        first_line: usize,
    },
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// One line of a JSONL file is malformed.
    #[error("{path}:{line}: {problem}")]
    Line {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
    /// One row (or the header) of a TSV benchmark file is malformed.
    #[error("{path}:{line}: {problem}")]
    Tsv {
        /// The TSV file.
        path: PathBuf,
        /// 1-based line on which the row starts.
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// A task cannot be written as a JSONL record.
    #[error("task `{id}`: cannot write to JSONL: {reason}")]
    Unwritable {
        /// The task id.
        id: String,
        /// Why.
        reason: String,
    },
    /// A task's `meta` lacks what the oracle or sub-question builder needs.
    #[error("task `{id}`: meta: {reason}")]
    Meta {
        /// The task id.
        id: String,
        /// What is missing or inconsistent.
        reason: String,
    },
    /// A generator configuration is out of range.
    #[error("invalid synth config: {0}")]
    Config(String),
    /// PNG encoding failed.
    #[error("cannot encode image for task `{id}`: {source}")]
    Png {
        /// The task id.
        id: String,
        /// The underlying error.
        source: image::ImageError,
    },
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

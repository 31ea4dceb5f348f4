//! Task records, EasyR1-style JSONL loaders and a procedural benchmark that separates seeing
//! from thinking.
//!
//! - [`task`]: the [`Task`] record every trainer and evaluator sees.
//! - [`easyr1`]: reading and writing EasyR1-style JSONL files.
//! - [`parquet`]: reading the same records from Parquet files (e.g. HF datasets).
//! - [`tsv`]: VLMEvalKit benchmark TSV files.
//! - [`load_tasks`]: any of these chosen by the path's extension.
//! - [`synth`]: the seeded synthetic benchmark (perception, text reasoning, visual reasoning)
//!   and its ground-truth oracle.

#![warn(missing_docs)]

pub mod easyr1;
pub mod error;
pub mod parquet;
pub mod synth;
pub mod task;
pub mod tsv;

pub use easyr1::{load_jsonl, load_jsonl_with, write_jsonl, JsonlKeys, LoadOptions, Loaded, SkippedLine};
pub use error::{DataError, LineProblem, Result};
pub use parquet::{load_parquet, load_parquet_with};
pub use task::{Capability, ImageRef, Task, IMAGE_MARKER};
pub use tsv::{load_tsv, TsvOptions};

use std::path::Path;

/// The tasks of `path`, read by its kind: a directory means its `tasks.jsonl` (as written by
/// `seethink data synth`), a `.parquet` file is read with [`load_parquet`], a `.tsv` file
/// (VLMEvalKit) with [`load_tsv`], anything else as EasyR1 JSONL with [`load_jsonl`]; default
/// keys and options throughout.
pub fn load_tasks(path: &Path) -> Result<Vec<Task>> {
    let file = if path.is_dir() { path.join("tasks.jsonl") } else { path.to_path_buf() };
    match file.extension().and_then(|e| e.to_str()) {
        Some("parquet") => load_parquet(&file, &JsonlKeys::default()),
        Some("tsv") => load_tsv(&file, &TsvOptions::default()),
        _ => load_jsonl(&file, &JsonlKeys::default()),
    }
}

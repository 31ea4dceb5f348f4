//! Task records, EasyR1-style JSONL loaders and a procedural benchmark that separates seeing
//! from thinking.
//!
//! - [`task`]: the [`Task`] record every trainer and evaluator sees.
//! - [`easyr1`]: reading and writing EasyR1-style JSONL files.
//! - [`parquet`]: reading the same records from Parquet files (e.g. HF datasets).
//! - [`tsv`]: VLMEvalKit benchmark TSV files: raw rows ([`read_tsv`]) or tasks ([`load_tsv`]).
//! - [`load_tasks`]: any of these chosen by the path's extension.
//! - [`synth`]: the seeded synthetic benchmark (perception, text reasoning, visual reasoning)
//!   and its ground-truth oracle.
//! - [`hash`]: a stable hash of names ([`fnv1a`]).

#![warn(missing_docs)]

pub mod easyr1;
pub mod error;
pub mod hash;
pub mod parquet;
pub mod synth;
pub mod task;
pub mod tsv;

pub use easyr1::{load_jsonl, load_jsonl_with, write_jsonl, JsonlKeys, LoadOptions, Loaded, SkippedLine};
pub use error::{DataError, LineProblem, Result};
pub use hash::fnv1a;
pub use parquet::{load_parquet, load_parquet_with};
pub use task::{Capability, ImageRef, Task, IMAGE_MARKER};
pub use tsv::{load_tsv, read_tsv, row_options, TsvOptions, TsvRow};

use std::path::Path;

/// The tasks of `path`, read by its kind: a directory means its `tasks.jsonl` (as written by
/// `seethink data synth`), a `.parquet` file is read with [`load_parquet_with`], a `.tsv` file
/// (VLMEvalKit) with [`load_tsv`], anything else as EasyR1 JSONL with [`load_jsonl_with`];
/// default keys. Records without a `capability` get `capability` (EasyR1's public data sets
/// have none; without it such a record is an error); TSV rows all get it (default visual
/// reasoning).
pub fn load_tasks(path: &Path, capability: Option<Capability>) -> Result<Vec<Task>> {
    Ok(load_tasks_noting_defaults(path, capability)?.tasks)
}

/// [`load_tasks`], saying which records had no `capability` and took `capability`
/// ([`Loaded::without_capability`]; none for a TSV file, whose rows all take it by design).
pub fn load_tasks_noting_defaults(path: &Path, capability: Option<Capability>) -> Result<Loaded> {
    let file = if path.is_dir() { path.join("tasks.jsonl") } else { path.to_path_buf() };
    let options = LoadOptions { default_capability: capability, ..Default::default() };
    match file.extension().and_then(|e| e.to_str()) {
        Some("parquet") => load_parquet_with(&file, &options),
        Some("tsv") => {
            let defaults = TsvOptions::default();
            let tsv = TsvOptions { capability: capability.unwrap_or(defaults.capability), ..defaults };
            Ok(Loaded { tasks: load_tsv(&file, &tsv)?, skipped: Vec::new(), without_capability: Vec::new() })
        }
        _ => load_jsonl_with(&file, &options),
    }
}

//! Task records, EasyR1-style JSONL loaders and a procedural benchmark that separates seeing
//! from thinking.
//!
//! - [`task`]: the [`Task`] record every trainer and evaluator sees.
//! - [`easyr1`]: reading and writing EasyR1-style JSONL files.
//! - [`parquet`]: reading the same records from Parquet files (e.g. HF datasets).
//! - [`synth`]: the seeded synthetic benchmark (perception, text reasoning, visual reasoning)
//!   and its ground-truth oracle.

#![warn(missing_docs)]

pub mod easyr1;
pub mod error;
pub mod parquet;
pub mod synth;
pub mod task;

pub use easyr1::{load_jsonl, load_jsonl_with, write_jsonl, JsonlKeys, LoadOptions, Loaded, SkippedLine};
pub use error::{DataError, LineProblem, Result};
pub use parquet::{load_parquet, load_parquet_with};
pub use task::{Capability, ImageRef, Task, IMAGE_MARKER};

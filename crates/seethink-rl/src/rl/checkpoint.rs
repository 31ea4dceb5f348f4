//! Checkpoints of burn-train's RL checkpointer made crash-safe: every file is written under a
//! temporary name and renamed into place, saves happen every N steps (and at the last one)
//! keeping the last K, and a run resumes from the newest step whose files are all present.
//!
//! ```text
//! <run>/checkpoint/policy-12.mpk           model weights
//! <run>/checkpoint/learning-agent-12.mpk   optimizer state, update and rollout counters
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use burn::record::{FileRecorder, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;
use serde::{de::DeserializeOwned, Serialize};

/// The file stems of one checkpoint, as burn-train's RL checkpointer names them.
pub const CHECKPOINT_FILES: [&str; 2] = ["policy", "learning-agent"];

/// A file recorder whose files appear atomically: `R` writes into `<dir>/.partial/`, the file
/// is synced and renamed into `<dir>`, so a killed run never leaves a truncated checkpoint.
#[derive(Clone, Debug, Default)]
pub struct AtomicRecorder<R> {
    inner: R,
}

impl<B: Backend, R: FileRecorder<B>> Recorder<B> for AtomicRecorder<R> {
    type Settings = R::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, file: PathBuf) -> Result<(), RecorderError> {
        let failed = |e: std::io::Error| RecorderError::Unknown(format!("{}: {e}", file.display()));
        let target = file.with_extension(R::file_extension());
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = target.file_name().map(PathBuf::from).unwrap_or_default();
        let partial = dir.join(".partial").join(&name);
        self.inner.save_item(item, partial.clone())?;
        fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(failed)?;
        fs::rename(&partial, &target).map_err(failed)?;
        fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(failed)
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        self.inner.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
}

/// Save at every multiple of `every` and at step `last`; keep the newest `keep` checkpoints.
pub struct EveryNKeepLast {
    every: usize,
    last: usize,
    keep: usize,
    /// Saved steps, oldest first (those already on disk included).
    saved: Vec<usize>,
}

impl EveryNKeepLast {
    pub fn new(every: usize, last: usize, keep: usize, on_disk: Vec<usize>) -> Self {
        Self { every: every.max(1), last, keep: keep.max(1), saved: on_disk }
    }
}

impl CheckpointingStrategy for EveryNKeepLast {
    fn checkpointing(&mut self, step: usize, _store: &EventStoreClient) -> Vec<CheckpointingAction> {
        if !step.is_multiple_of(self.every) && step != self.last {
            return Vec::new();
        }
        self.saved.push(step);
        let old = self.saved.len().saturating_sub(self.keep);
        let mut actions = vec![CheckpointingAction::Save];
        actions.extend(self.saved.drain(..old).map(CheckpointingAction::Delete));
        actions
    }
}

/// Steps with a complete checkpoint (every file of [`CHECKPOINT_FILES`]) in `dir`, oldest first.
pub fn complete_checkpoints(dir: &Path, extension: &str) -> Vec<usize> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    let mut steps: Vec<usize> = names
        .iter()
        .filter_map(|name| name.strip_prefix("policy-")?.strip_suffix(&format!(".{extension}"))?.parse().ok())
        .filter(|step| {
            CHECKPOINT_FILES.iter().all(|stem| names.contains(&format!("{stem}-{step}.{extension}")))
        })
        .collect();
    steps.sort_unstable();
    steps
}

//! Checkpoints of a run, one layout for GRPO and SFT: burn-train's file checkpointer (model,
//! optimizer and LR-schedule records) made crash-safe, plus the run's own state (rollout
//! counter, task-sampler state) beside it.
//!
//! ```text
//! <run>/checkpoint/model-12.mpk       policy weights            (burn-train)
//! <run>/checkpoint/optim-12.mpk       AdamW state               (burn-train)
//! <run>/checkpoint/scheduler-12.mpk   LR schedule position      (burn-train)
//! <run>/checkpoint/state-12.json      rollouts, sampler state   (seethink)
//! ```
//! Every file is written under `.partial/`, synced and renamed into place, so a run killed at
//! any moment never leaves a truncated file; a run resumes from the newest step whose four
//! files are all present. Saves happen every N steps and at the last one, keeping the last K.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::record::{FileRecorder, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{io, Result, TrainError};

/// The file stems of one checkpoint as burn-train's file checkpointer names them, then ours.
pub const CHECKPOINT_FILES: [(&str, &str); 4] =
    [("model", "mpk"), ("optim", "mpk"), ("scheduler", "mpk"), ("state", "json")];

/// What a checkpoint holds besides burn-train's records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// GRPO rollouts done (the sampling seed offset).
    pub rollouts: usize,
    /// The task sampler's state ([`seethink_curriculum::TaskSampler::state`]).
    pub sampler: serde_json::Value,
}

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

    fn save_item<I: Serialize>(&self, item: I, file: PathBuf) -> std::result::Result<(), RecorderError> {
        let failed = |e: std::io::Error| RecorderError::Unknown(format!("{}: {e}", file.display()));
        let target = file.with_extension(R::file_extension());
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = target.file_name().map(PathBuf::from).unwrap_or_default();
        let partial = dir.join(".partial").join(&name);
        self.inner
            .save_item(item, partial.clone())
            .map_err(|e| RecorderError::Unknown(format!("writing {}: {e}", partial.display())))?;
        fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(failed)?;
        fs::rename(&partial, &target).map_err(failed)?;
        fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(failed)
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> std::result::Result<I, RecorderError> {
        self.inner.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
}

/// Which steps are saved: every multiple of `every` and step `last`; the newest `keep` kept.
#[derive(Clone, Debug)]
pub struct SaveRule {
    pub every: usize,
    pub last: usize,
    pub keep: usize,
}

impl SaveRule {
    /// Whether step `step` is saved: every `every` steps, the last one, and the one a run stops
    /// after when interrupted ([`crate::interrupt`]).
    pub fn saves(&self, step: usize) -> bool {
        step.is_multiple_of(self.every.max(1)) || step == self.last || crate::interrupt::stopping()
    }
}

/// [`SaveRule`] as burn-train's checkpointing strategy (for its model/optim/scheduler files).
///
/// Deleting is held back where it could lose the last usable checkpoint: burn-train deletes the
/// old files right after writing the new ones, even when writing failed, so the newest
/// checkpoint complete on disk when a save starts is never among those it deletes.
pub struct EveryNKeepLast {
    rule: SaveRule,
    /// Saved steps, oldest first (those already on disk included).
    saved: Vec<usize>,
    dir: PathBuf,
}

impl EveryNKeepLast {
    /// The strategy for checkpoints in `dir`, where the steps `on_disk` are already saved.
    pub fn new(rule: SaveRule, on_disk: Vec<usize>, dir: PathBuf) -> Self {
        Self { rule, saved: on_disk, dir }
    }
}

impl CheckpointingStrategy for EveryNKeepLast {
    fn checkpointing(&mut self, step: usize, _store: &EventStoreClient) -> Vec<CheckpointingAction> {
        if !self.rule.saves(step) {
            return Vec::new();
        }
        self.saved.push(step);
        let old = self.saved.len().saturating_sub(self.rule.keep.max(1));
        let newest_complete = complete_checkpoints(&self.dir).pop();
        let mut actions = vec![CheckpointingAction::Save];
        let deleted: Vec<usize> = self.saved.drain(..old).collect();
        for step in deleted {
            if Some(step) == newest_complete {
                self.saved.insert(0, step);
            } else {
                actions.push(CheckpointingAction::Delete(step));
            }
        }
        actions
    }
}

/// Steps with a complete checkpoint (every file of [`CHECKPOINT_FILES`]) in `dir`, oldest first.
pub fn complete_checkpoints(dir: &Path) -> Vec<usize> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    let mut steps: Vec<usize> = names
        .iter()
        .filter_map(|name| name.strip_prefix("state-")?.strip_suffix(".json")?.parse().ok())
        .filter(|step| {
            CHECKPOINT_FILES.iter().all(|(stem, ext)| names.contains(&format!("{stem}-{step}.{ext}")))
        })
        .collect();
    steps.sort_unstable();
    steps
}

/// Writes `state` as `dir/state-<step>.json` atomically and removes the state files of steps
/// older than the newest `keep`, except that of the newest checkpoint complete before this one
/// (as [`EveryNKeepLast`] spares its files; burn-train's checkpointer removes its own files).
pub fn save_state(dir: &Path, step: usize, state: &RunState, keep: usize) -> Result<()> {
    let newest_complete = complete_checkpoints(dir).into_iter().rfind(|&s| s != step);
    let path = dir.join(format!("state-{step}.json"));
    let partial = dir.join(".partial").join(format!("state-{step}.json"));
    fs::create_dir_all(dir.join(".partial")).map_err(io(dir))?;
    let json =
        serde_json::to_vec_pretty(state).map_err(|source| TrainError::Json { path: path.clone(), source })?;
    let mut file = fs::File::create(&partial).map_err(io(&partial))?;
    file.write_all(&json).and_then(|_| file.sync_all()).map_err(io(&partial))?;
    fs::rename(&partial, &path).map_err(io(&path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    let mut saved: Vec<usize> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_prefix("state-")?.strip_suffix(".json")?.parse().ok())
        .collect();
    saved.sort_unstable();
    for &old in &saved[..saved.len().saturating_sub(keep.max(1))] {
        if Some(old) == newest_complete {
            continue;
        }
        let old = dir.join(format!("state-{old}.json"));
        fs::remove_file(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// Reads `dir/state-<step>.json`.
pub fn load_state(dir: &Path, step: usize) -> Result<RunState> {
    let path = dir.join(format!("state-{step}.json"));
    let bytes = fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|source| TrainError::Json { path, source })
}

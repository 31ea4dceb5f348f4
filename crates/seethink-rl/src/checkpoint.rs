//! Atomic, resumable checkpoints of the SFT loop.
//!
//! ```text
//! <run>/checkpoints/step-000012/      model.mpk, optimizer.mpk, state.json
//! ```
//! A checkpoint is written into a hidden temporary directory and renamed into place, so a run
//! killed at any moment leaves either the previous checkpoints or a complete new one. Only the
//! last `keep` checkpoints are kept.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{io, Result, TrainError};
use crate::trainer::Learner;

type FileRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// A training run's directory.
pub struct RunDir {
    root: PathBuf,
    keep: usize,
}

impl RunDir {
    /// Opens (creating it if needed) run directory `root`, keeping the last `keep` checkpoints.
    pub fn create(root: impl Into<PathBuf>, keep: usize) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("checkpoints")).map_err(io(&root))?;
        Ok(Self { root, keep: keep.max(1) })
    }

    /// The run directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The most recent complete checkpoint, if any.
    pub fn latest(&self) -> Result<Option<PathBuf>> {
        Ok(self.checkpoints()?.pop())
    }

    /// Complete checkpoints, oldest first.
    fn checkpoints(&self) -> Result<Vec<PathBuf>> {
        let dir = self.root.join("checkpoints");
        let mut found: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(io(&dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("step-"))
                    && p.join("state.json").exists()
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// Writes checkpoint `step` atomically: the learner (model + optimizer) and `state`
    /// (counters, data position), then prunes old checkpoints.
    pub fn save<B: AutodiffBackend, S: Serialize>(
        &self,
        step: usize,
        learner: &Learner<B>,
        state: &S,
    ) -> Result<PathBuf> {
        let checkpoints = self.root.join("checkpoints");
        let target = checkpoints.join(format!("step-{step:06}"));
        let tmp = checkpoints.join(format!(".tmp-step-{step:06}-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let recorder = FileRecorder::new();
        record(&recorder, learner.model.clone().into_record(), &tmp.join("model"))?;
        record(&recorder, learner.optimizer_record(), &tmp.join("optimizer"))?;
        let state_path = tmp.join("state.json");
        let json = serde_json::to_vec_pretty(&(learner.updates, state))
            .map_err(|source| TrainError::Json { path: state_path.clone(), source })?;
        write_synced(&state_path, &json)?;
        for entry in fs::read_dir(&tmp).map_err(io(&tmp))? {
            let path = entry.map_err(io(&tmp))?.path();
            fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
        }
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        fs::rename(&tmp, &target).map_err(io(&target))?;
        fs::File::open(&checkpoints).and_then(|d| d.sync_all()).map_err(io(&checkpoints))?;
        let all = self.checkpoints()?;
        for old in &all[..all.len().saturating_sub(self.keep)] {
            fs::remove_dir_all(old).map_err(io(old))?;
        }
        Ok(target)
    }

    /// Restores a checkpoint written by [`RunDir::save`] into `learner` (whose model gives the
    /// architecture); returns it with the saved state.
    pub fn load<B: AutodiffBackend, S: DeserializeOwned>(
        &self,
        checkpoint: &Path,
        learner: Learner<B>,
    ) -> Result<(Learner<B>, S)> {
        let recorder = FileRecorder::new();
        let device = learner.model.devices().into_iter().next().unwrap_or_default();
        let model_record = load(&recorder, &checkpoint.join("model"), &device)?;
        let optimizer_record = load(&recorder, &checkpoint.join("optimizer"), &device)?;
        let mut learner = learner.with_records(model_record, optimizer_record);
        let state_path = checkpoint.join("state.json");
        let bytes = fs::read(&state_path).map_err(io(&state_path))?;
        let (updates, state): (usize, S) =
            serde_json::from_slice(&bytes).map_err(|source| TrainError::Json { path: state_path, source })?;
        learner.updates = updates;
        Ok((learner, state))
    }
}

fn record<B: Backend, R: burn::record::Record<B>>(
    recorder: &FileRecorder,
    item: R,
    path: &Path,
) -> Result<()> {
    Recorder::<B>::record(recorder, item, path.to_path_buf())
        .map_err(|e| TrainError::Record { path: path.to_path_buf(), message: e.to_string() })
}

fn load<B: Backend, R: burn::record::Record<B>>(
    recorder: &FileRecorder,
    path: &Path,
    device: &B::Device,
) -> Result<R> {
    Recorder::<B>::load(recorder, path.to_path_buf(), device)
        .map_err(|e| TrainError::Record { path: path.to_path_buf(), message: e.to_string() })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::File::create(path).map_err(io(path))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(io(path))
}

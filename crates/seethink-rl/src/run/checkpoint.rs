//! Checkpoints of a run, one layout for GRPO and SFT ([`Checkpoints`]): burn-train's file
//! checkpointers for the learner's records (model, optimizer, LR schedule) made crash-safe, plus
//! the run's own state (rollout counter, task-sampler state) beside them.
//!
//! ```text
//! <run>/checkpoint/model-12.mpk       policy weights            (burn-train)
//! <run>/checkpoint/optim-12.mpk       AdamW state               (burn-train)
//! <run>/checkpoint/scheduler-12.mpk   LR schedule position      (burn-train)
//! <run>/checkpoint/state-12.json      algorithm and sampler state   (seethink)
//! ```
//! With the optimizer state sharded (`trainer.sharding: OptimizerState`) each machine's
//! `optim-12.mpk` holds its writing worker's share of AdamW's state, and each other worker of
//! the machine writes its own, `optim-worker<rank>-12.mpk`, before the step's state file.
//!
//! Every file is written under `.partial/`, synced and renamed into place, so a run killed at
//! any moment never leaves a truncated file; a run resumes from the newest step whose four
//! files are all present. Saves happen every N steps and at the last one ([`SaveRule`]); once a
//! save is complete, checkpoints older than the newest K are removed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::ParamId;
use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder, PrecisionSettings, Record, Recorder,
    RecorderError,
};
use burn::tensor::backend::Backend;
use burn::train::checkpoint::{Checkpointer, CheckpointerError, FileCheckpointer};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::data_parallel::Worker;
use crate::error::{io, Result, TrainError};
use crate::learner::PolicyLearner;
use crate::sharding::Sharding;
use crate::train_backend::TrainBackend;

/// The file stems of one checkpoint as burn-train's file checkpointer names them, then ours.
pub const CHECKPOINT_FILES: [(&str, &str); 4] =
    [("model", "mpk"), ("optim", "mpk"), ("scheduler", "mpk"), ("state", "json")];

/// What a checkpoint holds besides burn-train's records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The algorithm's state ([`crate::algorithm::Algorithm::state`]; GRPO: `{"rollouts": n}`,
    /// the sampling seed's offset). Checkpoints from before algorithms had states hold GRPO's
    /// rollouts as `rollouts: n`, read here.
    #[serde(alias = "rollouts")]
    pub algorithm: serde_json::Value,
    /// The task sampler's state ([`seethink_curriculum::TaskSampler::state`]).
    pub sampler: serde_json::Value,
    /// The data-parallel workers of the run that wrote it (1 in checkpoints from before
    /// data parallelism): a resumed run must have as many.
    #[serde(default = "one")]
    pub workers: usize,
    /// What of the training state each worker held (`None` in checkpoints from before
    /// sharding): a resumed run must hold the same.
    #[serde(default)]
    pub sharding: Sharding,
}

fn one() -> usize {
    1
}

/// A record of one entry per parameter (burn's optimizer record, a `HashMap<ParamId, _>`) as
/// checkpoints hold it: a map in key order (a `BTreeMap` item), so that two identical runs
/// write identical `optim-N.mpk` files (a `HashMap`'s order changes from one map to the next).
/// Files of either order read back.
pub struct InKeyOrder<M>(pub M);

impl<B, M, T> Record<B> for InKeyOrder<M>
where
    B: Backend,
    M: IntoIterator<Item = (ParamId, T)> + FromIterator<(ParamId, T)> + Send,
    T: Record<B>,
{
    type Item<S: PrecisionSettings> = BTreeMap<String, T::Item<S>>;

    fn into_item<S: PrecisionSettings>(self) -> Self::Item<S> {
        self.0.into_iter().map(|(id, record)| (id.serialize(), record.into_item())).collect()
    }

    fn from_item<S: PrecisionSettings>(item: Self::Item<S>, device: &B::Device) -> Self {
        InKeyOrder(
            item.into_iter()
                .map(|(id, item)| (ParamId::deserialize(&id), T::from_item(item, device)))
                .collect(),
        )
    }
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

/// Which steps are saved: every multiple of `every` and step `last`.
#[derive(Clone, Debug)]
pub struct SaveRule {
    pub every: usize,
    pub last: usize,
}

impl SaveRule {
    /// Whether step `step` is saved: every `every` steps, the last one, and the one a run stops
    /// after when interrupted ([`crate::interrupt`]).
    pub fn saves(&self, step: usize) -> bool {
        step.is_multiple_of(self.every.max(1)) || step == self.last || crate::interrupt::stopping()
    }
}

/// The file recorder of the checkpoints: burn's named MessagePack at full precision, atomic.
type CheckpointRecorder = AtomicRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

/// A run's checkpoints in one directory (the layout above) as one worker sees them: burn-train's
/// file checkpointers for the learner's records, and the run's state beside them.
pub struct Checkpoints {
    dir: PathBuf,
    keep: usize,
    model: FileCheckpointer<CheckpointRecorder>,
    /// This worker's AdamW state: `optim`, or its own shard's file ([`Checkpoints::of_worker`]).
    optimizer: FileCheckpointer<CheckpointRecorder>,
    schedule: FileCheckpointer<CheckpointRecorder>,
    worker: Worker,
    /// Whether this worker writes the checkpoint (the first worker of each machine).
    writes: bool,
}

/// The start of an optimizer-state shard's stem, which its worker's rank completes.
const SHARD_STEM: &str = "optim-worker";

/// The stem of the optimizer-state shard of worker `rank` (not its machine's writer).
fn shard_stem(rank: usize) -> String {
    format!("{SHARD_STEM}{rank}")
}

impl Checkpoints {
    /// The checkpoints in `dir`, keeping the newest `keep` (at least 1), of a run's only worker.
    pub fn new(dir: &Path, keep: usize) -> Self {
        let checkpointer = |name: &str| FileCheckpointer::new(CheckpointRecorder::default(), dir, name);
        Self {
            dir: dir.to_path_buf(),
            keep: keep.max(1),
            model: checkpointer(CHECKPOINT_FILES[0].0),
            optimizer: checkpointer(CHECKPOINT_FILES[1].0),
            schedule: checkpointer(CHECKPOINT_FILES[2].0),
            worker: Worker::alone(),
            writes: true,
        }
    }

    /// These checkpoints as `worker` saves and restores them: the machine's writer (`writes`)
    /// everything, and, with the optimizer state sharded, every other worker its own shard of
    /// it.
    pub fn of_worker(mut self, worker: Worker, writes: bool) -> Self {
        if worker.shards_optimizer_state() && !writes {
            self.optimizer =
                FileCheckpointer::new(CheckpointRecorder::default(), &self.dir, &shard_stem(worker.rank()));
        }
        self.worker = worker;
        self.writes = writes;
        self
    }

    /// Saves `learner` and `state` as step `step`'s checkpoint, then removes the complete
    /// checkpoints older than the newest `keep`. A failed save returns its error and removes
    /// nothing, so the last good checkpoint stays. Every worker calls it: with the optimizer
    /// state sharded, each one not writing the checkpoint saves its shard, and the state file,
    /// which completes the step, is written after every worker has.
    pub fn save<B: TrainBackend>(
        &self,
        learner: &PolicyLearner<B>,
        step: usize,
        state: &RunState,
    ) -> Result<()> {
        // every worker takes the records, at once: with the weights sharded, it gathers them
        let (model, optimizer, schedule) = learner.records()?;
        if !self.writes {
            if self.worker.shards_optimizer_state() {
                let optimizer = InKeyOrder(optimizer);
                Checkpointer::<_, B>::save(&self.optimizer, step, optimizer).map_err(|e| self.failed(e))?;
                // every shard is on disk before any machine completes the step
                self.worker.leader_says(false)?;
            }
            return Ok(());
        }
        if self.worker.shards_optimizer_state() {
            self.worker.leader_says(false)?;
        }
        // the records, the state file last, then the removal of old checkpoints (their
        // optimizer shards included)
        Checkpointer::<_, B>::save(&self.model, step, model).map_err(|e| self.failed(e))?;
        Checkpointer::<_, B>::save(&self.optimizer, step, InKeyOrder(optimizer))
            .map_err(|e| self.failed(e))?;
        Checkpointer::<_, B>::save(&self.schedule, step, schedule).map_err(|e| self.failed(e))?;
        save_state(&self.dir, step, state)?;
        let complete = complete_checkpoints(&self.dir);
        let names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        for &old in &complete[..complete.len().saturating_sub(self.keep)] {
            let shards = names.iter().filter(|name| {
                name.strip_prefix(SHARD_STEM).is_some_and(|rest| rest.ends_with(&format!("-{old}.mpk")))
            });
            let files = CHECKPOINT_FILES.iter().map(|(stem, ext)| format!("{stem}-{old}.{ext}"));
            for file in files.chain(shards.cloned()) {
                let file = self.dir.join(file);
                fs::remove_file(&file).map_err(io(&file))?;
            }
        }
        Ok(())
    }

    /// Loads step `step`'s checkpoint into `learner` (on `device`) and returns the run's state.
    pub fn restore<B: TrainBackend>(
        &self,
        learner: &mut PolicyLearner<B>,
        step: usize,
        device: &B::Device,
    ) -> Result<RunState> {
        let model = Checkpointer::<_, B>::restore(&self.model, step, device).map_err(|e| self.failed(e))?;
        let InKeyOrder(optimizer) =
            Checkpointer::<_, B>::restore(&self.optimizer, step, device).map_err(|e| self.failed(e))?;
        let schedule =
            Checkpointer::<_, B>::restore(&self.schedule, step, device).map_err(|e| self.failed(e))?;
        learner.load_records((model, optimizer, schedule));
        load_state(&self.dir, step)
    }

    fn failed(&self, error: CheckpointerError) -> TrainError {
        TrainError::Checkpoint { dir: self.dir.clone(), message: error.to_string() }
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

/// Writes `state` as `dir/state-<step>.json` atomically.
fn save_state(dir: &Path, step: usize, state: &RunState) -> Result<()> {
    let path = dir.join(format!("state-{step}.json"));
    let partial = dir.join(".partial").join(format!("state-{step}.json"));
    fs::create_dir_all(dir.join(".partial")).map_err(io(dir))?;
    let json =
        serde_json::to_vec_pretty(state).map_err(|source| TrainError::Json { path: path.clone(), source })?;
    let mut file = fs::File::create(&partial).map_err(io(&partial))?;
    file.write_all(&json).and_then(|_| file.sync_all()).map_err(io(&partial))?;
    fs::rename(&partial, &path).map_err(io(&path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads `dir/state-<step>.json`.
fn load_state(dir: &Path, step: usize) -> Result<RunState> {
    let path = dir.join(format!("state-{step}.json"));
    let bytes = fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|source| TrainError::Json { path, source })
}

//! Reading tensors from a HuggingFace checkpoint directory, and writing one back.
//!
//! Handles a single `model.safetensors` or a sharded `model.safetensors.index.json`, and both
//! key layouts of the checkpoint's family ([`KeyLayouts`], given by the family: e.g. Qwen-VL's
//! legacy `visual.*`, `model.*` and current `model.visual.*`, `model.language_model.*`). Every
//! name is mapped to the current layout so model code asks for one spelling only.
//!
//! Export shares the loader's name mapping instead of repeating it: a *tracing* checkpoint
//! records every read the loader makes and hands out marker tensors, and the parameters of
//! the model built from it tell which read fed which parameter ([`export_tensors`]).
//! [`write_pretrained`] then writes those tensors atomically.

mod export;
mod peft;
mod trace;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::{backend::Backend, DType, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::tensor::{Metadata, SafeTensors, TensorInfo};
use safetensors::Dtype as StDtype;

use crate::error::{ModelError, Result};

pub use export::{write_pretrained, ExportOptions, HfTensor, DEFAULT_MAX_SHARD_BYTES};
pub use peft::write_peft_adapter;
pub use trace::export_tensors;
use trace::{Trace, TransformKind};

/// How a checkpoint spells its keys: each family has a legacy and a current layout (Qwen-VL:
/// transformers before and after 4.52; InternVL: the original release and transformers' `-hf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Legacy,
    Current,
}

/// A family's two key layouts as prefix rewrites `(canonical prefix, stored prefix)`.
///
/// Model code asks for every tensor by its *canonical* name (the current layout's). A stored
/// name is canonicalised by the first rule whose stored prefix it has, current rules first;
/// names matching no rule are stored as they are named (e.g. `lm_head.weight`). The layout
/// of a checkpoint is current if any stored name has a prefix of a current rule.
#[derive(Debug)]
pub struct KeyLayouts {
    pub legacy: &'static [(&'static str, &'static str)],
    pub current: &'static [(&'static str, &'static str)],
}

impl KeyLayouts {
    /// No rewriting: every name is canonical (tracing checkpoints).
    pub const IDENTITY: KeyLayouts = KeyLayouts { legacy: &[], current: &[] };

    fn rules(&self, layout: Layout) -> &'static [(&'static str, &'static str)] {
        match layout {
            Layout::Legacy => self.legacy,
            Layout::Current => self.current,
        }
    }

    /// The canonical name of a stored key, whatever layout it was stored in.
    pub fn canonical_name(&self, stored: &str) -> String {
        self.current
            .iter()
            .chain(self.legacy)
            .find_map(|(canonical, prefix)| {
                stored.strip_prefix(prefix).map(|rest| format!("{canonical}{rest}"))
            })
            .unwrap_or_else(|| stored.to_string())
    }

    /// The key under which canonical tensor `canonical` is stored in `layout` (the inverse of
    /// [`canonical_name`](Self::canonical_name)).
    pub fn stored_name(&self, layout: Layout, canonical: &str) -> String {
        self.rules(layout)
            .iter()
            .find_map(|(from, prefix)| canonical.strip_prefix(from).map(|rest| format!("{prefix}{rest}")))
            .unwrap_or_else(|| canonical.to_string())
    }

    /// The layout of a checkpoint holding these stored keys: current if any key has a
    /// current-only prefix, legacy otherwise.
    pub fn detect<'a>(&self, mut stored: impl Iterator<Item = &'a String>) -> Layout {
        if stored.any(|n| self.current.iter().any(|(_, prefix)| n.starts_with(prefix))) {
            Layout::Current
        } else {
            Layout::Legacy
        }
    }
}

/// A floating-point storage type of checkpoint tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    BF16,
    F16,
}

impl Dtype {
    /// The safetensors spelling of this type.
    pub fn safetensors(self) -> StDtype {
        match self {
            Self::F32 => StDtype::F32,
            Self::BF16 => StDtype::BF16,
            Self::F16 => StDtype::F16,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::BF16 | Self::F16 => 2,
        }
    }

    /// Little-endian bytes of `values` in this type; half types round to nearest, ties to
    /// even (as torch's `Tensor.to`).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            Self::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        }
    }

    /// The same type in burn.
    pub fn burn(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::BF16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }

    /// The type HF's `config.json` names `torch_dtype` (or `dtype`): `float32`, `bfloat16`,
    /// `float16`; `None` for any other.
    fn from_torch_name(name: &str) -> Option<Self> {
        match name {
            "float32" => Some(Self::F32),
            "bfloat16" => Some(Self::BF16),
            "float16" => Some(Self::F16),
            _ => None,
        }
    }

    /// The type holding the most elements among the float tensors of `shards` (F32 if none).
    fn of_weights(shards: &[Shard]) -> Self {
        let mut counts = [(Self::F32, 0usize), (Self::BF16, 0), (Self::F16, 0)];
        for info in shards.iter().flat_map(|s| s.metadata.tensors().into_values()) {
            let elements: usize = info.shape.iter().product();
            if let Some(slot) = counts.iter_mut().find(|(d, _)| d.safetensors() == info.dtype) {
                slot.1 += elements;
            }
        }
        // Ties keep the earlier entry: F32 first, then BF16.
        counts.iter().rev().max_by_key(|(_, n)| *n).map_or(Self::F32, |(d, _)| *d)
    }
}

/// The float type checkpoint directory `dir` stores its weights in: the type holding most of
/// their elements, read from the safetensors headers; without weight files (a `config.json`
/// alone, as `seethink plan` reads), its `dtype` (or `torch_dtype`) key, at the top or in
/// `text_config` (where Qwen3-VL's says it); f32 when none says.
pub fn stored_dtype(dir: &Path) -> Result<Dtype> {
    if dir.join("model.safetensors").exists() || dir.join("model.safetensors.index.json").exists() {
        let files = weight_files(dir)?;
        let shards = files.iter().map(|file| Shard::open(dir.join(file))).collect::<Result<Vec<_>>>()?;
        return Ok(Dtype::of_weights(&shards));
    }
    let path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ModelError::Json { path: path.clone(), source })?;
    let named = [&value, &value["text_config"]]
        .into_iter()
        .flat_map(|level| ["dtype", "torch_dtype"].map(|key| level.get(key).and_then(|v| v.as_str())))
        .flatten()
        .next();
    Ok(named.and_then(Dtype::from_torch_name).unwrap_or(Dtype::F32))
}

/// One memory-mapped `.safetensors` file and its parsed header.
struct Shard {
    path: PathBuf,
    data: Mmap,
    header_len: usize,
    metadata: Metadata,
}

/// The values of a freshly initialised tensor `name` of `shape` (see [`Checkpoint::random`]):
/// ones, zeros, or normal draws (Box–Muller) from a ChaCha8 stream keyed by `seed` and the
/// name's FNV-1a hash.
fn random_values(name: &str, shape: &[usize], seed: u64, std: f32) -> Vec<f32> {
    let count = shape.iter().product();
    if name.ends_with(".bias") {
        return vec![0.0; count];
    }
    if name.ends_with(".weight") && shape.len() == 1 {
        return vec![1.0; count];
    }
    normal_draws(seed ^ seethink_data::fnv1a(name), count, std, crate::parallel::threads_for(count))
}

/// `count` draws `std · √(−2 ln u₁) · cos(2π u₂)` (Box–Muller), `u₁, u₂` the next two `f32`s
/// of the ChaCha8 stream of `key`. Draw `i` reads the stream's words `2i` and `2i + 1`, so
/// `threads` contiguous shares, each seeking to its first word, give the same values as one
/// pass (a real-size model's 4·10⁹ draws take a minute on one core).
fn normal_draws(key: u64, count: usize, std: f32, threads: usize) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let share = count.div_ceil(threads.max(1)).max(1);
    let shares: Vec<std::ops::Range<usize>> =
        (0..count).step_by(share).map(|start| start..(start + share).min(count)).collect();
    let draws = crate::parallel::map_parallel(shares, threads, |range| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(key);
        rng.set_word_pos(2 * range.start as u128);
        range
            .map(|_| {
                let (u1, u2): (f32, f32) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random());
                std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect::<Vec<f32>>()
    });
    draws.concat()
}

/// Where a canonical tensor name lives: shard number and the name as stored.
struct Location {
    shard: usize,
    stored_name: String,
}

/// Where tensors come from: files on disk, a trace that records reads (export), or a random
/// initialisation.
enum Store {
    /// `read`: the canonical names read so far (see [`Checkpoint::refuse_unused`]).
    Files {
        shards: Vec<Shard>,
        index: HashMap<String, Location>,
        read: Mutex<HashSet<String>>,
    },
    Trace(Trace),
    Random {
        seed: u64,
        std: f32,
    },
}

/// An opened checkpoint directory: tensors by canonical name, converted to f32 on request.
pub struct Checkpoint {
    dir: PathBuf,
    keys: &'static KeyLayouts,
    layout: Layout,
    dtype: Dtype,
    store: Store,
    /// The type matrices (rank-2 tensors) are created in; `None`: the backend's float type.
    matrix_dtype: Option<DType>,
}

impl Checkpoint {
    /// Opens `dir/model.safetensors`, or every shard listed in `dir/model.safetensors.index.json`,
    /// naming tensors by `keys` (the family's key layouts).
    pub fn open(dir: impl AsRef<Path>, keys: &'static KeyLayouts) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let files = weight_files(&dir)?;
        let mut shards = Vec::with_capacity(files.len());
        let mut index = HashMap::new();
        for (shard, file) in files.iter().enumerate() {
            let loaded = Shard::open(dir.join(file))?;
            for stored_name in loaded.metadata.tensors().into_keys() {
                let location = Location { shard, stored_name: stored_name.clone() };
                index.insert(keys.canonical_name(&stored_name), location);
            }
            shards.push(loaded);
        }
        let layout = keys.detect(index.values().map(|l| &l.stored_name));
        let dtype = Dtype::of_weights(&shards);
        let read = Mutex::default();
        Ok(Self { dir, keys, layout, dtype, store: Store::Files { shards, index, read }, matrix_dtype: None })
    }

    /// A checkpoint that holds every tensor the loader asks for: it records each request and
    /// answers with a constant marker tensor of the requested shape (see [`export_tensors`]).
    /// Reports the current layout and f32.
    fn trace() -> Self {
        Self {
            dir: PathBuf::new(),
            keys: &KeyLayouts::IDENTITY,
            layout: Layout::Current,
            dtype: Dtype::F32,
            store: Store::Trace(Trace::default()),
            matrix_dtype: None,
        }
    }

    /// A checkpoint holding every tensor the loader asks for, freshly initialised as
    /// transformers' `_init_weights` does: a one-dimensional `*.weight` (a norm's scale) is 1, a
    /// `*.bias` 0, every other tensor `N(0, std²)` (transformers' `initializer_range`, 0.02 by
    /// default). Each tensor's values depend only on `seed` and its name. `dir` is only
    /// reported; the layout is the current one, the dtype f32.
    pub fn random(dir: impl AsRef<Path>, keys: &'static KeyLayouts, seed: u64, std: f32) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            keys,
            layout: Layout::Current,
            dtype: Dtype::F32,
            store: Store::Random { seed, std },
            matrix_dtype: None,
        }
    }

    /// This checkpoint creating its matrices (rank-2 tensors: linear weights, embedding tables)
    /// in `dtype`, converted on the host, so that weights kept in a narrower type
    /// ([`crate::nn::frozen`]) are never on the device in a wider one.
    pub fn with_matrix_dtype(mut self, dtype: DType) -> Self {
        self.matrix_dtype = Some(dtype);
        self
    }

    /// `values` of `shape` on `device`, a matrix in [`Checkpoint::with_matrix_dtype`]'s type.
    fn upload<B: Backend, const D: usize>(
        &self,
        values: Vec<f32>,
        shape: [usize; D],
        device: &B::Device,
    ) -> Tensor<B, D> {
        let data = TensorData::new(values, shape);
        match self.matrix_dtype.filter(|_| D == 2) {
            Some(dtype) => Tensor::from_data(data, (device, dtype)),
            None => Tensor::from_data(data, device),
        }
    }

    /// The directory this checkpoint was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key layout the tensors are stored in.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The family's key layouts this checkpoint was opened with.
    pub fn keys(&self) -> &'static KeyLayouts {
        self.keys
    }

    /// The float type holding most of the checkpoint's elements.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Whether a tensor with this canonical name exists.
    pub fn contains(&self, name: &str) -> bool {
        match &self.store {
            Store::Files { index, .. } => index.contains_key(name),
            Store::Trace(_) | Store::Random { .. } => true,
        }
    }

    /// Counts tensor `name` as used without reading it (see [`Checkpoint::refuse_unused`]).
    pub fn ignore(&self, name: &str) {
        if let Store::Files { read, .. } = &self.store {
            read.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(name.to_string());
        }
    }

    /// Refuses a checkpoint holding tensors that no read asked for (transformers only warns
    /// "Some weights … were not used"): a config.json with fewer layers than the weights would
    /// otherwise load silently and give wrong logits. The error names the first few;
    /// `SEETHINK_ALLOW_UNUSED_TENSORS=1` allows them.
    pub fn refuse_unused(&self) -> Result<()> {
        let Store::Files { index, read, .. } = &self.store else {
            return Ok(());
        };
        if std::env::var_os("SEETHINK_ALLOW_UNUSED_TENSORS").is_some_and(|v| v == "1") {
            return Ok(());
        }
        let read = read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut unused: Vec<&str> = index
            .iter()
            .filter(|(name, _)| !read.contains(*name))
            .map(|(_, l)| l.stored_name.as_str())
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        unused.sort_unstable();
        let count = unused.len();
        let mut first = unused.iter().take(3).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        if count > 3 {
            first.push_str(", …");
        }
        Err(ModelError::UnusedTensors { dir: self.dir.clone(), count, first })
    }

    /// Reads tensor `name` as f32 values, checking that its shape is `expected` and that every
    /// value is finite.
    pub fn read_f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let (shards, index, read) = match &self.store {
            Store::Files { shards, index, read } => (shards, index, read),
            Store::Trace(trace) => {
                let marker = trace.record(name, expected, TransformKind::Plain)?;
                return Ok(vec![marker; expected.iter().product()]);
            }
            Store::Random { seed, std } => return Ok(random_values(name, expected, *seed, *std)),
        };
        let location = index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor { dir: self.dir.clone(), name: name.to_string() })?;
        let shard = &shards[location.shard];
        let info =
            shard.metadata.info(&location.stored_name).expect("index built from this shard's metadata");
        if info.shape != expected {
            return Err(ModelError::ShapeMismatch {
                path: shard.path.clone(),
                name: location.stored_name.clone(),
                expected: expected.to_vec(),
                found: info.shape.clone(),
            });
        }
        read.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(name.to_string());
        let values = shard.values(&location.stored_name, info)?;
        // NaN or infinite weights would only show as garbage output, much later
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            let message = format!("tensor `{}` holds {bad} NaN or infinite values", location.stored_name);
            return Err(ModelError::Safetensors { path: shard.path.clone(), message });
        }
        Ok(values)
    }

    /// Loads tensor `name` of shape `shape` onto `device`, in the backend's float type (a
    /// matrix in [`Checkpoint::with_matrix_dtype`]'s).
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        if let Store::Trace(trace) = &self.store {
            let marker = trace.record(name, &shape, TransformKind::Plain)?;
            return Ok(trace::marker_tensor(marker, shape, device));
        }
        let values = self.read_f32(name, &shape)?;
        Ok(self.upload(values, shape, device))
    }

    /// Loads a tensor of shape `[rows, rest...]` as the matrix `[rest product, rows]`: HF
    /// `nn.Linear` (and a stride-equals-kernel `Conv3d`) stores `[out, in...]`, burn's `Linear`
    /// wants `[in, out]`.
    pub fn matrix_transposed<B: Backend>(
        &self,
        name: &str,
        shape: &[usize],
        device: &B::Device,
    ) -> Result<Tensor<B, 2>> {
        let rows = shape.first().copied().unwrap_or(1);
        let cols = shape.iter().skip(1).product::<usize>();
        if let Store::Trace(trace) = &self.store {
            let marker = trace.record(name, shape, TransformKind::Transposed)?;
            return Ok(trace::marker_tensor(marker, [cols, rows], device));
        }
        let values = self.read_f32(name, shape)?;
        Ok(self.upload(transpose(&values, rows, cols), [cols, rows], device))
    }

    /// The reads recorded by a tracing checkpoint, in order; empty for one opened from files.
    fn traced_reads(self) -> Vec<trace::TracedRead> {
        match self.store {
            Store::Trace(trace) => trace.into_reads(),
            Store::Files { .. } | Store::Random { .. } => Vec::new(),
        }
    }
}

/// The row-major transpose of the `rows × cols` matrix `values`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut transposed = vec![0.0f32; values.len()];
    for (r, row) in values.chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            transposed[c * rows + r] = v;
        }
    }
    transposed
}

/// The weight files of a checkpoint directory: the shards of its index, or `model.safetensors`.
fn weight_files(dir: &Path) -> Result<Vec<String>> {
    let single = dir.join("model.safetensors");
    let index_path = dir.join("model.safetensors.index.json");
    if index_path.exists() {
        shard_files(&index_path)
    } else if single.exists() {
        Ok(vec!["model.safetensors".to_string()])
    } else {
        Err(ModelError::Io {
            path: single,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "neither model.safetensors nor model.safetensors.index.json exists",
            ),
        })
    }
}

/// The distinct shard file names of a `model.safetensors.index.json`, in first-seen order.
fn shard_files(index_path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index_path)
        .map_err(|source| ModelError::Io { path: index_path.to_path_buf(), source })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| ModelError::Json { path: index_path.to_path_buf(), source })?;
    let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| ModelError::Config {
        path: index_path.to_path_buf(),
        key: "weight_map".into(),
        message: "missing or not an object".into(),
    })?;
    let mut files: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| ModelError::Config {
            path: index_path.to_path_buf(),
            key: format!("weight_map.{tensor}"),
            message: "shard file name must be a string".into(),
        })?;
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    Ok(files)
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self> {
        let file = File::open(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        // SAFETY: the mapping is read-only; a checkpoint modified while loaded is user error
        // that can at worst yield wrong values, as with any reader.
        let data =
            unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let (header_len, metadata) = SafeTensors::read_metadata(&data)
            .map_err(|e| ModelError::Safetensors { path: path.clone(), message: e.to_string() })?;
        Ok(Self { path, data, header_len, metadata })
    }

    /// The values of one tensor converted to f32.
    fn values(&self, name: &str, info: &TensorInfo) -> Result<Vec<f32>> {
        let start = 8 + self.header_len + info.data_offsets.0;
        let end = 8 + self.header_len + info.data_offsets.1;
        let bytes = &self.data[start..end];
        let values = match info.dtype {
            StDtype::F32 => {
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            StDtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32)
                .collect(),
            StDtype::BF16 => {
                bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            StDtype::F16 => {
                bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            other => {
                return Err(ModelError::UnsupportedDtype {
                    path: self.path.clone(),
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::normal_draws;

    #[test]
    fn random_draws_do_not_depend_on_the_thread_count() {
        let one = normal_draws(7, 1001, 0.02, 1);
        assert_eq!(one.len(), 1001);
        for threads in [2, 3, 8] {
            assert_eq!(normal_draws(7, 1001, 0.02, threads), one, "{threads} threads");
        }
        assert_ne!(normal_draws(8, 1001, 0.02, 1), one, "another key draws other values");
    }
}

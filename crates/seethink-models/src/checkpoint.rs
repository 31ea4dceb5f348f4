//! Reading tensors from a HuggingFace checkpoint directory.
//!
//! Handles a single `model.safetensors` or a sharded `model.safetensors.index.json`, and both
//! Qwen-VL key layouts: legacy (`visual.*`, `model.*`) and current transformers
//! (`model.visual.*`, `model.language_model.*`). Every name is mapped to the current layout
//! ([`canonical_name`]) so model code asks for one spelling only.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::tensor::{Metadata, SafeTensors, TensorInfo};
use safetensors::Dtype;

use crate::error::{ModelError, Result};

/// The current transformers name of a checkpoint key, whatever layout it was stored in.
pub fn canonical_name(stored: &str) -> String {
    if stored.starts_with("model.visual.") || stored.starts_with("model.language_model.") {
        stored.to_string()
    } else if let Some(rest) = stored.strip_prefix("visual.") {
        format!("model.visual.{rest}")
    } else if let Some(rest) = stored.strip_prefix("model.") {
        format!("model.language_model.{rest}")
    } else {
        stored.to_string()
    }
}

/// One memory-mapped `.safetensors` file and its parsed header.
struct Shard {
    path: PathBuf,
    data: Mmap,
    header_len: usize,
    metadata: Metadata,
}

/// Where a canonical tensor name lives: shard number and the name as stored.
struct Location {
    shard: usize,
    stored_name: String,
}

/// An opened checkpoint directory: tensors by canonical name, converted to f32 on request.
pub struct Checkpoint {
    dir: PathBuf,
    shards: Vec<Shard>,
    index: HashMap<String, Location>,
}

impl Checkpoint {
    /// Opens `dir/model.safetensors`, or every shard listed in `dir/model.safetensors.index.json`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let files = if index_path.exists() {
            shard_files(&index_path)?
        } else if single.exists() {
            vec!["model.safetensors".to_string()]
        } else {
            return Err(ModelError::Io {
                path: single,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "neither model.safetensors nor model.safetensors.index.json exists",
                ),
            });
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut index = HashMap::new();
        for (shard, file) in files.iter().enumerate() {
            let loaded = Shard::open(dir.join(file))?;
            for stored_name in loaded.metadata.tensors().into_keys() {
                let location = Location { shard, stored_name: stored_name.clone() };
                index.insert(canonical_name(&stored_name), location);
            }
            shards.push(loaded);
        }
        Ok(Self { dir, shards, index })
    }

    /// The directory this checkpoint was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a tensor with this canonical name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Reads tensor `name` as f32 values, checking that its shape is `expected`.
    pub fn read_f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let location = self
            .index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor { dir: self.dir.clone(), name: name.to_string() })?;
        let shard = &self.shards[location.shard];
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
        shard.values(&location.stored_name, info)
    }

    /// Loads tensor `name` of shape `shape` onto `device`, in the backend's float type.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let values = self.read_f32(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
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
        let values = self.read_f32(name, shape)?;
        let rows = shape[0];
        let cols = values.len() / rows.max(1);
        let mut transposed = vec![0.0f32; values.len()];
        for (r, row) in values.chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                transposed[c * rows + r] = v;
            }
        }
        Ok(Tensor::from_data(TensorData::new(transposed, [cols, rows]), device))
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
            Dtype::F32 => {
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32)
                .collect(),
            Dtype::BF16 => {
                bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Dtype::F16 => {
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

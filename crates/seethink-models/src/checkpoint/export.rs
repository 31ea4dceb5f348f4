//! Writing HF tensors as a checkpoint directory, atomically.
//!
//! Everything is written into a sibling staging directory (`<out_dir>.tmp-<pid>`), fsynced,
//! then renamed into place; an existing `out_dir` is first renamed aside
//! (`<out_dir>.old-<pid>`) and removed after the swap. A process killed at any point leaves
//! either the previous directory or the complete new one at `out_dir` (or, killed between
//! the two renames, nothing there and the previous directory intact under its aside name).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::SafeTensorError;

use super::{Checkpoint, Dtype, KeyLayouts, Layout};
use crate::error::{ModelError, Result};

/// One tensor as HF stores it: canonical (current layout) name, HF shape, row-major values.
pub type HfTensor = (String, Vec<usize>, Vec<f32>);

/// Default largest shard: 4 GiB of tensor data.
pub const DEFAULT_MAX_SHARD_BYTES: usize = 4 << 30;

/// Files besides the weights that a user of a checkpoint needs, copied when present.
/// `config.json` is required and copied first.
const SIDE_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
    "vocab.json",
    "merges.txt",
    "video_preprocessor_config.json",
];

/// How to write an exported checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Key layout; `None` keeps the source checkpoint's.
    pub layout: Option<Layout>,
    /// Storage type of every tensor; `None` keeps the source checkpoint's dominant type.
    pub dtype: Option<Dtype>,
    /// Largest tensor data per file: more than this is split into
    /// `model-0000i-of-0000n.safetensors` shards listed in `model.safetensors.index.json`
    /// (a tensor larger than this gets a shard of its own).
    pub max_shard_bytes: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { layout: None, dtype: None, max_shard_bytes: DEFAULT_MAX_SHARD_BYTES }
    }
}

/// Writes `tensors` as a HF checkpoint at `out_dir`, with `config.json` and the side files
/// (tokenizer, chat template, processor configs) of `source_dir`, replacing whatever was at
/// `out_dir` atomically (see the module docs). `source_dir` may equal `out_dir`; `keys` are the
/// family's key layouts.
pub fn write_pretrained(
    tensors: Vec<HfTensor>,
    source_dir: &Path,
    out_dir: &Path,
    options: ExportOptions,
    keys: &'static KeyLayouts,
) -> Result<()> {
    let (layout, dtype) = resolve_format(source_dir, options, keys)?;
    let staging = sibling(out_dir, "tmp")?;
    remove_path(&staging)?;
    let format = Format { keys, layout, dtype, max_shard_bytes: options.max_shard_bytes };
    if let Err(e) = stage(&staging, tensors, source_dir, format) {
        // Best effort: the staging error is the one worth reporting.
        let _ = remove_path(&staging);
        return Err(e);
    }
    swap_into_place(&staging, out_dir)
}

/// The resolved options of one export.
#[derive(Clone, Copy)]
struct Format {
    keys: &'static KeyLayouts,
    layout: Layout,
    dtype: Dtype,
    max_shard_bytes: usize,
}

/// The requested layout and dtype, defaulting to those of the checkpoint in `source_dir`.
fn resolve_format(
    source_dir: &Path,
    options: ExportOptions,
    keys: &'static KeyLayouts,
) -> Result<(Layout, Dtype)> {
    if let (Some(layout), Some(dtype)) = (options.layout, options.dtype) {
        return Ok((layout, dtype));
    }
    let source = Checkpoint::open(source_dir, keys)?;
    Ok((options.layout.unwrap_or(source.layout()), options.dtype.unwrap_or(source.dtype())))
}

/// Writes the whole checkpoint into the fresh directory `dir`.
fn stage(dir: &Path, tensors: Vec<HfTensor>, source_dir: &Path, format: Format) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    copy_side_files(source_dir, dir)?;
    write_weights(dir, tensors, format)?;
    sync_dir(dir)
}

/// Copies `config.json` (required) and every [`SIDE_FILES`] entry that exists.
fn copy_side_files(source_dir: &Path, dir: &Path) -> Result<()> {
    copy_file(&source_dir.join("config.json"), &dir.join("config.json"))?;
    for name in SIDE_FILES {
        let from = source_dir.join(name);
        if from.is_file() {
            copy_file(&from, &dir.join(name))?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(io_error(from))?;
    write_synced(to, &bytes)
}

/// Writes the tensors as one `model.safetensors`, or as shards plus an index.
fn write_weights(dir: &Path, tensors: Vec<HfTensor>, format: Format) -> Result<()> {
    let sizes: Vec<usize> = tensors.iter().map(|(_, _, v)| v.len() * format.dtype.size()).collect();
    let groups = shard_groups(&sizes, format.max_shard_bytes);
    let mut tensors = tensors.into_iter();
    if groups.len() == 1 {
        return write_shard(&dir.join("model.safetensors"), tensors, format).map(drop);
    }
    let mut weight_map = BTreeMap::new();
    for (i, &count) in groups.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, groups.len());
        for name in write_shard(&dir.join(&file), tensors.by_ref().take(count), format)? {
            weight_map.insert(name, file.clone());
        }
    }
    let index = serde_json::json!({
        "metadata": { "total_size": sizes.iter().sum::<usize>() },
        "weight_map": weight_map,
    });
    let text = serde_json::to_string_pretty(&index).expect("a JSON value serialises");
    write_synced(&dir.join("model.safetensors.index.json"), text.as_bytes())
}

/// How many consecutive tensors go in each shard: a shard is closed when the next tensor
/// would take it past `max_bytes`. Always at least one (possibly empty) shard.
fn shard_groups(sizes: &[usize], max_bytes: usize) -> Vec<usize> {
    let mut groups = vec![0usize];
    let mut filled = 0usize;
    for &size in sizes {
        let last = groups.last_mut().expect("never empty");
        if *last > 0 && filled + size > max_bytes {
            groups.push(1);
            filled = size;
        } else {
            *last += 1;
            filled += size;
        }
    }
    groups
}

/// Writes one safetensors file of `tensors` (stored names, converted type) and fsyncs it;
/// returns the stored names.
fn write_shard(path: &Path, tensors: impl Iterator<Item = HfTensor>, format: Format) -> Result<Vec<String>> {
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .map(|(name, shape, values)| {
            (format.keys.stored_name(format.layout, &name), shape, format.dtype.encode(&values))
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(format.dtype.safetensors(), shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| safetensors_error(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), path).map_err(|e| safetensors_error(path, e))?;
    File::open(path).and_then(|f| f.sync_all()).map_err(io_error(path))?;
    Ok(encoded.into_iter().map(|(name, _, _)| name).collect())
}

/// Creates `path` with `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io_error(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error(path))
}

/// Moves `staging` to `out_dir`, replacing (and finally removing) whatever was there.
fn swap_into_place(staging: &Path, out_dir: &Path) -> Result<()> {
    let aside = sibling(out_dir, "old")?;
    let replacing = out_dir.symlink_metadata().is_ok();
    if replacing {
        remove_path(&aside)?;
        std::fs::rename(out_dir, &aside).map_err(io_error(out_dir))?;
    }
    if let Err(source) = std::fs::rename(staging, out_dir) {
        if replacing {
            // Best effort: put the previous checkpoint back where it was.
            let _ = std::fs::rename(&aside, out_dir);
        }
        let _ = remove_path(staging);
        return Err(ModelError::Io { path: out_dir.to_path_buf(), source });
    }
    sync_dir(&parent(out_dir))?;
    if replacing {
        remove_path(&aside)?;
    }
    Ok(())
}

/// `<dir>.<tag>-<pid>` next to `dir`.
fn sibling(dir: &Path, tag: &str) -> Result<PathBuf> {
    let name = dir.file_name().ok_or_else(|| ModelError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "an output directory needs a name"),
    })?;
    let mut sibling = name.to_os_string();
    sibling.push(format!(".{tag}-{}", std::process::id()));
    Ok(dir.with_file_name(sibling))
}

/// The directory containing `path` (`.` for a bare relative name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes a file, symlink or directory tree at `path`; nothing there is fine.
fn remove_path(path: &Path) -> Result<()> {
    let removed = match path.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    removed.map_err(io_error(path))
}

/// Makes the entries of directory `dir` durable (a no-op where directories cannot be opened).
fn sync_dir(dir: &Path) -> Result<()> {
    if cfg!(unix) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))?;
    }
    Ok(())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_path_buf(), source }
}

fn safetensors_error(path: &Path, error: SafeTensorError) -> ModelError {
    match error {
        SafeTensorError::IoError(source) => ModelError::Io { path: path.to_path_buf(), source },
        other => ModelError::Safetensors { path: path.to_path_buf(), message: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_close_before_overflowing() {
        assert_eq!(shard_groups(&[4, 4, 4, 4], 8), vec![2, 2]);
        assert_eq!(shard_groups(&[4, 20, 4], 8), vec![1, 1, 1]);
        assert_eq!(shard_groups(&[3, 3, 3], 100), vec![3]);
        assert_eq!(shard_groups(&[], 8), vec![0]);
        assert_eq!(shard_groups(&[1, 1], 0), vec![1, 1]);
    }

    #[test]
    fn siblings_keep_the_parent() {
        let pid = std::process::id();
        assert_eq!(sibling(Path::new("/a/out"), "tmp").unwrap(), PathBuf::from(format!("/a/out.tmp-{pid}")));
        assert!(sibling(Path::new("/"), "tmp").is_err());
    }
}

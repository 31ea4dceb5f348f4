//! seethink-lab: the sandbox and the paper's experiments, above the library crates.
//!
//! - [`sandbox`]: the sandbox's base model, pretrained from random weights (`seethink pretrain`);
//! - [`preset`]: the staged and merged runs on it ([`train_with`], the design card's example);
//! - [`ablations`]: the suites of arms over seeds that write the paper's tables;
//! - [`controls`]: the positive and negative controls beside them;
//! - [`passrate`] and [`perception_data`]: the difficulty axis' pass rates and the
//!   perception-data pipeline, each resumable through a [`jsonl_cache`];
//! - [`provenance`]: where a committed result comes from, and its numerics fingerprint.
//!
//! The `seethink` facade re-exports every module at its old path (`seethink::sandbox`, …).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

// the crates below, by the names the facade gives them (`crate::rl::…` as `seethink::rl::…`)
use {
    seethink_curriculum as curriculum, seethink_data as data, seethink_eval as eval,
    seethink_models as models, seethink_reward as reward, seethink_rl as rl,
};

pub mod ablations;
pub mod controls;
pub mod jsonl_cache;
pub mod passrate;
pub mod perception_data;
pub mod preset;
pub mod provenance;
pub mod sandbox;

pub use preset::{train_with, train_with_algorithm};

/// The repository's root (two levels above this crate): where the committed base models,
/// configs and test fixtures lie.
pub fn repository_root() -> &'static Path {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().and_then(Path::parent).unwrap_or(crate_dir)
}

/// `path` under the [`repository_root`].
pub fn in_repository(path: &str) -> PathBuf {
    repository_root().join(path)
}

/// Creates `dir` and checks that a file can be written there, before any long work whose output
/// goes there.
pub fn writable_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    let probe = dir.join(".seethink-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the output directory {} is not writable", dir.display()))?;
    std::fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))?;
    Ok(())
}

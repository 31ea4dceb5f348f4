//! seethink: post-training vision-language models with reinforcement learning and capability
//! curricula, on burn.
//!
//! This facade re-exports the workspace crates (the sandbox and the paper's experiments from
//! `seethink-lab` at their old paths), picks a backend per enabled feature and holds the
//! commands of the `seethink` binary.

pub use seethink_curriculum as curriculum;
pub use seethink_data as data;
pub use seethink_eval as eval;
pub use seethink_models as models;
pub use seethink_reward as reward;
pub use seethink_rl as rl;

pub use seethink_lab as lab;
pub use seethink_lab::{
    ablations, controls, jsonl_cache, passrate, perception_data, preset, provenance, sandbox, train_with,
    train_with_algorithm,
};

pub mod backend;
pub mod cli;
pub mod plan;

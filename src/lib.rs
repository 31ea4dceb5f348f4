//! seethink: post-training vision-language models with reinforcement learning and capability
//! curricula, on burn.
//!
//! This facade re-exports the workspace crates, picks a backend per enabled feature and holds
//! the commands of the `seethink` binary.

pub use seethink_curriculum as curriculum;
pub use seethink_data as data;
pub use seethink_eval as eval;
pub use seethink_models as models;
pub use seethink_reward as reward;
pub use seethink_rl as rl;

pub mod ablations;
pub mod backend;
pub mod cli;
pub mod controls;
pub mod jsonl_cache;
pub mod passrate;
pub mod perception_data;
pub mod plan;
pub mod preset;
pub mod provenance;
pub mod sandbox;

pub use preset::{train_with, train_with_algorithm};

//! seethink: post-training vision-language models with reinforcement learning and capability
//! curricula, on burn.
//!
//! This facade re-exports the workspace crates and picks a default backend per enabled feature.

pub use seethink_data as data;
pub use seethink_models as models;

pub mod backend;

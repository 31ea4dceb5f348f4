//! Reinforcement learning for vision-language models: the GRPO objective of EasyR1 (as used by
//! "From Seeing to Thinking"), SFT, and the optimisation loop they share.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod grpo;
pub mod logprobs;
pub mod metrics;
pub mod optim;
pub mod rl;
pub mod run;
pub mod sft;
pub mod supervised;
pub mod trainer;

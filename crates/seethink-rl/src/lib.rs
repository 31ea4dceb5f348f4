//! Reinforcement learning for vision-language models: the GRPO objective of EasyR1 (as used by
//! "From Seeing to Thinking") and the log-probabilities it is computed from.

pub mod grpo;
pub mod logprobs;

//! The algorithm seam and the algorithms on it: [`algorithm`] ([`algorithm::Algorithm`],
//! [`algorithm::AlgorithmBuilder`]), [`builtin`] (GRPO and SFT by `algorithm.trainer`, with a
//! user's losses and estimators: [`builtin::WithPlugins`]), [`grpo`] (advantages, losses, the
//! step, the plug-in registry), [`sft`], [`shared_sampler`] (the task sampler as data-parallel
//! workers share it).

pub mod algorithm;
pub mod builtin;
pub mod grpo;
pub mod sft;
pub mod shared_sampler;

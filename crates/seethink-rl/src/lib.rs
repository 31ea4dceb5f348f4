//! Reinforcement learning for vision-language models: the GRPO objective of EasyR1 (as used by
//! "From Seeing to Thinking") and SFT, trained by one explicit run loop.
//!
//! The crate by idea, a folder each (the important types in brackets):
//!
//! | folder | modules |
//! |---|---|
//! | [`config`] | [`config::TrainConfig`] (RON, `--set` overrides), [`config::prompt`] (format prompts) |
//! | [`run`] | [`run::train_on`], [`run::run_tasks_with`]; [`run::phases`] ([`run::phases::train_curriculum_with`]), [`run::train`] (`seethink train`), the run's files: [`run::checkpoint`] (atomic, bitwise resume), [`run::lock`], [`run::interrupt`], [`run::metrics`], [`run::progress`], [`run::tensorboard`] |
//! | [`algo`] | the seam ([`algo::algorithm::Algorithm`], [`algo::algorithm::AlgorithmBuilder`]), [`algo::builtin`] (GRPO and SFT; [`algo::builtin::WithPlugins`]), [`algo::grpo`] (advantages, losses and estimators by name, the step), [`algo::sft`] |
//! | [`engine`] (the crate `seethink-engine`) | the policy, its passes and update on one worker or many: [`engine::policy`], [`engine::logprobs`], [`engine::gradient_sink`], [`engine::layer_checkpoints`], [`engine::learner`], [`engine::optim`], [`engine::data_parallel`], [`engine::sharding`], [`engine::weight_shards`] |
//! | [`eval`] | [`eval::evaluation`] (held-out tasks), [`eval::benchmarks`] (VLMEvalKit files), [`eval::eval_model`] |
//! | [`plan`] | a run's memory per component and the fit verdict |
//!
//! Every module is also where it was before the folders (`seethink_rl::grpo`,
//! `seethink_rl::phases`, `seethink_rl::learner`, …), re-exported at the root.

pub mod algo;
pub mod config;
pub mod error;
pub mod eval;
pub mod plan;
pub mod run;

/// The execution engine, a crate of its own below this one ([`seethink_engine`]).
pub use seethink_engine as engine;

pub use algo::{algorithm, builtin, grpo, sft, shared_sampler};
pub use config::prompt;
pub use engine::{
    data_parallel, gradient_sink, layer_checkpoints, learner, logprobs, optim, policy, scoring_calls,
    sharding, step_marks, train_backend, weight_shards,
};
pub use eval::{benchmarks, eval_model, evaluation};
pub use run::{checkpoint, interrupt, lock, metrics, phases, progress, tensorboard, train};

//! Reinforcement learning for vision-language models: the GRPO objective of EasyR1 (as used by
//! "From Seeing to Thinking") and SFT, trained by one explicit run loop.
//!
//! The crate by idea (the important types in brackets):
//!
//! | idea | modules |
//! |---|---|
//! | settings | [`config`] ([`config::TrainConfig`], RON, `--set` overrides), [`prompt`] (format prompt) |
//! | entry points | [`train`] (`seethink train`), [`run`] ([`run::train_on`], [`run::run_tasks_with`]), [`phases`] ([`phases::train_curriculum_with`]: a curriculum's phases back to back) |
//! | the algorithm seam | [`algorithm`] ([`algorithm::Algorithm`], [`algorithm::AlgorithmBuilder`], [`builtin`] ([`builtin::BuiltIn`]: GRPO and SFT on the seam); [`grpo`] ([`grpo::Grpo`]: advantages, loss, step), [`sft`] (loss, gradients, [`sft::sft_step`]) |
//! | the policy and its update | [`policy`] ([`policy::PolicyModel`], [`policy::Sequence`]), [`scoring_calls`] (a scoring pass's inputs: the sequences, the decoder calls, the scoring positions), [`logprobs`] (chunked log-probs and gradients), [`gradient_sink`] and [`layer_checkpoints`] (gradients handed over as they complete, layers recomputed), [`learner`] ([`learner::PolicyLearner`], [`learner::apply_update`]), [`optim`] (AdamW kernels, LR schedules), [`train_backend`] |
//! | workers | [`data_parallel`] ([`data_parallel::Worker`]: alone or in burn's collective; [`data_parallel::SharedSampler`], [`data_parallel::Topology`]); [`sharding`] (what of the training state each worker holds, which worker owns which parameter), [`weight_shards`] (sharded weights, gathered per use) |
//! | a run's files | [`checkpoint`] (atomic, bitwise resume), [`lock`], [`interrupt`], [`metrics`], [`progress`], [`tensorboard`] |
//! | evaluation points | [`evaluation`] (held-out tasks), [`benchmarks`] (VLMEvalKit files), [`eval_model`] |
//! | memory | [`plan`] (a run's memory per component, the fit verdict), [`step_marks`] (points inside an update where a benchmark reads the pools) |

pub mod algorithm;
pub mod benchmarks;
pub mod builtin;
pub mod checkpoint;
pub mod config;
pub mod data_parallel;
pub mod error;
pub mod eval_model;
pub mod evaluation;
pub mod gradient_sink;
pub mod grpo;
pub mod interrupt;
pub mod layer_checkpoints;
mod layer_prefetch;
pub mod learner;
pub mod lock;
pub mod logprobs;
pub mod metrics;
pub mod optim;
pub mod phases;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod prompt;
pub mod run;
pub mod scoring_calls;
pub mod sft;
pub mod sharding;
pub mod step_marks;
pub mod tensorboard;
pub mod train;
pub mod train_backend;
mod vision_checkpoints;
pub mod weight_shards;
mod weighted_sum;

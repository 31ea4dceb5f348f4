//! Reinforcement learning for vision-language models: the GRPO objective of EasyR1 (as used by
//! "From Seeing to Thinking") and SFT, trained by one explicit run loop.
//!
//! - [`train`]: the entry point (`seethink train`): one run or a curriculum's phases;
//! - [`run`]: a whole run from a [`config::TrainConfig`] (`train` and every
//!   training test go through [`run::train_on`]);
//! - [`learner`]: the training state (the [`policy::PolicyModel`] module, AdamW, LR schedule) and
//!   the shared update;
//! - [`algorithm`]: the algorithm seam of the run loop, with GRPO and SFT as its impls;
//! - [`phases`]: a curriculum's phases as runs back to back, with held-out evaluations;
//! - [`evaluation`]: a run's evaluation points: held-out tasks and [`benchmarks`] (VLMEvalKit);
//! - [`grpo`], [`sft`]: one step of each (a `seethink_curriculum::TaskSampler` chooses the tasks);
//! - [`checkpoint`]: the one checkpoint layout, atomic and bitwise-resumable;
//! - [`data_parallel`]: N workers over devices and machines on burn's collective.

pub mod algorithm;
pub mod benchmarks;
pub mod checkpoint;
pub mod config;
pub mod data_parallel;
pub mod error;
pub mod eval_model;
pub mod evaluation;
pub mod grpo;
pub mod interrupt;
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
pub mod sft;
pub mod tensorboard;
pub mod train;
pub mod train_backend;

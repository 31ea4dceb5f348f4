//! The execution engine: the policy, its passes and its update, on one worker or many. It knows
//! no curriculum, reward, evaluation or algorithm, and reads no config: the learner takes its
//! own settings ([`learner::LearnerSettings`]) and the workers carry whatever the leader holds
//! ([`data_parallel::run_data_parallel`]). Its errors are its own ([`error::EngineError`]);
//! where an algorithm's code runs inside it (a loss, a worker's step), the engine's functions
//! take that code's error type, any that an [`error::EngineError`] converts into.
//!
//! | idea | modules |
//! |---|---|
//! | the policy and its passes | [`policy`], [`scoring_calls`] (a scoring pass's inputs), [`logprobs`] (chunked log-probs and gradients), [`train_backend`] |
//! | gradients | [`gradient_sink`] and [`layer_checkpoints`] (gradients handed over as they complete, layers recomputed), `vision_checkpoints`, `weighted_sum`, `layer_prefetch` |
//! | the update | [`learner`] ([`learner::PolicyLearner`], [`learner::apply_update`]), [`optim`] (AdamW kernels, LR schedules), [`step_marks`] |
//! | workers | [`data_parallel`] ([`data_parallel::Worker`], [`data_parallel::run_data_parallel`]), [`sharding`], [`weight_shards`] |

pub mod data_parallel;
pub mod error;
pub mod gradient_sink;
pub mod layer_checkpoints;
pub mod layer_prefetch;
pub mod learner;
pub mod logprobs;
pub mod optim;
pub mod policy;
pub mod scoring_calls;
pub mod sharding;
pub mod step_marks;
pub mod train_backend;
pub mod vision_checkpoints;
pub mod weight_shards;
pub mod weighted_sum;

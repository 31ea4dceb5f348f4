//! Evaluation harness for seethink: how well does a vision-language model *see* and *think*?
//!
//! - [`runner`]: the [`Responder`] trait (a model or a scripted fake) and [`answer_and_grade`],
//!   which samples `k` answers per task and grades them with a [`seethink_reward::Reward`].
//! - [`metrics`]: the unbiased pass@k estimator and group statistics.
//! - [`report`]: [`evaluate`] and its [`EvalReport`] — accuracy, format rate, length, pass@1 / pass@k overall, per
//!   capability, per level and per capability × level — as JSON or markdown; per-task pass
//!   rates for the curriculum's difficulty axis ([`with_pass_rates`]).
//! - [`attribution`]: [`attribute_errors`], which tells perception errors from reasoning
//!   errors by asking the perception sub-questions of wrong visual-reasoning answers.
//! - [`plot`]: [`plot_accuracy`], grouped accuracy bars as SVG.
//! - [`model`]: [`ModelResponder`], a checkpoint of any family as a [`Responder`].
//! - [`benchmarks`]: the paper's VLMEvalKit benchmarks (MathVista … POPE), prompted and scored
//!   as VLMEvalKit does, with the paper's averages ([`benchmarks::SuiteReport`]).
//!
//! ```no_run
//! use seethink_eval::{attribute_errors, evaluate, Responder};
//! # use seethink_data::Task;
//! # use seethink_reward::Reward;
//! # fn run(responder: &mut dyn Responder, tasks: &[Task], reward: &dyn Reward) -> seethink_eval::Result<()> {
//! let mut report = evaluate(responder, tasks, reward, 4)?;
//! report.attribution = Some(attribute_errors(responder, tasks, &report.tasks, reward)?);
//! println!("{}", report.to_markdown());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod attribution;
pub mod benchmarks;
pub mod error;
pub mod group;
mod markdown;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod progress;
pub mod report;
pub mod runner;

pub use attribution::{
    attribute_errors, AttributedError, Attribution, ErrorKind, LevelAttribution, SubAnswer,
};
pub use benchmarks::{Benchmark, BenchmarkData, ScoreOptions, SuiteReport};
pub use error::{EvalError, Result};
pub use group::{group_name, UNLABELLED};
pub use metrics::{pass_at_k, Stats};
pub use model::ModelResponder;
pub use plot::{plot_accuracy, plot_curves, plot_lines};
pub use report::{
    best_constant, evaluate, mean_interval, minimum_detectable_difference, paired_difference,
    paired_difference_of, with_pass_rates, CapabilityStats, CellStats, ConstantAnswer, EvalReport, Interval,
    LevelStats, QuestionTypeStats,
};
pub use runner::{answer_and_grade, Responder, Response, Sample, TaskResult};

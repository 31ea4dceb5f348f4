//! Evaluation points of a run: [`evaluation`] (the held-out tasks before and after each phase),
//! [`benchmarks`] (VLMEvalKit files), [`eval_model`] (a checkpoint loaded once for both).

pub mod benchmarks;
pub mod eval_model;
pub mod evaluation;

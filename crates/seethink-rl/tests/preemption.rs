//! GRPO with the rollout's own KV cache bounded (`rollout.kv_cache_positions`), end to end on the
//! generic path (`Autodiff<NdArray<f64>>`, the code path of wgpu and cuda, where each prompt's
//! cache is shared by its samples): rows preempted from the first decoding step on and resumed
//! from their prompt and tokens so far sample the same responses, so the run trains the same
//! model and logs the same rewards as the run without a bound.
//!
//! Its own test binary: burn 0.21 keeps one default float type per device type, which
//! `NdArray<f32>` and `NdArray<f64>` share, so a process creates tensors of one of them only.

mod common;

use std::path::Path;
use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use common::{logged, task, tiny_config, Letters};
use seethink_models::generate::KV_BLOCK;
use seethink_models::AnyVlm;
use seethink_rl::config::Trainer;
use seethink_rl::run::train_on;

type G = Autodiff<NdArray<f64>>;

/// Every float parameter's values, in visiting order.
fn parameters(model: &AnyVlm<NdArray<f64>>) -> Vec<TensorData> {
    struct Collect(Vec<TensorData>);
    impl ModuleVisitor<NdArray<f64>> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<NdArray<f64>, D>>) {
            self.0.push(param.val().into_data());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

fn train(out: &Path, kv_cache_positions: usize) -> AnyVlm<NdArray<f64>> {
    let mut config = tiny_config(out, Trainer::Grpo, 2, 2);
    config.rollout.max_new_tokens = 12;
    config.rollout.kv_cache_positions = kv_cache_positions;
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2"), task("three", "three", "3")];
    train_on::<G>(&config, tasks, Arc::new(Letters), &Default::default()).unwrap()
}

#[test]
fn a_bounded_rollout_cache_trains_the_same_model() {
    let (whole_dir, bounded_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = train(whole_dir.path(), 0);
    // one block: one of the 8 rows goes on, the others are preempted after their first token
    let bounded = train(bounded_dir.path(), KV_BLOCK);
    assert_eq!(parameters(&bounded), parameters(&whole), "bitwise the same trained weights");
    for key in ["reward", "response_length", "pg_loss", "grad_norm"] {
        assert_eq!(logged(bounded_dir.path(), key), logged(whole_dir.path(), key), "{key}");
    }
}

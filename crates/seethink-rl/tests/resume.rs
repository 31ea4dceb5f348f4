//! The run loop on burn-train: a run stopped after step k and started again in the same
//! directory resumes from its checkpoint and ends with weights bitwise identical to an
//! uninterrupted run; checkpoints are pruned to the last K and every step is logged once.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{logged, task, tiny_config, weights, Letters, I};
use seethink_models::AnyVlm;
use seethink_rl::checkpoint::complete_checkpoints;
use seethink_rl::config::Trainer;
use seethink_rl::run::train_on;

/// `trainer` for `steps` steps in run directory `dir` (resuming from what is there).
fn run(dir: &Path, trainer: Trainer, steps: usize) -> AnyVlm<I> {
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2"), task("three", "three", "3")];
    let mut config = tiny_config(dir, trainer, steps, 2);
    config.actor.mini_batches = 2;
    config.actor.micro_batch_size = 4;
    train_on::<common::B>(&config, tasks, Arc::new(Letters), &Default::default()).unwrap()
}

fn assert_resumes_bitwise(trainer: Trainer, key: &str) {
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = run(straight_dir.path(), trainer, 4);

    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), trainer, 2);
    assert_eq!(complete_checkpoints(&dir.path().join("checkpoint")), vec![1, 2]);
    assert_ne!(weights(&first), weights(&straight));
    // the process "dies" after step 2 (plus a stray metrics line of an unsaved step 3)
    let metrics = dir.path().join("metrics.jsonl");
    let mut lines = std::fs::read_to_string(&metrics).unwrap();
    lines.push_str(&format!("{{\"step\":3,\"{key}\":0.5}}\n"));
    std::fs::write(&metrics, lines).unwrap();

    let resumed = run(dir.path(), trainer, 4);
    assert_eq!(weights(&straight), weights(&resumed), "{trainer:?}");
    assert_ne!(weights(&straight), weights(&common::base_model()));
    assert_eq!(complete_checkpoints(&dir.path().join("checkpoint")), vec![3, 4]);
    assert_eq!(logged(dir.path(), "step"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(logged(dir.path(), key), logged(straight_dir.path(), key));
    assert!(dir.path().join("final/config.json").exists());
}

#[test]
fn resumed_grpo_run_is_bitwise_identical() {
    assert_resumes_bitwise(Trainer::Grpo, "reward");
}

#[test]
fn resumed_sft_run_is_bitwise_identical() {
    assert_resumes_bitwise(Trainer::Sft, "loss");
}

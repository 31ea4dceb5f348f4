//! The run loop on burn-train: a run stopped after step k and started again in the same
//! directory resumes from its checkpoint and ends with weights bitwise identical to an
//! uninterrupted run, and writes the same checkpoint files byte for byte; checkpoints are pruned
//! to the last K and every step is logged once.

mod common;

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use common::{logged, task, tiny_config, weights, Letters, I};
use seethink_models::nn::LoraConfig;
use seethink_models::AnyVlm;
use seethink_rl::checkpoint::complete_checkpoints;
use seethink_rl::config::Trainer;
use seethink_rl::run::train_on;

/// `trainer` for `steps` steps in run directory `dir` (resuming from what is there), with
/// `lora` adapters if given.
fn run(dir: &Path, trainer: Trainer, steps: usize, lora: Option<LoraConfig>) -> AnyVlm<I> {
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2"), task("three", "three", "3")];
    let mut config = tiny_config(dir, trainer, steps, 2);
    config.actor.lora = lora;
    config.actor.mini_batches = 2;
    config.actor.micro_batch_size = 4;
    train_on::<common::B>(&config, tasks, Arc::new(Letters), &Default::default()).unwrap()
}

fn assert_resumes_bitwise(trainer: Trainer, key: &str, lora: Option<LoraConfig>) {
    let run = |dir: &Path, steps: usize| run(dir, trainer, steps, lora.clone());
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = run(straight_dir.path(), 4);

    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), 2);
    assert_eq!(complete_checkpoints(&dir.path().join("checkpoint")), vec![1, 2]);
    assert_ne!(weights(&first), weights(&straight));
    // the process "dies" after step 2 (plus a stray metrics line of an unsaved step 3)
    let metrics = dir.path().join("metrics.jsonl");
    let mut lines = std::fs::read_to_string(&metrics).unwrap();
    lines.push_str(&format!("{{\"step\":3,\"{key}\":0.5}}\n"));
    std::fs::write(&metrics, lines).unwrap();

    let resumed = run(dir.path(), 4);
    assert_eq!(weights(&straight), weights(&resumed), "{trainer:?}");
    assert_ne!(weights(&straight), weights(&common::base_model()));
    assert_eq!(complete_checkpoints(&dir.path().join("checkpoint")), vec![3, 4]);
    // and wrote the same checkpoint files, byte for byte (`cmp` tells a user as much)
    for step in [3, 4] {
        for file in ["model", "optim", "scheduler"]
            .map(|f| format!("{f}-{step}.mpk"))
            .into_iter()
            .chain([format!("state-{step}.json")])
        {
            let read = |dir: &Path| std::fs::read(dir.join("checkpoint").join(&file)).unwrap();
            assert!(read(dir.path()) == read(straight_dir.path()), "{trainer:?}: {file} differs");
        }
    }
    assert_eq!(logged(dir.path(), "step"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(logged(dir.path(), key), logged(straight_dir.path(), key));
    assert!(dir.path().join("final/config.json").exists());
}

#[test]
fn resumed_grpo_run_is_bitwise_identical() {
    assert_resumes_bitwise(Trainer::Grpo, "reward", None);
}

/// With LoRA a checkpoint's weights are the adapters only: its model file is a small part of
/// the base's float32 bytes, and a resumed run still ends bitwise where a straight one does.
#[test]
fn resumed_grpo_run_with_lora_is_bitwise_identical_from_adapter_checkpoints() {
    let lora = LoraConfig { rank: 4, alpha: 8.0, ..Default::default() };
    assert_resumes_bitwise(Trainer::Grpo, "reward", Some(lora.clone()));
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), Trainer::Grpo, 1, Some(lora));
    let model_file = std::fs::read_dir(dir.path().join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("model"))
        .unwrap();
    let (bytes, base) =
        (std::fs::metadata(&model_file).unwrap().len(), 4 * common::base_model().num_params());
    assert!(bytes * 10 < base as u64, "{}: {bytes} bytes, the base's weights {base}", model_file.display());
}

#[test]
fn resumed_sft_run_is_bitwise_identical() {
    assert_resumes_bitwise(Trainer::Sft, "loss", None);
}

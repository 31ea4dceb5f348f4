//! GRPO on burn-train: a run stopped after step k and started again in the same directory
//! resumes from its checkpoint and ends with weights bitwise identical to an uninterrupted
//! run; checkpoints are pruned to the last K and every step is logged once.

mod common;

use std::path::Path;
use std::sync::Arc;

use burn::module::AutodiffModule;
use common::{checkpoint, task, weights, B, I};
use seethink_data::Task;
use seethink_models::generate::SamplingConfig;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::grpo::{Grpo, GrpoConfig};
use seethink_rl::rl::{complete_checkpoints, train_grpo, GrpoRun, TaskSource};
use seethink_rl::trainer::{Learner, OptimConfig};

/// Reward: the share of letters among the reply's characters (a dense, deterministic signal).
struct Letters;

impl Reward for Letters {
    fn score(&self, _task: &Task, response: &str) -> RewardBreakdown {
        let total = response.chars().count().max(1) as f32;
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        RewardBreakdown { overall: letters / total, format: 0.0, accuracy: letters / total }
    }
}

fn fresh() -> Grpo<B> {
    let model = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap();
    let config = GrpoConfig {
        group_size: 4,
        mini_batches: 2,
        micro_batch_size: 4,
        sampling: SamplingConfig { max_new_tokens: 4, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 11 },
        ..Default::default()
    };
    Grpo::new(Learner::new(model, OptimConfig { lr: 1e-3, ..Default::default() }), config)
}

/// GRPO for `steps` steps in run directory `dir` (resuming from what is there).
fn run(dir: &Path, steps: usize) -> AnyVlm<I> {
    let processor = Processor::from_dir(&checkpoint()).unwrap();
    let tasks = vec![task("one", "one", ""), task("two", "two", ""), task("three", "three", "")];
    let source = TaskSource { tasks: Arc::new(tasks), reward: Arc::new(Letters), data_seed: 3, start: 0 };
    let schedule = GrpoRun { steps, prompts_per_step: 2, save_every: 1, keep_last: 2 };
    train_grpo(fresh(), Arc::new(processor), source, schedule, dir).unwrap().valid()
}

#[test]
fn resumed_run_is_bitwise_identical() {
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = run(straight_dir.path(), 4);

    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), 2);
    assert_eq!(complete_checkpoints(&dir.path().join("checkpoint"), "mpk"), vec![1, 2]);
    assert_ne!(weights(&first), weights(&straight));
    // the process "dies" after step 2 (plus a stray metrics line of an unsaved step 3)
    let metrics = dir.path().join("metrics.jsonl");
    let mut logged = std::fs::read_to_string(&metrics).unwrap();
    logged.push_str("{\"step\":3,\"reward\":0.5}\n");
    std::fs::write(&metrics, logged).unwrap();

    let resumed = run(dir.path(), 4);
    assert_eq!(weights(&straight), weights(&resumed));
    let base = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap().valid();
    assert_ne!(weights(&straight), weights(&base));

    assert_eq!(complete_checkpoints(&dir.path().join("checkpoint"), "mpk"), vec![3, 4]);
    let steps: Vec<u64> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4]);
    let rewards = |path: &Path| -> Vec<f64> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reward"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(rewards(&metrics), rewards(&straight_dir.path().join("metrics.jsonl")));
}

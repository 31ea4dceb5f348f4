//! The shipped learning task, run from its configs exactly as a user would: SFT warm-up
//! (configs/tiny-sft.ron), then GRPO from the warm-up's export (configs/tiny-grpo-letters.ron)
//! on burn-train, raising the mean accuracy reward of the rollouts.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use seethink_rl::config::TrainConfig;
use seethink_rl::train::train;

type B = Autodiff<NdArray<f32>>;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `configs/<name>` with the model, data and run directory made absolute.
fn config(name: &str, model: &Path, out: &Path) -> TrainConfig {
    let data = repo().join("configs/data/pick-letter.jsonl");
    let overrides = [
        format!("model={:?}", model.display().to_string()),
        format!("data.train={:?}", data.display().to_string()),
        format!("trainer.out={:?}", out.display().to_string()),
    ];
    TrainConfig::load(&repo().join("configs").join(name), &overrides).unwrap()
}

/// The `key` value of every line of a run's `metrics.jsonl`.
fn logged(run: &Path, key: &str) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()[key].as_f64().unwrap())
        .collect()
}

#[test]
fn sft_warm_up_then_grpo_from_the_shipped_configs_learns_the_task() {
    let runs = tempfile::tempdir().unwrap();
    let (sft, grpo) = (runs.path().join("sft"), runs.path().join("grpo"));
    let base = repo().join("tests/fixtures/qwen3_vl/checkpoint");
    train::<B>(&config("tiny-sft.ron", &base, &sft), &Default::default()).unwrap();
    let loss = logged(&sft, "loss");
    assert!(loss[loss.len() - 1] < loss[0] * 0.5, "SFT loss {loss:?}");

    train::<B>(&config("tiny-grpo-letters.ron", &sft.join("final"), &grpo), &Default::default()).unwrap();
    let accuracy = logged(&grpo, "accuracy");
    let last: f64 = accuracy[accuracy.len() - 10..].iter().sum::<f64>() / 10.0;
    println!("GRPO rollout accuracy: first step {:.3}, mean of the last 10 steps {last:.3}", accuracy[0]);
    assert!(accuracy[0] < 0.3 && last > 0.7, "{accuracy:?}");
    assert!(grpo.join("final/config.json").exists());
}

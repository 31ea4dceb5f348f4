//! RAFT, an algorithm from outside seethink, trained by seethink's stock loop on the tiny
//! committed Qwen3-VL checkpoint: through a curriculum's phases (its metrics in each phase's
//! metrics.jsonl, its rollout counter in every checkpoint), and a run killed inside a phase
//! resumes to bitwise the same weights.

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use custom_algorithm::Raft;
use seethink::curriculum::Staged;
use seethink::data::synth::{generate, SynthConfig};
use seethink::data::{Capability, Task};
use seethink::rl::config::TrainConfig;
use seethink::rl::phases::{train_curriculum_with, PhasesOutcome};

type B = Autodiff<NdArray>;

fn tasks() -> Vec<Task> {
    generate(&SynthConfig::uniform(2), 7).unwrap().into_iter().map(|t| t.task).collect()
}

/// 3 steps of 2 prompts per phase, 4 samples each, into `dir/run`.
fn config(dir: &Path) -> TrainConfig {
    let checkpoint = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint");
    let out = dir.join("run");
    let ron = format!(
        r#"(
            model: {checkpoint:?},
            data: (train: "in-memory", format_prompt: Plain, seed: 3),
            algorithm: (reward: Direct),
            actor: (lr: 1e-3, micro_batch_size: 8),
            rollout: (n: 4, max_new_tokens: 3, seed: 11),
            trainer: (steps: 3, prompts_per_step: 2, save_every: 1, keep_last: 2, out: {out:?}),
        )"#
    );
    let path = dir.join("config.ron");
    std::fs::write(&path, ron).unwrap();
    TrainConfig::load(&path, &[]).unwrap()
}

fn run(config: &TrainConfig) -> PhasesOutcome {
    let reward = config.algorithm.reward.reward();
    let stages = Staged::new([Capability::Perception, Capability::TextReasoning]);
    train_curriculum_with::<B>(config, &stages, tasks(), reward, &Default::default(), &Raft::build::<B>)
        .unwrap()
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn final_weights(outcome: &PhasesOutcome) -> Vec<u8> {
    std::fs::read(outcome.finals.last().unwrap().join("model.safetensors")).unwrap()
}

#[test]
fn raft_trains_through_the_stock_loop_and_resumes_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let straight = run(&config);
    let phase = dir.path().join("run/01-perception");
    let lines = json_lines(&phase.join("metrics.jsonl"));
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let (reward, best) = (line["reward"].as_f64().unwrap(), line["best_reward"].as_f64().unwrap());
        assert!(best >= reward, "the best of a group is at least its mean: {line}");
        assert!(line["loss"].as_f64().unwrap() > 0.0, "a supervised step on the best responses: {line}");
    }
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(phase.join("checkpoint/state-2.json")).unwrap())
            .unwrap();
    assert_eq!(state["algorithm"], serde_json::json!({ "rollouts": 2 }), "RAFT's state: {state}");
    assert!(lines.iter().all(|l| l["grad_norm"].as_f64().unwrap() > 0.0), "every step updates: {lines:?}");

    // killed after step 2 of phase 1: its step-3 checkpoint, final model and phase 2 gone
    std::fs::remove_dir_all(phase.join("final")).unwrap();
    for file in ["model-3.mpk", "optim-3.mpk", "scheduler-3.mpk", "state-3.json"] {
        std::fs::remove_file(phase.join("checkpoint").join(file)).unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("run/02-text_reasoning")).unwrap();
    let resumed = run(&config);
    assert!(final_weights(&resumed) == final_weights(&straight), "resumed to different weights");
}

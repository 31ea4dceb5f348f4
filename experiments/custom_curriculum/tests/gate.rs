//! The perception gate, a curriculum from outside seethink, through seethink's stage chaining on
//! the tiny committed Qwen3-VL checkpoint: the gate ends its phase early, the second phase draws
//! from the run's pool by index, and a run killed inside a phase resumes bitwise.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use custom_curriculum::PerceptionGate;
use seethink::data::synth::{generate, SynthConfig};
use seethink::data::{Capability, Task};
use seethink::rl::config::TrainConfig;
use seethink::rl::phases::{train_curriculum, PhasesOutcome};

fn tasks() -> Vec<Task> {
    generate(&SynthConfig::uniform(2), 7).unwrap().into_iter().map(|t| t.task).collect()
}

/// GRPO, 3 steps of 2 prompts per phase at most, into `dir/run`.
fn config(dir: &Path) -> TrainConfig {
    let checkpoint = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint");
    let out = dir.join("run");
    let ron = format!(
        r#"(
            model: {checkpoint:?},
            data: (train: "in-memory", format_prompt: Plain, seed: 3),
            algorithm: (trainer: Grpo, reward: Direct),
            actor: (lr: 1e-3, micro_batch_size: 8),
            rollout: (n: 4, max_new_tokens: 3, seed: 11),
            trainer: (steps: 3, prompts_per_step: 2, save_every: 1, keep_last: 2, out: {out:?}),
        )"#
    );
    let path = dir.join("config.ron");
    std::fs::write(&path, ron).unwrap();
    TrainConfig::load(&path, &[]).unwrap()
}

fn run(config: &TrainConfig, gate: &PerceptionGate) -> PhasesOutcome {
    let reward = config.algorithm.reward.reward();
    train_curriculum::<Autodiff<NdArray>>(config, gate, tasks(), reward, &Default::default()).unwrap()
}

/// The `step` of every line of a phase's metrics.jsonl.
fn steps(phase: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(phase.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect()
}

fn final_weights(outcome: &PhasesOutcome) -> Vec<u8> {
    let last: &PathBuf = outcome.finals.last().unwrap();
    std::fs::read(last.join("model.safetensors")).unwrap()
}

#[test]
fn an_open_gate_ends_perception_after_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let outcome = run(&config, &PerceptionGate { threshold: 0.0, window: 1, reasoning_steps: 3 });
    let run_dir = dir.path().join("run");
    assert_eq!(steps(&run_dir.join("01-perception")), [1], "the gate opens after one step");
    assert_eq!(steps(&run_dir.join("02-reasoning")), [1, 2, 3]);
    assert_eq!(outcome.finals.len(), 2);
    // plan.json speaks of the run's pool: phase 2 is every task that is not perception
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    let pool = tasks();
    let reasoning: Vec<usize> =
        (0..pool.len()).filter(|&i| pool[i].capability != Capability::Perception).collect();
    assert_eq!(plan[1]["tasks"], serde_json::json!(reasoning));
}

#[test]
fn a_run_killed_inside_the_gated_phase_resumes_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let closed = PerceptionGate { threshold: 2.0, window: 2, reasoning_steps: 3 };
    let straight = run(&config, &closed);
    let phase = dir.path().join("run/01-perception");
    assert_eq!(steps(&phase), [1, 2, 3], "a closed gate runs the whole budget");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(phase.join("checkpoint/state-2.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["sampler"]["recent"].as_array().unwrap().len(),
        2,
        "the window is checkpointed: {state}"
    );
    // killed after step 2 of phase 1: its step-3 checkpoint, final model and phase 2 gone
    std::fs::remove_dir_all(phase.join("final")).unwrap();
    for file in ["model-3.mpk", "optim-3.mpk", "scheduler-3.mpk", "state-3.json"] {
        std::fs::remove_file(phase.join("checkpoint").join(file)).unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("run/02-reasoning")).unwrap();
    let resumed = run(&config, &closed);
    assert!(final_weights(&resumed) == final_weights(&straight), "resumed to different weights");
}

#[test]
fn the_tutorial_lists_this_crate_s_policy_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("../../docs/curricula.md")).unwrap();
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let tutorial = docs.split("### Tutorial").nth(1).expect("docs/curricula.md has the tutorial");
    let listing = tutorial.split("```rust\n").nth(1).and_then(|rest| rest.split("```").next());
    assert_eq!(listing, Some(lib.as_str()), "docs/curricula.md's listing differs from src/lib.rs");
}

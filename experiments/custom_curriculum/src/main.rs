//! The perception gate on the CPU sandbox: the committed base model, the procedural benchmark
//! and the held-out evaluations of `staged_qwen3`, with the phases of [`PerceptionGate`].
//!
//! ```text
//! cargo run --release -p custom-curriculum -- [--threshold 0.6] [--window 5] [--out runs/perception_gate]
//! ```

use anyhow::Result;
use burn::backend::{Autodiff, NdArray};
use custom_curriculum::PerceptionGate;
use seethink::preset::{CpuPreset, HELDOUT_TASKS, STAGE_STEPS, TRAIN_TASKS};

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let gate = PerceptionGate {
        threshold: value("--threshold").map_or(Ok(0.6), |v| v.parse())?,
        window: value("--window").map_or(Ok(5), |v| v.parse())?,
    };
    let out = value("--out").map_or("runs/perception_gate".into(), Into::into);
    let mut config = CpuPreset {
        out,
        base: seethink::sandbox::committed_base(),
        stage_steps: STAGE_STEPS,
        train_tasks: TRAIN_TASKS,
        heldout_tasks: HELDOUT_TASKS,
        eval_k: 4,
        seed: 0,
    }
    .prepare()?;
    // each phase runs at most the perception stage's steps (its own PhaseSettings could say otherwise)
    config.trainer.steps = STAGE_STEPS.perception;
    let tasks = seethink::rl::run::load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    // prints the held-out table (also in <out>/staged/summary.md)
    let outcome = seethink::rl::phases::train_curriculum::<Autodiff<NdArray>>(
        &config,
        &gate,
        tasks,
        reward,
        &Default::default(),
    )?;
    println!("final model: {}", outcome.finals.last().map_or("-".into(), |f| f.display().to_string()));
    Ok(())
}

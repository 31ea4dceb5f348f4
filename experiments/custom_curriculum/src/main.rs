//! The perception gate on the CPU sandbox: the committed base model, the procedural benchmark
//! and the held-out evaluations of `staged_qwen3`, with the phases of [`PerceptionGate`]
//! (perception at most the preset's perception steps).
//!
//! ```text
//! cargo run --release -p custom-curriculum -- [--threshold 0.6] [--window 5] [--out runs/perception_gate]
//! ```

use anyhow::Result;
use burn::backend::NdArray;
use custom_curriculum::PerceptionGate;
use seethink::preset::{CpuPreset, STAGE_STEPS};

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let gate = PerceptionGate {
        threshold: value("--threshold").map_or(Ok(0.6), |v| v.parse())?,
        window: value("--window").map_or(Ok(5), |v| v.parse())?,
        reasoning_steps: STAGE_STEPS.text_reasoning + STAGE_STEPS.visual_reasoning,
    };
    let out = value("--out").map_or("runs/perception_gate".into(), Into::into);
    let preset = CpuPreset { out, eval_k: 4, ..CpuPreset::default() };
    // prints the held-out table (also in <out>/staged/summary.md)
    let outcome = seethink::train_with::<NdArray>(&preset, &gate, &Default::default())?;
    println!("final model: {}", outcome.finals.last().map_or("-".into(), |f| f.display().to_string()));
    Ok(())
}

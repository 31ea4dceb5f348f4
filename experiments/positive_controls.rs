//! The sandbox's positive controls ([`seethink::controls`]): GRPO from the committed base model
//! on one capability at a time, and merged, each evaluated on the held-out set before and after.
//! A curriculum comparison means something only when these hold.
//!
//! ```text
//! cargo run --release --example positive_controls             # writes experiments/results/controls/
//! cargo run --release --example positive_controls -- --smoke  # a few steps on a few tasks
//! ```
//! prints and writes `controls.md` (the table with a verdict per control) and `controls.json`;
//! re-running resumes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use seethink::controls::{controls_table, run_controls};
use seethink::preset::CpuPreset;
use seethink::provenance::machine;

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

#[derive(Parser, Debug)]
#[command(about = "Positive controls: does GRPO from the base model move what it trains?")]
struct Args {
    /// GRPO steps of each capability's control: `N` or `P,T,V` (merged runs their sum).
    #[arg(long, default_value_t = seethink::preset::STAGE_STEPS)]
    stage_steps: seethink::preset::StageSteps,
    /// Held-out tasks per capability.
    #[arg(long, default_value_t = seethink::preset::HELDOUT_TASKS)]
    heldout_tasks: usize,
    /// Samples per held-out task (8: paired intervals of about ±0.02 per capability).
    #[arg(long, default_value_t = 8)]
    eval_k: usize,
    /// Seed of the training data and the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Two steps per control on four held-out tasks per capability: checks the protocol runs.
    #[arg(long)]
    smoke: bool,
    /// Backend to run on: cuda, wgpu or ndarray, those compiled in (default: the first of them
    /// compiled in).
    #[arg(long, default_value = seethink::backend::BEST)]
    backend: seethink::backend::BackendKind,
    /// Run directory.
    #[arg(long, default_value = "runs/positive_controls")]
    out: PathBuf,
    /// Results directory (default `experiments/results/controls`, `<out>/results` with --smoke).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Print every step's metrics instead of a progress bar.
    #[arg(long)]
    verbose: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    seethink::rl::progress::set_verbose(args.verbose);
    let started = std::time::Instant::now();
    let commit = seethink::provenance::commit();
    let (stage_steps, heldout_tasks, eval_k) = match args.smoke {
        true => (seethink::preset::StageSteps::uniform(2), 4, 1),
        false => (args.stage_steps, args.heldout_tasks, args.eval_k),
    };
    let preset = CpuPreset {
        out: args.out.clone(),
        base: seethink::sandbox::committed_base(),
        max_new_tokens: seethink::sandbox::MAX_RESPONSE_TOKENS,
        stage_steps,
        train_tasks: seethink::preset::TRAIN_TASKS,
        heldout_tasks,
        eval_k,
        seed: args.seed,
        heldout_seed: seethink::sandbox::VALIDATION_SEED,
        pass_rate_samples: 0,
    };
    let controls = seethink::with_backend!(args.backend, B => run_controls::<B>(&preset))?;
    let results = args.results.clone().unwrap_or_else(|| match args.smoke {
        true => args.out.join("results"),
        false => "experiments/results/controls".into(),
    });
    std::fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;
    let command = seethink::provenance::command_line("cargo run --release --example positive_controls --");
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let table = format!(
        "# Positive controls\n\n`{command}` at commit {}, numerics `{}`, on {}, {minutes:.1} min{}; {} held-out \
         tasks per capability × {eval_k} samples at T = 1, paired over tasks.\n\n{}",
        commit,
        seethink::provenance::NUMERICS,
        machine(),
        if args.smoke { " (smoke: checks that it runs, not what it finds)" } else { "" },
        heldout_tasks,
        controls_table(&controls)
    );
    std::fs::write(results.join("controls.md"), &table).context("writing controls.md")?;
    std::fs::write(results.join("controls.json"), serde_json::to_string_pretty(&controls)? + "\n")
        .context("writing controls.json")?;
    println!("{table}");
    Ok(())
}

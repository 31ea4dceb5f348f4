//! The ablation suite: the paper's comparisons (staged vs merged vs reverse order, RL vs
//! caption-SFT perception, capability × difficulty, adaptive policies) over several seeds on a
//! CPU, with nothing downloaded ([`seethink::ablations`]).
//!
//! ```text
//! cargo run --release --example ablations -- --seeds 3      # the full suite
//! cargo run --release --example ablations -- --smoke        # one seed, a few steps per arm
//! cargo run --release --example ablations -- --seed-list 1   # only seed 1 (run seeds side by side)
//! cargo run --release --features cuda --example ablations -- --backend cuda \
//!     --config configs/paper/qwen3_vl_8b.ron --model DIR --captions data/captions.jsonl --seeds 1
//! ```
//! With `--config`, every arm starts from that run config's checkpoint (`--model` overrides it)
//! and trains on its data (records with a capability each), evaluated on its `eval` data; stage
//! steps come from its curriculum's phases unless `--stage-steps` is given
//! ([`seethink::ablations::Suite::on_config`]).
//! writes the tables (mean and 95% interval over seeds, paired differences against merged),
//! curves, raw per-run records and a header into `experiments/results/` (the smoke run into
//! `runs/ablations-smoke/results/`) after every finished arm; re-running resumes, from the
//! results folder alone when the run directory is gone (a fresh checkout of a folder committed
//! mid-suite runs only the arms it lacks).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use seethink::ablations::{run_suite, Arm, FromConfig, Suite};
use seethink::rl::config::TrainConfig;

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

#[derive(Parser, Debug)]
#[command(about = "The paper's ablations at CPU scale, over seeds")]
struct Args {
    /// Seeds 0..N.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Only these seeds (comma-separated), instead of 0..N: lets separate processes run seeds
    /// side by side into one `--out` and one `--results` folder (each finished arm rewrites the
    /// folder with every process's runs: tables over all of them).
    #[arg(long, value_delimiter = ',')]
    seed_list: Vec<u64>,
    /// One seed and a handful of steps per arm: checks that the suite runs.
    #[arg(long)]
    smoke: bool,
    /// Backend to run on: cuda, wgpu or ndarray, those compiled in (default: the first of them
    /// compiled in).
    #[arg(long, default_value = seethink::backend::BEST)]
    backend: seethink::backend::BackendKind,
    /// Only these arms (comma-separated keys: merged, staged, reverse, sft_perception,
    /// difficulty_only, capability_x_difficulty, learning_progress, plateau, reasoning_only,
    /// perception_filtered, perception_unfiltered, length_penalty, verbosity_reward).
    #[arg(long, value_delimiter = ',')]
    arms: Vec<String>,
    /// Steps of each stage: `N` or `P,T,V` (perception, text, visual reasoning); one-phase
    /// arms run their sum.
    #[arg(long)]
    stage_steps: Option<seethink::preset::StageSteps>,
    /// Start every arm from the sandbox's base model of varied verbosity
    /// (experiments/sandbox/base-verbose, `seethink pretrain --verbosity varied`), with
    /// responses of up to 192 new tokens, instead of the committed base model and 96.
    #[arg(long, conflicts_with = "config")]
    verbose_base: bool,
    /// Seed of the sandbox's held-out set: by default the test set
    /// ([`seethink::sandbox::TEST_SEED`]), which no setting was tuned on; the validation set
    /// ([`seethink::sandbox::VALIDATION_SEED`], 1000) is where settings are chosen.
    #[arg(long, default_value_t = seethink::sandbox::TEST_SEED, conflicts_with = "config")]
    heldout_seed: u64,
    /// Run directory (default `runs/ablations`, `runs/ablations-smoke` with --smoke,
    /// `runs/ablations-config` with --config).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Results directory (default `experiments/results`, `<out>/results` with --smoke or --config).
    #[arg(long)]
    results: Option<PathBuf>,
    /// A run config (e.g. configs/paper/qwen3_vl_8b.ron): run the suite on its checkpoint, data
    /// and `eval` section instead of the sandbox.
    #[arg(long, conflicts_with = "smoke")]
    config: Option<PathBuf>,
    /// With --config: the checkpoint directory every arm starts from (overrides `model`).
    #[arg(long, requires = "config")]
    model: Option<PathBuf>,
    /// With --config: the device's memory (e.g. `80GiB`); a suite whose config's memory plan
    /// does not fit is refused, as `seethink train` refuses it (on CUDA, `nvidia-smi`'s figure
    /// when not given).
    #[arg(long, requires = "config", value_parser = seethink::plan::parse_bytes)]
    memory: Option<u64>,
    /// With --config: the SFT arm's caption tasks (perception records of source `captions`).
    #[arg(long, requires = "config")]
    captions: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut suite = if let Some(path) = &args.config {
        let mut config = TrainConfig::load(path, &[])?;
        if let Some(model) = &args.model {
            config.model = model.clone();
        }
        seethink::cli::ready_to_run(&mut config, path, args.backend, args.memory)?;
        let from = FromConfig { config, captions: args.captions.clone() };
        let out = args.out.clone().unwrap_or_else(|| "runs/ablations-config".into());
        let results = args.results.clone().unwrap_or_else(|| out.join("results"));
        Suite::on_config(from, args.stage_steps, args.seeds, out, results)?
    } else if args.smoke {
        let out = args.out.clone().unwrap_or_else(|| "runs/ablations-smoke".into());
        let results = args.results.clone().unwrap_or_else(|| out.join("results"));
        Suite::smoke(out, results)
    } else {
        let out = args.out.clone().unwrap_or_else(|| "runs/ablations".into());
        let results = args.results.clone().unwrap_or_else(|| "experiments/results".into());
        Suite::full(args.seeds, out, results)
    };
    if !args.arms.is_empty() {
        suite.arms = args
            .arms
            .iter()
            .map(|key| Arm::parse(key).ok_or_else(|| anyhow::anyhow!("unknown arm `{key}`")))
            .collect::<Result<_>>()?;
    }
    if !args.seed_list.is_empty() {
        suite.seeds = args.seed_list.clone();
    }
    if args.verbose_base {
        suite.base = seethink::sandbox::committed_verbose_base();
        suite.max_new_tokens = seethink::sandbox::MAX_VERBOSE_RESPONSE_TOKENS;
    }
    if let Some(steps) = args.stage_steps {
        suite.stage_steps = steps;
    }
    suite.heldout_seed = args.heldout_seed;
    suite.command = seethink::provenance::command_line("cargo run --release --example ablations --");
    seethink::with_backend!(args.backend, B => run_suite::<B>(&suite))?;
    Ok(())
}

//! The main job: the paper's capability curriculum (GRPO on perception, then textual reasoning,
//! then visual reasoning, each phase from the previous one's weights) on a Qwen3-VL model.
//!
//! ```text
//! cargo run --release --example staged_qwen3
//! ```
//! runs on a CPU with nothing downloaded: the CPU preset ([`seethink::preset`]: the sandbox's
//! committed base model, a small Qwen3-VL pretrained on procedural data that can partly see and
//! reason; the procedural benchmark in the worked style, train and held-out sets from different
//! seeds; the paper's Math reward), then the three GRPO phases, with a held-out evaluation
//! before and after each phase. It shows a progress bar per phase, prints the table of accuracy
//! per capability after each phase and the paired 95% interval of each phase's change of every
//! capability, and writes everything under `runs/staged_qwen3/` (`summary.md`, `results.md`,
//! `reward.svg`, each phase's metrics, checkpoints and final model).
//!
//! ```text
//! cargo run --release --features cuda --example staged_qwen3 -- --backend cuda \
//!     --config configs/paper/qwen3_vl_8b.ron --model Qwen3-VL-8B-Instruct --data data/perception.jsonl
//! ```
//! runs the paper's recipe from a config of `configs/paper/` instead (its data paths, `--data`
//! for `data.train`, or any `--set key=value`), on a real checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use clap::Parser;
use seethink::data::Capability;
use seethink::eval::{mean_interval, paired_difference, EvalReport, Interval};
use seethink::preset::CpuPreset;
use seethink::rl::config::TrainConfig;
use seethink::rl::train_backend::KernelBackend;

/// mimalloc, keeping freed memory for reuse ([`seethink::models::allocator`]).
#[global_allocator]
static ALLOCATOR: seethink::models::allocator::Allocator = seethink::models::allocator::Allocator;

/// GRPO steps of the main job's stages: the preset's ([`seethink::preset::STAGE_STEPS`], which
/// the controls and the suite run) with a visual-reasoning stage twice as long. After the
/// perception stage has lifted visual reasoning by about 0.09, 40 more steps on it moved it
/// +0.005 [−0.024, +0.034] (4 samples per task); 80 steps moved it +0.022 [+0.001, +0.044].
const STAGE_STEPS: seethink::preset::StageSteps =
    seethink::preset::StageSteps { visual_reasoning: 80, ..seethink::preset::STAGE_STEPS };
/// Samples per held-out task: 8 (the controls' count) rather than the suite's 4, so that one
/// seed's paired intervals resolve each stage's change of its own capability.
const EVAL_K: usize = 8;

#[derive(Parser, Debug)]
#[command(about = "The paper's staged curriculum on Qwen3-VL (CPU preset by default)")]
struct Args {
    /// A run config (e.g. configs/paper/qwen3_vl_8b.ron): run it instead of the CPU preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// With --config: the checkpoint to start from (overrides the config's `model`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// With --config: the training data (overrides `data.train`; records without a capability
    /// take `data.capability`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// With --config: the device's memory (e.g. `80GiB`); a run whose memory plan does not fit
    /// is refused, as `seethink train` refuses it (on CUDA, `nvidia-smi`'s figure when not
    /// given).
    #[arg(long, requires = "config", value_parser = seethink::plan::parse_bytes)]
    memory: Option<u64>,
    /// `key=value` overrides of the config (or of the CPU preset's), as `seethink train --set`.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// `cuda`, `wgpu` or `ndarray` (those compiled in; default: the first of them compiled in).
    #[arg(long, default_value = seethink::backend::BEST)]
    backend: seethink::backend::BackendKind,
    /// Run directory of the CPU preset.
    #[arg(long, default_value = "runs/staged_qwen3")]
    out: PathBuf,
    /// CPU preset: the model to start from (default: the committed sandbox base model).
    #[arg(long)]
    base: Option<PathBuf>,
    /// CPU preset: GRPO steps of each stage, `N` or `P,T,V` (perception, text, visual reasoning).
    #[arg(long, default_value_t = STAGE_STEPS)]
    stage_steps: seethink::preset::StageSteps,
    /// CPU preset: training tasks per capability.
    #[arg(long, default_value_t = seethink::preset::TRAIN_TASKS)]
    train_tasks: usize,
    /// CPU preset: held-out tasks per capability (one held-out set, whatever the seed).
    #[arg(long, default_value_t = seethink::preset::HELDOUT_TASKS)]
    heldout_tasks: usize,
    /// CPU preset: samples per held-out task.
    #[arg(long, default_value_t = EVAL_K)]
    eval_k: usize,
    /// Print every step's metrics instead of a progress bar.
    #[arg(long)]
    verbose: bool,
    /// CPU preset: seed of the training data and the run (the first of `--seeds`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU preset: training seeds `seed … seed + seeds − 1`, each run in `<out>/seed-<s>/`
    /// (resumable), then each phase's change over the seeds (`<out>/over_seeds.md`).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// CPU preset: seed of the held-out set the figures are reported on: by default the test
    /// set ([`seethink::sandbox::TEST_SEED`]), drawn after every setting of this job was chosen
    /// on the validation set ([`seethink::sandbox::VALIDATION_SEED`], 1000).
    #[arg(long, default_value_t = seethink::sandbox::TEST_SEED)]
    heldout_seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    seethink::rl::progress::set_verbose(args.verbose);
    seethink::with_backend!(args.backend, B => run::<B>(&args))
}

fn run<B: KernelBackend>(args: &Args) -> Result<()> {
    let started = std::time::Instant::now();
    // the code that runs is the code at the start
    let commit = seethink::provenance::commit();
    if let Some(path) = &args.config {
        let mut config = TrainConfig::load(path, &args.overrides)?;
        if let Some(model) = &args.model {
            config.model = model.clone();
        }
        if let Some(data) = &args.data {
            config.data.train = data.clone();
        }
        seethink::cli::ready_to_run(&mut config, path, args.backend, args.memory)?;
        run_stages::<B>(&config, started)?;
        return Ok(());
    }
    anyhow::ensure!(args.seeds > 0, "--seeds must be at least 1");
    let mut runs = Vec::new();
    for seed in (args.seed..).take(args.seeds) {
        let out = match args.seeds {
            1 => args.out.clone(),
            _ => args.out.join(format!("seed-{seed}")),
        };
        let preset = CpuPreset {
            out: out.clone(),
            base: args.base.clone().unwrap_or_else(seethink::sandbox::committed_base),
            max_new_tokens: seethink::sandbox::MAX_RESPONSE_TOKENS,
            stage_steps: args.stage_steps,
            train_tasks: args.train_tasks,
            heldout_tasks: args.heldout_tasks,
            eval_k: args.eval_k,
            seed,
            heldout_seed: args.heldout_seed,
            pass_rate_samples: 0,
        };
        let config = with_overrides(preset.prepare()?, &args.overrides, &out)?;
        runs.push(run_stages::<B>(&config, started)?);
    }
    if runs.len() > 1 {
        let command = seethink::provenance::command_line("cargo run --release --example staged_qwen3 --");
        let table = format!(
            "<!-- `{command}` at commit {commit}, numerics `{}`, on {} -->\n\n{}",
            seethink::provenance::NUMERICS,
            seethink::provenance::machine(),
            over_seeds_table(&runs)
        );
        let path = args.out.join("over_seeds.md");
        std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
        println!("{table}");
    }
    Ok(())
}

/// The stages of `config` (resumed where a run left off), with `results.md`, `reward.svg` and a
/// closing line; returns the held-out reports (the start's, then each phase's).
fn run_stages<B: KernelBackend>(
    config: &TrainConfig,
    started: std::time::Instant,
) -> Result<Vec<(String, EvalReport)>> {
    anyhow::ensure!(config.curriculum.is_some(), "the config has no `curriculum` section");
    let tasks = seethink::rl::run::load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    let outcome =
        seethink::rl::phases::train_phases::<Autodiff<B>>(config, tasks, reward, &Default::default())?;
    let results = results_table(&outcome.reports);
    let out = &config.trainer.out;
    std::fs::write(out.join("results.md"), &results).context("writing results.md")?;
    println!("{results}");
    let phases: Vec<PathBuf> =
        outcome.finals.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
    seethink::eval::plot::plot_curves(&phases, "reward", &out.join("reward.svg"))?;
    println!(
        "done in {:.1} min; final model: {}; tables, metrics and plots under {}",
        started.elapsed().as_secs_f64() / 60.0,
        outcome.finals.last().map_or("-".into(), |f| f.display().to_string()),
        out.display()
    );
    Ok(outcome.reports)
}

/// `config` with `overrides` applied (through its RON text, as `seethink train --set` does:
/// written to `<out>/preset.ron`).
fn with_overrides(config: TrainConfig, overrides: &[String], out: &Path) -> Result<TrainConfig> {
    if overrides.is_empty() {
        return Ok(config);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("preset.ron");
    let text = ron::ser::to_string_pretty(&config, Default::default()).context("writing the preset")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(TrainConfig::load(&path, overrides)?)
}

/// Each phase's paired change of every capability's held-out accuracy (against the evaluation
/// before it), then the whole run's (start → after the last phase), each with its 95% interval
/// over the held-out tasks; the capability a phase trains is marked `*`.
fn results_table(reports: &[(String, EvalReport)]) -> String {
    if reports.len() < 2 {
        return "no held-out evaluation configured\n".into();
    }
    let mut md = change_table(
        "Held-out accuracy change per phase (paired over tasks, 95% interval)",
        reports,
        |(before, after), capability| paired_difference(&reports[before].1, &reports[after].1, capability),
    );
    md.push_str(
        "\nThese intervals are over the held-out tasks, for this one training seed: they say how \
         surely this run's model changed, not whether another seed's would. `--seeds 5` runs five \
         seeds and gives each change's interval over them (`over_seeds.md`; docs/results.md reports it).\n",
    );
    md
}

/// Each phase's change over training seeds: per seed, the mean paired change of held-out
/// accuracy `d̄_s` (as [`results_table`] computes it); over the `S` seeds, their mean and the
/// 95% interval `mean ± t_{0.975, S−1} · sd / √S` ([`mean_interval`]).
fn over_seeds_table(runs: &[Vec<(String, EvalReport)>]) -> String {
    let title = format!(
        "Held-out accuracy change per phase over {} training seeds (mean of the seeds' changes, 95% t-interval over seeds)",
        runs.len()
    );
    change_table(&title, &runs[0], |(before, after), capability| {
        let changes: Option<Vec<f64>> = runs
            .iter()
            .map(|reports| {
                paired_difference(&reports[before].1, &reports[after].1, capability).map(|d| d.mean)
            })
            .collect();
        mean_interval(&changes?)
    })
}

/// A markdown table of changes: a row per phase (from the evaluation before it to its own) and
/// one for the whole run (start → the last phase), a column per capability and one for all
/// tasks; `change((before, after), capability)` gives a cell (reports indexed as `reports`).
/// `↑` / `↓` mark an interval that excludes 0, `*` the capability a phase trains.
fn change_table(
    title: &str,
    reports: &[(String, EvalReport)],
    change: impl Fn((usize, usize), Option<Capability>) -> Option<Interval>,
) -> String {
    let mut md = format!(
        "## {title}; * = the phase's own capability\n\n\
         | phase | perception | text reasoning | visual reasoning | all |\n|---|---|---|---|---|\n"
    );
    let last = reports.len() - 1;
    let rows = (1..reports.len()).map(|after| (reports[after].0.clone(), (after - 1, after)));
    for (name, pair) in rows.chain([(format!("start → {}", reports[last].0), (0, last))]) {
        let cells: Vec<String> = Capability::ALL
            .into_iter()
            .map(Some)
            .chain([None])
            .map(|capability| {
                let own = capability.is_some_and(|c| c.as_str() == name);
                match change(pair, capability) {
                    Some(d) => format!(
                        "{:+.3} [{:+.3}, {:+.3}]{}{}",
                        d.mean,
                        d.low,
                        d.high,
                        if d.low > 0.0 {
                            " ↑"
                        } else if d.high < 0.0 {
                            " ↓"
                        } else {
                            ""
                        },
                        if own { " *" } else { "" }
                    ),
                    None => "-".into(),
                }
            })
            .collect();
        md.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    md.push_str("\n↑ / ↓: the interval excludes 0 (a change beyond noise).\n");
    md
}

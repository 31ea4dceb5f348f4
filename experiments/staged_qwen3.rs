//! The main job: the paper's capability curriculum (GRPO on perception, then textual reasoning,
//! then visual reasoning, each phase from the previous one's weights) on a Qwen3-VL model.
//!
//! ```text
//! cargo run --release --example staged_qwen3
//! ```
//! runs on a CPU with nothing downloaded: a small Qwen3-VL built here from a config (random
//! weights; the tokenizer of the committed test checkpoint), the procedural benchmark written
//! here (train and held-out sets from different seeds), an SFT warm-up so that RL has signal,
//! then the three GRPO phases, with a held-out evaluation before and after each phase. It
//! prints progress, the table of accuracy per capability after each phase and the paired 95%
//! interval of each capability's change, and writes everything under `runs/staged_qwen3/`
//! (`summary.md`, `results.md`, `reward.svg`, each phase's metrics, checkpoints and final model).
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
use burn::tensor::backend::Backend;
use clap::Parser;
use seethink::curriculum::{CurriculumConfig, Policy};
use seethink::data::synth::{self, FamilySpec, SynthConfig};
use seethink::data::{Capability, Task};
use seethink::eval::{paired_difference, EvalReport};
use seethink::models::checkpoint::{Dtype, ExportOptions, Layout};
use seethink::models::AnyVlm;
use seethink::rl::config::{
    ActorConfig, AlgorithmConfig, DataConfig, HeldOutConfig, RewardKind, RolloutConfig, TrainConfig, Trainer,
    TrainerConfig,
};
use seethink::rl::optim::LrSchedule;
use seethink::rl::prompt::FormatPrompt;

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
    /// With --config: `key=value` overrides, as `seethink train --set`.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// `ndarray` (default), `wgpu` or `cuda` (those compiled in).
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Run directory of the CPU preset.
    #[arg(long, default_value = "runs/staged_qwen3")]
    out: PathBuf,
    /// CPU preset: SFT warm-up steps.
    #[arg(long, default_value_t = 400)]
    warmup_steps: usize,
    /// CPU preset: GRPO steps per phase.
    #[arg(long, default_value_t = 30)]
    phase_steps: usize,
    /// CPU preset: training tasks per capability.
    #[arg(long, default_value_t = 1000)]
    train_tasks: usize,
    /// CPU preset: held-out tasks per capability.
    #[arg(long, default_value_t = 100)]
    heldout_tasks: usize,
    /// CPU preset: seed of the model, the data and the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.backend.as_str() {
        "ndarray" => run::<burn::backend::NdArray>(&args),
        #[cfg(feature = "wgpu")]
        "wgpu" => run::<burn::backend::Wgpu>(&args),
        #[cfg(feature = "cuda")]
        "cuda" => run::<burn::backend::Cuda>(&args),
        other => anyhow::bail!("backend `{other}` is not compiled in (add --features {other})"),
    }
}

fn run<B: Backend>(args: &Args) -> Result<()> {
    let started = std::time::Instant::now();
    let config = match &args.config {
        Some(path) => {
            let mut config = TrainConfig::load(path, &args.overrides)?;
            if let Some(model) = &args.model {
                config.model = model.clone();
            }
            if let Some(data) = &args.data {
                config.data.train = data.clone();
            }
            config
        }
        None => cpu_preset::<B>(args)?,
    };
    anyhow::ensure!(config.curriculum.is_some(), "the config has no `curriculum` section");
    let tasks = seethink::rl::run::load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    let outcome =
        seethink::rl::phases::train_phases::<Autodiff<B>>(&config, tasks, reward, &Default::default())?;
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
    Ok(())
}

/// The paired change of each capability from the start to after the last phase.
fn results_table(reports: &[(String, EvalReport)]) -> String {
    let (Some((_, start)), Some((last, end))) = (reports.first(), reports.last()) else {
        return "no held-out evaluation configured\n".into();
    };
    let mut md = format!(
        "## Held-out accuracy, start → after `{last}` (paired over tasks, 95% interval)\n\n\
         | capability | start | end | change | 95% interval | moved? |\n|---|---|---|---|---|---|\n"
    );
    let rows = Capability::ALL.into_iter().map(Some).chain([None]);
    for capability in rows {
        let name = capability.map_or("all".into(), |c| c.to_string());
        let accuracy = |r: &EvalReport| match capability {
            Some(c) => r.capability(c).map(|s| s.accuracy),
            None => Some(r.overall.accuracy),
        };
        let Some(d) = paired_difference(start, end, capability) else { continue };
        let moved = if d.low > 0.0 {
            "yes: the interval is above 0"
        } else if d.high < 0.0 {
            "worse: the interval is below 0"
        } else {
            "not at this scale: the interval contains 0"
        };
        md.push_str(&format!(
            "| {name} | {:.3} | {:.3} | {:+.3} | [{:+.3}, {:+.3}] | {moved} |\n",
            accuracy(start).unwrap_or(f64::NAN),
            accuracy(end).unwrap_or(f64::NAN),
            d.mean,
            d.low,
            d.high,
        ));
    }
    md
}

/// The CPU preset: writes the data and a random-weight Qwen3-VL, runs the SFT warm-up, and
/// returns the staged GRPO run's config (starting from the warm-up's model).
fn cpu_preset<B: Backend>(args: &Args) -> Result<TrainConfig> {
    let out = &args.out;
    let (train, heldout) = (out.join("data/train"), out.join("data/heldout"));
    write_benchmark(&train, args.train_tasks, args.seed)?;
    write_benchmark(&heldout, args.heldout_tasks, args.seed + 1_000)?;
    let init = out.join("init");
    if !init.join("config.json").exists() {
        write_random_model::<B>(&init, args.seed)?;
    }
    let base = TrainConfig {
        model: init,
        data: DataConfig {
            train: train.clone(),
            capability: None,
            sources: Vec::new(),
            shuffle: true,
            max_prompt_length: None,
            format_prompt: FormatPrompt::None,
            min_pixels: None,
            max_pixels: None,
            seed: args.seed,
        },
        algorithm: AlgorithmConfig { reward: RewardKind::Direct, ..Default::default() },
        actor: ActorConfig::default(),
        rollout: RolloutConfig::default(),
        trainer: TrainerConfig::default(),
        curriculum: None,
        eval: None,
    };
    let warmup = TrainConfig {
        algorithm: AlgorithmConfig { trainer: Trainer::Sft, ..base.algorithm.clone() },
        actor: ActorConfig {
            lr: 2e-3,
            weight_decay: 0.0,
            schedule: LrSchedule::Cosine { warmup: 10, total: args.warmup_steps, min_ratio: 0.1 },
            micro_batch_size: 16,
            ..Default::default()
        },
        trainer: TrainerConfig {
            steps: args.warmup_steps,
            prompts_per_step: 16,
            save_every: 50,
            keep_last: 1,
            out: out.join("warmup"),
        },
        ..base.clone()
    };
    if !warmup.trainer.out.join("final").join(seethink::rl::run::TRAINING_CONFIG).exists() {
        eprintln!("SFT warm-up: {} steps on {}", args.warmup_steps, train.display());
        let tasks = seethink::data::load_tasks(&train, None)?;
        seethink::rl::run::train_on::<Autodiff<B>>(
            &warmup,
            tasks,
            RewardKind::Direct.reward(),
            &Default::default(),
        )?;
    }
    Ok(TrainConfig {
        model: warmup.trainer.out.join("final"),
        actor: ActorConfig {
            lr: 2e-4,
            weight_decay: 0.0,
            mini_batches: 1,
            micro_batch_size: 64,
            ..Default::default()
        },
        algorithm: AlgorithmConfig { kl_coef: 0.05, ..base.algorithm.clone() },
        rollout: RolloutConfig {
            n: 6,
            temperature: 1.0,
            max_new_tokens: 4,
            seed: args.seed,
            batch_size: 36,
            ..Default::default()
        },
        trainer: TrainerConfig {
            steps: args.phase_steps,
            prompts_per_step: 6,
            save_every: 10,
            keep_last: 1,
            out: out.join("staged"),
        },
        curriculum: Some(CurriculumConfig {
            policy: Policy::Paper,
            within: Vec::new(),
            phases: Default::default(),
            plateau: None,
        }),
        eval: Some(HeldOutConfig {
            data: heldout,
            capability: None,
            k: 4,
            temperature: 1.0,
            max_new_tokens: None,
            batch_size: 64,
            attribute_errors: true,
        }),
        ..base
    })
}

/// The procedural benchmark with `n` tasks per capability (levels 1–2) in `dir`, unless there.
/// The preset's model answers with the bare answer (graded by the `Direct` reward), so the
/// prompts' "Think step by step, then put … in \boxed{}" line is left out (fewer tokens).
fn write_benchmark(dir: &Path, n: usize, seed: u64) -> Result<()> {
    if dir.join(synth::benchmark::TASKS_FILE).exists() {
        return Ok(());
    }
    let spec = FamilySpec { count: n, min_level: 1, max_level: 2 };
    let config = SynthConfig { perception: spec, text_reasoning: spec, visual_reasoning: spec };
    let mut tasks: Vec<Task> = synth::generate(&config, seed)?.into_iter().map(|t| t.task).collect();
    for task in &mut tasks {
        let lines: Vec<&str> = task.prompt.lines().filter(|l| !l.starts_with("Think step by step")).collect();
        task.prompt = lines.join("\n");
    }
    synth::write_tasks(dir, &tasks)?;
    Ok(())
}

/// A random-weight Qwen3-VL (text: 4 layers of width 96; vision: 2 blocks of width 48, 4-pixel
/// patches) with the committed test checkpoint's tokenizer and chat template, written as an HF
/// checkpoint to `dir`.
fn write_random_model<B: Backend>(dir: &Path, seed: u64) -> Result<()> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen3_vl/checkpoint");
    let spec = dir.with_extension("spec");
    std::fs::create_dir_all(&spec)?;
    for name in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "special_tokens_map.json",
        "added_tokens.json",
        "generation_config.json",
    ] {
        std::fs::copy(fixture.join(name), spec.join(name)).with_context(|| format!("copying {name}"))?;
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json"))?)?;
    let text = &mut config["text_config"];
    for (key, value) in [
        ("hidden_size", 96),
        ("intermediate_size", 256),
        ("num_hidden_layers", 4),
        ("num_attention_heads", 6),
        ("num_key_value_heads", 2),
    ] {
        text[key] = value.into();
    }
    let vision = &mut config["vision_config"];
    for (key, value) in [
        ("hidden_size", 48),
        ("intermediate_size", 96),
        ("depth", 2),
        ("num_heads", 2),
        ("out_hidden_size", 96),
        ("num_position_embeddings", 64),
    ] {
        vision[key] = value.into();
    }
    vision["deepstack_visual_indexes"] = serde_json::json!([1]);
    std::fs::write(spec.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    let mut processor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("preprocessor_config.json"))?)?;
    processor["min_pixels"] = 1024.into();
    processor["max_pixels"] = 4096.into();
    processor["size"] = serde_json::json!({ "shortest_edge": 1024, "longest_edge": 4096 });
    std::fs::write(spec.join("preprocessor_config.json"), serde_json::to_string_pretty(&processor)?)?;
    let model = AnyVlm::<B>::random(&spec, seed, &Default::default())?;
    let options =
        ExportOptions { layout: Some(Layout::Current), dtype: Some(Dtype::F32), ..Default::default() };
    model.save_pretrained(&spec, dir, options)?;
    eprintln!(
        "wrote a random-weight Qwen3-VL ({} parameters) to {}",
        burn::module::Module::num_params(&model),
        dir.display()
    );
    Ok(())
}

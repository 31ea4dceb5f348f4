//! The CPU preset of the experiments: the procedural benchmark, a random-weight Qwen3-VL small
//! enough to train on a laptop CPU, and an SFT warm-up so that RL has signal. `staged_qwen3`
//! runs the paper's stages from it; the ablation suite runs every arm from the same warm-up.
//!
//! Directory of a preset run (each step is skipped when its output is already there):
//! ```text
//! <out>/data/train, <out>/data/heldout   the benchmark (train: seed `seed`; held-out: seed 1000)
//! <out>/init/                            the random-weight model (seed `seed`)
//! <out>/warmup/                          the SFT warm-up run; its `final/` is the RL start
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;

use crate::curriculum::{CurriculumConfig, Policy};
use crate::data::synth::{self, FamilySpec, SynthConfig};
use crate::data::Task;
use crate::models::checkpoint::{Dtype, ExportOptions, Layout};
use crate::models::AnyVlm;
use crate::rl::config::{
    ActorConfig, AlgorithmConfig, DataConfig, HeldOutConfig, RewardKind, RolloutConfig, TrainConfig, Trainer,
    TrainerConfig,
};
use crate::rl::optim::LrSchedule;
use crate::rl::prompt::FormatPrompt;

/// Seed of the held-out set: one set for every training seed, so runs of different seeds are
/// evaluated on the same tasks.
pub const HELDOUT_SEED: u64 = 1_000;

/// The sizes of a CPU preset run.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuPreset {
    /// Run directory.
    pub out: PathBuf,
    /// SFT warm-up steps.
    pub warmup_steps: usize,
    /// GRPO steps per phase of the staged run.
    pub phase_steps: usize,
    /// Training tasks per capability.
    pub train_tasks: usize,
    /// Held-out tasks per capability.
    pub heldout_tasks: usize,
    /// Seed of the model, the training data and the run.
    pub seed: u64,
}

impl CpuPreset {
    /// Writes the data and a random-weight Qwen3-VL, runs the SFT warm-up, and returns the staged
    /// GRPO run's config (the paper's three phases, starting from the warm-up's model, evaluated
    /// on the held-out set before and after each phase).
    pub fn prepare<B: Backend>(&self) -> Result<TrainConfig> {
        let out = &self.out;
        let (train, heldout) = (out.join("data/train"), out.join("data/heldout"));
        write_benchmark(&train, self.train_tasks, self.seed)?;
        write_benchmark(&heldout, self.heldout_tasks, HELDOUT_SEED)?;
        let init = out.join("init");
        if !init.join("config.json").exists() {
            write_random_model::<B>(&init, self.seed)?;
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
                seed: self.seed,
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
                schedule: LrSchedule::Cosine { warmup: 10, total: self.warmup_steps, min_ratio: 0.1 },
                micro_batch_size: 16,
                ..Default::default()
            },
            trainer: TrainerConfig {
                steps: self.warmup_steps,
                prompts_per_step: 16,
                save_every: 50,
                keep_last: 1,
                out: out.join("warmup"),
            },
            ..base.clone()
        };
        if !warmup.trainer.out.join("final").join(crate::rl::run::TRAINING_CONFIG).exists() {
            eprintln!("SFT warm-up: {} steps on {}", self.warmup_steps, train.display());
            let tasks = crate::data::load_tasks(&train, None)?;
            crate::rl::run::train_on::<Autodiff<B>>(
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
                seed: self.seed,
                batch_size: 36,
                ..Default::default()
            },
            trainer: TrainerConfig {
                steps: self.phase_steps,
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
}

/// The procedural benchmark with `n` tasks per capability (levels 1–2) in `dir`, unless there.
/// The preset's model answers with the bare answer (graded by the `Direct` reward), so the
/// prompts' "Think step by step, then put … in \boxed{}" line is left out (fewer tokens).
pub fn write_benchmark(dir: &Path, n: usize, seed: u64) -> Result<()> {
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

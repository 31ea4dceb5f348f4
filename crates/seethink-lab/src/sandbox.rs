//! The sandbox's base model: a small Qwen3-VL pretrained from random weights on procedural data
//! until it can partly see and partly reason, as the paper's base VLMs can, so that RL from it
//! has something to sharpen and the curriculum question can be asked on a CPU.
//!
//! `seethink pretrain` runs [`Pretrain::run`]; the committed base model
//! ([`committed_base`]) is its output, with `provenance.json` (command, commit, seed, wall
//! time, held-out accuracies) beside the weights. The corpus, with answers in the worked style
//! ([`AnswerStyle::Worked`]: `<think>…</think>\boxed{…}`, graded by the paper's Math reward):
//! - perception questions answered with a count, colour, direction or object (levels 1 to [`Pretrain::perception_max_level`]);
//! - captions of those scenes from their ground truth ([`caption_tasks`]);
//! - arithmetic word problems with their worked solutions (1–3 steps);
//! - visual reasoning (counts read from the image, then arithmetic; levels 1–2), no more than
//!   arithmetic, so the base model composes the two only a little.
//!
//! A first look comes first ([`Pretrain::first_look_steps`], `--first-look STEPS`): one SFT
//! phase per [`Look`], on one large object, then on two or three objects of both sizes, all at
//! a size the model sees unscaled ([`first_look_tasks`]), before the corpus. It is a size
//! curriculum: the sandbox's small model learns to read colour from large shapes in a hundred
//! steps and from the scenes' small ones only after that (`docs/sandbox.md`).
//!
//! The corpus is drawn from its own seed ([`PRETRAIN_SEED`] + seed), neither the RL training
//! data's nor the held-out set's. Pretraining is SFT ([`crate::rl::run::train_on`]: resumable,
//! checkpointed, deterministic on the CPU), and the held-out evaluation that follows is the
//! one the preset's runs start with.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use serde::{Deserialize, Serialize};

use crate::data::synth::caption::caption_tasks;
use crate::data::synth::perception::first_look_tasks;
use crate::data::synth::scene::Look;
use crate::data::synth::{self, AnswerStyle, FamilySpec, SynthConfig, Verbosity};
use crate::data::{Capability, Task};
use crate::models::checkpoint::{Dtype, ExportOptions, Layout};
use crate::models::AnyVlm;
use crate::provenance::{machine, run_text};
use crate::rl::config::{
    ActorConfig, AlgorithmConfig, DataConfig, HeldOutConfig, RewardKind, RolloutConfig, TrainConfig, Trainer,
    TrainerConfig,
};
use crate::rl::optim::LrSchedule;
use crate::rl::prompt::FormatPrompt;
use crate::rl::train_backend::KernelBackend;

/// Offset of the pretraining corpus's seed (the RL data uses the run's seed, the held-out sets
/// [`VALIDATION_SEED`] and [`TEST_SEED`]).
pub const PRETRAIN_SEED: u64 = 2_000;
/// Name of the provenance file next to the base model's weights.
pub const PROVENANCE_FILE: &str = "provenance.json";
/// Tokens a worked response may take: the longest worked solutions of the sandbox's levels
/// take about 80.
pub const MAX_RESPONSE_TOKENS: usize = 96;
/// Tokens a response of the base model with varied verbosity may take: the expanded form adds
/// an opening, a label per step and a closing sentence to the longest worked solutions.
pub const MAX_VERBOSE_RESPONSE_TOKENS: usize = 192;

/// Seed of the validation held-out set: one set for every training seed, so runs of different
/// seeds are evaluated on the same tasks. The sandbox's settings were chosen on it (the base
/// model's recipe, the stage lengths, the samples per task), and the positive controls and the
/// ablation suite report on it.
pub const VALIDATION_SEED: u64 = 1_000;

/// Seed of the test held-out set: drawn after every setting was chosen, with the same generator
/// and sizes as [`VALIDATION_SEED`]'s, so that figures reported on it were not tuned on it
/// (`staged_qwen3` reports on it by default).
pub const TEST_SEED: u64 = 7_000;

/// The held-out evaluation of the sandbox: every task of `data`, sampled at T = 1 (the
/// rollout's temperature), 4 samples per task, the perception-error attribution.
pub fn heldout_config(data: &Path) -> HeldOutConfig {
    HeldOutConfig {
        data: data.to_path_buf(),
        capability: None,
        k: 4,
        temperature: 1.0,
        max_new_tokens: None,
        top_p: None,
        batch_size: 64,
        attribute_errors: true,
        benchmarks: Vec::new(),
    }
}

/// The procedural benchmark in the worked style with `n` tasks per capability (perception
/// and visual reasoning at levels 1–2, text reasoning at 1–3 steps) in `dir`, unless there.
pub fn write_benchmark(dir: &Path, n: usize, seed: u64) -> Result<()> {
    if dir.join(synth::benchmark::TASKS_FILE).exists() {
        return Ok(());
    }
    let spec = |max_level| FamilySpec { count: n, min_level: 1, max_level };
    let config = SynthConfig {
        perception: spec(2),
        text_reasoning: spec(3),
        visual_reasoning: spec(2),
        answers: AnswerStyle::Worked,
    };
    let tasks: Vec<Task> = synth::generate(&config, seed)?.into_iter().map(|t| t.task).collect();
    synth::write_tasks(dir, &tasks)?;
    Ok(())
}

/// The committed base model, in the repository.
pub fn committed_base() -> PathBuf {
    crate::in_repository("experiments/sandbox/base")
}

/// Where the base model with varied verbosity goes ([`Pretrain::committed_verbose`]), relative
/// to the crate root.
pub fn committed_verbose_base() -> PathBuf {
    crate::in_repository("experiments/sandbox/base-verbose")
}

/// The sandbox's image bounds: images are scaled to 32×32 … 64×64 pixels, so at most 8×8
/// patches ([`PATCH`]) and 16 image tokens after the 2×2 merge.
pub const IMAGE_PIXELS: (usize, usize) = (1024, 4096);
/// Side of the vision tower's patches, in pixels.
pub const PATCH: usize = 8;

/// The size of the sandbox's Qwen3-VL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Width of the language model.
    pub hidden: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Attention heads (head width = hidden / heads).
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of the SwiGLU.
    pub intermediate: usize,
    /// Width of the vision tower.
    pub vision_hidden: usize,
    /// Vision blocks.
    pub vision_depth: usize,
}

impl ModelShape {
    /// The sandbox's shape.
    pub const SANDBOX: ModelShape = ModelShape {
        hidden: 128,
        layers: 4,
        heads: 4,
        kv_heads: 2,
        intermediate: 384,
        vision_hidden: 64,
        vision_depth: 2,
    };
}

/// A pretraining run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pretrain {
    /// Run directory (corpus, random init, SFT run, evaluation).
    pub out: PathBuf,
    /// Where the base model is written (with [`PROVENANCE_FILE`]).
    pub target: PathBuf,
    /// SFT steps.
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// Peak learning rate (cosine schedule to a tenth, after 20 warm-up steps).
    pub lr: f64,
    /// Corpus examples per capability before captions (perception, text, visual reasoning).
    pub corpus: [usize; 3],
    /// Steps of each first-look phase before the corpus: SFT on `first_look_steps × batch`
    /// tasks of each [`Look`] in turn ([`first_look_tasks`]), same lr, each its own cosine
    /// schedule; 0 for none.
    #[serde(default)]
    pub first_look_steps: usize,
    /// Highest scene level of the corpus's perception questions (the held-out set asks levels
    /// 1–2).
    #[serde(default = "all_scene_levels")]
    pub perception_max_level: u32,
    /// Held-out tasks per capability of the evaluation that follows.
    pub heldout_tasks: usize,
    /// Samples per held-out task.
    pub eval_k: usize,
    /// Seed of the model's initial weights and of the corpus.
    pub seed: u64,
    pub shape: ModelShape,
    /// How long the corpus's worked solutions are: terse (the committed base), or varied (about
    /// half in an expanded form of the same steps: a base whose response length RL can move).
    #[serde(default)]
    pub verbosity: Verbosity,
    /// New tokens the held-out evaluation after pretraining allows a response
    /// ([`MAX_RESPONSE_TOKENS`] for terse solutions; the expanded ones are longer).
    #[serde(default = "terse_response_tokens")]
    pub max_response_tokens: usize,
}

/// [`MAX_RESPONSE_TOKENS`], the default of recipes that predate [`Pretrain::max_response_tokens`].
fn terse_response_tokens() -> usize {
    MAX_RESPONSE_TOKENS
}

impl Pretrain {
    /// The committed base model's run: writes to [`committed_base`].
    pub fn committed(out: PathBuf) -> Pretrain {
        Pretrain {
            out,
            target: committed_base(),
            steps: 900,
            batch: 64,
            lr: 2e-3,
            corpus: [50_000, 15_000, 10_000],
            first_look_steps: 200,
            perception_max_level: 2,
            heldout_tasks: 300,
            eval_k: 4,
            seed: 0,
            shape: ModelShape::SANDBOX,
            verbosity: Verbosity::Terse,
            max_response_tokens: MAX_RESPONSE_TOKENS,
        }
    }

    /// The run of the base model with varied verbosity, [`committed_verbose_base`]: the
    /// committed base's recipe with about half of the corpus's worked solutions in the expanded
    /// form, evaluated with room for the expanded ones ([`MAX_VERBOSE_RESPONSE_TOKENS`]).
    pub fn committed_verbose(out: PathBuf) -> Pretrain {
        Pretrain {
            target: committed_verbose_base(),
            verbosity: Verbosity::Varied,
            max_response_tokens: MAX_VERBOSE_RESPONSE_TOKENS,
            ..Pretrain::committed(out)
        }
    }
}

/// Every scene level, the default of recipes that predate [`Pretrain::perception_max_level`].
fn all_scene_levels() -> u32 {
    crate::data::synth::scene::MAX_SCENE_LEVEL
}

/// What [`Pretrain::run`] records next to the base model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub command: String,
    pub commit: String,
    /// The numerics fingerprint of the code that ran it ([`crate::provenance::NUMERICS`];
    /// absent in bases pretrained before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerics: Option<String>,
    pub date: String,
    pub machine: String,
    pub pretrain: Pretrain,
    pub parameters: usize,
    /// Wall time of the whole command (corpus, SFT, evaluation), minutes.
    pub wall_minutes: f64,
    /// Held-out accuracy (T = 1, `eval_k` samples per task) per capability, then `overall`.
    pub heldout_accuracy: Vec<(String, f64)>,
    /// Mean response length in tokens on the held-out set.
    pub heldout_mean_tokens: f64,
}

impl Pretrain {
    /// Pretrains (or resumes), evaluates on the held-out set, and writes the base model with its
    /// provenance to `target`.
    pub fn run<B: KernelBackend>(&self, command: &str) -> Result<Provenance> {
        let started = Instant::now();
        // the commit of the code that runs, read before anything is committed during the run
        let commit = crate::provenance::commit();
        let init = self.out.join("init");
        if !init.join("config.json").exists() {
            write_random_model::<B>(&init, self.seed, self.shape)?;
        }
        let mut start = init;
        for look in Look::ALL.into_iter().filter(|_| self.first_look_steps > 0) {
            let seed = PRETRAIN_SEED + self.seed;
            let tasks = first_look_tasks(look, self.first_look_steps * self.batch, seed)?;
            let config =
                self.sft_config(&start, &format!("first-look-{}", look.name()), self.first_look_steps);
            crate::rl::run::train_on::<Autodiff<B>>(
                &config,
                tasks.iter().map(synth::SynthTask::solved).collect(),
                RewardKind::Math.reward(),
                &Default::default(),
            )?;
            start = config.trainer.out.join("final");
        }
        let corpus = self.corpus_tasks()?;
        eprintln!("pretraining corpus: {} examples", corpus.len());
        let config = self.sft_config(&start, "sft", self.steps);
        let model = crate::rl::run::train_on::<Autodiff<B>>(
            &config,
            corpus,
            RewardKind::Math.reward(),
            &Default::default(),
        )?;
        let trained = config.trainer.out.join("final");
        let heldout_dir = self.out.join("data/heldout");
        write_benchmark(&heldout_dir, self.heldout_tasks, VALIDATION_SEED)?;
        let heldout = HeldOutConfig { k: self.eval_k, ..heldout_config(&heldout_dir) };
        let report = crate::rl::evaluation::evaluate_point::<B>(
            &config,
            &heldout,
            &trained,
            RewardKind::Math.reward().as_ref(),
            &self.out.join("eval"),
            &Default::default(),
        )?
        .heldout;
        let mut accuracy: Vec<(String, f64)> = Capability::ALL
            .into_iter()
            .filter_map(|c| report.capability(c).map(|s| (c.to_string(), s.accuracy)))
            .collect();
        accuracy.push(("overall".into(), report.overall.accuracy));
        copy_model(&trained, &self.target)?;
        let provenance = Provenance {
            command: command.to_string(),
            commit,
            numerics: Some(crate::provenance::NUMERICS.to_string()),
            date: run_text("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "unknown".into()),
            machine: machine(),
            pretrain: Pretrain {
                target: crate::provenance::project_path(&self.target).into(),
                ..self.clone()
            },
            parameters: burn::module::Module::num_params(&model),
            wall_minutes: (started.elapsed().as_secs_f64() / 6.0).round() / 10.0,
            heldout_accuracy: accuracy,
            heldout_mean_tokens: report.overall.mean_tokens,
        };
        let path = self.target.join(PROVENANCE_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&provenance)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(provenance)
    }

    /// The corpus (see the module docs), every task answered with its worked solution (in
    /// [`Pretrain::verbosity`]'s form).
    pub fn corpus_tasks(&self) -> Result<Vec<Task>> {
        let spec = |count, max_level| FamilySpec { count, min_level: 1, max_level };
        let config = SynthConfig {
            perception: spec(self.corpus[0], self.perception_max_level),
            text_reasoning: spec(self.corpus[1], 3),
            visual_reasoning: spec(self.corpus[2], 2),
            answers: AnswerStyle::Worked,
        };
        let generated = synth::generate(&config, PRETRAIN_SEED + self.seed)?;
        let mut tasks: Vec<Task> = generated.iter().map(|t| t.solved_in(self.verbosity)).collect();
        let scenes: Vec<Task> = generated
            .into_iter()
            .filter(|t| t.task.capability == Capability::Perception)
            .map(|t| t.task)
            .collect();
        // a caption for every fourth perception scene
        let captioned: Vec<Task> = scenes.into_iter().step_by(4).collect();
        tasks.extend(caption_tasks(&captioned)?);
        Ok(tasks)
    }

    /// The config of SFT run `name` (in `<out>/<name>`) of `steps` steps from `model`.
    fn sft_config(&self, model: &Path, name: &str, steps: usize) -> TrainConfig {
        TrainConfig {
            model: model.to_path_buf(),
            data: sandbox_data(self.out.join("corpus"), self.seed),
            algorithm: AlgorithmConfig {
                trainer: Trainer::Sft,
                reward: RewardKind::Math,
                ..Default::default()
            },
            actor: ActorConfig {
                lr: self.lr,
                weight_decay: 0.0,
                schedule: LrSchedule::Cosine { warmup: 20, total: steps, min_ratio: 0.1 },
                micro_batch_size: self.batch,
                ..Default::default()
            },
            rollout: RolloutConfig { max_new_tokens: self.max_response_tokens, ..Default::default() },
            trainer: TrainerConfig {
                steps,
                prompts_per_step: self.batch,
                save_every: 250,
                keep_last: 1,
                out: self.out.join(name),
                tensorboard: false,
                ..Default::default()
            },
            curriculum: None,
            eval: None,
        }
    }
}

/// The data section of every sandbox run: prompts as generated (no format prompt: the models
/// learnt the worked format), the sandbox's image bounds, seeded shuffling.
pub fn sandbox_data(train: PathBuf, seed: u64) -> DataConfig {
    DataConfig {
        train,
        capability: None,
        sources: Vec::new(),
        shuffle: true,
        max_prompt_length: None,
        format_prompt: FormatPrompt::Plain,
        min_pixels: Some(IMAGE_PIXELS.0),
        max_pixels: Some(IMAGE_PIXELS.1),
        seed,
    }
}

/// Copies the model files of `from` (an exported HF checkpoint) into `to`, replacing it.
fn copy_model(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let target = to.join(entry.file_name());
            std::fs::copy(entry.path(), &target).with_context(|| format!("writing {}", target.display()))?;
        }
    }
    Ok(())
}

/// A random-weight Qwen3-VL of `shape` ([`PATCH`]-pixel patches, DeepStack from the last vision
/// block)
/// with the committed test checkpoint's tokenizer and chat template, written as an HF
/// checkpoint to `dir`.
pub fn write_random_model<B: KernelBackend>(dir: &Path, seed: u64, shape: ModelShape) -> Result<()> {
    let fixture = crate::in_repository("tests/fixtures/qwen3_vl/checkpoint");
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
        ("hidden_size", shape.hidden),
        ("intermediate_size", shape.intermediate),
        ("num_hidden_layers", shape.layers),
        ("num_attention_heads", shape.heads),
        ("num_key_value_heads", shape.kv_heads),
        ("head_dim", shape.hidden / shape.heads),
    ] {
        text[key] = value.into();
    }
    // Qwen3-VL's proportions (24/20/20 of 64 rotary pairs): temporal 3/8, the rest split evenly
    let pairs = shape.hidden / shape.heads / 2;
    let temporal = (3 * pairs).div_ceil(8);
    let spatial = (pairs - temporal) / 2;
    text["rope_scaling"]["mrope_section"] = serde_json::json!([pairs - 2 * spatial, spatial, spatial]);
    let vision = &mut config["vision_config"];
    for (key, value) in [
        ("hidden_size", shape.vision_hidden),
        ("intermediate_size", 2 * shape.vision_hidden),
        ("depth", shape.vision_depth),
        ("num_heads", 2),
        ("out_hidden_size", shape.hidden),
        ("num_position_embeddings", 64),
        ("patch_size", PATCH),
    ] {
        vision[key] = value.into();
    }
    vision["deepstack_visual_indexes"] = serde_json::json!([shape.vision_depth - 1]);
    std::fs::write(spec.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    let mut processor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("preprocessor_config.json"))?)?;
    processor["patch_size"] = PATCH.into();
    processor["min_pixels"] = IMAGE_PIXELS.0.into();
    processor["max_pixels"] = IMAGE_PIXELS.1.into();
    processor["size"] =
        serde_json::json!({ "shortest_edge": IMAGE_PIXELS.0, "longest_edge": IMAGE_PIXELS.1 });
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

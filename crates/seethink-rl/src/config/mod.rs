//! The RON training configuration, in sections mirroring EasyR1's: data, algorithm, actor,
//! rollout, trainer. These sections are the runtime settings themselves (every default is
//! written once, here); [`TrainConfig::validate`] rejects values that cannot train, and
//! unknown keys and ill-typed values are errors naming the key.

mod overrides;
pub mod prompt;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use seethink_curriculum::CurriculumConfig;
use seethink_data::Capability;
use seethink_eval::Benchmark;
use seethink_models::generate::SamplingConfig;
use seethink_models::nn::LoraConfig;
use seethink_models::processing::image::ImageBounds;

pub use crate::data_parallel::NodesConfig;
use crate::data_parallel::Topology;
use crate::error::{Result, TrainError};
use crate::grpo::{Aggregation, GrpoLossConfig, KlPenalty, LossType, PluginName};
use crate::learner::LearnerSettings;
use crate::optim::LrSchedule;
use crate::prompt::FormatPrompt;
use crate::sharding::Sharding;
use overrides::with_override;

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// HF checkpoint directory to start from.
    pub model: PathBuf,
    pub data: DataConfig,
    #[serde(default)]
    pub algorithm: AlgorithmConfig,
    #[serde(default)]
    pub actor: ActorConfig,
    #[serde(default)]
    pub rollout: RolloutConfig,
    #[serde(default)]
    pub trainer: TrainerConfig,
    /// Run the tasks as a curriculum's phases, back to back (`None`: one run over all tasks).
    #[serde(default)]
    pub curriculum: Option<CurriculumConfig>,
    /// Evaluate on held-out tasks before training and after each phase.
    #[serde(default)]
    pub eval: Option<HeldOutConfig>,
}

/// The held-out evaluation of a run: the tasks of `data`, prompted as in training (format
/// prompt, image bounds) and graded with the run's reward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutConfig {
    /// Data file or benchmark directory (any format `data.train` takes).
    pub data: PathBuf,
    /// Capability of its records that have none.
    #[serde(default)]
    pub capability: Option<Capability>,
    /// Samples per task.
    #[serde(default = "one")]
    pub k: usize,
    /// Sampling temperature (0: greedy).
    #[serde(default)]
    pub temperature: f32,
    /// `None`: the rollout's.
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    /// Nucleus sampling's top-p; `None`: the rollout's (the paper's validation: T 0.6, top-p 0.95).
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Tasks per generation call.
    #[serde(default = "eval_batch")]
    pub batch_size: usize,
    /// Attribute wrong visual-reasoning answers to perception or reasoning (one more
    /// generation per sub-question).
    #[serde(default = "yes")]
    pub attribute_errors: bool,
    /// VLMEvalKit benchmarks answered at the same points as `data` (before training and after
    /// each phase; a single run: at its end), with this section's temperature, top-p, token
    /// budget and batch size, one answer per row as VLMEvalKit ([`crate::benchmarks`]; `k` is
    /// the held-out tasks' alone). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub benchmarks: Vec<BenchmarkFile>,
}

/// A VLMEvalKit benchmark of a run's eval section:
/// `(name: "MathVista", file: "./data/bench/MathVista_MINI.tsv")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkFile {
    /// The benchmark: MathVista, MathVision, MathVerse, WeMath, DynaMath, A-OKVQA,
    /// RealWorldQA, MMStar or POPE (case, `-`, `_` and VLMEvalKit's subset suffixes such as
    /// `_MINI` ignored).
    pub name: String,
    /// Its VLMEvalKit TSV file.
    pub file: PathBuf,
}

impl BenchmarkFile {
    /// The benchmark [`Self::name`] names; the error says which names there are.
    pub fn benchmark(&self) -> std::result::Result<Benchmark, String> {
        self.name.parse()
    }
}

fn one() -> usize {
    1
}

fn eval_batch() -> usize {
    32
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// EasyR1 JSONL, Parquet or VLMEvalKit TSV file (or a directory holding `tasks.jsonl`).
    pub train: PathBuf,
    /// Capability of `train`'s records that have none (EasyR1's public data sets have none).
    #[serde(default)]
    pub capability: Option<Capability>,
    /// More data files for the same run, each with the capability of its records without one.
    #[serde(default)]
    pub sources: Vec<DataSource>,
    /// Draw tasks in seeded shuffled epochs; `false` keeps file order (the paper's difficulty
    /// curricula are pre-sorted files run without shuffling).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Drop tasks whose encoded prompt (template, image tokens) is longer, as EasyR1's
    /// `max_prompt_length` with `filter_overlong_prompts` does; the count is logged.
    #[serde(default = "max_prompt_length")]
    pub max_prompt_length: Option<usize>,
    /// The format prompt questions are rendered through (default: the paper's).
    #[serde(default)]
    pub format_prompt: FormatPrompt,
    /// Images with fewer pixels are upscaled to this many before the processor (EasyR1).
    #[serde(default = "min_pixels")]
    pub min_pixels: Option<usize>,
    /// Images with more pixels are downscaled to this many before the processor (EasyR1).
    #[serde(default = "max_pixels")]
    pub max_pixels: Option<usize>,
    /// Seed of the per-epoch shuffle of the tasks.
    #[serde(default)]
    pub seed: u64,
}

/// One more data file of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    pub path: PathBuf,
    /// Capability of its records that have none.
    #[serde(default)]
    pub capability: Option<Capability>,
}

/// EasyR1's default `max_prompt_length`.
fn max_prompt_length() -> Option<usize> {
    Some(2048)
}

/// EasyR1's default `min_pixels`.
fn min_pixels() -> Option<usize> {
    ImageBounds::default().min_pixels
}

/// EasyR1's default `max_pixels`.
fn max_pixels() -> Option<usize> {
    ImageBounds::default().max_pixels
}

impl DataConfig {
    /// The pixel bounds of every image.
    pub fn image_bounds(&self) -> ImageBounds {
        ImageBounds { min_pixels: self.min_pixels, max_pixels: self.max_pixels }
    }
}

/// The built-in algorithm a run trains with ([`crate::builtin::BuiltIn`]): GRPO or SFT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trainer {
    Grpo,
    Sft,
}

/// The reward of GRPO runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewardKind {
    /// The reference reward: 0.9·accuracy of the last `\boxed{}` + 0.1·format.
    Math,
    /// [`Math`](Self::Math) with every opt-in extension (`\fbox{}`, `A.` letters, `^`/`**`
    /// counted separately): scores differ from the reference's.
    MathExtended,
    /// The whole response graded as the answer ([`seethink_reward::DirectAnswer`]).
    Direct,
}

impl RewardKind {
    /// The reward function.
    pub fn reward(self) -> std::sync::Arc<dyn seethink_reward::Reward> {
        match self {
            RewardKind::Math => std::sync::Arc::new(seethink_reward::MathReward::default()),
            RewardKind::MathExtended => std::sync::Arc::new(seethink_reward::MathReward {
                extensions: seethink_reward::Extensions::ALL,
                ..Default::default()
            }),
            RewardKind::Direct => std::sync::Arc::new(seethink_reward::DirectAnswer),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmConfig {
    pub trainer: Trainer,
    pub reward: RewardKind,
    /// Weight of the KL to the reference model (the phase's start); 0 turns it off.
    pub kl_coef: f32,
    /// The KL as a loss term (the paper's); `false`: as a reward penalty, the response's score
    /// minus `kl_coef · Σ_t kl_t` before advantages (EasyR1's `use_kl_loss: false`).
    pub use_kl_loss: bool,
    /// The per-token KL estimate (EasyR1's `kl_penalty`).
    pub kl_penalty: KlPenalty,
    /// How scores become advantages (EasyR1's `adv_estimator`), by its registered name
    /// ([`Plugins`](crate::grpo::Plugins)): `"grpo"` (default), `"rloo"`,
    /// `"reinforce_plus_plus"`, `"reinforce_plus_plus_baseline"`, `"dr_grpo"`, or a user's.
    pub estimator: PluginName,
    /// GRPO: divide advantages by the group std (false: Dr. GRPO's advantages).
    pub normalize_std: bool,
    /// The token-level policy loss, by its registered name ([`Plugins`](crate::grpo::Plugins)):
    /// `"vanilla"` (default: EasyR1's clipped surrogate), `"cispo"`, `"dr_grpo"`, or a user's.
    /// `actor.loss_type: Gspo` replaces it with GSPO's sequence-level surrogate.
    pub loss: PluginName,
    /// Keep only groups whose mean `filter_key` score is strictly inside
    /// (`filter_low`, `filter_high`), drawing more prompts to refill the batch (EasyR1's
    /// `online_filtering`).
    pub online_filtering: bool,
    pub filter_key: FilterKey,
    pub filter_low: f32,
    pub filter_high: f32,
    /// Draws of `prompts_per_step` prompts at most to fill a filtered batch; 0: no limit.
    pub max_try_make_batch: usize,
    /// DAPO's soft overlong punishment, added to each response's overall score before
    /// advantages; `None` (default): off.
    pub overlong_penalty: Option<OverlongPenalty>,
    /// A bonus on the length of right answers, added to each response's overall score before
    /// advantages: the positive control that RL can lengthen responses (seethink's own, not in
    /// EasyR1); `None` (default): off.
    pub verbosity_bonus: Option<VerbosityBonus>,
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        Self {
            trainer: Trainer::Grpo,
            reward: RewardKind::Math,
            kl_coef: 0.01,
            use_kl_loss: true,
            kl_penalty: KlPenalty::LowVarKl,
            estimator: PluginName::new("grpo"),
            normalize_std: true,
            loss: PluginName::new("vanilla"),
            online_filtering: false,
            filter_key: FilterKey::Overall,
            filter_low: 0.01,
            filter_high: 0.99,
            max_try_make_batch: 20,
            overlong_penalty: None,
            verbosity_bonus: None,
        }
    }
}

/// DAPO's soft overlong punishment (EasyR1's `examples/reward_function/dapo.py`,
/// `soft_overlong_punishment` × `overlong_penalty_factor`), for responses that may take
/// `rollout.max_new_tokens` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlongPenalty {
    /// The last `buffer` tokens of the budget, where the punishment grows (EasyR1's
    /// `overlong_buffer_length`).
    pub buffer: usize,
    /// Its weight (EasyR1's `overlong_penalty_factor`).
    pub factor: f32,
}

impl OverlongPenalty {
    /// `factor · p` for a response of `length` tokens out of at most `max_length`, with
    /// `expected = max_length − buffer`: `p = 0` for `length ≤ expected`,
    /// `p = (expected − length) / buffer` up to `max_length`, `p = −1` beyond.
    pub fn penalty(&self, length: usize, max_length: usize) -> f32 {
        let expected = max_length.saturating_sub(self.buffer);
        let p = if length <= expected {
            0.0
        } else if length <= max_length {
            -((length - expected) as f64 / self.buffer as f64)
        } else {
            -1.0
        };
        self.factor * p as f32
    }
}

/// A reward on the length of right answers, the opposite of [`OverlongPenalty`]: what a
/// verbosity reward does, so that the sandbox can show RL lengthening responses where its base
/// model can write them longer (`docs/sandbox.md`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerbosityBonus {
    /// The bonus of a right answer that takes the whole budget.
    pub factor: f32,
}

impl VerbosityBonus {
    /// `factor · accuracy · min(length, max_length) / max_length` for a response of `length`
    /// tokens out of at most `max_length`, graded `accuracy` (0 or 1): a wrong answer gains
    /// nothing, a right one more the longer it is.
    pub fn bonus(&self, length: usize, max_length: usize, accuracy: f32) -> f32 {
        let share = length.min(max_length) as f64 / max_length.max(1) as f64;
        self.factor * accuracy * share as f32
    }
}

/// The reward score online filtering averages over a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterKey {
    Overall,
    Accuracy,
    Format,
}

impl FilterKey {
    /// This score of `reward`.
    pub fn of(self, reward: &seethink_reward::RewardBreakdown) -> f32 {
        match self {
            Self::Overall => reward.overall,
            Self::Accuracy => reward.accuracy,
            Self::Format => reward.format,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub schedule: LrSchedule,
    /// Optimizer updates per rollout step.
    pub mini_batches: usize,
    pub micro_batch_size: usize,
    pub clip_low: f32,
    pub clip_high: f32,
    pub dual_clip: f32,
    pub aggregation: Aggregation,
    /// The importance ratio of the surrogate (EasyR1's `loss_type`): `Default` (per token) or
    /// `Gspo` (per response, [`LossType`]).
    pub loss_type: LossType,
    pub freeze_vision: bool,
    /// Rows (sequences × positions) whose vocabulary logits are computed at a time when
    /// scoring responses: peak memory ∝ this × vocabulary size.
    pub logits_chunk_tokens: usize,
    /// Recompute each decoder layer in backward instead of keeping its activations (EasyR1's
    /// `worker.actor.model.enable_gradient_checkpointing`, on by default there; off by default
    /// here, where the CPU sandbox has memory to spare): trained-pass memory grows with
    /// `layers × tokens × hidden` instead of with everything each op saves, for one more
    /// forward pass of the decoder. The same gradients ([`crate::layer_checkpoints`]).
    pub activation_checkpointing: bool,
    /// Mixed precision (EasyR1's `worker.actor.fsdp.mp_param_dtype`, `bf16` there): every pass
    /// (the rollout, the old and reference log-probs, the updates) runs a copy of the policy
    /// cast to this type, gathered in it when the weights are sharded, while the trained
    /// weights and AdamW's moments stay in the backend's float type and the gradients are cast
    /// to it before they are summed (`mp_reduce_dtype: fp32`); log-probs, losses and advantages
    /// are in the backend's float type. `BF16` falls back to f16 on a backend without bf16;
    /// a backend that stores neither narrower type (ndarray's f32) computes in f32, with a
    /// warning. `None` (the default): the backend's float type throughout.
    /// [`seethink_models::nn::precision`].
    pub mixed_precision: Option<ComputeType>,
    /// Passes over a rollout's mini-batches (EasyR1's `ppo_epochs`; the paper: 1).
    pub ppo_epochs: usize,
    /// AdamW's ε (EasyR1 uses torch's default, 1e-8, and has no key for it).
    pub adam_epsilon: f64,
    /// Opt-in (EasyR1 always runs a separate pass): when a rollout gets exactly one update
    /// (`ppo_epochs` 1, `mini_batches` 1) and the KL is a loss (or off), take the old
    /// log-probs from the update's own forward pass, detached, instead of a pass of their own,
    /// as verl's `dp_actor` does `on_policy`. The policy has not moved, so they are the same
    /// numbers; the CPU preset's weights after 9 steps are bitwise equal either way on ndarray.
    /// Saves one forward pass over the rollout per step.
    pub on_policy_old_logprobs: bool,
    /// Train LoRA adapters instead of all weights (verl's `lora_rank`, `lora_alpha`,
    /// `target_modules`): on the decoder, and by choice on the vision tower and the projector
    /// (`vision_modules`, `projector`; frozen with `freeze_vision`). Every other parameter is
    /// frozen, and the KL reference is the base model without the adapters (no second copy of
    /// the weights).
    pub lora: Option<LoraConfig>,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            schedule: LrSchedule::Constant,
            mini_batches: 4,
            micro_batch_size: 8,
            clip_low: 0.2,
            clip_high: 0.3,
            dual_clip: 3.0,
            aggregation: Aggregation::TokenMean,
            loss_type: LossType::Default,
            freeze_vision: false,
            logits_chunk_tokens: 1024,
            activation_checkpointing: false,
            mixed_precision: None,
            ppo_epochs: 1,
            adam_epsilon: 1e-8,
            on_policy_old_logprobs: false,
            lora: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// Samples per prompt.
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Sequences generated per generation call: a step's prompts are generated together,
    /// `batch_size / n` prompts (at least one) per call. 0: as many as fit, a worker's whole
    /// share of the prompts in one call, or on a GPU the most prompts whose plan fits the
    /// device's memory (`seethink train` sets it before the run: `seethink plan` shows it).
    pub batch_size: usize,
    /// The type the rollout's KV cache keeps keys and values in (vLLM's `kv_cache_dtype`).
    pub kv_cache_dtype: KvCacheDtype,
    /// On a GPU (each prompt's cache shared by its samples): the most positions the samples'
    /// own keys and values hold at once in a generation call, over all its rows; a step that
    /// would pass it preempts the last rows, which resume in a later wave from their prompt and
    /// tokens so far, as vLLM preempts sequences when its cache is full
    /// ([`KvLayout::own_positions`](seethink_models::generate::KvLayout)). 0: no bound, every
    /// row may reach `max_new_tokens`. `rollout.batch_size: 0` sets it when a worker's whole
    /// share fits in one call only so (`seethink plan` shows it).
    pub kv_cache_positions: usize,
}

/// The type passes compute in under mixed precision (`actor.mixed_precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComputeType {
    BF16,
    F16,
    /// For a backend computing in f64 (the generic path's tests).
    F32,
}

impl ComputeType {
    /// This type as a checkpoint's storage type names it.
    pub fn dtype(self) -> seethink_models::checkpoint::Dtype {
        use seethink_models::checkpoint::Dtype;
        match self {
            Self::BF16 => Dtype::BF16,
            Self::F16 => Dtype::F16,
            Self::F32 => Dtype::F32,
        }
    }
}

/// The type of the rollout's KV cache (`rollout.kv_cache_dtype`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCacheDtype {
    /// The type the passes compute in: the backend's float type, or `actor.mixed_precision`'s.
    #[default]
    Compute,
    /// The checkpoint's float type where the backend can store it and it is narrower than the
    /// compute type (bf16 for the paper's checkpoints on CUDA computing in f32: half the bytes;
    /// vLLM's `auto`, the model's type), as frozen weights are kept
    /// ([`frozen_dtype`](seethink_models::nn::frozen::frozen_dtype)); else the compute type.
    /// Attention computes in the compute type either way.
    Checkpoint,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            n: 5,
            temperature: 1.0,
            top_p: 1.0,
            max_new_tokens: 2048,
            seed: 0,
            batch_size: 64,
            kv_cache_dtype: KvCacheDtype::Compute,
            kv_cache_positions: 0,
        }
    }
}

impl RolloutConfig {
    /// The sampling settings of rollout number `rollout`: seed `seed + rollout`, and sequence i
    /// of the rollout on stream i (set per generation call).
    pub fn sampling(&self, rollout: usize) -> SamplingConfig {
        SamplingConfig {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: 0,
            seed: self.seed.wrapping_add(rollout as u64),
            stream: 0,
        }
    }
}

impl From<&ActorConfig> for LearnerSettings {
    fn from(actor: &ActorConfig) -> Self {
        LearnerSettings {
            lr: actor.lr,
            schedule: actor.schedule,
            weight_decay: actor.weight_decay,
            adam_epsilon: actor.adam_epsilon,
            logits_chunk_tokens: actor.logits_chunk_tokens,
            activation_checkpointing: actor.activation_checkpointing,
            mixed_precision: actor.mixed_precision.map(ComputeType::dtype),
        }
    }
}

impl ActorConfig {
    /// The GRPO loss settings of this actor under `algorithm` (no KL term when the KL is a
    /// reward penalty).
    pub fn loss(&self, algorithm: &AlgorithmConfig) -> GrpoLossConfig {
        let kl_coef = if algorithm.use_kl_loss { algorithm.kl_coef } else { 0.0 };
        GrpoLossConfig {
            clip_low: self.clip_low,
            clip_high: self.clip_high,
            dual_clip: self.dual_clip,
            kl_coef,
            kl_penalty: algorithm.kl_penalty,
            aggregation: self.aggregation,
            loss_type: self.loss_type,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    /// Rollout (GRPO) or batch (SFT) steps.
    pub steps: usize,
    /// Prompts per step.
    pub prompts_per_step: usize,
    /// Checkpoint every this many steps (and at the end).
    pub save_every: usize,
    /// Checkpoints kept.
    pub keep_last: usize,
    /// Run directory (metrics.jsonl, checkpoints/, final/).
    pub out: PathBuf,
    /// Also log to TensorBoard: every step's metrics as scalars `train/<key>` in
    /// `<out>/tensorboard/`, and a curriculum run's held-out accuracies `heldout/<capability>`
    /// (and benchmark scores `benchmarks/<name>`, with `eval.benchmarks`) at the start and at
    /// each phase's end in the run's own `tensorboard/` (`tensorboard --logdir <out>`).
    pub tensorboard: bool,
    /// Data-parallel workers on this machine, one per device of the backend (devices 0 … N−1 of
    /// the run's device kind; CPU workers share the CPU): each rolls out its share of a step's
    /// prompts and computes its share of each mini-batch's gradients, which burn's collective
    /// sums ([`crate::data_parallel`]). 1: no data parallelism.
    pub devices: usize,
    /// The machines of a multi-node run (`None`: this machine alone).
    pub nodes: Option<NodesConfig>,
    /// What of the training state each data-parallel worker holds: `None` (everything, the
    /// default) or `OptimizerState` (AdamW's moments of its own share of the parameters, ZeRO
    /// stage 1; [`Sharding`], docs/distributed.md). Nothing changes for one worker.
    pub sharding: Sharding,
}

impl TrainerConfig {
    /// The data-parallel workers `devices` and `nodes` ask for, and what each holds.
    pub fn topology(&self) -> Topology {
        Topology { devices: self.devices, nodes: self.nodes.clone(), sharding: self.sharding }
    }
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            prompts_per_step: 512,
            save_every: 10,
            keep_last: 3,
            out: PathBuf::from("runs/latest"),
            tensorboard: false,
            devices: 1,
            nodes: None,
            sharding: Sharding::None,
        }
    }
}

fn yes() -> bool {
    true
}

impl TrainConfig {
    /// Reads a RON file, applies `key.path=value` overrides (values in RON syntax) and
    /// [validates](Self::validate) the result.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let config = Self::parse(path, overrides)?;
        config.validate().map_err(|message| TrainError::Config { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// Checks every setting that would make a run fail late or train uphill; the message names
    /// the key (`actor.lr: must be positive and finite, got -1`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (a, r, t, g) = (&self.actor, &self.rollout, &self.trainer, &self.algorithm);
        let positive = [
            ("actor.mini_batches", a.mini_batches),
            ("actor.micro_batch_size", a.micro_batch_size),
            ("actor.logits_chunk_tokens", a.logits_chunk_tokens),
            ("actor.ppo_epochs", a.ppo_epochs),
            ("rollout.n", r.n),
            ("rollout.max_new_tokens", r.max_new_tokens),
            ("trainer.steps", t.steps),
            ("trainer.prompts_per_step", t.prompts_per_step),
            ("trainer.save_every", t.save_every),
            ("trainer.keep_last", t.keep_last),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key}: must be at least 1, got 0"));
        }
        let finite_positive = [
            ("actor.lr", a.lr),
            ("actor.max_grad_norm", a.max_grad_norm),
            ("actor.adam_epsilon", a.adam_epsilon),
        ];
        if let Some((key, v)) = finite_positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("{key}: must be positive and finite, got {v}"));
        }
        let non_negative = [
            ("actor.weight_decay", a.weight_decay),
            ("actor.clip_low", f64::from(a.clip_low)),
            ("actor.clip_high", f64::from(a.clip_high)),
            ("algorithm.kl_coef", f64::from(g.kl_coef)),
        ];
        if let Some((key, v)) = non_negative.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(format!("{key}: must be finite and ≥ 0, got {v}"));
        }
        if a.loss_type == LossType::Gspo && g.loss.as_str() != "vanilla" {
            return Err(format!(
                "algorithm.loss: `{}` is a token-level loss, and actor.loss_type Gspo replaces the token-level \
                 loss with GSPO's sequence-level one; set one of them (algorithm.loss \"vanilla\" with Gspo)",
                g.loss
            ));
        }
        if let Some(lora) = &a.lora {
            lora.validate().map_err(|e| match e {
                seethink_models::ModelError::Lora(message) => format!("actor.lora.{message}"),
                other => other.to_string(),
            })?;
        }
        if a.dual_clip.is_nan() || a.dual_clip <= 1.0 {
            return Err(format!("actor.dual_clip: must be > 1, got {}", a.dual_clip));
        }
        if !(r.top_p > 0.0 && r.top_p <= 1.0) {
            return Err(format!("rollout.top_p: must be in (0, 1], got {}", r.top_p));
        }
        let sampled = g.trainer == Trainer::Grpo;
        if sampled && r.n < 2 {
            return Err(format!(
                "rollout.n: GRPO compares the samples of a group, it needs at least 2, got {}",
                r.n
            ));
        }
        if sampled && !(r.temperature > 0.0 && r.temperature.is_finite()) {
            return Err(format!(
                "rollout.temperature: GRPO needs a positive temperature (at 0 every sample of a group \
                 is the same and every advantage 0), got {}",
                r.temperature
            ));
        }
        if let Some(e) = &self.eval {
            if e.k == 0 || e.batch_size == 0 || e.max_new_tokens == Some(0) {
                return Err("eval: k, batch_size and max_new_tokens must be at least 1".into());
            }
            if !(e.temperature >= 0.0 && e.temperature.is_finite()) {
                return Err(format!("eval.temperature: must be finite and ≥ 0, got {}", e.temperature));
            }
            if let Some(top_p) = e.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                return Err(format!("eval.top_p: must be in (0, 1], got {top_p}"));
            }
            let mut listed = Vec::with_capacity(e.benchmarks.len());
            for entry in &e.benchmarks {
                let benchmark = entry.benchmark().map_err(|message| format!("eval.benchmarks: {message}"))?;
                if listed.contains(&benchmark) {
                    return Err(format!("eval.benchmarks: {benchmark} is listed twice"));
                }
                listed.push(benchmark);
            }
        }
        if let Some(curriculum) = &self.curriculum {
            curriculum.build().map_err(|e| format!("curriculum: {e}"))?;
        }
        if let (Some(min), Some(max)) = (self.data.min_pixels, self.data.max_pixels) {
            if min > max {
                return Err(format!("data.min_pixels: must not exceed data.max_pixels, got {min} > {max}"));
            }
        }
        if let Some(o) = g.overlong_penalty {
            if o.buffer == 0 || o.buffer > r.max_new_tokens {
                return Err(format!(
                    "algorithm.overlong_penalty.buffer: must be in 1..=rollout.max_new_tokens ({}), got {}",
                    r.max_new_tokens, o.buffer
                ));
            }
            if !(o.factor.is_finite() && o.factor >= 0.0) {
                return Err(format!(
                    "algorithm.overlong_penalty.factor: must be finite and ≥ 0, got {}",
                    o.factor
                ));
            }
        }
        if let Some(v) = g.verbosity_bonus {
            if !(v.factor.is_finite() && v.factor >= 0.0) {
                return Err(format!(
                    "algorithm.verbosity_bonus.factor: must be finite and ≥ 0, got {}",
                    v.factor
                ));
            }
        }
        self.trainer.topology().validate(self.trainer.prompts_per_step)?;
        if t.sharding.weights() && !a.activation_checkpointing {
            return Err("trainer.sharding: Weights gathers one decoder layer at a time, which needs \
                 actor.activation_checkpointing: true (without it, burn's autodiff keeps every gathered layer \
                 until the backward pass)"
                .into());
        }
        if g.filter_low.is_nan() || g.filter_high.is_nan() || g.filter_low >= g.filter_high {
            return Err(format!(
                "algorithm.filter_low: needs filter_low < filter_high, got {} and {}",
                g.filter_low, g.filter_high
            ));
        }
        Ok(())
    }

    /// Reads a RON file and applies the overrides, without validation.
    fn parse(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TrainError::Io { path: path.to_path_buf(), source })?;
        let error = |message: String| TrainError::Config { path: path.to_path_buf(), message };
        let config: Self = ron::from_str(&text).map_err(|e| error(e.to_string()))?;
        config.with_overrides(overrides).map_err(|message| error(format!("--set {message}")))
    }

    /// `self` with each `key=value` override applied in turn ([`with_override`]: any key, its
    /// value read as RON of the field's type); a message naming the key when one does not fit.
    pub fn with_overrides(&self, overrides: &[String]) -> std::result::Result<Self, String> {
        let mut config = self.clone();
        for assignment in overrides {
            let (key, raw) =
                assignment.split_once('=').ok_or_else(|| format!("`{assignment}`: not key=value"))?;
            config = with_override(&config, key, raw).map_err(|message| format!("{key}: {message}"))?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    /// The config of `file` with `overrides` (`key=value`).
    fn load_with(file: &tempfile::NamedTempFile, overrides: &[&str]) -> Result<TrainConfig> {
        TrainConfig::load(file.path(), &overrides.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    const MINIMAL: &str = r#"(model: "m", data: (train: "d.jsonl"), actor: (lr: 1e-3), trainer: (steps: 3))"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = TrainConfig::load(write(MINIMAL).path(), &[]).unwrap();
        assert_eq!(c.actor.lr, 1e-3);
        assert_eq!(c.rollout.n, 5);
        assert_eq!(c.algorithm.trainer, Trainer::Grpo);
        assert_eq!(c.data.format_prompt, FormatPrompt::Paper);
        assert_eq!((c.data.min_pixels, c.data.max_pixels), (Some(262_144), Some(4_194_304)));
    }

    #[test]
    fn overrides_are_typed_and_checked() {
        let f = write(MINIMAL);
        let c = TrainConfig::load(f.path(), &["rollout.n=8".into(), "algorithm.trainer=Sft".into()]).unwrap();
        assert_eq!((c.rollout.n, c.algorithm.trainer), (8, Trainer::Sft));
        let err = TrainConfig::load(f.path(), &["rollout.samples=8".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown key `samples`"), "{err}");
        let err = TrainConfig::load(f.path(), &["rollout.n=many".into()]).unwrap_err().to_string();
        assert!(err.contains("--set rollout.n:"), "{err}");
        let c = TrainConfig::load(f.path(), &["actor.schedule=Warmup(warmup: 5)".into()]).unwrap();
        assert_eq!(c.actor.schedule, LrSchedule::Warmup { warmup: 5 });
        // a string key takes a path quoted or not; a number key that gets no RON says how
        let quoted = TrainConfig::load(f.path(), &["data.train=\"/tmp/a b\"".into()]).unwrap();
        let bare = TrainConfig::load(f.path(), &["data.train=/tmp/a b".into()]).unwrap();
        assert_eq!(
            (quoted.data.train.clone(), bare.data.train),
            (PathBuf::from("/tmp/a b"), PathBuf::from("/tmp/a b"))
        );
        let err = TrainConfig::load(f.path(), &["actor.lr=/1".into()]).unwrap_err().to_string();
        assert!(err.contains("--set actor.lr") && err.contains("strings are quoted"), "{err}");
    }

    #[test]
    fn lora_settings_are_read_and_checked_naming_the_key() {
        let f = write(MINIMAL);
        let set = |value: &str| TrainConfig::load(f.path(), &[format!("actor.lora={value}")]);
        let c = set("Some((rank: 4, alpha: 8, target_modules: [\"q_proj\", \"v_proj\"]))").unwrap();
        let lora = c.actor.lora.unwrap();
        assert_eq!((lora.rank, lora.alpha, lora.dropout), (4, 8.0, 0.0));
        assert_eq!(lora.target_modules, ["q_proj", "v_proj"]);
        assert!(lora.vision_modules.is_empty() && !lora.projector, "the decoder only by default");
        let c = set("Some((target_modules: [], vision_modules: [\"qkv\"], projector: true))").unwrap();
        let lora = c.actor.lora.unwrap();
        assert_eq!((lora.vision_modules, lora.projector), (vec!["qkv".to_string()], true));
        let err = set("Some((target_modules: []))").unwrap_err().to_string();
        assert!(err.contains("actor.lora.target_modules: must name at least one module"), "{err}");
        let err = set("Some((rank: 0))").unwrap_err().to_string();
        assert!(err.contains("actor.lora.rank: must be at least 1, got 0"), "{err}");
        let err = set("Some((target_modules: [\"qkv\"]))").unwrap_err().to_string();
        assert!(err.contains("actor.lora.target_modules: unknown module `qkv`"), "{err}");
        let err = set("Some((ranks: 4))").unwrap_err().to_string();
        assert!(err.contains("ranks"), "{err}");
        assert_eq!(TrainConfig::load(f.path(), &[]).unwrap().actor.lora, None);
    }

    #[test]
    fn overrides_take_any_value_a_config_file_can_hold() {
        let f = write(MINIMAL);
        let set = |values: &[&str]| load_with(&f, values);
        let c = set(&["data.format_prompt=File(\"p.jinja\")"]).unwrap();
        assert_eq!(c.data.format_prompt, FormatPrompt::File("p.jinja".into()));
        assert_eq!(set(&["data.format_prompt=Plain"]).unwrap().data.format_prompt, FormatPrompt::Plain);
        let c = set(&["curriculum=Some((policy: Staged([perception, visual_reasoning])))"]).unwrap();
        assert_eq!(
            c.curriculum.unwrap().policy,
            seethink_curriculum::Policy::Staged(vec![Capability::Perception, Capability::VisualReasoning])
        );
        // through `Some(…)`, and back
        let c =
            set(&["curriculum=Some((policy: Paper))", "curriculum.policy=Staged([text_reasoning])"]).unwrap();
        assert_eq!(
            c.curriculum.unwrap().policy,
            seethink_curriculum::Policy::Staged(vec![Capability::TextReasoning])
        );
        assert!(set(&["data.max_prompt_length=None"]).unwrap().data.max_prompt_length.is_none());
        let err = set(&["curriculum.policy=Paper"]).unwrap_err().to_string();
        assert!(err.contains("--set curriculum.policy") && err.contains("not a struct"), "{err}");
        let err = set(&["curriculum=Some((policy: Staged([sight])))"]).unwrap_err().to_string();
        assert!(err.contains("--set curriculum") && err.contains("sight"), "{err}");
    }

    #[test]
    fn eval_benchmarks_are_optional_checked_and_settable() {
        let f = write(MINIMAL);
        let set = |values: &[&str]| load_with(&f, values);
        let eval = "eval=Some((data: \"h.jsonl\"))";
        // none listed: nothing written for them, so configs written before stay the same
        let c = set(&[eval]).unwrap();
        assert!(c.eval.as_ref().unwrap().benchmarks.is_empty());
        assert!(!ron::to_string(&c).unwrap().contains("benchmarks"));
        // a key left out of the written config is still set, and still checked
        let c = set(&[eval, "eval.benchmarks=[(name: \"MathVista_MINI\", file: \"m.tsv\")]"]).unwrap();
        let listed = &c.eval.as_ref().unwrap().benchmarks;
        assert_eq!(listed[0].benchmark(), Ok(Benchmark::MathVista));
        let err = set(&[eval, "eval.benchmarkz=[]"]).unwrap_err().to_string();
        assert!(err.contains("--set eval.benchmarkz: unknown key `benchmarkz`"), "{err}");
        let err = set(&[eval, "eval.benchmarks=[(name: \"pope\", fil: \"p.tsv\")]"]).unwrap_err().to_string();
        assert!(err.contains("--set eval.benchmarks") && err.contains("fil"), "{err}");
        for (value, expected) in [
            ("[(name: \"MMBench\", file: \"b.tsv\")]", "eval.benchmarks: unknown benchmark `MMBench`"),
            (
                "[(name: \"pope\", file: \"a.tsv\"), (name: \"POPE\", file: \"b.tsv\")]",
                "POPE is listed twice",
            ),
        ] {
            let err = set(&[eval, &format!("eval.benchmarks={value}")]).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn estimators_and_the_overlong_penalty_are_set_from_ron() {
        let f = write(MINIMAL);
        let set = [
            "algorithm.estimator=Rloo".into(),
            "algorithm.loss=\"cispo\"".into(),
            "algorithm.overlong_penalty=Some((buffer: 4, factor: 0.5))".into(),
        ];
        let c = TrainConfig::load(f.path(), &set).unwrap();
        assert_eq!((c.algorithm.estimator.as_str(), c.algorithm.loss.as_str()), ("rloo", "cispo"));
        // EasyR1's dapo.py with max 16, buffer 4: expected 12; 12 → 0, 14 → −0.5, 16 → −1, 17 → −1
        let o = c.algorithm.overlong_penalty.unwrap();
        let penalties: Vec<f32> = [12, 14, 16, 17].iter().map(|&l| o.penalty(l, 16)).collect();
        assert_eq!(penalties, [0.0, -0.25, -0.5, -0.5]);
    }

    #[test]
    fn the_verbosity_bonus_rewards_the_length_of_right_answers_only() {
        let f = write(MINIMAL);
        let c =
            TrainConfig::load(f.path(), &["algorithm.verbosity_bonus=Some((factor: 0.5))".into()]).unwrap();
        let v = c.algorithm.verbosity_bonus.unwrap();
        // 0.5 · accuracy · min(l, 16) / 16
        let right: Vec<f32> = [0, 8, 16, 20].iter().map(|&l| v.bonus(l, 16, 1.0)).collect();
        assert_eq!(right, [0.0, 0.25, 0.5, 0.5]);
        assert_eq!(v.bonus(16, 16, 0.0), 0.0);
        assert!(TrainConfig::load(f.path(), &[]).unwrap().algorithm.verbosity_bonus.is_none());
    }

    #[test]
    fn values_that_cannot_train_are_rejected_naming_the_key() {
        let f = write(MINIMAL);
        for (set, key) in [
            ("actor.lr=-1.0", "actor.lr"),
            ("actor.micro_batch_size=0", "actor.micro_batch_size"),
            ("rollout.n=0", "rollout.n"),
            ("rollout.n=1", "rollout.n"),
            ("rollout.temperature=0.0", "rollout.temperature"),
            ("trainer.save_every=0", "trainer.save_every"),
            ("algorithm.filter_low=0.995", "algorithm.filter_low"),
            (
                "algorithm.overlong_penalty=Some((buffer: 0, factor: 1.0))",
                "algorithm.overlong_penalty.buffer",
            ),
            (
                "algorithm.overlong_penalty=Some((buffer: 5000, factor: 1.0))",
                "algorithm.overlong_penalty.buffer",
            ),
            (
                "algorithm.overlong_penalty=Some((buffer: 8, factor: -1.0))",
                "algorithm.overlong_penalty.factor",
            ),
            ("algorithm.verbosity_bonus=Some((factor: -0.5))", "algorithm.verbosity_bonus.factor"),
        ] {
            let err = TrainConfig::load(f.path(), &[set.into()]).unwrap_err().to_string();
            assert!(err.contains(key), "{set}: {err}");
        }
        let gspo_and_cispo = ["actor.loss_type=Gspo".into(), "algorithm.loss=cispo".into()];
        let err = TrainConfig::load(f.path(), &gspo_and_cispo).unwrap_err().to_string();
        assert!(err.contains("algorithm.loss: `cispo`"), "{err}");
        // greedy rollouts are fine for SFT, which does not sample
        TrainConfig::load(f.path(), &["algorithm.trainer=Sft".into(), "rollout.temperature=0.0".into()])
            .unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = TrainConfig::load(write(r#"(model: "m", data: (train: "d", shuffled: true))"#).path(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shuffled"), "{err}");
        let err =
            TrainConfig::load(write(r#"(model: "m", data: (train: "d"), rollout: (n: "five"))"#).path(), &[])
                .unwrap_err()
                .to_string();
        assert!(err.contains("1:") && err.to_lowercase().contains("integer"), "{err}");
    }
}

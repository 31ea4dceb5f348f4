//! The CPU preset of the experiments: the sandbox's committed base model
//! ([`crate::sandbox`]), which can already partly see and reason, the procedural benchmark in
//! the worked style (short reasoning, graded by the paper's Math reward), and the GRPO settings
//! that move it in minutes. `staged_qwen3` runs the paper's stages from it; the ablation suite
//! runs every arm from it.
//!
//! Directory of a preset run (each step is skipped when its output is already there):
//! ```text
//! <out>/data/train, <out>/data/heldout   the benchmark (train: seed `seed`; held-out: seed 1000)
//! ```

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::curriculum::{CurriculumConfig, Policy};
use crate::data::synth::{self, AnswerStyle, FamilySpec, SynthConfig};
use crate::data::Task;
use crate::rl::config::{
    ActorConfig, AlgorithmConfig, HeldOutConfig, RewardKind, RolloutConfig, TrainConfig, TrainerConfig,
};
use crate::sandbox::{sandbox_data, MAX_RESPONSE_TOKENS};

/// Seed of the held-out set: one set for every training seed, so runs of different seeds are
/// evaluated on the same tasks.
pub const HELDOUT_SEED: u64 = 1_000;
/// GRPO steps per stage of the main job, the controls and the suite.
pub const PHASE_STEPS: usize = 40;
/// Prompts per GRPO step.
pub const PROMPTS_PER_STEP: usize = 16;
/// Samples per prompt (GRPO's group size n).
pub const GROUP_SIZE: usize = 8;
/// Training tasks per capability.
pub const TRAIN_TASKS: usize = 1_000;
/// Held-out tasks per capability: enough for paired intervals of about ±0.03.
pub const HELDOUT_TASKS: usize = 300;

/// The sizes of a CPU preset run.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuPreset {
    /// Run directory.
    pub out: PathBuf,
    /// The model RL starts from (the committed base model by default).
    pub base: PathBuf,
    /// GRPO steps per phase of the staged run.
    pub phase_steps: usize,
    /// Training tasks per capability.
    pub train_tasks: usize,
    /// Held-out tasks per capability.
    pub heldout_tasks: usize,
    /// Samples per held-out task.
    pub eval_k: usize,
    /// Seed of the training data and the run.
    pub seed: u64,
}

impl CpuPreset {
    /// Writes the data and returns the staged GRPO run's config: the paper's three phases from
    /// the base model, graded by the Math reward, evaluated on the held-out set before and after
    /// each phase.
    pub fn prepare(&self) -> Result<TrainConfig> {
        let out = &self.out;
        let (train, heldout) = (out.join("data/train"), out.join("data/heldout"));
        write_benchmark(&train, self.train_tasks, self.seed)?;
        write_benchmark(&heldout, self.heldout_tasks, HELDOUT_SEED)?;
        Ok(TrainConfig {
            model: self.base.clone(),
            data: sandbox_data(train, self.seed),
            algorithm: AlgorithmConfig { reward: RewardKind::Math, kl_coef: 0.01, ..Default::default() },
            actor: ActorConfig {
                lr: 5e-5,
                weight_decay: 0.0,
                mini_batches: 1,
                micro_batch_size: 32,
                ..Default::default()
            },
            rollout: RolloutConfig {
                n: GROUP_SIZE,
                temperature: 1.0,
                max_new_tokens: MAX_RESPONSE_TOKENS,
                seed: self.seed,
                batch_size: 64,
                ..Default::default()
            },
            trainer: TrainerConfig {
                steps: self.phase_steps,
                prompts_per_step: PROMPTS_PER_STEP,
                save_every: 10,
                keep_last: 1,
                out: out.join("staged"),
                tensorboard: false,
            },
            curriculum: Some(CurriculumConfig {
                policy: Policy::Paper,
                within: Vec::new(),
                phases: Default::default(),
                plateau: None,
            }),
            eval: Some(HeldOutConfig { k: self.eval_k, ..heldout_config(&heldout) }),
        })
    }
}

/// The held-out evaluation of the sandbox: every task of `data`, sampled at T = 1 (the
/// rollout's temperature), 4 samples per task, the perception-error attribution.
pub fn heldout_config(data: &Path) -> HeldOutConfig {
    HeldOutConfig {
        data: data.to_path_buf(),
        capability: None,
        k: 4,
        temperature: 1.0,
        max_new_tokens: None,
        batch_size: 64,
        attribute_errors: true,
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

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

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::curriculum::{CurriculumConfig, PhaseSettings, Policy};
use crate::data::Capability;
use crate::rl::config::{
    ActorConfig, AlgorithmConfig, HeldOutConfig, RewardKind, RolloutConfig, TrainConfig, TrainerConfig,
};
use crate::sandbox::{heldout_config, sandbox_data, write_benchmark, HELDOUT_SEED, MAX_RESPONSE_TOKENS};

/// GRPO steps of each stage of the main job, the controls and the suite; the merged baselines
/// run their sum (equal compute). Text reasoning gets twice the steps: its arithmetic moves more
/// slowly (from the base model, 40 steps at lr 5e-5 gave +0.008 [−0.019, +0.036] held-out
/// accuracy; 80 steps gave +0.035 [+0.015, +0.055], 300 tasks × 8 samples), and larger learning
/// rates lower it (−0.061 at 1e-4). The paper's stages are uneven too (90 / 375 / 465 steps).
pub const STAGE_STEPS: StageSteps = StageSteps { perception: 40, text_reasoning: 80, visual_reasoning: 40 };
/// Prompts per GRPO step.
pub const PROMPTS_PER_STEP: usize = 16;
/// Samples per prompt (GRPO's group size n).
pub const GROUP_SIZE: usize = 8;
/// Training tasks per capability.
pub const TRAIN_TASKS: usize = 1_000;
/// Held-out tasks per capability: enough for paired intervals of about ±0.03.
pub const HELDOUT_TASKS: usize = 300;

/// GRPO steps of each capability's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageSteps {
    pub perception: usize,
    pub text_reasoning: usize,
    pub visual_reasoning: usize,
}

impl StageSteps {
    /// `steps` for every stage.
    pub const fn uniform(steps: usize) -> Self {
        StageSteps { perception: steps, text_reasoning: steps, visual_reasoning: steps }
    }

    /// The steps of `capability`'s stage.
    pub fn of(&self, capability: Capability) -> usize {
        match capability {
            Capability::Perception => self.perception,
            Capability::TextReasoning => self.text_reasoning,
            Capability::VisualReasoning => self.visual_reasoning,
        }
    }

    /// The steps of all three stages: what a one-phase (merged) run gets at equal compute.
    pub fn total(&self) -> usize {
        self.perception + self.text_reasoning + self.visual_reasoning
    }

    /// The longest stage's steps.
    pub fn longest(&self) -> usize {
        self.perception.max(self.text_reasoning).max(self.visual_reasoning)
    }

    /// The curriculum settings giving each capability's phase its steps.
    pub fn phases(&self) -> BTreeMap<String, PhaseSettings> {
        Capability::ALL
            .into_iter()
            .map(|c| (c.to_string(), PhaseSettings { steps: Some(self.of(c)), ..Default::default() }))
            .collect()
    }
}

impl std::fmt::Display for StageSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.perception, self.text_reasoning, self.visual_reasoning)
    }
}

/// `N` (every stage) or `P,T,V` (perception, text reasoning, visual reasoning), each ≥ 1.
impl std::str::FromStr for StageSteps {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let steps = s
            .split(',')
            .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| format!("stage steps `{s}`: expected positive integers `N` or `P,T,V`"))?;
        match steps[..] {
            [n] => Ok(StageSteps::uniform(n)),
            [perception, text_reasoning, visual_reasoning] => {
                Ok(StageSteps { perception, text_reasoning, visual_reasoning })
            }
            _ => Err(format!("stage steps `{s}`: expected `N` or `P,T,V`, not {} numbers", steps.len())),
        }
    }
}

/// The sizes of a CPU preset run.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuPreset {
    /// Run directory.
    pub out: PathBuf,
    /// The model RL starts from (the committed base model by default).
    pub base: PathBuf,
    /// GRPO steps of each stage of the staged run.
    pub stage_steps: StageSteps,
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
                // one update per rollout: the old log-probs are the update's own (same weights)
                on_policy_old_logprobs: true,
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
                // a one-phase policy set by an override runs all stages' steps (equal compute)
                steps: self.stage_steps.total(),
                prompts_per_step: PROMPTS_PER_STEP,
                save_every: 10,
                keep_last: 1,
                out: out.join("staged"),
                tensorboard: false,
                ..Default::default()
            },
            curriculum: Some(CurriculumConfig {
                policy: Policy::Paper,
                within: Vec::new(),
                phases: self.stage_steps.phases(),
                plateau: None,
            }),
            eval: Some(HeldOutConfig { k: self.eval_k, ..heldout_config(&heldout) }),
        })
    }
}

//! The CPU preset of the experiments: the sandbox's committed base model
//! ([`crate::sandbox`]), which can already partly see and reason, the procedural benchmark in
//! the worked style (short reasoning, graded by the paper's Math reward), and the GRPO settings
//! that move it in minutes. `staged_qwen3` runs the paper's stages from it; the ablation suite
//! runs every arm from it.
//!
//! Directory of a preset run (each step is skipped when its output is already there):
//! ```text
//! <out>/data/train, <out>/data/heldout   the benchmark (train: seed `seed`; held-out: the
//!                                        validation seed 1000; another held-out seed s:
//!                                        <out>/data/heldout-<s>)
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use burn::backend::Autodiff;

use crate::curriculum::{
    Curriculum, CurriculumConfig, CurriculumError, Phase, PhaseSettings, Policy, TaskSampler,
};
use crate::data::{Capability, Task};
use crate::passrate::{passrate, PassRateOptions};
use crate::rl::algorithm::AlgorithmBuilder;
use crate::rl::builtin::BuiltIn;
use crate::rl::config::{
    ActorConfig, AlgorithmConfig, HeldOutConfig, RewardKind, RolloutConfig, TrainConfig, TrainerConfig,
};
use crate::rl::phases::{train_curriculum_with, PhasesOutcome};
use crate::rl::train_backend::KernelBackend;
use crate::sandbox::{heldout_config, sandbox_data, write_benchmark, MAX_RESPONSE_TOKENS, VALIDATION_SEED};

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
    /// New tokens per response, in training and evaluation ([`MAX_RESPONSE_TOKENS`] by default;
    /// [`MAX_VERBOSE_RESPONSE_TOKENS`](crate::sandbox::MAX_VERBOSE_RESPONSE_TOKENS) for the base
    /// model of varied verbosity).
    pub max_new_tokens: usize,
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
    /// Seed of the held-out set: [`VALIDATION_SEED`] (the default), or another, e.g.
    /// [`crate::sandbox::TEST_SEED`].
    pub heldout_seed: u64,
    /// Samples per task with which [`train_with`] rates the training tasks' pass rates by the
    /// base model (the difficulty axis' input: `EasyToHard`, `PassRateBand`, …); 0: none.
    pub pass_rate_samples: usize,
}

impl Default for CpuPreset {
    /// The preset's sizes: the committed base model, [`STAGE_STEPS`], [`TRAIN_TASKS`] and
    /// [`HELDOUT_TASKS`] per capability, 8 samples per held-out task, seed 0, the validation
    /// held-out set, no pass rates, in `runs/curriculum`.
    fn default() -> Self {
        CpuPreset {
            out: PathBuf::from("runs/curriculum"),
            base: crate::sandbox::committed_base(),
            max_new_tokens: MAX_RESPONSE_TOKENS,
            stage_steps: STAGE_STEPS,
            train_tasks: TRAIN_TASKS,
            heldout_tasks: HELDOUT_TASKS,
            eval_k: 8,
            seed: 0,
            heldout_seed: VALIDATION_SEED,
            pass_rate_samples: 0,
        }
    }
}

impl CpuPreset {
    /// Writes the data and returns the staged GRPO run's config: the paper's three phases from
    /// the base model, graded by the Math reward, evaluated on the held-out set before and after
    /// each phase.
    pub fn prepare(&self) -> Result<TrainConfig> {
        let out = &self.out;
        let heldout = match self.heldout_seed {
            VALIDATION_SEED => out.join("data/heldout"),
            seed => out.join(format!("data/heldout-{seed}")),
        };
        let train = out.join("data/train");
        write_benchmark(&train, self.train_tasks, self.seed)?;
        write_benchmark(&heldout, self.heldout_tasks, self.heldout_seed)?;
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
                max_new_tokens: self.max_new_tokens,
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

/// Runs `curriculum` on `preset` in one call, as `staged_qwen3` runs the paper's stages: the
/// preset's data (written on the first call), the training tasks' pass rates by the base model
/// when `preset.pass_rate_samples` > 0 (`<out>/data/rated`, kept for the next call), the
/// preset's stage steps for the curriculum's phases ([`WithStageSteps`]), GRPO from the base
/// model with a held-out evaluation before and after each phase, in `<out>/staged`
/// ([`crate::rl::phases::train_curriculum`]). Re-running resumes.
pub fn train_with<B: KernelBackend>(
    preset: &CpuPreset,
    curriculum: &dyn Curriculum,
    device: &B::Device,
) -> Result<PhasesOutcome> {
    train_with_algorithm::<B>(preset, curriculum, device, &BuiltIn)
}

/// [`train_with`] with the algorithm `algorithm` builds ([`train_curriculum_with`]): e.g. the
/// built-ins with a user's loss or estimator ([`crate::rl::builtin::WithPlugins`]), named by
/// `--set algorithm.loss=...` on the preset's config, or an algorithm of the user's own.
pub fn train_with_algorithm<B: KernelBackend>(
    preset: &CpuPreset,
    curriculum: &dyn Curriculum,
    device: &B::Device,
    algorithm: &dyn AlgorithmBuilder<Autodiff<B>>,
) -> Result<PhasesOutcome> {
    let mut config = preset.prepare()?;
    if preset.pass_rate_samples > 0 {
        let rated = preset.out.join("data/rated");
        if !rated.join(crate::data::synth::benchmark::TASKS_FILE).exists() {
            let options = PassRateOptions::for_run(&config, preset.pass_rate_samples, rated.clone());
            passrate::<B>(&config.model, &config.data.train, &options)?;
        }
        config.data.train = rated;
    }
    let tasks = crate::rl::run::load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    let curriculum = WithStageSteps { inner: curriculum, steps: preset.stage_steps };
    Ok(train_curriculum_with::<Autodiff<B>>(&config, &curriculum, tasks, reward, device, algorithm)?)
}

/// `inner`'s phases with the preset's stage steps for every phase that sets no steps of its own
/// (`PhaseSettings::steps` or `epochs`): a phase named after a capability gets that capability's
/// stage steps; a curriculum of one phase gets all three stages' (equal compute, as the merged
/// baseline); the phases of a curriculum of three get perception's, text reasoning's and visual
/// reasoning's by position. Any other phase without steps is an error that names it.
pub struct WithStageSteps<'a> {
    pub inner: &'a dyn Curriculum,
    pub steps: StageSteps,
}

impl Curriculum for WithStageSteps<'_> {
    fn phases(&self, pool: &[Task], seed: u64) -> crate::curriculum::Result<Vec<Phase>> {
        let mut phases = self.inner.phases(pool, seed)?;
        let count = phases.len();
        let names: Vec<String> = phases.iter().map(|p| p.name.clone()).collect();
        for (i, phase) in phases.iter_mut().enumerate() {
            if phase.settings.steps.is_some() || phase.settings.epochs.is_some() {
                continue;
            }
            let steps = match (phase.name.parse::<Capability>(), count) {
                (Ok(capability), _) => self.steps.of(capability),
                (Err(_), 1) => self.steps.total(),
                (Err(_), 3) => self.steps.of(Capability::ALL[i]),
                (Err(_), _) => {
                    return Err(CurriculumError::Invalid {
                        policy: "stage steps".into(),
                        message: format!(
                            "phase `{}` (of {}) has no steps: the preset gives steps to phases named \
                             perception, text_reasoning or visual_reasoning, to a lone phase, or by \
                             position to three phases; set its PhaseSettings::steps or epochs",
                            phase.name,
                            names.join(", ")
                        ),
                    })
                }
            };
            phase.settings.steps = Some(steps);
        }
        Ok(phases)
    }

    fn sampler(
        &self,
        phase: &Phase,
        pool: &[Task],
        seed: u64,
    ) -> crate::curriculum::Result<Box<dyn TaskSampler>> {
        self.inner.sampler(phase, pool, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curriculum::{Merged, Order, Staged};

    fn pool() -> Vec<Task> {
        Capability::ALL
            .iter()
            .enumerate()
            .map(|(i, &capability)| Task::text(format!("t{i}"), "?", "1", capability))
            .collect()
    }

    /// Phases named `names`, each over every task; `own` sets the first one's steps.
    struct Named {
        names: Vec<&'static str>,
        own: Option<usize>,
    }

    impl Curriculum for Named {
        fn phases(&self, pool: &[Task], _seed: u64) -> crate::curriculum::Result<Vec<Phase>> {
            Ok(self
                .names
                .iter()
                .enumerate()
                .map(|(i, name)| Phase {
                    name: name.to_string(),
                    tasks: (0..pool.len()).collect(),
                    order: Order::Shuffled,
                    settings: PhaseSettings { steps: self.own.filter(|_| i == 0), ..Default::default() },
                })
                .collect())
        }
    }

    fn steps(curriculum: &dyn Curriculum) -> crate::curriculum::Result<Vec<Option<usize>>> {
        let budget = WithStageSteps {
            inner: curriculum,
            steps: StageSteps { perception: 4, text_reasoning: 5, visual_reasoning: 6 },
        };
        Ok(budget.phases(&pool(), 0)?.iter().map(|p| p.settings.steps).collect())
    }

    #[test]
    fn any_curriculum_s_phases_get_the_preset_s_stage_steps_by_name_or_position() {
        let (p, t) = (Capability::Perception, Capability::TextReasoning);
        assert_eq!(steps(&Staged::new([t, p])).unwrap(), [Some(5), Some(4)], "by name");
        assert_eq!(steps(&Merged::new()).unwrap(), [Some(15)], "a lone phase: all stages");
        let three = Named { names: vec!["look", "read", "think"], own: None };
        assert_eq!(steps(&three).unwrap(), [Some(4), Some(5), Some(6)], "by position");
        let own = Named { names: vec!["look", "read"], own: Some(9) };
        assert!(steps(&own).is_err(), "`read` has no steps and no stage of its own");
        let gate = Named { names: vec!["perception", "reasoning"], own: None };
        let message = steps(&gate).unwrap_err().to_string();
        assert!(message.contains("`reasoning`"), "{message}");
        let kept = Named { names: vec!["reasoning"], own: Some(2) };
        assert_eq!(steps(&kept).unwrap(), [Some(2)], "a phase's own steps win");
    }
}

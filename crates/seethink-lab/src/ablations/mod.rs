//! The ablation suite: the paper's comparisons (staged vs merged vs reverse, RL vs caption-SFT
//! perception, capability × difficulty, adaptive policies) at CPU scale over several seeds.
//!
//! Every arm of every seed starts from the sandbox's committed base model ([`crate::sandbox`],
//! through the CPU preset [`crate::preset`]) and trains on the seed's pool at the same compute: `3 · P` steps of
//! `prompts_per_step` prompts (P per stage), the pool holding `P · prompts_per_step` tasks per
//! capability, so a stage is one epoch of its data and `merged` one epoch of all of it. The
//! pool is drawn from its own seed, its pass rates are estimated with
//! the base model (K samples, T = 0.7, top-p 0.9, as the paper), and its perception tasks'
//! scenes give the captions of the SFT arm. Every arm is evaluated on one held-out set.
//!
//! ```text
//! <out>/seed-<s>/                  the CPU preset's data (data/train, data/heldout)
//! <out>/seed-<s>/data/rl/          the RL pool; data/rated/ with pass rates; data/captions/
//! <out>/seed-<s>/eval-start/       held-out evaluation of the base model
//! <out>/seed-<s>/<arm>/            the arm's curriculum run; record.json once finished
//! <results>/                       runs.jsonl, suite.json, tables.md, curves, rewritten
//!                                  after every arm (`results`)
//! ```
//! Re-running resumes: finished arms are read back (from the results folder when it was made
//! with this code's numerics and the suite's settings, else from their `record.json`), an
//! unfinished one resumes inside its curriculum run. So a results folder kept between machines
//! (committed mid-suite, say) carries a long suite over to a fresh checkout: only the arms it
//! lacks run there.

mod arms;
mod record;
mod results;
mod tables;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::backend::Autodiff;

pub use arms::Arm;
pub use record::{CurvePoint, HeldOut, Metric, PhaseRecord, RunRecord};
pub use tables::{comparison_tables, Comparison, COMPARISONS};

use crate::data::synth::caption::caption_tasks;
use crate::data::Capability;
use crate::passrate::{passrate, PassRateOptions};
use crate::preset::{CpuPreset, StageSteps};
use crate::rl::config::{DataSource, TrainConfig};
use crate::rl::train_backend::KernelBackend;
use crate::sandbox::write_benchmark;

/// What to run and where.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Run directory (models, checkpoints, per-arm runs).
    pub out: PathBuf,
    /// Where the results (tables, plots, raw records, header) are written.
    pub results: PathBuf,
    pub seeds: Vec<u64>,
    pub arms: Vec<Arm>,
    /// The model every arm starts from (the sandbox's committed base model; with
    /// [`Suite::from_config`], its config's `model`).
    pub base: PathBuf,
    /// New tokens per response, in training and evaluation (the sandbox's
    /// [`MAX_RESPONSE_TOKENS`](crate::sandbox::MAX_RESPONSE_TOKENS); with
    /// [`Suite::from_config`], its config's).
    pub max_new_tokens: usize,
    /// A suite on a real checkpoint and real data instead of the sandbox ([`FromConfig`]).
    pub from_config: Option<FromConfig>,
    /// Steps of each stage (P, T, V).
    pub stage_steps: StageSteps,
    /// Prompts per step.
    pub prompts_per_step: usize,
    /// Samples per prompt (GRPO's group size n).
    pub group_size: usize,
    /// Held-out tasks per capability.
    pub heldout_tasks: usize,
    /// Seed of the sandbox's held-out set: [`crate::sandbox::TEST_SEED`] (the default, the set
    /// no setting was tuned on) or [`crate::sandbox::VALIDATION_SEED`].
    pub heldout_seed: u64,
    /// Samples per task of the pass-rate estimate.
    pub passrate_k: usize,
    /// Samples per held-out task.
    pub eval_k: usize,
    /// Whether this is the smoke configuration (recorded in the header).
    pub smoke: bool,
    /// The command line, for the header.
    pub command: String,
}

impl Suite {
    /// The full suite: every arm, seeds `0..seeds`, the CPU preset's sizes
    /// ([`crate::preset::STAGE_STEPS`] steps per stage of [`crate::preset::PROMPTS_PER_STEP`]
    /// prompts × [`crate::preset::GROUP_SIZE`] samples, [`crate::preset::HELDOUT_TASKS`]
    /// held-out tasks per capability × 4 samples), K = 8 for pass rates.
    pub fn full(seeds: usize, out: PathBuf, results: PathBuf) -> Suite {
        Suite {
            out,
            results,
            seeds: (0..seeds as u64).collect(),
            arms: Arm::ALL.to_vec(),
            base: crate::sandbox::committed_base(),
            max_new_tokens: crate::sandbox::MAX_RESPONSE_TOKENS,
            from_config: None,
            stage_steps: crate::preset::STAGE_STEPS,
            prompts_per_step: crate::preset::PROMPTS_PER_STEP,
            group_size: crate::preset::GROUP_SIZE,
            heldout_tasks: crate::preset::HELDOUT_TASKS,
            heldout_seed: crate::sandbox::TEST_SEED,
            passrate_k: 8,
            eval_k: 4,
            smoke: false,
            command: String::new(),
        }
    }

    /// The smoke configuration: one seed, every arm, a handful of steps on a few tasks (it checks
    /// that the suite runs end to end, not what it finds).
    pub fn smoke(out: PathBuf, results: PathBuf) -> Suite {
        Suite {
            seeds: vec![0],
            stage_steps: StageSteps::uniform(2),
            prompts_per_step: 2,
            group_size: 2,
            heldout_tasks: 4,
            passrate_k: 2,
            eval_k: 1,
            smoke: true,
            ..Suite::full(1, out, results)
        }
    }
}

/// The suite on a real checkpoint: every arm starts from `config` (its `model`, its data, whose
/// records each need a capability, its optimiser, rollout and held-out `eval` settings) with the
/// arm's curriculum; `captions` are the SFT arm's caption tasks (records of source
/// [`CAPTION_SOURCE`](crate::data::synth::CAPTION_SOURCE), perception).
#[derive(Clone, Debug)]
pub struct FromConfig {
    pub config: TrainConfig,
    pub captions: Option<PathBuf>,
}

impl Suite {
    /// The suite of `seeds` seeds on `from`'s checkpoint, data and settings: `stage_steps`, else
    /// its curriculum's phases' (`perception`, `text_reasoning`, `visual_reasoning`), held-out
    /// samples from its `eval` section, pass rates with K = 8. An error names what the config
    /// lacks.
    pub fn on_config(
        from: FromConfig,
        stage_steps: Option<StageSteps>,
        seeds: usize,
        out: PathBuf,
        results: PathBuf,
    ) -> Result<Suite> {
        let config = &from.config;
        let eval = config.eval.as_ref().context(
            "the suite evaluates every arm on the config's `eval` data: the config has no `eval` section",
        )?;
        let phases = config.curriculum.as_ref().map(|c| &c.phases);
        let steps = |c: Capability| {
            phases.and_then(|p| p.get(&c.to_string())).and_then(|p| p.steps).with_context(|| {
                format!("the config's curriculum gives no steps for the `{c}` phase (or pass --stage-steps)")
            })
        };
        let stage_steps = match stage_steps {
            Some(steps) => steps,
            None => StageSteps {
                perception: steps(Capability::Perception)?,
                text_reasoning: steps(Capability::TextReasoning)?,
                visual_reasoning: steps(Capability::VisualReasoning)?,
            },
        };
        Ok(Suite {
            base: config.model.clone(),
            max_new_tokens: config.rollout.max_new_tokens,
            stage_steps,
            prompts_per_step: config.trainer.prompts_per_step,
            group_size: config.rollout.n,
            eval_k: eval.k,
            from_config: Some(from.clone()),
            ..Suite::full(seeds, out, results)
        })
    }
}

/// Runs (or resumes) every arm of `suite` for every seed, then writes the results; returns the
/// records. Prints progress and the tables.
pub fn run_suite<B: KernelBackend>(suite: &Suite) -> Result<Vec<RunRecord>> {
    anyhow::ensure!(
        !suite.seeds.is_empty() && !suite.arms.is_empty(),
        "the suite needs at least one seed and one arm"
    );
    let stages = suite.stage_steps;
    anyhow::ensure!(
        Capability::ALL.into_iter().all(|c| stages.of(c) > 0),
        "every stage needs at least one step, not {stages}"
    );
    let this = results::ThisProcess::start();
    crate::writable_dir(&suite.results)?;
    let total = suite.seeds.len() * suite.arms.len();
    let earlier = results::read(suite)?;
    if !earlier.records.is_empty() {
        eprintln!(
            "== ablations: {} finished runs read back from {}",
            earlier.records.len(),
            suite.results.display()
        );
    }
    let mut records: Vec<RunRecord> = Vec::with_capacity(total);
    let mut tables = String::new();
    for (s, &seed) in suite.seeds.iter().enumerate() {
        let mut base = None;
        for (a, &arm) in suite.arms.iter().enumerate() {
            let done = s * suite.arms.len() + a;
            let elapsed = this.minutes();
            eprintln!(
                "== ablations: seed {seed} ({}/{}), arm {} ({}/{}); {done} of {total} runs done, {elapsed:.1} min",
                s + 1,
                suite.seeds.len(),
                arm.key(),
                a + 1,
                suite.arms.len(),
            );
            let record = match finished_record(suite, &earlier.records, arm, seed)? {
                Some(record) => record,
                None => {
                    let base = match &base {
                        Some(base) => base,
                        None => base.insert(prepare_seed::<B>(suite, seed)?),
                    };
                    run_arm::<B>(suite, base, arm, seed)?
                }
            };
            eprintln!(
                "== {} (seed {seed}): held-out overall {:.3} (start {:.3}), {} steps, {:.1} min",
                arm.key(),
                record.end.overall,
                record.start.overall,
                record.steps,
                record.seconds / 60.0
            );
            records.push(record);
            tables = results::write(suite, &records, &this)?;
        }
    }
    println!("{tables}");
    eprintln!("results in {}", suite.results.display());
    Ok(records)
}

/// The seed's shared start: the CPU preset's data, the RL pool with pass rates and captions,
/// and the base model's held-out evaluation. Returns the base run config
/// (training on the rated pool).
fn prepare_seed<B: KernelBackend>(suite: &Suite, seed: u64) -> Result<TrainConfig> {
    let dir = suite.out.join(format!("seed-{seed}"));
    let base = match &suite.from_config {
        None => prepare_sandbox_data::<B>(suite, seed, &dir)?,
        Some(from) => prepare_config_data::<B>(suite, from, seed, &dir)?,
    };
    let heldout = base.eval.as_ref().context("the suite evaluates on a held-out set")?;
    let reward = base.algorithm.reward.reward();
    crate::rl::evaluation::evaluate_point::<B>(
        &base,
        heldout,
        &base.model,
        reward.as_ref(),
        &dir.join("eval-start"),
        &Default::default(),
    )?;
    Ok(base)
}

/// The sandbox's data of a seed in `dir`: the CPU preset's, the RL pool with pass rates and
/// captions; returns the base run config (training on the rated pool).
fn prepare_sandbox_data<B: KernelBackend>(suite: &Suite, seed: u64, dir: &Path) -> Result<TrainConfig> {
    let dir = dir.to_path_buf();
    let preset = CpuPreset {
        out: dir.clone(),
        base: suite.base.clone(),
        max_new_tokens: suite.max_new_tokens,
        stage_steps: suite.stage_steps,
        train_tasks: suite.prompts_per_step,
        heldout_tasks: suite.heldout_tasks,
        eval_k: suite.eval_k,
        seed,
        heldout_seed: suite.heldout_seed,
        pass_rate_samples: 0,
    };
    let mut base = preset.prepare()?;
    base.trainer.prompts_per_step = suite.prompts_per_step;
    base.rollout.n = suite.group_size;
    let pool = dir.join("data/rl");
    let pool_tasks = suite.stage_steps.longest() * base.trainer.prompts_per_step;
    write_benchmark(&pool, pool_tasks, POOL_SEED_OFFSET + seed)?;
    let rated = dir.join("data/rated");
    if !rated.join(crate::data::synth::benchmark::TASKS_FILE).exists() {
        // the suite's seed is the preset's rollout seed
        let options = PassRateOptions::for_run(&base, suite.passrate_k, rated.clone());
        passrate::<B>(&base.model, &pool, &options)?;
    }
    let captions = dir.join("data/captions");
    if !captions.join(crate::data::synth::benchmark::TASKS_FILE).exists() {
        let mut tasks = crate::data::load_tasks(&rated, None)?;
        let perception: Vec<_> =
            tasks.iter().filter(|t| t.capability == Capability::Perception).cloned().collect();
        tasks.extend(caption_tasks(&perception)?);
        crate::data::synth::write_tasks(&captions, &tasks)?;
    }
    if suite.arms.iter().any(|a| a.perception_pool().is_some()) {
        prepare_perception_questions::<B>(suite, &base, &dir, seed, &rated)?;
    }
    base.data.train = rated;
    Ok(base)
}

/// Seed of seed `s`'s synthesised perception questions (the filter arms):
/// `QUESTIONS_SEED_OFFSET + s`.
pub const QUESTIONS_SEED_OFFSET: u64 = 900;

/// The filter arms' pools in `dir` ([`Arm::PerceptionFiltered`], [`Arm::PerceptionUnfiltered`]):
/// `4·N` candidate scenes with captions and template questions from their ground truth
/// (`data/perception-candidates`, [`crate::perception_data::captions`]), the base model's image-only
/// answers to them (`seethink perception-data`'s image side: greedy, the run's response budget
/// and image bounds, the sandbox's templates; the caption side does not run, since the
/// questions come from the ground truth the caption states and the sandbox's models cannot
/// read captions), and the rated pool with the first N questions the filter keeps, or the
/// first N candidates, N the perception stage's prompts (P · prompts_per_step).
fn prepare_perception_questions<B: KernelBackend>(
    suite: &Suite,
    base: &TrainConfig,
    dir: &Path,
    seed: u64,
    rated: &Path,
) -> Result<()> {
    use crate::perception_data::{
        perception_data, read_questions, training_task, Answerer, PerceptionDataOptions, QuestionSource,
        Templates,
    };
    let (filtered, unfiltered) = (dir.join(arms::FILTERED_POOL), dir.join(arms::UNFILTERED_POOL));
    let tasks_file = crate::data::synth::benchmark::TASKS_FILE;
    if filtered.join(tasks_file).exists() && unfiltered.join(tasks_file).exists() {
        return Ok(());
    }
    let wanted = suite.stage_steps.perception * suite.prompts_per_step;
    let candidates = dir.join("data/perception-candidates");
    if !candidates.join("questions.jsonl").exists() {
        crate::perception_data::captions(&candidates, 4 * wanted, QUESTIONS_SEED_OFFSET + seed)?;
    }
    let templates = crate::in_repository("configs/perception_data/sandbox");
    let templates = Templates::shipped_or_from(Some(&templates))?;
    let options = PerceptionDataOptions {
        source: QuestionSource::Written(candidates.join("questions.jsonl")),
        question_tokens: 1,
        caption_side: Vec::new(),
        image_side: vec![Answerer::Checkpoint(base.model.clone())],
        k: 1,
        temperature: 0.0,
        answer_tokens: base.rollout.max_new_tokens,
        max_image_pass_rate: 0.0,
        batch_size: 16,
        bounds: base.data.image_bounds(),
        templates: templates.clone(),
        seed,
        out: candidates.join("filter"),
    };
    perception_data::<B>(options)?;
    let kept = crate::data::load_tasks(&candidates.join("filter"), None)?;
    anyhow::ensure!(
        kept.len() >= wanted,
        "the base model failed only {} of {} candidate questions from the image; the perception stage needs {wanted}",
        kept.len(),
        4 * wanted
    );
    let all = read_questions(&candidates.join("questions.jsonl"))?;
    let all: Vec<crate::data::Task> =
        all.iter().take(wanted).map(|q| training_task(q, &templates)).collect::<Result<_>>()?;
    let pool = crate::data::load_tasks(rated, None)?;
    for (out, questions) in [(&filtered, &kept[..wanted]), (&unfiltered, &all[..])] {
        let tasks: Vec<crate::data::Task> = pool.iter().chain(questions).cloned().collect();
        crate::data::synth::write_tasks(out, &tasks)?;
    }
    Ok(())
}

/// The config's data for a seed in `dir`: every data file rated with its pass rates by the
/// starting model (`data/rated-<i>`, the difficulty arms' input; cached); returns the config
/// seeded with `seed` (rollout and data order) and training on the rated files.
fn prepare_config_data<B: KernelBackend>(
    suite: &Suite,
    from: &FromConfig,
    seed: u64,
    dir: &Path,
) -> Result<TrainConfig> {
    let mut base = from.config.clone();
    (base.rollout.seed, base.data.seed) = (seed, seed);
    let mut files: Vec<(&mut PathBuf, Option<Capability>)> =
        vec![(&mut base.data.train, base.data.capability)];
    files.extend(base.data.sources.iter_mut().map(|s| (&mut s.path, s.capability)));
    for (i, (path, capability)) in files.into_iter().enumerate() {
        let rated = dir.join(format!("data/rated-{i}"));
        if !rated.join(crate::data::synth::benchmark::TASKS_FILE).exists() {
            let options = PassRateOptions {
                capability,
                ..PassRateOptions::for_run(&from.config, suite.passrate_k, rated.clone())
            };
            passrate::<B>(&from.config.model, path, &options)?;
        }
        *path = rated;
    }
    Ok(base)
}

/// Seed of seed `s`'s RL pool: `POOL_SEED_OFFSET + s` (the preset's train set uses `s`, the
/// held-out set [`Suite::heldout_seed`]).
pub const POOL_SEED_OFFSET: u64 = 500;

/// The record of one arm of one seed when an earlier process finished it: from the results
/// folder's `kept` records, else from the run directory's `record.json`; `None` when it is to run.
fn finished_record(suite: &Suite, kept: &[RunRecord], arm: Arm, seed: u64) -> Result<Option<RunRecord>> {
    if let Some(record) = kept.iter().find(|r| r.arm == arm.key() && r.seed == seed) {
        return Ok(Some(record.clone()));
    }
    let record_path = suite.out.join(format!("seed-{seed}")).join(arm.key()).join("record.json");
    if !record_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&record_path)
        .with_context(|| format!("reading {}", record_path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not a run record", record_path.display()))
}

/// Runs one arm of one seed from the seed's `base` config; its `record.json` marks it finished.
fn run_arm<B: KernelBackend>(suite: &Suite, base: &TrainConfig, arm: Arm, seed: u64) -> Result<RunRecord> {
    let seed_dir = suite.out.join(format!("seed-{seed}"));
    let dir = seed_dir.join(arm.key());
    let record_path = dir.join("record.json");
    // the base model's evaluation (held-out report, benchmark predictions) is the same for
    // every arm: reuse it
    copy_files(&seed_dir.join("eval-start"), &dir.join("eval-start"))?;
    let mut config = base.clone();
    config.curriculum = Some(arm.curriculum(suite.stage_steps, config.rollout.max_new_tokens));
    config.trainer.out = dir.clone();
    if let Some(pool) = arm.perception_pool() {
        anyhow::ensure!(
            suite.from_config.is_none(),
            "the `{}` arm runs in the sandbox (its questions come from the procedural scenes)",
            arm.key()
        );
        config.data.train = seed_dir.join(pool);
    }
    if arm.uses_captions() {
        match suite.from_config.as_ref() {
            None => config.data.train = seed_dir.join("data/captions"),
            Some(FromConfig { captions: Some(captions), .. }) => config
                .data
                .sources
                .push(DataSource { path: captions.clone(), capability: Some(Capability::Perception) }),
            Some(FromConfig { captions: None, .. }) => anyhow::bail!(
                "the `{}` arm trains on captions: give the suite caption tasks (--captions)",
                arm.key()
            ),
        }
    }
    let started = Instant::now();
    let tasks = crate::rl::run::load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    let outcome =
        crate::rl::phases::train_phases::<Autodiff<B>>(&config, tasks, reward, &Default::default())?;
    let record = RunRecord::collect(arm, seed, &outcome, started.elapsed().as_secs_f64())?;
    write_atomically(&record_path, &serde_json::to_string_pretty(&record)?)?;
    Ok(record)
}

/// Copies every file of `from` into `to` (created), and its subdirectories' likewise.
fn copy_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry.with_context(|| format!("reading {}", from.display()))?.path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_files(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file, so a reader never sees half of it.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

//! Stage chaining: a curriculum's phases as training runs back to back, with a held-out
//! evaluation before the first and after each.
//!
//! Run directory of a curriculum run:
//! ```text
//! <out>/plan.json              the phases (name, tasks, order, settings, and `sampler`:
//!                              what the phase draws beyond its tasks, e.g. a replay share)
//! <out>/eval-start/            held-out evaluation of the starting model (benchmarks/: its
//!                              eval.benchmarks, crate::benchmarks)
//! <out>/01-perception/         phase 1's run (config.ron, metrics.jsonl, checkpoint/, final/)
//! <out>/01-perception/eval/    held-out evaluation of its final model (and benchmarks/)
//! <out>/02-text_reasoning/ …
//! <out>/summary.md             accuracy per capability before and after each phase
//! <out>/benchmarks.md          each benchmark's score and the paper's averages before and
//!                              after each phase (with eval.benchmarks)
//! ```
//! Phase i starts from phase i−1's `final/` (a fresh optimizer, and a reference model = its
//! starting weights, as the paper's separate EasyR1 jobs). Re-running resumes: finished phases
//! (their `final/` holds the exported training config) and finished evaluations (their
//! `report.json`) are kept, and an unfinished phase resumes from its last checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seethink_curriculum::{Curriculum, Order, Phase, PhaseSettings};
use seethink_data::{Capability, Task};
use seethink_eval::{EvalReport, SuiteReport};
use seethink_models::kernels::Kernels;
use seethink_models::processing::Processor;
use seethink_reward::Reward;

use crate::algorithm::AlgorithmBuilder;
use crate::benchmarks::benchmark_summary;
use crate::builtin::BuiltIn;
use crate::config::TrainConfig;
use crate::error::{io, Result, TrainError};
use crate::evaluation::{evaluate_point, write_json, PointReport};
use crate::run::{prepare_tasks, run_tasks_with, TRAINING_CONFIG};
use crate::tensorboard::{EventWriter, TENSORBOARD_DIR};
use crate::train_backend::TrainBackend;

/// What a curriculum run produced: the held-out and benchmark reports of the start and of each
/// phase's end (none without `eval`, no benchmark reports without `eval.benchmarks`), and each
/// phase's final model directory.
#[derive(Debug)]
pub struct PhasesOutcome {
    /// `("start", report)`, then `(phase name, report)` per phase.
    pub reports: Vec<(String, EvalReport)>,
    /// The benchmarks' reports at the same points.
    pub benchmarks: Vec<(String, SuiteReport)>,
    /// Each phase's exported model, in order.
    pub finals: Vec<PathBuf>,
}

/// Runs (or resumes) the phases of `config.curriculum` over `tasks` (see the module docs):
/// [`train_curriculum`] with the built-in policy the config names.
pub fn train_phases<B: TrainBackend>(
    config: &TrainConfig,
    tasks: Vec<Task>,
    reward: Arc<dyn Reward>,
    device: &B::Device,
) -> Result<PhasesOutcome> {
    let config_error =
        |message: String| TrainError::Config { path: config.trainer.out.join("config.ron"), message };
    let curriculum =
        config.curriculum.as_ref().ok_or_else(|| config_error("no curriculum".into()))?.build()?;
    train_curriculum::<B>(config, curriculum.as_ref(), tasks, reward, device)
}

/// One phase as `plan.json` records it: the phase, and what its sampler draws beyond the
/// phase's own tasks ([`TaskSampler::describe`], e.g. a replay share; absent when nothing).
#[derive(serde::Serialize)]
struct PlannedPhase<'a> {
    #[serde(flatten)]
    phase: &'a Phase,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    sampler: serde_json::Value,
}

/// Runs (or resumes) the phases of any `curriculum` over `tasks` with the rest of `config`
/// (its `curriculum` key is not read) and the built-in algorithms ([`train_curriculum_with`],
/// [`BuiltIn`]).
pub fn train_curriculum<B: TrainBackend>(
    config: &TrainConfig,
    curriculum: &dyn Curriculum,
    tasks: Vec<Task>,
    reward: Arc<dyn Reward>,
    device: &B::Device,
) -> Result<PhasesOutcome> {
    train_curriculum_with::<B>(config, curriculum, tasks, reward, device, &BuiltIn)
}

/// Runs (or resumes) the phases of any `curriculum` over `tasks` with the rest of `config`
/// (its `curriculum` key is not read), each phase trained by the algorithm `algorithms` builds
/// ([`run_tasks_with`]), as the module docs describe: the pool is `tasks` ready to train on
/// ([`prepare_tasks`]), every phase's tasks and sampler draws are indices into it, and
/// `plan.json` records each phase as its sampler gets it (with `data.shuffle: false`, a shuffled
/// phase is drawn in list order).
pub fn train_curriculum_with<B: TrainBackend>(
    config: &TrainConfig,
    curriculum: &dyn Curriculum,
    tasks: Vec<Task>,
    reward: Arc<dyn Reward>,
    device: &B::Device,
    algorithms: &dyn AlgorithmBuilder<B>,
) -> Result<PhasesOutcome> {
    let out = &config.trainer.out;
    let config_error = |message: String| TrainError::Config { path: out.join("config.ron"), message };
    config.validate().map_err(config_error)?;
    let processor = Processor::from_dir(&config.model)?;
    let pool = prepare_tasks::<B::InnerBackend>(config, tasks, &processor)?;
    let mut phases = curriculum.phases(&pool, config.data.seed)?;
    if !config.data.shuffle {
        phases.iter_mut().for_each(|phase| phase.order = Order::Listed);
    }
    // every phase's run config, checked before anything runs; phase i starts from i − 1's final model
    let dirs: Vec<PathBuf> = phases
        .iter()
        .enumerate()
        .map(|(i, phase)| out.join(format!("{:02}-{}", i + 1, phase.name)))
        .collect();
    let starts = std::iter::once(config.model.clone()).chain(dirs.iter().map(|dir| dir.join("final")));
    let configs = phases
        .iter()
        .zip(starts)
        .zip(&dirs)
        .map(|((phase, model), dir)| {
            let phase_config = phase_config(config, phase, &model, dir)
                .and_then(|c| c.validate().map(|()| c))
                .map_err(|message| config_error(format!("phase `{}`: {message}", phase.name)))?;
            Ok(phase_config)
        })
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let _lock = crate::lock::RunLock::acquire(out)?;
    let samplers = phases
        .iter()
        .map(|phase| Ok(curriculum.sampler(phase, &pool, config.data.seed)?.describe()))
        .collect::<Result<Vec<_>>>()?;
    let plan: Vec<PlannedPhase> =
        phases.iter().zip(samplers).map(|(phase, sampler)| PlannedPhase { phase, sampler }).collect();
    write_json(&out.join("plan.json"), &plan)?;

    let mut outcome = PhasesOutcome { reports: Vec::new(), benchmarks: Vec::new(), finals: Vec::new() };
    // the held-out evaluation of a model (none without `eval`)
    let evaluate = |model: &Path, dir: &Path| -> Result<Option<PointReport>> {
        let Some(heldout) = &config.eval else { return Ok(None) };
        evaluate_point::<B::InnerBackend>(config, heldout, model, reward.as_ref(), dir, device).map(Some)
    };
    // on the host's cores, each evaluation runs beside the next phase's training, on the cores
    // the training leaves idle (the same reports: neither's results depend on the threads it
    // runs on); on a GPU one after the other
    let beside = <B::InnerBackend as Kernels>::batch_threads() > 1;
    let mut ends = vec![0]; // the run's step count at the start and at each phase's end
    std::thread::scope(|scope| -> Result<()> {
        let mut pending =
            Evaluation::start(scope, beside, "start", &config.model, out.join("eval-start"), &evaluate);
        let mut model = config.model.clone();
        for (i, ((phase, dir), phase_config)) in phases.iter().zip(&dirs).zip(&configs).enumerate() {
            ends.push(ends[i] + phase_config.trainer.steps);
            let final_dir = dir.join("final");
            if final_dir.join(TRAINING_CONFIG).exists() {
                eprintln!("phase {} ({}): finished earlier, kept", i + 1, phase.name);
            } else {
                eprintln!(
                    "phase {} of {} ({}): {} tasks, {} steps, from {}",
                    i + 1,
                    phases.len(),
                    phase.name,
                    phase.tasks.len(),
                    phase_config.trainer.steps,
                    model.display()
                );
                let sampler = curriculum.sampler(phase, &pool, config.data.seed)?;
                let processor = Processor::from_dir(&model)?;
                run_tasks_with::<B>(
                    phase_config,
                    &pool,
                    sampler,
                    processor,
                    reward.clone(),
                    device,
                    algorithms,
                )?;
            }
            pending.finish(&mut outcome)?;
            pending = Evaluation::start(scope, beside, &phase.name, &final_dir, dir.join("eval"), &evaluate);
            outcome.finals.push(final_dir.clone());
            model = final_dir;
        }
        pending.finish(&mut outcome)
    })?;
    if config.trainer.tensorboard && !outcome.reports.is_empty() {
        let writer = EventWriter::create(&out.join(TENSORBOARD_DIR))?;
        for (i, ((_, report), &step)) in outcome.reports.iter().zip(&ends).enumerate() {
            let mut scalars = heldout_scalars(report);
            scalars.extend(
                outcome.benchmarks.get(i).map(|(_, suite)| benchmark_scalars(suite)).unwrap_or_default(),
            );
            writer.scalars(step, &scalars)?;
        }
    }
    for (file, table) in [
        ("summary.md", (!outcome.reports.is_empty()).then(|| summary_table(&outcome.reports))),
        ("benchmarks.md", (!outcome.benchmarks.is_empty()).then(|| benchmark_summary(&outcome.benchmarks))),
    ] {
        if let Some(table) = table {
            let path = out.join(file);
            std::fs::write(&path, &table).map_err(io(&path))?;
            println!("{table}");
        }
    }
    Ok(outcome)
}

/// A held-out evaluation of one point of a curriculum run (the start, a phase's end): done,
/// or running on a thread of its own beside the next phase's training.
enum Evaluation<'scope> {
    Done(String, Box<Result<Option<PointReport>>>),
    Beside(String, std::thread::ScopedJoinHandle<'scope, Result<Option<PointReport>>>),
}

impl<'scope> Evaluation<'scope> {
    /// `evaluate(model, dir)` for the point `name`: now, or (`beside`) on a thread of `scope`,
    /// its progress display hidden (the training beside it shows its own).
    fn start<'env, E>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        beside: bool,
        name: &str,
        model: &Path,
        dir: PathBuf,
        evaluate: &'scope E,
    ) -> Self
    where
        E: Fn(&Path, &Path) -> Result<Option<PointReport>> + Sync,
    {
        let name = name.to_string();
        if !beside {
            return Evaluation::Done(name, Box::new(evaluate(model, &dir)));
        }
        let model = model.to_path_buf();
        Evaluation::Beside(
            name,
            scope.spawn(move || {
                seethink_models::parallel::take_only_idle_cores();
                seethink_eval::progress::quietly(|| evaluate(&model, &dir))
            }),
        )
    }

    /// Waits for the evaluation and adds its reports to `outcome`, in the points' order.
    fn finish(self, outcome: &mut PhasesOutcome) -> Result<()> {
        let (name, point) = match self {
            Evaluation::Done(name, point) => (name, *point),
            Evaluation::Beside(name, handle) => {
                // the run waits for it now: other processes' threads must not starve it
                seethink_models::parallel::back_to_all_cores();
                (name, handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            }
        };
        if let Some(point) = point? {
            outcome.reports.push((name.clone(), point.heldout));
            outcome.benchmarks.extend(point.benchmarks.map(|suite| (name, suite)));
        }
        Ok(())
    }
}

/// A benchmarks report as TensorBoard scalars: `benchmarks/<name>` (headline score, percent)
/// and the paper's averages `benchmarks/visual_math`, `benchmarks/perception`,
/// `benchmarks/overall` where they exist.
fn benchmark_scalars(suite: &SuiteReport) -> Vec<(String, f32)> {
    let a = &suite.averages;
    let averages = [
        ("visual_math", a.visual_math.as_ref().map(|g| g.mean)),
        ("perception", a.perception.as_ref().map(|g| g.mean)),
        ("overall", a.overall),
    ];
    suite
        .benchmarks
        .iter()
        .map(|r| (r.benchmark.name(), Some(r.score)))
        .chain(averages)
        .filter_map(|(name, value)| Some((format!("benchmarks/{name}"), value? as f32)))
        .collect()
}

/// A held-out report as TensorBoard scalars: `heldout/<capability>` and `heldout/overall`
/// accuracy, `heldout/mean_tokens`.
fn heldout_scalars(report: &EvalReport) -> Vec<(String, f32)> {
    let mut scalars: Vec<(String, f32)> = Capability::ALL
        .into_iter()
        .filter_map(|c| report.capability(c).map(|s| (format!("heldout/{c}"), s.accuracy as f32)))
        .collect();
    scalars.push(("heldout/overall".into(), report.overall.accuracy as f32));
    scalars.push(("heldout/mean_tokens".into(), report.overall.mean_tokens as f32));
    scalars
}

/// The run config of `phase`: `base` with the phase's settings (its typed fields, then its `set`
/// overrides, read as `--set`'s), starting from `model`, in run directory `out`; a message
/// naming the key when an override does not fit the config.
pub fn phase_config(
    base: &TrainConfig,
    phase: &Phase,
    model: &Path,
    out: &Path,
) -> std::result::Result<TrainConfig, String> {
    let mut start = base.clone();
    start.model = model.to_path_buf();
    start.trainer.out = out.to_path_buf();
    let mut c = with_phase_settings(&start, &phase.settings)?;
    c.trainer.steps =
        phase.settings.steps_for(phase.tasks.len(), c.trainer.prompts_per_step, c.trainer.steps);
    Ok(c)
}

/// `base` with a phase's `set` overrides, as one run: no curriculum, no held-out evaluation.
pub fn with_phase_settings(
    base: &TrainConfig,
    s: &PhaseSettings,
) -> std::result::Result<TrainConfig, String> {
    let mut c = base.clone();
    c.curriculum = None;
    c.eval = None;
    c.with_overrides(&s.set)
}

/// A markdown table, one row per report: accuracy per capability and overall, mean response
/// length in tokens, and the share of wrong visual-reasoning answers due to perception.
pub fn summary_table(reports: &[(String, EvalReport)]) -> String {
    let mut md = String::from(
        "| after | perception | text reasoning | visual reasoning | overall | mean tokens | perception-error share |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (name, report) in reports {
        let accuracy =
            |c: Capability| report.capability(c).map_or("-".into(), |s| format!("{:.3}", s.accuracy));
        let share = report
            .attribution
            .as_ref()
            .and_then(|a| a.perception_share)
            .map_or("-".into(), |s| format!("{:.1}%", 100.0 * s));
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {:.3} | {:.1} | {share} |\n",
            accuracy(Capability::Perception),
            accuracy(Capability::TextReasoning),
            accuracy(Capability::VisualReasoning),
            report.overall.accuracy,
            report.overall.mean_tokens,
        ));
    }
    md
}

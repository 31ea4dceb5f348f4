//! Stage chaining: a curriculum's phases as training runs back to back, with a held-out
//! evaluation before the first and after each.
//!
//! Run directory of a curriculum run:
//! ```text
//! <out>/plan.json              the phases (name, tasks, order, settings)
//! <out>/eval-start/            held-out evaluation of the starting model
//! <out>/01-perception/         phase 1's run (config.ron, metrics.jsonl, checkpoint/, final/)
//! <out>/01-perception/eval/    held-out evaluation of its final model
//! <out>/02-text_reasoning/ …
//! <out>/summary.md             accuracy per capability before and after each phase
//! ```
//! Phase i starts from phase i−1's `final/` (a fresh optimizer, and a reference model = its
//! starting weights, as the paper's separate EasyR1 jobs). Re-running resumes: finished phases
//! (their `final/` holds the exported training config) and finished evaluations (their
//! `report.json`) are kept, and an unfinished phase resumes from its last checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seethink_curriculum::{Curriculum, Order, Phase};
use seethink_data::{Capability, Task};
use seethink_eval::{attribute_errors, evaluate, EvalReport, ModelResponder};
use seethink_models::generate::SamplingConfig;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::Reward;

use crate::config::{HeldOutConfig, TrainConfig};
use crate::error::{io, Result, TrainError};
use crate::run::{prepare_tasks, run_tasks, TRAINING_CONFIG};
use crate::tensorboard::{EventWriter, TENSORBOARD_DIR};
use crate::train_backend::TrainBackend;
use seethink_models::kernels::Kernels;

/// What a curriculum run produced: the held-out report of the start and of each phase's end
/// (`None` without `eval`), and each phase's final model directory.
#[derive(Debug)]
pub struct PhasesOutcome {
    /// `("start", report)`, then `(phase name, report)` per phase.
    pub reports: Vec<(String, EvalReport)>,
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

/// Runs (or resumes) the phases of any `curriculum` over `tasks` with the rest of `config`
/// (its `curriculum` key is not read), as the module docs describe: the pool is `tasks` ready
/// to train on ([`prepare_tasks`]), every phase's tasks and sampler draws are indices into it,
/// and `plan.json` records each phase as its sampler gets it (with `data.shuffle: false`, a
/// shuffled phase is drawn in list order).
pub fn train_curriculum<B: TrainBackend>(
    config: &TrainConfig,
    curriculum: &dyn Curriculum,
    tasks: Vec<Task>,
    reward: Arc<dyn Reward>,
    device: &B::Device,
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
    write_json(&out.join("plan.json"), &phases)?;

    let mut outcome = PhasesOutcome { reports: Vec::new(), finals: Vec::new() };
    let mut evaluate_model = |name: &str, model: &Path, dir: PathBuf| -> Result<()> {
        if let Some(heldout) = &config.eval {
            let report =
                evaluate_held_out::<B::InnerBackend>(config, heldout, model, reward.as_ref(), &dir, device)?;
            outcome.reports.push((name.to_string(), report));
        }
        Ok(())
    };
    evaluate_model("start", &config.model, out.join("eval-start"))?;
    let mut model = config.model.clone();
    // the run's step count at the start and at each phase's end
    let mut ends = vec![0];
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
            run_tasks::<B>(phase_config, &pool, sampler, processor, reward.clone(), device)?;
        }
        evaluate_model(&phase.name, &final_dir, dir.join("eval"))?;
        outcome.finals.push(final_dir.clone());
        model = final_dir;
    }
    if config.trainer.tensorboard && !outcome.reports.is_empty() {
        let writer = EventWriter::create(&out.join(TENSORBOARD_DIR))?;
        for ((_, report), &step) in outcome.reports.iter().zip(&ends) {
            writer.scalars(step, &heldout_scalars(report))?;
        }
    }
    if !outcome.reports.is_empty() {
        let table = summary_table(&outcome.reports);
        let path = out.join("summary.md");
        std::fs::write(&path, &table).map_err(io(&path))?;
        println!("{table}");
    }
    Ok(outcome)
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
    let s = &phase.settings;
    let mut c = base.clone();
    c.model = model.to_path_buf();
    c.trainer.out = out.to_path_buf();
    c.curriculum = None;
    c.eval = None;
    c.actor.lr = s.lr.unwrap_or(c.actor.lr);
    c.algorithm.kl_coef = s.kl_coef.unwrap_or(c.algorithm.kl_coef);
    c.actor.clip_low = s.clip_low.unwrap_or(c.actor.clip_low);
    c.actor.clip_high = s.clip_high.unwrap_or(c.actor.clip_high);
    c.actor.max_grad_norm = s.max_grad_norm.unwrap_or(c.actor.max_grad_norm);
    c.actor.freeze_vision = s.freeze_vision.unwrap_or(c.actor.freeze_vision);
    c.algorithm.trainer = s.trainer.unwrap_or(c.algorithm.trainer);
    let mut c = c.with_overrides(&s.set)?;
    c.trainer.steps = s.steps_for(phase.tasks.len(), c.trainer.prompts_per_step, c.trainer.steps);
    Ok(c)
}

/// Evaluates the model in `model` on `heldout`'s tasks, prompted as `config` trains (format
/// prompt, image bounds), graded by `reward`, with the error attribution when asked; writes
/// `report.json` and `report.md` into `dir`, or reads them back when `report.json` exists.
pub fn evaluate_held_out<B: Kernels>(
    config: &TrainConfig,
    heldout: &HeldOutConfig,
    model: &Path,
    reward: &dyn Reward,
    dir: &Path,
    device: &B::Device,
) -> Result<EvalReport> {
    let report_path = dir.join("report.json");
    if report_path.exists() {
        let text = std::fs::read_to_string(&report_path).map_err(io(&report_path))?;
        return serde_json::from_str(&text).map_err(|source| TrainError::Json { path: report_path, source });
    }
    let processor = Processor::from_dir(model)?;
    let mut tasks = seethink_data::load_tasks(&heldout.data, heldout.capability)?;
    config.data.format_prompt.apply(&mut tasks, &heldout.data)?;
    let vlm = AnyVlm::<B>::load(model, device)?;
    let sampling = SamplingConfig {
        max_new_tokens: heldout.max_new_tokens.unwrap_or(config.rollout.max_new_tokens),
        temperature: heldout.temperature,
        top_p: heldout.top_p.unwrap_or(config.rollout.top_p),
        top_k: 0,
        seed: config.rollout.seed,
        stream: 0,
    };
    let started = std::time::Instant::now();
    let mut responder = ModelResponder::new(&vlm, &processor, sampling, heldout.batch_size, device.clone())?
        .within(config.data.image_bounds());
    let mut report = evaluate(&mut responder, &tasks, reward, heldout.k)?;
    if heldout.attribute_errors {
        report.attribution = Some(attribute_errors(&mut responder, &tasks, &report.tasks, reward)?);
    }
    eprintln!(
        "held-out evaluation of {}: {} tasks, accuracy {:.3} ({:.0} s)",
        model.display(),
        tasks.len(),
        report.overall.accuracy,
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, report.to_markdown()).map_err(io(&markdown))?;
    write_json(&report_path, &report)?;
    Ok(report)
}

/// Writes `value` as pretty JSON to `path` (through a temporary file: never half-written).
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|source| TrainError::Json { path: path.into(), source })?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text).map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
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

//! Positive controls of the sandbox: before any curriculum is compared, RL from the base model
//! must visibly move what it trains. Each control is one GRPO run from the committed base model
//! on the CPU preset's data, evaluated on the held-out set before and after:
//! - one stage per capability (perception; textual reasoning with the vision tower frozen;
//!   visual reasoning), its stage's steps of the preset's `stage_steps`: it must raise its own capability's held-out
//!   accuracy with a 95% paired interval above 0;
//! - merged (all capabilities mixed, the ablation suite's `merged` arm at its compute,
//!   all stages' steps): it must raise overall accuracy by at least
//!   [`MERGED_MIN_GAIN`] with its interval above 0.
//!
//! ```text
//! <out>/data/, <out>/eval-start/   the preset's data and the base model's evaluation
//! <out>/<control>/                 each control's curriculum run (one phase) and evaluation
//! ```
//! Re-running resumes (finished runs and evaluations are kept).

use anyhow::{Context, Result};
use burn::backend::Autodiff;
use serde::{Deserialize, Serialize};

use crate::ablations::Arm;
use crate::curriculum::{CurriculumConfig, PhaseSettings, Policy};
use crate::data::Capability;
use crate::eval::{paired_difference, EvalReport, Interval};
use crate::preset::CpuPreset;
use crate::rl::train_backend::KernelBackend;

/// The least overall gain merged GRPO must show.
pub const MERGED_MIN_GAIN: f64 = 0.05;

/// What must move in one control: a capability, or overall accuracy (`None`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// `perception`, `text_reasoning`, `visual_reasoning` or `merged`.
    pub name: String,
    /// Steps it trained.
    pub steps: usize,
    /// The accuracy that must rise (`None`: overall).
    pub target: Option<Capability>,
    /// Held-out accuracy of the target before and after.
    pub before: f64,
    pub after: f64,
    /// The paired change of the target over tasks, with its 95% interval.
    pub change: Interval,
    /// The least mean change that counts (0 for stages, [`MERGED_MIN_GAIN`] for merged).
    pub min_gain: f64,
    /// The interval is above 0 and the mean at least `min_gain`.
    pub holds: bool,
    /// Mean response length in tokens before and after.
    pub tokens: (f64, f64),
}

/// Runs (or resumes) the four controls from `preset`'s base model and data; returns them in
/// order perception, textual reasoning, visual reasoning, merged.
pub fn run_controls<B: KernelBackend>(preset: &CpuPreset) -> Result<Vec<Control>> {
    let base = preset.prepare()?;
    let out = &preset.out;
    let heldout = base.eval.as_ref().context("the preset evaluates on a held-out set")?;
    let reward = base.algorithm.reward.reward();
    let start_dir = out.join("eval-start");
    let start = crate::rl::evaluation::evaluate_point::<B>(
        &base,
        heldout,
        &base.model,
        reward.as_ref(),
        &start_dir,
        &Default::default(),
    )?
    .heldout;
    let tasks = crate::rl::run::load_data(&base.data)?;
    let mut controls = Vec::new();
    let runs = Capability::ALL.into_iter().map(Some).chain([None]);
    for target in runs {
        let name = target.map_or("merged".to_string(), |c| c.to_string());
        let dir = out.join(&name);
        // the base model's evaluation is every control's start: reuse it
        std::fs::create_dir_all(dir.join("eval-start"))?;
        for file in ["report.json", "report.md"] {
            std::fs::copy(start_dir.join(file), dir.join("eval-start").join(file))
                .with_context(|| format!("copying {file} into {}", dir.display()))?;
        }
        let mut config = base.clone();
        config.trainer.out = dir;
        config.curriculum = Some(match target {
            Some(c) => single_stage(c, preset.stage_steps.of(c)),
            None => Arm::Merged.curriculum(preset.stage_steps, preset.max_new_tokens),
        });
        eprintln!("== positive control `{name}`");
        let outcome = crate::rl::phases::train_phases::<Autodiff<B>>(
            &config,
            tasks.clone(),
            reward.clone(),
            &Default::default(),
        )?;
        let (_, end) = outcome.reports.last().context("the control was evaluated")?;
        let steps = target.map_or(preset.stage_steps.total(), |c| preset.stage_steps.of(c));
        controls.push(control(&name, steps, target, &start, end)?);
    }
    Ok(controls)
}

/// GRPO on `capability`'s tasks alone for `steps` steps (the vision tower frozen for textual
/// reasoning, as in the paper's stage 2).
fn single_stage(capability: Capability, steps: usize) -> CurriculumConfig {
    let frozen = (capability == Capability::TextReasoning).then(|| "actor.freeze_vision=true".to_string());
    let settings =
        PhaseSettings { steps: Some(steps), set: frozen.into_iter().collect(), ..Default::default() };
    CurriculumConfig {
        policy: Policy::Staged(vec![capability]),
        within: Vec::new(),
        phases: [(capability.to_string(), settings)].into(),
        plateau: None,
    }
}

/// The control `name` read off the evaluations `before` and `after` its run.
fn control(
    name: &str,
    steps: usize,
    target: Option<Capability>,
    before: &EvalReport,
    after: &EvalReport,
) -> Result<Control> {
    let accuracy = |r: &EvalReport| match target {
        Some(c) => r.capability(c).map(|s| s.accuracy),
        None => Some(r.overall.accuracy),
    };
    let change = paired_difference(before, after, target).context("fewer than two held-out tasks")?;
    let min_gain = if target.is_some() { 0.0 } else { MERGED_MIN_GAIN };
    Ok(Control {
        name: name.to_string(),
        steps,
        target,
        before: accuracy(before).unwrap_or(f64::NAN),
        after: accuracy(after).unwrap_or(f64::NAN),
        holds: change.low > 0.0 && change.mean >= min_gain,
        change,
        min_gain,
        tokens: (before.overall.mean_tokens, after.overall.mean_tokens),
    })
}

/// The controls as a markdown table with a verdict per row.
pub fn controls_table(controls: &[Control]) -> String {
    let mut md = String::from(
        "| control | steps | must rise | before | after | change [95% interval] | needs | holds? | mean tokens |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for c in controls {
        let needs = match c.min_gain {
            g if g > 0.0 => format!("≥ {g:+.2}, interval > 0"),
            _ => "interval > 0".into(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:+.3} [{:+.3}, {:+.3}] | {needs} | {} | {:.1} → {:.1} |\n",
            c.name,
            c.steps,
            c.target.map_or("overall".into(), |t| t.to_string()),
            c.before,
            c.after,
            c.change.mean,
            c.change.low,
            c.change.high,
            if c.holds { "yes" } else { "**no**" },
            c.tokens.0,
            c.tokens.1,
        ));
    }
    md
}

//! What one arm of one seed produced: held-out results at the start, after each phase and at
//! the end, and its training curve — one line of `runs.jsonl`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::Capability;
use crate::eval::{paired_difference_of, EvalReport, Interval, TaskResult};
use crate::rl::phases::PhasesOutcome;

/// Held-out results of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    pub perception: Option<f64>,
    pub text_reasoning: Option<f64>,
    pub visual_reasoning: Option<f64>,
    pub overall: f64,
    /// Mean response length in tokens.
    pub mean_tokens: f64,
    /// Share of wrong visual-reasoning answers attributed to perception errors.
    pub perception_error_share: Option<f64>,
    /// The share sub-question accuracy alone gives ([`crate::eval::Attribution::chance_share`]).
    #[serde(default)]
    pub chance_error_share: Option<f64>,
}

impl HeldOut {
    /// The summary of `report`.
    pub fn of(report: &EvalReport) -> Self {
        let accuracy = |c: Capability| report.capability(c).map(|s| s.accuracy);
        HeldOut {
            perception: accuracy(Capability::Perception),
            text_reasoning: accuracy(Capability::TextReasoning),
            visual_reasoning: accuracy(Capability::VisualReasoning),
            overall: report.overall.accuracy,
            mean_tokens: report.overall.mean_tokens,
            perception_error_share: report.attribution.as_ref().and_then(|a| a.perception_share),
            chance_error_share: report.attribution.as_ref().and_then(|a| a.chance_share),
        }
    }

    /// The value of `metric`.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Perception => self.perception,
            Metric::TextReasoning => self.text_reasoning,
            Metric::VisualReasoning => self.visual_reasoning,
            Metric::Overall => Some(self.overall),
            Metric::MeanTokens => Some(self.mean_tokens),
            Metric::PerceptionErrorShare => self.perception_error_share,
            Metric::ChanceErrorShare => self.chance_error_share,
        }
    }
}

/// A column of the results tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Perception,
    TextReasoning,
    VisualReasoning,
    Overall,
    MeanTokens,
    PerceptionErrorShare,
    ChanceErrorShare,
}

impl Metric {
    /// Every column, in table order.
    pub const ALL: [Metric; 7] = [
        Metric::Perception,
        Metric::TextReasoning,
        Metric::VisualReasoning,
        Metric::Overall,
        Metric::MeanTokens,
        Metric::PerceptionErrorShare,
        Metric::ChanceErrorShare,
    ];

    /// The column header.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Perception => "perception",
            Metric::TextReasoning => "text reasoning",
            Metric::VisualReasoning => "visual reasoning",
            Metric::Overall => "overall",
            Metric::MeanTokens => "mean tokens",
            Metric::PerceptionErrorShare => "perception-error share",
            Metric::ChanceErrorShare => "its chance value",
        }
    }

    /// `value` as printed: accuracies and shares with three decimals, token counts with two;
    /// `signed` prints a `+` on positive values (differences).
    pub fn format(self, value: f64, signed: bool) -> String {
        let decimals = if self == Metric::MeanTokens { 2 } else { 3 };
        if signed {
            format!("{value:+.decimals$}")
        } else {
            format!("{value:.decimals$}")
        }
    }
}

/// One phase of an arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub name: String,
    /// Steps the phase ran.
    pub steps: usize,
    /// Held-out results of its final model.
    pub eval: HeldOut,
}

/// One training step on the arm's global step axis, with the metrics the curves draw (those
/// the step logged: SFT steps have no reward, a step without a capability has no accuracy of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub phase: String,
    #[serde(flatten)]
    pub values: BTreeMap<String, f64>,
}

/// The metrics of `metrics.jsonl` the curves keep.
pub const CURVE_KEYS: [&str; 6] = [
    "reward",
    "accuracy",
    "response_length",
    "accuracy_perception",
    "accuracy_text_reasoning",
    "accuracy_visual_reasoning",
];

/// One arm of one seed: a line of `runs.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`Arm::key`](super::Arm::key).
    pub arm: String,
    pub label: String,
    pub seed: u64,
    /// Training steps run over all phases.
    pub steps: usize,
    /// Wall-clock seconds of the arm's training and evaluations in the process that finished it
    /// (from its start, or its resumption, to its end).
    pub seconds: f64,
    /// Seconds of all its training steps, whichever process ran them (the `seconds` of every
    /// line of its phases' `metrics.jsonl`): a resumed arm's are all counted, evaluations not.
    #[serde(default)]
    pub step_seconds: f64,
    /// Whether this process trained the arm (false: its record was read back).
    #[serde(skip)]
    pub trained_here: bool,
    /// Held-out results of the starting (base) model.
    pub start: HeldOut,
    /// Held-out results after the last phase.
    #[serde(rename = "final")]
    pub end: HeldOut,
    /// The change of each held-out task's mean response length from the start to the end,
    /// paired by task, with its 95% interval over tasks: what one seed says of the arm's length
    /// (absent in records made before it was kept).
    #[serde(default)]
    pub token_change: Option<Interval>,
    pub phases: Vec<PhaseRecord>,
    pub curve: Vec<CurvePoint>,
}

impl RunRecord {
    /// The record of a finished curriculum run (`outcome`, with a held-out evaluation at the
    /// start and after each phase), reading each phase's `metrics.jsonl`.
    pub fn collect(arm: super::Arm, seed: u64, outcome: &PhasesOutcome, seconds: f64) -> Result<RunRecord> {
        let (Some((_, start)), Some((_, end))) = (outcome.reports.first(), outcome.reports.last()) else {
            anyhow::bail!("arm {} (seed {seed}) has no held-out evaluation", arm.key());
        };
        let mut phases = Vec::new();
        let mut curve = Vec::new();
        let mut step_seconds = 0.0;
        for ((name, report), final_dir) in outcome.reports[1..].iter().zip(&outcome.finals) {
            let run_dir = final_dir.parent().unwrap_or(final_dir);
            let (points, seconds) = read_curve(&run_dir.join("metrics.jsonl"), name, curve.len())?;
            step_seconds += seconds;
            phases.push(PhaseRecord { name: name.clone(), steps: points.len(), eval: HeldOut::of(report) });
            curve.extend(points);
        }
        Ok(RunRecord {
            arm: arm.key().to_string(),
            label: arm.label().to_string(),
            seed,
            steps: curve.len(),
            seconds,
            step_seconds,
            trained_here: true,
            start: HeldOut::of(start),
            end: HeldOut::of(end),
            token_change: paired_difference_of(start, end, None, TaskResult::mean_tokens),
            phases,
            curve,
        })
    }
}

/// The steps of one phase's `metrics.jsonl` as curve points numbered from `offset + 1`, and the
/// sum of their `seconds`.
fn read_curve(path: &Path, phase: &str, offset: usize) -> Result<(Vec<CurvePoint>, f64)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut seconds = 0.0;
    let points = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))?;
            seconds += value.get("seconds").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
            let values =
                CURVE_KEYS.iter().filter_map(|&k| Some((k.to_string(), value.get(k)?.as_f64()?))).collect();
            Ok(CurvePoint { step: offset + i + 1, phase: phase.to_string(), values })
        })
        .collect::<Result<_>>()?;
    Ok((points, seconds))
}

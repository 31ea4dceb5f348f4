//! Per-step metrics of a run ([`StepMetrics`], what an algorithm's step returns): one JSON
//! object per step appended to `<run>/metrics.jsonl` (shown on stderr by [`crate::progress`]),
//! and with `trainer.tensorboard` each one as a TensorBoard scalar `train/<key>` in
//! `<run>/tensorboard/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use seethink_data::Capability;
use serde_json::Value;

use crate::error::{io, Result};
use crate::grpo::GrpoStats;
use crate::tensorboard::EventWriter;

/// A training step's metrics: named numbers in the order given, counts kept apart from values
/// so that `metrics.jsonl` writes them as integers. A value that is not finite (the gradient
/// norm of a step whose every update was skipped) is written as `null`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepMetrics(Vec<(String, Metric)>);

/// One metric: a count or a value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    Count(u64),
    Value(f64),
}

impl StepMetrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the value `name` (replacing one of the same name).
    pub fn value(self, name: impl Into<String>, value: impl Into<f64>) -> Self {
        self.with(name.into(), Metric::Value(value.into()))
    }

    /// With the count `name` (replacing one of the same name).
    pub fn count(self, name: impl Into<String>, count: usize) -> Self {
        self.with(name.into(), Metric::Count(count as u64))
    }

    fn with(mut self, name: String, metric: Metric) -> Self {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, slot)) => *slot = metric,
            None => self.0.push((name, metric)),
        }
        self
    }

    /// The metric `name`, as a number.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, m)| m.as_f64())
    }

    /// Every metric, in order, as numbers.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(n, m)| (n.as_str(), m.as_f64()))
    }

    /// `{"step": step, …metrics}`.
    fn line(&self, step: usize) -> Value {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), step.into());
        for (name, metric) in &self.0 {
            let value = match *metric {
                Metric::Count(n) => Value::from(n),
                Metric::Value(v) => Value::from(v),
            };
            line.insert(name.clone(), value);
        }
        Value::Object(line)
    }
}

impl Metric {
    fn as_f64(self) -> f64 {
        match self {
            Metric::Count(n) => n as f64,
            Metric::Value(v) => v,
        }
    }
}

/// An append-only `metrics.jsonl`, and optionally a TensorBoard event file.
pub struct MetricsLog {
    path: PathBuf,
    tensorboard: Option<EventWriter>,
}

impl MetricsLog {
    /// Opens `path` for steps `first_step` on: lines of later steps already there (a run killed
    /// after its last checkpoint) are dropped, so a resumed run logs each step once.
    pub fn open(path: &Path, first_step: usize) -> Result<Self> {
        if path.exists() {
            let text = fs::read_to_string(path).map_err(io(path))?;
            let kept: String = text
                .lines()
                .filter(|line| {
                    let step = serde_json::from_str::<Value>(line).ok().and_then(|v| v["step"].as_u64());
                    step.is_some_and(|s| (s as usize) < first_step)
                })
                .map(|line| format!("{line}\n"))
                .collect();
            let tmp = path.with_extension("jsonl.tmp");
            fs::write(&tmp, kept).and_then(|_| fs::rename(&tmp, path)).map_err(io(path))?;
        }
        Ok(Self { path: path.to_path_buf(), tensorboard: None })
    }

    /// Also writes each step's numeric metrics as scalars `train/<key>` to a new event file in
    /// `dir` ([`EventWriter`]).
    pub fn with_tensorboard(mut self, dir: &Path) -> Result<Self> {
        self.tensorboard = Some(EventWriter::create(dir)?);
        Ok(self)
    }

    /// Appends `{"step": step, …metrics}`.
    pub fn record(&self, step: usize, metrics: &StepMetrics) -> Result<()> {
        if let Some(tensorboard) = &self.tensorboard {
            let scalars: Vec<(String, f32)> = metrics
                .iter()
                .filter(|(_, value)| value.is_finite())
                .map(|(name, value)| (format!("train/{name}"), value as f32))
                .collect();
            tensorboard.scalars(step, &scalars)?;
        }
        let mut file =
            fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io(&self.path))?;
        writeln!(file, "{}", metrics.line(step)).map_err(io(&self.path))
    }
}

/// The metrics of a GRPO step, with `accuracy_<capability>` = the mean accuracy of the step's
/// samples of that capability (for each capability the step drew; groups are equal-sized, so the
/// mean of their means).
pub fn grpo_step_metrics(stats: &GrpoStats) -> StepMetrics {
    let mut metrics = StepMetrics::new()
        .value("reward", stats.reward.overall)
        .value("format", stats.reward.format)
        .value("accuracy", stats.reward.accuracy)
        .value("response_length", stats.response_length)
        .value("kl", stats.kl)
        .value("kl_penalty", stats.kl_penalty)
        .value("entropy", stats.entropy)
        .value("pg_loss", stats.pg_loss)
        .value("clip_fraction", stats.clip_fraction)
        .value("grad_norm", stats.grad_norm)
        .value("lr", stats.lr)
        .count("groups", stats.groups)
        .count("groups_kept", stats.groups_kept)
        .count("updates", stats.updates)
        .count("skipped_updates", stats.skipped_updates)
        .count("generation_calls", stats.generation_calls)
        .value("seconds", stats.seconds)
        .value("tokens_per_second", stats.response_tokens as f64 / stats.seconds.max(1e-9));
    if stats.gather_seconds > 0.0 {
        metrics = metrics.value("gather_seconds", stats.gather_seconds);
    }
    for capability in Capability::ALL {
        let accuracies: Vec<f32> =
            stats.outcomes.iter().filter(|o| o.capability == capability).map(|o| o.accuracy).collect();
        if !accuracies.is_empty() {
            let mean = accuracies.iter().sum::<f32>() / accuracies.len() as f32;
            metrics = metrics.value(format!("accuracy_{capability}"), mean);
        }
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;
    use seethink_curriculum::GroupResult;

    fn outcome(capability: Capability, accuracy: f32) -> GroupResult {
        GroupResult {
            task: 0,
            capability,
            level: None,
            rewards: vec![accuracy],
            reward: accuracy,
            accuracy,
            response_length: 3.0,
            mean_abs_advantage: 0.0,
        }
    }

    #[test]
    fn accuracy_per_capability_covers_the_capabilities_drawn() {
        let stats = GrpoStats {
            outcomes: vec![
                outcome(Capability::Perception, 0.5),
                outcome(Capability::TextReasoning, 0.2),
                outcome(Capability::Perception, 1.0),
            ],
            ..Default::default()
        };
        let metrics = grpo_step_metrics(&stats);
        assert_eq!(metrics.get("accuracy_perception"), Some(0.75));
        assert!((metrics.get("accuracy_text_reasoning").unwrap() - 0.2).abs() < 1e-6);
        assert!(metrics.get("accuracy_visual_reasoning").is_none());
        let line = metrics.line(3);
        assert_eq!(
            (line["step"].as_u64(), line["groups"].as_u64()),
            (Some(3), Some(0)),
            "counts stay integers"
        );
        assert!(line["grad_norm"].is_number() && !line["reward"].is_null());
        let skipped = StepMetrics::new().value("grad_norm", f64::NAN).count("updates", 1);
        assert!(skipped.line(1)["grad_norm"].is_null(), "a norm that is not finite is null");
    }
}

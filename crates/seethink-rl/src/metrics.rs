//! Per-step metrics of a run: one JSON object per step appended to `<run>/metrics.jsonl`
//! (shown on stderr by [`crate::progress`]), and with `trainer.tensorboard` every numeric one as
//! a TensorBoard scalar `train/<key>` in `<run>/tensorboard/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use seethink_data::Capability;
use serde_json::{json, Value};

use crate::error::{io, Result};
use crate::grpo::GrpoStats;
use crate::tensorboard::EventWriter;

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
    pub fn record(&self, step: usize, metrics: &Value) -> Result<()> {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), step.into());
        for (key, value) in metrics.as_object().into_iter().flatten() {
            line.insert(key.clone(), value.clone());
        }
        if let Some(tensorboard) = &self.tensorboard {
            let scalars: Vec<(String, f32)> = line
                .iter()
                .filter(|(key, _)| *key != "step")
                .filter_map(|(key, value)| Some((format!("train/{key}"), value.as_f64()? as f32)))
                .collect();
            tensorboard.scalars(step, &scalars)?;
        }
        let mut file =
            fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io(&self.path))?;
        writeln!(file, "{}", Value::Object(line)).map_err(io(&self.path))
    }
}

/// The metrics of a GRPO step, with `accuracy_<capability>` = the mean accuracy of the step's
/// samples of that capability (for each capability the step drew; groups are equal-sized, so the
/// mean of their means).
pub fn grpo_step_metrics(stats: &GrpoStats) -> Value {
    let mut metrics = json!({
        "reward": stats.reward.overall, "format": stats.reward.format, "accuracy": stats.reward.accuracy,
        "response_length": stats.response_length, "kl": stats.kl, "kl_penalty": stats.kl_penalty, "entropy": stats.entropy,
        "pg_loss": stats.pg_loss, "clip_fraction": stats.clip_fraction, "grad_norm": stats.grad_norm,
        "lr": stats.lr, "groups": stats.groups, "groups_kept": stats.groups_kept, "updates": stats.updates,
        "skipped_updates": stats.skipped_updates,
        "generation_calls": stats.generation_calls, "seconds": stats.seconds,
        "tokens_per_second": stats.response_tokens as f64 / stats.seconds.max(1e-9),
    });
    for capability in Capability::ALL {
        let accuracies: Vec<f32> =
            stats.outcomes.iter().filter(|o| o.capability == capability).map(|o| o.accuracy).collect();
        if !accuracies.is_empty() {
            let mean = accuracies.iter().sum::<f32>() / accuracies.len() as f32;
            metrics[format!("accuracy_{capability}")] = json!(mean);
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
        assert_eq!(metrics["accuracy_perception"].as_f64(), Some(0.75));
        assert!((metrics["accuracy_text_reasoning"].as_f64().unwrap() - 0.2).abs() < 1e-6);
        assert!(metrics.get("accuracy_visual_reasoning").is_none());
    }
}

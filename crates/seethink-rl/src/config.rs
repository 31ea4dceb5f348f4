//! The RON training configuration, in sections mirroring EasyR1's: data, algorithm, actor,
//! rollout, trainer. Unknown keys and ill-typed values are errors naming the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::grpo::Aggregation;
use crate::optim::LrSchedule;

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// HF checkpoint directory to start from.
    pub model: PathBuf,
    pub data: DataConfig,
    #[serde(default)]
    pub algorithm: AlgorithmConfig,
    #[serde(default)]
    pub actor: ActorConfig,
    #[serde(default)]
    pub rollout: RolloutConfig,
    #[serde(default)]
    pub trainer: TrainerConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// EasyR1 JSONL or Parquet file (or a directory holding `tasks.jsonl`).
    pub train: PathBuf,
    /// Append the paper's `<think>`/`\boxed{}` format instruction to every question.
    #[serde(default = "yes")]
    pub format_instruction: bool,
    /// Seed of the per-epoch shuffle of the tasks.
    #[serde(default)]
    pub seed: u64,
}

/// GRPO or SFT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trainer {
    Grpo,
    Sft,
}

/// The reward of GRPO runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewardKind {
    /// The reference reward: 0.9·accuracy of the last `\boxed{}` + 0.1·format.
    Math,
    /// The whole response graded as the answer ([`seethink_reward::DirectAnswer`]).
    Direct,
}

impl RewardKind {
    /// The reward function.
    pub fn reward(self) -> std::sync::Arc<dyn seethink_reward::Reward> {
        match self {
            RewardKind::Math => std::sync::Arc::new(seethink_reward::MathReward::default()),
            RewardKind::Direct => std::sync::Arc::new(seethink_reward::DirectAnswer),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlgorithmConfig {
    pub trainer: Trainer,
    pub reward: RewardKind,
    /// Weight of the k3 KL loss; 0 turns the reference model off.
    pub kl_coef: f32,
    /// Divide advantages by the group std (false: Dr. GRPO).
    pub normalize_std: bool,
    /// Keep only groups with mean accuracy strictly inside (low, high).
    pub online_filter: Option<(f32, f32)>,
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        Self {
            trainer: Trainer::Grpo,
            reward: RewardKind::Math,
            kl_coef: 0.01,
            normalize_std: true,
            online_filter: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub schedule: LrSchedule,
    /// Optimizer updates per rollout step.
    pub mini_batches: usize,
    pub micro_batch_size: usize,
    pub clip_low: f32,
    pub clip_high: f32,
    pub dual_clip: f32,
    pub aggregation: Aggregation,
    pub freeze_vision: bool,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            schedule: LrSchedule::Constant,
            mini_batches: 4,
            micro_batch_size: 8,
            clip_low: 0.2,
            clip_high: 0.3,
            dual_clip: 3.0,
            aggregation: Aggregation::TokenMean,
            freeze_vision: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutConfig {
    /// Samples per prompt.
    pub n: usize,
    pub temperature: f32,
    pub top_p: f32,
    pub max_new_tokens: usize,
    pub seed: u64,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self { n: 5, temperature: 1.0, top_p: 1.0, max_new_tokens: 2048, seed: 0 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    /// Rollout (GRPO) or batch (SFT) steps.
    pub steps: usize,
    /// Prompts per step.
    pub prompts_per_step: usize,
    /// Checkpoint every this many steps (and at the end).
    pub save_every: usize,
    /// Checkpoints kept.
    pub keep_last: usize,
    /// Run directory (metrics.jsonl, checkpoints/, final/).
    pub out: PathBuf,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            prompts_per_step: 512,
            save_every: 10,
            keep_last: 3,
            out: PathBuf::from("runs/latest"),
        }
    }
}

fn yes() -> bool {
    true
}

impl TrainConfig {
    /// Reads a RON file and applies `key.path=value` overrides (values in RON syntax).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TrainError::Io { path: path.to_path_buf(), source })?;
        let error = |message: String| TrainError::Config { path: path.to_path_buf(), message };
        let config: Self = ron::from_str(&text).map_err(|e| error(e.to_string()))?;
        if overrides.is_empty() {
            return Ok(config);
        }
        let mut value = serde_json::to_value(&config).map_err(|e| error(e.to_string()))?;
        for assignment in overrides {
            let (key, raw) = assignment
                .split_once('=')
                .ok_or_else(|| error(format!("override `{assignment}` is not key=value")))?;
            let json = override_value(raw).map_err(|e| error(format!("--set {key}: {e}")))?;
            let mut slot = &mut value;
            for part in key.split('.') {
                slot = slot
                    .as_object_mut()
                    .and_then(|o| o.get_mut(part))
                    .ok_or_else(|| error(format!("--set {key}: unknown key `{part}`")))?;
            }
            *slot = json;
        }
        serde_json::from_value(value).map_err(|e| error(format!("after --set: {e}")))
    }
}

/// An override value in RON syntax as the JSON serde expects: a bare identifier (`Sft`) is a
/// unit variant (a string), `Name(fields…)` a struct variant (`{"Name": {fields…}}`), anything
/// else a RON value (number, bool, string, list, tuple, `None`/`Some(x)`).
fn override_value(raw: &str) -> std::result::Result<serde_json::Value, String> {
    let raw = raw.trim();
    let name_end = raw.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(raw.len());
    let (name, rest) = raw.split_at(name_end);
    let is_variant =
        name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && !matches!(name, "None" | "Some");
    let ron_json = |text: &str| -> std::result::Result<serde_json::Value, String> {
        let value: ron::Value = ron::from_str(text).map_err(|e| e.to_string())?;
        serde_json::to_value(&value).map_err(|e| e.to_string())
    };
    if is_variant && rest.is_empty() {
        Ok(serde_json::Value::String(name.to_string()))
    } else if is_variant && rest.starts_with('(') {
        Ok(serde_json::json!({ name: ron_json(rest)? }))
    } else {
        ron_json(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    const MINIMAL: &str = r#"(model: "m", data: (train: "d.jsonl"), actor: (lr: 1e-3), trainer: (steps: 3))"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = TrainConfig::load(write(MINIMAL).path(), &[]).unwrap();
        assert_eq!(c.actor.lr, 1e-3);
        assert_eq!(c.rollout.n, 5);
        assert_eq!(c.algorithm.trainer, Trainer::Grpo);
        assert!(c.data.format_instruction);
    }

    #[test]
    fn overrides_are_typed_and_checked() {
        let f = write(MINIMAL);
        let c = TrainConfig::load(f.path(), &["rollout.n=8".into(), "algorithm.trainer=Sft".into()]).unwrap();
        assert_eq!((c.rollout.n, c.algorithm.trainer), (8, Trainer::Sft));
        let err = TrainConfig::load(f.path(), &["rollout.samples=8".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown key `samples`"), "{err}");
        let err = TrainConfig::load(f.path(), &["rollout.n=many".into()]).unwrap_err().to_string();
        assert!(err.contains("after --set"), "{err}");
        let c = TrainConfig::load(f.path(), &["actor.schedule=Warmup(warmup: 5)".into()]).unwrap();
        assert_eq!(c.actor.schedule, LrSchedule::Warmup { warmup: 5 });
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = TrainConfig::load(write(r#"(model: "m", data: (train: "d", shuffle: true))"#).path(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shuffle"), "{err}");
        let err =
            TrainConfig::load(write(r#"(model: "m", data: (train: "d"), rollout: (n: "five"))"#).path(), &[])
                .unwrap_err()
                .to_string();
        assert!(err.contains("1:") && err.to_lowercase().contains("integer"), "{err}");
    }
}

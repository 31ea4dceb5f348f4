//! A GRPO run stopped after step k and resumed from its checkpoint ends with weights bitwise
//! identical to an uninterrupted run; checkpoints are pruned to the last K.

mod common;

use common::{checkpoint, text_prompts, weights, B, I};
use seethink_data::Task;
use seethink_models::generate::SamplingConfig;
use seethink_models::processing::TextTokenizer;
use seethink_models::QwenVl;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::checkpoint::RunDir;
use seethink_rl::grpo::{Grpo, GrpoConfig, RolloutPrompt};
use seethink_rl::trainer::{Learner, OptimConfig};

/// Reward: the share of letters among the reply's characters (a dense, deterministic signal).
struct Letters;

impl Reward for Letters {
    fn score(&self, _task: &Task, response: &str) -> RewardBreakdown {
        let total = response.chars().count().max(1) as f32;
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        RewardBreakdown { overall: letters / total, format: 0.0, accuracy: letters / total }
    }
}

fn prompts(tokenizer: &TextTokenizer) -> Vec<RolloutPrompt<I>> {
    text_prompts(tokenizer, &[("one", "one", ""), ("two", "two", ""), ("three", "three", "")])
}

fn config() -> GrpoConfig {
    GrpoConfig {
        group_size: 4,
        mini_batches: 2,
        micro_batch_size: 4,
        sampling: SamplingConfig { max_new_tokens: 4, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 11 },
        ..Default::default()
    }
}

fn fresh() -> Grpo<B> {
    let model = QwenVl::<B>::load(checkpoint(), &Default::default()).unwrap();
    Grpo::new(Learner::new(model, OptimConfig { lr: 1e-3, ..Default::default() }), config())
}

#[test]
fn resumed_run_is_bitwise_identical() {
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let batch = prompts(&tokenizer);
    let steps = 4;
    let mut straight = fresh();
    for _ in 0..steps {
        straight.step(&batch, &Letters, &tokenizer).unwrap();
    }

    let run = tempfile::tempdir().unwrap();
    let dir = RunDir::create(run.path(), 2).unwrap();
    let mut first = fresh();
    for step in 1..=2 {
        let stats = first.step(&batch, &Letters, &tokenizer).unwrap();
        dir.append_metrics(&serde_json::json!({ "step": step, "reward": stats.reward.overall })).unwrap();
        dir.save(step, &first.learner, first.reference(), &first.rollouts).unwrap();
    }
    drop(first); // the process "dies" here

    let latest = dir.latest().unwrap().expect("a checkpoint");
    assert!(latest.ends_with("step-000002"));
    let blank = fresh();
    let reference = blank.reference().cloned();
    let (learner, reference, rollouts): (_, _, usize) = dir.load(&latest, blank.learner, reference).unwrap();
    let mut resumed = Grpo::from_parts(learner, reference, config(), rollouts);
    for step in 3..=steps {
        resumed.step(&batch, &Letters, &tokenizer).unwrap();
        dir.save(step, &resumed.learner, resumed.reference(), &resumed.rollouts).unwrap();
    }
    assert_eq!(weights(&straight.learner.inference_model()), weights(&resumed.learner.inference_model()));
    assert_ne!(weights(&straight.learner.inference_model()), weights(&fresh().learner.inference_model()));

    // only the last 2 checkpoints remain; metrics were appended line by line
    let mut kept: Vec<String> = std::fs::read_dir(run.path().join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["step-000003", "step-000004"]);
    let metrics = std::fs::read_to_string(run.path().join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
}

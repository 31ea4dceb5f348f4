//! GRPO options: a frozen vision tower does not move; the online filter drops groups whose
//! accuracy is all-or-nothing; with KL off no reference model is kept.

mod common;

use common::{checkpoint, text_prompts, weights, B, I};
use seethink_data::Task;
use seethink_models::generate::SamplingConfig;
use seethink_models::processing::TextTokenizer;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::grpo::{Grpo, GrpoConfig, GrpoLossConfig, RolloutPrompt};
use seethink_rl::trainer::{Learner, OptimConfig};

/// Accuracy 1 for prompts whose id starts with "yes", 0 otherwise; overall = share of letters.
struct Scripted;

impl Reward for Scripted {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let accuracy = if task.id.starts_with("yes") { 1.0 } else { 0.0 };
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        RewardBreakdown { overall: letters / response.chars().count().max(1) as f32, format: 0.0, accuracy }
    }
}

fn batch(tokenizer: &TextTokenizer) -> Vec<RolloutPrompt<I>> {
    text_prompts(tokenizer, &[("yes-1", "yes-1", ""), ("no-1", "no-1", ""), ("yes-2", "yes-2", "")])
}

fn config(online_filter: Option<(f32, f32)>, kl_coef: f32) -> GrpoConfig {
    GrpoConfig {
        group_size: 4,
        mini_batches: 1,
        micro_batch_size: 12,
        sampling: SamplingConfig { max_new_tokens: 3, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 5 },
        loss: GrpoLossConfig { kl_coef, ..Default::default() },
        online_filter,
        ..Default::default()
    }
}

/// The vision tower's and the language model's weights of the Qwen-VL fixture.
fn vision_and_text(model: &AnyVlm<B>) -> (Vec<f32>, Vec<f32>) {
    match model {
        AnyVlm::QwenVl(m) => (weights(&m.visual), weights(&m.language_model)),
    }
}

#[test]
fn frozen_vision_tower_does_not_move() {
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let model = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap().freeze_vision();
    let (vision_before, text_before) = vision_and_text(&model);
    let mut grpo =
        Grpo::new(Learner::new(model, OptimConfig { lr: 1e-2, ..Default::default() }), config(None, 0.01));
    let stats = grpo.step(&batch(&tokenizer), &Scripted, &tokenizer).unwrap();
    assert_eq!(stats.updates, 1);
    assert!(grpo.reference().is_some());
    let (vision_after, text_after) = vision_and_text(&grpo.learner.model);
    assert_eq!(vision_after, vision_before);
    assert_ne!(text_after, text_before);
}

#[test]
fn online_filter_drops_all_or_nothing_groups_and_kl_off_needs_no_reference() {
    let tokenizer = TextTokenizer::from_dir(&checkpoint()).unwrap();
    let model = AnyVlm::<B>::load(checkpoint(), &Default::default()).unwrap();
    let before = weights(&model);
    let learner = Learner::new(model, OptimConfig { lr: 1e-2, ..Default::default() });
    // every group has accuracy exactly 0 or 1: all are filtered, no update happens
    let mut grpo = Grpo::new(learner, config(Some((0.0, 1.0)), 0.0));
    assert!(grpo.reference().is_none());
    let stats = grpo.step(&batch(&tokenizer), &Scripted, &tokenizer).unwrap();
    assert_eq!((stats.groups, stats.groups_kept, stats.updates), (3, 0, 0));
    assert_eq!(weights(&grpo.learner.model), before);
    // without the filter the same step updates the policy
    grpo.config.online_filter = None;
    let stats = grpo.step(&batch(&tokenizer), &Scripted, &tokenizer).unwrap();
    assert_eq!((stats.groups_kept, stats.updates), (3, 1));
    assert_ne!(weights(&grpo.learner.model), before);
}

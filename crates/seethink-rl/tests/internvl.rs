//! The trainer on InternVL, unchanged: GRPO through the run loop on image prompts of the
//! procedural benchmark raises the reward of the tiny InternVL3.5 checkpoint (InternViT tiles,
//! pixel shuffle and the Qwen3 decoder all in the backward pass), and its vision tower learns
//! unless frozen, in the original release's layout too.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{logged, tiny_config, vision_and_text, B, I};
use seethink_data::Task;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::config::Trainer;
use seethink_rl::run::train_on;

fn internvl(family: &str, layout: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(family).join(layout)
}

/// Reward = the share of ASCII letters in the response (a signal a random model can climb).
struct Letters;

impl Reward for Letters {
    fn score(&self, _task: &Task, response: &str) -> RewardBreakdown {
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        let overall = letters / response.chars().count().max(1) as f32;
        RewardBreakdown { overall, format: 0.0, accuracy: overall }
    }
}

/// Image tasks of the procedural benchmark.
fn image_tasks(count: usize) -> Vec<Task> {
    let tasks: Vec<Task> =
        seethink_data::synth::generate(&seethink_data::synth::SynthConfig::uniform(count), 5)
            .unwrap()
            .into_iter()
            .map(|t| t.task)
            .filter(|t| !t.images.is_empty())
            .collect();
    assert!(tasks.len() >= 4);
    tasks
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn grpo_on_image_prompts_raises_the_reward_of_internvl3_5() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), Trainer::Grpo, 16, 2);
    config.model = internvl("internvl3_5", "checkpoint");
    config.actor.lr = 1e-2;
    config.rollout.n = 6;
    config.trainer.save_every = 16;
    train_on::<B>(&config, image_tasks(4), Arc::new(Letters), &Default::default()).unwrap();
    let reward = logged(dir.path(), "reward");
    let (first, last) = (mean(&reward[..4]), mean(&reward[reward.len() - 4..]));
    println!("InternVL3.5 GRPO reward: first 4 steps {first:.3}, last 4 steps {last:.3}: {reward:?}");
    assert!(last > first + 0.2, "{reward:?}");
}

#[test]
fn the_internvl_vision_tower_learns_unless_frozen_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    for layout in ["checkpoint", "original"] {
        let model = internvl("internvl3", layout);
        let base = AnyVlm::<I>::load(&model, &Default::default()).unwrap();
        let (vision_before, text_before) = vision_and_text(&base);
        for freeze in [false, true] {
            let mut config = tiny_config(&dir.path().join(format!("{layout}-{freeze}")), Trainer::Grpo, 1, 2);
            config.model = model.clone();
            config.actor.freeze_vision = freeze;
            config.actor.lr = 1e-2;
            let trained =
                train_on::<B>(&config, image_tasks(2), Arc::new(Letters), &Default::default()).unwrap();
            let (vision_after, text_after) = vision_and_text(&trained);
            assert_eq!(vision_after == vision_before, freeze, "{layout}: freeze_vision {freeze}");
            assert_ne!(text_after, text_before, "{layout}");
        }
    }
}

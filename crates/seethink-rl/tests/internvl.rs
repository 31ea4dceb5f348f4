//! The trainer on InternVL, unchanged: GRPO through the run loop on image prompts of the
//! procedural benchmark raises the reward of the tiny InternVL3.5 checkpoint (InternViT tiles,
//! pixel shuffle and the Qwen3 decoder all in the backward pass), and its vision tower learns
//! unless frozen, in the original release's layout too.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{logged, tiny_config, vision_and_text, B, I};
use seethink_data::Task;
use seethink_models::nn::LoraConfig;
use seethink_models::{AnyVlm, ModelSize};
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

#[test]
fn lora_on_the_internvl_vision_tower_and_projector_trains_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    for layout in ["checkpoint", "original"] {
        let model = internvl("internvl3", layout);
        let vision = ModelSize::from_dir(&model).unwrap().vision_linear_names();
        let lora = LoraConfig {
            rank: 2,
            vision_modules: vision.iter().map(|s| s.to_string()).collect(),
            projector: true,
            ..Default::default()
        };
        let out = dir.path().join(layout);
        let mut config = tiny_config(&out, Trainer::Grpo, 1, 2);
        config.model = model.clone();
        config.actor.lora = Some(lora);
        config.actor.lr = 1e-2;
        let trained = train_on::<B>(&config, image_tasks(2), Arc::new(Letters), &Default::default()).unwrap();
        // every B starts at 0: those that moved took a gradient through the tower
        let moved: Vec<String> = trained
            .adapters()
            .into_iter()
            .filter(|(_, a)| a.lora_b.val().abs().max().into_scalar() > 0.0)
            .map(|(path, _)| path)
            .collect();
        let (tower, projector) = match layout {
            "checkpoint" => {
                ("model.vision_tower.encoder.layer.0.mlp.fc1", "model.multi_modal_projector.linear_1")
            }
            _ => ("vision_model.encoder.layers.0.mlp.fc1", "mlp1.1"),
        };
        assert!(
            moved.iter().any(|p| p == tower) && moved.iter().any(|p| p == projector),
            "{layout}: {moved:?}"
        );
        // transformers' layout gets a PEFT directory with every adapter; the original release
        // the merged model only
        let adapter = out.join(seethink_rl::run::ADAPTER_DIR).join("adapter_model.safetensors");
        assert_eq!(adapter.exists(), layout == "checkpoint", "{layout}");
        if layout == "checkpoint" {
            let bytes = std::fs::read(adapter).unwrap();
            let written = safetensors::SafeTensors::deserialize(&bytes).unwrap().len();
            assert_eq!(written, 2 * trained.adapters().len());
        }
        assert!(out.join("final/config.json").exists());
    }
}

//! The run loop really learns: SFT on the "pick a letter" task through `train_on` (the path of
//! `seethink train`) takes the tiny committed checkpoint from chance to solving it. GRPO's
//! learning test from an SFT warm-up is `configs.rs` (the shipped configs).

mod common;

use std::sync::Arc;

use common::{base_model, checkpoint, logged, task, tiny_config, B, I};
use seethink_data::Task;
use seethink_models::generate::{generate, SamplingConfig};
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::{DirectAnswer, Reward};
use seethink_rl::config::Trainer;
use seethink_rl::run::train_on;

/// "Pick A:" … "Pick D:", answered by the letter.
fn pick_tasks() -> Vec<Task> {
    ["A", "B", "C", "D"].iter().map(|l| task(l, &format!("Pick {l}:"), l)).collect()
}

/// Mean accuracy of 16 sampled replies per task (prompts encoded as the run encodes them).
fn sampled_accuracy(model: &AnyVlm<I>, tasks: &[Task], seed: u64) -> f32 {
    let processor = Processor::from_dir(&checkpoint()).unwrap();
    let prompts: Vec<_> =
        tasks.iter().map(|t| processor.encode_task(t, &Default::default()).unwrap()).collect();
    let sampling =
        SamplingConfig { max_new_tokens: 2, temperature: 1.0, top_p: 1.0, top_k: 0, seed, stream: 0 };
    let tokenizer = &processor.tokenizer;
    let out = generate(model, &prompts, 16, &sampling, &tokenizer.stop_ids, tokenizer.pad_id).unwrap();
    let hits: f32 = out
        .iter()
        .map(|c| DirectAnswer.score(&tasks[c.prompt], &tokenizer.decode(&c.ids, true).unwrap()).accuracy)
        .sum();
    hits / out.len() as f32
}

#[test]
fn sft_through_the_run_loop_learns_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), Trainer::Sft, 30, 4);
    config.actor.lr = 3e-3;
    config.actor.weight_decay = 0.0;
    config.actor.micro_batch_size = 2;
    config.trainer.save_every = 30;
    let before = sampled_accuracy(&base_model(), &pick_tasks(), 1);
    let trained = train_on::<B>(&config, pick_tasks(), Arc::new(DirectAnswer), &Default::default()).unwrap();
    let after = sampled_accuracy(&trained, &pick_tasks(), 2);
    let loss = logged(dir.path(), "loss");
    println!("SFT: loss {:.3} → {:.3}, accuracy {before:.3} → {after:.3}", loss[0], loss[loss.len() - 1]);
    assert!(loss[loss.len() - 1] < loss[0] * 0.5, "{loss:?}");
    assert!(before < 0.3 && after > 0.8, "SFT accuracy {before} → {after}");
}

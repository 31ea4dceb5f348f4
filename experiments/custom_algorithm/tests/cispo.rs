//! A user's CISPO loss, registered by name from this crate, through seethink's stock GRPO step
//! on the sandbox (its base model and benchmark) with online filtering and two data-parallel
//! workers: the same weights, bit for bit, as seethink's built-in `cispo`, and other weights
//! than the default loss.

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use custom_algorithm::cispo::with_cispo;
use seethink::curriculum::Merged;
use seethink::preset::CpuPreset;
use seethink::rl::algorithm::AlgorithmBuilder;
use seethink::rl::builtin::BuiltIn;
use seethink::rl::config::TrainConfig;
use seethink::rl::grpo::PluginName;
use seethink::rl::phases::train_curriculum_with;

type B = Autodiff<NdArray>;

/// The sandbox preset cut to 2 steps of 4 prompts × 4 samples, on 2 workers, with online
/// filtering (at most 4 draws to fill a step) and `loss`, in `dir/<loss>`. Two epochs over each
/// rollout with the ratio capped at 1 (`clip_high` 0): on-policy, CISPO's gradient is the
/// clipped surrogate's; the second epoch is where they part (PPO drops the tokens whose ratio
/// rose, CISPO keeps them at weight 1).
fn config(dir: &Path, loss: &str) -> TrainConfig {
    let preset =
        CpuPreset { out: dir.join(loss), train_tasks: 8, heldout_tasks: 1, eval_k: 1, ..Default::default() };
    let mut config = preset.prepare().unwrap();
    config.algorithm.loss = PluginName::new(loss);
    config.algorithm.online_filtering = true;
    config.algorithm.max_try_make_batch = 4;
    config.rollout.n = 4;
    config.actor.ppo_epochs = 2;
    config.actor.on_policy_old_logprobs = false;
    config.actor.clip_high = 0.0;
    config.trainer.steps = 2;
    config.trainer.prompts_per_step = 4;
    config.trainer.devices = 2;
    config.eval = None;
    config
}

/// The final weights of a run of `config` with the algorithms `builder` makes, and its metric
/// lines.
fn train(
    config: &TrainConfig,
    builder: &dyn AlgorithmBuilder<B>,
) -> seethink::rl::error::Result<(Vec<u8>, Vec<serde_json::Value>)> {
    let tasks = seethink::rl::run::load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    let outcome =
        train_curriculum_with::<B>(config, &Merged::new(), tasks, reward, &Default::default(), builder)?;
    let last = outcome.finals.last().unwrap();
    let metrics = std::fs::read_to_string(last.parent().unwrap().join("metrics.jsonl")).unwrap();
    let lines = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Ok((std::fs::read(last.join("model.safetensors")).unwrap(), lines))
}

#[test]
fn a_user_registered_cispo_runs_through_the_stock_grpo_step_as_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let (user, lines) = train(&config(dir.path(), "user_cispo"), &with_cispo::<B>()).unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(line["groups"].as_f64().unwrap() >= line["groups_kept"].as_f64().unwrap(), "{line}");
        assert!(line["grad_norm"].as_f64().unwrap() > 0.0, "an update: {line}");
    }
    let (built_in, _) = train(&config(dir.path(), "cispo"), &BuiltIn).unwrap();
    assert!(user == built_in, "the user's CISPO and the built-in one trained different weights");
    let (vanilla, _) = train(&config(dir.path(), "vanilla"), &BuiltIn).unwrap();
    assert!(user != vanilla, "CISPO trained the same weights as the clipped surrogate");
    let unknown = train(&config(dir.path(), "cispoo"), &with_cispo::<B>()).unwrap_err().to_string();
    assert!(
        unknown.contains("`cispoo` is not registered; known: cispo, dr_grpo, user_cispo, vanilla"),
        "{unknown}"
    );
}

//! GRPO options through the run loop: on image prompts the vision tower learns unless frozen;
//! online filtering drops groups outside its band and refills the batch (and goes on when
//! nothing survives); with KL off there is no KL term; a step's prompts are generated in calls of `rollout.batch_size` sequences; a
//! non-finite gradient skips the update; GSPO does not depend on the logit chunks; the
//! advantage estimators are wired; old log-probs taken from the update (on-policy) change nothing;
//! recomputing each layer in backward (activation checkpointing) trains to the same weights;
//! micro-batches side by side on the host's cores train to the weights of one after the other.

mod common;

use std::sync::Arc;

use common::{base_model, logged, task, tiny_config, vision_and_text, weights, B};
use seethink_data::Task;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::config::{FilterKey, Trainer};
use seethink_rl::grpo::{KlPenalty, LossType, PluginName};
use seethink_rl::run::train_on;

/// Accuracy 1 for prompts whose id starts with "yes", 0 otherwise; overall = share of letters.
struct Scripted;

impl Reward for Scripted {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let accuracy = if task.id.starts_with("yes") { 1.0 } else { 0.0 };
        let letters = response.chars().filter(|c| c.is_ascii_alphabetic()).count() as f32;
        RewardBreakdown { overall: letters / response.chars().count().max(1) as f32, format: 0.0, accuracy }
    }
}

fn tasks() -> Vec<Task> {
    vec![task("yes-1", "yes-1", ""), task("no-1", "no-1", ""), task("yes-2", "yes-2", "")]
}

/// Perception tasks of the procedural benchmark: one image each.
fn image_tasks() -> Vec<Task> {
    let tasks: Vec<Task> = seethink_data::synth::generate(&seethink_data::synth::SynthConfig::uniform(2), 5)
        .unwrap()
        .into_iter()
        .map(|t| t.task)
        .filter(|t| !t.images.is_empty())
        .collect();
    assert!(tasks.len() >= 2);
    tasks
}

#[test]
fn on_image_prompts_the_vision_tower_learns_unless_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let (vision_before, text_before) = vision_and_text(&base_model());
    for freeze in [false, true] {
        let mut config = tiny_config(&dir.path().join(freeze.to_string()), Trainer::Grpo, 1, 2);
        config.actor.freeze_vision = freeze;
        config.actor.lr = 1e-2;
        let trained = train_on::<B>(&config, image_tasks(), Arc::new(Scripted), &Default::default()).unwrap();
        assert_eq!(logged(&config.trainer.out, "updates"), [1.0]);
        let (vision_after, text_after) = vision_and_text(&trained);
        assert_eq!(vision_after == vision_before, freeze, "freeze_vision {freeze}");
        assert_ne!(text_after, text_before);
    }
}

/// Every reward is NaN: advantages, loss and gradients are NaN.
struct NotANumber;

impl Reward for NotANumber {
    fn score(&self, _task: &Task, _response: &str) -> RewardBreakdown {
        RewardBreakdown { overall: f32::NAN, format: 0.0, accuracy: 0.0 }
    }
}

#[test]
fn a_non_finite_gradient_skips_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), Trainer::Grpo, 2, 3);
    let trained = train_on::<B>(&config, tasks(), Arc::new(NotANumber), &Default::default()).unwrap();
    assert_eq!(logged(dir.path(), "skipped_updates"), [1.0, 1.0]);
    assert_eq!(weights(&trained), weights(&base_model()));
}

/// Accuracy 1 for "yes" tasks, 0 for "no" tasks, and for "mix" tasks 1 when the reply has an
/// even number of characters (so their groups are usually mixed); overall = share of letters.
struct Mixed;

impl Reward for Mixed {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let accuracy = match &task.id[..3] {
            "yes" => 1.0,
            "mix" => response.chars().count().is_multiple_of(2) as u8 as f32,
            _ => 0.0,
        };
        RewardBreakdown { accuracy, ..Scripted.score(task, response) }
    }
}

#[test]
fn online_filtering_refills_the_batch_and_goes_on_when_nothing_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(&dir.path().join("refill"), Trainer::Grpo, 1, 2);
    config.algorithm.online_filtering = true;
    config.algorithm.filter_key = FilterKey::Accuracy;
    config.algorithm.max_try_make_batch = 10;
    config.data.shuffle = false;
    // file order: two all-or-nothing groups first, then groups that can be mixed
    let tasks = vec![
        task("yes-1", "yes-1", ""),
        task("no-1", "no-1", ""),
        task("mix-1", "tell a story", ""),
        task("mix-2", "say something", ""),
        task("mix-3", "write a line", ""),
        task("mix-4", "name a colour", ""),
    ];
    train_on::<B>(&config, tasks, Arc::new(Mixed), &Default::default()).unwrap();
    let run = &config.trainer.out;
    assert_eq!(logged(run, "groups_kept"), [2.0], "the batch is refilled to prompts_per_step");
    assert!(logged(run, "groups")[0] > 2.0, "more prompts were drawn");
    assert_eq!(logged(run, "updates"), [1.0]);

    // every group all-or-nothing: nothing survives two draws, the step trains nothing, the run goes on
    config.trainer.out = dir.path().join("nothing");
    config.trainer.steps = 2;
    config.algorithm.max_try_make_batch = 2;
    config.algorithm.kl_coef = 0.0;
    let trained =
        train_on::<B>(&config, tasks_all_or_nothing(), Arc::new(Mixed), &Default::default()).unwrap();
    let run = &config.trainer.out;
    assert_eq!(logged(run, "groups"), [4.0, 4.0]);
    assert_eq!(logged(run, "groups_kept"), [0.0, 0.0]);
    assert_eq!(logged(run, "updates"), [0.0, 0.0]);
    assert_eq!(weights(&trained), weights(&base_model()));
}

fn tasks_all_or_nothing() -> Vec<Task> {
    vec![task("yes-1", "yes-1", ""), task("no-1", "no-1", ""), task("yes-2", "yes-2", "")]
}

#[test]
fn the_kl_as_a_reward_penalty() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), Trainer::Grpo, 2, 3);
    config.algorithm.use_kl_loss = false;
    config.algorithm.kl_coef = 0.5;
    config.algorithm.kl_penalty = KlPenalty::Abs;
    config.actor.lr = 1e-2;
    train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap();
    // no KL loss term; the penalty is 0 while the policy is the reference, then positive
    assert_eq!(logged(dir.path(), "kl"), [0.0, 0.0]);
    let penalty = logged(dir.path(), "kl_penalty");
    assert!(penalty[0].abs() < 1e-6 && penalty[1] > 1e-4, "{penalty:?}");
}

#[test]
fn with_kl_off_there_is_no_kl_term() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), Trainer::Grpo, 1, 3);
    config.algorithm.kl_coef = 0.0;
    let trained = train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap();
    assert_eq!((logged(dir.path(), "groups_kept")[0], logged(dir.path(), "updates")[0]), (3.0, 1.0));
    assert_eq!(logged(dir.path(), "kl"), [0.0]);
    assert_ne!(weights(&trained), weights(&base_model()));
}

#[test]
fn a_step_is_generated_in_calls_of_batch_size_sequences_with_the_same_samples() {
    let tasks: Vec<Task> = (0..8).map(|i| task(&format!("t{i}"), &format!("count to {i}"), "")).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut trained = Vec::new();
    // on the host the 8 prompts are also split over the cores, at most one call per core's share
    let shares = 8usize.div_ceil(<B as seethink_models::kernels::Kernels>::batch_threads());
    for (batch_size, calls) in [(32, 8usize.div_ceil(shares.min(8)) as f64), (8, 4.0)] {
        let mut config = tiny_config(&dir.path().join(batch_size.to_string()), Trainer::Grpo, 1, 8);
        config.rollout.batch_size = batch_size;
        config.rollout.max_new_tokens = 2;
        trained.push(weights(
            &train_on::<B>(&config, tasks.clone(), Arc::new(Scripted), &Default::default()).unwrap(),
        ));
        assert_eq!(logged(&config.trainer.out, "generation_calls"), [calls], "batch_size {batch_size}");
        assert_eq!(logged(&config.trainer.out, "groups"), [8.0]);
    }
    // every sequence has its own random stream: the batching does not change the samples
    assert_eq!(trained[0], trained[1]);
}

#[test]
fn over_long_prompts_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let long = "word ".repeat(200);
    let mut config = tiny_config(dir.path(), Trainer::Grpo, 1, 2);
    config.data.max_prompt_length = Some(64);
    let tasks = vec![task("short", "one", ""), task("long", &long, "")];
    train_on::<B>(&config, tasks, Arc::new(Scripted), &Default::default()).unwrap();
    let only_long = vec![task("long", &long, "")];
    config.trainer.out = dir.path().join("none-left");
    let err =
        train_on::<B>(&config, only_long, Arc::new(Scripted), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("data.max_prompt_length"), "{err}");
}

#[test]
fn the_schedule_steps_once_per_training_step_from_zero_as_easyr1_and_epochs_repeat_the_updates() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), Trainer::Grpo, 3, 3);
    config.actor.mini_batches = 2;
    config.actor.ppo_epochs = 2;
    config.actor.schedule = seethink_rl::optim::LrSchedule::Warmup { warmup: 2 };
    train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap();
    assert_eq!(logged(dir.path(), "updates"), [4.0, 4.0, 4.0], "2 epochs × 2 mini-batches");
    let lr = logged(dir.path(), "lr");
    assert_eq!(lr, [0.0, 0.5e-3, 1e-3]);
}

#[test]
fn gspo_updates_do_not_depend_on_how_logits_are_chunked_and_differ_from_token_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, loss_type: LossType, chunk_tokens: usize| {
        let mut config = tiny_config(&dir.path().join(name), Trainer::Grpo, 1, 3);
        // two mini-batches × two epochs, so that later updates see ratios ≠ 1
        (config.actor.mini_batches, config.actor.ppo_epochs, config.actor.lr) = (2, 2, 1e-2);
        config.actor.loss_type = loss_type;
        config.actor.logits_chunk_tokens = chunk_tokens;
        weights(&train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap())
    };
    let whole = run("whole", LossType::Gspo, 4096);
    let chunked = run("chunked", LossType::Gspo, 3);
    let gap = whole.iter().zip(&chunked).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(gap < 1e-5, "GSPO with 3-row logit chunks differs from unchunked by {gap}");
    let token = run("token", LossType::Default, 4096);
    let moved = whole.iter().zip(&token).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(moved > 1e-5, "GSPO and token-level ratios gave the same update");
}

#[test]
fn rloo_and_reinforce_baseline_are_dr_grpo_rescaled_so_under_adam_the_same_update() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, estimator: &str, normalize_std: bool| {
        let mut config = tiny_config(&dir.path().join(name), Trainer::Grpo, 1, 3);
        config.algorithm.estimator = PluginName::new(estimator);
        config.algorithm.normalize_std = normalize_std;
        config.algorithm.kl_coef = 0.0;
        weights(&train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap())
    };
    let max_gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    // RLOO's advantages are n/(n − 1) × Dr. GRPO's, and with responses of one length (all
    // three tokens here) REINFORCE++'s whitening of the group-centred scores is one more scale:
    // Adam's first step does not see the scale (but for its ε: the weights move by at most
    // 1.2e-5 apart at lr 1e-3, where the other estimators move them 2e-3 apart)
    let dr_grpo = run("dr-grpo", "grpo", false);
    // the estimator named dr_grpo is GRPO's without the std, whatever normalize_std says
    assert!(
        run("dr-grpo-named", "dr_grpo", true) == dr_grpo,
        "the dr_grpo estimator is not GRPO's without the std"
    );
    for (name, estimator) in [("rloo", "rloo"), ("reinforce-baseline", "reinforce_plus_plus_baseline")] {
        let trained = run(name, estimator, true);
        assert!(max_gap(&trained, &dr_grpo) < 1e-4, "{name}: {}", max_gap(&trained, &dr_grpo));
    }
    // GRPO's per-group std and REINFORCE++'s batch-wide baseline change the update
    let base = weights(&base_model());
    for (name, estimator) in [("grpo", "grpo"), ("reinforce", "reinforce_plus_plus")] {
        let trained = run(name, estimator, true);
        assert!(max_gap(&trained, &base) > 1e-4, "{name} did not train");
        assert!(max_gap(&trained, &dr_grpo) > 1e-3, "{name} gave Dr. GRPO's update");
    }
}

#[test]
fn on_policy_old_logprobs_from_the_update_give_the_update_of_a_pass_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, loss_type: LossType, on_policy: bool| {
        let mut config = tiny_config(&dir.path().join(name), Trainer::Grpo, 3, 3);
        (config.actor.mini_batches, config.actor.lr) = (1, 1e-2);
        config.actor.loss_type = loss_type;
        config.actor.on_policy_old_logprobs = on_policy;
        weights(&train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap())
    };
    let max_gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    for loss_type in [LossType::Default, LossType::Gspo] {
        let own_pass = run(&format!("{loss_type:?}-pass"), loss_type, false);
        let from_update = run(&format!("{loss_type:?}-update"), loss_type, true);
        let gap = max_gap(&own_pass, &from_update);
        assert!(gap < 1e-6, "{loss_type:?}: old log-probs from the update moved the weights by {gap}");
        // without the detach the ratio would be constant and the policy gradient zero
        assert!(max_gap(&from_update, &weights(&base_model())) > 1e-4, "{loss_type:?}: nothing learned");
    }
}

/// With one micro-batch per mini-batch and with four (seq-mean, micro-batches of 4: several
/// trained passes whose gradients accumulate), three times over. Keeping the decoder input's
/// graph (embeddings, vision tower) alive through the layers' backward passes lost part of its
/// gradient at random in burn-autodiff 0.21 (its graph clean-up after a backward pass),
/// half the runs or more with four micro-batches; the decoder input is now rebuilt for the last
/// pass (`layer_checkpoints`), and this test catches a return of that.
#[test]
fn activation_checkpointing_trains_to_the_weights_of_the_plain_backward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, checkpointing: bool, micro: Option<usize>| {
        let mut config = tiny_config(&dir.path().join(name), Trainer::Grpo, 3, 3);
        config.actor.lr = 1e-2;
        config.actor.activation_checkpointing = checkpointing;
        if let Some(micro) = micro {
            (config.actor.mini_batches, config.actor.micro_batch_size) = (1, micro);
            config.actor.aggregation = seethink_rl::grpo::Aggregation::SeqMean;
        }
        weights(&train_on::<B>(&config, tasks(), Arc::new(Scripted), &Default::default()).unwrap())
    };
    let max_gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    for micro in [None, Some(4)] {
        let plain = run(&format!("plain-{micro:?}"), false, micro);
        for attempt in 0..3 {
            let checkpointed = run(&format!("checkpointed-{micro:?}-{attempt}"), true, micro);
            // Qwen3-VL's deepstack gradients add in another order: within rounding, not bitwise
            let gap = max_gap(&plain, &checkpointed);
            assert!(
                gap < 1e-6,
                "micro-batches {micro:?}, run {attempt}: recomputing the layers moved the weights by {gap}"
            );
            assert!(max_gap(&checkpointed, &weights(&base_model())) > 1e-4, "nothing learned");
        }
    }
}

/// The host computes an update's micro-batches side by side, one per core, each through a graph
/// of its own, and adds their gradients in order: the run must equal, to the bit, the same run
/// inside a `map_parallel` worker (kept to one core, so one micro-batch after the other), with
/// image prompts (the vision tower trains) and three micro-batches per update (a round of two,
/// then one alone), for the token-level loss and for GSPO (whose ratios a micro-batch computes
/// from its own responses).
#[test]
fn micro_batches_side_by_side_train_to_the_bits_of_one_after_the_other() {
    use seethink_models::parallel::{cores, map_parallel};
    if cores() < 2 {
        println!("one core here: both runs take the micro-batches one after the other");
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |name: String, loss_type: LossType| {
        let mut config = tiny_config(&dir.path().join(name), Trainer::Grpo, 2, 3);
        (config.actor.lr, config.actor.micro_batch_size, config.actor.loss_type) = (1e-2, 4, loss_type);
        let trained = train_on::<B>(&config, image_tasks(), Arc::new(Scripted), &Default::default()).unwrap();
        let metrics = ["pg_loss", "kl", "entropy", "grad_norm"].map(|key| logged(&config.trainer.out, key));
        (weights(&trained), metrics)
    };
    for loss_type in [LossType::Default, LossType::Gspo] {
        let side_by_side = run(format!("{loss_type:?}-side-by-side"), loss_type);
        // two workers, so that each keeps to one core; the second has nothing to do
        let one_core = map_parallel(vec![true, false], 2, |work| {
            work.then(|| run(format!("{loss_type:?}-one-core"), loss_type))
        });
        let one_after_the_other = one_core.into_iter().flatten().next().unwrap();
        assert!(side_by_side.0 == one_after_the_other.0, "{loss_type:?}: the weights differ");
        assert_eq!(side_by_side.1, one_after_the_other.1, "{loss_type:?}: the logged metrics differ");
        assert!(side_by_side.0 != weights(&base_model()), "{loss_type:?}: nothing learned");
    }
}

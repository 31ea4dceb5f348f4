//! Data-parallel training (`trainer.devices: 2`, two worker threads on the CPU joined by
//! burn's collective) against one process with the same global batch: the same rollouts, the
//! same metrics and weights; bitwise resume with two workers; the optimizer state, the
//! gradients and the weights sharded between them; clear errors for a mismatched resume, an indivisible batch and a worker that
//! dies.
//!
//! burn's collective is one per process and backend, so these tests take turns ([`serial`]).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use common::{logged, task, tiny_config, weights, Letters, B, I};
use seethink_data::Task;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};
use seethink_rl::checkpoint::complete_checkpoints;
use seethink_rl::config::{TrainConfig, Trainer};
use seethink_rl::error::TrainError;
use seethink_rl::run::train_on;
use seethink_rl::sharding::Sharding;

/// One data-parallel run at a time: the collective is the process's.
fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tasks() -> Vec<Task> {
    ["one", "two", "three", "four", "five", "six"]
        .iter()
        .enumerate()
        .map(|(i, w)| task(w, w, &i.to_string()))
        .collect()
}

/// A GRPO (or SFT) run of 4 prompts × 4 samples per step with the KL as a loss, in 2
/// mini-batches of 2 micro-batches of one group (`micro_batch_size` 4): two workers take one
/// micro-batch of each, so their gradients' sum is one process's in the same order (a + b).
fn config(dir: &Path, trainer: Trainer, steps: usize, devices: usize) -> TrainConfig {
    let mut config = tiny_config(dir, trainer, steps, 4);
    config.algorithm.kl_coef = 0.05;
    config.actor.mini_batches = 2;
    config.actor.micro_batch_size = 4;
    config.trainer.devices = devices;
    config
}

/// `two`'s values of `key` equal `one`'s within `tolerance` relative (at least 1e-3 absolute
/// scale): sums over logits chunks taken in another order.
fn assert_close(two: &Path, one: &Path, key: &str, tolerance: f64) {
    let (two, one) = (logged(two, key), logged(one, key));
    let close = two.iter().zip(&one).all(|(a, b)| (a - b).abs() <= tolerance * b.abs().max(1e-3));
    assert!(close && two.len() == one.len(), "{key}: {two:?} against {one:?}");
}

/// The largest |a − b| over two models' weights, and how many differ.
fn weight_gap(a: &AnyVlm<I>, b: &AnyVlm<I>) -> (f32, usize) {
    let (a, b) = (weights(a), weights(b));
    let gap = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    (gap, a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count())
}

fn train(config: &TrainConfig, reward: Arc<dyn Reward>) -> Result<AnyVlm<I>, TrainError> {
    train_on::<B>(config, tasks(), reward, &Default::default())
}

#[test]
fn two_grpo_workers_roll_out_and_train_as_one_process() {
    let _turn = serial();
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = train(&config(one_dir.path(), Trainer::Grpo, 3, 1), Arc::new(Letters)).unwrap();
    let two = train(&config(two_dir.path(), Trainer::Grpo, 3, 2), Arc::new(Letters)).unwrap();
    // the same rollouts: every sample's reward and length, step by step
    for key in ["reward", "response_length", "groups_kept"] {
        assert_eq!(logged(two_dir.path(), key), logged(one_dir.path(), key), "{key}");
    }
    // the same updates: bitwise the same weights; the metrics are sums over logits chunks,
    // taken in another order
    assert_eq!(weight_gap(&two, &one), (0.0, 0));
    for key in ["pg_loss", "kl", "entropy", "grad_norm"] {
        assert_close(two_dir.path(), one_dir.path(), key, 1e-6);
    }
    assert_ne!(weights(&one), weights(&common::base_model()));
}

/// Four micro-batches of one group in one mini-batch, two per worker, seq-mean: the workers'
/// gradients are summed as `(g₁ + g₂) + (g₃ + g₄)` where one process sums
/// `((g₁ + g₂) + g₃) + g₄`. Adam turns such rounding into larger weight differences where a
/// gradient is near 0. Measured after three steps at lr 1e-3: at most 3.0e-6 (in 14,613
/// weights), against 4.8e-5 between one process's runs with micro-batches of 8 and of 4; the
/// stated tolerance is 2e-5.
#[test]
fn two_grpo_workers_summing_in_another_order_agree_within_rounding() {
    let _turn = serial();
    let setup = |dir: &Path, devices: usize, micro: usize| {
        let mut config = config(dir, Trainer::Grpo, 3, devices);
        config.actor.micro_batch_size = micro;
        config.actor.mini_batches = 1;
        config.actor.aggregation = seethink_rl::grpo::Aggregation::SeqMean;
        config
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = train(&setup(dirs[0].path(), 1, 4), Arc::new(Letters)).unwrap();
    let two = train(&setup(dirs[1].path(), 2, 4), Arc::new(Letters)).unwrap();
    assert_eq!(logged(dirs[1].path(), "reward"), logged(dirs[0].path(), "reward"));
    assert_close(dirs[1].path(), dirs[0].path(), "grad_norm", 1e-5);
    let (gap, differing) = weight_gap(&two, &one);
    let resplit = train(&setup(dirs[2].path(), 1, 8), Arc::new(Letters)).unwrap();
    eprintln!(
        "after 3 steps: two workers differ from one by at most {gap:e} ({differing} weights); \
         one worker with micro-batches of 8 instead of 4 by {:?}",
        weight_gap(&resplit, &one)
    );
    assert!(gap < 2e-5, "largest weight difference {gap}");
}

#[test]
fn two_sft_workers_train_as_one_process() {
    let _turn = serial();
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one_config = config(one_dir.path(), Trainer::Sft, 3, 1);
    one_config.actor.micro_batch_size = 2;
    let mut two_config = one_config.clone();
    two_config.trainer.out = two_dir.path().into();
    two_config.trainer.devices = 2;
    let one = train(&one_config, Arc::new(Letters)).unwrap();
    let two = train(&two_config, Arc::new(Letters)).unwrap();
    assert_eq!(weight_gap(&two, &one), (0.0, 0));
    // the loss is summed over micro-batches in f64 on one worker, over workers in f32
    assert_close(two_dir.path(), one_dir.path(), "loss", 1e-6);
    // and with AdamW's state (and the gradients) sharded between them
    for sharding in [Sharding::OptimizerState, Sharding::Gradients] {
        let sharded_dir = tempfile::tempdir().unwrap();
        two_config.trainer.out = sharded_dir.path().into();
        two_config.trainer.sharding = sharding;
        let sharded = train(&two_config, Arc::new(Letters)).unwrap();
        assert_eq!(weight_gap(&sharded, &one), (0.0, 0), "{sharding:?}");
    }
    // and with the weights sharded too, each decoder layer gathered as its pass runs it (which
    // needs the layers recomputed): against one process recomputing them as well
    let (one_dir, sharded_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    one_config.trainer.out = one_dir.path().into();
    one_config.actor.activation_checkpointing = true;
    let one = train(&one_config, Arc::new(Letters)).unwrap();
    two_config.trainer.out = sharded_dir.path().into();
    two_config.actor.activation_checkpointing = true;
    two_config.trainer.sharding = Sharding::Weights;
    let sharded = train(&two_config, Arc::new(Letters)).unwrap();
    assert_eq!(weight_gap(&sharded, &one), (0.0, 0), "Weights");
}

#[test]
fn two_workers_resume_bitwise_and_refuse_another_worker_count() {
    let _turn = serial();
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = train(&config(straight_dir.path(), Trainer::Grpo, 4, 2), Arc::new(Letters)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    train(&config(dir.path(), Trainer::Grpo, 2, 2), Arc::new(Letters)).unwrap();
    // a checkpoint of two workers is not resumed by one
    let error = train(&config(dir.path(), Trainer::Grpo, 4, 1), Arc::new(Letters)).unwrap_err().to_string();
    assert!(
        error.contains("state-2.json") && error.contains("by 2 data-parallel worker(s) and this run has 1"),
        "{error}"
    );
    let resumed = train(&config(dir.path(), Trainer::Grpo, 4, 2), Arc::new(Letters)).unwrap();
    assert_eq!(weight_gap(&resumed, &straight), (0.0, 0));
    assert_eq!(logged(dir.path(), "step"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(logged(dir.path(), "reward"), logged(straight_dir.path(), "reward"));
}

#[test]
fn a_batch_the_workers_cannot_share_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), Trainer::Grpo, 1, 3);
    let error = train(&config, Arc::new(Letters)).unwrap_err().to_string();
    assert!(
        error.contains("trainer.prompts_per_step: 4 is not divisible by the 3 data-parallel workers"),
        "{error}"
    );
    config.trainer.devices = 0;
    let error = train(&config, Arc::new(Letters)).unwrap_err().to_string();
    assert!(error.contains("trainer.devices: must be at least 1"), "{error}");
}

/// A reward that fails on worker 1's thread only, at its first step.
struct FailsOnWorkerOne;

impl Reward for FailsOnWorkerOne {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        if std::thread::current().name() == Some("seethink-worker-1") {
            panic!("the grader of worker 1 broke");
        }
        Letters.score(task, response)
    }
}

#[test]
fn a_worker_that_dies_stops_the_run_with_its_error() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let error =
        train(&config(dir.path(), Trainer::Grpo, 2, 2), Arc::new(FailsOnWorkerOne)).unwrap_err().to_string();
    assert!(error.contains("worker 1 panicked: the grader of worker 1 broke"), "{error}");
    // the collective is usable again: the next run trains
    let again = tempfile::tempdir().unwrap();
    train(&config(again.path(), Trainer::Grpo, 1, 2), Arc::new(Letters)).unwrap();
}

/// A two-phase curriculum (perception, then text reasoning) on image and text tasks: each phase
/// starts its workers again, and two workers end where one process does.
#[test]
fn a_curriculum_s_phases_run_on_two_workers_as_on_one() {
    use seethink_curriculum::{CurriculumConfig, Policy};
    use seethink_data::synth::{generate, SynthConfig};
    let _turn = serial();
    let pool: Vec<Task> =
        generate(&SynthConfig::uniform(2), 7).unwrap().into_iter().map(|t| t.task).collect();
    let run = |dir: &Path, devices: usize| {
        let mut config = config(dir, Trainer::Grpo, 2, devices);
        config.trainer.prompts_per_step = 2;
        config.algorithm.reward = seethink_rl::config::RewardKind::Direct;
        let phases = Policy::Staged(vec![
            seethink_data::Capability::Perception,
            seethink_data::Capability::TextReasoning,
        ]);
        config.curriculum = Some(CurriculumConfig {
            policy: phases,
            within: Vec::new(),
            phases: Default::default(),
            plateau: None,
        });
        let reward = config.algorithm.reward.reward();
        let outcome =
            seethink_rl::phases::train_phases::<B>(&config, pool.clone(), reward, &Default::default())
                .unwrap();
        AnyVlm::<I>::load(outcome.finals.last().unwrap(), &Default::default()).unwrap()
    };
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (one, two) = (run(one_dir.path(), 1), run(two_dir.path(), 2));
    assert_eq!(weight_gap(&two, &one), (0.0, 0));
    assert_ne!(weights(&one), weights(&common::base_model()));
}

/// `trainer.sharding: OptimizerState` (ZeRO stage 1) on two workers: each steps AdamW for its
/// own parameters and keeps their moments only, then takes the others' from their owners. The
/// weights equal the unsharded run's bitwise; each worker's saved AdamW state is about half of
/// the whole; a run stopped after step 2 resumes to the same weights, and a resume with another
/// sharding is refused.
#[test]
fn two_workers_with_sharded_optimizer_state_train_and_resume_as_unsharded() {
    sharded_runs_train_and_resume_as_unsharded(Sharding::OptimizerState);
}

/// The same with `trainer.sharding: Gradients` (ZeRO stage 2): each worker also keeps only its
/// own parameters' gradients, summed to it micro-batch by micro-batch (one each here, so the
/// sums are the unsharded ones), and the clipping norm gathers every parameter's part from its
/// holder (the same bits).
#[test]
fn two_workers_with_sharded_gradients_train_and_resume_as_unsharded() {
    sharded_runs_train_and_resume_as_unsharded(Sharding::Gradients);
}

/// The same with `trainer.sharding: Weights` (ZeRO stage 3): each worker also holds only its
/// own parameters' weights between uses, gathering the policy for the rollout and each decoder
/// layer as its pass runs it (both runs recompute the layers, which this level needs); the
/// checkpoint records the whole policy.
#[test]
fn two_workers_with_sharded_weights_train_and_resume_as_unsharded() {
    sharded_runs_train_and_resume_as_unsharded(Sharding::Weights);
}

fn sharded_runs_train_and_resume_as_unsharded(sharding: Sharding) {
    let _turn = serial();
    // sharded weights are gathered a decoder layer at a time, which needs the layers recomputed
    let unsharded = |dir: &Path, steps: usize| {
        let mut config = config(dir, Trainer::Grpo, steps, 2);
        config.actor.activation_checkpointing = sharding.weights();
        config
    };
    let sharded = |dir: &Path, steps: usize| {
        let mut config = unsharded(dir, steps);
        config.trainer.sharding = sharding;
        config
    };
    let (whole_dir, straight_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = train(&unsharded(whole_dir.path(), 4), Arc::new(Letters)).unwrap();
    let straight = train(&sharded(straight_dir.path(), 4), Arc::new(Letters)).unwrap();
    assert_eq!(weight_gap(&straight, &whole), (0.0, 0));
    for key in ["reward", "grad_norm", "pg_loss"] {
        assert_eq!(logged(straight_dir.path(), key), logged(whole_dir.path(), key), "{key}");
    }

    // worker 0's share in optim-4.mpk, worker 1's beside it; each about half of the whole
    let size =
        |dir: &Path, file: &str| std::fs::metadata(dir.join("checkpoint").join(file)).unwrap().len() as f64;
    let all = size(whole_dir.path(), "optim-4.mpk");
    let shares = [size(straight_dir.path(), "optim-4.mpk"), size(straight_dir.path(), "optim-worker1-4.mpk")];
    for share in shares {
        assert!((0.35..0.65).contains(&(share / all)), "shares {shares:?} of {all} bytes");
    }
    // old checkpoints go with their shards (saved every step, the last 2 kept)
    let mut shard_files: Vec<String> = std::fs::read_dir(straight_dir.path().join("checkpoint"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|name| name.starts_with("optim-worker"))
        .collect();
    shard_files.sort();
    let kept = complete_checkpoints(&straight_dir.path().join("checkpoint"));
    let expected: Vec<String> = kept.iter().map(|step| format!("optim-worker1-{step}.mpk")).collect();
    assert_eq!(shard_files, expected);

    let dir = tempfile::tempdir().unwrap();
    train(&sharded(dir.path(), 2), Arc::new(Letters)).unwrap();
    let error = train(&unsharded(dir.path(), 4), Arc::new(Letters)).unwrap_err().to_string();
    assert!(
        error.contains("state-2.json") && error.contains(&format!("trainer.sharding {sharding:?}")),
        "{error}"
    );
    let resumed = train(&sharded(dir.path(), 4), Arc::new(Letters)).unwrap();
    assert_eq!(weight_gap(&resumed, &straight), (0.0, 0));
    assert_eq!(logged(dir.path(), "step"), [1.0, 2.0, 3.0, 4.0]);
}

/// `trainer.sharding: Gradients` for every family, with and without
/// `actor.activation_checkpointing` (whose gradients go to their owners layer by layer), and
/// `Weights` with it (each layer gathered as its pass runs it): two sharded workers train to
/// the weights of two unsharded ones, bitwise. One micro-batch per worker per mini-batch, so
/// each gradient is summed as `a + b` either way.
#[test]
fn sharded_gradients_train_every_family_as_unsharded() {
    let _turn = serial();
    let fixtures = common::checkpoint().join("../..");
    for family in ["qwen2_5_vl", "qwen3_vl", "internvl3", "internvl3_5"] {
        for checkpointing in [false, true] {
            let run = |sharding: Sharding| {
                let dir = tempfile::tempdir().unwrap();
                let mut config = config(dir.path(), Trainer::Grpo, 2, 2);
                config.model = fixtures.join(family).join("checkpoint");
                config.actor.activation_checkpointing = checkpointing;
                config.trainer.sharding = sharding;
                let model = train(&config, Arc::new(Letters)).unwrap();
                (model, logged(dir.path(), "grad_norm"))
            };
            let (whole, whole_norms) = run(Sharding::None);
            let levels = match checkpointing {
                true => vec![Sharding::Gradients, Sharding::Weights],
                false => vec![Sharding::Gradients],
            };
            for level in levels {
                let (sharded, sharded_norms) = run(level);
                let context = format!("{family}, {level:?}, activation checkpointing {checkpointing}");
                assert_eq!(weight_gap(&sharded, &whole), (0.0, 0), "{context}");
                assert_eq!(sharded_norms, whole_norms, "{context}");
            }
        }
    }
}

/// Three micro-batches in a mini-batch over two workers: worker 0 computes one and makes the
/// exchanges of a second with no gradients, worker 1 computes two. The sums are taken in
/// another order than one process's, so the weights agree within rounding (the tolerance of
/// the unsharded test of another order).
#[test]
fn sharded_gradients_with_uneven_micro_batches_train_as_one_process() {
    let _turn = serial();
    for checkpointing in [false, true] {
        let setup = |dir: &Path, devices: usize, sharding: Sharding| {
            let mut config = config(dir, Trainer::Grpo, 3, devices);
            config.actor.mini_batches = 1;
            config.actor.micro_batch_size = 6;
            config.actor.aggregation = seethink_rl::grpo::Aggregation::SeqMean;
            config.actor.activation_checkpointing = checkpointing;
            config.trainer.sharding = sharding;
            config
        };
        let one_dir = tempfile::tempdir().unwrap();
        let one = train(&setup(one_dir.path(), 1, Sharding::None), Arc::new(Letters)).unwrap();
        // the idle worker also makes the layers' gathers when the weights are sharded
        let levels = match checkpointing {
            true => vec![Sharding::Gradients, Sharding::Weights],
            false => vec![Sharding::Gradients],
        };
        for level in levels {
            let two_dir = tempfile::tempdir().unwrap();
            let two = train(&setup(two_dir.path(), 2, level), Arc::new(Letters)).unwrap();
            assert_eq!(logged(two_dir.path(), "reward"), logged(one_dir.path(), "reward"));
            assert_close(two_dir.path(), one_dir.path(), "grad_norm", 1e-5);
            let (gap, differing) = weight_gap(&two, &one);
            let context = format!("{level:?}, checkpointing {checkpointing}");
            eprintln!("{context}: {differing} weights differ, by at most {gap:e}");
            assert!(gap < 2e-5, "{context}: largest weight difference {gap}");
        }
    }
}

/// Under LoRA the adapters are the trained parameters, and the output projection's group holds
/// none of them (its exchange is skipped on every worker): two sharded workers (gradients, and
/// gradients and weights: the adapters are the sharded weights) train the adapters as two
/// unsharded ones, with each layer recomputed in backward.
#[test]
fn sharded_gradients_train_lora_adapters_as_unsharded() {
    let _turn = serial();
    let run = |sharding: Sharding| {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), Trainer::Grpo, 2, 2);
        config.actor.lora =
            Some(seethink_models::nn::LoraConfig { rank: 4, alpha: 8.0, ..Default::default() });
        config.actor.activation_checkpointing = true;
        config.trainer.sharding = sharding;
        train(&config, Arc::new(Letters)).unwrap()
    };
    let whole = run(Sharding::None);
    for level in [Sharding::Gradients, Sharding::Weights] {
        assert_eq!(weight_gap(&run(level), &whole), (0.0, 0), "{level:?}");
    }
    assert_ne!(weights(&whole), weights(&common::base_model()), "the adapters moved nothing");
}

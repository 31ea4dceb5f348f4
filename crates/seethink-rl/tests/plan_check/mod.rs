//! The memory plan against what a GRPO step really holds on ndarray: every byte in use is
//! counted by a global allocator (ndarray keeps each tensor on the heap), and the peaks of the
//! rollout's generation and of the learning phase (old and reference log-probs, the update) of
//! a steady-state step (AdamW's moments already there) are compared with the plan's. Models
//! are random, at shapes where different components dominate. A test binary using it has
//! this allocator for its whole process; each uses part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::Ordering;

use burn::module::AutodiffModule;
use burn::tensor::DType;
use seethink_models::generate::{generate, Prompt};
use seethink_models::kernels::Kernels;
use seethink_models::{AnyVlm, ModelSize};
use seethink_rl::config::{ActorConfig, AlgorithmConfig, RolloutConfig, TrainConfig, Trainer};
use seethink_rl::data_parallel::run_data_parallel;
use seethink_rl::error::TrainError;
use seethink_rl::grpo::{Grpo, GrpoStats, Scored};
use seethink_rl::learner::{inference_model, new_learner};
use seethink_rl::logprobs::Sequence;
use seethink_rl::plan::{KernelPath, MemoryPlan, Phase, Target};
use seethink_rl::sharding::Sharding;
use seethink_rl::train_backend::TrainBackend;

use crate::common::{checkpoint, tiny_config};

#[path = "../counting_allocator/mod.rs"]
mod counting_allocator;

use counting_allocator::{IN_USE, PEAK};

/// Bytes in use at the peak of `f`, above `base`.
fn peak_of<T>(base: usize, f: impl FnOnce() -> T) -> (usize, T) {
    PEAK.store(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
    let out = f();
    (PEAK.load(Ordering::Relaxed) - base, out)
}

/// A decoder shape.
pub struct Shape {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
}

/// The committed Qwen3-VL checkpoint's config in `dir`, its decoder resized to `shape`.
fn write_config(dir: &Path, s: &Shape) {
    let text = std::fs::read_to_string(checkpoint().join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let t = &mut config["text_config"];
    t["hidden_size"] = s.hidden.into();
    t["intermediate_size"] = s.intermediate.into();
    t["num_hidden_layers"] = s.layers.into();
    t["num_attention_heads"] = s.heads.into();
    t["num_key_value_heads"] = s.kv_heads.into();
    t["head_dim"] = s.head_dim.into();
    t["vocab_size"] = s.vocab.into();
    t["max_position_embeddings"] = 8192.into();
    let half = s.head_dim / 2;
    let (hw, tt) = (half * 3 / 8, half - 2 * (half * 3 / 8));
    t["rope_scaling"]["mrope_section"] = serde_json::json!([tt, hw, hw]);
    config["vision_config"]["out_hidden_size"] = s.hidden.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// The run's settings the plan reads: `prompts` × `n` sequences of `prompt` + `response` tokens.
pub fn run_config(
    dir: &Path,
    prompt: usize,
    response: usize,
    prompts: usize,
    n: usize,
    micro: usize,
    chunk: usize,
) -> TrainConfig {
    let mut config = tiny_config(dir, Trainer::Grpo, 1, prompts);
    config.model = dir.to_path_buf();
    config.data.max_prompt_length = Some(prompt);
    config.algorithm = AlgorithmConfig { kl_coef: 0.01, use_kl_loss: true, ..Default::default() };
    config.actor = ActorConfig {
        lr: 1e-6,
        mini_batches: 1,
        micro_batch_size: micro,
        logits_chunk_tokens: chunk,
        ..Default::default()
    };
    config.rollout =
        RolloutConfig { n, max_new_tokens: response, batch_size: prompts * n, ..Default::default() };
    config
}

struct Measured {
    rollout: usize,
    learn: usize,
}

/// Peaks of one generation call as the rollout makes it and of a steady-state learning phase,
/// with frozen weights (the KL reference) stored in `frozen`.
fn measure<B: TrainBackend>(config: &TrainConfig, frozen: DType) -> Measured {
    let base = IN_USE.load(Ordering::Relaxed);
    let model = AnyVlm::<B>::random(&config.model, 7, &Default::default()).unwrap();
    let compute = config.actor.mixed_precision.map(|m| m.dtype().burn());
    let mut learner =
        new_learner(model, &config.actor, 0).with_frozen_storage(frozen).with_compute_dtype(compute);
    let mut grpo =
        Grpo::new(&learner, config.algorithm.clone(), config.actor.clone(), config.rollout.clone());
    let prompt_len = config.data.max_prompt_length.unwrap();
    let n = config.rollout.n;
    let prompts = config.trainer.prompts_per_step;
    let rollout = fixed_rollout::<B::InnerBackend>(config);
    let policy = learner.compute_policy().unwrap().valid().model;
    grpo.learn(&mut learner, policy.clone(), rollout.clone(), 0, &mut GrpoStats::default()).unwrap();
    drop(policy);
    let policy = learner.compute_policy().unwrap().valid().model;
    let threads = <B::InnerBackend as Kernels>::batch_threads();
    let per_call = (config.rollout.batch_size / n).max(1).min(prompts.div_ceil(threads).max(1));
    let calls: Vec<Vec<Prompt<B::InnerBackend>>> = (0..prompts)
        .map(|p| Prompt { ids: ids(prompt_len, p), images: None })
        .collect::<Vec<_>>()
        .chunks(per_call)
        .map(<[_]>::to_vec)
        .collect();
    let sampling = config.rollout.sampling(0);
    let (rollout_peak, _) = peak_of(base, || {
        seethink_models::parallel::map_parallel(calls, threads, |chunk| {
            generate(&policy, &chunk, n, &sampling, &[], 0).unwrap()
        })
    });
    let (learn_peak, _) = peak_of(base, || {
        grpo.learn(&mut learner, policy.clone(), rollout, 0, &mut GrpoStats::default()).unwrap()
    });
    Measured { rollout: rollout_peak, learn: learn_peak }
}

/// Plain text ids of the fixture's tokenizer (its image and vision tokens are above 300).
fn ids(len: usize, salt: usize) -> Vec<u32> {
    (0..len).map(|i| 1 + ((i * 7919 + salt * 104_729) % 299) as u32).collect()
}

/// A rollout of `config`'s size: every prompt and response at its full length, scores 0, 1, 2.
fn fixed_rollout<I: Kernels>(config: &TrainConfig) -> Vec<Scored<I>> {
    let (prompt, response) = (config.data.max_prompt_length.unwrap(), config.rollout.max_new_tokens);
    let n = config.rollout.n;
    (0..config.trainer.prompts_per_step * n)
        .map(|s| Scored {
            sequence: Sequence {
                prompt: ids(prompt, s / n),
                response: ids(response, s + 1000),
                images: None,
            },
            score: (s % 3) as f32,
        })
        .collect()
}

/// The learning phase's peak of `config.trainer.devices` data-parallel workers, threads of this
/// process (so the allocator counts them together), sharded as `config.trainer.sharding`
/// says: each learns from the same rollout twice (the first gives AdamW its moments), and the
/// second is measured, the rollout's policy (gathered, with the weights sharded) handed over
/// as a step does. They exchange in lockstep, so their peaks fall together.
fn measure_workers<B: TrainBackend>(config: &TrainConfig) -> usize {
    let base = IN_USE.load(Ordering::Relaxed);
    let rollout = fixed_rollout::<B::InnerBackend>(config);
    let topology = config.trainer.topology();
    run_data_parallel::<B::InnerBackend, usize, _, TrainError>(
        &topology,
        (),
        &Default::default(),
        |role, _, _| {
            let model = AnyVlm::<B>::random(&config.model, 7, &Default::default())?;
            let mut learner = new_learner(model, &config.actor, 0);
            let mut grpo =
                Grpo::new(&learner, config.algorithm.clone(), config.actor.clone(), config.rollout.clone());
            grpo.worker = role.worker.clone();
            learner.shard_weights(&role.worker);
            let policy = inference_model(&learner).unwrap();
            grpo.learn(&mut learner, policy.clone(), rollout.clone(), 0, &mut GrpoStats::default())?;
            let policy = inference_model(&learner).unwrap();
            // every worker is here before the peak is reset, and after it is read
            role.worker.sum(vec![0.0])?;
            if role.worker.rank() == 0 {
                PEAK.store(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            role.worker.sum(vec![0.0])?;
            grpo.learn(&mut learner, policy, rollout.clone(), 0, &mut GrpoStats::default())?;
            role.worker.sum(vec![0.0])?;
            Ok(PEAK.load(Ordering::Relaxed) - base)
        },
    )
    .unwrap()
}

/// The learning peak of 2 and 4 workers, unsharded, with the gradients sharded (ZeRO-2) and
/// with everything sharded (ZeRO-3), against the plan of one worker times their number: adds to
/// `misses` each off by more than 15%. 12 layers 256/768, each recomputed in backward, 8 prompts over the workers (one
/// micro-batch each); f32 frozen weights.
pub fn check_sharded_workers<B: TrainBackend>(
    misses: &mut Vec<String>,
    kernels: KernelPath,
    prompt: usize,
    response: usize,
) {
    let shape = Shape {
        hidden: 256,
        intermediate: 768,
        layers: 12,
        heads: 8,
        kv_heads: 2,
        head_dim: 32,
        vocab: 2048,
    };
    let levels = [
        (2, Sharding::None),
        (2, Sharding::Gradients),
        (4, Sharding::Gradients),
        (2, Sharding::Weights),
        (4, Sharding::Weights),
    ];
    for (workers, sharding) in levels {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), &shape);
        let mut config = run_config(dir.path(), prompt, response, 8, 1, 8 / workers, 256);
        config.actor.activation_checkpointing = true;
        (config.trainer.devices, config.trainer.sharding) = (workers, sharding);
        let size = ModelSize::from_dir(dir.path()).unwrap();
        let threads = <B::InnerBackend as Kernels>::batch_threads();
        let target = Target { kernels, element_bytes: 4, compute_bytes: 4, frozen_bytes: 4, threads };
        let plan = MemoryPlan::new(&size, &config, target);
        // threads on one CPU device receive the same all-reduced tensor, where GPU workers hold
        // one each on their own devices: after a step of `OptimizerState` or `Gradients` (each
        // parameter from its owner) they share one copy of the weights; with `Weights`, the
        // N − 1 workers gathering a parameter share one copy of it (planned (N − 1)/N each)
        let n = workers as u64;
        let gathered = |phase: Phase| {
            plan.components
                .iter()
                .filter(|c| c.phase == phase && c.name.starts_with("gathered"))
                .map(|c| c.bytes)
                .sum::<u64>()
        };
        let shared = |phase: Phase| match (sharding.weights(), sharding.optimizer_state()) {
            (true, _) => n * gathered(phase) * (n - 2) / (n - 1),
            (false, true) => (n - 1) * 4 * size.params() as u64,
            (false, false) => 0,
        };
        // the learning phase's largest: old (and, unless the weights are sharded, reference)
        // log-probs, reference log-probs, or the update
        let phases = [Phase::Frozen, Phase::Reference, Phase::Update];
        let largest = phases
            .into_iter()
            .max_by_key(|&phase| n * plan.phase_bytes(phase) - shared(phase))
            .unwrap_or(Phase::Update);
        let (per_worker, shared) = (plan.phase_bytes(largest), shared(largest));
        let planned = workers as u64 * per_worker - shared;
        let measured = measure_workers::<B>(&config);
        let error = planned as f64 / measured as f64 - 1.0;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "{workers} workers, {sharding:?}: planned {workers} × {:.1} MiB − {:.1} MiB of shared weights, measured {:.1} MiB ({:+.1}%)\n{}",
            mib(per_worker),
            mib(shared),
            mib(measured as u64),
            100.0 * error,
            plan.table()
        );
        if error.abs() > 0.15 {
            misses
                .push(format!("{workers} workers, {sharding:?}: the plan is off by {:+.1}%", 100.0 * error));
        }
    }
}

/// Measures `config` on `shape` and adds to `misses` each peak the plan for `kernels` with
/// floats of `element_bytes` and frozen weights stored in `frozen` misses by more than 15% (a
/// learning peak with micro-batches side by side: more than 15% above that plan or below the
/// plan of one thread).
fn check<B: TrainBackend>(
    misses: &mut Vec<String>,
    name: &str,
    kernels: KernelPath,
    element_bytes: usize,
    frozen: DType,
    shape: Shape,
    config: impl Fn(&Path) -> TrainConfig,
) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &shape);
    let config = config(dir.path());
    let size = ModelSize::from_dir(dir.path()).unwrap();
    let threads = <B::InnerBackend as Kernels>::batch_threads();
    let compute_bytes = config.actor.mixed_precision.map_or(element_bytes, |m| m.dtype().size());
    let target = Target { kernels, element_bytes, compute_bytes, frozen_bytes: frozen.size(), threads };
    let plan = MemoryPlan::new(&size, &config, target);
    let measured = measure::<B>(&config, frozen);
    let learn = |plan: &MemoryPlan| plan.phase_bytes(Phase::Frozen).max(plan.phase_bytes(Phase::Update));
    let learn_plan = learn(&plan);
    // an update's micro-batches side by side: their activation peaks coincide only as far as the
    // threads keep in step, so the plan counts them at once, an upper bound, and the measured
    // peak must lie between the plan of one thread (one micro-batch at a time) and it
    let one_thread = learn(&MemoryPlan::new(&size, &config, Target { threads: 1, ..target }));
    let side_by_side = plan.components.iter().any(|c| c.formula.contains("side by side"));
    let rollout_plan = plan.phase_bytes(Phase::Rollout);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("{name}:\n{}", plan.table());
    let always = plan.components.iter().filter(|c| c.phase == Phase::Always).map(|c| c.bytes).sum::<u64>();
    println!(
        "{name}: measured learn above always {:.1} MiB",
        (measured.learn as f64 - always as f64) / (1 << 20) as f64
    );
    for (what, planned, got) in
        [("rollout", rollout_plan, measured.rollout), ("learn", learn_plan, measured.learn)]
    {
        let error = planned as f64 / got as f64 - 1.0;
        println!(
            "{name} {what}: planned {:.1} MiB, measured {:.1} MiB ({:+.1}%)",
            mib(planned),
            mib(got as u64),
            100.0 * error
        );
        if what == "learn" && side_by_side {
            let below = one_thread as f64 / got as f64 - 1.0;
            println!("{name} learn: one thread's plan {:.1} MiB ({:+.1}%)", mib(one_thread), 100.0 * below);
            if error < -0.15 || below > 0.15 {
                misses.push(format!(
                    "{name}: the learn peak is outside the plans side by side ({:+.1}%) and of one thread ({:+.1}%)",
                    100.0 * error,
                    100.0 * below
                ));
            }
        } else if error.abs() > 0.15 {
            misses.push(format!("{name}: the plan's {what} peak is off by {:+.1}%", 100.0 * error));
        }
    }
}

/// The lengths a kernel path's cases run at: prompts and responses of the decoder-dominated
/// cases, and the vocabulary-dominated case's vocabulary, lengths and logits chunk.
pub struct Sizes {
    pub prompt: usize,
    pub response: usize,
    pub vocab: usize,
    pub vocab_prompt: usize,
    pub vocab_response: usize,
    pub vocab_chunk: usize,
}

/// Set in a child process of [`check_cases`]: the index of the one case it checks.
const CASE: &str = "SEETHINK_PLAN_CASE";

/// A child's line for each peak its case misses.
const MISS: &str = "plan miss: ";

/// Checks the plan for `kernels` (floats of `element_bytes`, frozen weights stored in
/// `frozen`) on five cases, each dominated by
/// a different width (shared and own prompts, a wide MLP, many heads, the vocabulary), then
/// deeper ones, and fails listing every peak it misses by more than 15%.
///
/// Each case runs in a process of its own (this test binary again, with [`CASE`] set), as many
/// at once as there are cores: the counting allocator counts a whole process, a case's own
/// threads (generation calls, frozen passes, micro-batches side by side) together.
pub fn check_cases<B: TrainBackend>(kernels: KernelPath, element_bytes: usize, frozen: DType, sizes: Sizes) {
    let Sizes { prompt, response, vocab, vocab_prompt, vocab_response, vocab_chunk } = sizes;
    let shape = |hidden, intermediate, layers, heads, kv_heads, head_dim, vocab| Shape {
        hidden,
        intermediate,
        layers,
        heads,
        kv_heads,
        head_dim,
        vocab,
    };
    let cases = [
        ("shared prompts", shape(256, 768, 4, 8, 2, 32, 2048), (prompt, response, 2, 4, 256)),
        ("own prompts", shape(256, 768, 4, 8, 2, 32, 2048), (prompt, response, 8, 1, 256)),
        ("wide mlp", shape(128, 1536, 4, 4, 2, 32, 2048), (prompt, response, 8, 1, 256)),
        ("many heads", shape(128, 256, 4, 16, 8, 64, 2048), (prompt, response, 8, 1, 256)),
        ("vocabulary", shape(64, 192, 1, 4, 2, 16, vocab), (vocab_prompt, vocab_response, 2, 4, vocab_chunk)),
    ];
    let only = std::env::var(CASE).ok().map(|i| i.parse::<usize>().unwrap());
    let mut misses = Vec::new();
    let mut cases_seen = 0;
    // every case is numbered; a child checks only its own
    let mut case = |misses: &mut Vec<String>,
                    name: &str,
                    kernels: KernelPath,
                    element_bytes: usize,
                    frozen: DType,
                    shape: Shape,
                    config: &dyn Fn(&Path) -> TrainConfig| {
        if only == Some(cases_seen) {
            check::<B>(misses, name, kernels, element_bytes, frozen, shape, config);
        }
        cases_seen += 1;
    };
    for (name, shape, (prompt, response, prompts, n, chunk)) in cases {
        case(&mut misses, name, kernels, element_bytes, frozen, shape, &|dir| {
            run_config(dir, prompt, response, prompts, n, 4, chunk)
        });
    }
    // deep enough that the update's activations are what learning holds, with every layer's
    // and with one layer's plus the kept inputs; checkpointed in two micro-batches, the second's
    // gradients that do not join the sum layer by layer beside it
    for (name, checkpointing, micro) in [
        ("12 layers", false, 8),
        ("12 layers, checkpointed", true, 8),
        ("12 layers, checkpointed, 2 micro-batches", true, 4),
    ] {
        let deep = shape(256, 768, 12, 8, 2, 32, 2048);
        case(&mut misses, name, kernels, element_bytes, frozen, deep, &|dir| {
            let mut config = run_config(dir, prompt, response, 8, 1, micro, 256);
            config.actor.activation_checkpointing = checkpointing;
            config
        });
    }
    // mixed precision where the backend computes wider than f32 (the generic path's f64): every
    // pass on an f32 copy of the policy, the KV cache and activations in f32
    if element_bytes == 8 {
        let deep = shape(256, 768, 12, 8, 2, 32, 2048);
        case(
            &mut misses,
            "12 layers, checkpointed, f32 compute",
            kernels,
            element_bytes,
            frozen,
            deep,
            &|dir| {
                let mut config = run_config(dir, prompt, response, 8, 1, 8, 256);
                config.actor.activation_checkpointing = true;
                config.actor.mixed_precision = Some(seethink_rl::config::ComputeType::F32);
                config
            },
        );
    }
    if only.is_some() {
        for miss in misses {
            println!("{MISS}{miss}");
        }
        return;
    }
    let misses = in_child_processes(cases_seen);
    assert!(misses.is_empty(), "{misses:#?}");
}

/// Runs cases `0..cases` of this test binary's test, each in a child process with [`CASE`]
/// set, as many at once as there are cores, and returns their misses.
fn in_child_processes(cases: usize) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    // libtest names a test's thread after the test; on the main thread (`--test-threads=1`) the
    // child runs the binary's tests, each plan binary holding one
    let test = std::thread::current().name().filter(|n| *n != "main").map(str::to_string);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run = |case: usize| {
        let output = std::process::Command::new(&exe)
            .args(test.iter().flat_map(|t| [t.as_str(), "--exact"]))
            .args(["--nocapture", "--test-threads=1"])
            .env(CASE, case.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        print!("{stdout}");
        assert!(
            output.status.success(),
            "case {case}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout.lines().filter_map(|l| l.strip_prefix(MISS).map(str::to_string)).collect::<Vec<_>>()
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(cases);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut misses = Vec::new();
                    loop {
                        let case = next.fetch_add(1, Ordering::Relaxed);
                        if case >= cases {
                            return misses;
                        }
                        misses.extend(run(case));
                    }
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    })
}

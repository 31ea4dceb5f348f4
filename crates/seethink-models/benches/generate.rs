//! Generation throughput (new tokens per second) with the KV cache on ndarray, and the host
//! sampling of one row at the real vocabulary (151,936 logits).
//!
//! `cargo bench -p seethink-models --bench generate`; the model is the tiny committed Qwen3-VL
//! fixture unless `SEETHINK_BENCH_MODEL` names another checkpoint directory; each figure is the
//! best of `SEETHINK_BENCH_RUNS` runs (default 5) after a warm-up.
//! `benches/generate_transformers.py` measures transformers on the same checkpoint and settings.

/// The `seethink` binary's allocator, so the figures are the ones a run gets.
#[global_allocator]
static ALLOCATOR: seethink_models::allocator::Allocator = seethink_models::allocator::Allocator;

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::NdArray;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seethink_models::generate::{generate, Prompt};
use seethink_models::sampling::{sample_token, SamplingConfig};
use seethink_models::QwenVl;

type B = NdArray<f32>;

const PROMPT_TOKENS: u32 = 32;
const NEW_TOKENS: usize = 32;

/// Microseconds to sample one row of 151,936 logits (the best of 20), per sampling setting.
fn sampling_at_real_vocabulary() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let logits: Vec<f32> = (0..151_936).map(|_| rng.random::<f32>() * 20.0 - 10.0).collect();
    for (label, top_k, top_p) in [("top_k 0, top_p 1", 0, 1.0), ("top_k 50", 50, 1.0), ("top_p 0.9", 0, 0.9)]
    {
        let sampling = SamplingConfig { temperature: 1.0, top_k, top_p, ..Default::default() };
        let best = (0..20)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(sample_token(&logits, &sampling, &mut rng));
                started.elapsed().as_secs_f64() * 1e6
            })
            .fold(f64::INFINITY, f64::min);
        println!("sampling one row of 151,936 logits, {label}: {best:.0} µs");
    }
}

fn main() {
    sampling_at_real_vocabulary();
    let dir = std::env::var("SEETHINK_BENCH_MODEL").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/qwen3_vl/checkpoint")
    });
    let model = QwenVl::<B>::load(&dir, &Default::default()).expect("load checkpoint");
    let prompt = |seed: u32| Prompt::<B> {
        ids: (0..PROMPT_TOKENS).map(|i| 1 + (i * 7 + seed) % 250).collect(),
        images: None,
    };
    let sampling = SamplingConfig {
        max_new_tokens: NEW_TOKENS,
        temperature: 1.0,
        top_p: 1.0,
        top_k: 0,
        seed: 0,
        stream: 0,
    };
    let runs: usize =
        std::env::var("SEETHINK_BENCH_RUNS").map_or(5, |r| r.parse().expect("SEETHINK_BENCH_RUNS"));
    for (label, prompts, n) in [("batch 1", 1, 1), ("batch 8 x n=5", 8, 5)] {
        let prompts: Vec<Prompt<B>> = (0..prompts).map(prompt).collect();
        generate(&model, &prompts, n, &sampling, &[], 0).unwrap();
        let best = (0..runs)
            .map(|_| {
                let started = Instant::now();
                let out = generate(&model, &prompts, n, &sampling, &[], 0).unwrap();
                let tokens: usize = out.iter().map(|c| c.ids.len()).sum();
                tokens as f64 / started.elapsed().as_secs_f64()
            })
            .fold(0.0, f64::max);
        println!("{}: {label}: {best:.0} new tokens/s", dir.display());
    }
}

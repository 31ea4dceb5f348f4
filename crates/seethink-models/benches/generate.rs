//! Generation throughput (new tokens per second) with the KV cache on ndarray.
//!
//! `cargo bench -p seethink-models --bench generate`; the model is the tiny committed Qwen3-VL
//! fixture unless `SEETHINK_BENCH_MODEL` names another checkpoint directory.
//! `benches/generate_transformers.py` measures transformers on the same checkpoint and settings.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::NdArray;
use seethink_models::generate::{generate, Prompt, SamplingConfig};
use seethink_models::QwenVl;

type B = NdArray<f32>;

const PROMPT_TOKENS: u32 = 32;
const NEW_TOKENS: usize = 32;

fn main() {
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
    for (label, prompts, n) in [("batch 1", 1, 1), ("batch 8 x n=5", 8, 5)] {
        let prompts: Vec<Prompt<B>> = (0..prompts).map(prompt).collect();
        // warm-up, then the best of 5 runs
        generate(&model, &prompts, n, &sampling, &[], 0).unwrap();
        let best = (0..5)
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

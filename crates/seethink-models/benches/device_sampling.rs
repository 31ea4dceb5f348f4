//! The device's rule for the next token ([`pick_on_device`], the default of every backend but
//! the host's) at the real vocabulary, on the compiled-in backend: cuda, else wgpu, else
//! ndarray (which samples with the host's rule in a run, and computes this one for the bench).
//!
//! `cargo bench -p seethink-models --bench device_sampling` (add `--no-default-features
//! --features wgpu` or `cuda` for a GPU); milliseconds per call for `SEETHINK_BENCH_ROWS` rows
//! (default `1,8`) of 151,936 logits, each figure the best of `SEETHINK_BENCH_RUNS` calls
//! (default 5) after a warm-up call. A call ends with the chosen ids and log-probs read back,
//! so its time includes everything the device ran for it.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{backend_name, best_ms, B};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seethink_models::device_sampling::pick_on_device;
use seethink_models::sampling::SamplingConfig;

const VOCAB: usize = 151_936;

fn main() {
    let rows: Vec<usize> = std::env::var("SEETHINK_BENCH_ROWS")
        .unwrap_or_else(|_| "1,8".into())
        .split(',')
        .map(|r| r.trim().parse().expect("SEETHINK_BENCH_ROWS: numbers separated by commas"))
        .collect();
    let device = Default::default();
    let backend = backend_name();
    for rows in rows {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let values: Vec<f32> = (0..rows * VOCAB).map(|_| rng.random::<f32>() * 20.0 - 10.0).collect();
        let logits = Tensor::<B, 2>::from_data(TensorData::new(values, [rows, VOCAB]), &device);
        let mut streams: Vec<ChaCha8Rng> = (0..rows as u64).map(ChaCha8Rng::seed_from_u64).collect();
        for (label, temperature, top_k, top_p) in [
            ("greedy", 0.0, 0, 1.0),
            ("top_k 0, top_p 1", 1.0, 0, 1.0),
            ("top_k 50, top_p 0.9", 1.0, 50, 0.9),
        ] {
            let sampling = SamplingConfig { temperature, top_k, top_p, ..Default::default() };
            let best = best_ms(|| {
                std::hint::black_box(pick_on_device(logits.clone(), &mut streams, &[], &sampling).unwrap());
            });
            println!("pick_on_device on {backend}, {rows} rows of {VOCAB} logits, {label}: {best:.1} ms");
        }
    }
}

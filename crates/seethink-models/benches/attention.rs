//! Grouped-query attention in burn operations ([`decomposed_attention`], the default of every
//! backend but the host's, and [`recomputed_attention`], its training form under autodiff) at
//! Qwen2.5-VL-7B's heads (28 query heads over 4 key/value heads of 128), on the compiled-in
//! backend: cuda, else wgpu, else ndarray (whose models use the host kernels instead).
//!
//! `cargo bench -p seethink-models --bench attention` (add `--no-default-features --features
//! wgpu` or `cuda` for a GPU); milliseconds per call, each the best of `SEETHINK_BENCH_RUNS`
//! calls (default 5) after a warm-up call. A call ends with its result read back, so its time
//! includes everything the device ran for it. The cases:
//! - one decoding step: 8 sequences, one query each over a cache of 3,072 positions;
//! - a prefill: one sequence of 1,024 tokens, causal;
//! - a training pass: the same prefill under autodiff, forward and backward.

mod common;

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::Autodiff;
use burn::tensor::{Distribution, Tensor};
use common::{backend_name, best_ms, B};
use seethink_models::kernels::{causal_blocked, decomposed_attention, recomputed_attention};

type A = Autodiff<B, NoCheckpointing>;

const Q_HEADS: usize = 28;
const KV_HEADS: usize = 4;
const HEAD_DIM: usize = 128;

fn main() {
    let device = Default::default();
    let backend = backend_name();
    let normal = |shape: [usize; 4]| Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let scale = (HEAD_DIM as f64).powf(-0.5);

    for (label, batch, queries, keys) in [("decoding step", 8, 1, 3072), ("prefill", 1, 1024, 1024)] {
        let (q, k, v) = (
            normal([batch, Q_HEADS, queries, HEAD_DIM]),
            normal([batch, KV_HEADS, keys, HEAD_DIM]),
            normal([batch, KV_HEADS, keys, HEAD_DIM]),
        );
        let blocked = causal_blocked::<B>(&vec![true; batch * keys], batch, queries, 0, &device);
        let ms = best_ms(|| {
            let out = decomposed_attention(q.clone(), k.clone(), v.clone(), Some(&blocked), scale);
            std::hint::black_box(out.into_data());
        });
        println!("decomposed_attention on {backend}, {label} ({batch} × {queries} queries, {keys} keys): {ms:.1} ms");
    }

    let tokens = 1024;
    let tracked = |shape: [usize; 4]| Tensor::<A, 4>::from_inner(normal(shape)).require_grad();
    let (q, k, v) = (
        tracked([1, Q_HEADS, tokens, HEAD_DIM]),
        tracked([1, KV_HEADS, tokens, HEAD_DIM]),
        tracked([1, KV_HEADS, tokens, HEAD_DIM]),
    );
    let blocked = causal_blocked::<A>(&vec![true; tokens], 1, tokens, 0, &device);
    let ms = best_ms(|| {
        let out = recomputed_attention(q.clone(), k.clone(), v.clone(), Some(&blocked), scale);
        let grads = out.sum().backward();
        std::hint::black_box(k.grad(&grads).map(|g| g.into_data()));
    });
    println!("recomputed_attention on {backend}, training pass (1 × {tokens} tokens, forward and backward): {ms:.1} ms");
}

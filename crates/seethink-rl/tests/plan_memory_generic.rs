//! The memory plan of the generic path (burn's ops, as on wgpu and cuda; `NdArray<f64>`) within 15% of the measured peaks
//! (`plan_check`). Its own test binary: its allocator counts the whole process.

mod common;
mod plan_check;

use burn::backend::{Autodiff, NdArray};
use seethink_rl::plan::KernelPath;

use plan_check::{check, run_config, Shape};

type B = Autodiff<NdArray<f64>>;

#[test]
fn the_generic_plan_is_within_15_percent_of_the_measured_peaks() {
    let mut misses = Vec::new();
    let wide = || Shape {
        hidden: 256,
        intermediate: 768,
        layers: 4,
        heads: 8,
        kv_heads: 2,
        head_dim: 32,
        vocab: 2048,
    };
    check::<B>(&mut misses, "shared prompts", KernelPath::Generic, 8, wide(), |dir| {
        run_config(dir, 32, 64, 2, 4, 4, 256)
    });
    check::<B>(&mut misses, "own prompts", KernelPath::Generic, 8, wide(), |dir| {
        run_config(dir, 32, 64, 8, 1, 4, 256)
    });
    let mlp = Shape {
        hidden: 128,
        intermediate: 1536,
        layers: 4,
        heads: 4,
        kv_heads: 2,
        head_dim: 32,
        vocab: 2048,
    };
    check::<B>(&mut misses, "wide mlp", KernelPath::Generic, 8, mlp, |dir| {
        run_config(dir, 32, 64, 8, 1, 4, 256)
    });
    let heads = Shape {
        hidden: 128,
        intermediate: 256,
        layers: 4,
        heads: 16,
        kv_heads: 8,
        head_dim: 64,
        vocab: 2048,
    };
    check::<B>(&mut misses, "many heads", KernelPath::Generic, 8, heads, |dir| {
        run_config(dir, 32, 64, 8, 1, 4, 256)
    });
    let vocab = Shape {
        hidden: 64,
        intermediate: 192,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        head_dim: 16,
        vocab: 32_768,
    };
    check::<B>(&mut misses, "vocabulary", KernelPath::Generic, 8, vocab, |dir| {
        run_config(dir, 16, 32, 2, 4, 4, 128)
    });
    assert!(misses.is_empty(), "{misses:#?}");
}

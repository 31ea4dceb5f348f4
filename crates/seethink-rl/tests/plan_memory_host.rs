//! The memory plan of the host kernels (`NdArray<f32>`) within 15% of the measured peaks
//! (`plan_check`). Its own test binary: its allocator counts the whole process.

mod common;
mod plan_check;

use burn::backend::{Autodiff, NdArray};
use seethink_rl::plan::KernelPath;

use plan_check::{check, run_config, Shape};

type B = Autodiff<NdArray<f32>>;

#[test]
fn the_host_plan_is_within_15_percent_of_the_measured_peaks() {
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
    check::<B>(&mut misses, "shared prompts", KernelPath::Host, 4, wide(), |dir| {
        run_config(dir, 64, 128, 2, 4, 4, 256)
    });
    check::<B>(&mut misses, "own prompts", KernelPath::Host, 4, wide(), |dir| {
        run_config(dir, 64, 128, 8, 1, 4, 256)
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
    check::<B>(&mut misses, "wide mlp", KernelPath::Host, 4, mlp, |dir| {
        run_config(dir, 64, 128, 8, 1, 4, 256)
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
    check::<B>(&mut misses, "many heads", KernelPath::Host, 4, heads, |dir| {
        run_config(dir, 64, 128, 8, 1, 4, 256)
    });
    let vocab = Shape {
        hidden: 64,
        intermediate: 192,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        head_dim: 16,
        vocab: 151_936,
    };
    check::<B>(&mut misses, "vocabulary", KernelPath::Host, 4, vocab, |dir| {
        run_config(dir, 32, 96, 2, 4, 4, 256)
    });
    assert!(misses.is_empty(), "{misses:#?}");
}

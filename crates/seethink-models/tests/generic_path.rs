//! The models through the default [`Kernels`](seethink_models::kernels::Kernels) (burn's ops),
//! the path of every backend without kernels of its own (wgpu, cuda), here on `NdArray<f64>`:
//! logits against transformers on every Qwen case, and greedy decoding with the KV cache.
//!
//! Its own test binary: burn 0.21 keeps one default float type per device type, which
//! `NdArray<f32>` and `NdArray<f64>` share, so a process creates tensors of one of them only.

mod common;

use burn::backend::NdArray;
use common::{greedy_is_the_argmax, logits_parity};

type Generic = NdArray<f64>;

#[test]
fn logits_match_transformers_on_the_generic_path() {
    for family in ["qwen2_5_vl", "qwen3_vl"] {
        for case in ["text", "image", "batch"] {
            let (diff, tolerance) = logits_parity::<Generic>(family, case);
            assert!(diff <= tolerance, "{family}/{case}: max|Δlogits| {diff:e} > {tolerance:e}");
        }
    }
}

#[test]
fn greedy_generation_is_the_argmax_on_the_generic_path() {
    greedy_is_the_argmax::<Generic>();
}

//! A whole GRPO update against PyTorch: the learning phase of a step (`Grpo::learn`: group
//! advantages, old and reference log-probs at the sampling temperature, the clip-higher +
//! dual-clip loss with the k3 KL, token-mean over two micro-batches per mini-batch, gradient
//! clipping, AdamW; two mini-batches = two updates) on a fixed rollout of the tiny Qwen3-VL
//! (an image prompt and a text prompt, transformers' own token ids and pixel values), against
//! the same update in transformers + torch autograd following EasyR1's formulas
//! (`tests/fixtures/grpo_update.py`, which wrote the case and the reference).

//!
//! Here on `Autodiff<NdArray<f32>>` (the host kernels); `grpo_update_generic.rs` runs it through
//! the default kernels.

mod common;
mod pytorch_update;

#[test]
fn a_grpo_update_matches_pytorch() {
    pytorch_update::update_matches_pytorch::<common::B>();
}

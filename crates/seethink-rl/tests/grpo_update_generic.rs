//! The whole GRPO update against PyTorch (`pytorch_update`) through the default kernels and
//! burn's AdamW, on `Autodiff<NdArray<f64>>`: the path of every backend without kernels of its
//! own (wgpu, cuda), differentiated by burn.
//!
//! Its own test binary: burn 0.21 keeps one default float type per device type, which
//! `NdArray<f32>` and `NdArray<f64>` share, so a process creates tensors of one of them only.

mod common;
mod pytorch_update;

use burn::backend::{Autodiff, NdArray};

#[test]
fn a_grpo_update_on_the_generic_path_matches_pytorch() {
    pytorch_update::update_matches_pytorch::<Autodiff<NdArray<f64>>>();
}

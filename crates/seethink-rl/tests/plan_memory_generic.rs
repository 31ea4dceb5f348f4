//! The memory plan of the generic path (burn's ops, as on wgpu and cuda; `NdArray<f64>`, its frozen
//! weights stored in f32) within 15% of the measured peaks
//! (`plan_check`). Its own test binary: its allocator counts the whole process.

mod common;
mod plan_check;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::DType;
use seethink_rl::plan::KernelPath;

use plan_check::{check_cases, Sizes};

type B = Autodiff<NdArray<f64>>;

#[test]
fn the_generic_plan_is_within_15_percent_of_the_measured_peaks() {
    check_cases::<B>(
        KernelPath::Generic,
        8,
        // frozen weights (the KL reference) in f32, as a bf16 checkpoint's in bf16 on a GPU
        DType::F32,
        Sizes {
            prompt: 32,
            response: 64,
            vocab: 32_768,
            vocab_prompt: 16,
            vocab_response: 32,
            vocab_chunk: 128,
        },
    );
}

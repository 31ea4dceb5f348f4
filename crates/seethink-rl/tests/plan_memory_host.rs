//! The memory plan of the host kernels (`NdArray<f32>`) within 15% of the measured peaks
//! (`plan_check`). Its own test binary: its allocator counts the whole process.

mod common;
mod plan_check;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::DType;
use seethink_rl::plan::KernelPath;

use plan_check::{check_cases, Sizes};

type B = Autodiff<NdArray<f32>>;

#[test]
fn the_host_plan_is_within_15_percent_of_the_measured_peaks() {
    check_cases::<B>(
        KernelPath::Host,
        4,
        DType::F32,
        Sizes {
            prompt: 64,
            response: 128,
            vocab: 151_936,
            vocab_prompt: 32,
            vocab_response: 96,
            vocab_chunk: 256,
        },
    );
}

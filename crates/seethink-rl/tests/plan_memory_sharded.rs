//! The memory plan of data-parallel workers, unsharded, with the gradients and AdamW's state
//! sharded (ZeRO-2) and with the weights too (ZeRO-3), within 15% of the measured learning peak
//! of 2 and 4 workers on the host kernels (`plan_check`). Its own test binary: its allocator counts the whole process.

mod common;
mod plan_check;

use burn::backend::{Autodiff, NdArray};
use seethink_rl::plan::KernelPath;

type B = Autodiff<NdArray<f32>>;

#[test]
fn each_sharded_worker_holds_what_its_plan_says() {
    let mut misses = Vec::new();
    plan_check::check_sharded_workers::<B>(&mut misses, KernelPath::Host, 64, 128);
    assert!(misses.is_empty(), "{misses:#?}");
}

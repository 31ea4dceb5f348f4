//! What the host kernels share: burn's ndarray backend types (with and without autodiff), the
//! check that a generic backend is one of them, and the cast between the two once checked.

use std::any::{Any, TypeId};

use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorMetadata;

pub(super) type Cpu = NdArray<f32>;
pub(super) type CpuAutodiff = Autodiff<Cpu>;
/// `Autodiff`'s tensor: the ndarray tensor and its node in the graph.
pub(super) type Tracked = FloatTensor<CpuAutodiff>;

/// How backend `B` runs on the host: `Some(false)` for `NdArray<f32>`, `Some(true)` for
/// `Autodiff<NdArray<f32>>`, `None` for any other backend (which keeps burn's generic ops).
pub(super) fn host_kind<B: Backend>() -> Option<bool> {
    let id = TypeId::of::<B>();
    match () {
        _ if id == TypeId::of::<Cpu>() => Some(false),
        _ if id == TypeId::of::<CpuAutodiff>() => Some(true),
        _ => None,
    }
}

/// `value` as `U`, which the caller has checked is the same type as `T`.
pub(super) fn cast<T: 'static, U: 'static>(value: T) -> U {
    let mut slot = Some(value);
    (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
        .expect("the caller checked that both types are the same")
}

/// The elements of an ndarray f32 tensor in row-major order (one copy, whatever its strides).
pub(super) fn host_f32(tensor: &NdArrayTensor) -> Vec<f32> {
    match tensor {
        NdArrayTensor::F32(storage) => {
            let view = storage.view();
            let mut out = Vec::with_capacity(view.len());
            copy_row_major(view, &mut out);
            out
        }
        other => unreachable!("the host kernels get f32 tensors, not {:?}", other.dtype()),
    }
}

/// Appends `view`'s elements to `out` in row-major order, a whole contiguous sub-array at a
/// time (a KV cache narrowed to its filled positions is contiguous per batch row and head).
fn copy_row_major(view: ndarray::ArrayViewD<'_, f32>, out: &mut Vec<f32>) {
    match view.as_slice() {
        Some(values) => out.extend_from_slice(values),
        None if view.ndim() > 1 => view.outer_iter().for_each(|sub| copy_row_major(sub, out)),
        None => out.extend(view.iter()),
    }
}

/// `e^x` for `x ≤ 88`, as straight-line code so that loops of it vectorise (libm's `expf` is
/// a call per element): `x = n·ln 2 + r` with `n` the nearest integer to `x·log₂e`, and
/// `e^x = 2ⁿ · P(r)` with Cephes' `expf` polynomial (relative error ≤ 2e-7); 0 below −87.3
/// (where `e^x` leaves f32's normal range) and for −∞.
pub(super) fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4; // ln 2 in two parts, exact first part
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * r
        * r
        + r
        + 1.0;
    let two_to_n = f32::from_bits(((n as i32).wrapping_add(127) as u32) << 23);
    if x < -87.3 {
        0.0
    } else {
        p * two_to_n
    }
}

/// `Σ_i x_i` in eight independent lanes (so the compiler vectorises it).
pub(super) fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let blocks = x.chunks_exact(8);
    let tail: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        for lane in 0..8 {
            lanes[lane] += block[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `work` on the elements of an ndarray f32 tensor in row-major order: borrowed when it is
/// stored that way, else a copy.
pub(super) fn with_f32<R>(tensor: &NdArrayTensor, work: impl FnOnce(&[f32]) -> R) -> R {
    match tensor {
        NdArrayTensor::F32(storage) => {
            let view = storage.view();
            match view.as_slice() {
                Some(values) => work(values),
                None => work(view.as_standard_layout().as_slice().expect("row-major")),
            }
        }
        other => unreachable!("the host kernels get f32 tensors, not {:?}", other.dtype()),
    }
}

/// `σ(x) = 1 / (1 + e^{−x})` with the vectorising [`exp`] (its argument kept ≤ 88).
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp((-x).min(88.0)))
}

/// `work` on every item, spread over the cores this thread may use when `size` (the work's
/// elements or multiply-adds in all) pays for the threads ([`threads_for`]); results in item
/// order.
///
/// [`threads_for`]: crate::parallel::threads_for
pub(super) fn map_cores<T: Send, R: Send>(
    items: Vec<T>,
    size: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    crate::parallel::map_parallel(items, crate::parallel::threads_for(size), work)
}

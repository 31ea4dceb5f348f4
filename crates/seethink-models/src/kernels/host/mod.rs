//! The host kernels of burn's ndarray backend (`NdArray<f32>`, with and without autodiff), and
//! what they share: the ndarray tensor types, row-major reads, a vectorising `exp` and the
//! spreading of work over the cores.

mod attention;
mod logprobs;
mod matmul;
mod rotary;
mod swiglu;

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{activation, Bool, DType, Int, Tensor, TensorMetadata};

use super::{decomposed_attention, decomposed_token_logprobs, Kernels};
use crate::kernels::cached_kv::CachedKv;

type Cpu = NdArray<f32>;
/// `Autodiff`'s tensor: the ndarray tensor and its node in the graph (whatever the checkpointing).
type Tracked = FloatTensor<Autodiff<Cpu>>;

/// The fused host kernels, each with its hand-written backward pass under autodiff, for f32
/// tensors ([`f32s`]).
impl Kernels for Cpu {
    fn matmul(a: Tensor<Self, 2>, b: Tensor<Self, 2>) -> Tensor<Self, 2> {
        match f32s(&[a.dtype(), b.dtype()]) {
            true => matmul::plain(a, b),
            false => a.matmul(b),
        }
    }

    fn attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        blocked: Option<&Tensor<Self, 4, Bool>>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        match f32s(&[q.dtype(), k.dtype(), v.dtype()]) {
            true => attention::plain(q, k, v, blocked, scale),
            false => decomposed_attention(q, k, v, blocked, scale),
        }
    }

    fn rotary(
        x: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 1>>,
        cos: Tensor<Self, 3>,
        sin: Tensor<Self, 3>,
    ) -> Tensor<Self, 4> {
        rotary::plain(x, bias, cos, sin)
    }

    fn swiglu<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        match f32s(&[gate.dtype(), up.dtype()]) {
            true => swiglu::plain(gate, up),
            false => activation::silu(gate) * up,
        }
    }

    fn token_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
    ) -> (Tensor<Self, 1>, Tensor<Self, 1>) {
        match f32s(&[logits.dtype()]) {
            true => logprobs::plain(logits, targets),
            false => decomposed_token_logprobs(logits, targets),
        }
    }

    fn batch_threads() -> usize {
        crate::parallel::cores()
    }

    /// Prompts shared by their samples (the trait's default layout) read where they are: no
    /// copy of a prompt per sample, no room reserved for the longest response, and rows that
    /// stop leave the batch with a copy of their own positions only.
    fn cached_attention(
        q: Tensor<Self, 4>,
        kv: CachedKv<Self>,
        blocked: &Tensor<Self, 4, Bool>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        attention::cached(q, kv, blocked, scale)
    }

    /// On the host: the logits are already here ([`crate::sampling::pick_on_host`]).
    fn pick_tokens(
        logits: Tensor<Self, 2>,
        rngs: &mut [rand_chacha::ChaCha8Rng],
        input_only: &[u32],
        sampling: &crate::sampling::SamplingConfig,
    ) -> crate::error::Result<Vec<(u32, f32)>> {
        crate::sampling::pick_on_host(logits, rngs, input_only, sampling)
    }

    fn tracked_matmul<C: CheckpointStrategy>(
        a: Tensor<Autodiff<Self, C>, 2>,
        b: Tensor<Autodiff<Self, C>, 2>,
    ) -> Tensor<Autodiff<Self, C>, 2> {
        match f32s(&[a.dtype(), b.dtype()]) {
            true => matmul::tracked(a, b),
            false => a.matmul(b),
        }
    }

    fn tracked_attention<C: CheckpointStrategy>(
        q: Tensor<Autodiff<Self, C>, 4>,
        k: Tensor<Autodiff<Self, C>, 4>,
        v: Tensor<Autodiff<Self, C>, 4>,
        blocked: Option<&Tensor<Autodiff<Self, C>, 4, Bool>>,
        scale: f64,
    ) -> Tensor<Autodiff<Self, C>, 4> {
        match f32s(&[q.dtype(), k.dtype(), v.dtype()]) {
            true => attention::tracked(q, k, v, blocked, scale),
            false => decomposed_attention(q, k, v, blocked, scale),
        }
    }

    fn tracked_swiglu<C: CheckpointStrategy, const D: usize>(
        gate: Tensor<Autodiff<Self, C>, D>,
        up: Tensor<Autodiff<Self, C>, D>,
    ) -> Tensor<Autodiff<Self, C>, D> {
        match f32s(&[gate.dtype(), up.dtype()]) {
            true => swiglu::tracked(gate, up),
            false => activation::silu(gate) * up,
        }
    }

    fn tracked_token_logprobs<C: CheckpointStrategy>(
        logits: Tensor<Autodiff<Self, C>, 2>,
        targets: Tensor<Autodiff<Self, C>, 1, Int>,
    ) -> (Tensor<Autodiff<Self, C>, 1>, Tensor<Autodiff<Self, C>, 1>) {
        match f32s(&[logits.dtype()]) {
            true => logprobs::tracked(logits, targets),
            false => decomposed_token_logprobs(logits, targets),
        }
    }
}

/// Whether tensors of these element types can take the host kernels: f32 ones can. Others take
/// burn's ops (the trait's defaults): burn 0.21 keeps one default float type per device *type*,
/// and `NdArray<f32>` and `NdArray<f64>` share theirs, so in a process that used `NdArray<f64>`
/// first, `NdArray<f32>` creates f64 tensors.
pub fn f32s(dtypes: &[DType]) -> bool {
    dtypes.iter().all(|&dtype| dtype == DType::F32)
}

/// The elements of an ndarray f32 tensor in row-major order (one copy, whatever its strides).
fn host_f32(tensor: &NdArrayTensor) -> Vec<f32> {
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
fn exp(x: f32) -> f32 {
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
fn sum(x: &[f32]) -> f32 {
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

/// `work` on the elements of an ndarray f32 tensor in row-major order ([`row_major_f32`]).
pub fn with_f32<R>(tensor: &NdArrayTensor, work: impl FnOnce(&[f32]) -> R) -> R {
    work(&row_major_f32(tensor))
}

/// The elements of an ndarray f32 tensor in row-major order: borrowed when it is stored that
/// way, else a copy.
fn row_major_f32(tensor: &NdArrayTensor) -> Cow<'_, [f32]> {
    match tensor {
        NdArrayTensor::F32(storage) => match storage.view().to_slice() {
            Some(values) => Cow::Borrowed(values),
            None => Cow::Owned(host_f32(tensor)),
        },
        other => unreachable!("the host kernels get f32 tensors, not {:?}", other.dtype()),
    }
}

/// `σ(x) = 1 / (1 + e^{−x})` with the vectorising [`exp`] (its argument kept ≤ 88).
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp((-x).min(88.0)))
}

/// `work` on every item, spread over the cores this thread may use when `size` (the work's
/// elements or multiply-adds in all) pays for the threads ([`threads_for`]); results in item
/// order.
///
/// [`threads_for`]: crate::parallel::threads_for
pub fn map_cores<T: Send, R: Send>(items: Vec<T>, size: usize, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    crate::parallel::map_parallel(items, crate::parallel::threads_for(size), work)
}

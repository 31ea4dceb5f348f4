//! The compute kernels a backend may replace, in burn's backend-extension pattern: [`Kernels`]
//! is a trait on the backend whose default methods are burn tensor operations, so any backend
//! runs the models with an empty impl, and a backend with faster kernels overrides them. Which
//! code runs is a property of the backend's type, chosen at compile time:
//! - `NdArray<f32>`: the fused host kernels of [`host`] (matrix products, attention, SwiGLU,
//!   token log-probs), and under autodiff their hand-written backward passes;
//! - `NdArray<f64>` (the generic path's test backend), wgpu and cuda: the defaults;
//! - `Autodiff<B, C>`: `B`'s `tracked_*` methods, so that the inner backend chooses its
//!   kernels with their backward passes too (defaults: burn's ops, differentiated by burn).
//!
//! Another backend (e.g. wgpu with f16 elements) runs the models after `impl Kernels for
//! MyBackend {}`.

#[cfg(feature = "ndarray")]
pub mod host;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{activation, Bool, Int, Tensor};

use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::generate::SamplingConfig;
use crate::nn::{
    decomposed_attention, decomposed_token_logprobs, recomputed_attention, tracked_frozen_matmul,
    tracked_gelu,
};

/// A backend's kernels; see the module documentation. Each default is the formula in burn ops.
pub trait Kernels: Backend {
    /// `C = A·B` for `A [m, k]` and `B [k, n]`.
    fn matmul(a: Tensor<Self, 2>, b: Tensor<Self, 2>) -> Tensor<Self, 2> {
        a.matmul(b)
    }

    /// `y = x·cast(W)` for a frozen weight `W` stored in a narrower float type than `x`
    /// ([`crate::nn::frozen`]), computed in `x`'s type.
    fn frozen_matmul(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let dtype = x.dtype();
        Self::matmul(x, w.cast(dtype))
    }

    /// `softmax(q·kᵀ·scale, blocked → −∞) · v` with grouped-query attention (shapes at
    /// [`crate::nn::attention`]).
    fn attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        blocked: Option<&Tensor<Self, 4, Bool>>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        decomposed_attention(q, k, v, blocked, scale)
    }

    /// `gelu(x) = x·Φ(x)`, the exact (erf) GELU.
    fn gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        activation::gelu(x)
    }

    /// `silu(gate) ⊙ up = gate·σ(gate)·up`.
    fn swiglu<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        activation::silu(gate) * up
    }

    /// Per row of `logits [N, V]`: `(log p(target), H)` with `p = softmax(logits)` and the
    /// entropy `H = −Σ_v p_v log p_v` (not differentiated).
    fn token_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
    ) -> (Tensor<Self, 1>, Tensor<Self, 1>) {
        decomposed_token_logprobs(logits, targets)
    }

    /// The next token of every row of `logits [rows, V]` (row r draws with `rngs[r]`) and its
    /// log-prob at the sampling temperature, as [`crate::generate::generate`] samples:
    /// on the device, only the chosen ids and log-probs read back
    /// ([`crate::device_sampling::pick_on_device`]).
    fn pick_tokens(
        logits: Tensor<Self, 2>,
        rngs: &mut [ChaCha8Rng],
        input_only: &[u32],
        sampling: &SamplingConfig,
    ) -> Result<Vec<(u32, f32)>> {
        crate::device_sampling::pick_on_device(logits, rngs, input_only, sampling)
    }

    /// How many pieces of a batch to compute at once: 1 (a GPU takes the pieces one after the
    /// other anyway, and pieces in flight together would multiply activation memory); the
    /// host's cores for a backend that computes on them.
    fn batch_threads() -> usize {
        1
    }

    /// [`Kernels::matmul`] under autodiff.
    fn tracked_matmul<C: CheckpointStrategy>(
        a: Tensor<Autodiff<Self, C>, 2>,
        b: Tensor<Autodiff<Self, C>, 2>,
    ) -> Tensor<Autodiff<Self, C>, 2> {
        a.matmul(b)
    }

    /// [`Kernels::frozen_matmul`] under autodiff: keeps `W` as stored for the backward pass
    /// ([`tracked_frozen_matmul`]).
    fn tracked_frozen_matmul<C: CheckpointStrategy>(
        x: Tensor<Autodiff<Self, C>, 2>,
        w: Tensor<Autodiff<Self, C>, 2>,
    ) -> Tensor<Autodiff<Self, C>, 2> {
        tracked_frozen_matmul(x, w)
    }

    /// [`Kernels::attention`] under autodiff: keeps no scores, recomputes them in backward
    /// ([`recomputed_attention`]).
    fn tracked_attention<C: CheckpointStrategy>(
        q: Tensor<Autodiff<Self, C>, 4>,
        k: Tensor<Autodiff<Self, C>, 4>,
        v: Tensor<Autodiff<Self, C>, 4>,
        blocked: Option<&Tensor<Autodiff<Self, C>, 4, Bool>>,
        scale: f64,
    ) -> Tensor<Autodiff<Self, C>, 4> {
        recomputed_attention(q, k, v, blocked, scale)
    }

    /// [`Kernels::gelu`] under autodiff, differentiated exactly ([`tracked_gelu`]; burn's own
    /// backward differentiates the tanh approximation).
    fn tracked_gelu<C: CheckpointStrategy, const D: usize>(
        x: Tensor<Autodiff<Self, C>, D>,
    ) -> Tensor<Autodiff<Self, C>, D> {
        tracked_gelu(x)
    }

    /// [`Kernels::swiglu`] under autodiff.
    fn tracked_swiglu<C: CheckpointStrategy, const D: usize>(
        gate: Tensor<Autodiff<Self, C>, D>,
        up: Tensor<Autodiff<Self, C>, D>,
    ) -> Tensor<Autodiff<Self, C>, D> {
        activation::silu(gate) * up
    }

    /// [`Kernels::token_logprobs`] under autodiff.
    #[allow(clippy::type_complexity)]
    fn tracked_token_logprobs<C: CheckpointStrategy>(
        logits: Tensor<Autodiff<Self, C>, 2>,
        targets: Tensor<Autodiff<Self, C>, 1, Int>,
    ) -> (Tensor<Autodiff<Self, C>, 1>, Tensor<Autodiff<Self, C>, 1>) {
        decomposed_token_logprobs(logits, targets)
    }
}

/// Autodiff's kernels are its inner backend's `tracked_*` ones.
impl<B: Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    fn matmul(a: Tensor<Self, 2>, b: Tensor<Self, 2>) -> Tensor<Self, 2> {
        B::tracked_matmul(a, b)
    }

    fn frozen_matmul(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        B::tracked_frozen_matmul(x, w)
    }

    fn attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        blocked: Option<&Tensor<Self, 4, Bool>>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        B::tracked_attention(q, k, v, blocked, scale)
    }

    fn gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        B::tracked_gelu(x)
    }

    fn swiglu<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        B::tracked_swiglu(gate, up)
    }

    fn token_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
    ) -> (Tensor<Self, 1>, Tensor<Self, 1>) {
        B::tracked_token_logprobs(logits, targets)
    }

    fn batch_threads() -> usize {
        B::batch_threads()
    }
}

/// burn's ops in f64: the reference the host kernels are tested against, and the generic path
/// of the whole-model tests.
#[cfg(feature = "ndarray")]
impl Kernels for burn::backend::NdArray<f64> {}

#[cfg(feature = "wgpu")]
impl Kernels for burn::backend::Wgpu {}

#[cfg(feature = "cuda")]
impl Kernels for burn::backend::Cuda {}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::{Autodiff, NdArray};

    use super::Kernels;
    use crate::parallel::cores;

    #[test]
    fn only_the_host_backend_spreads_a_batch_over_the_cores() {
        assert_eq!(<NdArray<f32> as Kernels>::batch_threads(), cores());
        assert_eq!(<Autodiff<NdArray<f32>> as Kernels>::batch_threads(), cores());
        assert_eq!(<NdArray<f64> as Kernels>::batch_threads(), 1);
        assert_eq!(<Autodiff<NdArray<f64>> as Kernels>::batch_threads(), 1);
    }
}

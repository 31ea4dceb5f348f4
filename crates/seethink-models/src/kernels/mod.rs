//! The compute kernels a backend may replace, in burn's backend-extension pattern: [`Kernels`]
//! is a trait on the backend whose default methods are burn tensor operations, so any backend
//! runs the models with an empty impl, and a backend with faster kernels overrides them. Which
//! code runs is a property of the backend's type, chosen at compile time:
//! - `NdArray<f32>`: the fused host kernels of [`host`] (matrix products, attention, SwiGLU,
//!   token log-probs), and under autodiff their hand-written backward passes;
//! - wgpu and cuda (burn's `CubeBackend`): the fused cubecl kernels of `cube` for the decoding
//!   step (RMSNorm with the residual add, the rotary embedding with a projection's bias,
//!   SwiGLU, attention for a few queries over the KV cache in place, the sampling rule), the
//!   defaults otherwise, and all defaults with burn's `fusion`;
//! - `NdArray<f64>` (the generic path's test backend): the defaults;
//! - `Autodiff<B, C>`: `B`'s `tracked_*` methods, so that the inner backend chooses its
//!   kernels with their backward passes too (defaults: burn's ops, differentiated by burn).
//!
//! Another backend runs the models after `impl Kernels for MyBackend {}`.
//!
//! The defaults longer than a line live here too, below the layers (`nn`) that call the
//! kernels: [`decomposed_attention`], [`recomputed_attention`],
//! [`decomposed_token_logprobs`], [`tracked_gelu`] and [`tracked_frozen_matmul`].

mod attention;
pub mod cached_kv;
#[cfg(all(any(feature = "wgpu", feature = "cuda"), not(feature = "fusion")))]
mod cube;
mod gelu;
#[cfg(feature = "ndarray")]
pub mod host;
mod logprobs;
mod recomputed_attention;
mod rotary;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{activation, Bool, IndexingUpdateOp, Int, Tensor, TensorPrimitive};

use rand_chacha::ChaCha8Rng;

pub use attention::{causal_blocked, decomposed_attention};
pub use gelu::tracked_gelu;
pub use logprobs::decomposed_token_logprobs;
pub use recomputed_attention::recomputed_attention;
pub use rotary::decomposed_rotary;

/// Rows of `A` up to which the host's matrix products in attention compute row by row: the
/// query heads a key/value head serves, one position each, while decoding. Their products read
/// a shared prompt's keys and values where they are ([`Kernels::cached_attention`]); more rows
/// go through a blocked product, which takes them in one buffer, gathered.
pub const HOST_ROW_BY_ROW: usize = 8;

use crate::device_sampling::pick_on_device;
use crate::error::Result;
use crate::sampling::SamplingConfig;
use cached_kv::CachedKv;

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

    /// RMSNorm over the last dimension: `y = w ⊙ cast(x / sqrt(mean(x²) + eps))`, the
    /// normalisation computed in the backend's float type and cast back to `x`'s type before
    /// the scale, as transformers' Qwen RMSNorm upcasts to f32.
    fn rms_norm<const D: usize>(x: Tensor<Self, D>, weight: Tensor<Self, 1>, eps: f64) -> Tensor<Self, D> {
        let dtype = x.dtype();
        let x = x.cast(<Self::FloatElem as burn::tensor::Element>::dtype());
        let mean_square = x.clone().powi_scalar(2).mean_dim(D - 1);
        let normalized = (x * (mean_square + eps).sqrt().recip()).cast(dtype);
        normalized * weight.unsqueeze()
    }

    /// The residual add and the norm after it: `h = x + delta` and [`Kernels::rms_norm`]`(h)`.
    fn add_rms_norm<const D: usize>(
        x: Tensor<Self, D>,
        delta: Tensor<Self, D>,
        weight: Tensor<Self, 1>,
        eps: f64,
    ) -> (Tensor<Self, D>, Tensor<Self, D>) {
        let h = x + delta;
        (h.clone(), Self::rms_norm(h, weight, eps))
    }

    /// The rotary position embedding of `x [B, H, S, D]` (plus a projection's `bias [H·D]`, if
    /// given) with the tables `cos, sin [B or 1, S, D]`: `y = x·cos + rotate_half(x)·sin`,
    /// `rotate_half(x) = [−x₂, x₁]` for the halves of `D`.
    fn rotary(
        x: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 1>>,
        cos: Tensor<Self, 3>,
        sin: Tensor<Self, 3>,
    ) -> Tensor<Self, 4> {
        decomposed_rotary(x, bias, cos, sin)
    }

    /// Whether [`Kernels::rotary`] adds the projections' biases in its own kernel, so that the
    /// attention leaves them to it ([`crate::nn::Linear::forward_deferring_bias`]): no by
    /// default, where the bias is added with its product (and under autodiff its gradient
    /// sums over the product's rows, as it always has).
    fn rotary_adds_bias() -> bool {
        false
    }

    /// [`Kernels::attention`] of `q` over a layer's cached keys and values: by default on
    /// their gathered copy ([`CachedKv::gathered`]); a kernel may read shared prefixes in place.
    fn cached_attention(
        q: Tensor<Self, 4>,
        kv: CachedKv<Self>,
        blocked: &Tensor<Self, 4, Bool>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        let (k, v) = kv.gathered();
        <Self as Kernels>::attention(q, k, v, Some(blocked), scale)
    }

    /// `buffer [held, H, capacity, D]` with `values [rows, H, new, D]` written at positions
    /// `at … at + new`: row r into the buffer's row `rows[r]` (without `rows`, row r of all
    /// `held`), in place where the buffer is held once. By default the rows are spread onto
    /// `−0` (`−0 + x = x` for every `x`, so adding writes exactly) and assigned as a slice; the
    /// other rows' positions there hold `−0`.
    fn write_positions(
        buffer: Tensor<Self, 4>,
        rows: Option<Tensor<Self, 1, Int>>,
        values: Tensor<Self, 4>,
        at: usize,
    ) -> Tensor<Self, 4> {
        let values = match rows {
            Some(rows) => {
                let [held, heads, _, dim] = buffer.dims();
                Tensor::<Self, 4>::full([held, heads, values.dims()[2], dim], -0.0, &values.device())
                    .cast(values.dtype())
                    .select_assign(0, rows, values, IndexingUpdateOp::Add)
            }
            None => values,
        };
        written_at(buffer, values, at)
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
    /// ([`pick_on_device`]).
    fn pick_tokens(
        logits: Tensor<Self, 2>,
        rngs: &mut [ChaCha8Rng],
        input_only: &[u32],
        sampling: &SamplingConfig,
    ) -> Result<Vec<(u32, f32)>> {
        pick_on_device(logits, rngs, input_only, sampling)
    }

    /// How many pieces of a batch to compute at once: 1 (a GPU takes the pieces one after the
    /// other anyway, and pieces in flight together would multiply activation memory); the
    /// host's cores for a backend that computes on them.
    fn batch_threads() -> usize {
        1
    }

    /// Whether generation keeps a prompt's KV cache once for the samples that continue it and
    /// grows each sample's own positions in blocks ([`crate::decode::KvCache::sharing_prefixes`]),
    /// rather than giving every sample the prompt and room for its longest response: yes where
    /// memory is what bounds the rows decoded at once (a GPU). Each layer then gathers the
    /// prefixes for its attention call, a copy of that layer's keys and values per step, which
    /// the host does not pay.
    fn shares_prompt_cache() -> bool {
        true
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

    fn shares_prompt_cache() -> bool {
        B::shares_prompt_cache()
    }
}

/// `y = x·cast(W)` under autodiff for a frozen `W` (it takes no gradient), differentiated by
/// [`FrozenMatmulBackward`]: the backward pass keeps `W` as stored, shared with the parameter,
/// instead of the cast copy burn's differentiated product would keep until then.
pub fn tracked_frozen_matmul<B: Kernels, C: CheckpointStrategy>(
    x: Tensor<Autodiff<B, C>, 2>,
    w: Tensor<Autodiff<B, C>, 2>,
) -> Tensor<Autodiff<B, C>, 2> {
    let x = x.into_primitive().tensor();
    let (node, x) = (x.node, Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(x.primitive)));
    let w = w.inner();
    let y = B::matmul(x.clone(), w.clone().cast(x.dtype())).into_primitive().tensor();
    let output = match FrozenMatmulBackward.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(w, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The backward pass of [`tracked_frozen_matmul`]; its state is `W` as stored.
#[derive(Debug)]
struct FrozenMatmulBackward;

impl<B: Kernels> Backward<B, 1> for FrozenMatmulBackward {
    type State = Tensor<B, 2>;

    /// `∂x = ∂y·cast(W)ᵀ`, with `W` cast for the product only.
    fn backward(self, ops: Ops<Tensor<B, 2>, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let w = ops.state.cast(dy.dtype());
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            grads.register::<B>(parent.id, B::matmul(dy, w.transpose()).into_primitive().tensor());
        }
    }
}

/// `buffer [rows, H, capacity, D]` with `values [rows, H, new, D]` assigned at positions
/// `at … at + new` (burn's `slice_assign`: in place where the buffer is held once).
pub(crate) fn written_at<B: Backend>(buffer: Tensor<B, 4>, values: Tensor<B, 4>, at: usize) -> Tensor<B, 4> {
    let [rows, heads, new, dim] = values.dims();
    buffer.slice_assign([0..rows, 0..heads, at..at + new, 0..dim], values)
}

/// burn's ops in f64: the reference the host kernels are tested against, and the generic path
/// of the whole-model tests.
#[cfg(feature = "ndarray")]
impl Kernels for burn::backend::NdArray<f64> {}

/// With burn's `fusion`, wgpu and cuda take the defaults ([`cube`]'s kernels take cube
/// tensors, not fusion's).
#[cfg(all(feature = "wgpu", feature = "fusion"))]
impl Kernels for burn::backend::Wgpu {}

#[cfg(all(feature = "cuda", feature = "fusion"))]
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

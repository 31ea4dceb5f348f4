//! Fused cubecl kernels for burn's GPU backends (wgpu, cuda), the decoding step's hot path:
//! RMSNorm ([`norm`]), the rotary embedding ([`rotary`]), SwiGLU ([`swiglu`]), attention for
//! a few queries per sequence ([`decode_attention`]) and the KV cache's write to rows picked by
//! an index ([`positions`]), each one launch where burn's ops take
//! 3–12. A decoding step is bound by its launches, not its bytes (docs/benchmarks.md). Each
//! kernel computes its default's formula ([`Kernels`]); the reductions add in another order, so
//! the results agree within rounding, not bitwise (`tests/cube_kernels.rs` on wgpu). Under
//! autodiff the defaults run, differentiated by burn, and so does every backend built with
//! burn's `fusion` (a fusion tensor is not a cube tensor).

mod decode_attention;
mod norm;
mod positions;
mod rotary;
mod sampling;
mod swiglu;

use burn::tensor::{Bool, DType, Int, Tensor, TensorData, TensorPrimitive};
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use decode_attention::{decode_attention, decodes, SharedPrefix};

use super::Kernels;
use crate::device_sampling::pick_on_device;
use crate::error::Result;
use crate::kernels::cached_kv::CachedKv;
use crate::readback::host_f32;
use crate::sampling::SamplingConfig;

/// Units per cube of the row kernels (a power of two, for [`sum_in_cube`]'s halvings).
const UNITS: u32 = 256;

/// Cubes for `rows` rows, one each, laid out in two dimensions so that no dimension passes
/// 65,535 (the smallest limit among the backends).
fn row_cubes<R: CubeRuntime>(_client: &ComputeClient<R>, rows: usize) -> CubeCount {
    let x = rows.clamp(1, 65_535);
    CubeCount::Static(x as u32, rows.div_ceil(x) as u32, 1)
}

/// The row of the cube launched by [`row_cubes`].
#[cube]
fn row_of_cube() -> u32 {
    CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X
}

/// `Σ` of one value per unit over the cube (of [`UNITS`] units), every unit getting the sum: a
/// tree of halvings in shared memory.
#[cube]
fn sum_in_cube(value: f32) -> f32 {
    combine_in_cube(value, false)
}

/// The maximum of one value per unit over the cube, as [`sum_in_cube`] sums.
#[cube]
fn max_in_cube(value: f32) -> f32 {
    combine_in_cube(value, true)
}

/// One value per unit combined over the cube by `+`, or by `max` with `maximum`.
#[cube]
fn combine_in_cube(value: f32, #[comptime] maximum: bool) -> f32 {
    let mut shared = SharedMemory::<f32>::new(256usize);
    let unit = UNIT_POS_X as usize;
    shared[unit] = value;
    sync_cube();
    let mut half = CUBE_DIM_X as usize / 2;
    while half > 0 {
        if unit < half {
            if maximum {
                shared[unit] = max(shared[unit], shared[unit + half]);
            } else {
                shared[unit] += shared[unit + half];
            }
        }
        sync_cube();
        half /= 2;
    }
    let combined = shared[0];
    sync_cube();
    combined
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> Kernels for CubeBackend<R, F, I, BT> {
    fn rms_norm<const D: usize>(x: Tensor<Self, D>, weight: Tensor<Self, 1>, eps: f64) -> Tensor<Self, D> {
        let (_, normed) =
            norm::rms_norm(x.into_primitive().tensor(), None, weight.into_primitive().tensor(), eps);
        float(normed)
    }

    fn add_rms_norm<const D: usize>(
        x: Tensor<Self, D>,
        delta: Tensor<Self, D>,
        weight: Tensor<Self, 1>,
        eps: f64,
    ) -> (Tensor<Self, D>, Tensor<Self, D>) {
        let (x, delta, weight) =
            (x.into_primitive().tensor(), delta.into_primitive().tensor(), weight.into_primitive().tensor());
        let (sum, normed) = norm::rms_norm(x, Some(delta), weight, eps);
        (float(sum.expect("a sum where a delta was added")), float(normed))
    }

    fn rotary(
        x: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 1>>,
        cos: Tensor<Self, 3>,
        sin: Tensor<Self, 3>,
    ) -> Tensor<Self, 4> {
        let bias = bias.map(|b| b.into_primitive().tensor());
        float(rotary::rotary(
            x.into_primitive().tensor(),
            bias,
            cos.into_primitive().tensor(),
            sin.into_primitive().tensor(),
        ))
    }

    fn rotary_adds_bias() -> bool {
        true
    }

    fn swiglu<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        float(swiglu::swiglu(gate.into_primitive().tensor(), up.into_primitive().tensor()))
    }

    fn attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        blocked: Option<&Tensor<Self, 4, Bool>>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        match blocked {
            Some(blocked) if decodes(q.dims()) => float::<R, F, I, BT, 4>(decode_attention(
                q.into_primitive().tensor(),
                None,
                k.into_primitive().tensor(),
                v.into_primitive().tensor(),
                blocked.clone().into_primitive(),
                scale,
            ))
            .swap_dims(1, 2),
            _ => super::decomposed_attention(q, k, v, blocked, scale),
        }
    }

    fn pick_tokens(
        logits: Tensor<Self, 2>,
        rngs: &mut [ChaCha8Rng],
        input_only: &[u32],
        sampling: &SamplingConfig,
    ) -> Result<Vec<(u32, f32)>> {
        let [rows, vocab] = logits.dims();
        if !sampling::picks(sampling.temperature, sampling.top_k, sampling.top_p, vocab) {
            return pick_on_device(logits, rngs, input_only, sampling);
        }
        let device = logits.device();
        let logits = match logits.dtype() {
            DType::BF16 | DType::F16 => logits.cast(DType::F32),
            _ => logits,
        };
        // one uniform per row from its stream, drawn only when sampling, as the default draws
        let uniforms: Vec<f32> = match sampling.temperature == 0.0 {
            true => vec![0.0; rows],
            false => rngs.iter_mut().map(|rng| rng.random::<f64>() as f32).collect(),
        };
        let uniforms =
            Tensor::<Self, 1>::from_data(TensorData::new(uniforms, [rows]), (&device, logits.dtype()));
        let mut banned: Vec<i64> =
            input_only.iter().filter(|&&t| (t as usize) < vocab).map(|&t| i64::from(t)).collect();
        if banned.is_empty() {
            banned.push(vocab as i64);
        }
        let count = banned.len();
        let banned = Tensor::<Self, 1, Int>::from_data(TensorData::new(banned, [count]), &device);
        let chosen = sampling::pick(
            logits.into_primitive().tensor(),
            uniforms.into_primitive().tensor(),
            banned.into_primitive(),
            sampling.temperature,
        );
        let chosen = host_f32(float::<R, F, I, BT, 2>(chosen), "the chosen tokens and their log-probs")?;
        Ok(chosen.chunks_exact(2).map(|pair| (pair[0] as u32, pair[1])).collect())
    }

    fn write_positions(
        buffer: Tensor<Self, 4>,
        rows: Option<Tensor<Self, 1, Int>>,
        values: Tensor<Self, 4>,
        at: usize,
    ) -> Tensor<Self, 4> {
        match rows {
            Some(rows) => float(positions::write_rows(
                buffer.into_primitive().tensor(),
                rows.into_primitive(),
                values.into_primitive().tensor(),
                at,
            )),
            None => super::written_at(buffer, values, at),
        }
    }

    fn cached_attention(
        q: Tensor<Self, 4>,
        kv: CachedKv<Self>,
        blocked: &Tensor<Self, 4, Bool>,
        scale: f64,
    ) -> Tensor<Self, 4> {
        if !decodes(q.dims()) {
            let (k, v) = kv.gathered();
            return <Self as Kernels>::attention(q, k, v, Some(blocked), scale);
        }
        let (prefix, k, v) = match kv {
            CachedKv::Whole { k, v, .. } => (None, k, v),
            CachedKv::Shared { prefix_k, prefix_v, rows, own_k, own_v, own_rows, .. } => {
                let prefix = SharedPrefix {
                    k: prefix_k.into_primitive().tensor(),
                    v: prefix_v.into_primitive().tensor(),
                    rows: rows.into_primitive(),
                    own_rows: own_rows.map(Tensor::into_primitive),
                };
                (Some(prefix), own_k, own_v)
            }
        };
        let (k, v) = (k.into_primitive().tensor(), v.into_primitive().tensor());
        let out = decode_attention(
            q.into_primitive().tensor(),
            prefix,
            k,
            v,
            blocked.clone().into_primitive(),
            scale,
        );
        float::<R, F, I, BT, 4>(out).swap_dims(1, 2)
    }
}

fn float<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: burn_cubecl::tensor::CubeTensor<R>,
) -> Tensor<CubeBackend<R, F, I, BT>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

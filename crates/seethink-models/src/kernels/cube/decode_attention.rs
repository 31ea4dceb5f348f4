//! Attention for a few queries per sequence (decoding) in one launch: a cube per query row
//! reads the keys and values in place, grouped-query heads included, with no score tensor.

use burn::tensor::Shape;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::{max_in_cube, row_cubes, row_of_cube, sum_in_cube, UNITS};

/// `o = softmax(scale·q·kᵀ, blocked → −∞)·v` for one query row `(b, h, s)` of `q [B, Hq, Sq, D]`
/// per cube. The keys and values are read in place: with `shared`, row `b`'s first `P` are
/// `prefix_*[rows[b]]` (`[prompts, Hkv, P, D]`) and the rest its own, `own_*[own_rows[b]]`
/// with `indexed` and `own_*[b]` without (`[held, Hkv, S, D]`); otherwise all are its own. Query head `h` reads key head `h / (Hq/Hkv)`, and `blocked
/// [B or 1, 1, Sq or 1, P + S]` masks; every tensor is read through its strides. The keys are
/// taken 1,024 at a time (the shared scores) with the running maximum `m` and sum `l` of the online
/// softmax: `m' = max(m, maxⱼ sⱼ)`, `l' = l·e^{m−m'} + Σⱼ e^{sⱼ−m'}`,
/// `oᵈ' = oᵈ·e^{m−m'} + Σⱼ e^{sⱼ−m'}·vⱼᵈ`, and `o = oᵈ / l` at the end. Unit `u` scores keys
/// `u, u + units, …` of a pass and accumulates output dimension `u` (`D ≤ units`). Scores and
/// sums are f32 whatever the elements' types; a blocked key scores −3·10³⁸. A row whose every key is blocked averages the
/// values (burn's softmax gives NaN there; decoding never asks for one). The output is laid
/// out `[B, Sq, Hq, D]`, the order the output projection reads the heads in.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn decode_attention_kernel<F: Float, K: Float, M: Numeric, I: Numeric>(
    q: &Tensor<F>,
    prefix_k: &Tensor<K>,
    prefix_v: &Tensor<K>,
    rows: &Tensor<I>,
    own_rows: &Tensor<I>,
    own_k: &Tensor<K>,
    own_v: &Tensor<K>,
    blocked: &Tensor<M>,
    output: &mut Tensor<F>,
    scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] with_prefix: bool,
    #[comptime] indexed: bool,
    #[define(F, K, M, I)] _dtypes: [StorageType; 4],
) {
    let (heads, queries) = (q.shape(1), q.shape(2));
    let query_rows = q.shape(0) * heads * queries;
    let row = row_of_cube() as usize;
    if row >= query_rows {
        terminate!();
    }
    let unit = UNIT_POS_X as usize;
    let s = row % queries;
    let h = row / queries % heads;
    let b = row / (queries * heads);
    let kv_head = h / (heads / own_k.shape(1));
    let mut prefix_len = 0usize.runtime();
    let mut prefix_row = 0usize.runtime();
    if with_prefix {
        prefix_len = prefix_k.shape(2);
        prefix_row = u32::cast_from(rows[b]) as usize;
    }
    let keys = prefix_len + own_k.shape(2);
    let pk_base = prefix_row * prefix_k.stride(0) + kv_head * prefix_k.stride(1);
    let pv_base = prefix_row * prefix_v.stride(0) + kv_head * prefix_v.stride(1);
    let mut own_row = b;
    if indexed {
        own_row = u32::cast_from(own_rows[b]) as usize;
    }
    let ok_base = own_row * own_k.stride(0) + kv_head * own_k.stride(1);
    let ov_base = own_row * own_v.stride(0) + kv_head * own_v.stride(1);
    // a mask of one row for all serves every row (`b < B` and `s < Sq` otherwise)
    let mask_base = b % blocked.shape(0) * blocked.stride(0) + s % blocked.shape(2) * blocked.stride(2);

    let mut query = SharedMemory::<f32>::new(head_dim);
    let mut scores = SharedMemory::<f32>::new(1024usize);
    if unit < head_dim {
        let at = b * q.stride(0) + h * q.stride(1) + s * q.stride(2) + unit * q.stride(3);
        query[unit] = f32::cast_from(q[at]) * scale;
    }
    sync_cube();

    let lowest = 0.0f32.runtime() - 3.0e38f32;
    let mut running_max = lowest;
    let mut running_sum = 0.0f32.runtime();
    let mut out = 0.0f32.runtime();
    let mut start = 0usize.runtime();
    while start < keys {
        let count = min(keys - start, 1024usize.runtime());
        let mut pass_max = lowest;
        let mut j = unit;
        while j < count {
            let key = start + j;
            let open = u32::cast_from(blocked[mask_base + key * blocked.stride(3)]) == 0u32;
            let mut score = 0.0f32.runtime();
            if key < prefix_len {
                let at = pk_base + key * prefix_k.stride(2);
                for d in 0..head_dim {
                    score += query[d] * f32::cast_from(prefix_k[at + d * prefix_k.stride(3)]);
                }
            } else {
                let at = ok_base + (key - prefix_len) * own_k.stride(2);
                for d in 0..head_dim {
                    score += query[d] * f32::cast_from(own_k[at + d * own_k.stride(3)]);
                }
            }
            score = select(open, score, lowest);
            scores[j] = score;
            pass_max = max(pass_max, score);
            j += CUBE_DIM_X as usize;
        }
        let new_max = max(running_max, max_in_cube(pass_max));
        let mut pass_sum = 0.0f32;
        let mut j = unit;
        while j < count {
            let p = (scores[j] - new_max).exp();
            scores[j] = p;
            pass_sum += p;
            j += CUBE_DIM_X as usize;
        }
        let pass_sum = sum_in_cube(pass_sum);
        let factor = (running_max - new_max).exp();
        running_sum = running_sum * factor + pass_sum;
        if unit < head_dim {
            let mut weighted = 0.0f32;
            for j in 0..count {
                let key = start + j;
                let value = if key < prefix_len {
                    f32::cast_from(prefix_v[pv_base + key * prefix_v.stride(2) + unit * prefix_v.stride(3)])
                } else {
                    f32::cast_from(
                        own_v[ov_base + (key - prefix_len) * own_v.stride(2) + unit * own_v.stride(3)],
                    )
                };
                weighted += scores[j] * value;
            }
            out = out * factor + weighted;
        }
        running_max = new_max;
        start += 1024usize;
        sync_cube();
    }
    if unit < head_dim {
        output[((b * queries + s) * heads + h) * head_dim + unit] = F::cast_from(out / running_sum);
    }
}

/// Whether [`decode_attention`] computes `q [B, Hq, Sq, D]`: a few queries per sequence
/// (decoding; a prompt's many queries are the matrix products' work) and `D` within a cube.
pub fn decodes(q_dims: [usize; 4]) -> bool {
    q_dims[2] <= 8 && q_dims[3] <= UNITS as usize
}

/// Prompts' keys and values that decoding rows continue, read in place: row `r` reads
/// `k[rows[r]]` and `v[rows[r]]`, then its own keys and values at row `own_rows[r]` (without
/// `own_rows`, row `r`).
pub struct SharedPrefix<R: CubeRuntime> {
    pub k: CubeTensor<R>,
    pub v: CubeTensor<R>,
    pub rows: CubeTensor<R>,
    pub own_rows: Option<CubeTensor<R>>,
}

/// [`decode_attention_kernel`] for every query row of `q` over `prefix` (if any) and then the
/// rows' own keys `k` and values `v`: `[B, Sq, Hq, D]` (the heads' axis swapped with the
/// queries' against `q`).
pub fn decode_attention<R: CubeRuntime>(
    q: CubeTensor<R>,
    prefix: Option<SharedPrefix<R>>,
    k: CubeTensor<R>,
    v: CubeTensor<R>,
    blocked: CubeTensor<R>,
    scale: f64,
) -> CubeTensor<R> {
    let [batch, heads, queries, head_dim] = q.meta.shape().dims::<4>();
    let output = empty_device_dtype(
        q.client.clone(),
        q.device.clone(),
        Shape::new([batch, queries, heads, head_dim]),
        q.dtype,
    );
    let shared = prefix.is_some();
    // without a prefix the kernel reads none and no row: the rows' own tensors stand in
    let prefix = prefix.unwrap_or_else(|| SharedPrefix {
        k: k.clone(),
        v: v.clone(),
        rows: blocked.clone(),
        own_rows: None,
    });
    let indexed = prefix.own_rows.is_some();
    let own_rows = prefix.own_rows.unwrap_or_else(|| prefix.rows.clone());
    let dtypes = [q.dtype.into(), k.dtype.into(), blocked.dtype.into(), prefix.rows.dtype.into()];
    decode_attention_kernel::launch::<R>(
        &q.client,
        row_cubes(&q.client, batch * heads * queries),
        CubeDim::new_1d(UNITS),
        q.clone().into_tensor_arg(),
        prefix.k.into_tensor_arg(),
        prefix.v.into_tensor_arg(),
        prefix.rows.into_tensor_arg(),
        own_rows.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        blocked.into_tensor_arg(),
        output.clone().into_tensor_arg(),
        scale as f32,
        head_dim,
        shared,
        indexed,
        dtypes,
    );
    output
}

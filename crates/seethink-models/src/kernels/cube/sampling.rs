//! The sampling rule of [`pick_on_device`](crate::device_sampling::pick_on_device) in one
//! launch for greedy decoding and for sampling from the whole softmax (no top-k, no top-p: the
//! paper's rollouts), a cube per row; other settings take the default's launches.

use burn::tensor::Shape;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{tensor::CubeTensor, CubeRuntime};
use cubecl::prelude::*;

use super::{max_in_cube, row_cubes, row_of_cube, sum_in_cube, UNITS};

/// The position of `x` in the order of f32 values, as an unsigned key (`a < b ⇔ key(a) <
/// key(b)` for non-NaN values): the bits of a negative value inverted, a positive one's top
/// bit set.
#[cube]
fn order_key(x: f32) -> u32 {
    let bits = u32::reinterpret(x);
    select(bits >= 0x8000_0000u32, 0xFFFF_FFFFu32 - bits, bits + 0x8000_0000u32)
}

/// The value whose [`order_key`] is `key`.
#[cube]
fn value_of_key(key: u32) -> f32 {
    f32::reinterpret(select(key >= 0x8000_0000u32, key - 0x8000_0000u32, 0xFFFF_FFFFu32 - key))
}

/// Whether token `id` is one of `banned`'s ids (the input-only tokens).
#[cube]
fn is_banned<I: Numeric>(banned: &Tensor<I>, id: usize) -> bool {
    let mut found = false;
    for i in 0..banned.len() {
        found = found || u32::cast_from(banned[i]) as usize == id;
    }
    found
}

/// The next token of row `r` of `logits [rows, V]` and its log-prob, written to
/// `chosen [rows, 2]` as (id, log p), by the rule of
/// [`pick_on_device`](crate::device_sampling::pick_on_device) without top-k and top-p:
/// `x = logits / T`, `log p(t) = x_t − max x − ln Σ_j exp(x_j − max x)` over every token; the
/// `banned` (input-only) ids are no candidates. Greedy: the largest candidate, the lowest id
/// among ties. Sampling: with the candidates in decreasing order of `x` (ties by increasing id)
/// and weights `w_j = exp(x_j − max_cand x)`, the first whose cumulative weight exceeds
/// `u_r · Σ w` (`u_r = uniforms[r]`). Its value `v` is the largest with
/// `H(v) = Σ_{x_j ≥ v} w_j > target`, found by bisection on the values' [`order_key`]s (32
/// halvings, each a sum over the row), from the smallest candidate of positive weight (so that
/// where rounding leaves no token past the target, the last one is taken). With
/// `A = Σ_{x_j > v} w_j`, it is tie number `⌊(target − A) / w_v⌋` (clamped to the ties) by
/// increasing id: each unit counts the ties in its slice of ids, the counts are summed in
/// unit order, and the unit holding the tie finds it.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn pick_kernel<F: Float, I: Numeric>(
    logits: &Tensor<F>,
    uniforms: &Tensor<F>,
    banned: &Tensor<I>,
    chosen: &mut Tensor<F>,
    temperature: f32,
    #[comptime] greedy: bool,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = row_of_cube() as usize;
    if row >= logits.shape(0) {
        terminate!();
    }
    let vocab = logits.shape(1);
    let base = row * vocab;
    let unit = UNIT_POS_X as usize;
    let units = CUBE_DIM_X as usize;
    let lowest = 0.0f32.runtime() - 3.0e38f32;

    // the maxima over every token and over the candidates
    let mut top = lowest;
    let mut top_candidate = lowest;
    let mut j = unit;
    while j < vocab {
        let x = f32::cast_from(logits[base + j]) / temperature;
        top = max(top, x);
        if !is_banned(banned, j) {
            top_candidate = max(top_candidate, x);
        }
        j += units;
    }
    let top = max_in_cube(top);
    let top_candidate = max_in_cube(top_candidate);

    // the normaliser over every token, the candidates' weight, their smallest weighed value,
    // and (greedy) the lowest id of the largest candidate, as −id's maximum
    let mut normaliser = 0.0f32;
    let mut weight = 0.0f32;
    let mut smallest = lowest;
    let mut first = lowest;
    let mut j = unit;
    while j < vocab {
        let x = f32::cast_from(logits[base + j]) / temperature;
        normaliser += (x - top).exp();
        if !is_banned(banned, j) {
            let w = (x - top_candidate).exp();
            weight += w;
            if w > 0.0f32 {
                smallest = max(smallest, 0.0f32 - x);
            }
            if x == top_candidate {
                first = max(first, 0.0f32 - j as f32);
            }
        }
        j += units;
    }
    let log_normaliser = top + sum_in_cube(normaliser).ln();
    let weight = sum_in_cube(weight);
    let smallest = 0.0f32 - max_in_cube(smallest);
    let first = 0.0f32 - max_in_cube(first);

    let mut token = first;
    if !greedy {
        let target = f32::cast_from(uniforms[row]) * weight;
        // the largest key whose tail H exceeds the target: H(lo) > target, the answer ≤ hi
        let mut lo = order_key(smallest);
        let mut hi = 0xFFFF_FFFFu32.runtime();
        while lo < hi {
            let mid = lo + (hi - lo) / 2 + 1;
            let mut tail = 0.0f32;
            let mut j = unit;
            while j < vocab {
                let x = f32::cast_from(logits[base + j]) / temperature;
                if order_key(x) >= mid && !is_banned(banned, j) {
                    tail += (x - top_candidate).exp();
                }
                j += units;
            }
            let tail = sum_in_cube(tail);
            if tail > target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // the weight above the value, and its ties
        let value = value_of_key(lo);
        let mut above = 0.0f32;
        let mut ties = 0.0f32;
        let mut j = unit;
        while j < vocab {
            let x = f32::cast_from(logits[base + j]) / temperature;
            if !is_banned(banned, j) {
                if x > value {
                    above += (x - top_candidate).exp();
                }
                if x == value {
                    ties += 1.0f32;
                }
            }
            j += units;
        }
        let above = sum_in_cube(above);
        let ties = sum_in_cube(ties);
        let nth = clamp(((target - above) / (value - top_candidate).exp()).floor(), 0.0f32, ties - 1.0f32);
        // the ties before each unit's slice of ids, then the slice that holds tie `nth`
        let slice = (vocab + units - 1) / units;
        let start = min(unit * slice, vocab);
        let end = min(start + slice, vocab);
        let mut mine = 0.0f32;
        for j in start..end {
            if f32::cast_from(logits[base + j]) / temperature == value && !is_banned(banned, j) {
                mine += 1.0f32;
            }
        }
        let mut counts = SharedMemory::<f32>::new(256usize);
        let mut found = SharedMemory::<f32>::new(1usize);
        counts[unit] = mine;
        if unit == 0 {
            found[0] = first;
        }
        sync_cube();
        let mut before = 0.0f32;
        for u in 0..unit {
            before += counts[u];
        }
        if before <= nth && nth < before + mine {
            let mut seen = before;
            for j in start..end {
                if f32::cast_from(logits[base + j]) / temperature == value && !is_banned(banned, j) {
                    if seen == nth {
                        found[0] = j as f32;
                    }
                    seen += 1.0f32;
                }
            }
        }
        sync_cube();
        token = found[0];
    }
    if unit == 0 {
        let x = f32::cast_from(logits[base + token as usize]) / temperature;
        chosen[row * 2] = F::cast_from(token);
        chosen[row * 2 + 1] = F::cast_from(x - log_normaliser);
    }
}

/// Whether [`pick`] applies the rule for `sampling` on a vocabulary of `vocab`: greedy, or
/// sampling without top-k and top-p.
pub fn picks(temperature: f32, top_k: usize, top_p: f32, vocab: usize) -> bool {
    temperature == 0.0 || ((top_k == 0 || top_k >= vocab) && top_p >= 1.0)
}

/// [`pick_kernel`] for every row of `logits [rows, V]` (f32 or wider), with `uniforms [rows]`
/// (any values when greedy) and the `banned` ids (at least one; an id ≥ V bans none):
/// `[rows, 2]` of (id, log-prob).
pub fn pick<R: CubeRuntime>(
    logits: CubeTensor<R>,
    uniforms: CubeTensor<R>,
    banned: CubeTensor<R>,
    temperature: f32,
) -> CubeTensor<R> {
    let rows = logits.meta.shape().dims::<2>()[0];
    let chosen =
        empty_device_dtype(logits.client.clone(), logits.device.clone(), Shape::new([rows, 2]), logits.dtype);
    let dtypes = [logits.dtype.into(), banned.dtype.into()];
    let client = logits.client.clone();
    pick_kernel::launch::<R>(
        &client,
        row_cubes(&client, rows),
        CubeDim::new_1d(UNITS),
        logits.into_tensor_arg(),
        uniforms.into_tensor_arg(),
        banned.into_tensor_arg(),
        chosen.clone().into_tensor_arg(),
        if temperature == 0.0 { 1.0 } else { temperature },
        temperature == 0.0,
        dtypes,
    );
    chosen
}

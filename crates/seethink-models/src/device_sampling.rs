//! Choosing the next tokens on the device: only the chosen ids and their log-probs come back
//! to the host (2 numbers per row instead of the `[rows, vocab]` logits, about 194 MB per step
//! at 320 rows × 151,936 in f32). The default of [`Kernels::pick_tokens`](crate::kernels::Kernels::pick_tokens);
//! the host backend picks on its cores ([`crate::sampling::pick_on_host`]).
//!
//! The same rule as the host's [`sample_token`](crate::sampling::sample_token), and the same
//! random numbers (one uniform per row per step from the row's stream, drawn only when
//! sampling): the host sums weights in f64, the device in its float type (at least f32), so a
//! token whose cumulative weight lies within rounding of a cut may differ.
//!
//! **Without sorting.** The host's rule walks the tokens by decreasing logit, ties by
//! increasing id. burn 0.21's GPU backends have no sort on the device (burn-backend's fallback
//! `sort_with_indices` reads the tensor back and sorts it on the host), and cubecl's `cumsum`
//! costs O(V²) per row (each output element sums its whole prefix: burn-cubecl's
//! `cumulative_kernel`), so sorting and accumulating the vocabulary made each decoding step
//! read the logits back, sort them with a generic comparator, upload them twice and run two
//! quadratic scans. Here the place in that order where a running sum crosses a target is found
//! by bisection instead ([`Ranking::first_past`]): each step is one masked sum over the
//! vocabulary. A cut takes 32 steps on the value where they leave one distinct logit in the
//! bracket (as f32 logits almost always do; else 48). The tie it falls on is found in two
//! levels of blocks of about √V ids ([`blocks`]), where cubecl's quadratic `cumsum` costs O(V)
//! per row ([`Ranking::nth_tie`]), or with one minimum where no row's cut falls past the first
//! of tied logits. Each of those two checks reads one number back. Without the checks and the
//! blocks, sampling took about 550 of the 658 kernel launches of a decoding step of the tiny
//! Qwen2.5-VL on wgpu (docs/benchmarks.md).
//!
//! **Every sum, maximum and minimum over a row in two levels** ([`Reduce::rows`]): burn-cubecl
//! gives each output of a reduction one GPU thread unless burn's `autotune` is on, so a row of
//! the vocabulary was one thread's 151,936 steps. On an H200 at Qwen2.5-VL-3B's shape, the
//! sampling rule took 82 ms of a 150-ms decoding step of one sequence that way
//! (docs/benchmarks.md).

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::readback::host_f32;
use crate::sampling::SamplingConfig;

/// Bisection steps on the value of the cut ([`Ranking::first_past`]): they narrow the bracket
/// by 2⁴⁸. Probabilities' support is at most 745 wide (where f64's `exp` underflows; 104 in
/// f32), so the last interval is below 3·10⁻¹² (4·10⁻¹³ in f32) and holds no two distinct f32
/// logits larger than 10⁻⁴ (10⁻⁵) in magnitude.
const VALUE_STEPS: usize = 48;

/// The bisection step on the value after which the bracket is checked, once: where it holds a
/// single distinct value in every row, the remaining steps are skipped. Narrowed 2³²-fold from
/// a width below 105, a bracket is below 2.5·10⁻⁸ wide, so only another logit that close to
/// the cut's (not tied with it) keeps the remaining 16 steps (about 128 kernel launches) going.
const VALUE_STEPS_BEFORE_CHECK: usize = 32;

/// The next token of every row of `logits [rows, V]` (row r draws with `rngs[r]`) and its
/// log-prob at the sampling temperature over the whole vocabulary, on the device:
///
/// - `x = logits / T` (T = 1 when greedy), in at least f32,
///   `log p(t) = x_t − max x − ln Σ_j exp(x_j − max x)` (input-only tokens keep their share of
///   the normaliser);
/// - the input-only tokens are set to −∞ in the candidates;
/// - T = 0: the largest, the lowest id among ties; else, with the candidates in the order of decreasing `x` (ties by
///   increasing id) and weights `w_j = exp(x_j − max x)`: the first `top_k` kept (0: all); of
///   those, the ones through the first whose cumulative weight exceeds `top_p · Σ w` kept
///   (transformers' top-p: the most likely always stays); then the first kept token whose
///   cumulative weight exceeds `u · Σ_kept w`, `u` uniform in [0, 1) (the last kept one if
///   rounding leaves none).
pub fn pick_on_device<B: Backend>(
    logits: Tensor<B, 2>,
    rngs: &mut [ChaCha8Rng],
    input_only: &[u32],
    sampling: &SamplingConfig,
) -> Result<Vec<(u32, f32)>> {
    let [rows, vocab] = logits.dims();
    let device = logits.device();
    let logits = match logits.dtype() {
        DType::BF16 | DType::F16 => logits.cast(DType::F32),
        _ => logits,
    };
    let scaled = match sampling.temperature {
        t if t == 0.0 || t == 1.0 => logits,
        t => logits / t,
    };
    let max = Reduce::Max.rows(scaled.clone());
    let log_normaliser =
        max.clone() + Reduce::Sum.rows((scaled.clone() - max.expand([rows, vocab])).exp()).log();
    let candidates = match input_only.iter().any(|&t| (t as usize) < vocab) {
        true => {
            let mut blocked = vec![false; vocab];
            for &t in input_only.iter().filter(|&&t| (t as usize) < vocab) {
                blocked[t as usize] = true;
            }
            let mask = Tensor::<B, 1, Bool>::from_data(TensorData::new(blocked, [vocab]), &device);
            scaled.clone().mask_fill(mask.reshape([1, vocab]).expand([rows, vocab]), f32::NEG_INFINITY)
        }
        false => scaled.clone(),
    };
    let ranking = Ranking::new(candidates);
    let tokens: Tensor<B, 2, Int> = match sampling.temperature == 0.0 {
        true => ranking.first().int(),
        false => sample(ranking, rngs, sampling)?,
    };
    let log_probs = scaled.gather(1, tokens.clone()) - log_normaliser;
    // the ids (exact as floats below 2²⁴ tokens) and log-probs read back together: one wait
    // for the device, not two
    let chosen = Tensor::cat(vec![tokens.float().cast(log_probs.dtype()), log_probs], 1);
    let chosen = host_f32(chosen, "the chosen tokens and their log-probs")?;
    Ok(chosen.chunks_exact(2).map(|pair| (pair[0] as u32, pair[1])).collect())
}

/// The sampled token of every row of `ranking`, as [`pick_on_device`] describes; `[rows, 1]`
/// token ids.
fn sample<B: Backend>(
    ranking: Ranking<B>,
    rngs: &mut [ChaCha8Rng],
    sampling: &SamplingConfig,
) -> Result<Tensor<B, 2, Int>> {
    let [rows, vocab] = ranking.values.dims();
    let (device, dtype) = (ranking.values.device(), ranking.values.dtype());
    let max = Reduce::Max.rows(ranking.values.clone()).expand([rows, vocab]);
    let weights = (ranking.values.clone() - max).exp();
    let mut kept = ranking.values.clone().is_finite();
    if sampling.top_k > 0 && sampling.top_k < vocab {
        let counts = kept.clone().float().cast(dtype);
        let kth = ranking
            .first_past(counts, Tensor::full([rows, 1], (sampling.top_k - 1) as f64, (&device, dtype)))?;
        kept = ranking.through(&kth);
    }
    if sampling.top_p < 1.0 {
        let kept_weights = weights.clone().mask_fill(kept.clone().bool_not(), 0.0);
        let target = Reduce::Sum.rows(kept_weights.clone()) * sampling.top_p as f64;
        let last = ranking.first_past(kept_weights, target)?;
        kept = kept.bool_and(ranking.through(&last));
    }
    let kept_weights = weights.mask_fill(kept.bool_not(), 0.0);
    let uniforms: Vec<f32> = rngs.iter_mut().map(|rng| rng.random::<f64>() as f32).collect();
    let uniforms = Tensor::<B, 2>::from_data(TensorData::new(uniforms, [rows, 1]), (&device, dtype));
    let target = uniforms * Reduce::Sum.rows(kept_weights.clone());
    Ok(ranking.first_past(kept_weights, target)?.id.int())
}

/// The tokens of every row of `values [rows, V]` in the host's order, decreasing value, ties by
/// increasing id, without sorting them.
struct Ranking<B: Backend> {
    values: Tensor<B, 2>,
    /// Each token's id, as a float (exact below 2²⁴ tokens), `[rows, V]`.
    ids: Tensor<B, 2>,
}

/// One token of every row: its value and id, `[rows, 1]` each.
struct Place<B: Backend> {
    value: Tensor<B, 2>,
    id: Tensor<B, 2>,
}

impl<B: Backend> Ranking<B> {
    fn new(values: Tensor<B, 2>) -> Self {
        let [rows, vocab] = values.dims();
        let (device, dtype) = (values.device(), values.dtype());
        let ids = Tensor::<B, 1, Int>::arange(0..vocab as i64, &device).float().cast(dtype);
        Self { values, ids: ids.reshape([1, vocab]).expand([rows, vocab]) }
    }

    /// Per row, the id of the first token in this order: the lowest id among the largest values.
    fn first(&self) -> Tensor<B, 2> {
        let [rows, vocab] = self.values.dims();
        let max = Reduce::Max.rows(self.values.clone()).expand([rows, vocab]);
        self.lowest_id(self.values.clone().lower(max))
    }

    /// Per row, the lowest id not `excluded` (`[rows, V]`).
    fn lowest_id(&self, excluded: Tensor<B, 2, Bool>) -> Tensor<B, 2> {
        Reduce::Min.rows(self.ids.clone().mask_fill(excluded, f32::INFINITY))
    }

    /// Per row, the first token in this order whose cumulative weight `C_j = Σ_{i ≤ j} w_i`
    /// exceeds `target` (`weights` ≥ 0, `[rows, V]`; `target [rows, 1]`); the last token of
    /// positive weight if none does.
    ///
    /// With `H(θ) = Σ_{x_j ≥ θ} w_j`, the token's value is `v = max {x_j : H(x_j) > target}`,
    /// bracketed by bisection (`H(lo) > target ≥ H(hi)`, from the smallest value of positive
    /// weight and just above the largest) and then read off as the smallest value ≥ lo. Its ties
    /// of positive weight all weigh `w_v`; with `A = Σ_{x_j > v} w_j` before them, it is tie number
    /// `⌊(target − A) / w_v⌋` (clamped to the ties) by increasing id ([`Ranking::nth_tie`]).
    fn first_past(&self, weights: Tensor<B, 2>, target: Tensor<B, 2>) -> Result<Place<B>> {
        let [rows, vocab] = self.values.dims();
        let wide = |t: Tensor<B, 2>| t.expand([rows, vocab]);
        let weightless = weights.clone().lower_equal_elem(0.0);
        let mut lo = Reduce::Min.rows(self.values.clone().mask_fill(weightless.clone(), f32::INFINITY));
        let mut hi = Reduce::Max.rows(self.values.clone()) + 1.0;
        for step in 0..VALUE_STEPS {
            if step == VALUE_STEPS_BEFORE_CHECK && self.single_value_between(&lo, &hi)? {
                break;
            }
            let mid = (lo.clone() + hi.clone()) / 2.0;
            let mass = Reduce::Sum
                .rows(weights.clone().mask_fill(self.values.clone().lower(wide(mid.clone())), 0.0));
            let inside = mass.greater(target.clone());
            lo = lo.mask_where(inside.clone(), mid.clone());
            hi = mid.mask_where(inside, hi);
        }
        let value = Reduce::Min
            .rows(self.values.clone().mask_fill(self.values.clone().lower(wide(lo)), f32::INFINITY));
        let tied = self.values.clone().equal(wide(value.clone())).bool_and(weightless.bool_not());
        let before = Reduce::Sum
            .rows(weights.clone().mask_fill(self.values.clone().lower_equal(wide(value.clone())), 0.0));
        let ties = Reduce::Sum.rows(tied.clone().float().cast(weights.dtype()));
        let tie_weight = Reduce::Sum.rows(weights.mask_fill(tied.clone().bool_not(), 0.0)) / ties.clone();
        let last_tie = ties.clone() - 1.0;
        let nth = ((target - before) / tie_weight.clone()).floor();
        let nth = nth.mask_where(tie_weight.lower_equal_elem(0.0), last_tie.clone());
        let nth = nth.clamp_min(0.0).min_pair(last_tie);
        Ok(Place { value, id: self.nth_tie(tied, nth)? })
    }

    /// Whether, in every row, the values in `[lo, hi)` are all equal (or none lie there), read
    /// back from the device (one number, once the work queued before it has run).
    fn single_value_between(&self, lo: &Tensor<B, 2>, hi: &Tensor<B, 2>) -> Result<bool> {
        let [rows, vocab] = self.values.dims();
        let outside = self
            .values
            .clone()
            .lower(lo.clone().expand([rows, vocab]))
            .bool_or(self.values.clone().greater_equal(hi.clone().expand([rows, vocab])));
        let smallest = Reduce::Min.rows(self.values.clone().mask_fill(outside.clone(), f32::INFINITY));
        let largest = Reduce::Max.rows(self.values.clone().mask_fill(outside, f32::NEG_INFINITY));
        none_positive(largest - smallest, "the bisection's bracket")
    }

    /// Per row, the id of tie number `nth` (`[rows, 1]`, from 0, below the row's number of
    /// ties) of `tied` by increasing id: the smallest `t` with `#{j ≤ t : tied_j} > nth`.
    ///
    /// Where every row wants its first tie (`nth = 0`: no tie at the cut, as almost always with
    /// f32 logits), that is the lowest tied id, one masked minimum. Else in two levels, about 20
    /// kernel launches whatever V: the ids in `n` blocks of `w` ([`blocks`]: both at most about
    /// 4√V, so cubecl's quadratic `cumsum` over the blocks costs O(V); the row padded with
    /// untied ids to `n·w`), with `c_k` the ties in blocks `0..=k`, the tie lies in block
    /// `k* = #{k : c_k ≤ nth}`, after `a = Σ_{k < k*} (ties in block k)` ties, at offset
    /// `#{i : a + r_i ≤ nth}` where `r_i` counts block `k*`'s ties through offset `i`. Counts are
    /// exact in the ids' float type (below 2²⁴). Choosing reads `max nth` back from the device
    /// (one number, once the work queued before it has run).
    fn nth_tie(&self, tied: Tensor<B, 2, Bool>, nth: Tensor<B, 2>) -> Result<Tensor<B, 2>> {
        if none_positive(nth.clone(), "the sampled token's tie number")? {
            return Ok(self.lowest_id(tied.bool_not()));
        }
        let dtype = self.ids.dtype();
        let flags = in_blocks(tied.float().cast(dtype), 0.0);
        let [rows, blocks, width] = flags.dims();
        let per_block = flags.clone().sum_dim(2).reshape([rows, blocks]);
        let through = per_block.clone().cumsum(1);
        let block =
            through.clone().lower_equal(nth.clone().expand([rows, blocks])).float().cast(dtype).sum_dim(1);
        let at = block.clone().int();
        // the ties before block k*: those through it less its own
        let before = (through - per_block).gather(1, at.clone());
        let within = flags
            .gather(1, at.reshape([rows, 1, 1]).expand([rows, 1, width]))
            .reshape([rows, width])
            .cumsum(1);
        let offset = (within + before.expand([rows, width]))
            .lower_equal(nth.expand([rows, width]))
            .float()
            .cast(dtype)
            .sum_dim(1);
        Ok(block * width as f64 + offset)
    }

    /// Whether each token comes no later than `place` in this order: `x_j > v`, or `x_j = v`
    /// and `j ≤` its id.
    fn through(&self, place: &Place<B>) -> Tensor<B, 2, Bool> {
        let [rows, vocab] = self.values.dims();
        let value = place.value.clone().expand([rows, vocab]);
        let earlier_tie = self
            .values
            .clone()
            .equal(value.clone())
            .bool_and(self.ids.clone().lower_equal(place.id.clone().expand([rows, vocab])));
        self.values.clone().greater(value).bool_or(earlier_tie)
    }
}

/// A reduction of each row of a `[rows, V]` tensor.
#[derive(Clone, Copy, Debug)]
enum Reduce {
    Sum,
    Max,
    Min,
}

impl Reduce {
    /// Each row of `t [rows, V]` reduced, `[rows, 1]`, in two levels: the row as `b` blocks of
    /// `w` values ([`blocks`]), each block reduced, then the blocks' results:
    /// `Σ_j t_j = Σ_k Σ_{i<w} t_{k·w+i}` (max and min alike; the sum's rounding is that of this
    /// order). Without burn's `autotune` feature, burn-cubecl reduces a dimension with one GPU
    /// thread per output (`RoutineStrategy::Unit` in `reduce_dim`), so one row of V = 151,936
    /// was 151,936 dependent steps of one thread, several times per sampled token; here no
    /// thread takes more than 1,187 steps at that V (`b` · `w` = 1,187 · 128).
    fn rows<B: Backend>(self, t: Tensor<B, 2>) -> Tensor<B, 2> {
        let blocked = in_blocks(t, self.neutral());
        let [rows, count, _] = blocked.dims();
        self.along(self.along(blocked, 2).reshape([rows, count]), 1)
    }

    /// The value that leaves the reduction unchanged.
    fn neutral(self) -> f32 {
        match self {
            Self::Sum => 0.0,
            Self::Max => f32::NEG_INFINITY,
            Self::Min => f32::INFINITY,
        }
    }

    fn along<B: Backend, const D: usize>(self, t: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
        match self {
            Self::Sum => t.sum_dim(dim),
            Self::Max => t.max_dim(dim),
            Self::Min => t.min_dim(dim),
        }
    }
}

/// `t [rows, V]` as `[rows, b, w]` blocks ([`blocks`]), the rows padded with `pad` to `b·w`
/// where `w` does not divide V.
fn in_blocks<B: Backend>(t: Tensor<B, 2>, pad: f32) -> Tensor<B, 3> {
    let [rows, vocab] = t.dims();
    let (count, width) = blocks(vocab);
    let padded = match count * width - vocab {
        0 => t,
        missing => {
            let (device, dtype) = (t.device(), t.dtype());
            Tensor::cat(vec![t, Tensor::full([rows, missing], pad, (&device, dtype))], 1)
        }
    };
    padded.reshape([rows, count, width])
}

/// How [`Reduce::rows`] and [`in_blocks`] split a row of `vocab` values: `(b, w)` blocks of `w`, the largest
/// divisor of `vocab` up to `⌈√vocab⌉` where it leaves at most `4·⌈√vocab⌉` blocks (no
/// padding), else `⌈vocab / ⌈√vocab⌉⌉` blocks of `⌈√vocab⌉` (the last padded).
fn blocks(vocab: usize) -> (usize, usize) {
    let side = (vocab as f64).sqrt().ceil() as usize;
    let divisor = (1..=side).rev().find(|&w| vocab.is_multiple_of(w)).unwrap_or(1);
    match vocab / divisor <= 4 * side {
        true => (vocab / divisor, divisor),
        false => (vocab.div_ceil(side), side),
    }
}

/// Whether no element of `t` is above 0 (NaN counts as above), read back from the device: one
/// number, once the work queued before it has run.
fn none_positive<B: Backend>(t: Tensor<B, 2>, what: &str) -> Result<bool> {
    Ok(host_f32(t.max(), what)?.iter().all(|&x| x <= 0.0))
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Tensor, TensorData};

    use super::{blocks, Reduce};

    #[test]
    fn rows_split_into_blocks_near_the_square_root_padding_only_where_no_divisor_serves() {
        assert_eq!(blocks(151_936), (1187, 128)); // Qwen2.5-VL, Qwen3-VL
        assert_eq!(blocks(151_674), (1487, 102)); // InternVL3
        assert_eq!(blocks(151_643), (389, 390)); // a prime: padded by 67
        assert_eq!(blocks(307), (18, 18));
        assert_eq!(blocks(40), (8, 5));
    }

    #[test]
    fn two_level_reductions_equal_one_level_ones_with_and_without_padding() {
        for vocab in [307, 300] {
            let rows = 3;
            let values: Vec<f32> =
                (0..rows * vocab).map(|i| ((i * 7919) % 1009) as f32 / 97.0 - 5.0).collect();
            let t = Tensor::<NdArray<f32>, 2>::from_data(
                TensorData::new(values, [rows, vocab]),
                &Default::default(),
            );
            let read = |t: Tensor<NdArray<f32>, 2>| t.into_data().to_vec::<f32>().unwrap();
            assert_eq!(read(Reduce::Max.rows(t.clone())), read(t.clone().max_dim(1)), "V = {vocab}");
            assert_eq!(read(Reduce::Min.rows(t.clone())), read(t.clone().min_dim(1)), "V = {vocab}");
            for (two, one) in read(Reduce::Sum.rows(t.clone())).iter().zip(read(t.sum_dim(1))) {
                assert!((two - one).abs() <= 1e-5 * one.abs().max(1.0), "V = {vocab}: {two} against {one}");
            }
        }
    }
}

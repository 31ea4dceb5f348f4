//! Choosing the next tokens on the device: only the chosen ids and their log-probs come back
//! to the host (2 numbers per row instead of the `[rows, vocab]` logits, about 194 MB per step
//! at 320 rows × 151,936 in f32). The default of [`Kernels::pick_tokens`](crate::kernels::Kernels::pick_tokens);
//! the host backend picks on its cores ([`crate::sampling::pick_on_host`]).
//!
//! The same rule as the host's [`sample_token`](crate::sampling::sample_token), and the same
//! random numbers (one uniform per row per step from the row's stream, drawn only when
//! sampling): the host sums weights in f64, the device in its float type, so a token whose
//! cumulative weight lies within rounding of the uniform may differ, and tied logits may be
//! ordered differently by the device's sort (the same distribution either way).

use burn::tensor::backend::Backend;
use burn::tensor::{activation, Bool, Int, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::readback::host_f32;
use crate::sampling::SamplingConfig;

/// The next token of every row of `logits [rows, V]` (row r draws with `rngs[r]`) and its
/// log-prob at the sampling temperature over the whole vocabulary, on the device:
///
/// - `x = logits / T` (T = 1 when greedy), `log p = log_softmax(x)` (input-only tokens keep
///   their share of the normaliser);
/// - the input-only tokens are set to −∞ in the candidates;
/// - T = 0: `argmax`; else the candidates sorted by decreasing `x`, the first `top_k` kept
///   (0: all), weights `w_j = exp(x_j − x_0)`, token j dropped when the mass before it
///   `Σ_{i<j} w_i / Σ w ≥ top_p` (transformers' top-p: the most likely always stays), and the
///   token at position `#{j : C_j ≤ u · C_last}` with `C` the cumulative kept weights and `u`
///   uniform in [0, 1) (at most the last kept position).
pub fn pick_on_device<B: Backend>(
    logits: Tensor<B, 2>,
    rngs: &mut [ChaCha8Rng],
    input_only: &[u32],
    sampling: &SamplingConfig,
) -> Result<Vec<(u32, f32)>> {
    let [rows, vocab] = logits.dims();
    let device = logits.device();
    let scaled = match sampling.temperature {
        t if t == 0.0 || t == 1.0 => logits,
        t => logits / t,
    };
    let log_probs = activation::log_softmax(scaled.clone(), 1);
    let candidates = match input_only.iter().any(|&t| (t as usize) < vocab) {
        true => {
            let mut blocked = vec![false; vocab];
            for &t in input_only.iter().filter(|&&t| (t as usize) < vocab) {
                blocked[t as usize] = true;
            }
            let mask = Tensor::<B, 1, Bool>::from_data(TensorData::new(blocked, [vocab]), &device);
            scaled.mask_fill(mask.reshape([1, vocab]).expand([rows, vocab]), f32::NEG_INFINITY)
        }
        false => scaled,
    };
    let tokens: Tensor<B, 2, Int> = match sampling.temperature == 0.0 {
        true => candidates.argmax(1),
        false => sample(candidates, rngs, sampling),
    };
    let chosen = host_f32(log_probs.gather(1, tokens.clone()), "the chosen tokens' log-probs")?;
    let ids = tokens.into_data();
    Ok(ids.iter::<i64>().map(|id| id as u32).zip(chosen).collect())
}

/// The sampled position of every row of `candidates [rows, V]` (scaled logits, −∞ where never
/// sampled), as [`pick_on_device`] describes; `[rows, 1]` token ids.
fn sample<B: Backend>(
    candidates: Tensor<B, 2>,
    rngs: &mut [ChaCha8Rng],
    sampling: &SamplingConfig,
) -> Tensor<B, 2, Int> {
    let [rows, vocab] = candidates.dims();
    let (device, dtype) = (candidates.device(), candidates.dtype());
    let k = match sampling.top_k {
        0 => vocab,
        k => k.min(vocab),
    };
    let (sorted, order) = candidates.sort_descending_with_indices(1);
    let (sorted, order) = (sorted.narrow(1, 0, k), order.narrow(1, 0, k));
    let weights = (sorted.clone() - sorted.narrow(1, 0, 1)).exp();
    let weights = match sampling.top_p < 1.0 {
        true => {
            let total = weights.clone().sum_dim(1);
            let before = (weights.clone().cumsum(1) - weights.clone()) / total;
            weights.mask_fill(before.greater_equal_elem(sampling.top_p), 0.0)
        }
        false => weights,
    };
    let last_kept = weights.clone().greater_elem(0.0).int().sum_dim(1).sub_scalar(1).clamp_min(0);
    let cumulative = weights.cumsum(1);
    let kept_total = cumulative.clone().narrow(1, k - 1, 1);
    let uniforms: Vec<f32> = rngs.iter_mut().map(|rng| rng.random::<f64>() as f32).collect();
    let uniforms = Tensor::<B, 2>::from_data(TensorData::new(uniforms, [rows, 1]), (&device, dtype));
    let target = uniforms * kept_total;
    let position = cumulative.lower_equal(target.expand([rows, k])).int().sum_dim(1).min_pair(last_kept);
    order.gather(1, position)
}

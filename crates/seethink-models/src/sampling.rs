//! How each next token is chosen: the settings ([`SamplingConfig`]) and the host's rule
//! ([`sample_token`], on every row of a batch by [`pick_on_host`]); the device's is
//! [`crate::device_sampling`]'s.

use burn::tensor::{backend::Backend, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

/// How each next token is chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    pub max_new_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f32,
    /// Nucleus mass in (0, 1]; 1 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: usize,
    pub seed: u64,
    /// Sequence r of a call samples from ChaCha8 stream `stream + r` of `seed`: each sequence
    /// has its own random numbers, whatever else is in its batch.
    pub stream: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self { max_new_tokens: 256, temperature: 1.0, top_p: 1.0, top_k: 0, seed: 0, stream: 0 }
    }
}

/// The host's [`Kernels::pick_tokens`](crate::kernels::Kernels::pick_tokens): the logits read
/// back, then [`pick_token`] on every row with its own random stream, the rows spread over the
/// cores when the vocabulary makes it worth the threads; the results in row order.
pub fn pick_on_host<B: Backend>(
    logits: Tensor<B, 2>,
    rngs: &mut [ChaCha8Rng],
    input_only: &[u32],
    sampling: &SamplingConfig,
) -> Result<Vec<(u32, f32)>> {
    let [_, vocab] = logits.dims();
    let mut host = crate::readback::host_f32(logits, "the next-token logits")?;
    let threads = crate::parallel::threads_for(host.len());
    Ok(pick_tokens(&mut host, vocab, rngs, input_only, sampling, threads))
}

/// [`pick_token`] on every row of `logits` (`vocab` each) with its own random stream, the rows
/// spread over `threads` threads; the results in row order.
fn pick_tokens(
    logits: &mut [f32],
    vocab: usize,
    rngs: &mut [ChaCha8Rng],
    input_only: &[u32],
    sampling: &SamplingConfig,
    threads: usize,
) -> Vec<(u32, f32)> {
    let rows: Vec<_> = logits.chunks_exact_mut(vocab).zip(rngs.iter_mut()).collect();
    crate::parallel::map_parallel(rows, threads, |(row, rng)| pick_token(row, input_only, sampling, rng))
}

/// The next token of one row of logits ([`sample_token`], the input-only tokens never chosen)
/// and its log-prob at the sampling temperature over the whole vocabulary, the input-only
/// tokens included ([`log_softmax_at`] of `logits / T`, T = 1 when greedy).
fn pick_token(
    row: &mut [f32],
    input_only: &[u32],
    sampling: &SamplingConfig,
    rng: &mut ChaCha8Rng,
) -> (u32, f32) {
    let set_aside: Vec<(usize, f32)> = input_only
        .iter()
        .filter_map(|&t| {
            row.get_mut(t as usize).map(|l| (t as usize, std::mem::replace(l, f32::NEG_INFINITY)))
        })
        .collect();
    let token = sample_token(row, sampling, rng);
    for (t, logit) in set_aside {
        row[t] = logit;
    }
    let logprob = match sampling.temperature {
        // x / 1 = x exactly: no scaled copy
        t if t == 0.0 || t == 1.0 => log_softmax_at(row, token as usize),
        t => log_softmax_at(&row.iter().map(|l| l / t).collect::<Vec<f32>>(), token as usize),
    };
    (token, logprob)
}

/// `log softmax(logits)[token] = logits[token] − max − ln Σ exp(logits − max)`.
pub fn log_softmax_at(logits: &[f32], token: usize) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    logits[token] - max - sum.ln() as f32
}

/// Chooses the next token from one row of logits.
///
/// Temperature 0: argmax, the lowest id winning ties. Otherwise, as in transformers' logits
/// processors: scale by 1/T, keep the `top_k` largest (if set), then drop the least likely
/// tokens whose cumulative probability is ≤ 1 − top_p (the most likely always stays), and
/// sample from the renormalised remainder.
pub fn sample_token(logits: &[f32], s: &SamplingConfig, rng: &mut impl Rng) -> u32 {
    if s.temperature == 0.0 {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let order = likeliest_first(logits, s.top_k);
    let max = logits[order[0]];
    let weights: Vec<f64> =
        order.iter().map(|&i| (((logits[i] - max) / s.temperature) as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    // transformers' top-p: drop the least likely tokens whose cumulative mass (from the least
    // likely up) is ≤ 1 − top_p; the most likely token always stays.
    let mut kept = weights.len();
    if s.top_p < 1.0 {
        let mut tail = 0.0;
        while kept > 1 && tail + weights[kept - 1] / total <= 1.0 - s.top_p as f64 {
            tail += weights[kept - 1] / total;
            kept -= 1;
        }
    }
    let kept_total: f64 = weights[..kept].iter().sum();
    let mut u = rng.random::<f64>() * kept_total;
    for (k, w) in weights[..kept].iter().enumerate() {
        if u < *w {
            return order[k] as u32;
        }
        u -= w;
    }
    order[kept - 1] as u32
}

/// Token ids by decreasing logit (`f32::total_cmp`), ties by increasing id; only the `top_k`
/// first if `top_k > 0`. With `top_k`, the k largest are selected, then sorted (a total order,
/// so an unstable sort gives the stable result); the whole vocabulary is radix-sorted, linear
/// in its size (a comparison sort of 151,936 logits takes about 10 ms per row).
fn likeliest_first(logits: &[f32], top_k: usize) -> Vec<usize> {
    if top_k == 0 || top_k >= logits.len() {
        return radix_order(logits);
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    let likelier = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    order.select_nth_unstable_by(top_k - 1, likelier);
    order.truncate(top_k);
    order.sort_unstable_by(likelier);
    order
}

/// All ids by decreasing logit, ties by increasing id: a stable LSD radix sort (4 passes of 8
/// bits) of `!key(logit)`, where `key` maps `f32::total_cmp`'s order onto `u32`'s (negative
/// numbers: all bits flipped; others: the sign bit set).
fn radix_order(logits: &[f32]) -> Vec<usize> {
    let descending = |l: f32| {
        let bits = l.to_bits();
        !(if bits >> 31 == 1 { !bits } else { bits | 1 << 31 })
    };
    let mut order: Vec<(u32, u32)> =
        logits.iter().enumerate().map(|(i, &l)| (descending(l), i as u32)).collect();
    let mut scratch = vec![(0u32, 0u32); order.len()];
    for shift in [0, 8, 16, 24] {
        let mut starts = [0usize; 257];
        for &(key, _) in &order {
            starts[((key >> shift) & 0xff) as usize + 1] += 1;
        }
        for b in 0..256 {
            starts[b + 1] += starts[b];
        }
        for &entry in &order {
            let bucket = ((entry.0 >> shift) & 0xff) as usize;
            scratch[starts[bucket]] = entry;
            starts[bucket] += 1;
        }
        std::mem::swap(&mut order, &mut scratch);
    }
    order.into_iter().map(|(_, id)| id as usize).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn likeliest_first_is_the_stable_sort_truncated() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            // few distinct values, so that ties are common, of both signs, with ±0 and ±inf
            let mut logits: Vec<f32> =
                (0..300).map(|_| (rng.random::<u32>() % 17) as f32 * 0.5 - 4.0).collect();
            logits[..4].copy_from_slice(&[0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY]);
            let mut stable: Vec<usize> = (0..logits.len()).collect();
            stable.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
            for top_k in [0, 1, 7, 299, 300, 500] {
                let expected = if top_k > 0 { &stable[..top_k.min(300)] } else { &stable[..] };
                assert_eq!(likeliest_first(&logits, top_k), expected, "top_k {top_k}");
            }
        }
    }

    #[test]
    fn rows_sampled_on_several_threads_are_the_rows_sampled_on_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (rows, vocab) = (7, 3000);
        let logits: Vec<f32> = (0..rows * vocab).map(|_| rng.random::<f32>() * 8.0 - 4.0).collect();
        let streams = || -> Vec<ChaCha8Rng> {
            (0..rows as u64)
                .map(|r| {
                    let mut rng = ChaCha8Rng::seed_from_u64(3);
                    rng.set_stream(r);
                    rng
                })
                .collect()
        };
        for sampling in [cfg(1.0, 1.0, 0), cfg(0.7, 0.9, 0), cfg(1.0, 1.0, 20), cfg(0.0, 1.0, 0)] {
            let run = |threads: usize| {
                let (mut logits, mut rngs) = (logits.clone(), streams());
                pick_tokens(&mut logits, vocab, &mut rngs, &[5, 17], &sampling, threads)
            };
            let one = run(1);
            assert!(
                one.iter().all(|&(token, _)| token != 5 && token != 17),
                "input-only tokens are never sampled"
            );
            assert_eq!(run(2), one);
            assert_eq!(run(3), one);
        }
    }

    fn cfg(temperature: f32, top_p: f32, top_k: usize) -> SamplingConfig {
        SamplingConfig { temperature, top_p, top_k, ..Default::default() }
    }

    #[test]
    fn greedy_takes_lowest_id_on_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(sample_token(&[0.5, 2.0, 2.0, -1.0], &cfg(0.0, 1.0, 0), &mut rng), 1);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let logits = [0.1, 0.3, 3.0, 0.2];
        for _ in 0..50 {
            assert_eq!(sample_token(&logits, &cfg(1.0, 1.0, 1), &mut rng), 2);
            assert_eq!(sample_token(&logits, &cfg(1.0, 0.01, 0), &mut rng), 2);
        }
    }

    #[test]
    fn sampling_follows_softmax() {
        // logits ln(1), ln(3): probabilities 0.25 / 0.75
        let logits = [0.0, 3f32.ln()];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws = 20_000;
        let ones = (0..draws).filter(|_| sample_token(&logits, &cfg(1.0, 1.0, 0), &mut rng) == 1).count();
        let share = ones as f64 / draws as f64;
        assert!((share - 0.75).abs() < 0.015, "{share}");
    }

    #[test]
    fn top_p_drops_the_tail() {
        // probabilities 0.5, 0.3, 0.2: top_p 0.75 drops the 0.2 tail, keeps {0, 1}
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..2000 {
            assert_ne!(sample_token(&logits, &cfg(1.0, 0.75, 0), &mut rng), 2);
        }
    }

    #[test]
    fn log_softmax_matches_formula() {
        let l = [1.0f32, 2.0, 3.0];
        let z: f32 = l.iter().map(|x| x.exp()).sum();
        assert!((log_softmax_at(&l, 1) - (2f32.exp() / z).ln()).abs() < 1e-6);
    }
}

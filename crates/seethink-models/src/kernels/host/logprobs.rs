//! [`token_logprobs`](super::token_logprobs) on the host, for the ndarray backend with and
//! without autodiff.
//!
//! burn's `log_softmax`, `gather` and entropy take about a dozen element-wise passes over the
//! `[N, V]` logits on one core, each a new buffer, and keep the `[N, V]` log-probabilities for
//! the backward pass. Here each row takes two passes (the maximum; then `Σ e^{l−m}` and
//! `Σ e^{l−m}·l` together) with a vectorised `exp`, rows spread over the cores; the backward
//! pass recomputes the probabilities from the logits and the saved log-sum-exp.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};

use super::{exp, host_f32, map_cores, Cpu, Tracked};

/// What the backward pass needs: the logits `[rows, vocab]` (row-major), the targets and each
/// row's `lse = log Σ_v e^{l_v}`.
#[derive(Clone, Debug)]
struct Saved {
    logits: Vec<f32>,
    vocab: usize,
    targets: Vec<usize>,
    lse: Vec<f32>,
}

/// Per row of `logits [N, V]`: `(log p(target), H)` by [`forward`].
pub(super) fn plain(
    logits: Tensor<Cpu, 2>,
    targets: Tensor<Cpu, 1, Int>,
) -> (Tensor<Cpu, 1>, Tensor<Cpu, 1>) {
    let [rows, vocab] = logits.dims();
    let targets = host_targets(targets, vocab);
    let (logp, entropy, _) = forward(&host_f32(&logits.into_primitive().tensor()), vocab, &targets);
    (vector(logp, rows), vector(entropy, rows))
}

/// [`plain`] under autodiff: `log p(target)` with the backward pass of [`LogprobBackward`],
/// `H` a constant.
#[allow(clippy::type_complexity)]
pub(super) fn tracked<C: CheckpointStrategy>(
    logits: Tensor<Autodiff<Cpu, C>, 2>,
    targets: Tensor<Autodiff<Cpu, C>, 1, Int>,
) -> (Tensor<Autodiff<Cpu, C>, 1>, Tensor<Autodiff<Cpu, C>, 1>) {
    let [rows, vocab] = logits.dims();
    let targets = host_targets(targets, vocab);
    let logits: Tracked = logits.into_primitive().tensor();
    let values = host_f32(&logits.primitive);
    let (logp, entropy, lse) = forward(&values, vocab, &targets);
    let logp = vector(logp, rows).into_primitive().tensor();
    let logp = match LogprobBackward.prepare::<C>([logits.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(Saved { logits: values, vocab, targets, lse }, logp),
        OpsKind::UnTracked(prep) => prep.finish(logp),
    };
    (Tensor::from_primitive(TensorPrimitive::Float(logp)), Tensor::from_inner(vector(entropy, rows)))
}

/// The targets as indices, each checked to be inside the vocabulary.
fn host_targets<B: Backend>(targets: Tensor<B, 1, Int>, vocab: usize) -> Vec<usize> {
    let targets: Vec<usize> = targets
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .expect("i64 targets")
        .iter()
        .map(|&t| t as usize)
        .collect();
    if let Some(bad) = targets.iter().position(|&t| t >= vocab) {
        panic!("token_logprobs: target {} of row {bad} is outside the vocabulary of {vocab}", targets[bad]);
    }
    targets
}

/// `values` as a tensor `[rows]`.
fn vector(values: Vec<f32>, rows: usize) -> Tensor<Cpu, 1> {
    Tensor::from_data(TensorData::new(values, [rows]), &Default::default())
}

/// Below this `e^x` is 0 in f32: a −∞ logit (a masked token) is taken as this, so that its
/// `e^x · x` term is 0 and not `0 · −∞`.
const MIN_EXPONENT: f32 = -88.0;

/// Per row `l`: `m = max_v l_v`, `s = Σ_v e^{l_v−m}`, `lse = m + ln s`,
/// `log p(t) = l_t − lse` and `H = −Σ_v p_v log p_v = ln s − Σ_v e^{l_v−m}·(l_v − m) / s`
/// (every term of the sum ≤ 0, so nothing cancels); returns `(log p, H, lse)`.
fn forward(logits: &[f32], vocab: usize, targets: &[usize]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows: Vec<(&[f32], usize)> = logits.chunks_exact(vocab).zip(targets.iter().copied()).collect();
    let out = map_cores(rows, logits.len(), |(row, target)| {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &l| if l > m { l } else { m });
        // `(e^{l−m}, e^{l−m}·(l − m))` of one logit
        let terms = |l: f32| {
            let shifted = (l - max).max(MIN_EXPONENT);
            let e = exp(shifted);
            (e, e * shifted)
        };
        // eight independent lanes, so that the compiler vectorises the loop
        let (mut weights, mut weighted) = ([0.0f32; 8], [0.0f32; 8]);
        let blocks = row.chunks_exact(8);
        let (mut total, mut weighted_total) = (0.0, 0.0);
        for &l in blocks.remainder() {
            let (e, ex) = terms(l);
            (total, weighted_total) = (total + e, weighted_total + ex);
        }
        for block in blocks {
            for lane in 0..8 {
                let (e, ex) = terms(block[lane]);
                weights[lane] += e;
                weighted[lane] += ex;
            }
        }
        let total = weights.iter().sum::<f32>() + total;
        let weighted_total = weighted.iter().sum::<f32>() + weighted_total;
        let lse = max + total.ln();
        (row[target] - lse, total.ln() - weighted_total / total, lse)
    });
    let mut result =
        (Vec::with_capacity(out.len()), Vec::with_capacity(out.len()), Vec::with_capacity(out.len()));
    for (logp, entropy, lse) in out {
        result.0.push(logp);
        result.1.push(entropy);
        result.2.push(lse);
    }
    result
}

#[derive(Debug)]
struct LogprobBackward;

impl Backward<Cpu, 1> for LogprobBackward {
    type State = Saved;

    /// `∂L/∂l_v = g · (1[v = t] − e^{l_v − lse})` per row, `g = ∂L/∂log p(t)`.
    fn backward(self, ops: Ops<Saved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_logp = grads.consume::<Cpu>(&ops.node);
        let d_logp = host_f32(&d_logp);
        let Saved { logits, vocab, targets, lse } = ops.state;
        let [parent] = ops.parents;
        let Some(parent) = parent else { return };
        let (rows, size) = (lse.len(), logits.len());
        let mut d_logits = logits;
        let tasks: Vec<_> = d_logits.chunks_exact_mut(vocab).zip(targets).zip(lse).zip(d_logp).collect();
        map_cores(tasks, size, |(((row, target), lse), g)| {
            row.iter_mut().for_each(|l| *l = -g * exp(*l - lse));
            row[target] += g;
        });
        let grad = NdArrayTensor::from_data(TensorData::new(d_logits, [rows, vocab]));
        grads.register::<Cpu>(parent.id, grad);
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, ElementConversion};

    use super::*;
    use crate::kernels::{decomposed_token_logprobs, Kernels};

    type CpuAutodiff = Autodiff<Cpu>;

    fn max_difference<B: Backend>(a: Tensor<B, 1>, b: Tensor<B, 1>) -> f32 {
        (a - b).abs().max().into_scalar().elem()
    }

    #[test]
    fn values_and_gradients_equal_the_generic_path() {
        // a few rows of a large vocabulary (threads), many rows of a small one, and a row with
        // a -inf logit (a masked token); against burn's ops differentiated by burn (the generic
        // path, in f32: an `NdArray<f64>` reference would change this process's default float
        // type, see `super::f32s`)
        for (rows, vocab) in [(3, 70_000), (37, 11), (1, 5)] {
            let logits = Tensor::<CpuAutodiff, 2>::random(
                [rows, vocab],
                Distribution::Normal(0.0, 3.0),
                &Default::default(),
            );
            let logits = if vocab == 5 { logits.slice_fill([0..1, 2..3], f32::NEG_INFINITY) } else { logits };
            let targets: Vec<i64> = (0..rows).map(|r| ((r * 7919 + 4) % vocab) as i64).collect();
            let targets = Tensor::<CpuAutodiff, 1, Int>::from_data(
                TensorData::new(targets, [rows]),
                &Default::default(),
            );
            let weights =
                Tensor::<CpuAutodiff, 1>::random([rows], Distribution::Normal(0.0, 1.0), &Default::default());

            let x = logits.clone().require_grad();
            let (logp, entropy) = CpuAutodiff::token_logprobs(x.clone(), targets.clone());
            let grads = (logp.clone() * weights.clone()).sum().backward();
            let d_x = x.grad(&grads).expect("∂logits");

            let x_ref = logits.require_grad();
            let (logp_ref, entropy_ref) = decomposed_token_logprobs(x_ref.clone(), targets);
            let grads_ref = (logp_ref.clone() * weights).sum().backward();
            let d_ref = x_ref.grad(&grads_ref).expect("∂logits");

            assert!(max_difference(logp, logp_ref) < 1e-4, "log p, {rows} x {vocab}");
            match vocab {
                // the generic path's entropy is NaN there (0 · −∞); this kernel's is finite
                5 => assert!(entropy.into_scalar().is_finite()),
                _ => {
                    // f32 sums over the vocabulary: relative error ~1e-6 of an entropy ~10
                    assert!(max_difference(entropy, entropy_ref) < 1e-4, "entropy, {rows} x {vocab}")
                }
            }
            assert!((d_x - d_ref).abs().max().into_scalar() < 1e-5, "gradient, {rows} x {vocab}");
        }
    }
}

//! Scoring arithmetic: the unbiased pass@k estimator and the summary statistics of a group of
//! evaluated tasks.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::runner::TaskResult;

/// The unbiased pass@k estimator of Chen et al. (2021) for one task with `n` samples of which
/// `c` are correct:
///
/// pass@k = 1 − C(n − c, k) / C(n, k),
///
/// the probability that at least one of `k` samples drawn without replacement from the `n` is
/// correct. It is 1 when `n − c < k`, and otherwise computed as the product
/// 1 − Π_{i = n−c+1}^{n} (1 − k / i), which avoids huge binomials. Errors when `k` is 0,
/// `k > n` or `c > n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Result<f64> {
    if k == 0 || k > n || c > n {
        return Err(EvalError::Invalid(format!(
            "pass@k needs 1 ≤ k ≤ n and c ≤ n; got n = {n}, c = {c}, k = {k}"
        )));
    }
    if n - c < k {
        return Ok(1.0);
    }
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Ok(1.0 - miss)
}

/// Summary of a group of evaluated tasks (all of them, one capability, one level...).
///
/// Sample means weight every sample equally; pass@k averages the per-task estimates, so it
/// weights every task equally (the two agree when every task has the same number of samples,
/// as in [`crate::evaluate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of tasks.
    pub tasks: usize,
    /// Number of samples (tasks × samples per task).
    pub samples: usize,
    /// Mean accuracy reward over samples.
    pub accuracy: f64,
    /// Mean format reward over samples.
    pub format_rate: f64,
    /// Mean overall reward over samples.
    pub mean_reward: f64,
    /// Mean response length in tokens over samples.
    pub mean_tokens: f64,
    /// Mean over tasks of pass@1 = c / n.
    pub pass_at_1: f64,
    /// Mean over tasks of the unbiased pass@k estimate ([`pass_at_k`]), `k` being the report's
    /// samples per task.
    pub pass_at_k: f64,
}

impl Stats {
    /// Statistics of `results` with pass@`k` (see the type docs for the means). Errors when
    /// `results` is empty or a task has fewer than `k` samples.
    pub fn of(results: &[&TaskResult], k: usize) -> Result<Stats> {
        if results.is_empty() {
            return Err(EvalError::Invalid("statistics of an empty group".into()));
        }
        let samples: usize = results.iter().map(|r| r.samples.len()).sum();
        if samples == 0 {
            return Err(EvalError::Invalid("statistics of tasks without samples".into()));
        }
        let sample_mean = |f: &dyn Fn(&crate::runner::Sample) -> f64| {
            results.iter().flat_map(|r| &r.samples).map(f).sum::<f64>() / samples as f64
        };
        let task_mean = |values: Vec<f64>| values.iter().sum::<f64>() / results.len() as f64;
        let pass_1 =
            results.iter().map(|r| pass_at_k(r.samples.len(), r.correct, 1)).collect::<Result<Vec<f64>>>()?;
        let pass_k =
            results.iter().map(|r| pass_at_k(r.samples.len(), r.correct, k)).collect::<Result<Vec<f64>>>()?;
        Ok(Stats {
            tasks: results.len(),
            samples,
            accuracy: sample_mean(&|s| f64::from(s.accuracy)),
            format_rate: sample_mean(&|s| f64::from(s.format)),
            mean_reward: sample_mean(&|s| f64::from(s.overall)),
            mean_tokens: sample_mean(&|s| s.tokens as f64),
            pass_at_1: task_mean(pass_1),
            pass_at_k: task_mean(pass_k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C(n, k) by the multiplicative formula, for checking the product form.
    fn binomial(n: usize, k: usize) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).map(|i| (n - i) as f64 / (k - i) as f64).product()
    }

    #[test]
    fn pass_at_k_matches_hand_computed_values() {
        // n = 5, c = 2, k = 2: 1 − C(3,2)/C(5,2) = 1 − 3/10
        assert!((pass_at_k(5, 2, 2).unwrap() - 0.7).abs() < 1e-12);
        // n = 4, c = 1, k = 1: c / n
        assert!((pass_at_k(4, 1, 1).unwrap() - 0.25).abs() < 1e-12);
        // n = 10, c = 3, k = 5: 1 − C(7,5)/C(10,5) = 1 − 21/252
        assert!((pass_at_k(10, 3, 5).unwrap() - (1.0 - 21.0 / 252.0)).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 0, 4).unwrap(), 0.0);
        assert_eq!(pass_at_k(4, 1, 4).unwrap(), 1.0);
        assert_eq!(pass_at_k(3, 3, 1).unwrap(), 1.0);
    }

    #[test]
    fn pass_at_k_product_equals_binomial_ratio() {
        for n in 1..=12 {
            for c in 0..=n {
                for k in 1..=n {
                    let exact = 1.0 - binomial(n - c, k) / binomial(n, k);
                    assert!((pass_at_k(n, c, k).unwrap() - exact).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
    }

    #[test]
    fn pass_at_k_rejects_bad_arguments() {
        assert!(pass_at_k(3, 1, 0).is_err());
        assert!(pass_at_k(3, 1, 4).is_err());
        assert!(pass_at_k(3, 4, 1).is_err());
    }
}

//! Outcome advantages: each response's score turned into one advantage for all its tokens, by
//! the estimator of `algorithm.estimator` (EasyR1's `algorithm.adv_estimator`).

use serde::{Deserialize, Serialize};

/// How scores become advantages. All are outcome estimators: one score per response, one
/// advantage per response, shared by its tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Estimator {
    /// GRPO: the score against its group's mean, over the group's std ([`grpo`]).
    #[default]
    Grpo,
    /// RLOO: the score against the mean of the other samples of its prompt ([`rloo`]).
    Rloo,
    /// REINFORCE++ (γ = 1): scores whitened over the batch's response tokens
    /// ([`reinforce_plus_plus`]).
    ReinforcePlusPlus,
    /// REINFORCE++ with baseline: group-centred scores, whitened over the batch's response
    /// tokens ([`reinforce_plus_plus_baseline`]).
    ReinforcePlusPlusBaseline,
}

/// How advantages are computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdvantageOptions {
    pub estimator: Estimator,
    /// GRPO only: divide by the group's unbiased standard deviation; `false` gives Dr. GRPO.
    pub normalize_std: bool,
    /// GRPO only: added to the standard deviation, `A = (r − mean) / (std + eps)`.
    pub eps: f32,
}

impl Default for AdvantageOptions {
    fn default() -> Self {
        Self { estimator: Estimator::Grpo, normalize_std: true, eps: 1e-6 }
    }
}

/// Advantages of `scores`, laid out as consecutive groups of `group` samples per prompt, of
/// responses `lengths` tokens long, by `options.estimator`.
pub fn advantages(scores: &[f32], lengths: &[usize], group: usize, options: AdvantageOptions) -> Vec<f32> {
    assert!(group > 0 && scores.len().is_multiple_of(group), "scores must form whole groups of {group}");
    assert_eq!(scores.len(), lengths.len(), "one length per score");
    match options.estimator {
        Estimator::Grpo => grpo(scores, group, options),
        Estimator::Rloo => rloo(scores, group),
        Estimator::ReinforcePlusPlus => whiten_over_tokens(scores, lengths),
        Estimator::ReinforcePlusPlusBaseline => reinforce_plus_plus_baseline(scores, lengths, group),
    }
}

/// GRPO advantages (EasyR1's `compute_grpo_outcome_advantage`):
/// `A_i = (r_i − mean_g) / (std_g + eps)` with the unbiased std
/// `std_g = sqrt(Σ (r − mean_g)² / (n − 1))` (or `A_i = r_i − mean_g` without normalisation).
/// A group of one has mean 0 and std 1 (as verl's; EasyR1 refuses it); a group whose scores are
/// all equal gets `A = 0`.
pub fn grpo(scores: &[f32], group: usize, options: AdvantageOptions) -> Vec<f32> {
    scores
        .chunks_exact(group)
        .flat_map(|g| {
            let (mean, std) = match g.len() {
                1 => (0.0, 1.0),
                n => {
                    let mean = mean(g);
                    let var =
                        g.iter().map(|&r| (f64::from(r) - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
                    (mean, var.sqrt())
                }
            };
            g.iter().map(move |&r| {
                let centred = f64::from(r) - mean;
                match options.normalize_std {
                    true => (centred / (std + f64::from(options.eps))) as f32,
                    false => centred as f32,
                }
            })
        })
        .collect()
}

/// RLOO advantages (EasyR1's `compute_rloo_outcome_advantage`): each score against the mean of
/// the other `n − 1` scores of its group, `A_i = r_i − (Σ_g r − r_i) / (n − 1)`; a group of one
/// keeps its score (as verl's; EasyR1 refuses it).
pub fn rloo(scores: &[f32], group: usize) -> Vec<f32> {
    scores
        .chunks_exact(group)
        .flat_map(|g| {
            let n = g.len() as f64;
            let sum: f64 = g.iter().map(|&r| f64::from(r)).sum();
            g.iter().map(move |&r| match g.len() {
                1 => r,
                _ => (f64::from(r) - (sum - f64::from(r)) / (n - 1.0)) as f32,
            })
        })
        .collect()
}

/// REINFORCE++ with baseline (verl's `compute_reinforce_plus_plus_baseline_outcome_advantage`):
/// the group-centred scores `r_i − mean_g` (a group of one: `r_i`), then
/// [`whiten_over_tokens`].
pub fn reinforce_plus_plus_baseline(scores: &[f32], lengths: &[usize], group: usize) -> Vec<f32> {
    let centred: Vec<f32> = scores
        .chunks_exact(group)
        .flat_map(|g| {
            let baseline = if g.len() == 1 { 0.0 } else { mean(g) };
            g.iter().map(move |&r| (f64::from(r) - baseline) as f32)
        })
        .collect();
    whiten_over_tokens(&centred, lengths)
}

/// REINFORCE++ (EasyR1's `compute_reinforce_plus_plus_outcome_advantage` with γ = 1, where
/// every token's return is its response's score), and the whitening step of the baseline
/// variant: `masked_whiten` over all response tokens of the batch, so response i counts
/// `L_i` times: with `T = Σ L_i`,
/// `μ = Σ L_i x_i / (T + 1e-8)`, `σ² = Σ L_i (x_i − μ)² / (T + 1e-8) · T / (T − 1)` (no Bessel
/// factor when `T ≤ 1`), `A_i = (x_i − μ) / sqrt(σ² + 1e-8)`.
pub fn whiten_over_tokens(values: &[f32], lengths: &[usize]) -> Vec<f32> {
    let tokens: f64 = lengths.iter().map(|&l| l as f64).sum();
    let weighted_mean = |f: &dyn Fn(f64) -> f64| {
        values.iter().zip(lengths).map(|(&x, &l)| l as f64 * f(f64::from(x))).sum::<f64>() / (tokens + 1e-8)
    };
    let mu = weighted_mean(&|x| x);
    let mut var = weighted_mean(&|x| (x - mu).powi(2));
    if tokens > 1.0 {
        var *= tokens / (tokens - 1.0);
    }
    let scale = 1.0 / (var + 1e-8).sqrt();
    values.iter().map(|&x| ((f64::from(x) - mu) * scale) as f32).collect()
}

fn mean(values: &[f32]) -> f64 {
    values.iter().map(|&r| f64::from(r)).sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f32], expected: &[f64]) {
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((f64::from(*g) - e).abs() < 1e-5, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn hand_computed_group() {
        // rewards 1, 0, 0, 1: mean 0.5, unbiased std sqrt(1/3) = 0.57735
        let a = grpo(&[1.0, 0.0, 0.0, 1.0], 4, AdvantageOptions::default());
        close(&a, &[0.866025, -0.866025, -0.866025, 0.866025]);
    }

    #[test]
    fn equal_rewards_give_zero_and_groups_are_independent() {
        let a = grpo(&[0.9, 0.9, 0.9, 0.0, 1.0, 0.5], 3, AdvantageOptions::default());
        assert_eq!(&a[..3], &[0.0, 0.0, 0.0]);
        close(&a[3..], &[-1.0, 1.0, 0.0]);
    }

    #[test]
    fn dr_grpo_only_centres() {
        let options = AdvantageOptions { normalize_std: false, ..Default::default() };
        assert_eq!(grpo(&[1.0, 0.0], 2, options), vec![0.5, -0.5]);
        assert_eq!(grpo(&[0.3], 1, AdvantageOptions::default()), vec![0.3 / (1.0 + 1e-6)]);
    }

    #[test]
    fn rloo_by_hand() {
        // group 1, 0, 0, 1: A_0 = 1 − (2 − 1)/3 = 2/3, A_1 = 0 − 2/3; group 0.5, 0.2: ±0.3
        let a = advantages(
            &[1.0, 0.0, 0.0, 1.0],
            &[3; 4],
            4,
            AdvantageOptions { estimator: Estimator::Rloo, ..Default::default() },
        );
        close(&a, &[2.0 / 3.0, -2.0 / 3.0, -2.0 / 3.0, 2.0 / 3.0]);
        close(&rloo(&[0.5, 0.2], 2), &[0.3, -0.3]);
        // RLOO is n/(n − 1) times the group-centred score (verl's form)
        let scores = [0.1, 0.7, 0.4];
        let centred = grpo(&scores, 3, AdvantageOptions { normalize_std: false, ..Default::default() });
        let expected: Vec<f64> = centred.iter().map(|&c| f64::from(c) * 1.5).collect();
        close(&rloo(&scores, 3), &expected);
        assert_eq!(rloo(&[0.25], 1), [0.25]);
    }

    #[test]
    fn reinforce_plus_plus_whitens_over_tokens() {
        // scores 1, 0 of lengths 3, 1: tokens 1, 1, 1, 0: μ = 0.75, biased var 0.1875, Bessel
        // 4/3 → 0.25; A = (1 − 0.75)/0.5 = 0.5, (0 − 0.75)/0.5 = −1.5
        let options = AdvantageOptions { estimator: Estimator::ReinforcePlusPlus, ..Default::default() };
        close(&advantages(&[1.0, 0.0], &[3, 1], 2, options), &[0.5, -1.5]);
        // the same scores in groups of one: REINFORCE++ ignores groups
        close(&advantages(&[1.0, 0.0], &[3, 1], 1, options), &[0.5, -1.5]);
    }

    #[test]
    fn reinforce_plus_plus_baseline_centres_per_group_then_whitens() {
        // groups (1, 0) and (1, 1), lengths 1, 1, 2, 2: centred 0.5, −0.5, 0, 0; token values
        // 0.5, −0.5, 0, 0, 0, 0: μ = 0, var = 0.5/6 · 6/5 = 0.1 → A = ±0.5/sqrt(0.1)
        let a = reinforce_plus_plus_baseline(&[1.0, 0.0, 1.0, 1.0], &[1, 1, 2, 2], 2);
        let s = 0.5 / 0.1f64.sqrt();
        close(&a, &[s, -s, 0.0, 0.0]);
    }
}

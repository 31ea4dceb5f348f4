//! Outcome advantages of GRPO: each response is compared with the other samples of its prompt.

/// How advantages are normalised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdvantageOptions {
    /// Divide by the group's unbiased standard deviation (GRPO); `false` gives Dr. GRPO.
    pub normalize_std: bool,
    /// Added to the standard deviation: `A = (r − mean) / (std + eps)`.
    pub eps: f32,
}

impl Default for AdvantageOptions {
    fn default() -> Self {
        Self { normalize_std: true, eps: 1e-6 }
    }
}

/// GRPO advantages of `rewards`, laid out as consecutive groups of `group` samples per prompt:
/// `A_i = (r_i − mean_g) / (std_g + eps)` with the unbiased std
/// `std_g = sqrt(Σ (r − mean_g)² / (n − 1))` (or `A_i = r_i − mean_g` without normalisation).
/// A group of one has mean 0 and std 1 (as in EasyR1); a group whose rewards are all equal gets
/// `A = 0`.
pub fn group_advantages(rewards: &[f32], group: usize, options: AdvantageOptions) -> Vec<f32> {
    assert!(group > 0 && rewards.len().is_multiple_of(group), "rewards must form whole groups of {group}");
    rewards
        .chunks_exact(group)
        .flat_map(|g| {
            let n = g.len() as f64;
            let (mean, std) = if g.len() == 1 {
                (0.0, 1.0)
            } else {
                let mean = g.iter().map(|&r| r as f64).sum::<f64>() / n;
                let var = g.iter().map(|&r| (r as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
                (mean, var.sqrt())
            };
            g.iter().map(move |&r| {
                let centred = r as f64 - mean;
                if options.normalize_std {
                    (centred / (std + options.eps as f64)) as f32
                } else {
                    centred as f32
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_group() {
        // rewards 1, 0, 0, 1: mean 0.5, unbiased std sqrt(1/3) = 0.57735
        let a = group_advantages(&[1.0, 0.0, 0.0, 1.0], 4, AdvantageOptions::default());
        for (x, e) in a.iter().zip([0.866025, -0.866025, -0.866025, 0.866025]) {
            assert!((x - e).abs() < 1e-5, "{a:?}");
        }
    }

    #[test]
    fn equal_rewards_give_zero_and_groups_are_independent() {
        let a = group_advantages(&[0.9, 0.9, 0.9, 0.0, 1.0, 0.5], 3, AdvantageOptions::default());
        assert_eq!(&a[..3], &[0.0, 0.0, 0.0]);
        assert!((a[3] + 1.0).abs() < 1e-5 && (a[4] - 1.0).abs() < 1e-5 && a[5].abs() < 1e-6);
    }

    #[test]
    fn dr_grpo_only_centres() {
        let options = AdvantageOptions { normalize_std: false, ..Default::default() };
        assert_eq!(group_advantages(&[1.0, 0.0], 2, options), vec![0.5, -0.5]);
        assert_eq!(group_advantages(&[0.3], 1, AdvantageOptions::default()), vec![0.3 / (1.0 + 1e-6)]);
    }
}

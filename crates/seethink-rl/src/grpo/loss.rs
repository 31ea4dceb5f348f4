//! The GRPO loss of EasyR1: clip-higher + dual-clip surrogate, k3 KL to a frozen reference,
//! aggregated so that splitting a mini-batch into micro-batches does not change it.
//!
//! All per-token tensors are `[sequences, response tokens]`, padded; `mask` is 1 on real
//! response tokens and 0 on padding.

use burn::tensor::{backend::Backend, Tensor};

/// How per-token losses are reduced over a mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Aggregation {
    /// `Σ_tokens loss / (response tokens in the mini-batch)` (the paper's).
    TokenMean,
    /// EasyR1's `seq` mode: per micro-batch the mean over its sequences of each sequence's
    /// token-mean, rescaled by the micro-batch's share of the mini-batch's tokens.
    SeqMean,
}

/// Hyper-parameters of the loss, built from the config's actor section
/// ([`crate::config::ActorConfig::loss`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GrpoLossConfig {
    /// Lower clip: ratio ≥ 1 − clip_low.
    pub clip_low: f32,
    /// Upper clip ("clip-higher"): ratio ≤ 1 + clip_high.
    pub clip_high: f32,
    /// Dual clip for negative advantages: the loss is at most −A·dual_clip.
    pub dual_clip: f32,
    /// Weight of the KL loss term; 0 disables it.
    pub kl_coef: f32,
    /// The per-token KL estimate of the loss term.
    pub kl_penalty: KlPenalty,
    pub aggregation: Aggregation,
}

impl Default for GrpoLossConfig {
    /// The defaults of the config's actor and algorithm sections.
    fn default() -> Self {
        let algorithm = crate::config::AlgorithmConfig::default();
        crate::config::ActorConfig::default().loss(&algorithm)
    }
}

/// The clipped surrogate per token, and where clipping changed it (1.0) or not (0.0).
pub struct PolicyLoss<B: Backend> {
    pub per_token: Tensor<B, 2>,
    pub clipped: Tensor<B, 2>,
}

/// Clipped policy-gradient loss per token:
/// `ρ = exp(clamp(logp − old, −20, 20))`, `ρ̂ = exp(clamp(logp − old, ln(1 − ε_low), ln(1 + ε_high)))`,
/// `pg = max(−A·ρ, −A·ρ̂)`, and for `A < 0`, `pg = min(pg, −A·c)` (dual clip, c = `dual_clip`).
/// `advantages` is `[sequences, 1]` (one advantage per response, broadcast over its tokens).
pub fn policy_loss<B: Backend>(
    logp: Tensor<B, 2>,
    old_logp: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    config: &GrpoLossConfig,
) -> PolicyLoss<B> {
    let log_ratio = (logp - old_logp).clamp(-20.0, 20.0);
    let ratio = log_ratio.clone().exp();
    let clipped_ratio = log_ratio.clamp((1.0 - config.clip_low).ln(), (1.0 + config.clip_high).ln()).exp();
    let shape = ratio.dims();
    let advantages = advantages.expand(shape);
    let neg_adv = advantages.clone().neg();
    let unclipped = neg_adv.clone() * ratio;
    let clipped = neg_adv.clone() * clipped_ratio;
    let higher = unclipped.clone().max_pair(clipped);
    let dual = higher.clone().min_pair(neg_adv * config.dual_clip);
    let negative = advantages.lower_elem(0.0);
    let per_token = higher.clone().mask_where(negative, dual);
    let was_clipped = per_token.clone().not_equal(unclipped).float();
    PolicyLoss { per_token, clipped: was_clipped }
}

/// A per-token estimate of KL(π‖π_ref) from the two log-probs of the sampled token (EasyR1's
/// `compute_kl` kinds; its `full` kind is not implemented).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KlPenalty {
    /// `logp − ref`
    Kl,
    /// `|logp − ref|`
    Abs,
    /// `½ (logp − ref)²`
    Mse,
    /// k3, [`kl_k3`] (the paper's).
    LowVarKl,
}

impl KlPenalty {
    /// The estimate per token (see the variants).
    pub fn estimate<B: Backend>(self, logp: Tensor<B, 2>, ref_logp: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Kl => logp - ref_logp,
            Self::Abs => (logp - ref_logp).abs(),
            Self::Mse => (logp - ref_logp).powi_scalar(2) * 0.5,
            Self::LowVarKl => kl_k3(logp, ref_logp),
        }
    }
}

/// k3 ("low_var_kl") estimate of KL(π‖π_ref) per token:
/// `x = clamp(ref_logp − logp, −20, 20)`, `kl = clamp(exp(x) − x − 1, −10, 10)`.
pub fn kl_k3<B: Backend>(logp: Tensor<B, 2>, ref_logp: Tensor<B, 2>) -> Tensor<B, 2> {
    let x = (ref_logp - logp).clamp(-20.0, 20.0);
    (x.clone().exp() - x - 1.0).clamp(-10.0, 10.0)
}

/// The weight of each response's tokens in one micro-batch (responses of `lengths` tokens) of a
/// mini-batch, for [`aggregate`] with the mini-batch's response-token count as normaliser —
/// EasyR1's `average_loss` of the micro-batch rescaled by its token share:
/// token-mean 1 (`Σ loss / T_mini`); seq-mean `(T_m / |m|) / len_s`, i.e.
/// `(1/|m|) Σ_s mean_s(loss) · T_m / T_mini` with `T_m` the micro-batch's tokens and `|m|` its
/// responses (so, as in EasyR1, seq-mean depends on how a mini-batch is split).
pub fn row_weights(lengths: &[usize], aggregation: Aggregation) -> Vec<f32> {
    let tokens: usize = lengths.iter().sum();
    lengths
        .iter()
        .map(|&len| match aggregation {
            Aggregation::TokenMean => 1.0,
            Aggregation::SeqMean => tokens as f32 / lengths.len() as f32 / len.max(1) as f32,
        })
        .collect()
}

/// Reduces a per-token loss of one micro-batch (or a chunk of its positions) with the
/// mini-batch's normaliser: `Σ loss·weight / normaliser` (weights: `mask` × [`row_weights`],
/// normaliser: the mini-batch's response tokens). Summing over the micro-batches of a
/// mini-batch gives its loss; summing over chunks of positions gives the micro-batch's.
pub fn aggregate<B: Backend>(
    per_token: Tensor<B, 2>,
    weights: Tensor<B, 2>,
    normaliser: f32,
) -> Tensor<B, 1> {
    (per_token * weights).sum() / normaliser
}

/// Inputs of the loss for one micro-batch.
pub struct TokenBatchLoss<B: Backend> {
    /// Current policy log-probs of the response tokens (with gradient).
    pub logp: Tensor<B, 2>,
    /// Log-probs recomputed by the policy right after the rollout.
    pub old_logp: Tensor<B, 2>,
    /// Frozen reference model log-probs (ignored when `kl_coef` is 0).
    pub ref_logp: Option<Tensor<B, 2>>,
    /// `[sequences, 1]`
    pub advantages: Tensor<B, 2>,
    /// `mask` × [`row_weights`] of the aggregation.
    pub weights: Tensor<B, 2>,
}

/// The loss of one micro-batch and its parts (each already divided by the normaliser, so they
/// sum over micro-batches to mini-batch values).
pub struct LossTerms<B: Backend> {
    /// `pg + kl_coef·kl`, to back-propagate.
    pub loss: Tensor<B, 1>,
    pub pg: Tensor<B, 1>,
    pub kl: Tensor<B, 1>,
    pub clip_fraction: Tensor<B, 1>,
}

impl<B: Backend> TokenBatchLoss<B> {
    /// `aggregate(pg + kl_coef·kl)` (kl: the config's [`KlPenalty`] estimate) with `normaliser` as
    /// in [`aggregate`].
    pub fn terms(self, config: &GrpoLossConfig, normaliser: f32) -> LossTerms<B> {
        let pg = policy_loss(self.logp.clone(), self.old_logp, self.advantages, config);
        let reduce = |t: Tensor<B, 2>| aggregate(t, self.weights.clone(), normaliser);
        let kl_per_token = match (&self.ref_logp, config.kl_coef) {
            (Some(ref_logp), coef) if coef != 0.0 => {
                Some(config.kl_penalty.estimate(self.logp, ref_logp.clone()))
            }
            _ => None,
        };
        let pg_loss = reduce(pg.per_token);
        let (loss, kl) = match kl_per_token {
            Some(kl) => {
                let kl = reduce(kl);
                (pg_loss.clone() + kl.clone() * config.kl_coef, kl)
            }
            None => (pg_loss.clone(), pg_loss.zeros_like()),
        };
        LossTerms { loss, pg: pg_loss, kl, clip_fraction: reduce(pg.clipped) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    fn t(values: &[f32]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), &Default::default())
    }

    fn values(x: Tensor<B, 2>) -> Vec<f32> {
        x.into_data().to_vec().unwrap()
    }

    #[test]
    fn clip_higher_and_dual_clip_by_hand() {
        let c = GrpoLossConfig::default();
        let ln = |x: f32| x.ln();
        // ratios 1.5, 0.5, 1.1 with A = +1: pg = max(−ρ, −clamp(ρ)) = −1.3, −0.5, −1.1
        let pos = policy_loss(t(&[ln(1.5), ln(0.5), ln(1.1)]), t(&[0.0; 3]), t(&[1.0]), &c);
        for (x, e) in values(pos.per_token).iter().zip([-1.3, -0.5, -1.1]) {
            assert!((x - e).abs() < 1e-5, "{x} vs {e}");
        }
        assert_eq!(values(pos.clipped), vec![1.0, 0.0, 0.0]);
        // A = −1: ratio 5 → max(5, 1.3) = 5, dual clip min(5, 3) = 3; ratio 0.5 → max(0.5, 0.8) = 0.8
        let neg = policy_loss(t(&[ln(5.0), ln(0.5)]), t(&[0.0; 2]), t(&[-1.0]), &c);
        for (x, e) in values(neg.per_token).iter().zip([3.0, 0.8]) {
            assert!((x - e).abs() < 1e-5, "{x} vs {e}");
        }
    }

    #[test]
    fn k3_by_hand() {
        // x = ref − logp = ln 2: kl = 2 − ln 2 − 1; x = 0: 0; x = 30 → clamp 20 → clamp 10
        let kl = values(kl_k3(t(&[0.0, 1.0, -30.0]), t(&[2f32.ln(), 1.0, 0.0])));
        assert!((kl[0] - (1.0 - 2f32.ln())).abs() < 1e-6);
        assert_eq!(kl[1], 0.0);
        assert_eq!(kl[2], 10.0);
    }

    #[test]
    fn aggregation_modes() {
        let loss = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1.0, 3.0, 5.0, 2.0, 4.0, 9.0], [2, 3]),
            &Default::default(),
        );
        // response lengths 2 and 3, right-aligned
        let mask = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2, 3]),
            &Default::default(),
        );
        let weights = |a| {
            let rows = Tensor::<B, 2>::from_data(
                TensorData::new(row_weights(&[2, 3], a), [2, 1]),
                &Default::default(),
            );
            mask.clone() * rows.expand([2, 3])
        };
        let token = aggregate(loss.clone(), weights(Aggregation::TokenMean), 5.0).into_scalar();
        assert!((token - 23.0 / 5.0).abs() < 1e-6);
        // EasyR1: ((3 + 5)/2 + (2 + 4 + 9)/3) / 2 sequences · 5 tokens / 5 tokens
        let seq = aggregate(loss, weights(Aggregation::SeqMean), 5.0).into_scalar();
        assert!((seq - (4.0 + 5.0) / 2.0).abs() < 1e-6);
        assert_eq!(row_weights(&[2, 3], Aggregation::SeqMean), [1.25, 5.0 / 6.0]);
    }
}

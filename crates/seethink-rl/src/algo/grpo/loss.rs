//! The GRPO loss of EasyR1: clip-higher + dual-clip surrogate with a token-level or (GSPO) a
//! sequence-level importance ratio, k3 KL to a frozen reference, aggregated so that splitting a
//! mini-batch into micro-batches does not change it.
//!
//! All per-token tensors are `[sequences, response tokens]`, padded; `mask` is 1 on real
//! response tokens and 0 on padding.

use crate::train_backend::TrainBackend;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use seethink_models::kernels::Kernels;

/// How per-token losses are reduced over a mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Aggregation {
    /// `Σ_tokens loss / (response tokens in the mini-batch)` (the paper's).
    TokenMean,
    /// EasyR1's `seq` mode: per micro-batch the mean over its sequences of each sequence's
    /// token-mean, rescaled by the micro-batch's share of the mini-batch's tokens.
    SeqMean,
}

/// Which importance ratio the clipped surrogate uses (EasyR1's `loss_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LossType {
    /// Each token's own ratio `π(y_t)/π_old(y_t)` ([`policy_loss`]; EasyR1's `default`).
    #[default]
    Default,
    /// GSPO: every token of a response shares the response's length-normalised ratio
    /// ([`sequence_ratio`]; EasyR1's `gspo`).
    Gspo,
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
    pub loss_type: LossType,
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
pub fn policy_loss<B: Kernels>(
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

/// GSPO's per-response quantities for one micro-batch, `[sequences, 1]` each, without gradient
/// (see [`sequence_ratio`]).
#[derive(Clone)]
pub struct SequenceRatio<B: Backend> {
    /// The clipped surrogate of each response, `pg_i`.
    pub pg: Tensor<B, 2>,
    /// `pg_i'(s_i) · L_i / (L_i + 1e-8)`: what each of the response's token log-probs gets.
    pub slope: Tensor<B, 2>,
    /// 1 where clipping changed `pg_i`.
    pub clipped: Tensor<B, 2>,
}

/// GSPO (EasyR1's `loss_type: gspo`) from whole responses: the length-normalised log ratio
/// `s_i = Σ_t m_it (logp_it − old_it) / (Σ_t m_it + 1e-8)` stands for every token's log ratio
/// in [`policy_loss`] (same clamps, clip-higher and dual clip), so `pg_i = policy_loss(s_i)`;
/// its derivative `pg_i'` is taken by autodiff through the same formula.
/// `logp`, `old_logp`, `mask` are `[sequences, width]`, `advantages` `[sequences, 1]`.
pub fn sequence_ratio<B: TrainBackend>(
    logp: Tensor<B, 2>,
    old_logp: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    config: &GrpoLossConfig,
) -> SequenceRatio<B> {
    let lengths = mask.clone().detach().sum_dim(1);
    let s = ((logp - old_logp) * mask).detach().sum_dim(1) / (lengths.clone() + 1e-8);
    let s = s.require_grad();
    let surrogate = policy_loss(s.clone(), s.zeros_like(), advantages.detach(), config);
    let grads = surrogate.per_token.clone().sum().backward();
    let derivative = s.grad(&grads).map_or_else(|| s.zeros_like(), Tensor::from_inner);
    SequenceRatio {
        pg: surrogate.per_token.detach(),
        slope: (derivative * lengths.clone() / (lengths + 1e-8)).detach(),
        clipped: surrogate.clipped.detach(),
    }
}

/// GSPO's loss per token of one chunk: row i's tokens carry the value `pg_i` and the gradient
/// `slope_i · ∇logp_t`, as `pg_i + slope_i · (logp − stopgrad(logp))`. Aggregated with weights
/// `w_it = m_it·r_i` ([`row_weights`]), the gradient is `Σ_i r_i L_i pg_i'(s_i) ∇s_i`, that of the
/// aggregated sequence-level loss `Σ_i Σ_t w_it pg_i(s_i)`, chunk by chunk.
pub fn sequence_policy_loss<B: Kernels>(logp: Tensor<B, 2>, ratio: &SequenceRatio<B>) -> PolicyLoss<B> {
    let shape = logp.dims();
    let tracked = logp.clone() - logp.detach();
    let per_token = ratio.pg.clone().expand(shape) + ratio.slope.clone().expand(shape) * tracked;
    PolicyLoss { per_token, clipped: ratio.clipped.clone().expand(shape) }
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
    pub fn estimate<B: Kernels>(self, logp: Tensor<B, 2>, ref_logp: Tensor<B, 2>) -> Tensor<B, 2> {
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
pub fn kl_k3<B: Kernels>(logp: Tensor<B, 2>, ref_logp: Tensor<B, 2>) -> Tensor<B, 2> {
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
pub fn aggregate<B: Kernels>(
    per_token: Tensor<B, 2>,
    weights: Tensor<B, 2>,
    normaliser: f32,
) -> Tensor<B, 1> {
    (per_token * weights).sum() / normaliser
}

/// What a policy loss sees of one chunk of a micro-batch, all `[responses, width]` (response
/// tokens right-aligned, padding where `mask` is 0) but `advantages`, `[responses, 1]`.
pub struct LossInputs<B: Backend> {
    /// The policy's log-probs of the sampled tokens, with gradient.
    pub logp: Tensor<B, 2>,
    /// The log-probs the rollout's policy gave them (no gradient).
    pub old_logp: Tensor<B, 2>,
    pub advantages: Tensor<B, 2>,
    pub mask: Tensor<B, 2>,
    /// The mini-batch these tokens belong to.
    pub mini_batch: MiniBatch,
}

/// The shape of the mini-batch a loss is aggregated over. The step sums each token's loss
/// times its aggregation weight (`actor.aggregation`, token-mean by default) and divides by
/// `tokens`: a loss that normalises otherwise scales its tokens by what it needs of this.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MiniBatch {
    /// Response tokens in the mini-batch: the aggregation's normaliser.
    pub tokens: usize,
    /// Responses in the mini-batch.
    pub responses: usize,
    /// The rollout's `max_new_tokens`.
    pub max_response_tokens: usize,
}

/// A token-level policy loss: per-token loss and where it clipped, from a chunk's log-probs
/// and the loss settings of the config (`actor.clip_low`, `clip_high`, `dual_clip`).
pub type PolicyLossFn<B> = fn(LossInputs<B>, &GrpoLossConfig) -> PolicyLoss<B>;

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
    /// 1 on response tokens, 0 on padding.
    pub mask: Tensor<B, 2>,
    /// `mask` × [`row_weights`] of the aggregation.
    pub weights: Tensor<B, 2>,
    /// The mini-batch the loss is aggregated over.
    pub mini_batch: MiniBatch,
    /// GSPO's ratios ([`LossType::Gspo`]), replacing the token-level surrogate; `None` otherwise.
    pub sequence: Option<SequenceRatio<B>>,
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

impl<B: Kernels> TokenBatchLoss<B> {
    /// `aggregate(pg + kl_coef·kl)` (pg: the token-level `loss` ([`PolicyLossFn`], e.g.
    /// [`policy_loss`]), or [`sequence_policy_loss`] given GSPO's ratios; kl: the config's
    /// [`KlPenalty`] estimate) with the mini-batch's response tokens as the normaliser of
    /// [`aggregate`].
    pub fn terms(self, config: &GrpoLossConfig, loss: PolicyLossFn<B>) -> LossTerms<B> {
        let normaliser = self.mini_batch.tokens as f32;
        let pg = match &self.sequence {
            Some(ratio) => sequence_policy_loss(self.logp.clone(), ratio),
            None => loss(
                LossInputs {
                    logp: self.logp.clone(),
                    old_logp: self.old_logp,
                    advantages: self.advantages,
                    mask: self.mask,
                    mini_batch: self.mini_batch,
                },
                config,
            ),
        };
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

    type AB = burn::backend::Autodiff<B>;

    fn ad(values: &[f32], shape: [usize; 2]) -> Tensor<AB, 2> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
    }

    #[test]
    fn gspo_ratios_by_hand() {
        let c = GrpoLossConfig::default();
        let ln = |x: f32| x.ln();
        // row 0: two tokens (one pad), log ratios ln 1.1, ln 1.3: s = ln √1.43, ratio 1.19583,
        // inside the clip range with A = +1: pg = −1.19583, slope = −1.19583 (d(−e^s)/ds);
        // row 1: three tokens at ln 2: ratio 2 > 1.3 with A = +1, clipped: pg = −1.3, slope 0
        let logp = ad(&[0.0, ln(1.1), ln(1.3), ln(2.0), ln(2.0), ln(2.0)], [2, 3]);
        let mask = ad(&[0.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2, 3]);
        let r = sequence_ratio(logp, ad(&[0.0; 6], [2, 3]), mask, ad(&[1.0, 1.0], [2, 1]), &c);
        let v = |t: Tensor<AB, 2>| -> Vec<f32> { t.into_data().to_vec().unwrap() };
        let ratio = 1.43f32.sqrt();
        for (x, e) in v(r.pg).iter().zip([-ratio, -1.3]).chain(v(r.slope).iter().zip([-ratio, 0.0])) {
            assert!((x - e).abs() < 1e-5, "{x} vs {e}");
        }
        assert_eq!(v(r.clipped), [0.0, 1.0]);
    }

    #[test]
    fn gspo_chunk_loss_has_the_sequence_level_gradient() {
        // EasyR1's gspo directly: s_i = masked mean of the log ratio, every token's log ratio
        // s_i, policy_loss, aggregated; against sequence_ratio + sequence_policy_loss
        let c = GrpoLossConfig::default();
        let values = [0.0, -0.3, 0.2, 0.1, 0.5, -0.2, 0.0, 0.0, 0.3];
        let old = ad(&[0.0, -0.1, 0.1, 0.3, 0.2, 0.1, 0.0, 0.0, 0.1], [3, 3]);
        let mask = ad(&[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0], [3, 3]);
        let advantages = ad(&[1.0, -1.0, 0.5], [3, 1]);
        let weights = mask.clone() * ad(&[1.0, 0.5, 2.0], [3, 1]).expand([3, 3]);
        let direct = {
            let logp = ad(&values, [3, 3]).require_grad();
            let s =
                ((logp.clone() - old.clone()) * mask.clone()).sum_dim(1) / (mask.clone().sum_dim(1) + 1e-8);
            let per_token =
                policy_loss(s.expand([3, 3]) * mask.clone(), old.zeros_like(), advantages.clone(), &c);
            let loss = aggregate(per_token.per_token, weights.clone(), 6.0);
            let grads = loss.clone().backward();
            (loss.into_scalar(), logp.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap())
        };
        let chunked = {
            let logp = ad(&values, [3, 3]).require_grad();
            let ratios =
                sequence_ratio(logp.clone().detach(), old.clone(), mask.clone(), advantages.clone(), &c);
            let loss = aggregate(sequence_policy_loss(logp.clone(), &ratios).per_token, weights, 6.0);
            let grads = loss.clone().backward();
            (loss.into_scalar(), logp.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap())
        };
        assert!((direct.0 - chunked.0).abs() < 1e-6, "{} vs {}", direct.0, chunked.0);
        for (d, g) in direct.1.iter().zip(&chunked.1) {
            assert!((d - g).abs() < 1e-6, "{:?} vs {:?}", direct.1, chunked.1);
        }
        assert!(direct.1.iter().any(|g| g.abs() > 1e-3), "a gradient to compare: {:?}", direct.1);
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

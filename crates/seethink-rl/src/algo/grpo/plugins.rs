//! Policy losses and advantage estimators by name, as verl registers them
//! (`register_policy_loss`, `register_adv_est` in `verl/trainer/ppo/core_algos.py`): the config
//! names one of each (`algorithm.loss: "cispo"`, `algorithm.estimator: "rloo"`), and the stock
//! GRPO step ([`crate::grpo::Grpo`]) runs it with everything it offers (online filtering,
//! refills, data parallelism, sharding, the overlong penalty). Built-ins are registered the
//! same way a user's are ([`Plugins::builtin`], [`Plugins::with_loss`],
//! [`Plugins::with_estimator`]); an unknown name is refused with the known ones.

use std::collections::BTreeMap;

use seethink_models::kernels::Kernels;
use serde::{Deserialize, Deserializer, Serialize};

use super::advantage::{advantages, AdvantageOptions, Estimator};
use super::loss::{policy_loss, GrpoLossConfig, LossInputs, MiniBatch, PolicyLoss, PolicyLossFn};

/// What an estimator sees: one score per response, laid out as consecutive groups of `group`
/// samples per prompt, of responses `lengths` tokens long.
pub struct EstimatorInputs<'a> {
    pub scores: &'a [f32],
    pub lengths: &'a [usize],
    pub group: usize,
    /// `algorithm.normalize_std`: whether an estimator that may divide by the group's standard
    /// deviation does.
    pub normalize_std: bool,
}

/// An outcome advantage estimator: one advantage per response, shared by its tokens.
pub type EstimatorFn = fn(&EstimatorInputs<'_>) -> Vec<f32>;

/// Losses and estimators by name.
pub struct Plugins<B: Kernels> {
    losses: BTreeMap<String, PolicyLossFn<B>>,
    estimators: BTreeMap<String, EstimatorFn>,
}

impl<B: Kernels> Clone for Plugins<B> {
    fn clone(&self) -> Self {
        Self { losses: self.losses.clone(), estimators: self.estimators.clone() }
    }
}

impl<B: Kernels> Plugins<B> {
    /// The built-ins. Losses: `vanilla` (EasyR1's clipped surrogate, [`vanilla`]), `cispo`
    /// ([`cispo`]), `dr_grpo` ([`dr_grpo`]). Estimators: `grpo`, `rloo`, `reinforce_plus_plus`,
    /// `reinforce_plus_plus_baseline` ([`advantages`]), `dr_grpo` (the group-centred score,
    /// [`dr_grpo_advantages`]).
    pub fn builtin() -> Self {
        let estimators: [(&str, EstimatorFn); 4] = [
            ("grpo", |x| by_estimator(x, Estimator::Grpo)),
            ("rloo", |x| by_estimator(x, Estimator::Rloo)),
            ("reinforce_plus_plus", |x| by_estimator(x, Estimator::ReinforcePlusPlus)),
            ("reinforce_plus_plus_baseline", |x| by_estimator(x, Estimator::ReinforcePlusPlusBaseline)),
        ];
        let plugins = Self { losses: BTreeMap::new(), estimators: BTreeMap::new() }
            .with_loss("vanilla", vanilla)
            .with_loss("cispo", cispo)
            .with_loss("dr_grpo", dr_grpo)
            .with_estimator("dr_grpo", dr_grpo_advantages);
        estimators.into_iter().fold(plugins, |plugins, (name, f)| plugins.with_estimator(name, f))
    }

    /// These plugins with `loss` under `name` (replacing one of that name).
    pub fn with_loss(mut self, name: &str, loss: PolicyLossFn<B>) -> Self {
        self.losses.insert(name.to_string(), loss);
        self
    }

    /// These plugins with `estimator` under `name` (replacing one of that name).
    pub fn with_estimator(mut self, name: &str, estimator: EstimatorFn) -> Self {
        self.estimators.insert(name.to_string(), estimator);
        self
    }

    /// The loss named `name`; an error naming the known ones if there is none.
    pub fn loss(&self, name: &PluginName) -> Result<PolicyLossFn<B>, String> {
        lookup(&self.losses, name, "algorithm.loss")
    }

    /// The estimator named `name`; an error naming the known ones if there is none.
    pub fn estimator(&self, name: &PluginName) -> Result<EstimatorFn, String> {
        lookup(&self.estimators, name, "algorithm.estimator")
    }
}

fn lookup<F: Copy>(registry: &BTreeMap<String, F>, name: &PluginName, key: &str) -> Result<F, String> {
    registry.get(name.as_str()).copied().ok_or_else(|| {
        let known: Vec<&str> = registry.keys().map(String::as_str).collect();
        format!("{key} `{}` is not registered; known: {}", name.as_str(), known.join(", "))
    })
}

/// A built-in estimator as [`advantages`] computes it.
fn by_estimator(x: &EstimatorInputs<'_>, estimator: Estimator) -> Vec<f32> {
    let options = AdvantageOptions { estimator, normalize_std: x.normalize_std, ..Default::default() };
    advantages(x.scores, x.lengths, x.group, options)
}

/// Dr. GRPO's advantages (Liu et al. 2025, "Understanding R1-Zero-Like Training"): the score
/// against its group's mean, not divided by the group's standard deviation,
/// `A_i = r_i − mean_g`, whatever `normalize_std` says.
pub fn dr_grpo_advantages(x: &EstimatorInputs<'_>) -> Vec<f32> {
    by_estimator(&EstimatorInputs { normalize_std: false, ..*x }, Estimator::Grpo)
}

/// EasyR1's clipped surrogate per token ([`policy_loss`]: clip-higher and dual clip).
pub fn vanilla<B: Kernels>(x: LossInputs<B>, config: &GrpoLossConfig) -> PolicyLoss<B> {
    policy_loss(x.logp, x.old_logp, x.advantages, config)
}

/// CISPO (MiniMax-M1, arXiv 2506.13585): every token's gradient flows through `log π`, weighted
/// by its importance ratio clipped from above and detached:
/// `loss_t = −sg(min(ρ_t, 1 + ε_high)) · A · log π(y_t)`, `ρ_t = exp(logp − old)`, so
/// `∂loss_t/∂logp_t = −min(ρ_t, 1 + ε_high) · A` (no token is cut off, unlike PPO's clip).
/// `clipped` marks the tokens whose ratio was capped.
pub fn cispo<B: Kernels>(x: LossInputs<B>, config: &GrpoLossConfig) -> PolicyLoss<B> {
    let ratio = (x.logp.clone() - x.old_logp).clamp(-20.0, 20.0).exp().detach();
    let cap = 1.0 + config.clip_high;
    let clipped = ratio.clone().greater_elem(cap).float();
    let weight = ratio.clamp_max(cap);
    let shape = x.logp.dims();
    let per_token = weight * x.advantages.expand(shape).neg() * x.logp;
    PolicyLoss { per_token, clipped }
}

/// Dr. GRPO's loss (Liu et al. 2025): the clipped surrogate summed over each response's tokens
/// and divided by a constant, the rollout's `max_new_tokens`, not by the response's length:
/// `L = Σ_i Σ_t pg_it / (|mini-batch| · L_max)`. Under the step's aggregation
/// (`Σ loss_t · w_t / tokens`, token-mean weights 1) each token carries
/// `pg_t · tokens / (responses · L_max)`.
pub fn dr_grpo<B: Kernels>(x: LossInputs<B>, config: &GrpoLossConfig) -> PolicyLoss<B> {
    let MiniBatch { tokens, responses, max_response_tokens } = x.mini_batch;
    let scale = tokens as f32 / (responses.max(1) * max_response_tokens.max(1)) as f32;
    let surrogate = policy_loss(x.logp, x.old_logp, x.advantages, config);
    PolicyLoss { per_token: surrogate.per_token * scale, clipped: surrogate.clipped }
}

/// The name of a registered loss or estimator. RON writes it as a string (`"rloo"`) or bare
/// (`rloo`, as `--set algorithm.estimator=rloo` does); the enum variants of earlier configs
/// (`Rloo`, `ReinforcePlusPlusBaseline`) read as their snake-case names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PluginName(String);

impl PluginName {
    pub fn new(name: &str) -> Self {
        Self(snake_case(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PluginName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PluginName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // untagged: serde reads a string, and RON hands it a bare identifier as its name
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Name(String),
        }
        let Written::Name(name) = Written::deserialize(deserializer)?;
        Ok(Self::new(&name))
    }
}

/// `ReinforcePlusPlus` → `reinforce_plus_plus`; a snake-case name is unchanged.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Tensor, TensorData};

    use super::*;

    type B = Autodiff<NdArray>;

    fn t(values: &[f32], shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
    }

    fn values(x: Tensor<B, 2>) -> Vec<f32> {
        x.into_data().to_vec().unwrap()
    }

    fn close(got: &[f32], expected: &[f32]) {
        assert_eq!(got.len(), expected.len(), "{got:?} vs {expected:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
        }
    }

    /// The loss's per-token values and `∂(Σ loss)/∂logp` at `logp` (old log-probs 0, so
    /// `ρ = e^logp`), advantages one per row.
    fn loss_and_gradient(
        loss: PolicyLossFn<B>,
        logp: &[f32],
        advantages: &[f32],
        mini_batch: MiniBatch,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let shape = [advantages.len(), logp.len() / advantages.len()];
        let tracked = t(logp, shape).require_grad();
        let x = LossInputs {
            logp: tracked.clone(),
            old_logp: t(&vec![0.0; logp.len()], shape),
            advantages: t(advantages, [advantages.len(), 1]),
            mask: t(&vec![1.0; logp.len()], shape),
            mini_batch,
        };
        let out = loss(x, &GrpoLossConfig::default());
        let grads = out.per_token.clone().sum().backward();
        let gradient = tracked.grad(&grads).unwrap().into_data().to_vec().unwrap();
        (values(out.per_token), gradient, values(out.clipped))
    }

    const MINI_BATCH: MiniBatch = MiniBatch { tokens: 3, responses: 1, max_response_tokens: 4 };

    #[test]
    fn cispo_weighs_log_pi_by_the_detached_ratio_capped_above() {
        // ρ = 0.5, 1.1, 2.0 with A = +1 and ε_high 0.3: weights 0.5, 1.1, 1.3 (capped);
        // loss_t = −w·logp, ∂/∂logp = −w; the low ratio is not cut off (PPO's clip would)
        let ln = |x: f32| x.ln();
        let logp = [ln(0.5), ln(1.1), ln(2.0)];
        let (loss, grad, clipped) = loss_and_gradient(cispo, &logp, &[1.0], MINI_BATCH);
        close(&loss, &[-0.5 * ln(0.5), -1.1 * ln(1.1), -1.3 * ln(2.0)]);
        close(&grad, &[-0.5, -1.1, -1.3]);
        assert_eq!(clipped, [0.0, 0.0, 1.0]);
        // A = −2: the signs turn, the same weights
        let (_, grad, _) = loss_and_gradient(cispo, &logp, &[-2.0], MINI_BATCH);
        close(&grad, &[1.0, 2.2, 2.6]);
    }

    #[test]
    fn dr_grpo_scales_the_surrogate_to_a_constant_length() {
        // ρ = 1.1 inside the clip, A = +1: pg = −ρ, ∂pg/∂logp = −ρ; 3 tokens of 1 response,
        // L_max 4: each token × 3/4, so the token-mean aggregate Σ/3 is Σ pg / (1 · 4)
        let ln = |x: f32| x.ln();
        let (loss, grad, _) = loss_and_gradient(dr_grpo, &[ln(1.1), 0.0, ln(2.0)], &[1.0], MINI_BATCH);
        close(&loss, &[-1.1 * 0.75, -0.75, -1.3 * 0.75]);
        // the clipped token (ρ = 2 > 1.3) has no gradient, as in PPO
        close(&grad, &[-1.1 * 0.75, -0.75, 0.0]);
    }

    #[test]
    fn estimators_by_name_and_unknown_names_listed() {
        let plugins = Plugins::<NdArray>::builtin();
        let x = EstimatorInputs {
            scores: &[1.0, 0.0, 0.0, 1.0],
            lengths: &[3; 4],
            group: 4,
            normalize_std: true,
        };
        close(&plugins.estimator(&PluginName::new("dr_grpo")).unwrap()(&x), &[0.5, -0.5, -0.5, 0.5]);
        close(
            &plugins.estimator(&PluginName::new("Rloo")).unwrap()(&x),
            &[2.0 / 3.0, -2.0 / 3.0, -2.0 / 3.0, 2.0 / 3.0],
        );
        let message = plugins.loss(&PluginName::new("cispoo")).unwrap_err();
        assert_eq!(message, "algorithm.loss `cispoo` is not registered; known: cispo, dr_grpo, vanilla");
        assert!(plugins
            .estimator(&PluginName::new("ppo"))
            .unwrap_err()
            .contains("grpo, reinforce_plus_plus"));
    }

    #[test]
    fn names_read_from_strings_and_from_the_enums_of_earlier_configs() {
        let written = [
            (r#""rloo""#, "rloo"),
            ("rloo", "rloo"),
            ("Rloo", "rloo"),
            ("ReinforcePlusPlusBaseline", "reinforce_plus_plus_baseline"),
        ];
        for (ron, name) in written {
            assert_eq!(ron::from_str::<PluginName>(ron).unwrap().as_str(), name, "{ron}");
        }
        assert_eq!(ron::to_string(&PluginName::new("cispo")).unwrap(), r#""cispo""#);
    }
}

//! LoRA adapters (Hu et al. 2021) on a [`Linear`](super::Linear): peft's `LoraLayer` for
//! `nn.Linear` (`peft/tuners/lora/layer.py`, peft 0.21), its settings and its merge.

use burn::module::{Module, Param};
use burn::nn::Dropout;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::frozen::{float_dtype, weight_product};
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;

/// The decoder projections LoRA can adapt, by the names peft's `target_modules` uses.
pub const LORA_TARGETS: [&str; 7] =
    ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// The part of a model a linear layer belongs to, which decides the [`LoraConfig`] setting that
/// chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoraPart {
    /// The language model's decoder layers (`target_modules`).
    Decoder,
    /// The vision tower's blocks (`vision_modules`).
    Vision,
    /// The projector from the vision tower into the language model (`projector`).
    Projector,
}

/// LoRA's settings (peft's `LoraConfig` fields of the same meaning; verl calls `rank` and
/// `alpha` `lora_rank` and `lora_alpha`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// The adapters' rank r (peft's `r`).
    pub rank: usize,
    /// peft's `lora_alpha`: the update is scaled by `alpha / rank` (`alpha / √rank` with
    /// `rslora`).
    pub alpha: f64,
    /// Dropout on the adapters' input (peft's `lora_dropout`), applied only under autodiff.
    pub dropout: f64,
    /// peft's `use_rslora`: scale by `alpha / √rank`.
    pub rslora: bool,
    /// The decoder projections adapted in every layer, from [`LORA_TARGETS`].
    pub target_modules: Vec<String>,
    /// The vision tower's linear layers adapted in every block, by their names in the family's
    /// module paths (Qwen2.5-VL: `qkv`, `proj`, `gate_proj`, `up_proj`, `down_proj`; Qwen3-VL:
    /// `qkv`, `proj`, `linear_fc1`, `linear_fc2`; InternVL: `q_proj`, `k_proj`, `v_proj`,
    /// `projection_layer`, `fc1`, `fc2`, or in the original release `qkv`, `proj`, `fc1`,
    /// `fc2`); none by default. The patch embedding (a convolution in transformers) is not
    /// adapted.
    pub vision_modules: Vec<String>,
    /// Adapt every linear layer of the projector into the language model: Qwen's merger and
    /// Qwen3-VL's DeepStack mergers, InternVL's `multi_modal_projector` (`mlp1`).
    pub projector: bool,
    /// Seed of A's initialisation.
    pub seed: u64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            dropout: 0.0,
            rslora: false,
            target_modules: LORA_TARGETS.iter().map(|s| s.to_string()).collect(),
            vision_modules: Vec::new(),
            projector: false,
            seed: 0,
        }
    }
}

impl LoraConfig {
    /// Checks every setting; the error names the key (`rank: must be at least 1, got 0`).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(ModelError::Lora(format!("{key}: {message}")));
        if self.rank == 0 {
            return bad("rank", "must be at least 1, got 0".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("alpha", format!("must be positive and finite, got {}", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        if self.target_modules.is_empty() && self.vision_modules.is_empty() && !self.projector {
            let message = "must name at least one module (or set vision_modules or projector)";
            return bad("target_modules", message.into());
        }
        if let Some(unknown) = self.target_modules.iter().find(|m| !LORA_TARGETS.contains(&m.as_str())) {
            return bad(
                "target_modules",
                format!("unknown module `{unknown}` (known: {})", LORA_TARGETS.join(", ")),
            );
        }
        Ok(())
    }

    /// The update's scale, as peft's `update_layer`: `alpha / r`, or `alpha / √r` with rsLoRA.
    pub fn scaling(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// Whether the linear layer `name` of `part` is adapted.
    pub fn adapts(&self, part: LoraPart, name: &str) -> bool {
        match part {
            LoraPart::Decoder => self.target_modules.iter().any(|m| m == name),
            LoraPart::Vision => self.vision_modules.iter().any(|m| m == name),
            LoraPart::Projector => self.projector,
        }
    }

    /// Checks `vision_modules` against `known`, the names of a model's vision linear layers;
    /// the error names the key and lists them.
    pub fn check_vision_modules(&self, known: &[&str]) -> Result<()> {
        match self.vision_modules.iter().find(|m| !known.contains(&m.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ModelError::Lora(format!(
                "vision_modules: unknown module `{unknown}` for this model's vision tower (its linear layers: {})",
                known.join(", ")
            ))),
        }
    }
}

/// `t` in the backend's float type: a frozen adapter's factors may be stored narrower
/// ([`store_frozen`](super::store_frozen)), as any frozen matrix.
fn widened<B: Backend>(t: Tensor<B, 2>) -> Tensor<B, 2> {
    match t.dtype() == float_dtype::<B>() {
        true => t,
        false => t.cast(float_dtype::<B>()),
    }
}

/// One adapter: `Δ(x) = scaling · (dropout(x)·A)·B` with `A [d_in, r]`, `B [r, d_out]` (peft
/// stores their transposes, `lora_A.weight [r, d_in]` and `lora_B.weight [d_out, r]`).
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    pub lora_a: Param<Tensor<B, 2>>,
    pub lora_b: Param<Tensor<B, 2>>,
    pub scaling: f64,
    pub dropout: Dropout,
}

impl<B: Backend> LoraAdapter<B> {
    /// A fresh adapter for a `[d_in, d_out]` layer, as peft's `reset_lora_parameters` with
    /// `init_lora_weights=True`: B = 0, and A by `kaiming_uniform_(a=√5)`, i.e. uniform on
    /// `[-1/√d_in, 1/√d_in]` (gain `√(2/(1+a²))`, bound `gain·√(3/d_in)`), drawn from a ChaCha8
    /// stream keyed by `seed` (torch's generator is not reproduced).
    pub fn init(d_in: usize, d_out: usize, config: &LoraConfig, seed: u64, device: &B::Device) -> Self {
        use rand::{Rng, SeedableRng};
        let r = config.rank;
        let bound = 1.0 / (d_in as f32).sqrt();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let a: Vec<f32> = (0..d_in * r).map(|_| rng.random_range(-bound..bound)).collect();
        let a = Tensor::from_data(TensorData::new(a, [d_in, r]), device);
        Self::from_factors(a, Tensor::zeros([r, d_out], device), config)
    }

    /// The adapter with factors `A [d_in, r]` and `B [r, d_out]` and `config`'s scaling and
    /// dropout.
    pub fn from_factors(a: Tensor<B, 2>, b: Tensor<B, 2>, config: &LoraConfig) -> Self {
        Self {
            lora_a: Param::from_tensor(a),
            lora_b: Param::from_tensor(b),
            scaling: config.scaling(),
            dropout: Dropout { prob: config.dropout },
        }
    }

    /// The weight update merged into `W [d_in, d_out]`: `scaling · A·B`, as peft's
    /// `get_delta_weight` (`(B_peft·A_peft)ᵀ · scaling`).
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        let (a, b) = (widened(self.lora_a.val()), widened(self.lora_b.val()));
        a.matmul(b) * self.scaling
    }
}

impl<B: Kernels> LoraAdapter<B> {
    /// `x [rows, d_in] → scaling · (dropout(x)·A)·B [rows, d_out]`, in peft's order
    /// (`lora_B(lora_A(dropout(x))) * scaling`), computed in `x`'s type whatever the factors are
    /// stored in ([`weight_product`]: a frozen tower's adapters are stored like its weights).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = self.dropout.forward(x);
        weight_product(weight_product(x, self.lora_a.val()), self.lora_b.val()) * self.scaling
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        let err = |c: LoraConfig| c.validate().unwrap_err().to_string();
        assert!(err(LoraConfig { rank: 0, ..Default::default() }).contains("rank: must be at least 1"));
        assert!(err(LoraConfig { alpha: -1.0, ..Default::default() }).contains("alpha:"));
        assert!(err(LoraConfig { dropout: 1.0, ..Default::default() }).contains("dropout:"));
        let unknown =
            LoraConfig { target_modules: vec!["q_proj".into(), "qkv".into()], ..Default::default() };
        assert!(err(unknown).contains("target_modules: unknown module `qkv`"));
        assert!(err(LoraConfig { target_modules: vec![], ..Default::default() }).contains("target_modules:"));
        LoraConfig::default().validate().unwrap();
    }

    #[test]
    fn scaling_is_alpha_over_rank_or_its_root() {
        let c = LoraConfig { rank: 4, alpha: 8.0, ..Default::default() };
        assert_eq!(c.scaling(), 2.0);
        assert_eq!(LoraConfig { rslora: true, ..c }.scaling(), 4.0);
    }

    #[test]
    fn init_is_kaiming_uniform_a_and_zero_b() {
        let c = LoraConfig { rank: 4, ..Default::default() };
        let adapter = LoraAdapter::<NdArray>::init(64, 16, &c, 7, &Default::default());
        let a = adapter.lora_a.val().into_data().to_vec::<f32>().unwrap();
        let b = adapter.lora_b.val().into_data().to_vec::<f32>().unwrap();
        assert_eq!((a.len(), b.len()), (64 * 4, 4 * 16));
        assert!(b.iter().all(|v| *v == 0.0));
        assert!(a.iter().all(|v| v.abs() <= 0.125) && a.iter().any(|v| v.abs() > 0.1), "U(-1/√64, 1/√64)");
        let again = LoraAdapter::<NdArray>::init(64, 16, &c, 7, &Default::default());
        assert_eq!(again.lora_a.val().into_data().to_vec::<f32>().unwrap(), a, "seeded");
    }
}

//! LoRA on a loaded model of any family: adapters on the decoder's projections, the base
//! model they sit on (the KL reference), their merge into the weights, and reading them out.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use super::AnyVlm;
use crate::checkpoint::{write_peft_adapter, HfTensor};
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::nn::{LoraAdapter, LoraConfig, LORA_TARGETS};
use crate::text::TextModel;

/// The name peft 0.21's `save_pretrained` gives factor `A` or `B` of layer `layer`'s projection
/// `module` of a Qwen2.5-VL or Qwen3-VL model (transformers ≥ 4.52 module paths, checked
/// against peft's own file by `tests/fixtures/lora_peft.py`):
/// `base_model.model.model.language_model.layers.{layer}.{self_attn|mlp}.{module}.lora_{factor}.weight`.
pub fn peft_key(layer: usize, module: &str, factor: char) -> String {
    let block = if ["q_proj", "k_proj", "v_proj", "o_proj"].contains(&module) { "self_attn" } else { "mlp" };
    format!("base_model.model.model.language_model.layers.{layer}.{block}.{module}.lora_{factor}.weight")
}

/// `t [a, b]` as a HF tensor `name` of shape `[b, a]` (its transpose, row-major).
fn hf_transposed<B: Backend>(name: String, t: Tensor<B, 2>) -> HfTensor {
    let t = t.transpose();
    let shape = t.dims().to_vec();
    (name, shape, t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 values"))
}

impl<B: Kernels> AnyVlm<B> {
    /// The model for LoRA training, as peft's `get_peft_model` with `bias="none"`: every
    /// parameter frozen (no gradients), and a fresh adapter ([`LoraAdapter::init`]: B = 0, so
    /// the model computes what it did) on each of `config.target_modules` in every decoder
    /// layer. Layer i's projection k (in [`LORA_TARGETS`](crate::nn::LORA_TARGETS) order) draws
    /// A from seed `config.seed + 7i + k`. An error naming the setting for an invalid `config`.
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self> {
        config.validate()?;
        let mut model = self.no_grad();
        for (k, (_, name, linear)) in decoder_mut(&mut model).projections_mut().into_iter().enumerate() {
            if config.targets(name) {
                let [d_in, d_out] = linear.dims();
                let device = linear.weight.device();
                let seed = config.seed.wrapping_add(k as u64);
                linear.lora = Some(LoraAdapter::init(d_in, d_out, config, seed, &device));
            }
        }
        Ok(model)
    }

    /// The model with adapters on the decoder projections `adapters` names (layer, projection,
    /// adapter), replacing any there; the rest unchanged.
    pub fn with_adapters(mut self, adapters: Vec<(usize, &str, LoraAdapter<B>)>) -> Self {
        let mut adapters = adapters;
        for (layer, name, linear) in decoder_mut(&mut self).projections_mut() {
            if let Some(i) = adapters.iter().position(|(l, n, _)| *l == layer && *n == name) {
                linear.lora = Some(adapters.swap_remove(i).2);
            }
        }
        self
    }

    /// The base model: this one without its adapters. Its parameters are this model's (a
    /// module clone shares their storage), so it costs no copy of the weights; with LoRA it
    /// is the KL reference, as verl's reference with the adapters disabled.
    pub fn without_lora(&self) -> Self {
        let mut model = self.clone();
        for (_, _, linear) in decoder_mut(&mut model).projections_mut() {
            linear.lora = None;
        }
        model
    }

    /// The model with every adapter merged into its weight, `W + scaling·A·B`
    /// ([`Linear::merge_lora`](crate::nn::Linear::merge_lora)), and removed; unchanged without adapters.
    pub fn merge_lora(mut self) -> Self {
        for (_, _, linear) in decoder_mut(&mut self).projections_mut() {
            linear.merge_lora();
        }
        self
    }

    /// The adapters (clones sharing storage) with their layer and projection name, in layer
    /// order and [`LORA_TARGETS`](crate::nn::LORA_TARGETS) order within a layer; empty
    /// without LoRA.
    pub fn adapters(&self) -> Vec<(usize, &'static str, LoraAdapter<B>)> {
        let mut model = self.clone();
        let projections = decoder_mut(&mut model).projections_mut();
        projections
            .into_iter()
            .filter_map(|(layer, name, linear)| Some((layer, name, linear.lora.take()?)))
            .collect()
    }

    /// Writes the adapters as a PEFT adapter directory `out_dir` that peft's
    /// `PeftModel.from_pretrained` loads onto the base checkpoint: `adapter_model.safetensors`
    /// with peft's names ([`peft_key`]) and layouts (`lora_A.weight [r, d_in]` = Aᵀ,
    /// `lora_B.weight [d_out, r]` = Bᵀ), and `adapter_config.json` from `config` (the settings
    /// the adapters were made with) with `target_modules` a regex on the language model's
    /// projections only (a plain list would also match Qwen2.5-VL's vision MLPs). An error for
    /// InternVL (its peft module paths are not checked), without adapters, or when `config`
    /// does not describe them.
    pub fn save_peft_adapter(
        &self,
        out_dir: &Path,
        config: &LoraConfig,
        base_model_name_or_path: &str,
    ) -> Result<()> {
        let refuse = |message: &str| Err(ModelError::Lora(message.to_string()));
        if let AnyVlm::InternVl(_) = self {
            return refuse("PEFT adapter directories are written for Qwen2.5-VL and Qwen3-VL models only");
        }
        let adapters = self.adapters();
        if adapters.is_empty() {
            return refuse("the model has no adapters to write");
        }
        let described = |(_, module, a): &(usize, &str, LoraAdapter<B>)| {
            config.targets(module) && a.lora_a.dims()[1] == config.rank && a.scaling == config.scaling()
        };
        if !adapters.iter().all(described) {
            return refuse("the adapters' rank, scaling or modules differ from the given settings");
        }
        let tensors: Vec<HfTensor> = adapters
            .into_iter()
            .flat_map(|(layer, module, a)| {
                [
                    hf_transposed(peft_key(layer, module, 'A'), a.lora_a.val()),
                    hf_transposed(peft_key(layer, module, 'B'), a.lora_b.val()),
                ]
            })
            .collect();
        let modules: Vec<&str> = LORA_TARGETS.into_iter().filter(|t| config.targets(t)).collect();
        let regex = format!(r"model\.language_model\.layers\.\d+\.(self_attn|mlp)\.({})", modules.join("|"));
        write_peft_adapter(out_dir, config, &regex, base_model_name_or_path, &tensors)
    }
}

/// The text decoder of `model`, whatever the family.
fn decoder_mut<B: Kernels>(model: &mut AnyVlm<B>) -> &mut TextModel<B> {
    each_family!(model, m => &mut m.language_model)
}

//! LoRA on a loaded model of any family: adapters on the decoder's projections and, by choice,
//! on the vision tower's and the projector's linear layers; the base model they sit on (the KL
//! reference), their merge into the weights, and reading them out.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use super::internvl::config::Style;
use super::AnyVlm;
use crate::checkpoint::{write_peft_adapter, HfTensor};
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::nn::{LoraAdapter, LoraConfig, LoraPart, LoraSite};

/// The name peft 0.21's `save_pretrained` gives factor `A` or `B` of the LoRA layer at module
/// path `path` (a [`LoraSite::path`], e.g. `model.language_model.layers.0.self_attn.q_proj`):
/// `base_model.model.{path}.lora_{factor}.weight` (checked against peft's own files by
/// `tests/fixtures/lora_peft.py` and `lora_vision_peft.py`).
pub fn peft_key(path: &str, factor: char) -> String {
    format!("base_model.model.{path}.lora_{factor}.weight")
}

/// `t [a, b]` as a HF tensor `name` of shape `[b, a]` (its transpose, row-major).
fn hf_transposed<B: Backend>(name: String, t: Tensor<B, 2>) -> HfTensor {
    let t = t.transpose();
    let shape = t.dims().to_vec();
    (name, shape, t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 values"))
}

impl<B: Kernels> AnyVlm<B> {
    /// The linear layers LoRA can adapt, with their module paths: the decoder's projections
    /// (layer by layer, [`LORA_TARGETS`](crate::nn::LORA_TARGETS) order within a layer), then
    /// the vision tower's blocks', then the projector's.
    pub fn lora_sites_mut(&mut self) -> Vec<LoraSite<'_, B>> {
        each_family!(self, m => m.lora_sites_mut())
    }

    /// The model for LoRA training, as peft's `get_peft_model` with `bias="none"`: every
    /// parameter frozen (no gradients), and a fresh adapter ([`LoraAdapter::init`]: B = 0, so
    /// the model computes what it did) on each linear layer `config` chooses
    /// ([`LoraConfig::adapts`]). The k-th of [`Self::lora_sites_mut`] draws A from seed
    /// `config.seed + k`. An error naming the setting for an invalid `config`, or for a
    /// `vision_modules` name this model's vision tower does not have.
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self> {
        config.validate()?;
        let mut model = self.no_grad();
        let sites = model.lora_sites_mut();
        let mut vision: Vec<&str> = Vec::new();
        for name in sites.iter().filter(|s| s.part == LoraPart::Vision).map(|s| s.name()) {
            if !vision.contains(&name) {
                vision.push(name);
            }
        }
        config.check_vision_modules(&vision)?;
        for (k, site) in sites.into_iter().enumerate() {
            if config.adapts(site.part, site.name()) {
                let [d_in, d_out] = site.linear.dims();
                let device = site.linear.weight.device();
                let seed = config.seed.wrapping_add(k as u64);
                site.linear.lora = Some(LoraAdapter::init(d_in, d_out, config, seed, &device));
            }
        }
        Ok(model)
    }

    /// The model with the adapters `adapters` names by module path ([`LoraSite::path`]),
    /// replacing any there; the rest unchanged.
    pub fn with_adapters(mut self, adapters: Vec<(String, LoraAdapter<B>)>) -> Self {
        let mut adapters = adapters;
        for site in self.lora_sites_mut() {
            let site_path = site.path();
            if let Some(i) = adapters.iter().position(|(path, _)| *path == site_path) {
                site.linear.lora = Some(adapters.swap_remove(i).1);
            }
        }
        self
    }

    /// The base model: this one without its adapters. Its parameters are this model's (a
    /// module clone shares their storage), so it costs no copy of the weights; with LoRA it
    /// is the KL reference, as verl's reference with the adapters disabled.
    pub fn without_lora(&self) -> Self {
        let mut model = self.clone();
        for site in model.lora_sites_mut() {
            site.linear.lora = None;
        }
        model
    }

    /// The model with every adapter merged into its weight, `W + scaling·A·B`
    /// ([`Linear::merge_lora`](crate::nn::Linear::merge_lora)), and removed; unchanged without adapters.
    pub fn merge_lora(mut self) -> Self {
        for site in self.lora_sites_mut() {
            site.linear.merge_lora();
        }
        self
    }

    /// The adapters (clones sharing storage) with their module paths, in
    /// [`Self::lora_sites_mut`] order; empty without LoRA.
    pub fn adapters(&self) -> Vec<(String, LoraAdapter<B>)> {
        let mut model = self.clone();
        let sites = model.lora_sites_mut();
        sites.into_iter().filter_map(|site| Some((site.path(), site.linear.lora.take()?))).collect()
    }

    /// Whether [`Self::save_peft_adapter`] writes this model's adapters: every family but
    /// InternVL's original release, whose module paths come from remote code peft was not
    /// checked against.
    pub fn writes_peft_adapters(&self) -> bool {
        !matches!(self, AnyVlm::InternVl(m) if m.config.style == Style::Original)
    }

    /// Writes the adapters as a PEFT adapter directory `out_dir` that peft's
    /// `PeftModel.from_pretrained` loads onto the base checkpoint: `adapter_model.safetensors`
    /// with peft's names ([`peft_key`]) and layouts (`lora_A.weight [r, d_in]` = Aᵀ,
    /// `lora_B.weight [d_out, r]` = Bᵀ), and `adapter_config.json` from `config` (the settings
    /// the adapters were made with) with `target_modules` a regex matching exactly the adapted
    /// layers ([`LoraSite::pattern`]: a plain list of names would also match Qwen2.5-VL's
    /// vision MLPs with the decoder's). An error for InternVL's original release (its module
    /// paths come from remote code peft was not checked against), without adapters, or when
    /// `config` does not describe them.
    pub fn save_peft_adapter(
        &self,
        out_dir: &Path,
        config: &LoraConfig,
        base_model_name_or_path: &str,
    ) -> Result<()> {
        let refuse = |message: &str| Err(ModelError::Lora(message.to_string()));
        if !self.writes_peft_adapters() {
            return refuse(
                "PEFT adapter directories are written for transformers' model classes; this InternVL \
                 checkpoint is the original release (internvl_chat): export the merged model instead",
            );
        }
        let mut model = self.clone();
        let mut tensors: Vec<HfTensor> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for site in model.lora_sites_mut() {
            let Some(a) = site.linear.lora.take() else { continue };
            let described = config.adapts(site.part, site.name())
                && a.lora_a.dims()[1] == config.rank
                && a.scaling == config.scaling();
            if !described {
                return refuse("the adapters' rank, scaling or modules differ from the given settings");
            }
            let path = site.path();
            tensors.push(hf_transposed(peft_key(&path, 'A'), a.lora_a.val()));
            tensors.push(hf_transposed(peft_key(&path, 'B'), a.lora_b.val()));
            let pattern = site.pattern();
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        if tensors.is_empty() {
            return refuse("the model has no adapters to write");
        }
        write_peft_adapter(out_dir, config, &patterns.join("|"), base_model_name_or_path, &tensors)
    }
}

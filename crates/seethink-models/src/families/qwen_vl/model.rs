//! Qwen2.5-VL and Qwen3-VL assembled: vision tower + text decoder, loaded from an HF directory.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, DType, Tensor};

use super::config::{QwenVersion, QwenVlConfig};
use super::positions::mrope_positions;
use super::vision::{GridThw, QwenVision};
use super::KEYS;
use crate::checkpoint::{Checkpoint, ExportOptions, HfTensor, Layout};
use crate::config::TextConfig;
use crate::decode::DecodeState;
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::nn::frozen::float_dtype;
use crate::nn::LoraSite;
use crate::positions::TokenBatch;
use crate::text::{DecoderInput, TextModel};
use crate::vision_stages::VisionStages;
use crate::vlm::{fill_placeholders, scatter_rows, token_rows, ImageGrid, ImageInput, Vlm};

/// A Qwen-VL model (Qwen2.5-VL or Qwen3-VL): names follow the current transformers layout.
#[derive(Module, Debug)]
pub struct QwenVl<B: Backend> {
    pub visual: QwenVision<B>,
    pub language_model: TextModel<B>,
    #[module(skip)]
    pub config: QwenVlConfig,
}

impl<B: Kernels> QwenVl<B> {
    /// The linear layers LoRA can adapt: the decoder's, then the vision tower's and the
    /// mergers', at their module paths in transformers (≥ 4.52) model classes.
    pub fn lora_sites_mut(&mut self) -> Vec<LoraSite<'_, B>> {
        let mut sites = self.language_model.lora_sites_mut("model.language_model.layers");
        sites.extend(self.visual.lora_sites_mut(self.config.version));
        sites
    }

    /// Loads `dir/config.json` and the weights of `dir` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        Self::load_in(dir, float_dtype::<B>(), device)
    }

    /// [`Self::load`] with every matrix (rank-2 parameter) created in `matrices`, the type frozen
    /// weights are kept in ([`crate::nn::frozen`]).
    pub fn load_in(dir: impl AsRef<Path>, matrices: DType, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = QwenVlConfig::from_file(dir.join("config.json"))?;
        let ckpt = Checkpoint::open(dir, &KEYS)?.with_matrix_dtype(matrices);
        let model = Self::from_checkpoint(&ckpt, config, device)?;
        ckpt.refuse_unused()?;
        Ok(model)
    }

    /// A freshly initialised model of the architecture in `dir/config.json`
    /// ([`Checkpoint::random`] with transformers' default `initializer_range` 0.02).
    pub fn random(dir: impl AsRef<Path>, seed: u64, device: &B::Device) -> Result<Self> {
        Self::random_in(dir, seed, float_dtype::<B>(), device)
    }

    /// [`Self::random`] with every matrix created in `matrices`, as [`Self::load_in`].
    pub fn random_in(dir: impl AsRef<Path>, seed: u64, matrices: DType, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = QwenVlConfig::from_file(dir.join("config.json"))?;
        let ckpt = Checkpoint::random(dir, &KEYS, seed, 0.02).with_matrix_dtype(matrices);
        Self::from_checkpoint(&ckpt, config, device)
    }

    /// Builds the model from an opened checkpoint and its parsed config.
    pub fn from_checkpoint(ckpt: &Checkpoint, config: QwenVlConfig, device: &B::Device) -> Result<Self> {
        Ok(Self {
            visual: QwenVision::load(ckpt, config.version, &config.vision, device)?,
            language_model: TextModel::load(ckpt, "model.language_model", "lm_head", &config.text, device)?,
            config,
        })
    }

    /// Input embeddings with image features written over the image tokens, and the DeepStack
    /// additions (dense `[B, S, hidden]`, zero off image tokens, one per DeepStack layer).
    fn embed(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
    ) -> Result<(Tensor<B, 3>, Vec<Tensor<B, 3>>)> {
        let embeds = self.language_model.embed(tokens)?;
        let Some(images) = images else {
            return Ok((embeds, Vec::new()));
        };
        let out = self.vision_features(images)?;
        let image_id = self.config.tokens.image_token_id as u32;
        let embeds = fill_placeholders(embeds, tokens, image_id, out.embeds)?;
        let rows = token_rows(tokens, image_id);
        let deepstack =
            out.deepstack.into_iter().map(|f| scatter_rows(f, &rows, tokens.batch, tokens.seq)).collect();
        Ok((embeds, deepstack))
    }
}

impl<B: Kernels> QwenVl<B> {
    /// Prefill: M-RoPE positions from the prompt's images, remembered rope deltas.
    fn prompt_positions(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<Vec<i64>> {
        let c = &self.config;
        let grids = images.map(patch_grids).transpose()?.unwrap_or_default();
        // transformers spaces image frames by 0 in Qwen2.5-VL (images have no timestamps), 1 in Qwen3-VL.
        let time_step = match c.version {
            QwenVersion::Qwen2_5Vl => 0,
            QwenVersion::Qwen3Vl => 1,
        };
        let p = mrope_positions(tokens, &grids, c.vision.spatial_merge_size, time_step, &c.tokens)?;
        state.position_offsets = p.deltas;
        Ok(p.positions)
    }
}

impl<B: Kernels> Vlm<B> for QwenVl<B> {
    fn decoder_input(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<DecoderInput<B>> {
        let positions = if state.is_empty() {
            self.prompt_positions(tokens, images, state)?
        } else {
            // every M-RoPE axis continues at the same position after the prompt
            state.continued_positions(tokens)?.repeat(3)
        };
        let (embeds, deepstack) = self.embed(tokens, images)?;
        Ok(TextModel::decoder_input(embeds, tokens, &positions, &self.config.text, state, deepstack))
    }

    fn decoder(&self) -> (&TextModel<B>, &TextConfig) {
        (&self.language_model, &self.config.text)
    }

    fn vision_stages<'a>(&'a self, images: &ImageInput<B>) -> Result<Box<dyn VisionStages<B> + 'a>> {
        Ok(Box::new(self.visual.stages(images.pixel_values.clone(), &patch_grids(images)?)?))
    }

    fn input_only_tokens(&self) -> Vec<u32> {
        vec![self.config.tokens.image_token_id as u32, self.config.tokens.video_token_id as u32]
    }
}

impl<B: Kernels> QwenVl<B> {
    /// Every weight the loader reads, as HF stores it: `(canonical name, HF shape, row-major
    /// f32 values)` in loading order, with every load transformation undone (Linear and
    /// patch-embedding weights transposed back, LayerNorm `gamma`/`beta` as `weight`/`bias`, a
    /// tied lm_head left out). The names come from replaying [`QwenVl::from_checkpoint`] on a
    /// tracing checkpoint, so export cannot drift from loading.
    pub fn hf_tensors(&self) -> Result<Vec<HfTensor>> {
        let device = self.language_model.embed_tokens.weight.device();
        crate::checkpoint::export_tensors(self, |ckpt| {
            Self::from_checkpoint(ckpt, self.config.clone(), &device)
        })
    }

    /// Writes this model as a HuggingFace checkpoint directory `out_dir` that transformers and
    /// [`QwenVl::load`] read: weights in `options`' layout and dtype (by default those of the
    /// checkpoint in `source_dir`), sharded past `options.max_shard_bytes`, plus `config.json`
    /// and the tokenizer/processor side files of `source_dir`. Atomic: a killed process never
    /// leaves a half-written checkpoint at `out_dir`; an existing `out_dir` is replaced whole.
    /// Qwen3-VL is always written in the current layout (transformers reads no other), and
    /// asking for the legacy one is an error.
    pub fn save_pretrained(
        &self,
        source_dir: impl AsRef<Path>,
        out_dir: impl AsRef<Path>,
        options: ExportOptions,
    ) -> Result<()> {
        let options = self.export_options(options)?;
        let tensors = self.hf_tensors()?;
        crate::checkpoint::write_pretrained(tensors, source_dir.as_ref(), out_dir.as_ref(), options, &KEYS)
    }

    /// `options` with the layout pinned to current for Qwen3-VL: transformers reads Qwen3-VL
    /// checkpoints only in that layout, so a legacy one is refused.
    fn export_options(&self, options: ExportOptions) -> Result<ExportOptions> {
        match (self.config.version, options.layout) {
            (QwenVersion::Qwen3Vl, Some(Layout::Legacy)) => Err(ModelError::Export(
                "Qwen3-VL has no legacy key layout (transformers reads only `model.visual.*` and \
                 `model.language_model.*` for it)"
                    .into(),
            )),
            (QwenVersion::Qwen3Vl, None) => Ok(ExportOptions { layout: Some(Layout::Current), ..options }),
            _ => Ok(options),
        }
    }
}

/// The patch grids of Qwen-VL image input; an error for another family's input.
fn patch_grids<B: Backend>(images: &ImageInput<B>) -> Result<Vec<GridThw>> {
    images
        .grids
        .iter()
        .map(|grid| match grid {
            ImageGrid::Patches(thw) => Ok(*thw),
            ImageGrid::Tiles(_) => Err(ModelError::Input("Qwen-VL takes image patches, not tiles".into())),
        })
        .collect()
}

//! InternVL3 / InternVL3.5 assembled: InternViT + projector + the shared decoder with 1D RoPE.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, DType, Tensor};

use super::config::{InternVlConfig, Style};
use super::names::Names;
use super::vision::InternVision;
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
use crate::vlm::{fill_placeholders, token_rows, ImageGrid, ImageInput, Vlm};

/// An InternVL model (InternVL3: Qwen2.5 decoder; InternVL3.5: Qwen3 decoder), from either
/// the original release or transformers' conversion.
#[derive(Module, Debug)]
pub struct InternVl<B: Backend> {
    pub visual: InternVision<B>,
    pub language_model: TextModel<B>,
    #[module(skip)]
    pub config: InternVlConfig,
    /// The key layout the weights were stored in (export writes it back).
    #[module(skip)]
    pub key_layout: Layout,
}

impl<B: Kernels> InternVl<B> {
    /// The linear layers LoRA can adapt: the decoder's, then the vision tower's and the
    /// projector's, at their module paths in the model class of the weights' layout.
    pub fn lora_sites_mut(&mut self) -> Vec<LoraSite<'_, B>> {
        let names = Names::of(self.config.style);
        let mut sites = self.language_model.lora_sites_mut(names.decoder_layers);
        sites.extend(self.visual.lora_sites_mut(names));
        sites
    }

    /// Loads `dir/config.json` and the weights of `dir` onto `device`. The weights must be
    /// named in the config's style (original `internvl_chat` or transformers' `internvl`).
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        Self::load_in(dir, float_dtype::<B>(), device)
    }

    /// [`Self::load`] with every matrix (rank-2 parameter) created in `matrices`, the type frozen
    /// weights are kept in ([`crate::nn::frozen`]).
    pub fn load_in(dir: impl AsRef<Path>, matrices: DType, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = InternVlConfig::from_dir(dir)?;
        let ckpt = Checkpoint::open(dir, &KEYS)?.with_matrix_dtype(matrices);
        let names = Names::of(config.style);
        if !ckpt.contains(&names.vision("patch.weight")) {
            let other = Names::of(match config.style {
                Style::Original => Style::Hf,
                Style::Hf => Style::Original,
            });
            if ckpt.contains(&other.vision("patch.weight")) {
                return Err(ModelError::Config {
                    path: dir.join("config.json"),
                    key: "model_type".into(),
                    message: format!(
                        "the config is in the {:?} style but the weights use the other InternVL layout",
                        config.style
                    ),
                });
            }
        }
        let layout = ckpt.layout();
        let model = Self::from_checkpoint(&ckpt, config, layout, device)?;
        ckpt.refuse_unused()?;
        Ok(model)
    }

    /// A freshly initialised model of the architecture in `dir/config.json`
    /// ([`Checkpoint::random`] with transformers' default `initializer_range` 0.02), named in
    /// the config's style (the current key layout for transformers' style).
    pub fn random(dir: impl AsRef<Path>, seed: u64, device: &B::Device) -> Result<Self> {
        Self::random_in(dir, seed, float_dtype::<B>(), device)
    }

    /// [`Self::random`] with every matrix created in `matrices`, as [`Self::load_in`].
    pub fn random_in(dir: impl AsRef<Path>, seed: u64, matrices: DType, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = InternVlConfig::from_dir(dir)?;
        let layout = match config.style {
            Style::Original => Layout::Legacy,
            Style::Hf => Layout::Current,
        };
        let ckpt = Checkpoint::random(dir, &KEYS, seed, 0.02).with_matrix_dtype(matrices);
        Self::from_checkpoint(&ckpt, config, layout, device)
    }

    /// Builds the model from an opened checkpoint, reading the names of `config.style`;
    /// `key_layout` is the layout export writes.
    pub fn from_checkpoint(
        ckpt: &Checkpoint,
        config: InternVlConfig,
        key_layout: Layout,
        device: &B::Device,
    ) -> Result<Self> {
        let names = Names::of(config.style);
        Ok(Self {
            visual: InternVision::load(ckpt, names, &config, device)?,
            language_model: TextModel::load(ckpt, names.text_root, names.lm_head, &config.text, device)?,
            config,
            key_layout,
        })
    }

    /// Token embeddings with the image features written over the image context tokens, in
    /// order of appearance (transformers' `masked_scatter`).
    fn embed(&self, tokens: &TokenBatch, images: Option<&ImageInput<B>>) -> Result<Tensor<B, 3>> {
        let embeds = self.language_model.embed(tokens)?;
        let image_id = self.config.image_token_id as u32;
        let Some(images) = images else {
            return match token_rows(tokens, image_id).len() {
                0 => Ok(embeds),
                n => Err(ModelError::Input(format!("{n} image context tokens in the input but no images"))),
            };
        };
        fill_placeholders(embeds, tokens, image_id, self.vision_features(images)?.embeds)
    }
}

/// Prompt positions of a left-padded batch, `[batch][seq]`: a real token's position counts the
/// real tokens before it (as transformers' `generate` derives `position_ids` from the attention
/// mask), padding sits at 1. Also each row's offset for decoding: `−padding`.
fn prompt_positions(tokens: &TokenBatch) -> (Vec<i64>, Vec<i64>) {
    let mut positions = Vec::with_capacity(tokens.ids.len());
    let mut offsets = Vec::with_capacity(tokens.batch);
    for b in 0..tokens.batch {
        let mask = &tokens.mask[b * tokens.seq..(b + 1) * tokens.seq];
        let mut seen = 0;
        for &real in mask {
            positions.push(if real { seen } else { 1 });
            seen += i64::from(real);
        }
        offsets.push(seen - tokens.seq as i64);
    }
    (positions, offsets)
}

impl<B: Kernels> Vlm<B> for InternVl<B> {
    fn decoder_input(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<DecoderInput<B>> {
        let positions = if state.is_empty() {
            let (positions, offsets) = prompt_positions(tokens);
            state.position_offsets = offsets;
            positions
        } else {
            state.continued_positions(tokens)?
        };
        let embeds = self.embed(tokens, images)?;
        Ok(TextModel::decoder_input(embeds, tokens, &positions, &self.config.text, state, Vec::new()))
    }

    fn decoder(&self) -> (&TextModel<B>, &TextConfig) {
        (&self.language_model, &self.config.text)
    }

    fn vision_stages<'a>(&'a self, images: &ImageInput<B>) -> Result<Box<dyn VisionStages<B> + 'a>> {
        let tiles: usize = tile_counts(images)?.iter().sum();
        if tiles != images.pixel_values.dims()[0] {
            return Err(ModelError::Input(format!(
                "the images list {tiles} tiles but pixel_values has {} rows",
                images.pixel_values.dims()[0]
            )));
        }
        Ok(Box::new(self.visual.stages(images.pixel_values.clone())?))
    }

    fn input_only_tokens(&self) -> Vec<u32> {
        vec![self.config.image_token_id as u32]
    }
}

impl<B: Kernels> InternVl<B> {
    /// Every weight the loader reads, as the checkpoint's layout stores it (see
    /// [`QwenVl::hf_tensors`](crate::families::qwen_vl::QwenVl::hf_tensors)).
    pub fn hf_tensors(&self) -> Result<Vec<HfTensor>> {
        let device = self.language_model.embed_tokens.weight.device();
        crate::checkpoint::export_tensors(self, |ckpt| {
            Self::from_checkpoint(ckpt, self.config.clone(), self.key_layout, &device)
        })
    }

    /// Writes this model as a checkpoint directory `out_dir` with `config.json` and the side
    /// files of `source_dir`, atomically (see [`QwenVl::save_pretrained`]), in `options`' key
    /// layout and dtype (by default those it was loaded from). A model of the original release
    /// is written in its own layout only: asking for transformers' current one is an error.
    ///
    /// [`QwenVl::save_pretrained`]: crate::families::qwen_vl::QwenVl::save_pretrained
    pub fn save_pretrained(
        &self,
        source_dir: impl AsRef<Path>,
        out_dir: impl AsRef<Path>,
        options: ExportOptions,
    ) -> Result<()> {
        let layout = options.layout.unwrap_or(self.key_layout);
        if self.config.style == Style::Original && layout != Layout::Legacy {
            return Err(ModelError::Export(
                "an original-release InternVL checkpoint is written in its own layout (its config.json is not \
                 transformers')"
                    .into(),
            ));
        }
        let options = ExportOptions { layout: Some(layout), ..options };
        crate::checkpoint::write_pretrained(
            self.hf_tensors()?,
            source_dir.as_ref(),
            out_dir.as_ref(),
            options,
            &KEYS,
        )
    }
}

/// The tiles of each image of InternVL input; an error for another family's input.
fn tile_counts<B: Backend>(images: &ImageInput<B>) -> Result<Vec<usize>> {
    images
        .grids
        .iter()
        .map(|grid| match grid {
            ImageGrid::Tiles(n) => Ok(*n),
            ImageGrid::Patches(_) => Err(ModelError::Input("InternVL takes image tiles, not patches".into())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_real_tokens_and_offsets_undo_padding() {
        let tokens = TokenBatch::left_padded(&[vec![5, 6, 7], vec![8]], 0);
        let (positions, offsets) = prompt_positions(&tokens);
        assert_eq!(positions, [0, 1, 2, 1, 1, 0]);
        assert_eq!(offsets, [0, -2]);
    }
}

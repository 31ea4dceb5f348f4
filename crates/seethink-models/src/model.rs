//! Qwen2.5-VL and Qwen3-VL assembled: vision tower + text decoder, loaded from an HF directory.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};

use crate::checkpoint::Checkpoint;
use crate::config::{Family, VlmConfig};
use crate::error::{ModelError, Result};
use crate::nn::{causal_blocked, text_rope};
use crate::positions::{mrope_positions, TokenBatch};
use crate::text::TextModel;
use crate::vision::{GridThw, QwenVision};

/// Images of a batch: flattened patches `[patches, patch_dim]` and each image's `(t, h, w)`.
#[derive(Clone, Debug)]
pub struct ImageInput<B: Backend> {
    pub pixel_values: Tensor<B, 2>,
    pub grid_thw: Vec<GridThw>,
}

/// What trainers and generators need from a vision-language model, whatever its family.
pub trait Vlm<B: Backend>: Module<B> {
    /// Vocabulary logits `[batch, seq, vocab]` of a (left-padded) token batch whose image
    /// placeholder tokens are filled with the encoded `images`.
    fn forward(&self, tokens: &TokenBatch, images: Option<&ImageInput<B>>) -> Result<Tensor<B, 3>>;

    /// Size of the output vocabulary.
    fn vocab_size(&self) -> usize;
}

/// A Qwen-VL model (Qwen2.5-VL or Qwen3-VL): names follow the current transformers layout.
#[derive(Module, Debug)]
pub struct QwenVl<B: Backend> {
    pub visual: QwenVision<B>,
    pub language_model: TextModel<B>,
    #[module(skip)]
    pub config: VlmConfig,
}

impl<B: Backend> QwenVl<B> {
    /// Loads `dir/config.json` and the weights of `dir` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = VlmConfig::from_file(dir.join("config.json"))?;
        let ckpt = Checkpoint::open(dir)?;
        Self::from_checkpoint(&ckpt, config, device)
    }

    /// Builds the model from an opened checkpoint and its parsed config.
    pub fn from_checkpoint(ckpt: &Checkpoint, config: VlmConfig, device: &B::Device) -> Result<Self> {
        Ok(Self {
            visual: QwenVision::load(ckpt, config.family, &config.vision, device)?,
            language_model: TextModel::load(ckpt, &config.text, device)?,
            config,
        })
    }

    /// Input embeddings with image features scattered into the image-token rows, and the
    /// DeepStack additions (dense `[B, S, hidden]`, one per DeepStack layer).
    fn embed(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        device: &B::Device,
    ) -> Result<(Tensor<B, 3>, Vec<Tensor<B, 3>>)> {
        let (batch, seq) = (tokens.batch, tokens.seq);
        let hidden = self.config.text.hidden_size;
        let ids: Vec<i64> = tokens.ids.iter().map(|&i| i as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, seq]), device);
        let embeds = self.language_model.embed(ids);
        let image_id = self.config.tokens.image_token_id as u32;
        let image_rows: Vec<usize> = (0..batch * seq).filter(|&i| tokens.ids[i] == image_id).collect();
        let Some(images) = images else {
            return Ok((embeds, Vec::new()));
        };
        let out = self.visual.forward(images.pixel_values.clone(), &images.grid_thw)?;
        let features = out.embeds.dims()[0];
        if features != image_rows.len() {
            return Err(ModelError::Input(format!(
                "{} image tokens in the input but the images give {features} features",
                image_rows.len()
            )));
        }
        let scatter = |rows: Tensor<B, 2>| -> Tensor<B, 3> {
            let idx: Vec<i64> = image_rows.iter().map(|&r| r as i64).collect();
            let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [image_rows.len()]), device);
            Tensor::<B, 2>::zeros([batch * seq, hidden], device)
                .select_assign(0, idx, rows, burn::tensor::IndexingUpdateOp::Add)
                .reshape([batch, seq, hidden])
        };
        let is_image: Vec<bool> = tokens.ids.iter().map(|&i| i == image_id).collect();
        let is_image = Tensor::<B, 3, Bool>::from_data(TensorData::new(is_image, [batch, seq, 1]), device)
            .expand([batch, seq, hidden]);
        let embeds = embeds.mask_where(is_image, scatter(out.embeds));
        let deepstack = out.deepstack.into_iter().map(scatter).collect();
        Ok((embeds, deepstack))
    }
}

impl<B: Backend> Vlm<B> for QwenVl<B> {
    fn forward(&self, tokens: &TokenBatch, images: Option<&ImageInput<B>>) -> Result<Tensor<B, 3>> {
        let c = &self.config;
        if let Some(bad) = tokens.ids.iter().find(|&&id| id as usize >= c.text.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary of {} tokens",
                c.text.vocab_size
            )));
        }
        let device = self.language_model.embed_tokens.weight.device();
        let grids = images.map_or(&[][..], |i| &i.grid_thw[..]);
        // transformers spaces image frames by 0 in Qwen2.5-VL (images have no timestamps), 1 in Qwen3-VL.
        let time_step = match c.family {
            Family::Qwen2_5Vl => 0,
            Family::Qwen3Vl => 1,
        };
        let positions = mrope_positions(tokens, grids, c.vision.spatial_merge_size, time_step, &c.tokens)?;
        let (embeds, deepstack) = self.embed(tokens, images, &device)?;
        let rope = text_rope(
            &positions.positions,
            tokens.batch,
            tokens.seq,
            c.text.head_dim,
            c.text.rope_theta,
            &c.text.rope,
            &device,
        );
        let blocked = causal_blocked::<B>(&tokens.mask, tokens.batch, tokens.seq, &device);
        let hidden = self.language_model.forward(embeds, &rope, &blocked, None, &deepstack);
        Ok(self.language_model.logits(hidden))
    }

    fn vocab_size(&self) -> usize {
        self.config.text.vocab_size
    }
}

//! The image half of the Qwen-VL processor: images to patches, and each image placeholder of
//! the rendered prompt expanded to one token per merged patch, as transformers'
//! `Qwen2_5_VLProcessor` / `Qwen3VLProcessor` do before tokenizing.

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::DynamicImage;

use super::config::QwenVlConfig;
use super::image::{ImageProcessor, ImageProcessorConfig};
use crate::error::{ModelError, Result};
use crate::processing::placeholders::{check_placeholders, replace_placeholders};
use crate::processing::TextTokenizer;
use crate::vlm::ImageInput;

/// The Qwen-VL image processor with the placeholder string of one image token.
pub struct QwenVlImages {
    pub processor: ImageProcessor,
    /// The placeholder string of one image token (`<|image_pad|>`).
    pub image_token: String,
}

impl QwenVlImages {
    /// The image processor settings of checkpoint `dir`, and the image token of `config` as
    /// `tokenizer` spells it.
    pub fn from_dir(dir: &Path, config: &QwenVlConfig, tokenizer: &TextTokenizer) -> Result<Self> {
        let image_id = config.tokens.image_token_id as u32;
        let image_token = tokenizer.id_to_token(image_id).ok_or_else(|| ModelError::Tokenizer {
            path: dir.join("tokenizer.json"),
            message: format!("image_token_id {image_id} of config.json is not in the vocabulary"),
        })?;
        Ok(Self { processor: ImageProcessor::new(ImageProcessorConfig::from_dir(dir)?), image_token })
    }

    /// `text` (a rendered prompt with one placeholder per image) with the k-th placeholder
    /// repeated `t·h·w/merge²` times for image k, and the images' patches (`None` without
    /// images). Errors when the placeholders and the images differ in number.
    pub fn expand<B: Backend>(
        &self,
        text: &str,
        images: &[DynamicImage],
        device: &B::Device,
    ) -> Result<(String, Option<ImageInput<B>>)> {
        check_placeholders(text, &self.image_token, images.len())?;
        if images.is_empty() {
            return Ok((text.to_string(), None));
        }
        let processed = self.processor.preprocess(images)?;
        let runs = processed
            .grid_thw
            .iter()
            .map(|grid| self.image_token.repeat(self.processor.tokens_per_image(*grid)));
        let expanded = replace_placeholders(text, &self.image_token, runs);
        let pixel_values = Tensor::from_data(
            TensorData::new(processed.pixel_values, [processed.patches, processed.patch_dim]),
            device,
        );
        Ok((expanded, Some(ImageInput::patches(pixel_values, processed.grid_thw))))
    }
}

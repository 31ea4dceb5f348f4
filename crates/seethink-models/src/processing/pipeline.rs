//! The whole processor of a checkpoint: chat template → text with image placeholders expanded
//! → token ids, and images → pixel patches, exactly as transformers' Qwen-VL processors.

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::DynamicImage;

use crate::config::VlmConfig;
use crate::error::{ModelError, Result};
use crate::generate::Prompt;
use crate::model::ImageInput;
use crate::processing::image::{ImageProcessor, ImageProcessorConfig};
use crate::processing::{ChatTemplate, Message, TextTokenizer};

/// Tokenizer, chat template and image processor of one checkpoint.
pub struct Processor {
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    pub images: ImageProcessor,
    /// The placeholder string of one image token (e.g. `<|image_pad|>`).
    image_token: String,
}

impl Processor {
    /// Loads the tokenizer, chat template and image-processor settings of checkpoint `dir`.
    pub fn from_dir(dir: &Path, config: &VlmConfig) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(dir)?;
        let image_id = config.tokens.image_token_id as u32;
        let image_token = tokenizer.id_to_token(image_id).ok_or_else(|| ModelError::Tokenizer {
            path: dir.join("tokenizer.json"),
            message: format!("image_token_id {image_id} of config.json is not in the vocabulary"),
        })?;
        Ok(Self {
            template: ChatTemplate::from_dir(dir)?,
            images: ImageProcessor::new(ImageProcessorConfig::from_dir(dir)?),
            tokenizer,
            image_token,
        })
    }

    /// The chat template applied to `messages`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.template.render(messages, add_generation_prompt, &self.tokenizer.special_tokens)
    }

    /// Token ids and pixel patches of `text` (a rendered prompt) with its `images` in order:
    /// the k-th image placeholder becomes `t·h·w/merge²` placeholders for image k, as the HF
    /// processor does before tokenizing.
    pub fn encode<B: Backend>(
        &self,
        text: &str,
        images: &[DynamicImage],
        device: &B::Device,
    ) -> Result<Prompt<B>> {
        let placeholders = text.matches(&self.image_token).count();
        if placeholders != images.len() {
            return Err(ModelError::Input(format!(
                "the prompt has {placeholders} image placeholders ({}) but {} images were given",
                self.image_token,
                images.len()
            )));
        }
        if images.is_empty() {
            return Ok(Prompt { ids: self.tokenizer.encode(text)?, images: None });
        }
        let processed = self.images.preprocess(images)?;
        let mut expanded = String::with_capacity(text.len());
        let mut pieces = text.split(self.image_token.as_str());
        expanded.push_str(pieces.next().unwrap_or_default());
        for (grid, piece) in processed.grid_thw.iter().zip(pieces) {
            expanded.push_str(&self.image_token.repeat(self.images.tokens_per_image(*grid)));
            expanded.push_str(piece);
        }
        let pixel_values = Tensor::from_data(
            TensorData::new(processed.pixel_values, [processed.patches, processed.patch_dim]),
            device,
        );
        Ok(Prompt {
            ids: self.tokenizer.encode(&expanded)?,
            images: Some(ImageInput { pixel_values, grid_thw: processed.grid_thw }),
        })
    }

    /// One user turn (images first, then `text`) rendered with the generation prompt and encoded.
    pub fn user_prompt<B: Backend>(
        &self,
        text: &str,
        images: &[DynamicImage],
        device: &B::Device,
    ) -> Result<Prompt<B>> {
        let rendered = self.render(&[Message::user(images.len(), text)], true)?;
        self.encode(&rendered, images, device)
    }
}

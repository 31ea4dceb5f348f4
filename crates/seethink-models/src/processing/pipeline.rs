//! The whole processor of a checkpoint: chat template → text with image placeholders expanded
//! → token ids, and images → the model's image input, exactly as transformers' processors.

use std::path::Path;

use burn::tensor::backend::Backend;
use image::DynamicImage;

use crate::error::Result;
use crate::families::AnyImages;
use crate::generate::Prompt;
use crate::processing::{ChatTemplate, Message, TextTokenizer};

/// Tokenizer, chat template and image processor of one checkpoint.
pub struct Processor {
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    pub images: AnyImages,
}

impl Processor {
    /// Loads the tokenizer, chat template and image processor (the family's, chosen by
    /// `config.json`'s `model_type`) of checkpoint `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(dir)?;
        Ok(Self {
            template: ChatTemplate::from_dir(dir)?,
            images: AnyImages::from_dir(dir, &tokenizer)?,
            tokenizer,
        })
    }

    /// The chat template applied to `messages`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.template.render(messages, add_generation_prompt, &self.tokenizer.special_tokens)
    }

    /// Token ids and image input of `text` (a rendered prompt) with its `images` in order: the
    /// image placeholders are expanded by the family's processor before tokenizing.
    pub fn encode<B: Backend>(
        &self,
        text: &str,
        images: &[DynamicImage],
        device: &B::Device,
    ) -> Result<Prompt<B>> {
        let (expanded, images) = self.images.expand(text, images, device)?;
        Ok(Prompt { ids: self.tokenizer.encode(&expanded)?, images })
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

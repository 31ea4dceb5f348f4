//! One folder per model family, and the dispatch over them.
//!
//! A family folder holds its `config.json` parser, key layouts ([`KeyLayouts`]), vision tower,
//! assembled model (a [`Vlm`]) and image processor (placeholder expansion included), built on
//! the shared blocks of `nn/`, the shared decoder of `text.rs` and the shared checkpoint reader.
//! [`AnyVlm`] and [`AnyImages`] are the only places that list the families: a new family is one
//! folder plus one arm in each (see `docs/architecture.md`, "Adding a model family").
//!
//! [`KeyLayouts`]: crate::checkpoint::KeyLayouts

pub mod internvl;
pub mod qwen_vl;
pub mod size;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, DType};
use image::DynamicImage;

use crate::checkpoint::ExportOptions;
use crate::config::{model_type, TextConfig};
use crate::decode::DecodeState;
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::nn::frozen::float_dtype;
use crate::positions::TokenBatch;
use crate::processing::TextTokenizer;
use crate::text::{DecoderInput, TextModel};
use crate::vision_stages::VisionStages;
use crate::vlm::{ImageInput, Vlm};
use internvl::{InternVl, InternVlConfig, InternVlImages};
use qwen_vl::{QwenVl, QwenVlConfig, QwenVlImages};

/// A model of any supported family, chosen by `config.json`'s `model_type`.
///
/// An enum rather than generics over [`Vlm`]: the family is known only at run time (from the
/// checkpoint), trainers keep one concrete module type (its optimizer state and checkpoint
/// records are plain burn records), and everything family-specific (freezing the vision tower,
/// export, the processor) goes through one `match` here.
#[derive(Module, Debug)]
pub enum AnyVlm<B: Backend> {
    QwenVl(QwenVl<B>),
    InternVl(InternVl<B>),
}

/// `$body` with `$m` bound to the wrapped model, whatever the family.
macro_rules! each_family {
    ($model:expr, $m:ident => $body:expr) => {
        match $model {
            AnyVlm::QwenVl($m) => $body,
            AnyVlm::InternVl($m) => $body,
        }
    };
}

pub mod lora;

/// Which family `dir`'s `config.json` names; an error naming the file for any other type.
fn family_of(dir: &Path) -> Result<Family> {
    let found = model_type(dir)?;
    if qwen_vl::MODEL_TYPES.contains(&found.as_str()) {
        Ok(Family::QwenVl)
    } else if internvl::MODEL_TYPES.contains(&found.as_str()) {
        Ok(Family::InternVl)
    } else {
        Err(ModelError::UnknownModelType { path: dir.join("config.json"), found })
    }
}

/// The families, as named by [`family_of`].
enum Family {
    QwenVl,
    InternVl,
}

impl<B: Kernels> AnyVlm<B> {
    /// Loads checkpoint directory `dir` (its `config.json`, weights) onto `device`, as the
    /// family its `model_type` names.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        match family_of(dir)? {
            Family::QwenVl => Ok(Self::QwenVl(QwenVl::load(dir, device)?)),
            Family::InternVl => Ok(Self::InternVl(InternVl::load(dir, device)?)),
        }
    }

    /// [`AnyVlm::load`] with every matrix (rank-2 parameter) created in `matrices`, the type
    /// frozen weights are kept in ([`crate::nn::frozen`]): a training run loads so, then
    /// widens what it trains ([`crate::nn::frozen::widen_trained`]), and no frozen weight is on
    /// the device in the wider type.
    pub fn load_in(dir: impl AsRef<Path>, matrices: DType, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        match family_of(dir)? {
            Family::QwenVl => Ok(Self::QwenVl(QwenVl::load_in(dir, matrices, device)?)),
            Family::InternVl => Ok(Self::InternVl(InternVl::load_in(dir, matrices, device)?)),
        }
    }

    /// A freshly initialised model of the architecture in `dir/config.json` (see
    /// [`Checkpoint::random`](crate::checkpoint::Checkpoint::random): weights `N(0, 0.02²)`,
    /// norms 1, biases 0), reproducible from `seed`. Export it with an explicit layout and
    /// dtype ([`ExportOptions`]): `dir` needs no weights.
    pub fn random(dir: impl AsRef<Path>, seed: u64, device: &B::Device) -> Result<Self> {
        Self::random_in(dir, seed, float_dtype::<B>(), device)
    }

    /// [`Self::random`] with every matrix (rank-2 parameter) created in `matrices`, as
    /// [`Self::load_in`] loads them: a random model whose frozen weights are never on the
    /// device in a wider type.
    pub fn random_in(dir: impl AsRef<Path>, seed: u64, matrices: DType, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        match family_of(dir)? {
            Family::QwenVl => Ok(Self::QwenVl(QwenVl::random_in(dir, seed, matrices, device)?)),
            Family::InternVl => Ok(Self::InternVl(InternVl::random_in(dir, seed, matrices, device)?)),
        }
    }

    /// The model with its vision tower excluded from training (no gradients).
    pub fn freeze_vision(self) -> Self {
        match self {
            Self::QwenVl(mut m) => {
                m.visual = m.visual.no_grad();
                Self::QwenVl(m)
            }
            Self::InternVl(mut m) => {
                m.visual = m.visual.no_grad();
                Self::InternVl(m)
            }
        }
    }

    /// Writes this model as a HuggingFace checkpoint directory `out_dir` in its family's
    /// layout (by default that of the checkpoint in `source_dir`, see each family's
    /// `save_pretrained`), atomically, with the side files of `source_dir`; LoRA adapters are
    /// merged into the weights first ([`AnyVlm::merge_lora`]).
    pub fn save_pretrained(
        &self,
        source_dir: impl AsRef<Path>,
        out_dir: impl AsRef<Path>,
        options: ExportOptions,
    ) -> Result<()> {
        each_family!(&self.clone().merge_lora(), m => m.save_pretrained(source_dir, out_dir, options))
    }

    /// Parameter counts `(vision tower and projector, language model)`.
    pub fn param_split(&self) -> (usize, usize) {
        each_family!(self, m => (m.visual.num_params(), m.language_model.num_params()))
    }

    /// A multi-line description of the architecture (family, text and vision settings).
    pub fn describe(&self) -> String {
        each_family!(self, m => m.config.describe())
    }
}

impl<B: Kernels> Vlm<B> for AnyVlm<B> {
    fn decoder_input(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<DecoderInput<B>> {
        each_family!(self, m => m.decoder_input(tokens, images, state))
    }

    fn decoder(&self) -> (&TextModel<B>, &TextConfig) {
        each_family!(self, m => m.decoder())
    }

    fn vision_stages<'a>(&'a self, images: &ImageInput<B>) -> Result<Box<dyn VisionStages<B> + 'a>> {
        each_family!(self, m => m.vision_stages(images))
    }

    fn input_only_tokens(&self) -> Vec<u32> {
        each_family!(self, m => m.input_only_tokens())
    }
}

/// The image half of a checkpoint's processor, per family: images to model input, and the
/// rendered prompt's image placeholders expanded to the number of tokens each image takes.
pub enum AnyImages {
    QwenVl(QwenVlImages),
    InternVl(InternVlImages),
}

impl AnyImages {
    /// The image processor of checkpoint `dir`, as the family its `model_type` names;
    /// `tokenizer` spells the placeholder tokens.
    pub fn from_dir(dir: &Path, tokenizer: &TextTokenizer) -> Result<Self> {
        match family_of(dir)? {
            Family::QwenVl => {
                let config = QwenVlConfig::from_file(dir.join("config.json"))?;
                Ok(Self::QwenVl(QwenVlImages::from_dir(dir, &config, tokenizer)?))
            }
            Family::InternVl => {
                let config = InternVlConfig::from_dir(dir)?;
                Ok(Self::InternVl(InternVlImages::from_dir(dir, &config, tokenizer)?))
            }
        }
    }

    /// `text` with its image placeholders expanded for `images`, and the images as model input
    /// (`None` without images). Errors when placeholders and images differ in number.
    pub fn expand<B: Backend>(
        &self,
        text: &str,
        images: &[DynamicImage],
        device: &B::Device,
    ) -> Result<(String, Option<ImageInput<B>>)> {
        match self {
            Self::QwenVl(p) => p.expand(text, images, device),
            Self::InternVl(p) => p.expand(text, images, device),
        }
    }
}

//! The seam between models and their users: what trainers, evaluation and generation need from
//! a vision-language model, whatever its family.

use burn::module::Module;
use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};

use crate::config::TextConfig;
use crate::decode::DecodeState;
use crate::error::{ModelError, Result};
use crate::kernels::Kernels;
use crate::positions::TokenBatch;
use crate::text::{DecoderInput, TextModel};
use crate::vision_stages::{run_stages, VisionFeatures, VisionStages};

/// An image's grid in patches, `[t, h, w]` (frames, rows, columns).
pub type GridThw = [usize; 3];

/// How one image's rows of [`ImageInput::pixel_values`] are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageGrid {
    /// Qwen-VL: one row per flattened patch, `t·h·w` rows in the vision tower's patch order.
    Patches(GridThw),
    /// InternVL: one row per square tile (its `[3, side, side]` channel planes), the tiles of
    /// the dynamic-resolution grid row by row, then the thumbnail if there is one.
    Tiles(usize),
}

impl ImageGrid {
    /// Rows of `pixel_values` this image takes.
    pub fn rows(&self) -> usize {
        match self {
            Self::Patches(grid) => grid.iter().product(),
            Self::Tiles(tiles) => *tiles,
        }
    }
}

/// The images of a batch as the vision tower takes them: their rows of pixel values one image
/// after the other (`[rows, values per row]`), and each image's grid, in order of appearance.
#[derive(Clone, Debug)]
pub struct ImageInput<B: Backend> {
    pub pixel_values: Tensor<B, 2>,
    pub grids: Vec<ImageGrid>,
    /// The vision tower's output for these images, where a caller computed it
    /// ([`ImageInput::with_features`]): the model then uses it instead of running its tower.
    pub features: Option<VisionFeatures<B>>,
}

impl<B: Backend> ImageInput<B> {
    /// Qwen-VL input: patches `[patches, patch_dim]` of images with grids `grid_thw`.
    pub fn patches(pixel_values: Tensor<B, 2>, grid_thw: Vec<GridThw>) -> Self {
        let grids = grid_thw.into_iter().map(ImageGrid::Patches).collect();
        Self { pixel_values, grids, features: None }
    }

    /// InternVL input: tiles `[tiles, 3·side²]` of images cut into `tiles_per_image` tiles.
    pub fn tiles(pixel_values: Tensor<B, 2>, tiles_per_image: Vec<usize>) -> Self {
        let grids = tiles_per_image.into_iter().map(ImageGrid::Tiles).collect();
        Self { pixel_values, grids, features: None }
    }

    /// The same images with their vision features computed by the caller (a trainer that runs
    /// the tower in stages, [`Vlm::vision_stages`]): a model given them runs no tower.
    pub fn with_features(self, features: VisionFeatures<B>) -> Self {
        Self { features: Some(features), ..self }
    }

    /// Images of several prompts as one batch input, in order: rows concatenated, grids listed
    /// in the same order (pixels only: features are computed for the batch). `None` when there
    /// are no images.
    pub fn concat<'a>(images: impl IntoIterator<Item = &'a Self>) -> Option<Self> {
        let images: Vec<&Self> = images.into_iter().collect();
        if images.is_empty() {
            return None;
        }
        Some(Self {
            pixel_values: Tensor::cat(images.iter().map(|i| i.pixel_values.clone()).collect(), 0),
            grids: images.iter().flat_map(|i| i.grids.iter().copied()).collect(),
            features: None,
        })
    }

    /// The same images with their pixel values (and features, if any) moved by `f` (to another
    /// backend or device).
    pub fn map_pixels<B2: Backend>(self, f: impl Fn(Tensor<B, 2>) -> Tensor<B2, 2>) -> ImageInput<B2> {
        let features = self.features.map(|v| VisionFeatures {
            embeds: f(v.embeds),
            deepstack: v.deepstack.into_iter().map(&f).collect(),
        });
        ImageInput { pixel_values: f(self.pixel_values), grids: self.grids, features }
    }
}

/// What trainers and generators need from a vision-language model, whatever its family.
///
/// A family implements the hidden states and the output projection; logits are computed only
/// for the positions a caller asks for ([`Vlm::forward_at`]): with a vocabulary of 151,936 a
/// full `[batch, seq, vocab]` tensor is what runs a real model out of memory.
pub trait Vlm<B: Kernels>: Module<B> {
    /// What the decoder's layers take for `tokens` given everything `state` has seen: on an
    /// empty state the prefill of a (left-padded) prompt batch, whose image placeholder tokens
    /// are filled with the encoded `images`; afterwards tokens appended to the cached sequences
    /// (e.g. one sampled token per row). Records the tokens' positions and padding in `state`;
    /// the layers add their keys and values to its cache when they run.
    fn decoder_input(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<DecoderInput<B>>;

    /// Final-normed hidden states `[batch, new tokens, hidden]` of `tokens` given everything
    /// `state` has seen (see [`Vlm::decoder_input`]), whose cache they join.
    fn hidden_states(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<Tensor<B, 3>> {
        let input = self.decoder_input(tokens, images, state)?;
        Ok(self.decoder().0.forward_input(&input, Some(&mut state.kv)))
    }

    /// The language model and its settings.
    fn decoder(&self) -> (&TextModel<B>, &TextConfig);

    /// `images` through the vision tower stage by stage ([`crate::vision_stages`]), for a
    /// trainer that recomputes one vision block at a time in backward; the features go back in
    /// with [`ImageInput::with_features`]. An error where the images do not fit the tower.
    fn vision_stages<'a>(&'a self, images: &ImageInput<B>) -> Result<Box<dyn VisionStages<B> + 'a>>;

    /// What the vision tower gives the language model for `images`: the features they carry
    /// ([`ImageInput::with_features`]), else the tower's stages run in order.
    fn vision_features(&self, images: &ImageInput<B>) -> Result<VisionFeatures<B>> {
        match &images.features {
            Some(features) => Ok(features.clone()),
            None => Ok(run_stages(self.vision_stages(images)?.as_ref())),
        }
    }

    /// Vocabulary logits `[batch, k, vocab]` of hidden states `[batch, k, hidden]`.
    fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        self.decoder().0.logits(hidden)
    }

    /// An empty decoding state for this model.
    fn new_state(&self) -> DecodeState<B> {
        DecodeState::new(self.decoder().1.num_hidden_layers)
    }

    /// Size of the output vocabulary.
    fn vocab_size(&self) -> usize {
        self.decoder().1.vocab_size
    }

    /// Tokens that only the processor may place in a sequence (image/video placeholders):
    /// generation never samples them, since a sampled placeholder could not be fed back.
    fn input_only_tokens(&self) -> Vec<u32>;

    /// The longest sequence (prompt and response) the model was built for, if its config says.
    fn max_positions(&self) -> Option<usize> {
        self.decoder().1.max_position_embeddings
    }

    /// Vocabulary logits `[batch, new tokens, vocab]` of every new position (see
    /// [`Vlm::hidden_states`]).
    fn forward_cached(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
    ) -> Result<Tensor<B, 3>> {
        Ok(self.logits(self.hidden_states(tokens, images, state)?))
    }

    /// Vocabulary logits `[batch, seq, vocab]` of a whole (left-padded) batch, no cache kept.
    fn forward(&self, tokens: &TokenBatch, images: Option<&ImageInput<B>>) -> Result<Tensor<B, 3>> {
        self.forward_cached(tokens, images, &mut self.new_state())
    }

    /// Logits `[batch, k, vocab]` at the k sequence positions `positions` only (the same
    /// positions in every row), as candle's models and TRL's `logits_to_keep` do: the last
    /// position when generating, the response positions when training.
    fn forward_at(
        &self,
        tokens: &TokenBatch,
        images: Option<&ImageInput<B>>,
        state: &mut DecodeState<B>,
        positions: &[usize],
    ) -> Result<Tensor<B, 3>> {
        let hidden = self.hidden_states(tokens, images, state)?;
        Ok(self.logits(select_positions(hidden, positions)?))
    }
}

/// Rows `positions` of the sequence axis of `x [batch, seq, d]`: a contiguous run is a view
/// (`narrow`), anything else a gather.
pub fn select_positions<B: Backend>(x: Tensor<B, 3>, positions: &[usize]) -> Result<Tensor<B, 3>> {
    let seq = x.dims()[1];
    if let Some(bad) = positions.iter().find(|&&p| p >= seq) {
        return Err(ModelError::Input(format!("position {bad} asked for, the sequence has {seq}")));
    }
    let contiguous = positions.windows(2).all(|w| w[1] == w[0] + 1);
    if contiguous && !positions.is_empty() {
        return Ok(x.narrow(1, positions[0], positions.len()));
    }
    let idx: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [positions.len()]), &x.device());
    Ok(x.select(1, idx))
}

/// The flattened positions (`b·seq + s`) of token `id` in `tokens`.
pub(crate) fn token_rows(tokens: &TokenBatch, id: u32) -> Vec<usize> {
    (0..tokens.ids.len()).filter(|&i| tokens.ids[i] == id).collect()
}

/// `features [n, d]` placed at the flattened positions `rows` (n of them) of a zero
/// `[batch, seq, d]` tensor.
pub(crate) fn scatter_rows<B: Backend>(
    features: Tensor<B, 2>,
    rows: &[usize],
    batch: usize,
    seq: usize,
) -> Tensor<B, 3> {
    let [n, d] = features.dims();
    let device = features.device();
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [n]), &device);
    Tensor::<B, 2>::zeros([batch * seq, d], &device)
        .cast(features.dtype())
        .select_assign(0, idx, features, burn::tensor::IndexingUpdateOp::Add)
        .reshape([batch, seq, d])
}

/// `embeds [batch, seq, d]` with the positions of placeholder token `id` replaced by the rows of
/// `features`, in order (transformers' `masked_scatter`); an error when their numbers differ.
pub(crate) fn fill_placeholders<B: Backend>(
    embeds: Tensor<B, 3>,
    tokens: &TokenBatch,
    id: u32,
    features: Tensor<B, 2>,
) -> Result<Tensor<B, 3>> {
    let rows = token_rows(tokens, id);
    let [batch, seq, d] = embeds.dims();
    if features.dims()[0] != rows.len() {
        return Err(ModelError::Input(format!(
            "{} image tokens in the input but the images give {} features",
            rows.len(),
            features.dims()[0]
        )));
    }
    let is_image: Vec<bool> = tokens.ids.iter().map(|&i| i == id).collect();
    let is_image =
        Tensor::<B, 3, Bool>::from_data(TensorData::new(is_image, [batch, seq, 1]), &embeds.device())
            .expand([batch, seq, d]);
    Ok(embeds.mask_where(is_image, scatter_rows(features, &rows, batch, seq)))
}

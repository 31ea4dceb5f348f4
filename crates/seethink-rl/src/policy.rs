//! The trained model as burn-train sees it: [`Policy`] wraps any model family, and its
//! `TrainStep` / `InferenceStep` are the SFT loss on a batch of [`Sequence`]s.

use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use burn::train::{InferenceStep, ItemLazy, TrainOutput, TrainStep};
use seethink_models::{AnyVlm, ImageInput, Result};

use crate::logprobs::{response_logprobs, ResponseLogprobs};
use crate::sft::sft_loss;

/// One training sequence: prompt ids, response ids, and the prompt's images (if any).
#[derive(Clone, Debug)]
pub struct Sequence<B: Backend> {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    pub images: Option<ImageInput<B>>,
}

/// Log-probs of `sequences`' responses under `model` (their images batched together).
pub fn sequence_logprobs<B: Backend>(
    model: &AnyVlm<B>,
    sequences: &[Sequence<B>],
    pad_id: u32,
) -> Result<ResponseLogprobs<B>> {
    let prompts: Vec<Vec<u32>> = sequences.iter().map(|s| s.prompt.clone()).collect();
    let responses: Vec<Vec<u32>> = sequences.iter().map(|s| s.response.clone()).collect();
    let images = ImageInput::concat(sequences.iter().filter_map(|s| s.images.as_ref()));
    response_logprobs(model, &prompts, &responses, images.as_ref(), pad_id)
}

/// The policy being trained: a model of any family and its tokenizer's pad id.
#[derive(Module, Debug)]
pub struct Policy<B: Backend> {
    pub model: AnyVlm<B>,
    pub pad_id: u32,
}

/// A micro-batch of SFT sequences with the normaliser of its mini-batch (the response tokens
/// of the whole mini-batch, so that micro-batch losses add up to the mini-batch loss).
#[derive(Clone, Debug)]
pub struct SftBatch<B: Backend> {
    pub sequences: Vec<Sequence<B>>,
    pub normaliser: f32,
}

/// What an SFT micro-step reports, on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SftItem {
    /// This micro-batch's share of the mini-batch loss.
    pub loss: f64,
    pub tokens: usize,
}

impl ItemLazy for SftItem {
    type ItemSync = Self;

    fn sync(self) -> Self {
        self
    }
}

impl<B: Backend> Policy<B> {
    /// The SFT loss of `batch` ([`sft_loss`]) as a graph tensor and its host value.
    pub fn sft_loss(&self, batch: &SftBatch<B>) -> Result<(burn::tensor::Tensor<B, 1>, SftItem)> {
        let scored = sequence_logprobs(&self.model, &batch.sequences, self.pad_id)?;
        let loss = sft_loss(&scored, batch.normaliser);
        let tokens = batch.sequences.iter().map(|s| s.response.len()).sum();
        let value = loss.clone().into_scalar().elem::<f64>();
        Ok((loss, SftItem { loss: value, tokens }))
    }
}

impl<B: AutodiffBackend> TrainStep for Policy<B> {
    type Input = SftBatch<B>;
    type Output = SftItem;

    /// Forward and backward of the SFT loss.
    ///
    /// # Panics
    /// If the batch does not fit the model (burn-train's step has no error channel): the run
    /// loop builds batches from prompts the processor encoded for this model.
    fn step(&self, batch: SftBatch<B>) -> TrainOutput<SftItem> {
        let (loss, item) = self.sft_loss(&batch).expect("SFT batch does not fit the model");
        TrainOutput::new(self, loss.backward(), item)
    }
}

impl<B: Backend> InferenceStep for Policy<B> {
    type Input = SftBatch<B>;
    type Output = SftItem;

    /// The SFT loss without gradients. Panics like [`TrainStep::step`].
    fn step(&self, batch: SftBatch<B>) -> SftItem {
        self.sft_loss(&batch).expect("SFT batch does not fit the model").1
    }
}

//! SFT on burn-train's `SupervisedTraining`: the model wrapped as a `TrainStep` /
//! `InferenceStep`, examples batched by a burn `Batcher`, so burn-train's epochs, metrics
//! (loss), renderer, checkpointer, interrupter and multi-device strategies apply.
//!
//! The loss is [`sft_loss`] (response tokens only); gradients are clipped to a global norm before
//! the optimizer step, as in [`crate::trainer::Learner`].

use std::path::Path;

use burn::backend::Flex;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn::train::metric::LossMetric;
use burn::train::{InferenceStep, Learner, SequenceOutput, SupervisedTraining, TrainOutput, TrainStep};
use seethink_models::{AnyVlm, ImageGrid, ImageInput};

use crate::logprobs::response_logprobs;
use crate::optim::clip_global_norm;
use crate::sft::sft_loss;
use crate::trainer::Sequence;

/// A model as a burn-train supervised task.
#[derive(Module, Debug)]
pub struct SftModel<B: Backend> {
    pub model: AnyVlm<B>,
    pub pad_id: u32,
    pub max_grad_norm: f64,
}

/// One SFT example on the host: prompt ids, target response ids and the prompt's images.
#[derive(Clone, Debug)]
pub struct SftItem {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    /// Pixel rows (`[rows, values per row]`) and each image's grid.
    pub images: Option<(TensorData, Vec<ImageGrid>)>,
}

/// A batch of examples on a device.
#[derive(Clone, Debug)]
pub struct SftBatch<B: Backend> {
    pub sequences: Vec<Sequence<B>>,
}

/// Moves examples to a device (pixel patches become tensors).
#[derive(Clone, Copy, Debug, Default)]
pub struct SftBatcher;

impl<B: Backend> Batcher<B, SftItem, SftBatch<B>> for SftBatcher {
    fn batch(&self, items: Vec<SftItem>, device: &B::Device) -> SftBatch<B> {
        let sequences = items
            .into_iter()
            .map(|item| Sequence {
                prompt: item.prompt,
                response: item.response,
                images: item.images.map(|(pixels, grids)| ImageInput {
                    pixel_values: Tensor::from_data(pixels, device),
                    grids,
                }),
            })
            .collect();
        SftBatch { sequences }
    }
}

impl<B: Backend> SftModel<B> {
    /// Loss (token-mean over the batch's response tokens), response logits and targets.
    ///
    /// # Panics
    /// If the batch does not fit the model (bad token ids or images): the batcher builds
    /// batches from validated examples, and burn-train's step has no error channel.
    fn forward_sft(&self, batch: &SftBatch<B>) -> SequenceOutput<B> {
        let prompts: Vec<Vec<u32>> = batch.sequences.iter().map(|s| s.prompt.clone()).collect();
        let responses: Vec<Vec<u32>> = batch.sequences.iter().map(|s| s.response.clone()).collect();
        let images = ImageInput::concat(batch.sequences.iter().filter_map(|s| s.images.as_ref()));
        let scored = response_logprobs(&self.model, &prompts, &responses, images.as_ref(), self.pad_id)
            .expect("SFT batch does not fit the model");
        let tokens: usize = responses.iter().map(Vec::len).sum();
        let loss = sft_loss(&scored, tokens as f32);
        SequenceOutput::new(loss, scored.logits, None, scored.targets)
    }
}

impl<B: AutodiffBackend> TrainStep for SftModel<B> {
    type Input = SftBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: SftBatch<B>) -> TrainOutput<SequenceOutput<B>> {
        let output = self.forward_sft(&batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }

    fn optimize<BO, O>(self, optim: &mut O, lr: f64, mut grads: GradientsParams) -> Self
    where
        BO: AutodiffBackend,
        O: Optimizer<Self, BO>,
        Self: AutodiffModule<BO>,
    {
        clip_global_norm::<BO, Self>(&self, &mut grads, self.max_grad_norm);
        optim.step(lr, self, grads)
    }
}

impl<B: Backend> InferenceStep for SftModel<B> {
    type Input = SftBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: SftBatch<B>) -> SequenceOutput<B> {
        self.forward_sft(&batch)
    }
}

/// Settings of a supervised SFT run.
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisedSftConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub seed: u64,
    pub pad_id: u32,
}

/// Fine-tunes `model` on `train` (loss also reported on `valid`) with burn-train's
/// `SupervisedTraining`, writing its logs and checkpoints under `dir`; returns the trained
/// model without autodiff.
pub fn train_supervised<B: AutodiffBackend>(
    model: AnyVlm<B>,
    train: Vec<SftItem>,
    valid: Vec<SftItem>,
    config: &SupervisedSftConfig,
    dir: &Path,
) -> AnyVlm<B::InnerBackend> {
    let task = SftModel { model, pad_id: config.pad_id, max_grad_norm: config.max_grad_norm };
    let loader_train = DataLoaderBuilder::new(SftBatcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .build(InMemDataset::new(train));
    let loader_valid =
        DataLoaderBuilder::new(SftBatcher).batch_size(config.batch_size).build(InMemDataset::new(valid));
    let optimizer = AdamWConfig::new().with_weight_decay(config.weight_decay as f32).init();
    let training: SupervisedTraining<_> = SupervisedTraining::new(dir, loader_train, loader_valid)
        .metrics((LossMetric::<Flex>::new(),))
        .num_epochs(config.epochs);
    let result = training.launch(Learner::new(task, optimizer, config.lr));
    result.model.model
}

//! The optimisation loop shared by GRPO and SFT: micro-batched gradient accumulation with a
//! split-invariant loss, global-norm clipping, AdamW and a learning-rate schedule.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use seethink_models::{AnyVlm, ImageInput, Result};

use crate::logprobs::{response_logprobs, ResponseLogprobs};
use crate::optim::{clip_global_norm, LrSchedule};

/// AdamW settings (defaults: the paper's EasyR1 run).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    pub schedule: LrSchedule,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: 1.0,
            schedule: LrSchedule::Constant,
        }
    }
}

/// One training sequence: prompt ids, response ids, and the prompt's images (if any).
#[derive(Clone, Debug)]
pub struct Sequence<B: burn::tensor::backend::Backend> {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    pub images: Option<ImageInput<B>>,
}

/// What one optimizer update reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateStats {
    pub grad_norm: f64,
    pub lr: f64,
}

/// A policy with its optimizer state and update counter.
pub struct Learner<B: AutodiffBackend> {
    pub model: AnyVlm<B>,
    optimizer: OptimizerAdaptor<AdamW, AnyVlm<B>, B>,
    pub config: OptimConfig,
    /// Optimizer updates done (the position in the LR schedule).
    pub updates: usize,
}

impl<B: AutodiffBackend> Learner<B> {
    /// A fresh AdamW learner for `model`.
    pub fn new(model: AnyVlm<B>, config: OptimConfig) -> Self {
        let optimizer = AdamWConfig::new()
            .with_beta_1(config.beta1 as f32)
            .with_beta_2(config.beta2 as f32)
            .with_epsilon(config.eps as f32)
            .with_weight_decay(config.weight_decay as f32)
            .init();
        Self { model, optimizer, config, updates: 0 }
    }

    /// Log-probs of `sequences` under the current (trainable) model.
    pub fn logprobs(
        &self,
        sequences: &[Sequence<B::InnerBackend>],
        pad_id: u32,
    ) -> Result<ResponseLogprobs<B>> {
        let prompts: Vec<Vec<u32>> = sequences.iter().map(|s| s.prompt.clone()).collect();
        let responses: Vec<Vec<u32>> = sequences.iter().map(|s| s.response.clone()).collect();
        let images = ImageInput::concat(sequences.iter().filter_map(|s| s.images.as_ref()))
            .map(|i| i.map_pixels(Tensor::from_inner));
        response_logprobs(&self.model, &prompts, &responses, images.as_ref(), pad_id)
    }

    /// One optimizer update over a mini-batch given as micro-batches: `micro_loss(k)` returns
    /// micro-batch k's loss (already divided by the mini-batch normaliser); gradients are summed
    /// over micro-batches, clipped to the global norm, and applied with the scheduled LR.
    pub fn update(
        &mut self,
        micro_batches: usize,
        mut micro_loss: impl FnMut(&Self, usize) -> Result<Tensor<B, 1>>,
    ) -> Result<UpdateStats> {
        let mut accumulator = GradientsAccumulator::<AnyVlm<B>>::new();
        for k in 0..micro_batches {
            let loss = micro_loss(self, k)?;
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            accumulator.accumulate(&self.model, grads);
        }
        let mut grads = accumulator.grads();
        let grad_norm = clip_global_norm(&self.model, &mut grads, self.config.max_grad_norm);
        let lr = self.config.schedule.lr_at(self.config.lr, self.updates);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.updates += 1;
        Ok(UpdateStats { grad_norm, lr })
    }

    /// The optimizer state, for checkpoints.
    pub fn optimizer_record(
        &self,
    ) -> <OptimizerAdaptor<AdamW, AnyVlm<B>, B> as Optimizer<AnyVlm<B>, B>>::Record {
        self.optimizer.to_record()
    }

    /// This learner with model weights and optimizer state restored from records.
    pub fn with_records(
        mut self,
        model: <AnyVlm<B> as burn::module::Module<B>>::Record,
        optimizer: <OptimizerAdaptor<AdamW, AnyVlm<B>, B> as Optimizer<AnyVlm<B>, B>>::Record,
    ) -> Self {
        use burn::module::Module;
        self.model = self.model.load_record(model);
        self.with_optimizer_record(optimizer)
    }

    /// This learner with its optimizer state restored from a record.
    pub fn with_optimizer_record(
        mut self,
        optimizer: <OptimizerAdaptor<AdamW, AnyVlm<B>, B> as Optimizer<AnyVlm<B>, B>>::Record,
    ) -> Self {
        self.optimizer = self.optimizer.load_record(optimizer);
        self
    }

    /// The model without autodiff (for rollouts and evaluation).
    pub fn inference_model(&self) -> AnyVlm<B::InnerBackend> {
        self.model.valid()
    }
}

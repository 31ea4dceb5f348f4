//! The model an evaluation point answers with: a checkpoint loaded once, when first asked for,
//! sampling with the eval section's settings (held-out tasks, [`crate::evaluation`], and
//! benchmarks, [`crate::benchmarks`]).

use std::path::{Path, PathBuf};

use seethink_eval::ModelResponder;
use seethink_models::generate::SamplingConfig;
use seethink_models::kernels::Kernels;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;

use crate::config::{HeldOutConfig, TrainConfig};
use crate::error::Result;

/// The sampling of every evaluation: the eval section's temperature, top-p and token budget
/// (the rollout's where it gives none), no top-k, the rollout's seed.
fn eval_sampling(config: &TrainConfig, heldout: &HeldOutConfig) -> SamplingConfig {
    SamplingConfig {
        max_new_tokens: heldout.max_new_tokens.unwrap_or(config.rollout.max_new_tokens),
        temperature: heldout.temperature,
        top_p: heldout.top_p.unwrap_or(config.rollout.top_p),
        top_k: 0,
        seed: config.rollout.seed,
        stream: 0,
    }
}

/// A checkpoint directory whose model and processor are loaded when first asked for, once.
pub(crate) struct LoadedModel<'d, B: Kernels> {
    /// The checkpoint directory.
    pub(crate) dir: PathBuf,
    device: &'d B::Device,
    loaded: Option<(AnyVlm<B>, Processor)>,
}

impl<'d, B: Kernels> LoadedModel<'d, B> {
    /// The checkpoint in `dir`, not loaded yet.
    pub(crate) fn new(dir: &Path, device: &'d B::Device) -> Self {
        Self { dir: dir.to_path_buf(), device, loaded: None }
    }

    /// A responder over the model (loaded now if it was not) answering as `config`'s
    /// evaluations do: [`eval_sampling`], `heldout.batch_size` tasks per call, images in the
    /// run's bounds.
    pub(crate) fn responder(
        &mut self,
        config: &TrainConfig,
        heldout: &HeldOutConfig,
    ) -> Result<ModelResponder<'_, B, AnyVlm<B>>> {
        let loaded = match self.loaded.take() {
            Some(loaded) => loaded,
            None => (AnyVlm::<B>::load(&self.dir, self.device)?, Processor::from_dir(&self.dir)?),
        };
        let (vlm, processor) = &*self.loaded.insert(loaded);
        let sampling = eval_sampling(config, heldout);
        Ok(ModelResponder::new(vlm, processor, sampling, heldout.batch_size, self.device.clone())?
            .within(config.data.image_bounds()))
    }
}

//! The algorithm seam of the run loop: a training step on the tasks a sampler draws. GRPO and
//! SFT are its two impls; another algorithm is one more.

use std::cell::RefCell;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use seethink_curriculum::GroupResult;
use seethink_data::Task;
use seethink_models::processing::Processor;
use seethink_reward::Reward;

use crate::config::TrainConfig;
use crate::data_parallel::{SharedSampler, Worker};
use crate::error::Result;
use crate::grpo::{Draw, Grpo, RolloutPrompt};
use crate::learner::PolicyLearner;
use crate::metrics::grpo_step_metrics;
use crate::policy::Sequence;
use crate::sft::sft_step;
use crate::train_backend::TrainBackend;

/// What a step draws on: the run's tasks, the sampler that picks them (shared by the
/// data-parallel workers), the processor that encodes them, the reward that grades them and the
/// run's config.
pub struct StepInputs<'a> {
    pub config: &'a TrainConfig,
    pub tasks: &'a [Task],
    pub sampler: &'a mut SharedSampler,
    pub processor: &'a Processor,
    pub reward: &'a dyn Reward,
}

/// A training algorithm: one step updates the learner on `trainer.prompts_per_step` tasks the
/// sampler draws, tells the sampler the results, and returns the step's metrics line.
pub trait Algorithm<B: TrainBackend> {
    /// Step `learner` once (its LR already set for the step).
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<serde_json::Value>;

    /// The counter a checkpoint keeps (GRPO: rollouts done, the sampling seed's offset).
    fn counter(&self) -> usize;

    /// The counter as a checkpoint kept it.
    fn restore_counter(&mut self, counter: usize);
}

impl<B: TrainBackend> Algorithm<B> for Grpo<B> {
    /// A GRPO step ([`Grpo::step`]): the drawn tasks' rollouts, rewards, advantages and updates;
    /// the sampler draws the batch and its refills, gates each group ([`SharedSampler::admit`])
    /// and is told every drawn group's result.
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<serde_json::Value> {
        let StepInputs { config, tasks, sampler, processor, reward } = inputs;
        let device = learner.model().valid().model.devices().into_iter().next().unwrap_or_default();
        let bounds = config.data.image_bounds();
        let sampler = RefCell::new(sampler);
        let draw = |what: Draw| {
            let drawn = match what {
                Draw::Batch => sampler.borrow_mut().next_batch(config.trainer.prompts_per_step)?,
                Draw::Refill(count) => sampler.borrow_mut().refill(count)?,
            };
            drawn
                .into_iter()
                .map(|index| {
                    let prompt = processor.encode_task_within(&tasks[index], bounds, &device)?;
                    Ok(RolloutPrompt { task: tasks[index].clone(), index, prompt })
                })
                .collect()
        };
        let admit = |group: &GroupResult| sampler.borrow_mut().admit(group);
        let stats = Grpo::step(self, learner, draw, admit, reward, &processor.tokenizer)?;
        sampler.into_inner().observe(&stats.outcomes);
        Ok(grpo_step_metrics(&stats))
    }

    fn counter(&self) -> usize {
        self.rollouts
    }

    fn restore_counter(&mut self, counter: usize) {
        self.rollouts = counter;
    }
}

/// Supervised fine-tuning on the tasks' answers ([`sft_step`]), on this worker's share of each
/// batch.
pub struct Sft {
    pub worker: Worker,
}

impl<B: TrainBackend> Algorithm<B> for Sft {
    /// An SFT step: each drawn task's answer (and the tokenizer's first stop token) is the
    /// response; SFT has no rewards, so the sampler is told nothing.
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<serde_json::Value> {
        let started = Instant::now();
        let StepInputs { config, tasks, sampler, processor, .. } = inputs;
        let device = learner.model().valid().model.devices().into_iter().next().unwrap_or_default();
        let tokenizer = &processor.tokenizer;
        let stop = tokenizer.stop_ids.first().copied();
        let sequences = sampler
            .next_batch(config.trainer.prompts_per_step)?
            .iter()
            .map(|&i| {
                let prompt = processor.encode_task_within(&tasks[i], config.data.image_bounds(), &device)?;
                let mut response = tokenizer.encode(&tasks[i].answer)?;
                response.extend(stop);
                Ok(Sequence { prompt: prompt.ids, response, images: prompt.images })
            })
            .collect::<Result<Vec<_>>>()?;
        let actor = &config.actor;
        let stats = sft_step(learner, &sequences, actor.micro_batch_size, actor.max_grad_norm, &self.worker)?;
        sampler.observe(&[]);
        let seconds = started.elapsed().as_secs_f64();
        Ok(serde_json::json!({
            "loss": stats.loss, "grad_norm": stats.update.grad_norm, "lr": stats.update.lr,
            "skipped_updates": usize::from(stats.update.skipped),
            "seconds": seconds, "tokens_per_second": stats.tokens as f64 / seconds.max(1e-9),
        }))
    }

    fn counter(&self) -> usize {
        0
    }

    fn restore_counter(&mut self, _counter: usize) {}
}

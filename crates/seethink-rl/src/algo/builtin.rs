//! The built-in algorithms as the run loop sees them ([`crate::algorithm`]): [`BuiltIn`]
//! builds GRPO ([`Grpo`], `grpo/`) or SFT ([`Sft`], `sft.rs`) by `algorithm.trainer`, and
//! each step draws its tasks, trains and reports to the sampler.

use std::cell::RefCell;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use seethink_curriculum::GroupResult;

use crate::algorithm::{counter_state, restore_counter, Algorithm, AlgorithmBuilder, StepInputs};
use crate::config::{TrainConfig, Trainer};
use crate::data_parallel::Worker;
use crate::error::Result;
use crate::grpo::{Draw, Grpo, Plugins, RolloutPrompt};
use crate::learner::PolicyLearner;
use crate::metrics::{grpo_step_metrics, StepMetrics};
use crate::policy::Sequence;
use crate::sft::sft_step;
use crate::train_backend::TrainBackend;

/// The built-in algorithms, chosen by `algorithm.trainer`: [`Grpo`] (with the built-in losses
/// and estimators, [`Plugins::builtin`]) or [`Sft`].
pub struct BuiltIn;

impl<B: TrainBackend> AlgorithmBuilder<B> for BuiltIn {
    fn build(
        &self,
        config: &TrainConfig,
        learner: &PolicyLearner<B>,
        worker: Worker,
    ) -> Result<Box<dyn Algorithm<B>>> {
        WithPlugins(Plugins::builtin()).build(config, learner, worker)
    }
}

/// The built-in algorithms with GRPO's loss and estimator looked up in these plugins: a
/// user's loss or estimator registered in them ([`Plugins::with_loss`],
/// [`Plugins::with_estimator`]) and named by `algorithm.loss` / `algorithm.estimator` runs
/// through the stock GRPO step.
pub struct WithPlugins<B: TrainBackend>(pub Plugins<B>);

impl<B: TrainBackend> AlgorithmBuilder<B> for WithPlugins<B> {
    fn build(
        &self,
        config: &TrainConfig,
        learner: &PolicyLearner<B>,
        worker: Worker,
    ) -> Result<Box<dyn Algorithm<B>>> {
        Ok(match config.algorithm.trainer {
            Trainer::Grpo => {
                let (algorithm, actor, rollout) =
                    (config.algorithm.clone(), config.actor.clone(), config.rollout.clone());
                let mut grpo = Grpo::new(learner, algorithm, actor, rollout).with_plugins(self.0.clone())?;
                grpo.worker = worker;
                Box::new(grpo)
            }
            Trainer::Sft => Box::new(Sft { worker }),
        })
    }
}

impl<B: TrainBackend> Algorithm<B> for Grpo<B> {
    /// A GRPO step ([`Grpo::step`]): the drawn tasks' rollouts, rewards, advantages and updates;
    /// the sampler draws the batch and its refills, gates each group ([`SharedSampler::admit`])
    /// and is told every drawn group's result.
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<StepMetrics> {
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

    fn state(&self) -> serde_json::Value {
        counter_state("rollouts", self.rollouts)
    }

    fn restore(&mut self, state: &serde_json::Value) -> std::result::Result<(), String> {
        self.rollouts = restore_counter(state, "rollouts")?;
        Ok(())
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
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<StepMetrics> {
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
        Ok(StepMetrics::new()
            .value("loss", stats.loss)
            .value("grad_norm", stats.update.grad_norm)
            .value("lr", stats.update.lr)
            .count("skipped_updates", usize::from(stats.update.skipped))
            .value("seconds", seconds)
            .value("tokens_per_second", stats.tokens as f64 / seconds.max(1e-9)))
    }

    /// SFT keeps no state of its own.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn restore(&mut self, _state: &serde_json::Value) -> std::result::Result<(), String> {
        Ok(())
    }
}

//! RAFT, reward-ranked fine-tuning (Dong et al. 2023, arXiv 2304.06767), as a seethink algorithm
//! from outside the library: each step samples `rollout.n` responses to each drawn task from the
//! current policy, ranks them by reward, and takes one supervised step on each task's best
//! response: `L = −Σ_t log π(y*_t | x, y*_<t) / (tokens of all y*)`, `y* = argmax_i r(x, y_i)`
//! (the first of equal rewards). The rollout counter is its checkpointed state, so a resumed run
//! samples what an uninterrupted one does.

pub mod cispo;

use burn::module::{AutodiffModule, Module};
use seethink::curriculum::GroupResult;
use seethink::models::generate::generate;
use seethink::rl::algorithm::{counter_state, restore_counter, Algorithm, StepInputs};
use seethink::rl::config::TrainConfig;
use seethink::rl::data_parallel::Worker;
use seethink::rl::error::Result;
use seethink::rl::learner::PolicyLearner;
use seethink::rl::metrics::StepMetrics;
use seethink::rl::policy::Sequence;
use seethink::rl::sft::sft_step;
use seethink::rl::train_backend::TrainBackend;
use serde_json::Value;

/// RAFT's state: this worker and the rollouts done (rollout r samples with seed
/// `rollout.seed + r`).
pub struct Raft {
    worker: Worker,
    rollouts: usize,
}

impl Raft {
    /// An algorithm builder for seethink's run loop (`run_tasks_with`, `train_curriculum_with`).
    pub fn build<B: TrainBackend>(
        _config: &TrainConfig,
        _learner: &PolicyLearner<B>,
        worker: Worker,
    ) -> Result<Box<dyn Algorithm<B>>> {
        Ok(Box::new(Raft { worker, rollouts: 0 }))
    }
}

impl<B: TrainBackend> Algorithm<B> for Raft {
    fn step(&mut self, learner: &mut PolicyLearner<B>, inputs: StepInputs<'_>) -> Result<StepMetrics> {
        let StepInputs { config, tasks, sampler, processor, reward } = inputs;
        // the policy as the passes run it (cast to `actor.mixed_precision`'s type, if set)
        let policy = learner.compute_policy()?.valid().model;
        let device = policy.devices().into_iter().next().unwrap_or_default();
        let drawn = sampler.next_batch(config.trainer.prompts_per_step)?;
        let prompts = drawn
            .iter()
            .map(|&i| Ok(processor.encode_task_within(&tasks[i], config.data.image_bounds(), &device)?))
            .collect::<Result<Vec<_>>>()?;
        let (n, tokenizer) = (config.rollout.n, &processor.tokenizer);
        let sampling = config.rollout.sampling(self.rollouts);
        let completions = generate(&policy, &prompts, n, &sampling, &tokenizer.stop_ids, tokenizer.pad_id)?;
        self.rollouts += 1;
        let mut best = Vec::with_capacity(prompts.len());
        let mut results = Vec::with_capacity(prompts.len());
        for (group, (&task, prompt)) in completions.chunks(n).zip(drawn.iter().zip(&prompts)) {
            let scores = group
                .iter()
                .map(|c| Ok(reward.score(&tasks[task], &tokenizer.decode(&c.ids, true)?)))
                .collect::<Result<Vec<_>>>()?;
            let rewards: Vec<f32> = scores.iter().map(|s| s.overall).collect();
            let top = (0..n).fold(0, |top, i| if rewards[i] > rewards[top] { i } else { top });
            best.push(Sequence {
                prompt: prompt.ids.clone(),
                response: group[top].ids.clone(),
                images: prompt.images.clone(),
            });
            let mean = |values: &mut dyn Iterator<Item = f32>| values.sum::<f32>() / n as f32;
            results.push(GroupResult {
                task,
                capability: tasks[task].capability,
                level: tasks[task].level,
                reward: mean(&mut rewards.iter().copied()),
                accuracy: mean(&mut scores.iter().map(|s| s.accuracy)),
                response_length: mean(&mut group.iter().map(|c| c.ids.len() as f32)),
                mean_abs_advantage: 0.0,
                rewards,
            });
        }
        let actor = &config.actor;
        let stats = sft_step(learner, &best, actor.micro_batch_size, actor.max_grad_norm, &self.worker)?;
        sampler.observe(&results);
        let count = results.len().max(1) as f32;
        let best_reward =
            results.iter().map(|r| r.rewards.iter().fold(f32::MIN, |a, &b| a.max(b))).sum::<f32>();
        Ok(StepMetrics::new()
            .value("reward", results.iter().map(|r| r.reward).sum::<f32>() / count)
            .value("best_reward", best_reward / count)
            .value("loss", stats.loss)
            .value("grad_norm", stats.update.grad_norm)
            .value("lr", stats.update.lr))
    }

    fn state(&self) -> Value {
        counter_state("rollouts", self.rollouts)
    }

    fn restore(&mut self, state: &Value) -> std::result::Result<(), String> {
        self.rollouts = restore_counter(state, "rollouts")?;
        Ok(())
    }
}

//! One GRPO step: rollout of n samples per prompt, rewards, group advantages, old/reference
//! log-probs, then one optimizer update per mini-batch.

use std::time::Instant;

use burn::tensor::{backend::AutodiffBackend, ElementConversion, Tensor, TensorData};
use seethink_data::Task;
use seethink_models::generate::{generate, Completion, Prompt, SamplingConfig};
use seethink_models::processing::TextTokenizer;
use seethink_models::{AnyVlm, ImageInput, Result};
use seethink_reward::{Reward, RewardBreakdown};

use super::{group_advantages, AdvantageOptions, Aggregation, GrpoLossConfig, TokenBatchLoss};
use crate::logprobs::response_logprobs;
use crate::trainer::{Learner, Sequence};

/// GRPO settings (defaults: the paper's, scaled down where they are sizes).
#[derive(Clone, Debug, PartialEq)]
pub struct GrpoConfig {
    /// Samples per prompt (n).
    pub group_size: usize,
    /// Optimizer updates per rollout step (the rollout is split into this many mini-batches).
    pub mini_batches: usize,
    /// Sequences per forward/backward pass.
    pub micro_batch_size: usize,
    pub sampling: SamplingConfig,
    pub loss: GrpoLossConfig,
    pub advantage: AdvantageOptions,
    /// Keep only groups whose mean accuracy is strictly inside (low, high) (DAPO-style).
    pub online_filter: Option<(f32, f32)>,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            group_size: 5,
            mini_batches: 4,
            micro_batch_size: 8,
            sampling: SamplingConfig {
                max_new_tokens: 2048,
                temperature: 1.0,
                top_p: 1.0,
                top_k: 0,
                seed: 0,
            },
            loss: GrpoLossConfig::default(),
            advantage: AdvantageOptions::default(),
            online_filter: None,
        }
    }
}

/// A prompt of the rollout: the task (for its reward) and its encoded prompt.
#[derive(Clone, Debug)]
pub struct RolloutPrompt<B: burn::tensor::backend::Backend> {
    pub task: Task,
    pub prompt: Prompt<B>,
}

/// Metrics of one GRPO step (means over samples, or over response tokens for token metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GrpoStats {
    pub reward: RewardBreakdown,
    pub response_length: f64,
    /// Groups kept by the online filter / groups sampled.
    pub groups_kept: usize,
    pub groups: usize,
    pub pg_loss: f64,
    pub kl: f64,
    pub entropy: f64,
    pub clip_fraction: f64,
    /// Mean over the step's updates of the global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    pub updates: usize,
    pub response_tokens: usize,
    pub seconds: f64,
}

/// The GRPO trainer state: the learner, the frozen reference model and the rollout counter.
pub struct Grpo<B: AutodiffBackend> {
    pub learner: Learner<B>,
    reference: Option<AnyVlm<B::InnerBackend>>,
    pub config: GrpoConfig,
    /// Rollout steps done (each samples with seed `sampling.seed + rollouts`).
    pub rollouts: usize,
}

/// `n` sampled completions per prompt, group-major, stopping at the tokenizer's stop ids.
pub fn sample_groups<B: burn::tensor::backend::Backend>(
    policy: &AnyVlm<B>,
    prompts: &[Prompt<B>],
    n: usize,
    sampling: &SamplingConfig,
    tokenizer: &TextTokenizer,
) -> Result<Vec<Completion>> {
    generate(policy, prompts, n, sampling, &tokenizer.stop_ids, tokenizer.pad_id)
}

struct Sample<B: burn::tensor::backend::Backend> {
    sequence: Sequence<B>,
    advantage: f32,
}

impl<B: AutodiffBackend> Grpo<B> {
    /// GRPO from `learner`'s current weights; the KL reference is a frozen copy of them
    /// (unless `kl_coef` is 0).
    pub fn new(learner: Learner<B>, config: GrpoConfig) -> Self {
        let reference = (config.loss.kl_coef != 0.0).then(|| learner.inference_model());
        Self { learner, reference, config, rollouts: 0 }
    }

    /// The frozen KL reference (the stage's starting weights), if the KL term is on.
    pub fn reference(&self) -> Option<&AnyVlm<B::InnerBackend>> {
        self.reference.as_ref()
    }

    /// The sampling settings of the next rollout: seed `sampling.seed + rollouts`.
    pub fn next_sampling(&self) -> SamplingConfig {
        SamplingConfig {
            seed: self.config.sampling.seed + self.rollouts as u64,
            ..self.config.sampling.clone()
        }
    }

    /// One rollout step on `batch` followed by `mini_batches` optimizer updates.
    pub fn step(
        &mut self,
        batch: &[RolloutPrompt<B::InnerBackend>],
        reward: &dyn Reward,
        tokenizer: &TextTokenizer,
    ) -> Result<GrpoStats> {
        let started = Instant::now();
        let prompts: Vec<Prompt<B::InnerBackend>> = batch.iter().map(|p| p.prompt.clone()).collect();
        let completions = sample_groups(
            &self.learner.inference_model(),
            &prompts,
            self.config.group_size,
            &self.next_sampling(),
            tokenizer,
        )?;
        let rewards = completions
            .iter()
            .map(|c| Ok(reward.score(&batch[c.prompt].task, &tokenizer.decode(&c.ids, true)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut stats = self.learn(batch, &completions, &rewards, tokenizer.pad_id)?;
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// The learning half of a step, given the rollout (`group_size` completions per prompt,
    /// group-major) and their rewards: group advantages, the online filter, then
    /// `mini_batches` optimizer updates. Counts as one rollout (the next samples use the next
    /// seed). `seconds` is left at 0 for the caller, who knows where the step started.
    pub fn learn(
        &mut self,
        batch: &[RolloutPrompt<B::InnerBackend>],
        completions: &[Completion],
        rewards: &[RewardBreakdown],
        pad_id: u32,
    ) -> Result<GrpoStats> {
        let n = self.config.group_size;
        let policy = self.learner.inference_model();
        self.rollouts += 1;
        let overall: Vec<f32> = rewards.iter().map(|r| r.overall).collect();
        let advantages = group_advantages(&overall, n, self.config.advantage);
        let mut stats = GrpoStats { groups: batch.len(), ..Default::default() };
        let count = rewards.len().max(1) as f32;
        stats.reward = RewardBreakdown {
            overall: overall.iter().sum::<f32>() / count,
            format: rewards.iter().map(|r| r.format).sum::<f32>() / count,
            accuracy: rewards.iter().map(|r| r.accuracy).sum::<f32>() / count,
        };
        stats.response_length = completions.iter().map(|c| c.ids.len()).sum::<usize>() as f64 / count as f64;
        let mut samples = Vec::new();
        for (g, group) in completions.chunks(n).enumerate() {
            let accuracy = rewards[g * n..(g + 1) * n].iter().map(|r| r.accuracy).sum::<f32>() / n as f32;
            if let Some((low, high)) = self.config.online_filter {
                if !(accuracy > low && accuracy < high) {
                    continue;
                }
            }
            stats.groups_kept += 1;
            for (i, c) in group.iter().enumerate() {
                let prompt = &batch[c.prompt].prompt;
                samples.push(Sample {
                    sequence: Sequence {
                        prompt: prompt.ids.clone(),
                        response: c.ids.clone(),
                        images: prompt.images.clone(),
                    },
                    advantage: advantages[g * n + i],
                });
            }
        }
        self.optimize(&policy, &samples, pad_id, &mut stats)?;
        Ok(stats)
    }

    /// The policy updates of one rollout: per mini-batch, old (and reference) log-probs per
    /// micro-batch, then one accumulated, clipped AdamW update.
    fn optimize(
        &mut self,
        policy: &AnyVlm<B::InnerBackend>,
        samples: &[Sample<B::InnerBackend>],
        pad_id: u32,
        stats: &mut GrpoStats,
    ) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mini_size = samples.len().div_ceil(self.config.mini_batches.max(1));
        let config = self.config.loss;
        let mut grad_norms = 0.0;
        for mini in samples.chunks(mini_size) {
            let micro: Vec<&[Sample<B::InnerBackend>]> =
                mini.chunks(self.config.micro_batch_size.max(1)).collect();
            let tokens: usize = mini.iter().map(|s| s.sequence.response.len()).sum();
            stats.response_tokens += tokens;
            let normaliser = match config.aggregation {
                Aggregation::TokenMean => tokens as f32,
                Aggregation::SeqMean => mini.len() as f32,
            };
            let frozen = |model: &AnyVlm<B::InnerBackend>, chunk: &[Sample<B::InnerBackend>]| {
                let sequences: Vec<Sequence<B::InnerBackend>> =
                    chunk.iter().map(|s| s.sequence.clone()).collect();
                let prompts: Vec<Vec<u32>> = sequences.iter().map(|s| s.prompt.clone()).collect();
                let responses: Vec<Vec<u32>> = sequences.iter().map(|s| s.response.clone()).collect();
                let images = ImageInput::concat(sequences.iter().filter_map(|s| s.images.as_ref()));
                response_logprobs(model, &prompts, &responses, images.as_ref(), pad_id).map(|r| r.logp)
            };
            let old: Vec<_> = micro.iter().map(|c| frozen(policy, c)).collect::<Result<_>>()?;
            let reference: Option<Vec<_>> = match &self.reference {
                Some(model) => Some(micro.iter().map(|c| frozen(model, c)).collect::<Result<_>>()?),
                None => None,
            };
            let update = self.learner.update(micro.len(), |learner, k| {
                let chunk = micro[k];
                let sequences: Vec<Sequence<B::InnerBackend>> =
                    chunk.iter().map(|s| s.sequence.clone()).collect();
                let scored = learner.logprobs(&sequences, pad_id)?;
                let device = scored.logp.device();
                let adv: Vec<f32> = chunk.iter().map(|s| s.advantage).collect();
                let advantages = Tensor::from_data(TensorData::new(adv, [chunk.len(), 1]), &device);
                let reduce = |t: Tensor<B, 2>| {
                    super::aggregate(t, scored.mask.clone(), config.aggregation, normaliser)
                        .into_scalar()
                        .elem::<f64>()
                };
                stats.entropy += reduce(scored.entropy.clone().detach());
                let terms = TokenBatchLoss {
                    logp: scored.logp,
                    old_logp: Tensor::from_inner(old[k].clone()),
                    ref_logp: reference.as_ref().map(|r| Tensor::from_inner(r[k].clone())),
                    advantages,
                    mask: scored.mask.clone(),
                }
                .terms(&config, normaliser);
                stats.pg_loss += terms.pg.into_scalar().elem::<f64>();
                stats.kl += terms.kl.into_scalar().elem::<f64>();
                stats.clip_fraction += terms.clip_fraction.into_scalar().elem::<f64>();
                Ok(terms.loss)
            })?;
            grad_norms += update.grad_norm;
            stats.lr = update.lr;
            stats.updates += 1;
        }
        let updates = stats.updates as f64;
        for metric in [&mut stats.pg_loss, &mut stats.kl, &mut stats.entropy, &mut stats.clip_fraction] {
            *metric /= updates;
        }
        stats.grad_norm = grad_norms / updates;
        Ok(())
    }
}

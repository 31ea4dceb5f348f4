//! One GRPO step: a batched rollout of n samples per prompt, rewards, group advantages,
//! old/reference log-probs, then one optimizer update per mini-batch on burn-train's `Learner`.

use std::ops::Range;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{DType, Tensor, TensorData};
use seethink_curriculum::GroupResult;
use seethink_data::Task;
use seethink_models::generate::{generate_with, Completion, KvLayout, Prompt};
use seethink_models::kernels::Kernels;
use seethink_models::nn::{for_compute, store_frozen};
use seethink_models::parallel::map_parallel;
use seethink_models::processing::TextTokenizer;
use seethink_models::readback::host_f32;
use seethink_models::AnyVlm;
use seethink_reward::{Reward, RewardBreakdown};

use super::{
    aggregate, row_weights, sequence_ratio, Aggregation, EstimatorInputs, GrpoLossConfig, LossType,
    MiniBatch, Plugins, PolicyLossFn, SequenceRatio, TokenBatchLoss,
};
use crate::config::{ActorConfig, AlgorithmConfig, KvCacheDtype, RolloutConfig};
use crate::data_parallel::Worker;
use crate::error::{Result, TrainError};
use crate::gradient_sink::GradientSink;
use crate::layer_checkpoints::idle_micro_batch;
use crate::learner::{apply_update, PolicyLearner};
use crate::logprobs::{add_chunked_gradients, response_logprobs, ChunkLogprobs, Scoring, Sequence};
use crate::policy::{to_autodiff, with_own_leaves, PolicyModel};
use crate::step_marks;
use crate::train_backend::TrainBackend;

/// A prompt of the rollout: the task (for its reward), its index in the run's task list and its
/// encoded prompt.
#[derive(Clone, Debug)]
pub struct RolloutPrompt<B: burn::tensor::backend::Backend> {
    pub task: Task,
    pub index: usize,
    pub prompt: Prompt<B>,
}

/// What a GRPO step asks its task source for: the step's first batch, or `count` tasks that
/// replace groups the online filter or the sampler's gate rejected in this step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    Batch,
    Refill(usize),
}

/// Metrics of one GRPO step (means over samples, or over response tokens for token metrics).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GrpoStats {
    pub reward: RewardBreakdown,
    pub response_length: f64,
    /// Groups kept by the online filter / groups sampled.
    pub groups_kept: usize,
    pub groups: usize,
    /// Per prompt of the step, in order.
    pub outcomes: Vec<GroupResult>,
    /// Generation calls of the rollout (`rollout.batch_size` sequences per call).
    pub generation_calls: usize,
    pub pg_loss: f64,
    /// The KL loss term (when the KL is a loss).
    pub kl: f64,
    /// Mean over responses of the per-token KL penalty (when the KL is a reward penalty).
    pub kl_penalty: f64,
    pub entropy: f64,
    pub clip_fraction: f64,
    /// Mean over the step's applied updates of the global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    pub updates: usize,
    /// Updates skipped for a non-finite gradient norm (counted in `updates`).
    pub skipped_updates: usize,
    pub response_tokens: usize,
    pub seconds: f64,
    /// Seconds spent gathering sharded weights (`trainer.sharding: Weights`), summed over the
    /// worker's threads ([`Worker::take_gather_seconds`]); 0 otherwise.
    pub gather_seconds: f64,
}

/// GRPO's state besides the learner: the settings, the frozen reference model (the phase's
/// starting weights; none when the KL term is off), the rollout counter, and this worker's
/// place among data-parallel workers.
pub struct Grpo<B: TrainBackend> {
    pub algorithm: AlgorithmConfig,
    pub actor: ActorConfig,
    pub rollout: RolloutConfig,
    reference: Option<AnyVlm<B::InnerBackend>>,
    /// Rollout steps done (rollout r samples with seed `rollout.seed + r`).
    pub rollouts: usize,
    /// This worker and its collective ([`crate::data_parallel`]; [`Worker::alone`] by default).
    pub worker: Worker,
    /// The type the rollout's KV cache is kept in (`rollout.kv_cache_dtype`; `None`: as computed).
    kv_storage: Option<DType>,
    /// The losses and estimators `algorithm.loss` and `algorithm.estimator` name.
    plugins: Plugins<B>,
}

/// Old and reference log-probs of the samples this worker updates on, on the device, one
/// `[len]` tensor per sample of the rollout (`None` for the samples other workers update on;
/// old: `None` when the update takes its own, [`ActorConfig::on_policy_old_logprobs`];
/// reference: `None` when the KL is off). Kept per sample, so the passes that compute them and
/// the updates that read them may batch samples differently; nothing of them goes through the
/// host.
struct FrozenLogprobs<B: burn::tensor::backend::Backend> {
    old: Option<Vec<Option<Tensor<B, 1>>>>,
    reference: Option<Vec<Option<Tensor<B, 1>>>>,
}

/// The rows `range` of `logprobs`: an error naming the first sample this worker did not
/// compute (it would mean the update reads another worker's samples).
fn own_rows<B: burn::tensor::backend::Backend>(
    logprobs: &[Option<Tensor<B, 1>>],
    range: Range<usize>,
) -> Result<Vec<&Tensor<B, 1>>> {
    range
        .map(|i| {
            logprobs[i].as_ref().ok_or_else(|| {
                TrainError::Distributed(format!("the log-probs of sample {i} are another worker's"))
            })
        })
        .collect()
}

/// `rows` right-aligned in a `[rows, width]` tensor, zeros before them (the layout of
/// [`ResponseLogprobs`](crate::logprobs::ResponseLogprobs)), assembled on the device.
fn right_aligned<B: burn::tensor::backend::Backend>(
    rows: &[&Tensor<B, 1>],
    width: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    if rows.is_empty() || width == 0 {
        return Tensor::zeros([rows.len(), width], device);
    }
    let padded: Vec<Tensor<B, 2>> = rows
        .iter()
        .map(|row| {
            let len = row.dims()[0];
            let row = (*row).clone();
            let row = match (len, width - len) {
                (0, _) => Tensor::zeros([width], device),
                (_, 0) => row,
                (_, pad) => Tensor::cat(vec![Tensor::zeros([pad], device), row], 0),
            };
            row.unsqueeze()
        })
        .collect();
    Tensor::cat(padded, 0)
}

/// The micro-batches of the samples `range` (`n` consecutive samples per group, groups
/// starting at sample 0): consecutive pieces of at most `size` samples that end at the end of
/// a group, except where a group alone is longer than `size` (`n = 1`: EasyR1's split, pieces
/// of `size`). A group's samples then share their prompt's pass through the model
/// ([`response_positions`](crate::logprobs::response_positions)). Log-probs do not depend on
/// the split, nor does a token-mean loss (the sum of its micro-batches' with the mini-batch's
/// normaliser): for them it changes only the rounding.
pub(crate) fn micro_batches(range: Range<usize>, n: usize, size: usize) -> Vec<Range<usize>> {
    let (n, size) = (n.max(1), size.max(1));
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let limit = (start + size).min(range.end);
        let group_end = limit / n * n;
        let end = if limit == range.end || group_end <= start { limit } else { group_end };
        pieces.push(start..end);
        start = end;
    }
    pieces
}

/// Prompts per generation call of a rollout of `prompts` prompts × `n` samples on `threads`
/// threads: `batch_size / n` (at least one; every prompt when `batch_size` is 0), fewer when
/// that would leave a thread idle.
pub fn prompts_per_call(batch_size: usize, n: usize, prompts: usize, threads: usize) -> usize {
    let wanted = match batch_size {
        0 => prompts,
        _ => batch_size / n.max(1),
    };
    wanted.max(1).min(prompts.div_ceil(threads.max(1)).max(1))
}

/// Responses per mini-batch of a rollout of `samples` split into `mini_batches`.
pub(crate) fn mini_batch_size(samples: usize, mini_batches: usize) -> usize {
    samples.div_ceil(mini_batches.max(1)).max(1)
}

/// A sequence of a finished rollout and its reward.
#[derive(Clone, Debug)]
pub struct Scored<B: burn::tensor::backend::Backend> {
    pub sequence: Sequence<B>,
    /// The reward's overall score.
    pub score: f32,
}

struct Sample<B: burn::tensor::backend::Backend> {
    sequence: Sequence<B>,
    /// The reward's overall score.
    score: f32,
    advantage: f32,
}

impl<B: TrainBackend> Grpo<B> {
    /// GRPO from `start` (the policy's weights now); the KL reference, unless
    /// `algorithm.kl_coef` is 0, is `start` without its LoRA adapters
    /// ([`AnyVlm::without_lora`]): `start` itself without LoRA, the base model with it (its
    /// parameters shared with the policy's frozen ones, not a copy). Its matrices are stored
    /// in the learner's frozen type ([`PolicyLearner::frozen_dtype`]: bf16 for a bf16
    /// checkpoint on a GPU backend), and the whole of it in the compute type
    /// ([`PolicyLearner::compute_dtype`]) if that is narrower. `start` must hold the whole policy: build GRPO before
    /// [`PolicyLearner::shard_weights`], as the run loop does.
    pub fn new(
        start: &PolicyLearner<B>,
        algorithm: AlgorithmConfig,
        actor: ActorConfig,
        rollout: RolloutConfig,
    ) -> Self {
        let reference = (algorithm.kl_coef != 0.0).then(|| {
            let stored = store_frozen(start.model().valid().model.without_lora(), start.frozen_dtype());
            for_compute(stored, start.compute_dtype())
        });
        let kv_storage = match rollout.kv_cache_dtype {
            KvCacheDtype::Compute => None,
            // never wider than the passes compute in (an f32 checkpoint under bf16 compute)
            KvCacheDtype::Checkpoint => {
                let (frozen, compute) = (start.frozen_dtype(), start.compute_dtype());
                Some(if frozen.size() < compute.size() { frozen } else { compute })
            }
        };
        let plugins = Plugins::builtin();
        Self {
            algorithm,
            actor,
            rollout,
            reference,
            rollouts: 0,
            worker: Worker::alone(),
            kv_storage,
            plugins,
        }
    }

    /// This GRPO with `plugins` in place of the built-ins: its `algorithm.loss` and
    /// `algorithm.estimator` are looked up there. An error names an unknown name and the
    /// known ones.
    pub fn with_plugins(mut self, plugins: Plugins<B>) -> Result<Self> {
        plugins.loss(&self.algorithm.loss).map_err(TrainError::UnknownPlugin)?;
        plugins.estimator(&self.algorithm.estimator).map_err(TrainError::UnknownPlugin)?;
        self.plugins = plugins;
        Ok(self)
    }

    /// Advantages of `scores` (responses `lengths` tokens long, groups of `rollout.n`) by the
    /// estimator `algorithm.estimator` names.
    fn estimate_advantages(&self, scores: &[f32], lengths: &[usize]) -> Result<Vec<f32>> {
        let estimator =
            self.plugins.estimator(&self.algorithm.estimator).map_err(TrainError::UnknownPlugin)?;
        let (group, normalize_std) = (self.rollout.n, self.algorithm.normalize_std);
        Ok(estimator(&EstimatorInputs { scores, lengths, group, normalize_std }))
    }

    /// The frozen KL reference (the phase's starting weights), if the KL term is on; with the
    /// weights sharded, after the first step, this worker's share of it
    /// ([`Worker::release_frozen`]).
    pub fn reference(&self) -> Option<&AnyVlm<B::InnerBackend>> {
        self.reference.as_ref()
    }

    /// `n` completions per prompt (group-major), generated `rollout.batch_size / n` prompts
    /// (at least one) per call, the calls spread over the host's cores ([`Kernels::batch_threads`];
    /// more, smaller calls when there are several); sequence i of the step samples from stream
    /// `first + i` of seed `rollout.seed + rollouts`, so the samples do not depend on the batch
    /// size. Returns the completions and the number of generation calls.
    fn sample(
        &self,
        policy: &AnyVlm<B::InnerBackend>,
        prompts: &[Prompt<B::InnerBackend>],
        tokenizer: &TextTokenizer,
        first: usize,
    ) -> Result<(Vec<Completion>, usize)> {
        let n = self.rollout.n;
        let threads = <B::InnerBackend as Kernels>::batch_threads();
        let per_call = prompts_per_call(self.rollout.batch_size, n, prompts.len(), threads);
        let chunks: Vec<(usize, &[Prompt<B::InnerBackend>])> = prompts.chunks(per_call).enumerate().collect();
        let calls = chunks.len();
        let outputs = map_parallel(chunks, threads, |(c, chunk)| {
            let mut sampling = self.rollout.sampling(self.rollouts);
            sampling.stream = (first + c * per_call * n) as u64;
            let (stop, pad) = (&tokenizer.stop_ids, tokenizer.pad_id);
            let bound = (self.rollout.kv_cache_positions > 0).then_some(self.rollout.kv_cache_positions);
            let kv = KvLayout::of::<B::InnerBackend>(self.kv_storage).bounded(bound);
            let out = generate_with(policy, chunk, n, &sampling, stop, pad, kv)?;
            Ok(out
                .into_iter()
                .map(|x| Completion { prompt: x.prompt + c * per_call, ..x })
                .collect::<Vec<_>>())
        });
        let completions = outputs.into_iter().collect::<Result<Vec<_>>>()?.concat();
        Ok((completions, calls))
    }

    /// [`sample`](Self::sample) on this worker's share of `prompts` (whole prompts,
    /// [`Worker::share`]; each sequence from the stream it has on one worker), then every
    /// worker's completions gathered, so each worker holds the whole rollout.
    fn sample_shared(
        &self,
        policy: &AnyVlm<B::InnerBackend>,
        prompts: &[Prompt<B::InnerBackend>],
        tokenizer: &TextTokenizer,
        first: usize,
    ) -> Result<(Vec<Completion>, usize)> {
        let (worker, n) = (&self.worker, self.rollout.n);
        let own = worker.share(prompts.len());
        let (mine, calls) = self.sample(policy, &prompts[own.clone()], tokenizer, first + own.start * n)?;
        let mine = mine.into_iter().map(|c| Completion { prompt: c.prompt + own.start, ..c }).collect();
        Ok((worker.gather_completions(mine, own.start * n, prompts.len() * n)?, calls))
    }

    /// Whether online filtering keeps a group with these rewards: the mean of
    /// `algorithm.filter_key` strictly inside (`filter_low`, `filter_high`), as EasyR1 does.
    fn keeps(&self, rewards: &[RewardBreakdown]) -> bool {
        let a = &self.algorithm;
        let mean = rewards.iter().map(|r| a.filter_key.of(r)).sum::<f32>() / rewards.len().max(1) as f32;
        !a.online_filtering || (mean > a.filter_low && mean < a.filter_high)
    }

    /// One GRPO step: the prompts of `draw(Draw::Batch)` are rolled out (`n` samples each) and
    /// rewarded (plus `algorithm.overlong_penalty` and `algorithm.verbosity_bonus` when set), and advantages computed
    /// ([`advantages`]). With online filtering, groups outside the filter band are dropped, and
    /// so are groups `admit` rejects, a second
    /// gate of the same kind; `draw(Draw::Refill(missing))` is then called for just the groups
    /// still missing, until the batch is full or `algorithm.max_try_make_batch` draws were made
    /// (0: no limit). The batch trained on is the first kept groups in draw order, as EasyR1's
    /// `_make_batch_data` makes it; EasyR1 draws a whole `rollout_batch_size` batch per try and
    /// drops the kept groups past the batch, seethink draws only what is missing, so no drawn
    /// task is rolled out and then left unused. When fewer or no groups survive, the step goes
    /// on with what it has and says so (EasyR1 raises an error). Then `actor.mini_batches`
    /// optimizer updates of `learner`. `stats.outcomes` lists every drawn prompt's group in
    /// draw order.
    pub fn step(
        &mut self,
        learner: &mut PolicyLearner<B>,
        mut draw: impl FnMut(Draw) -> Result<Vec<RolloutPrompt<B::InnerBackend>>>,
        mut admit: impl FnMut(&GroupResult) -> Result<bool>,
        reward: &dyn Reward,
        tokenizer: &TextTokenizer,
    ) -> Result<GrpoStats> {
        let started = Instant::now();
        self.release_reference();
        let policy = learner.compute_policy()?.valid().model;
        let n = self.rollout.n;
        let mut stats = GrpoStats::default();
        let mut all_rewards: Vec<RewardBreakdown> = Vec::new();
        let mut lengths = 0usize;
        let mut kept: Vec<Vec<Scored<B::InnerBackend>>> = Vec::new();
        let mut wanted = None;
        for attempt in 1.. {
            let batch = match wanted {
                None => draw(Draw::Batch)?,
                Some(wanted) => draw(Draw::Refill(wanted - kept.len()))?,
            };
            let wanted = *wanted.get_or_insert(batch.len());
            let prompts: Vec<Prompt<B::InnerBackend>> = batch.iter().map(|p| p.prompt.clone()).collect();
            let (completions, calls) = self.sample_shared(&policy, &prompts, tokenizer, stats.groups * n)?;
            stats.generation_calls += calls;
            let rewards = completions
                .iter()
                .map(|c| {
                    let mut score = reward.score(&batch[c.prompt].task, &tokenizer.decode(&c.ids, true)?);
                    if let Some(overlong) = self.algorithm.overlong_penalty {
                        score.overall += overlong.penalty(c.ids.len(), self.rollout.max_new_tokens);
                    }
                    if let Some(verbosity) = self.algorithm.verbosity_bonus {
                        score.overall +=
                            verbosity.bonus(c.ids.len(), self.rollout.max_new_tokens, score.accuracy);
                    }
                    Ok(score)
                })
                .collect::<Result<Vec<_>>>()?;
            let overall: Vec<f32> = rewards.iter().map(|r| r.overall).collect();
            let sizes: Vec<usize> = completions.iter().map(|c| c.ids.len()).collect();
            let advantages = self.estimate_advantages(&overall, &sizes)?;
            for (g, group) in completions.chunks(n).enumerate() {
                let group_rewards = &rewards[g * n..(g + 1) * n];
                let mean = |f: &dyn Fn(usize) -> f32| (0..n).map(f).sum::<f32>() / n as f32;
                let outcome = GroupResult {
                    task: batch[g].index,
                    capability: batch[g].task.capability,
                    level: batch[g].task.level,
                    rewards: group_rewards.iter().map(|r| r.overall).collect(),
                    reward: mean(&|i| group_rewards[i].overall),
                    accuracy: mean(&|i| group_rewards[i].accuracy),
                    response_length: mean(&|i| group[i].ids.len() as f32),
                    mean_abs_advantage: mean(&|i| advantages[g * n + i].abs()),
                };
                let kept_here = self.keeps(group_rewards) && admit(&outcome)?;
                stats.outcomes.push(outcome);
                if !kept_here {
                    continue;
                }
                let prompt = &batch[g].prompt;
                kept.push(
                    group
                        .iter()
                        .enumerate()
                        .map(|(i, c)| Scored {
                            sequence: Sequence {
                                prompt: prompt.ids.clone(),
                                response: c.ids.clone(),
                                images: prompt.images.clone(),
                            },
                            score: group_rewards[i].overall,
                        })
                        .collect(),
                );
            }
            stats.groups += batch.len();
            lengths += sizes.iter().sum::<usize>();
            all_rewards.extend(rewards);
            let max_tries = self.algorithm.max_try_make_batch;
            if kept.len() >= wanted || (max_tries > 0 && attempt >= max_tries) {
                if kept.len() < wanted {
                    tracing::warn!(kept = kept.len(), wanted, attempt, "online filtering: batch not full");
                    eprintln!(
                        "online filtering kept {} of {wanted} groups after {attempt} draws (max_try_make_batch); \
                         training on {}",
                        kept.len(),
                        if kept.is_empty() { "nothing this step".to_string() } else { "those".to_string() }
                    );
                }
                kept.truncate(wanted);
                break;
            }
        }
        stats.groups_kept = kept.len();
        let count = all_rewards.len().max(1) as f32;
        stats.reward = RewardBreakdown {
            overall: all_rewards.iter().map(|r| r.overall).sum::<f32>() / count,
            format: all_rewards.iter().map(|r| r.format).sum::<f32>() / count,
            accuracy: all_rewards.iter().map(|r| r.accuracy).sum::<f32>() / count,
        };
        stats.response_length = lengths as f64 / count as f64;
        self.rollouts += 1;
        self.learn(learner, policy, kept.into_iter().flatten().collect(), tokenizer.pad_id, &mut stats)?;
        stats.seconds = started.elapsed().as_secs_f64();
        stats.gather_seconds = self.worker.take_gather_seconds();
        Ok(stats)
    }

    /// The learning phase of a step on a finished rollout (`rollout.n` consecutive sequences
    /// per prompt, scored): group advantages from the scores, old (`policy`, the rollout's
    /// weights) and reference log-probs once, the KL reward penalty when the KL is not a loss,
    /// then the optimizer updates of `learner` ([`optimize`](Self::optimize)), `policy` dropped
    /// after the old log-probs (with the weights sharded, the reference passes and the update
    /// gather their own parts). Adds the update metrics to `stats`. A rollout that is not whole
    /// groups of `rollout.n` is refused before anything changes.
    pub fn learn(
        &mut self,
        learner: &mut PolicyLearner<B>,
        policy: AnyVlm<B::InnerBackend>,
        rollout: Vec<Scored<B::InnerBackend>>,
        pad_id: u32,
        stats: &mut GrpoStats,
    ) -> Result<()> {
        let n = self.rollout.n;
        if n == 0 || !rollout.len().is_multiple_of(n) {
            return Err(TrainError::Rollout(format!(
                "{} scored sequences are not whole groups of rollout.n = {n} (learn takes n consecutive \
                 responses per prompt)",
                rollout.len()
            )));
        }
        let scores: Vec<f32> = rollout.iter().map(|s| s.score).collect();
        let lengths: Vec<usize> = rollout.iter().map(|s| s.sequence.response.len()).collect();
        let advantages = self.estimate_advantages(&scores, &lengths)?;
        let mut samples: Vec<Sample<B::InnerBackend>> = rollout
            .into_iter()
            .zip(advantages)
            .map(|(s, advantage)| Sample { sequence: s.sequence, score: s.score, advantage })
            .collect();
        self.release_reference();
        let frozen = self.frozen_logprobs(policy, &samples, pad_id)?;
        if !self.algorithm.use_kl_loss {
            self.penalise_kl(&mut samples, &frozen, stats)?;
        }
        self.optimize(learner, &samples, &frozen, pad_id, stats)
    }

    /// The KL reference with the weights sharded: each worker keeps its own parameters' share
    /// of it between reference passes ([`Worker::release_frozen`]; the layout the learner's
    /// release recorded). Nothing otherwise, and nothing once released.
    fn release_reference(&mut self) {
        if let Some(reference) = self.reference.take() {
            self.reference = Some(self.worker.release_frozen(reference));
        }
    }

    /// How every pass scores responses: at the sampling temperature, as EasyR1 does.
    fn scoring(&self, pad_id: u32) -> Scoring {
        Scoring {
            pad_id,
            chunk_tokens: self.actor.logits_chunk_tokens,
            temperature: self.rollout.temperature,
            checkpoint_layers: self.actor.activation_checkpointing,
        }
    }

    /// Whether the update takes the old log-probs from its own forward pass, detached
    /// ([`ActorConfig::on_policy_old_logprobs`]): asked for, one update per rollout
    /// (`ppo_epochs` = 1, one mini-batch), and no KL reward penalty needing them before it.
    fn old_from_update(&self) -> bool {
        let actor = &self.actor;
        let penalty_needs_old = !self.algorithm.use_kl_loss && self.reference.is_some();
        actor.on_policy_old_logprobs && actor.ppo_epochs == 1 && actor.mini_batches <= 1 && !penalty_needs_old
    }

    /// Old (rollout policy) and reference log-probs of the samples this worker updates on,
    /// computed once after the rollout as EasyR1 does, a micro-batch at a time (spread over the
    /// host's cores, [`Kernels::batch_threads`]): this worker's update micro-batches
    /// ([`update_plan`](Self::update_plan)). `policy` is dropped before the reference passes,
    /// which, with the weights sharded, gather the reference for their time.
    fn frozen_logprobs(
        &self,
        policy: AnyVlm<B::InnerBackend>,
        samples: &[Sample<B::InnerBackend>],
        pad_id: u32,
    ) -> Result<FrozenLogprobs<B::InnerBackend>> {
        let scoring = self.scoring(pad_id);
        let pieces: Vec<Range<usize>> =
            self.update_plan(samples).into_iter().flat_map(|(_, own, _)| own).collect();
        let pass = |model: &AnyVlm<B::InnerBackend>| -> Result<Vec<Option<Tensor<B::InnerBackend, 1>>>> {
            let parts =
                map_parallel(pieces.clone(), <B::InnerBackend as Kernels>::batch_threads(), |range| {
                    let sequences: Vec<Sequence<B::InnerBackend>> =
                        samples[range.clone()].iter().map(|s| s.sequence.clone()).collect();
                    let logp = response_logprobs(model, &sequences, scoring)?.logp;
                    let width = logp.dims()[1];
                    Ok::<_, TrainError>(
                        sequences
                            .iter()
                            .enumerate()
                            .map(|(i, s)| {
                                let row = logp.clone().slice([i..i + 1, width - s.response.len()..width]);
                                (range.start + i, row.reshape([s.response.len()]))
                            })
                            .collect::<Vec<_>>(),
                    )
                });
            let mut rows = vec![None; samples.len()];
            for (i, row) in parts.into_iter().collect::<Result<Vec<_>>>()?.concat() {
                rows[i] = Some(row);
            }
            Ok(rows)
        };
        let old = match self.old_from_update() {
            true => None,
            false => Some(pass(&policy)?),
        };
        step_marks::reach(step_marks::OLD_LOGPROBS);
        drop(policy);
        let reference = match &self.reference {
            Some(reference) => Some(pass(&self.worker.gather_frozen(reference.clone())?)?),
            None => None,
        };
        step_marks::reach(step_marks::REFERENCE_LOGPROBS);
        Ok(FrozenLogprobs { old, reference })
    }

    /// The mini-batches of a rollout of `samples` (`actor.mini_batches` consecutive pieces) and,
    /// for each, the micro-batches this worker computes: [its contiguous share](Worker::share) of
    /// them (all of them alone), so that the workers together compute exactly one worker's
    /// micro-batches. Micro-batches end
    /// at group ends for a token-mean loss (which does not depend on the split), and are
    /// EasyR1's consecutive pieces for seq-mean (which does). Last, the most micro-batches of
    /// the mini-batch any worker computes (`⌈micro-batches / workers⌉`).
    fn update_plan(
        &self,
        samples: &[Sample<B::InnerBackend>],
    ) -> Vec<(Range<usize>, Vec<Range<usize>>, usize)> {
        let grouping = match self.actor.loss(&self.algorithm).aggregation {
            Aggregation::TokenMean => self.rollout.n,
            Aggregation::SeqMean => 1,
        };
        let mini_size = mini_batch_size(samples.len(), self.actor.mini_batches);
        (0..samples.len())
            .step_by(mini_size)
            .map(|start| {
                let mini = start..(start + mini_size).min(samples.len());
                let micros = micro_batches(mini.clone(), grouping, self.actor.micro_batch_size);
                let own = micros[self.worker.share(micros.len())].to_vec();
                (mini, own, micros.len().div_ceil(self.worker.count()))
            })
            .collect()
    }

    /// The KL as a reward penalty (EasyR1's `apply_kl_penalty` with GRPO): each kept response's
    /// score becomes `r − kl_coef · Σ_t kl_t` (kl: the [`KlPenalty`](super::KlPenalty) estimate
    /// from the old and reference log-probs of its tokens, 0 on padding), and advantages are
    /// recomputed per group (`n` consecutive samples) from these scores. `stats.kl_penalty` is
    /// the mean over responses of the per-token mean kl.
    fn penalise_kl(
        &self,
        samples: &mut [Sample<B::InnerBackend>],
        frozen: &FrozenLogprobs<B::InnerBackend>,
        stats: &mut GrpoStats,
    ) -> Result<()> {
        let (Some(old), Some(reference)) = (&frozen.old, &frozen.reference) else { return Ok(()) };
        let width = samples.iter().map(|s| s.sequence.response.len()).max().unwrap_or(0);
        let device = Default::default();
        // this worker's samples (all of them on a single worker), in order
        let own: Vec<usize> = (0..samples.len()).filter(|&i| old[i].is_some()).collect();
        let aligned = |rows: &[Option<Tensor<B::InnerBackend, 1>>]| {
            let rows: Vec<&Tensor<B::InnerBackend, 1>> =
                own.iter().filter_map(|&i| rows[i].as_ref()).collect();
            right_aligned::<B::InnerBackend>(&rows, width, &device)
        };
        // padding is 0 in both, where every estimate is 0
        let kl = self.algorithm.kl_penalty.estimate(aligned(old), aligned(reference));
        let totals = host_f32(kl.sum_dim(1), "the KL penalty")?;
        let totals = self.worker.gather(samples.len(), &own, &totals)?;
        let penalised: Vec<f32> =
            samples.iter().zip(&totals).map(|(s, kl)| s.score - self.algorithm.kl_coef * kl).collect();
        let lengths: Vec<usize> = samples.iter().map(|s| s.sequence.response.len()).collect();
        let advantages = self.estimate_advantages(&penalised, &lengths)?;
        for (sample, advantage) in samples.iter_mut().zip(advantages) {
            sample.advantage = advantage;
        }
        let mean_kl = samples
            .iter()
            .zip(&totals)
            .map(|(s, kl)| f64::from(*kl) / s.sequence.response.len().max(1) as f64);
        stats.kl_penalty = mean_kl.sum::<f64>() / samples.len().max(1) as f64;
        Ok(())
    }

    /// The policy updates of one rollout: for each of `actor.ppo_epochs` epochs, per
    /// mini-batch, one accumulated, clipped AdamW update against the `frozen` log-probs.
    fn optimize(
        &mut self,
        learner: &mut PolicyLearner<B>,
        samples: &[Sample<B::InnerBackend>],
        frozen: &FrozenLogprobs<B::InnerBackend>,
        pad_id: u32,
        stats: &mut GrpoStats,
    ) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let config = self.actor.loss(&self.algorithm);
        let policy_loss = self.plugins.loss(&self.algorithm.loss).map_err(TrainError::UnknownPlugin)?;
        let scoring = self.scoring(pad_id);
        let plan = self.update_plan(samples);
        stats.response_tokens = samples.iter().map(|s| s.sequence.response.len()).sum();
        let mut grad_norms = 0.0;
        // Σ over every logits chunk of [entropy, pg, kl, clip fraction], on the device: read once
        let mut metric_sums: Option<Tensor<B::InnerBackend, 1>> = None;
        for _epoch in 0..self.actor.ppo_epochs {
            for (mini, own, most) in &plan {
                let mini_batch = MiniBatch {
                    tokens: samples[mini.clone()].iter().map(|s| s.sequence.response.len()).sum(),
                    responses: mini.len(),
                    max_response_tokens: self.rollout.max_new_tokens,
                };
                let model: PolicyModel<B> = learner.update_model()?;
                step_marks::reach(step_marks::UPDATE_WEIGHTS);
                let mut sink = GradientSink::new(&model.model, &self.worker, scoring.checkpoint_layers);
                let pass = MicroBatchPass { samples, frozen, config, policy_loss, scoring, mini_batch };
                let mut add_metrics = |metrics: Vec<Tensor<B::InnerBackend, 1>>| {
                    for m in metrics {
                        metric_sums = Some(match metric_sums.take() {
                            Some(sums) => sums + m,
                            None => m,
                        });
                    }
                };
                // on the host's cores, micro-batches side by side, each through a graph of its
                // own, their gradients added in order (the same sums to the bit)
                let side_by_side = match sink.takes_whole_micro_batches() {
                    true => <B::InnerBackend as Kernels>::batch_threads().max(1),
                    false => 1,
                };
                for round in own.chunks(side_by_side) {
                    if let [micro] = round {
                        add_metrics(pass.run(&model.model, micro.clone(), &mut sink)?);
                        step_marks::reach(step_marks::MICRO_BATCH_GRADIENTS);
                        continue;
                    }
                    let apart: Vec<(Range<usize>, AnyVlm<B>)> = round
                        .iter()
                        .map(|micro| (micro.clone(), with_own_leaves(model.model.clone())))
                        .collect();
                    let done = map_parallel(apart, round.len(), |(micro, copy)| {
                        let alone = Worker::alone();
                        let mut own_sink = GradientSink::new(&copy, &alone, false);
                        let metrics = pass.run(&copy, micro, &mut own_sink)?;
                        Ok::<_, TrainError>((own_sink.finish(&copy)?, metrics))
                    });
                    for micro_batch in done {
                        let (grads, metrics) = micro_batch?;
                        sink.add_micro_batch(&model.model, grads)?;
                        add_metrics(metrics);
                        step_marks::reach(step_marks::MICRO_BATCH_GRADIENTS);
                    }
                }
                for _ in own.len()..*most {
                    idle_micro_batch(&model.model, &mut sink)?;
                }
                let grads = sink.finish(&model.model)?;
                let update = apply_update(learner, grads, self.actor.max_grad_norm, &self.worker)?;
                step_marks::reach(step_marks::OPTIMIZER_STEP);
                match update.skipped {
                    true => stats.skipped_updates += 1,
                    false => grad_norms += update.grad_norm,
                }
                stats.lr = update.lr;
                stats.updates += 1;
            }
        }
        let sums = self.worker.sum(match metric_sums {
            Some(sums) => host_f32(sums, "the update's metrics")?,
            None => vec![0.0; 4],
        })?;
        let updates = stats.updates as f64;
        let metrics = [&mut stats.entropy, &mut stats.pg_loss, &mut stats.kl, &mut stats.clip_fraction];
        for (metric, sum) in metrics.into_iter().zip(sums) {
            *metric = f64::from(sum) / updates;
        }
        let applied = stats.updates - stats.skipped_updates;
        stats.grad_norm = if applied == 0 { f64::NAN } else { grad_norms / applied as f64 };
        Ok(())
    }
}

/// What the trained pass of a micro-batch reads besides the model: the rollout's samples and
/// their frozen log-probs, the loss and its settings, how responses are scored, and the
/// mini-batch it belongs to.
struct MicroBatchPass<'a, B: TrainBackend> {
    samples: &'a [Sample<B::InnerBackend>],
    frozen: &'a FrozenLogprobs<B::InnerBackend>,
    config: GrpoLossConfig,
    policy_loss: PolicyLossFn<B>,
    scoring: Scoring,
    mini_batch: MiniBatch,
}

impl<B: TrainBackend> MicroBatchPass<'_, B> {
    /// The forward and backward passes of the micro-batch `micro` (samples of the rollout)
    /// through `model`, its gradients handed to `sink` ([`add_chunked_gradients`]): the loss of
    /// each logits chunk is [`TokenBatchLoss::terms`] against the frozen log-probs, normalised
    /// by the mini-batch's response tokens. Returns each chunk's sums of [entropy, pg, kl,
    /// clip fraction], in order.
    fn run(
        &self,
        model: &AnyVlm<B>,
        micro: Range<usize>,
        sink: &mut GradientSink<AnyVlm<B>>,
    ) -> Result<Vec<Tensor<B::InnerBackend, 1>>> {
        let (config, mini_batch) = (self.config, self.mini_batch);
        let normaliser = mini_batch.tokens as f32;
        let chunk = &self.samples[micro.clone()];
        let sequences: Vec<Sequence<B>> = chunk.iter().map(|s| to_autodiff(s.sequence.clone())).collect();
        let device = model.devices().into_iter().next().unwrap_or_default();
        let column =
            |values: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(values, [chunk.len(), 1]), &device);
        let advantages = column(chunk.iter().map(|s| s.advantage).collect());
        let lengths: Vec<usize> = chunk.iter().map(|s| s.sequence.response.len()).collect();
        let row_weight = column(row_weights(&lengths, config.aggregation));
        let width = lengths.iter().copied().max().unwrap_or(0);
        let aligned = |rows: &[Option<Tensor<B::InnerBackend, 1>>]| {
            Ok::<_, TrainError>(right_aligned::<B::InnerBackend>(
                &own_rows(rows, micro.clone())?,
                width,
                &device,
            ))
        };
        let old = self.frozen.old.as_deref().map(aligned).transpose()?;
        let reference = self.frozen.reference.as_deref().map(aligned).transpose()?;
        let gspo = config.loss_type == LossType::Gspo;
        // GSPO: the responses' ratios, from the whole responses the first chunk sees
        let mut ratios: Option<SequenceRatio<B>> = None;
        let mut metrics = Vec::new();
        let loss = |c: ChunkLogprobs<B>| {
            let columns = |t: &Tensor<B::InnerBackend, 2>| {
                Tensor::from_inner(t.clone().narrow(1, c.range.start, c.range.len()))
            };
            if let (true, None, Some(whole)) = (gspo, &ratios, &c.whole) {
                let old = match &old {
                    Some(old) => Tensor::from_inner(old.clone()),
                    None => whole.logp.clone().detach(),
                };
                let (logp, mask) = (whole.logp.clone(), whole.mask.clone());
                ratios = Some(sequence_ratio(logp, old, mask, advantages.clone(), &config));
            }
            let weights = c.mask.clone() * row_weight.clone().expand(c.mask.dims());
            let entropy = aggregate(c.entropy, weights.clone(), normaliser);
            let old_logp = old.as_ref().map_or_else(|| c.logp.clone().detach(), columns);
            let terms = TokenBatchLoss {
                logp: c.logp,
                old_logp,
                ref_logp: reference.as_ref().map(columns),
                advantages: advantages.clone(),
                mask: c.mask.clone(),
                weights,
                mini_batch,
                sequence: ratios.clone(),
            }
            .terms(&config, self.policy_loss);
            let sums = [entropy.inner(), terms.pg.inner(), terms.kl.inner(), terms.clip_fraction.inner()];
            metrics.push(Tensor::cat(sums.to_vec(), 0));
            Ok(terms.loss)
        };
        add_chunked_gradients(model, &sequences, self.scoring, gspo, sink, loss)?;
        Ok(metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::micro_batches;

    #[test]
    fn micro_batches_end_at_group_ends_unless_a_group_is_too_long() {
        // groups of 5, up to 8 per micro-batch: one group each
        assert_eq!(micro_batches(0..20, 5, 8), vec![0..5, 5..10, 10..15, 15..20]);
        // up to 16: three groups, then the last one
        assert_eq!(micro_batches(0..20, 5, 16), vec![0..15, 15..20]);
        // groups of 16, up to 6: groups are cut, each piece at most 6
        assert_eq!(micro_batches(0..32, 16, 6), vec![0..6, 6..12, 12..16, 16..22, 22..28, 28..32]);
        // a mini-batch that starts inside a group (10 of groups of 4)
        assert_eq!(micro_batches(10..20, 4, 4), vec![10..12, 12..16, 16..20]);
        // one sample per group: EasyR1's consecutive pieces
        assert_eq!(micro_batches(0..20, 1, 8), vec![0..8, 8..16, 16..20]);
        assert!(micro_batches(3..3, 5, 8).is_empty());
    }
}

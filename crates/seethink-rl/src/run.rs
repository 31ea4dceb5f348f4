//! A whole training run from a [`TrainConfig`]: data order, GRPO or SFT steps, metrics,
//! checkpoints every N steps, automatic resume, and the final model exported as an HF
//! checkpoint (`<out>/final`).

use std::sync::Arc;

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use seethink_data::Task;
use seethink_models::checkpoint::ExportOptions;
use seethink_models::generate::SamplingConfig;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::with_format_instruction;
use serde::{Deserialize, Serialize};

use crate::checkpoint::RunDir;
use crate::config::{TrainConfig, Trainer};
use crate::error::{io, Result, TrainError};
use crate::grpo::{AdvantageOptions, Grpo, GrpoConfig, GrpoLossConfig};
use crate::metrics::MetricsLog;
use crate::rl::{task_at_position, train_grpo, GrpoRun, TaskSource};
use crate::sft::sft_step;
use crate::trainer::{Learner, OptimConfig, Sequence};

/// Counters saved with each SFT checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RunState {
    /// Steps completed.
    step: usize,
}

/// The tasks of step `step`: positions `step·P … step·P + P − 1` of the endless sequence of
/// epochs, each epoch a permutation of all tasks shuffled with seed `data_seed + epoch`.
/// (see [`task_at_position`]; GRPO's environment serves the same sequence).
pub fn step_tasks(tasks: usize, per_step: usize, step: usize, data_seed: u64) -> Vec<usize> {
    (step * per_step..(step + 1) * per_step)
        .map(|position| task_at_position(tasks, position, data_seed))
        .collect()
}

fn load_tasks(config: &TrainConfig) -> Result<Vec<Task>> {
    let path = &config.data.train;
    let mut tasks = seethink_data::load_tasks(path)?;
    if tasks.is_empty() {
        return Err(TrainError::Config { path: path.clone(), message: "no tasks".into() });
    }
    if config.data.format_instruction {
        for task in &mut tasks {
            task.prompt = with_format_instruction(&task.prompt);
        }
    }
    Ok(tasks)
}

/// Runs the training of `config`, resuming from the last checkpoint in `trainer.out` if there
/// is one; returns the run directory. GRPO runs on burn-train's RL paradigm
/// ([`crate::rl::train_grpo`]), SFT in [`train_sft`]'s loop.
pub fn train<B: AutodiffBackend>(config: &TrainConfig, device: &B::Device) -> Result<std::path::PathBuf> {
    let out = &config.trainer.out;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let resolved = ron::ser::to_string_pretty(config, Default::default())
        .map_err(|e| TrainError::Config { path: out.join("config.ron"), message: e.to_string() })?;
    std::fs::write(out.join("config.ron"), resolved).map_err(io(&out.join("config.ron")))?;

    let mut model = AnyVlm::<B>::load(&config.model, device)?;
    if config.actor.freeze_vision {
        model = model.freeze_vision();
    }
    let processor = Processor::from_dir(&config.model)?;
    let tasks = load_tasks(config)?;
    let a = &config.actor;
    let optim = OptimConfig {
        lr: a.lr,
        weight_decay: a.weight_decay,
        max_grad_norm: a.max_grad_norm,
        schedule: a.schedule,
        ..Default::default()
    };
    let learner = Learner::new(model, optim);
    let trained = match config.algorithm.trainer {
        Trainer::Grpo => {
            let grpo_config = GrpoConfig {
                group_size: config.rollout.n,
                mini_batches: a.mini_batches,
                micro_batch_size: a.micro_batch_size,
                sampling: SamplingConfig {
                    max_new_tokens: config.rollout.max_new_tokens,
                    temperature: config.rollout.temperature,
                    top_p: config.rollout.top_p,
                    top_k: 0,
                    seed: config.rollout.seed,
                },
                loss: GrpoLossConfig {
                    clip_low: a.clip_low,
                    clip_high: a.clip_high,
                    dual_clip: a.dual_clip,
                    kl_coef: config.algorithm.kl_coef,
                    aggregation: a.aggregation,
                },
                advantage: AdvantageOptions {
                    normalize_std: config.algorithm.normalize_std,
                    ..Default::default()
                },
                online_filter: config.algorithm.online_filter,
            };
            let source = TaskSource {
                tasks: Arc::new(tasks),
                reward: config.algorithm.reward.reward(),
                data_seed: config.data.seed,
                start: 0,
            };
            let schedule = GrpoRun {
                steps: config.trainer.steps,
                prompts_per_step: config.trainer.prompts_per_step.max(1),
                save_every: config.trainer.save_every,
                keep_last: config.trainer.keep_last,
            };
            train_grpo(Grpo::new(learner, grpo_config), Arc::new(processor), source, schedule, out)?.valid()
        }
        Trainer::Sft => train_sft(config, learner, &processor, &tasks)?,
    };
    trained.save_pretrained(&config.model, out.join("final"), ExportOptions::default())?;
    Ok(out.clone())
}

/// SFT on the tasks' gold answers (each followed by the stop token), `prompts_per_step` tasks
/// per update, with [`RunDir`] checkpoints and automatic resume; returns the trained model.
fn train_sft<B: AutodiffBackend>(
    config: &TrainConfig,
    learner: Learner<B>,
    processor: &Processor,
    tasks: &[Task],
) -> Result<AnyVlm<B::InnerBackend>> {
    let out = &config.trainer.out;
    let run = RunDir::create(out, config.trainer.keep_last)?;
    let (mut learner, state) = match run.latest()? {
        Some(checkpoint) => {
            tracing::info!(checkpoint = %checkpoint.display(), "resuming");
            run.load::<B, RunState>(&checkpoint, learner)?
        }
        None => (learner, RunState::default()),
    };
    let metrics = MetricsLog::open(&out.join("metrics.jsonl"), state.step + 1)?;
    let device = learner.inference_model().devices().into_iter().next().unwrap_or_default();
    let per_step = config.trainer.prompts_per_step.max(1);
    let stop = processor.tokenizer.stop_ids.first().copied();
    for step in state.step..config.trainer.steps {
        let started = std::time::Instant::now();
        let sequences = step_tasks(tasks.len(), per_step, step, config.data.seed)
            .into_iter()
            .map(|i| {
                let prompt = processor.encode_task(&tasks[i], &device)?;
                let mut response = processor.tokenizer.encode(&tasks[i].answer)?;
                response.extend(stop);
                Ok(Sequence { prompt: prompt.ids, response, images: prompt.images })
            })
            .collect::<Result<Vec<_>>>()?;
        let stats =
            sft_step(&mut learner, &sequences, config.actor.micro_batch_size, processor.tokenizer.pad_id)?;
        let seconds = started.elapsed().as_secs_f64();
        let step_metrics = serde_json::json!({
            "loss": stats.loss, "grad_norm": stats.update.grad_norm, "lr": stats.update.lr,
            "seconds": seconds, "tokens_per_second": stats.tokens as f64 / seconds.max(1e-9),
        });
        metrics.record(step + 1, config.trainer.steps, &step_metrics)?;
        let every = config.trainer.save_every.max(1);
        let done = RunState { step: step + 1 };
        if done.step.is_multiple_of(every) || done.step == config.trainer.steps {
            run.save(done.step, &learner, &done)?;
        }
    }
    Ok(learner.inference_model())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_order_covers_every_task_once_per_epoch_and_is_reproducible() {
        let epoch: Vec<usize> = (0..3).flat_map(|s| step_tasks(6, 2, s, 9)).collect();
        let mut sorted = epoch.clone();
        sorted.sort();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        assert_eq!(step_tasks(6, 4, 5, 9), step_tasks(6, 4, 5, 9));
        assert_ne!(step_tasks(6, 6, 0, 9), step_tasks(6, 6, 1, 9));
    }
}

//! A whole training run from a [`TrainConfig`]: the one path of `seethink train` and of every
//! training test.
//!
//! The run is burn-train's `SupervisedTraining` with a custom learning strategy ([`RunLoop`]):
//! burn-train supplies the `Learner` (policy, AdamW, LR schedule), resume from a checkpoint, the
//! checkpointer (made atomic by [`AtomicRecorder`]), the interrupter, the event processor and
//! metric loggers; each step, the [task sampler](crate::sampler) chooses the tasks and the
//! step is GRPO ([`Grpo::step`]: batched rollout, rewards, advantages, updates) or SFT
//! ([`sft_step`]). burn-train's dataloaders are not used (a data loader cannot see a step's
//! results, which adaptive samplers need), so the run hands it empty ones; nor is its RL env
//! runner (it calls the policy once per task and cannot batch a rollout across prompts).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::{AutodiffModule, Module};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::train::{
    SupervisedLearningStrategy, SupervisedTraining, SupervisedTrainingEventProcessor, TrainLoader,
    TrainingComponents, TrainingStrategy, ValidLoader,
};
use seethink_curriculum::{Epochs, TaskResult, TaskSampler};
use seethink_data::Task;
use seethink_models::checkpoint::ExportOptions;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::Reward;

use crate::checkpoint::{
    complete_checkpoints, load_state, save_state, AtomicRecorder, EveryNKeepLast, RunState, SaveRule,
};
use crate::config::{DataConfig, TrainConfig, Trainer};
use crate::error::{io, Result, TrainError};
use crate::grpo::{Grpo, RolloutPrompt};
use crate::learner::{new_learner, Components, PolicyLearner};
use crate::lock::{clean_debris, RunLock};
use crate::metrics::{grpo_step_metrics, MetricsLog};
use crate::policy::{PolicyModel, Sequence, SftBatch};
use crate::progress::StepProgress;
use crate::renderer::SilentRenderer;
use crate::sft::sft_step;
use crate::tensorboard::TENSORBOARD_DIR;
use crate::train_backend::TrainBackend;
use seethink_models::kernels::Kernels;

/// The file in an exported model (`<out>/final`) holding the config of the run that trained it,
/// so that evaluation can grade with the run's reward.
pub const TRAINING_CONFIG: &str = "seethink-train.ron";

/// Runs (or resumes) the training of `config` on the tasks of `data.train` and
/// `data.sources`, graded by `algorithm.reward`: one run ([`train_on`]), or the phases of
/// `curriculum` ([`crate::phases::train_phases`]); returns the run directory.
pub fn train<B: TrainBackend>(config: &TrainConfig, device: &B::Device) -> Result<PathBuf> {
    let tasks = load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    match &config.curriculum {
        Some(_) => {
            crate::phases::train_phases::<B>(config, tasks, reward, device)?;
        }
        None => {
            train_on::<B>(config, tasks, reward.clone(), device)?;
            if let Some(heldout) = &config.eval {
                let final_dir = config.trainer.out.join("final");
                let report = crate::phases::evaluate_held_out::<B::InnerBackend>(
                    config,
                    heldout,
                    &final_dir,
                    reward.as_ref(),
                    &config.trainer.out.join("eval"),
                    device,
                )?;
                println!("{}", report.to_markdown());
            }
        }
    }
    Ok(config.trainer.out.clone())
}

/// The tasks of `data.train` and then of each of `data.sources`, records without a capability
/// taking their file's.
pub fn load_data(data: &DataConfig) -> Result<Vec<Task>> {
    let mut tasks = seethink_data::load_tasks(&data.train, data.capability)?;
    for source in &data.sources {
        tasks.extend(seethink_data::load_tasks(&source.path, source.capability)?);
    }
    Ok(tasks)
}

/// Runs the training of `config` on `tasks` graded by `reward` in seeded shuffled epochs (in
/// file order with `data.shuffle: false`); see [`run_tasks`].
pub fn train_on<B: TrainBackend>(
    config: &TrainConfig,
    tasks: Vec<Task>,
    reward: Arc<dyn Reward>,
    device: &B::Device,
) -> Result<AnyVlm<B::InnerBackend>> {
    let processor = Processor::from_dir(&config.model)?;
    let tasks = prepare_tasks::<B::InnerBackend>(config, tasks, &processor)?;
    let all = (0..tasks.len()).collect();
    let sampler: Box<dyn TaskSampler> = match config.data.shuffle {
        true => Box::new(Epochs::shuffled(all, config.data.seed)),
        false => Box::new(Epochs::in_order(all)),
    };
    run_tasks::<B>(config, tasks, sampler, processor, reward, device)
}

/// `tasks` ready to train on: questions rendered through `data.format_prompt`, over-long
/// prompts dropped ([`drop_overlong`]). An error if there are none.
pub fn prepare_tasks<B: Kernels>(
    config: &TrainConfig,
    mut tasks: Vec<Task>,
    processor: &Processor,
) -> Result<Vec<Task>> {
    let config_path = config.trainer.out.join("config.ron");
    if tasks.is_empty() {
        return Err(TrainError::Config { path: config.data.train.clone(), message: "no tasks".into() });
    }
    config.data.format_prompt.apply(&mut tasks, &config_path)?;
    drop_overlong::<B>(tasks, processor, &config.data, &config_path)
}

/// Runs the training of `config` on prepared `tasks` (see [`prepare_tasks`]) drawn by
/// `sampler`, graded by `reward`, in run directory `trainer.out` (`config.ron`,
/// `metrics.jsonl`, `checkpoint/`, burn-train's logs), resuming from the newest complete
/// checkpoint there; the run ends after `trainer.steps` steps or when the sampler says it is
/// [finished](TaskSampler::finished). Exports the trained model as an HF checkpoint to
/// `<out>/final` (with the run's config as [`TRAINING_CONFIG`]) and returns it.
pub fn run_tasks<B: TrainBackend>(
    config: &TrainConfig,
    tasks: Vec<Task>,
    sampler: Box<dyn TaskSampler>,
    processor: Processor,
    reward: Arc<dyn Reward>,
    device: &B::Device,
) -> Result<AnyVlm<B::InnerBackend>> {
    let out = &config.trainer.out;
    let config_path = out.join("config.ron");
    config.validate().map_err(|message| TrainError::Config { path: config_path.clone(), message })?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let _lock = RunLock::acquire(out)?;
    clean_debris(out)?;
    let resolved = ron::ser::to_string_pretty(config, Default::default())
        .map_err(|e| TrainError::Config { path: config_path.clone(), message: e.to_string() })?;
    std::fs::write(&config_path, resolved).map_err(io(&config_path))?;

    let mut model = AnyVlm::<B>::load(&config.model, device)?;
    if config.actor.freeze_vision {
        model = model.freeze_vision();
    }
    let learner = new_learner(model, &config.actor, processor.tokenizer.pad_id);
    let grpo = (config.algorithm.trainer == Trainer::Grpo)
        .then(|| Grpo::new(&learner, config.algorithm.clone(), config.actor.clone(), config.rollout.clone()));
    let checkpoints = out.join("checkpoint");
    let on_disk = complete_checkpoints(&checkpoints);
    let resume = on_disk.last().copied();
    let first_step = resume.unwrap_or(0) + 1;
    let mut state = StepState {
        config: config.clone(),
        sampler,
        tasks,
        reward,
        processor,
        grpo,
        metrics: match config.trainer.tensorboard {
            true => MetricsLog::open(&out.join("metrics.jsonl"), first_step)?
                .with_tensorboard(&out.join(TENSORBOARD_DIR))?,
            false => MetricsLog::open(&out.join("metrics.jsonl"), first_step)?,
        },
        progress: StepProgress::new(&run_label(out), first_step, config.trainer.steps),
    };
    if let Some(step) = resume {
        match step >= config.trainer.steps {
            true => eprintln!(
                "{}: all {} steps are done (checkpoint {step}); writing the final model again",
                out.display(),
                config.trainer.steps
            ),
            false => eprintln!("{}: resuming after step {step} of {}", out.display(), config.trainer.steps),
        }
        state.restore(&load_state(&checkpoints, step)?, &checkpoints.join(format!("state-{step}.json")))?;
    }
    let rule = SaveRule {
        every: config.trainer.save_every,
        last: config.trainer.steps,
        keep: config.trainer.keep_last,
    };
    let run_loop = RunLoop {
        state: Mutex::new(state),
        failure: Mutex::new(None),
        rule: rule.clone(),
        checkpoints: checkpoints.clone(),
    };
    let run_loop = Arc::new(run_loop);
    let mut training = SupervisedTraining::new(out, no_data::<B>(), no_data::<B::InnerBackend>())
        .with_training_strategy(TrainingStrategy::Custom(run_loop.clone()))
        .with_application_logger(None)
        .with_file_checkpointer(AtomicRecorder::<NamedMpkFileRecorder<FullPrecisionSettings>>::default())
        .with_checkpointing_strategy(EveryNKeepLast::new(rule, on_disk, checkpoints.clone()))
        .renderer(SilentRenderer)
        .num_epochs(config.trainer.steps);
    if let Some(step) = resume {
        training = training.checkpoint(step);
    }
    let trained = training.launch(learner).model.model;
    if let Some(error) = run_loop.failure.lock().unwrap_or_else(PoisonError::into_inner).take() {
        return Err(error);
    }
    trained.save_pretrained(&config.model, out.join("final"), ExportOptions::default())?;
    // the checkpoint staging directory is empty after a clean run; an error only leaves it
    let _ = std::fs::remove_dir(checkpoints.join(".partial"));
    let exported_config = out.join("final").join(TRAINING_CONFIG);
    std::fs::copy(&config_path, &exported_config).map_err(io(&exported_config))?;
    Ok(trained)
}

/// The name a run's progress shows: its directory's last two components (`staged/01-perception`).
fn run_label(out: &std::path::Path) -> String {
    let names: Vec<String> =
        out.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    names.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// `tasks` without those whose encoded prompt has more than `data.max_prompt_length` tokens
/// (EasyR1's `filter_overlong_prompts`); how many were dropped is logged. An error if none is
/// left.
fn drop_overlong<B: Kernels>(
    tasks: Vec<Task>,
    processor: &Processor,
    data: &DataConfig,
    config_path: &std::path::Path,
) -> Result<Vec<Task>> {
    let Some(max) = data.max_prompt_length else { return Ok(tasks) };
    let total = tasks.len();
    let mut kept = Vec::with_capacity(total);
    for task in tasks {
        if processor.encode_task_within::<B>(&task, data.image_bounds(), &Default::default())?.ids.len()
            <= max
        {
            kept.push(task);
        }
    }
    if kept.len() < total {
        tracing::warn!(
            dropped = total - kept.len(),
            total,
            max,
            "prompts longer than data.max_prompt_length"
        );
        eprintln!("data: dropped {} of {total} tasks whose prompt exceeds {max} tokens", total - kept.len());
    }
    if kept.is_empty() {
        let message = format!("data.max_prompt_length: every prompt exceeds {max} tokens");
        return Err(TrainError::Config { path: config_path.to_path_buf(), message });
    }
    Ok(kept)
}

/// Everything a step needs besides the learner.
struct StepState<B: TrainBackend> {
    config: TrainConfig,
    tasks: Vec<Task>,
    reward: Arc<dyn Reward>,
    processor: Processor,
    sampler: Box<dyn TaskSampler>,
    /// `None` for SFT.
    grpo: Option<Grpo<B>>,
    metrics: MetricsLog,
    progress: StepProgress,
}

impl<B: TrainBackend> StepState<B> {
    /// Step `step` (1-based) of the run: the sampler's tasks, one GRPO or SFT step, the results
    /// back to the sampler, the metrics line.
    fn step(&mut self, learner: &mut PolicyLearner<B>, step: usize) -> Result<()> {
        let started = Instant::now();
        // the LR of this step, for all its updates
        learner.lr_step();
        let per_step = self.config.trainer.prompts_per_step;
        let device = learner.model().valid().model.devices().into_iter().next().unwrap_or_default();
        let tokenizer = &self.processor.tokenizer;
        let bounds = self.config.data.image_bounds();
        let metrics = match &mut self.grpo {
            Some(grpo) => {
                let mut indices = Vec::new();
                let (sampler, tasks, processor) = (&mut self.sampler, &self.tasks, &self.processor);
                let draw = || {
                    let drawn = sampler.next_batch(per_step);
                    indices.extend_from_slice(&drawn);
                    drawn
                        .iter()
                        .map(|&i| {
                            let prompt = processor.encode_task_within(&tasks[i], bounds, &device)?;
                            Ok(RolloutPrompt { task: tasks[i].clone(), prompt })
                        })
                        .collect()
                };
                let stats = grpo.step(learner, draw, self.reward.as_ref(), tokenizer)?;
                let results: Vec<TaskResult> = indices
                    .iter()
                    .zip(&stats.outcomes)
                    .map(|(&task, o)| TaskResult {
                        task,
                        reward: o.reward,
                        accuracy: o.accuracy,
                        response_length: o.response_length,
                        mean_abs_advantage: o.mean_abs_advantage,
                    })
                    .collect();
                self.sampler.observe(&results);
                grpo_step_metrics(&stats)
            }
            None => {
                let indices = self.sampler.next_batch(per_step);
                let stop = tokenizer.stop_ids.first().copied();
                let sequences = indices
                    .iter()
                    .map(|&i| {
                        let prompt = self.processor.encode_task_within(&self.tasks[i], bounds, &device)?;
                        let mut response = tokenizer.encode(&self.tasks[i].answer)?;
                        response.extend(stop);
                        Ok(Sequence { prompt: prompt.ids, response, images: prompt.images })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let a = &self.config.actor;
                let stats = sft_step(learner, &sequences, a.micro_batch_size, a.max_grad_norm)?;
                // SFT has no rewards: the sampler is told nothing about the step
                self.sampler.observe(&[]);
                let seconds = started.elapsed().as_secs_f64();
                serde_json::json!({
                    "loss": stats.loss, "grad_norm": stats.update.grad_norm, "lr": stats.update.lr,
                    "skipped_updates": usize::from(stats.update.skipped),
                    "seconds": seconds, "tokens_per_second": stats.tokens as f64 / seconds.max(1e-9),
                })
            }
        };
        self.metrics.record(step, &metrics)?;
        self.progress.step(step, &metrics);
        Ok(())
    }

    /// What a checkpoint keeps of this state.
    fn checkpoint(&self) -> RunState {
        RunState { rollouts: self.grpo.as_ref().map_or(0, |g| g.rollouts), sampler: self.sampler.state() }
    }

    /// This state as checkpointed in `saved` (read from `path`).
    fn restore(&mut self, saved: &RunState, path: &std::path::Path) -> Result<()> {
        if let Some(grpo) = &mut self.grpo {
            grpo.rollouts = saved.rollouts;
        }
        self.sampler
            .restore(&saved.sampler)
            .map_err(|message| TrainError::Config { path: path.to_path_buf(), message })
    }
}

/// The run loop as burn-train's custom learning strategy. burn-train's strategy has no error
/// channel: an error stops the loop and is kept in `failure` for [`train_on`].
struct RunLoop<B: TrainBackend> {
    state: Mutex<StepState<B>>,
    failure: Mutex<Option<TrainError>>,
    rule: SaveRule,
    checkpoints: PathBuf,
}

impl<B: TrainBackend> SupervisedLearningStrategy<Components<B>> for RunLoop<B> {
    fn fit(
        &self,
        components: TrainingComponents<Components<B>>,
        mut learner: PolicyLearner<B>,
        _train: TrainLoader<Components<B>>,
        _valid: ValidLoader<Components<B>>,
        starting_step: usize,
    ) -> (PolicyModel<B>, SupervisedTrainingEventProcessor<Components<B>>) {
        let TrainingComponents {
            num_epochs,
            mut checkpointer,
            interrupter,
            event_processor,
            event_store,
            ..
        } = components;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for step in starting_step..=num_epochs {
            // burn-train's checkpointer threads report a failed save or deletion (a full disk,
            // say) only through the interrupter: nothing else here stops it (see below).
            if interrupter.should_stop() {
                break;
            }
            let mut stopping = false;
            let saved = state.step(&mut learner, step).and_then(|()| {
                stopping = crate::interrupt::latch();
                if let Some(checkpointer) = &mut checkpointer {
                    checkpointer.checkpoint(&learner, step, &event_store);
                }
                match self.rule.saves(step) {
                    true => save_state(&self.checkpoints, step, &state.checkpoint(), self.rule.keep),
                    false => Ok(()),
                }
            });
            if let Err(error) = saved {
                tracing::error!(%error, step, "training stopped");
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                break;
            }
            if stopping {
                let dir = self.checkpoints.clone();
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(TrainError::Interrupted { step, dir });
                break;
            }
            if state.sampler.finished() {
                eprintln!("step {step}: the task sampler ended the run (of at most {num_epochs} steps)");
                break;
            }
        }
        // Dropping the checkpointer waits for its threads' last saves; a failed one shows on the
        // interrupter and outranks any other ending (its checkpoint is not usable).
        drop(checkpointer);
        if interrupter.should_stop() {
            let message = interrupter.get_message().unwrap_or_default();
            *self.failure.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(TrainError::Checkpoint { dir: self.checkpoints.clone(), message });
        }
        (learner.model(), event_processor)
    }
}

/// The empty data loader handed to burn-train (see the module docs).
fn no_data<B: Kernels>() -> Arc<dyn DataLoader<B, SftBatch<B>>> {
    DataLoaderBuilder::new(NoData).batch_size(1).build(InMemDataset::new(Vec::<NoItem>::new()))
}

/// The item type of [`no_data`].
#[derive(Clone, Debug)]
struct NoItem;

/// Batches no items into an empty SFT batch.
#[derive(Clone, Debug)]
struct NoData;

impl<B: Kernels> Batcher<B, NoItem, SftBatch<B>> for NoData {
    fn batch(&self, _items: Vec<NoItem>, _device: &B::Device) -> SftBatch<B> {
        SftBatch { sequences: Vec::new(), normaliser: 1.0 }
    }
}

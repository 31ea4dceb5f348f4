//! A whole training run from a [`TrainConfig`]: the one path of `seethink train` and of every
//! training test.
//!
//! The loop is explicit: resume from the newest complete checkpoint ([`Checkpoints`]), then per
//! step the LR schedule's step, one step of the run's [`Algorithm`] (GRPO or SFT: the task
//! sampler draws the tasks and sees the results), the metrics line, and a checkpoint when the
//! [`SaveRule`] says so or the run is interrupted. Of burn-train it uses the file
//! checkpointers; its `SupervisedTraining` and data loaders are not used (a data loader cannot
//! see a step's results, which adaptive samplers need), nor its RL env runner (it calls the
//! policy once per task and cannot batch a rollout across prompts).
//!
//! The run's files and entry points are its submodules: [`phases`] (a curriculum's phases back
//! to back), [`train`] (`seethink train`), [`checkpoint`] (atomic, bitwise resume), [`lock`],
//! [`interrupt`], [`metrics`], [`progress`], [`tensorboard`].

pub mod checkpoint;
pub mod interrupt;
pub mod lock;
pub mod metrics;
pub mod phases;
pub mod progress;
pub mod tensorboard;
pub mod train;

use std::sync::Arc;

use seethink_curriculum::{Epochs, TaskSampler};
use seethink_data::Task;
use seethink_models::checkpoint::{stored_dtype, ExportOptions};
use seethink_models::kernels::Kernels;
use seethink_models::nn::frozen::frozen_dtype;
use seethink_models::nn::widen_trained;
use seethink_models::processing::Processor;
use seethink_models::AnyVlm;
use seethink_reward::Reward;

use crate::algorithm::{AlgorithmBuilder, StepInputs};
use crate::builtin::BuiltIn;
use crate::checkpoint::{complete_checkpoints, Checkpoints, RunState, SaveRule};
use crate::config::{DataConfig, TrainConfig};
use crate::data_parallel::{run_data_parallel, Role, Worker};
use crate::error::{io, Result, TrainError};
use crate::learner::{inference_model, new_learner, resolved_compute_dtype};
use crate::lock::{clean_debris, RunLock};
use crate::metrics::MetricsLog;
use crate::progress::StepProgress;
use crate::shared_sampler::SharedSampler;
use crate::tensorboard::TENSORBOARD_DIR;
use crate::train_backend::TrainBackend;

/// The file in an exported model (`<out>/final`) holding the config of the run that trained it,
/// so that evaluation can grade with the run's reward.
pub const TRAINING_CONFIG: &str = "seethink-train.ron";

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
    run_tasks::<B>(config, &tasks, sampler, processor, reward, device)
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
/// `sampler`, graded by `reward`, with the built-in algorithm `algorithm.trainer` names:
/// [`run_tasks_with`] and [`BuiltIn`].
pub fn run_tasks<B: TrainBackend>(
    config: &TrainConfig,
    tasks: &[Task],
    sampler: Box<dyn TaskSampler>,
    processor: Processor,
    reward: Arc<dyn Reward>,
    device: &B::Device,
) -> Result<AnyVlm<B::InnerBackend>> {
    run_tasks_with::<B>(config, tasks, sampler, processor, reward, device, &BuiltIn)
}

/// Runs the training of `config` on prepared `tasks` (see [`prepare_tasks`]) drawn by
/// `sampler`, graded by `reward`, with the algorithm `algorithms` builds, in run directory
/// `trainer.out` (`config.ron`, `metrics.jsonl`, `checkpoint/`, burn-train's logs), resuming
/// from the newest complete checkpoint there; the run ends after `trainer.steps` steps or when
/// the sampler says it is [finished](TaskSampler::finished). Exports the trained model as an HF
/// checkpoint to `<out>/final` (with the run's config as [`TRAINING_CONFIG`]) and returns it.
///
/// With `trainer.devices` > 1 or `trainer.nodes`, the run's workers on this machine are
/// threads, one per device, joined by burn's collective ([`run_data_parallel`]).
pub fn run_tasks_with<B: TrainBackend>(
    config: &TrainConfig,
    tasks: &[Task],
    sampler: Box<dyn TaskSampler>,
    processor: Processor,
    reward: Arc<dyn Reward>,
    device: &B::Device,
    algorithms: &dyn AlgorithmBuilder<B>,
) -> Result<AnyVlm<B::InnerBackend>> {
    let config_path = config.trainer.out.join("config.ron");
    config.validate().map_err(|message| TrainError::Config { path: config_path.clone(), message })?;
    let topology = config.trainer.topology();
    run_data_parallel::<B::InnerBackend, _, _, _>(&topology, sampler, device, |role, sampler, device| {
        let inputs =
            WorkerInputs { config, tasks, processor: &processor, reward: reward.as_ref(), algorithms };
        let sampler = SharedSampler::new(sampler, role.worker.clone());
        run_worker::<B>(inputs, sampler, device, role)
    })
}

/// What every worker of a run shares.
struct WorkerInputs<'a, B: TrainBackend> {
    config: &'a TrainConfig,
    tasks: &'a [Task],
    processor: &'a Processor,
    reward: &'a dyn Reward,
    algorithms: &'a dyn AlgorithmBuilder<B>,
}

/// One worker's run ([`run_tasks`]): the run directory is written by a worker whose `role`
/// says so; every worker loads the model, resumes from the checkpoint and trains, with its
/// sampler shared with the other workers ([`SharedSampler`]).
fn run_worker<B: TrainBackend>(
    inputs: WorkerInputs<'_, B>,
    mut sampler: SharedSampler,
    device: &B::Device,
    role: Role,
) -> Result<AnyVlm<B::InnerBackend>> {
    let WorkerInputs { config, tasks, processor, reward, algorithms } = inputs;
    let out = &config.trainer.out;
    let config_path = out.join("config.ron");
    let _lock = match role.writes {
        true => {
            std::fs::create_dir_all(out).map_err(io(out))?;
            let lock = RunLock::acquire(out)?;
            clean_debris(out)?;
            let resolved = ron::ser::to_string_pretty(config, Default::default())
                .map_err(|e| TrainError::Config { path: config_path.clone(), message: e.to_string() })?;
            std::fs::write(&config_path, resolved).map_err(io(&config_path))?;
            Some(lock)
        }
        false => None,
    };

    // matrices load in the type frozen ones are kept in (the checkpoint's bf16 on CUDA), and
    // those that train are widened once marked
    let frozen = frozen_dtype::<B>(stored_dtype(&config.model)?, device);
    let mut model = AnyVlm::<B>::load_in(&config.model, frozen, device)?;
    if let Some(lora) = &config.actor.lora {
        model = model.with_lora(lora)?;
    }
    // after LoRA, so that a frozen vision tower's adapters are frozen too
    if config.actor.freeze_vision {
        model = model.freeze_vision();
    }
    let model = widen_trained(model);
    let compute = resolved_compute_dtype::<B>(&config.actor, device, role.writes);
    let mut learner = new_learner(model, &config.actor, processor.tokenizer.pad_id)
        .with_frozen_storage(frozen)
        .with_compute_dtype(compute);
    let mut algorithm = algorithms.build(config, &learner, role.worker.clone())?;
    let workers = role.worker.count();
    let dir = out.join("checkpoint");
    let checkpoints =
        Checkpoints::new(&dir, config.trainer.keep_last).of_worker(role.worker.clone(), role.writes);
    let resume = agreed_resume_step(&role.worker, &complete_checkpoints(&dir), &dir)?;
    let first_step = resume.unwrap_or(0) + 1;
    if let Some(step) = resume {
        if role.writes {
            match step >= config.trainer.steps {
                true => eprintln!(
                    "{}: all {} steps are done (checkpoint {step}); writing the final model again",
                    out.display(),
                    config.trainer.steps
                ),
                false => {
                    eprintln!("{}: resuming after step {step} of {}", out.display(), config.trainer.steps)
                }
            }
        }
        let saved = checkpoints.restore(&mut learner, step, device)?;
        let state_file = dir.join(format!("state-{step}.json"));
        if saved.workers != workers {
            let message = format!(
                "checkpoint {step} was written by {} data-parallel worker(s) and this run has {workers}; \
                 resume with the same trainer.devices × trainer.nodes.count (each worker's share of \
                 a step, and so its samples' streams, depend on it)",
                saved.workers
            );
            return Err(TrainError::Config { path: state_file, message });
        }
        if saved.sharding != role.worker.sharding() {
            let message = format!(
                "checkpoint {step} was written with trainer.sharding {:?} and this run has {:?}; resume with \
                 the same (AdamW's state is split by it)",
                saved.sharding,
                role.worker.sharding()
            );
            return Err(TrainError::Config { path: state_file, message });
        }
        algorithm
            .restore(&saved.algorithm)
            .map_err(|message| TrainError::Config { path: state_file.clone(), message })?;
        sampler
            .restore(&saved.sampler)
            .map_err(|message| TrainError::Config { path: state_file, message })?;
    }
    // after the KL reference is taken from the whole policy and a checkpoint is loaded
    learner.shard_weights(&role.worker);
    let mut metrics = match role.writes {
        true => {
            let log = MetricsLog::open(&out.join("metrics.jsonl"), first_step)?;
            Some(match config.trainer.tensorboard {
                true => log.with_tensorboard(&out.join(TENSORBOARD_DIR))?,
                false => log,
            })
        }
        false => None,
    };
    let progress = role.writes.then(|| StepProgress::new(&run_label(out), first_step, config.trainer.steps));
    let rule = SaveRule { every: config.trainer.save_every, last: config.trainer.steps };
    // resumed from the checkpoint of a phase its sampler had ended: no step is left
    let last_step = match first_step > 1 && sampler.finished()? {
        true => first_step - 1,
        false => config.trainer.steps,
    };
    for step in first_step..=last_step {
        // the LR of this step, for all its updates
        learner.lr_step();
        let inputs = StepInputs { config, tasks, sampler: &mut sampler, processor, reward };
        let line = algorithm.step(&mut learner, inputs)?;
        if let (Some(metrics), Some(progress)) = (metrics.as_mut(), progress.as_ref()) {
            metrics.record(step, &line)?;
            progress.step(step, &line);
        }
        let stopping = crate::interrupt::latch();
        let stopping = role.worker.leader_says(stopping)?;
        // a sampler that ends the phase early (an adaptive policy, a gate) gets its last step
        // checkpointed too, so that its state at the end can be read (`state-<step>.json`)
        let finished = sampler.finished()?;
        if rule.saves(step) || stopping || finished {
            let state = RunState {
                algorithm: algorithm.state(),
                sampler: sampler.state(),
                workers,
                sharding: role.worker.sharding(),
            };
            checkpoints.save(&learner, step, &state)?;
        }
        if stopping {
            return Err(TrainError::Interrupted { step, dir });
        }
        if finished {
            if role.writes {
                eprintln!(
                    "step {step}: the task sampler ended the run (of at most {} steps)",
                    config.trainer.steps
                );
            }
            break;
        }
    }
    let trained = inference_model(&learner)?;
    if role.writes {
        trained.save_pretrained(&config.model, out.join("final"), ExportOptions::default())?;
        // the checkpoint staging directory is empty after a clean run; an error only leaves it
        let _ = std::fs::remove_dir(dir.join(".partial"));
        let exported_config = out.join("final").join(TRAINING_CONFIG);
        std::fs::copy(&config_path, &exported_config).map_err(io(&exported_config))?;
        if let Some(lora) = &config.actor.lora {
            write_adapter(&trained, lora, &config.model, &out.join(ADAPTER_DIR))?;
        }
    }
    Ok(trained)
}

/// The directory in a LoRA run's directory holding its adapters as a PEFT adapter directory
/// (`final/` holds the model with them merged).
pub const ADAPTER_DIR: &str = "adapter";

/// Writes `trained`'s adapters as a PEFT adapter directory on base checkpoint `base` in `dir`
/// ([`AnyVlm::save_peft_adapter`]); for InternVL's original release, whose peft module paths
/// are not checked ([`AnyVlm::writes_peft_adapters`]), it says why there is none instead (its
/// merged export is the run's result).
fn write_adapter<B: Kernels>(
    trained: &AnyVlm<B>,
    lora: &seethink_models::nn::LoraConfig,
    base: &std::path::Path,
    dir: &std::path::Path,
) -> Result<()> {
    if !trained.writes_peft_adapters() {
        eprintln!(
            "LoRA: no PEFT adapter directory for InternVL's original release (the merged model is in final/)"
        );
        return Ok(());
    }
    Ok(trained.save_peft_adapter(dir, lora, &base.display().to_string())?)
}

/// The step every worker resumes after: the newest checkpoint complete on every machine. Each
/// machine keeps its own run directory, and a run killed between two machines' saves of a step
/// leaves one of them a step ahead; all take the older step, which the other still keeps
/// (`trainer.keep_last` ≥ 2). `complete`: this machine's complete checkpoints, oldest first.
/// None when some worker has none (the run starts over everywhere); an error naming `dir` when
/// this machine no longer holds the agreed step.
fn agreed_resume_step(worker: &Worker, complete: &[usize], dir: &std::path::Path) -> Result<Option<usize>> {
    // each worker's newest step (0: none), exact in f32 below 2^24
    let newest = complete.last().map_or(0.0, |&step| step as f32);
    let all = worker.gather(worker.count(), &[worker.rank()], &[newest])?;
    let agreed = all.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as usize;
    if agreed == 0 {
        return Ok(None);
    }
    match complete.contains(&agreed) {
        true => Ok(Some(agreed)),
        false => Err(TrainError::Config {
            path: dir.to_path_buf(),
            message: format!(
                "the workers' newest complete checkpoints are steps {all:?}: every worker must resume from \
                 step {agreed}, which this machine no longer keeps (raise trainer.keep_last), or remove the \
                 newer checkpoints elsewhere"
            ),
        }),
    }
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

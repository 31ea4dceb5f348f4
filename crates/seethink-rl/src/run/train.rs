//! The entry point of training: a config's run, or its curriculum's phases one after the other.

use std::path::PathBuf;

use crate::benchmarks::check_benchmarks;
use crate::config::TrainConfig;
use crate::error::Result;
use crate::evaluation::evaluate_point;
use crate::phases::train_phases;
use crate::run::{load_data, train_on};
use crate::train_backend::TrainBackend;

/// Runs (or resumes) the training of `config` on the tasks of `data.train` and
/// `data.sources`, graded by `algorithm.reward`: one run ([`train_on`]), or the phases of
/// `curriculum` ([`train_phases`]); returns the run directory. With `eval`, the trained model
/// of a single run is evaluated at its end into `<out>/eval` ([`evaluate_point`]), its
/// benchmark files checked before training.
pub fn train<B: TrainBackend>(config: &TrainConfig, device: &B::Device) -> Result<PathBuf> {
    let tasks = load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    match &config.curriculum {
        Some(_) => {
            train_phases::<B>(config, tasks, reward, device)?;
        }
        None => {
            config.eval.iter().try_for_each(check_benchmarks)?;
            train_on::<B>(config, tasks, reward.clone(), device)?;
            if let Some(heldout) = &config.eval {
                let final_dir = config.trainer.out.join("final");
                let point = evaluate_point::<B::InnerBackend>(
                    config,
                    heldout,
                    &final_dir,
                    reward.as_ref(),
                    &config.trainer.out.join("eval"),
                    device,
                )?;
                println!("{}", point.heldout.to_markdown());
                if let Some(suite) = point.benchmarks {
                    println!("{}", suite.to_markdown());
                }
            }
        }
    }
    Ok(config.trainer.out.clone())
}

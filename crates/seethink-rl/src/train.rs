//! The entry point of training: a config's run, or its curriculum's phases one after the other.

use std::path::PathBuf;

use crate::config::TrainConfig;
use crate::error::Result;
use crate::phases::{evaluate_held_out, train_phases};
use crate::run::{load_data, train_on};
use crate::train_backend::TrainBackend;

/// Runs (or resumes) the training of `config` on the tasks of `data.train` and
/// `data.sources`, graded by `algorithm.reward`: one run ([`train_on`]), or the phases of
/// `curriculum` ([`train_phases`]); returns the run directory.
pub fn train<B: TrainBackend>(config: &TrainConfig, device: &B::Device) -> Result<PathBuf> {
    let tasks = load_data(&config.data)?;
    let reward = config.algorithm.reward.reward();
    match &config.curriculum {
        Some(_) => {
            train_phases::<B>(config, tasks, reward, device)?;
        }
        None => {
            train_on::<B>(config, tasks, reward.clone(), device)?;
            if let Some(heldout) = &config.eval {
                let final_dir = config.trainer.out.join("final");
                let report = evaluate_held_out::<B::InnerBackend>(
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

//! A run directory has one writer (a second run into it is refused, naming the holder; a lock
//! left by a dead process is taken over), the debris of interrupted runs is cleaned on start,
//! and a checkpoint that cannot be written (a full disk) stops the run with an error that
//! leaves the last good checkpoint to resume from.

mod common;

use std::path::Path;

use common::{task, tiny_config};
use seethink_rl::checkpoint::complete_checkpoints;
use seethink_rl::config::{RewardKind, Trainer};
use seethink_rl::lock::LOCK_FILE;
use seethink_rl::run::train_on;

fn run(dir: &Path, steps: usize) -> seethink_rl::error::Result<()> {
    run_keeping(dir, steps, 2)
}

/// An SFT run of `steps` steps keeping the last `keep` checkpoints.
fn run_keeping(dir: &Path, steps: usize, keep: usize) -> seethink_rl::error::Result<()> {
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2")];
    let mut config = tiny_config(dir, Trainer::Sft, steps, 2);
    config.trainer.keep_last = keep;
    train_on::<common::B>(&config, tasks, RewardKind::Direct.reward(), &Default::default()).map(|_| ())
}

#[test]
fn a_checkpoint_that_cannot_be_written_stops_the_run_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    run_keeping(dir.path(), 1, 1).unwrap();
    let checkpoints = dir.path().join("checkpoint");
    assert_eq!(complete_checkpoints(&checkpoints), [1]);
    // nothing can be written any more where checkpoints are staged (as on a full disk)
    std::fs::remove_dir_all(dir.path().join("final")).unwrap();
    let staging = checkpoints.join(".partial");
    std::fs::write(&staging, b"").unwrap();
    let err = run_keeping(dir.path(), 3, 1).unwrap_err().to_string();
    assert!(err.contains(".partial"), "{err}");
    assert_eq!(
        complete_checkpoints(&checkpoints),
        [1],
        "keep_last 1 did not delete the only good checkpoint"
    );
    assert!(!dir.path().join("final").exists(), "no final model from a run that failed");
    std::fs::remove_file(&staging).unwrap();
    run_keeping(dir.path(), 3, 1).unwrap();
    assert_eq!(complete_checkpoints(&checkpoints).last(), Some(&3));
    assert_eq!(common::logged(dir.path(), "step"), [1.0, 2.0, 3.0]);
}

#[test]
fn a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LOCK_FILE), std::process::id().to_string()).unwrap();
    let err = run(dir.path(), 1).unwrap_err().to_string();
    assert!(err.contains("in use by process") && err.contains(&std::process::id().to_string()), "{err}");
    assert!(!dir.path().join("metrics.jsonl").exists(), "nothing written");

    // a process that has exited
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(dir.path().join(LOCK_FILE), dead.to_string()).unwrap();
    run(dir.path(), 1).unwrap();
    assert!(!dir.path().join(LOCK_FILE).exists(), "released at the end");
}

#[test]
fn leftovers_of_interrupted_runs_are_removed_on_start() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 2).unwrap();
    let checkpoints = dir.path().join("checkpoint");
    assert_eq!(complete_checkpoints(&checkpoints), [1, 2]);
    assert!(!checkpoints.join(".partial").exists(), "a finished run leaves no empty staging directory");
    // a killed export, a killed save and a killed pruning
    let debris = [
        dir.path().join("final.tmp-4242/model.safetensors"),
        dir.path().join("final.old-4242/config.json"),
        checkpoints.join(".partial/model-3.mpk"),
        checkpoints.join("optim-0.mpk"),
    ];
    for file in &debris {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, b"debris").unwrap();
    }
    run(dir.path(), 3).unwrap();
    for file in &debris {
        assert!(!file.exists(), "{} left", file.display());
    }
    assert!(!dir.path().join("final.tmp-4242").exists() && !dir.path().join("final.old-4242").exists());
    assert_eq!(complete_checkpoints(&checkpoints), [2, 3]);
    assert!(!checkpoints.join(".partial").exists());
}

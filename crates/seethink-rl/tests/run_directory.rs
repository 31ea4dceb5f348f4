//! A run directory has one writer (a second run into it is refused, naming the holder; a lock
//! left by a dead process is taken over) and the debris of interrupted runs is cleaned on start.

mod common;

use std::path::Path;

use common::{task, tiny_config};
use seethink_rl::checkpoint::complete_checkpoints;
use seethink_rl::config::{RewardKind, Trainer};
use seethink_rl::lock::LOCK_FILE;
use seethink_rl::run::train_on;

fn run(dir: &Path, steps: usize) -> seethink_rl::error::Result<()> {
    let tasks = vec![task("one", "one", "1"), task("two", "two", "2")];
    let config = tiny_config(dir, Trainer::Sft, steps, 2);
    train_on::<common::B>(&config, tasks, RewardKind::Direct.reward(), &Default::default()).map(|_| ())
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
}

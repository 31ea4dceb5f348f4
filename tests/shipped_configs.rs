//! Every shipped config parses and validates; the paper's configs plan the paper's stages.

use std::path::{Path, PathBuf};

use seethink::data::{Capability, Task};
use seethink::rl::config::TrainConfig;

/// Every `.ron` file under `dir`, recursively, sorted.
fn ron_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(ron_files(&path));
        } else if path.extension().is_some_and(|e| e == "ron") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn task(capability: Capability) -> Task {
    Task {
        id: capability.to_string(),
        prompt: "?".into(),
        images: Vec::new(),
        answer: "1".into(),
        capability,
        level: None,
        pass_rate: None,
        source: "test".into(),
        meta: serde_json::Value::Null,
    }
}

#[test]
fn every_shipped_config_parses_and_validates() {
    let files = ron_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"));
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        TrainConfig::load(&file, &[]).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

#[test]
fn the_paper_configs_plan_the_papers_stages() {
    let pool: Vec<Task> = Capability::ALL.into_iter().map(task).collect();
    let paper = ron_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper"));
    let names: Vec<_> = paper.iter().map(|p| p.file_stem().unwrap().to_str().unwrap()).collect();
    assert_eq!(names, ["internvl3_5_8b", "internvl3_8b", "qwen2_5_vl_7b", "qwen3_vl_8b"]);
    for file in &paper {
        let config = TrainConfig::load(file, &[]).unwrap();
        let (r, a) = (&config.rollout, &config.actor);
        assert_eq!((r.n, config.trainer.prompts_per_step, a.mini_batches), (5, 512, 4), "{}", file.display());
        assert_eq!((a.lr, config.algorithm.kl_coef, r.max_new_tokens), (1e-6, 0.01, 2048));
        let phases = config.curriculum.as_ref().unwrap().build().unwrap().phases(&pool, 0).unwrap();
        let steps: Vec<_> = phases.iter().map(|p| p.settings.steps).collect();
        assert_eq!(steps, [Some(90), Some(375), Some(465)], "{}", file.display());
        let frozen: Vec<_> = phases.iter().map(|p| p.settings.freeze_vision).collect();
        assert_eq!(frozen, [None, Some(true), None]);
        let damped = phases[1].settings.lr == Some(3e-7);
        assert_eq!(damped, file.ends_with("internvl3_8b.ron"), "only InternVL3's stage 2 is damped");
        let prompt = config.data.max_prompt_length;
        let internvl = file.to_str().unwrap().contains("internvl");
        assert_eq!(prompt, Some(if internvl { 4096 } else { 2048 }));
    }
}

//! Every shipped config parses and validates; the paper's configs plan the paper's stages.

use std::path::{Path, PathBuf};

use seethink::curriculum::Phase;
use seethink::data::{Capability, Task};
use seethink::rl::config::{TrainConfig, Trainer};

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
    assert!(files.len() >= 27, "{files:?}");
    for file in files {
        TrainConfig::load(&file, &[]).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// The four backbones of the paper, as their configs are named.
const BACKBONES: [&str; 4] = ["internvl3_5_8b", "internvl3_8b", "qwen2_5_vl_7b", "qwen3_vl_8b"];

/// The variants each backbone has beside its staged config (`<backbone>_<variant>.ron`).
const VARIANTS: [&str; 5] = ["difficulty", "merged", "reasoning_only", "reverse", "sft_perception"];

fn paper_config(name: &str) -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper").join(format!("{name}.ron"));
    TrainConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The phases a config plans over one task of each capability and two caption tasks.
fn plan(config: &TrainConfig) -> Vec<seethink::curriculum::Phase> {
    let mut pool: Vec<Task> = Capability::ALL.into_iter().map(task).collect();
    pool.iter_mut().for_each(|t| t.pass_rate = Some(0.5));
    // caption tasks (perception): one of a record naming its source, one of a record without
    for source in ["captions", "captions.jsonl"] {
        pool.push(Task { id: source.into(), source: source.into(), ..pool[0].clone() });
    }
    config.curriculum.as_ref().unwrap().build().unwrap().phases(&pool, 0).unwrap()
}

/// The run config `phase` trains with: its `set` overrides over `config`'s.
fn run_of(config: &TrainConfig, phase: &Phase) -> TrainConfig {
    seethink::rl::phases::with_phase_settings(config, &phase.settings).unwrap()
}

#[test]
fn configs_paper_holds_each_backbone_staged_and_its_variants() {
    let paper = ron_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper"));
    let mut names: Vec<String> =
        paper.iter().map(|p| p.file_stem().unwrap().to_str().unwrap().to_string()).collect();
    let mut expected: Vec<String> = BACKBONES
        .iter()
        .flat_map(|b| std::iter::once(b.to_string()).chain(VARIANTS.iter().map(move |v| format!("{b}_{v}"))))
        .collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn the_paper_configs_plan_the_papers_stages() {
    for backbone in BACKBONES {
        let config = paper_config(backbone);
        let (r, a) = (&config.rollout, &config.actor);
        assert_eq!((r.n, config.trainer.prompts_per_step, a.mini_batches), (5, 512, 4), "{backbone}");
        assert_eq!((a.lr, config.algorithm.kl_coef, r.max_new_tokens), (1e-6, 0.01, 2048));
        let phases = plan(&config);
        let steps: Vec<_> = phases.iter().map(|p| p.settings.steps).collect();
        assert_eq!(steps, [Some(90), Some(375), Some(465)], "{backbone}");
        let frozen: Vec<_> = phases.iter().map(|p| run_of(&config, p).actor.freeze_vision).collect();
        assert_eq!(frozen, [false, true, false]);
        let damped = run_of(&config, &phases[1]).actor.lr == 3e-7;
        assert_eq!(damped, backbone == "internvl3_8b", "only InternVL3's stage 2 is damped");
        let prompt = config.data.max_prompt_length;
        assert_eq!(prompt, Some(if backbone.contains("internvl") { 4096 } else { 2048 }));
    }
}

#[test]
fn every_paper_config_evaluates_the_papers_benchmarks_with_its_validation_sampling() {
    use seethink::eval::Benchmark;
    for name in BACKBONES
        .iter()
        .flat_map(|b| std::iter::once(b.to_string()).chain(VARIANTS.iter().map(move |v| format!("{b}_{v}"))))
    {
        let config = paper_config(&name);
        let eval = config.eval.as_ref().unwrap_or_else(|| panic!("{name}: no eval section"));
        assert_eq!((eval.temperature, eval.top_p, eval.k), (0.6, Some(0.95), 1), "{name}");
        let benchmarks: Vec<Benchmark> = eval.benchmarks.iter().map(|b| b.benchmark().unwrap()).collect();
        // every benchmark of the paper's averages, and DynaMath
        let mut all = Benchmark::ALL.to_vec();
        all.sort();
        let mut listed = benchmarks.clone();
        listed.sort();
        assert_eq!(listed, all, "{name}");
        for entry in &eval.benchmarks {
            assert!(
                entry.file.starts_with("./data/bench") && entry.file.extension().unwrap() == "tsv",
                "{name}"
            );
        }
    }
}

#[test]
fn each_variant_plans_its_ablation() {
    for backbone in BACKBONES {
        let internvl = backbone.contains("internvl");
        let summary = |variant: &str| {
            let config = paper_config(&format!("{backbone}_{variant}"));
            let curriculum = config.curriculum.clone().unwrap();
            let phases = plan(&config);
            let names: Vec<String> = phases.iter().map(|p| p.name.clone()).collect();
            let steps: Vec<_> = phases.iter().map(|p| p.settings.steps.unwrap()).collect();
            (config, curriculum, phases, names, steps)
        };
        // merged: one phase of 930 steps over every task, vision frozen as the paper's merged
        // script (trainable in the InternVL ones)
        let (config, _, phases, names, steps) = summary("merged");
        assert_eq!((names, steps), (vec!["merged".to_string()], vec![930]), "{backbone}");
        assert_eq!(phases[0].tasks.len(), 5, "{backbone}: every task");
        assert_eq!(run_of(&config, &phases[0]).actor.freeze_vision, !internvl, "{backbone}");
        assert!(config.data.shuffle);
        // difficulty: merged, easy → hard, not shuffled
        let (config, curriculum, _, names, steps) = summary("difficulty");
        assert_eq!((names, steps), (vec!["merged".to_string()], vec![930]), "{backbone}");
        assert_eq!(curriculum.within, [seethink::curriculum::DifficultyKind::EasyToHard]);
        assert!(!config.data.shuffle, "{backbone}");
        // reverse: the staged phases, last first
        let (config, _, phases, names, steps) = summary("reverse");
        assert_eq!(names, ["visual_reasoning", "text_reasoning", "perception"], "{backbone}");
        assert_eq!(steps, [465, 375, 90]);
        assert!(run_of(&config, &phases[1]).actor.freeze_vision);
        // reasoning only: no perception data, stages 2 → 3
        let (config, _, phases, names, steps) = summary("reasoning_only");
        assert_eq!(
            (names, steps),
            (vec!["text_reasoning".to_string(), "visual_reasoning".into()], vec![375, 465])
        );
        assert!(run_of(&config, &phases[0]).actor.freeze_vision, "{backbone}");
        let capabilities: Vec<_> = std::iter::once(config.data.capability)
            .chain(config.data.sources.iter().map(|s| s.capability))
            .collect();
        assert!(!capabilities.contains(&Some(Capability::Perception)), "{backbone}");
        // SFT perception: stage 1 is SFT on the caption file alone, then GRPO stages 2 and 3
        let (config, _, phases, names, steps) = summary("sft_perception");
        assert_eq!(
            (names, steps),
            (
                vec!["perception".to_string(), "text_reasoning".into(), "visual_reasoning".into()],
                vec![90, 375, 465]
            )
        );
        assert_eq!(run_of(&config, &phases[0]).algorithm.trainer, Trainer::Sft, "{backbone}");
        assert_eq!(phases[0].tasks, [3, 4], "{backbone}: the caption tasks alone");
        let captions = config.data.sources.iter().find(|s| s.path.ends_with("captions.jsonl")).unwrap();
        assert_eq!(captions.capability, Some(Capability::Perception));
        assert_eq!(run_of(&config, &phases[1]).algorithm.trainer, Trainer::Grpo, "{backbone}: the run's");
    }
}

/// A variant is a copy of its backbone's staged config (RON has no includes): everything but
/// what the variant is about must agree, so that an edit to one copy is not forgotten in another.
#[test]
fn variants_agree_with_their_staged_config_but_for_their_ablation() {
    for backbone in BACKBONES {
        let staged = paper_config(backbone);
        for variant in VARIANTS {
            let mut config = paper_config(&format!("{backbone}_{variant}"));
            assert_eq!(
                config.trainer.out,
                staged.trainer.out.with_file_name(format!("{backbone}_{variant}"))
            );
            config.trainer.out = staged.trainer.out.clone();
            config.curriculum = staged.curriculum.clone();
            match variant {
                "difficulty" | "merged" => {
                    config.data.shuffle = staged.data.shuffle;
                    if backbone.contains("internvl") {
                        // the InternVL merged scripts' prompt and image sizes
                        assert_eq!(
                            (config.data.max_prompt_length, config.data.max_pixels),
                            (Some(2048), Some(500_000))
                        );
                        (config.data.max_prompt_length, config.data.max_pixels) =
                            (staged.data.max_prompt_length, staged.data.max_pixels);
                    }
                }
                "reasoning_only" => {
                    // the staged data without its perception file
                    let text = staged
                        .data
                        .sources
                        .iter()
                        .find(|s| s.capability == Some(Capability::TextReasoning))
                        .unwrap();
                    assert_eq!((&config.data.train, config.data.capability), (&text.path, text.capability));
                    let others: Vec<_> =
                        staged.data.sources.iter().filter(|s| s.path != text.path).cloned().collect();
                    assert_eq!(config.data.sources, others);
                    config.data.train = staged.data.train.clone();
                    config.data.capability = staged.data.capability;
                    config.data.sources = staged.data.sources.clone();
                }
                "sft_perception" => {
                    config.data.sources.retain(|s| !s.path.ends_with("captions.jsonl"));
                }
                _ => {}
            }
            assert_eq!(config, staged, "{backbone}_{variant}: differs from {backbone} beyond its ablation");
        }
    }
}

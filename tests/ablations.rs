//! The ablation suite's smoke configuration end to end: every arm runs from the committed base
//! model, the results (records, tables, curves, header) are written, and a re-run resumes from
//! them or from the run directory; the suite on a run config's checkpoint, data and captions.

use seethink::ablations::{run_suite, Arm, FromConfig, RunRecord, Suite};
use seethink::data::synth::caption_tasks;
use seethink::data::Capability;
use seethink::preset::StageSteps;

#[test]
fn the_smoke_suite_runs_every_arm_and_writes_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let suite =
        Suite { command: "smoke test".into(), ..Suite::smoke(dir.path().join("runs"), results.clone()) };
    let records = run_suite::<burn::backend::NdArray>(&suite).unwrap();

    assert_eq!(records.len(), Arm::ALL.len());
    for (record, arm) in records.iter().zip(Arm::ALL) {
        assert_eq!(record.arm, arm.key());
        let stages = match arm {
            Arm::Merged
            | Arm::DifficultyOnly
            | Arm::LearningProgress
            | Arm::LengthPenalty
            | Arm::VerbosityReward => 1,
            Arm::ReasoningOnly => 2,
            _ => 3,
        };
        assert_eq!(record.phases.len(), stages, "{}", arm.key());
        assert_eq!(record.curve.len(), record.steps, "{}", arm.key());
        assert_eq!(record.phases.iter().map(|p| p.steps).sum::<usize>(), record.steps);
        // equal compute: 3 · P steps (the plateau arm may stop a stage early)
        if arm == Arm::Plateau {
            assert!(record.steps <= 6 && record.steps >= 3, "{}", record.steps);
        } else {
            assert_eq!(record.steps, 6, "{}", arm.key());
        }
        // every arm starts from the same evaluation of the base model
        assert_eq!(record.start, records[0].start);
    }
    // the SFT arm's perception stage trains on captions (no reward), then GRPO (reward)
    let sft = records.iter().find(|r| r.arm == Arm::SftPerception.key()).unwrap();
    assert_eq!(sft.phases[0].name, "perception");
    assert!(sft.curve.iter().filter(|p| p.phase == "perception").all(|p| !p.values.contains_key("reward")));
    assert!(sft.curve.iter().filter(|p| p.phase != "perception").all(|p| p.values.contains_key("reward")));
    let plan = std::fs::read_to_string(dir.path().join("runs/seed-0/sft_perception/plan.json")).unwrap();
    assert!(plan.contains("caption"), "the SFT stage has no caption tasks: {plan}");
    // the filter arms' perception stages train on the synthesised questions, the filtered ones
    // on those the base model fails from the image alone
    for arm in [Arm::PerceptionFiltered, Arm::PerceptionUnfiltered] {
        let plan =
            std::fs::read_to_string(dir.path().join(format!("runs/seed-0/{}/plan.json", arm.key()))).unwrap();
        assert!(plan.contains("perception-data"), "{}: no synthesised questions: {plan}", arm.key());
    }
    // the length-penalty arm trains with DAPO's overlong penalty
    let plan = std::fs::read_to_string(dir.path().join("runs/seed-0/length_penalty/plan.json")).unwrap();
    assert!(plan.contains("overlong_penalty=Some((buffer: 64, factor: 1.0))"), "{plan}");
    let filter = dir.path().join("runs/seed-0/data/perception-candidates/filter");
    let report = std::fs::read_to_string(filter.join("report.md")).unwrap();
    assert!(report.contains("caption side: not checked"), "{report}");
    let dropped = std::fs::read_to_string(filter.join("dropped.jsonl")).unwrap();
    assert!(dropped.lines().all(|l| l.contains("\"stage\":\"image\"")), "{dropped}");

    let lines = std::fs::read_to_string(results.join("runs.jsonl")).unwrap();
    let read: Vec<RunRecord> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_same_records(&read, &records);
    let tables = std::fs::read_to_string(results.join("tables.md")).unwrap();
    for heading in [
        "Capability order",
        "Perception data",
        "RL vs SFT",
        "Capability × difficulty",
        "Adaptive policies",
        "Perception questions",
        "Response length",
    ] {
        assert!(tables.contains(heading), "{heading} missing:\n{tables}");
    }
    for arm in Arm::ALL {
        assert!(tables.contains(&format!("| {} |", arm.label())), "{} missing:\n{tables}", arm.label());
    }
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("suite.json")).unwrap()).unwrap();
    assert_eq!(header["smoke"], true);
    assert_eq!(header["seeds"], serde_json::json!([0]));
    assert_eq!(header["arms"].as_array().unwrap().len(), Arm::ALL.len());
    for curve in ["reward", "accuracy_perception", "response_length"] {
        let svg = std::fs::read_to_string(results.join(format!("curve_{curve}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains(Arm::Merged.label()), "curve_{curve}.svg");
    }

    // a re-run on a fresh machine that has only the results folder (committed, say) reads every
    // finished arm back from it and prepares no seed
    let fresh = Suite { out: dir.path().join("fresh-runs"), ..suite.clone() };
    let again = run_suite::<burn::backend::NdArray>(&fresh).unwrap();
    assert_same_records(&again, &records);
    assert!(!fresh.out.join("seed-0").exists(), "a seed whose arms all finished was prepared again");
    // and one that has only the run directory reads them back from the arms' record.json
    let elsewhere = Suite { results: dir.path().join("results-elsewhere"), ..suite.clone() };
    assert_same_records(&run_suite::<burn::backend::NdArray>(&elsewhere).unwrap(), &records);
    // suite.json lists both processes: the first trained every arm, the second none; the arms'
    // step time is all of their steps', whichever process ran them
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("suite.json")).unwrap()).unwrap();
    let processes = header["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2, "{header}");
    assert_eq!(processes[0]["trained"].as_array().unwrap().len(), Arm::ALL.len(), "{header}");
    assert!(processes[1]["trained"].as_array().unwrap().is_empty(), "{header}");
    let total: f64 = processes.iter().map(|p| p["minutes"].as_f64().unwrap()).sum();
    assert!((header["wall_minutes_all_processes"].as_f64().unwrap() - total).abs() < 0.11, "{header}");
    let step_seconds: f64 = records.iter().map(|r| r.step_seconds).sum();
    assert!(step_seconds > 0.0 && records.iter().all(|r| r.step_seconds <= r.seconds), "{records:?}");
}

/// The records without their wall-clock seconds, which JSON reads back only to within an ulp.
fn without_seconds(records: &[RunRecord]) -> Vec<RunRecord> {
    records
        .iter()
        .cloned()
        .map(|r| RunRecord { seconds: 0.0, step_seconds: 0.0, trained_here: false, ..r })
        .collect()
}

/// `a` and `b` are the same records but for wall time, and for the last bit of numbers read
/// back from JSON (serde_json's default float parsing may round the last digit differently).
fn assert_same_records(a: &[RunRecord], b: &[RunRecord]) {
    fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }
    let json = |r: &[RunRecord]| serde_json::to_value(without_seconds(r)).unwrap();
    assert!(close(&json(a), &json(b)), "{a:?}\n!=\n{b:?}");
}

/// A run config as a user's: the sandbox's base model, a benchmark file with a capability per
/// record and a held-out `eval` section (the CPU preset's, at smoke sizes), no curriculum.
fn user_config(dir: &std::path::Path) -> seethink::rl::config::TrainConfig {
    let preset = seethink::preset::CpuPreset {
        out: dir.to_path_buf(),
        base: seethink::sandbox::committed_base(),
        max_new_tokens: seethink::sandbox::MAX_RESPONSE_TOKENS,
        stage_steps: StageSteps::uniform(1),
        train_tasks: 2,
        heldout_tasks: 2,
        eval_k: 1,
        seed: 7,
        heldout_seed: seethink::sandbox::VALIDATION_SEED,
        pass_rate_samples: 0,
    };
    let mut config = preset.prepare().unwrap();
    config.curriculum = None;
    config.trainer.prompts_per_step = 2;
    config.rollout.n = 2;
    config
}

#[test]
fn the_suite_runs_on_a_config_s_checkpoint_data_and_captions() {
    let dir = tempfile::tempdir().unwrap();
    let config = user_config(&dir.path().join("user"));
    let train = seethink::data::load_tasks(&config.data.train, None).unwrap();
    let perception: Vec<_> = train.into_iter().filter(|t| t.capability == Capability::Perception).collect();
    let captions = dir.path().join("captions");
    seethink::data::synth::write_tasks(&captions, &caption_tasks(&perception).unwrap()).unwrap();
    let from = FromConfig { config: config.clone(), captions: Some(captions) };
    let out = dir.path().join("runs");
    let mut suite =
        Suite::on_config(from, Some(StageSteps::uniform(1)), 1, out.clone(), out.join("results")).unwrap();
    (suite.arms, suite.passrate_k) = (vec![Arm::Merged, Arm::SftPerception, Arm::CapabilityXDifficulty], 1);
    let records = run_suite::<burn::backend::NdArray>(&suite).unwrap();

    assert_eq!(records.iter().map(|r| r.steps).collect::<Vec<_>>(), [3, 3, 3]);
    // the config's seed-7 data was rated by the starting model (the difficulty arm's input)
    let rated = seethink::data::load_tasks(&out.join("seed-0/data/rated-0"), None).unwrap();
    assert_eq!(rated.len(), 6);
    assert!(rated.iter().all(|t| t.pass_rate.is_some()));
    let plan = std::fs::read_to_string(out.join("seed-0/sft_perception/plan.json")).unwrap();
    assert!(plan.contains("caption"), "the SFT stage has no caption tasks: {plan}");
    let header: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results/suite.json")).unwrap()).unwrap();
    assert_eq!(
        header["settings"]["base"],
        seethink::provenance::project_path(&seethink::sandbox::committed_base())
    );

    // what the config lacks is named
    let no_eval = FromConfig {
        config: seethink::rl::config::TrainConfig { eval: None, ..config.clone() },
        captions: None,
    };
    let err = Suite::on_config(no_eval, None, 1, out.clone(), out.join("results")).unwrap_err();
    assert!(format!("{err:#}").contains("no `eval` section"), "{err:#}");
    let no_steps = FromConfig { config: config.clone(), captions: None };
    let err = Suite::on_config(no_steps.clone(), None, 1, out.clone(), out.join("results")).unwrap_err();
    assert!(format!("{err:#}").contains("`perception` phase"), "{err:#}");
    let mut without_captions = Suite::on_config(
        no_steps,
        Some(StageSteps::uniform(1)),
        1,
        dir.path().join("other"),
        dir.path().join("other/results"),
    )
    .unwrap();
    (without_captions.arms, without_captions.passrate_k) = (vec![Arm::SftPerception], 1);
    let err = run_suite::<burn::backend::NdArray>(&without_captions).unwrap_err();
    assert!(format!("{err:#}").contains("--captions"), "{err:#}");
}

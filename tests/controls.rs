//! The positive-control protocol at smoke scale: four runs from the committed base model, each
//! evaluated before and after on the same held-out tasks, a verdict per control. It checks the
//! protocol, not the numbers (those are in experiments/results/controls/).

use seethink::controls::{controls_table, run_controls, MERGED_MIN_GAIN};
use seethink::data::Capability;
use seethink::preset::CpuPreset;

#[test]
fn every_control_is_a_paired_before_after_comparison_with_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let preset = CpuPreset {
        out: dir.path().to_path_buf(),
        base: seethink::sandbox::committed_base(),
        max_new_tokens: seethink::sandbox::MAX_RESPONSE_TOKENS,
        stage_steps: seethink::preset::StageSteps::uniform(1),
        train_tasks: 4,
        heldout_tasks: 3,
        eval_k: 1,
        seed: 0,
        heldout_seed: seethink::sandbox::VALIDATION_SEED,
        pass_rate_samples: 0,
    };
    let controls = run_controls::<burn::backend::NdArray>(&preset).unwrap();
    let names: Vec<&str> = controls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["perception", "text_reasoning", "visual_reasoning", "merged"]);
    let targets: Vec<Option<Capability>> = controls.iter().map(|c| c.target).collect();
    assert_eq!(targets[..3], Capability::ALL.map(Some));
    assert_eq!(targets[3], None);
    for c in &controls {
        // paired over the 3 tasks of the capability (9 for overall)
        assert_eq!(c.change.n, if c.target.is_some() { 3 } else { 9 }, "{}", c.name);
        assert!((c.change.mean - (c.after - c.before)).abs() < 1e-9, "{}", c.name);
        assert_eq!(c.holds, c.change.low > 0.0 && c.change.mean >= c.min_gain, "{}", c.name);
        // each stage trained only its own tasks
        let plan = std::fs::read_to_string(dir.path().join(&c.name).join("plan.json")).unwrap();
        let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
        assert_eq!(plan.as_array().unwrap().len(), 1, "{}", c.name);
    }
    assert_eq!(controls[3].min_gain, MERGED_MIN_GAIN);
    assert_eq!(controls[3].steps, 3);
    let table = controls_table(&controls);
    assert_eq!(table.lines().count(), 2 + 4, "{table}");
    assert!(table.contains("| merged | 3 | overall |"), "{table}");

    // a re-run reads every finished run and evaluation back
    let again = run_controls::<burn::backend::NdArray>(&preset).unwrap();
    assert_eq!(again, controls);
}

//! Perception-error attribution on scripted perceivers whose errors are known by construction.

mod common;

use common::{
    miscounter, noisy_perceiver, oracle, plain_task, sees_right_reasons_wrong, synth_tasks, BoxedReward,
};
use seethink_data::synth::oracle::PerceptionNoise;
use seethink_data::Capability;
use seethink_eval::{attribute_errors, evaluate, Attribution, ErrorKind, EvalError, Responder};

/// Evaluates `responder` on the benchmark (one sample per task) and attributes its errors.
fn run(responder: &mut dyn Responder, n: usize) -> (seethink_eval::EvalReport, Attribution) {
    let tasks = synth_tasks(n, 3);
    let report = evaluate(responder, &tasks, &BoxedReward, 1).unwrap();
    let attribution = attribute_errors(responder, &tasks, &report.tasks, &BoxedReward).unwrap();
    (report, attribution)
}

#[test]
fn oracle_has_nothing_to_attribute() {
    let (_, a) = run(&mut oracle(), 9);
    assert_eq!((a.examined, a.wrong, a.perception_errors, a.reasoning_errors), (9, 0, 0, 0));
    assert_eq!(a.perception_share, None);
    assert!(a.by_level.is_empty() && a.errors.is_empty());
}

#[test]
fn seeing_right_and_reasoning_wrong_is_never_a_perception_error() {
    let (report, a) = run(&mut sees_right_reasons_wrong(), 9);
    assert_eq!(report.capability(Capability::VisualReasoning).unwrap().accuracy, 0.0);
    assert_eq!(report.capability(Capability::Perception).unwrap().accuracy, 1.0);
    assert_eq!((a.examined, a.wrong, a.perception_errors, a.reasoning_errors), (9, 9, 0, 9));
    assert_eq!(a.perception_share, Some(0.0));
    assert_eq!(a.by_level.len(), 3);
    for l in &a.by_level {
        assert_eq!((l.perception_errors, l.reasoning_errors, l.perception_share), (0, 3, 0.0));
    }
    for e in &a.errors {
        assert_eq!(e.kind, ErrorKind::Reasoning);
        assert!(!e.subquestions.is_empty() && e.subquestions.iter().all(|s| s.correct));
        assert!(e.subquestions[0].id.starts_with(&format!("{}-sub", e.task_id)));
    }
}

#[test]
fn always_miscounting_is_always_a_perception_error() {
    let (_, a) = run(&mut miscounter(), 12);
    assert!(a.wrong >= 6, "only {} wrong answers", a.wrong);
    assert_eq!(a.perception_errors, a.wrong);
    assert_eq!(a.reasoning_errors, 0);
    assert_eq!(a.perception_share, Some(1.0));
    // no sub-question right (q = 0): chance alone attributes every error, 1 − 0^m = 1
    assert_eq!(a.chance_share, Some(1.0));
    assert!(a.by_level.iter().all(|l| l.perception_share == 1.0 && l.reasoning_errors == 0));
    assert!(a
        .errors
        .iter()
        .all(|e| e.kind == ErrorKind::Perception && e.subquestions.iter().all(|s| !s.correct)));
}

/// With random miscounting the sub-questions are perceived afresh (the oracle's noise stream is
/// keyed by task id), so a re-asked count can come out right and the split is not 100%: only
/// consistency is checked.
#[test]
fn noisy_perception_attribution_is_consistent() {
    let noise = PerceptionNoise { miscount: 1.0, misread_color: 0.0, seed: 5 };
    let (_, a) = run(&mut noisy_perceiver(noise), 30);
    println!(
        "noisy perceiver: {} wrong of {}, {} perception / {} reasoning, share {:?}",
        a.wrong, a.examined, a.perception_errors, a.reasoning_errors, a.perception_share
    );
    assert!(a.wrong > 0);
    assert_eq!(a.perception_errors + a.reasoning_errors, a.wrong);
    assert!(a.perception_errors > 0);
    let per_level: usize = a.by_level.iter().map(|l| l.perception_errors + l.reasoning_errors).sum();
    assert_eq!(per_level, a.wrong);
}

#[test]
fn attribution_appears_in_the_report() {
    let tasks = synth_tasks(6, 3);
    let mut responder = sees_right_reasons_wrong();
    let mut report = evaluate(&mut responder, &tasks, &BoxedReward, 2).unwrap();
    report.attribution = Some(attribute_errors(&mut responder, &tasks, &report.tasks, &BoxedReward).unwrap());
    let md = report.to_markdown();
    println!("{md}");
    assert!(md.contains("### Perception-error attribution"));
    assert!(md.contains("6 of 6 visual-reasoning answers wrong; 0 perception errors, 6 reasoning errors, 0 without ground truth; perception share 0.0% (chance: 0.0%)."));
    // every sub-question answered right: sub-question accuracy alone attributes nothing
    assert_eq!(report.attribution.as_ref().unwrap().chance_share, Some(0.0));
    assert!(md.lines().any(|l| l == "| 1 | 0 | 2 | 0.0% |"));
    let json = report.to_json().unwrap();
    let back: seethink_eval::EvalReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn tasks_without_subquestions_are_not_attributed() {
    let tasks = vec![plain_task("v", Capability::VisualReasoning, Some(1), "5")];
    let mut wrong = common::FnResponder(|_: &seethink_data::Task| Ok("4".to_string()));
    let report = evaluate(&mut wrong, &tasks, &BoxedReward, 1).unwrap();
    let a = attribute_errors(&mut wrong, &tasks, &report.tasks, &BoxedReward).unwrap();
    assert_eq!((a.wrong, a.without_ground_truth, a.perception_errors, a.reasoning_errors), (1, 1, 0, 0));
    assert_eq!(a.perception_share, None);
    // the report's tasks must be given
    let err = attribute_errors(&mut wrong, &[], &report.tasks, &BoxedReward).unwrap_err();
    assert!(matches!(err, EvalError::UnknownTask(id) if id == "v"));
}

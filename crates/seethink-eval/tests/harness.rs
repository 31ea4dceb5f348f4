//! The evaluation loop and its report on scripted responders: accuracy per capability and
//! level, pass@k, format rate, lengths, markdown, JSON, pass rates, plots and errors.

mod common;

use std::collections::HashMap;

use common::{boxed, oracle, plain_task, synth_tasks, BoxedReward, Scripted};
use seethink_data::Capability::{Perception, TextReasoning, VisualReasoning};
use seethink_data::Task;
use seethink_eval::{evaluate, plot_accuracy, with_pass_rates, EvalError, EvalReport, Response};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn response(text: &str, tokens: usize) -> Response {
    Response { text: text.to_string(), tokens }
}

/// Five tasks, two samples each (R = right, W = wrong, U = right answer without `<think>`,
/// which the reward counts as correct but unformatted):
///
/// | task | capability | level | samples | tokens |
/// |---|---|---|---|---|
/// | p1 | perception | 1 | R R | 10 10 |
/// | p2 | perception | 2 | R W | 20 20 |
/// | t1 | text_reasoning | 1 | W W | 30 30 |
/// | v1 | visual_reasoning | 2 | R W | 40 40 |
/// | v2 | visual_reasoning | none | U W | 50 50 |
fn scripted_set() -> (Vec<Task>, Scripted) {
    let tasks = vec![
        plain_task("p1", Perception, Some(1), "A"),
        plain_task("p2", Perception, Some(2), "B"),
        plain_task("t1", TextReasoning, Some(1), "7"),
        plain_task("v1", VisualReasoning, Some(2), "12"),
        plain_task("v2", VisualReasoning, None, "3"),
    ];
    let right = |a: &str, n| Response { tokens: n, ..boxed(a) };
    let wrong = |n| Response { tokens: n, ..boxed("0") };
    let script = HashMap::from([
        ("p1".to_string(), vec![right("A", 10), right("A", 10)]),
        ("p2".to_string(), vec![right("B", 20), wrong(20)]),
        ("t1".to_string(), vec![wrong(30), wrong(30)]),
        ("v1".to_string(), vec![right("12", 40), wrong(40)]),
        ("v2".to_string(), vec![response("\\boxed{3}", 50), wrong(50)]),
    ]);
    (tasks, Scripted(script))
}

fn scripted_report() -> (Vec<Task>, EvalReport) {
    let (tasks, mut responder) = scripted_set();
    let report = evaluate(&mut responder, &tasks, &BoxedReward, 2).unwrap();
    (tasks, report)
}

#[test]
fn accuracy_per_capability_and_level_matches_hand_counts() {
    let (_, r) = scripted_report();
    let o = &r.overall;
    assert_eq!((o.tasks, o.samples), (5, 10));
    assert!(close(o.accuracy, 5.0 / 10.0));
    assert!(close(o.format_rate, 9.0 / 10.0));
    assert!(close(o.mean_tokens, 30.0));
    assert!(close(o.pass_at_1, (1.0 + 0.5 + 0.0 + 0.5 + 0.5) / 5.0));
    assert!(close(o.pass_at_k, 4.0 / 5.0));

    let acc = |s: Option<&seethink_eval::Stats>| s.unwrap().accuracy;
    assert!(close(acc(r.capability(Perception)), 0.75));
    assert!(close(acc(r.capability(TextReasoning)), 0.0));
    assert!(close(acc(r.capability(VisualReasoning)), 0.5));
    assert!(close(r.capability(Perception).unwrap().mean_tokens, 15.0));
    assert!(close(r.capability(VisualReasoning).unwrap().mean_tokens, 45.0));
    assert!(close(r.capability(VisualReasoning).unwrap().format_rate, 0.75));
    assert!(close(r.capability(TextReasoning).unwrap().pass_at_k, 0.0));

    assert!(close(acc(r.level(Some(1))), 0.5)); // p1 2/2 + t1 0/2
    assert!(close(acc(r.level(Some(2))), 0.5)); // p2 1/2 + v1 1/2
    assert!(close(acc(r.level(None)), 0.5)); // v2 1/2
    assert!(r.level(Some(3)).is_none());

    assert!(close(acc(r.cell(Perception, Some(1))), 1.0));
    assert!(close(acc(r.cell(Perception, Some(2))), 0.5));
    assert!(close(acc(r.cell(TextReasoning, Some(1))), 0.0));
    assert!(close(acc(r.cell(VisualReasoning, Some(2))), 0.5));
    assert!(close(acc(r.cell(VisualReasoning, None)), 0.5));
    assert!(r.cell(TextReasoning, Some(2)).is_none());

    // groups in curriculum order, tasks without a level first
    let caps: Vec<_> = r.by_capability.iter().map(|c| c.capability).collect();
    assert_eq!(caps, vec![Some(Perception), Some(TextReasoning), Some(VisualReasoning)]);
    let levels: Vec<_> = r.by_level.iter().map(|l| l.level).collect();
    assert_eq!(levels, vec![None, Some(1), Some(2)]);
    assert_eq!(r.by_capability_level.len(), 5);
}

#[test]
fn per_task_pass_rates_fill_difficulty() {
    let (tasks, r) = scripted_report();
    let rates: Vec<(String, usize, f64)> =
        r.tasks.iter().map(|t| (t.id.clone(), t.correct, t.pass_rate)).collect();
    assert_eq!(rates[0], ("p1".to_string(), 2, 1.0));
    assert_eq!(rates[2], ("t1".to_string(), 0, 0.0));
    let mut extra = tasks.clone();
    extra.push(plain_task("unseen", Perception, Some(1), "A"));
    extra[5].pass_rate = Some(0.25);
    let filled = with_pass_rates(&extra, &r);
    let difficulty: Vec<Option<f64>> = filled.iter().map(|t| t.pass_rate).collect();
    assert_eq!(difficulty, vec![Some(1.0), Some(0.5), Some(0.0), Some(0.5), Some(0.5), Some(0.25)]);
    assert_eq!(filled[0].prompt, tasks[0].prompt);
}

#[test]
fn pass_at_k_of_a_report_matches_hand_computed_values() {
    // one task, five samples, two right: pass@1 = 2/5, pass@2 = 1 − C(3,2)/C(5,2) = 0.7,
    // pass@3 = 1 − C(3,3)/C(5,3) = 0.9, pass@4 = pass@5 = 1
    let tasks = vec![plain_task("q", TextReasoning, Some(1), "4")];
    let samples = vec![boxed("1"), boxed("4"), boxed("2"), boxed("4"), boxed("3")];
    let mut responder = Scripted(HashMap::from([("q".to_string(), samples)]));
    let r = evaluate(&mut responder, &tasks, &BoxedReward, 5).unwrap();
    assert!(close(r.overall.pass_at_1, 0.4));
    assert!(close(r.overall.accuracy, 0.4));
    assert!(close(r.overall.pass_at_k, 1.0));
    for (k, want) in [(1, 0.4), (2, 0.7), (3, 0.9), (4, 1.0), (5, 1.0)] {
        assert!(close(r.pass_at(k).unwrap(), want), "pass@{k}");
    }
    assert!(r.pass_at(6).is_err());
    assert!(r.pass_at(0).is_err());
}

#[test]
fn oracle_is_perfect_on_the_synthetic_benchmark() {
    let tasks = synth_tasks(6, 11);
    let r = evaluate(&mut oracle(), &tasks, &BoxedReward, 3).unwrap();
    assert_eq!(r.overall.tasks, 18);
    assert_eq!(r.overall.samples, 54);
    assert_eq!(r.overall.accuracy, 1.0);
    assert_eq!(r.overall.format_rate, 1.0);
    assert_eq!(r.overall.pass_at_1, 1.0);
    for c in &r.by_capability_level {
        assert_eq!(c.stats.accuracy, 1.0, "{:?}", c);
        assert_eq!(c.stats.tasks, 2);
    }
    assert_eq!(r.by_level.len(), 3);
}

#[test]
fn markdown_table_has_the_expected_rows() {
    let (_, r) = scripted_report();
    let md = r.to_markdown();
    println!("{md}");
    for row in [
        "## Evaluation: 5 tasks × 2 samples",
        "| capability | tasks | accuracy | format | pass@1 | pass@2 | mean tokens |",
        "| all | 5 | 50.0% | 90.0% | 50.0% | 80.0% | 30.0 |",
        "| perception | 2 | 75.0% | 100.0% | 75.0% | 100.0% | 15.0 |",
        "| text_reasoning | 1 | 0.0% | 100.0% | 0.0% | 0.0% | 30.0 |",
        "| visual_reasoning | 2 | 50.0% | 75.0% | 50.0% | 100.0% | 45.0 |",
        "| none | 1 | 50.0% | 50.0% | 50.0% | 100.0% | 50.0 |",
        "| 1 | 2 | 50.0% | 100.0% | 50.0% | 50.0% | 20.0 |",
        "| perception | 2 | 1 | 50.0% | 100.0% | 50.0% | 100.0% | 20.0 |",
        "| visual_reasoning | none | 1 | 50.0% | 50.0% | 50.0% | 100.0% | 50.0 |",
    ] {
        assert!(md.lines().any(|l| l == row), "missing row {row:?} in\n{md}");
    }
    assert!(!md.contains("attribution"));
}

#[test]
fn report_json_round_trips() {
    let (_, r) = scripted_report();
    let json = r.to_json().unwrap();
    let back: EvalReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    r.write_json(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["by_capability"][0]["capability"], "perception");
    assert_eq!(value["tasks"][4]["samples"][0]["format"], 0.0);
    assert!(value.get("attribution").is_none());
}

#[test]
fn tasks_without_a_capability_are_one_unlabelled_group() {
    let (_, r) = scripted_report();
    let ids: std::collections::HashSet<&str> = ["p2", "v2"].into();
    let r = r.with_unlabelled(&ids).unwrap();
    // capabilities in curriculum order, then the unlabelled: p2 (R W) and v2 (U W); only U is
    // unformatted
    let groups: Vec<_> = r.by_capability.iter().map(|c| seethink_eval::group_name(c.capability)).collect();
    assert_eq!(groups, ["perception", "text_reasoning", "visual_reasoning", "unlabelled"]);
    let u = r.unlabelled().unwrap();
    assert_eq!((u.tasks, u.samples), (2, 4));
    assert!(close(u.accuracy, 0.5) && close(u.format_rate, 0.75), "{u:?}");
    assert!(close(r.capability(Perception).unwrap().accuracy, 1.0), "p1 alone is left");
    assert!(close(r.overall.accuracy, 0.5), "overall unchanged");
    let md = r.to_markdown();
    for row in ["| unlabelled | 2 | 50.0% | 75.0% | 50.0% | 100.0% | 35.0 |", "| unlabelled | none | 1 |"] {
        assert!(md.contains(row), "missing {row:?} in\n{md}");
    }
    // JSON names the group, and reads back
    let value: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert_eq!(value["by_capability"][3]["capability"], "unlabelled");
    assert_eq!(value["tasks"][1]["capability"], "unlabelled");
    assert_eq!(serde_json::from_str::<EvalReport>(&r.to_json().unwrap()).unwrap(), r);
    let bad = r.to_json().unwrap().replace("\"unlabelled\"", "\"sight\"");
    let err = serde_json::from_str::<EvalReport>(&bad).unwrap_err().to_string();
    assert!(err.contains("unknown capability group `sight`"), "{err}");
}

#[test]
fn accuracy_plot_is_written_as_svg() {
    let (_, r) = scripted_report();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accuracy.svg");
    plot_accuracy(&r, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
    for label in
        ["perception", "text_reasoning", "visual_reasoning", "all", "level 1", "level none", "all levels"]
    {
        assert!(svg.contains(label), "missing {label}");
    }
    // deterministic
    let again = dir.path().join("again.svg");
    plot_accuracy(&r, &again).unwrap();
    assert_eq!(std::fs::read_to_string(&again).unwrap(), svg);
    // an unwritable path is an error, not a panic
    let bad = dir.path().join("missing-dir").join("x.svg");
    assert!(matches!(plot_accuracy(&r, &bad), Err(EvalError::Plot { .. })));
}

#[test]
fn bad_inputs_are_errors() {
    let (tasks, mut responder) = scripted_set();
    // the script returns 2 samples per task, whatever k
    let err = evaluate(&mut responder, &tasks, &BoxedReward, 3).unwrap_err();
    assert!(matches!(err, EvalError::ResponseCount { expected: 3, got: 2, .. }), "{err}");
    assert!(err.to_string().contains("samples of task `p1`"), "{err}");
    assert!(matches!(evaluate(&mut responder, &tasks, &BoxedReward, 0), Err(EvalError::Invalid(_))));
    assert!(matches!(evaluate(&mut responder, &[], &BoxedReward, 1), Err(EvalError::Invalid(_))));
    let dup = vec![tasks[0].clone(), tasks[1].clone(), tasks[0].clone()];
    assert!(
        matches!(evaluate(&mut responder, &dup, &BoxedReward, 2), Err(EvalError::DuplicateTask(id)) if id == "p1")
    );
    struct Short;
    impl seethink_eval::Responder for Short {
        fn respond(&mut self, _: &[Task], _: usize) -> seethink_eval::Result<Vec<Vec<Response>>> {
            Ok(vec![])
        }
    }
    let err = evaluate(&mut Short, &tasks, &BoxedReward, 1).unwrap_err();
    assert_eq!(err.to_string(), "responder returned 0 for tasks, expected 5");
    let unscripted = vec![plain_task("nope", Perception, None, "A")];
    assert!(matches!(evaluate(&mut responder, &unscripted, &BoxedReward, 2), Err(EvalError::Responder(_))));
}

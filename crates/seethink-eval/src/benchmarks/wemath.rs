//! WeMath as VLMEvalKit scores it (`WeMath.evaluate`, `vlmeval/dataset/utils/wemath.py`): the
//! four-dimensional metric over multi-step problems and the accuracy by number of steps.
//!
//! - Prompt: as [`super::mcq`] without the closing instruction (`WeMath.build_prompt`).
//! - Answer: [`super::mcq::grade`] (VLMEvalKit's judged path: `mcq_vanilla_eval`, whose rule is
//!   `can_infer`; its judge is replaced by the last `\boxed{}`). Without a judge VLMEvalKit
//!   takes another rule, the first letter after the last `Answer` of the response; seethink
//!   keeps `can_infer`, the rule of the judged run the paper made.
//! - Problems: the rows whose `key` is `2steps_1`, `2steps_2`, `2steps_multi` (or `3steps_1` …
//!   `3steps_3`, `3steps_multi`) and share an `ID` form one n-step problem: its one-step parts
//!   and the composite question. A problem is one whose `<n>steps_1` row exists (VLMEvalKit
//!   merges the other rows onto it); a part without a row counts as neither right nor wrong;
//!   other keys (one-step questions) are outside the metric. When two rows share an `ID` and
//!   `key`, the first counts (VLMEvalKit's merge would pair each with each).
//! - Each problem falls into the dimensions (one-step parts s_i, composite m):
//!   - insufficient knowledge IK: some s_i wrong and m wrong;
//!   - inadequate generalisation IG: every s_i right and m wrong;
//!   - complete mastery CM: loose any s_i right, strict every s_i right; and m right;
//!   - rote memorisation RM: loose every s_i wrong, strict some s_i wrong; and m right.
//! - Scores over the N problems: score = (N − 0.5·IG − RM − IK) / N (strict and loose with
//!   RM's strict and loose counts); rates IK / N, IG / N, CM / N, and RM / (CM + RM).
//!   VLMEvalKit divides by 525, the number of multi-step problems in WeMath's test set,
//!   whatever the file holds; seethink divides by the number of problems in the file, which is
//!   525 for the full file.
//! - Accuracy: one-step (S1) over every part of every problem, two-step (S2) and three-step
//!   (S3) over the composite questions; parts without a row are left out (pandas' mean).
//!   VLMEvalKit's accuracy per knowledge-concept group is not computed (it needs WeMath's
//!   knowledge tree, which VLMEvalKit embeds in its source).
//! - The headline is the strict score.

use std::collections::HashMap;

use seethink_data::TsvRow;

use super::mcq;
use super::summary::{ItemResult, Scores, Table, TableRow};
use super::tally::percent_of;
use super::{prediction, require};

/// The row is a valid multiple-choice row with an `ID` and a `key`.
pub fn check(row: &TsvRow) -> Result<(), String> {
    mcq::check(row)?;
    require(row, "ID")?;
    require(row, "key")?;
    Ok(())
}

/// One n-step problem: each part's result (`None`: no row) and the composite's.
struct Problem {
    parts: Vec<Option<bool>>,
    composite: Option<bool>,
}

impl Problem {
    fn any_part(&self, right: bool) -> bool {
        self.parts.contains(&Some(right))
    }

    fn all_parts(&self, right: bool) -> bool {
        self.parts.iter().all(|p| *p == Some(right))
    }
}

/// The problems of `steps` steps, in the order of their `<steps>steps_1` rows.
fn problems(rows: &[TsvRow], hits: &[bool], steps: usize) -> Vec<Problem> {
    let mut by_key: HashMap<(&str, &str), bool> = HashMap::new();
    for (row, &hit) in rows.iter().zip(hits) {
        if let (Some(id), Some(key)) = (row.get("ID"), row.get("key")) {
            by_key.entry((id, key)).or_insert(hit);
        }
    }
    let first = format!("{steps}steps_1");
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .filter(|row| row.get("key") == Some(first.as_str()))
        .filter_map(|row| row.get("ID"))
        .filter(|id| seen.insert(*id))
        .map(|id| Problem {
            parts: (1..=steps)
                .map(|i| by_key.get(&(id, format!("{steps}steps_{i}").as_str())).copied())
                .collect(),
            composite: by_key.get(&(id, format!("{steps}steps_multi").as_str())).copied(),
        })
        .collect()
}

/// Scores every row (see the module docs).
pub(crate) fn score(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let items: Vec<ItemResult> =
        rows.iter().map(|row| mcq::grade(row, prediction(predictions, row))).collect();
    let hits: Vec<bool> = items.iter().map(|i| i.correct).collect();
    let (two, three) = (problems(rows, &hits, 2), problems(rows, &hits, 3));
    let all: Vec<&Problem> = two.iter().chain(&three).collect();
    let count = |f: &dyn Fn(&Problem) -> bool| all.iter().filter(|p| f(p)).count();
    let m = |p: &Problem, right: bool| p.composite == Some(right);
    let ik = count(&|p| p.any_part(false) && m(p, false));
    let ig = count(&|p| p.all_parts(true) && m(p, false));
    let cm = [count(&|p| p.all_parts(true) && m(p, true)), count(&|p| p.any_part(true) && m(p, true))];
    let rm = [count(&|p| p.any_part(false) && m(p, true)), count(&|p| p.all_parts(false) && m(p, true))];
    let n = all.len();
    let score = |rm: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * (n as f64 - 0.5 * ig as f64 - rm as f64 - ik as f64) / n as f64
        }
    };
    let both = |f: &dyn Fn(usize) -> f64| vec![f(0), f(1)];
    let four = Table {
        title: "four-dimensional metric (items: problems, strict count)".into(),
        key: "dimension".into(),
        columns: vec!["strict".into(), "loose".into()],
        rows: vec![
            TableRow::new("Score", n, both(&|i| score(rm[i]))),
            TableRow::new("Insufficient knowledge", ik, both(&|_| percent_of(ik, n))),
            TableRow::new("Inadequate generalization", ig, both(&|_| percent_of(ig, n))),
            TableRow::new("Complete mastery", cm[0], both(&|i| percent_of(cm[i], n))),
            TableRow::new("Rote memorization", rm[0], both(&|i| percent_of(rm[i], cm[i] + rm[i]))),
        ],
    };
    let mean = |values: Vec<bool>| {
        TableRow::new("", values.len(), vec![percent_of(values.iter().filter(|v| **v).count(), values.len())])
    };
    let one_step: Vec<bool> = all.iter().flat_map(|p| p.parts.iter().flatten().copied()).collect();
    let composites = |ps: &[Problem]| ps.iter().filter_map(|p| p.composite).collect::<Vec<bool>>();
    let steps = [
        ("One-step (S1)", one_step),
        ("Two-step (S2)", composites(&two)),
        ("Three-step (S3)", composites(&three)),
    ]
    .into_iter()
    .map(|(name, values)| TableRow { name: name.into(), ..mean(values) })
    .collect();
    let accuracy = Table::single("accuracy by steps", "questions", "accuracy", steps);
    Scores { metric: "strict score", score: score(rm[0]), tables: vec![four, accuracy], items }
}

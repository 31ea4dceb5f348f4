//! MathVista, MATH-Vision and MathVerse: VLMEvalKit's rules where they decide, stand-ins where
//! VLMEvalKit asks its GPT judge (see the parent module).
//!
//! Prompts are the `question` column alone (`ImageBaseDataset.build_prompt`; the TSV questions
//! already hold their hints and choices). Every row is scored on its prediction
//! ([`super::matching::scored_prediction`]). Free-form answers are extracted as the last
//! `\boxed{}` of the prediction, else the whole prediction ([`judged_answer`], the judge's
//! stand-in), then compared with the gold answer.
//!
//! - MathVista (`vlmeval/dataset/utils/mathvista.py`): a `multi_choice` row's `choices` (a
//!   Python list) are the options A, B, … (`list_to_dict`); [`infer_choice`] must give its
//!   `answer_option` (`post_check`: `can_infer` on the prediction, then on the judge's
//!   extraction). A `free_form` row's extraction is compared by `post_check`
//!   ([`mathvista_post_check`]): by `answer_type`, `int()` or `float()` of both equal; `text`
//!   and `list` answers are never right there (it compares `str(None)` with the answer).
//!   Tables: accuracy per `task` and per `skills` entry (`MathVista_acc`).
//! - MATH-Vision (`vlmeval/dataset/utils/mathv.py`): rows whose `choices` list is non-empty are
//!   multiple choice, [`infer_choice`] must give `answer` (case-insensitive, as `is_equal`);
//!   the others' extraction is compared by `is_equal` ([`mathvision_is_equal`]). Table:
//!   accuracy per `category` (`MATH_V_acc`).
//! - MathVerse (`vlmeval/dataset/utils/mathverse.py`): VLMEvalKit has its judge extract every
//!   answer and, unless the extraction equals the answer (`post_check_score`), judge the
//!   equivalence. Here a multiple-choice row (its answer one letter `A` … `E`) takes the letter
//!   [`can_infer_option`] finds in the prediction (`The answer is A`, `B.`), else in the
//!   [`judged_answer`]; other rows take the [`judged_answer`]; the MATH grader
//!   ([`grade_answer`]) then stands in for the judge's equivalence. Tables (`MathVerse_acc`):
//!   accuracy per `problem_version`, `subject` and `subfield`, each its own TSV column where the
//!   file has one (MathVerse's `problem_version`), else the field of the `metadata` column (a
//!   Python dict, read as VLMEvalKit reads it: `'` replaced by `"`, then JSON).
//!
//! With [`ScoreOptions::math_grader`], MathVista's and MATH-Vision's free-form extractions are
//! graded by the reward crate's MATH grader instead ([`grade_answer`]: Hendrycks MATH / PRM800K
//! normalisation and exact numeric equivalence, so `5.0` is `5` and `\frac{1}{2}` is `0.5`).
//!
//! Every headline is the accuracy over all rows.

use std::collections::HashMap;

use seethink_data::TsvRow;
use seethink_reward::eval::{evaluate, Value};
use seethink_reward::latex::parse_latex;
use seethink_reward::{grade_answer, Extensions};

use super::matching::{can_infer_option, infer_choice, judged_answer, Choice};
use super::python::{python_float, python_int, string_list};
use super::summary::{ItemResult, Scores, Table};
use super::tally::{percent_of, Tally};
use super::{prediction, require, ScoreOptions};

/// The free-form answer of a prediction ([`judged_answer`]), right when `equal` to `gold`.
fn grade_free(index: &str, prediction: &str, gold: &str, equal: impl Fn(&str, &str) -> bool) -> ItemResult {
    let extracted = judged_answer(prediction);
    let correct = equal(&extracted, gold);
    ItemResult { index: index.to_string(), extracted: Some(extracted), correct }
}

/// The reward crate's MATH grader: the opt-in comparison of free-form answers
/// ([`ScoreOptions::math_grader`]) and MathVerse's stand-in for its judge.
fn math_grader(extracted: &str, gold: &str) -> bool {
    grade_answer(extracted, gold, Extensions::NONE)
}

/// MathVista's `post_check` of a free-form extraction, by the row's `answer_type`: `integer` —
/// Python's `int()` of both ([`python_int`]) equal; `float` — `float()` of both
/// ([`python_float`]) exactly equal; any other type never (VLMEvalKit compares `str(None)` with
/// the answer). An extraction or answer that does not convert is wrong (`ValueError`).
pub fn mathvista_post_check(answer_type: &str, extracted: &str, gold: &str) -> bool {
    match answer_type {
        "integer" => python_int(extracted).is_some_and(|x| python_int(gold) == Some(x)),
        "float" => python_float(extracted).is_some_and(|x| python_float(gold) == Some(x)),
        _ => false,
    }
}

/// MATH-Vision's `is_equal`: both lower-cased and trimmed, the same text, or numbers within
/// `1e-6` of each other. VLMEvalKit computes the numbers with Python's `eval`, then with
/// `eval(str(latex2sympy(…)))`, which fails wherever sympy keeps a `sqrt` or `pi` (even
/// `\sqrt{4}`) or a variable: such answers are equal only as the same text. seethink reads both
/// with the reward crate's LaTeX reader and evaluator ([`parse_latex`], [`evaluate`]: numbers,
/// `+ - * / ^`, `\frac`), and takes no number from text that mentions `sqrt` or `pi`.
pub fn mathvision_is_equal(extracted: &str, gold: &str) -> bool {
    let (extracted, gold) = (extracted.to_lowercase(), gold.to_lowercase());
    let (extracted, gold) = (extracted.trim(), gold.trim());
    let number = |text: &str| {
        let plain: String = parse_latex(text)?.split_whitespace().collect();
        if plain.contains("sqrt") || plain.contains("pi") {
            return None;
        }
        Some(match evaluate(&plain)? {
            Value::Exact(r) => r.to_f64(),
            Value::Approx(x) => x,
        })
    };
    extracted == gold
        || matches!((number(extracted), number(gold)), (Some(x), Some(g)) if (x - g).abs() < 1e-6)
}

/// A choice a prediction makes, right when it is `gold` (compared ignoring case).
fn grade_choice(index: &str, prediction: &str, choices: &[Choice], gold: &str) -> ItemResult {
    let extracted = infer_choice(prediction, choices);
    let correct = extracted.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(gold.trim()));
    ItemResult { index: index.to_string(), extracted, correct }
}

/// A Python list as options `A`, `B`, … (VLMEvalKit's `list_to_dict`).
fn list_choices(list: &[String]) -> Vec<Choice> {
    list.iter().enumerate().map(|(i, text)| (((b'A' + i as u8) as char).to_string(), text.clone())).collect()
}

/// The `choices` of a row as a list; empty when the column is absent or empty.
fn row_choices(row: &TsvRow) -> Result<Vec<String>, String> {
    match row.get("choices") {
        None => Ok(Vec::new()),
        Some(text) => string_list(text)
            .filter(|list| list.len() <= 26)
            .ok_or_else(|| format!("`choices` is not a Python list of at most 26 strings: {text}")),
    }
}

/// The accuracy over all items.
fn accuracy(items: &[ItemResult]) -> f64 {
    percent_of(items.iter().filter(|i| i.correct).count(), items.len())
}

/// A MathVista row: `question_type` is `multi_choice` (with non-empty `choices` and an
/// `answer_option` among them) or `free_form`.
pub fn check_mathvista(row: &TsvRow) -> Result<(), String> {
    match require(row, "question_type")? {
        "multi_choice" => {
            let choices = list_choices(&row_choices(row)?);
            let option = require(row, "answer_option")?;
            if !choices.iter().any(|(letter, _)| letter == option) {
                return Err(format!("answer_option `{option}` is not one of the {} choices", choices.len()));
            }
            Ok(())
        }
        "free_form" => Ok(()),
        other => Err(format!("question_type `{other}` is neither multi_choice nor free_form")),
    }
}

/// Scores MathVista rows (see the module docs).
pub(crate) fn score_mathvista(
    rows: &[TsvRow],
    predictions: &HashMap<String, String>,
    options: ScoreOptions,
) -> Scores {
    let (mut tasks, mut skills) = (Tally::default(), Tally::default());
    let items: Vec<ItemResult> = rows
        .iter()
        .map(|row| {
            let (answer, gold) = (prediction(predictions, row), row.get("answer").unwrap_or_default());
            let item = match row.get("question_type") {
                Some("multi_choice") => grade_choice(
                    &row.index,
                    answer,
                    &list_choices(&row_choices(row).unwrap_or_default()),
                    row.get("answer_option").unwrap_or_default(),
                ),
                _ if options.math_grader => grade_free(&row.index, answer, gold, math_grader),
                _ => {
                    let answer_type = row.get("answer_type").unwrap_or_default();
                    grade_free(&row.index, answer, gold, |e, g| mathvista_post_check(answer_type, e, g))
                }
            };
            tasks.add(row.get("task").unwrap_or("none"), item.correct);
            let skill_list = row.get("skills").map(|s| string_list(s).unwrap_or_else(|| vec![s.to_string()]));
            for skill in skill_list.unwrap_or_default() {
                skills.add(&skill, item.correct);
            }
            item
        })
        .collect();
    let tables = vec![
        Table::single("per task", "task", "accuracy", tasks.rows()),
        Table::single("per skill", "skill", "accuracy", skills.rows()),
    ];
    Scores { metric: "accuracy", score: accuracy(&items), tables, items }
}

/// A MATH-Vision row: its `choices`, when present, are a Python list.
pub fn check_mathvision(row: &TsvRow) -> Result<(), String> {
    row_choices(row).map(|_| ())
}

/// Scores MATH-Vision rows (see the module docs).
pub(crate) fn score_mathvision(
    rows: &[TsvRow],
    predictions: &HashMap<String, String>,
    options: ScoreOptions,
) -> Scores {
    let mut categories = Tally::default();
    let items: Vec<ItemResult> = rows
        .iter()
        .map(|row| {
            let (answer, gold) = (prediction(predictions, row), row.get("answer").unwrap_or_default());
            let choices = list_choices(&row_choices(row).unwrap_or_default());
            let item = if !choices.is_empty() {
                grade_choice(&row.index, answer, &choices, gold)
            } else if options.math_grader {
                grade_free(&row.index, answer, gold, math_grader)
            } else {
                grade_free(&row.index, answer, gold, mathvision_is_equal)
            };
            categories.add(row.get("category").unwrap_or("none"), item.correct);
            item
        })
        .collect();
    let tables = vec![Table::single("per category", "category", "accuracy", categories.rows())];
    Scores { metric: "accuracy", score: accuracy(&items), tables, items }
}

/// The `metadata` of a MathVerse row as VLMEvalKit reads it: `'` → `"`, then a JSON object.
fn metadata(row: &TsvRow) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = require(row, "metadata")?;
    serde_json::from_str(&text.replace('\'', "\""))
        .map_err(|e| format!("`metadata` is not a dict ({e}): {text}"))
}

/// A MathVerse row: its `metadata` is a dict.
pub fn check_mathverse(row: &TsvRow) -> Result<(), String> {
    metadata(row).map(|_| ())
}

/// The option letters of a MathVerse multiple-choice row.
const LETTERS: [&str; 5] = ["A", "B", "C", "D", "E"];

/// The MathVerse extraction of a prediction for the answer `gold` (see the module docs): on a
/// multiple-choice row (`gold` one of [`LETTERS`]) the letter [`can_infer_option`] finds in the
/// prediction, else in its [`judged_answer`]; otherwise, or when it finds none, the
/// [`judged_answer`].
fn mathverse_extraction(prediction: &str, gold: &str) -> String {
    let judged = judged_answer(prediction);
    if !LETTERS.contains(&gold) {
        return judged;
    }
    let letters: Vec<Choice> = LETTERS.iter().map(|l| (l.to_string(), String::new())).collect();
    can_infer_option(prediction, &letters).or_else(|| can_infer_option(&judged, &letters)).unwrap_or(judged)
}

/// Scores MathVerse rows (see the module docs).
pub(crate) fn score_mathverse(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let mut tallies: [Tally; 3] = Default::default();
    let fields = ["problem_version", "subject", "subfield"];
    let items: Vec<ItemResult> = rows
        .iter()
        .map(|row| {
            let gold = row.get("answer").unwrap_or_default();
            let extracted = mathverse_extraction(prediction(predictions, row), gold);
            let correct = math_grader(&extracted, gold);
            let meta = metadata(row).unwrap_or_default();
            for (tally, field) in tallies.iter_mut().zip(fields) {
                let value = row.get(field).map(str::to_string).or_else(|| {
                    meta.get(field).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                });
                tally.add(value.as_deref().unwrap_or("none"), correct);
            }
            ItemResult { index: row.index.clone(), extracted: Some(extracted), correct }
        })
        .collect();
    let tables = tallies
        .iter()
        .zip(fields)
        .map(|(tally, field)| Table::single(&format!("per {field}"), field, "accuracy", tally.rows()))
        .collect();
    Scores { metric: "accuracy", score: accuracy(&items), tables, items }
}

//! MathVista, MATH-Vision and MathVerse: VLMEvalKit's rules where they decide, the MATH grader
//! where VLMEvalKit asks its GPT judge (see the parent module).
//!
//! Prompts are the `question` column alone (`ImageBaseDataset.build_prompt`; the TSV questions
//! already hold their hints and choices). Free-form answers: the last `\boxed{}` of the response
//! after `</think>`, else that whole text ([`judged_answer`]), graded against `answer` by
//! [`grade_answer`] (Hendrycks MATH / PRM800K normalisation and exact numeric equivalence).
//!
//! - MathVista (`vlmeval/dataset/utils/mathvista.py`): a `multi_choice` row's `choices` (a
//!   Python list) are the options A, B, …; [`infer_choice`] must give its `answer_option`
//!   (VLMEvalKit: `can_infer` on the prediction, then on the judge's extraction). `free_form`
//!   rows take the MATH grader where VLMEvalKit compares the judge's extraction with `int()` /
//!   `float()` equality by `answer_type`; its `text` and `list` answers never match there (its
//!   `post_check` compares `str(None)`), here they are graded like the others. Tables: accuracy
//!   per `task` and per `skills` entry.
//! - MATH-Vision (`vlmeval/dataset/utils/mathv.py`): rows whose `choices` list is non-empty are
//!   multiple choice, [`infer_choice`] must give `answer` (case-insensitive, as `is_equal`);
//!   others take the MATH grader (VLMEvalKit: string equality, then `eval` / `latex2sympy`
//!   within 1e-6). Table: accuracy per `category`.
//! - MathVerse (`vlmeval/dataset/utils/mathverse.py`): every row takes the MATH grader
//!   (VLMEvalKit: exact equality of the judge's extraction, else the judge decides), whose
//!   option-letter rule covers its multiple-choice rows. Tables: accuracy per `problem_version`,
//!   `subject` and `subfield` of the `metadata` column (a Python dict, read as VLMEvalKit reads
//!   it: `'` replaced by `"`, then JSON).
//!
//! Every headline is the accuracy over all rows.

use std::collections::HashMap;

use seethink_data::TsvRow;
use seethink_reward::{grade_answer, Extensions};

use super::matching::{infer_choice, judged_answer, split_thinking, Choice};
use super::python::string_list;
use super::summary::{ItemResult, Scores, Table};
use super::tally::{percent_of, Tally};
use super::{require, response};

/// The free-form answer of a response graded against `gold` with the MATH grader.
fn grade_free(index: &str, response: &str, gold: &str) -> ItemResult {
    let extracted = judged_answer(split_thinking(response));
    let correct = grade_answer(&extracted, gold, Extensions::NONE);
    ItemResult { index: index.to_string(), extracted: Some(extracted), correct }
}

/// A choice a response makes, right when it is `gold` (compared ignoring case).
fn grade_choice(index: &str, response: &str, choices: &[Choice], gold: &str) -> ItemResult {
    let extracted = infer_choice(response, choices);
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
pub(crate) fn score_mathvista(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let (mut tasks, mut skills) = (Tally::default(), Tally::default());
    let items: Vec<ItemResult> = rows
        .iter()
        .map(|row| {
            let answer = response(predictions, row);
            let item = match row.get("question_type") {
                Some("multi_choice") => grade_choice(
                    &row.index,
                    answer,
                    &list_choices(&row_choices(row).unwrap_or_default()),
                    row.get("answer_option").unwrap_or_default(),
                ),
                _ => grade_free(&row.index, answer, row.get("answer").unwrap_or_default()),
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
pub(crate) fn score_mathvision(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let mut categories = Tally::default();
    let items: Vec<ItemResult> = rows
        .iter()
        .map(|row| {
            let (answer, gold) = (response(predictions, row), row.get("answer").unwrap_or_default());
            let choices = list_choices(&row_choices(row).unwrap_or_default());
            let item = if choices.is_empty() {
                grade_free(&row.index, answer, gold)
            } else {
                grade_choice(&row.index, answer, &choices, gold)
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

/// Scores MathVerse rows (see the module docs).
pub(crate) fn score_mathverse(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let mut tallies: [Tally; 3] = Default::default();
    let fields = ["problem_version", "subject", "subfield"];
    let items: Vec<ItemResult> = rows
        .iter()
        .map(|row| {
            let item =
                grade_free(&row.index, response(predictions, row), row.get("answer").unwrap_or_default());
            let meta = metadata(row).unwrap_or_default();
            for (tally, field) in tallies.iter_mut().zip(fields) {
                let value = meta.get(field).map_or_else(
                    || "none".to_string(),
                    |v| v.as_str().map_or_else(|| v.to_string(), str::to_string),
                );
                tally.add(&value, item.correct);
            }
            item
        })
        .collect();
    let tables = tallies
        .iter()
        .zip(fields)
        .map(|(tally, field)| Table::single(&format!("per {field}"), field, "accuracy", tally.rows()))
        .collect();
    Scores { metric: "accuracy", score: accuracy(&items), tables, items }
}

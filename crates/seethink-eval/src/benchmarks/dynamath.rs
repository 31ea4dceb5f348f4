//! DynaMath as VLMEvalKit prompts and scores it (`vlmeval/dataset/dynamath.py`).
//!
//! - Prompt: `## Question\n <question>`, then the answer guide asking for a JSON object with
//!   `solution` and `short answer` (the instruction depends on `answer_type`), then the example
//!   object as `json.dumps(…, indent=4)` writes it (the `DynaMath` setting, not `_noprompt`).
//! - Answer (`DynaMath_auxeval`), on the prediction ([`super::matching::scored_prediction`]:
//!   the response after the last `</think>`, `nan` when pandas reads it as missing, so an empty
//!   response is `nan`): `preprocess` keeps the text from its first `{` to its last `}` (when
//!   both exist in that order) and removes every backslash; when that is a JSON object
//!   (`json.loads(…, strict=False)`, [`json_loads`]: raw newlines and tabs inside strings are
//!   allowed) with a string `short answer`, it is parsed by `parse_answer`; else `parse_answer`
//!   of the preprocessed text; where that fails VLMEvalKit asks its judge, seethink parses the
//!   [`judged_answer`] (the last `\boxed{}`) instead. `parse_answer`: `float` — all digits,
//!   else the text before the first space as a float (Python's `float()`, [`python_float`]; a
//!   trailing `π` multiplies by π); `multiple choice` — a single character (upper-cased), else
//!   the one of `ABCDE` the upper-cased text contains when it contains exactly one; other types
//!   — the text itself.
//! - Correct: `float` within 0.001 of the answer; `multiple choice` equal to the answer, or,
//!   when nothing parsed, the answer among the first three characters of the preprocessed text
//!   (upper-cased); other types when the answer contains it (lower-cased).
//! - Tables: average-case accuracy over all rows, per `subject` and per `knowledge_level`; the
//!   worst case over a question's variants (rows sharing a `qid`): right when every variant is,
//!   grouped by the subject and level of its `varid` 1 row (else its first row). The headline
//!   is the average-case accuracy.

use std::collections::HashMap;

use seethink_data::TsvRow;

use super::matching::judged_answer;
use super::python::{json_loads, python_float};
use super::summary::{ItemResult, Scores, Table};
use super::tally::{percent_of, Tally};
use super::{prediction, require};

/// The answer guide after the question (`Dynamath.GUIDE` with its line continuations joined).
const GUIDE: &str = "\n## Answer Instruction Please provide an answer to the question outlined above. Your response \
should adhere to the following JSON format, which includes two keys: 'solution' and 'short answer'. The 'solution' key \
can contain detailed steps needed to solve the question, and the 'short answer' key should provide a concise response. \
{INST}\n\nExample of expected JSON response format:\n\n";

/// `json.dumps(Dynamath.EXAMPLE, indent=4)`.
const EXAMPLE: &str =
    "{\n    \"solution\": \"[Detailed step-by-step explanation]\",\n    \"short answer\": \"[Concise Answer]\"\n}";

/// The kinds of answer DynaMath rows have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AnswerType {
    Float,
    MultipleChoice,
    Other,
}

impl AnswerType {
    fn of(row: &TsvRow) -> AnswerType {
        match row.get("answer_type") {
            Some("float") => AnswerType::Float,
            Some("multiple choice") => AnswerType::MultipleChoice,
            _ => AnswerType::Other,
        }
    }

    /// The instruction the guide ends with.
    fn instruction(self) -> &'static str {
        match self {
            AnswerType::MultipleChoice => {
                "Provide the corresponing choice option in the 'short answer' key, such as 'A', 'B', 'C', or 'D'."
            }
            AnswerType::Float => {
                "Format the answer as a three-digit floating-point number and provide it in the 'short answer' key."
            }
            AnswerType::Other => "Float numbers in the answer should be formatted as three-digit floating-point numbers.",
        }
    }
}

/// A DynaMath row: an `answer_type`, a `qid`, and a float answer where the type is `float`.
pub fn check(row: &TsvRow) -> Result<(), String> {
    require(row, "answer_type")?;
    require(row, "qid")?;
    if AnswerType::of(row) == AnswerType::Float {
        let answer = require(row, "answer")?;
        python_float(answer)
            .ok_or_else(|| format!("answer `{answer}` of a float question is not a number"))?;
    }
    Ok(())
}

/// The prompt of the module docs.
pub fn prompt(row: &TsvRow) -> String {
    let question = row.get("question").unwrap_or_default();
    format!("## Question\n {question}{}{EXAMPLE}", GUIDE.replace("{INST}", AnswerType::of(row).instruction()))
}

/// `preprocess`: from the first `{` to the last `}` when the first comes before the last, then
/// without backslashes.
fn preprocess(text: &str) -> String {
    let inner = match (text.find('{'), text.rfind('}')) {
        (Some(open), Some(close)) if open < close => &text[open..=close],
        _ => text,
    };
    inner.replace('\\', "")
}

/// A parsed short answer.
#[derive(Clone, Debug, PartialEq)]
enum Short {
    Number(f64),
    Text(String),
}

/// `transfer`: a float, times π when the text has a `π` (the text before it is the factor).
fn transfer(text: &str) -> Option<f64> {
    match text.split_once('\u{3c0}') {
        Some((factor, _)) => python_float(factor).map(|f| f * std::f64::consts::PI),
        None => python_float(text),
    }
}

/// `parse_answer` (see the module docs).
fn parse_answer(answer: &str, kind: AnswerType) -> Option<Short> {
    match kind {
        AnswerType::Float => {
            if !answer.is_empty() && answer.chars().all(|c| c.is_ascii_digit()) {
                return answer.parse().ok().map(Short::Number);
            }
            transfer(answer.split(' ').next().unwrap_or_default()).map(Short::Number)
        }
        AnswerType::MultipleChoice => {
            let mut chars = answer.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return Some(Short::Text(c.to_uppercase().to_string()));
            }
            let upper = answer.to_uppercase();
            let named: Vec<char> = "ABCDE".chars().filter(|c| upper.contains(*c)).collect();
            match named.as_slice() {
                [c] => Some(Short::Text(c.to_string())),
                _ => None,
            }
        }
        AnswerType::Other => Some(Short::Text(answer.to_string())),
    }
}

/// The short answer of a prediction ([`super::matching::scored_prediction`]) and whether it is
/// right (see the module docs).
fn grade(row: &TsvRow, prediction: &str) -> ItemResult {
    let kind = AnswerType::of(row);
    let gold = row.get("answer").unwrap_or_default();
    let text = preprocess(prediction);
    let from_json = json_loads(&text)
        .and_then(|v| v.get("short answer").and_then(|s| s.as_str().map(str::to_string)))
        .and_then(|s| parse_answer(&s, kind));
    let short = from_json
        .or_else(|| parse_answer(&text, kind))
        .or_else(|| parse_answer(&judged_answer(prediction), kind));
    let correct = match (kind, &short) {
        (AnswerType::Float, Some(Short::Number(x))) => {
            python_float(gold).is_some_and(|g| (x - g).abs() <= 0.001)
        }
        (AnswerType::MultipleChoice, Some(Short::Text(letter))) => letter == gold,
        (AnswerType::MultipleChoice, None) => {
            text.chars().take(3).collect::<String>().to_uppercase().contains(gold)
        }
        (AnswerType::Other, Some(Short::Text(s))) => gold.to_lowercase().contains(&s.to_lowercase()),
        _ => false,
    };
    let extracted = short.map(|s| match s {
        Short::Number(x) => x.to_string(),
        Short::Text(t) => t,
    });
    ItemResult { index: row.index.clone(), extracted, correct }
}

/// Scores every row (see the module docs).
pub(crate) fn score(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let items: Vec<ItemResult> = rows.iter().map(|row| grade(row, prediction(predictions, row))).collect();
    let mut average = [Tally::default(), Tally::default(), Tally::default()];
    let mut questions: Vec<(&str, &TsvRow, bool)> = Vec::new();
    for (row, item) in rows.iter().zip(&items) {
        average[0].add("Overall", item.correct);
        average[1].add(row.get("subject").unwrap_or("none"), item.correct);
        average[2].add(row.get("knowledge_level").unwrap_or("none"), item.correct);
        let qid = row.get("qid").unwrap_or_default();
        match questions.iter_mut().find(|(q, _, _)| *q == qid) {
            Some((_, first, all)) => {
                *all &= item.correct;
                if row.get("varid") == Some("1") {
                    *first = row;
                }
            }
            None => questions.push((qid, row, item.correct)),
        }
    }
    let mut worst = [Tally::default(), Tally::default(), Tally::default()];
    for (_, row, all) in &questions {
        worst[0].add("Overall", *all);
        worst[1].add(row.get("subject").unwrap_or("none"), *all);
        worst[2].add(row.get("knowledge_level").unwrap_or("none"), *all);
    }
    let rows_of = |t: &[Tally; 3]| [t[0].rows(), t[1].rows(), t[2].rows()].concat();
    let tables = vec![
        Table::single("average case (items: questions' variants)", "group", "accuracy", rows_of(&average)),
        Table::single("worst case (items: seed questions)", "group", "accuracy", rows_of(&worst)),
    ];
    let hits = items.iter().filter(|i| i.correct).count();
    Scores { metric: "average-case accuracy", score: percent_of(hits, items.len()), tables, items }
}

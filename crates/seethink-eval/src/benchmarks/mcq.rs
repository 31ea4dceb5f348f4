//! Multiple choice as VLMEvalKit's `ImageMCQDataset` builds and scores it (MMStar, RealWorldQA,
//! A-OKVQA; WeMath shares the prompt and the answer rule).
//!
//! - Options (`build_choices` in `vlmeval/dataset/utils/multiple_choice.py`, and the prompt's
//!   options in `ImageMCQDataset.build_prompt`): each column `A` … `Z` whose cell pandas does
//!   not read as missing (`not pd.isna(item[ch])`; [`super::python::pandas_missing`]: empty,
//!   `None`, `NA`, … are missing), its text as written, spaces included. An answer naming a
//!   missing option is never chosen, so the row counts as wrong (VLMEvalKit's decision).
//! - Prompt (`ImageMCQDataset.build_prompt`): `Hint: <hint>\n` when the `hint` cell is not
//!   missing, `Question: <question>\n`, then `Options:\n` and one `<letter>. <text>\n` per
//!   option and `Please select the correct answer from the options above. \n` (WeMath's prompt
//!   stops after the options).
//! - Answer: [`infer_choice`] (VLMEvalKit's `can_infer`, then the last `\boxed{}` where it would
//!   ask its judge) of the prediction ([`super::matching::scored_prediction`]); a hit when it
//!   is the `answer` letter.
//! - Tables (`report_acc`): per `split` (one table per value; one table when there is no
//!   `split` column) the accuracy overall, per `l2-category` and per `category`, each sorted.
//!   The headline is the accuracy over every row.

use std::collections::{BTreeSet, HashMap};

use seethink_data::TsvRow;

use super::matching::{infer_choice, Choice};
use super::summary::{ItemResult, Scores, Table, TableRow};
use super::tally::{percent_of, Tally};
use super::{pandas_cell, prediction, require};

/// The option columns of a row: its columns named by one upper-case letter, in letter order.
fn option_columns(row: &TsvRow) -> impl Iterator<Item = &str> {
    row.fields.keys().map(String::as_str).filter(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_uppercase())
}

/// The options of a row (see the module docs), in letter order.
pub fn choices(row: &TsvRow) -> Vec<Choice> {
    option_columns(row)
        .filter_map(|letter| Some((letter.to_string(), pandas_cell(row, letter)?.to_string())))
        .collect()
}

/// The row has options and its `answer` names an option column (one whose cell is missing
/// included: VLMEvalKit scores such a row, always wrong).
pub fn check(row: &TsvRow) -> Result<(), String> {
    let answer = require(row, "answer")?;
    if choices(row).is_empty() {
        return Err("no options (the cells of columns `A`, `B`, … are all missing)".into());
    }
    if !option_columns(row).any(|letter| letter == answer) {
        let letters: Vec<&str> = option_columns(row).collect();
        return Err(format!("answer `{answer}` is not one of the option columns {}", letters.join(", ")));
    }
    Ok(())
}

/// The prompt of the module docs; `instruction` adds the closing "Please select…" line.
pub fn prompt(row: &TsvRow, instruction: bool) -> String {
    let mut prompt = String::new();
    if let Some(hint) = pandas_cell(row, "hint") {
        prompt.push_str(&format!("Hint: {hint}\n"));
    }
    prompt.push_str(&format!("Question: {}\n", row.get("question").unwrap_or_default()));
    let options = choices(row);
    if !options.is_empty() {
        prompt.push_str("Options:\n");
        for (letter, text) in &options {
            prompt.push_str(&format!("{letter}. {text}\n"));
        }
        if instruction {
            prompt.push_str("Please select the correct answer from the options above. \n");
        }
    }
    prompt
}

/// The option a prediction ([`super::matching::scored_prediction`]) chooses and whether it is
/// the row's answer.
pub fn grade(row: &TsvRow, prediction: &str) -> ItemResult {
    let extracted = infer_choice(prediction, &choices(row));
    let correct = extracted.as_deref() == row.get("answer");
    ItemResult { index: row.index.clone(), extracted, correct }
}

/// Scores every row (see the module docs).
pub(crate) fn score(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let items: Vec<ItemResult> = rows.iter().map(|row| grade(row, prediction(predictions, row))).collect();
    let splits: BTreeSet<&str> = rows.iter().map(|r| r.get("split").unwrap_or("none")).collect();
    let tables = splits
        .into_iter()
        .map(|split| {
            let (mut overall, mut l2, mut category) = (Tally::default(), Tally::default(), Tally::default());
            for (row, item) in
                rows.iter().zip(&items).filter(|(r, _)| r.get("split").unwrap_or("none") == split)
            {
                overall.add("Overall", item.correct);
                if let Some(c) = row.get("l2-category") {
                    l2.add(c, item.correct);
                }
                if let Some(c) = row.get("category") {
                    category.add(c, item.correct);
                }
            }
            let rows: Vec<TableRow> = [overall.rows(), l2.rows(), category.rows()].concat();
            Table::single(&format!("accuracy (split `{split}`)"), "group", "accuracy", rows)
        })
        .collect();
    let hits = items.iter().filter(|i| i.correct).count();
    Scores { metric: "accuracy", score: percent_of(hits, items.len()), tables, items }
}

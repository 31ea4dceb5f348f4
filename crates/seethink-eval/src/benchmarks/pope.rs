//! POPE as VLMEvalKit scores it (`ImageYORNDataset.evaluate` with exact matching and
//! `POPE_rating` in `vlmeval/dataset/utils/yorn.py`).
//!
//! - Prompt: the question alone (`ImageBaseDataset.build_prompt`).
//! - Answer: [`yes_or_no`] (`YOrN_Extraction`) of the prediction
//!   ([`super::matching::scored_prediction`]); a hit when it equals the `answer`. VLMEvalKit
//!   asks a judge only for `Unknown` answers when one is configured, and compares `Yes`/`No`
//!   case-sensitively; here gold answers are read in any case (`yes`, `YES`) and anything other
//!   than yes/no is an error when loading.
//! - Metrics per split (the `category` column, a comma-separated list of splits) and `Overall`:
//!   with `yes` as the positive class, TP = gold yes and predicted yes, FP = gold no and
//!   predicted yes, FN = gold yes and predicted no or unknown; precision P = TP / (TP + FP),
//!   recall R = TP / (TP + FN), F1 = 2PR / (P + R) (each 0 when its denominator is 0), accuracy
//!   = hits / items. As in VLMEvalKit, a row listed under several splits counts once in each
//!   and as often in `Overall` (the rows are exploded by split before anything is counted).
//!   The headline is the `Overall` F1 (the column VLMEvalKit names `Overall`).

use std::collections::{BTreeMap, HashMap};

use seethink_data::TsvRow;

use super::matching::{yes_or_no, YesNo};
use super::summary::{ItemResult, Scores, Table, TableRow};
use super::{prediction, require};

/// The gold answer of a row: `Yes` or `No` in any case.
fn gold(row: &TsvRow) -> Result<YesNo, String> {
    match require(row, "answer")?.to_lowercase().as_str() {
        "yes" => Ok(YesNo::Yes),
        "no" => Ok(YesNo::No),
        other => Err(format!("answer `{other}` is neither yes nor no")),
    }
}

/// The row's answer is yes or no.
pub fn check(row: &TsvRow) -> Result<(), String> {
    gold(row).map(|_| ())
}

/// Counts of one split: (gold, predicted) pairs.
#[derive(Default)]
struct Confusion {
    pairs: Vec<(YesNo, YesNo)>,
}

impl Confusion {
    /// The split's row: items, then F1, accuracy, precision and recall in percent (see the
    /// module docs for the formulas).
    fn row(&self, name: &str) -> TableRow {
        let count = |gold: YesNo, predicted_yes: bool| {
            self.pairs.iter().filter(|(g, p)| *g == gold && (*p == YesNo::Yes) == predicted_yes).count()
        };
        let (tp, fp, fn_) = (count(YesNo::Yes, true), count(YesNo::No, true), count(YesNo::Yes, false));
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        let f1 =
            if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        let hits = self.pairs.iter().filter(|(g, p)| g == p).count();
        let accuracy = ratio(hits, self.pairs.len());
        TableRow::new(
            name,
            self.pairs.len(),
            vec![100.0 * f1, 100.0 * accuracy, 100.0 * precision, 100.0 * recall],
        )
    }
}

/// Scores every row (see the module docs).
pub(crate) fn score(rows: &[TsvRow], predictions: &HashMap<String, String>) -> Scores {
    let mut overall = Confusion::default();
    let mut splits: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let gold = gold(row).unwrap_or(YesNo::Unknown);
        let predicted = yes_or_no(prediction(predictions, row));
        let names: Vec<&str> = match row.get("category") {
            Some(list) => list.split(',').collect(),
            None => vec![],
        };
        for _ in 0..names.len().max(1) {
            overall.pairs.push((gold, predicted));
        }
        for name in names {
            splits.entry(name.to_string()).or_default().pairs.push((gold, predicted));
        }
        let extracted = (predicted != YesNo::Unknown).then(|| format!("{predicted:?}"));
        items.push(ItemResult { index: row.index.clone(), extracted, correct: predicted == gold });
    }
    let overall_row = overall.row("Overall");
    let score = overall_row.values[0];
    let mut table_rows = vec![overall_row];
    table_rows.extend(splits.iter().map(|(name, c)| c.row(name)));
    let table = Table {
        title: "per split (`yes` is the positive class)".into(),
        key: "split".into(),
        columns: ["F1", "accuracy", "precision", "recall"].map(String::from).to_vec(),
        rows: table_rows,
    };
    Scores { metric: "F1", score, tables: vec![table], items }
}

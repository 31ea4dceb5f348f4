//! Predictions: one model response per benchmark row, answered by a model ([`answer_rows`]),
//! written ([`write_predictions`]) and read back for offline scoring ([`read_predictions`]).
//!
//! Two file layouts, chosen by extension:
//! - `.tsv`: VLMEvalKit's output layout, a header with at least `index` and `prediction`
//!   (the benchmark's own columns may be there too and are ignored), one row per item;
//! - anything else: JSONL, one object per line with `index` (a string or a number) and
//!   `prediction` (a string); blank lines are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use seethink_data::Task;

use crate::error::{EvalError, Result};
use crate::runner::{Responder, Response};

use super::BenchmarkData;

/// One response of `responder` to each of `tasks` (a benchmark's [`BenchmarkData::tasks`],
/// perhaps rendered through a format prompt), by task id, the row's `index`: VLMEvalKit
/// answers every row once.
pub fn answer_rows<R: Responder + ?Sized>(
    responder: &mut R,
    tasks: &[Task],
) -> Result<HashMap<String, String>> {
    let responses = responder.respond(tasks, 1)?;
    if responses.len() != tasks.len() {
        let (expected, got) = (tasks.len(), responses.len());
        return Err(EvalError::ResponseCount { what: "tasks".into(), expected, got });
    }
    tasks
        .iter()
        .zip(responses)
        .map(|(task, group)| {
            let [response]: [Response; 1] = group.try_into().map_err(|group: Vec<Response>| {
                let what = format!("samples of task {}", task.id);
                EvalError::ResponseCount { what, expected: 1, got: group.len() }
            })?;
            Ok((task.id.clone(), response.text))
        })
        .collect()
}

/// Writes the prediction of every row of `data` (row index → response; rows without one are
/// left out) to `path` as JSONL in row order, the layout [`read_predictions`] reads. The file
/// appears whole or not at all (written to `<path>.partial`, then renamed).
pub fn write_predictions(
    path: &Path,
    data: &BenchmarkData,
    predictions: &HashMap<String, String>,
) -> Result<()> {
    let lines: String = data
        .rows
        .iter()
        .filter_map(|row| Some((row, predictions.get(&row.index)?)))
        .map(|(row, text)| serde_json::json!({ "index": row.index, "prediction": text }).to_string() + "\n")
        .collect();
    let partial = path.with_extension("partial");
    std::fs::write(&partial, lines).map_err(|source| EvalError::Io { path: partial.clone(), source })?;
    std::fs::rename(&partial, path).map_err(|source| EvalError::Io { path: path.to_path_buf(), source })
}

/// A prediction and the line it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// 1-based line of the file.
    pub line: u64,
    /// The model's response.
    pub text: String,
}

/// The predictions of a file, by row index.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// The file.
    pub path: PathBuf,
    /// Row index → prediction.
    pub by_index: HashMap<String, Prediction>,
}

fn error(path: &Path, line: Option<u64>, problem: String) -> EvalError {
    EvalError::Predictions { path: path.to_path_buf(), line, problem }
}

/// Reads a predictions file (layouts in the module docs). Errors name the file and line: an
/// unreadable file, a line that is not a JSON object, a missing or ill-typed `index` or
/// `prediction`, a TSV without those columns or with a row of the wrong width, an index given
/// twice.
pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.to_path_buf(), source })?;
    let pairs = match path.extension().and_then(|e| e.to_str()) {
        Some("tsv") => tsv_pairs(path, &text)?,
        _ => jsonl_pairs(path, &text)?,
    };
    let mut by_index: HashMap<String, Prediction> = HashMap::with_capacity(pairs.len());
    for (line, index, text) in pairs {
        if let Some(first) = by_index.get(&index) {
            let problem = format!("index `{index}` has a prediction already (line {})", first.line);
            return Err(error(path, Some(line), problem));
        }
        by_index.insert(index, Prediction { line, text });
    }
    Ok(Predictions { path: path.to_path_buf(), by_index })
}

/// (line, index, prediction) of each JSONL line.
fn jsonl_pairs(path: &Path, text: &str) -> Result<Vec<(u64, String, String)>> {
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| error(path, Some(n), format!("not a JSON object: {e}")))?;
        let object = value.as_object().ok_or_else(|| error(path, Some(n), "not a JSON object".into()))?;
        let index = match object.get("index") {
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(serde_json::Value::Number(x)) => x.to_string(),
            Some(other) => {
                return Err(error(
                    path,
                    Some(n),
                    format!("`index` is neither a string nor a number: {other}"),
                ))
            }
            None => return Err(error(path, Some(n), "missing key `index`".into())),
        };
        let prediction = match object.get("prediction") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(error(path, Some(n), format!("`prediction` is not a string: {other}")))
            }
            None => return Err(error(path, Some(n), "missing key `prediction`".into())),
        };
        pairs.push((n, index, prediction));
    }
    Ok(pairs)
}

/// (line, index, prediction) of each TSV row.
fn tsv_pairs(path: &Path, text: &str) -> Result<Vec<(u64, String, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let csv_error = |e: csv::Error| error(path, e.position().map(|p| p.line()), e.to_string());
    let header: Vec<String> = match records.next() {
        None => return Err(error(path, Some(1), "empty file: no header row".into())),
        Some(r) => r.map_err(csv_error)?.iter().map(|s| s.trim().to_string()).collect(),
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| error(path, Some(1), format!("missing column `{name}` in the header")))
    };
    let (index, prediction) = (column("index")?, column("prediction")?);
    records
        .map(|record| {
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != header.len() {
                let problem = format!("{} fields, but the header has {}", record.len(), header.len());
                return Err(error(path, Some(line), problem));
            }
            Ok((line, record[index].trim().to_string(), record[prediction].to_string()))
        })
        .collect()
}

/// How many missing indices an error lists.
const LISTED: usize = 5;

/// The prediction of every row of `data`, by row index. Errors when a prediction names an
/// index that is not in the benchmark (with its line) or when rows have no prediction (how
/// many, and the first few in file order).
pub fn match_rows(data: &BenchmarkData, predictions: &Predictions) -> Result<HashMap<String, String>> {
    let known: std::collections::HashSet<&str> = data.rows.iter().map(|r| r.index.as_str()).collect();
    let mut unknown: Vec<(&String, &Prediction)> =
        predictions.by_index.iter().filter(|(index, _)| !known.contains(index.as_str())).collect();
    unknown.sort_by_key(|(_, p)| p.line);
    if let Some((index, p)) = unknown.first() {
        let problem = format!(
            "index `{index}` is not in the {} benchmark {}{}",
            data.benchmark,
            data.path.display(),
            if unknown.len() > 1 { format!(" ({} such predictions)", unknown.len()) } else { String::new() }
        );
        return Err(error(&predictions.path, Some(p.line), problem));
    }
    let missing: Vec<&str> = data
        .rows
        .iter()
        .filter(|r| !predictions.by_index.contains_key(&r.index))
        .map(|r| r.index.as_str())
        .collect();
    if !missing.is_empty() {
        let first: Vec<String> = missing.iter().take(LISTED).map(|i| format!("`{i}`")).collect();
        let more = if missing.len() > LISTED { ", …" } else { "" };
        let problem = format!(
            "{} of the {} rows of {} have no prediction (first: {}{more})",
            missing.len(),
            data.rows.len(),
            data.path.display(),
            first.join(", ")
        );
        return Err(error(&predictions.path, None, problem));
    }
    Ok(predictions.by_index.iter().map(|(index, p)| (index.clone(), p.text.clone())).collect())
}

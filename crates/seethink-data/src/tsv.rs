//! Loader for VLMEvalKit benchmark TSV files (MMBench, MathVista, MathVerse, MMStar...).
//!
//! A header row, then one row per question, tab-separated, with pandas' quoting (fields holding
//! tabs, newlines or quotes are wrapped in `"` with `""` for a quote). Columns:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `index` | yes | question id, unique |
//! | `image` | yes | base64 image; a `['…', '…']` list of them; or, when ≤ 64 characters, the `index` of another row whose image it shares (VLMEvalKit's convention) |
//! | `question` | yes | question text |
//! | `answer` | yes | option letter for multiple choice, else the answer itself |
//! | `A`, `B`, … | no | option texts; empty or `nan` means no such option |
//! | `hint` | no | context prepended to the question |
//! | any other (`category`, …) | no | kept in `meta` |

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::synth::{ANSWER_SUFFIX, MCQ_SUFFIX};
use crate::{Capability, ImageRef, Task, IMAGE_MARKER};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use serde_json::{json, Map, Value};

use crate::error::{DataError, Result};

/// Base64 (standard alphabet) accepting padded and unpadded input.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest `image` field read as a reference to another row's image rather than as base64.
const MAX_IMAGE_REFERENCE_LEN: usize = 64;

/// How to turn rows into tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsvOptions {
    /// The capability every task is labelled with.
    pub capability: Capability,
    /// [`Task::source`] and id prefix; defaults to the file stem.
    pub source: Option<String>,
}

impl Default for TsvOptions {
    /// Visual reasoning (MathVista-style benchmarks), source from the file name.
    fn default() -> Self {
        TsvOptions { capability: Capability::VisualReasoning, source: None }
    }
}

/// One row of a VLMEvalKit TSV file, its images decoded and references resolved
/// ([`read_tsv`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsvRow {
    /// 1-based line on which the row starts.
    pub line: u64,
    /// The `index` column, trimmed.
    pub index: String,
    /// The decoded images, in order (a shared image is copied from the row it names).
    pub images: Vec<Vec<u8>>,
    /// Every other column by header name, as written (untrimmed; pandas' `nan` kept).
    pub fields: BTreeMap<String, String>,
}

impl TsvRow {
    /// The trimmed value of column `name`, unless the column is absent, empty or pandas' `nan`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|f| present(f))
    }
}

/// The image field of a row, before references are resolved.
enum ImageField {
    Decoded(Vec<Vec<u8>>),
    SameAs(String),
}

/// Reads the rows of a VLMEvalKit TSV file (format in the module docs), in file order.
///
/// The header must name `index`, `image` and every column of `required`. Errors name the file
/// and the line where the row starts: unreadable file, a missing header column, rows with a
/// different number of fields than the header, an empty or duplicate index, bad base64 or bytes
/// in no image format, an image reference to no row.
pub fn read_tsv(path: &Path, required: &[&str]) -> Result<Vec<TsvRow>> {
    let tsv_error = |line: u64, problem: String| DataError::Tsv { path: path.to_path_buf(), line, problem };
    let file =
        std::fs::File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut reader =
        csv::ReaderBuilder::new().delimiter(b'\t').has_headers(false).flexible(true).from_reader(file);
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        None => return Err(tsv_error(1, "empty file: no header row".into())),
        Some(r) => r
            .map_err(|e| tsv_error(csv_line(&e), e.to_string()))?
            .iter()
            .map(|s| s.trim().to_string())
            .collect(),
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| tsv_error(1, format!("missing column `{name}` in the header")))
    };
    let (index_column, image_column) = (column("index")?, column("image")?);
    for name in required {
        column(name)?;
    }
    let mut rows: Vec<(TsvRow, ImageField)> = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for record in records {
        let record = record.map_err(|e| tsv_error(csv_line(&e), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let fields: Vec<&str> = record.iter().collect();
        if fields.len() != header.len() {
            return Err(tsv_error(
                line,
                format!("{} fields, but the header has {}", fields.len(), header.len()),
            ));
        }
        let index = fields[index_column].trim().to_string();
        if index.is_empty() {
            return Err(tsv_error(line, "empty `index`".into()));
        }
        let image = parse_image(fields[image_column].trim()).map_err(|p| tsv_error(line, p))?;
        if let Some(first) = first_line.insert(index.clone(), line) {
            return Err(tsv_error(line, format!("duplicate index `{index}` (first on line {first})")));
        }
        let fields = header
            .iter()
            .zip(&fields)
            .enumerate()
            .filter(|&(i, _)| i != image_column && i != index_column)
            .map(|(_, (name, value))| (name.clone(), value.to_string()))
            .collect();
        rows.push((TsvRow { line, index, images: Vec::new(), fields }, image));
    }
    let decoded: HashMap<String, Vec<Vec<u8>>> = rows
        .iter()
        .filter_map(|(row, image)| match image {
            ImageField::Decoded(images) => Some((row.index.clone(), images.clone())),
            ImageField::SameAs(_) => None,
        })
        .collect();
    rows.into_iter()
        .map(|(row, image)| {
            let images = match image {
                ImageField::Decoded(images) => images,
                ImageField::SameAs(other) => decoded.get(&other).cloned().ok_or_else(|| {
                    tsv_error(
                        row.line,
                        format!("image `{other}` is neither base64 nor the index of a row with an image"),
                    )
                })?,
            };
            Ok(TsvRow { images, ..row })
        })
        .collect()
}

/// Loads a VLMEvalKit TSV benchmark (format in the module docs) as tasks, in file order.
///
/// Each task: id `<source>-<index>`; prompt = one `<image>` line per image, `Hint: <hint>`
/// line when there is a hint, the question, then for multiple choice (any option non-empty)
/// one `<letter>. <text>` line per non-empty option and the instruction to box the letter,
/// else the instruction to box the answer; images as [`ImageRef::Bytes`]; answer the option
/// letter (which must name a non-empty option) or the answer text as-is (whitespace trimmed);
/// no level; `meta` holds `index`, `hint`, `options` (letter → text) and every other column.
///
/// Errors name the file and the line where the row starts: those of [`read_tsv`], a missing
/// `question` or `answer` column, an empty question or answer, an answer letter that is not an
/// option.
pub fn load_tsv(path: &Path, options: &TsvOptions) -> Result<Vec<Task>> {
    let source = options.source.clone().unwrap_or_else(|| {
        path.file_stem().map_or_else(|| "tsv".to_string(), |s| s.to_string_lossy().into_owned())
    });
    read_tsv(path, &["question", "answer"])?
        .into_iter()
        .map(|row| {
            row_task(&row, &source, options.capability).map_err(|problem| DataError::Tsv {
                path: path.to_path_buf(),
                line: row.line,
                problem,
            })
        })
        .collect()
}

/// The option columns of a row (single upper-case letters), in letter order, with their text
/// when present.
pub fn row_options(row: &TsvRow) -> Vec<(String, String)> {
    row.fields
        .keys()
        .filter(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_uppercase())
        .filter_map(|letter| row.get(letter).map(|text| (letter.clone(), text.to_string())))
        .collect()
}

/// One row as a task (see [`load_tsv`]).
fn row_task(row: &TsvRow, source: &str, capability: Capability) -> std::result::Result<Task, String> {
    let question = row.fields.get("question").map_or("", |q| q.trim());
    if question.is_empty() {
        return Err("empty `question`".into());
    }
    let answer = row.fields.get("answer").map_or("", |a| a.trim());
    if answer.is_empty() {
        return Err("empty `answer`".into());
    }
    let hint = row.get("hint");
    let present_options = row_options(row);
    let mut prompt = format!("{IMAGE_MARKER}\n").repeat(row.images.len());
    if let Some(h) = hint {
        prompt.push_str(&format!("Hint: {h}\n"));
    }
    prompt.push_str(question);
    if present_options.is_empty() {
        prompt.push_str(&format!("\n{ANSWER_SUFFIX}"));
    } else {
        for (letter, text) in &present_options {
            prompt.push_str(&format!("\n{letter}. {text}"));
        }
        prompt.push_str(&format!("\n{MCQ_SUFFIX}"));
        let letters: Vec<&str> = present_options.iter().map(|(l, _)| l.as_str()).collect();
        if !letters.contains(&answer) {
            return Err(format!("answer `{answer}` is not one of the options {}", letters.join(", ")));
        }
    }
    let mut meta = Map::new();
    meta.insert("index".into(), json!(row.index));
    if let Some(h) = hint {
        meta.insert("hint".into(), json!(h));
    }
    let option_map: Map<String, Value> = present_options.iter().map(|(l, t)| (l.clone(), json!(t))).collect();
    meta.insert("options".into(), Value::Object(option_map));
    let option_column = |n: &str| n.len() == 1 && n.as_bytes()[0].is_ascii_uppercase();
    for (name, value) in &row.fields {
        if !["question", "answer", "hint"].contains(&name.as_str()) && !option_column(name) {
            meta.insert(name.clone(), json!(value));
        }
    }
    meta.insert("line".into(), json!(row.line));
    Ok(Task {
        id: format!("{source}-{}", row.index),
        prompt,
        images: row.images.iter().cloned().map(ImageRef::Bytes).collect(),
        answer: answer.to_string(),
        capability,
        level: None,
        pass_rate: None,
        source: source.to_string(),
        meta: Value::Object(meta),
    })
}

/// An `image` field: a reference (≤ 64 characters, not a list), a `['…', …]` list of base64
/// images, or one base64 image; every decoded image must be in a known format.
fn parse_image(field: &str) -> std::result::Result<ImageField, String> {
    if field.is_empty() {
        return Err("empty `image`".into());
    }
    if field.starts_with('[') {
        let list: Vec<String> = serde_json::from_str(&field.replace('\'', "\""))
            .map_err(|e| format!("`image` looks like a list but is not a list of strings: {e}"))?;
        if list.is_empty() {
            return Err("`image` is an empty list".into());
        }
        return list
            .iter()
            .enumerate()
            .map(|(i, b)| decode(b, &format!("image {i} of the list")))
            .collect::<std::result::Result<_, _>>()
            .map(ImageField::Decoded);
    }
    if field.len() <= MAX_IMAGE_REFERENCE_LEN {
        return Ok(ImageField::SameAs(field.to_string()));
    }
    Ok(ImageField::Decoded(vec![decode(field, "`image`")?]))
}

/// Decodes base64 `text` and checks the bytes are an image; `what` labels errors.
fn decode(text: &str, what: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = BASE64.decode(text.trim()).map_err(|e| format!("{what}: bad base64: {e}"))?;
    image::guess_format(&bytes)
        .map_err(|_| format!("{what}: the decoded bytes are in no known image format"))?;
    Ok(bytes)
}

/// The trimmed field, unless it is empty or pandas' `nan`.
fn present(field: &str) -> Option<&str> {
    let t = field.trim();
    (!t.is_empty() && t != "nan" && t != "NaN").then_some(t)
}

/// The line a csv error occurred on (0 when unknown).
fn csv_line(e: &csv::Error) -> u64 {
    e.position().map_or(0, |p| p.line())
}

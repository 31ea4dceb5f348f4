//! EasyR1-style JSONL data sets: one JSON object per line.
//!
//! A record holds the prompt under [`JsonlKeys::prompt`] (default `problem`), the answer under
//! [`JsonlKeys::answer`] (default `answer`) and optionally a list of images under
//! [`JsonlKeys::images`] (default `images`): paths, or HF-datasets-style objects
//! `{"bytes": <base64>, "path": ...}` with the encoded image embedded. Relative image paths are
//! resolved against the directory of the JSONL file. The optional keys `id`, `capability`, `level`,
//! `pass_rate` (`difficulty` in files of earlier seethink versions), `source` and `meta` carry the
//! rest of a [`Task`]; other keys are ignored.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::prelude::{Engine, BASE64_STANDARD};
use serde_json::{Map, Value};

use crate::error::{DataError, LineProblem, Result};
use crate::task::{count_image_markers, Capability, ImageRef, Task, IMAGE_MARKER};

/// Key of the optional task id.
pub const ID_KEY: &str = "id";
/// Key of the optional capability (`perception`, `text_reasoning`, `visual_reasoning`).
pub const CAPABILITY_KEY: &str = "capability";
/// Key of the optional generator level (non-negative integer).
pub const LEVEL_KEY: &str = "level";
/// Key of the optional pass rate (number in `[0, 1]`).
pub const PASS_RATE_KEY: &str = "pass_rate";
/// Key of the optional source name.
pub const SOURCE_KEY: &str = "source";
/// Key of the optional free-form metadata.
pub const META_KEY: &str = "meta";

/// The configurable keys of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonlKeys {
    /// Key of the prompt string (EasyR1 default `problem`).
    pub prompt: String,
    /// Key of the answer (EasyR1 default `answer`).
    pub answer: String,
    /// Key of the list of image paths (EasyR1 default `images`).
    pub images: String,
}

impl Default for JsonlKeys {
    fn default() -> Self {
        JsonlKeys { prompt: "problem".into(), answer: "answer".into(), images: "images".into() }
    }
}

/// How [`load_jsonl_with`] treats a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The record keys.
    pub keys: JsonlKeys,
    /// Skip malformed lines, reporting each in [`Loaded::skipped`], instead of failing on the
    /// first one.
    pub skip_invalid: bool,
    /// Capability of records without a `capability` key; `None` makes such records an error.
    pub default_capability: Option<Capability>,
}

/// A line that [`load_jsonl_with`] skipped because it was malformed.
#[derive(Debug)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was skipped (a [`DataError::Line`] naming the file and line).
    pub error: DataError,
}

/// The outcome of [`load_jsonl_with`].
#[derive(Debug)]
pub struct Loaded {
    /// The tasks, in file order.
    pub tasks: Vec<Task>,
    /// Lines skipped under [`LoadOptions::skip_invalid`], in file order.
    pub skipped: Vec<SkippedLine>,
    /// Indices into `tasks` of the records without a `capability`, which took
    /// [`LoadOptions::default_capability`], ascending.
    pub without_capability: Vec<usize>,
}

/// Loads every record of `path`, failing on the first malformed line; records need a
/// `capability` key. See [`load_jsonl_with`] for the rules.
pub fn load_jsonl(path: &Path, keys: &JsonlKeys) -> Result<Vec<Task>> {
    let options = LoadOptions { keys: keys.clone(), ..LoadOptions::default() };
    Ok(load_jsonl_with(path, &options)?.tasks)
}

/// Loads the records of `path`.
///
/// Rules, per non-blank line (blank lines hold no record):
/// - the prompt is a required string; the answer a required string or number (a number is kept
///   as its JSON text);
/// - images are an optional array of path strings, relative ones resolved against the JSONL
///   file's directory, each of which must be an existing file;
/// - the prompt must contain one `<image>` marker per image, or none, in which case one marker
///   per image is prepended (followed by a newline), as chat templates place images first;
/// - `id` (string or integer) defaults to `<file stem>-<line>` and must be unique; `capability`
///   defaults to [`LoadOptions::default_capability`]; `level` is a non-negative integer,
///   `pass_rate` (or `difficulty`) a number in `[0, 1]` (both optional, `null` = absent);
///   `source` defaults to the
///   file name; `meta` to `null`.
///
/// A malformed line is an error naming the file and line, or with
/// [`LoadOptions::skip_invalid`] is reported in [`Loaded::skipped`].
pub fn load_jsonl_with(path: &Path, options: &LoadOptions) -> Result<Loaded> {
    let text =
        fs::read_to_string(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, raw)| !raw.trim().is_empty())
        .map(|(index, raw)| (index + 1, parse_json_object(raw)));
    load_records(path, records, options)
}

/// Turns numbered records (line numbers for JSONL, row numbers for Parquet) into tasks with the
/// rules of [`load_jsonl_with`]: ids unique, bad records an error naming file and number (or
/// skipped and reported with [`LoadOptions::skip_invalid`]).
pub(crate) fn load_records(
    path: &Path,
    records: impl Iterator<Item = (usize, std::result::Result<Map<String, Value>, LineProblem>)>,
    options: &LoadOptions,
) -> Result<Loaded> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    let mut loaded = Loaded { tasks: Vec::new(), skipped: Vec::new(), without_capability: Vec::new() };
    for (line, record) in records {
        let context = LineContext { line, dir, file_name: &file_name, stem: &stem, options };
        let parsed =
            record.and_then(|r| parse_record(r, &context)).and_then(
                |(task, defaulted)| match first_line_of_id.get(&task.id) {
                    Some(&first_line) => Err(LineProblem::DuplicateId { id: task.id.clone(), first_line }),
                    None => Ok((task, defaulted)),
                },
            );
        match parsed {
            Ok((task, defaulted)) => {
                first_line_of_id.insert(task.id.clone(), line);
                if defaulted {
                    loaded.without_capability.push(loaded.tasks.len());
                }
                loaded.tasks.push(task);
            }
            Err(problem) => {
                let error = DataError::Line { path: path.to_path_buf(), line, problem };
                if !options.skip_invalid {
                    return Err(error);
                }
                loaded.skipped.push(SkippedLine { line, error });
            }
        }
    }
    Ok(loaded)
}

/// Writes `tasks` to `path` (overwriting it), one record per line with keys in sorted order.
///
/// Image paths inside the JSONL file's directory are written relative to it, others as
/// absolute paths, so [`load_jsonl`] resolves them to the same files. Tasks with in-memory
/// [`ImageRef::Bytes`] images, non-UTF-8 image paths, or a prompt whose `<image>` markers do not
/// match its images cannot be written.
pub fn write_jsonl(path: &Path, tasks: &[Task], keys: &JsonlKeys) -> Result<()> {
    let io_error = |source| DataError::Io { path: path.to_path_buf(), source };
    let dir = std::path::absolute(path.parent().unwrap_or(Path::new(""))).map_err(io_error)?;
    let mut out = String::new();
    for task in tasks {
        let record = to_record(task, keys, &dir)?;
        out.push_str(&Value::Object(record).to_string());
        out.push('\n');
    }
    let mut file = fs::File::create(path).map_err(io_error)?;
    file.write_all(out.as_bytes()).map_err(io_error)?;
    Ok(())
}

/// Per-record inputs of [`parse_record`].
struct LineContext<'a> {
    line: usize,
    dir: &'a Path,
    file_name: &'a str,
    stem: &'a str,
    options: &'a LoadOptions,
}

fn parse_json_object(raw: &str) -> std::result::Result<Map<String, Value>, LineProblem> {
    let value: Value = serde_json::from_str(raw).map_err(|e| LineProblem::BadJson(e.to_string()))?;
    match value {
        Value::Object(record) => Ok(record),
        other => Err(LineProblem::BadJson(format!("expected a JSON object, found {}", describe(&other)))),
    }
}

/// The task of `record`, and whether its capability is [`LoadOptions::default_capability`]
/// for want of its own.
fn parse_record(
    record: Map<String, Value>,
    cx: &LineContext<'_>,
) -> std::result::Result<(Task, bool), LineProblem> {
    let keys = &cx.options.keys;
    let prompt = required_string(&record, &keys.prompt)?;
    let answer = match present(&record, &keys.answer) {
        None => return Err(LineProblem::MissingKey(keys.answer.clone())),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(wrong_type(&keys.answer, "a string or number", other)),
    };
    let images = parse_images(&record, &keys.images, cx.dir)?;
    let prompt = place_markers(prompt, images.len())?;
    let id = match present(&record, ID_KEY) {
        None => format!("{}-{}", cx.stem, cx.line),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(other) => return Err(wrong_type(ID_KEY, "a string or integer", other)),
    };
    let defaulted = present(&record, CAPABILITY_KEY).is_none();
    let capability = match present(&record, CAPABILITY_KEY) {
        None => {
            cx.options.default_capability.ok_or_else(|| LineProblem::MissingKey(CAPABILITY_KEY.into()))?
        }
        Some(Value::String(s)) => s.parse().map_err(LineProblem::UnknownCapability)?,
        Some(other) => return Err(wrong_type(CAPABILITY_KEY, "a string", other)),
    };
    let level = match present(&record, LEVEL_KEY) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| wrong_type(LEVEL_KEY, "a non-negative 32-bit integer", v))?,
        ),
    };
    // EasyR1's released data call the pass rate `pass_rate`; earlier seethink wrote `difficulty`
    let pass_rate =
        match [PASS_RATE_KEY, "difficulty"].into_iter().find_map(|k| Some((k, present(&record, k)?))) {
            None => None,
            Some((key, v)) => {
                let d = v.as_f64().ok_or_else(|| wrong_type(key, "a number", v))?;
                if !(0.0..=1.0).contains(&d) {
                    return Err(LineProblem::InvalidValue {
                        key: key.into(),
                        reason: format!("pass rate {d} is outside [0, 1]"),
                    });
                }
                Some(d)
            }
        };
    let source = match present(&record, SOURCE_KEY) {
        None => cx.file_name.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type(SOURCE_KEY, "a string", other)),
    };
    let meta = record.get(META_KEY).cloned().unwrap_or(Value::Null);
    Ok((Task { id, prompt, images, answer, capability, level, pass_rate, source, meta }, defaulted))
}

/// The value under `key`, treating `null` as absent.
fn present<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    record.get(key).filter(|v| !v.is_null())
}

fn required_string(record: &Map<String, Value>, key: &str) -> std::result::Result<String, LineProblem> {
    match present(record, key) {
        None => Err(LineProblem::MissingKey(key.into())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(key, "a string", other)),
    }
}

fn parse_images(
    record: &Map<String, Value>,
    key: &str,
    dir: &Path,
) -> std::result::Result<Vec<ImageRef>, LineProblem> {
    let Some(value) = present(record, key) else {
        return Ok(Vec::new());
    };
    let expected = "an array of paths or {\"bytes\": base64, \"path\": ...} objects";
    let Value::Array(items) = value else {
        return Err(wrong_type(key, expected, value));
    };
    let mut images = Vec::with_capacity(items.len());
    for item in items {
        let path = match item {
            Value::String(s) => s,
            Value::Object(o) => match (present(o, "bytes"), present(o, "path")) {
                (Some(Value::String(b64)), _) => {
                    let bytes = BASE64_STANDARD.decode(b64).map_err(|e| LineProblem::InvalidValue {
                        key: key.into(),
                        reason: format!("image bytes are not base64: {e}"),
                    })?;
                    images.push(ImageRef::Bytes(bytes));
                    continue;
                }
                (None, Some(Value::String(p))) => p,
                _ => return Err(wrong_type(key, expected, item)),
            },
            _ => return Err(wrong_type(key, expected, item)),
        };
        let resolved = dir.join(path);
        if !resolved.is_file() {
            return Err(LineProblem::MissingImage(resolved));
        }
        images.push(ImageRef::Path(resolved));
    }
    Ok(images)
}

/// Applies the marker rule of [`load_jsonl_with`]: keep the prompt when its marker count equals
/// `images`, prepend `images` markers when it has none, reject anything else.
fn place_markers(prompt: String, images: usize) -> std::result::Result<String, LineProblem> {
    let markers = count_image_markers(&prompt);
    if markers == images {
        Ok(prompt)
    } else if markers == 0 {
        Ok(format!("{}\n{prompt}", IMAGE_MARKER.repeat(images)))
    } else {
        Err(LineProblem::ImageMarkers { markers, images })
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> LineProblem {
    LineProblem::WrongType { key: key.into(), expected, found: describe(found) }
}

/// A short description of a JSON value for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a long string".into(),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn to_record(task: &Task, keys: &JsonlKeys, dir: &Path) -> Result<Map<String, Value>> {
    let unwritable = |reason: String| DataError::Unwritable { id: task.id.clone(), reason };
    let markers = count_image_markers(&task.prompt);
    if markers != task.images.len() {
        return Err(unwritable(format!(
            "prompt has {markers} `<image>` markers but the task has {} images",
            task.images.len()
        )));
    }
    let mut record = Map::new();
    record.insert(ID_KEY.into(), task.id.clone().into());
    record.insert(keys.prompt.clone(), task.prompt.clone().into());
    record.insert(keys.answer.clone(), task.answer.clone().into());
    if !task.images.is_empty() {
        let mut paths = Vec::with_capacity(task.images.len());
        for (i, image) in task.images.iter().enumerate() {
            let ImageRef::Path(p) = image else {
                return Err(unwritable(format!(
                    "image {i} is in-memory bytes; JSONL stores paths, save it to a file first"
                )));
            };
            paths.push(relative_path(p, dir).map_err(&unwritable)?);
        }
        record.insert(keys.images.clone(), paths.into());
    }
    record.insert(CAPABILITY_KEY.into(), task.capability.as_str().into());
    if let Some(level) = task.level {
        record.insert(LEVEL_KEY.into(), level.into());
    }
    if let Some(pass_rate) = task.pass_rate {
        if !(0.0..=1.0).contains(&pass_rate) {
            return Err(unwritable(format!("pass rate {pass_rate} is not in [0, 1]")));
        }
        record.insert(PASS_RATE_KEY.into(), pass_rate.into());
    }
    record.insert(SOURCE_KEY.into(), task.source.clone().into());
    if !task.meta.is_null() {
        record.insert(META_KEY.into(), task.meta.clone());
    }
    Ok(record)
}

/// `path` relative to the absolute directory `dir` when inside it, else absolute.
fn relative_path(path: &Path, dir: &Path) -> std::result::Result<String, String> {
    let absolute: PathBuf =
        std::path::absolute(path).map_err(|e| format!("cannot make {} absolute: {e}", path.display()))?;
    let written = absolute.strip_prefix(dir).unwrap_or(&absolute);
    written.to_str().map(str::to_string).ok_or_else(|| format!("image path {} is not UTF-8", path.display()))
}

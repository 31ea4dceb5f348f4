//! EasyR1 / HF-datasets Parquet files: the same records as the JSONL loader, one per row.
//!
//! Each row is converted to a JSON object (binary columns become base64 strings, so an HF
//! `Image` column — a list of `{bytes, path}` structs — becomes embedded image bytes) and read
//! with the rules of [`crate::easyr1::load_jsonl_with`]; errors name the file and the 1-based
//! row number. Snappy-compressed and uncompressed files are supported.

use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::easyr1::{load_records, JsonlKeys, LoadOptions, Loaded};
use crate::error::{DataError, LineProblem, Result};
use crate::task::Task;

/// Loads every row of a Parquet file as a [`Task`]; any bad row is an error.
pub fn load_parquet(path: &Path, keys: &JsonlKeys) -> Result<Vec<Task>> {
    let options = LoadOptions { keys: keys.clone(), ..Default::default() };
    Ok(load_parquet_with(path, &options)?.tasks)
}

/// Loads a Parquet file with `options` (keys, skipping invalid rows, default capability).
pub fn load_parquet_with(path: &Path, options: &LoadOptions) -> Result<Loaded> {
    let file = File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let invalid = |e: parquet::errors::ParquetError| DataError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a readable Parquet file: {e}"),
        ),
    };
    let reader = SerializedFileReader::new(file).map_err(invalid)?;
    let rows = reader.get_row_iter(None).map_err(invalid)?;
    let records = rows.enumerate().map(|(index, row)| {
        let record = row.map_err(|e| LineProblem::BadJson(format!("unreadable row: {e}"))).and_then(|row| {
            match row.to_json_value() {
                Value::Object(map) => Ok(map),
                other => Err(LineProblem::BadJson(format!("row is not a record: {other}"))),
            }
        });
        (index + 1, record)
    });
    load_records(path, records, options)
}

//! A resumable command's cache of finished work: a JSONL file whose first line records the
//! settings the work was done with, then one record per finished item, appended and flushed as
//! each finishes (`seethink passrate`, `seethink perception-data`). A rerun with the same
//! settings reads the records and does only the rest; with other settings it is refused, naming
//! the file. A last line cut by a kill is dropped (that item is done again).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// An open cache: records are appended to its file.
pub struct JsonlCache {
    path: PathBuf,
    file: File,
}

impl JsonlCache {
    /// Opens (or starts) the cache at `path` for work done with `settings`: returns it and the
    /// records already there that `keep` accepts (in file order). The file is rewritten with
    /// the settings line and those records, so a cut last line is gone before appending.
    pub fn open(path: &Path, settings: &Value, keep: impl Fn(&Value) -> bool) -> Result<(Self, Vec<Value>)> {
        let records: Vec<Value> = read(path, settings)?.into_iter().filter(|r| keep(r)).collect();
        let mut text = format!("{settings}\n");
        for record in &records {
            text.push_str(&format!("{record}\n"));
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok((Self { path: path.to_path_buf(), file }, records))
    }

    /// Appends `record` and flushes it.
    pub fn append(&mut self, record: &Value) -> Result<()> {
        writeln!(self.file, "{record}")
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// The unfinished items `indices` (ascending) cut into runs of consecutive indices of at most
/// `max` each: the batches a resumed command answers, each starting where an uninterrupted one's
/// item would.
pub fn unfinished_runs(indices: &[usize], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for &i in indices {
        match runs.last_mut() {
            Some(run) if run.end == i && run.len() < max => run.end += 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

/// The records of the cache at `path` (none when it does not exist or is empty); an error when
/// its settings line differs from `settings` or a line other than the last is not JSON.
fn read(path: &Path, settings: &Value) -> Result<Vec<Value>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    let lines: Vec<&str> = text.lines().collect();
    let Some(first) = lines.first() else { return Ok(Vec::new()) };
    let cached: Value =
        serde_json::from_str(first).with_context(|| format!("{}: line 1 is not JSON", path.display()))?;
    if &cached != settings {
        bail!(
            "{} was written with other settings ({cached}); now: {settings}. Delete it or choose another --out",
            path.display()
        );
    }
    let mut records = Vec::with_capacity(lines.len() - 1);
    for (i, line) in lines.iter().enumerate().skip(1) {
        match serde_json::from_str(line) {
            Ok(record) => records.push(record),
            // a line cut by a kill is the last one: its item is done again
            Err(_) if i + 1 == lines.len() => break,
            Err(e) => bail!("{}: line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::JsonlCache;

    #[test]
    fn records_survive_a_cut_last_line_and_other_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.jsonl");
        let settings = json!({ "k": 4 });
        let (mut cache, records) = JsonlCache::open(&path, &settings, |_| true).unwrap();
        assert!(records.is_empty());
        cache.append(&json!({ "id": "a" })).unwrap();
        cache.append(&json!({ "id": "b" })).unwrap();
        drop(cache);
        // a kill mid-line
        let text = std::fs::read_to_string(&path).unwrap() + "{\"id\": \"c";
        std::fs::write(&path, text).unwrap();
        let (_, records) = JsonlCache::open(&path, &settings, |r| r["id"] != "a").unwrap();
        assert_eq!(records, vec![json!({ "id": "b" })]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"k\":4}\n{\"id\":\"b\"}\n");
        let error = JsonlCache::open(&path, &json!({ "k": 5 }), |_| true).err().unwrap().to_string();
        assert!(error.contains("cache.jsonl was written with other settings"), "{error}");
        std::fs::write(&path, "{\"k\":4}\nnot json\n{\"id\":\"d\"}\n").unwrap();
        let error = JsonlCache::open(&path, &settings, |_| true).err().unwrap().to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}

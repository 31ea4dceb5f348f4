//! Counting hits per group into accuracy table rows.

use std::collections::BTreeMap;

use super::summary::TableRow;

/// Hits and totals per group name (groups listed by name).
#[derive(Default)]
pub(crate) struct Tally(BTreeMap<String, (usize, usize)>);

impl Tally {
    /// Counts one item of `group`, a hit or not.
    pub(crate) fn add(&mut self, group: &str, hit: bool) {
        let entry = self.0.entry(group.to_string()).or_default();
        entry.0 += usize::from(hit);
        entry.1 += 1;
    }

    /// One row per group: its item count and accuracy = 100 · hits / items.
    pub(crate) fn rows(&self) -> Vec<TableRow> {
        self.0.iter().map(|(name, &(hits, n))| TableRow::new(name, n, vec![percent_of(hits, n)])).collect()
    }
}

/// 100 · `part` / `whole` (0 when `whole` is 0).
pub(crate) fn percent_of(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

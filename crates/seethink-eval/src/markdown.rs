//! Formatting shared by the markdown tables of reports and attributions.

/// The name of a level in tables: its number, or `none`.
pub(crate) fn level_name(level: Option<u32>) -> String {
    level.map_or_else(|| "none".to_string(), |l| l.to_string())
}

/// A percentage with one decimal.
pub(crate) fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

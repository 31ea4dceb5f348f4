//! Benchmark reports: each benchmark's tables and headline score, and the paper's averages over
//! them, as JSON and markdown.
//!
//! The paper averages each group's benchmarks (visual math: MathVista, MathVision, MathVerse,
//! WeMath; perception: A-OKVQA, RealWorldQA, MMStar, POPE) and reports the mean of the two
//! group averages as "overall": its Qwen3-VL-8B rows satisfy it to the rounding, e.g. base
//! (45.17 + 79.21) / 2 = 62.19, staged (51.10 + 80.44) / 2 = 65.77. With four benchmarks in
//! each group that is also the mean of the eight.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Benchmark, Group};
use crate::error::{EvalError, Result};

/// One row of a table: a group of items (or a metric) and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    /// The group (`Overall`, a category, a split…) or the metric.
    pub name: String,
    /// Items counted in the row (for a metric row: the items it is computed over).
    pub items: usize,
    /// The values, one per column of the table (percent for rates).
    pub values: Vec<f64>,
}

impl TableRow {
    /// A row named `name` over `items` items.
    pub fn new(name: &str, items: usize, values: Vec<f64>) -> TableRow {
        TableRow { name: name.to_string(), items, values }
    }
}

/// A table of a benchmark's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Its title (`per category`, `four-dimensional metric`…).
    pub title: String,
    /// The heading of the name column.
    pub key: String,
    /// The headings of the value columns.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<TableRow>,
}

impl Table {
    /// A table of one value column.
    pub fn single(title: &str, key: &str, column: &str, rows: Vec<TableRow>) -> Table {
        Table { title: title.into(), key: key.into(), columns: vec![column.into()], rows }
    }
}

/// How one item was scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    /// The row's `index`.
    pub index: String,
    /// The answer read from the response (an option letter, `Yes`/`No`, the boxed answer…);
    /// `None` when none was found.
    pub extracted: Option<String>,
    /// Whether it scored as correct.
    pub correct: bool,
}

/// One benchmark's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkReport {
    /// The benchmark.
    pub benchmark: Benchmark,
    /// The TSV file it was read from.
    pub data: String,
    /// The metric the paper's averages take ([`Benchmark::scoring`]'s first).
    pub metric: String,
    /// Its value, in percent.
    pub score: f64,
    /// The benchmark's tables, as VLMEvalKit reports them.
    pub tables: Vec<Table>,
    /// Every item's result, in file order.
    pub items: Vec<ItemResult>,
}

/// What a benchmark's scorer computes: the report without the benchmark and data file.
pub(crate) struct Scores {
    /// [`BenchmarkReport::metric`].
    pub(crate) metric: &'static str,
    /// [`BenchmarkReport::score`].
    pub(crate) score: f64,
    /// [`BenchmarkReport::tables`].
    pub(crate) tables: Vec<Table>,
    /// [`BenchmarkReport::items`].
    pub(crate) items: Vec<ItemResult>,
}

impl BenchmarkReport {
    /// The report as markdown: a heading with the headline score, then each table.
    pub fn to_markdown(&self) -> String {
        let correct = self.items.iter().filter(|i| i.correct).count();
        let mut md = format!(
            "### {} ({})\n\n{}: **{:.2}** ({} items, {correct} correct; `{}`)\n",
            self.benchmark,
            self.benchmark.group().name(),
            self.metric,
            self.score,
            self.items.len(),
            self.data
        );
        for table in &self.tables {
            let _ = write!(md, "\n{}:\n\n| {} | items |", table.title, table.key);
            for c in &table.columns {
                let _ = write!(md, " {c} |");
            }
            md.push_str("\n|---|---|");
            md.push_str(&"---|".repeat(table.columns.len()));
            md.push('\n');
            for row in &table.rows {
                let _ = write!(md, "| {} | {} |", row.name, row.items);
                for v in &row.values {
                    let _ = write!(md, " {v:.2} |");
                }
                md.push('\n');
            }
        }
        md
    }
}

/// The average of one group's benchmarks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupAverage {
    /// The group.
    pub group: Group,
    /// Mean of the headline scores of the group's benchmarks that were scored, in percent.
    pub mean: f64,
    /// The benchmarks averaged.
    pub benchmarks: Vec<Benchmark>,
    /// The group's benchmarks in the paper's average that were not scored (the mean is then
    /// not the paper's).
    pub missing: Vec<Benchmark>,
}

/// The paper's averages (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// Visual math: MathVista, MathVision, MathVerse, WeMath.
    pub visual_math: Option<GroupAverage>,
    /// Perception: A-OKVQA, RealWorldQA, MMStar, POPE.
    pub perception: Option<GroupAverage>,
    /// (visual math + perception) / 2, when both groups have a benchmark.
    pub overall: Option<f64>,
}

impl Averages {
    /// The averages of `reports` over the benchmarks in the paper's averages
    /// ([`Benchmark::in_paper_average`]): per group the mean of their scores, and overall the
    /// mean of the two group means.
    pub fn of(reports: &[BenchmarkReport]) -> Averages {
        let group = |group: Group| {
            let scored: Vec<&BenchmarkReport> = reports
                .iter()
                .filter(|r| r.benchmark.group() == group && r.benchmark.in_paper_average())
                .collect();
            if scored.is_empty() {
                return None;
            }
            let benchmarks: Vec<Benchmark> = scored.iter().map(|r| r.benchmark).collect();
            let missing = Benchmark::ALL
                .into_iter()
                .filter(|b| b.group() == group && b.in_paper_average() && !benchmarks.contains(b))
                .collect();
            let mean = scored.iter().map(|r| r.score).sum::<f64>() / scored.len() as f64;
            Some(GroupAverage { group, mean, benchmarks, missing })
        };
        let (visual_math, perception) = (group(Group::VisualMath), group(Group::Perception));
        let overall = match (&visual_math, &perception) {
            (Some(v), Some(p)) => Some((v.mean + p.mean) / 2.0),
            _ => None,
        };
        Averages { visual_math, perception, overall }
    }
}

/// The scores of one or more benchmarks with the paper's averages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// Each benchmark's report, in the order scored.
    pub benchmarks: Vec<BenchmarkReport>,
    /// The paper's averages over them.
    pub averages: Averages,
}

impl SuiteReport {
    /// The reports with their averages ([`Averages::of`]). Errors when a benchmark is scored
    /// twice.
    pub fn new(benchmarks: Vec<BenchmarkReport>) -> Result<SuiteReport> {
        for (i, r) in benchmarks.iter().enumerate() {
            if benchmarks[..i].iter().any(|earlier| earlier.benchmark == r.benchmark) {
                return Err(EvalError::Invalid(format!("{} is scored twice", r.benchmark)));
            }
        }
        let averages = Averages::of(&benchmarks);
        Ok(SuiteReport { benchmarks, averages })
    }

    /// Markdown: a summary table (each benchmark's headline score, the group averages and the
    /// overall), then each benchmark's tables.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from(
            "## Benchmarks\n\n| benchmark | group | metric | score | items |\n|---|---|---|---|---|\n",
        );
        for r in &self.benchmarks {
            let note = if r.benchmark.in_paper_average() { "" } else { " (not in the paper's averages)" };
            let _ = writeln!(
                md,
                "| {}{note} | {} | {} | {:.2} | {} |",
                r.benchmark,
                r.benchmark.group().name(),
                r.metric,
                r.score,
                r.items.len()
            );
        }
        for average in [&self.averages.visual_math, &self.averages.perception].into_iter().flatten() {
            let names: Vec<&str> = average.benchmarks.iter().map(|b| b.name()).collect();
            let missing = if average.missing.is_empty() {
                String::new()
            } else {
                let m: Vec<&str> = average.missing.iter().map(|b| b.name()).collect();
                format!("; without {}, so not the paper's average", m.join(", "))
            };
            let _ = writeln!(
                md,
                "| **{} average** | {} | mean of {}{missing} | {:.2} | |",
                average.group.name(),
                average.group.name(),
                names.join(", "),
                average.mean
            );
        }
        if let Some(overall) = self.averages.overall {
            let _ = writeln!(md, "| **overall** | | (visual math + perception) / 2 | {overall:.2} | |");
        }
        for r in &self.benchmarks {
            md.push('\n');
            md.push_str(&r.to_markdown());
        }
        md
    }

    /// Writes `report.json` and `report.md` to `dir` (which must exist).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| EvalError::Invalid(format!("report to JSON: {e}")))?;
        for (name, text) in [("report.json", json), ("report.md", self.to_markdown())] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| EvalError::Io { path, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(benchmark: Benchmark, score: f64) -> BenchmarkReport {
        BenchmarkReport {
            benchmark,
            data: String::new(),
            metric: "accuracy".into(),
            score,
            tables: Vec::new(),
            items: Vec::new(),
        }
    }

    #[test]
    fn averages_are_the_mean_of_the_two_group_means() {
        let reports = vec![
            report(Benchmark::MathVista, 50.0),
            report(Benchmark::WeMath, 30.0),
            report(Benchmark::DynaMath, 0.0),
            report(Benchmark::Pope, 90.0),
        ];
        let a = SuiteReport::new(reports).unwrap().averages;
        let v = a.visual_math.unwrap();
        // (50 + 30) / 2 = 40; DynaMath is outside the paper's average
        assert_eq!(v.mean, 40.0);
        assert_eq!(v.missing, vec![Benchmark::MathVision, Benchmark::MathVerse]);
        assert_eq!(a.perception.as_ref().unwrap().mean, 90.0);
        // (40 + 90) / 2
        assert_eq!(a.overall, Some(65.0));
        let only_math = Averages::of(&[report(Benchmark::MathVista, 50.0)]);
        assert_eq!((only_math.perception, only_math.overall), (None, None));
    }

    #[test]
    fn a_benchmark_scored_twice_is_an_error() {
        let e =
            SuiteReport::new(vec![report(Benchmark::Pope, 1.0), report(Benchmark::Pope, 2.0)]).unwrap_err();
        assert!(e.to_string().contains("POPE is scored twice"), "{e}");
    }
}

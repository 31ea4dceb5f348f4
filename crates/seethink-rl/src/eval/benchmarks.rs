//! The benchmarks of a run's eval section (`eval.benchmarks`): at each evaluation point the
//! model answers every row of each VLMEvalKit benchmark once, prompted and scored as
//! `seethink eval --benchmark` does ([`seethink_eval::benchmarks`]: VLMEvalKit's prompts
//! through the run's format prompt, its rules, the paper's averages), with the eval section's
//! temperature, top-p, token budget and batch size and the run's image bounds.
//!
//! ```text
//! <eval dir>/benchmarks/<name>.predictions.jsonl   one response per row (`seethink score` reads it)
//! <eval dir>/benchmarks/report.json, report.md     per-benchmark tables and the paper's averages
//! ```
//! A benchmark whose predictions file exists is scored from it instead of answered again (a
//! resumed run, or a benchmark added to the config later, answers only what is missing); the
//! report is written again from all of them.

use std::fmt::Write as _;
use std::path::Path;

use seethink_eval::benchmarks::predictions::{answer_rows, match_rows, read_predictions, write_predictions};
use seethink_eval::{BenchmarkData, SuiteReport};
use seethink_models::kernels::Kernels;

use crate::config::{BenchmarkFile, HeldOutConfig, TrainConfig};
use crate::error::{io, Result, TrainError};
use crate::eval_model::LoadedModel;

/// The directory of an evaluation point's benchmarks, beside its held-out report.
pub const BENCHMARKS_DIR: &str = "benchmarks";

/// The TSV file of `entry` read and checked as its benchmark ([`seethink_eval::Benchmark::load`]);
/// errors name the key or the file.
pub fn load_benchmark(entry: &BenchmarkFile) -> Result<BenchmarkData> {
    let benchmark = entry.benchmark().map_err(|message| TrainError::Config {
        path: entry.file.clone(),
        message: format!("eval.benchmarks: {message}"),
    })?;
    Ok(benchmark.load(&entry.file)?)
}

/// Reads every benchmark of `heldout` (one at a time, nothing kept), so that a file that
/// cannot be scored fails before training rather than at its end.
pub fn check_benchmarks(heldout: &HeldOutConfig) -> Result<()> {
    heldout.benchmarks.iter().try_for_each(|entry| load_benchmark(entry).map(drop))
}

/// Answers (or reads back the predictions of) every benchmark of `heldout` with `model` and
/// writes their report into `dir` (see the module docs); `None` without benchmarks.
pub(crate) fn evaluate_benchmarks<B: Kernels>(
    config: &TrainConfig,
    heldout: &HeldOutConfig,
    model: &mut LoadedModel<'_, B>,
    dir: &Path,
) -> Result<Option<SuiteReport>> {
    if heldout.benchmarks.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut reports = Vec::with_capacity(heldout.benchmarks.len());
    for entry in &heldout.benchmarks {
        let data = load_benchmark(entry)?;
        let file = dir.join(format!("{}.predictions.jsonl", data.benchmark.name()));
        let started = std::time::Instant::now();
        let predictions = if file.exists() {
            match_rows(&data, &read_predictions(&file)?)?
        } else {
            let mut tasks = data.tasks();
            config.data.format_prompt.apply(&mut tasks, &entry.file)?;
            let predictions = answer_rows(&mut model.responder(config, heldout)?, &tasks)?;
            write_predictions(&file, &data, &predictions)?;
            predictions
        };
        let report = data.score(&predictions)?;
        eprintln!(
            "{} of {}: {} rows, {} {:.2} ({:.0} s)",
            data.benchmark,
            model.dir.display(),
            data.rows.len(),
            report.metric,
            report.score,
            started.elapsed().as_secs_f64()
        );
        reports.push(report);
    }
    let suite = SuiteReport::new(reports)?;
    suite.write(dir)?;
    Ok(Some(suite))
}

/// A markdown table, one row per evaluation point: each benchmark's headline score, then the
/// paper's averages (visual math, perception, overall; `-` where a group has no benchmark).
pub fn benchmark_summary(points: &[(String, SuiteReport)]) -> String {
    let Some((_, first)) = points.first() else { return String::new() };
    let names: Vec<&str> = first.benchmarks.iter().map(|r| r.benchmark.name()).collect();
    let mut md = format!("| after | {} | visual math | perception | overall |\n|---|", names.join(" | "));
    md.push_str(&"---|".repeat(names.len() + 3));
    md.push('\n');
    let value = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for (name, suite) in points {
        let _ = write!(md, "| {name} |");
        for benchmark in &names {
            let score = suite.benchmarks.iter().find(|r| r.benchmark.name() == *benchmark).map(|r| r.score);
            let _ = write!(md, " {} |", value(score));
        }
        let a = &suite.averages;
        let _ = writeln!(
            md,
            " {} | {} | {} |",
            value(a.visual_math.as_ref().map(|g| g.mean)),
            value(a.perception.as_ref().map(|g| g.mean)),
            value(a.overall)
        );
    }
    md
}

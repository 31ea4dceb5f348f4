//! The evaluation report: per-task results and their summaries, as JSON and as a markdown
//! table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use seethink_data::{Capability, Task};
use seethink_reward::Reward;
use serde::{Deserialize, Serialize};

use crate::attribution::Attribution;
use crate::error::{EvalError, Result};
use crate::group::{group_name, group_order};
use crate::markdown::{level_name, percent};
use crate::metrics::{pass_at_k, Stats};
use crate::runner::{answer_and_grade, Responder, TaskResult};

/// Statistics of one capability (all levels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapabilityStats {
    /// The capability; `None`: the tasks without one (`unlabelled`, [`crate::group`]).
    #[serde(with = "crate::group")]
    pub capability: Option<Capability>,
    /// Its statistics.
    pub stats: Stats,
}

/// Statistics of one difficulty level (all capabilities).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    /// The level; `None` gathers the tasks without one.
    pub level: Option<u32>,
    /// Its statistics.
    pub stats: Stats,
}

/// Statistics of one capability at one level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellStats {
    /// The capability; `None`: the tasks without one (`unlabelled`, [`crate::group`]).
    #[serde(with = "crate::group")]
    pub capability: Option<Capability>,
    /// The level; `None` gathers the tasks without one.
    pub level: Option<u32>,
    /// Its statistics.
    pub stats: Stats,
}

/// Statistics of one question type of one capability at one level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionTypeStats {
    /// The capability; `None`: the tasks without one (`unlabelled`, [`crate::group`]).
    #[serde(with = "crate::group")]
    pub capability: Option<Capability>,
    /// The question type ([`TaskResult::question_type`]).
    pub question_type: String,
    /// The level; `None` gathers the tasks without one.
    pub level: Option<u32>,
    /// Its statistics.
    pub stats: Stats,
    /// The answer that, given to every task of the group, scores best ([`best_constant`]).
    pub best_constant: ConstantAnswer,
}

/// An answer given to every task of a group, and the share of those tasks it answers right.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstantAnswer {
    /// The answer.
    pub answer: String,
    /// The share of the group's tasks whose reference answer it is.
    pub accuracy: f64,
}

/// The constant answer with the highest accuracy over `tasks`: the most frequent reference
/// answer `a*`, with accuracy `|{t : answer_t = a*}| / |tasks|` (ties: the first in sorted
/// order). A model that scores no more than this on a question type has not shown that it
/// reads what the type asks.
pub fn best_constant(tasks: &[&TaskResult]) -> ConstantAnswer {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.answer.as_str()).or_default() += 1;
    }
    let (answer, count) =
        counts.into_iter().fold(("", 0), |best, (a, n)| if n > best.1 { (a, n) } else { best });
    ConstantAnswer { answer: answer.to_string(), accuracy: count as f64 / tasks.len().max(1) as f64 }
}

/// Answers each of `tasks` `k` times with `responder` and scores every answer with `reward`,
/// then summarises: accuracy, format rate, length and pass@1 / pass@k overall, per
/// capability, per level and per capability × level ([`EvalReport`]).
///
/// Errors when `tasks` is empty, `k` is 0, two tasks share an id, or the responder fails or
/// returns other than `k` responses per task.
pub fn evaluate<R: Responder + ?Sized>(
    responder: &mut R,
    tasks: &[Task],
    reward: &dyn Reward,
    k: usize,
) -> Result<EvalReport> {
    if tasks.is_empty() {
        return Err(EvalError::Invalid("no tasks to evaluate".into()));
    }
    let mut seen = HashSet::with_capacity(tasks.len());
    if let Some(dup) = tasks.iter().find(|t| !seen.insert(t.id.as_str())) {
        return Err(EvalError::DuplicateTask(dup.id.clone()));
    }
    let results = answer_and_grade(responder, tasks, reward, k)?;
    EvalReport::from_results(results, k)
}

/// What [`crate::evaluate`] measured. Groups are listed in curriculum order of capability
/// (perception, text reasoning, visual reasoning, then the tasks without one, `unlabelled`) and
/// ascending level, tasks without a level first; only non-empty groups appear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Samples drawn per task (the `k` of pass@k).
    pub samples_per_task: usize,
    /// All tasks together.
    pub overall: Stats,
    /// Per capability.
    pub by_capability: Vec<CapabilityStats>,
    /// Per level.
    pub by_level: Vec<LevelStats>,
    /// Per capability × level.
    pub by_capability_level: Vec<CellStats>,
    /// Per capability × question type × level, for the tasks whose data names a question type
    /// ([`TaskResult::question_type`]), each with the best constant answer beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_question_type: Vec<QuestionTypeStats>,
    /// Every task's graded samples, in evaluation order.
    pub tasks: Vec<TaskResult>,
    /// Perception-error attribution, when [`crate::attribute_errors`] was run and stored here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

impl EvalReport {
    /// Summarises `results` (each with `k` samples) overall and per group.
    pub(crate) fn from_results(results: Vec<TaskResult>, k: usize) -> Result<EvalReport> {
        type Group = (bool, Option<Capability>);
        let all: Vec<&TaskResult> = results.iter().collect();
        let mut by_capability: BTreeMap<Group, Vec<&TaskResult>> = BTreeMap::new();
        let mut by_level: BTreeMap<Option<u32>, Vec<&TaskResult>> = BTreeMap::new();
        let mut by_cell: BTreeMap<(Group, Option<u32>), Vec<&TaskResult>> = BTreeMap::new();
        let mut by_type: BTreeMap<(Group, &str, Option<u32>), Vec<&TaskResult>> = BTreeMap::new();
        for r in &results {
            by_capability.entry(group_order(r.capability)).or_default().push(r);
            by_level.entry(r.level).or_default().push(r);
            by_cell.entry((group_order(r.capability), r.level)).or_default().push(r);
            if let Some(question_type) = &r.question_type {
                by_type.entry((group_order(r.capability), question_type, r.level)).or_default().push(r);
            }
        }
        let report = EvalReport {
            samples_per_task: k,
            overall: Stats::of(&all, k)?,
            by_capability: by_capability
                .into_iter()
                .map(|((_, capability), rs)| Ok(CapabilityStats { capability, stats: Stats::of(&rs, k)? }))
                .collect::<Result<_>>()?,
            by_level: by_level
                .into_iter()
                .map(|(level, rs)| Ok(LevelStats { level, stats: Stats::of(&rs, k)? }))
                .collect::<Result<_>>()?,
            by_capability_level: by_cell
                .into_iter()
                .map(|(((_, capability), level), rs)| {
                    Ok(CellStats { capability, level, stats: Stats::of(&rs, k)? })
                })
                .collect::<Result<_>>()?,
            by_question_type: by_type
                .into_iter()
                .map(|(((_, capability), question_type, level), rs)| {
                    Ok(QuestionTypeStats {
                        capability,
                        question_type: question_type.to_string(),
                        level,
                        stats: Stats::of(&rs, k)?,
                        best_constant: best_constant(&rs),
                    })
                })
                .collect::<Result<_>>()?,
            tasks: Vec::new(),
            attribution: None,
        };
        Ok(EvalReport { tasks: results, ..report })
    }

    /// The report with the tasks of `ids` moved to the `unlabelled` group, their records having
    /// no capability (the capability their tasks were evaluated under stood in for none); every
    /// group is summarised again, the attribution kept as it is (attribute after this).
    pub fn with_unlabelled(self, ids: &HashSet<&str>) -> Result<EvalReport> {
        let mut tasks = self.tasks;
        for t in tasks.iter_mut().filter(|t| ids.contains(t.id.as_str())) {
            t.capability = None;
        }
        let attribution = self.attribution;
        Ok(EvalReport { attribution, ..EvalReport::from_results(tasks, self.samples_per_task)? })
    }

    /// Statistics of the tasks without a capability (`unlabelled`), if there were any.
    pub fn unlabelled(&self) -> Option<&Stats> {
        self.by_capability.iter().find(|c| c.capability.is_none()).map(|c| &c.stats)
    }

    /// Statistics of `capability`, if any task had it.
    pub fn capability(&self, capability: Capability) -> Option<&Stats> {
        self.by_capability.iter().find(|c| c.capability == Some(capability)).map(|c| &c.stats)
    }

    /// Statistics of `level` (all capabilities), if any task had it.
    pub fn level(&self, level: Option<u32>) -> Option<&Stats> {
        self.by_level.iter().find(|l| l.level == level).map(|l| &l.stats)
    }

    /// Statistics of `capability` at `level`, if any task had both.
    pub fn cell(&self, capability: Capability, level: Option<u32>) -> Option<&Stats> {
        self.by_capability_level
            .iter()
            .find(|c| c.capability == Some(capability) && c.level == level)
            .map(|c| &c.stats)
    }

    /// pass@`k` for any `1 ≤ k ≤` [`Self::samples_per_task`]: the mean over tasks of the
    /// unbiased estimate 1 − C(n − c, k) / C(n, k) ([`pass_at_k`]).
    pub fn pass_at(&self, k: usize) -> Result<f64> {
        if self.tasks.is_empty() {
            return Err(EvalError::Invalid("the report has no tasks".into()));
        }
        let sum = self.tasks.iter().map(|t| pass_at_k(t.samples.len(), t.correct, k)).sum::<Result<f64>>()?;
        Ok(sum / self.tasks.len() as f64)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| EvalError::Invalid(format!("report to JSON: {e}")))
    }

    /// Writes [`Self::to_json`] to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?)
            .map_err(|source| EvalError::Io { path: path.to_path_buf(), source })
    }

    /// Markdown tables: overall and per capability, per level, per capability × level (rates
    /// in percent), then the attribution when present.
    pub fn to_markdown(&self) -> String {
        let k = self.samples_per_task;
        let mut md = format!(
            "## Evaluation: {} tasks × {k} samples\n\n### Per capability\n\n{}",
            self.overall.tasks,
            header("capability", k)
        );
        md.push_str(&row(&["all".into()], &self.overall, k));
        for c in &self.by_capability {
            md.push_str(&row(&[group_name(c.capability).to_string()], &c.stats, k));
        }
        md.push_str(&format!("\n### Per level\n\n{}", header("level", k)));
        for l in &self.by_level {
            md.push_str(&row(&[level_name(l.level)], &l.stats, k));
        }
        md.push_str(&format!("\n### Per capability × level\n\n{}", header("capability | level", k)));
        for c in &self.by_capability_level {
            md.push_str(&row(&[group_name(c.capability).to_string(), level_name(c.level)], &c.stats, k));
        }
        if !self.by_question_type.is_empty() {
            md.push_str(
                "\n### Per question type (the best constant answer: the one answer that, given to \
                 every task of the row, scores best)\n\n| capability | question type | level | tasks | accuracy | \
                 best constant answer | its accuracy |\n|---|---|---|---|---|---|---|\n",
            );
            for q in &self.by_question_type {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    group_name(q.capability),
                    q.question_type,
                    level_name(q.level),
                    q.stats.tasks,
                    percent(q.stats.accuracy),
                    q.best_constant.answer,
                    percent(q.best_constant.accuracy)
                );
            }
        }
        if let Some(a) = &self.attribution {
            md.push('\n');
            md.push_str(&a.to_markdown());
        }
        md
    }
}

/// `tasks` with [`Task::difficulty`] set to each task's pass rate `c / n` in `report`
/// (matched by id); tasks the report does not cover are returned unchanged.
pub fn with_pass_rates(tasks: &[Task], report: &EvalReport) -> Vec<Task> {
    let rates: HashMap<&str, f64> = report.tasks.iter().map(|t| (t.id.as_str(), t.pass_rate)).collect();
    tasks
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if let Some(&rate) = rates.get(t.id.as_str()) {
                t.pass_rate = Some(rate);
            }
            t
        })
        .collect()
}

/// Table header; the pass@k column only when k > 1 (it would repeat pass@1).
fn header(keys: &str, k: usize) -> String {
    let key_columns = keys.split(" | ").count();
    let pass_k = if k > 1 { format!(" pass@{k} |") } else { String::new() };
    let mut h = format!("| {keys} | tasks | accuracy | format | pass@1 |{pass_k} mean tokens |\n|");
    for _ in 0..key_columns + 5 + usize::from(k > 1) {
        h.push_str("---|");
    }
    h.push('\n');
    h
}

fn row(keys: &[String], s: &Stats, k: usize) -> String {
    let mut r = String::from("|");
    for key in keys {
        let _ = write!(r, " {key} |");
    }
    let _ = write!(
        r,
        " {} | {} | {} | {} |",
        s.tasks,
        percent(s.accuracy),
        percent(s.format_rate),
        percent(s.pass_at_1)
    );
    if k > 1 {
        let _ = write!(r, " {} |", percent(s.pass_at_k));
    }
    let _ = writeln!(r, " {:.1} |", s.mean_tokens);
    r
}

/// A mean with its 95% confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The mean.
    pub mean: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// Number of paired observations.
    pub n: usize,
}

/// The mean of independent observations (runs of different seeds) with its Student-t 95%
/// interval: `x̄ ± t₀.₉₇₅(n − 1) · s / √n`, `s² = Σ (x_i − x̄)² / (n − 1)`. `None` with fewer than
/// two observations (no spread to estimate).
pub fn mean_interval(values: &[f64]) -> Option<Interval> {
    let (mean, standard_error, n) = mean_and_standard_error(values)?;
    let half = student_t_975(n - 1) * standard_error;
    Some(Interval { mean, low: mean - half, high: mean + half, n })
}

/// The minimum detectable mean of paired differences with `values`' spread: the true mean a
/// two-sided 5% test over `n` pairs detects with 80% power,
/// `MDE = (t₀.₉₇₅(n − 1) + t₀.₈(n − 1)) · s / √n`. `None` with fewer than two values.
pub fn minimum_detectable_difference(values: &[f64]) -> Option<f64> {
    let (_, standard_error, n) = mean_and_standard_error(values)?;
    Some((student_t_975(n - 1) + student_t_80(n - 1)) * standard_error)
}

/// `(x̄, s / √n, n)` with `s² = Σ (x_i − x̄)² / (n − 1)`; `None` with fewer than two values.
fn mean_and_standard_error(values: &[f64]) -> Option<(f64, f64, usize)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((mean, (variance / n as f64).sqrt(), n))
}

/// The 0.8 quantile of Student's t with `df` degrees of freedom (`df ≥ 1`): tabulated to three
/// decimals for 1..=30, the normal 0.842 beyond.
fn student_t_80(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870, 0.868,
        0.866, 0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856, 0.855, 0.855,
        0.854, 0.854,
    ];
    tabulated(&TABLE, df, 0.842)
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (`df ≥ 1`): tabulated to
/// three decimals for 1..=30, the normal 1.960 beyond.
fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042,
    ];
    tabulated(&TABLE, df, 1.960)
}

/// `table[df − 1]` for `df` in 1..=30 (0 reads as 1), `beyond` above.
fn tabulated(table: &[f64; 30], df: usize, beyond: f64) -> f64 {
    table.get(df.max(1) - 1).copied().unwrap_or(beyond)
}

/// The paired difference of per-task pass rates `d_i = after_i − before_i` over the tasks both
/// reports share (matched by id), restricted to `capability` when given: the mean `d̄` and
/// the normal 95% interval `d̄ ± 1.96 · s / √n`, `s² = Σ (d_i − d̄)² / (n − 1)`. `None` with
/// fewer than two shared tasks.
pub fn paired_difference(
    before: &EvalReport,
    after: &EvalReport,
    capability: Option<Capability>,
) -> Option<Interval> {
    paired_difference_of(before, after, capability, |t| t.pass_rate)
}

/// [`paired_difference`] of any per-task `value` (a pass rate, [`TaskResult::mean_tokens`]).
pub fn paired_difference_of(
    before: &EvalReport,
    after: &EvalReport,
    capability: Option<Capability>,
    value: impl Fn(&TaskResult) -> f64,
) -> Option<Interval> {
    let before: HashMap<&str, f64> = before.tasks.iter().map(|t| (t.id.as_str(), value(t))).collect();
    let d: Vec<f64> = after
        .tasks
        .iter()
        .filter(|t| capability.is_none_or(|c| t.capability == Some(c)))
        .filter_map(|t| before.get(t.id.as_str()).map(|b| value(t) - b))
        .collect();
    let (mean, standard_error, n) = mean_and_standard_error(&d)?;
    let half = 1.96 * standard_error;
    Some(Interval { mean, low: mean - half, high: mean + half, n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Sample;

    /// A perception task of `question_type` answered `answer`, graded right or wrong once.
    fn result(id: &str, question_type: Option<&str>, answer: &str, right: bool) -> TaskResult {
        let accuracy = if right { 1.0 } else { 0.0 };
        TaskResult {
            id: id.into(),
            capability: Some(Capability::Perception),
            level: Some(1),
            question_type: question_type.map(String::from),
            answer: answer.into(),
            samples: vec![Sample {
                text: String::new(),
                tokens: 1,
                overall: accuracy,
                format: 1.0,
                accuracy,
            }],
            correct: usize::from(right),
            pass_rate: accuracy as f64,
        }
    }

    #[test]
    fn paired_differences_of_a_task_value_match_by_id() {
        let with_tokens = |id: &str, tokens: &[usize]| {
            let mut r = result(id, None, "1", true);
            r.samples = tokens.iter().map(|&tokens| Sample { tokens, ..r.samples[0].clone() }).collect();
            r
        };
        let before =
            EvalReport::from_results(vec![with_tokens("a", &[10, 20]), with_tokens("b", &[30, 30])], 2);
        // "b" first: tasks are matched by id, not order
        let after = EvalReport::from_results(vec![with_tokens("b", &[20, 22]), with_tokens("a", &[5, 5])], 2);
        let d =
            paired_difference_of(&before.unwrap(), &after.unwrap(), None, TaskResult::mean_tokens).unwrap();
        // d = (5 − 15, 21 − 30) = (−10, −9): mean −9.5, s = √0.5, half-width 1.96 · √0.5 / √2 = 0.98
        assert_eq!((d.mean, d.n), (-9.5, 2));
        assert!((d.high - d.mean - 0.98).abs() < 1e-12, "{d:?}");
    }

    #[test]
    fn each_question_type_is_summarised_beside_its_best_constant_answer() {
        let results = vec![
            result("a", Some("color_of"), "B", true),
            result("b", Some("color_of"), "A", false),
            result("c", Some("color_of"), "B", false),
            result("d", Some("count"), "3", true),
            result("e", None, "C", true),
        ];
        let report = EvalReport::from_results(results, 1).unwrap();
        let rows: Vec<(&str, usize, f64, &str, f64)> = report
            .by_question_type
            .iter()
            .map(|q| {
                let best = &q.best_constant;
                (
                    q.question_type.as_str(),
                    q.stats.tasks,
                    q.stats.accuracy,
                    best.answer.as_str(),
                    best.accuracy,
                )
            })
            .collect();
        assert_eq!(rows, [("color_of", 3, 1.0 / 3.0, "B", 2.0 / 3.0), ("count", 1, 1.0, "3", 1.0)]);
        let md = report.to_markdown();
        assert!(md.contains("| perception | color_of | 1 | 3 | 33.3% | B | 66.7% |"), "{md}");
        // a report without question types (an earlier version's) reads back and shows none
        let mut json: serde_json::Value = serde_json::to_value(&report).unwrap();
        json.as_object_mut().unwrap().remove("by_question_type");
        let read: EvalReport = serde_json::from_value(json).unwrap();
        assert!(read.by_question_type.is_empty() && !read.to_markdown().contains("question type"));
    }

    #[test]
    fn minimum_detectable_difference_is_t_sum_times_standard_error() {
        // s = 1, n = 3: (4.303 + 1.061) / √3
        let mde = minimum_detectable_difference(&[1.0, 2.0, 3.0]).unwrap();
        assert!((mde - 5.364 / 3f64.sqrt()).abs() < 1e-9, "{mde}");
        assert_eq!(minimum_detectable_difference(&[1.0]), None);
    }

    #[test]
    fn mean_interval_uses_student_t() {
        // x̄ = 2, s = 1, n = 3: half-width 4.303 / √3
        let i = mean_interval(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(i.mean, 2.0);
        assert!((i.high - 2.0 - 4.303 / 3f64.sqrt()).abs() < 1e-12, "{i:?}");
        assert!((i.low - (2.0 - 4.303 / 3f64.sqrt())).abs() < 1e-12);
        assert_eq!(i.n, 3);
        assert!(mean_interval(&[1.0]).is_none());
        // many observations: the normal quantile
        let many: Vec<f64> = (0..40).map(|i| f64::from(i % 2)).collect();
        let i = mean_interval(&many).unwrap();
        let s = (many.iter().map(|x| (x - 0.5).powi(2)).sum::<f64>() / 39.0).sqrt();
        assert!((i.high - 0.5 - 1.960 * s / 40f64.sqrt()).abs() < 1e-12);
    }
}

//! The suite's results over seeds: per comparison a markdown table of the mean and 95% interval
//! of every held-out metric, the paired difference against `merged`, and curves over steps.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::record::{HeldOut, Metric, RunRecord};
use super::Arm;
use crate::eval::{mean_interval, minimum_detectable_difference, plot_lines};

/// A comparison of the paper: its title and arms (`merged` first: the baseline).
pub struct Comparison {
    pub title: &'static str,
    pub arms: &'static [Arm],
    /// Whether the table also gives each seed's change of response length from the base
    /// model, paired by task ([`RunRecord::token_change`]).
    pub lengths_by_task: bool,
}

/// The paper's comparisons, in order.
pub const COMPARISONS: [Comparison; 7] = [
    Comparison {
        title: "Capability order: staged vs merged vs reverse",
        arms: &[Arm::Merged, Arm::Staged, Arm::Reverse],
        lengths_by_task: false,
    },
    Comparison {
        title: "Perception data: staged vs reasoning data only",
        arms: &[Arm::Merged, Arm::Staged, Arm::ReasoningOnly],
        lengths_by_task: false,
    },
    Comparison {
        title: "Perception stage: RL vs SFT on captions",
        arms: &[Arm::Merged, Arm::Staged, Arm::SftPerception],
        lengths_by_task: false,
    },
    Comparison {
        title: "Capability × difficulty",
        arms: &[Arm::Merged, Arm::DifficultyOnly, Arm::Staged, Arm::CapabilityXDifficulty],
        lengths_by_task: false,
    },
    Comparison {
        title: "Adaptive policies",
        arms: &[Arm::Merged, Arm::Staged, Arm::LearningProgress, Arm::Plateau],
        lengths_by_task: false,
    },
    Comparison {
        title: "Perception questions: filtered (the base model fails them from the image) vs unfiltered",
        arms: &[Arm::PerceptionUnfiltered, Arm::PerceptionFiltered],
        lengths_by_task: false,
    },
    Comparison {
        title: "Response length: staged vs merged, with a length penalty and a verbosity reward as the positive controls",
        arms: &[Arm::Merged, Arm::Staged, Arm::LengthPenalty, Arm::VerbosityReward],
        lengths_by_task: true,
    },
];

/// `mean [low, high]` over the values, or the mean alone with fewer than two; `–` with none.
fn cell(metric: Metric, values: &[f64], signed: bool) -> String {
    match (mean_interval(values), values) {
        (Some(i), _) => format!(
            "{} [{}, {}]",
            metric.format(i.mean, signed),
            metric.format(i.low, signed),
            metric.format(i.high, signed)
        ),
        (None, [one]) => metric.format(*one, signed),
        (None, _) => "–".into(),
    }
}

/// The records of `arm`, by seed.
fn by_seed(records: &[RunRecord], arm: Arm) -> BTreeMap<u64, &RunRecord> {
    records.iter().filter(|r| r.arm == arm.key()).map(|r| (r.seed, r)).collect()
}

/// The markdown tables of every comparison with two arms that ran, one of them not in an
/// earlier table (a suite run without the adaptive arms has no table of merged and staged
/// alone under their title): rows of held-out metrics (mean and
/// Student-t 95% interval over seeds, the base model as the first row), then each arm's
/// paired difference from the comparison's first arm, `merged` or the unfiltered questions (per
/// seed `arm − first`, mean and interval over seeds) with
/// the minimum detectable difference of overall accuracy at 80% power
/// ([`minimum_detectable_difference`]).
pub fn comparison_tables(records: &[RunRecord]) -> String {
    let mut md = String::new();
    let header = |first: &str| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.label()).collect();
        format!(
            "| {first} | steps | {} |\n|---|---|{}\n",
            names.join(" | "),
            "---|".repeat(Metric::ALL.len())
        )
    };
    let mut shown: Vec<Arm> = Vec::new();
    for (number, comparison) in COMPARISONS.iter().enumerate() {
        let arms: Vec<Arm> =
            comparison.arms.iter().copied().filter(|&a| !by_seed(records, a).is_empty()).collect();
        if arms.len() < 2 || arms.iter().all(|a| shown.contains(a)) {
            continue;
        }
        shown.extend(&arms);
        md.push_str(&format!(
            "## {}. {}\n\nHeld-out results, mean [95% interval over seeds]:\n\n",
            number + 1,
            comparison.title
        ));
        md.push_str(&header("arm"));
        let start: Vec<&HeldOut> = by_seed(records, arms[0]).values().map(|r| &r.start).collect();
        md.push_str(&row("start (base model)", "0", &start));
        for &arm in &arms {
            let runs = by_seed(records, arm);
            let steps: Vec<f64> = runs.values().map(|r| r.steps as f64).collect();
            let ends: Vec<&HeldOut> = runs.values().map(|r| &r.end).collect();
            md.push_str(&row(arm.label(), &format!("{:.0}", mean(&steps)), &ends));
        }
        // each arm paired against the comparison's first (merged, or the unfiltered questions)
        let reference = comparison.arms[0];
        let base = by_seed(records, reference);
        if !base.is_empty() {
            let name = reference.label();
            md.push_str(&format!(
                "\nPaired against {name} (per seed: arm − {name}), mean [95% interval]:\n\n"
            ));
            md.push_str(&header(&format!("arm − {name}")).replacen(
                " |\n|",
                " | MDE overall (80% power) |\n|---|",
                1,
            ));
            for &arm in arms.iter().filter(|&&a| a != reference) {
                let pairs: Vec<(&RunRecord, &RunRecord)> = by_seed(records, arm)
                    .into_iter()
                    .filter_map(|(s, r)| Some((r, *base.get(&s)?)))
                    .collect();
                let cells: Vec<String> = Metric::ALL
                    .iter()
                    .map(|&m| {
                        let d: Vec<f64> =
                            pairs.iter().filter_map(|(a, b)| Some(a.end.get(m)? - b.end.get(m)?)).collect();
                        cell(m, &d, true)
                    })
                    .collect();
                let steps: Vec<f64> = pairs.iter().map(|(a, b)| a.steps as f64 - b.steps as f64).collect();
                let overall: Vec<f64> = pairs.iter().map(|(a, b)| a.end.overall - b.end.overall).collect();
                let mde = minimum_detectable_difference(&overall).map_or("–".into(), |m| format!("{m:.3}"));
                md.push_str(&format!(
                    "| {} | {:+.0} | {} | {mde} |\n",
                    arm.label(),
                    mean(&steps),
                    cells.join(" | ")
                ));
            }
        }
        if comparison.lengths_by_task {
            md.push_str(&lengths_by_task(records, &arms));
        }
        md.push('\n');
    }
    md
}

/// Each seed's change of mean response length from the base model to the end of `arms`,
/// paired by held-out task: `mean [95% interval over tasks]` per seed (`–` where a record has
/// none).
fn lengths_by_task(records: &[RunRecord], arms: &[Arm]) -> String {
    let seeds: Vec<u64> = arms
        .iter()
        .flat_map(|&a| by_seed(records, a).into_keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut md = String::from(
        "\nChange of mean tokens from the base model, paired by task, mean [95% interval over tasks]:\n\n",
    );
    let names: Vec<String> = seeds.iter().map(|s| format!("seed {s}")).collect();
    md.push_str(&format!("| arm | {} |\n|---|{}\n", names.join(" | "), "---|".repeat(seeds.len())));
    for &arm in arms {
        let runs = by_seed(records, arm);
        let cells: Vec<String> = seeds
            .iter()
            .map(|s| match runs.get(s).and_then(|r| r.token_change) {
                Some(d) => format!("{:+.2} [{:+.2}, {:+.2}]", d.mean, d.low, d.high),
                None => "–".into(),
            })
            .collect();
        md.push_str(&format!("| {} | {} |\n", arm.label(), cells.join(" | ")));
    }
    md
}

/// One table row: `name`, `steps`, and each metric's cell over `results`.
fn row(name: &str, steps: &str, results: &[&HeldOut]) -> String {
    let cells: Vec<String> = Metric::ALL
        .iter()
        .map(|&m| cell(m, &results.iter().filter_map(|r| r.get(m)).collect::<Vec<_>>(), false))
        .collect();
    format!("| {name} | {steps} | {} |\n", cells.join(" | "))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The curves drawn per metric: `(metric key in the curve, file stem, axis label)`.
pub const CURVES: [(&str, &str, &str); 5] = [
    ("reward", "curve_reward", "reward"),
    ("accuracy_perception", "curve_accuracy_perception", "training accuracy, perception"),
    ("accuracy_text_reasoning", "curve_accuracy_text_reasoning", "training accuracy, text reasoning"),
    ("accuracy_visual_reasoning", "curve_accuracy_visual_reasoning", "training accuracy, visual reasoning"),
    ("response_length", "curve_response_length", "response length (tokens)"),
];

/// Steps averaged by the curves' trailing moving average.
pub const CURVE_WINDOW: usize = 10;

/// Writes one SVG per [`CURVES`] entry into `dir`: one line per arm, at each global step the
/// mean over seeds of the metric (over the seeds that logged it), smoothed by a trailing moving
/// average over the last [`CURVE_WINDOW`] points.
pub fn plot_curves(records: &[RunRecord], dir: &Path) -> Result<()> {
    for (key, stem, label) in CURVES {
        let lines: Vec<(String, Vec<(f64, f64)>)> = Arm::ALL
            .iter()
            .filter_map(|&arm| {
                let mut per_step: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                for record in records.iter().filter(|r| r.arm == arm.key()) {
                    for point in &record.curve {
                        if let Some(&v) = point.values.get(key) {
                            per_step.entry(point.step).or_default().push(v);
                        }
                    }
                }
                let means: Vec<(f64, f64)> =
                    per_step.into_iter().map(|(s, v)| (s as f64, mean(&v))).collect();
                (!means.is_empty()).then(|| (arm.label().to_string(), moving_average(&means, CURVE_WINDOW)))
            })
            .collect();
        plot_lines(&format!("{label} per step"), "step", label, &lines, &dir.join(format!("{stem}.svg")))?;
    }
    Ok(())
}

/// Trailing moving average: point `i` becomes the mean of `y` over points `max(0, i − w + 1) ..= i`.
fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    (0..points.len())
        .map(|i| {
            let from = (i + 1).saturating_sub(window.max(1));
            let ys: Vec<f64> = points[from..=i].iter().map(|p| p.1).collect();
            (points[i].0, mean(&ys))
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::record::CurvePoint;
    use super::*;

    fn held_out(overall: f64) -> HeldOut {
        HeldOut {
            perception: Some(overall),
            text_reasoning: Some(overall / 2.0),
            visual_reasoning: None,
            overall,
            mean_tokens: 3.0,
            perception_error_share: None,
            chance_error_share: None,
        }
    }

    /// A record of `arm` and `seed` ending at `overall`.
    pub(in super::super) fn record(arm: Arm, seed: u64, overall: f64) -> RunRecord {
        RunRecord {
            arm: arm.key().into(),
            label: arm.label().into(),
            seed,
            steps: 9,
            seconds: 1.0,
            step_seconds: 0.8,
            trained_here: true,
            start: held_out(0.1),
            end: held_out(overall),
            token_change: None,
            phases: vec![],
            curve: vec![CurvePoint {
                step: 1,
                phase: "p".into(),
                values: BTreeMap::from([("reward".into(), overall)]),
            }],
        }
    }

    #[test]
    fn tables_carry_intervals_and_paired_differences() {
        let records = vec![
            record(Arm::Merged, 0, 0.2),
            record(Arm::Merged, 1, 0.4),
            record(Arm::Staged, 0, 0.3),
            record(Arm::Staged, 1, 0.6),
        ];
        let md = comparison_tables(&records);
        // merged and staged are in every comparison: shown once, under the first
        assert_eq!(md.matches("## ").count(), 1, "{md}");
        assert!(md.contains("## 1. Capability order"), "{md}");
        let with_reasoning_only = [records.clone(), vec![record(Arm::ReasoningOnly, 0, 0.5)]].concat();
        let md = comparison_tables(&with_reasoning_only);
        let titles: Vec<&str> = md.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            titles,
            [
                "## 1. Capability order: staged vs merged vs reverse",
                "## 2. Perception data: staged vs reasoning data only"
            ]
        );
        // merged perception: mean 0.3, s = 0.1414, t(1) = 12.706 → half-width 1.2706
        assert!(md.contains("| merged | 9 | 0.300 [-0.971, 1.571] | 0.150"), "{md}");
        // staged − merged per seed: +0.1, +0.2 → mean +0.15, half-width 12.706 · 0.0707 / √2 = 0.635
        assert!(md.contains("| staged (capability only) | +0 | +0.150 [-0.485, +0.785]"), "{md}");
        // the overall difference's MDE: (12.706 + 1.376) · 0.0707 / √2 = 0.704
        assert!(md.contains(" | 0.704 |\n"), "{md}");
        // no visual-reasoning accuracy anywhere
        assert!(md.contains("| – |"), "{md}");
    }

    #[test]
    fn one_seed_prints_means_without_intervals() {
        let md = comparison_tables(&[record(Arm::Merged, 0, 0.2), record(Arm::Reverse, 0, 0.5)]);
        assert!(md.contains("| reverse order | 9 | 0.500 | 0.250 |"), "{md}");
        assert!(md.contains("| reverse order | +0 | +0.300 | +0.150 |"), "{md}");
    }

    #[test]
    fn the_length_comparison_gives_each_seeds_change_by_task() {
        let change = |mean: f64| crate::eval::Interval { mean, low: mean - 1.0, high: mean + 1.0, n: 900 };
        let mut penalty = record(Arm::LengthPenalty, 0, 0.4);
        penalty.token_change = Some(change(-20.5));
        let md = comparison_tables(&[record(Arm::Merged, 0, 0.4), penalty]);
        assert!(md.contains("| arm | seed 0 |\n|---|---|\n| merged | – |\n"), "{md}");
        assert!(md.contains("| merged + length penalty | -20.50 [-21.50, -19.50] |"), "{md}");
        // the other comparisons have no such table
        let md = comparison_tables(&[record(Arm::Merged, 0, 0.4), record(Arm::Reverse, 0, 0.5)]);
        assert!(!md.contains("paired by task"), "{md}");
    }

    #[test]
    fn moving_average_is_trailing() {
        let points = [(1.0, 1.0), (2.0, 3.0), (3.0, 5.0)];
        assert_eq!(moving_average(&points, 2), vec![(1.0, 1.0), (2.0, 2.0), (3.0, 4.0)]);
    }
}

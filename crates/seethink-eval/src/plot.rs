//! Accuracy charts as SVG.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{EvalError, Result};
use crate::group::group_name;
use crate::markdown::level_name;
use crate::report::EvalReport;

/// Bar colours, one per level in order (cycled); the "all levels" bar is grey.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const ALL_COLOR: RGBColor = RGBColor(127, 127, 127);
/// Width in pixels of the legend column right of the chart.
const LEGEND_WIDTH: u32 = 130;

/// Draws the accuracy of `report` as grouped bars into the SVG file `path`.
///
/// One group per capability (and `unlabelled` tasks) plus `all`; within a group one bar per level (ascending, `none`
/// first when some tasks lack one) plus an `all levels` bar; the legend sits right of the
/// chart. Bar height = mean accuracy reward of the group's samples (as in
/// [`EvalReport::to_markdown`]), labelled in percent; a capability without tasks at a level
/// has no bar there. The output is deterministic.
pub fn plot_accuracy(report: &EvalReport, path: &Path) -> Result<()> {
    let plot_error =
        |e: &dyn std::fmt::Display| EvalError::Plot { path: path.to_path_buf(), message: e.to_string() };
    let levels: Vec<Option<u32>> = report.by_level.iter().map(|l| l.level).collect();
    let mut series: Vec<(String, RGBColor)> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("level {}", level_name(*l)), COLORS[i % COLORS.len()]))
        .collect();
    series.push(("all levels".into(), ALL_COLOR));
    // bars[group][series]: Some(accuracy) where the group has tasks
    let mut groups: Vec<(String, Vec<Option<f64>>)> = report
        .by_capability
        .iter()
        .map(|c| {
            let cell =
                |l| report.by_capability_level.iter().find(|s| s.capability == c.capability && s.level == l);
            let mut bars: Vec<Option<f64>> =
                levels.iter().map(|&l| cell(l).map(|s| s.stats.accuracy)).collect();
            bars.push(Some(c.stats.accuracy));
            (group_name(c.capability).to_string(), bars)
        })
        .collect();
    let mut all_bars: Vec<Option<f64>> = report.by_level.iter().map(|l| Some(l.stats.accuracy)).collect();
    all_bars.push(Some(report.overall.accuracy));
    groups.push(("all".into(), all_bars));

    let width = LEGEND_WIDTH + 100 + 180 * groups.len() as u32;
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(&e))?;
    let (plot_area, legend_area) = root.split_horizontally(width - LEGEND_WIDTH);
    let n = groups.len() as f64;
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            format!(
                "Accuracy by capability and level ({} tasks × {} samples)",
                report.overall.tasks, report.samples_per_task
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n, 0.0..1.1)
        .map_err(|e| plot_error(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("accuracy")
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .draw()
        .map_err(|e| plot_error(&e))?;
    let slot = 0.8 / series.len() as f64;
    for (s, (_, color)) in series.iter().enumerate() {
        let bars: Vec<(f64, f64)> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (_, values))| values[s].map(|v| (g as f64 + 0.1 + s as f64 * slot, v)))
            .collect();
        let color = *color;
        chart
            .draw_series(
                bars.iter().map(|&(x, v)| Rectangle::new([(x, 0.0), (x + slot * 0.9, v)], color.filled())),
            )
            .map_err(|e| plot_error(&e))?;
        let value_font =
            TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(bars.iter().map(|&(x, v)| {
                Text::new(format!("{:.0}", v * 100.0), (x + slot * 0.45, v + 0.01), value_font.clone())
            }))
            .map_err(|e| plot_error(&e))?;
    }
    let label_font = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, (name, _)) in groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        plot_area
            .draw(&Text::new(name.as_str(), (x, y + 8), label_font.clone()))
            .map_err(|e| plot_error(&e))?;
    }
    let legend_font = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (s, (label, color)) in series.iter().enumerate() {
        let y = 60 + 24 * s as i32;
        legend_area
            .draw(&Rectangle::new([(10, y - 7), (24, y + 7)], color.filled()))
            .map_err(|e| plot_error(&e))?;
        legend_area
            .draw(&Text::new(label.as_str(), (32, y), legend_font.clone()))
            .map_err(|e| plot_error(&e))?;
    }
    root.present().map_err(|e| plot_error(&e))?;
    Ok(())
}

/// Draws metric `key` of consecutive training runs (each a run directory with a
/// `metrics.jsonl`) over the global step into the SVG file `path`: run `i`'s steps follow run
/// `i − 1`'s, one coloured line per run, named by its directory. Lines without `key` are
/// skipped; runs without a metrics file draw nothing.
pub fn plot_curves(runs: &[std::path::PathBuf], key: &str, path: &Path) -> Result<()> {
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::with_capacity(runs.len());
    let mut offset = 0.0;
    for run in runs {
        let metrics = run.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        let points: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|v| Some((offset + v["step"].as_f64()?, v[key].as_f64()?)))
            .collect();
        offset = points.last().map_or(offset, |p| p.0);
        let name =
            run.file_name().map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into_owned());
        lines.push((name, points));
    }
    plot_lines(&format!("{key} per step"), "step", key, &lines, path)
}

/// Draws named lines of `(x, y)` points into the SVG file `path`, one colour per line, with a
/// legend; the axes span `0..max x` and `min(0, min y)..max(1, max y)`.
pub fn plot_lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[(String, Vec<(f64, f64)>)],
    path: &Path,
) -> Result<()> {
    let plot_error =
        |e: &dyn std::fmt::Display| EvalError::Plot { path: path.to_path_buf(), message: e.to_string() };
    let (x_max, y_range) = lines
        .iter()
        .flat_map(|(_, p)| p)
        .fold((1.0_f64, (0.0_f64, 1.0_f64)), |(x, (lo, hi)), p| (x.max(p.0), (lo.min(p.1), hi.max(p.1))));
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..x_max, y_range.0..y_range.1)
        .map_err(|e| plot_error(&e))?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(|e| plot_error(&e))?;
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| plot_error(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(&e))?;
    root.present().map_err(|e| plot_error(&e))
}

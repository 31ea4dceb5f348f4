//! How a run shows its steps on stderr: on a terminal, a progress bar with the ETA and the few
//! metrics that matter; elsewhere (CI, pipes), a plain line every tenth of the run; with
//! [`set_verbose`], every step's metrics on a line of their own. The full metrics are always
//! in `metrics.jsonl`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Print every step's metrics (`--verbose`) instead of a bar or periodic lines.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// The metrics shown beside the bar, in order, with their short names.
const KEY_METRICS: [(&str, &str); 6] = [
    ("reward", "reward"),
    ("accuracy", "acc"),
    ("response_length", "len"),
    ("kl", "kl"),
    ("loss", "loss"),
    ("grad_norm", "|g|"),
];

/// The display of one run's steps.
pub struct StepProgress {
    label: String,
    steps: usize,
    first: usize,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl StepProgress {
    /// The display of run `label`'s steps `first..=steps` (earlier ones were done before a
    /// resume).
    pub fn new(label: &str, first: usize, steps: usize) -> Self {
        let verbose = VERBOSE.load(Ordering::Relaxed);
        let bar = (!verbose && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} eta {eta} | {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.set_position(first.saturating_sub(1) as u64);
            bar
        });
        StepProgress { label: label.to_string(), steps, first, started: Instant::now(), bar }
    }

    /// Shows that `step` finished with `metrics`.
    pub fn step(&self, step: usize, metrics: &Value) {
        let key: Vec<String> = KEY_METRICS
            .iter()
            .filter_map(|(name, short)| metrics[*name].as_f64().map(|v| format!("{short} {v:.3}")))
            .collect();
        let key = key.join(" ");
        if let Some(bar) = &self.bar {
            bar.set_message(key);
            bar.set_position(step as u64);
            if step >= self.steps {
                bar.finish();
            }
            return;
        }
        if VERBOSE.load(Ordering::Relaxed) {
            let all: Vec<String> = metrics
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_f64().map(|v| format!("{k} {v:.4}")))
                .collect();
            eprintln!("{} step {step}/{} | {}", self.label, self.steps, all.join(" | "));
            return;
        }
        let every = self.steps.div_ceil(10).max(1);
        if step.is_multiple_of(every) || step == self.steps || step == self.first {
            let done = step + 1 - self.first;
            let per_step = self.started.elapsed().as_secs_f64() / done as f64;
            let eta = per_step * self.steps.saturating_sub(step) as f64;
            eprintln!(
                "{} step {step}/{} | {key} | {per_step:.1} s/step, eta {eta:.0} s",
                self.label, self.steps
            );
        }
    }
}

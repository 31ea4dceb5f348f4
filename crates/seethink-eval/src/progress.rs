//! How long work shows itself on stderr: on a terminal, a progress bar with the ETA and a few
//! numbers that matter; elsewhere (CI, pipes), a plain line every tenth of the work; with
//! [`set_verbose`], every update on a line of its own with everything there is to say. Training
//! steps (`seethink_rl::progress`) and held-out evaluations use it.

use std::cell::Cell;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static VERBOSE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether displays made on this thread stay hidden ([`quietly`]).
    static HIDDEN: Cell<bool> = const { Cell::new(false) };
}

/// Print every update in full (`--verbose`) instead of a bar or periodic lines.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// `work()` with the displays it makes on this thread hidden: for work running beside other
/// work that shows its progress (a held-out evaluation beside the next phase's training).
pub fn quietly<R>(work: impl FnOnce() -> R) -> R {
    let before = HIDDEN.replace(true);
    let result = work();
    HIDDEN.set(before);
    result
}

/// The display of one piece of work: `total` units (steps, tasks) of which those before `first`
/// were done earlier (a resumed run).
pub struct Progress {
    label: String,
    unit: &'static str,
    total: usize,
    first: usize,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Made inside [`quietly`]: shows nothing.
    hidden: bool,
}

impl Progress {
    /// The display of `label`'s `unit`s `first..=total`.
    pub fn new(label: &str, unit: &'static str, first: usize, total: usize) -> Self {
        let (verbose, hidden) = (VERBOSE.load(Ordering::Relaxed), HIDDEN.get());
        let bar = (!verbose && !hidden && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} eta {eta} | {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.set_position(first.saturating_sub(1) as u64);
            bar
        });
        Progress { label: label.to_string(), unit, total, first, started: Instant::now(), bar, hidden }
    }

    /// Shows that units up to `done` finished: `brief` beside the bar and on the periodic
    /// lines, `full` on verbose lines.
    pub fn update(&self, done: usize, brief: &str, full: &str) {
        if self.hidden {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(brief.to_string());
            bar.set_position(done as u64);
            if done >= self.total {
                bar.finish();
            }
            return;
        }
        let (label, unit, total) = (&self.label, self.unit, self.total);
        if VERBOSE.load(Ordering::Relaxed) {
            eprintln!("{label} {unit} {done}/{total} | {full}");
            return;
        }
        let every = total.div_ceil(10).max(1);
        if done.is_multiple_of(every) || done == total || done == self.first {
            let per_unit =
                self.started.elapsed().as_secs_f64() / (done + 1).saturating_sub(self.first).max(1) as f64;
            let eta = per_unit * total.saturating_sub(done) as f64;
            eprintln!("{label} {unit} {done}/{total} | {brief} | {per_unit:.1} s/{unit}, eta {eta:.0} s");
        }
    }
}

//! How a run shows its steps ([`seethink_eval::progress`]): beside the bar and on periodic lines
//! the few metrics that matter, on verbose lines every metric. The full metrics are always in
//! `metrics.jsonl`.

pub use seethink_eval::progress::set_verbose;
use seethink_eval::progress::Progress;

use crate::metrics::StepMetrics;

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
pub struct StepProgress(Progress);

impl StepProgress {
    /// The display of run `label`'s steps `first..=steps` (earlier ones were done before a
    /// resume).
    pub fn new(label: &str, first: usize, steps: usize) -> Self {
        StepProgress(Progress::new(label, "step", first, steps))
    }

    /// Shows that `step` finished with `metrics`.
    pub fn step(&self, step: usize, metrics: &StepMetrics) {
        // the learning rate in scientific notation (5e-5 would round to 0.0001 in fixed digits)
        let numbers = |keys: &mut dyn Iterator<Item = (String, f64)>, digits: usize| {
            keys.map(|(name, v)| match name.as_str() {
                "lr" => format!("{name} {v:.2e}"),
                _ => format!("{name} {v:.digits$}"),
            })
            .collect::<Vec<_>>()
        };
        let key = numbers(
            &mut KEY_METRICS.iter().filter_map(|(name, short)| Some((short.to_string(), metrics.get(name)?))),
            3,
        );
        let all = numbers(&mut metrics.iter().map(|(name, value)| (name.to_string(), value)), 4);
        self.0.update(step, &key.join(" "), &all.join(" | "));
    }
}

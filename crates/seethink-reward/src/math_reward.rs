//! The reward used for every training stage: format + accuracy on the boxed answer.

use seethink_data::Task;

use crate::boxed::{last_boxed, too_complex};
use crate::format::{clean_response, format_score_cleaned};
use crate::grade::grade_answer;
use crate::{Extensions, Reward, RewardBreakdown};

/// The reference's format weight.
pub const DEFAULT_FORMAT_WEIGHT: f32 = 0.1;

/// EasyR1's `math` reward with the paper's complexity guard (the reference, unless
/// `extensions` turns some on).
///
/// For a response and the task's reference answer (`Task::answer`):
/// 1. clean the response ([`clean_response`]);
/// 2. `format` = 1 if the cleaned response fully matches `<think>.*</think>.*\\boxed\{.*\}.*`;
/// 3. `accuracy` = 1 if the cleaned response has a last balanced `\boxed{...}` ([`last_boxed`])
///    whose content is not [`too_complex`] and is graded correct ([`grade_answer`]), else 0;
/// 4. `overall` = (1 − w)·accuracy + w·format with w = `format_weight` (0.1 by default, so
///    0.9·accuracy + 0.1·format). A weight outside `[0, 1]` is clamped; NaN means the default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MathReward {
    /// Weight of the format score in `overall`.
    pub format_weight: f32,
    /// Deviations from the reference (none by default).
    pub extensions: Extensions,
}

impl Default for MathReward {
    fn default() -> Self {
        MathReward { format_weight: DEFAULT_FORMAT_WEIGHT, extensions: Extensions::NONE }
    }
}

impl MathReward {
    /// Scores `response` against the reference answer `gold` (see the type's docs).
    pub fn score_answer(&self, response: &str, gold: &str) -> RewardBreakdown {
        let cleaned = clean_response(response);
        let format = format_score_cleaned(&cleaned);
        let ext = self.extensions;
        let correct = last_boxed(&cleaned, ext)
            .is_some_and(|ans| !too_complex(&ans, ext) && grade_answer(&ans, gold, ext));
        let accuracy = if correct { 1.0 } else { 0.0 };
        let w = if self.format_weight.is_nan() {
            DEFAULT_FORMAT_WEIGHT
        } else {
            self.format_weight.clamp(0.0, 1.0)
        };
        RewardBreakdown { overall: (1.0 - w) * accuracy + w * format, format, accuracy }
    }
}

impl Reward for MathReward {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        self.score_answer(response, &task.answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_format_and_accuracy() {
        let r = MathReward::default();
        let b = r.score_answer("<think>1+1</think> \\boxed{2}", "2");
        assert_eq!((b.format, b.accuracy), (1.0, 1.0));
        assert!((b.overall - 1.0).abs() < 1e-6);
        let b = r.score_answer("\\boxed{2}", "2");
        assert_eq!((b.format, b.accuracy), (0.0, 1.0));
        assert!((b.overall - 0.9).abs() < 1e-6);
        let b = r.score_answer("<think>x</think>\\boxed{3}", "2");
        assert!((b.overall - 0.1).abs() < 1e-6);
        assert_eq!(r.score_answer("2", "2"), RewardBreakdown::default());
    }

    #[test]
    fn guard_and_weights() {
        let r = MathReward::default();
        let long = format!("\\boxed{{{}}}", "1".repeat(60));
        assert_eq!(r.score_answer(&long, &"1".repeat(60)).accuracy, 0.0);
        let r = MathReward { format_weight: 0.5, ..Default::default() };
        assert!((r.score_answer("<think></think>\\boxed{1}", "2").overall - 0.5).abs() < 1e-6);
        let r = MathReward { format_weight: 7.0, ..Default::default() };
        assert_eq!(r.score_answer("\\boxed{2}", "2").overall, 0.0);
        let r = MathReward { format_weight: f32::NAN, ..Default::default() };
        assert!((r.score_answer("\\boxed{2}", "2").overall - 0.9).abs() < 1e-6);
    }
}

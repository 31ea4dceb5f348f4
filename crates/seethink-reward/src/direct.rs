//! A reward for tasks answered directly, without reasoning or a box.

use seethink_data::Task;

use crate::grade::grade_answer;
use crate::{Extensions, Reward, RewardBreakdown};

/// The whole response is the answer: `accuracy` = 1 if the trimmed response is graded equal
/// to the gold answer by [`grade_answer`] (the reference equivalence, with option letters
/// followed by punctuation, `A.` or `A)`, accepted: an unboxed reply often ends with one), else
/// 0; there is no format requirement, so `format` = 0 and `overall` = `accuracy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectAnswer;

impl Reward for DirectAnswer {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let extensions = Extensions { letter_punctuation: true, ..Extensions::NONE };
        let accuracy = if grade_answer(response.trim(), &task.answer, extensions) { 1.0 } else { 0.0 };
        RewardBreakdown { overall: accuracy, format: 0.0, accuracy }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(answer: &str) -> Task {
        Task {
            id: "t".into(),
            prompt: "q".into(),
            images: vec![],
            answer: answer.into(),
            capability: seethink_data::Capability::TextReasoning,
            level: None,
            pass_rate: None,
            source: "test".into(),
            meta: serde_json::Value::Null,
        }
    }

    #[test]
    fn grades_the_whole_trimmed_response() {
        assert_eq!(DirectAnswer.score(&task("B"), " B\n").accuracy, 1.0);
        assert_eq!(DirectAnswer.score(&task("1/2"), "\\frac{1}{2}").overall, 1.0);
        assert_eq!(DirectAnswer.score(&task("B"), "A").overall, 0.0);
        assert_eq!(DirectAnswer.score(&task("B"), "B is right").overall, 0.0);
        assert_eq!(DirectAnswer.score(&task("B"), "").overall, 0.0);
    }
}

//! The [`Task`] record that every trainer and evaluator sees.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The marker in [`Task::prompt`] that stands for one image; the i-th marker is the i-th entry of
/// [`Task::images`].
pub const IMAGE_MARKER: &str = "<image>";

/// Which capability a task exercises; the curriculum trains them in the order
/// perception → text reasoning → visual reasoning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Reading the image correctly: counting, colours, positions.
    Perception,
    /// Reasoning over text alone (no image).
    TextReasoning,
    /// Reasoning that needs both perception and multi-step computation.
    VisualReasoning,
}

impl Capability {
    /// All capabilities in curriculum order.
    pub const ALL: [Capability; 3] =
        [Capability::Perception, Capability::TextReasoning, Capability::VisualReasoning];

    /// The snake_case name used in JSONL files (`perception`, `text_reasoning`,
    /// `visual_reasoning`).
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Perception => "perception",
            Capability::TextReasoning => "text_reasoning",
            Capability::VisualReasoning => "visual_reasoning",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;

    /// Parses the snake_case name; the error is the unrecognised input.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| s.to_string())
    }
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageRef {
    /// An image file on disk (any format the consumer can decode).
    Path(PathBuf),
    /// An encoded image file (e.g. PNG) held in memory.
    Bytes(Vec<u8>),
}

/// One training or evaluation example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique id within its data set.
    pub id: String,
    /// The question text; each [`IMAGE_MARKER`] marks where the next image of
    /// [`Task::images`] goes.
    pub prompt: String,
    /// The images, in marker order.
    pub images: Vec<ImageRef>,
    /// The reference answer (what belongs inside `\boxed{}`).
    pub answer: String,
    /// The capability the task exercises.
    pub capability: Capability,
    /// Generator difficulty level, when the task was generated with one.
    pub level: Option<u32>,
    /// Empirical pass rate in `[0, 1]` (higher is easier), filled in by `seethink passrate`
    /// or read from the data (`pass_rate`, or `difficulty` as earlier seethink versions wrote).
    pub pass_rate: Option<f64>,
    /// Where the task comes from (data set or generator).
    pub source: String,
    /// Free-form extra data: scene ground truth, sub-questions, expression trees.
    pub meta: serde_json::Value,
}

impl Task {
    /// A text-only task `id` asking `prompt`, answered by `answer`: no images, level, pass rate
    /// or metadata, source `text`.
    pub fn text(
        id: impl Into<String>,
        prompt: impl Into<String>,
        answer: impl Into<String>,
        capability: Capability,
    ) -> Self {
        Task {
            id: id.into(),
            prompt: prompt.into(),
            images: Vec::new(),
            answer: answer.into(),
            capability,
            level: None,
            pass_rate: None,
            source: "text".into(),
            meta: serde_json::Value::Null,
        }
    }
}

/// Number of [`IMAGE_MARKER`]s in `prompt` (non-overlapping occurrences).
pub fn count_image_markers(prompt: &str) -> usize {
    prompt.matches(IMAGE_MARKER).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_roundtrip_through_str_and_serde() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Capability>(&json).unwrap(), c);
        }
        assert_eq!("vision".parse::<Capability>(), Err("vision".to_string()));
    }

    #[test]
    fn markers_are_counted() {
        assert_eq!(count_image_markers("no image"), 0);
        assert_eq!(count_image_markers("<image>\nA <image> and <image>"), 3);
    }
}

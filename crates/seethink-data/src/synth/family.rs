//! The interface of a task family's generator (perception, text reasoning, visual reasoning):
//! what it is asked for ([`TaskSlot`], [`AnswerStyle`]) and what it returns ([`SynthTask`]).

use serde::{Deserialize, Serialize};

use super::scene::Scene;
use crate::task::Task;

/// A generated task with its typed scene ground truth (also serialised in `task.meta`) and a
/// worked solution.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthTask {
    /// The task; images are in-memory PNG bytes.
    pub task: Task,
    /// The scene, for image tasks.
    pub scene: Option<Scene>,
    /// A short correct response ([`super::worked_response`]): the facts read from the scene and
    /// the computation step by step, then the answer in `\boxed{}`. The sandbox's base model is
    /// pretrained on these.
    pub solution: String,
}

impl SynthTask {
    /// The task as a supervised example: the same prompt and images, answered with the worked
    /// solution (the SFT trainer's target is a task's `answer`).
    pub fn solved(&self) -> Task {
        Task { answer: self.solution.clone(), ..self.task.clone() }
    }
}

/// How questions are asked and answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStyle {
    /// Perception as four-option multiple choice answered with a letter; every prompt ends with
    /// a "Think step by step, then put … in \boxed{}" line.
    #[default]
    Choice,
    /// Open questions answered with the count, colour, direction, object or number itself, and
    /// no instruction line: the sandbox's models learn the worked format
    /// (`<think>…</think>\boxed{…}`) in pretraining.
    Worked,
}

/// What a family's generator is asked for: the task's id, level, answer style and source.
#[derive(Clone, Copy)]
pub(crate) struct TaskSlot<'a> {
    pub id: &'a str,
    pub level: u32,
    pub style: AnswerStyle,
    pub source: &'a str,
}

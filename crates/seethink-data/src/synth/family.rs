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

    /// [`SynthTask::solved`] with the worked solution's steps in `verbosity`'s form: as they are
    /// when terse; with [`Verbosity::Varied`], in the expanded form ([`super::expanded_response`])
    /// for the tasks whose id hashes odd ([`crate::fnv1a`]), about half, the same for a task on
    /// every run.
    pub fn solved_in(&self, verbosity: Verbosity) -> Task {
        let expanded = verbosity == Verbosity::Varied && crate::fnv1a(&self.task.id) % 2 == 1;
        let thoughts = self.solution.strip_prefix("<think>").and_then(|rest| rest.split_once("</think>"));
        match (expanded, thoughts) {
            (true, Some((thoughts, _))) => {
                Task { answer: super::expanded_response(thoughts, &self.task.answer), ..self.task.clone() }
            }
            _ => self.solved(),
        }
    }
}

/// How long the worked solutions a sandbox base model is pretrained on are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// Each the shortest form of its steps (the committed base model's corpus).
    #[default]
    Terse,
    /// About half in the expanded form of the same steps ([`super::expanded_response`]), both
    /// graded right: a base whose response length RL can move.
    Varied,
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

#[cfg(test)]
mod tests {
    use super::super::{expanded_response, generate, FamilySpec, SynthConfig};
    use super::{AnswerStyle, Verbosity};

    #[test]
    fn the_expanded_form_numbers_the_same_steps_and_keeps_the_answer() {
        assert_eq!(
            expanded_response("Ann=3+4=7. Ben=7*2=14.", "14"),
            "<think>Let me work through this step by step. Step 1: Ann=3+4=7. Step 2: Ben=7*2=14. \
             So the answer is 14.</think>\\boxed{14}"
        );
    }

    /// Every family's tasks: terse as [`super::SynthTask::solved`]; varied, about half expanded,
    /// each with the same steps and the same boxed answer.
    #[test]
    fn a_varied_corpus_expands_about_half_of_the_solutions() {
        let spec = |max_level| FamilySpec { count: 100, min_level: 1, max_level };
        let config = SynthConfig {
            perception: spec(2),
            text_reasoning: spec(3),
            visual_reasoning: spec(2),
            answers: AnswerStyle::Worked,
        };
        let tasks = generate(&config, 5).unwrap();
        let mut expanded = 0;
        for t in &tasks {
            assert_eq!(t.solved_in(Verbosity::Terse), t.solved());
            let varied = t.solved_in(Verbosity::Varied).answer;
            if varied == t.solution {
                continue;
            }
            expanded += 1;
            let boxed = &t.solution[t.solution.find("</think>").unwrap()..];
            assert!(varied.ends_with(boxed), "{varied} against {}", t.solution);
            assert!(boxed.ends_with(&format!("\\boxed{{{}}}", t.task.answer)), "{}", t.solution);
            let steps = t.solution.strip_prefix("<think>").unwrap().split("</think>").next().unwrap();
            for sentence in steps.split_inclusive(". ").map(str::trim) {
                assert!(varied.contains(sentence), "{sentence} not in {varied}");
            }
        }
        assert!((120..=180).contains(&expanded), "{expanded} of 300 expanded");
    }
}

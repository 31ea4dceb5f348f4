//! The procedural capability benchmark: scenes of coloured shapes and the three task families
//! built on them (perception, text reasoning, visual reasoning), deterministic from a seed.
//!
//! Every image task stores its scene ground truth in `meta.scene`, and every task stores what is
//! needed to re-derive its answer ([`oracle::answer_from_ground_truth`]).

pub mod benchmark;
pub mod caption;
pub mod expr;
pub mod family;
pub mod oracle;
pub mod perception;
pub mod query;
pub mod render;
pub mod scene;
pub mod text_reasoning;
pub mod visual_reasoning;

pub use benchmark::{generate, write_benchmark, write_tasks, FamilySpec, LevelCount, Summary, SynthConfig};
pub use caption::{caption, caption_tasks, CAPTION_PROMPT, CAPTION_SOURCE};
pub use family::{AnswerStyle, SynthTask, Verbosity};

/// Last line of free-answer prompts.
pub const ANSWER_SUFFIX: &str = "Think step by step, then put the final answer in \\boxed{}.";
/// Last line of multiple-choice prompts.
pub const MCQ_SUFFIX: &str = "Think step by step, then put the letter of your answer in \\boxed{}.";

/// A worked response as the sandbox's models are trained to give it and the paper's reward
/// grades it: `<think>{thoughts}</think>\boxed{answer}`.
pub fn worked_response(thoughts: &str, answer: &str) -> String {
    format!("<think>{thoughts}</think>\\boxed{{{answer}}}")
}

/// The expanded form of a worked response: the same steps and answer in more words,
/// `<think>Let me work through this step by step. Step 1: {s₁} Step 2: {s₂} … So the answer is
/// {answer}.</think>\boxed{answer}`, where s₁, s₂, … are the thoughts' sentences (each ending at
/// a ". "). A sandbox base pretrained on both forms can answer at two lengths, so RL can move
/// its response length (`seethink pretrain --verbosity varied`).
pub fn expanded_response(thoughts: &str, answer: &str) -> String {
    let steps: Vec<String> = thoughts
        .split_inclusive(". ")
        .map(str::trim)
        .filter(|sentence| !sentence.is_empty())
        .enumerate()
        .map(|(i, sentence)| format!("Step {}: {sentence}", i + 1))
        .collect();
    let thoughts =
        format!("Let me work through this step by step. {} So the answer is {answer}.", steps.join(" "));
    worked_response(&thoughts, answer)
}

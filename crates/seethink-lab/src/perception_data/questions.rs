//! The questions of the perception-data pipeline: what a captioned image is, what a question
//! about it is, the prompt templates, reading a question model's output, and grading an answer.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::reward::{grade_answer, last_boxed, Extensions};

/// One image with its dense caption (a line of the captions file: `image`, `caption`,
/// optionally `id`).
#[derive(Clone, Debug, PartialEq)]
pub struct Captioned {
    pub id: String,
    /// The image, resolved against the captions file's directory.
    pub image: PathBuf,
    pub caption: String,
}

/// A question about a captioned image: multiple choice (`options`, the answer a letter) or
/// short answer (no options, the answer a word or phrase).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// `<caption id>-q<j>`.
    pub id: String,
    pub caption_id: String,
    pub image: PathBuf,
    pub caption: String,
    pub question: String,
    /// The options' texts, lettered A, B, … in order.
    #[serde(default)]
    pub options: Vec<String>,
    pub answer: String,
}

impl Question {
    /// The options as `A<sep> <text>` lines (`. ` in the checks' prompts, `: ` in the training
    /// prompt, as the reference code writes them).
    fn lettered_options(&self, separator: &str) -> String {
        let lines: Vec<String> =
            self.options.iter().enumerate().map(|(i, o)| format!("{}{separator} {o}", letter(i))).collect();
        lines.join("\n")
    }

    /// Whether `response` answers the question: for multiple choice, the letter read from it
    /// ([`answer_letter`]) is the answer; for short answer, its last `\boxed{}` (or the whole
    /// response without one) grades as the answer (`grade_answer`, a trailing full stop
    /// ignored).
    pub fn is_answered_by(&self, response: &str) -> bool {
        match self.options.is_empty() {
            true => {
                let extensions = Extensions { letter_punctuation: true, ..Extensions::NONE };
                let given = last_boxed(response, extensions).unwrap_or_else(|| response.to_string());
                grade_answer(given.trim().trim_end_matches('.'), &self.answer, extensions)
            }
            false => {
                answer_letter(response, self.options.len()).map(String::from) == Some(self.answer.clone())
            }
        }
    }

    /// Whether `response` gives an answer at all: a letter of the options for multiple choice
    /// (the reference filter counts an image-only answer without one as neither right nor
    /// wrong, and drops the question), any text for short answer.
    pub fn is_attempted_by(&self, response: &str) -> bool {
        match self.options.is_empty() {
            true => !response.trim().is_empty(),
            false => answer_letter(response, self.options.len()).is_some(),
        }
    }
}

/// Option letter `i`: A, B, …
fn letter(i: usize) -> char {
    (b'A' + i as u8) as char
}

/// The option letter a response names among the first `options` letters, as the reference
/// code's filter reads it (`extract_letter` of `data_pipeline/filter_perception.py`, its A–D
/// generalised to the options): the letter after the first `answer` (any case) followed by
/// optional spaces, an optional `:` or `-` and optional spaces, upper-cased; else the first
/// option letter standing alone as a word (`\b[A-D]\b`) in the upper-cased response, so an
/// article `a` reads as `A`, as there. `None` when neither is found.
pub fn answer_letter(response: &str, options: usize) -> Option<char> {
    let is_option = |c: char| c.is_ascii_uppercase() && ((c as u8 - b'A') as usize) < options;
    let text = response.trim();
    let lower = text.to_ascii_lowercase();
    for (at, _) in lower.match_indices("answer") {
        let rest = text[at + "answer".len()..].trim_start();
        let rest = rest.strip_prefix([':', '-']).unwrap_or(rest).trim_start();
        if let Some(c) = rest.chars().next().map(|c| c.to_ascii_uppercase()).filter(|&c| is_option(c)) {
            return Some(c);
        }
    }
    let upper: Vec<char> = text.to_uppercase().chars().collect();
    let word =
        |i: Option<usize>| i.and_then(|i| upper.get(i)).is_some_and(|c| c.is_alphanumeric() || *c == '_');
    (0..upper.len())
        .find(|&i| is_option(upper[i]) && !word(i.checked_sub(1)) && !word(Some(i + 1)))
        .map(|i| upper[i])
}

/// The questions a question model wrote: each ```` ```json ```` fenced block holding an object
/// `{"question", "options": {"A": …, "B": …}, "answer"}` (the reference code's
/// `prompts/docci_mcq_generation.txt` asks for one; its `generate_qa.py` reads the block the
/// same way), or without `options` a short-answer question. Options must run from A with no
/// gap, at least two, and the answer must be one of their letters. Returns the well-formed
/// questions (as `(question, options, answer)`) and the number of malformed blocks (an output
/// with no block counts as one).
pub fn parse_questions(text: &str) -> (Vec<(String, Vec<String>, String)>, usize) {
    let mut questions = Vec::new();
    let mut malformed = 0;
    let mut rest = text;
    while let Some(start) = rest.find("```json") {
        let body = &rest[start + "```json".len()..];
        let Some(end) = body.find("```") else {
            malformed += 1;
            break;
        };
        match parse_block(body[..end].trim()) {
            Some(question) => questions.push(question),
            None => malformed += 1,
        }
        rest = &body[end + 3..];
    }
    if questions.is_empty() && malformed == 0 {
        malformed = 1;
    }
    (questions, malformed)
}

/// One block's JSON object, or `None` if malformed.
fn parse_block(json: &str) -> Option<(String, Vec<String>, String)> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let question = value["question"].as_str()?.trim().to_string();
    let answer = value["answer"].as_str()?.trim().to_string();
    let given = value.get("options").and_then(|o| o.as_object());
    let mut options = Vec::new();
    for i in 0..given.map_or(0, |o| o.len()) {
        options.push(given?.get(&letter(i).to_string())?.as_str()?.trim().to_string());
    }
    let lettered = (0..options.len()).any(|i| answer == letter(i).to_string());
    let well_formed = !question.is_empty()
        && !answer.is_empty()
        && options.len() != 1
        && options.iter().all(|o| !o.is_empty())
        && (options.is_empty() || lettered);
    well_formed.then_some((question, options, answer))
}

/// The prompt templates (`configs/perception_data/`, embedded; see its README).
#[derive(Clone, Debug, PartialEq)]
pub struct Templates {
    pub questions: String,
    pub caption_check: String,
    pub caption_check_short: String,
    pub image_check: String,
    pub image_check_short: String,
    pub task: String,
    pub task_short: String,
}

impl Templates {
    /// The shipped templates, each replaced by `dir`'s file of the same name where it has one.
    pub fn shipped_or_from(dir: Option<&Path>) -> Result<Self> {
        let read = |name: &str, shipped: &str| -> Result<String> {
            let Some(path) = dir.map(|d| d.join(name)).filter(|p| p.exists()) else {
                return Ok(shipped.to_string());
            };
            std::fs::read_to_string(&path).with_context(|| format!("reading the template {}", path.display()))
        };
        let templates = Templates {
            questions: read(
                "questions.txt",
                include_str!("../../../../configs/perception_data/questions.txt"),
            )?,
            caption_check: read(
                "caption_check.txt",
                include_str!("../../../../configs/perception_data/caption_check.txt"),
            )?,
            caption_check_short: read(
                "caption_check_short.txt",
                include_str!("../../../../configs/perception_data/caption_check_short.txt"),
            )?,
            image_check: read(
                "image_check.txt",
                include_str!("../../../../configs/perception_data/image_check.txt"),
            )?,
            image_check_short: read(
                "image_check_short.txt",
                include_str!("../../../../configs/perception_data/image_check_short.txt"),
            )?,
            task: read("task.txt", include_str!("../../../../configs/perception_data/task.txt"))?,
            task_short: read(
                "task_short.txt",
                include_str!("../../../../configs/perception_data/task_short.txt"),
            )?,
        };
        for (name, text, needs) in [
            ("questions.txt", &templates.questions, &["{caption}"][..]),
            ("caption_check.txt", &templates.caption_check, &["{caption}", "{question}", "{options}"][..]),
            ("caption_check_short.txt", &templates.caption_check_short, &["{caption}", "{question}"][..]),
            ("image_check.txt", &templates.image_check, &["<image>", "{question}", "{options}"][..]),
            ("image_check_short.txt", &templates.image_check_short, &["<image>", "{question}"][..]),
            ("task.txt", &templates.task, &["<image>", "{question}", "{options_with_colons}"][..]),
            ("task_short.txt", &templates.task_short, &["<image>", "{question}"][..]),
        ] {
            if let Some(missing) = needs.iter().find(|n| !text.contains(*n)) {
                bail!("the template {name} has no {missing}");
            }
            if name.starts_with("caption") && text.contains("<image>") {
                bail!(
                    "the template {name} shows the image (<image>): the caption side answers from text alone"
                );
            }
        }
        Ok(templates)
    }

    /// The question model's prompt for `caption`.
    pub fn questions_prompt(&self, caption: &str) -> String {
        self.questions.replace("{caption}", caption)
    }

    /// The caption side's prompt for `question` (text only).
    pub fn caption_prompt(&self, question: &Question) -> String {
        let template =
            if question.options.is_empty() { &self.caption_check_short } else { &self.caption_check };
        fill(template, question).replace("{caption}", &question.caption)
    }

    /// The image side's prompt for `question` (its `<image>` is the question's image).
    pub fn image_prompt(&self, question: &Question) -> String {
        let template = if question.options.is_empty() { &self.image_check_short } else { &self.image_check };
        fill(template, question)
    }

    /// The training prompt of a kept `question` (its `<image>` is the question's image).
    pub fn task_prompt(&self, question: &Question) -> String {
        let template = if question.options.is_empty() { &self.task_short } else { &self.task };
        fill(template, question)
    }
}

/// `template` with the question and its lettered options filled in (`{options}`: `A. …`,
/// `{options_with_colons}`: `A: …`).
fn fill(template: &str, question: &Question) -> String {
    template
        .replace("{question}", &question.question)
        .replace("{options_with_colons}", &question.lettered_options(":"))
        .replace("{options}", &question.lettered_options("."))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{answer_letter, parse_questions, Question, Templates};

    #[test]
    fn answer_letters_are_read_as_the_reference_filter_reads_them() {
        for (response, letter) in [
            ("B", Some('B')),
            ("B.", Some('B')),
            ("(C) blue", Some('C')),
            ("Answer: a", Some('A')),
            // no letter right after `answer`: the first standalone one
            ("The answer is D", Some('D')),
            ("the answer - c.", Some('C')),
            ("I think it is B, not C", Some('B')),
            // the article reads as option A, as in the reference
            ("It is a red circle", Some('A')),
            ("Blue", None),
            ("E", None),
            ("BC", None),
            ("", None),
        ] {
            assert_eq!(answer_letter(response, 4), letter, "{response:?}");
        }
    }

    #[test]
    fn a_question_model_s_output_parses_into_questions_and_malformed_blocks() {
        let text = "```json\n{\"question\": \"What colour is the circle?\", \"options\": {\"A\": \"red\", \"B\": \"blue\", \"C\": \"green\", \"D\": \"grey\"}, \"answer\": \"B\"}\n```\n\
            ```json\n{\"question\": \"Where is the star?\", \"answer\": \"top left\"}\n```\n\
            ```json\n{\"question\": \"Gap\", \"options\": {\"A\": \"x\", \"C\": \"y\"}, \"answer\": \"A\"}\n```\n\
            ```json\n{\"question\": \"Off\", \"options\": {\"A\": \"x\", \"B\": \"y\"}, \"answer\": \"C\"}\n```\n\
            ```json\n{\"question\": \"cut\n";
        let (questions, malformed) = parse_questions(text);
        assert_eq!(malformed, 3);
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0].1, ["red", "blue", "green", "grey"]);
        assert_eq!(questions[0].2, "B");
        assert_eq!((questions[1].1.len(), questions[1].2.as_str()), (0, "top left"));
        assert_eq!(parse_questions("no block here"), (vec![], 1));
    }

    #[test]
    fn a_question_is_answered_by_its_letter_or_its_short_answer() {
        let choice = Question {
            id: "c-q0".into(),
            caption_id: "c".into(),
            image: PathBuf::from("c.png"),
            caption: "A red circle.".into(),
            question: "What colour is the circle?".into(),
            options: vec!["red".into(), "blue".into()],
            answer: "A".into(),
        };
        assert!(choice.is_answered_by("A.") && !choice.is_answered_by("B") && !choice.is_answered_by("red"));
        assert!(choice.is_attempted_by("B") && !choice.is_attempted_by("red"));
        let short = Question { options: vec![], answer: "red".into(), ..choice.clone() };
        assert!(short.is_answered_by("Red.") && short.is_answered_by("<think>x</think>\\boxed{red}"));
        assert!(!short.is_answered_by("blue"));
        let templates = Templates::shipped_or_from(None).unwrap();
        let prompt = templates.caption_prompt(&choice);
        assert!(
            prompt.contains("Image Caption: A red circle.") && prompt.contains("Options:\nA. red\nB. blue")
        );
        assert!(templates
            .image_prompt(&choice)
            .starts_with("<image>\nPlease answer based on the image.\nQuestion: What"));
        assert_eq!(
            templates.task_prompt(&choice),
            "<image>What colour is the circle?\nOptions:\nA: red\nB: blue\nRespond using only the letter corresponding to the correct answer.\n"
        );
        assert!(templates.questions_prompt("A red circle.").contains("# Image description\nA red circle.\n"));
    }

    #[test]
    fn a_template_without_its_placeholders_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("image_check.txt"), "{question}\n{options}\n").unwrap();
        let error = Templates::shipped_or_from(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("image_check.txt has no <image>"), "{error}");
        std::fs::write(dir.path().join("image_check.txt"), "<image>{question}{options}").unwrap();
        std::fs::write(dir.path().join("caption_check.txt"), "<image>{caption}{question}{options}").unwrap();
        let error = Templates::shipped_or_from(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("caption_check.txt shows the image"), "{error}");
    }
}

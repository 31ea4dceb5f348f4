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
    /// The options as `A. <text>` lines.
    pub fn lettered_options(&self) -> String {
        self.options
            .iter()
            .enumerate()
            .map(|(i, o)| format!("{}. {o}", letter(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether `response` answers the question: for multiple choice, its letter
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
    /// (the paper's filter counts an image-only answer without one as neither right nor wrong,
    /// and drops the question), any text for short answer.
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

/// The option letter a response gives among `options` letters: the content of its last
/// `\boxed{}` if any, else the response, with an `Answer:` prefix and brackets removed, when it
/// starts with one of the letters not followed by a letter or digit (`B`, `B.`, `(B)`, `B) red`,
/// `Answer: C`). `None` otherwise.
pub fn answer_letter(response: &str, options: usize) -> Option<&str> {
    let text = match response.rfind("\\boxed{") {
        Some(start) => {
            let inner = &response[start + "\\boxed{".len()..];
            &inner[..inner.find('}')?]
        }
        None => response,
    };
    let text = text.trim_start();
    let text = strip_prefix_ignoring_case(text, "answer:").unwrap_or(text).trim_start();
    let text = text.trim_start_matches(['(', '[']);
    let first = text.chars().next()?;
    let valid = first.is_ascii_uppercase() && ((first as u8 - b'A') as usize) < options;
    let alone = !text[first.len_utf8()..].chars().next().is_some_and(char::is_alphanumeric);
    (valid && alone).then(|| &text[..1])
}

fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// The questions a question model wrote (see `configs/perception_data/questions.txt`): blocks
/// starting at a `Question:` line, each with lettered option lines (`A. …` or `A) …`, from A
/// on) and an `Answer:` line. A block with options needs at least two, in order from A, and an
/// answer among their letters; a block without is a short-answer question. Returns the
/// well-formed questions (as `(question, options, answer)`) and the number of malformed blocks.
pub fn parse_questions(text: &str) -> (Vec<(String, Vec<String>, String)>, usize) {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = strip_prefix_ignoring_case(line, "question:") {
            blocks.push(vec![rest.trim()]);
        } else if let Some(block) = blocks.last_mut() {
            if !line.is_empty() {
                block.push(line);
            }
        }
    }
    let mut questions = Vec::new();
    let mut malformed = 0;
    for block in blocks {
        match parse_block(&block) {
            Some(question) => questions.push(question),
            None => malformed += 1,
        }
    }
    (questions, malformed)
}

/// One `Question:` block (its first line the text after `Question:`), or `None` if malformed.
fn parse_block(lines: &[&str]) -> Option<(String, Vec<String>, String)> {
    let mut question = vec![lines[0]];
    let mut options: Vec<String> = Vec::new();
    let mut answer = None;
    for line in &lines[1..] {
        if let Some(rest) = strip_prefix_ignoring_case(line, "answer:") {
            answer = Some(rest.trim().trim_end_matches('.').to_string());
            break;
        }
        let next = letter(options.len());
        let mut chars = line.chars();
        match (chars.next(), chars.next()) {
            (Some(l), Some('.' | ')')) if l == next => options.push(chars.as_str().trim().to_string()),
            _ if options.is_empty() => question.push(line),
            _ => return None,
        }
    }
    let question = question.join(" ").trim().to_string();
    let answer = answer.filter(|a| !a.is_empty())?;
    if question.is_empty() || options.iter().any(String::is_empty) || options.len() == 1 {
        return None;
    }
    if !options.is_empty() {
        let letter = answer_letter(&answer, options.len())?;
        return Some((question, options, letter.to_string()));
    }
    Some((question, options, answer))
}

/// The prompt templates (`configs/perception_data/`, embedded; see its README).
#[derive(Clone, Debug, PartialEq)]
pub struct Templates {
    pub questions: String,
    pub caption_check: String,
    pub caption_check_short: String,
    pub image_check: String,
    pub image_check_short: String,
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
            questions: read("questions.txt", include_str!("../../configs/perception_data/questions.txt"))?,
            caption_check: read(
                "caption_check.txt",
                include_str!("../../configs/perception_data/caption_check.txt"),
            )?,
            caption_check_short: read(
                "caption_check_short.txt",
                include_str!("../../configs/perception_data/caption_check_short.txt"),
            )?,
            image_check: read(
                "image_check.txt",
                include_str!("../../configs/perception_data/image_check.txt"),
            )?,
            image_check_short: read(
                "image_check_short.txt",
                include_str!("../../configs/perception_data/image_check_short.txt"),
            )?,
        };
        for (name, text, needs) in [
            ("questions.txt", &templates.questions, &["{caption}"][..]),
            ("caption_check.txt", &templates.caption_check, &["{caption}", "{question}", "{options}"][..]),
            ("caption_check_short.txt", &templates.caption_check_short, &["{caption}", "{question}"][..]),
            ("image_check.txt", &templates.image_check, &["<image>", "{question}", "{options}"][..]),
            ("image_check_short.txt", &templates.image_check_short, &["<image>", "{question}"][..]),
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

    /// The question model's prompt for `caption`, asking for `count` questions.
    pub fn questions_prompt(&self, caption: &str, count: usize) -> String {
        self.questions.replace("{count}", &count.to_string()).replace("{caption}", caption)
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
}

/// `template` with the question and its lettered options filled in.
fn fill(template: &str, question: &Question) -> String {
    template.replace("{question}", &question.question).replace("{options}", &question.lettered_options())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{answer_letter, parse_questions, Question, Templates};

    #[test]
    fn answer_letters_are_read_as_the_paper_s_filter_reads_them() {
        for (response, letter) in [
            ("B", Some("B")),
            ("B.", Some("B")),
            ("(C) blue", Some("C")),
            ("Answer: A", Some("A")),
            ("<think>red</think>\\boxed{D}", Some("D")),
            ("Blue", None),
            ("E", None),
            ("", None),
            ("the answer is B", None),
        ] {
            assert_eq!(answer_letter(response, 4), letter, "{response:?}");
        }
    }

    #[test]
    fn a_question_model_s_output_parses_into_questions_and_malformed_blocks() {
        let text = "Here are the questions.\n\
            Question: What colour is the circle?\nA. red\nB. blue\nC) green\nD. yellow\nAnswer: B\n\n\
            Question: How many squares\nare there?\nA. 1\nB. 2\nAnswer: (A)\n\
            Question: Where is the star?\nAnswer: top left.\n\
            Question: Broken options\nA. one\nC. three\nAnswer: A\n\
            Question: No answer\nA. x\nB. y\n\
            Question: Answer not an option\nA. x\nB. y\nAnswer: C\n";
        let (questions, malformed) = parse_questions(text);
        assert_eq!(malformed, 3);
        assert_eq!(questions.len(), 3);
        assert_eq!(questions[0].1, ["red", "blue", "green", "yellow"]);
        assert_eq!(questions[0].2, "B");
        assert_eq!(questions[1].0, "How many squares are there?");
        assert_eq!(questions[1].2, "A");
        assert_eq!((questions[2].1.len(), questions[2].2.as_str()), (0, "top left"));
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
        assert!(short.is_answered_by("Red.") && !short.is_answered_by("blue"));
        let templates = Templates::shipped_or_from(None).unwrap();
        let prompt = templates.caption_prompt(&choice);
        assert!(
            prompt.contains("A red circle.")
                && prompt.contains("A. red\nB. blue")
                && !prompt.contains("<image>")
        );
        assert!(templates.image_prompt(&choice).starts_with("<image>\nWhat colour is the circle?\nA. red"));
        assert!(templates.questions_prompt("A red circle.", 3).contains("Write 3 multiple-choice questions"));
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

//! VLMEvalKit's rule-based answer matching, ported from `vlmeval/utils/matching_util.py`
//! (`can_infer_option`, `can_infer_text`, `can_infer`), `vlmeval/dataset/utils/yorn.py`
//! (`YOrN_Extraction`), `vlmeval/smp/misc.py` (`process_punctuation`) and
//! `vlmeval/inference.py` (the `SPLIT_THINK` split, then the predictions file's round trip:
//! [`scored_prediction`]), plus the stand-in for the GPT judge that seethink uses instead
//! ([`judged_answer`]).

use std::sync::OnceLock;

use regex::Regex;
use seethink_reward::{last_boxed, Extensions};

use super::python::pandas_missing;

/// An option key (`A`, `B`, …) with its text.
pub type Choice = (String, String);

/// The part of a response VLMEvalKit scores when `SPLIT_THINK` is set: the text after the last
/// `</think>`, trimmed; the whole response when it has no `</think>`.
pub fn split_thinking(response: &str) -> &str {
    response.rsplit_once("</think>").map_or(response, |(_, answer)| answer.trim())
}

/// The prediction VLMEvalKit scores for `response`: [`split_thinking`] (`infer_data_job` in
/// `vlmeval/inference.py` splits before it writes the predictions file), then `nan` where pandas
/// reads that text back as missing ([`pandas_missing`]: the empty string, `None`, `NA`, …),
/// as every evaluator turns the missing cell into a string (`str(x)`) before scoring it.
pub fn scored_prediction(response: &str) -> &str {
    let prediction = split_thinking(response);
    if pandas_missing(prediction) {
        "nan"
    } else {
        prediction
    }
}

/// The answer text that stands in for VLMEvalKit's GPT-judge extraction: the content of the last
/// `\boxed{}` of `prediction` (the reward crate's [`last_boxed`], reference rules), else the
/// whole prediction, trimmed.
pub fn judged_answer(prediction: &str) -> String {
    last_boxed(prediction, Extensions::NONE).unwrap_or_else(|| prediction.trim().to_string())
}

/// `can_infer_option`: the option a free-text answer names by its letter.
///
/// 1. An answer holding `Failed to obtain answer via API` names none.
/// 2. One of VLMEvalKit's refusal sentences (`Cannot determine the answer`, …) gives `Z`.
/// 3. Each of `.()[],:;!*#{}` becomes a space and the answer is split on whitespace. When
///    exactly one option key appears among the words, it is the answer if its first occurrence
///    is among the last four words (index > words − 5); when none does but the word `Z` does,
///    the answer is `Z`.
/// 4. Else `(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**` (the first match, upper-cased) if it
///    names an option.
///
/// VLMEvalKit also refuses an answer where `A` may be a quantifier, but only with its `VERBOSE`
/// environment variable set; that branch is left out (its default).
pub fn can_infer_option(answer: &str, choices: &[Choice]) -> Option<String> {
    const REFUSALS: [&str; 4] = [
        "Sorry, I can't help with images of people yet.",
        "I can't process this file.",
        "I'm sorry, but without the image provided",
        "Cannot determine the answer",
    ];
    if answer.contains("Failed to obtain answer via API") {
        return None;
    }
    if REFUSALS.iter().any(|r| answer.contains(r)) {
        return Some("Z".into());
    }
    let spaced: String = answer.chars().map(|c| if ".()[],:;!*#{}".contains(c) { ' ' } else { c }).collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let named: Vec<&Choice> = choices.iter().filter(|(key, _)| words.contains(&key.as_str())).collect();
    match named.as_slice() {
        [(key, _)] => {
            let first = words.iter().position(|w| w == key).unwrap_or(0) as i64;
            if first > words.len() as i64 - 5 {
                return Some(key.clone());
            }
        }
        [] if words.contains(&"Z") => return Some("Z".into()),
        _ => {}
    }
    static VERBOSE: OnceLock<Regex> = OnceLock::new();
    let verbose = VERBOSE.get_or_init(|| {
        Regex::new(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**").expect("static regex")
    });
    let letter = verbose.captures(answer)?.get(1)?.as_str().to_uppercase();
    choices.iter().any(|(key, _)| *key == letter).then_some(letter)
}

/// `can_infer_text`: the option whose text the answer contains. Both are lower-cased; an answer
/// longer than twice the options' texts together (in characters) names none; else the option
/// is the answer when its text is a substring of the answer and no other option's is.
pub fn can_infer_text(answer: &str, choices: &[Choice]) -> Option<String> {
    let answer = answer.to_lowercase();
    let total: usize = choices.iter().map(|(_, text)| text.chars().count()).sum();
    if answer.chars().count() > 2 * total {
        return None;
    }
    let found: Vec<&Choice> =
        choices.iter().filter(|(_, text)| answer.contains(&text.to_lowercase())).collect();
    match found.as_slice() {
        [(key, _)] => Some(key.clone()),
        _ => None,
    }
}

/// `can_infer`: [`can_infer_option`], else [`can_infer_text`].
pub fn can_infer(answer: &str, choices: &[Choice]) -> Option<String> {
    can_infer_option(answer, choices).or_else(|| can_infer_text(answer, choices))
}

/// The option a prediction ([`scored_prediction`]) chooses: VLMEvalKit's prefetch, [`can_infer`]
/// on the prediction; when that names none, where VLMEvalKit would ask its GPT judge, the same
/// rule on the [`judged_answer`] (the last `\boxed{}`). `None` when neither names an option
/// (VLMEvalKit's `Z` without a judge).
pub fn infer_choice(prediction: &str, choices: &[Choice]) -> Option<String> {
    can_infer(prediction, choices).or_else(|| can_infer(&judged_answer(prediction), choices))
}

/// What a yes/no answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum YesNo {
    /// `Yes`.
    Yes,
    /// `No`.
    No,
    /// Neither or both.
    Unknown,
}

/// `YOrN_Extraction`: the response lower-cased, through [`process_punctuation`], split on
/// whitespace; `Yes` when the word `yes` occurs and `no` does not, `No` for the reverse, else
/// `Unknown`.
pub fn yes_or_no(response: &str) -> YesNo {
    let cleaned = process_punctuation(&response.to_lowercase());
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    match (words.contains(&"yes"), words.contains(&"no")) {
        (true, false) => YesNo::Yes,
        (false, true) => YesNo::No,
        _ => YesNo::Unknown,
    }
}

/// `process_punctuation` (VQA's answer normalisation): each of ``;/[]"{}()=+\_-><@`,?!`` is
/// removed when the text has it followed or preceded by a space, or has a digit, comma, digit
/// anywhere, and becomes a space otherwise; then every `.` with no digit on either side is
/// removed, at most 32 of them (VLMEvalKit passes `re.UNICODE`, 32, as `re.sub`'s `count`).
/// Digits are ASCII digits here (Python's `\d` also matches other scripts' digits).
pub fn process_punctuation(text: &str) -> String {
    const PUNCTUATION: [char; 21] = [
        ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?',
        '!',
    ];
    let chars: Vec<char> = text.chars().collect();
    let digit_comma_digit =
        chars.windows(3).any(|w| w[0].is_ascii_digit() && w[1] == ',' && w[2].is_ascii_digit());
    let mut out = text.to_string();
    for p in PUNCTUATION {
        let spaced = text.contains(&format!("{p} ")) || text.contains(&format!(" {p}"));
        out = out.replace(p, if spaced || digit_comma_digit { "" } else { " " });
    }
    let chars: Vec<char> = out.chars().collect();
    let mut removed = 0;
    let mut result = String::with_capacity(out.len());
    for (i, &c) in chars.iter().enumerate() {
        let digit_before = i > 0 && chars[i - 1].is_ascii_digit();
        let digit_after = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
        if c == '.' && !digit_before && !digit_after && removed < 32 {
            removed += 1;
            continue;
        }
        result.push(c);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abcd() -> Vec<Choice> {
        ["red", "blue", "green", "yellow"]
            .iter()
            .zip(["A", "B", "C", "D"])
            .map(|(t, k)| (k.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn option_letters_are_read_as_vlmevalkit_reads_them() {
        let c = abcd();
        assert_eq!(can_infer_option("B", &c).as_deref(), Some("B"));
        assert_eq!(can_infer_option("The answer is (C).", &c).as_deref(), Some("C"));
        assert_eq!(can_infer_option("\\boxed{D}", &c).as_deref(), Some("D"));
        // two letters named: no single option; the verbose pattern then decides
        assert_eq!(can_infer_option("A or B", &c), None);
        assert_eq!(can_infer_option("B is wrong, so the correct answer is **A**", &c).as_deref(), Some("A"));
        // the only letter is too early: 6 words, first at 0, not > 6 − 5
        assert_eq!(can_infer_option("B seems right to me here", &c), None);
        assert_eq!(can_infer_option("Cannot determine the answer", &c).as_deref(), Some("Z"));
        assert_eq!(can_infer_option("Z", &c).as_deref(), Some("Z"));
        assert_eq!(can_infer_option("Failed to obtain answer via API B", &c), None);
        // lower-case letters are not options (the split is case-sensitive)
        assert_eq!(can_infer_option("b", &c), None);
    }

    #[test]
    fn option_texts_are_matched_when_short_and_unique() {
        let c = abcd();
        assert_eq!(can_infer_text("It is Blue", &c).as_deref(), Some("B"));
        assert_eq!(can_infer_text("blue or green", &c), None);
        // longer than 2 × (3 + 4 + 5 + 6) = 36 characters
        assert_eq!(can_infer_text(&format!("blue {}", "x".repeat(40)), &c), None);
        assert_eq!(can_infer("it is yellow", &c).as_deref(), Some("D"));
    }

    #[test]
    fn choices_fall_back_to_the_last_box() {
        let c = abcd();
        let long = "<think>A is red, B is blue</think>Between A and B I pick \\boxed{B}";
        assert_eq!(scored_prediction(long), "Between A and B I pick \\boxed{B}");
        assert_eq!(infer_choice(scored_prediction(long), &c).as_deref(), Some("B"));
        assert_eq!(infer_choice("A, B, C and D are all wrong", &c), None);
    }

    #[test]
    fn predictions_pandas_reads_as_missing_become_nan() {
        // `infer_data_job` splits at `</think>` and trims, then the file's round trip reads
        // `""` and `None` back as NaN, which `str()` makes `nan`; a space survives.
        assert_eq!(scored_prediction("<think>hm</think>  "), "nan");
        assert_eq!(scored_prediction("None"), "nan");
        assert_eq!(scored_prediction(""), "nan");
        assert_eq!(scored_prediction(" None "), " None ");
        // `nan` holds the text `a` of an option: can_infer_text picks it (`can_infer` on `str(nan)`)
        let options = [("A".to_string(), "a".to_string()), ("B".to_string(), "b".to_string())];
        assert_eq!(infer_choice(scored_prediction(""), &options).as_deref(), Some("A"));
    }

    #[test]
    fn yes_no_extraction() {
        assert_eq!(yes_or_no("Yes, there is a dog."), YesNo::Yes);
        assert_eq!(yes_or_no("No."), YesNo::No);
        assert_eq!(yes_or_no("\\boxed{No}"), YesNo::No);
        assert_eq!(yes_or_no("yes and no"), YesNo::Unknown);
        assert_eq!(yes_or_no("Nope"), YesNo::Unknown);
        assert_eq!(yes_or_no("yes-no"), YesNo::Unknown, "`-` becomes a space: both words");
    }

    #[test]
    fn punctuation_is_removed_or_spaced() {
        assert_eq!(process_punctuation("a-b"), "a b");
        assert_eq!(process_punctuation("a - b"), "a  b");
        assert_eq!(process_punctuation("1,000 (x)"), "1000 x");
        assert_eq!(process_punctuation("end. 3.5"), "end 3.5");
        assert_eq!(process_punctuation(&".".repeat(40)), ".".repeat(8));
    }
}

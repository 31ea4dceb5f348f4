//! The prompt's format instruction and the format half of the reward.

use std::sync::OnceLock;

use regex::Regex;

/// Removes all whitespace directly before or after `<`, `>` and `/` (the reference's
/// `re.sub(r"\s*(<|>|/)\s*", r"\1", response)`), so `< think >` reads as `<think>` and
/// `1 / 2` as `1/2`. Idempotent.
pub fn clean_response(response: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\s*(<|>|/)\s*").expect("static regex"))
        .replace_all(response, "${1}")
        .into_owned()
}

/// 1 when the whole of `cleaned` matches `<think>.*</think>.*\\boxed\{.*\}.*` with `.`
/// matching newlines (a full match), else 0. Expects [`clean_response`]'s output.
pub(crate) fn format_score_cleaned(cleaned: &str) -> f32 {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re =
        RE.get_or_init(|| Regex::new(r"(?s)\A<think>.*</think>.*\\boxed\{.*\}.*\z").expect("static regex"));
    if re.is_match(cleaned) {
        1.0
    } else {
        0.0
    }
}

/// The format score of a raw response: [`clean_response`], then 1 when the whole text matches
/// `<think>.*</think>.*\\boxed\{.*\}.*` (dot matches newline; the text must start with
/// `<think>`), else 0.
pub fn format_score(response: &str) -> f32 {
    format_score_cleaned(&clean_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_removes_whitespace_around_tag_characters() {
        assert_eq!(clean_response("< think >\n hi \n< / think >"), "<think>hi</think>");
        assert_eq!(clean_response("\\boxed{1 / 2}"), "\\boxed{1/2}");
        assert_eq!(clean_response("a  <  b"), "a<b");
        let once = clean_response(" x < y / z > w ");
        assert_eq!(clean_response(&once), once);
    }

    #[test]
    fn format_rule() {
        assert_eq!(format_score("<think>r</think> so \\boxed{3}."), 1.0);
        assert_eq!(format_score("<think>\nmulti\nline\n</think>\n\\boxed{\n3\n}\n"), 1.0);
        assert_eq!(format_score("< think > r < /think > \\boxed{3}"), 1.0);
        assert_eq!(format_score("<think></think>\\boxed{}"), 1.0);
        assert_eq!(
            format_score(" \n <think>r</think>\\boxed{3}"),
            1.0,
            "whitespace before < is cleaned away"
        );
        assert_eq!(format_score("x<think>r</think>\\boxed{3}"), 0.0);
        assert_eq!(format_score("<think>r</think> 3"), 0.0);
        assert_eq!(format_score("<think>r \\boxed{3}</think>"), 0.0, "boxed must follow </think>");
        assert_eq!(format_score("<think>r</think>\\boxed{3"), 0.0);
        assert_eq!(format_score("r</think>\\boxed{3}"), 0.0);
        assert_eq!(format_score(""), 0.0);
    }
}

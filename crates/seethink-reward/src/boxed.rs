//! Extracting the final answer and the complexity guard.

use std::sync::OnceLock;

use regex::Regex;

use crate::Extensions;

/// The content of the last `\boxed{...}` (with [`Extensions::fbox`], also `\fbox{...}`, whichever
/// starts last), trimmed.
///
/// Rule (mathruler's `extract_boxed_content`): find the last occurrence of the literal opener
/// (`\boxed{` exactly, no space before the brace), then read to the `}` that balances it. If that
/// last opener is never closed the result is `None`; earlier boxes are not tried.
pub fn last_boxed(text: &str, extensions: Extensions) -> Option<String> {
    let openers: &[&str] = if extensions.fbox { &["\\boxed{", "\\fbox{"] } else { &["\\boxed{"] };
    let start = openers.iter().filter_map(|open| text.rfind(open).map(|i| i + open.len())).max()?;
    let content = &text[start..];
    let mut depth = 0i64;
    for (i, c) in content.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(content[..i].trim().to_string()),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The paper's complexity guard: true (answer scores 0) when the answer is longer than 200
/// characters, has more than 10 `^` and `**` together (with
/// [`Extensions::separate_power_counts`]: more than 10 of either), more than 40 `(`, more than
/// 40 `{`, or a run of 50 or more digits.
pub fn too_complex(answer: &str, extensions: Extensions) -> bool {
    static DIGITS: OnceLock<Regex> = OnceLock::new();
    let digits = DIGITS.get_or_init(|| Regex::new(r"\d{50,}").expect("static regex"));
    let (carets, stars) = (answer.matches('^').count(), answer.matches("**").count());
    let powers = match extensions.separate_power_counts {
        true => carets > 10 || stars > 10,
        false => carets + stars > 10,
    };
    answer.chars().count() > 200
        || powers
        || answer.matches('(').count() > 40
        || answer.matches('{').count() > 40
        || digits.is_match(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_boxed_ref(text: &str) -> Option<String> {
        last_boxed(text, Extensions::NONE)
    }

    fn too_complex_ref(answer: &str) -> bool {
        too_complex(answer, Extensions::NONE)
    }

    #[test]
    fn last_balanced_box() {
        assert_eq!(last_boxed_ref("\\boxed{1} then \\boxed{2}").as_deref(), Some("2"));
        assert_eq!(last_boxed_ref("\\boxed{\\frac{1}{2}}").as_deref(), Some("\\frac{1}{2}"));
        assert_eq!(last_boxed_ref("\\boxed{ 7 } tail}").as_deref(), Some("7"));
        assert_eq!(last_boxed_ref("\\boxed{}").as_deref(), Some(""));
        assert_eq!(last_boxed_ref("\\fbox{5}"), None, "the reference reads only \\boxed");
        assert_eq!(last_boxed_ref("\\boxed{1} \\fbox{5}").as_deref(), Some("1"));
        assert_eq!(last_boxed("\\fbox{5}", Extensions::ALL).as_deref(), Some("5"));
        assert_eq!(last_boxed("\\boxed{1} \\fbox{5}", Extensions::ALL).as_deref(), Some("5"));
        assert_eq!(last_boxed_ref("no box"), None);
        assert_eq!(last_boxed_ref("\\boxed {3}"), None, "the opener is matched literally");
        assert_eq!(last_boxed_ref("\\boxed{1} \\boxed{2"), None, "an unclosed last box is no answer");
        assert_eq!(last_boxed_ref("\\boxed{{x}").as_deref(), None);
        assert_eq!(last_boxed_ref("\\boxed{é}ü").as_deref(), Some("é"));
    }

    #[test]
    fn guard_thresholds() {
        assert!(!too_complex_ref(&"a".repeat(200)));
        assert!(too_complex_ref(&"a".repeat(201)));
        assert!(!too_complex_ref(&"é".repeat(200)), "characters, not bytes");
        assert!(!too_complex_ref(&"x^".repeat(10)));
        assert!(too_complex_ref(&"x^".repeat(11)));
        assert!(!too_complex_ref(&"x**".repeat(10)));
        assert!(too_complex_ref(&"x**".repeat(11)));
        // 6 `^` and 6 `**`: 12 together (the reference), at most 10 of either (the extension)
        let mixed = "x^".repeat(6) + &"y**".repeat(6);
        assert!(too_complex_ref(&mixed));
        assert!(!too_complex(&mixed, Extensions::ALL));
        assert!(!too_complex_ref(&"(".repeat(40)));
        assert!(too_complex_ref(&"(".repeat(41)));
        assert!(!too_complex_ref(&"{".repeat(40)));
        assert!(too_complex_ref(&"{".repeat(41)));
        assert!(!too_complex_ref(&"7".repeat(49)));
        assert!(too_complex_ref(&"7".repeat(50)));
        assert!(!too_complex_ref(&"1234567890,".repeat(9)));
    }
}

//! Extracting the final answer and the complexity guard.

use std::sync::OnceLock;

use regex::Regex;

/// The content of the last `\boxed{...}` (or `\fbox{...}`, whichever starts last), trimmed.
///
/// Rule (mathruler's `extract_boxed_content`): find the last occurrence of the literal opener
/// (`\boxed{` exactly, no space before the brace), then read to the `}` that balances it. If that
/// last opener is never closed the result is `None`; earlier boxes are not tried.
pub fn last_boxed(text: &str) -> Option<String> {
    let start =
        ["\\boxed{", "\\fbox{"].iter().filter_map(|open| text.rfind(open).map(|i| i + open.len())).max()?;
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

/// The complexity guard: true (answer scores 0) when the answer is longer than 200 characters,
/// has more than 10 `^`, more than 10 `**`, more than 40 `(`, more than 40 `{`, or a run of 50 or
/// more digits.
pub fn too_complex(answer: &str) -> bool {
    static DIGITS: OnceLock<Regex> = OnceLock::new();
    let digits = DIGITS.get_or_init(|| Regex::new(r"\d{50,}").expect("static regex"));
    answer.chars().count() > 200
        || answer.matches('^').count() > 10
        || answer.matches("**").count() > 10
        || answer.matches('(').count() > 40
        || answer.matches('{').count() > 40
        || digits.is_match(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_balanced_box() {
        assert_eq!(last_boxed("\\boxed{1} then \\boxed{2}").as_deref(), Some("2"));
        assert_eq!(last_boxed("\\boxed{\\frac{1}{2}}").as_deref(), Some("\\frac{1}{2}"));
        assert_eq!(last_boxed("\\boxed{ 7 } tail}").as_deref(), Some("7"));
        assert_eq!(last_boxed("\\boxed{}").as_deref(), Some(""));
        assert_eq!(last_boxed("\\fbox{5}").as_deref(), Some("5"));
        assert_eq!(last_boxed("\\boxed{1} \\fbox{5}").as_deref(), Some("5"));
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(last_boxed("\\boxed {3}"), None, "the opener is matched literally");
        assert_eq!(last_boxed("\\boxed{1} \\boxed{2"), None, "an unclosed last box is no answer");
        assert_eq!(last_boxed("\\boxed{{x}").as_deref(), None);
        assert_eq!(last_boxed("\\boxed{é}ü").as_deref(), Some("é"));
    }

    #[test]
    fn guard_thresholds() {
        assert!(!too_complex(&"a".repeat(200)));
        assert!(too_complex(&"a".repeat(201)));
        assert!(!too_complex(&"é".repeat(200)), "characters, not bytes");
        assert!(!too_complex(&"x^".repeat(10)));
        assert!(too_complex(&"x^".repeat(11)));
        assert!(!too_complex(&"x**".repeat(10)));
        assert!(too_complex(&"x**".repeat(11)));
        assert!(!too_complex(&"(".repeat(40)));
        assert!(too_complex(&"(".repeat(41)));
        assert!(!too_complex(&"{".repeat(40)));
        assert!(too_complex(&"{".repeat(41)));
        assert!(!too_complex(&"7".repeat(49)));
        assert!(too_complex(&"7".repeat(50)));
        assert!(!too_complex(&"1234567890,".repeat(9)));
    }
}

//! Answer equivalence: mathruler's `grade_answer` (PRM800K grader), with a small exact evaluator
//! in place of sympy, plus a multiple-choice letter rule.

use std::sync::OnceLock;

use regex::Regex;

use crate::eval::expressions_equal;
use crate::normalize::{normalize_answer, normalize_prm, str_is_int, strip_thousands_commas};
use crate::Extensions;

const TUPLE_CHARS: [char; 4] = ['(', ')', '[', ']'];

/// Wrappers removed before reading a multiple-choice letter.
const LETTER_WRAPPERS: [&str; 10] = [
    "\\text{",
    "\\textbf{",
    "\\textrm{",
    "\\textit{",
    "\\mathrm{",
    "\\mathbf{",
    "\\mathit{",
    "\\mathsf{",
    "\\boxed{",
    "{",
];

/// The option letter an answer names, if it is one: after repeatedly trimming whitespace and `$`,
/// unwrapping `\text{}`, `\textbf{}`, `\mathrm{}`, `\mathbf{}` (and similar), `{}`, `()` and `[]`
/// (and, with [`Extensions::letter_punctuation`], dropping trailing `.`, `)`, `:` and leading
/// `(`), a single ASCII letter, upper-cased. `A`, `a`, `(A)`, `\text{A}`, `\textbf{A}` give
/// `Some('A')`; `A.` and `A)` only with the extension.
pub fn mcq_letter(answer: &str, extensions: Extensions) -> Option<char> {
    let mut t = answer.trim();
    for _ in 0..16 {
        let before = t;
        t = t.trim().trim_matches('$').trim();
        for w in LETTER_WRAPPERS {
            if let Some(inner) = t.strip_prefix(w).and_then(|x| x.strip_suffix('}')) {
                t = inner.trim();
            }
        }
        for (open, close) in [('(', ')'), ('[', ']')] {
            if let Some(inner) = t.strip_prefix(open).and_then(|x| x.strip_suffix(close)) {
                t = inner.trim();
            }
        }
        if extensions.letter_punctuation {
            t = t.trim_end_matches(['.', ')', ':']).trim_start_matches('(').trim();
        }
        if t == before {
            break;
        }
    }
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// `split_tuple`: after removing thousands commas, a string longer than 2 characters that starts
/// and ends with one of `()[]` and has none of them inside is split on `,` into trimmed
/// elements; anything else is one element (an empty string gives none).
pub fn split_tuple(expr: &str) -> Vec<String> {
    let expr = strip_thousands_commas(expr);
    if expr.is_empty() {
        return Vec::new();
    }
    let chars: Vec<char> = expr.chars().collect();
    let n = chars.len();
    if n > 2
        && TUPLE_CHARS.contains(&chars[0])
        && TUPLE_CHARS.contains(&chars[n - 1])
        && !chars[1..n - 1].iter().any(|c| TUPLE_CHARS.contains(c))
    {
        let inner: String = chars[1..n - 1].iter().collect();
        inner.split(',').map(|e| e.trim().to_string()).collect()
    } else {
        vec![expr]
    }
}

/// `_is_frac`: `^-?[0-9]+.?/0*[1-9][0-9]*.?$` (an integer fraction, possibly with one stray
/// character after either number).
fn is_frac(expr: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^-?[0-9]+.?/0*[1-9][0-9]*.?\n?$").expect("static regex")).is_match(expr)
}

/// `should_allow_eval` on `({gold})-({given})`: at most two distinct letters once `sqrt` and
/// `frac` are removed, no `^{` or `^(`, no `^` followed by a multi-digit number or by digits and
/// another `^`.
fn should_allow_eval(expr: &str) -> bool {
    static BAD: OnceLock<Regex> = OnceLock::new();
    let letters_text = expr.replace("sqrt", "").replace("frac", "");
    let mut letters: Vec<char> = letters_text.chars().filter(|c| c.is_alphabetic()).collect();
    letters.sort_unstable();
    letters.dedup();
    if letters.len() > 2 || expr.contains("^{") || expr.contains("^(") {
        return false;
    }
    !BAD.get_or_init(|| Regex::new(r"\^[0-9]+\^|\^[0-9][0-9]+").expect("static regex")).is_match(expr)
}

/// Stand-in for `are_equal_under_sympy`: [`should_allow_eval`], then the exact evaluator
/// ([`crate::eval`]) must find the two expressions equal.
fn are_equal_under_eval(gold: &str, given: &str) -> bool {
    should_allow_eval(&format!("({gold})-({given})")) && expressions_equal(gold, given)
}

/// Whether `given` is a correct answer for the reference answer `gold`.
///
/// Rule (mathruler's `grade_answer`, in order):
/// 0. If `gold` names an option letter ([`mcq_letter`], with `extensions`) and `given` names
///    the same letter, correct.
/// 1. Correct if the MATH normalisations ([`normalize_answer`]) are equal.
/// 2. Correct if the PRM800K normalisations ([`normalize_prm`]) are equal; wrong if `given`'s is
///    empty.
/// 3. Split both into tuple elements ([`split_tuple`]). A multi-element `gold` needs the same
///    opening and closing bracket in `given`; the element counts must match. Each pair of
///    elements must then agree: two integer fractions (`a/b`) must be identical strings (an
///    unreduced `2/4` does not match `1/2`); an integer and a non-integer never match (so `4/2`
///    does not match `2`); otherwise the exact evaluator must find them equal (the reference
///    uses `sympy.simplify(gold - given) == 0`; see [`crate::eval`] for what is covered).
///
/// Never panics; work is bounded for any input.
pub fn grade_answer(given: &str, gold: &str, extensions: Extensions) -> bool {
    if let Some(letter) = mcq_letter(gold, extensions) {
        if mcq_letter(given, extensions) == Some(letter) {
            return true;
        }
    }
    if normalize_answer(gold) == normalize_answer(given) {
        return true;
    }
    let gold_n = normalize_prm(gold);
    let given_n = normalize_prm(given);
    if gold_n == given_n {
        return true;
    }
    if given_n.is_empty() {
        return false;
    }
    let gold_elems = split_tuple(&gold_n);
    let given_elems = split_tuple(&given_n);
    if gold_elems.len() > 1
        && (gold_n.chars().next() != given_n.chars().next()
            || gold_n.chars().next_back() != given_n.chars().next_back())
    {
        return false;
    }
    if gold_elems.len() != given_elems.len() {
        return false;
    }
    gold_elems.iter().zip(&given_elems).all(|(g, a)| {
        if is_frac(g) && is_frac(a) {
            g == a
        } else if str_is_int(g) != str_is_int(a) {
            false
        } else {
            are_equal_under_eval(g, a)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters() {
        for s in ["A", "a", "(A)", "\\text{A}", "\\textbf{A}", "$A$", "[A]", "{A}"] {
            assert_eq!(mcq_letter(s, Extensions::NONE), Some('A'), "{s:?}");
        }
        for s in ["A.", "A)", " (a). "] {
            assert_eq!(mcq_letter(s, Extensions::NONE), None, "{s:?}: the reference reads no punctuation");
            assert_eq!(mcq_letter(s, Extensions::ALL), Some('A'), "{s:?}");
        }
        for s in ["AB", "1", "", "A and B", "(A)(B)", "\\text{cm}", "é"] {
            assert_eq!(mcq_letter(s, Extensions::ALL), None, "{s:?}");
        }
    }

    #[test]
    fn tuples() {
        assert_eq!(split_tuple("(1,2)"), vec!["1", "2"]);
        assert_eq!(split_tuple("[1,2)"), vec!["1", "2"]);
        assert_eq!(split_tuple("(1,000,2)"), vec!["1000", "2"]);
        assert_eq!(split_tuple("((1,2))"), vec!["((1,2))"]);
        assert_eq!(split_tuple("()"), vec!["()"]);
        assert_eq!(split_tuple("5"), vec!["5"]);
        assert!(split_tuple("").is_empty());
    }

    #[test]
    fn fractions_and_guards() {
        assert!(is_frac("1/2"));
        assert!(is_frac("-10/03"));
        assert!(!is_frac("1/0"));
        assert!(!is_frac("0.5"));
        assert!(should_allow_eval("(x+1)-(1+x)"));
        assert!(!should_allow_eval("(abc)-(abc)"));
        assert!(should_allow_eval("(sqrt(2))-(frac)"));
        assert!(!should_allow_eval("(2^10)-(1024)"));
        assert!(!should_allow_eval("(2^(1/2))-(1)"));
        assert!(!should_allow_eval("(2^2^2)-(16)"));
    }

    #[test]
    fn grading() {
        let yes = [
            ("\\frac{1}{2}", "0.5"),
            ("1/2", "\\frac{1}{2}"),
            ("\\frac12", "1/2"),
            ("0.5", "\\frac{1}{2}"),
            ("2/4", "0.5"),
            ("2.0", "2"),
            ("1,000", "1000"),
            ("5 \\text{ cm}", "5"),
            ("x = 3", "3"),
            ("(1, 2)", "(1,2)"),
            ("(0.5, 3)", "(\\frac{1}{2},3)"),
            ("\\sqrt{8}", "2\\sqrt{2}"),
            ("x+1", "1+x"),
            ("(A)", "A"),
            ("b", "(B)"),
            ("\\pi/2", "\\frac{\\pi}{2}"),
        ];
        for (given, gold) in yes {
            assert!(grade_answer(given, gold, Extensions::NONE), "{given:?} should match {gold:?}");
        }
        assert!(!grade_answer("A.", "A", Extensions::NONE));
        assert!(grade_answer("A.", "A", Extensions::ALL));
        let no = [
            ("2/4", "1/2"),
            ("\\frac{4}{2}", "2"),
            ("(2, 1)", "(1,2)"),
            ("[1, 2]", "(1,2)"),
            ("(1,2,3)", "(1,2)"),
            ("3", "4"),
            ("B", "A"),
            ("", "0"),
            ("0.333333", "\\frac{1}{3}"),
            ("x^2", "2x"),
            ("2^{10}", "1024"),
        ];
        for (given, gold) in no {
            assert!(!grade_answer(given, gold, Extensions::NONE), "{given:?} should not match {gold:?}");
        }
    }
}

//! The two answer normalisers of the reference grader (mathruler / PRM800K):
//! [`normalize_answer`] (Hendrycks MATH `_strip_string`) and [`normalize_prm`] (PRM800K
//! `_normalize`), plus the Python number helpers they rely on.

use std::sync::OnceLock;

use regex::Regex;

use crate::latex::parse_latex;

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// `^\\text\{(?P<text>.+?)\}$` as Python evaluates it (`.` excludes `\n`; `$` also matches
/// before a final newline): the content of a `\text{...}` that wraps the whole string.
fn enclosing_text(s: &str) -> Option<&str> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let caps = regex(&RE, r"^\\text\{(.+?)\}\n?$").captures(s)?;
    caps.get(1).map(|m| m.as_str())
}

/// Hendrycks MATH normalisation (`normalize_answer` → `_strip_string`), applied to a trimmed
/// string whose whole-string `\text{...}` wrapper was removed:
/// remove `\n` and `\!`; `\\`→`\`; `tfrac`/`dfrac`→`frac`; drop `\left`, `\right`, `^{\circ}`,
/// `^\circ`, `\$`; cut everything from `\text{ ` on (units), failing if it occurs twice; drop
/// `\%` and `%`; `" ."`→`" 0."`, `"{."`→`"{0."`, a leading `.` gets a `0`; `k=...` with a left
/// side of at most 2 characters keeps only the right side; `\sqrt3`→`\sqrt{3}`; remove spaces;
/// `\frac12`→`\frac{1}{2}` and `\frac1{72}`→`\frac{1}{72}`; exactly `0.5`→`\frac{1}{2}`;
/// `a/b` with canonical integers →`\frac{a}{b}`.
///
/// Where the reference raises (a second `\text{ `, `\sqrt` or `\frac` at the very end) the
/// trimmed, `\text`-unwrapped input is returned unchanged, as the reference's `except` does.
pub fn normalize_answer(answer: &str) -> String {
    let answer = answer.trim();
    let answer = match enclosing_text(answer) {
        Some(inner) => inner.trim(),
        None => answer,
    };
    strip_string(answer).unwrap_or_else(|| answer.to_string())
}

fn strip_string(s: &str) -> Option<String> {
    let mut s = s
        .replace('\n', "")
        .replace("\\!", "")
        .replace("\\\\", "\\")
        .replace("tfrac", "frac")
        .replace("dfrac", "frac")
        .replace("\\left", "")
        .replace("\\right", "")
        .replace("^{\\circ}", "")
        .replace("^\\circ", "")
        .replace("\\$", "");
    s = remove_right_units(&s)?;
    s = s.replace("\\%", "").replace('%', "").replace(" .", " 0.").replace("{.", "{0.");
    if s.is_empty() {
        return Some(s);
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    let parts: Vec<&str> = s.split('=').collect();
    if parts.len() == 2 && parts[0].chars().count() <= 2 {
        s = parts[1].to_string();
    }
    s = fix_sqrt(&s)?;
    s = s.replace(' ', "");
    s = fix_fracs(&s)?;
    if s == "0.5" {
        s = "\\frac{1}{2}".to_string();
    }
    Some(fix_a_slash_b(&s))
}

/// `\text{ ` only ever introduces units: keep what precedes it (`None` if it occurs twice).
fn remove_right_units(s: &str) -> Option<String> {
    if !s.contains("\\text{ ") {
        return Some(s.to_string());
    }
    let parts: Vec<&str> = s.split("\\text{ ").collect();
    (parts.len() == 2).then(|| parts[0].to_string())
}

/// `\sqrt3` → `\sqrt{3}` (`None` when `\sqrt` ends the string, where the reference raises).
fn fix_sqrt(s: &str) -> Option<String> {
    if !s.contains("\\sqrt") {
        return Some(s.to_string());
    }
    let mut parts = s.split("\\sqrt");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let first = part.chars().next()?;
        if first == '{' {
            out.push_str("\\sqrt");
            out.push_str(part);
        } else {
            out.push_str("\\sqrt{");
            out.push(first);
            out.push('}');
            out.push_str(&part[first.len_utf8()..]);
        }
    }
    Some(out)
}

/// `\frac12` → `\frac{1}{2}`, `\frac1{72}` → `\frac{1}{72}` (`None` when `\frac` ends the
/// string; the input unchanged when an argument is a single character).
fn fix_fracs(s: &str) -> Option<String> {
    let mut parts = s.split("\\frac");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        out.push_str("\\frac");
        let mut chars = part.chars();
        let a = chars.next()?;
        if a == '{' {
            out.push_str(part);
            continue;
        }
        let Some(b) = chars.next() else {
            return Some(s.to_string());
        };
        let rest = chars.as_str();
        if b != '{' {
            out.push_str(&format!("{{{a}}}{{{b}}}{rest}"));
        } else {
            out.push_str(&format!("{{{a}}}{b}{rest}"));
        }
    }
    Some(out)
}

/// Whether `s` is what Python's `str(int(s))` gives back: `-?(0|[1-9][0-9]*)`, not `-0`.
fn is_canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

/// `a/b` with canonical integers `a`, `b` (and exactly one `/`) → `\frac{a}{b}`.
fn fix_a_slash_b(s: &str) -> String {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() == 2 && is_canonical_int(parts[0]) && is_canonical_int(parts[1]) {
        format!("\\frac{{{}}}{{{}}}", parts[0], parts[1])
    } else {
        s.to_string()
    }
}

/// The first code point of every run of ten Unicode decimal digits (category `Nd`, Unicode 14).
const ND_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50,
    0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40,
    0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066,
    0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950,
    0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
    0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// A Unicode decimal digit as its ASCII digit (`４` → `4`); other characters unchanged.
fn ascii_digit(c: char) -> char {
    let cp = u32::from(c);
    if cp < 0x80 {
        return c;
    }
    ND_ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&cp))
        .and_then(|&z| char::from_digit(cp - z, 10))
        .unwrap_or(c)
}

/// Python's `float(s)`: surrounding whitespace allowed, `_` between digits allowed, `inf`,
/// `infinity`, `nan` in any case, optional sign, exponents, any Unicode decimal digits.
pub(crate) fn python_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let mut cleaned = String::with_capacity(t.len());
    let chars: Vec<char> = t.chars().map(ascii_digit).collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let ok = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if !ok {
                return None;
            }
        } else {
            if !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')) {
                return None;
            }
            cleaned.push(c);
        }
    }
    cleaned.parse::<f64>().ok()
}

/// Python's `str(int(x))` for a finite float that holds an integer value.
fn int_string(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x:.0}")
    }
}

/// Python's `abs(x - int(round(x))) <= 1e-7` (false for infinities and NaN, where Python raises).
fn is_int_value(x: f64) -> bool {
    x.is_finite() && (x - x.round()).abs() <= 1e-7
}

/// `_strip_properly_formatted_commas`: removes commas that separate thousands
/// (`(\d)(,)(\d\d\d)($|\D)`), repeatedly, leaving tuple commas alone.
pub(crate) fn strip_thousands_commas(s: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = regex(&RE, r"(\d)(,)(\d\d\d)($|\D)");
    let mut cur = s.to_string();
    loop {
        let next = re.replace_all(&cur, "${1}${3}${4}").into_owned();
        if next == cur {
            return cur;
        }
        cur = next;
    }
}

/// `_str_is_int`: after removing thousands commas, a Python float within `1e-7` of an integer.
pub(crate) fn str_is_int(s: &str) -> bool {
    python_float(&strip_thousands_commas(s)).is_some_and(is_int_value)
}

/// `_str_to_int`: removes every comma, parses as a float and truncates (as Python's `int()`).
fn str_to_int(s: &str) -> Option<String> {
    let x = python_float(&s.replace(',', ""))?;
    x.is_finite().then(|| int_string(x.trunc()))
}

const UNITS: [&str; 16] = [
    "degree",
    "cm",
    "centimeter",
    "meter",
    "mile",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "foot",
    "feet",
    "inch",
    "yard",
];

fn unit_regexes() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        UNITS
            .iter()
            .map(|u| Regex::new(&format!(r"{u}(es)?(s)? *(\^[0-9]+)?")).expect("unit regex"))
            .collect()
    })
}

/// PRM800K normalisation (`_normalize`):
/// unwrap a whole-string `\text{...}`; `\%`→`%`, `\$`→`$`, drop `$` and `%`; `" or "` and
/// `" and "` → `" , "`; `million`/`billion`/`trillion` → `*10^6`/`*10^9`/`*10^12`; delete the
/// unit words degree, cm, centimeter, meter, mile, second, minute, hour, day, week, month, year,
/// foot, feet, inch, yard (with `es`/`s` plurals, trailing spaces and a `^n` power) wherever
/// they occur; delete `^\circ`; strip one pair of braces enclosing the whole string; delete
/// `,\!`; a float holding an integer becomes that integer (`2.0`→`2`); if a backslash remains,
/// convert LaTeX to text ([`parse_latex`]); `- ` → `-`; a space between two digits becomes `+`
/// (mixed numbers: `7 3/4` → `7+3/4`); remove spaces and braces; lower-case; and a string that
/// is an integer after removing thousands commas becomes that integer (`1,000` → `1000`,
/// truncating like Python's `int`).
pub fn normalize_prm(expr: &str) -> String {
    static TEXT: OnceLock<Regex> = OnceLock::new();
    static CIRC: OnceLock<Regex> = OnceLock::new();
    static COMMA_BANG: OnceLock<Regex> = OnceLock::new();
    static MINUS: OnceLock<Regex> = OnceLock::new();
    static MIXED: OnceLock<Regex> = OnceLock::new();

    let mut e = match regex(&TEXT, r"^\\text\{(.+?)\}\n?$").captures(expr) {
        Some(c) => c.get(1).map_or("", |m| m.as_str()).to_string(),
        None => expr.to_string(),
    };
    e = e
        .replace("\\%", "%")
        .replace("\\$", "$")
        .replace(['$', '%'], "")
        .replace(" or ", " , ")
        .replace(" and ", " , ")
        .replace("million", "*10^6")
        .replace("billion", "*10^9")
        .replace("trillion", "*10^12");
    for re in unit_regexes() {
        e = re.replace_all(&e, "").into_owned();
    }
    e = regex(&CIRC, r"\^ *\\circ").replace_all(&e, "").into_owned();
    if e.len() > 1 && e.starts_with('{') && e.ends_with('}') {
        e = e[1..e.len() - 1].to_string();
    }
    e = regex(&COMMA_BANG, r",\\! *").replace_all(&e, "").into_owned();
    if let Some(x) = python_float(&e) {
        if is_int_value(x) {
            e = int_string(x.round());
        }
    }
    if e.contains('\\') {
        if let Some(text) = parse_latex(&e) {
            e = text;
        }
    }
    e = regex(&MINUS, r"- *").replace_all(&e, "-").into_owned();
    e = regex(&MIXED, r"([0-9]) +([0-9])").replace_all(&e, "${1}+${2}").into_owned();
    e = e.replace([' ', '{', '}'], "");
    e = e.to_lowercase();
    if str_is_int(&e) {
        if let Some(i) = str_to_int(&e) {
            e = i;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mathd_normalisation() {
        // Expected strings are the reference implementation's output.
        let cases = [
            ("\\frac12", "\\frac{1}{2}"),
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("0.5", "\\frac{1}{2}"),
            ("1/2", "\\frac{1}{2}"),
            ("01/2", "01/2"),
            ("\\sqrt3", "\\sqrt{3}"),
            ("5 \\text{ cm}", "5"),
            ("30^\\circ", "30"),
            ("30^{\\circ}", "30"),
            ("50\\%", "50"),
            ("\\$5", "5"),
            ("x = 3", "3"),
            ("xyz = 3", "xyz=3"),
            (".5", "\\frac{1}{2}"),
            (".25", "0.25"),
            ("\\left( 1, 2 \\right)", "(1,2)"),
            ("\\text{A}", "A"),
            ("  7  ", "7"),
            ("\\frac1{72}", "\\frac{1}{72}"),
            ("\\frac{72}1", "\\frac{72}1"),
            ("a\\text{ b}\\text{ c}", "a\\text{ b}\\text{ c}"),
            ("2\\sqrt", "2\\sqrt"),
            ("\\frac1", "\\frac1"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_answer(input), want, "{input:?}");
        }
    }

    #[test]
    fn prm_normalisation() {
        // Expected strings are the reference implementation's output.
        let cases = [
            ("\\frac{1}{2}", "1/2"),
            ("5\\text{cm}", "5"),
            ("\\pi r^2", "pir^2"),
            ("1\\frac{1}{2}", "1+1/2"),
            ("\\infty", "inf"),
            ("12345678901234567890", "12345678901234567168"),
            ("2.99999999", "3"),
            ("2.0", "2"),
            ("1,000", "1000"),
            ("1{,}000", "1000"),
            ("1,000,000", "1000000"),
            ("(1,2)", "(1,2)"),
            ("\\$1,000", "1000"),
            ("30 degrees", "30"),
            ("5 feet", "5"),
            ("3 million", "3*10^6"),
            ("ABC", "abc"),
            ("\\text{(B)}", "(b)"),
            ("\\textbf{A}", "a"),
            ("- 3", "-3"),
            ("1 or 2", "1,2"),
            ("\\{1,2\\}", "1,2"),
            ("{5}", "5"),
            ("-0.0", "0"),
            ("1e3", "1000"),
            ("1_000", "1000"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_prm(input), want, "{input:?}");
        }
    }

    #[test]
    fn python_float_rules() {
        assert_eq!(python_float(" 2.5 "), Some(2.5));
        assert_eq!(python_float("1_000"), Some(1000.0));
        assert_eq!(python_float("_1"), None);
        assert_eq!(python_float("1__0"), None);
        assert!(python_float("inf").is_some_and(f64::is_infinite));
        assert_eq!(python_float("1/2"), None);
        assert_eq!(python_float(""), None);
        assert_eq!(python_float("４２"), Some(42.0));
        assert_eq!(python_float("1."), Some(1.0));
        assert_eq!(python_float("+.5"), Some(0.5));
        assert_eq!(python_float("1E5"), Some(1e5));
        assert!(python_float("-iNF").is_some_and(f64::is_infinite));
        assert!(python_float("Infinity").is_some_and(f64::is_infinite));
        assert!(python_float("nan").is_some_and(f64::is_nan));
        assert_eq!(python_float("1e"), None);
        assert_eq!(python_float("e5"), None);
        assert_eq!(python_float("٣.٥"), Some(3.5));
        assert!(str_is_int("1,000"));
        assert!(!str_is_int("1,2"));
        assert!(!str_is_int("inf"));
        assert_eq!(strip_thousands_commas("(1,000,2)"), "(1000,2)");
    }
}

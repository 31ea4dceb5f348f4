//! What Python and pandas make of text, where VLMEvalKit's decisions depend on it: the Python
//! literals its TSV files hold in some cells (`choices` and `skills` are `str(list)` of strings,
//! e.g. `['3/11', "it's 8"]`), the cells pandas reads as missing, and Python's `int()` and
//! `float()` of a string.

/// pandas' default `na_values` (`STR_NA_VALUES`, checked on pandas 3.1; `None` is in it since
/// pandas 2.0, and VLMEvalKit pins no version): `read_csv` and `read_excel`, which VLMEvalKit's
/// `load` calls (`vlmeval/smp/file.py`), read a cell that is exactly one of these as missing.
const PANDAS_NA: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Whether pandas reads the cell `text` as missing: it is exactly (untrimmed, case-sensitive)
/// one of [`PANDAS_NA`].
pub fn pandas_missing(text: &str) -> bool {
    PANDAS_NA.contains(&text)
}

/// Python's `int(text)` of a string: surrounding whitespace ignored, an optional sign, ASCII
/// digits. `None` where Python raises `ValueError`, and also for Python's `1_000` and non-ASCII
/// digits (which Python accepts) and for values beyond `i128`.
pub fn python_int(text: &str) -> Option<i128> {
    text.trim().parse().ok()
}

/// Python's `float(text)` of a string: surrounding whitespace ignored, then a decimal or
/// exponent literal, `inf`, `infinity` or `nan` (any case, optionally signed). `None` where
/// Python raises `ValueError`, and also for Python's `1_000.5` and non-ASCII digits.
pub fn python_float(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

/// The items of a Python list literal of strings or bare tokens (numbers), in order: `[`, then
/// items separated by `,`, each a `'…'` or `"…"` string (backslash escapes `\\`, `\'`, `\"`,
/// `\n`, `\t`) or a bare token up to the next `,` or `]` (trimmed), then `]`. `None` when the
/// text is not such a list.
pub fn string_list(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut chars = inner.chars().peekable();
    let mut items = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let item = if first == '\'' || first == '"' {
            chars.next();
            let mut item = String::new();
            loop {
                match chars.next()? {
                    '\\' => item.push(match chars.next()? {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    }),
                    c if c == first => break,
                    c => item.push(c),
                }
            }
            item
        } else {
            let mut token = String::new();
            while let Some(c) = chars.next_if(|&c| c != ',') {
                token.push(c);
            }
            token.trim().to_string()
        };
        items.push(item);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(_) => return None,
        }
    }
    Some(items)
}

/// Python's `json.loads(text, strict=False)`: JSON whose strings may hold raw control
/// characters (U+0000 to U+001F: newlines, tabs, …), which strict JSON must escape. They are
/// escaped here, then the text is read as JSON. `None` where Python raises, and also for the
/// non-standard `NaN` and `Infinity` that Python accepts.
pub fn json_loads(text: &str) -> Option<serde_json::Value> {
    let mut escaped = String::with_capacity(text.len());
    let (mut in_string, mut after_backslash) = (false, false);
    for c in text.chars() {
        if in_string && !after_backslash && c < ' ' {
            escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
            continue;
        }
        escaped.push(c);
        if after_backslash {
            after_backslash = false;
        } else if in_string && c == '\\' {
            after_backslash = true;
        } else if c == '"' {
            in_string = !in_string;
        }
    }
    serde_json::from_str(&escaped).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_lists_of_strings() {
        assert_eq!(string_list("['3/11', '8/11']"), Some(vec!["3/11".into(), "8/11".into()]));
        assert_eq!(
            string_list(r#"["it's", 'a \'b\'', 'x, y']"#),
            Some(vec!["it's".into(), "a 'b'".into(), "x, y".into()])
        );
        assert_eq!(string_list("[]"), Some(vec![]));
        assert_eq!(string_list("[1, 2.5]"), Some(vec!["1".into(), "2.5".into()]));
        assert_eq!(string_list("['a',]"), Some(vec!["a".into()]));
        assert_eq!(string_list("'a'"), None);
        assert_eq!(string_list("['a' 'b']"), None);
        assert_eq!(string_list("['unclosed]"), None);
    }

    #[test]
    fn pandas_reads_exact_na_strings_as_missing() {
        for missing in ["", "None", "NA", "null", "nan", "#N/A", "<NA>", "-nan"] {
            assert!(pandas_missing(missing), "{missing:?}");
        }
        for kept in [" ", " None", "none", "NONE", "nan ", "Na", "0"] {
            assert!(!pandas_missing(kept), "{kept:?}");
        }
    }

    #[test]
    fn json_strings_may_hold_raw_control_characters() {
        let value = json_loads("{\"solution\": \"line 1\nline\t2\", \"short answer\": \"3\"}").unwrap();
        assert_eq!(value["solution"], "line 1\nline\t2");
        assert_eq!(value["short answer"], "3");
        // escapes stay escapes; a raw control character outside a string is still an error
        assert_eq!(json_loads(r#"{"a": "q\"\n"}"#).unwrap()["a"], "q\"\n");
        assert_eq!(json_loads("{\"a\":\u{1}1}"), None);
        assert_eq!(json_loads("{\"a\": 1"), None);
    }

    #[test]
    fn python_int_and_float_of_strings() {
        assert_eq!(python_int(" 5\n"), Some(5));
        assert_eq!(python_int("+007"), Some(7));
        assert_eq!(python_int("5.0"), None);
        assert_eq!(python_int("5 apples"), None);
        assert_eq!(python_float(" 1.5 "), Some(1.5));
        assert_eq!(python_float("1e3"), Some(1000.0));
        assert_eq!(python_float(".5"), Some(0.5));
        assert_eq!(python_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(python_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(python_float("1/2"), None);
        assert_eq!(python_float(""), None);
    }
}

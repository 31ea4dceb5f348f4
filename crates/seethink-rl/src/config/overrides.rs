//! The `--set key=value` overrides of a run config: a value put in place of a field's in the
//! config's RON text and the text read back, so any value a config file can hold can be set.

use serde::Serialize;

/// `config` with the value at `key` (`a.b.c`) replaced by `raw`, read as RON of that field's own
/// type: the config's RON text with `raw` in place of the field's value is read back, so any
/// value a config file can hold can be set (`Staged([perception])`, `File("p.jinja")`,
/// `Some(3)`). A key that holds a string also takes its text unquoted (`data.train=/tmp/a b`).
pub(super) fn with_override<T: Serialize + serde::de::DeserializeOwned>(
    config: &T,
    key: &str,
    raw: &str,
) -> std::result::Result<T, String> {
    let text = ron::to_string(config).map_err(|e| e.to_string())?;
    let (span, before) = field_span(&text, key)?;
    let read = |value: &str| {
        ron::from_str::<T>(&format!("{}{before}{}{}", &text[..span.start], value, &text[span.end..]))
    };
    let last = key.rsplit('.').next().unwrap_or(key);
    match read(raw.trim()) {
        Ok(config) => Ok(config),
        Err(e)
            if !before.is_empty()
                && matches!(&e.code, ron::Error::NoSuchStructField { found, .. } if found == last) =>
        {
            Err(format!("unknown key `{last}`"))
        }
        Err(_) if text[span.clone()].starts_with('"') => {
            read(&format!("{:?}", raw)).map_err(|e| e.code.to_string())
        }
        Err(e) => Err(format!("{} (strings are quoted: {key}=\"…\")", e.code)),
    }
}

/// Where the value of `key` (`a.b.c`, through `Some(…)`) lies in `text`, compact RON as
/// [`ron::to_string`] writes a struct: `(name:value,…)`, and what goes before a new value there:
/// nothing, or, for a last key the text leaves out (a field not written when empty), the empty
/// range at the end of its struct and `name:` (with a `,` after other fields).
fn field_span(text: &str, key: &str) -> std::result::Result<(std::ops::Range<usize>, String), String> {
    let mut value = 0..text.len();
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let mut at = value.start;
        while text[at..value.end].starts_with("Some(") {
            at += "Some(".len();
        }
        if !text[at..value.end].starts_with('(') {
            return Err(format!("unknown key `{part}`: the value before it is not a struct"));
        }
        at += 1;
        let first = at;
        let unknown = || format!("unknown key `{part}`");
        let absent = |end: usize| match i + 1 == parts.len() {
            true => Ok((end..end, format!("{}{part}:", if end > first { "," } else { "" }))),
            false => Err(unknown()),
        };
        value = loop {
            if text[at..].starts_with(')') {
                return absent(at);
            }
            let name_end = at + text[at..].find(':').ok_or_else(unknown)?;
            let end = value_end(text, name_end + 1);
            if &text[at..name_end] == *part {
                break name_end + 1..end;
            }
            if !text[end..].starts_with(',') {
                return absent(end);
            }
            at = end + 1;
        };
    }
    Ok((value, String::new()))
}

/// The end of the RON value that starts at `start`: the first `,` or closing bracket outside
/// brackets and strings.
fn value_end(text: &str, start: usize) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return start + i,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return start + i,
            _ => {}
        }
    }
    text.len()
}

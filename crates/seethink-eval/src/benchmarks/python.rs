//! Reading the Python literals VLMEvalKit's TSV files hold in some cells (`choices` and
//! `skills` are `str(list)` of strings, e.g. `['3/11', "it's 8"]`).

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
}

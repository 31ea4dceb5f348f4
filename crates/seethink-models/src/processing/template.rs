//! The checkpoint's own Jinja chat template, rendered like transformers does.
//!
//! transformers renders with jinja2 (`trim_blocks`, `lstrip_blocks`, loop controls), a
//! `raise_exception` function and a `tojson` filter that is Python's
//! `json.dumps(ensure_ascii=False)`. minijinja with the pycompat string methods
//! (`startswith`, `split`, `strip`...) covers the rest.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::processing::json::read_optional;

/// One part of a message: text, or an image whose placeholder the template writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentPart {
    Text { text: String },
    Image {},
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: Vec<ContentPart>,
}

impl Message {
    /// A user message of `images` image parts followed by `text`.
    pub fn user(images: usize, text: &str) -> Self {
        let mut content = vec![ContentPart::Image {}; images];
        content.push(ContentPart::Text { text: text.to_string() });
        Self { role: "user".into(), content }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    path: PathBuf,
}

impl ChatTemplate {
    /// Finds the template of a checkpoint: `chat_template.jinja`, else `chat_template.json`'s
    /// `chat_template`, else `tokenizer_config.json`'s `chat_template` (a string, or a list of
    /// `{name, template}` of which `default` is used).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.exists() {
            let source = std::fs::read_to_string(&jinja)
                .map_err(|source| ModelError::Io { path: jinja.clone(), source })?;
            return Self::new(source, jinja);
        }
        for file in ["chat_template.json", "tokenizer_config.json"] {
            let path = dir.join(file);
            let Some(json) = read_optional(&path)? else { continue };
            let source = match json.get("chat_template") {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(named)) => named
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template")?.as_str().map(str::to_string))
                    .ok_or_else(|| ModelError::Config {
                        path: path.clone(),
                        key: "chat_template".into(),
                        message: "no template named `default` in the list".into(),
                    })?,
                Some(other) => {
                    return Err(ModelError::Config {
                        path,
                        key: "chat_template".into(),
                        message: format!("expected a string or a list, found {other}"),
                    })
                }
            };
            return Self::new(source, path);
        }
        Err(ModelError::Template {
            path: dir.to_path_buf(),
            message: "no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json)"
                .into(),
        })
    }

    /// Compiles template `source`; `path` names it in errors.
    pub fn new(source: String, path: PathBuf) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> std::result::Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_filter("tojson", python_tojson);
        env.add_template_owned("chat_template", source)
            .map_err(|e| ModelError::Template { path: path.clone(), message: e.to_string() })?;
        Ok(Self { env, path })
    }

    /// Renders `messages`; `special_tokens` (e.g. `eos_token`) are template variables too.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        special_tokens: &[(String, String)],
    ) -> Result<String> {
        let template = self.env.get_template("chat_template").expect("added in new()");
        let mut context: Vec<(String, Value)> =
            special_tokens.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        context.push(("messages".into(), Value::from_serialize(messages)));
        context.push(("add_generation_prompt".into(), Value::from(add_generation_prompt)));
        let context: Value = context.into_iter().collect();
        template
            .render(context)
            .map_err(|e| ModelError::Template { path: self.path.clone(), message: format!("{e:#}") })
    }
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "` and `": "`
/// separators on one line, or newlines and `indent` spaces per level.
fn python_tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let mut out = String::new();
    write_python_json(&json, indent, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

fn write_python_json(v: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value as J;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => write_python_string(s, out),
        J::Array(items) if items.is_empty() => out.push_str("[]"),
        J::Object(map) if map.is_empty() => out.push_str("{}"),
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        J::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_python_string(k, out);
                out.push_str(": ");
                write_python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn write_python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[Message]) -> String {
        ChatTemplate::new(source.into(), "test".into()).unwrap().render(messages, true, &[]).unwrap()
    }

    #[test]
    fn tojson_is_python_json_dumps() {
        let t = "{{ {'a': [1, 'é\"'], 'b': none} | tojson }}|{{ {'a': 1} | tojson(indent=2) }}";
        assert_eq!(render(t, &[]), "{\"a\": [1, \"é\\\"\"], \"b\": null}|{\n  \"a\": 1\n}");
    }

    #[test]
    fn blocks_are_trimmed_like_transformers() {
        let t = "{% for m in messages %}\n  {% if m.role == 'user' %}\n<{{ m.role }}>\n  {% endif %}\n{% endfor %}";
        assert_eq!(render(t, &[Message::user(0, "hi")]), "<user>\n");
    }

    #[test]
    fn python_string_methods_and_raise_exception() {
        let t = "{{ messages[0].content[1].text.startswith('hi') }} {{ 'a,b'.split(',') | length }}";
        // jinja2 prints Python booleans capitalised, as minijinja does here
        assert_eq!(render(t, &[Message::user(1, "hi there")]), "True 2");
        let err = ChatTemplate::new("{{ raise_exception('no system') }}".into(), "t".into())
            .unwrap()
            .render(&[], false, &[])
            .unwrap_err();
        assert!(err.to_string().contains("no system"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_template() {
        let err = ChatTemplate::new("{% if %}".into(), "dir/chat_template.jinja".into()).err().unwrap();
        assert!(err.to_string().contains("dir/chat_template.jinja"), "{err}");
    }
}

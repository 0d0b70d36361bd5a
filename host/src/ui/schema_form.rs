//! A configuration form generated from a plugin's JSON Schema: one input per top-level
//! property (text, URL, number, checkbox, choice; objects and arrays as JSON text), with
//! the property's title, description and `required`, inline field errors, and the way
//! back from the submitted form to a configuration document.

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde_json::{Map, Value};

use crate::config_schema::FieldError;

/// Prefix of every config input's name (`cfg.base_url`).
pub const PREFIX: &str = "cfg.";

/// How a property is edited.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// Free text.
    Text,
    /// A URL (`format: uri`).
    Url,
    /// Whole number.
    Integer,
    /// Any number.
    Number,
    /// Checkbox.
    Boolean,
    /// One of fixed values.
    Choice(Vec<Value>),
    /// An object or array, edited as JSON.
    Json,
    /// No declared type: JSON when it looks like JSON (`{`, `[`, `"`), else text.
    Any,
}

/// One generated input.
#[derive(Debug, Clone)]
pub struct Field {
    /// Property name.
    pub name: String,
    /// Label (schema `title`, else the name).
    pub label: String,
    /// Help text (schema `description`).
    pub description: Option<String>,
    /// Input kind.
    pub kind: FieldKind,
    /// Listed in `required`.
    pub required: bool,
    /// Current value, as the input shows it.
    pub text: String,
    /// Current value of a checkbox.
    pub checked: bool,
}

fn declared_type(prop: &Value) -> Option<&str> {
    match &prop["type"] {
        Value::String(t) => Some(t.as_str()),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn kind_of(prop: &Value) -> FieldKind {
    if let Some(values) = prop["enum"].as_array() {
        return FieldKind::Choice(values.clone());
    }
    match declared_type(prop) {
        Some("string") if prop["format"] == "uri" || prop["format"] == "url" => FieldKind::Url,
        Some("string") => FieldKind::Text,
        Some("integer") => FieldKind::Integer,
        Some("number") => FieldKind::Number,
        Some("boolean") => FieldKind::Boolean,
        Some("object") | Some("array") => FieldKind::Json,
        _ => FieldKind::Any,
    }
}

fn text_of(kind: &FieldKind, v: Option<&Value>) -> String {
    match (kind, v) {
        (_, None) | (_, Some(Value::Null)) => String::new(),
        (FieldKind::Json, Some(v)) => serde_json::to_string_pretty(v).unwrap_or_default(),
        (FieldKind::Choice(_), Some(v)) => v.to_string(),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(v)) => v.to_string(),
    }
}

/// The inputs for `schema`, filled from `config`.
pub fn fields(schema: &Value, config: &Value) -> Vec<Field> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| {
            let kind = kind_of(prop);
            let current = config.get(name);
            Field {
                name: name.clone(),
                label: prop["title"].as_str().unwrap_or(name).to_string(),
                description: prop["description"].as_str().map(str::to_string),
                text: text_of(&kind, current),
                checked: current.and_then(Value::as_bool).unwrap_or(false),
                required: required.contains(&name.as_str()),
                kind,
            }
        })
        .collect()
}

/// Field errors grouped by top-level property (`/config/base_url/...` → `base_url`);
/// errors about the whole document under `""`.
pub fn errors_by_field(errors: &[FieldError]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in errors {
        let rest = e.path.strip_prefix("/config").unwrap_or(&e.path);
        let field = rest
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .replace("~1", "/")
            .replace("~0", "~");
        let message = if rest.matches('/').count() > 1 {
            format!("{rest}: {}", e.message)
        } else {
            e.message.clone()
        };
        out.entry(field).or_default().push(message);
    }
    out
}

/// The generated inputs (to go inside a form). `read_only` renders them disabled.
pub fn render(fields: &[Field], errors: &BTreeMap<String, Vec<String>>, read_only: bool) -> Markup {
    html! {
        @for f in fields {
            @let id = format!("cfg-{}", f.name);
            @let help = format!("{id}-help");
            @let err = format!("{id}-error");
            @let errs = errors.get(&f.name);
            @let described = match (f.description.is_some(), errs.is_some()) {
                (true, true) => Some(format!("{help} {err}")),
                (true, false) => Some(help.clone()),
                (false, true) => Some(err.clone()),
                (false, false) => None,
            };
            div class={"field" @if errs.is_some() { " has-error" }} {
                @if f.kind == FieldKind::Boolean {
                    label.choice {
                        input id=(id) type="checkbox" name={(PREFIX) (f.name)} value="true" checked[f.checked]
                            disabled[read_only] aria-describedby=[described.as_deref()];
                        " " (f.label)
                    }
                } @else {
                    label for=(id) { (f.label) @if f.required { " " span.req aria-hidden="true" { "*" } span.visually-hidden { "(required)" } } }
                    @match &f.kind {
                        FieldKind::Choice(values) => {
                            select id=(id) name={(PREFIX) (f.name)} disabled[read_only] required[f.required]
                                aria-invalid=[errs.map(|_| "true")] aria-describedby=[described.as_deref()] {
                                @if !f.required { option value="" selected[f.text.is_empty()] { "(not set)" } }
                                @for v in values {
                                    @let t = v.to_string();
                                    option value=(t) selected[t == f.text] { (v.as_str().map(str::to_string).unwrap_or_else(|| t.clone())) }
                                }
                            }
                        }
                        FieldKind::Json => {
                            textarea id=(id) name={(PREFIX) (f.name)} rows="4" spellcheck="false" disabled[read_only]
                                aria-invalid=[errs.map(|_| "true")] aria-describedby=[described.as_deref()] { (f.text) }
                        }
                        kind => {
                            @let (ty, step) = match kind {
                                FieldKind::Url => ("url", None),
                                FieldKind::Integer => ("number", Some("1")),
                                FieldKind::Number => ("number", Some("any")),
                                _ => ("text", None),
                            };
                            input id=(id) type=(ty) step=[step] name={(PREFIX) (f.name)} value=(f.text)
                                disabled[read_only] required[f.required] spellcheck="false"
                                aria-invalid=[errs.map(|_| "true")] aria-describedby=[described.as_deref()];
                        }
                    }
                }
                @if let Some(d) = &f.description { p.help id=(help) { (d) @if f.kind == FieldKind::Any { " (text, or JSON)" } @if f.kind == FieldKind::Json { " (JSON)" } } }
                @if let Some(es) = errs {
                    p.field-error id=(err) { @for e in es { (e) br; } }
                }
            }
        }
    }
}

/// The configuration a submitted form means: `current` with every schema property
/// replaced by its input (an empty optional input removes the property). Inputs that do
/// not parse are field errors with `/config/<name>` paths.
pub fn parse(
    schema: &Value,
    current: &Value,
    form: &[(String, String)],
) -> Result<Value, Vec<FieldError>> {
    let mut config: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    for f in fields(schema, current) {
        let input = form
            .iter()
            .find(|(k, _)| k.strip_prefix(PREFIX) == Some(f.name.as_str()))
            .map(|(_, v)| v.trim().to_string());
        let path = format!("/config/{}", f.name.replace('~', "~0").replace('/', "~1"));
        let mut fail = |m: String| {
            errors.push(FieldError {
                path: path.clone(),
                message: m,
            })
        };
        if f.kind == FieldKind::Boolean {
            config.insert(f.name.clone(), Value::Bool(input.is_some()));
            continue;
        }
        let text = input.unwrap_or_default();
        if text.is_empty() {
            config.remove(&f.name);
            continue;
        }
        let value = match &f.kind {
            FieldKind::Text | FieldKind::Url => Value::String(text),
            FieldKind::Integer => match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    fail(format!("{text:?} is not a whole number"));
                    continue;
                }
            },
            FieldKind::Number => match text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Value::Number(n),
                None => {
                    fail(format!("{text:?} is not a number"));
                    continue;
                }
            },
            FieldKind::Choice(values) => match values.iter().find(|v| v.to_string() == text) {
                Some(v) => v.clone(),
                None => {
                    fail(format!("{text:?} is not one of the choices"));
                    continue;
                }
            },
            FieldKind::Json => match serde_json::from_str::<Value>(&text) {
                Ok(v) => v,
                Err(e) => {
                    fail(format!("not valid JSON: {e}"));
                    continue;
                }
            },
            FieldKind::Any => {
                if text.starts_with(['{', '[', '"']) {
                    match serde_json::from_str::<Value>(&text) {
                        Ok(v) => v,
                        Err(e) => {
                            fail(format!("not valid JSON: {e}"));
                            continue;
                        }
                    }
                } else {
                    Value::String(text)
                }
            }
            FieldKind::Boolean => continue,
        };
        config.insert(f.name.clone(), value);
    }
    if errors.is_empty() {
        Ok(Value::Object(config))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["base_url"],
            "properties": {
                "base_url": {"type": "string", "format": "uri", "description": "API root"},
                "page_size": {"type": "integer"},
                "verbose": {"type": "boolean"},
                "credential": {"enum": ["api"]},
                "query": {"type": "object"},
                "id": {"description": "pointer"}
            }
        })
    }

    #[test]
    fn round_trip_keeps_unknown_keys_and_types() {
        let current = json!({"base_url": "https://a", "extra": 1, "verbose": true});
        let form: Vec<(String, String)> = vec![
            ("cfg.base_url".into(), "https://b".into()),
            ("cfg.page_size".into(), "50".into()),
            ("cfg.credential".into(), "\"api\"".into()),
            ("cfg.query".into(), "{\"a\": \"b\"}".into()),
            ("cfg.id".into(), "/id".into()),
        ];
        let Ok(v) = parse(&schema(), &current, &form) else {
            panic!("should parse")
        };
        assert_eq!(
            v,
            json!({"base_url": "https://b", "extra": 1, "verbose": false, "page_size": 50,
                   "credential": "api", "query": {"a": "b"}, "id": "/id"})
        );
    }

    #[test]
    fn bad_inputs_are_field_errors() {
        let form: Vec<(String, String)> = vec![
            ("cfg.page_size".into(), "many".into()),
            ("cfg.query".into(), "{".into()),
        ];
        let Err(errs) = parse(&schema(), &json!({}), &form) else {
            panic!("should fail")
        };
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/config/page_size", "/config/query"]);
        let by = errors_by_field(&errs);
        assert!(by.contains_key("page_size") && by.contains_key("query"));
    }

    #[test]
    fn rendered_values_are_escaped() {
        let f = fields(
            &schema(),
            &json!({"base_url": "\"><script>alert(1)</script>"}),
        );
        let html = render(&f, &BTreeMap::new(), false).into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}

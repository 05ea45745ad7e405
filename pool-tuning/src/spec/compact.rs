//! The compact spelling: `name` or `name(key=value, ...)`, and `+`-joined
//! lists of them with an optional `@scope`.
//!
//! A value is JSON when it parses as JSON (`3`, `0.9`, `true`, `"text"`,
//! `{"size": 20}`), else a bare word taken as a string (`p90`).

use super::SpecError;
use serde_json::{Map, Value};

/// Splits `s` on `sep` outside brackets, braces, parentheses and quotes.
pub fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, ch) in s.char_indices() {
        if quoted {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => quoted = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Parses `name` or `name(k=v, ...)` into a JSON object with a `name` key.
pub fn parse_call(s: &str) -> Result<Map<String, Value>, SpecError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(SpecError::new("empty strategy spec"));
    }
    let (name, args) = match s.find('(') {
        None => (s, ""),
        Some(open) => {
            let Some(inner) = s[open + 1..].strip_suffix(')') else {
                return Err(SpecError::new(format!(
                    "`{s}`: expected `name(key=value, ...)` with a closing `)`"
                )));
            };
            (&s[..open], inner)
        }
    };
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SpecError::new(format!(
            "`{s}`: `{name}` is not a strategy name"
        )));
    }
    let mut map = Map::new();
    map.insert("name".into(), Value::String(name.to_string()));
    if args.trim().is_empty() {
        return Ok(map);
    }
    for arg in split_top(args, ',') {
        let Some((k, v)) = arg.split_once('=') else {
            return Err(SpecError::new(format!(
                "`{s}`: expected `key=value`, got `{}`",
                arg.trim()
            )));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k == "name" {
            return Err(SpecError::new(format!("`{s}`: bad parameter name `{k}`")));
        }
        let value = parse_value(v);
        if map.insert(k.to_string(), value).is_some() {
            return Err(SpecError::new(format!("`{s}`: `{k}` given twice")));
        }
    }
    Ok(map)
}

/// A value: an integer or float (parsed by Rust's correctly rounded parser,
/// so printed floats read back bit for bit), else JSON, else a bare string.
fn parse_value(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = v.parse::<u64>() {
        return Value::from(u);
    }
    let numeric = v
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if numeric {
        if let Some(n) = v.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
}

/// Writes one value for the compact form (bare words stay bare).
pub fn format_value(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && serde_json::from_str::<Value>(s).is_err() =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

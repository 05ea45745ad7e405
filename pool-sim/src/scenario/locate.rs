//! Scenario errors that name the file, the line and the field.
//!
//! Syntax and type errors come from `toml` with a byte span; the field is the key
//! at that span under its table header. Semantic errors come as a field path
//! (`workload[1].mix[0].size`); the line is found by walking the source's table
//! headers and keys, which is enough for the hand-written files scenarios are.

use super::FieldError;
use core::fmt;

/// A scenario that cannot be used, located in its source.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioError {
    /// The file (or `builtin:NAME`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted field path, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    pub(crate) fn plain(origin: &str, message: String) -> Self {
        ScenarioError {
            origin: origin.into(),
            line: None,
            column: None,
            field: None,
            message,
        }
    }

    pub(crate) fn from_toml(origin: &str, src: &str, e: &toml::de::Error) -> Self {
        let message = e.message().trim().to_string();
        let Some(span) = e.span() else {
            return Self::plain(origin, message);
        };
        let start = floor_char(src, span.start.min(src.len()));
        let (line, column) = line_col(src, start);
        let field = key_path_at(src, line);
        ScenarioError {
            origin: origin.into(),
            line: Some(line),
            column: Some(column),
            field,
            message,
        }
    }

    pub(crate) fn from_field(origin: &str, src: &str, e: FieldError) -> Self {
        ScenarioError {
            origin: origin.into(),
            line: find_field_line(src, &e.field),
            column: None,
            field: Some(e.field),
            message: e.message,
        }
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Each source line's key path (with array-of-table indices), in order.
fn line_paths(src: &str) -> Vec<Option<String>> {
    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut out = Vec::new();
    for raw in src.lines() {
        let l = raw.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            // Only the parents are qualified: the last segment is the array itself.
            let h = h.trim();
            let name = match h.rsplit_once('.') {
                Some((parent, last)) => format!("{}.{}", qualify(&counts, parent), last.trim()),
                None => h.to_string(),
            };
            let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((name.clone(), 0));
                    0
                }
            };
            // Children of an earlier element must restart their numbering.
            let pfx = format!("{name}[");
            counts.retain(|(k, _)| !k.starts_with(&pfx));
            table = format!("{name}[{n}]");
            out.push(Some(table.clone()));
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = qualify(&counts, h.trim());
            out.push(Some(table.clone()));
        } else if let Some((k, _)) = l.split_once('=').filter(|_| !l.starts_with('#')) {
            let key: String = k
                .trim()
                .split('.')
                .map(|s| s.trim().trim_matches('"'))
                .collect::<Vec<_>>()
                .join(".");
            out.push(Some(if table.is_empty() {
                key
            } else {
                format!("{table}.{key}")
            }));
        } else {
            out.push(None);
        }
    }
    out
}

/// `a.b` as the path of the latest `[[a]]` element: `a[2].b`.
fn qualify(counts: &[(String, usize)], header: &str) -> String {
    let mut path = String::new();
    for seg in header.split('.') {
        let seg = seg.trim().trim_matches('"');
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(seg);
        if let Some((_, n)) = counts.iter().find(|(k, _)| *k == path) {
            path = format!("{path}[{n}]");
        }
    }
    path
}

/// The line whose key path shares the longest prefix with `field` (≥ 1 segment).
fn find_field_line(src: &str, field: &str) -> Option<usize> {
    let want: Vec<&str> = field.split('.').collect();
    let mut best: Option<(usize, usize)> = None;
    for (i, p) in line_paths(src).iter().enumerate() {
        let Some(p) = p else { continue };
        let have: Vec<&str> = p.split('.').collect();
        let common = have.iter().zip(&want).take_while(|(a, b)| a == b).count();
        // A line deeper than what it shares is another field, not a container.
        if common == 0 || common < have.len() {
            continue;
        }
        if best.is_none_or(|(c, _)| common > c) {
            best = Some((common, i + 1));
        }
    }
    best.map(|(_, l)| l)
}

/// The key path of the line a toml error points at (its key or table header).
fn key_path_at(src: &str, line: usize) -> Option<String> {
    line_paths(src).get(line.checked_sub(1)?)?.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name = \"x\"\n[pool]\nlimit = 4\n[[workload]]\nkind = \"batch\"\n[[workload.mix]]\nclass = \"get\"\n[[workload]]\nkind = \"poisson\"\n[[workload.mix]]\nclass = \"get\"\n[[workload.mix]]\nsize = 5\n";

    #[test]
    fn finds_nested_array_fields() {
        assert_eq!(find_field_line(SRC, "pool.limit"), Some(3));
        assert_eq!(find_field_line(SRC, "workload[1].mix[1].size"), Some(13));
        assert_eq!(find_field_line(SRC, "workload[1].rate"), Some(8));
        assert_eq!(find_field_line(SRC, "workload[0].mix[0].class"), Some(7));
        assert_eq!(find_field_line(SRC, "nothing"), None);
        assert_eq!(find_field_line(SRC, "pool.retry.max_attempts"), Some(2));
    }
}

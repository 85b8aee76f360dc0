//! `${VAR}` in pipeline files: which environment variables may be read, and how their values
//! are inserted.
//!
//! Invariants:
//! - Only allowed variables expand: names (or `PREFIX_*` patterns) given with
//!   `weir run --allow-env`, or in the tenant's `allow.env`. Any other `${VAR}` is an error at
//!   its line, so a pipeline file cannot read the secrets of the process that runs it.
//! - A value is data, never syntax: inside a `"..."` (or `"""..."""`) string it is escaped as
//!   TOML requires, so a `"` or `\` or newline in it cannot end the string or add keys; inside a
//!   `'...'` string (where nothing can be escaped) a value holding `'` or a control character
//!   is refused; outside strings only a number or a boolean may be inserted.
//! - `$${` writes a literal `${`. Comments are left alone.

use std::path::Path;

use super::{ConfigError, Location};

/// What `${VAR}` may read.
pub struct Vars<'a> {
    /// Variable names, `PREFIX_*` patterns, or `*` for any.
    pub allowed: &'a [String],
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn allows(&self, name: &str) -> bool {
        self.allowed.iter().any(|pattern| matches(pattern, name))
    }
}

/// Whether `name` matches an allow-list entry: the name itself, `PREFIX_*`, or `*`.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Where the scanner is in the TOML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Outside,
    Comment,
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
}

/// How many bytes a multi-line string's closing run takes: TOML ends the string at the last
/// three of a run of three to five quotes (the first ones belong to the string).
fn quote_run(rest: &[u8], quote: u8) -> usize {
    rest.iter().take(5).take_while(|&&b| b == quote).count()
}

/// Replaces every `${VAR}` as the module docs say.
pub fn interpolate(path: &Path, text: &str, vars: &Vars) -> Result<String, ConfigError> {
    let error = |offset: usize, message: String| {
        let (line, column) = super::line_col(text, offset);
        ConfigError::Invalid {
            location: Location {
                path: path.to_owned(),
                line,
                column,
                key: None,
            },
            message,
        }
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = At::Outside;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match at {
            At::Outside => {
                if rest.starts_with(b"#") {
                    at = At::Comment;
                } else if rest.starts_with(b"\"\"\"") {
                    at = At::MultiBasic;
                    i += 3;
                    continue;
                } else if rest.starts_with(b"\"") {
                    at = At::Basic;
                } else if rest.starts_with(b"'''") {
                    at = At::MultiLiteral;
                    i += 3;
                    continue;
                } else if rest.starts_with(b"'") {
                    at = At::Literal;
                }
            }
            At::Comment => {
                if rest.starts_with(b"\n") {
                    at = At::Outside;
                }
            }
            At::Basic | At::MultiBasic => {
                if rest.starts_with(b"\\") {
                    i += 2;
                    continue;
                }
                if at == At::MultiBasic && rest.starts_with(b"\"\"\"") {
                    // `` and `"` end the string too, with one or two quotes in it.
                    at = At::Outside;
                    i += quote_run(rest, b'"');
                    continue;
                }
                if at == At::Basic && (rest.starts_with(b"\"") || rest.starts_with(b"\n")) {
                    at = At::Outside;
                }
            }
            At::Literal => {
                if rest.starts_with(b"'") || rest.starts_with(b"\n") {
                    at = At::Outside;
                }
            }
            At::MultiLiteral => {
                if rest.starts_with(b"'''") {
                    at = At::Outside;
                    i += quote_run(rest, b'\'');
                    continue;
                }
            }
        }
        if at == At::Comment || !rest.starts_with(b"${") {
            i += 1;
            continue;
        }
        // `$${` is a literal `${`.
        if i > 0 && bytes[i - 1] == b'$' {
            out.push_str(&text[copied..i - 1]);
            out.push_str("${");
            i += 2;
            copied = i;
            continue;
        }
        let Some(end) = text[i..].find('}') else {
            return Err(error(
                i,
                "unterminated `${` (write `$${` for a literal `${`)".into(),
            ));
        };
        let name = &text[i + 2..i + end];
        if !vars.allows(name) {
            return Err(error(
                i,
                format!(
                    "environment variable `{name}` is not allowed here: allow it with \
                     `weir run --allow-env {name}` (or in the tenant's `allow.env`)"
                ),
            ));
        }
        let Some(value) = (vars.lookup)(name) else {
            return Err(error(
                i,
                format!("environment variable `{name}` is not set"),
            ));
        };
        let inserted = insert(&value, at)
            .map_err(|why| error(i, format!("environment variable `{name}` {why}")))?;
        out.push_str(&text[copied..i]);
        out.push_str(&inserted);
        i += end + 1;
        copied = i;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The text that stands for `value` at a place of kind `at`.
fn insert(value: &str, at: At) -> Result<String, String> {
    match at {
        At::Basic | At::MultiBasic => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(out)
        }
        At::Literal | At::MultiLiteral => {
            if value.contains('\'') || value.chars().any(|c| c.is_control() && c != '\t') {
                Err("holds a `'` or a control character, which a '...' string cannot hold: use a \"...\" string".into())
            } else {
                Ok(value.to_string())
            }
        }
        At::Outside | At::Comment => {
            let number = !value.is_empty()
                && value
                    .trim_start_matches(['-', '+'])
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | 'e' | 'E' | '-' | '+'))
                && value.chars().any(|c| c.is_ascii_digit());
            if number || value == "true" || value == "false" {
                Ok(value.to_string())
            } else {
                Err("is used outside a string, where only a number or a boolean may go: write \"${...}\"".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str, allowed: &[&str], value: &str) -> Result<String, String> {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let lookup = |_: &str| Some(value.to_string());
        interpolate(
            Path::new("p.toml"),
            text,
            &Vars {
                allowed: &allowed,
                lookup: &lookup,
            },
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_value_is_data_whatever_it_holds() {
        // A value crafted to end the string and add a key stays inside the string.
        let evil = "x\"\nurl = \"http://evil.example\" #\\";
        let text = expand("access_key = \"${KEY}\"\n", &["KEY"], evil).unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed.len(), 1, "{text}");
        assert_eq!(parsed["access_key"].as_str(), Some(evil));
        let text = expand("k = \"\"\"a ${K} b\"\"\"\n", &["K"], "\"\"\"").unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["k"].as_str(), Some("a \"\"\" b"));
        // A multi-line string may end in a run of four or five quotes: what follows is not in
        // a string, so a `'...'` after it is a literal string and a `'` in the value is refused.
        let err = expand(
            "t = { k = \"\"\"a\"\"\"\"\", m = '${K}' }\n",
            &["K"],
            "x', evil = 'y",
        )
        .unwrap_err();
        assert!(err.contains("cannot hold"), "{err}");
        let text = expand("t = { k = '''a''''', m = \"${K}\" }\n", &["K"], "q\"").unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["t"]["k"].as_str(), Some("a''"), "{text}");
        assert_eq!(parsed["t"]["m"].as_str(), Some("q\""), "{text}");
        let err = expand("k = '${K}'\n", &["K"], "it's").unwrap_err();
        assert!(err.contains("cannot hold"), "{err}");
        assert_eq!(expand("n = ${N}\n", &["N"], "42").unwrap(), "n = 42\n");
        let err = expand("n = ${N}\n", &["N"], "1\nx = 2").unwrap_err();
        assert!(err.contains("outside a string"), "{err}");
    }

    #[test]
    fn only_allowed_variables_expand() {
        let err = expand("a = \"${HOME}\"\n", &["WEIR_*"], "/root").unwrap_err();
        assert!(err.starts_with("p.toml:1:6:"), "{err}");
        assert!(err.contains("`HOME` is not allowed"), "{err}");
        assert!(err.contains("--allow-env HOME"), "{err}");
        assert_eq!(
            expand("a = \"${WEIR_X}\"\n", &["WEIR_*"], "v").unwrap(),
            "a = \"v\"\n"
        );
        // Comments and `$${` are left alone.
        assert_eq!(
            expand("# ${HOME}\na = \"$${HOME}\"\n", &[], "").unwrap(),
            "# ${HOME}\na = \"${HOME}\"\n"
        );
    }
}

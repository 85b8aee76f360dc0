//! The tokenizer of the KDA SQL dialect. Hand-written, as is the parser: no maintained SQL
//! parser takes `SELECT STREAM`, pumps, `STEP(x BY INTERVAL ...)`, `FLOOR(x TO unit)` or
//! `WINDOWED BY STAGGER`, and errors must name the line and column of the SQL file.
//!
//! Invariant: every token carries the byte offset where it starts; the input is never
//! indexed past its end, whatever it holds (fuzzed with the parser).

use crate::error::{Pos, SqlError};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier; unquoted ones are upper-cased (as KDA did), quoted ones kept as written.
    Ident {
        text: String,
        quoted: bool,
    },
    /// A string literal, quotes removed and `''` unescaped.
    Str(String),
    /// A numeric literal as written.
    Number(String),
    Sym(&'static str),
    End,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

impl Token {
    /// The keyword this token is, if it is an unquoted identifier.
    pub fn keyword(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident {
                text,
                quoted: false,
            } => Some(text),
            _ => None,
        }
    }
}

/// Two-character symbols first, so that `<=` is not read as `<` then `=`.
const SYMBOLS: [&str; 19] = [
    "<=", ">=", "<>", "!=", "||", "(", ")", ",", ";", ".", "*", "+", "-", "/", "=", "<", ">", "%",
    ":",
];

pub fn tokenize(src: &str) -> Result<Vec<Token>, SqlError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("--") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if src[i..].starts_with("/*") {
            let end = src[i + 2..]
                .find("*/")
                .ok_or_else(|| SqlError::syntax(Pos(i), "unterminated comment"))?;
            i += 2 + end + 2;
            continue;
        }
        let start = i;
        // `U&'...'`: a string with Unicode escapes (`U&'\0009'` is a tab).
        if (c == b'u' || c == b'U')
            && bytes.get(i + 1) == Some(&b'&')
            && bytes.get(i + 2) == Some(&b'\'')
        {
            let (raw, end) = string_at(src, i + 2)?;
            let text = unicode_escapes(&raw).map_err(|m| SqlError::syntax(Pos(start), m))?;
            out.push(Token {
                tok: Tok::Str(text),
                pos: start,
            });
            i = end;
            continue;
        }
        if c == b'\'' {
            let (text, end) = string_at(src, i)?;
            out.push(Token {
                tok: Tok::Str(text),
                pos: start,
            });
            i = end;
            continue;
        }
        if c == b'"' {
            let mut text = String::new();
            i += 1;
            loop {
                let Some(rel) = src[i..].find('"') else {
                    return Err(SqlError::syntax(
                        Pos(start),
                        "unterminated quoted identifier",
                    ));
                };
                text.push_str(&src[i..i + rel]);
                i += rel + 1;
                if bytes.get(i) == Some(&b'"') {
                    text.push('"');
                    i += 1;
                } else {
                    break;
                }
            }
            if text.is_empty() {
                return Err(SqlError::syntax(Pos(start), "empty quoted identifier"));
            }
            out.push(Token {
                tok: Tok::Ident { text, quoted: true },
                pos: start,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text = &src[start..i];
            if text.matches('.').count() > 1 {
                return Err(SqlError::syntax(Pos(start), format!("bad number `{text}`")));
            }
            out.push(Token {
                tok: Tok::Number(text.to_string()),
                pos: start,
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || bytes[i] == b'_'
                    || bytes[i] == b'$'
                    || bytes[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident {
                    text: src[start..i].to_uppercase(),
                    quoted: false,
                },
                pos: start,
            });
            continue;
        }
        match SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            Some(s) => {
                out.push(Token {
                    tok: Tok::Sym(s),
                    pos: start,
                });
                i += s.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(SqlError::syntax(
                    Pos(start),
                    format!("unexpected character `{ch}`"),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::End,
        pos: src.len(),
    });
    Ok(out)
}

/// The string literal whose opening quote is at byte `start` of `src`: its text (`''`
/// unescaped), and where it ends (just past its closing quote).
fn string_at(src: &str, start: usize) -> Result<(String, usize), SqlError> {
    let bytes = src.as_bytes();
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        let Some(rel) = src.get(i..).and_then(|rest| rest.find('\'')) else {
            return Err(SqlError::syntax(Pos(start), "unterminated string literal"));
        };
        text.push_str(&src[i..i + rel]);
        i += rel + 1;
        if bytes.get(i) == Some(&b'\'') {
            text.push('\'');
            i += 1;
        } else {
            return Ok((text, i));
        }
    }
}

/// The text of a `U&'...'` literal: `\XXXX` and `\+XXXXXX` are the characters of those hex
/// code points, and `\\` is a backslash.
fn unicode_escapes(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let digits = match chars.clone().next() {
            Some('\\') => {
                chars.next();
                out.push('\\');
                continue;
            }
            Some('+') => {
                chars.next();
                6
            }
            _ => 4,
        };
        let mut code = 0u32;
        for _ in 0..digits {
            let d = chars.next().and_then(|d| d.to_digit(16)).ok_or_else(|| {
                format!(
                    "bad Unicode escape in U&'{text}': a backslash takes {digits} hex digits \
                     (or a second backslash)"
                )
            })?;
            code = code * 16 + d;
        }
        out.push(char::from_u32(code).ok_or_else(|| {
            format!("bad Unicode escape in U&'{text}': {code:X} is not a character")
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_strings_numbers_and_comments() {
        let t = tokenize("select \"Mixed\" , 'it''s' -- note\n 1.5e3 <= x /* c */ ||").unwrap();
        let toks: Vec<Tok> = t.into_iter().map(|t| t.tok).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Ident {
                    text: "SELECT".into(),
                    quoted: false
                },
                Tok::Ident {
                    text: "Mixed".into(),
                    quoted: true
                },
                Tok::Sym(","),
                Tok::Str("it's".into()),
                Tok::Number("1.5e3".into()),
                Tok::Sym("<="),
                Tok::Ident {
                    text: "X".into(),
                    quoted: false
                },
                Tok::Sym("||"),
                Tok::End,
            ]
        );
        assert!(tokenize("'open").is_err());
        let t = tokenize("U&'a\\0009b\\\\\\+01F600' u&'x'").unwrap();
        assert_eq!(t[0].tok, Tok::Str("a\tb\\\u{1F600}".into()));
        assert_eq!(t[1].tok, Tok::Str("x".into()));
        assert!(tokenize("U&'\\00G1'").is_err());
        assert!(tokenize("U&'\\D800'").is_err());
        assert!(tokenize("U&'\\12").is_err());
        assert!(tokenize("a /* open").is_err());
        assert!(tokenize("a # b").is_err());
    }
}

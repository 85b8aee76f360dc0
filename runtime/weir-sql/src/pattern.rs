//! Regular expressions: REGEX_REPLACE's Java patterns and replacements, and SIMILAR TO's SQL
//! patterns, both run by regex-lite.
//!
//! KDA ran `java.util.regex`. regex-lite reads the same syntax for what applications use
//! (classes, groups, named groups, alternation, counted repetition, `(?i)` and other flags);
//! Java's `\Q...\E` quoting is translated. It has no backreferences, look-around, possessive
//! quantifiers or Unicode classes (`\p{L}`): a pattern using them is refused with the reason.
//! Matching takes time linear in the text, whatever the pattern (no backtracking).

use regex_lite::{Captures, Regex};

/// A compiled pattern and the SQL text it came from. Two are equal when their texts are (so
/// that a compiled expression still compares with another, as group keys do).
#[derive(Clone, Debug)]
pub struct Pattern {
    pub text: String,
    pub re: Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text && self.re.as_str() == other.re.as_str()
    }
}

impl Pattern {
    /// REGEX_REPLACE's pattern: a Java regular expression.
    pub fn java(text: &str) -> Result<Pattern, String> {
        Ok(Pattern {
            text: text.to_string(),
            re: java_regex(text)?,
        })
    }

    /// REGEX_LOG_PARSE's pattern: a Java regular expression that must match the whole
    /// string, as `Matcher.matches()` does (so `a|ab` takes all of "ab").
    pub fn java_whole(text: &str) -> Result<Pattern, String> {
        let inner = from_java(text);
        let bad = |e: regex_lite::Error| format!("bad regular expression '{text}': {e}");
        // Alone first, so that a pattern that does not compile is reported as it is, not as
        // the group it is wrapped in.
        Regex::new(&inner).map_err(bad)?;
        // In (?x) mode a `#` comment would run over the closing `)\z`.
        if inner.contains('#') && verbose(&inner) {
            return Err(format!(
                "bad regular expression '{text}': comments in (?x) mode are not supported here"
            ));
        }
        let re = Regex::new(&format!(r"\A(?:{inner})\z")).map_err(bad)?;
        Ok(Pattern {
            text: text.to_string(),
            re,
        })
    }

    /// A SIMILAR TO pattern, with its escape character if it has one.
    pub fn similar(text: &str, escape: Option<char>) -> Result<Pattern, String> {
        let source = similar_to_regex(text, escape)?;
        let re =
            Regex::new(&source).map_err(|e| format!("bad SIMILAR TO pattern '{text}': {e}"))?;
        Ok(Pattern {
            text: text.to_string(),
            re,
        })
    }
}

/// Compiles a Java regular expression.
pub fn java_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&from_java(pattern)).map_err(|e| format!("bad regular expression '{pattern}': {e}"))
}

/// Whether a pattern sets the `x` flag (whitespace and `#` comments ignored) anywhere.
fn verbose(re: &str) -> bool {
    re.match_indices("(?").any(|(i, _)| {
        re[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .any(|c| c == 'x')
    })
}

/// Whether regex-lite gives `c` a meaning (so that it must be escaped to match itself).
fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// Appends `c` so that it matches itself, inside a character class or outside one.
pub(crate) fn push_literal(c: char, out: &mut String) {
    if is_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

/// A Java pattern in regex-lite's syntax: `\Q...\E` becomes escaped characters, and an escaped
/// punctuation character that regex-lite would not take (`\<`, `\%`) the character itself, as
/// it is in Java. Everything else is the same syntax and goes through as it is.
fn from_java(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    loop {
        let Some(i) = rest.find('\\') else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(quoted) = after.strip_prefix('Q') {
            let (literal, tail) = match quoted.find("\\E") {
                Some(j) => (&quoted[..j], &quoted[j + 2..]),
                None => (quoted, ""),
            };
            for c in literal.chars() {
                push_literal(c, &mut out);
            }
            rest = tail;
            continue;
        }
        let mut chars = after.chars();
        match chars.next() {
            // A trailing backslash: regex-lite reports it.
            None => {
                out.push('\\');
                return out;
            }
            Some(c) if is_meta(c) || c.is_ascii_alphanumeric() => {
                out.push('\\');
                out.push(c);
            }
            Some(c) => out.push(c),
        }
        rest = chars.as_str();
    }
}

/// A SQL `SIMILAR TO` pattern as a regular expression matching the whole string: `%` is any
/// run of characters, `_` any one, `|`, `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}` and `(...)` are
/// as in regular expressions, `[...]` is a class (with `^`, ranges and `[:ALPHA:]`-style
/// names), the escape character makes the next character literal, and every other character
/// (`.`, `$`, `\`...) is itself.
pub fn similar_to_regex(pattern: &str, escape: Option<char>) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    out.push_str("(?s)^(?:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if Some(c) == escape {
            let Some(&next) = chars.get(i) else {
                return Err(format!(
                    "SIMILAR TO pattern '{pattern}' ends with its escape character"
                ));
            };
            i += 1;
            push_literal(next, &mut out);
            continue;
        }
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '|' | '*' | '+' | '?' | ')' => out.push(c),
            '(' => out.push_str("(?:"),
            '{' => {
                let close = chars[i..]
                    .iter()
                    .position(|&x| x == '}')
                    .map(|p| i + p)
                    .ok_or_else(|| {
                        format!("SIMILAR TO pattern '{pattern}' has an unclosed `{{`")
                    })?;
                let inner: String = chars[i..close].iter().collect();
                let (lo, hi) = match inner.split_once(',') {
                    Some((lo, hi)) => (lo, Some(hi)),
                    None => (inner.as_str(), None),
                };
                let digits = |s: &str| s.chars().all(|d| d.is_ascii_digit());
                if lo.is_empty() || !digits(lo) || !hi.is_none_or(digits) {
                    return Err(format!(
                        "SIMILAR TO pattern '{pattern}' has a bad repetition `{{{inner}}}`"
                    ));
                }
                out.push('{');
                out.push_str(&inner);
                out.push('}');
                i = close + 1;
            }
            '[' => i = similar_class(&chars, i, escape, &mut out, pattern)?,
            c => push_literal(c, &mut out),
        }
    }
    out.push_str(")$");
    Ok(out)
}

/// A `[...]` class of a SIMILAR TO pattern, from `chars[i]` (just past its `[`): appends it
/// and returns where it ends (just past its `]`).
fn similar_class(
    chars: &[char],
    mut i: usize,
    escape: Option<char>,
    out: &mut String,
    pattern: &str,
) -> Result<usize, String> {
    let unclosed = || format!("SIMILAR TO pattern '{pattern}' has an unclosed `[`");
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(unclosed());
        };
        i += 1;
        if Some(c) == escape {
            let Some(&next) = chars.get(i) else {
                return Err(unclosed());
            };
            i += 1;
            push_literal(next, out);
        } else if c == ']' && !first {
            out.push(']');
            return Ok(i);
        } else if c == '[' && chars.get(i) == Some(&':') {
            // `[:ALPHA:]` and the like: regex-lite's ASCII classes.
            let start = i + 1;
            let end = (start..chars.len().saturating_sub(1))
                .find(|&k| chars[k] == ':' && chars[k + 1] == ']')
                .ok_or_else(unclosed)?;
            let name: String = chars[start..end].iter().collect();
            let class = match name.to_ascii_uppercase().as_str() {
                "ALPHA" => "alpha",
                "UPPER" => "upper",
                "LOWER" => "lower",
                "DIGIT" => "digit",
                "ALNUM" => "alnum",
                "SPACE" | "WHITESPACE" => "space",
                "XDIGIT" => "xdigit",
                "PUNCT" => "punct",
                _ => {
                    return Err(format!(
                        "SIMILAR TO pattern '{pattern}' has an unknown class `[:{name}:]`"
                    ))
                }
            };
            out.push_str("[:");
            out.push_str(class);
            out.push_str(":]");
            i = end + 2;
        } else if c == '-' && !first && chars.get(i).is_some_and(|&n| n != ']') {
            // A range between the characters either side.
            out.push('-');
        } else {
            push_literal(c, out);
        }
        first = false;
    }
}

/// A piece of a replacement string.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
    Named(String),
}

/// Reads a replacement as Java's `Matcher.appendReplacement` does: `$n` is group n (as many
/// digits as still name a group of the pattern), `${name}` a named group, and a backslash makes
/// the next character literal (`\$` is a dollar sign).
fn replacement(text: &str, re: &Regex) -> Result<Vec<Piece>, String> {
    let groups = re.captures_len();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => literal.push(n),
                None => {
                    return Err(format!(
                        "REGEX_REPLACE's replacement '{text}' ends with a backslash"
                    ))
                }
            },
            '$' => {
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                if chars.peek() == Some(&'{') {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(x) if x.is_ascii_alphanumeric() => name.push(x),
                            _ => {
                                return Err(format!(
                                    "REGEX_REPLACE's replacement '{text}' has a bad group name"
                                ))
                            }
                        }
                    }
                    if !re.capture_names().any(|n| n == Some(name.as_str())) {
                        return Err(format!(
                            "REGEX_REPLACE's pattern has no group named `{name}`"
                        ));
                    }
                    pieces.push(Piece::Named(name));
                    continue;
                }
                let Some(first) = chars.peek().and_then(|x| x.to_digit(10)) else {
                    return Err(format!(
                        "REGEX_REPLACE's replacement '{text}' has a `$` without a group number \
                         (write \\$ for a dollar sign)"
                    ));
                };
                chars.next();
                let mut n = first as usize;
                while let Some(d) = chars.peek().and_then(|x| x.to_digit(10)) {
                    let more = n * 10 + d as usize;
                    if more >= groups {
                        break;
                    }
                    n = more;
                    chars.next();
                }
                if n >= groups {
                    return Err(format!("REGEX_REPLACE's pattern has no group {n}"));
                }
                pieces.push(Piece::Group(n));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

fn expand(pieces: &[Piece], caps: &Captures<'_>, out: &mut String) {
    for p in pieces {
        let m = match p {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Group(n) => caps.get(*n),
            Piece::Named(name) => caps.name(name),
        };
        // A group that took no part in the match adds nothing, as in Java.
        if let Some(m) = m {
            out.push_str(m.as_str());
        }
    }
}

/// REGEX_REPLACE as the SQL Reference gives it: the matches of `re` in `original` from
/// character `start` (1-based) on are replaced, all of them when `occurrence` is 0, else only
/// that one (1 = the first). A start past the end gives `original` back; a start below 1 or a
/// negative occurrence fails. The replacement is read only once something matches, as Java
/// does, so a bad one fails only the rows it would change.
pub fn regex_replace(
    re: &Regex,
    original: &str,
    replacement_text: &str,
    start: i64,
    occurrence: i64,
) -> Result<String, String> {
    if start < 1 {
        return Err(format!(
            "REGEX_REPLACE's startPosition is {start}; it must be 1 or more"
        ));
    }
    if occurrence < 0 {
        return Err(format!(
            "REGEX_REPLACE's occurrence is {occurrence}; it must be 0 (all) or more"
        ));
    }
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
    let Some((cut, _)) = original.char_indices().nth(skip) else {
        return Ok(original.to_string());
    };
    let (head, rest) = original.split_at(cut);
    let mut out = String::with_capacity(original.len() + replacement_text.len());
    out.push_str(head);
    let mut pieces: Option<Vec<Piece>> = None;
    let mut last = 0;
    let mut seen = 0i64;
    for caps in re.captures_iter(rest) {
        seen += 1;
        if occurrence != 0 && seen < occurrence {
            continue;
        }
        let Some(m) = caps.get(0) else {
            continue;
        };
        if pieces.is_none() {
            pieces = Some(replacement(replacement_text, re)?);
        }
        out.push_str(&rest[last..m.start()]);
        expand(pieces.as_deref().unwrap_or(&[]), &caps, &mut out);
        last = m.end();
        if occurrence != 0 {
            break;
        }
    }
    out.push_str(&rest[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(s: &str, re: &str, rep: &str, start: i64, occ: i64) -> Result<String, String> {
        regex_replace(&java_regex(re).unwrap(), s, rep, start, occ)
    }

    fn similar(s: &str, p: &str, esc: Option<char>) -> bool {
        Pattern::similar(p, esc).unwrap().re.is_match(s)
    }

    #[test]
    fn regex_replace_follows_the_reference() {
        // SQL Reference sql-reference-regex-replace, example 1.
        assert_eq!(
            replace("TECHNOLOGY", "TECHNOLOGY", "INFORMATION TECHNOLOGY", 1, 0).unwrap(),
            "INFORMATION TECHNOLOGY"
        );
        assert_eq!(
            replace("TECHNOLOGY", "(TECH)NOLOGY", "$1 SECTOR", 1, 0).unwrap(),
            "TECH SECTOR"
        );
        // All, the second only, from the fourth character on, past the end.
        assert_eq!(replace("a1b2c3", "[0-9]", "#", 1, 0).unwrap(), "a#b#c#");
        assert_eq!(replace("a1b2c3", "[0-9]", "#", 1, 2).unwrap(), "a1b#c3");
        assert_eq!(replace("a1b2c3", "[0-9]", "#", 4, 0).unwrap(), "a1b#c#");
        assert_eq!(replace("a1b2c3", "[0-9]", "#", 4, 2).unwrap(), "a1b2c#");
        assert_eq!(replace("a1b2c3", "[0-9]", "#", 7, 0).unwrap(), "a1b2c3");
        assert_eq!(replace("a1b2c3", "[0-9]", "#", 1, 9).unwrap(), "a1b2c3");
        assert_eq!(replace("ééx", "x", "y", 3, 0).unwrap(), "ééy");
        assert!(replace("abc", "b", "x", 0, 0).is_err());
        assert!(replace("abc", "b", "x", 1, -1).is_err());
    }

    #[test]
    fn replacements_read_as_java_reads_them() {
        // `$1` then `0`: there is no group 10, so the digit is text.
        assert_eq!(replace("ab", "(a)(b)", "$10", 1, 0).unwrap(), "a0");
        assert_eq!(replace("ab", "(a)(b)", "$2$1", 1, 0).unwrap(), "ba");
        assert_eq!(replace("ab", "(?<x>a)", "[${x}]", 1, 0).unwrap(), "[a]b");
        assert_eq!(replace("ab", "a", "\\$\\\\", 1, 0).unwrap(), "$\\b");
        // A group that did not take part adds nothing.
        assert_eq!(replace("b", "(a)?b", "<$1>", 1, 0).unwrap(), "<>");
        assert!(replace("ab", "a", "$", 1, 0).is_err());
        assert!(replace("ab", "a", "$2", 1, 0).is_err());
        assert!(replace("ab", "a", "x\\", 1, 0).is_err());
        // ...but only where something matches.
        assert_eq!(replace("zz", "a", "$2", 1, 0).unwrap(), "zz");
    }

    #[test]
    fn java_patterns_translate() {
        assert!(java_regex(r"^\Qa.b\E$").unwrap().is_match("a.b"));
        assert!(!java_regex(r"^\Qa.b\E$").unwrap().is_match("axb"));
        assert!(java_regex(r"\<tag\>").unwrap().is_match("<tag>"));
        assert!(java_regex(r"\d{2}-\w+").unwrap().is_match("12-ab"));
        let err = java_regex(r"(a)\1").unwrap_err();
        assert!(err.contains("backreferences"), "{err}");
        assert!(java_regex("(").is_err());
    }

    #[test]
    fn log_parse_patterns_match_the_whole_string() {
        let p = Pattern::java_whole("a|ab").unwrap();
        let caps = p.re.captures("ab").unwrap();
        assert_eq!(caps.get(0).map(|m| m.as_str()), Some("ab"));
        assert!(!p.re.is_match("abc"));
        assert!(!p.re.is_match("xab"));
        // The reference's example: `.*` around the groups.
        let p = Pattern::java_whole(".*([E].).*([R].*)").unwrap();
        let caps = p.re.captures("ENERGY").unwrap();
        // The last E is followed by R, but then no R is left for the second group.
        assert_eq!(caps.get(1).map(|m| m.as_str()), Some("EN"));
        assert_eq!(caps.get(2).map(|m| m.as_str()), Some("RGY"));
        assert_eq!(p.re.captures_len(), 3);
        assert!(Pattern::java_whole("(a").is_err());
        assert!(Pattern::java_whole("a\\").is_err());
        assert!(Pattern::java_whole("(?x)a # note").is_err());
        assert!(Pattern::java_whole("(?x) a b ").unwrap().re.is_match("ab"));
        assert!(Pattern::java_whole("(?i)abc").unwrap().re.is_match("ABC"));
    }

    #[test]
    fn similar_to_matches_the_whole_string() {
        // The SQL standard's table, as AWS documents it for SIMILAR TO.
        assert!(similar("abc", "abc", None));
        assert!(similar("abc", "_b_", None));
        assert!(!similar("abc", "_A_", None));
        assert!(similar("abc", "%(b|d)%", None));
        assert!(!similar("abc", "(b|c)%", None));
        assert!(similar(
            "AbcAbcdefgefg12efgefg12",
            "((Ab)?c)+d((efg)+(12))+",
            None
        ));
        assert!(similar("aaaaaab11111xy", "a{6}_[0-9]{5}(x|y){2}", None));
        assert!(similar("$0.87", "$[0-9]+(.[0-9][0-9])?", None));
        assert!(!similar("$0x87", "$[0-9]+(.[0-9][0-9])?", None));
        assert!(similar("100%", "100!%", Some('!')));
        assert!(!similar("1000", "100!%", Some('!')));
        assert!(similar("TECHNOLOGY", "%TECH%", None));
        assert!(!similar("technology", "%TECH%", None));
        assert!(similar("a\nb", "a%b", None));
        assert!(similar("x9", "[[:ALPHA:]][[:DIGIT:]]", None));
        assert!(similar("-", "[-a]", None));
        assert!(similar("^", "[a^]", None));
        assert!(!similar("b", "[^a-c]", None));
        assert!(similar("d", "[^a-c]", None));
        assert!(similar("a.b", "a.b", None));
        assert!(!similar("axb", "a.b", None));
        assert!(Pattern::similar("a{x}", None).is_err());
        assert!(Pattern::similar("[abc", None).is_err());
        assert!(Pattern::similar("ab!", Some('!')).is_err());
        assert!(Pattern::similar("(ab", None).is_err());
    }
}

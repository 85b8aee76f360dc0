//! Firehose's custom prefixes: `!{namespace:value}` expressions in object key prefixes.
//!
//! Namespaces: `timestamp` (a Java `DateTimeFormatter` pattern, evaluated at the time of the
//! oldest record in the object; every occurrence in one prefix is the same instant),
//! `firehose:random-string` (11 characters, fresh per occurrence), `firehose:error-output-type`
//! (error prefixes only), `partitionKeyFromQuery:<key>` and `partitionKeyFromLambda:<key>`
//! (dynamic partitioning; not in error prefixes).
//!
//! Rules, as Firehose applies them when a delivery stream is created: `!{` may only open an
//! expression; a prefix with no `timestamp` and no partition key expression gets
//! `!{timestamp:yyyy/MM/dd/HH/}` appended; an evaluated prefix is at most 512 characters.

use crate::config::Refused;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand::Rng;

/// The longest evaluated prefix Firehose accepts.
pub const MAX_PREFIX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A chrono format string translated from the Java pattern.
    Timestamp(String),
    RandomString,
    ErrorOutputType,
    FromQuery(String),
    FromLambda(String),
}

/// A parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    parts: Vec<Part>,
}

/// Which kind of prefix is parsed: the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixKind {
    Records,
    Errors,
}

/// What a prefix is evaluated with.
pub struct Values<'a> {
    /// The time of the oldest record in the object.
    pub time: DateTime<Utc>,
    pub zone: Tz,
    pub error_output_type: Option<&'a str>,
    /// Partition keys from jq queries.
    pub query: &'a BTreeMap<String, String>,
    /// Partition keys a transform returned.
    pub lambda: &'a BTreeMap<String, String>,
}

impl Prefix {
    /// Parses and validates a prefix; the error says what is wrong, for the config error.
    pub fn parse(text: &str, kind: PrefixKind) -> Result<Prefix, Refused> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(at) = rest.find("!{") {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after.find('}').ok_or_else(|| {
                format!(
                    "`!{{` at {} opens an expression that is never closed",
                    text.len() - rest.len() + at
                )
            })?;
            let expr = &after[..end];
            let (namespace, value) = expr.split_once(':').ok_or_else(|| {
                format!("`!{{{expr}}}` is not an expression: expected `!{{namespace:value}}`")
            })?;
            let part = match (namespace, value) {
                ("timestamp", pattern) => Part::Timestamp(java_to_chrono(pattern)?),
                ("firehose", "random-string") => Part::RandomString,
                ("firehose", "error-output-type") => {
                    if kind == PrefixKind::Records {
                        return Err(Refused::from(
                            "`!{firehose:error-output-type}` is only allowed in the error prefix"
                                .to_string(),
                        ));
                    }
                    Part::ErrorOutputType
                }
                ("firehose", other) => {
                    return Err(Refused::from(format!(
                        "unknown `!{{firehose:{other}}}`: expected random-string or error-output-type"
                    )))
                }
                ("partitionKeyFromQuery" | "partitionKeyFromLambda", key) => {
                    if kind == PrefixKind::Errors {
                        return Err(Refused::from(format!(
                            "`!{{{expr}}}`: partition keys are not allowed in the error prefix"
                        )));
                    }
                    if key.is_empty() {
                        return Err(Refused::from(format!("`!{{{expr}}}` names no key")));
                    }
                    if namespace == "partitionKeyFromQuery" {
                        Part::FromQuery(key.to_string())
                    } else {
                        Part::FromLambda(key.to_string())
                    }
                }
                (other, _) => {
                    return Err(Refused::from(format!(
                        "unknown namespace `{other}` in `!{{{expr}}}`: expected timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda"
                    )))
                }
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let dynamic = parts
            .iter()
            .any(|p| matches!(p, Part::FromQuery(_) | Part::FromLambda(_)));
        let timed = parts.iter().any(|p| matches!(p, Part::Timestamp(_)));
        if !timed && !dynamic {
            parts.push(Part::Timestamp(java_to_chrono("yyyy/MM/dd/HH/")?));
        }
        Ok(Prefix { parts })
    }

    /// Whether the prefix uses any expression (before the default timestamp was appended).
    pub fn has_expressions(text: &str) -> bool {
        text.contains("!{")
    }

    pub fn query_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::FromQuery(k) => Some(k.as_str()),
            _ => None,
        })
    }

    pub fn lambda_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::FromLambda(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Whether the prefix takes values from records (`partitionKeyFrom...`), so that its length
    /// varies from record to record.
    pub fn has_partition_keys(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::FromQuery(_) | Part::FromLambda(_)))
    }

    pub fn has_error_output_type(&self) -> bool {
        self.parts.contains(&Part::ErrorOutputType)
    }

    /// Evaluates the prefix; an error names the missing key or the length.
    pub fn render(&self, v: &Values<'_>) -> Result<String, Refused> {
        let local = v.time.with_timezone(&v.zone);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(f) => {
                    let _ = write!(out, "{}", local.format(f));
                }
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str(v.error_output_type.unwrap_or("unknown")),
                Part::FromQuery(k) => out.push_str(
                    v.query
                        .get(k)
                        .ok_or_else(|| format!("no value for partition key `{k}`"))?,
                ),
                Part::FromLambda(k) => out.push_str(
                    v.lambda
                        .get(k)
                        .ok_or_else(|| format!("the transform returned no partition key `{k}`"))?,
                ),
            }
        }
        if out.len() > MAX_PREFIX_LEN {
            return Err(Refused::from(format!(
                "the evaluated prefix is {} characters, over Firehose's {MAX_PREFIX_LEN}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// 11 random characters (lowercase letters and digits), as `!{firehose:random-string}`.
pub fn random_string() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..11)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Translates a Java `DateTimeFormatter` pattern into a chrono format string. Supports the
/// letters prefixes use: `y` `u` `M` `d` `DDD` `H` `h` `m` `s` `SSS`/`SSSSSS`/`SSSSSSSSS` `a` `E`
/// `Z`..`ZZZ` `z`..`zzz`; others (and `[ ] { } #`) are refused rather than printed wrongly; quoted
/// text (`'...'`, `''` for a quote) and any other character as itself.
pub fn java_to_chrono(pattern: &str) -> Result<String, Refused> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Refused::from(format!(
                            "unclosed quote in timestamp pattern `{pattern}`"
                        )))
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        if ch == '%' {
                            out.push_str("%%");
                        } else {
                            out.push(ch);
                        }
                        i += 1;
                    }
                }
            }
            continue;
        }
        if matches!(c, '[' | ']' | '{' | '}' | '#') {
            return Err(Refused::from(format!(
                "`{c}` is reserved in timestamp patterns (`{pattern}`); quote it: '{c}'"
            )));
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let spec = match (c, n) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', 3) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            // Java prints "+0000" for Z..ZZZ, as chrono's %z does; the X and x forms differ
            // from chrono's in ways that matter (Z for UTC, "+09"), so they are refused.
            ('Z', 1..=3) => "%z",
            ('z', 1..=3) => "%Z",
            _ => {
                return Err(Refused::from(format!(
                    "`{}` is not supported in timestamp pattern `{pattern}`",
                    c.to_string().repeat(n)
                )))
            }
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn render(prefix: &str, kind: PrefixKind, zone: Tz) -> String {
        let query: BTreeMap<String, String> = [("customer".to_string(), "acme".to_string())].into();
        let lambda: BTreeMap<String, String> = [("region".to_string(), "eu".to_string())].into();
        Prefix::parse(prefix, kind)
            .unwrap()
            .render(&Values {
                time: at("2026-11-26T07:05:09.042Z"),
                zone,
                error_output_type: Some("processing-failed"),
                query: &query,
                lambda: &lambda,
            })
            .unwrap()
    }

    #[test]
    fn golden_prefixes() {
        let utc = chrono_tz::UTC;
        assert_eq!(render("", PrefixKind::Records, utc), "2026/11/26/07/");
        assert_eq!(
            render("clicks/", PrefixKind::Records, utc),
            "clicks/2026/11/26/07/"
        );
        assert_eq!(
            render(
                "clicks/customer=!{partitionKeyFromQuery:customer}/region=!{partitionKeyFromLambda:region}/!{timestamp:yyyy/MM/dd}/",
                PrefixKind::Records,
                utc
            ),
            "clicks/customer=acme/region=eu/2026/11/26/"
        );
        assert_eq!(
            render(
                "c/!{partitionKeyFromQuery:customer}/",
                PrefixKind::Records,
                utc
            ),
            "c/acme/",
            "no timestamp is appended to a dynamically partitioned prefix"
        );
        assert_eq!(
            render(
                "!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/",
                PrefixKind::Records,
                utc
            ),
            "year=2026/month=11/day=26/hour=07/"
        );
        assert_eq!(
            render(
                "!{timestamp:yyyy-MM-dd'T'HH:mm:ss.SSS}|!{timestamp:yy/M/d/H}",
                PrefixKind::Records,
                utc
            ),
            "2026-11-26T07:05:09.042|26/11/26/7"
        );
        assert_eq!(
            render(
                "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
                PrefixKind::Errors,
                utc
            ),
            "errors/processing-failed/2026/11/26/07/"
        );
        assert_eq!(
            render(
                "!{timestamp:yyyy/MM/dd/HH}/",
                PrefixKind::Records,
                chrono_tz::Asia::Tokyo
            ),
            "2026/11/26/16/",
            "in the configured time zone"
        );
        let random = render("r/!{firehose:random-string}/", PrefixKind::Records, utc);
        assert_eq!(random.len(), "r/".len() + 11 + 1 + "2026/11/26/07/".len());
    }

    #[test]
    fn invalid_prefixes_say_why() {
        let cases = [
            ("a/!{timestamp:yyyy", PrefixKind::Records, "never closed"),
            (
                "!{firehose:error-output-type}/",
                PrefixKind::Records,
                "only allowed in the error prefix",
            ),
            (
                "!{partitionKeyFromQuery:c}/",
                PrefixKind::Errors,
                "not allowed in the error prefix",
            ),
            ("!{foo:bar}", PrefixKind::Records, "unknown namespace `foo`"),
            (
                "!{firehose:uuid}",
                PrefixKind::Records,
                "unknown `!{firehose:uuid}`",
            ),
            (
                "!{timestamp:yyyy/QQ}",
                PrefixKind::Records,
                "`QQ` is not supported",
            ),
            ("!{nocolon}", PrefixKind::Records, "not an expression"),
        ];
        for (prefix, kind, want) in cases {
            let err = Prefix::parse(prefix, kind).unwrap_err();
            assert!(err.contains(want), "{prefix}: {err}");
        }
    }

    #[test]
    fn missing_keys_and_long_prefixes_fail_the_record() {
        let p = Prefix::parse("!{partitionKeyFromQuery:customer}/", PrefixKind::Records).unwrap();
        let empty = BTreeMap::new();
        let v = |q| Values {
            time: Utc::now(),
            zone: chrono_tz::UTC,
            error_output_type: None,
            query: q,
            lambda: &empty,
        };
        assert!(p.render(&v(&empty)).unwrap_err().contains("customer"));
        let long: BTreeMap<String, String> = [("customer".to_string(), "x".repeat(600))].into();
        assert!(p.render(&v(&long)).unwrap_err().contains("512"));
    }
}

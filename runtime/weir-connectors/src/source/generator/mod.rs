//! `generator`: records made from a template at a steady rate, for demos and load.
//!
//! Placeholders in `template` and `partition_key`:
//! `{{seq}}` (0, 1, 2, ...), `{{uuid}}`, `{{now}}` (RFC 3339, ms, UTC), `{{now_ms}}`,
//! `{{random:A..B}}` (an integer from A to B inclusive), `{{pick:a|b|c}}` (one of the choices).
//! With a `seed`, `random` and `pick` repeat from run to run.

pub mod config;

use crate::config::Refused;
use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{SourceContext, SourceError};
use crate::batch::{BatchBuilder, Meta};
use crate::config::GeneratorConfig;

/// Records per chunk when running unthrottled.
const CHUNK: u64 = 500;
/// How often a rate-limited generator wakes up.
const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Seq,
    Uuid,
    Now,
    NowMs,
    Random(i64, i64),
    Pick(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Part>);

impl Template {
    pub fn parse(text: &str) -> Result<Template, Refused> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` at `{}`", &rest[open..]))?;
            let inner = rest[open + 2..open + close].trim();
            let (name, arg) = inner.split_once(':').unwrap_or((inner, ""));
            parts.push(match name {
                "seq" => Part::Seq,
                "uuid" => Part::Uuid,
                "now" => Part::Now,
                "now_ms" => Part::NowMs,
                "random" => {
                    let (a, b) = arg
                        .split_once("..")
                        .ok_or_else(|| format!("`{{{{random:{arg}}}}}` needs a range like 1..100"))?;
                    let a: i64 = a.trim().parse().map_err(|_| format!("bad number `{a}` in random"))?;
                    let b: i64 = b.trim().parse().map_err(|_| format!("bad number `{b}` in random"))?;
                    if a > b {
                        return Err(Refused::from(format!("empty range {a}..{b} in random")));
                    }
                    Part::Random(a, b)
                }
                "pick" => {
                    if arg.is_empty() {
                        return Err(Refused::from("`{{pick:...}}` needs choices separated by `|`".to_string()));
                    }
                    Part::Pick(arg.split('|').map(str::to_string).collect())
                }
                other => {
                    return Err(Refused::from(format!(
                        "unknown placeholder `{{{{{other}}}}}` (known: seq, uuid, now, now_ms, random:A..B, pick:a|b)"
                    )))
                }
            });
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    pub fn render(
        &self,
        seq: u64,
        now: chrono::DateTime<chrono::Utc>,
        rng: &mut StdRng,
        out: &mut String,
    ) {
        use std::fmt::Write;
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Part::Uuid => {
                    let bytes: [u8; 16] = rng.random();
                    let _ = write!(
                        out,
                        "{}",
                        uuid::Builder::from_random_bytes(bytes).into_uuid()
                    );
                }
                Part::Now => {
                    let _ = write!(
                        out,
                        "{}",
                        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    );
                }
                Part::NowMs => {
                    let _ = write!(out, "{}", now.timestamp_millis());
                }
                Part::Random(a, b) => {
                    let _ = write!(out, "{}", rng.random_range(*a..=*b));
                }
                Part::Pick(choices) => out.push_str(&choices[rng.random_range(0..choices.len())]),
            }
        }
    }
}

pub(super) async fn run(config: GeneratorConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let template = Template::parse(&config.template).map_err(|e| SourceError::Template(e.0))?;
    let key_template = config
        .partition_key
        .as_deref()
        .map(Template::parse)
        .transpose()
        .map_err(|e| SourceError::Template(e.0))?;
    let mut rng = match config.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let source: std::sync::Arc<str> = format!("generator:{}", ctx.pipeline).into();
    let limit = config.count.unwrap_or(u64::MAX);
    let started = tokio::time::Instant::now();
    let mut seq: u64 = 0;
    while seq < limit && !ctx.shutdown.is_cancelled() {
        let due = match config.rate {
            Some(rate) if rate > 0.0 => {
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = ctx.shutdown.cancelled() => break,
                }
                ((started.elapsed().as_secs_f64() * rate) as u64).min(limit) - seq
            }
            _ => CHUNK.min(limit - seq),
        };
        let now = ctx.clock.now();
        let mut chunk = BatchBuilder::with_capacity(due as usize, due as usize * 64);
        chunk.set_source(source.clone());
        // One text, one key and one sequence buffer, reused for every record.
        let (mut text, mut key, mut number) = (String::new(), String::new(), String::new());
        for _ in 0..due {
            text.clear();
            template.render(seq, now, &mut rng, &mut text);
            number.clear();
            let _ = write!(number, "{seq}");
            if let Some(t) = &key_template {
                key.clear();
                t.render(seq, now, &mut rng, &mut key);
            }
            chunk.push(
                text.as_bytes(),
                Meta {
                    key: if key_template.is_some() {
                        &key
                    } else {
                        &number
                    },
                    sequence_number: Some(&number),
                    sub_sequence_number: None,
                    arrival_ms: now.timestamp_millis(),
                },
            );
            seq += 1;
        }
        let chunk = chunk.finish();
        if !ctx.emit(chunk).await {
            break;
        }
    }
    Ok(())
}

super::runs_as_source!(GeneratorConfig, run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_every_placeholder() {
        let t = Template::parse(
            r#"{"n":{{seq}},"u":"{{pick:a|b}}","r":{{random:5..5}},"t":{{now_ms}}}"#,
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let now = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let mut out = String::new();
        t.render(7, now, &mut rng, &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["n"], 7);
        assert!(v["u"] == "a" || v["u"] == "b");
        assert_eq!(v["r"], 5);
        assert_eq!(v["t"], 1_700_000_000_123i64);
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        assert!(Template::parse("{{nope}}")
            .unwrap_err()
            .contains("unknown placeholder"));
        assert!(Template::parse("{{random:9..1}}")
            .unwrap_err()
            .contains("empty range"));
        assert!(Template::parse("{{seq").unwrap_err().contains("unclosed"));
    }
}

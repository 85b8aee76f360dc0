//! `http`: Firehose's HTTP endpoint delivery, protocol version 1.0, as AWS documents it.
//!
//! Records are buffered by the buffering hints; each buffer becomes one `POST` with the headers
//! `X-Amz-Firehose-Protocol-Version: 1.0`, `X-Amz-Firehose-Request-Id` (the same on every retry
//! of the request, so the receiver can deduplicate), `X-Amz-Firehose-Source-Arn`,
//! `X-Amz-Firehose-Access-Key` (verbatim, when configured),
//! `X-Amz-Firehose-Common-Attributes` (`{"commonAttributes":{...}}`, non-ASCII escaped),
//! `Content-Type: application/json` and, when configured, `Content-Encoding: gzip`. Body:
//! `{"requestId":"...","timestamp":<ms>,"records":[{"data":"<base64>"}]}`.
//!
//! Response contract: only a 200 whose JSON body echoes the `requestId` is a success. Failures
//! are judged by whose fault they are:
//! - `413` is the records': they go to the error output at once.
//! - An endpoint that is down or refuses Weir itself (a connection error, no answer within
//!   `request_timeout`, 408, 429, 502, 503, 504, 401, 403, 404, 405, 407) is retried with
//!   exponential back-off from 1 s (×2, ±15 % jitter, at most 2 minutes apart) for as long as
//!   the pipeline runs, and reported in the sink's health; it never sends records to the error
//!   output (see [`super::retry`]).
//! - Any other answer (400, 500, another status, a 200 that does not echo the request id) may
//!   be about the request's content: retried the same way until `retry_duration` has passed
//!   since the first attempt, then the records go to the error output (`http-endpoint-failed`),
//!   as Firehose does.
//!
//! Acks are released only on success or with the error output. An answer is read back only up
//! to [`MAX_RESPONSE`] bytes.

pub mod config;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use super::retry::{Backoff, GivenUp, Retrying};
use super::{Delivered, SinkContext, SinkError};
use crate::ack::Held;
use crate::clock::sleep_until;
use crate::codes;
use crate::config::{ContentEncoding, HttpSinkConfig};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::stats::Stats;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// The most bytes of an answer read back: the contract's answer is a small JSON object.
pub const MAX_RESPONSE: usize = 64 << 10;

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// One request's worth of records.
#[derive(Default)]
struct Pending {
    records: Vec<Record>,
    bytes: u64,
    opened: Option<tokio::time::Instant>,
}

pub(super) async fn run(
    config: HttpSinkConfig,
    mut rx: mpsc::Receiver<crate::batch::Batch>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let client = client(&config).inspect_err(|_| ctx.poison.set())?;
    let source_arn = match &config.source_arn {
        Some(arn) => arn.0.clone(),
        // Pipeline names may hold any character; a header may not.
        None => format!(
            "arn:aws:firehose:local:000000000000:deliverystream/{}",
            crate::durable::file_name(&ctx.pipeline)
        ),
    };
    let endpoint = Endpoint {
        client,
        config: &config,
        source_arn,
        shown: crate::redact::url(&config.url),
        ctx: &ctx,
    };
    let mut delivered = Delivered {
        location: Some(endpoint.shown.clone()),
        ..Delivered::default()
    };
    let mut given_up = GivenUp::default();
    let mut pending = Pending::default();
    loop {
        let deadline = pending.opened.map(|at| at + config.buffer.interval.0);
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                // A request body is built from records one by one, and failed ones go to the
                // error output on their own: the batch is taken apart here.
                for record in batch.into_records() {
                    pending.bytes += record.data.len() as u64;
                    ctx.memory.add(record.data.len() as u64);
                    pending.opened.get_or_insert_with(tokio::time::Instant::now);
                    pending.records.push(record);
                    if pending.bytes >= config.buffer.size.0 || ctx.memory.over() {
                        endpoint.deliver(std::mem::take(&mut pending), &mut delivered, &mut given_up).await?;
                    }
                }
                if config.buffer.interval.0.is_zero() && !pending.records.is_empty() {
                    endpoint.deliver(std::mem::take(&mut pending), &mut delivered, &mut given_up).await?;
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                endpoint.deliver(std::mem::take(&mut pending), &mut delivered, &mut given_up).await?;
            }
        }
    }
    if !pending.records.is_empty() {
        endpoint
            .deliver(pending, &mut delivered, &mut given_up)
            .await?;
    }
    given_up.finish(&endpoint.shown)?;
    Ok(delivered)
}

fn client(config: &HttpSinkConfig) -> Result<HttpClient, SinkError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(b) => b,
        Err(e) if config.url.starts_with("https://") => {
            return Err(SinkError::Config(format!(
                "http sink: no trusted root certificates for {}: {e}",
                crate::redact::url(&config.url)
            )))
        }
        // Plain HTTP needs no roots; an empty store keeps the builder's types.
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::Config(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        ),
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

struct Endpoint<'a> {
    client: HttpClient,
    config: &'a HttpSinkConfig,
    source_arn: String,
    /// The URL as logs show it: without credentials or query values.
    shown: String,
    ctx: &'a SinkContext,
}

/// Why an attempt failed, by whose fault.
enum Failure {
    /// The records': to the error output at once (413).
    Records(String, String),
    /// Maybe the request's content: retried until `retry_duration` runs out.
    Content(String, String),
    /// The endpoint's: retried until it recovers.
    Endpoint(String, String),
}

/// Statuses that say the endpoint is down, overloaded, or refuses Weir itself (its URL, its
/// access key) rather than the records.
fn endpoint_status(status: u16) -> bool {
    matches!(
        status,
        401 | 403 | 404 | 405 | 407 | 408 | 429 | 502 | 503 | 504
    )
}

impl Endpoint<'_> {
    /// Delivers one request's records: until the endpoint takes them, the retry duration runs
    /// out on answers about their content, or (the endpoint still failing) the pipeline stops.
    async fn deliver(
        &self,
        pending: Pending,
        delivered: &mut Delivered,
        given_up: &mut GivenUp,
    ) -> Result<(), SinkError> {
        self.ctx.memory.sub(pending.bytes);
        if pending.records.is_empty() {
            return Ok(());
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        // Poisoned before the records are dropped with the error, so none counts as delivered.
        let body = self
            .body(&request_id, &pending.records)
            .inspect_err(|_| self.ctx.poison.set())?;
        let started = tokio::time::Instant::now();
        let deadline = started + self.config.retry_duration.0;
        let backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF, (0.85, 1.15));
        let what = format!("{} (request {request_id})", self.shown);
        let mut retry = Retrying::new(self.ctx, backoff, &what);
        let mut attempts = 0;
        let (code, message, stopped) = loop {
            attempts += 1;
            let failure = match self.attempt(&request_id, body.clone()).await {
                Ok(()) => {
                    retry.succeeded();
                    let n = pending.records.len() as u64;
                    Stats::add(&self.ctx.stats.records_out, n);
                    Stats::add(&self.ctx.stats.bytes_out, pending.bytes);
                    if let Some(oldest) = pending.records.iter().map(|r| r.arrival_ms).min() {
                        self.ctx.stats.delivered(oldest, self.ctx.clock.now_ms());
                    }
                    delivered.records += n;
                    delivered.object_count += 1;
                    // Accepted: the records' acks are released as they are dropped here.
                    return Ok(());
                }
                Err(f) => f,
            };
            let (code, message, content) = match failure {
                Failure::Records(code, message) => break (code, message, false),
                Failure::Content(code, message) => (code, message, true),
                Failure::Endpoint(code, message) => (code, message, false),
            };
            // Answers about the content get the retry duration; an endpoint that is down,
            // as long as it takes.
            if content && tokio::time::Instant::now() >= deadline {
                break (code, message, false);
            }
            if !retry.failed(&format!("{code}: {message}")).await {
                break (code, message, true);
            }
        };
        if self.ctx.poison.is_set() {
            // Another stage failed: nothing counts as delivered any more, and the source
            // replays from its checkpoint; the records must not reach the error output too.
            return Err(SinkError::Stream {
                what: "the HTTP endpoint",
                source: std::io::Error::other(format!(
                    "the pipeline failed while retrying: {message}"
                )),
            });
        }
        let now = self.ctx.clock.now_ms();
        let mut failed = Vec::new();
        for record in pending.records {
            // Stopping with the endpoint still failing: read again after the restart, or kept.
            let (record, code) = if stopped {
                match given_up.sort(record, &self.ctx.stats) {
                    Some(r) => (r, codes::DESTINATION_UNAVAILABLE.to_string()),
                    None => continue,
                }
            } else {
                (record, code.clone())
            };
            failed.push(FailedRecord {
                record,
                output_type: ErrorOutputType::HttpEndpointFailed,
                code,
                message: format!("request {request_id}: {message}"),
                stage: "sink:http".into(),
                attempts,
                failed_at_ms: now,
                details: None,
            });
        }
        if stopped {
            given_up.error = Some(format!("{code}: {message}"));
        } else {
            tracing::warn!(url = %self.shown, request_id, attempts, error = %message, records = failed.len(), "HTTP endpoint refused the records; they go to the error output");
        }
        if failed.is_empty() {
            return Ok(());
        }
        Stats::add(&self.ctx.stats.records_failed, failed.len() as u64);
        let mut held = hold(&failed);
        match &self.ctx.errors {
            Some(errors) if self.ctx.poison.send(errors, failed).await => Ok(()),
            _ => {
                held.fail();
                Err(SinkError::Stream {
                    what: "the error output",
                    source: std::io::Error::other("closed"),
                })
            }
        }
    }

    fn body(&self, request_id: &str, records: &[Record]) -> Result<Bytes, SinkError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let size: usize = records.iter().map(|r| r.data.len() * 4 / 3 + 16).sum();
        // One buffer: each record is base64-encoded straight into it.
        let mut json = String::with_capacity(size + 96);
        json.push_str("{\"requestId\":");
        json.push_str(&serde_json::to_string(request_id).expect("strings serialize"));
        let _ = write!(
            json,
            ",\"timestamp\":{},\"records\":[",
            self.ctx.clock.now_ms()
        );
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str("{\"data\":\"");
            b64.encode_string(&r.data, &mut json);
            json.push_str("\"}");
        }
        json.push_str("]}");
        let json = json.into_bytes();
        match self.config.content_encoding {
            ContentEncoding::None => Ok(Bytes::from(json)),
            ContentEncoding::Gzip => {
                super::compress::compress(&json, crate::config::Compression::Gzip, "")
                    .map(Bytes::from)
                    .map_err(|e| SinkError::Config(format!("cannot gzip a request: {e}")))
            }
        }
    }

    async fn attempt(&self, request_id: &str, body: Bytes) -> Result<(), Failure> {
        let mut req = hyper::Request::builder()
            .method("POST")
            .uri(&self.config.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("Weir/", env!("CARGO_PKG_VERSION")))
            .header("X-Amz-Firehose-Protocol-Version", "1.0")
            .header("X-Amz-Firehose-Request-Id", request_id)
            .header("X-Amz-Firehose-Source-Arn", &self.source_arn);
        if let Some(key) = &self.config.access_key {
            req = req.header("X-Amz-Firehose-Access-Key", &key.0);
        }
        if !self.config.common_attributes.is_empty() {
            let attrs: &BTreeMap<String, String> = &self.config.common_attributes;
            req = req.header(
                "X-Amz-Firehose-Common-Attributes",
                ascii_json(&serde_json::json!({ "commonAttributes": attrs })),
            );
        }
        if self.config.content_encoding == ContentEncoding::Gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        // Headers and URL were checked when the pipeline file was read: a failure here is
        // Weir's, and no answer would change it.
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::Endpoint(codes::HTTP_INVALID_REQUEST.into(), e.to_string()))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Failure::Endpoint(
                    codes::HTTP_CONNECTION_FAILED.into(),
                    format!("{e}: {:?}", std::error::Error::source(&e)),
                )
            })?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    Failure::Content(
                        codes::HTTP_RESPONSE_FAILED.into(),
                        format!("{status}: cannot read the answer (at most {MAX_RESPONSE} bytes are read): {e}"),
                    )
                })?
                .to_bytes();
            Ok::<_, Failure>((status, body))
        };
        let (status, body) =
            match tokio::time::timeout(self.config.request_timeout.0, exchange).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Failure::Endpoint(
                        codes::HTTP_TIMEOUT.into(),
                        format!("no answer within {:?}", self.config.request_timeout.0),
                    ))
                }
            };
        let text = || {
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        };
        let code = status.as_u16();
        if code == 413 {
            return Err(Failure::Records(
                codes::HTTP_TOO_LARGE.into(),
                format!("413: {}", text()),
            ));
        }
        if code != 200 {
            let (code_text, message) = (
                format!("HttpEndpoint.{code}"),
                format!("{status}: {}", text()),
            );
            return Err(if endpoint_status(code) {
                Failure::Endpoint(code_text, message)
            } else {
                Failure::Content(code_text, message)
            });
        }
        let answer = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let echoed = answer
            .as_ref()
            .and_then(|v| v.get("requestId"))
            .and_then(|r| r.as_str());
        let timestamped = answer
            .as_ref()
            .and_then(|v| v.get("timestamp"))
            .is_some_and(|t| t.is_number());
        match echoed {
            Some(id) if id == request_id && timestamped => Ok(()),
            _ => Err(Failure::Content(
                codes::HTTP_MALFORMED_RESPONSE.into(),
                format!(
                    "200 without this request's requestId and a timestamp: {}",
                    text()
                ),
            )),
        }
    }
}

/// JSON text with every non-ASCII character escaped (`\uXXXX`), so that it can be a header.
fn ascii_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// The acks of records being handed to the error output, failed if that fails.
fn hold(failed: &[FailedRecord]) -> Held {
    let mut held = Held::default();
    for f in failed {
        held.hold(&f.record.ack);
    }
    held
}

super::runs_as_sink!(HttpSinkConfig, run);

/// Its failed records go to the default error output.
impl crate::config::SinkComponent for HttpSinkConfig {}

#[cfg(test)]
mod tests {
    #[test]
    fn common_attributes_are_sent_as_ascii_json() {
        let v = serde_json::json!({"commonAttributes": {"team": "données 🚀"}});
        let text = super::ascii_json(&v);
        assert!(text.is_ascii(), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        assert!(hyper::header::HeaderValue::from_str(&text).is_ok());
    }
}

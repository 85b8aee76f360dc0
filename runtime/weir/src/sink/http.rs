//! `http`: Firehose's HTTP endpoint delivery, protocol version 1.0, as AWS documents it.
//!
//! Records are buffered by the buffering hints; each buffer becomes one `POST` with the headers
//! `X-Amz-Firehose-Protocol-Version: 1.0`, `X-Amz-Firehose-Request-Id` (the same on every retry
//! of the request, so the receiver can deduplicate), `X-Amz-Firehose-Source-Arn`,
//! `X-Amz-Firehose-Access-Key` (verbatim, when configured),
//! `X-Amz-Firehose-Common-Attributes` (`{"commonAttributes":{...}}`), `Content-Type:
//! application/json` and, when configured, `Content-Encoding: gzip`. Body:
//! `{"requestId":"...","timestamp":<ms>,"records":[{"data":"<base64>"}]}`.
//!
//! Response contract: only a 200 whose JSON body echoes the `requestId` is a success. 413 is
//! permanent: the records go to the error output at once. Anything else (another status, a
//! malformed answer, a connection error, no answer within `request_timeout`) is retried with
//! exponential back-off from 1 s (×2, ±15 % jitter, at most 2 minutes apart) until
//! `retry_duration` has passed since the first attempt; then the records go to the error output
//! (`http-endpoint-failed`). Acks are released only on success or with the error output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use tokio::sync::mpsc;

use super::{Delivered, SinkContext, SinkError};
use crate::ack::Held;
use crate::clock::sleep_until;
use crate::config::{ContentEncoding, HttpSinkConfig};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::stats::Stats;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(120);

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
    mut rx: mpsc::Receiver<Vec<Record>>,
    ctx: SinkContext,
) -> Result<Delivered, SinkError> {
    let client = client(&config).inspect_err(|_| ctx.poison.set())?;
    let source_arn = config.source_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:firehose:local:000000000000:deliverystream/{}",
            ctx.pipeline
        )
    });
    let endpoint = Endpoint {
        client,
        config: &config,
        source_arn,
        ctx: &ctx,
    };
    let mut delivered = Delivered {
        location: Some(config.url.clone()),
        ..Delivered::default()
    };
    let mut pending = Pending::default();
    loop {
        let deadline = pending.opened.map(|at| at + config.buffer.interval.0);
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                for record in batch {
                    pending.bytes += record.data.len() as u64;
                    pending.opened.get_or_insert_with(tokio::time::Instant::now);
                    pending.records.push(record);
                    if pending.bytes >= config.buffer.size.0 {
                        endpoint.deliver(std::mem::take(&mut pending), &mut delivered).await?;
                    }
                }
                if config.buffer.interval.0.is_zero() && !pending.records.is_empty() {
                    endpoint.deliver(std::mem::take(&mut pending), &mut delivered).await?;
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                endpoint.deliver(std::mem::take(&mut pending), &mut delivered).await?;
            }
        }
    }
    if !pending.records.is_empty() {
        endpoint.deliver(pending, &mut delivered).await?;
    }
    Ok(delivered)
}

fn client(config: &HttpSinkConfig) -> Result<HttpClient, SinkError> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(b) => b,
        Err(e) if config.url.starts_with("https://") => {
            return Err(SinkError::Config(format!(
                "http sink: no trusted root certificates for {}: {e}",
                config.url
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
    ctx: &'a SinkContext,
}

/// Why an attempt failed.
enum Failure {
    Permanent(String, String),
    Retry(String, String),
}

impl Endpoint<'_> {
    /// Delivers one request's records, retrying until the retry duration runs out.
    async fn deliver(&self, pending: Pending, delivered: &mut Delivered) -> Result<(), SinkError> {
        if pending.records.is_empty() {
            return Ok(());
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = self.body(&request_id, &pending.records)?;
        let started = tokio::time::Instant::now();
        let deadline = started + self.config.retry_duration.0;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        let (code, message) = loop {
            attempts += 1;
            let failure = match self.attempt(&request_id, body.clone()).await {
                Ok(()) => {
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
            match failure {
                Failure::Permanent(code, message) => break (code, message),
                Failure::Retry(code, message) => {
                    let wait = backoff
                        .mul_f64(rand::rng().random_range(0.85..=1.15))
                        .min(MAX_BACKOFF);
                    if tokio::time::Instant::now() + wait > deadline {
                        break (code, message);
                    }
                    tracing::warn!(url = %self.config.url, request_id, attempts, error = %message, "HTTP endpoint delivery failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        // Another stage failed: nothing counts as delivered any more, so stop
                        // retrying; the source replays from its checkpoint.
                        // The records are not delivered; the source replays them from its
                        // checkpoint, so they must not reach the error output too.
                        _ = self.ctx.poison.wait() => {
                            return Err(SinkError::Stream {
                                what: "the HTTP endpoint",
                                source: std::io::Error::other(format!("the pipeline failed while retrying: {message}")),
                            });
                        }
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::warn!(url = %self.config.url, request_id, attempts, error = %message, records = pending.records.len(), "HTTP endpoint delivery gave up; records go to the error output");
        let now = self.ctx.clock.now_ms();
        let failed: Vec<FailedRecord> = pending
            .records
            .into_iter()
            .map(|record| FailedRecord {
                record,
                output_type: ErrorOutputType::HttpEndpointFailed,
                code: code.clone(),
                message: format!("request {request_id}: {message}"),
                stage: "sink:http".into(),
                attempts,
                failed_at_ms: now,
            })
            .collect();
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
            req = req.header("X-Amz-Firehose-Access-Key", key);
        }
        if !self.config.common_attributes.is_empty() {
            let attrs: &BTreeMap<String, String> = &self.config.common_attributes;
            req = req.header(
                "X-Amz-Firehose-Common-Attributes",
                serde_json::json!({ "commonAttributes": attrs }).to_string(),
            );
        }
        if self.config.content_encoding == ContentEncoding::Gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::Permanent("HttpEndpoint.InvalidRequest".into(), e.to_string()))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                Failure::Retry(
                    "HttpEndpoint.ConnectionFailed".into(),
                    format!("{e}: {:?}", std::error::Error::source(&e)),
                )
            })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::Retry("HttpEndpoint.ResponseFailed".into(), e.to_string()))?
                .to_bytes();
            Ok::<_, Failure>((status, body))
        };
        let (status, body) =
            match tokio::time::timeout(self.config.request_timeout.0, exchange).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Failure::Retry(
                        "HttpEndpoint.Timeout".into(),
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
        if status.as_u16() == 413 {
            return Err(Failure::Permanent(
                "HttpEndpoint.RequestEntityTooLarge".into(),
                format!("413: {}", text()),
            ));
        }
        if status.as_u16() != 200 {
            return Err(Failure::Retry(
                format!("HttpEndpoint.{}", status.as_u16()),
                format!("{status}: {}", text()),
            ));
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
            _ => Err(Failure::Retry(
                "HttpEndpoint.MalformedResponse".into(),
                format!(
                    "200 without this request's requestId and a timestamp: {}",
                    text()
                ),
            )),
        }
    }
}

/// The acks of records being handed to the error output, failed if that fails.
fn hold(failed: &[FailedRecord]) -> Held {
    let mut held = Held::default();
    for f in failed {
        held.hold(&f.record.ack);
    }
    held
}

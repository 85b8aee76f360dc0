//! The `http` sink's settings as a pipeline file writes them.

use crate::config::Refused;
use serde::{Deserialize, Deserializer};

use crate::config::{BufferConfig, Component};
use crate::units::HumanDuration;

/// Content encoding of HTTP endpoint requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentEncoding {
    #[default]
    None,
    Gzip,
}

/// `[sink] type = "http"`: Firehose's HTTP endpoint delivery, protocol 1.0.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    #[serde(rename = "type")]
    _type: String,
    /// The endpoint URL (`https://` or `http://`).
    pub url: String,
    /// Sent verbatim in `X-Amz-Firehose-Access-Key`.
    #[serde(default)]
    pub access_key: Option<HeaderText>,
    /// Sent in `X-Amz-Firehose-Common-Attributes`.
    #[serde(default)]
    pub common_attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub content_encoding: ContentEncoding,
    /// Buffering hints (Firehose's HTTP range: 1–64 MiB, 0–900 s; default 5MiB / 300s).
    #[serde(default)]
    pub buffer: BufferConfig,
    /// How long a request the endpoint refuses (for its content: 400, 500, a malformed
    /// answer...) is retried before its records go to the error output (0–7200 s). An endpoint
    /// that is down (refused connections, timeouts, 502/503/504, 429, 401/403/404) is retried
    /// until it recovers.
    #[serde(default = "default_retry_duration")]
    pub retry_duration: HumanDuration,
    /// How long the endpoint has to answer one request (default 180s, Firehose's 3 minutes).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// Sent in `X-Amz-Firehose-Source-Arn`; default a made-up ARN naming the pipeline.
    #[serde(default)]
    pub source_arn: Option<HeaderText>,
}

/// Text sent as an HTTP header value: checked when the file is read, so that a value that can
/// never be sent (a key from `${VAR}` ending in a newline, say) is an error at its line rather
/// than a request that fails at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderText(pub String);

impl<'de> Deserialize<'de> for HeaderText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if let Some((i, c)) = text
            .char_indices()
            .find(|(_, c)| !(*c == '\t' || (' '..='~').contains(c)))
        {
            return Err(serde::de::Error::custom(format!(
                "cannot be sent as an HTTP header: character {:?} at byte {i} (only visible ASCII, spaces and tabs are allowed{})",
                c,
                if c == '\n' || c == '\r' {
                    "; a value read from a file or variable often ends in a newline"
                } else {
                    ""
                }
            )));
        }
        if text.starts_with([' ', '\t']) || text.ends_with([' ', '\t']) {
            return Err(serde::de::Error::custom(
                "cannot be sent as an HTTP header: it starts or ends with white space, which HTTP strips",
            ));
        }
        Ok(HeaderText(text))
    }
}

fn default_retry_duration() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(180))
}

impl HttpSinkConfig {
    fn validate(&self) -> Result<(), Refused> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Refused::from(format!(
                "url `{}` must start with http:// or https://",
                crate::redact::url(&self.url)
            )));
        }
        if let Err(e) = self.url.parse::<hyper::Uri>() {
            return Err(Refused::from(format!(
                "url `{}` is not a valid URL: {e}",
                crate::redact::url(&self.url)
            )));
        }
        if !(1 << 20..=64 << 20).contains(&self.buffer.size.0) {
            return Err(Refused::from(format!(
                "buffer.size must be 1MiB to 64MiB for HTTP endpoints (Firehose's range), not {}",
                self.buffer.size
            )));
        }
        crate::config::objects::check_buffer(&self.buffer)?;
        if self.retry_duration.0 > std::time::Duration::from_secs(7200) {
            return Err(Refused::from(
                "retry_duration must be 0s to 7200s (Firehose's range)".to_string(),
            ));
        }
        Ok(())
    }
}

/// `[sink] type = "http"`, checked against Firehose's ranges.
pub fn read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HttpSinkConfig, D::Error> {
    crate::config::validated(d, |c: HttpSinkConfig| c.validate().map(|()| c))
}

impl Component for HttpSinkConfig {
    fn describe(&self) -> String {
        format!("HTTP endpoint {}", crate::redact::url(&self.url))
    }
}

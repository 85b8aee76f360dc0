//! AWS plumbing shared by the Kinesis source and the AWS sinks (S3, Firehose, Kinesis), so
//! that none of them imports another's: SDK configuration (region, endpoint, the standard
//! credential chain, rustls), clients, how a failed call is classified, and streams named by
//! name or ARN.
//!
//! Invariant: one list says which failures are the records' fault ([`invalid_request`]);
//! every other failure is the destination's, retried until it recovers.

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::Client;

/// The AWS SDK configuration for a region and endpoint, with the standard credential chain
/// (environment, profile, ...) and rustls.
pub async fn sdk_config(region: Option<&str>, endpoint: Option<&str>) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// A Kinesis client for the configured region and endpoint.
pub async fn kinesis_client(region: Option<&str>, endpoint: Option<&str>) -> Client {
    Client::new(&sdk_config(region, endpoint).await)
}

/// An S3 client for a region and endpoint; `path_style` for S3-compatible stores that do not
/// take the bucket in the host name.
pub async fn s3_client(
    region: Option<&str>,
    endpoint: Option<&str>,
    path_style: bool,
) -> aws_sdk_s3::Client {
    let sdk = sdk_config(region, endpoint).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The bytes of one S3 object (reference data, for one): `bucket` is a name or a bucket ARN
/// (`arn:aws:s3:::name`). With an endpoint, path-style addressing (S3-compatible stores).
pub async fn s3_object(
    region: Option<&str>,
    endpoint: Option<&str>,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, String> {
    let bucket = bucket.strip_prefix("arn:aws:s3:::").unwrap_or(bucket);
    let client = s3_client(region, endpoint, endpoint.is_some()).await;
    let what = format!("s3://{bucket}/{key}");
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("{what}: {}", DisplayErrorContext(&e)))?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(body.into_bytes().to_vec())
}

/// A service error as its code and message; anything else with its whole chain of causes.
pub fn brief<E, R>(e: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => s.to_string(),
        None => DisplayErrorContext(e).to_string(),
    }
}

/// Whether a service error's code says the request itself is invalid: the one failure that is
/// the records' fault. Throttling, server-side errors, lapsed or missing credentials,
/// AccessDenied, a stream not found (it may be created again) and codes this release does not
/// know are the destination's: retried with back-off, never a reason to give records up.
pub fn invalid_request(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidArgumentException" | "ValidationException")
    )
}

/// Whether a failed call is worth retrying: a transport error, or any service error but an
/// invalid request.
pub fn retryable(code: Option<&str>, transport: bool) -> bool {
    transport || !invalid_request(code)
}

/// Names a stream in requests: by ARN when given one, else by name.
#[derive(Debug, Clone)]
pub struct Stream {
    pub id: String,
    pub is_arn: bool,
}

/// Whether a stream is named by its ARN (else by its name).
pub fn is_arn(id: &str) -> bool {
    id.starts_with("arn:")
}

impl Stream {
    pub fn new(id: &str) -> Self {
        Stream {
            id: id.to_string(),
            is_arn: is_arn(id),
        }
    }

    /// The stream's name, for checkpoint keys and record sources.
    pub fn name(&self) -> &str {
        if self.is_arn {
            self.id.rsplit('/').next().unwrap_or(&self.id)
        } else {
            &self.id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_come_from_arns() {
        let s = Stream::new("arn:aws:kinesis:us-east-1:000000000000:stream/clicks");
        assert!(s.is_arn);
        assert_eq!(s.name(), "clicks");
        assert_eq!(Stream::new("clicks").name(), "clicks");
    }

    #[test]
    fn only_an_invalid_request_is_the_records_fault() {
        assert!(!retryable(Some("ValidationException"), false));
        assert!(
            retryable(Some("ValidationException"), true),
            "a transport error"
        );
        for code in [
            "ExpiredTokenException",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "SomethingNew",
        ] {
            assert!(retryable(Some(code), false), "{code}");
        }
    }
}

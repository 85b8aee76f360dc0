//! The Kinesis source's settings as a pipeline file writes them (`[source] type = "kinesis"`),
//! with their defaults and the checks the file's syntax cannot make.

use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::config::{CheckError, Component, SourceComponent};
use crate::units::HumanDuration;

/// Where a Kinesis shard without a checkpoint starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StartPosition {
    /// New records only (the KCL's default).
    #[default]
    Latest,
    /// The oldest record the stream keeps.
    TrimHorizon,
    /// The first record at or after this time.
    AtTimestamp(chrono::DateTime<chrono::Utc>),
}

impl<'de> Deserialize<'de> for StartPosition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StartPosition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#""latest", "trim_horizon" or { at_timestamp = "2026-11-26T10:00:00Z" }"#,
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StartPosition, E> {
                match v {
                    "latest" => Ok(StartPosition::Latest),
                    "trim_horizon" => Ok(StartPosition::TrimHorizon),
                    other => Err(E::custom(format!(
                        "unknown start `{other}`, expected \"latest\", \"trim_horizon\" or {{ at_timestamp = \"...\" }}"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StartPosition, A::Error> {
                let mut at = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "at_timestamp" {
                        return Err(serde::de::Error::unknown_field(&key, &["at_timestamp"]));
                    }
                    let text: String = map.next_value()?;
                    let parsed = chrono::DateTime::parse_from_rfc3339(&text).map_err(|e| {
                        serde::de::Error::custom(format!("invalid at_timestamp `{text}`: {e} (use RFC 3339, e.g. 2026-11-26T10:00:00Z)"))
                    })?;
                    at = Some(parsed.with_timezone(&chrono::Utc));
                }
                at.map(StartPosition::AtTimestamp)
                    .ok_or_else(|| serde::de::Error::missing_field("at_timestamp"))
            }
        }
        d.deserialize_any(V)
    }
}

/// How shards are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerMode {
    /// GetRecords loops, shared throughput.
    #[default]
    Polling,
    /// Enhanced fan-out (SubscribeToShard).
    Efo,
}

/// Which checkpoint store a Kinesis source uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Files in the state directory; this process reads every shard.
    #[default]
    Local,
    /// A KCL-style lease table in DynamoDB, shared by every process of the application.
    Dynamodb,
}

/// Where checkpoints are kept, and (for DynamoDB) how leases are held.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsConfig {
    pub store: StoreKind,
    /// The DynamoDB lease table, for `store = "dynamodb"`; created if missing.
    #[serde(default)]
    pub table: Option<String>,
    /// DynamoDB endpoint URL, for DynamoDB-compatible services; default AWS's (or
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// This process's name in `leaseOwner`; default `<host>-<pid>-<random>`.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// A lease whose counter has not moved for this long is taken over (KCL's failover time).
    #[serde(default = "default_lease_timeout")]
    pub lease_timeout: HumanDuration,
}

fn default_lease_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

impl Default for CheckpointsConfig {
    fn default() -> Self {
        CheckpointsConfig {
            store: StoreKind::Local,
            table: None,
            endpoint: None,
            worker_id: None,
            lease_timeout: default_lease_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisSourceConfig {
    #[serde(rename = "type")]
    _type: String,
    /// Stream name or ARN.
    pub stream: String,
    /// AWS region; default from the environment (`AWS_REGION`, profile).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL, for Kinesis-compatible services; default AWS's (or `AWS_ENDPOINT_URL*`).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub start: StartPosition,
    #[serde(default)]
    pub consumer: ConsumerMode,
    #[serde(default)]
    pub checkpoints: CheckpointsConfig,
    /// Most records per GetRecords call (1 to 10000).
    #[serde(default = "default_max_records")]
    pub max_records: u32,
    /// Wait after an empty GetRecords response.
    #[serde(default = "default_idle_interval")]
    pub idle_interval: HumanDuration,
    /// How often ListShards looks for new shards.
    #[serde(default = "default_discovery_interval")]
    pub discovery_interval: HumanDuration,
    /// Enhanced fan-out consumer name; default the pipeline's name.
    #[serde(default)]
    pub consumer_name: Option<String>,
    /// Enhanced fan-out: a subscription silent for this long is dead and is replaced.
    #[serde(default = "default_heartbeat_timeout")]
    pub heartbeat_timeout: HumanDuration,
    /// Enhanced fan-out: re-subscribe after this long, before Kinesis ends the subscription at
    /// 5 minutes.
    #[serde(default = "default_resubscribe_interval")]
    pub resubscribe_interval: HumanDuration,
}

fn default_max_records() -> u32 {
    10_000
}
fn default_idle_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(500))
}
fn default_discovery_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_heartbeat_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(35))
}
fn default_resubscribe_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(290))
}

impl KinesisSourceConfig {
    /// A polling source with local checkpoints and the defaults of a pipeline file.
    pub fn new(stream: &str) -> Self {
        KinesisSourceConfig {
            _type: "kinesis".into(),
            stream: stream.to_string(),
            region: None,
            endpoint: None,
            start: StartPosition::default(),
            consumer: ConsumerMode::default(),
            checkpoints: CheckpointsConfig::default(),
            max_records: default_max_records(),
            idle_interval: default_idle_interval(),
            discovery_interval: default_discovery_interval(),
            consumer_name: None,
            heartbeat_timeout: default_heartbeat_timeout(),
            resubscribe_interval: default_resubscribe_interval(),
        }
    }
}

impl Component for KinesisSourceConfig {
    fn describe(&self) -> String {
        format!("Kinesis stream {}", self.stream)
    }

    /// Rejects settings this release cannot honour, rather than silently doing something else.
    fn check(&self) -> Result<(), CheckError> {
        let refuse = |key, message: String| Err(CheckError { key, message });
        match (self.checkpoints.store, &self.checkpoints.table) {
            (StoreKind::Dynamodb, None) => {
                return refuse(
                    "checkpoints.table",
                    "checkpoints with store = \"dynamodb\" need a `table`".into(),
                )
            }
            (StoreKind::Local, Some(_)) => {
                return refuse(
                    "checkpoints.table",
                    "checkpoints `table` only applies to store = \"dynamodb\"".into(),
                )
            }
            _ => {}
        }
        if self.checkpoints.lease_timeout.0 < std::time::Duration::from_millis(300) {
            return refuse("checkpoints.lease_timeout", "must be at least 300ms".into());
        }
        if let Some(w) = &self.checkpoints.worker_id {
            if w.trim().is_empty() || w == "NULL" {
                return refuse(
                    "checkpoints.worker_id",
                    format!("`{w}` cannot name a worker (empty and \"NULL\" mean no owner)"),
                );
            }
        }
        if self.heartbeat_timeout.0 < std::time::Duration::from_secs(1) {
            return refuse("heartbeat_timeout", "must be at least 1s".into());
        }
        if self.resubscribe_interval.0 > std::time::Duration::from_secs(300) {
            return refuse(
                "resubscribe_interval",
                "must be at most 5m (Kinesis ends subscriptions then)".into(),
            );
        }
        if self.consumer == ConsumerMode::Polling && self.consumer_name.is_some() {
            return refuse("consumer_name", "only applies to consumer = \"efo\"".into());
        }
        if !(1..=10_000).contains(&self.max_records) {
            return refuse(
                "max_records",
                format!("must be 1 to 10000, not {}", self.max_records),
            );
        }
        Ok(())
    }
}

impl SourceComponent for KinesisSourceConfig {
    fn checkpoints(&self) -> bool {
        true
    }
}

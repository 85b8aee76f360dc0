//! The `kinesis` sink's settings as a pipeline file writes them.

use serde::{Deserialize, Deserializer};

use crate::config::{Component, MaxAttempts, Removed};

/// Where the Kinesis sink takes each record's partition key from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PartitionKeyFrom {
    /// The record's own key (from its source, or set by a transform).
    #[default]
    Source,
    /// A JSON field of the record, by dotted path.
    Field(String),
    /// The same fixed key for every record.
    Value(String),
}

impl<'de> Deserialize<'de> for PartitionKeyFrom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            field: Option<String>,
            value: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Table(Table),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                r#"expected "source", { field = "a.b" } or { value = "fixed" }"#,
            )
        })? {
            Raw::Text(t) if t == "source" => Ok(PartitionKeyFrom::Source),
            Raw::Table(Table {
                field: Some(f),
                value: None,
            }) => Ok(PartitionKeyFrom::Field(f)),
            Raw::Table(Table {
                field: None,
                value: Some(v),
            }) => Ok(PartitionKeyFrom::Value(v)),
            _ => Err(serde::de::Error::custom(
                r#"expected "source", { field = "a.b" } or { value = "fixed" }"#,
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisSinkConfig {
    #[serde(rename = "type")]
    _type: String,
    /// Stream name or ARN.
    pub stream: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub partition_key: PartitionKeyFrom,
    #[serde(default, rename = "max_attempts")]
    _max_attempts: Option<Removed<MaxAttempts>>,
}

impl Component for KinesisSinkConfig {
    fn describe(&self) -> String {
        format!("Kinesis stream {}", self.stream)
    }
}

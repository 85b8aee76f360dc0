//! The `firehose` sink's settings as a pipeline file writes them.

use serde::Deserialize;

use crate::config::{Component, MaxAttempts, Removed};

/// `[sink] type = "firehose"`: an existing Firehose delivery stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirehoseSinkConfig {
    #[serde(rename = "type")]
    _type: String,
    /// The delivery stream's name.
    pub delivery_stream: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default, rename = "max_attempts")]
    _max_attempts: Option<Removed<MaxAttempts>>,
}

impl Component for FirehoseSinkConfig {
    fn describe(&self) -> String {
        format!("Firehose delivery stream {}", self.delivery_stream)
    }
}

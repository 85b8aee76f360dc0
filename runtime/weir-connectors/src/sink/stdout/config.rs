//! The `stdout` sink's and the `stderr` error output's settings: none besides their `type`.

use serde::Deserialize;

use crate::config::Component;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    #[serde(rename = "type")]
    _type: String,
}

impl StdoutSinkConfig {
    pub fn new() -> Self {
        StdoutSinkConfig {
            _type: "stdout".into(),
        }
    }
}

impl Default for StdoutSinkConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl Component for StdoutSinkConfig {
    fn describe(&self) -> String {
        "stdout".into()
    }
    fn prints(&self) -> bool {
        true
    }
}

/// `[errors] type = "stderr"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StderrConfig {
    #[serde(rename = "type")]
    _type: String,
}

impl Component for StderrConfig {
    fn describe(&self) -> String {
        "stderr (printed: never moves a checkpoint)".into()
    }
    fn prints(&self) -> bool {
        true
    }
}

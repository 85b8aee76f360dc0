//! The `generator` source's settings as a pipeline file writes them.

use serde::Deserialize;

use crate::config::{Component, SourceComponent};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    #[serde(rename = "type")]
    _type: String,
    /// The record template; see `source::generator` for its `{{...}}` placeholders.
    pub template: String,
    /// Partition key template; defaults to the record's sequence number.
    #[serde(default)]
    pub partition_key: Option<String>,
    /// Records per second; unlimited when absent.
    #[serde(default)]
    pub rate: Option<f64>,
    /// How many records to make; endless when absent.
    #[serde(default)]
    pub count: Option<u64>,
    /// Seed for the `random`/`pick` placeholders, for repeatable output.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Component for GeneratorConfig {
    fn describe(&self) -> String {
        match self.count {
            Some(n) => format!("generator ({n} records)"),
            None => "generator".into(),
        }
    }
}

impl SourceComponent for GeneratorConfig {
    // An endless generator may start counting again; a counted one would repeat records.
    fn not_restartable(&self) -> Option<&'static str> {
        self.count
            .is_some()
            .then_some("its generator has a `count` and would make its records again")
    }
}

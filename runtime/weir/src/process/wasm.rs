//! The `wasm` step: adapts a `weir-wasm` runner to the [`Processor`] trait.
//!
//! It packs a batch into the WIT `batch` layout (one blob per column, see `wit/plugin.wit`),
//! makes one call into the guest, and maps the answers back: transformed records inherit the
//! input record's metadata; failed records (guest-reported or a failed call) go to the error
//! output unchanged, with the reason.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use weir_wasm::{
    Attribute, Batch, Decision, Grants, GuestError, Host, Limits, Outcome, Plugin, RecordMeta,
    Runner, Settings, Verdicts,
};

use super::{Processed, Processor};
use crate::config::WasmStepConfig;
use crate::record::{ErrorOutputType, FailedRecord, Record};

/// Builds the runner settings for a step from its config.
pub fn settings(step: &WasmStepConfig, pipeline: &str) -> Result<Settings, String> {
    let config_json = match &step.config {
        Some(table) => serde_json::to_string(table).map_err(|e| e.to_string())?,
        None => "{}".to_string(),
    };
    let defaults = Limits::default();
    let limits = Limits {
        fuel: step.limits.fuel,
        memory: step.limits.memory.map_or(defaults.memory, |m| m.0),
        timeout: match step.limits.timeout {
            Some(t) if t.0 == Duration::ZERO => None,
            Some(t) => Some(t.0),
            None => defaults.timeout,
        },
    };
    let mut env = Vec::new();
    for name in &step.grants.env {
        match std::env::var(name) {
            Ok(value) => env.push((name.clone(), value)),
            Err(_) => {
                tracing::warn!(pipeline, variable = %name, "Granted environment variable is not set")
            }
        }
    }
    let dirs = step
        .grants
        .dirs
        .iter()
        .map(|d| (d.clone(), d.display().to_string()))
        .collect();
    Ok(Settings {
        config_json,
        limits,
        grants: Grants {
            env,
            dirs,
            network: step.grants.network,
        },
        label: pipeline.to_string(),
    })
}

/// A Wasm step of a pipeline.
pub struct WasmProcessor {
    runner: Runner,
    name: String,
}

impl WasmProcessor {
    /// Loads the module and starts its first instance (running the guest's `init`).
    pub fn start(host: &Host, step: &WasmStepConfig, pipeline: &str) -> Result<Self, String> {
        let plugin: Plugin = host.load(&step.module).map_err(|e| e.to_string())?;
        let settings = settings(step, pipeline)?;
        let runner = plugin.runner(settings).map_err(|e| e.to_string())?;
        Ok(WasmProcessor {
            runner,
            name: display_name(&step.module),
        })
    }

    pub fn from_runner(runner: Runner) -> Self {
        let name = display_name(runner.plugin().path());
        WasmProcessor { runner, name }
    }
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Packs records into the WIT batch layout.
pub fn pack(records: &[Record]) -> Batch {
    let n = records.len();
    let mut batch = Batch {
        data: Vec::with_capacity(records.iter().map(|r| r.data.len()).sum()),
        data_ends: Vec::with_capacity(n),
        keys: String::new(),
        key_ends: Vec::with_capacity(n),
        sequence_numbers: String::new(),
        sequence_number_ends: Vec::with_capacity(n),
        meta: Vec::with_capacity(n),
        sources: Vec::new(),
        attributes: Vec::new(),
    };
    let mut source_index: HashMap<*const u8, u32> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        batch.data.extend_from_slice(&r.data);
        batch.data_ends.push(batch.data.len() as u32);
        batch.keys.push_str(&r.partition_key);
        batch.key_ends.push(batch.keys.len() as u32);
        if let Some(seq) = &r.sequence_number {
            batch.sequence_numbers.push_str(seq);
        }
        batch
            .sequence_number_ends
            .push(batch.sequence_numbers.len() as u32);
        // Records of a batch share a handful of `Arc<str>` sources; index them by pointer.
        let source = *source_index.entry(r.source.as_ptr()).or_insert_with(|| {
            batch.sources.push(r.source.to_string());
            (batch.sources.len() - 1) as u32
        });
        batch.meta.push(RecordMeta {
            arrival_timestamp_ms: r.arrival_ms,
            sub_sequence_number: r.sub_sequence_number,
            source,
        });
        for (key, value) in &r.attributes {
            batch.attributes.push(Attribute {
                index: i as u32,
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    batch
}

impl WasmProcessor {
    fn failed(&self, record: Record, code: &str, message: String, now_ms: i64) -> FailedRecord {
        FailedRecord {
            record,
            output_type: ErrorOutputType::ProcessingFailed,
            code: code.to_string(),
            message,
            stage: self.name.clone(),
            attempts: 1,
            failed_at_ms: now_ms,
        }
    }

    fn fail_all(&self, batch: Vec<Record>, err: &GuestError, now_ms: i64) -> Processed {
        tracing::warn!(module = %self.name, records = batch.len(), error = %err, "Guest failed a batch");
        let failed = batch
            .into_iter()
            .map(|r| self.failed(r, err.kind.code(), err.message.clone(), now_ms))
            .collect();
        Processed {
            failed,
            ..Processed::default()
        }
    }
}

impl Processor for WasmProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&mut self, batch: Vec<Record>, now_ms: i64) -> Processed {
        if batch.is_empty() {
            return Processed::default();
        }
        let packed = pack(&batch);
        let verdicts = match self.runner.call(&packed) {
            Ok(v) => v,
            Err(err) => return self.fail_all(batch, &err, now_ms),
        };
        drop(packed);
        let mut out = Processed {
            records: Vec::with_capacity(batch.len()),
            ..Processed::default()
        };
        match verdicts {
            Verdicts::Transform(outcomes) => {
                for (record, outcome) in batch.into_iter().zip(outcomes) {
                    match outcome {
                        Outcome::Ok(t) => {
                            let partition_values = t.partition_keys;
                            if t.records.is_empty() {
                                out.dropped += 1;
                                continue;
                            }
                            let mut outputs = t.records.into_iter().peekable();
                            let mut input = Some(record);
                            while let Some(o) = outputs.next() {
                                // The last output takes the input record itself; only a record
                                // split into several is cloned.
                                let mut r = match outputs.peek() {
                                    None => input.take().expect("taken once, at the last output"),
                                    Some(_) => {
                                        input.clone().expect("present until the last output")
                                    }
                                };
                                r.data = o.data;
                                if let Some(key) = o.partition_key {
                                    r.partition_key = key;
                                }
                                r.partition_values.clone_from(&partition_values);
                                out.records.push(r);
                            }
                        }
                        Outcome::Dropped => out.dropped += 1,
                        Outcome::ProcessingFailed(message) => out.failed.push(self.failed(
                            record,
                            "Wasm.ProcessingFailed",
                            message,
                            now_ms,
                        )),
                    }
                }
            }
            Verdicts::Filter(decisions) => {
                for (record, decision) in batch.into_iter().zip(decisions) {
                    match decision {
                        Decision::Keep => out.records.push(record),
                        Decision::Drop => out.dropped += 1,
                        Decision::Failed(message) => out.failed.push(self.failed(
                            record,
                            "Wasm.ProcessingFailed",
                            message,
                            now_ms,
                        )),
                    }
                }
            }
        }
        out
    }
}

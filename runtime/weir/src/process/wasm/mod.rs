//! The `wasm` step: adapts a `weir-wasm` runner to the [`Processor`] trait.
//!
//! It packs a batch into the WIT `batch` layout (one blob per column, see `wit/plugin.wit`),
//! makes one call into the guest, and maps the answers back: transformed records inherit the
//! input record's metadata; failed records (guest-reported or a failed call) go to the error
//! output unchanged, with the reason.

use std::path::Path;
use std::time::Duration;

use weir_wasm::{
    Attribute, Batch, Decision, Grants, GuestError, Host, Limits, Outcome, Plugin, Runner,
    Settings, SourceRun, SubSequence, Verdicts,
};

use super::{Processed, Processor};
pub mod config;

use crate::record::{ErrorOutputType, FailedRecord, Record};
use config::WasmStepConfig;

/// Why a Wasm step could not start.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The module does not load, link or start, or its guest rejects its config.
    #[error(transparent)]
    Wasm(#[from] weir_wasm::Error),
    /// Its `config` table cannot be handed over as JSON.
    #[error("config: {0}")]
    Config(#[from] serde_json::Error),
}

/// Builds the runner settings for a step from its config.
pub fn settings(step: &WasmStepConfig, pipeline: &str) -> Result<Settings, StepError> {
    let config_json = match &step.config {
        Some(table) => serde_json::to_string(table)?,
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
        output: step.limits.output.map_or(defaults.output, |o| o.0),
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
            hosts: step.grants.hosts.clone(),
        },
        label: pipeline.to_string(),
    })
}

/// A Wasm step of a pipeline.
pub struct WasmProcessor {
    runner: Runner,
    name: String,
    /// The fuel budget per call, if any: what a call used is the budget minus what is left.
    fuel: Option<u64>,
    abort: Option<tokio::sync::watch::Receiver<bool>>,
}

impl WasmProcessor {
    /// Loads the module and starts its first instance (running the guest's `init`).
    pub fn start(host: &Host, step: &WasmStepConfig, pipeline: &str) -> Result<Self, StepError> {
        let metered = step.limits.fuel.is_some();
        let plugin: Plugin = host.load(&step.module, metered)?;
        let settings = settings(step, pipeline)?;
        let fuel = settings.limits.fuel;
        let runner = plugin.runner(settings)?;
        Ok(WasmProcessor {
            runner,
            name: display_name(&step.module),
            fuel,
            abort: None,
        })
    }

    pub fn from_runner(runner: Runner) -> Self {
        let name = display_name(runner.plugin().path());
        WasmProcessor {
            runner,
            name,
            fuel: None,
            abort: None,
        }
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
        arrival_timestamps: Vec::with_capacity(n),
        sub_sequence_numbers: Vec::new(),
        sources: Vec::new(),
        attributes: Vec::new(),
    };
    // Records of a batch usually share one `Arc<str>` source: a new run starts only where the
    // source changes.
    let mut last_source: Option<&std::sync::Arc<str>> = None;
    for (i, r) in records.iter().enumerate() {
        let index = i as u32;
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
        batch.arrival_timestamps.push(r.arrival_ms);
        if let Some(number) = r.sub_sequence_number {
            batch
                .sub_sequence_numbers
                .push(SubSequence { index, number });
        }
        if last_source.is_none_or(|s| !std::sync::Arc::ptr_eq(s, &r.source) && **s != *r.source) {
            batch.sources.push(SourceRun {
                start: index,
                name: r.source.to_string(),
            });
            last_source = Some(&r.source);
        }
        for (key, value) in &r.attributes {
            batch.attributes.push(Attribute {
                index,
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
        if !batch.is_empty() {
            tracing::warn!(module = %self.name, records = batch.len(), error = %err, "Guest failed a batch");
        }
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

    fn set_abort(&mut self, abort: tokio::sync::watch::Receiver<bool>) {
        self.abort = Some(abort);
    }

    fn process(&mut self, batch: Vec<Record>, now_ms: i64) -> Processed {
        if batch.is_empty() {
            return Processed::default();
        }
        let packed = pack(&batch);
        let called = match &self.abort {
            Some(abort) => self.runner.call_until(&packed, abort),
            None => self.runner.call(&packed),
        };
        let verdicts = match called {
            Ok(v) => v,
            Err(err) if err.kind == weir_wasm::GuestErrorKind::Aborted => {
                // Cut off because the pipeline stops: not the records' fault. Those a source
                // checkpoint covers are read again; the others are kept.
                let (replayed, kept): (Vec<Record>, Vec<Record>) =
                    batch.into_iter().partition(|r| !r.ack.is_none());
                let mut out = self.fail_all(kept, &err, now_ms);
                out.abandoned = replayed.len();
                replayed.iter().for_each(|r| r.ack.fail());
                return out;
            }
            Err(err) => {
                let mut out = self.fail_all(batch, &err, now_ms);
                if err.kind == weir_wasm::GuestErrorKind::FuelExhausted {
                    out.fuel_used = self.fuel.unwrap_or(0);
                }
                return out;
            }
        };
        drop(packed);
        let mut out = Processed {
            records: Vec::with_capacity(batch.len()),
            fuel_used: self.fuel.map_or(0, |budget| {
                budget.saturating_sub(self.runner.fuel_remaining().unwrap_or(budget))
            }),
            ..Processed::default()
        };
        match verdicts {
            Verdicts::Transform(t)
                if t.keys.is_empty()
                    && t.partition_keys.is_empty()
                    && t.outcomes.iter().all(|o| matches!(o, Outcome::Ok(1))) =>
            {
                // The common case, a record-for-record map: swap the data in place rather than
                // rebuilding the batch.
                let data = bytes::Bytes::from(t.data);
                let mut start = 0usize;
                let mut batch = batch;
                for (record, &end) in batch.iter_mut().zip(&t.data_ends) {
                    record.data = data.slice(start..end as usize);
                    start = end as usize;
                }
                out.records = batch;
            }
            Verdicts::Transform(t) => {
                // `Runner::call` checked that the outcomes announce exactly the output records
                // and that every index is in range.
                let (mut keys, mut partition_keys) = (t.keys, t.partition_keys);
                keys.sort_by_key(|k| k.index);
                partition_keys.sort_by_key(|k| k.index);
                let mut keys = keys.into_iter().peekable();
                let mut partition_keys = partition_keys.into_iter().peekable();
                let mut ends = t.data_ends.iter().copied();
                let data = bytes::Bytes::from(t.data);
                let (mut output, mut start) = (0u32, 0usize);
                for (i, (record, outcome)) in batch.into_iter().zip(t.outcomes).enumerate() {
                    let mut partition_values = Vec::new();
                    while let Some(pk) = partition_keys.next_if(|k| k.index as usize <= i) {
                        if pk.index as usize == i {
                            partition_values.push((pk.name, pk.value));
                        }
                    }
                    match outcome {
                        Outcome::Ok(0) => out.dropped += 1,
                        Outcome::Ok(n) => {
                            let mut input = Some(record);
                            for k in 0..n {
                                // The last output takes the input record itself; only a record
                                // split into several is cloned.
                                let mut r = if k + 1 == n {
                                    input.take().expect("taken once, at the last output")
                                } else {
                                    input.clone().expect("present until the last output")
                                };
                                let end = ends.next().expect("checked count") as usize;
                                r.data = data.slice(start..end);
                                start = end;
                                while let Some(nk) = keys.next_if(|nk| nk.index <= output) {
                                    if nk.index == output {
                                        r.partition_key = nk.key.into();
                                    }
                                }
                                if !partition_values.is_empty() {
                                    r.partition_values.clone_from(&partition_values);
                                }
                                output += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_lays_out_columns_and_runs_of_sources() {
        let a: std::sync::Arc<str> = "file:a".into();
        let b: std::sync::Arc<str> = "file:b".into();
        let mut r1 = Record::new(b"one".to_vec(), a.clone(), 10);
        r1.partition_key = "k1".into();
        r1.sequence_number = Some("7".into());
        r1.attributes = vec![("x".into(), "y".into())];
        let mut r2 = Record::new(b"".to_vec(), b.clone(), 11);
        r2.sub_sequence_number = Some(2);
        let r3 = Record::new(b"three".to_vec(), a, 12);
        let batch = pack(&[r1, r2, r3]);
        assert_eq!(batch.data, b"onethree");
        assert_eq!(batch.data_ends, [3, 3, 8]);
        assert_eq!(
            (batch.keys.as_str(), &batch.key_ends[..]),
            ("k1", &[2, 2, 2][..])
        );
        assert_eq!(batch.sequence_numbers, "7");
        assert_eq!(batch.sequence_number_ends, [1, 1, 1]);
        let runs: Vec<(u32, &str)> = batch
            .sources
            .iter()
            .map(|r| (r.start, r.name.as_str()))
            .collect();
        assert_eq!(runs, [(0, "file:a"), (1, "file:b"), (2, "file:a")]);
        assert_eq!(batch.arrival_timestamps, [10, 11, 12]);
        assert_eq!(batch.sub_sequence_numbers.len(), 1);
        assert_eq!(batch.sub_sequence_numbers[0].index, 1);
        assert_eq!(batch.sub_sequence_numbers[0].number, 2);
        assert_eq!(batch.attributes.len(), 1);
        assert_eq!(batch.attributes[0].index, 0);
    }
}

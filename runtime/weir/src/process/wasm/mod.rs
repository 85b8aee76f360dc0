//! The `wasm` step: adapts a `weir-wasm` runner to the [`Processor`] trait.
//!
//! A pipeline batch already has the WIT `batch` layout (one blob per column, see
//! `wit/plugin.wit`): the step copies each column whole for the call, makes one call into the
//! guest, and maps the answers back: transformed records inherit the input record's metadata
//! (a record-for-record answer's data simply becomes the batch's); failed records
//! (guest-reported or a failed call) go to the error output unchanged, with the reason.

use std::path::Path;
use std::time::Duration;

use weir_wasm::{
    Attribute, Batch as WitBatch, Decision, Grants, GuestError, Host, Limits, Outcome, Plugin,
    Runner, Settings, SourceRun, SubSequence, Verdicts,
};

use super::{Processed, Processor};
pub mod config;

use crate::batch::{BadOffsets, Batch, BatchBuilder};
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
        if plugin.kind() == weir_wasm::PluginKind::SqlUdf {
            return Err(StepError::Wasm(weir_wasm::Error::UnsupportedWorld {
                path: step.module.clone(),
                world: "sql-udf",
            }));
        }
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

/// Packs a batch into the WIT batch layout: the columns are the same, so each is one copy.
pub fn pack(batch: &Batch) -> WitBatch {
    let (keys, key_ends) = batch.key_column();
    let (seqs, seq_ends) = batch.sequence_column();
    let indexed = |column: &[(u32, String, String)]| -> Vec<Attribute> {
        column
            .iter()
            .map(|(index, key, value)| Attribute {
                index: *index,
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    };
    WitBatch {
        data: batch.data().to_vec(),
        data_ends: batch.offsets()[1..].to_vec(),
        keys: keys.to_string(),
        key_ends: key_ends[1..].to_vec(),
        sequence_numbers: seqs.to_string(),
        sequence_number_ends: seq_ends[1..].to_vec(),
        arrival_timestamps: batch.arrival_column().to_vec(),
        sub_sequence_numbers: batch
            .sub_sequence_column()
            .iter()
            .map(|&(index, number)| SubSequence { index, number })
            .collect(),
        sources: batch
            .source_runs()
            .iter()
            .map(|(start, name)| SourceRun {
                start: *start,
                name: name.to_string(),
            })
            .collect(),
        attributes: indexed(batch.attribute_column()),
    }
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
            details: None,
        }
    }

    fn fail_all(&self, records: Vec<Record>, err: &GuestError, now_ms: i64) -> Processed {
        if !records.is_empty() {
            tracing::warn!(module = %self.name, records = records.len(), error = %err, "Guest failed a batch");
        }
        let failed = records
            .into_iter()
            .map(|r| self.failed(r, err.kind.code(), err.message.clone(), now_ms))
            .collect();
        Processed {
            failed,
            ..Processed::default()
        }
    }

    /// A guest's answer that does not fit the batch it was given fails the batch, as a
    /// malformed answer does.
    fn invalid(&self, batch: Batch, e: BadOffsets, now_ms: i64) -> Processed {
        let err = GuestError {
            kind: weir_wasm::GuestErrorKind::InvalidOutput,
            message: e.to_string(),
        };
        self.fail_all(batch.into_records(), &err, now_ms)
    }
}

impl Processor for WasmProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_abort(&mut self, abort: tokio::sync::watch::Receiver<bool>) {
        self.abort = Some(abort);
    }

    fn process(&mut self, batch: Batch, now_ms: i64) -> Processed {
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
                let (replayed, kept): (Vec<Record>, Vec<Record>) = batch
                    .into_records()
                    .into_iter()
                    .partition(|r| !r.ack.is_none());
                let mut out = self.fail_all(kept, &err, now_ms);
                out.abandoned = replayed.len();
                replayed.iter().for_each(|r| r.ack.fail());
                return out;
            }
            Err(err) => {
                let mut out = self.fail_all(batch.into_records(), &err, now_ms);
                if err.kind == weir_wasm::GuestErrorKind::FuelExhausted {
                    out.fuel_used = self.fuel.unwrap_or(0);
                }
                return out;
            }
        };
        drop(packed);
        let mut out = Processed {
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
                // The common case, a record-for-record map: the guest's data becomes the
                // batch's, every other column kept as it is.
                let mut batch = batch;
                if let Err(e) = batch.replace_data(bytes::Bytes::from(t.data), &t.data_ends) {
                    return self.invalid(batch, e, now_ms);
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
                let mut made = BatchBuilder::with_capacity(t.data_ends.len(), 0);
                let mut output = 0u32;
                for (i, outcome) in t.outcomes.into_iter().enumerate() {
                    let mut partition_values = Vec::new();
                    while let Some(pk) = partition_keys.next_if(|k| k.index as usize <= i) {
                        if pk.index as usize == i {
                            partition_values.push((pk.name, pk.value));
                        }
                    }
                    match outcome {
                        Outcome::Ok(0) | Outcome::Dropped => out.dropped += 1,
                        Outcome::Ok(n) => {
                            for _ in 0..n {
                                let mut key = None;
                                while let Some(nk) = keys.next_if(|nk| nk.index <= output) {
                                    if nk.index == output {
                                        key = Some(nk.key);
                                    }
                                }
                                let values =
                                    (!partition_values.is_empty()).then_some(&partition_values[..]);
                                made.push_derived(&batch, i, b"", key.as_deref(), values);
                                output += 1;
                            }
                        }
                        Outcome::ProcessingFailed(message) => out.failed.push(self.failed(
                            batch.get(i).to_record(),
                            "Wasm.ProcessingFailed",
                            message,
                            now_ms,
                        )),
                    }
                }
                match made.finish_with_data(bytes::Bytes::from(t.data), &t.data_ends) {
                    Ok(records) => out.records = records,
                    Err(e) => return self.invalid(batch, e, now_ms),
                }
            }
            Verdicts::Filter(decisions) => {
                // Kept records are copied in runs, column by column.
                let mut kept = BatchBuilder::with_capacity(batch.len(), batch.data_len());
                let mut run_from = None;
                for (i, decision) in decisions.into_iter().enumerate() {
                    if !matches!(decision, Decision::Keep) {
                        if let Some(from) = run_from.take() {
                            kept.append(&batch, from..i);
                        }
                    }
                    match decision {
                        Decision::Keep => {
                            run_from.get_or_insert(i);
                        }
                        Decision::Drop => out.dropped += 1,
                        Decision::Failed(message) => out.failed.push(self.failed(
                            batch.get(i).to_record(),
                            "Wasm.ProcessingFailed",
                            message,
                            now_ms,
                        )),
                    }
                }
                if let Some(from) = run_from {
                    kept.append(&batch, from..batch.len());
                }
                out.records = kept.finish();
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
        let batch = pack(&Batch::from(vec![r1, r2, r3]));
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

//! Per-pipeline counters, shared by its stages and read by the progress reporter.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Stats {
    pub records_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_dropped: AtomicU64,
    pub records_failed: AtomicU64,
    pub objects_written: AtomicU64,
    /// Per shard of a Kinesis source, by source name (`kinesis:<stream>/<shard id>`).
    pub shards: Mutex<BTreeMap<String, ShardMetrics>>,
}

/// What a Kinesis source reports per shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardMetrics {
    /// Kinesis records read (a KPL aggregate counts once).
    pub records: u64,
    pub bytes: u64,
    /// `MillisBehindLatest` of the last GetRecords response.
    pub millis_behind_latest: Option<i64>,
    /// Age of the newest record read (now minus its arrival time), as the KCL's iterator age.
    pub iterator_age_ms: Option<i64>,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub bytes_out: u64,
    pub records_dropped: u64,
    pub records_failed: u64,
    pub objects_written: u64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Updates one shard's metrics.
    pub fn shard(&self, name: &str, update: impl FnOnce(&mut ShardMetrics)) {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        update(shards.entry(name.to_string()).or_default());
    }

    /// A copy of every shard's metrics.
    pub fn shard_metrics(&self) -> BTreeMap<String, ShardMetrics> {
        self.shards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            records_in: self.records_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            records_dropped: self.records_dropped.load(Relaxed),
            records_failed: self.records_failed.load(Relaxed),
            objects_written: self.objects_written.load(Relaxed),
        }
    }
}

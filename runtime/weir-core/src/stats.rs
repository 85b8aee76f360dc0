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
    /// Time spent in processors (guest calls, with packing), in nanoseconds.
    pub process_nanos: AtomicU64,
    /// Fuel burned by guests with a fuel budget.
    pub fuel_used: AtomicU64,
    /// When the source last saved a checkpoint (ms since the epoch; 0: never).
    pub checkpoint_ms: AtomicU64,
    /// End-to-end latency: one observation per delivery (object, call or request), of its
    /// oldest record's age from arrival at the source to durable delivery.
    pub latency: Histogram,
    /// Per shard of a Kinesis source, by source name (`kinesis:<stream>/<shard id>`).
    pub shards: Mutex<BTreeMap<String, ShardMetrics>>,
    /// Whether the sink's destination takes what it is sent.
    pub sink_health: std::sync::Arc<Health>,
    /// The same for the error output and the backup.
    pub errors_health: std::sync::Arc<Health>,
    pub backup_health: std::sync::Arc<Health>,
    /// Records given up at shutdown because their destination still failed: read again from
    /// the source's checkpoint, or kept under the state directory's `undelivered/`.
    pub records_undelivered: AtomicU64,
}

/// Whether one output's destination is taking what it is sent.
#[derive(Debug, Default)]
pub struct Health(Mutex<HealthState>, std::sync::atomic::AtomicBool);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthState {
    /// Since when the destination fails (ms since the epoch); `None` while it works.
    pub down_since_ms: Option<i64>,
    /// The last failure, kept after recovery for the status API.
    pub last_error: Option<String>,
    /// Attempts that failed as a whole, since the start.
    pub failures: u64,
}

impl Health {
    pub fn read(&self) -> HealthState {
        self.lock().clone()
    }

    pub fn failed(&self, error: &str, now_ms: i64) {
        let mut h = self.lock();
        h.down_since_ms.get_or_insert(now_ms);
        h.last_error = Some(error.to_string());
        h.failures += 1;
    }

    /// The destination works again; returns whether it had been failing.
    pub fn recovered(&self) -> bool {
        self.lock().down_since_ms.take().is_some()
    }

    /// The pipeline is stopping and one delivery to this destination gave up: the others give
    /// up at their first failure, so that stopping does not take a retry round per object.
    pub fn give_up(&self) {
        self.1.store(true, Relaxed);
    }

    pub fn gave_up(&self) -> bool {
        self.1.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    pub process_nanos: u64,
    pub fuel_used: u64,
    pub checkpoint_ms: u64,
    pub records_undelivered: u64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Records a delivery: its oldest record arrived at `oldest_arrival_ms`.
    pub fn delivered(&self, oldest_arrival_ms: i64, now_ms: i64) {
        self.latency
            .observe((now_ms - oldest_arrival_ms).max(0) as u64);
    }

    /// Records that the source saved a checkpoint at `now_ms`.
    pub fn checkpointed(&self, now_ms: i64) {
        self.checkpoint_ms.store(now_ms.max(0) as u64, Relaxed);
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
            process_nanos: self.process_nanos.load(Relaxed),
            fuel_used: self.fuel_used.load(Relaxed),
            checkpoint_ms: self.checkpoint_ms.load(Relaxed),
            records_undelivered: self.records_undelivered.load(Relaxed),
        }
    }
}

/// Upper bounds of the latency buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 60_000,
];

/// A Prometheus-style histogram of milliseconds: cumulative counts are computed when read.
#[derive(Debug, Default)]
pub struct Histogram {
    /// One counter per bucket of [`LATENCY_BUCKETS_MS`], then one for larger values.
    counts: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_ms: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, ms: u64) {
        let i = LATENCY_BUCKETS_MS.partition_point(|&b| b < ms);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(ms, Relaxed);
    }

    /// Cumulative counts per bucket (the last is the total), and the sum in milliseconds.
    pub fn read(&self) -> (Vec<u64>, u64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Relaxed);
                total
            })
            .collect();
        (cumulative, self.sum_ms.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::default();
        for ms in [0, 5, 6, 100_000] {
            h.observe(ms);
        }
        let (counts, sum) = h.read();
        assert_eq!(counts[0], 2, "0 and 5 are <= 5");
        assert_eq!(counts[1], 3, "6 is <= 10");
        assert_eq!(counts[LATENCY_BUCKETS_MS.len() - 1], 3);
        assert_eq!(*counts.last().unwrap(), 4);
        assert_eq!(sum, 100_011);
    }
}

//! Per-pipeline counters, shared by its stages and read by the progress reporter.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    pub records_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_dropped: AtomicU64,
    pub records_failed: AtomicU64,
    pub objects_written: AtomicU64,
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

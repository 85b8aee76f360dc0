//! CPU quotas: how much processor time a group of pipelines (a tenant) may spend per second.
//!
//! A [`CpuBudget`] is a token bucket of time. It refills at `per_second` each second, holds at
//! most one second's worth, and every batch's processing time is taken out of it after the
//! batch ran. A stage that finds the bucket in debt waits (off the step pool) until it is paid back,
//! so a tenant whose guests burn more than their share slows down (its sources wait on full
//! channels) instead of taking cores from other tenants.
//!
//! Invariant: over any window longer than a second, the time charged to a budget is at most
//! `per_second` × the window's length in seconds, plus one batch's time per thread (a batch is
//! never interrupted to enforce the quota; the per-call timeout bounds it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A shared CPU budget; see the module docs.
#[derive(Debug)]
pub struct CpuBudget {
    per_second: Duration,
    bucket: Mutex<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Time available, in nanoseconds; negative while in debt.
    tokens: i128,
    updated: Instant,
}

impl CpuBudget {
    pub fn new(per_second: Duration) -> Self {
        Self::starting_at(per_second, Instant::now())
    }

    fn starting_at(per_second: Duration, now: Instant) -> Self {
        CpuBudget {
            per_second,
            bucket: Mutex::new(Bucket {
                tokens: per_second.as_nanos() as i128,
                updated: now,
            }),
        }
    }

    pub fn per_second(&self) -> Duration {
        self.per_second
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated);
        let rate = self.per_second.as_nanos() as i128;
        let earned = elapsed.as_nanos() as i128 * rate / 1_000_000_000;
        bucket.tokens = (bucket.tokens + earned).min(rate);
        bucket.updated = now;
    }

    /// How long a thread must wait at `now` before it may run a batch.
    fn delay_at(&self, now: Instant) -> Duration {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut bucket, now);
        if bucket.tokens >= 0 || self.per_second.is_zero() {
            return Duration::ZERO;
        }
        let debt = (-bucket.tokens) as u128;
        Duration::from_nanos((debt * 1_000_000_000 / self.per_second.as_nanos()) as u64)
    }

    fn charge_at(&self, spent: Duration, now: Instant) {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut bucket, now);
        bucket.tokens -= spent.as_nanos() as i128;
    }

    /// How long a stage must wait before it may run a batch (zero when the budget is not in
    /// debt).
    pub fn delay(&self) -> Duration {
        self.delay_at(Instant::now())
    }

    /// Blocks the calling thread while the budget is in debt.
    pub fn wait(&self) {
        loop {
            let delay = self.delay_at(Instant::now());
            if delay.is_zero() {
                return;
            }
            // Re-checked after the sleep: other threads may have charged meanwhile.
            std::thread::sleep(delay.min(Duration::from_millis(250)));
        }
    }

    /// Takes `spent` out of the budget.
    pub fn charge(&self, spent: Duration) {
        self.charge_at(spent, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_budget_in_debt_waits_until_it_is_paid_back() {
        let t0 = Instant::now();
        let budget = CpuBudget::starting_at(100 * MS, t0);
        assert_eq!(
            budget.delay_at(t0),
            Duration::ZERO,
            "starts with a full second"
        );
        // A one-second batch (a guest that ran to its timeout) puts it 900 ms in debt: at
        // 100 ms per second, that takes 9 s to earn back.
        budget.charge_at(1000 * MS, t0);
        assert_eq!(budget.delay_at(t0), 9000 * MS);
        assert_eq!(budget.delay_at(t0 + 4500 * MS), 4500 * MS);
        assert_eq!(budget.delay_at(t0 + 9000 * MS), Duration::ZERO);
    }

    #[test]
    fn an_idle_budget_saves_at_most_one_second_of_time() {
        let t0 = Instant::now();
        let budget = CpuBudget::starting_at(100 * MS, t0);
        let later = t0 + Duration::from_secs(60);
        budget.charge_at(150 * MS, later);
        // 60 idle seconds did not buy 6 s of credit: 100 ms held, 150 spent, 50 ms owed.
        assert_eq!(budget.delay_at(later), 500 * MS);
    }
}

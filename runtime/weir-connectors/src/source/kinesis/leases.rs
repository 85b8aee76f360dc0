//! Shard leases in a DynamoDB table, in the Kinesis Client Library's layout, so that several
//! processes share a stream's shards and a Weir fleet can take over a KCL application's table.
//!
//! One item per shard, hash key `leaseKey` (the shard id), with `leaseOwner` (worker id, absent
//! when free), `leaseCounter` (bumped on every renewal and every change of owner),
//! `checkpoint` (a sequence number, or `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END`),
//! `checkpointSubSequenceNumber`, `ownerSwitchesSinceCheckpoint`, `parentShardId` (a string set),
//! `startingHashKey` and `endingHashKey`.
//!
//! Invariants:
//! - **One reader per shard.** Every change is a conditional write on the lease counter (the
//!   KCL's fencing): taking a lease requires the counter (and owner) this process last saw;
//!   renewing, checkpointing and releasing require the counter this process last wrote and that
//!   it still owns the lease, and bump the counter. A process that finds its condition failed
//!   has lost the lease and stops reading and checkpointing that shard at once; what it
//!   delivered but did not checkpoint is read again by the new owner (the at-least-once replay
//!   range). Two processes wrongly given one `worker_id` cannot both hold a lease: a lease
//!   owned by this id but not held here counts as another worker's, and one whose counter
//!   moves is reported (see [`LeaseTable::impostor`]).
//! - **SHARD_END is final.** A checkpoint write of a sequence number is conditional on the
//!   lease not saying `SHARD_END`.
//! - **One stream incarnation.** Leases carry the stream's ARN and creation time
//!   (`weirStreamArn`, `weirStreamCreated`); a lease of an older incarnation (a stream deleted
//!   and created again) is started over, its old checkpoint kept in `previousCheckpoint`.
//! - **The first position is kept.** A `LATEST` or `AT_TIMESTAMP` lease gets `weirStartedAt`
//!   (when reading began) before its first record is read, so a new owner after a crash
//!   resumes there rather than at a later LATEST.
//! - **Expiry without synchronized clocks.** A lease is expired when its counter has not changed
//!   for the lease timeout *as seen by this process* (KCL's rule): a process that starts sees
//!   every lease as fresh and waits a full timeout before taking one held by a silent worker.
//! - **Checkpoint meaning (KCL's).** `(sequence, sub)` means every record up to and including
//!   user record `sub` of record `sequence` was delivered; a plain record counts as sub 0.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use tokio::time::Instant;

/// Which incarnation of a stream a position belongs to: a stream deleted and created again
/// under the same name has the same name (and ARN) but another creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamIdentity {
    pub arn: String,
    pub created_ms: i64,
}

/// A lease as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    /// The owner, `None` when free (absent, empty, or the KCL's `"NULL"`).
    pub owner: Option<String>,
    /// `leaseOwner` exactly as stored, for the condition of a take.
    pub stored_owner: Option<String>,
    pub counter: u64,
    pub checkpoint: String,
    pub sub_sequence: u64,
    pub parents: Vec<String>,
    /// `weirStartedAt`: when reading began (ms since the epoch), for a lease whose checkpoint
    /// is still `LATEST` or `AT_TIMESTAMP`; a new owner resumes there, not at the new LATEST.
    pub started_at_ms: Option<i64>,
    /// `weirStreamArn` and `weirStreamCreated`: the stream incarnation the checkpoint is of
    /// (absent on leases the KCL or an older Weir made).
    pub stream: Option<StreamIdentity>,
}

pub const SHARD_END: &str = "SHARD_END";

impl Lease {
    pub fn ended(&self) -> bool {
        self.checkpoint == SHARD_END
    }
}

/// What a new lease item holds.
#[derive(Debug, Clone)]
pub struct NewLease {
    pub key: String,
    pub checkpoint: String,
    pub parents: Vec<String>,
    pub hash_range: Option<(String, String)>,
    pub stream: Option<StreamIdentity>,
}

#[derive(Debug, thiserror::Error)]
#[error("lease table {table}: {message}")]
pub struct LeaseError {
    table: String,
    message: String,
}

/// The lease table of one application, as one worker sees it.
///
/// Fencing (the KCL's): every write to a held lease (renew, checkpoint, release) is
/// conditional on the `leaseCounter` this process last wrote and on its `leaseOwner`, and
/// bumps the counter. A process that lost a lease, to another worker or to another process
/// wrongly configured with the same `worker_id`, fails its next write instead of
/// overwriting the new owner's checkpoint.
pub struct LeaseTable {
    client: Client,
    table: String,
    worker: String,
    timeout: Duration,
    /// Per lease: the counter and owner last seen, and when the counter last changed.
    seen: HashMap<String, (u64, Option<String>, Instant)>,
    /// The leases this process holds, with the counter it last wrote.
    held: Mutex<HashMap<String, u64>>,
    /// A lease owned by this worker id that another process renews: set by [`Self::scan`].
    impostor: Option<String>,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

type Update = aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

impl LeaseTable {
    pub fn new(client: Client, table: &str, worker: &str, timeout: Duration) -> Self {
        LeaseTable {
            client,
            table: table.to_string(),
            worker: worker.to_string(),
            timeout,
            seen: HashMap::new(),
            held: Mutex::new(HashMap::new()),
            impostor: None,
        }
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Whether this process holds the lease (as far as its last write knows).
    pub fn holds(&self, key: &str) -> bool {
        self.held().contains_key(key)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> LeaseError {
        LeaseError {
            table: self.table.clone(),
            message: format!("{what}: {e}"),
        }
    }

    /// Creates the table if it does not exist (on-demand capacity, as the KCL does) and waits
    /// until it is active.
    pub async fn ensure_table(&self) -> Result<(), LeaseError> {
        let exists = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => return Err(self.err("DescribeTable", DisplayErrorContext(&e))),
        };
        if !exists {
            let created = self
                .client
                .create_table()
                .table_name(&self.table)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("leaseKey")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("name and type are set"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("leaseKey")
                        .key_type(KeyType::Hash)
                        .build()
                        .expect("name and type are set"),
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await;
            match created {
                Ok(_) => tracing::info!(table = %self.table, "Created the lease table"),
                // Another worker created it first.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_in_use_exception()) => {}
                Err(e) => return Err(self.err("CreateTable", DisplayErrorContext(&e))),
            }
        }
        let started = Instant::now();
        loop {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.err("DescribeTable", DisplayErrorContext(&e)))?;
            if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(self.err("CreateTable", "the table is not active after 2 minutes"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates the lease of a shard unless it exists.
    pub async fn create(&self, lease: &NewLease) -> Result<(), LeaseError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("leaseKey", s(&lease.key))
            .item("leaseCounter", n(0))
            .item("checkpoint", s(&lease.checkpoint))
            .item("checkpointSubSequenceNumber", n(0))
            .item("ownerSwitchesSinceCheckpoint", n(0))
            .condition_expression("attribute_not_exists(leaseKey)");
        if !lease.parents.is_empty() {
            req = req.item("parentShardId", AttributeValue::Ss(lease.parents.clone()));
        }
        if let Some((start, end)) = &lease.hash_range {
            req = req
                .item("startingHashKey", s(start))
                .item("endingHashKey", s(end));
        }
        if let Some(id) = &lease.stream {
            req = req
                .item("weirStreamArn", s(&id.arn))
                .item("weirStreamCreated", n(id.created_ms));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if conditional(&e) => Ok(()),
            Err(e) => Err(self.err("PutItem", DisplayErrorContext(&e))),
        }
    }

    /// Reads every lease (consistently) and notes counter changes for expiry. A lease owned by
    /// this worker id that this process does not hold, and whose counter moved since the last
    /// scan, is renewed by another process with the same id: see [`Self::impostor`].
    pub async fn scan(&mut self) -> Result<Vec<Lease>, LeaseError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.err("Scan", DisplayErrorContext(&e)))?;
            for item in page.items() {
                match parse(item) {
                    Some(lease) => out.push(lease),
                    None => {
                        tracing::warn!(table = %self.table, item = ?item, "Ignoring a lease item without leaseKey")
                    }
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        let now = Instant::now();
        let present: HashSet<&str> = out.iter().map(|l| l.key.as_str()).collect();
        self.seen.retain(|k, _| present.contains(k.as_str()));
        let held = self.held().clone();
        for lease in &out {
            let previous = self.seen.get(&lease.key).map(|(c, _, _)| *c);
            let mine_elsewhere = lease.owner.as_deref() == Some(self.worker.as_str())
                && !held.contains_key(&lease.key);
            if mine_elsewhere && previous.is_some_and(|c| c != lease.counter) {
                self.impostor.get_or_insert_with(|| lease.key.clone());
            }
            let entry = self.seen.entry(lease.key.clone()).or_insert((
                lease.counter,
                lease.owner.clone(),
                now,
            ));
            if entry.0 != lease.counter || entry.1 != lease.owner {
                *entry = (lease.counter, lease.owner.clone(), now);
            }
        }
        Ok(out)
    }

    /// A lease that another process holds under this process's worker id, if a scan saw one.
    pub fn impostor(&self) -> Option<&str> {
        self.impostor.as_deref()
    }

    /// Whether a lease's holder has gone silent: its counter has not moved for the timeout.
    pub fn expired(&self, lease: &Lease, now: Instant) -> bool {
        lease.owner.is_some()
            && self
                .seen
                .get(&lease.key)
                .is_some_and(|(_, _, since)| now.duration_since(*since) > self.timeout)
    }

    /// Takes a lease from whoever held it as of the last scan; `false` if someone changed it
    /// since (another worker took or renewed it).
    pub async fn take(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let next = lease.counter + 1;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(&lease.key))
            .update_expression(
                "SET leaseOwner = :me, leaseCounter = :next, \
                 ownerSwitchesSinceCheckpoint = ownerSwitchesSinceCheckpoint + :one",
            )
            .expression_attribute_values(":me", s(&self.worker))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":counter", n(lease.counter));
        req = match &lease.stored_owner {
            Some(owner) => req
                .condition_expression("leaseCounter = :counter AND leaseOwner = :owner")
                .expression_attribute_values(":owner", s(owner)),
            None => req.condition_expression(
                "leaseCounter = :counter AND attribute_not_exists(leaseOwner)",
            ),
        };
        let taken = self.conditional_update("take", req).await?;
        if taken {
            self.held().insert(lease.key.clone(), next);
        }
        Ok(taken)
    }

    /// An update of a held lease, fenced by the counter this process last wrote; `None` if it
    /// does not hold the lease.
    fn fenced(&self, key: &str, set: &str, extra_condition: &str) -> Option<(Update, u64)> {
        let counter = *self.held().get(key)?;
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(key))
            .update_expression(format!("SET leaseCounter = :next{set}"))
            .condition_expression(format!(
                "leaseCounter = :counter AND leaseOwner = :me{extra_condition}"
            ))
            .expression_attribute_values(":me", s(&self.worker))
            .expression_attribute_values(":counter", n(counter))
            .expression_attribute_values(":next", n(counter + 1));
        Some((req, counter + 1))
    }

    /// Runs a fenced update: on success the held counter moves on; a failed condition means
    /// the lease was lost, and it is no longer held.
    async fn run_fenced(
        &self,
        what: &str,
        key: &str,
        fenced: Option<(Update, u64)>,
    ) -> Result<bool, LeaseError> {
        let Some((req, next)) = fenced else {
            return Ok(false);
        };
        let done = self.conditional_update(what, req).await?;
        let mut held = self.held();
        if done {
            held.insert(key.to_string(), next);
        } else {
            held.remove(key);
        }
        Ok(done)
    }

    /// Renews a held lease; `false` if it was lost.
    pub async fn renew(&self, key: &str) -> Result<bool, LeaseError> {
        let req = self.fenced(key, "", "");
        self.run_fenced("renew", key, req).await
    }

    /// Saves a checkpoint of a held lease; `false` if it was lost. A sequence number never
    /// replaces `SHARD_END`.
    pub async fn checkpoint(
        &self,
        key: &str,
        checkpoint: &str,
        sub_sequence: u64,
    ) -> Result<bool, LeaseError> {
        let guard = if checkpoint == SHARD_END {
            ""
        } else {
            " AND (attribute_not_exists(checkpoint) OR checkpoint <> :end)"
        };
        let req = self
            .fenced(
                key,
                ", checkpoint = :cp, checkpointSubSequenceNumber = :sub, \
                 ownerSwitchesSinceCheckpoint = :zero REMOVE weirStartedAt",
                guard,
            )
            .map(|(r, next)| {
                let r = r
                    .expression_attribute_values(":cp", s(checkpoint))
                    .expression_attribute_values(":sub", n(sub_sequence))
                    .expression_attribute_values(":zero", n(0));
                let r = if guard.is_empty() {
                    r
                } else {
                    r.expression_attribute_values(":end", s(SHARD_END))
                };
                (r, next)
            });
        self.run_fenced("checkpoint", key, req).await
    }

    /// Records when reading of a held lease began (a `LATEST` or `AT_TIMESTAMP` lease), before
    /// its first record is read; `false` if it was lost.
    pub async fn started(&self, key: &str, at_ms: i64) -> Result<bool, LeaseError> {
        let req = self
            .fenced(key, ", weirStartedAt = :at", "")
            .map(|(r, next)| (r.expression_attribute_values(":at", n(at_ms)), next));
        self.run_fenced("started", key, req).await
    }

    /// Records the stream incarnation on a held lease that has none (made by the KCL or an
    /// older Weir); `false` if it was lost.
    pub async fn adopt(&self, key: &str, stream: &StreamIdentity) -> Result<bool, LeaseError> {
        let req = self
            .fenced(
                key,
                ", weirStreamArn = :arn, weirStreamCreated = :created",
                "",
            )
            .map(|(r, next)| {
                (
                    r.expression_attribute_values(":arn", s(&stream.arn))
                        .expression_attribute_values(":created", n(stream.created_ms)),
                    next,
                )
            });
        self.run_fenced("adopt", key, req).await
    }

    /// Gives a held lease up, so that another worker can take it at once.
    pub async fn release(&self, key: &str) -> Result<bool, LeaseError> {
        let req = self.fenced(key, "", "").map(|(r, next)| {
            (
                r.update_expression("REMOVE leaseOwner SET leaseCounter = :next"),
                next,
            )
        });
        let released = self.run_fenced("release", key, req).await?;
        self.held().remove(key);
        Ok(released)
    }

    /// Forgets a lease this process stopped holding without a write (lost, or not renewed for
    /// a whole timeout).
    pub fn forget(&self, key: &str) {
        self.held().remove(key);
    }

    /// Starts a lease over for a new incarnation of its stream: the old checkpoint is kept
    /// aside in `previousCheckpoint` (and `previousCheckpointSubSequenceNumber`,
    /// `previousStreamCreated`), the lease is freed and points at `fresh`'s position. Fenced by
    /// the counter of the last scan; `false` if someone changed the lease since.
    pub async fn reset(&self, old: &Lease, fresh: &NewLease) -> Result<bool, LeaseError> {
        let Some(stream) = &fresh.stream else {
            return Ok(false);
        };
        let mut set = vec![
            "leaseCounter = :next",
            "checkpoint = :cp",
            "checkpointSubSequenceNumber = :zero",
            "ownerSwitchesSinceCheckpoint = :zero",
            "previousCheckpoint = :old",
            "previousCheckpointSubSequenceNumber = :oldsub",
            "weirStreamArn = :arn",
            "weirStreamCreated = :created",
        ];
        let mut remove = vec!["leaseOwner", "weirStartedAt"];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", s(&old.key))
            .condition_expression("leaseCounter = :counter")
            .expression_attribute_values(":counter", n(old.counter))
            .expression_attribute_values(":next", n(old.counter + 1))
            .expression_attribute_values(":cp", s(&fresh.checkpoint))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":old", s(&old.checkpoint))
            .expression_attribute_values(":oldsub", n(old.sub_sequence))
            .expression_attribute_values(":arn", s(&stream.arn))
            .expression_attribute_values(":created", n(stream.created_ms));
        if let Some(previous) = &old.stream {
            set.push("previousStreamCreated = :oldcreated");
            req = req.expression_attribute_values(":oldcreated", n(previous.created_ms));
        }
        if fresh.parents.is_empty() {
            remove.push("parentShardId");
        } else {
            set.push("parentShardId = :parents");
            req = req
                .expression_attribute_values(":parents", AttributeValue::Ss(fresh.parents.clone()));
        }
        if let Some((start, end)) = &fresh.hash_range {
            set.push("startingHashKey = :hs");
            set.push("endingHashKey = :he");
            req = req
                .expression_attribute_values(":hs", s(start))
                .expression_attribute_values(":he", s(end));
        }
        let req = req.update_expression(format!(
            "SET {} REMOVE {}",
            set.join(", "),
            remove.join(", ")
        ));
        let done = self.conditional_update("reset", req).await?;
        if done {
            self.held().remove(&old.key);
        }
        Ok(done)
    }

    async fn conditional_update(&self, what: &str, req: Update) -> Result<bool, LeaseError> {
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional(&e) => Ok(false),
            Err(e) => Err(self.err(&format!("UpdateItem ({what})"), DisplayErrorContext(&e))),
        }
    }
}

fn conditional<E: ProvideErrorMetadata, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn parse(item: &HashMap<String, AttributeValue>) -> Option<Lease> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let maybe = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let number = |k: &str| maybe(k).and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Some(Lease {
        key: text("leaseKey")?,
        // The KCL writes the literal "NULL" into leaseOwner in some versions when it evicts.
        owner: text("leaseOwner").filter(|o| !o.is_empty() && o != "NULL"),
        stored_owner: text("leaseOwner"),
        counter: number("leaseCounter"),
        checkpoint: text("checkpoint").unwrap_or_else(|| "TRIM_HORIZON".into()),
        sub_sequence: number("checkpointSubSequenceNumber"),
        parents: item
            .get("parentShardId")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default(),
        started_at_ms: maybe("weirStartedAt"),
        stream: match (text("weirStreamArn"), maybe("weirStreamCreated")) {
            (Some(arn), Some(created_ms)) => Some(StreamIdentity { arn, created_ms }),
            _ => None,
        },
    })
}

/// The view of one lease that balancing needs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: String,
    pub owner: Option<String>,
    pub expired: bool,
    /// Every parent shard is read to its end (or has no lease): the shard may be read.
    pub ready: bool,
}

/// Which leases this worker should take now, KCL-style: a fair share is the open leases divided
/// by the live workers (rounded up); free and expired leases are taken first, up to the share;
/// with none left, one lease is stolen from the most loaded worker if it holds at least two
/// more than this one. Ended leases count for nobody. The caller passes leases this worker
/// owns but does not read (left from before a restart) as free.
pub fn plan(me: &str, open: &[Candidate]) -> Vec<String> {
    let mut load: HashMap<&str, usize> = HashMap::new();
    load.insert(me, 0);
    for c in open {
        if let (Some(owner), false) = (&c.owner, c.expired) {
            *load.entry(owner.as_str()).or_default() += 1;
        }
    }
    let share = open.len().div_ceil(load.len());
    let mine = load[me];
    if mine >= share {
        return Vec::new();
    }
    let mut free: Vec<&Candidate> = open
        .iter()
        .filter(|c| c.ready && (c.owner.is_none() || c.expired) && c.owner.as_deref() != Some(me))
        .collect();
    free.sort_by(|a, b| a.key.cmp(&b.key));
    if !free.is_empty() {
        return free
            .into_iter()
            .take(share - mine)
            .map(|c| c.key.clone())
            .collect();
    }
    let busiest = load
        .iter()
        .filter(|(w, _)| **w != me)
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
    // Steal only across a gap of two or more, so that a steal never just moves the imbalance.
    match busiest {
        Some((worker, &count)) if count > mine + 1 => open
            .iter()
            .filter(|c| c.ready && c.owner.as_deref() == Some(*worker) && !c.expired)
            .map(|c| c.key.clone())
            .max()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: &str, owner: Option<&str>, expired: bool) -> Candidate {
        Candidate {
            key: key.into(),
            owner: owner.map(str::to_string),
            expired,
            ready: true,
        }
    }

    #[test]
    fn a_lone_worker_takes_every_free_lease() {
        let open = [
            c("s0", None, false),
            c("s1", None, false),
            c("s2", None, false),
        ];
        assert_eq!(plan("a", &open), ["s0", "s1", "s2"]);
    }

    #[test]
    fn a_new_worker_steals_one_lease_at_a_time_up_to_its_share() {
        let mut open = vec![
            c("s0", Some("a"), false),
            c("s1", Some("a"), false),
            c("s2", Some("a"), false),
            c("s3", Some("a"), false),
        ];
        assert_eq!(plan("b", &open), ["s3"]);
        open[3].owner = Some("b".into());
        assert_eq!(plan("b", &open), ["s2"]);
        open[2].owner = Some("b".into());
        assert!(plan("b", &open).is_empty(), "2 and 2 is balanced");
        assert!(plan("a", &open).is_empty());
    }

    #[test]
    fn expired_leases_are_taken_and_their_owner_no_longer_counts() {
        let open = [
            c("s0", Some("dead"), true),
            c("s1", Some("dead"), true),
            c("s2", Some("b"), false),
        ];
        assert_eq!(plan("b", &open), ["s0", "s1"]);
    }

    #[test]
    fn three_workers_on_four_shards_leave_nobody_idle() {
        let open = [
            c("s0", Some("a"), false),
            c("s1", Some("a"), false),
            c("s2", Some("b"), false),
            c("s3", Some("b"), false),
        ];
        assert_eq!(plan("c", &open).len(), 1);
    }

    #[test]
    fn children_wait_for_their_parents() {
        let mut child = c("s1", None, false);
        child.ready = false;
        assert!(plan("a", &[child]).is_empty());
    }

    #[test]
    fn leases_parse_from_kcl_items() {
        let item: HashMap<String, AttributeValue> = [
            ("leaseKey", s("shardId-000000000001")),
            ("leaseOwner", s("NULL")),
            ("leaseCounter", n(7)),
            (
                "checkpoint",
                s("49590338271490256608559692538361571095921575989136588898"),
            ),
            ("checkpointSubSequenceNumber", n(2)),
            (
                "parentShardId",
                AttributeValue::Ss(vec!["shardId-000000000000".into()]),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let lease = parse(&item).unwrap();
        assert_eq!(lease.owner, None, "\"NULL\" means free");
        assert_eq!(
            lease.stored_owner.as_deref(),
            Some("NULL"),
            "and is the take's condition"
        );
        assert_eq!(lease.counter, 7);
        assert_eq!(lease.sub_sequence, 2);
        assert_eq!(lease.parents, ["shardId-000000000000"]);
    }
}

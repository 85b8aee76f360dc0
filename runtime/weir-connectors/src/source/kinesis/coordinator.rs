//! The coordinator: which shards this process reads (local checkpoints, or leases shared with
//! other workers), in parent-first order, and where each one's checkpoint is.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_kinesis::Client;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::checkpoint::{key, load, save, Checkpoint};
use super::leases::{self, Candidate, Lease, LeaseTable, NewLease, StreamIdentity};
use super::reader::{EfoSettings, Reader, Resume};
use super::shards::{describe, list_shards, ShardInfo, Stream};
use crate::ack::Acker;
use crate::checkpoint::{LocalStore, Tracker};
use crate::config::{KinesisSourceConfig, StartPosition};
use crate::source::{SourceContext, SourceError};

/// How much earlier than this machine's clock a `latest` start records reading began: a clock
/// ahead of Kinesis's would otherwise skip records after a crash; a few seconds of records
/// read again is the price.
const CLOCK_MARGIN_MS: i64 = 5_000;

/// What shard readers tell the coordinator. `reader` names the reader, so that the coordinator
/// can ignore one that was stopped (its lease lost) while it was still talking.
pub(super) enum Event {
    /// A chunk was sent downstream with ack `token`; `checkpoint` is where to resume after it.
    Emitted {
        shard: String,
        reader: u64,
        token: u64,
        checkpoint: Checkpoint,
    },
    /// The shard is closed and every record of it was emitted; `children` as Kinesis named
    /// them (with their parents), when it did.
    Ended {
        shard: String,
        reader: u64,
        children: Vec<(String, Vec<String>)>,
    },
    /// Kinesis refused the shard's checkpoint as not of this stream: it was deleted and
    /// created again.
    Recreated { shard: String, reader: u64 },
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum State {
    Reading,
    /// Read to its end; waiting for the last acks before `SHARD_END` is saved.
    Draining,
}

/// A shard this process reads.
pub(super) struct Shard {
    pub(super) reader: u64,
    pub(super) state: State,
    pub(super) tracker: Tracker<Checkpoint>,
    /// Stops this shard's reader alone (a lost lease).
    pub(super) cancel: CancellationToken,
    pub(super) closed: Arc<AtomicBool>,
    /// When its lease was last renewed (or taken).
    pub(super) renewed: tokio::time::Instant,
}

/// Where positions are kept.
pub(super) enum Store {
    Local(LocalStore),
    Leases(Box<LeaseTable>),
}

pub(super) struct Handles {
    pub(super) acker: Acker,
    /// The pipeline's channels and the readers' stop token.
    pub(super) reader_ctx: SourceContext,
    pub(super) events: mpsc::UnboundedSender<Event>,
}

pub(super) struct Coordinator {
    pub(super) config: KinesisSourceConfig,
    pub(super) client: Client,
    pub(super) stream: Stream,
    /// The incarnation of the stream being read, when the endpoint could describe it.
    pub(super) identity: Option<StreamIdentity>,
    pub(super) store: Store,
    /// The enhanced fan-out consumer's ARN, when reading by fan-out.
    pub(super) efo: Option<String>,
    /// What readers are given; dropped once they are all done, so that the channels close.
    pub(super) handles: Option<Handles>,
    pub(super) tokens: Arc<AtomicU64>,
    pub(super) next_reader: u64,
    /// Every shard ListShards (or ChildShards) named.
    pub(super) known: HashMap<String, ShardInfo>,
    /// Shards whose lease item exists (DynamoDB).
    pub(super) created: HashSet<String>,
    /// The shards this process reads.
    pub(super) shards: HashMap<String, Shard>,
    /// Shards read to their end (local store).
    pub(super) done: HashSet<String>,
    pub(super) acks: Acks,
    pub(super) readers: JoinSet<Result<(), SourceError>>,
    /// Kept past `handles`, for the checkpoints saved while the pipeline drains.
    pub(super) stats: Arc<crate::stats::Stats>,
    pub(super) clock: Arc<dyn crate::clock::Clock>,
}

impl Coordinator {
    /// The checkpoint value of a new lease, or of one started over.
    pub(super) fn initial_checkpoint(&self, info: &ShardInfo) -> &'static str {
        // A child is read from its start, or records between its parents' end and the
        // configured start position would be lost.
        if info.parents.iter().any(|p| self.known.contains_key(p)) {
            return "TRIM_HORIZON";
        }
        match self.config.start {
            StartPosition::Latest => "LATEST",
            StartPosition::TrimHorizon => "TRIM_HORIZON",
            StartPosition::AtTimestamp(_) => "AT_TIMESTAMP",
        }
    }

    pub(super) fn new_lease(&self, id: &str, info: &ShardInfo) -> NewLease {
        NewLease {
            key: id.to_string(),
            checkpoint: self.initial_checkpoint(info).into(),
            parents: info.parents.clone(),
            hash_range: info.hash_range.clone(),
            stream: self.identity.clone(),
        }
    }

    /// Lists the stream's shards; with leases, creates the lease of every new one.
    pub(super) async fn discover(&mut self) -> Result<(), String> {
        for (id, info) in list_shards(&self.client, &self.stream).await? {
            if let Some(s) = self.shards.get(&id) {
                s.closed.store(info.closed, Ordering::Relaxed);
            }
            self.known.insert(id, info);
        }
        if let Store::Leases(table) = &self.store {
            let mut new = Vec::new();
            for (id, info) in &self.known {
                if self.created.contains(id) {
                    continue;
                }
                table
                    .create(&self.new_lease(id, info))
                    .await
                    .map_err(|e| e.to_string())?;
                new.push(id.clone());
            }
            self.created.extend(new);
        }
        Ok(())
    }

    /// How a shard without a checkpoint starts. For `latest` and `at_timestamp`, the time
    /// reading begins is returned too: it is saved before the first record is read.
    pub(super) fn fresh_start(&self, has_live_parent: bool) -> (Resume, Option<i64>) {
        if has_live_parent {
            return (Resume::TrimHorizon, None);
        }
        match &self.config.start {
            StartPosition::TrimHorizon => (Resume::TrimHorizon, None),
            StartPosition::Latest => {
                let since_ms = self.clock.now_ms() - CLOCK_MARGIN_MS;
                (Resume::Latest { since_ms }, Some(since_ms))
            }
            StartPosition::AtTimestamp(at) => {
                let at = at.timestamp_millis();
                (
                    Resume::From(Checkpoint::Started { started_at_ms: at }),
                    Some(at),
                )
            }
        }
    }

    /// Local store: starts a reader for every shard whose parents are done (or gone from the
    /// stream).
    pub(super) fn start_local(&mut self) -> Result<(), SourceError> {
        let Store::Local(store) = &self.store else {
            return Ok(());
        };
        let waiting: Vec<String> = self
            .known
            .keys()
            .filter(|id| !self.shards.contains_key(*id) && !self.done.contains(*id))
            .cloned()
            .collect();
        let mut ready = Vec::new();
        for id in waiting {
            let saved = load(&self.stream, store, &id, &mut self.identity)?;
            if saved == Some(Checkpoint::End { shard_end: true }) {
                self.done.insert(id);
                continue;
            }
            ready.push((id, saved));
        }
        for (id, saved) in ready {
            let parents = &self.known[&id].parents;
            if !parents
                .iter()
                .all(|p| self.done.contains(p) || !self.known.contains_key(p))
            {
                continue;
            }
            let has_live_parent = parents.iter().any(|p| self.known.contains_key(p));
            let resume = match saved {
                Some(checkpoint) => Resume::From(checkpoint),
                None => {
                    let (resume, started) = self.fresh_start(has_live_parent);
                    if let Some(started_at_ms) = started {
                        let Store::Local(store) = &self.store else {
                            unreachable!("checked above")
                        };
                        save(
                            &self.stream,
                            store,
                            &id,
                            &Checkpoint::Started { started_at_ms },
                            self.identity.as_ref(),
                        )?;
                    }
                    resume
                }
            };
            self.start_reader(id, resume);
        }
        Ok(())
    }

    /// Leases: starts leases of an older stream incarnation over, drops the leases another
    /// worker took, then takes this worker's share of the free, expired or (one at a time)
    /// over-held ones, and reads them.
    pub(super) async fn balance(&mut self) -> Result<(), SourceError> {
        let Store::Leases(table) = &mut self.store else {
            return Ok(());
        };
        let mut all = table.scan().await.map_err(lease_error)?;
        if let Some(key) = table.impostor() {
            return Err(SourceError::Service(
                "kinesis",
                format!(
                    "another process holds lease {key} under this process's worker_id `{}`: \
                 two processes must not share a worker_id (leave `worker_id` unset for a \
                 unique one)",
                    table.worker()
                ),
            ));
        }
        let Store::Leases(table) = &self.store else {
            unreachable!("checked above")
        };
        // A stream deleted and created again: its old leases start over.
        if let Some(identity) = &self.identity {
            for lease in all.iter_mut() {
                let stale = lease.stream.as_ref().is_some_and(|s| s != identity);
                let Some(info) = self.known.get(&lease.key).filter(|_| stale) else {
                    continue;
                };
                let fresh = self.new_lease(&lease.key, info);
                if table.reset(lease, &fresh).await.map_err(lease_error)? {
                    tracing::warn!(
                        shard = %lease.key,
                        old_checkpoint = %lease.checkpoint,
                        old_stream_created_ms = ?lease.stream.as_ref().map(|s| s.created_ms),
                        stream_created_ms = identity.created_ms,
                        "The stream was deleted and created again: this shard's lease starts over at `start`; the old checkpoint is kept in previousCheckpoint"
                    );
                    self.shards
                        .remove(&lease.key)
                        .inspect(|s| s.cancel.cancel());
                    lease.checkpoint = fresh.checkpoint.clone();
                    lease.sub_sequence = 0;
                    lease.owner = None;
                    lease.stored_owner = None;
                    lease.counter += 1;
                    lease.started_at_ms = None;
                    lease.stream = fresh.stream.clone();
                    lease.parents = fresh.parents.clone();
                }
            }
        }
        let now = tokio::time::Instant::now();
        let ended: HashSet<&str> = all
            .iter()
            .filter(|l| l.ended())
            .map(|l| l.key.as_str())
            .collect();
        let mut lost = Vec::new();
        for lease in &all {
            if self.shards.contains_key(&lease.key)
                && lease.owner.as_deref() != Some(table.worker())
            {
                lost.push(lease.key.clone());
            }
        }
        let me = table.worker().to_string();
        let open: Vec<Candidate> = all
            .iter()
            // Leases of shards the stream does not list (expired, or of an older incarnation)
            // are left alone: there is nothing to read.
            .filter(|l| !l.ended() && self.known.contains_key(&l.key))
            // Owned by this worker's id but not read here: left from before a crash, or held
            // by another process given the same id. Never stolen: taken only once expired
            // (and one that keeps being renewed is reported above).
            .filter(|l| {
                l.owner.as_deref() != Some(me.as_str())
                    || self.shards.contains_key(&l.key)
                    || table.expired(l, now)
            })
            .map(|l| Candidate {
                key: l.key.clone(),
                owner: l
                    .owner
                    .clone()
                    .filter(|o| *o != me || self.shards.contains_key(&l.key)),
                expired: table.expired(l, now),
                ready: l
                    .parents
                    .iter()
                    .all(|p| ended.contains(p.as_str()) || !self.known.contains_key(p)),
            })
            .collect();
        let wanted = leases::plan(&me, &open);
        for key in lost {
            self.lose(&key);
        }
        for key in wanted {
            let Store::Leases(table) = &self.store else {
                unreachable!("checked above")
            };
            let lease = all.iter().find(|l| l.key == key).expect("planned from all");
            match table.take(lease).await {
                Ok(true) => {
                    tracing::info!(shard = %key, from = ?lease.owner, worker = %table.worker(), "Lease taken");
                }
                Ok(false) => continue, // someone else changed it first
                Err(e) => {
                    tracing::warn!(shard = %key, error = %e, "Cannot take the lease; trying again at the next balance");
                    continue;
                }
            }
            if let (None, Some(identity)) = (&lease.stream, &self.identity) {
                if !table.adopt(&key, identity).await.map_err(lease_error)? {
                    continue;
                }
            }
            let Some(resume) = self.lease_resume(lease).await? else {
                continue;
            };
            self.known
                .entry(lease.key.clone())
                .or_insert_with(|| ShardInfo {
                    parents: lease.parents.clone(),
                    closed: false,
                    hash_range: None,
                });
            self.start_reader(lease.key.clone(), resume);
        }
        Ok(())
    }

    /// Where a lease just taken is read from. A `LATEST` or `AT_TIMESTAMP` lease that no one
    /// began reading yet gets the time reading begins saved first; `None` if the lease was
    /// lost meanwhile.
    pub(super) async fn lease_resume(&self, lease: &Lease) -> Result<Option<Resume>, SourceError> {
        let Store::Leases(table) = &self.store else {
            unreachable!("leases only")
        };
        let resume = match (lease.checkpoint.as_str(), lease.started_at_ms) {
            ("TRIM_HORIZON", _) => Resume::TrimHorizon,
            ("LATEST" | "AT_TIMESTAMP", Some(at)) => {
                Resume::From(Checkpoint::Started { started_at_ms: at })
            }
            ("LATEST", None) => {
                let since_ms = self.clock.now_ms() - CLOCK_MARGIN_MS;
                if !table
                    .started(&lease.key, since_ms)
                    .await
                    .map_err(lease_error)?
                {
                    return Ok(None);
                }
                Resume::Latest { since_ms }
            }
            ("AT_TIMESTAMP", None) => match &self.config.start {
                StartPosition::AtTimestamp(at) => {
                    let at = at.timestamp_millis();
                    if !table.started(&lease.key, at).await.map_err(lease_error)? {
                        return Ok(None);
                    }
                    Resume::From(Checkpoint::Started { started_at_ms: at })
                }
                // The KCL's AT_TIMESTAMP without a time this pipeline knows: the safe side.
                _ => Resume::TrimHorizon,
            },
            // KCL meaning: up to and including this user record (a plain record is 0).
            (sequence, _) => Resume::From(Checkpoint::At {
                sequence: sequence.to_string(),
                sub_sequence: Some(lease.sub_sequence),
            }),
        };
        Ok(Some(resume))
    }

    /// Leases: renews every held lease; stops reading the ones that were lost, and the ones
    /// it could not renew for a whole lease timeout (another worker may hold them by now).
    pub(super) async fn renew(&mut self) -> Result<(), SourceError> {
        let Store::Leases(table) = &self.store else {
            return Ok(());
        };
        let timeout = self.config.checkpoints.lease_timeout.0;
        let mut lost = Vec::new();
        for (id, shard) in self.shards.iter_mut() {
            match table.renew(id).await {
                Ok(true) => shard.renewed = tokio::time::Instant::now(),
                Ok(false) => lost.push(id.clone()),
                Err(e) if shard.renewed.elapsed() > timeout => {
                    tracing::warn!(shard = %id, error = %e, "Lease not renewed for a whole lease timeout; stopping the shard");
                    lost.push(id.clone());
                }
                Err(e) => {
                    tracing::warn!(shard = %id, error = %e, "Cannot renew the lease; retrying")
                }
            }
        }
        for id in lost {
            self.lose(&id);
        }
        Ok(())
    }

    /// Another worker holds the shard now: stop reading it and forget what is in flight (its
    /// checkpoints can no longer be saved; the new owner replays from the last saved one).
    pub(super) fn lose(&mut self, id: &str) {
        if let Store::Leases(table) = &self.store {
            table.forget(id);
        }
        if let Some(shard) = self.shards.remove(id) {
            shard.cancel.cancel();
            tracing::info!(shard = %id, "Lease lost to another worker; stopped reading the shard");
        }
    }

    /// Leases: gives every held lease up at shutdown, so that another worker continues at once.
    pub(super) async fn release_all(&mut self) {
        let Store::Leases(table) = &self.store else {
            return;
        };
        for id in self.shards.keys() {
            if let Err(e) = table.release(id).await {
                tracing::warn!(shard = %id, error = %e, "Cannot release the lease; it expires instead");
            }
        }
    }

    pub(super) fn start_reader(&mut self, id: String, resume: Resume) {
        let Some(handles) = &self.handles else {
            return;
        };
        let reader = self.next_reader;
        self.next_reader += 1;
        let cancel = handles.reader_ctx.shutdown.child_token();
        let closed = Arc::new(AtomicBool::new(
            self.known.get(&id).is_some_and(|i| i.closed),
        ));
        tracing::info!(stream = %self.stream.id, shard = %id, resume = ?resume, "Reading shard");
        let task = Reader {
            client: self.client.clone(),
            stream: self.stream.clone(),
            shard: id.clone(),
            reader,
            source: format!("kinesis:{}/{id}", self.stream.name()).into(),
            max_records: self.config.max_records,
            idle: self.config.idle_interval.0,
            efo: self.efo.clone().map(|arn| EfoSettings {
                consumer_arn: arn,
                heartbeat: self.config.heartbeat_timeout.0,
                resubscribe: self.config.resubscribe_interval.0,
            }),
            closed: closed.clone(),
            acker: handles.acker.clone(),
            events: handles.events.clone(),
            tokens: self.tokens.clone(),
            ctx: SourceContext {
                shutdown: cancel.clone(),
                ..handles.reader_ctx.clone()
            },
        };
        self.readers.spawn(task.run(resume));
        self.shards.insert(
            id,
            Shard {
                reader,
                state: State::Reading,
                tracker: Tracker::default(),
                cancel,
                closed,
                renewed: tokio::time::Instant::now(),
            },
        );
    }

    pub(super) async fn event(&mut self, event: Event) -> Result<(), SourceError> {
        match event {
            Event::Emitted {
                shard,
                reader,
                token,
                checkpoint,
            } => {
                let current = self.shards.get_mut(&shard).filter(|s| s.reader == reader);
                if let Some(s) = current {
                    s.tracker.push(token, checkpoint);
                }
                self.acks.shard_of.insert(token, (shard, reader));
                match self.acks.early.remove(&token) {
                    Some(delivered) => self.resolved(token, delivered).await,
                    None => Ok(()),
                }
            }
            Event::Ended {
                shard,
                reader,
                children,
            } => {
                for (child, parents) in children {
                    self.known.entry(child).or_insert(ShardInfo {
                        parents,
                        closed: false,
                        hash_range: None,
                    });
                }
                if let Some(s) = self.shards.get_mut(&shard).filter(|s| s.reader == reader) {
                    s.state = State::Draining;
                }
                self.finish_drained().await.map(|_| ())
            }
            Event::Recreated { shard, reader } => {
                if self.shards.get(&shard).is_none_or(|s| s.reader != reader) {
                    return Ok(());
                }
                self.recreated(&shard).await
            }
        }
    }

    /// A reader's checkpoint is not of the stream Kinesis has now: the stream was deleted and
    /// created again while this process ran, or before it, with checkpoints saved by a
    /// release that did not record the stream's creation time. The stream is described again
    /// and every position of the old incarnation is set aside.
    pub(super) async fn recreated(&mut self, shard: &str) -> Result<(), SourceError> {
        let now = describe(&self.client, &self.stream).await;
        let old = std::mem::replace(&mut self.identity, now.clone());
        let suffix = format!(
            "stream-{}",
            old.as_ref()
                .map_or_else(|| "unknown".to_string(), |o| o.created_ms.to_string())
        );
        match &self.store {
            Store::Local(store) => {
                // A new incarnation: every shard of the old one (read, done or waiting) starts
                // over. Without a creation time to compare, only the refused shard does.
                let mut all: Vec<String> = match (&now, &old) {
                    (Some(n), o) if o.as_ref() != Some(n) => {
                        let mut all: Vec<String> = self.known.keys().cloned().collect();
                        all.extend(self.done.drain());
                        all
                    }
                    _ => vec![shard.to_string()],
                };
                all.sort();
                all.dedup();
                for id in &all {
                    let moved = store
                        .set_aside(&key(&self.stream, id), &suffix)
                        .map_err(|e| {
                            SourceError::Checkpoint(format!(
                                "cannot set the checkpoint of {id} aside: {e}"
                            ))
                        })?;
                    if let Some(path) = moved {
                        tracing::warn!(shard = %id, kept_at = %path.display(), "The stream was deleted and created again: this shard is read from `start`; its old checkpoint is kept aside");
                    }
                    self.done.remove(id);
                    if let Some(s) = self.shards.remove(id) {
                        s.cancel.cancel();
                    }
                }
            }
            Store::Leases(_) => {
                // The next balance starts the old leases over (their identity differs), or,
                // when the stream cannot be described, this shard's lease.
                if now.is_none() || now == old {
                    tracing::warn!(shard = %shard, "Kinesis refused this shard's checkpoint as not of this stream, and the stream's creation time is unknown; the shard is read from `start`");
                    self.reset_lease_without_identity(shard).await?;
                }
                self.lose(shard);
            }
        }
        self.known.clear();
        Ok(())
    }

    /// Leases, when the stream cannot be described: starts one shard's lease over.
    pub(super) async fn reset_lease_without_identity(
        &mut self,
        shard: &str,
    ) -> Result<(), SourceError> {
        let Store::Leases(table) = &mut self.store else {
            return Ok(());
        };
        let all = table.scan().await.map_err(lease_error)?;
        let Some(lease) = all.iter().find(|l| l.key == shard) else {
            return Ok(());
        };
        let info = self.known.get(shard).cloned().unwrap_or(ShardInfo {
            parents: Vec::new(),
            closed: false,
            hash_range: None,
        });
        let mut fresh = self.new_lease(shard, &info);
        // `reset` needs an incarnation to record: a made-up one keeps the old checkpoint aside.
        fresh.stream = Some(StreamIdentity {
            arn: self.stream.id.clone(),
            created_ms: self.clock.now_ms(),
        });
        let Store::Leases(table) = &self.store else {
            unreachable!("checked above")
        };
        table.reset(lease, &fresh).await.map_err(lease_error)?;
        Ok(())
    }

    /// Saves the checkpoint an ack lets its shard move to. Readers announce a chunk before
    /// they send it, but the announcement and the ack travel on different channels, so an ack
    /// can arrive first: it waits in `early` until its chunk is announced.
    pub(super) async fn resolved(
        &mut self,
        token: u64,
        delivered: bool,
    ) -> Result<(), SourceError> {
        let Some((id, reader)) = self.acks.shard_of.remove(&token) else {
            self.acks.early.insert(token, delivered);
            return Ok(());
        };
        let Some(shard) = self.shards.get_mut(&id).filter(|s| s.reader == reader) else {
            return Ok(());
        };
        if let Some(checkpoint) = shard.tracker.resolve(token, delivered) {
            self.save(&id, &checkpoint).await?;
            self.stats.checkpointed(self.clock.now_ms());
        }
        Ok(())
    }

    /// Saves a shard's checkpoint; with leases, a lease found lost stops the shard.
    pub(super) async fn save(
        &mut self,
        id: &str,
        checkpoint: &Checkpoint,
    ) -> Result<(), SourceError> {
        match &self.store {
            Store::Local(store) => {
                if self.done.contains(id) {
                    // SHARD_END is final.
                    return Ok(());
                }
                save(&self.stream, store, id, checkpoint, self.identity.as_ref())
            }
            Store::Leases(table) => {
                let (value, sub) = match checkpoint {
                    Checkpoint::At {
                        sequence,
                        sub_sequence,
                    } => (sequence.as_str(), sub_sequence.unwrap_or(0)),
                    Checkpoint::End { .. } => (leases::SHARD_END, 0),
                    // Saved when the lease was taken (`weirStartedAt`).
                    Checkpoint::Started { .. } => return Ok(()),
                };
                match table.checkpoint(id, value, sub).await {
                    Ok(true) => {}
                    Ok(false) => self.lose(id),
                    // The next delivered chunk saves a later checkpoint; until one is saved, a
                    // new owner replays a little more.
                    Err(e) => {
                        tracing::warn!(shard = %id, error = %e, "Cannot save the checkpoint; the next one will")
                    }
                }
                Ok(())
            }
        }
    }

    /// Saves `SHARD_END` for drained shards (and gives their leases up); returns whether any
    /// was.
    pub(super) async fn finish_drained(&mut self) -> Result<bool, SourceError> {
        let drained: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, s)| s.state == State::Draining && s.tracker.outstanding() == 0)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &drained {
            self.save(id, &Checkpoint::End { shard_end: true }).await?;
            if self.shards.remove(id).is_none() {
                continue; // the lease was lost just now
            }
            match &self.store {
                Store::Local(_) => {
                    self.done.insert(id.clone());
                }
                Store::Leases(table) => {
                    if let Err(e) = table.release(id).await {
                        tracing::warn!(shard = %id, error = %e, "Cannot give the ended lease up");
                    }
                }
            }
            tracing::info!(stream = %self.stream.id, shard = %id, "Shard read to its end");
        }
        Ok(!drained.is_empty())
    }
}

pub(super) fn lease_error(e: leases::LeaseError) -> SourceError {
    SourceError::Checkpoint(e.to_string())
}

/// Which shard (and reader) each outstanding ack belongs to.
#[derive(Default)]
pub(super) struct Acks {
    pub(super) shard_of: HashMap<u64, (String, u64)>,
    pub(super) early: HashMap<u64, bool>,
}

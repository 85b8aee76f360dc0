//! `kinesis`: reads a Kinesis data stream as the Kinesis Client Library does, through the
//! official `aws-sdk-kinesis`: polling consumers (GetRecords) or enhanced fan-out
//! (SubscribeToShard), checkpoints in local files or in a KCL-style DynamoDB lease table.
//!
//! Invariants:
//! - **At least once.** Every chunk of records (one GetRecords response or one fan-out event of
//!   one shard) carries an [`Ack`](crate::ack::Ack); a shard's checkpoint moves to the end of a
//!   chunk only when that chunk and every earlier chunk of the shard are delivered (written by
//!   the sink, or by the error output). A restart, or a new lease owner, resumes after the
//!   checkpoint, so records are never skipped; the ones after it may come again.
//! - **The first position is kept.** A shard without a checkpoint that starts at `latest` or
//!   at a timestamp gets a `started` checkpoint (the time reading began) *before* its first
//!   record is emitted, so a crash before the first real checkpoint resumes there
//!   (AT_TIMESTAMP), not at a later LATEST that would skip what arrived in between.
//! - **Parents first.** A shard whose parents (from ListShards' `ParentShardId` and
//!   `AdjacentParentShardId`, or from `ChildShards` at a parent's end) are still in the stream
//!   starts only once every parent is read to its end and checkpointed `SHARD_END`, so records
//!   of one partition key keep their order across splits and merges.
//! - **One reader per shard.** With local checkpoints this process reads every shard. With
//!   DynamoDB leases it reads the shards it holds a lease on; a lost lease stops that shard's
//!   reader, and everything it emitted afterwards is ignored by the coordinator (reader ids).
//! - **One stream incarnation.** Checkpoints carry the stream's ARN and creation time. A
//!   stream deleted and created again under the same name is read from `start`; the old
//!   checkpoints are kept aside (renamed, or `previousCheckpoint` in the lease), with a warning.
//! - **KPL.** Aggregated records become their user records, with sub-sequence numbers; the
//!   checkpoint remembers the sub-sequence number, and a resume skips the user records of a
//!   partly delivered aggregate that were delivered. A corrupt aggregate, or one past the
//!   limits of [`kpl`], goes to the error output whole; the records behind it go on.
//!
//! Checkpoint format in the local store (one file per shard, key `<stream>_<shard id>`):
//! `{"sequence":"4968...","sub_sequence":2}` after a delivered record, `{"shard_end":true}` once
//! a closed shard is fully delivered, `{"started_at_ms":1764...}` before its first record; each
//! with `"stream_arn"` and `"stream_created_ms"` when the stream could be described. In
//! DynamoDB: the KCL's `checkpoint` and `checkpointSubSequenceNumber` (see [`super::leases`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::DateTime as AwsDateTime;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::kpl;
use super::leases::{self, Candidate, Lease, LeaseTable, NewLease, StreamIdentity};
use super::{SourceContext, SourceError};
use crate::ack::Acker;
use crate::checkpoint::{LocalStore, Tracker};
use crate::config::{ConsumerMode, KinesisSourceConfig, StartPosition, StoreKind};
use crate::record::{ErrorOutputType, FailedRecord, Record};

/// Kinesis allows five GetRecords calls per second per shard.
const MIN_CALL_GAP: Duration = Duration::from_millis(200);
/// Longest back-off after throttling or transient errors.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Kinesis refuses a second SubscribeToShard of one shard within 5 seconds.
const RESUBSCRIBE_GAP: Duration = Duration::from_secs(5);
/// How often an idle fan-out reader of a closed shard asks GetRecords whether it is at the end.
const END_PROBE_GAP: Duration = Duration::from_secs(1);
/// Most records of one chunk sent downstream. A read of large KPL aggregates expands to many
/// chunks, cut inside an aggregate when need be (the checkpoint then names the user record),
/// so what one read holds in memory is bounded whatever it brought.
const CHUNK_RECORDS: usize = 10_000;
/// How much earlier than this machine's clock a `latest` start records reading began: a clock
/// ahead of Kinesis's would otherwise skip records after a crash; a few seconds of records
/// read again is the price.
const CLOCK_MARGIN_MS: i64 = 5_000;

/// Where a shard resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checkpoint {
    /// After this record (and, inside a KPL aggregate, after this user record).
    At {
        sequence: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub_sequence: Option<u64>,
    },
    /// The shard is closed and everything in it was delivered.
    End { shard_end: bool },
    /// Nothing delivered yet; reading began at this time (ms since the epoch): resume at it.
    Started { started_at_ms: i64 },
}

/// A checkpoint as the local store keeps it: the position and the stream incarnation it is of.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    #[serde(flatten)]
    position: Checkpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_created_ms: Option<i64>,
}

/// The AWS SDK configuration for a region and endpoint, with the standard credential chain
/// (environment, profile, ...) and rustls.
pub async fn sdk_config(region: Option<&str>, endpoint: Option<&str>) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// A Kinesis client for the configured region and endpoint.
pub async fn client(region: Option<&str>, endpoint: Option<&str>) -> Client {
    Client::new(&sdk_config(region, endpoint).await)
}

/// Names a stream in requests: by ARN when given one, else by name.
#[derive(Debug, Clone)]
struct Stream {
    id: String,
    is_arn: bool,
}

impl Stream {
    fn new(id: &str) -> Self {
        Stream {
            id: id.to_string(),
            is_arn: id.starts_with("arn:"),
        }
    }

    /// The stream's name, for checkpoint keys and record sources.
    fn name(&self) -> &str {
        if self.is_arn {
            self.id.rsplit('/').next().unwrap_or(&self.id)
        } else {
            &self.id
        }
    }
}

/// The stream's ARN and creation time, from DescribeStreamSummary; `None` if the endpoint
/// cannot say (checkpoints are then kept without them).
async fn describe(client: &Client, stream: &Stream) -> Option<StreamIdentity> {
    let mut req = client.describe_stream_summary();
    req = if stream.is_arn {
        req.stream_arn(&stream.id)
    } else {
        req.stream_name(&stream.id)
    };
    match req.send().await {
        Ok(out) => {
            let d = out.stream_description_summary()?;
            Some(StreamIdentity {
                arn: d.stream_arn().to_string(),
                created_ms: d.stream_creation_timestamp().to_millis().ok()?,
            })
        }
        Err(e) => {
            tracing::warn!(stream = %stream.id, error = %brief(&e), "Cannot describe the stream; its checkpoints are kept without its creation time");
            None
        }
    }
}

#[derive(Debug, Clone)]
struct ShardInfo {
    parents: Vec<String>,
    /// ListShards gave the shard an ending sequence number: it takes no more records.
    closed: bool,
    hash_range: Option<(String, String)>,
}

/// What shard readers tell the coordinator. `reader` names the reader, so that the coordinator
/// can ignore one that was stopped (its lease lost) while it was still talking.
enum Event {
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
enum State {
    Reading,
    /// Read to its end; waiting for the last acks before `SHARD_END` is saved.
    Draining,
}

/// A shard this process reads.
struct Shard {
    reader: u64,
    state: State,
    tracker: Tracker<Checkpoint>,
    /// Stops this shard's reader alone (a lost lease).
    cancel: CancellationToken,
    closed: Arc<AtomicBool>,
    /// When its lease was last renewed (or taken).
    renewed: tokio::time::Instant,
}

/// Where positions are kept.
enum Store {
    Local(LocalStore),
    Leases(Box<LeaseTable>),
}

/// Runs the source until shutdown, then waits for the records it emitted to be delivered (or
/// the pipeline to fail), saves the final checkpoints and gives its leases up.
pub(super) async fn run(
    config: KinesisSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    config.check().map_err(SourceError::Unsupported)?;
    let sdk = sdk_config(config.region.as_deref(), config.endpoint.as_deref()).await;
    let client = Client::new(&sdk);
    let stream = Stream::new(&config.stream);
    let identity = describe(&client, &stream).await;
    let store = match config.checkpoints.store {
        StoreKind::Local => Store::Local(LocalStore::new(&ctx.state_dir, &ctx.pipeline)),
        StoreKind::Dynamodb => {
            let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
            // The Kinesis endpoint is not DynamoDB's: only the lease table's own setting, or
            // the SDK's environment variables, name a DynamoDB endpoint.
            builder.set_endpoint_url(config.checkpoints.endpoint.clone());
            if config.checkpoints.endpoint.is_none() {
                if let Some(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
                    .ok()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                {
                    builder.set_endpoint_url(Some(url));
                }
            }
            let table = LeaseTable::new(
                aws_sdk_dynamodb::Client::from_conf(builder.build()),
                config.checkpoints.table.as_deref().expect("checked"),
                &config
                    .checkpoints
                    .worker_id
                    .clone()
                    .unwrap_or_else(default_worker_id),
                config.checkpoints.lease_timeout.0,
            );
            table
                .ensure_table()
                .await
                .map_err(|e| SourceError::Checkpoint(e.to_string()))?;
            tracing::info!(table = %config.checkpoints.table.as_deref().unwrap_or_default(), worker = %table.worker(), "Sharing shards through the lease table");
            Store::Leases(Box::new(table))
        }
    };
    let efo = match config.consumer {
        ConsumerMode::Polling => None,
        ConsumerMode::Efo => {
            let name = config
                .consumer_name
                .clone()
                .unwrap_or_else(|| ctx.pipeline.clone());
            Some(register_consumer(&client, &stream, &name, &ctx.shutdown).await?)
        }
    };
    let (ack_tx, mut acks) = mpsc::unbounded_channel();
    let (event_tx, mut events) = mpsc::unbounded_channel::<Event>();
    // Readers stop on shutdown, or when one of them fails. They are never aborted: a reader
    // dropped while handing over a chunk would let that chunk's ack resolve as delivered.
    let stop = ctx.shutdown.child_token();
    let mut c = Coordinator {
        handles: Some(Handles {
            acker: Acker::new(ack_tx, ctx.poison.clone()),
            reader_ctx: SourceContext {
                shutdown: stop.clone(),
                ..ctx.clone()
            },
            events: event_tx,
        }),
        config,
        client,
        stream,
        identity,
        store,
        efo,
        tokens: Arc::new(AtomicU64::new(1)),
        next_reader: 1,
        known: HashMap::new(),
        created: HashSet::new(),
        shards: HashMap::new(),
        done: HashSet::new(),
        acks: Acks::default(),
        readers: JoinSet::new(),
        stats: ctx.stats.clone(),
        clock: ctx.clock.clone(),
    };
    let mut discovery = tokio::time::interval(c.config.discovery_interval.0);
    let lease_timeout = c.config.checkpoints.lease_timeout.0;
    let mut renewal = tokio::time::interval(lease_timeout / 3);
    let mut balance = tokio::time::interval(lease_timeout / 2);
    let leases = matches!(c.store, Store::Leases(_));
    let mut failure = None;

    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = discovery.tick() => {
                if let Err(e) = c.discover().await {
                    tracing::warn!(stream = %c.stream.id, error = %e, "Shard discovery failed; retrying at the next one");
                    continue;
                }
                let started = match leases {
                    true => c.balance().await,
                    false => c.start_local(),
                };
                if let Err(e) = started {
                    match e {
                        SourceError::Checkpoint(_) if leases => {
                            tracing::warn!(error = %e, "Cannot read the lease table; retrying");
                        }
                        e => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            // A lease table that cannot be reached is retried: leases this process cannot
            // renew expire, and their shards go to workers that can.
            _ = renewal.tick(), if leases => {
                c.renew().await?;
            }
            _ = balance.tick(), if leases && !c.known.is_empty() => {
                match c.balance().await {
                    Ok(()) => {}
                    Err(SourceError::Checkpoint(e)) => {
                        tracing::warn!(error = %e, "Cannot read the lease table; retrying");
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            Some(event) = events.recv() => {
                let rediscover = matches!(event, Event::Ended { .. } | Event::Recreated { .. });
                if let Err(e) = c.event(event).await {
                    failure = Some(e);
                    break;
                }
                if rediscover {
                    // Children (or the new incarnation's shards) may be startable now.
                    discovery.reset_immediately();
                }
            }
            Some(resolved) = acks.recv() => {
                let finished = match c.resolved(resolved.token, resolved.delivered).await {
                    Ok(()) => c.finish_drained().await,
                    Err(e) => Err(e),
                };
                match finished {
                    Ok(true) => discovery.reset_immediately(),
                    Ok(false) => {}
                    Err(e) => { failure = Some(e); break; }
                }
            }
            Some(done) = c.readers.join_next(), if !c.readers.is_empty() => {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => { failure = Some(e); break; }
                    Err(e) => { failure = Some(SourceError::Kinesis(format!("shard reader: {e}"))); break; }
                }
            }
        }
    }

    // Stop reading, let the pipeline drain, and checkpoint what it delivers.
    stop.cancel();
    while let Some(done) = c.readers.join_next().await {
        if let (Ok(Err(e)), None) = (done, &failure) {
            failure = Some(e);
        }
    }
    // Only the outstanding chunks' acks keep these channels open now.
    c.handles = None;
    let SourceContext { out, errors, .. } = ctx;
    drop((out, errors));
    // Errors here are kept for the result, but the drain goes on: every delivered chunk still
    // gets its checkpoint, and the leases are given up whatever happens.
    let keep = |r: Result<(), SourceError>, failure: &mut Option<SourceError>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "While draining");
            failure.get_or_insert(e);
        }
    };
    while let Some(event) = events.recv().await {
        keep(c.event(event).await, &mut failure);
    }
    while let Some(resolved) = acks.recv().await {
        keep(
            c.resolved(resolved.token, resolved.delivered).await,
            &mut failure,
        );
        keep(c.finish_drained().await.map(|_| ()), &mut failure);
    }
    keep(c.finish_drained().await.map(|_| ()), &mut failure);
    c.release_all().await;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `<host>-<pid>-<random>`: unique per process, readable in the lease table.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "weir".into());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        rand::rng().random_range(0..0x100_0000u32)
    )
}

struct Handles {
    acker: Acker,
    /// The pipeline's channels and the readers' stop token.
    reader_ctx: SourceContext,
    events: mpsc::UnboundedSender<Event>,
}

struct Coordinator {
    config: KinesisSourceConfig,
    client: Client,
    stream: Stream,
    /// The incarnation of the stream being read, when the endpoint could describe it.
    identity: Option<StreamIdentity>,
    store: Store,
    /// The enhanced fan-out consumer's ARN, when reading by fan-out.
    efo: Option<String>,
    /// What readers are given; dropped once they are all done, so that the channels close.
    handles: Option<Handles>,
    tokens: Arc<AtomicU64>,
    next_reader: u64,
    /// Every shard ListShards (or ChildShards) named.
    known: HashMap<String, ShardInfo>,
    /// Shards whose lease item exists (DynamoDB).
    created: HashSet<String>,
    /// The shards this process reads.
    shards: HashMap<String, Shard>,
    /// Shards read to their end (local store).
    done: HashSet<String>,
    acks: Acks,
    readers: JoinSet<Result<(), SourceError>>,
    /// Kept past `handles`, for the checkpoints saved while the pipeline drains.
    stats: Arc<crate::stats::Stats>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl Coordinator {
    /// The checkpoint value of a new lease, or of one started over.
    fn initial_checkpoint(&self, info: &ShardInfo) -> &'static str {
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

    fn new_lease(&self, id: &str, info: &ShardInfo) -> NewLease {
        NewLease {
            key: id.to_string(),
            checkpoint: self.initial_checkpoint(info).into(),
            parents: info.parents.clone(),
            hash_range: info.hash_range.clone(),
            stream: self.identity.clone(),
        }
    }

    /// Lists the stream's shards; with leases, creates the lease of every new one.
    async fn discover(&mut self) -> Result<(), String> {
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
    fn fresh_start(&self, has_live_parent: bool) -> (Resume, Option<i64>) {
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
    fn start_local(&mut self) -> Result<(), SourceError> {
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
    async fn balance(&mut self) -> Result<(), SourceError> {
        let Store::Leases(table) = &mut self.store else {
            return Ok(());
        };
        let mut all = table.scan().await.map_err(lease_error)?;
        if let Some(key) = table.impostor() {
            return Err(SourceError::Kinesis(format!(
                "another process holds lease {key} under this process's worker_id `{}`: \
                 two processes must not share a worker_id (leave `worker_id` unset for a \
                 unique one)",
                table.worker()
            )));
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
    async fn lease_resume(&self, lease: &Lease) -> Result<Option<Resume>, SourceError> {
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
    async fn renew(&mut self) -> Result<(), SourceError> {
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
    fn lose(&mut self, id: &str) {
        if let Store::Leases(table) = &self.store {
            table.forget(id);
        }
        if let Some(shard) = self.shards.remove(id) {
            shard.cancel.cancel();
            tracing::info!(shard = %id, "Lease lost to another worker; stopped reading the shard");
        }
    }

    /// Leases: gives every held lease up at shutdown, so that another worker continues at once.
    async fn release_all(&mut self) {
        let Store::Leases(table) = &self.store else {
            return;
        };
        for id in self.shards.keys() {
            if let Err(e) = table.release(id).await {
                tracing::warn!(shard = %id, error = %e, "Cannot release the lease; it expires instead");
            }
        }
    }

    fn start_reader(&mut self, id: String, resume: Resume) {
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

    async fn event(&mut self, event: Event) -> Result<(), SourceError> {
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
    async fn recreated(&mut self, shard: &str) -> Result<(), SourceError> {
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
    async fn reset_lease_without_identity(&mut self, shard: &str) -> Result<(), SourceError> {
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
    async fn resolved(&mut self, token: u64, delivered: bool) -> Result<(), SourceError> {
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
    async fn save(&mut self, id: &str, checkpoint: &Checkpoint) -> Result<(), SourceError> {
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
    async fn finish_drained(&mut self) -> Result<bool, SourceError> {
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

fn lease_error(e: leases::LeaseError) -> SourceError {
    SourceError::Checkpoint(e.to_string())
}

/// Which shard (and reader) each outstanding ack belongs to.
#[derive(Default)]
struct Acks {
    shard_of: HashMap<u64, (String, u64)>,
    early: HashMap<u64, bool>,
}

/// A shard's key in the local store: `<stream>_<shard id>` (stream names and shard ids never
/// contain `/`, and a stream name never ends in `_shardId-`).
fn key(stream: &Stream, shard: &str) -> String {
    format!("{}_{shard}", stream.name())
}

fn save(
    stream: &Stream,
    store: &LocalStore,
    shard: &str,
    c: &Checkpoint,
    identity: Option<&StreamIdentity>,
) -> Result<(), SourceError> {
    let saved = Saved {
        position: c.clone(),
        stream_arn: identity.map(|i| i.arn.clone()),
        stream_created_ms: identity.map(|i| i.created_ms),
    };
    let text = serde_json::to_string(&saved).expect("checkpoints serialize");
    store
        .save(&key(stream, shard), &text)
        .map_err(|e| SourceError::Checkpoint(format!("cannot save checkpoint of {shard}: {e}")))
}

/// A shard's checkpoint, if it is of the stream incarnation being read. One of another
/// incarnation is set aside (renamed with its stream's creation time), with a warning. When
/// the stream could not be described (`identity` is `None`), the identity the checkpoint
/// holds is taken as the stream's, so that saving it again does not forget it.
fn load(
    stream: &Stream,
    store: &LocalStore,
    shard: &str,
    identity: &mut Option<StreamIdentity>,
) -> Result<Option<Checkpoint>, SourceError> {
    let key = key(stream, shard);
    let text = store
        .load(&key)
        .map_err(|e| SourceError::Checkpoint(format!("cannot read checkpoint of {shard}: {e}")))?;
    let Some(text) = text else { return Ok(None) };
    let saved: Saved = serde_json::from_str(&text).map_err(|e| {
        SourceError::Checkpoint(format!("checkpoint of {shard} is unreadable ({e}): {text}"))
    })?;
    if identity.is_none() {
        if let (Some(arn), Some(created_ms)) = (&saved.stream_arn, saved.stream_created_ms) {
            *identity = Some(StreamIdentity {
                arn: arn.clone(),
                created_ms,
            });
            return Ok(Some(saved.position));
        }
    }
    let identity = identity.as_ref();
    let stale = match (identity, &saved.stream_created_ms, &saved.stream_arn) {
        (Some(now), Some(created), arn) => {
            *created != now.created_ms || arn.as_ref().is_some_and(|a| *a != now.arn)
        }
        _ => false,
    };
    if !stale {
        return Ok(Some(saved.position));
    }
    let suffix = format!("stream-{}", saved.stream_created_ms.unwrap_or_default());
    let kept = store.set_aside(&key, &suffix).map_err(|e| {
        SourceError::Checkpoint(format!("cannot set the checkpoint of {shard} aside: {e}"))
    })?;
    tracing::warn!(
        stream = %stream.id,
        shard = %shard,
        checkpoint_stream_created_ms = ?saved.stream_created_ms,
        stream_created_ms = ?identity.map(|i| i.created_ms),
        kept_at = %kept.map(|p| p.display().to_string()).unwrap_or_default(),
        "The stream was deleted and created again since this checkpoint: the shard is read from `start`; the old checkpoint is kept aside"
    );
    Ok(None)
}

async fn list_shards(client: &Client, stream: &Stream) -> Result<Vec<(String, ShardInfo)>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = client.list_shards();
        req = match &token {
            Some(t) => req.next_token(t),
            None if stream.is_arn => req.stream_arn(&stream.id),
            None => req.stream_name(&stream.id),
        };
        let page = req
            .send()
            .await
            .map_err(|e| format!("{}", DisplayErrorContext(&e)))?;
        for s in page.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_string)
                .collect();
            let closed = s
                .sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_some();
            let hash_range = s.hash_key_range().map(|r| {
                (
                    r.starting_hash_key().to_string(),
                    r.ending_hash_key().to_string(),
                )
            });
            out.push((
                s.shard_id().to_string(),
                ShardInfo {
                    parents,
                    closed,
                    hash_range,
                },
            ));
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(out),
        }
    }
}

/// Registers the enhanced fan-out consumer (or finds it, if it exists) and waits until it is
/// active; returns its ARN.
async fn register_consumer(
    client: &Client,
    stream: &Stream,
    name: &str,
    shutdown: &CancellationToken,
) -> Result<String, SourceError> {
    let fail = |what: &str, e: String| {
        SourceError::Kinesis(format!("{what} (consumer `{name}` of {}): {e}", stream.id))
    };
    let stream_arn = if stream.is_arn {
        stream.id.clone()
    } else {
        client
            .describe_stream_summary()
            .stream_name(&stream.id)
            .send()
            .await
            .map_err(|e| fail("DescribeStreamSummary", DisplayErrorContext(&e).to_string()))?
            .stream_description_summary()
            .map(|d| d.stream_arn().to_string())
            .ok_or_else(|| fail("DescribeStreamSummary", "no stream description".into()))?
    };
    let registered = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name(name)
        .send()
        .await;
    match registered {
        Ok(_) => {
            tracing::info!(consumer = %name, stream = %stream.id, "Registered the enhanced fan-out consumer")
        }
        // It exists: another process (or an earlier run) registered it.
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => {
            return Err(fail(
                "RegisterStreamConsumer",
                DisplayErrorContext(&e).to_string(),
            ))
        }
    }
    let started = tokio::time::Instant::now();
    loop {
        let described = client
            .describe_stream_consumer()
            .stream_arn(&stream_arn)
            .consumer_name(name)
            .send()
            .await
            .map_err(|e| {
                fail(
                    "DescribeStreamConsumer",
                    DisplayErrorContext(&e).to_string(),
                )
            })?;
        let consumer = described
            .consumer_description()
            .ok_or_else(|| fail("DescribeStreamConsumer", "no consumer in the answer".into()))?;
        let status = Some(consumer.consumer_status().clone());
        if status == Some(ConsumerStatus::Active) {
            return Ok(consumer.consumer_arn().to_string());
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(fail(
                "RegisterStreamConsumer",
                format!("still {status:?} after 2 minutes"),
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => return Err(fail("RegisterStreamConsumer", "shut down while waiting for the consumer".into())),
        }
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    TrimHorizon,
    /// LATEST, resolved once. `since_ms` is when reading began (saved as the shard's `started`
    /// checkpoint): should the position have to be found again before a record arrives (an
    /// expired iterator, a new subscription), it is AT_TIMESTAMP `since_ms`, so records that
    /// arrived in between are not skipped.
    Latest {
        since_ms: i64,
    },
    From(Checkpoint),
}

impl Resume {
    /// The position a reader of `Latest` falls back to once LATEST was resolved.
    fn pinned(&self) -> Option<Resume> {
        match self {
            Resume::Latest { since_ms } => Some(Resume::From(Checkpoint::Started {
                started_at_ms: *since_ms,
            })),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct EfoSettings {
    consumer_arn: String,
    heartbeat: Duration,
    resubscribe: Duration,
}

struct Reader {
    client: Client,
    stream: Stream,
    shard: String,
    reader: u64,
    source: Arc<str>,
    max_records: u32,
    idle: Duration,
    efo: Option<EfoSettings>,
    /// Set by discovery once ListShards shows the shard closed.
    closed: Arc<AtomicBool>,
    acker: Acker,
    events: mpsc::UnboundedSender<Event>,
    tokens: Arc<AtomicU64>,
    ctx: SourceContext,
}

/// Back-off with jitter: a random wait between half of `base` and `base`.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// What one read of a shard gave.
struct Fetched {
    records: Vec<aws_sdk_kinesis::types::Record>,
    millis_behind: Option<i64>,
    /// The shard is closed and this was its last read.
    ended: bool,
    children: Vec<(String, Vec<String>)>,
}

/// Polling reads: GetRecords from a shard iterator.
struct Polling {
    iterator: Option<String>,
    backoff: Duration,
    last_call: tokio::time::Instant,
    /// The wait before the next call, after empty responses: the idle interval, doubled on
    /// every further empty response up to [`MAX_IDLE_FACTOR`] times it, so that idle shards
    /// cost fewer calls while a busy one is read back to back.
    idle_wait: Option<Duration>,
}

const MAX_IDLE_FACTOR: u32 = 4;

/// Enhanced fan-out reads: events of a SubscribeToShard subscription.
struct Fanout {
    settings: EfoSettings,
    subscription: Option<(
        aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
        tokio::time::Instant,
    )>,
    /// Where the last event left off; the next subscription starts after it.
    continuation: Option<String>,
    backoff: Duration,
    last_subscribe: Option<tokio::time::Instant>,
    last_probe: Option<tokio::time::Instant>,
    /// What LATEST means after the first subscription: the time reading began.
    pin: Option<Resume>,
    /// A subscription was attempted: LATEST has been resolved once.
    positioned: bool,
}

impl Reader {
    async fn iterator(&self, resume: &Resume) -> Result<Option<String>, SourceError> {
        let mut req = self.client.get_shard_iterator().shard_id(&self.shard);
        req = if self.stream.is_arn {
            req.stream_arn(&self.stream.id)
        } else {
            req.stream_name(&self.stream.id)
        };
        req = match resume {
            Resume::Latest { .. } => req.shard_iterator_type(ShardIteratorType::Latest),
            Resume::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Resume::From(Checkpoint::Started { started_at_ms }) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(AwsDateTime::from_millis(*started_at_ms)),
            // Inside an aggregate, re-read it and skip the user records already delivered.
            Resume::From(Checkpoint::At {
                sequence,
                sub_sequence: Some(_),
            }) => req
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(sequence),
            Resume::From(Checkpoint::At { sequence, .. }) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
            Resume::From(Checkpoint::End { .. }) => return Ok(None),
        };
        let mut backoff = MIN_CALL_GAP;
        loop {
            let call = req.clone().send();
            let sent = tokio::select! {
                r = call => r,
                _ = self.ctx.shutdown.cancelled() => return Ok(None),
            };
            match sent {
                Ok(out) => return Ok(out.shard_iterator),
                Err(e) if of_another_stream(e.code(), e.message()) => {
                    self.recreated();
                    return Ok(None);
                }
                Err(e) if retryable(e.code(), e.as_service_error().is_none()) => {
                    tracing::warn!(shard = %self.shard, error = %DisplayErrorContext(&e), "GetShardIterator failed; retrying");
                    if !self.pause(jittered(backoff)).await {
                        return Ok(None);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    return Err(SourceError::Kinesis(format!(
                        "GetShardIterator {}/{}: {}",
                        self.stream.id,
                        self.shard,
                        DisplayErrorContext(&e)
                    )))
                }
            }
        }
    }

    /// Tells the coordinator that Kinesis refused this reader's position as not of this
    /// stream; the reader then ends.
    fn recreated(&self) {
        tracing::warn!(stream = %self.stream.id, shard = %self.shard, "Kinesis refused the checkpoint as not of this stream: it was deleted and created again");
        let _ = self.events.send(Event::Recreated {
            shard: self.shard.clone(),
            reader: self.reader,
        });
    }

    /// Sleeps unless stopped first; `false` when stopped.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.ctx.shutdown.cancelled() => false,
        }
    }

    async fn run(self, mut resume: Resume) -> Result<(), SourceError> {
        // LATEST is resolved once. Should the position have to be found again before a record
        // arrives (an expired iterator, a new subscription), it is the time reading began, so
        // records that arrived in between are not skipped.
        let pinned = resume.pinned();
        let mut skip = None;
        let mut polling = Polling {
            iterator: None,
            backoff: MIN_CALL_GAP,
            last_call: tokio::time::Instant::now() - MIN_CALL_GAP,
            idle_wait: None,
        };
        let mut fanout = self.efo.clone().map(|settings| Fanout {
            settings,
            subscription: None,
            continuation: None,
            backoff: MIN_CALL_GAP,
            last_subscribe: None,
            last_probe: None,
            pin: pinned.clone(),
            positioned: false,
        });
        if let (Some(pin), None) = (&pinned, &fanout) {
            // Polling: LATEST is resolved now, and the pin stands for it from here on.
            match self.iterator(&resume).await? {
                Some(it) => polling.iterator = Some(it),
                None => return Ok(()),
            }
            resume = pin.clone();
        }
        loop {
            let fetched = match &mut fanout {
                Some(f) => self.next_event(f, &resume, &mut skip).await?,
                None => self.next_records(&mut polling, &resume, &mut skip).await?,
            };
            let Some(Fetched {
                records: fetched,
                millis_behind,
                ended,
                children,
            }) = fetched
            else {
                return Ok(());
            };
            let now = self.ctx.clock.now_ms();
            let newest = fetched
                .last()
                .and_then(|r| r.approximate_arrival_timestamp())
                .and_then(|t| t.to_millis().ok());
            let bytes: usize = fetched.iter().map(|r| r.data.as_ref().len()).sum();
            self.ctx.stats.shard(&self.source, |m| {
                m.records += fetched.len() as u64;
                m.bytes += bytes as u64;
                m.millis_behind_latest = millis_behind;
                if let Some(arrival) = newest {
                    m.iterator_age_ms = Some((now - arrival).max(0));
                }
            });
            self.convert(fetched, &mut skip, &mut resume).await?;
            if ended {
                let _ = self.events.send(Event::Ended {
                    shard: self.shard.clone(),
                    reader: self.reader,
                    children,
                });
                return Ok(());
            }
        }
    }

    /// Polling: the next GetRecords response; `None` once stopped.
    async fn next_records(
        &self,
        p: &mut Polling,
        resume: &Resume,
        skip: &mut Option<(String, u64)>,
    ) -> Result<Option<Fetched>, SourceError> {
        loop {
            let iterator = match p.iterator.take() {
                Some(it) => it,
                None => match self.iterator(resume).await? {
                    Some(it) => {
                        *skip = skip_of(resume);
                        it
                    }
                    None => return Ok(None),
                },
            };
            if let Some(wait) = p.idle_wait {
                if !self.pause(wait).await {
                    return Ok(None);
                }
            }
            let gap =
                (p.last_call + MIN_CALL_GAP).saturating_duration_since(tokio::time::Instant::now());
            if !self.pause(gap).await {
                return Ok(None);
            }
            p.last_call = tokio::time::Instant::now();
            // Raced with stop: a call stuck on a dead connection must not hold up shutdown, and
            // a response dropped unread emitted nothing.
            let call = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .limit(self.max_records as i32)
                .send();
            let response = tokio::select! {
                r = call => r,
                _ = self.ctx.shutdown.cancelled() => return Ok(None),
            };
            match response {
                Ok(r) => {
                    p.backoff = MIN_CALL_GAP;
                    p.idle_wait = match (r.records.is_empty(), p.idle_wait) {
                        (false, _) => None,
                        (true, None) => Some(self.idle),
                        (true, Some(w)) => Some((w * 2).min(self.idle * MAX_IDLE_FACTOR)),
                    };
                    let ended = r.next_shard_iterator.is_none();
                    p.iterator = r.next_shard_iterator;
                    let children = r
                        .child_shards
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| (c.shard_id, c.parent_shards))
                        .collect();
                    return Ok(Some(Fetched {
                        records: r.records,
                        millis_behind: r.millis_behind_latest,
                        ended,
                        children,
                    }));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_expired_iterator_exception()) =>
                {
                    tracing::info!(shard = %self.shard, "Shard iterator expired; getting a new one from the last position read");
                }
                Err(e) if retryable(e.code(), e.as_service_error().is_none()) => {
                    tracing::warn!(shard = %self.shard, error = %DisplayErrorContext(&e), "GetRecords failed; backing off");
                    p.iterator = Some(iterator);
                    p.idle_wait = None;
                    if !self.pause(jittered(p.backoff)).await {
                        return Ok(None);
                    }
                    p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    return Err(SourceError::Kinesis(format!(
                        "GetRecords {}/{}: {}",
                        self.stream.id,
                        self.shard,
                        DisplayErrorContext(&e)
                    )))
                }
            }
        }
    }

    /// Where a new subscription starts: after the last event's continuation number, else at
    /// the resume point (and the skip that goes with it).
    fn starting_position(
        &self,
        f: &Fanout,
        resume: &Resume,
        skip: &mut Option<(String, u64)>,
    ) -> Option<StartingPosition> {
        let resume = match (&f.pin, f.positioned, resume) {
            (Some(pin), true, Resume::Latest { .. }) => pin,
            _ => resume,
        };
        let (kind, sequence, at) = match (&f.continuation, resume) {
            (Some(c), _) => (
                ShardIteratorType::AfterSequenceNumber,
                Some(c.clone()),
                None,
            ),
            (None, Resume::Latest { .. }) => (ShardIteratorType::Latest, None, None),
            (None, Resume::TrimHorizon) => (ShardIteratorType::TrimHorizon, None, None),
            (None, Resume::From(Checkpoint::Started { started_at_ms })) => (
                ShardIteratorType::AtTimestamp,
                None,
                Some(AwsDateTime::from_millis(*started_at_ms)),
            ),
            (
                None,
                Resume::From(Checkpoint::At {
                    sequence,
                    sub_sequence: Some(_),
                }),
            ) => (
                ShardIteratorType::AtSequenceNumber,
                Some(sequence.clone()),
                None,
            ),
            (None, Resume::From(Checkpoint::At { sequence, .. })) => (
                ShardIteratorType::AfterSequenceNumber,
                Some(sequence.clone()),
                None,
            ),
            (None, Resume::From(Checkpoint::End { .. })) => return None,
        };
        *skip = match f.continuation {
            Some(_) => None,
            None => skip_of(resume),
        };
        Some(
            StartingPosition::builder()
                .r#type(kind)
                .set_sequence_number(sequence)
                .set_timestamp(at)
                .build()
                .expect("type is set"),
        )
    }

    /// Enhanced fan-out: the next event with records (or an empty one, which still reports
    /// progress); re-subscribes when a subscription ends, goes silent or grows old. `None` once
    /// stopped.
    async fn next_event(
        &self,
        f: &mut Fanout,
        resume: &Resume,
        skip: &mut Option<(String, u64)>,
    ) -> Result<Option<Fetched>, SourceError> {
        loop {
            let stale = f
                .subscription
                .as_ref()
                .is_some_and(|(_, since)| since.elapsed() >= f.settings.resubscribe);
            if f.subscription.is_none() || stale {
                f.subscription = None;
                if let Some(last) = f.last_subscribe {
                    let wait = (last + RESUBSCRIBE_GAP)
                        .saturating_duration_since(tokio::time::Instant::now());
                    if !self.pause(wait).await {
                        return Ok(None);
                    }
                }
                let Some(position) = self.starting_position(f, resume, skip) else {
                    return Ok(None);
                };
                f.positioned = true;
                f.last_subscribe = Some(tokio::time::Instant::now());
                let call = self
                    .client
                    .subscribe_to_shard()
                    .consumer_arn(&f.settings.consumer_arn)
                    .shard_id(&self.shard)
                    .starting_position(position)
                    .send();
                let subscribed = tokio::select! {
                    r = call => r,
                    _ = self.ctx.shutdown.cancelled() => return Ok(None),
                };
                match subscribed {
                    Ok(out) => {
                        tracing::debug!(shard = %self.shard, "Subscribed");
                        f.subscription = Some((out, tokio::time::Instant::now()));
                    }
                    Err(e) if of_another_stream(e.code(), e.message()) => {
                        self.recreated();
                        return Ok(None);
                    }
                    Err(e)
                        if retryable(e.code(), e.as_service_error().is_none())
                            || e.as_service_error()
                                .is_some_and(|s| s.is_resource_in_use_exception()) =>
                    {
                        tracing::warn!(shard = %self.shard, error = %brief(&e), "SubscribeToShard failed; retrying");
                        if !self.pause(jittered(f.backoff)).await {
                            return Ok(None);
                        }
                        f.backoff = (f.backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                    Err(e) => {
                        return Err(SourceError::Kinesis(format!(
                            "SubscribeToShard {}/{}: {}",
                            self.stream.id,
                            self.shard,
                            DisplayErrorContext(&e)
                        )))
                    }
                }
            }
            let (subscription, _) = f.subscription.as_mut().expect("subscribed above");
            let received = tokio::select! {
                r = tokio::time::timeout(f.settings.heartbeat, subscription.event_stream.recv()) => r,
                _ = self.ctx.shutdown.cancelled() => return Ok(None),
            };
            let event = match received {
                Err(_) => {
                    tracing::warn!(shard = %self.shard, silent_for = ?f.settings.heartbeat, "Subscription went silent; subscribing again");
                    f.subscription = None;
                    if let Some(end) = self.probe_end(f, resume).await {
                        return Ok(Some(end));
                    }
                    continue;
                }
                // Kinesis ends every subscription after 5 minutes.
                Ok(Ok(None)) => {
                    f.subscription = None;
                    if let Some(end) = self.probe_end(f, resume).await {
                        return Ok(Some(end));
                    }
                    continue;
                }
                Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => e,
                Ok(Ok(Some(_))) => continue,
                Ok(Err(e))
                    if retryable(e.code(), e.as_service_error().is_none())
                        || matches!(
                            e.as_service_error(),
                            Some(
                                SubscribeToShardEventStreamError::ResourceInUseException(_)
                                    | SubscribeToShardEventStreamError::InternalFailureException(_)
                                    | SubscribeToShardEventStreamError::KmsThrottlingException(_)
                            )
                        ) =>
                {
                    tracing::warn!(shard = %self.shard, error = %brief(&e), "Subscription failed; subscribing again");
                    f.subscription = None;
                    if !self.pause(jittered(f.backoff)).await {
                        return Ok(None);
                    }
                    f.backoff = (f.backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Ok(Err(e)) => {
                    return Err(SourceError::Kinesis(format!(
                        "SubscribeToShard {}/{}: {}",
                        self.stream.id,
                        self.shard,
                        DisplayErrorContext(&e)
                    )))
                }
            };
            f.backoff = MIN_CALL_GAP;
            if !event.continuation_sequence_number.is_empty() {
                f.continuation = Some(event.continuation_sequence_number.clone());
            }
            let children: Vec<(String, Vec<String>)> = event
                .child_shards
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.shard_id, c.parent_shards))
                .collect();
            let mut ended = !children.is_empty();
            // Endpoints that never send ChildShards: once the shard is closed and the
            // subscription has nothing more, ask GetRecords whether this is the end.
            if !ended
                && event.records.is_empty()
                && self.closed.load(Ordering::Relaxed)
                && f.last_probe.is_none_or(|t| t.elapsed() >= END_PROBE_GAP)
            {
                f.last_probe = Some(tokio::time::Instant::now());
                ended = self.at_end(f, resume).await;
            }
            return Ok(Some(Fetched {
                records: event.records,
                millis_behind: Some(event.millis_behind_latest),
                ended,
                children,
            }));
        }
    }

    /// A subscription of a closed shard ended or went silent: if the shard has nothing more,
    /// the end (an empty, final read).
    async fn probe_end(&self, f: &mut Fanout, resume: &Resume) -> Option<Fetched> {
        if !self.closed.load(Ordering::Relaxed) {
            return None;
        }
        f.last_probe = Some(tokio::time::Instant::now());
        self.at_end(f, resume).await.then(|| Fetched {
            records: Vec::new(),
            millis_behind: None,
            ended: true,
            children: Vec::new(),
        })
    }

    /// Whether a closed shard has no records after the fan-out reader's position.
    async fn at_end(&self, f: &Fanout, resume: &Resume) -> bool {
        let position = match &f.continuation {
            Some(c) => Resume::From(Checkpoint::At {
                sequence: c.clone(),
                sub_sequence: None,
            }),
            None => resume.clone(),
        };
        let Ok(Some(iterator)) = self.iterator(&position).await else {
            return false;
        };
        let probe = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(1)
            .send();
        let answer = tokio::select! {
            r = probe => r,
            _ = self.ctx.shutdown.cancelled() => return false,
        };
        match answer {
            Ok(r) => r.records.is_empty() && r.next_shard_iterator.is_none(),
            Err(e) => {
                tracing::warn!(shard = %self.shard, error = %brief(&e), "End-of-shard probe failed");
                false
            }
        }
    }

    /// Turns Kinesis records into pipeline records (de-aggregating KPL aggregates) and sends
    /// them downstream in chunks of at most [`CHUNK_RECORDS`], each with its ack and the
    /// checkpoint after its last record; `resume` follows what was sent.
    async fn convert(
        &self,
        input: Vec<aws_sdk_kinesis::types::Record>,
        skip: &mut Option<(String, u64)>,
        resume: &mut Resume,
    ) -> Result<(), SourceError> {
        let mut chunk = Chunk::default();
        for k in input {
            let sequence = k.sequence_number().to_string();
            let arrival = k
                .approximate_arrival_timestamp()
                .and_then(|t| t.to_millis().ok())
                .unwrap_or_else(|| self.ctx.clock.now_ms());
            let key: Arc<str> = k.partition_key.unwrap_or_default().into();
            // Owned, so that a plain record's data moves into the pipeline without a copy, and
            // the user records of an aggregate are slices of it.
            let data = Bytes::from(k.data.into_inner());
            let base = |payload: Bytes, key: Arc<str>| {
                let mut r = Record::new(payload, self.source.clone(), arrival);
                r.partition_key = key;
                r.sequence_number = Some(sequence.clone());
                r
            };
            let after = |sub_sequence: Option<u64>| Checkpoint::At {
                sequence: sequence.clone(),
                sub_sequence,
            };
            // A resume point inside or at this record: its delivered part is skipped.
            let skip_to = match skip.take() {
                Some((seq, sub)) if seq == sequence => Some(sub),
                _ => None,
            };
            match kpl::deaggregate(&data) {
                // A checkpoint in the KCL's form (sub-sequence 0 of a plain record) includes it.
                Ok(None) if skip_to.is_some() => chunk.last = Some(after(None)),
                Ok(None) => {
                    chunk.records.push(base(data, key));
                    chunk.last = Some(after(None));
                }
                Ok(Some(users)) => {
                    let count = users.len() as u64;
                    for (sub, user) in users.into_iter().enumerate() {
                        let sub = sub as u64;
                        if skip_to.is_some_and(|s| sub <= s) {
                            continue;
                        }
                        let mut r = base(user.data, user.partition_key);
                        r.sub_sequence_number = Some(sub);
                        if let Some(h) = user.explicit_hash_key {
                            r.attributes
                                .push(("explicit_hash_key".into(), h.to_string()));
                        }
                        chunk.records.push(r);
                        if chunk.records.len() >= CHUNK_RECORDS && sub + 1 < count {
                            chunk.last = Some(after(Some(sub)));
                            self.send(std::mem::take(&mut chunk), resume).await?;
                        }
                    }
                    chunk.last = Some(after(count.checked_sub(1)));
                }
                Err(e) => {
                    let record = base(data, key);
                    chunk.failed.push(FailedRecord {
                        message: format!("{} #{sequence}: {e}", self.source),
                        record,
                        output_type: ErrorOutputType::SourceFailed,
                        code: e.code().into(),
                        stage: "source".into(),
                        attempts: 1,
                        failed_at_ms: self.ctx.clock.now_ms(),
                    });
                    chunk.last = Some(after(None));
                }
            }
            if chunk.records.len() >= CHUNK_RECORDS {
                self.send(std::mem::take(&mut chunk), resume).await?;
            }
        }
        self.send(chunk, resume).await
    }

    /// Sends a chunk downstream with one ack for its records (and its failed ones), after
    /// telling the coordinator where the shard resumes once the chunk is delivered.
    async fn send(&self, chunk: Chunk, resume: &mut Resume) -> Result<(), SourceError> {
        let Some(checkpoint) = chunk.last else {
            return Ok(());
        };
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        // The coordinator learns of the token before its ack can possibly resolve.
        let _ = self.events.send(Event::Emitted {
            shard: self.shard.clone(),
            reader: self.reader,
            token,
            checkpoint: checkpoint.clone(),
        });
        let ack = self.acker.ack(token);
        let (mut records, mut failed) = (chunk.records, chunk.failed);
        records.iter_mut().for_each(|r| r.ack = ack.clone());
        failed.iter_mut().for_each(|f| f.record.ack = ack.clone());
        drop(ack);
        if !self.ctx.fail(failed).await || !self.ctx.emit(records).await {
            return Err(SourceError::Kinesis(format!(
                "{}: the pipeline stopped downstream",
                self.shard
            )));
        }
        *resume = Resume::From(checkpoint);
        Ok(())
    }
}

/// Records of one read on their way downstream.
#[derive(Default)]
struct Chunk {
    records: Vec<Record>,
    failed: Vec<FailedRecord>,
    /// Where the shard resumes once this chunk (and every earlier one) is delivered.
    last: Option<Checkpoint>,
}

/// The user records of the aggregate at a resume point that were already delivered: the
/// iterator starts AT that aggregate, and these are skipped.
fn skip_of(resume: &Resume) -> Option<(String, u64)> {
    match resume {
        Resume::From(Checkpoint::At {
            sequence,
            sub_sequence: Some(sub),
        }) => Some((sequence.clone(), *sub)),
        _ => None,
    }
}

/// A service error as its code and message; anything else with its whole chain of causes.
fn brief<E, R>(e: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => s.to_string(),
        None => DisplayErrorContext(e).to_string(),
    }
}

/// Whether a failed call is worth retrying: everything but a request Kinesis calls invalid.
/// Throttling, server-side and transport errors, and also lapsed or missing credentials,
/// AccessDenied, a stream not found (it may be created again) and codes this release does not
/// know are retried with back-off: they are about the destination, not the records.
fn retryable(code: Option<&str>, transport: bool) -> bool {
    transport
        || !matches!(
            code,
            Some("InvalidArgumentException" | "ValidationException")
        )
}

/// Whether Kinesis refused a position as not of this stream: the error a checkpoint of a
/// stream that was deleted and created again gets.
fn of_another_stream(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidArgumentException")
        && message.is_some_and(|m| m.contains("did not come from this stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_keeps_its_stream_when_the_stream_cannot_be_described() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "p");
        let stream = Stream::new("clicks");
        let first = StreamIdentity {
            arn: "arn:aws:kinesis:us-east-1:000000000000:stream/clicks".into(),
            created_ms: 1_000,
        };
        let at = Checkpoint::At {
            sequence: "7".into(),
            sub_sequence: None,
        };
        save(&stream, &store, "shard-0", &at, Some(&first)).unwrap();
        // DescribeStreamSummary failed at start: the identity on disk is taken, and saved again.
        let mut unknown = None;
        let loaded = load(&stream, &store, "shard-0", &mut unknown).unwrap();
        assert_eq!(loaded, Some(at.clone()));
        assert_eq!(unknown.as_ref(), Some(&first));
        save(&stream, &store, "shard-0", &at, unknown.as_ref()).unwrap();
        // So a later incarnation is still told apart, and the old checkpoint set aside.
        let mut second = Some(StreamIdentity {
            created_ms: 2_000,
            ..first.clone()
        });
        assert_eq!(load(&stream, &store, "shard-0", &mut second).unwrap(), None);
        assert!(dir.path().join("p").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with("stream-1000")));
    }

    #[test]
    fn checkpoints_round_trip_in_their_documented_format() {
        let at = Checkpoint::At {
            sequence: "49680581342493285632077337212590733722758422410672734210".into(),
            sub_sequence: Some(2),
        };
        let text = serde_json::to_string(&at).unwrap();
        assert_eq!(
            text,
            r#"{"sequence":"49680581342493285632077337212590733722758422410672734210","sub_sequence":2}"#
        );
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), at);
        assert_eq!(
            serde_json::from_str::<Checkpoint>(r#"{"sequence":"1"}"#).unwrap(),
            Checkpoint::At {
                sequence: "1".into(),
                sub_sequence: None
            }
        );
        let end = Checkpoint::End { shard_end: true };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"shard_end":true}"#
        );
        let saved = Saved {
            position: Checkpoint::Started {
                started_at_ms: 1_764_000_000_000,
            },
            stream_arn: Some("arn:aws:kinesis:us-east-1:000000000000:stream/s".into()),
            stream_created_ms: Some(1_700_000_000_000),
        };
        let text = serde_json::to_string(&saved).unwrap();
        assert_eq!(
            text,
            r#"{"started_at_ms":1764000000000,"stream_arn":"arn:aws:kinesis:us-east-1:000000000000:stream/s","stream_created_ms":1700000000000}"#
        );
        let back: Saved = serde_json::from_str(&text).unwrap();
        assert_eq!(back.position, saved.position);
        // A checkpoint an older release saved has no stream fields, and still reads.
        let old: Saved = serde_json::from_str(r#"{"sequence":"7","sub_sequence":1}"#).unwrap();
        assert_eq!(old.stream_created_ms, None);
    }

    #[test]
    fn a_checkpoint_of_an_older_stream_incarnation_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "p");
        let stream = Stream::new("s");
        let old = StreamIdentity {
            arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
            created_ms: 1,
        };
        let new = StreamIdentity {
            created_ms: 2,
            ..old.clone()
        };
        let at = Checkpoint::At {
            sequence: "9".into(),
            sub_sequence: None,
        };
        save(&stream, &store, "shardId-0", &at, Some(&old)).unwrap();
        assert_eq!(
            load(&stream, &store, "shardId-0", &mut Some(old.clone())).unwrap(),
            Some(at.clone())
        );
        assert_eq!(
            load(&stream, &store, "shardId-0", &mut Some(new.clone())).unwrap(),
            None
        );
        assert!(dir.path().join("p/s_shardId-0.json.stream-1").exists());
        assert_eq!(
            load(&stream, &store, "shardId-0", &mut Some(new.clone())).unwrap(),
            None
        );
    }

    #[test]
    fn stream_names_come_from_arns() {
        let s = Stream::new("arn:aws:kinesis:us-east-1:000000000000:stream/clicks");
        assert!(s.is_arn);
        assert_eq!(s.name(), "clicks");
        assert_eq!(Stream::new("clicks").name(), "clicks");
    }
}

//! `kinesis`: reads a Kinesis data stream as the Kinesis Client Library does, with polling
//! consumers (GetRecords), through the official `aws-sdk-kinesis`.
//!
//! Invariants:
//! - **At least once.** Every chunk of records (one GetRecords response of one shard) carries an
//!   [`Ack`]; a shard's checkpoint moves to the end of a chunk only when that chunk and every
//!   earlier chunk of the shard are delivered (written by the sink, or by the error output). A
//!   restart resumes after the checkpoint, so records are never skipped; the ones after it may
//!   come again.
//! - **Parents first.** A shard whose parents (from ListShards' `ParentShardId` and
//!   `AdjacentParentShardId`) are still in the stream starts only once every parent is read to
//!   its end and checkpointed `SHARD_END`, so records of one partition key keep their order
//!   across splits and merges.
//! - **KPL.** Aggregated records become their user records, with sub-sequence numbers; the
//!   checkpoint remembers the sub-sequence number, and a resume skips the user records of a
//!   partly delivered aggregate that were delivered. A corrupt aggregate goes to the error output.
//!
//! Checkpoint format (one file per shard in the local store, key `<stream>/<shard id>`):
//! `{"sequence":"4968...","sub_sequence":2}` after a delivered record, `{"shard_end":true}` once
//! a closed shard is fully delivered.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::DateTime as AwsDateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::kpl;
use super::{SourceContext, SourceError};
use crate::ack::Acker;
use crate::checkpoint::{LocalStore, Tracker};
use crate::config::{KinesisSourceConfig, StartPosition};
use crate::record::{ErrorOutputType, FailedRecord, Record};

/// Kinesis allows five GetRecords calls per second per shard.
const MIN_CALL_GAP: Duration = Duration::from_millis(200);
/// Longest back-off after throttling or transient errors.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

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
}

/// Builds a client for the configured region and endpoint, with the standard credential chain
/// (environment, profile, ...) and rustls.
pub async fn client(region: Option<&str>, endpoint: Option<&str>) -> Client {
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
    Client::new(&loader.load().await)
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

#[derive(Debug, Clone)]
struct ShardInfo {
    parents: Vec<String>,
}

/// What shard readers tell the coordinator.
enum Event {
    /// A chunk was sent downstream with ack `token`; `checkpoint` is where to resume after it.
    Emitted {
        shard: String,
        token: u64,
        checkpoint: Checkpoint,
    },
    /// The shard is closed and every record of it was emitted.
    Ended { shard: String },
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Reading,
    /// Read to its end; waiting for the last acks before `SHARD_END` is saved.
    Draining,
    Done,
}

struct Shard {
    info: ShardInfo,
    state: State,
    tracker: Tracker<Checkpoint>,
}

/// Runs the source until shutdown, then waits for the records it emitted to be delivered (or
/// the pipeline to fail) and saves the final checkpoints.
pub(super) async fn run(
    config: KinesisSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    config.check().map_err(SourceError::Unsupported)?;
    let client = client(config.region.as_deref(), config.endpoint.as_deref()).await;
    let stream = Stream::new(&config.stream);
    let store = LocalStore::new(&ctx.state_dir, &ctx.pipeline);
    let (ack_tx, mut acks) = mpsc::unbounded_channel();
    let acker = Acker::new(ack_tx, ctx.poison.clone());
    let (event_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let tokens = Arc::new(AtomicU64::new(1));
    let mut shards: HashMap<String, Shard> = HashMap::new();
    let mut acks_of = Acks::default();
    // Readers stop on shutdown, or when one of them fails. They are never aborted: a reader
    // dropped while handing over a chunk would let that chunk's ack resolve as delivered.
    let stop = ctx.shutdown.child_token();
    let reader_ctx = SourceContext {
        shutdown: stop.clone(),
        ..ctx.clone()
    };
    let mut readers: JoinSet<Result<(), SourceError>> = JoinSet::new();
    let mut discovery = tokio::time::interval(config.discovery_interval.0);
    let mut failure = None;

    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = discovery.tick() => {
                match list_shards(&client, &stream).await {
                    Ok(listed) => {
                        for (id, info) in listed {
                            shards.entry(id.clone()).or_insert_with(|| Shard {
                                info,
                                state: State::Waiting,
                                tracker: Tracker::default(),
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(stream = %stream.id, error = %e, "ListShards failed; retrying at the next discovery");
                        continue;
                    }
                }
                if let Err(e) = start_ready(&config, &reader_ctx, &client, &stream, &store, &acker, &event_tx, &tokens, &mut shards, &mut readers) {
                    failure = Some(e);
                    break;
                }
            }
            Some(event) = events.recv() => match event {
                Event::Emitted { shard, token, checkpoint } => {
                    acks_of.emitted(&stream, &store, &mut shards, shard, token, checkpoint)?;
                }
                Event::Ended { shard } => {
                    if let Some(s) = shards.get_mut(&shard) {
                        s.state = State::Draining;
                    }
                    finish_drained(&stream, &store, &mut shards)?;
                    // Children may be startable now, and ListShards may not show them yet.
                    discovery.reset_immediately();
                }
            },
            Some(resolved) = acks.recv() => {
                acks_of.resolved(&stream, &store, &mut shards, resolved.token, resolved.delivered)?;
                if finish_drained(&stream, &store, &mut shards)? {
                    discovery.reset_immediately();
                }
            }
            Some(done) = readers.join_next(), if !readers.is_empty() => {
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
    while let Some(done) = readers.join_next().await {
        if let (Ok(Err(e)), None) = (done, &failure) {
            failure = Some(e);
        }
    }
    drop(acker);
    drop(event_tx);
    drop(reader_ctx);
    while let Some(event) = events.recv().await {
        if let Event::Emitted {
            shard,
            token,
            checkpoint,
        } = event
        {
            acks_of.emitted(&stream, &store, &mut shards, shard, token, checkpoint)?;
        }
    }
    let SourceContext { out, errors, .. } = ctx;
    drop(out);
    drop(errors);
    while let Some(resolved) = acks.recv().await {
        acks_of.resolved(
            &stream,
            &store,
            &mut shards,
            resolved.token,
            resolved.delivered,
        )?;
    }
    finish_drained(&stream, &store, &mut shards)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Which shard each outstanding ack belongs to. Readers announce a chunk before they send it,
/// but the announcement and the ack travel on different channels, so an ack can arrive first:
/// it waits in `early` until its chunk is announced.
#[derive(Default)]
struct Acks {
    shard_of: HashMap<u64, String>,
    early: HashMap<u64, bool>,
}

impl Acks {
    fn emitted(
        &mut self,
        stream: &Stream,
        store: &LocalStore,
        shards: &mut HashMap<String, Shard>,
        shard: String,
        token: u64,
        checkpoint: Checkpoint,
    ) -> Result<(), SourceError> {
        if let Some(s) = shards.get_mut(&shard) {
            s.tracker.push(token, checkpoint);
        }
        self.shard_of.insert(token, shard);
        match self.early.remove(&token) {
            Some(delivered) => self.resolved(stream, store, shards, token, delivered),
            None => Ok(()),
        }
    }

    /// Saves the checkpoint an ack lets its shard move to.
    fn resolved(
        &mut self,
        stream: &Stream,
        store: &LocalStore,
        shards: &mut HashMap<String, Shard>,
        token: u64,
        delivered: bool,
    ) -> Result<(), SourceError> {
        let Some(id) = self.shard_of.remove(&token) else {
            self.early.insert(token, delivered);
            return Ok(());
        };
        let Some(shard) = shards.get_mut(&id) else {
            return Ok(());
        };
        if let Some(checkpoint) = shard.tracker.resolve(token, delivered) {
            save(stream, store, &id, &checkpoint)?;
        }
        Ok(())
    }
}

/// Marks drained shards done, saving `SHARD_END`; returns whether any was.
fn finish_drained(
    stream: &Stream,
    store: &LocalStore,
    shards: &mut HashMap<String, Shard>,
) -> Result<bool, SourceError> {
    let mut any = false;
    for (id, shard) in shards.iter_mut() {
        if shard.state == State::Draining && shard.tracker.outstanding() == 0 {
            save(stream, store, id, &Checkpoint::End { shard_end: true })?;
            shard.state = State::Done;
            tracing::info!(stream = %stream.id, shard = %id, "Shard read to its end");
            any = true;
        }
    }
    Ok(any)
}

fn key(stream: &Stream, shard: &str) -> String {
    format!("{}/{shard}", stream.name())
}

fn save(
    stream: &Stream,
    store: &LocalStore,
    shard: &str,
    c: &Checkpoint,
) -> Result<(), SourceError> {
    let text = serde_json::to_string(c).expect("checkpoints serialize");
    store
        .save(&key(stream, shard), &text)
        .map_err(|e| SourceError::Checkpoint(format!("cannot save checkpoint of {shard}: {e}")))
}

fn load(
    stream: &Stream,
    store: &LocalStore,
    shard: &str,
) -> Result<Option<Checkpoint>, SourceError> {
    let text = store
        .load(&key(stream, shard))
        .map_err(|e| SourceError::Checkpoint(format!("cannot read checkpoint of {shard}: {e}")))?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            SourceError::Checkpoint(format!("checkpoint of {shard} is unreadable ({e}): {t}"))
        })
    })
    .transpose()
}

/// Starts a reader for every waiting shard whose parents are done (or gone from the stream).
#[allow(clippy::too_many_arguments)]
fn start_ready(
    config: &KinesisSourceConfig,
    ctx: &SourceContext,
    client: &Client,
    stream: &Stream,
    store: &LocalStore,
    acker: &Acker,
    events: &mpsc::UnboundedSender<Event>,
    tokens: &Arc<AtomicU64>,
    shards: &mut HashMap<String, Shard>,
    readers: &mut JoinSet<Result<(), SourceError>>,
) -> Result<(), SourceError> {
    let mut done: HashSet<String> = shards
        .iter()
        .filter(|(_, s)| s.state == State::Done)
        .map(|(id, _)| id.clone())
        .collect();
    let known: HashSet<String> = shards.keys().cloned().collect();
    let waiting: Vec<String> = shards
        .iter()
        .filter(|(_, s)| s.state == State::Waiting)
        .map(|(id, _)| id.clone())
        .collect();
    for id in waiting {
        let shard = shards.get_mut(&id).expect("listed above");
        let saved = load(stream, store, &id)?;
        if saved == Some(Checkpoint::End { shard_end: true }) {
            shard.state = State::Done;
            done.insert(id);
            continue;
        }
        let parents = &shard.info.parents;
        if !parents
            .iter()
            .all(|p| done.contains(p) || !known.contains(p))
        {
            continue;
        }
        let has_live_parent = parents.iter().any(|p| known.contains(p));
        let resume = match saved {
            Some(checkpoint) => Resume::From(checkpoint),
            // A child must be read from its start, or records between the parent's end and the
            // configured start position would be lost.
            None if has_live_parent => Resume::Start(StartPosition::TrimHorizon),
            None => Resume::Start(config.start.clone()),
        };
        shard.state = State::Reading;
        tracing::info!(stream = %stream.id, shard = %id, resume = ?resume, "Reading shard");
        let reader = Reader {
            client: client.clone(),
            stream: stream.clone(),
            shard: id.clone(),
            source: format!("kinesis:{}/{id}", stream.name()).into(),
            max_records: config.max_records,
            idle: config.idle_interval.0,
            acker: acker.clone(),
            events: events.clone(),
            tokens: tokens.clone(),
            ctx: ctx.clone(),
        };
        readers.spawn(reader.run(resume));
    }
    Ok(())
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
            out.push((s.shard_id().to_string(), ShardInfo { parents }));
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(out),
        }
    }
}

#[derive(Debug, Clone)]
enum Resume {
    Start(StartPosition),
    From(Checkpoint),
}

struct Reader {
    client: Client,
    stream: Stream,
    shard: String,
    source: Arc<str>,
    max_records: u32,
    idle: Duration,
    acker: Acker,
    events: mpsc::UnboundedSender<Event>,
    tokens: Arc<AtomicU64>,
    ctx: SourceContext,
}

/// Back-off with full jitter: a random wait up to `base`, which doubles up to [`MAX_BACKOFF`].
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.5..=1.0))
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
            Resume::Start(StartPosition::Latest) => {
                req.shard_iterator_type(ShardIteratorType::Latest)
            }
            Resume::Start(StartPosition::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            Resume::Start(StartPosition::AtTimestamp(at)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(AwsDateTime::from_millis(at.timestamp_millis())),
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
            match req.clone().send().await {
                Ok(out) => return Ok(out.shard_iterator),
                Err(e) if retryable(e.code(), e.as_service_error().is_none()) => {
                    tracing::warn!(shard = %self.shard, error = %DisplayErrorContext(&e), "GetShardIterator failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(jittered(backoff)) => {}
                        _ = self.ctx.shutdown.cancelled() => return Ok(None),
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

    async fn run(self, mut resume: Resume) -> Result<(), SourceError> {
        let Some(mut iterator) = self.iterator(&resume).await? else {
            return Ok(());
        };
        let mut skip = skip_of(&resume);
        let mut backoff = MIN_CALL_GAP;
        let mut last_call = tokio::time::Instant::now() - MIN_CALL_GAP;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(last_call + MIN_CALL_GAP) => {}
                _ = self.ctx.shutdown.cancelled() => return Ok(()),
            }
            last_call = tokio::time::Instant::now();
            let response = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .limit(self.max_records as i32)
                .send()
                .await;
            let response = match response {
                Ok(r) => {
                    backoff = MIN_CALL_GAP;
                    r
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_expired_iterator_exception()) =>
                {
                    tracing::info!(shard = %self.shard, "Shard iterator expired; getting a new one from the last position read");
                    match self.iterator(&resume).await? {
                        Some(it) => iterator = it,
                        None => return Ok(()),
                    }
                    skip = skip_of(&resume);
                    continue;
                }
                Err(e) if retryable(e.code(), e.as_service_error().is_none()) => {
                    tracing::warn!(shard = %self.shard, error = %DisplayErrorContext(&e), "GetRecords failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(jittered(backoff)) => {}
                        _ = self.ctx.shutdown.cancelled() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                Err(e) => {
                    return Err(SourceError::Kinesis(format!(
                        "GetRecords {}/{}: {}",
                        self.stream.id,
                        self.shard,
                        DisplayErrorContext(&e)
                    )))
                }
            };
            let aws_sdk_kinesis::operation::get_records::GetRecordsOutput {
                records: fetched,
                next_shard_iterator,
                millis_behind_latest,
                ..
            } = response;
            let empty = fetched.is_empty();
            let now = self.ctx.clock.now_ms();
            let newest = fetched
                .last()
                .and_then(|r| r.approximate_arrival_timestamp())
                .and_then(|t| t.to_millis().ok());
            let bytes: usize = fetched.iter().map(|r| r.data.as_ref().len()).sum();
            self.ctx.stats.shard(&self.source, |m| {
                m.records += fetched.len() as u64;
                m.bytes += bytes as u64;
                m.millis_behind_latest = millis_behind_latest;
                if let Some(arrival) = newest {
                    m.iterator_age_ms = Some((now - arrival).max(0));
                }
            });
            let (records, failed, last) = self.convert(fetched, &mut skip);
            if let Some(checkpoint) = last {
                let token = self.tokens.fetch_add(1, Ordering::Relaxed);
                // The coordinator learns of the token before its ack can possibly resolve.
                let _ = self.events.send(Event::Emitted {
                    shard: self.shard.clone(),
                    token,
                    checkpoint: checkpoint.clone(),
                });
                let ack = self.acker.ack(token);
                let mut records = records;
                let mut failed = failed;
                records.iter_mut().for_each(|r| r.ack = ack.clone());
                failed.iter_mut().for_each(|f| f.record.ack = ack.clone());
                drop(ack);
                if !self.ctx.fail(failed).await || !self.ctx.emit(records).await {
                    return Err(SourceError::Kinesis(format!(
                        "{}: the pipeline stopped downstream",
                        self.shard
                    )));
                }
                resume = Resume::From(checkpoint);
            }
            match next_shard_iterator {
                Some(next) => iterator = next,
                None => {
                    let _ = self.events.send(Event::Ended {
                        shard: self.shard.clone(),
                    });
                    return Ok(());
                }
            }
            if empty {
                tokio::select! {
                    _ = tokio::time::sleep(self.idle) => {}
                    _ = self.ctx.shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }

    /// Turns Kinesis records into pipeline records (de-aggregating KPL aggregates); returns
    /// them, the corrupt aggregates, and the checkpoint after the last one.
    fn convert(
        &self,
        input: Vec<aws_sdk_kinesis::types::Record>,
        skip: &mut Option<(String, u64)>,
    ) -> (Vec<Record>, Vec<FailedRecord>, Option<Checkpoint>) {
        let mut records = Vec::with_capacity(input.len());
        let mut failed = Vec::new();
        let mut last = None;
        for k in input {
            let sequence = k.sequence_number().to_string();
            let arrival = k
                .approximate_arrival_timestamp()
                .and_then(|t| t.to_millis().ok())
                .unwrap_or_else(|| self.ctx.clock.now_ms());
            let key = k.partition_key.unwrap_or_default();
            // Owned, so that a plain record's data moves into the pipeline without a copy.
            let data = k.data.into_inner();
            let base = |payload: Vec<u8>, key: String| {
                let mut r = Record::new(payload, self.source.clone(), arrival);
                r.partition_key = key;
                r.sequence_number = Some(sequence.clone());
                r
            };
            match kpl::deaggregate(&data) {
                Ok(None) => {
                    records.push(base(data, key));
                    last = Some(Checkpoint::At {
                        sequence: sequence.clone(),
                        sub_sequence: None,
                    });
                }
                Ok(Some(users)) => {
                    let skip_to = match skip.take() {
                        Some((seq, sub)) if seq == sequence => Some(sub),
                        _ => None,
                    };
                    let count = users.len() as u64;
                    for (sub, user) in users.into_iter().enumerate() {
                        let sub = sub as u64;
                        if skip_to.is_some_and(|s| sub <= s) {
                            continue;
                        }
                        let mut r = base(user.data, user.partition_key);
                        r.sub_sequence_number = Some(sub);
                        if let Some(h) = user.explicit_hash_key {
                            r.attributes.push(("explicit_hash_key".into(), h));
                        }
                        records.push(r);
                    }
                    last = Some(Checkpoint::At {
                        sequence: sequence.clone(),
                        sub_sequence: count.checked_sub(1),
                    });
                }
                Err(e) => {
                    let record = base(data, key);
                    failed.push(FailedRecord {
                        message: format!("{} #{sequence}: {e}", self.source),
                        record,
                        output_type: ErrorOutputType::SourceFailed,
                        code: "Kinesis.CorruptAggregate".into(),
                        stage: "source".into(),
                        attempts: 1,
                        failed_at_ms: self.ctx.clock.now_ms(),
                    });
                    last = Some(Checkpoint::At {
                        sequence: sequence.clone(),
                        sub_sequence: None,
                    });
                }
            }
        }
        (records, failed, last)
    }
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

/// Whether a failed call is worth retrying: throttling, server-side and transport errors.
fn retryable(code: Option<&str>, transport: bool) -> bool {
    transport
        || matches!(
            code,
            Some(
                "ProvisionedThroughputExceededException"
                    | "LimitExceededException"
                    | "InternalFailure"
                    | "InternalFailureException"
                    | "ServiceUnavailable"
                    | "ThrottlingException"
                    | "KMSThrottlingException"
            )
        )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn stream_names_come_from_arns() {
        let s = Stream::new("arn:aws:kinesis:us-east-1:000000000000:stream/clicks");
        assert!(s.is_arn);
        assert_eq!(s.name(), "clicks");
        assert_eq!(Stream::new("clicks").name(), "clicks");
    }
}

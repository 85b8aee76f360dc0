//! Shard readers: GetRecords polling and SubscribeToShard fan-out, KPL expansion, and chunks
//! of records sent downstream with their acks.

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
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::checkpoint::Checkpoint;
use super::coordinator::Event;
use super::kpl;
use super::shards::{of_another_stream, Stream};
use crate::ack::Acker;
use crate::aws::{brief, retryable};
use crate::batch::{BatchBuilder, Meta};
use crate::record::{ErrorOutputType, FailedRecord, Record};
use crate::source::{SourceContext, SourceError};

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

/// Registers the enhanced fan-out consumer (or finds it, if it exists) and waits until it is
/// active; returns its ARN.
pub(super) async fn register_consumer(
    client: &Client,
    stream: &Stream,
    name: &str,
    shutdown: &CancellationToken,
) -> Result<String, SourceError> {
    let fail = |what: &str, e: String| {
        SourceError::Service(
            "kinesis",
            format!("{what} (consumer `{name}` of {}): {e}", stream.id),
        )
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
pub(super) enum Resume {
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
    pub(super) fn pinned(&self) -> Option<Resume> {
        match self {
            Resume::Latest { since_ms } => Some(Resume::From(Checkpoint::Started {
                started_at_ms: *since_ms,
            })),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct EfoSettings {
    pub(super) consumer_arn: String,
    pub(super) heartbeat: Duration,
    pub(super) resubscribe: Duration,
}

pub(super) struct Reader {
    pub(super) client: Client,
    pub(super) stream: Stream,
    pub(super) shard: String,
    pub(super) reader: u64,
    pub(super) source: Arc<str>,
    pub(super) max_records: u32,
    pub(super) idle: Duration,
    pub(super) efo: Option<EfoSettings>,
    /// Set by discovery once ListShards shows the shard closed.
    pub(super) closed: Arc<AtomicBool>,
    pub(super) acker: Acker,
    pub(super) events: mpsc::UnboundedSender<Event>,
    pub(super) tokens: Arc<AtomicU64>,
    pub(super) ctx: SourceContext,
}

/// Back-off with jitter: a random wait between half of `base` and `base`.
pub(super) fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// What one read of a shard gave.
pub(super) struct Fetched {
    pub(super) records: Vec<aws_sdk_kinesis::types::Record>,
    pub(super) millis_behind: Option<i64>,
    /// The shard is closed and this was its last read.
    pub(super) ended: bool,
    pub(super) children: Vec<(String, Vec<String>)>,
}

/// Polling reads: GetRecords from a shard iterator.
pub(super) struct Polling {
    pub(super) iterator: Option<String>,
    pub(super) backoff: Duration,
    pub(super) last_call: tokio::time::Instant,
    /// The wait before the next call, after empty responses: the idle interval, doubled on
    /// every further empty response up to [`MAX_IDLE_FACTOR`] times it, so that idle shards
    /// cost fewer calls while a busy one is read back to back.
    pub(super) idle_wait: Option<Duration>,
}

pub(super) const MAX_IDLE_FACTOR: u32 = 4;

/// Enhanced fan-out reads: events of a SubscribeToShard subscription.
pub(super) struct Fanout {
    pub(super) settings: EfoSettings,
    pub(super) subscription: Option<(
        aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
        tokio::time::Instant,
    )>,
    /// Where the last event left off; the next subscription starts after it.
    pub(super) continuation: Option<String>,
    pub(super) backoff: Duration,
    pub(super) last_subscribe: Option<tokio::time::Instant>,
    pub(super) last_probe: Option<tokio::time::Instant>,
    /// What LATEST means after the first subscription: the time reading began.
    pub(super) pin: Option<Resume>,
    /// A subscription was attempted: LATEST has been resolved once.
    pub(super) positioned: bool,
}

impl Reader {
    pub(super) async fn iterator(&self, resume: &Resume) -> Result<Option<String>, SourceError> {
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
                    return Err(SourceError::Service(
                        "kinesis",
                        format!(
                            "GetShardIterator {}/{}: {}",
                            self.stream.id,
                            self.shard,
                            DisplayErrorContext(&e)
                        ),
                    ))
                }
            }
        }
    }

    /// Tells the coordinator that Kinesis refused this reader's position as not of this
    /// stream; the reader then ends.
    pub(super) fn recreated(&self) {
        tracing::warn!(stream = %self.stream.id, shard = %self.shard, "Kinesis refused the checkpoint as not of this stream: it was deleted and created again");
        let _ = self.events.send(Event::Recreated {
            shard: self.shard.clone(),
            reader: self.reader,
        });
    }

    /// Sleeps unless stopped first; `false` when stopped.
    pub(super) async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.ctx.shutdown.cancelled() => false,
        }
    }

    pub(super) async fn run(self, mut resume: Resume) -> Result<(), SourceError> {
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
    pub(super) async fn next_records(
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
                    return Err(SourceError::Service(
                        "kinesis",
                        format!(
                            "GetRecords {}/{}: {}",
                            self.stream.id,
                            self.shard,
                            DisplayErrorContext(&e)
                        ),
                    ))
                }
            }
        }
    }

    /// Where a new subscription starts: after the last event's continuation number, else at
    /// the resume point (and the skip that goes with it).
    pub(super) fn starting_position(
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
    pub(super) async fn next_event(
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
                        return Err(SourceError::Service(
                            "kinesis",
                            format!(
                                "SubscribeToShard {}/{}: {}",
                                self.stream.id,
                                self.shard,
                                DisplayErrorContext(&e)
                            ),
                        ))
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
                    return Err(SourceError::Service(
                        "kinesis",
                        format!(
                            "SubscribeToShard {}/{}: {}",
                            self.stream.id,
                            self.shard,
                            DisplayErrorContext(&e)
                        ),
                    ))
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
    pub(super) async fn probe_end(&self, f: &mut Fanout, resume: &Resume) -> Option<Fetched> {
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
    pub(super) async fn at_end(&self, f: &Fanout, resume: &Resume) -> bool {
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
    pub(super) async fn convert(
        &self,
        input: Vec<aws_sdk_kinesis::types::Record>,
        skip: &mut Option<(String, u64)>,
        resume: &mut Resume,
    ) -> Result<(), SourceError> {
        let mut chunk = self.chunk();
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
            // A resume point inside or at this record: its delivered part is skipped.
            let skip_to = match skip.take() {
                Some((seq, sub)) if seq == sequence => Some(sub),
                _ => None,
            };
            // The sub-sequence number the checkpoint names once this record is delivered (a
            // checkpoint in the KCL's form, sub-sequence 0 of a plain record, includes it).
            let last_sub = match kpl::deaggregate(&data) {
                Ok(None) if skip_to.is_some() => None,
                Ok(None) => {
                    chunk.records.push(
                        &data,
                        Meta {
                            key: &key,
                            sequence_number: Some(&sequence),
                            sub_sequence_number: None,
                            arrival_ms: arrival,
                        },
                    );
                    None
                }
                Ok(Some(users)) => {
                    let count = users.len() as u64;
                    for (sub, user) in users.into_iter().enumerate() {
                        let sub = sub as u64;
                        if skip_to.is_some_and(|s| sub <= s) {
                            continue;
                        }
                        chunk.records.push(
                            &user.data,
                            Meta {
                                key: &user.partition_key,
                                sequence_number: Some(&sequence),
                                sub_sequence_number: Some(sub),
                                arrival_ms: arrival,
                            },
                        );
                        if let Some(h) = user.explicit_hash_key {
                            chunk.records.attribute("explicit_hash_key", &h);
                        }
                        if chunk.records.len() >= CHUNK_RECORDS && sub + 1 < count {
                            chunk.last = Some(Checkpoint::At {
                                sequence: sequence.clone(),
                                sub_sequence: Some(sub),
                            });
                            self.send(std::mem::replace(&mut chunk, self.chunk()), resume)
                                .await?;
                        }
                    }
                    count.checked_sub(1)
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
                        details: None,
                    });
                    None
                }
            };
            // Set once per Kinesis record, moving its sequence number: no copy per record.
            chunk.last = Some(Checkpoint::At {
                sequence,
                sub_sequence: last_sub,
            });
            if chunk.records.len() >= CHUNK_RECORDS {
                self.send(std::mem::replace(&mut chunk, self.chunk()), resume)
                    .await?;
            }
        }
        self.send(chunk, resume).await
    }

    /// Sends a chunk downstream with one ack for its records (and its failed ones), after
    /// telling the coordinator where the shard resumes once the chunk is delivered.
    /// An empty chunk of this shard's records.
    fn chunk(&self) -> Chunk {
        let mut records = BatchBuilder::with_capacity(CHUNK_RECORDS, 0);
        records.set_source(self.source.clone());
        Chunk {
            records,
            failed: Vec::new(),
            last: None,
        }
    }

    pub(super) async fn send(&self, chunk: Chunk, resume: &mut Resume) -> Result<(), SourceError> {
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
        let (mut records, mut failed) = (chunk.records.finish(), chunk.failed);
        failed.iter_mut().for_each(|f| f.record.ack = ack.clone());
        records.set_ack(ack);
        if !self.ctx.fail(failed).await || !self.ctx.emit(records).await {
            return Err(SourceError::Service(
                "kinesis",
                format!("{}: the pipeline stopped downstream", self.shard),
            ));
        }
        *resume = Resume::From(checkpoint);
        Ok(())
    }
}

/// Records of one read on their way downstream.
pub(super) struct Chunk {
    pub(super) records: BatchBuilder,
    pub(super) failed: Vec<FailedRecord>,
    /// Where the shard resumes once this chunk (and every earlier one) is delivered.
    pub(super) last: Option<Checkpoint>,
}

/// The user records of the aggregate at a resume point that were already delivered: the
/// iterator starts AT that aggregate, and these are skipped.
pub(super) fn skip_of(resume: &Resume) -> Option<(String, u64)> {
    match resume {
        Resume::From(Checkpoint::At {
            sequence,
            sub_sequence: Some(sub),
        }) => Some((sequence.clone(), *sub)),
        _ => None,
    }
}

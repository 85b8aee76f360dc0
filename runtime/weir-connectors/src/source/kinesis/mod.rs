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
//! DynamoDB: the KCL's `checkpoint` and `checkpointSubSequenceNumber` (see [`leases`]).
//!
//! The parts: this file starts the source (clients, the checkpoint store, the fan-out consumer)
//! and runs the coordinator's loop; [`coordinator`] decides which shards are read and keeps
//! their checkpoints; [`reader`] reads one shard (polling or fan-out) and expands KPL
//! aggregates ([`kpl`]); [`shards`] describes the stream and lists its shards; [`checkpoint`]
//! is the local checkpoint format; [`leases`] the DynamoDB lease table. AWS plumbing shared
//! with the sinks is in [`crate::aws`].

mod checkpoint;
pub mod config;
mod coordinator;
pub mod kpl;
pub mod leases;
mod reader;
mod shards;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use aws_sdk_kinesis::Client;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use coordinator::{Acks, Coordinator, Event, Handles, Store};
use leases::LeaseTable;
use reader::register_consumer;
use shards::{describe, Stream};

use crate::ack::Acker;
use crate::aws::sdk_config;
use crate::checkpoint::LocalStore;
use crate::config::{ConsumerMode, KinesisSourceConfig, StoreKind};
use crate::source::{SourceContext, SourceError};

pub use checkpoint::Checkpoint;

/// Runs the source until shutdown, then waits for the records it emitted to be delivered (or
/// the pipeline to fail), saves the final checkpoints and gives its leases up.
pub(super) async fn run(
    config: KinesisSourceConfig,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    crate::config::Component::check(&config)
        .map_err(|e| SourceError::Unsupported(format!("kinesis source: {e}")))?;
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
                    Err(e) => { failure = Some(SourceError::Service("kinesis", format!("shard reader: {e}"))); break; }
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

super::runs_as_source!(KinesisSourceConfig, run);

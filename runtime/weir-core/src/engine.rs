//! The pipeline engine: source → batcher → processors → sink, with the error output beside.
//!
//! Every stage is connected to the next by a bounded channel, so a slow sink slows the source
//! down instead of filling memory. Records move as [`Batch`]es, column by column; a source's
//! chunk that fits the batch being filled goes on as it is, and one cut in two is sliced, its
//! data shared. Each stage is a task; its processors' calls (which block:
//! a guest call runs to its end) run on the process's [`StepPool`], a few threads shared by
//! every pipeline, so a process holds thousands of pipelines without a thread for each. Shutdown flows downstream: when the source stops (end of input, or the shutdown
//! token), each stage drains what it holds, closes its output, and the sink flushes its buffers.
//!
//! Time and the end of input reach the stages too: a step that asks for ticks
//! ([`Processor::tick_interval`]) is told the time and the watermark while no batch comes, and
//! every step is flushed ([`Processor::flush`]) when the input ends by itself (not when the
//! pipeline stops), so a stage holding windows can emit them without input.
//!
//! Invariant: every record the source emits is, when `run` returns Ok, written by the sink,
//! dropped on purpose by a processor, or written to the error output (possibly as part of a
//! record made from many, whose ack holds each of theirs).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::Poison;
use crate::clock::{sleep_until, Clock};
use serde::Deserialize;

use crate::batch::Batch;
use crate::pool::StepPool;
use crate::process::{Processed, Processor};
use crate::quota::CpuBudget;
use crate::record::FailedRecord;
use crate::sink::{Delivered, ErrorSink, MemoryBudget, Sink, SinkContext};
use crate::source::{Source, SourceContext};
use crate::stats::{Snapshot, Stats};
use crate::units::{ByteSize, HumanDuration};

/// How records are grouped into batches between the source and the processors.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Most records in a batch.
    #[serde(default = "default_batch_records")]
    pub records: usize,
    /// Most bytes of record data in a batch (a single larger record still makes a batch).
    #[serde(default = "default_batch_bytes")]
    pub bytes: ByteSize,
    /// How long a partial batch may wait for more records.
    #[serde(default = "default_linger")]
    pub linger: HumanDuration,
}

fn default_batch_records() -> usize {
    500
}
fn default_batch_bytes() -> ByteSize {
    ByteSize(4 << 20)
}
fn default_linger() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(100))
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            records: default_batch_records(),
            bytes: default_batch_bytes(),
            linger: default_linger(),
        }
    }
}

/// Batches buffered between two stages.
const CHANNEL_BATCHES: usize = 4;
/// How long a stopping pipeline waits for a step blocked in a call (one without a timeout of
/// its own) before the call is cut off and its records go to the error output.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything needed to run one pipeline, already built (modules loaded, instances started).
pub struct PipelinePlan {
    pub name: String,
    /// Where the source keeps its checkpoints.
    pub state_dir: std::path::PathBuf,
    pub source: Box<dyn Source>,
    pub batch: BatchConfig,
    pub processors: Vec<Box<dyn Processor>>,
    /// Where the records go ([`Collect`](crate::sink::Collect) keeps them in memory).
    pub sink: Box<dyn Sink>,
    pub errors: Box<dyn ErrorSink>,
    /// A copy of every source record, before processing.
    pub backup: Option<Box<dyn Sink>>,
    /// While it holds `true`, no record moves past the source (the source waits on the
    /// full channel); shutdown overrides it. `None`: never paused.
    pub paused: Option<tokio::sync::watch::Receiver<bool>>,
    /// New processors to run from the next batch boundary on (hot reload). `None`: the
    /// processors never change.
    pub swaps: Option<mpsc::Receiver<Swap>>,
    /// Time the processors of this pipeline may spend per second, shared with other pipelines
    /// (a tenant's CPU quota). `None`: no cap.
    pub cpu: Option<Arc<CpuBudget>>,
    /// Bytes every buffer of the pipeline may hold together (`[pipeline] buffer_memory`).
    pub memory: u64,
}

/// A new set of processors for a running pipeline. Batches the batcher handed on before the
/// swap finish on the old processors; every later batch runs on the new ones. `done` resolves
/// once every stage runs the new version, and the old processors are dropped.
pub struct Swap {
    pub processors: Vec<Box<dyn Processor>>,
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// What flows between the batcher and the stages: batches, and in band with them,
/// processor swaps (so a swap lands exactly between two batches).
enum Msg {
    Batch(Batch),
    Swap(Swap),
}

/// How a pipeline run went.
#[derive(Debug, Default)]
pub struct PipelineReport {
    pub name: String,
    pub stats: Snapshot,
    pub delivered: Delivered,
    pub errors: Delivered,
    pub backup: Delivered,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("pipeline {pipeline}: {message}")]
    Stage { pipeline: String, message: String },
}

/// Runs a pipeline until its source ends or `shutdown` is cancelled, then drains it.
pub async fn run(
    plan: PipelinePlan,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> Result<PipelineReport, EngineError> {
    let started = std::time::Instant::now();
    let name = plan.name.clone();
    let poison = Poison::default();
    // Stops this pipeline's source: on shutdown, or when the engine cannot finish building it.
    let stop = shutdown.child_token();
    let (chunk_tx, chunk_rx) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
    let (err_tx, err_rx) = mpsc::channel::<Vec<FailedRecord>>(CHANNEL_BATCHES * 4);
    let memory = Arc::new(MemoryBudget::new(plan.memory));
    let pipeline_dir = crate::checkpoint::LocalStore::pipeline_dir(&plan.state_dir, &name);
    // What every output's context shares; each gets its own health and undelivered directory.
    let sink_ctx = |errors: Option<mpsc::Sender<Vec<FailedRecord>>>,
                    health: Arc<crate::stats::Health>,
                    stats: Arc<Stats>,
                    output: &str| SinkContext {
        pipeline: name.clone(),
        clock: clock.clone(),
        stats,
        poison: poison.clone(),
        errors,
        shutdown: stop.clone(),
        health,
        memory: memory.clone(),
        undelivered: Some(pipeline_dir.join("undelivered").join(output)),
    };

    let source_task = tokio::spawn(plan.source.run(SourceContext {
        pipeline: name.clone(),
        out: chunk_tx,
        errors: err_tx.clone(),
        clock: clock.clone(),
        shutdown: stop.clone(),
        stats: stats.clone(),
        poison: poison.clone(),
        state_dir: plan.state_dir,
    }));

    // A failed stage stops the source too: a quiet source would otherwise never notice. A
    // stopping pipeline waits for blocked steps only so long.
    let (abort_tx, abort) = tokio::sync::watch::channel(false);
    let watcher = {
        let (poison, stop) = (poison.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = poison.wait() => stop.cancel(),
                _ = stop.cancelled() => {}
            }
            tokio::select! {
                _ = poison.wait() => {}
                _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
            }
            let _ = abort_tx.send(true);
        })
    };
    // The backup gets every chunk as the source emitted it. Both copies hold the chunk's
    // acks, so a checkpoint moves only once the backup and the sink both have the records.
    let (chunk_rx, backup_task) = match plan.backup {
        None => (chunk_rx, None),
        Some(config) => {
            let (tee_tx, tee_rx) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
            let (backup_tx, backup_rx) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
            let tee_poison = poison.clone();
            let mut chunks = chunk_rx;
            tokio::spawn(async move {
                while let Some(chunk) = chunks.recv().await {
                    if !tee_poison.send(&backup_tx, chunk.clone()).await
                        || !tee_poison.send(&tee_tx, chunk).await
                    {
                        return;
                    }
                }
            });
            // The backup's records are not the pipeline's output: its counters are its own.
            let ctx = sink_ctx(
                Some(err_tx.clone()),
                stats.backup_health.clone(),
                Arc::new(Stats::default()),
                "backup",
            );
            let task = tokio::spawn(config.run(backup_rx, ctx));
            (tee_rx, Some(task))
        }
    };
    let (batch_tx, batch_rx) = mpsc::channel::<Msg>(CHANNEL_BATCHES);
    let batcher_task = tokio::spawn(batcher(
        chunk_rx,
        batch_tx,
        plan.batch,
        poison.clone(),
        Controls {
            paused: plan.paused,
            swaps: plan.swaps,
        },
        stop.clone(),
    ));

    // One stage per processor (at least one, so a swap always has a stage to land on). A
    // swap may bring more processors than there are stages: the last stage runs the extra
    // ones after its own. Stages are tasks; their processors' calls run on the step pool.
    let (sink_tx, rx) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
    let count = plan.processors.len().max(1);
    let mut processors = plan.processors.into_iter();
    let mut input = batch_rx;
    let mut stages = Vec::new();
    for i in 0..count {
        let (output, next_rx) = if i + 1 == count {
            (Out::Sink(sink_tx.clone()), None)
        } else {
            let (tx, next) = mpsc::channel::<Msg>(CHANNEL_BATCHES);
            (Out::Next(tx), Some(next))
        };
        let stage = Stage {
            steps: processors.next().into_iter().collect(),
            abort: abort.clone(),
            output,
            errors: err_tx.clone(),
            clock: clock.clone(),
            stats: stats.clone(),
            poison: poison.clone(),
            cpu: plan.cpu.clone(),
            stop: stop.clone(),
            pool: StepPool::shared().clone(),
            label: String::new(),
            watermark_ms: i64::MIN,
        };
        let this_input =
            std::mem::replace(&mut input, next_rx.unwrap_or_else(|| mpsc::channel(1).1));
        stages.push(tokio::spawn(stage.run(this_input)));
    }
    drop(sink_tx);
    let ctx = sink_ctx(
        Some(err_tx.clone()),
        stats.sink_health.clone(),
        stats.clone(),
        "sink",
    );
    // From here the error output ends when the last processor and the sink are done.
    drop(err_tx);
    let sink_task = tokio::spawn(plan.sink.run(rx, ctx));
    let ctx = sink_ctx(None, stats.errors_health.clone(), stats.clone(), "errors");
    let errors_task = tokio::spawn(plan.errors.run(err_rx, ctx));

    let mut problems = Vec::new();
    match source_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("source: {e}")),
        Err(e) => problems.push(format!("source task: {e}")),
    }
    if let Err(e) = batcher_task.await {
        problems.push(format!("batcher: {e}"));
    }
    for stage in stages {
        match stage.await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => problems.push(message),
            Err(_) => problems.push("a processor stage panicked".into()),
        }
    }
    let mut report = PipelineReport {
        name: name.clone(),
        ..PipelineReport::default()
    };
    match sink_task.await {
        Ok(Ok(delivered)) => report.delivered = delivered,
        Ok(Err(e)) => problems.push(format!("sink: {e}")),
        Err(e) => problems.push(format!("sink task: {e}")),
    }
    if let Some(task) = backup_task {
        match task.await {
            Ok(Ok(delivered)) => report.backup = delivered,
            Ok(Err(e)) => problems.push(format!("backup: {e}")),
            Err(e) => problems.push(format!("backup task: {e}")),
        }
    }
    match errors_task.await {
        Ok(Ok(delivered)) => report.errors = delivered,
        Ok(Err(e)) => problems.push(format!("error output: {e}")),
        Err(e) => problems.push(format!("error output task: {e}")),
    }
    watcher.abort();
    report.stats = stats.snapshot();
    report.elapsed = started.elapsed();
    if problems.is_empty() {
        Ok(report)
    } else {
        poison.set();
        Err(EngineError::Stage {
            pipeline: name,
            message: problems.join("; "),
        })
    }
}

/// What may steer the batcher besides its input: a pause switch and processor swaps.
#[derive(Default)]
struct Controls {
    paused: Option<tokio::sync::watch::Receiver<bool>>,
    swaps: Option<mpsc::Receiver<Swap>>,
}

/// Regroups the source's chunks into batches of at most `records` records and `bytes` bytes;
/// a partial batch waits at most `linger` for more. A swap is a batch boundary: the partial
/// batch goes out first, on the old processors.
async fn batcher(
    mut input: mpsc::Receiver<Batch>,
    output: mpsc::Sender<Msg>,
    config: BatchConfig,
    poison: Poison,
    mut controls: Controls,
    stop: CancellationToken,
) {
    let send = |msg: Msg| poison.send(&output, msg);
    let mut pending = Pending::new(config.records.max(1));
    loop {
        let paused = controls
            .paused
            .as_ref()
            .is_some_and(|p| *p.borrow() && !stop.is_cancelled());
        if paused && pending.records > 0 && !send(Msg::Batch(pending.take())).await {
            return;
        }
        // Paused: take nothing until resumed or stopped; swaps still land.
        let chunk = tokio::select! {
            chunk = input.recv(), if !paused => chunk,
            _ = stop.cancelled(), if paused => continue,
            changed = async { controls.paused.as_mut().expect("checked").changed().await }, if controls.paused.is_some() => {
                if changed.is_err() {
                    controls.paused = None;
                }
                continue;
            }
            swap = async { controls.swaps.as_mut().expect("checked").recv().await }, if controls.swaps.is_some() => {
                match swap {
                    Some(swap) => {
                        if !land(swap, &mut pending, &output, &poison).await {
                            return;
                        }
                    }
                    None => controls.swaps = None,
                }
                continue;
            }
            _ = sleep_until(pending.deadline), if pending.deadline.is_some() && !paused => {
                if !send(Msg::Batch(pending.take())).await {
                    return;
                }
                continue;
            }
        };
        let Some(mut chunk) = chunk else { break };
        // The chunk is cut where the batch being filled is full; a chunk that fits whole (the
        // usual case: sources emit about a batch at a time) goes on as it is, uncopied.
        let mut from = 0;
        while from < chunk.len() {
            let offsets = chunk.offsets();
            let (mut to, mut count, mut bytes) = (from, pending.records, pending.bytes);
            while to < chunk.len() {
                let size = u64::from(offsets[to + 1] - offsets[to]);
                if count > 0 && (count >= pending.max_records || bytes + size > config.bytes.0) {
                    break;
                }
                (to, count, bytes) = (to + 1, count + 1, bytes + size);
            }
            if to > from {
                if pending.records == 0 {
                    pending.deadline = Some(tokio::time::Instant::now() + config.linger.0);
                }
                let part = if from == 0 && to == chunk.len() {
                    std::mem::take(&mut chunk)
                } else {
                    chunk.slice(from..to)
                };
                pending.add(part, bytes);
                from = to;
            }
            if from < chunk.len() {
                if !send(Msg::Batch(pending.take())).await {
                    return;
                }
                // A big chunk makes many batches: a swap waiting meanwhile lands at the next
                // boundary, not after the whole chunk.
                let waiting = controls.swaps.as_mut().and_then(|s| s.try_recv().ok());
                if let Some(swap) = waiting {
                    if !land(swap, &mut pending, &output, &poison).await {
                        return;
                    }
                }
            }
        }
        if pending.records >= pending.max_records && !send(Msg::Batch(pending.take())).await {
            return;
        }
    }
    if pending.records > 0 {
        send(Msg::Batch(pending.take())).await;
    }
}

/// Hands a swap on at a batch boundary: the partial batch first, on the old processors.
/// `false` if the next stage is gone.
async fn land(
    swap: Swap,
    pending: &mut Pending,
    output: &mpsc::Sender<Msg>,
    poison: &Poison,
) -> bool {
    if pending.records > 0 && !poison.send(output, Msg::Batch(pending.take())).await {
        return false;
    }
    poison.send(output, Msg::Swap(swap)).await
}

/// Where a stage sends what it made.
enum Out {
    Next(mpsc::Sender<Msg>),
    Sink(mpsc::Sender<Batch>),
}

/// One stage: runs its steps over each batch in turn, on the step pool.
struct Stage {
    steps: Vec<Box<dyn Processor>>,
    /// Turns true when blocked steps must give up (see [`SHUTDOWN_GRACE`]).
    abort: tokio::sync::watch::Receiver<bool>,
    output: Out,
    errors: mpsc::Sender<Vec<FailedRecord>>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    poison: Poison,
    cpu: Option<Arc<CpuBudget>>,
    /// Cancelled when the pipeline stops: input that ends then did not end by itself, and is
    /// not flushed.
    stop: CancellationToken,
    /// Where the steps' calls run (they block).
    pool: StepPool,
    /// The first step's name, for messages (see [`Stage::set_steps`]).
    label: String,
    /// The latest arrival time among the records this stage was given.
    watermark_ms: i64,
}

/// What a stage asks of its steps.
enum Work {
    /// A batch, through every step.
    Batch(Batch),
    /// Time passed: each step in turn emits, and the steps after it take what it emitted.
    Tick { watermark_ms: i64 },
    /// The input ended by itself: each step in turn gives up what it holds, likewise.
    Flush,
}

impl Stage {
    /// The shortest tick interval any step asks for.
    fn tick_interval(&self) -> Option<Duration> {
        // A zero interval would spin: it means no ticks.
        self.steps
            .iter()
            .filter_map(|s| s.tick_interval())
            .filter(|d| !d.is_zero())
            .min()
    }

    fn next_tick(&self) -> Option<tokio::time::Instant> {
        self.tick_interval()
            .map(|d| tokio::time::Instant::now() + d)
    }

    /// Takes `steps` as this stage's, each with the stop switch.
    fn set_steps(&mut self, steps: Vec<Box<dyn Processor>>) {
        self.steps = steps;
        for step in &mut self.steps {
            step.set_abort(self.abort.clone());
        }
        self.label = self
            .steps
            .first()
            .map_or("process".to_string(), |s| s.name().to_string());
    }

    async fn run(mut self, mut input: mpsc::Receiver<Msg>) -> Result<(), String> {
        let steps = std::mem::take(&mut self.steps);
        self.set_steps(steps);
        let mut tick_at = self.next_tick();
        loop {
            if tick_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                let watermark_ms = self.watermark_ms;
                self.work(Work::Tick { watermark_ms }).await?;
                tick_at = self.next_tick();
            }
            let msg = match tick_at {
                None => input.recv().await,
                Some(at) => tokio::select! {
                    msg = input.recv() => msg,
                    _ = tokio::time::sleep_until(at) => continue,
                },
            };
            let Some(msg) = msg else { break };
            match msg {
                Msg::Batch(batch) => {
                    if let Some(newest) = batch.newest_arrival_ms() {
                        self.watermark_ms = self.watermark_ms.max(newest);
                    }
                    self.work(Work::Batch(batch)).await?;
                }
                Msg::Swap(mut swap) => {
                    // This stage takes the first of the new processors (the last stage takes
                    // all that are left) and hands the rest on, behind the batches it sent.
                    let take = match self.output {
                        Out::Sink(_) => swap.processors.len(),
                        Out::Next(_) => swap.processors.len().min(1),
                    };
                    self.set_steps(swap.processors.drain(..take).collect());
                    match &self.output {
                        Out::Next(tx) => {
                            if !self.poison.send(tx, Msg::Swap(swap)).await {
                                return Err("process: the next stage stopped".into());
                            }
                        }
                        Out::Sink(_) => {
                            let _ = swap.done.send(());
                        }
                    }
                    tick_at = self.next_tick();
                }
            }
        }
        if !self.stop.is_cancelled() {
            self.work(Work::Flush).await?;
        }
        Ok(())
    }

    /// Runs `work` through the steps on the pool, and sends on what they made.
    async fn work(&mut self, work: Work) -> Result<(), String> {
        let stage = &self.label;
        let (records, failed) = match work {
            // Nothing to run: no pool round trip.
            Work::Batch(batch) if self.steps.is_empty() => (batch, Vec::new()),
            Work::Tick { .. } | Work::Flush if self.steps.is_empty() => return Ok(()),
            work => {
                if let Some(cpu) = &self.cpu {
                    // A budget in debt holds this stage back, not a pool worker.
                    loop {
                        let delay = cpu.delay();
                        if delay.is_zero() {
                            break;
                        }
                        tokio::time::sleep(delay.min(Duration::from_millis(250))).await;
                    }
                }
                let steps = std::mem::take(&mut self.steps);
                let (now_ms, stats, cpu) =
                    (self.clock.now_ms(), self.stats.clone(), self.cpu.clone());
                let ran = self
                    .pool
                    .run(move || run_steps(steps, work, now_ms, &stats, cpu.as_deref()))
                    .await;
                match ran {
                    Ok((steps, records, failed)) => {
                        self.steps = steps;
                        (records, failed)
                    }
                    Err(panicked) => {
                        // The steps (and what they held) are gone: nothing may count as
                        // delivered.
                        self.poison.set();
                        return Err(format!("{stage}: {panicked}"));
                    }
                }
            }
        };
        if !failed.is_empty() {
            Stats::add(&self.stats.records_failed, failed.len() as u64);
            if !self.poison.send(&self.errors, failed).await {
                return Err(format!("{stage}: the error output stopped"));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let sent = match &self.output {
            Out::Next(tx) => self.poison.send(tx, Msg::Batch(records)).await,
            Out::Sink(tx) => self.poison.send(tx, records).await,
        };
        if !sent {
            return Err(format!("{stage}: the sink stopped"));
        }
        Ok(())
    }
}

/// A stage's steps at work, on a pool worker: returns the steps, and the records and failed
/// records they made.
fn run_steps(
    mut steps: Vec<Box<dyn Processor>>,
    work: Work,
    now_ms: i64,
    stats: &Stats,
    cpu: Option<&CpuBudget>,
) -> (Vec<Box<dyn Processor>>, Batch, Vec<FailedRecord>) {
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let mut failed = Vec::new();
    // Runs `steps` over `records`, in order.
    let through = |steps: &mut [Box<dyn Processor>],
                   mut records: Batch,
                   out: &mut Vec<Batch>,
                   failed: &mut Vec<FailedRecord>| {
        for step in steps.iter_mut() {
            if records.is_empty() {
                break;
            }
            let processed = step.process(records, now_ms);
            account(stats, &processed);
            failed.extend(processed.failed);
            records = processed.records;
        }
        out.push(records);
    };
    match work {
        Work::Batch(batch) => through(&mut steps, batch, &mut out, &mut failed),
        Work::Tick { .. } | Work::Flush => {
            for i in 0..steps.len() {
                let (step, after) = steps[i..].split_first_mut().expect("i < len");
                let emitted = match work {
                    Work::Tick { watermark_ms } => step.tick(now_ms, watermark_ms),
                    _ => step.flush(now_ms),
                };
                account(stats, &emitted);
                failed.extend(emitted.failed);
                through(after, emitted.records, &mut out, &mut failed);
            }
        }
    }
    let spent = started.elapsed();
    Stats::add(&stats.process_nanos, spent.as_nanos() as u64);
    if let Some(cpu) = cpu {
        cpu.charge(spent);
    }
    (steps, Batch::concat(out), failed)
}

/// Counts what a step made of its input (or of a tick or a flush).
fn account(stats: &Stats, processed: &Processed) {
    Stats::add(&stats.records_dropped, processed.dropped as u64);
    Stats::add(&stats.records_undelivered, processed.abandoned as u64);
    Stats::add(&stats.fuel_used, processed.fuel_used);
}

/// The batch the batcher is filling: the parts it is made of, joined when it goes out.
struct Pending {
    parts: Vec<Batch>,
    records: usize,
    bytes: u64,
    /// When the batch goes out even if not full: `linger` after its first record.
    deadline: Option<tokio::time::Instant>,
    max_records: usize,
}

impl Pending {
    fn new(max_records: usize) -> Self {
        Pending {
            parts: Vec::new(),
            records: 0,
            bytes: 0,
            deadline: None,
            max_records,
        }
    }

    /// Adds `part`; `bytes` is the batch's size with it.
    fn add(&mut self, part: Batch, bytes: u64) {
        self.records += part.len();
        self.bytes = bytes;
        self.parts.push(part);
    }

    /// The batch; one made of a single part is that part, uncopied.
    fn take(&mut self) -> Batch {
        self.records = 0;
        self.bytes = 0;
        self.deadline = None;
        Batch::concat(std::mem::take(&mut self.parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize, len: usize) -> crate::record::Record {
        let mut r = crate::record::Record::new(vec![b'x'; len], "test".into(), 0);
        r.sequence_number = Some(n.to_string());
        r
    }

    fn chunk(records: impl Iterator<Item = crate::record::Record>) -> Batch {
        Batch::from(records.collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn batcher_cuts_by_count_and_bytes_and_keeps_order() {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let config = BatchConfig {
            records: 3,
            bytes: ByteSize(25),
            linger: HumanDuration(Duration::from_secs(60)),
        };
        let task = tokio::spawn(batcher(
            in_rx,
            out_tx,
            config,
            Poison::default(),
            Controls::default(),
            CancellationToken::new(),
        ));
        in_tx.send(chunk((0..4).map(|n| rec(n, 1)))).await.unwrap();
        in_tx.send(chunk((4..7).map(|n| rec(n, 10)))).await.unwrap();
        drop(in_tx);
        task.await.unwrap();
        let mut sizes = Vec::new();
        let mut seqs = Vec::new();
        while let Some(Msg::Batch(b)) = out_rx.recv().await {
            sizes.push(b.len());
            seqs.extend(b.iter().map(|r| r.sequence_number().unwrap().to_string()));
        }
        // 3 by count; then 1 + 10 + 10 bytes; the next 10 would pass 25 bytes.
        assert_eq!(sizes, vec![3, 3, 1]);
        assert_eq!(seqs, (0..7).map(|n| n.to_string()).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn batcher_sends_a_partial_batch_after_linger() {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let config = BatchConfig {
            records: 100,
            bytes: ByteSize(1 << 20),
            linger: HumanDuration(Duration::from_millis(200)),
        };
        tokio::spawn(batcher(
            in_rx,
            out_tx,
            config,
            Poison::default(),
            Controls::default(),
            CancellationToken::new(),
        ));
        in_tx.send(chunk([rec(0, 5)].into_iter())).await.unwrap();
        let Some(Msg::Batch(batch)) = tokio::time::timeout(Duration::from_secs(1), out_rx.recv())
            .await
            .expect("linger flushes")
        else {
            panic!("a batch")
        };
        assert_eq!(batch.len(), 1);
        drop(in_tx);
    }
}

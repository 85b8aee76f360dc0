//! The engine with components of a test's own, as SQL windows will use it: a stage that holds
//! records and emits one row for many (carrying all their acks), on a tick while no input comes,
//! and at the end of input. Nothing here knows AWS, Wasm or SQL: the engine takes any source,
//! processor and sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weir_core::ack::{Ack, Acker, Resolved};
use weir_core::batch::Batch;
use weir_core::clock::SystemClock;
use weir_core::engine::{self, BatchConfig, PipelinePlan};
use weir_core::process::{Processed, Processor};
use weir_core::record::{FailedRecord, Record};
use weir_core::sink::{BoxFuture, Collect, Delivered, Sink, SinkContext, SinkError};
use weir_core::source::{Source, SourceContext, SourceError};
use weir_core::stats::Stats;
use weir_core::units::{ByteSize, HumanDuration};

/// Emits `records` (arrival times 1000, 1001, ...) with acks, then waits for shutdown if
/// `linger`, else ends. Every ack resolution lands in `resolved`.
struct Numbers {
    records: usize,
    linger: bool,
    resolved: Arc<Mutex<Vec<Resolved>>>,
}

impl Source for Numbers {
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<Result<(), SourceError>> {
        Box::pin(async move {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let acker = Acker::new(tx, ctx.poison.clone());
            let chunk: Vec<Record> = (0..self.records)
                .map(|n| {
                    let mut r = Record::new(n.to_string(), "numbers".into(), 1000 + n as i64);
                    r.ack = acker.ack(n as u64);
                    r
                })
                .collect();
            ctx.emit(Batch::from(chunk)).await;
            if self.linger {
                ctx.shutdown.cancelled().await;
            }
            // The input ended: the channels downstream close (which flushes the stages), and
            // the source waits for its acks, as a checkpointing source does.
            drop(ctx);
            drop(acker);
            while let Some(r) = rx.recv().await {
                self.resolved.lock().unwrap().push(r);
            }
            Ok(())
        })
    }
}

/// Holds every record; emits one row, `sum=<n> watermark=<ms>`, carrying all their acks: on a
/// tick (with `tick`), or at the end of input.
struct Window {
    held: Vec<Record>,
    tick: Option<Duration>,
}

impl Window {
    fn row(&mut self, watermark_ms: i64) -> Processed {
        if self.held.is_empty() {
            return Processed::default();
        }
        let held = std::mem::take(&mut self.held);
        let mut row = Record::new(
            format!("sum={} watermark={watermark_ms}", held.len()),
            "window".into(),
            watermark_ms,
        );
        row.ack = Ack::merge(held.into_iter().map(|r| r.ack));
        Processed {
            records: Batch::from(vec![row]),
            ..Processed::default()
        }
    }
}

impl Processor for Window {
    fn name(&self) -> &str {
        "window"
    }
    fn process(&mut self, batch: Batch, _now_ms: i64) -> Processed {
        self.held.extend(batch.into_records());
        Processed::default()
    }
    fn tick_interval(&self) -> Option<Duration> {
        self.tick
    }
    fn tick(&mut self, _now_ms: i64, watermark_ms: i64) -> Processed {
        self.row(watermark_ms)
    }
    fn flush(&mut self, _now_ms: i64) -> Processed {
        self.row(-1)
    }
    fn stateful(&self) -> bool {
        true
    }
}

/// Keeps what it receives, and how many acks had resolved when each batch arrived.
#[derive(Clone, Default)]
struct Keep {
    rows: Arc<Mutex<Vec<(String, usize)>>>,
    resolved: Arc<Mutex<Vec<Resolved>>>,
}

impl Sink for Keep {
    fn run(
        self: Box<Self>,
        mut rx: mpsc::Receiver<Batch>,
        _ctx: SinkContext,
    ) -> BoxFuture<Result<Delivered, SinkError>> {
        Box::pin(async move {
            while let Some(batch) = rx.recv().await {
                for r in batch.iter() {
                    let resolved = self.resolved.lock().unwrap().len();
                    let data = String::from_utf8(r.data().to_vec()).unwrap();
                    self.rows.lock().unwrap().push((data, resolved));
                }
            }
            Ok(Delivered::default())
        })
    }
}

/// A pipeline of `records` numbers into a window (ticking every `tick`) into a [`Keep`]; the
/// sink to look into, and the acks as they resolve.
fn plan(
    records: usize,
    linger: bool,
    tick: Option<Duration>,
    dir: &std::path::Path,
) -> (PipelinePlan, Keep, Arc<Mutex<Vec<Resolved>>>) {
    let resolved = Arc::new(Mutex::new(Vec::new()));
    let sink = Keep {
        resolved: resolved.clone(),
        ..Keep::default()
    };
    let source = Numbers {
        records,
        linger,
        resolved: resolved.clone(),
    };
    let window = Window {
        held: Vec::new(),
        tick,
    };
    let plan = PipelinePlan {
        name: "window".into(),
        state_dir: dir.to_path_buf(),
        source: Box::new(source),
        batch: BatchConfig {
            records: 100,
            bytes: ByteSize(1 << 20),
            linger: HumanDuration(Duration::from_millis(5)),
        },
        processors: vec![Box::new(window)],
        sink: Box::new(sink.clone()),
        errors: Box::new(Collect::<FailedRecord>::default()),
        backup: None,
        paused: None,
        swaps: None,
        cpu: None,
        memory: 1 << 30,
    };
    (plan, sink, resolved)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_flushes_what_it_holds_when_the_input_ends_and_its_row_holds_every_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, sink, resolved) = plan(3, false, None, dir.path());
    let report = engine::run(
        plan,
        Arc::new(SystemClock),
        Arc::new(Stats::default()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.stats.records_in, 3);
    // One row for three records, made at the end of input; no ack had resolved before the
    // row reached the sink, and all three resolve, delivered, once it has it.
    assert_eq!(
        *sink.rows.lock().unwrap(),
        [("sum=3 watermark=-1".to_string(), 0)]
    );
    let mut tokens: Vec<(u64, bool)> = resolved
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.token, r.delivered))
        .collect();
    tokens.sort();
    assert_eq!(tokens, [(0, true), (1, true), (2, true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_emits_on_time_without_input_and_is_not_flushed_at_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, sink, resolved) = plan(2, true, Some(Duration::from_millis(20)), dir.path());
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(engine::run(
        plan,
        Arc::new(SystemClock),
        Arc::new(Stats::default()),
        shutdown.clone(),
    ));
    // The source is still running, with nothing more to say: the row comes from a tick, with
    // the watermark of the newest record.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.rows.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no tick came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        *sink.rows.lock().unwrap(),
        [("sum=2 watermark=1001".to_string(), 0)]
    );
    shutdown.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(sink.rows.lock().unwrap().len(), 1, "no flush at a stop");
    assert_eq!(resolved.lock().unwrap().len(), 2);
}

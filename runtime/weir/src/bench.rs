//! `weir bench`: throughput of the Wasm path against native code, measured in the same run.
//!
//! `wasm` compares, for batch sizes 1, 100 and 500 and 100-byte JSON records:
//! - the `redact` transform compiled natively (a [`Processor`] calling the `redact` crate) and as
//!   a guest (the `redact.wasm` component through the Wasm processor), and
//! - the `identity` guest against a native identity processor: the difference per record is the
//!   price of crossing the boundary (packing, copying in and out, unpacking).
//!
//! Each figure is the median of several samples of at least `min_records` records each.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_wasm::{Host, HostOptions, Settings};

use weir::batch::{Batch, BatchBuilder, Meta};
use weir::process::wasm::WasmProcessor;
use weir::process::{Processed, Processor};
use weir::record::{ErrorOutputType, FailedRecord, Record};

/// The `redact` transform, compiled into the host: the baseline.
pub struct NativeRedact {
    config: redact::Config,
}

impl NativeRedact {
    pub fn new(config_json: &str) -> Result<Self, String> {
        Ok(NativeRedact {
            config: redact::Config::from_json(config_json)?,
        })
    }
}

impl Processor for NativeRedact {
    fn name(&self) -> &str {
        "native-redact"
    }

    /// As the guest does: every record redacted into one output buffer, which becomes the
    /// batch's data. A record that fails fails the bench (it asserts none does).
    fn process(&mut self, mut batch: Batch, now_ms: i64) -> Processed {
        let mut data = Vec::with_capacity(batch.data_len());
        let mut ends = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        for r in batch.iter() {
            if let Err(message) = redact::redact(r.data(), &self.config, &mut data) {
                failed.push(FailedRecord {
                    record: r.to_record(),
                    output_type: ErrorOutputType::ProcessingFailed,
                    code: "Native.ProcessingFailed".into(),
                    message,
                    stage: "native-redact".into(),
                    attempts: 1,
                    failed_at_ms: now_ms,
                    details: None,
                });
            }
            ends.push(data.len() as u32);
        }
        if failed.is_empty() {
            batch
                .replace_data(data.into(), &ends)
                .expect("offsets of the data just written");
        }
        Processed {
            records: if failed.is_empty() {
                batch
            } else {
                Batch::default()
            },
            failed,
            ..Processed::default()
        }
    }
}

/// Returns every record as it is: the native twin of the `identity` guest.
pub struct NativeIdentity;

impl Processor for NativeIdentity {
    fn name(&self) -> &str {
        "native-identity"
    }

    fn process(&mut self, batch: Batch, _now_ms: i64) -> Processed {
        Processed {
            records: batch,
            ..Processed::default()
        }
    }
}

/// 100-byte JSON records with fields to redact.
pub fn sample_records(n: usize) -> Vec<Record> {
    let source: Arc<str> = "bench".into();
    (0..n)
        .map(|i| {
            let mut text = format!(
                r#"{{"id":{},"email":"user{:06}@example.com","ip":"10.0.{}.{}","page":"/p","pad":""}}"#,
                10_000_000 + i,
                i % 1_000_000,
                (i / 256) % 256,
                i % 256
            );
            let pad = 100usize.saturating_sub(text.len());
            text.insert_str(text.len() - 2, &"x".repeat(pad));
            let mut r = Record::new(text.into_bytes(), source.clone(), 0);
            r.partition_key = i.to_string().into();
            r.sequence_number = Some(i.to_string());
            r
        })
        .collect()
}

/// Runs `per_sample` batches through a processor; returns records per second.
fn sample(processor: &mut dyn Processor, batches: &[Batch], per_sample: usize) -> f64 {
    let inputs: Vec<Batch> = batches.iter().cycle().take(per_sample).cloned().collect();
    let count: usize = inputs.iter().map(Batch::len).sum();
    let started = Instant::now();
    for input in inputs {
        let out = processor.process(input, 0);
        assert!(
            out.failed.is_empty(),
            "bench records must not fail: {:?}",
            out.failed.first().map(|f| &f.message)
        );
        std::hint::black_box(out);
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Records per second through each processor at this batch size: the median of `samples`
/// samples of at least `min_records` records. Samples of the processors alternate, so that a
/// change in machine speed during the run hits them all alike.
pub fn measure(
    processors: &mut [&mut dyn Processor],
    records: &[Record],
    batch: usize,
    min_records: usize,
    samples: usize,
) -> Vec<f64> {
    let batches: Vec<Batch> = records
        .chunks(batch)
        .map(|c| Batch::from(c.to_vec()))
        .collect();
    let per_sample = min_records.div_ceil(batch);
    let mut rates = vec![Vec::with_capacity(samples); processors.len()];
    for p in processors.iter_mut() {
        // Warm up, so that first-call costs (instantiation, page faults) are not counted.
        std::hint::black_box(p.process(batches[0].clone(), 0));
    }
    for _ in 0..samples {
        for (p, r) in processors.iter_mut().zip(&mut rates) {
            r.push(sample(&mut **p, &batches, per_sample));
        }
    }
    rates.iter_mut().map(|r| median(r)).collect()
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub batch: usize,
    /// Records per second.
    pub native: f64,
    pub wasm: f64,
    pub native_identity: f64,
    pub identity: f64,
}

impl Row {
    /// What crossing into the guest and back adds per record, in nanoseconds: the identity
    /// guest's time per record less the native identity's (which pays for the same record
    /// handling around the call).
    pub fn boundary_ns(&self) -> f64 {
        1e9 / self.identity - 1e9 / self.native_identity
    }
}

/// Runs the Wasm-vs-native comparison with the guests in `modules` (`redact.wasm`,
/// `identity.wasm`).
pub fn wasm_vs_native(
    modules: &Path,
    batch_sizes: &[usize],
    min_records: usize,
    samples: usize,
) -> Result<Vec<Row>, String> {
    let host = Host::new(HostOptions::default()).map_err(|e| e.to_string())?;
    let config = r#"{"fields":["email","ip"]}"#;
    let start = |name: &str, config: &str| -> Result<WasmProcessor, String> {
        let plugin = host
            .load(&modules.join(name), false)
            .map_err(|e| format!("{e} (build the guests first: guests/build.sh)"))?;
        let settings = Settings {
            config_json: config.to_string(),
            label: "bench".into(),
            ..Settings::default()
        };
        plugin
            .runner(settings)
            .map(WasmProcessor::from_runner)
            .map_err(|e| e.to_string())
    };
    let mut guest = start("redact.wasm", config)?;
    let mut identity = start("identity.wasm", "{}")?;
    let mut native = NativeRedact::new(config)?;
    let records = sample_records(5_000);

    // The outputs must agree before their speeds are compared.
    let a = native
        .process(Batch::from(records[..10].to_vec()), 0)
        .records;
    let b = guest
        .process(Batch::from(records[..10].to_vec()), 0)
        .records;
    if a != b {
        return Err("native and guest redact disagree on the sample records".into());
    }

    let mut rows = Vec::new();
    for &batch in batch_sizes {
        let rates = measure(
            &mut [&mut native, &mut guest, &mut NativeIdentity, &mut identity],
            &records,
            batch,
            min_records,
            samples,
        );
        rows.push(Row {
            batch,
            native: rates[0],
            wasm: rates[1],
            native_identity: rates[2],
            identity: rates[3],
        });
    }
    Ok(rows)
}

/// Formats the rows as the table `weir bench wasm` prints.
pub fn format_rows(rows: &[Row]) -> String {
    let mut out = String::from(
        "batch  redact native   redact wasm  wasm/native | identity native  identity wasm  boundary ns/record\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{:<6} {:>9.0} r/s {:>9.0} r/s  {:>9.2}x | {:>11.0} r/s {:>10.0} r/s  {:>10.0}\n",
            r.batch,
            r.native,
            r.wasm,
            r.wasm / r.native,
            r.native_identity,
            r.identity,
            r.boundary_ns(),
        ));
    }
    out
}

/// Throughput of reading one pre-filled stream: a bare GetRecords loop and a Weir pipeline
/// (kinesis source, no processors) in the same run, in records per second.
#[derive(Debug, Clone, Copy)]
pub struct KinesisRow {
    pub bare: f64,
    pub weir: f64,
}

/// Fills a new stream on `endpoint` with `records` 100-byte records over `shards` shards, then
/// reads it `samples` times each way, alternating.
pub async fn kinesis(
    endpoint: &str,
    region: &str,
    records: usize,
    shards: i32,
    samples: usize,
) -> Result<Vec<KinesisRow>, String> {
    use aws_sdk_kinesis::error::DisplayErrorContext;
    use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};

    let client = weir::aws::kinesis_client(Some(region), Some(endpoint)).await;
    let stream = format!("weir-bench-{}", chrono::Utc::now().timestamp_millis());
    let err = |e: &dyn std::fmt::Display| e.to_string();
    client
        .create_stream()
        .stream_name(&stream)
        .shard_count(shards)
        .send()
        .await
        .map_err(|e| err(&DisplayErrorContext(&e)))?;
    loop {
        let d = client
            .describe_stream_summary()
            .stream_name(&stream)
            .send()
            .await
            .map_err(|e| err(&DisplayErrorContext(&e)))?;
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = sample_records(records);
    for chunk in data.chunks(500) {
        let entries = chunk
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&*r.partition_key)
                    .data(aws_sdk_kinesis::primitives::Blob::new(r.data.to_vec()))
                    .build()
                    .expect("key and data are set")
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(&stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| err(&DisplayErrorContext(&e)))?;
        if out.failed_record_count().unwrap_or(0) > 0 {
            return Err("the stream refused records while filling it".into());
        }
    }
    let mut rows = Vec::new();
    for _ in 0..samples {
        let bare = bare_loop(&client, &stream, records).await?;
        let weir = weir_pipeline(endpoint, region, &stream, records).await?;
        rows.push(KinesisRow { bare, weir });
    }
    let _ = client.delete_stream().stream_name(&stream).send().await;
    Ok(rows)
}

/// The baseline: every shard read from its start with back-to-back GetRecords calls.
async fn bare_loop(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: usize,
) -> Result<f64, String> {
    use aws_sdk_kinesis::error::DisplayErrorContext;
    use aws_sdk_kinesis::types::ShardIteratorType;

    let started = Instant::now();
    let listed = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    let mut tasks = tokio::task::JoinSet::new();
    for shard in listed.shards() {
        let (client, stream, shard) = (
            client.clone(),
            stream.to_string(),
            shard.shard_id().to_string(),
        );
        tasks.spawn(async move {
            let mut it = client
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?
                .shard_iterator
                .unwrap_or_default();
            let mut count = 0usize;
            loop {
                let r = client
                    .get_records()
                    .shard_iterator(&it)
                    .limit(10_000)
                    .send()
                    .await
                    .map_err(|e| DisplayErrorContext(&e).to_string())?;
                if r.records().is_empty() {
                    return Ok::<usize, String>(count);
                }
                count += r.records().len();
                std::hint::black_box(r.records());
                match r.next_shard_iterator() {
                    Some(next) => it = next.to_string(),
                    None => return Ok(count),
                }
            }
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.map_err(|e| e.to_string())??;
    }
    if total != records {
        return Err(format!(
            "the bare loop read {total} records, expected {records}"
        ));
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// The figure: the same stream through a pipeline with a kinesis source and no processors.
async fn weir_pipeline(
    endpoint: &str,
    region: &str,
    stream: &str,
    records: usize,
) -> Result<f64, String> {
    use weir::config::{KinesisSourceConfig, SourceConfig, StartPosition};
    use weir::engine::PipelinePlan;
    use weir::sink::Collect;
    use weir::units::HumanDuration;

    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut source = KinesisSourceConfig::new(stream);
    source.endpoint = Some(endpoint.to_string());
    source.region = Some(region.to_string());
    source.start = StartPosition::TrimHorizon;
    source.idle_interval = HumanDuration(Duration::from_millis(50));
    let plan = PipelinePlan {
        name: "bench".into(),
        state_dir: state.path().to_owned(),
        source: Box::new(SourceConfig::Kinesis(source)),
        batch: weir::config::BatchConfig::default(),
        processors: Vec::new(),
        sink: Box::new(Collect::<Record>::default()),
        errors: Box::new(Collect::<FailedRecord>::default()),
        backup: None,
        paused: None,
        swaps: None,
        cpu: None,
        memory: u64::MAX,
    };
    let stats = std::sync::Arc::new(weir::stats::Stats::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let run = tokio::spawn(weir::engine::run(
        plan,
        std::sync::Arc::new(weir::clock::SystemClock),
        stats.clone(),
        shutdown.clone(),
    ));
    while (stats.snapshot().records_out as usize) < records {
        if run.is_finished() {
            return Err("the pipeline stopped before reading the stream".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    run.await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(records as f64 / elapsed.as_secs_f64())
}

/// One row of the delivery benchmark.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub destination: &'static str,
    pub record_size: usize,
    pub records: usize,
    /// Records per second through the sink (buffering, object naming, durable writes).
    pub weir_rps: f64,
    pub weir_mbps: f64,
    /// The same bytes written raw to the same destination: one file write and sync, or one
    /// PutObject.
    pub raw_mbps: f64,
    /// The median over samples of weir's speed / the raw write's, each sample beside its own.
    pub ratio: f64,
}

/// Delivery throughput of the `file` sink (and the `s3` sink, given an S3 endpoint), for
/// 100-byte and 10-KiB records, beside the raw write speed of the same destination in the
/// same run. Samples alternate between the sink and the raw write; medians are reported.
pub async fn delivery(
    s3_endpoint: Option<&str>,
    dir: Option<&Path>,
    small_records: usize,
    large_records: usize,
    samples: usize,
) -> Result<Vec<DeliveryRow>, String> {
    use weir::config::objects::{ObjectOptions, RawObjectKeys, FILE_ERROR_PREFIX, S3_ERROR_PREFIX};
    use weir::config::{BufferConfig, FileSinkConfig, S3SinkConfig, SinkConfig};
    use weir::units::{ByteSize, HumanDuration};

    let options = |error_prefix: &str| {
        ObjectOptions::build(
            RawObjectKeys {
                prefix: "bench/".into(),
                buffer: BufferConfig {
                    size: ByteSize(64 << 20),
                    interval: HumanDuration(Duration::from_secs(900)),
                },
                ..RawObjectKeys::default()
            },
            error_prefix,
        )
        .expect("valid bench options")
    };
    let dir = match dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| e.to_string())?;
    let mut destinations: Vec<(&'static str, SinkConfig)> = vec![(
        "file",
        SinkConfig::File(FileSinkConfig {
            path: dir.path().join("sink"),
            objects: options(FILE_ERROR_PREFIX),
        }),
    )];
    let mut s3 = None;
    if let Some(endpoint) = s3_endpoint {
        let config = S3SinkConfig {
            bucket: "weir-bench".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint.to_string()),
            force_path_style: true,
            // One PutObject per object, as the raw write: the comparison is of Weir's own cost.
            multipart_threshold: 128 << 20,
            part_size: 8 << 20,
            objects: options(S3_ERROR_PREFIX),
        };
        let store = weir::sink::s3_store(&config).await;
        let _ = store
            .client
            .create_bucket()
            .bucket("weir-bench")
            .send()
            .await;
        s3 = Some(store);
        destinations.push(("s3", SinkConfig::S3(config)));
    }
    let mut rows = Vec::new();
    for (destination, config) in &destinations {
        for (size, count) in [(100usize, small_records), (10 << 10, large_records)] {
            let body: Vec<u8> = (0..size - 1).map(|i| b'a' + (i % 26) as u8).collect();
            let bytes = (size * count) as f64;
            let (mut weir, mut raw) = (Vec::new(), Vec::new());
            for _ in 0..samples {
                // Batches of 500, as a source hands them over, made before the clock starts.
                let source: Arc<str> = Arc::from("bench");
                let batches: Vec<Batch> = (0..count.div_ceil(500))
                    .map(|b| {
                        let n = 500.min(count - b * 500);
                        let mut batch = BatchBuilder::with_capacity(n, n * body.len());
                        batch.set_source(source.clone());
                        for _ in 0..n {
                            batch.push(&body, Meta::default());
                        }
                        batch.finish()
                    })
                    .collect();
                let started = Instant::now();
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let ctx = weir::sink::SinkContext::standalone("bench");
                let sink = tokio::spawn(weir::sink::run(config.clone(), rx, ctx));
                for batch in batches {
                    tx.send(batch)
                        .await
                        .map_err(|_| "the sink stopped".to_string())?;
                }
                drop(tx);
                sink.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                weir.push(started.elapsed().as_secs_f64());

                // The same bytes, newline-delimited as the sink writes them, in one write.
                let mut all = Vec::with_capacity(size * count);
                for _ in 0..count {
                    all.extend_from_slice(&body);
                    all.push(b'\n');
                }
                let started = Instant::now();
                match (destination, &s3) {
                    (&"s3", Some(store)) => {
                        store
                            .client
                            .put_object()
                            .bucket("weir-bench")
                            .key("raw/one-put")
                            .body(aws_sdk_s3::primitives::ByteStream::from(all))
                            .send()
                            .await
                            .map_err(|e| format!("PutObject: {e}"))?;
                    }
                    _ => {
                        let path = dir.path().join("raw.bin");
                        tokio::task::spawn_blocking(move || {
                            use std::io::Write;
                            let mut f = std::fs::File::create(&path)?;
                            f.write_all(&all)?;
                            f.sync_all()
                        })
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                    }
                }
                raw.push(started.elapsed().as_secs_f64());
            }
            // Each sample's weir time beside the raw write right after it: the destination's
            // speed drifts (a shared disk's fsync above all), and neighbours drift together.
            let mut ratios: Vec<f64> = weir.iter().zip(&raw).map(|(w, r)| r / w).collect();
            let ratio = median(&mut ratios);
            let (w, r) = (median(&mut weir), median(&mut raw));
            rows.push(DeliveryRow {
                destination,
                record_size: size,
                records: count,
                weir_rps: count as f64 / w,
                weir_mbps: bytes / w / 1e6,
                raw_mbps: bytes / r / 1e6,
                ratio,
            });
        }
    }
    Ok(rows)
}

pub fn format_delivery(rows: &[DeliveryRow]) -> String {
    let mut out =
        String::from("destination  record  records   weir r/s    weir MB/s  raw MB/s  weir/raw\n");
    for r in rows {
        out.push_str(&format!(
            "{:<11}  {:>6}  {:>7}  {:>10.0}  {:>10.1}  {:>8.1}  {:>7.2}x\n",
            r.destination,
            if r.record_size >= 1024 {
                format!("{}KiB", r.record_size >> 10)
            } else {
                format!("{}B", r.record_size)
            },
            r.records,
            r.weir_rps,
            r.weir_mbps,
            r.raw_mbps,
            r.ratio
        ));
    }
    out
}

/// One sample of the tenant-isolation benchmark: a well-behaved pipeline's throughput (records
/// per second) alone, and beside a hostile tenant's pipeline whose guest spins until its
/// timeout on every batch, with and without a CPU quota on the hostile tenant.
#[derive(Debug, Clone, Copy)]
pub struct TenantRow {
    pub alone: f64,
    pub beside_capped: f64,
    pub beside_uncapped: f64,
}

/// Runs the tenant-isolation benchmark: `records` records through the `redact` guest per
/// sample; the hostile tenant gets `cpu` of guest time per second in the capped runs.
pub async fn tenants(
    modules: &Path,
    records: usize,
    samples: usize,
    cpu: Duration,
) -> Result<Vec<TenantRow>, String> {
    let host = Arc::new(
        Host::new(HostOptions {
            cache: Some(weir_wasm::CompileCache::new(
                weir_wasm::CompileCache::default_dir(),
            )),
        })
        .map_err(|e| e.to_string())?,
    );
    let redact = modules.join("redact.wasm");
    let misbehave = modules.join("misbehave.wasm");
    let good = format!(
        r#"
[pipeline]
name = "good"
[source]
type = "generator"
template = '{{"id":{{{{seq}}}},"email":"x@example.com","page":"/cart"}}'
count = {records}
[[process]]
type = "wasm"
module = "{}"
config = {{ fields = ["email"] }}
[sink]
type = "stdout"
"#,
        redact.display()
    );
    let hostile = format!(
        r#"
[pipeline]
name = "hostile"
[source]
type = "generator"
template = 'boom {{{{seq}}}}'
[[process]]
type = "wasm"
module = "{}"
config = {{ behaviour = "loop" }}
limits = {{ timeout = "100ms" }}
[sink]
type = "stdout"
"#,
        misbehave.display()
    );
    let mut rows = Vec::new();
    for _ in 0..samples {
        let alone = tenant_sample(&host, &good, None).await?;
        let capped = tenant_sample(&host, &good, Some((&hostile, Some(cpu)))).await?;
        let uncapped = tenant_sample(&host, &good, Some((&hostile, None))).await?;
        rows.push(TenantRow {
            alone,
            beside_capped: capped,
            beside_uncapped: uncapped,
        });
    }
    Ok(rows)
}

/// Starts a pipeline from its text, its outputs kept in memory.
fn start_bench_pipeline(
    host: &Host,
    text: &str,
    cpu: Option<Duration>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<
    tokio::task::JoinHandle<Result<weir::engine::PipelineReport, weir::engine::EngineError>>,
    String,
> {
    use weir::sink::Collect;
    let file = weir::config::parse(
        Path::new("bench.toml"),
        text,
        &weir::config::Vars {
            allowed: &[],
            lookup: &|_| None,
        },
    )
    .map_err(|e| e.to_string())?;
    let mut plan =
        weir::app::build(&file, host, &std::env::temp_dir()).map_err(|e| e.to_string())?;
    plan.sink = Box::new(Collect::<Record>::default());
    plan.errors = Box::new(Collect::<FailedRecord>::default());
    plan.cpu = cpu.map(|c| Arc::new(weir::quota::CpuBudget::new(c)));
    Ok(tokio::spawn(weir::engine::run(
        plan,
        Arc::new(weir::clock::SystemClock),
        Arc::new(weir::stats::Stats::default()),
        shutdown,
    )))
}

/// The well-behaved pipeline's records per second, with the hostile one running beside it if
/// given (and its CPU quota).
async fn tenant_sample(
    host: &Host,
    good: &str,
    hostile: Option<(&str, Option<Duration>)>,
) -> Result<f64, String> {
    let stop_hostile = tokio_util::sync::CancellationToken::new();
    let hostile = match hostile {
        Some((text, cpu)) => {
            let task = start_bench_pipeline(host, text, cpu, stop_hostile.clone())?;
            // Let it get going: its first batches are spinning when the sample starts.
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(task)
        }
        None => None,
    };
    let started = Instant::now();
    let report =
        start_bench_pipeline(host, good, None, tokio_util::sync::CancellationToken::new())?
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    stop_hostile.cancel();
    if let Some(task) = hostile {
        task.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    if report.stats.records_failed > 0 {
        return Err("the well-behaved pipeline failed records".into());
    }
    Ok(report.stats.records_out as f64 / elapsed.as_secs_f64())
}

pub fn format_tenants(rows: &[TenantRow], cpu: Duration) -> String {
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&format!(
            "sample {i}: alone {:.0} r/s, beside a hostile tenant capped at {cpu:?}/s {:.0} r/s, uncapped {:.0} r/s\n",
            r.alone, r.beside_capped, r.beside_uncapped
        ));
    }
    let pick = |f: fn(&TenantRow) -> f64| median(&mut rows.iter().map(f).collect::<Vec<_>>());
    let (alone, capped, uncapped) = (
        pick(|r| r.alone),
        pick(|r| r.beside_capped),
        pick(|r| r.beside_uncapped),
    );
    out.push_str(&format!(
        "median: alone {alone:.0} r/s; beside the hostile tenant with a CPU quota {capped:.0} r/s ({:.2}x); without one {uncapped:.0} r/s ({:.2}x)\n",
        capped / alone,
        uncapped / alone
    ));
    out
}

/// What `weir bench reload` measured, in milliseconds per reload.
#[derive(Debug, Clone, Default)]
pub struct ReloadBench {
    /// A new module file: read, compiled (or loaded from the cache), started, swapped in.
    pub module_swaps: Vec<f64>,
    /// A new pipeline file that changes only its steps' config.
    pub file_swaps: Vec<f64>,
    /// A new pipeline file that changes its batching: drained and started again.
    pub restarts: Vec<f64>,
    /// The baseline: building the same steps (load and start the instance) without a swap.
    pub builds: Vec<f64>,
}

/// Reloads a running pipeline `reloads` times each way (module, pipeline file) through the
/// supervisor, while a generator feeds it, and times each reload from its start to the new
/// version running.
pub async fn reload(modules: &Path, reloads: usize) -> Result<ReloadBench, String> {
    use weir::supervisor::{Options, Supervisor};
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let read = |name: &str| {
        std::fs::read(modules.join(name)).map_err(|e| format!("{name}: {e} (run guests/build.sh)"))
    };
    let (redact, identity) = (read("redact.wasm")?, read("identity.wasm")?);
    let module = dir.path().join("m.wasm");
    std::fs::create_dir(dir.path().join("pipelines")).map_err(|e| e.to_string())?;
    let file = dir.path().join("pipelines/live.toml");
    let text = |mask: &str, linger: &str| {
        format!(
            r#"
[pipeline]
name = "live"
batch = {{ linger = "{linger}" }}
[source]
type = "generator"
template = '{{"n":{{{{seq}}}},"secret":"x"}}'
rate = 20000
[[process]]
type = "wasm"
module = "../m.wasm"
config = {{ fields = ["secret"], mask = "{mask}" }}
[sink]
type = "file"
path = "../out"
buffer = {{ interval = "1s" }}
"#
        )
    };
    let write = |path: &Path, bytes: &[u8]| std::fs::write(path, bytes).map_err(|e| e.to_string());
    write(&module, &redact)?;
    write(&file, text("v0", "10ms").as_bytes())?;
    let host = Arc::new(
        Host::new(HostOptions {
            cache: Some(weir_wasm::CompileCache::new(
                weir_wasm::CompileCache::default_dir(),
            )),
        })
        .map_err(|e| e.to_string())?,
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (mut supervisor, mut ended) = Supervisor::new(Options {
        paths: vec![dir.path().join("pipelines")],
        tenants: Default::default(),
        host: host.clone(),
        state_dir: dir.path().join("state"),
        clock: Arc::new(weir::clock::SystemClock),
        shutdown: shutdown.clone(),
        registry: Arc::new(weir::admin::Registry::default()),
    });
    supervisor.start_all().await?;
    let mut bench = ReloadBench::default();
    for k in 1..=reloads {
        write(&module, if k % 2 == 1 { &identity } else { &redact })?;
        bench
            .module_swaps
            .push(reload_once(&mut supervisor, &mut ended, "swapped").await?);
        // The baseline: what building the same steps costs by itself.
        let parsed = weir::config::load(&file, &[]).map_err(|e| e.to_string())?;
        let started = Instant::now();
        drop(weir::app::processors(&parsed, &host).map_err(|e| e.to_string())?);
        bench.builds.push(started.elapsed().as_secs_f64() * 1e3);
    }
    for k in 1..=reloads {
        let linger = if (k / 10) % 2 == 1 { "20ms" } else { "10ms" };
        write(&file, text(&format!("v{k}"), linger).as_bytes())?;
        if k % 10 == 0 {
            bench
                .restarts
                .push(reload_once(&mut supervisor, &mut ended, "restarting").await?);
        } else {
            bench
                .file_swaps
                .push(reload_once(&mut supervisor, &mut ended, "swapped").await?);
        }
    }
    shutdown.cancel();
    supervisor.stop_all().await;
    Ok(bench)
}

/// One reload through the supervisor, which must do `expected` to the one pipeline; a
/// restart is timed until the new version runs (the old one drained in the background).
async fn reload_once(
    supervisor: &mut weir::supervisor::Supervisor,
    ended: &mut tokio::sync::mpsc::UnboundedReceiver<weir::supervisor::Ended>,
    expected: &'static str,
) -> Result<f64, String> {
    let started = Instant::now();
    let changes = supervisor.reload(None).await;
    match changes.as_slice() {
        [c] if c.action == expected && expected != "restarting" => return Ok(c.millis),
        [c] if c.action == expected => {}
        other => return Err(format!("expected one `{expected}` reload, got {other:?}")),
    }
    loop {
        let e = ended.recv().await.ok_or("the supervisor stopped")?;
        if let weir::supervisor::EndedAs::Drained { .. } = supervisor.ended(&e) {
            return Ok(started.elapsed().as_secs_f64() * 1e3);
        }
    }
}

pub fn format_reload(bench: &ReloadBench) -> String {
    let line = |what: &str, values: &[f64]| {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return format!("{what}: none\n");
        }
        let p99 = v[((v.len() - 1) as f64 * 0.99).round() as usize];
        format!(
            "{what}: {} reloads, median {:.2} ms, p99 {:.2} ms\n",
            v.len(),
            median(&mut v.clone()),
            p99
        )
    };
    let mut builds = bench.builds.clone();
    let mut swaps = bench.module_swaps.clone();
    let mut out = String::new();
    out.push_str(&line("module swap", &bench.module_swaps));
    out.push_str(&line("pipeline-file swap", &bench.file_swaps));
    out.push_str(&line("pipeline-file restart", &bench.restarts));
    out.push_str(&line("baseline: building the steps alone", &bench.builds));
    if !builds.is_empty() {
        out.push_str(&format!(
            "module swap / build alone: {:.2}x\n",
            median(&mut swaps) / median(&mut builds)
        ));
    }
    out
}

/// What `weir bench pipelines` measured.
#[derive(Debug, Default)]
pub struct PipelinesBench {
    pub count: usize,
    /// The process before any pipeline started (the Wasm host and the runtime only).
    pub baseline: ProcessSample,
    /// With every pipeline running.
    pub running: ProcessSample,
    /// Seconds until every pipeline was started.
    pub start_secs: f64,
    /// Records the pipelines' steps took in during the settle time.
    pub records: u64,
    pub settle: Duration,
    pub with_step: bool,
}

/// Resident memory and threads of this process, from `/proc/self/status`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessSample {
    pub rss_bytes: u64,
    pub threads: u64,
    /// Memory mappings (Linux allows `vm.max_map_count` per process, 65,530 by default).
    pub maps: u64,
}

impl ProcessSample {
    pub fn now() -> Result<Self, String> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| format!("/proc/self/status: {e} (this bench needs Linux)"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("/proc/self/status has no {name}"))
        };
        let maps = std::fs::read_to_string("/proc/self/maps")
            .map_err(|e| format!("/proc/self/maps: {e}"))?
            .lines()
            .count() as u64;
        Ok(ProcessSample {
            rss_bytes: field("VmRSS:")? * 1024,
            threads: field("Threads:")?,
            maps,
        })
    }
}

/// Starts `count` pipelines in this process (a slow generator → the identity guest → files),
/// through the supervisor as `weir run` would, lets them run for `settle`, and reports the
/// process's resident memory and threads beside the same process before they started.
pub async fn pipelines(
    modules: &Path,
    count: usize,
    settle: Duration,
    with_step: bool,
) -> Result<PipelinesBench, String> {
    use weir::supervisor::{Options, Supervisor};
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let identity = std::fs::read(modules.join("identity.wasm"))
        .map_err(|e| format!("identity.wasm: {e} (run guests/build.sh)"))?;
    std::fs::write(dir.path().join("identity.wasm"), identity).map_err(|e| e.to_string())?;
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).map_err(|e| e.to_string())?;
    for i in 0..count {
        let text = format!(
            r#"
[source]
type = "generator"
template = '{{"n":{{{{seq}}}},"pipeline":{i}}}'
rate = 10
{step}
[sink]
type = "file"
path = "../out/p{i}"
"#,
            step = if with_step {
                "[[process]]\ntype = \"wasm\"\nmodule = \"../identity.wasm\""
            } else {
                ""
            }
        );
        std::fs::write(pipelines.join(format!("p{i:05}.toml")), text).map_err(|e| e.to_string())?;
    }
    let host = Arc::new(
        Host::new(HostOptions {
            cache: Some(weir_wasm::CompileCache::new(
                weir_wasm::CompileCache::default_dir(),
            )),
        })
        .map_err(|e| e.to_string())?,
    );
    let baseline = ProcessSample::now()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let registry = Arc::new(weir::admin::Registry::default());
    let (mut supervisor, _ended) = Supervisor::new(Options {
        paths: vec![pipelines],
        tenants: Default::default(),
        host,
        state_dir: dir.path().join("state"),
        clock: Arc::new(weir::clock::SystemClock),
        shutdown: shutdown.clone(),
        registry: registry.clone(),
    });
    let started = Instant::now();
    supervisor.start_all().await?;
    let start_secs = started.elapsed().as_secs_f64();
    let running = registry.list();
    if running.len() != count {
        return Err(format!("{} of {count} pipelines started", running.len()));
    }
    let taken = |r: &[Arc<weir::admin::PipelineHandle>]| -> u64 {
        r.iter().map(|h| h.stats.snapshot().records_in).sum()
    };
    let before = taken(&running);
    tokio::time::sleep(settle).await;
    let sample = ProcessSample::now()?;
    let records = taken(&running) - before;
    shutdown.cancel();
    supervisor.stop_all().await;
    Ok(PipelinesBench {
        count,
        baseline,
        running: sample,
        start_secs,
        records,
        settle,
        with_step,
    })
}

pub fn format_pipelines(b: &PipelinesBench) -> String {
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let added = b.running.rss_bytes.saturating_sub(b.baseline.rss_bytes);
    format!(
        "{} pipelines (generator 10 records/s -> {}files), started in {:.1} s\n\
         baseline, before any pipeline: {:.0} MiB resident, {} threads, {} memory maps\n\
         running: {:.0} MiB resident, {} threads, {} memory maps\n\
         per pipeline: {:.0} KiB resident\n\
         records taken in by the pipelines in {} s: {} ({:.0} per pipeline per second)\n",
        b.count,
        if b.with_step {
            "identity guest -> "
        } else {
            ""
        },
        b.start_secs,
        mib(b.baseline.rss_bytes),
        b.baseline.threads,
        b.baseline.maps,
        mib(b.running.rss_bytes),
        b.running.threads,
        b.running.maps,
        added as f64 / 1024.0 / b.count.max(1) as f64,
        b.settle.as_secs(),
        b.records,
        b.records as f64 / b.count.max(1) as f64 / b.settle.as_secs_f64().max(1e-9),
    )
}

/// `weir bench sql`: one sample of each way, in seconds.
#[derive(Debug, Clone)]
pub struct SqlSample {
    /// The pipeline with the SQL step (file → sql → file).
    pub sql: f64,
    /// The same pipeline without it (file → file).
    pub plain: f64,
    /// DuckDB computing the same result from the same file (reading it included), if it ran.
    pub duckdb: Option<f64>,
    /// The sliding-window query (a row per record), in Weir and in DuckDB.
    pub sliding: f64,
    pub duckdb_sliding: Option<f64>,
    /// A projection calling the built-in UPPER, and the same calling the Wasm UPPER_UDF.
    pub builtin: f64,
    pub udf: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct SqlBench {
    pub records: usize,
    pub bytes: u64,
    pub samples: Vec<SqlSample>,
    /// Rows each way produced (they must agree).
    pub rows: usize,
    pub duckdb_rows: Option<usize>,
    pub duckdb_note: Option<String>,
    /// Why the UDF figure is missing, if it is.
    pub udf_note: Option<String>,
}

/// The tumbling-window query of `weir bench sql`: per ticker and 10 seconds of event time,
/// COUNT, MIN, MAX and AVG of the price.
const BENCH_SQL: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(8), WINDOW_START TIMESTAMP,
    N BIGINT, LOW DOUBLE, HIGH DOUBLE, MEAN DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM TICKER, STEP(s.ROWTIME BY INTERVAL '10' SECOND), COUNT(*), MIN(PRICE),
        MAX(PRICE), AVG(PRICE)
    FROM "SOURCE_SQL_STREAM_001" AS s
    GROUP BY TICKER, STEP(s.ROWTIME BY INTERVAL '10' SECOND);
"#;

const BENCH_INPUTS: &str = r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON",
        "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordEncoding": "UTF-8",
    "RecordColumns": [
        {"Name": "TICKER", "Mapping": "$.ticker", "SqlType": "VARCHAR(8)"},
        {"Name": "PRICE", "Mapping": "$.price", "SqlType": "DOUBLE"},
        {"Name": "TS", "Mapping": "$.ts", "SqlType": "TIMESTAMP"}]}}]"#;

/// The sliding-window query: each record with the COUNT and AVG of its ticker's prices over
/// the 10 seconds of event time before it.
const BENCH_SLIDING_SQL: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(8), PRICE DOUBLE,
    N BIGINT, MEAN DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM TICKER, PRICE, COUNT(*) OVER w, AVG(PRICE) OVER w
    FROM "SOURCE_SQL_STREAM_001" AS s
    WINDOW w AS (PARTITION BY TICKER RANGE INTERVAL '10' SECOND PRECEDING);
"#;

/// A projection with a string function: `FUNCTION` is UPPER or a UDF doing the same.
const BENCH_MAP_SQL: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (TICKER VARCHAR(8), PRICE DOUBLE);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM FUNCTION(TICKER), PRICE FROM "SOURCE_SQL_STREAM_001";
"#;

/// The same queries in DuckDB, each timed in the same process as the read of the file.
const BENCH_DUCKDB: &str = r#"
import sys, time, duckdb
source = """read_json(?, format = 'newline_delimited',
    columns = {'ticker': 'VARCHAR', 'price': 'DOUBLE', 'ts': 'TIMESTAMP', 'pad': 'VARCHAR'})"""
queries = {
    "tumbling": f"""SELECT ticker, time_bucket(INTERVAL 10 SECOND, ts) AS w, count(*), min(price),
        max(price), avg(price) FROM {source} GROUP BY ALL""",
    "sliding": f"""SELECT ticker, price,
        count(*) OVER w, avg(price) OVER w FROM {source}
        WINDOW w AS (PARTITION BY ticker ORDER BY ts
            RANGE BETWEEN INTERVAL 10 SECOND PRECEDING AND CURRENT ROW)""",
}
con = duckdb.connect()
start = time.perf_counter()
rows = con.execute(queries[sys.argv[2]], [sys.argv[1]]).fetchall()
print(time.perf_counter() - start, len(rows))
"#;

/// Runs `records` 100-byte JSON records (100 tickers, 1,000 a second of event time) through a
/// pipeline with the tumbling-window SQL step and through the same pipeline without it, in
/// turn, `samples` times, and DuckDB on the same file with `python` (if it imports `duckdb`).
pub async fn sql(
    records: usize,
    samples: usize,
    python: &Path,
    udf_path: &Path,
) -> Result<SqlBench, String> {
    use std::io::Write;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("in.jsonl");
    {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(&input).map_err(|e| e.to_string())?);
        for i in 0..records {
            let ms = i as i64; // 1,000 records a second
            let ts = chrono::DateTime::from_timestamp_millis(1_714_557_600_000 + ms)
                .expect("a time")
                .naive_utc()
                .format("%Y-%m-%d %H:%M:%S%.3f");
            let mut line = format!(
                r#"{{"ticker":"T{:03}","price":{}.{:02},"ts":"{ts}","pad":""}}"#,
                i * 37 % 100,
                i % 500,
                i % 100
            );
            let pad = 99usize.saturating_sub(line.len());
            line.insert_str(line.len() - 2, &"x".repeat(pad));
            writeln!(f, "{line}").map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())?;
    }
    let bytes = std::fs::metadata(&input).map_err(|e| e.to_string())?.len();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string())
    };
    write("app.sql", BENCH_SQL)?;
    write("sliding.sql", BENCH_SLIDING_SQL)?;
    write("builtin.sql", &BENCH_MAP_SQL.replace("FUNCTION", "UPPER"))?;
    write("udf.sql", &BENCH_MAP_SQL.replace("FUNCTION", "UPPER_UDF"))?;
    write("inputs.json", BENCH_INPUTS)?;
    let host = Host::new(HostOptions { cache: None }).map_err(|e| e.to_string())?;
    let udf_module = udf_path.canonicalize();
    let pipeline = |name: &str, code: Option<&str>| -> Result<std::path::PathBuf, String> {
        let path = dir.path().join(format!("{name}.toml"));
        let step = match code {
            Some(code) => {
                let udfs = match (&udf_module, code) {
                    (Ok(m), "udf.sql") => format!("udfs = [{{ module = {:?} }}]\n", m.display()),
                    _ => String::new(),
                };
                format!(
                    "[[process]]\ntype = \"sql\"\ncode = \"{code}\"\ninputs = \"inputs.json\"\n\
                     rowtime = \"TS\"\n{udfs}"
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &path,
            format!(
                "[source]\ntype = \"file\"\npath = \"in.jsonl\"\n{step}\
                 [sink]\ntype = \"file\"\npath = \"out-{name}\"\nbuffer = {{ size = \"64MiB\" }}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(path)
    };
    let with_sql = pipeline("sql", Some("app.sql"))?;
    let plain = pipeline("plain", None)?;
    let sliding = pipeline("sliding", Some("sliding.sql"))?;
    let builtin = pipeline("builtin", Some("builtin.sql"))?;
    let udf = match &udf_module {
        Ok(_) => Some(pipeline("udf", Some("udf.sql"))?),
        Err(_) => None,
    };
    let run = |path: std::path::PathBuf, out: &'static str| {
        let (host, state) = (&host, dir.path().join("state"));
        let out = dir.path().join(out);
        async move {
            let _ = std::fs::remove_dir_all(&out);
            let file = weir::config::load(&path, &[]).map_err(|e| e.to_string())?;
            let plan = weir::app::build(&file, host, &state).map_err(|e| e.to_string())?;
            let started = Instant::now();
            let report = weir::engine::run(
                plan,
                Arc::new(weir::clock::SystemClock),
                Arc::new(weir::stats::Stats::default()),
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .map_err(|e| e.to_string())?;
            let secs = started.elapsed().as_secs_f64();
            let rows = count_lines(&out);
            Ok::<_, String>((secs, rows, report.stats.records_failed))
        }
    };
    let duckdb = |python: &Path, query: &str| -> Result<(f64, usize), String> {
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg(BENCH_DUCKDB)
            .arg(&input)
            .arg(query)
            .output()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        let secs = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or("no time from DuckDB")?;
        let rows = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or("no rows from DuckDB")?;
        Ok((secs, rows))
    };
    let mut bench = SqlBench {
        records,
        bytes,
        samples: Vec::new(),
        rows: 0,
        duckdb_rows: None,
        duckdb_note: None,
        udf_note: udf_module
            .as_ref()
            .err()
            .map(|e| format!("{}: {e}", udf_path.display())),
    };
    for _ in 0..samples {
        let (sql_secs, rows, failed) = run(with_sql.clone(), "out-sql").await?;
        if failed > 0 {
            return Err(format!("{failed} records failed in the SQL pipeline"));
        }
        let (plain_secs, plain_rows, _) = run(plain.clone(), "out-plain").await?;
        if plain_rows != records {
            return Err(format!(
                "the plain pipeline delivered {plain_rows} of {records} records"
            ));
        }
        bench.rows = rows;
        let duck = match duckdb(python, "tumbling") {
            Ok((secs, rows)) => {
                bench.duckdb_rows = Some(rows);
                Some(secs)
            }
            Err(e) => {
                bench.duckdb_note = Some(e);
                None
            }
        };
        // One row per record, in each of the other queries.
        let each = |what: &str, (secs, rows, failed): (f64, usize, u64)| {
            if failed > 0 || rows != records {
                return Err(format!(
                    "the {what} query made {rows} rows of {records} ({failed} failed)"
                ));
            }
            Ok(secs)
        };
        let sliding_secs = each("sliding", run(sliding.clone(), "out-sliding").await?)?;
        let duckdb_sliding = match duckdb(python, "sliding") {
            Ok((secs, rows)) if rows == records => Some(secs),
            Ok((_, rows)) => return Err(format!("DuckDB's sliding query made {rows} rows")),
            Err(_) => None,
        };
        let builtin_secs = each("UPPER", run(builtin.clone(), "out-builtin").await?)?;
        let udf_secs = match &udf {
            Some(p) => Some(each("UPPER_UDF", run(p.clone(), "out-udf").await?)?),
            None => None,
        };
        bench.samples.push(SqlSample {
            sql: sql_secs,
            plain: plain_secs,
            duckdb: duck,
            sliding: sliding_secs,
            duckdb_sliding,
            builtin: builtin_secs,
            udf: udf_secs,
        });
    }
    if let Some(d) = bench.duckdb_rows {
        if d != bench.rows {
            return Err(format!("Weir made {} rows, DuckDB {d}", bench.rows));
        }
    }
    Ok(bench)
}

/// Lines in every file under `dir`.
fn count_lines(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|f| f != "errors") {
                    stack.push(p);
                }
            } else if let Ok(bytes) = std::fs::read(&p) {
                n += bytes.iter().filter(|b| **b == b'\n').count();
            }
        }
    }
    n
}

pub fn format_sql(b: &SqlBench) -> String {
    let rate = |secs: &mut Vec<f64>| b.records as f64 / median(secs);
    let mut sql: Vec<f64> = b.samples.iter().map(|s| s.sql).collect();
    let mut plain: Vec<f64> = b.samples.iter().map(|s| s.plain).collect();
    let mut duck: Vec<f64> = b.samples.iter().filter_map(|s| s.duckdb).collect();
    let (sql_rps, plain_rps) = (rate(&mut sql), rate(&mut plain));
    let mut out = format!(
        "{} records ({:.1} MB), tumbling 10 s COUNT/MIN/MAX/AVG per ticker, {} rows, median of {}:\n",
        b.records,
        b.bytes as f64 / 1e6,
        b.rows,
        b.samples.len()
    );
    out += &format!("  weir, file -> sql -> file   {sql_rps:>10.0} records/s\n");
    out += &format!(
        "  weir, file -> file          {plain_rps:>10.0} records/s   (SQL costs {:.0} ns a record)\n",
        (1e9 / sql_rps - 1e9 / plain_rps).max(0.0)
    );
    if duck.is_empty() {
        out += &format!(
            "  duckdb: did not run ({})\n",
            b.duckdb_note.as_deref().unwrap_or("no python")
        );
    } else {
        let d = rate(&mut duck);
        out += &format!(
            "  duckdb, same file, batch    {d:>10.0} records/s   (weir with sql / duckdb: {:.2}x)\n",
            sql_rps / d
        );
    }
    let mut sliding: Vec<f64> = b.samples.iter().map(|s| s.sliding).collect();
    let sliding_rps = rate(&mut sliding);
    out += "sliding 10 s COUNT/AVG per ticker, a row per record:\n";
    out += &format!(
        "  weir, file -> sql -> file   {sliding_rps:>10.0} records/s   (SQL costs {:.0} ns a record)\n",
        (1e9 / sliding_rps - 1e9 / plain_rps).max(0.0)
    );
    let mut duck: Vec<f64> = b.samples.iter().filter_map(|s| s.duckdb_sliding).collect();
    if !duck.is_empty() {
        let d = rate(&mut duck);
        out += &format!(
            "  duckdb, same file, batch    {d:>10.0} records/s   (weir / duckdb: {:.2}x)\n",
            sliding_rps / d
        );
    }
    let mut builtin: Vec<f64> = b.samples.iter().map(|s| s.builtin).collect();
    let builtin_rps = rate(&mut builtin);
    out += "a projection, SELECT STREAM F(TICKER), PRICE:\n";
    out += &format!("  F = UPPER (built in)        {builtin_rps:>10.0} records/s\n");
    let mut udf: Vec<f64> = b.samples.iter().filter_map(|s| s.udf).collect();
    if udf.is_empty() {
        out += &format!(
            "  F = UPPER_UDF (Wasm): did not run ({})\n",
            b.udf_note.as_deref().unwrap_or("no module")
        );
    } else {
        let u = rate(&mut udf);
        out += &format!(
            "  F = UPPER_UDF (Wasm)        {u:>10.0} records/s   (the UDF costs {:.0} ns a row more)\n",
            1e9 / u - 1e9 / builtin_rps
        );
    }
    out
}

//! The `weir` command line: wires pipeline files to the engine.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use weir::app;
use weir::clock::{Clock, SystemClock};
use weir::config::{self, FileSourceConfig, LineFormat, PipelineFile, SourceConfig};
use weir::engine::{self, Output, PipelineReport};
use weir::stats::Stats;
use weir_wasm::{CompileCache, Host, HostOptions};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A stream processor runtime extended with WebAssembly.",
    long_about = "Weir runs pipelines: a source (file, stdin, generator), zero or more WebAssembly \
                  steps (transforms and filters), and a sink (files with Firehose-style buffering, \
                  or stdout). Failed records go to the error output, never dropped.\n\n\
                  Start with:  weir run pipelines/quickstart.toml",
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more detail."
)]
struct Cli {
    /// Directory for compiled modules (default: $WEIR_CACHE_DIR, else ~/.cache/weir).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Directory for source checkpoints (default: $WEIR_STATE_DIR, else ~/.local/state/weir).
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run pipelines (files, or directories of *.toml) until their sources end or Ctrl-C/SIGTERM.
    Run {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// How often to print progress (records in/out/failed per second); 0s to turn it off.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        progress: Duration,
        /// Serve the admin API and Prometheus /metrics on this address, e.g. 127.0.0.1:9870
        /// (keep it on loopback: it has no authentication).
        #[arg(long, value_name = "ADDR")]
        admin: Option<std::net::SocketAddr>,
    },
    /// Check pipeline files: syntax, keys, modules (compiled and started with their config).
    Validate {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Run one pipeline's steps once over an input file and print every output and failure.
    Test {
        #[arg(value_name = "PIPELINE")]
        pipeline: PathBuf,
        /// Input records, one per line.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
    /// Measure throughput; prints medians beside a native baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Reading a pre-filled Kinesis stream: a pipeline with no processors vs a bare
    /// GetRecords loop, in the same run. Creates (and deletes) a stream on ENDPOINT.
    Kinesis {
        /// A Kinesis endpoint, e.g. kinesalite: `node tests/peers/kinesalite.js 4567`.
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Records to fill the stream with (100 bytes each).
        #[arg(long, default_value_t = 50_000)]
        records: usize,
        #[arg(long, default_value_t = 2)]
        shards: i32,
        /// Reads each way (the median is reported).
        #[arg(long, default_value_t = 5)]
        samples: usize,
    },
    /// Delivery to the file sink (and the s3 sink, with --s3-endpoint): 100-byte and 10-KiB
    /// records, beside a raw write of the same bytes to the same destination.
    Delivery {
        /// An S3 endpoint (e.g. moto server) to measure the s3 sink too.
        #[arg(long)]
        s3_endpoint: Option<String>,
        /// 100-byte records per sample.
        #[arg(long, default_value_t = 200_000)]
        small_records: usize,
        /// 10-KiB records per sample.
        #[arg(long, default_value_t = 4_000)]
        large_records: usize,
        /// Samples each way (the median is reported).
        #[arg(long, default_value_t = 5)]
        samples: usize,
    },
    /// The redact transform as a Wasm guest vs compiled natively, and the identity guest.
    Wasm {
        /// Directory holding redact.wasm and identity.wasm (built by guests/build.sh).
        #[arg(long, default_value = "guests/dist")]
        modules: PathBuf,
        /// Batch sizes to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,100,500")]
        batch_sizes: Vec<usize>,
        /// Records per sample.
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        /// Samples per figure (the median is reported).
        #[arg(long, default_value_t = 9)]
        samples: usize,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn host(cache_dir: Option<PathBuf>) -> anyhow::Result<Host> {
    let dir = cache_dir.unwrap_or_else(CompileCache::default_dir);
    Ok(Host::new(HostOptions {
        cache: Some(CompileCache::new(dir)),
    })?)
}

fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<PipelineFile>> {
    let files = config::discover(paths)?;
    if files.is_empty() {
        bail!("no pipeline files found in {paths:?}");
    }
    let mut loaded = Vec::new();
    for file in files {
        loaded.push(config::load(&file)?);
    }
    let mut names: Vec<&str> = loaded.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("two pipelines are named `{}`; names must be unique", w[0]);
    }
    if loaded.iter().filter(|p| app::reads_stdin(p)).count() > 1 {
        bail!("only one pipeline can read stdin");
    }
    Ok(loaded)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            paths,
            progress,
            admin,
        } => {
            let state_dir = cli
                .state_dir
                .unwrap_or_else(weir::checkpoint::LocalStore::default_dir);
            run(paths, progress, admin, cli.cache_dir, state_dir).await
        }
        Command::Validate { paths } => validate(paths, cli.cache_dir),
        Command::Test { pipeline, input } => test(pipeline, input, cli.cache_dir).await,
        Command::Bench {
            what:
                BenchCommand::Kinesis {
                    endpoint,
                    region,
                    records,
                    shards,
                    samples,
                },
        } => {
            let rows = weir::bench::kinesis(&endpoint, &region, records, shards, samples.max(1))
                .await
                .map_err(anyhow::Error::msg)?;
            let mut bare: Vec<f64> = rows.iter().map(|r| r.bare).collect();
            let mut pipeline: Vec<f64> = rows.iter().map(|r| r.weir).collect();
            for (i, r) in rows.iter().enumerate() {
                println!(
                    "sample {i}: bare GetRecords loop {:.0} r/s, weir pipeline {:.0} r/s",
                    r.bare, r.weir
                );
            }
            let (b, w) = (
                weir::bench::median(&mut bare),
                weir::bench::median(&mut pipeline),
            );
            println!(
                "median: bare {b:.0} r/s, weir {w:.0} r/s, weir/bare {:.2}x ({records} records, {shards} shards)",
                w / b
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchCommand::Delivery {
                    s3_endpoint,
                    small_records,
                    large_records,
                    samples,
                },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let rows = weir::bench::delivery(
                s3_endpoint.as_deref(),
                small_records,
                large_records,
                samples.max(1),
            )
            .await
            .map_err(anyhow::Error::msg)?;
            print!("{}", weir::bench::format_delivery(&rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchCommand::Wasm {
                    modules,
                    batch_sizes,
                    records,
                    samples,
                },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let rows = tokio::task::spawn_blocking(move || {
                weir::bench::wasm_vs_native(&modules, &batch_sizes, records, samples.max(1))
            })
            .await?
            .map_err(anyhow::Error::msg)?;
            print!("{}", weir::bench::format_rows(&rows));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(paths: Vec<PathBuf>, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let files = config::discover(&paths)?;
    let host = host(cache_dir)?;
    let mut bad = 0;
    for path in files {
        let result = config::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|file| app::check_source(&file).map(|()| file))
            .and_then(|file| app::processors(&file, &host).map(|_| file));
        match result {
            Ok(file) => println!("ok: {} (pipeline `{}`)", app::show(&path), file.name),
            Err(e) => {
                bad += 1;
                println!("invalid: {e}");
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Cancels `token` on the first SIGINT/SIGTERM; a second one exits at once.
fn watch_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "Cannot watch SIGTERM");
                    return;
                }
            };
        for n in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                tracing::info!("Shutting down: draining pipelines and flushing buffers (signal again to abort)");
                token.cancel();
            } else {
                eprintln!("aborted");
                std::process::exit(130);
            }
        }
    });
}

async fn run(
    paths: Vec<PathBuf>,
    progress: Duration,
    admin: Option<std::net::SocketAddr>,
    cache_dir: Option<PathBuf>,
    state_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    let files = load_all(&paths)?;
    // Bound before anything starts, so a taken port fails the run at once.
    let admin_listener = match admin {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the admin API"))?,
        ),
        None => None,
    };
    let host = host(cache_dir)?;
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let mut plans = Vec::new();
    for file in &files {
        let plan = app::build(file, &host, &state_dir).map_err(anyhow::Error::msg)?;
        let errors = match &plan.errors {
            Output::Config(e) => app::describe_errors(e),
            Output::Collect => "memory".into(),
        };
        tracing::info!(
            pipeline = %file.name,
            file = %app::show(&file.path),
            output = %app::describe_sink(&file.spec.sink),
            errors = %errors,
            "Starting pipeline"
        );
        plans.push(plan);
    }

    let mut tasks = Vec::new();
    let mut handles = Vec::new();
    for (mut plan, file) in plans.into_iter().zip(&files) {
        let stats = Arc::new(Stats::default());
        let (paused, paused_rx) = tokio::sync::watch::channel(false);
        plan.paused = Some(paused_rx);
        let handle = Arc::new(weir::admin::PipelineHandle {
            name: plan.name.clone(),
            file: app::show(&file.path),
            version: 1,
            stats: stats.clone(),
            paused,
            status: std::sync::Mutex::new((weir::admin::State::Running, None)),
        });
        handles.push(handle.clone());
        let reporter = (!progress.is_zero())
            .then(|| spawn_progress(plan.name.clone(), stats.clone(), progress));
        let task = tokio::spawn(engine::run(plan, clock.clone(), stats, shutdown.clone()));
        tasks.push((task, reporter, handle));
    }
    let admin_stop = CancellationToken::new();
    if let Some(listener) = admin_listener {
        tracing::info!(address = %listener.local_addr()?, "Admin API and /metrics listening");
        tokio::spawn(weir::admin::serve(
            listener,
            Arc::new(handles),
            admin_stop.clone(),
        ));
    }
    let mut failed = false;
    for (task, reporter, handle) in tasks {
        let result = task.await.context("pipeline task")?;
        if let Some(r) = reporter {
            r.abort();
        }
        match result {
            Ok(report) => {
                handle.finished(None);
                print_summary(&report)
            }
            Err(e) => {
                failed = true;
                handle.finished(Some(e.to_string()));
                eprintln!("error: {e}");
            }
        }
    }
    admin_stop.cancel();
    drop(host);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn spawn_progress(name: String, stats: Arc<Stats>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = stats.snapshot();
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = stats.snapshot();
            let rate = |a: u64, b: u64| (a - b) as f64 / every.as_secs_f64();
            tracing::info!(
                pipeline = %name,
                records_in = now.records_in,
                records_out = now.records_out,
                failed = now.records_failed,
                in_per_s = format!("{:.0}", rate(now.records_in, last.records_in)),
                out_per_s = format!("{:.0}", rate(now.records_out, last.records_out)),
                failed_per_s = format!("{:.0}", rate(now.records_failed, last.records_failed)),
                "Progress"
            );
            for (shard, m) in stats.shard_metrics() {
                tracing::info!(
                    pipeline = %name,
                    shard = %shard,
                    records = m.records,
                    bytes = m.bytes,
                    millis_behind_latest = m.millis_behind_latest.unwrap_or(-1),
                    iterator_age_ms = m.iterator_age_ms.unwrap_or(-1),
                    "Shard progress"
                );
            }
            last = now;
        }
    })
}

fn print_summary(report: &PipelineReport) {
    let s = &report.stats;
    eprintln!(
        "pipeline {}: {} records in, {} out, {} dropped, {} failed, in {:.1?}",
        report.name,
        s.records_in,
        s.records_out,
        s.records_dropped,
        s.records_failed,
        report.elapsed
    );
    let d = &report.delivered;
    if let Some(location) = &d.location {
        eprintln!(
            "  output: {} object(s) under {}/",
            d.object_count,
            location.trim_end_matches('/')
        );
        for object in &d.objects {
            eprintln!("    {object}");
        }
    }
    let e = &report.errors;
    if e.object_count > 0 {
        if let Some(location) = &e.location {
            eprintln!(
                "  errors: {} object(s) under {}/",
                e.object_count,
                location.trim_end_matches('/')
            );
            for object in &e.objects {
                eprintln!("    {object}");
            }
        }
    }
}

async fn test(
    pipeline: PathBuf,
    input: PathBuf,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let file = config::load(&pipeline)?;
    let host = host(cache_dir)?;
    let format = match &file.spec.source {
        SourceConfig::File(f) => f.format,
        SourceConfig::Stdin(s) => s.format,
        SourceConfig::Generator(_) | SourceConfig::Kinesis(_) => LineFormat::Lines,
    };
    let processors = app::processors(&file, &host).map_err(anyhow::Error::msg)?;
    let plan = engine::PipelinePlan {
        name: file.name.clone(),
        // A file source keeps no checkpoints.
        state_dir: std::env::temp_dir(),
        source: SourceConfig::File(FileSourceConfig::new(input, format)),
        batch: file.spec.pipeline.batch,
        processors,
        sink: Output::Collect,
        errors: Output::Collect,
        backup: None,
        paused: None,
    };
    let stats = Arc::new(Stats::default());
    let report = engine::run(plan, Arc::new(SystemClock), stats, CancellationToken::new()).await?;
    for record in &report.collected {
        println!(
            "ok      #{:<5} {}",
            record.sequence_number.as_deref().unwrap_or("-"),
            String::from_utf8_lossy(&record.data)
        );
    }
    for failed in &report.collected_errors {
        println!(
            "failed  #{:<5} {}: {}",
            failed.record.sequence_number.as_deref().unwrap_or("-"),
            failed.code,
            failed.message
        );
    }
    let s = report.stats;
    println!(
        "{} in, {} out, {} dropped, {} failed",
        s.records_in, s.records_out, s.records_dropped, s.records_failed
    );
    Ok(if s.records_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

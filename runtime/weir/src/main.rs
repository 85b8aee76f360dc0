//! The `weir` command line: wires pipeline files to the engine.

mod bench;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use weir::admin::{Registry, ReloadRequest};
use weir::app;
use weir::clock::SystemClock;
use weir::config::tenants::TenantsFile;
use weir::config::{self, FileSourceConfig, LineFormat, SourceConfig};
use weir::engine::{self, PipelineReport};
use weir::record::{FailedRecord, Record};
use weir::sink::Collect;
use weir::stats::Stats;
use weir::supervisor::{self, Supervisor, Watcher};
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
        /// Serve the admin API and Prometheus /metrics on this address; `--admin` alone means
        /// 127.0.0.1:9870. POSTs need the bearer token (see --admin-token-file).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9870")]
        admin: Option<std::net::SocketAddr>,
        /// The admin API's bearer token, read from FILE; without it a new token is written to
        /// <state dir>/admin-token (mode 0600) at every start.
        #[arg(long, value_name = "FILE")]
        admin_token_file: Option<PathBuf>,
        /// A host name the admin API answers to (in Host and Origin headers) besides IP
        /// addresses and localhost; repeatable.
        #[arg(long, value_name = "NAME")]
        admin_host: Vec<String>,
        /// The tenants file: which pipeline files belong to which tenant, their quotas and
        /// the grants they may ask for (see docs/admin.md). Without it every pipeline belongs
        /// to the `default` tenant, which has no quotas.
        #[arg(long, value_name = "FILE")]
        tenants: Option<PathBuf>,
        /// An environment variable `${VAR}` may read in pipeline files (of the `default`
        /// tenant): a name, or `PREFIX_*`; repeatable. No other variable is read.
        #[arg(long, value_name = "NAME")]
        allow_env: Vec<String>,
        /// Do not watch pipeline files and modules for changes (SIGHUP and the admin API's
        /// /reload still reload).
        #[arg(long)]
        no_watch: bool,
        /// How long file changes must settle before a reload.
        #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
        watch_debounce: Duration,
    },
    /// Check pipeline files: syntax, keys, modules (compiled and started with their config).
    Validate {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Check the pipelines against this tenants file too (see `weir run --tenants`).
        #[arg(long, value_name = "FILE")]
        tenants: Option<PathBuf>,
        /// As for `weir run`.
        #[arg(long, value_name = "NAME")]
        allow_env: Vec<String>,
    },
    /// Run one pipeline's steps once over an input file and print every output and failure.
    Test {
        #[arg(value_name = "PIPELINE")]
        pipeline: PathBuf,
        /// Input records, one per line.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// As for `weir run`.
        #[arg(long, value_name = "NAME")]
        allow_env: Vec<String>,
    },
    /// Measure throughput; prints medians beside a native baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Kinesis Data Analytics SQL tools.
    Sql {
        #[command(subcommand)]
        what: SqlCommand,
    },
}

#[derive(Subcommand)]
enum SqlCommand {
    /// Propose an input schema from sample records (JSON, one a line, or CSV), as KDA's
    /// DiscoverInputSchema did: prints an InputSchema for an application's Inputs.
    Discover {
        /// The sample records.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// At most this many records are read.
        #[arg(long, default_value_t = 1000)]
        records: usize,
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
        /// Where the file sink and the raw write go (default: the temp directory). On tmpfs
        /// (`/dev/shm`) a sync costs nothing, which leaves Weir's own work to compare.
        #[arg(long)]
        dir: Option<PathBuf>,
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
    /// A well-behaved tenant's pipeline alone, and beside a hostile tenant whose guest spins
    /// on every batch, with and without a CPU quota on the hostile tenant.
    Tenants {
        /// Directory holding redact.wasm and misbehave.wasm (built by guests/build.sh).
        #[arg(long, default_value = "guests/dist")]
        modules: PathBuf,
        /// Records through the well-behaved pipeline per sample.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Samples each way (the median is reported).
        #[arg(long, default_value_t = 7)]
        samples: usize,
        /// The hostile tenant's CPU quota (guest time per second).
        #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
        cpu: Duration,
    },
    /// Reloads of a running pipeline (new module, new pipeline file) while it runs: the time
    /// from each reload's start to the new version running, beside building the same steps.
    Reload {
        /// Directory holding redact.wasm and identity.wasm (built by guests/build.sh).
        #[arg(long, default_value = "guests/dist")]
        modules: PathBuf,
        /// Reloads each way.
        #[arg(long, default_value_t = 100)]
        reloads: usize,
    },
    /// Many pipelines in one process (a slow generator -> the identity guest -> files): the
    /// process's resident memory and threads with all of them running, beside before.
    Pipelines {
        /// Directory holding identity.wasm (built by guests/build.sh).
        #[arg(long, default_value = "guests/dist")]
        modules: PathBuf,
        /// Pipelines to start.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// How long they run before the sample.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        settle: Duration,
        /// Pipelines without the Wasm step (what the step costs, by difference).
        #[arg(long)]
        without_step: bool,
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
    /// KDA SQL over 100-byte JSON records, in turn: a tumbling window (COUNT/MIN/MAX/AVG per
    /// key, 10 s) and a sliding one (COUNT/AVG per key over 10 s, a row per record), each
    /// beside DuckDB on the same file and the pipeline without the SQL step; and a projection
    /// calling UPPER beside the same calling a Wasm UDF.
    Sql {
        /// Records in the file.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Samples each way (the median is reported).
        #[arg(long, default_value_t = 3)]
        samples: usize,
        /// A Python that imports `duckdb` (scripts/test installs one into .venv).
        #[arg(long, default_value = ".venv/bin/python")]
        python: PathBuf,
        /// The sql-udf module with UPPER_UDF, for the cost of a UDF call beside the built-in.
        #[arg(long, default_value = "guests/dist/sql-functions.wasm")]
        udf: PathBuf,
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
    // The threads processors run on (default: one per core); see weir_core::pool.
    if let Some(n) = std::env::var("WEIR_STEP_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        weir::pool::StepPool::size_shared(n);
    }
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
    // Checking a SQL step's function modules compiles them too: into the same cache.
    weir::process::sql::udf::use_cache_dir(dir.clone());
    Ok(Host::new(HostOptions {
        cache: Some(CompileCache::new(dir)),
    })?)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            paths,
            progress,
            admin,
            admin_token_file,
            admin_host,
            tenants,
            allow_env,
            no_watch,
            watch_debounce,
        } => {
            let state_dir = cli
                .state_dir
                .unwrap_or_else(weir::checkpoint::LocalStore::default_dir);
            let tenants = tenants_file(tenants, allow_env)?;
            run(RunOptions {
                paths,
                progress,
                admin,
                admin_token_file,
                admin_host,
                tenants,
                watch: (!no_watch).then_some(watch_debounce),
                cache_dir: cli.cache_dir,
                state_dir,
            })
            .await
        }
        Command::Validate {
            paths,
            tenants,
            allow_env,
        } => {
            let tenants = tenants_file(tenants, allow_env)?;
            // Compiling and starting guests blocks: off the async threads.
            tokio::task::spawn_blocking(move || validate(paths, &tenants, cli.cache_dir)).await?
        }
        Command::Test {
            pipeline,
            input,
            allow_env,
        } => test(pipeline, input, allow_env, cli.cache_dir).await,
        Command::Sql {
            what: SqlCommand::Discover { input, records },
        } => {
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("{}: cannot read", input.display()))?;
            let sample: String = text
                .lines()
                .take(records.max(1))
                .flat_map(|l| [l, "\n"])
                .collect();
            let schema = weir_sql::discover::discover(&sample)
                .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
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
            let rows = bench::kinesis(&endpoint, &region, records, shards, samples.max(1))
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
            let (b, w) = (bench::median(&mut bare), bench::median(&mut pipeline));
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
                    dir,
                    small_records,
                    large_records,
                    samples,
                },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let rows = bench::delivery(
                s3_endpoint.as_deref(),
                dir.as_deref(),
                small_records,
                large_records,
                samples.max(1),
            )
            .await
            .map_err(anyhow::Error::msg)?;
            print!("{}", bench::format_delivery(&rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchCommand::Tenants {
                    modules,
                    records,
                    samples,
                    cpu,
                },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let rows = bench::tenants(&modules, records, samples.max(1), cpu)
                .await
                .map_err(anyhow::Error::msg)?;
            print!("{}", bench::format_tenants(&rows, cpu));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what: BenchCommand::Reload { modules, reloads },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let bench = bench::reload(&modules, reloads.max(1))
                .await
                .map_err(anyhow::Error::msg)?;
            print!("{}", bench::format_reload(&bench));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchCommand::Pipelines {
                    modules,
                    count,
                    settle,
                    without_step,
                },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let bench = bench::pipelines(&modules, count.max(1), settle, !without_step)
                .await
                .map_err(anyhow::Error::msg)?;
            print!("{}", bench::format_pipelines(&bench));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            what:
                BenchCommand::Sql {
                    records,
                    samples,
                    python,
                    udf,
                },
        } => {
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
            }
            let bench = bench::sql(records.max(1), samples.max(1), &python, &udf)
                .await
                .map_err(anyhow::Error::msg)?;
            print!("{}", bench::format_sql(&bench));
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
                bench::wasm_vs_native(&modules, &batch_sizes, records, samples.max(1))
            })
            .await?
            .map_err(anyhow::Error::msg)?;
            print!("{}", bench::format_rows(&rows));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The tenants file, or one user's setup without one; `--allow-env` names the variables the
/// `default` tenant's files may read.
fn tenants_file(path: Option<PathBuf>, allow_env: Vec<String>) -> anyhow::Result<TenantsFile> {
    Ok(match path {
        Some(path) => {
            let mut t = TenantsFile::load(&path)?;
            t.cli_env = allow_env;
            t
        }
        None => TenantsFile::single_user(allow_env),
    })
}

fn validate(
    paths: Vec<PathBuf>,
    tenants: &TenantsFile,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let files = config::discover(&paths)?;
    let host = host(cache_dir)?;
    let mut bad = 0;
    for path in files {
        let result = tenants
            .load_pipeline(&path)
            .map_err(anyhow::Error::from)
            .and_then(|file| Ok(app::check_source(&file).map(|()| file)?))
            .and_then(|file| Ok(app::processors(&file, &host).map(|_| file)?));
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

struct RunOptions {
    paths: Vec<PathBuf>,
    progress: Duration,
    admin: Option<std::net::SocketAddr>,
    admin_token_file: Option<PathBuf>,
    admin_host: Vec<String>,
    tenants: TenantsFile,
    /// Watch files, with this debounce.
    watch: Option<Duration>,
    cache_dir: Option<PathBuf>,
    state_dir: PathBuf,
}

async fn run(options: RunOptions) -> anyhow::Result<ExitCode> {
    // Bound before anything starts, so a taken port fails the run at once.
    let admin_listener = match options.admin {
        Some(addr) => Some({
            if !addr.ip().is_loopback() {
                tracing::warn!(address = %addr, "The admin API listens beyond loopback: anyone who can reach it can read metrics and status (changes need the token)");
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the admin API"))?;
            let (access, token) = weir::admin::Access::load_or_create(
                options.admin_token_file.as_deref(),
                &options.state_dir,
                options.admin_host.clone(),
            )
            .context("cannot set up the admin API's token")?;
            tracing::info!(token_file = %token.display(), "Admin API token (POSTs need `Authorization: Bearer <token>`)");
            (listener, access)
        }),
        None => None,
    };
    let host = Arc::new(host(options.cache_dir)?);
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone());
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<ReloadRequest>(8);
    let registry = Arc::new(Registry::new(Some(reload_tx)));
    let (mut supervisor, mut ended_rx) = Supervisor::new(supervisor::Options {
        paths: options.paths.clone(),
        tenants: options.tenants,
        host,
        state_dir: options.state_dir,
        clock: Arc::new(SystemClock),
        shutdown: shutdown.clone(),
        registry: registry.clone(),
    });
    supervisor.start_all().await.map_err(anyhow::Error::msg)?;

    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = match options.watch {
        Some(_) => {
            let mut w = Watcher::new(events_tx).context("cannot watch the pipeline files")?;
            let (paths, modules) = supervisor.watched();
            w.update(&paths, &modules);
            Some(w)
        }
        None => None,
    };
    if watcher.is_some() {
        // A file changed while the pipelines were starting, before the watcher was there,
        // would otherwise wait for its next change.
        supervisor.reload(None).await;
    }
    let reporter =
        (!options.progress.is_zero()).then(|| spawn_progress(registry.clone(), options.progress));
    let admin_stop = CancellationToken::new();
    if let Some((listener, access)) = admin_listener {
        tracing::info!(address = %listener.local_addr()?, "Admin API and /metrics listening");
        tokio::spawn(weir::admin::serve(
            listener,
            registry.clone(),
            access,
            admin_stop.clone(),
        ));
    }
    let mut failed = false;
    let mut stopping = false;
    loop {
        // Stopping with nothing left to drain (the last pipeline was removed by a reload).
        if stopping && supervisor.is_idle() {
            break;
        }
        // Each reload is logged (and recorded in the pipelines' status) by the supervisor.
        tokio::select! {
            _ = shutdown.cancelled(), if !stopping => {
                // Every pipeline drains (their stop tokens are children of `shutdown`); their
                // ends arrive below.
                stopping = true;
                continue;
            }
            Some(()) = events.recv(), if !stopping => {
                supervisor::debounce(&mut events, options.watch.unwrap_or_default()).await;
                supervisor.reload(None).await;
            }
            Some(()) = hangup.recv(), if !stopping => {
                tracing::info!("SIGHUP: reloading");
                supervisor.reload(None).await;
            }
            Some(request) = reload_rx.recv(), if !stopping => {
                let changes = supervisor.reload(request.only.as_deref()).await;
                let _ = request.reply.send(serde_json::json!({ "changes": changes }));
            }
            Some(ended) = ended_rx.recv() => {
                match supervisor.ended(&ended) {
                    supervisor::EndedAs::Finished(_) => {
                        match &ended.result {
                            Ok(report) => print_summary(report),
                            Err(e) => {
                                failed = true;
                                eprintln!("error: {e}");
                            }
                        }
                        // The last pipeline ended by itself (or at shutdown): the run is over.
                        if supervisor.is_idle() {
                            break;
                        }
                    }
                    // A restart's old version drained and the new one runs; its files may
                    // have changed again meanwhile.
                    supervisor::EndedAs::Drained { rescan: true } if !stopping => {
                        supervisor.reload(None).await;
                    }
                    supervisor::EndedAs::Drained { .. } | supervisor::EndedAs::Ignored => {}
                }
            }
        }
        if let Some(w) = &mut watcher {
            let (paths, modules) = supervisor.watched();
            w.update(&paths, &modules);
        }
    }
    if let Some(r) = reporter {
        r.abort();
    }
    admin_stop.cancel();
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn spawn_progress(registry: Arc<Registry>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = std::collections::HashMap::new();
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            for handle in registry.list() {
                let (name, stats) = (&handle.name, &handle.stats);
                let now = stats.snapshot();
                let before = last.insert(name.clone(), now).unwrap_or_default();
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / every.as_secs_f64();
                tracing::info!(
                    pipeline = %name,
                    records_in = now.records_in,
                    records_out = now.records_out,
                    failed = now.records_failed,
                    in_per_s = format!("{:.0}", rate(now.records_in, before.records_in)),
                    out_per_s = format!("{:.0}", rate(now.records_out, before.records_out)),
                    failed_per_s = format!("{:.0}", rate(now.records_failed, before.records_failed)),
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
            }
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
    allow_env: Vec<String>,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let file = TenantsFile::single_user(allow_env).load_pipeline(&pipeline)?;
    let host = Arc::new(host(cache_dir)?);
    let format = match &file.spec.source {
        SourceConfig::File(f) => f.format,
        SourceConfig::Stdin(s) => s.format,
        SourceConfig::Generator(_) | SourceConfig::Kinesis(_) => LineFormat::Lines,
    };
    let built = (file.clone(), host.clone());
    let processors = tokio::task::spawn_blocking(move || app::processors(&built.0, &built.1))
        .await?
        .map_err(anyhow::Error::msg)?;
    let (kept, failed) = (
        Collect::<Record>::default(),
        Collect::<FailedRecord>::default(),
    );
    let plan = engine::PipelinePlan {
        name: file.name.clone(),
        // A file source keeps no checkpoints.
        state_dir: std::env::temp_dir(),
        source: Box::new(SourceConfig::File(FileSourceConfig::new(input, format))),
        batch: file.spec.pipeline.batch,
        processors,
        sink: Box::new(kept.clone()),
        errors: Box::new(failed.clone()),
        backup: None,
        paused: None,
        swaps: None,
        cpu: None,
        memory: u64::MAX,
    };
    let stats = Arc::new(Stats::default());
    let report = engine::run(plan, Arc::new(SystemClock), stats, CancellationToken::new()).await?;
    for record in &kept.take() {
        println!(
            "ok      #{:<5} {}",
            record.sequence_number.as_deref().unwrap_or("-"),
            String::from_utf8_lossy(&record.data)
        );
    }
    for failed in &failed.take() {
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

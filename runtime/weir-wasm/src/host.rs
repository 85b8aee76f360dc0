//! The engine, loaded plugins and the runners that call them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{
    filter, sql_udf, transform, Batch, Column, DataType, Decision, Level, Outcome, Results,
    Signature, Transformed, Values,
};
use sha2::Digest;

use crate::cache::CompileCache;
use crate::error::{Error, GuestError, GuestErrorKind};
use crate::limits::{Grants, Limits, MemoryCap};
use crate::stderr::StderrTail;

/// How often the epoch advances. Timeouts are enforced to this granularity.
pub(crate) const TICK: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache: Option<CompileCache>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            cache: Some(CompileCache::new(CompileCache::default_dir())),
        }
    }
}

/// An engine and the linker of the host's imports for it.
struct Engines {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
}

impl Engines {
    fn new(fuel: bool) -> Result<Self, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(fuel);
        config.epoch_interruption(true);
        // No guard region before each linear memory (the one after it, which bounds checks
        // rely on, stays): the region before is defence in depth only, and costs a memory
        // mapping per instance, of which Linux allows 65,530 per process: with it, a process
        // could not hold 10,000 pipelines with a Wasm step each.
        config.guard_before_linear_memory(false);
        if std::env::var_os("WEIR_PERFMAP").is_some() {
            // Lets `perf` name JIT-compiled guest functions (/tmp/perf-<pid>.map).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))?;
        let mut linker = Linker::<GuestState>::new(&engine);
        // Async WASI: a guest blocked in a host call (a sleep, a socket read) is a future that
        // a call's timeout can drop.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        transform::weir::plugin::host::add_to_linker::<GuestState, HasSelf<GuestState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| Error::Engine(e.to_string()))?;
        link_host_0_1(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Engines {
            engine,
            linker: Arc::new(linker),
        })
    }
}

/// Guests built against `weir:plugin@0.1.0` import `weir:plugin/host@0.1.0`, which wasmtime
/// does not match with 0.2 (for 0.x versions, a minor release may break). The host interface did
/// not change in 0.2, so the same functions serve both.
fn link_host_0_1(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    use transform::weir::plugin::host::Host as _;
    let mut host = linker.instance("weir:plugin/host@0.1.0")?;
    host.func_wrap(
        "log",
        |mut store, (level, message, fields): (Level, String, Vec<(String, String)>)| {
            store.data_mut().log(level, message, fields);
            Ok(())
        },
    )?;
    host.func_wrap("config", |mut store, (): ()| {
        Ok((store.data_mut().config(),))
    })?;
    host.func_wrap("monotonic-now", |mut store, (): ()| {
        Ok((store.data_mut().monotonic_now(),))
    })?;
    Ok(())
}

/// The wasm engines, shared by every plugin of a runtime.
///
/// Fuel metering slows all guest code down (by about a fifth), so there are two engines: plugins
/// whose steps set a fuel budget are compiled with metering, the others without. Both use epoch
/// interruption for timeouts.
pub struct Host {
    plain: Engines,
    metered: Engines,
    cache: Option<CompileCache>,
    /// Components some plugin still uses, by the SHA-256 of their bytes: pipelines that run
    /// the same module share its compiled code (loading it again would map another copy per
    /// pipeline: about 300 KiB of resident memory each for a small Rust guest). Held weakly:
    /// a module no plugin uses any more (an old version, after a reload) is let go.
    loaded: std::sync::Mutex<Vec<Loaded>>,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Host {
    pub fn new(options: HostOptions) -> Result<Self, Error> {
        let plain = Engines::new(false)?;
        let metered = Engines::new(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engines = [plain.engine.clone(), metered.engine.clone()];
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engines.iter().for_each(Engine::increment_epoch);
                    }
                })
                .map_err(|e| Error::Engine(e.to_string()))?
        };
        Ok(Host {
            plain,
            metered,
            cache: options.cache,
            loaded: std::sync::Mutex::new(Vec::new()),
            ticker: Some(ticker),
            stop,
        })
    }

    /// Reads, compiles (or loads from the cache) and links a component. `metered`: compile it
    /// for fuel metering, which runners with a fuel budget need.
    pub fn load(&self, path: &Path, metered: bool) -> Result<Plugin, Error> {
        let wasm = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load_bytes(path, &wasm, metered)
    }

    /// As [`Host::load`], for bytes already in memory; `path` names the module in messages.
    pub fn load_bytes(&self, path: &Path, wasm: &[u8], metered: bool) -> Result<Plugin, Error> {
        let started = Instant::now();
        let engines = if metered { &self.metered } else { &self.plain };
        let compile_err = |e: wasmtime::Error| Error::Compile {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let digest: [u8; 32] = sha2::Sha256::digest(wasm).into();
        let (shared, compiled) = match self.recall(&digest, metered) {
            Some(shared) => (shared, false),
            None => {
                let (component, compiled) = match &self.cache {
                    Some(cache) => cache
                        .load(&engines.engine, wasm, &digest)
                        .map_err(compile_err)?,
                    None => (
                        wasmtime::component::Component::new(&engines.engine, wasm)
                            .map_err(compile_err)?,
                        true,
                    ),
                };
                let shared = Arc::new(Shared(component));
                self.remember(digest, metered, &shared);
                (shared, compiled)
            }
        };
        let component = shared.0.clone();
        tracing::debug!(module = %path.display(), compiled, elapsed = ?started.elapsed(), "Loaded module");

        let exports: Vec<String> = component
            .component_type()
            .exports(&engines.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        let kind = if has("transform") {
            PluginKind::Transform
        } else if has("keep") {
            PluginKind::Filter
        } else if has("functions") && has("call") {
            PluginKind::SqlUdf
        } else if has("process") {
            return Err(Error::UnsupportedWorld {
                path: path.to_owned(),
                world: "video-fragment",
            });
        } else {
            return Err(Error::UnknownWorld {
                path: path.to_owned(),
            });
        };

        let link_err = |e: wasmtime::Error| Error::Link {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let pre = engines
            .linker
            .instantiate_pre(&component)
            .map_err(link_err)?;
        let pre = match kind {
            PluginKind::Transform => {
                Pre::Transform(transform::TransformPre::new(pre).map_err(link_err)?)
            }
            PluginKind::Filter => Pre::Filter(filter::FilterPre::new(pre).map_err(link_err)?),
            PluginKind::SqlUdf => Pre::SqlUdf(sql_udf::SqlUdfPre::new(pre).map_err(link_err)?),
        };
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                _shared: shared,
                engine: engines.engine.clone(),
                metered,
                path: path.to_owned(),
                kind,
                pre,
                compiled,
            }),
        })
    }
}

/// A compiled component, shared by the plugins loaded from the same bytes.
struct Shared(wasmtime::component::Component);

/// A component [`Host`] can hand out again while some plugin uses it.
struct Loaded {
    digest: [u8; 32],
    metered: bool,
    component: std::sync::Weak<Shared>,
}

impl Host {
    fn recall(&self, digest: &[u8; 32], metered: bool) -> Option<Arc<Shared>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .iter()
            .find(|l| l.digest == *digest && l.metered == metered)
            .and_then(|l| l.component.upgrade())
    }

    fn remember(&self, digest: [u8; 32], metered: bool, shared: &Arc<Shared>) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        // Entries of components no plugin uses any more go here, so the list stays as long
        // as the modules in use.
        loaded.retain(|l| {
            l.component.strong_count() > 0 && !(l.digest == digest && l.metered == metered)
        });
        loaded.push(Loaded {
            digest,
            metered,
            component: Arc::downgrade(shared),
        });
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Transform,
    Filter,
    /// Scalar SQL functions, for the SQL step.
    SqlUdf,
}

impl PluginKind {
    /// The world's name in the WIT.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Transform => "transform",
            PluginKind::Filter => "filter",
            PluginKind::SqlUdf => "sql-udf",
        }
    }
}

enum Pre {
    Transform(transform::TransformPre<GuestState>),
    Filter(filter::FilterPre<GuestState>),
    SqlUdf(sql_udf::SqlUdfPre<GuestState>),
}

struct PluginInner {
    /// Keeps its entry in [`Host`]'s loaded components alive.
    _shared: Arc<Shared>,
    engine: Engine,
    metered: bool,
    path: PathBuf,
    kind: PluginKind,
    pre: Pre,
    compiled: bool,
}

/// A compiled, linked component, ready to be instantiated any number of times. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

impl Plugin {
    pub fn kind(&self) -> PluginKind {
        self.inner.kind
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether loading this plugin compiled it (false: it came from the compile cache).
    pub fn was_compiled(&self) -> bool {
        self.inner.compiled
    }

    /// Starts an instance with these settings and runs the guest's `init`. A config the guest
    /// rejects is an error here, so a pipeline fails at start rather than on its first batch.
    pub fn runner(&self, settings: Settings) -> Result<Runner, Error> {
        if settings.limits.fuel.is_some() && !self.inner.metered {
            return Err(Error::Engine(format!(
                "{} was loaded without fuel metering but its limits set a fuel budget",
                self.inner.path.display()
            )));
        }
        let mut runner = Runner {
            plugin: self.clone(),
            settings,
            live: None,
            instances_started: 0,
        };
        block_on(runner.start()).map_err(|e| match e {
            StartError::Rejected(message) => Error::ConfigRejected {
                path: self.inner.path.clone(),
                message,
            },
            StartError::Grant(err) => err,
            StartError::Failed(err) => Error::Instantiate {
                path: self.inner.path.clone(),
                reason: err.message,
            },
        })?;
        Ok(runner)
    }
}

/// Everything that configures one instance.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The guest's config as JSON text (`host.config`).
    pub config_json: String,
    pub limits: Limits,
    pub grants: Grants,
    /// Names the instance in guest log lines (usually the pipeline name).
    pub label: String,
}

/// The answers of one call.
#[derive(Debug)]
pub enum Verdicts {
    /// Checked: one outcome per record, and the output records the outcomes announce.
    Transform(Transformed),
    Filter(Vec<Decision>),
}

/// Per-store state: WASI context, the host import's data and the limiter.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    cap: MemoryCap,
    config_json: Arc<str>,
    label: Arc<str>,
    module: Arc<str>,
    clock_origin: Instant,
    /// For steps without a timeout: the stop switch of the call under way, and when the
    /// instance began starting (it gets [`START_CAP`]). Checked by the epoch callback.
    abort: Option<tokio::sync::watch::Receiver<bool>>,
    starting: Option<Instant>,
}

/// The error a call without a timeout ends with when its pipeline stops.
#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call was cut off: the pipeline is stopping")
    }
}

impl std::error::Error for Aborted {}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl transform::weir::plugin::types::Host for GuestState {}

impl transform::weir::plugin::host::Host for GuestState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        // A guest decides what it logs, not how much of Weir's log it fills.
        let message = truncate(&message, MAX_LOG_MESSAGE);
        let fields = fields
            .iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| format!("{}={}", truncate(k, 64), truncate(v, 256)))
            .collect::<Vec<_>>()
            .join(" ");
        let (pipeline, module) = (&*self.label, &*self.module);
        match level {
            Level::Trace => {
                tracing::trace!(target: "weir::guest", pipeline, module, %fields, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "weir::guest", pipeline, module, %fields, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "weir::guest", pipeline, module, %fields, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "weir::guest", pipeline, module, %fields, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "weir::guest", pipeline, module, %fields, "{message}")
            }
        }
    }

    fn config(&mut self) -> String {
        self.config_json.to_string()
    }

    fn monotonic_now(&mut self) -> u64 {
        self.clock_origin.elapsed().as_nanos() as u64
    }
}

/// The longest guest log message kept, and how many fields of it.
const MAX_LOG_MESSAGE: usize = 4096;
const MAX_LOG_FIELDS: usize = 16;

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How long past its timeout a call blocked in a host call is given before it is dropped: the
/// epoch interrupt reports a call spinning in guest code first, within a tick.
const BLOCKED_GRACE: Duration = Duration::from_millis(50);
/// How long an instance of a step without a timeout may take to start (instantiate and
/// `init`).
const START_CAP: Duration = Duration::from_secs(60);

/// Runs a future to completion from synchronous code: the step pool's threads, builds on blocking
/// threads, the CLI, tests. On a worker thread of a multi-threaded runtime the worker is handed
/// back to the runtime first; elsewhere the ambient runtime (or a small one of the host's own)
/// drives the timers and sockets that async WASI needs.
fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    static OWN: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let own = || {
        OWN.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("weir-wasm-io")
                .enable_all()
                .build()
                .expect("a runtime for guest I/O")
        })
    };
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(move || h.block_on(f))
        }
        // A current-thread runtime cannot be blocked on from inside: run on the host's own.
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(|| own().block_on(f))
                .join()
                .expect("guest call thread")
        }),
        Err(_) => own().block_on(f),
    }
}

enum Bindings {
    Transform(transform::Transform),
    Filter(filter::Filter),
    SqlUdf(sql_udf::SqlUdf),
}

/// What a call asks of the guest.
enum Request<'a> {
    Batch(&'a Batch),
    Functions,
    Udf {
        name: &'a str,
        rows: u32,
        args: &'a [Column],
        /// The declared result type: an answer of another is invalid output.
        returns: DataType,
    },
}

/// The guest's answer to a [`Request`], as the world's export returned it.
enum Answer {
    Verdicts(Verdicts),
    Functions(Vec<Signature>),
    Udf(Result<Results, String>),
}

struct Live {
    store: Store<GuestState>,
    bindings: Bindings,
    stderr: StderrTail,
}

enum StartError {
    Rejected(String),
    Grant(Error),
    Failed(GuestError),
}

/// Calls one plugin, one batch at a time, replacing its instance after any failure.
pub struct Runner {
    plugin: Plugin,
    settings: Settings,
    live: Option<Live>,
    instances_started: u64,
}

impl Runner {
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// How many instances this runner has started; more than one means earlier ones failed.
    pub fn instances_started(&self) -> u64 {
        self.instances_started
    }

    fn wasi_ctx(&self, stderr: &StderrTail) -> Result<WasiCtx, Error> {
        let grants = &self.settings.grants;
        let mut builder = WasiCtxBuilder::new();
        builder.stderr(stderr.clone());
        for (name, value) in &grants.env {
            builder.env(name, value);
        }
        for (dir, guest) in &grants.dirs {
            builder
                .preopened_dir(dir, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| Error::Grant {
                    dir: dir.clone(),
                    reason: format!("{e:#}"),
                })?;
        }
        // TCP and UDP are off in a fresh context (and stay off unless granted); a grant turns
        // them on, and the address check decides where they may go.
        if grants.network {
            builder
                .inherit_network()
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true);
        } else if !grants.hosts.is_empty() {
            let mut allowed = std::collections::HashSet::new();
            for host in &grants.hosts {
                let addrs =
                    std::net::ToSocketAddrs::to_socket_addrs(host.as_str()).map_err(|e| {
                        Error::GrantHost {
                            host: host.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                allowed.extend(addrs);
            }
            let allowed = Arc::new(allowed);
            builder
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true)
                .socket_addr_check(move |addr, usage| {
                    use wasmtime_wasi::sockets::SocketAddrUse;
                    // Connecting binds an ephemeral local port first; listening on a chosen
                    // address is not granted.
                    let ephemeral =
                        matches!(usage, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                            && addr.ip().is_unspecified()
                            && addr.port() == 0;
                    let ok = ephemeral || allowed.contains(&addr);
                    Box::pin(async move { ok })
                });
        }
        Ok(builder.build())
    }

    async fn start(&mut self) -> Result<(), StartError> {
        self.live = None;
        self.instances_started += 1;
        let inner = &self.plugin.inner;
        let stderr = StderrTail::default();
        let wasi = self.wasi_ctx(&stderr).map_err(StartError::Grant)?;
        let state = GuestState {
            wasi,
            table: ResourceTable::new(),
            cap: MemoryCap {
                max: usize::try_from(self.settings.limits.memory).unwrap_or(usize::MAX),
                used: 0,
                hit: false,
            },
            config_json: self.settings.config_json.as_str().into(),
            label: self.settings.label.as_str().into(),
            module: inner.path.display().to_string().into(),
            clock_origin: Instant::now(),
            abort: None,
            starting: Some(Instant::now()),
        };
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|s| &mut s.cap);
        if self.settings.limits.timeout.is_none() {
            // No timeout: the epoch still comes by, every ABORT_CHECK, to see whether the call
            // must end (its pipeline stops, or the instance is still starting past START_CAP).
            // A call spinning in guest code never yields to an async timer; this reaches it.
            store.epoch_deadline_callback(|ctx| {
                let state = ctx.data();
                let aborted = state.abort.as_ref().is_some_and(|a| *a.borrow());
                let too_slow = state.starting.is_some_and(|t| t.elapsed() > START_CAP);
                if aborted || too_slow {
                    return Err(Aborted.into());
                }
                Ok(wasmtime::UpdateDeadline::Continue(ABORT_CHECK_TICKS))
            });
        }
        arm(&mut store, &self.settings.limits, inner.metered);
        let limits = self.settings.limits.clone();
        let started = async {
            let bindings = match &inner.pre {
                Pre::Transform(pre) => pre
                    .instantiate_async(&mut store)
                    .await
                    .map(Bindings::Transform),
                Pre::Filter(pre) => pre
                    .instantiate_async(&mut store)
                    .await
                    .map(Bindings::Filter),
                Pre::SqlUdf(pre) => pre
                    .instantiate_async(&mut store)
                    .await
                    .map(Bindings::SqlUdf),
            }?;
            let init = match &bindings {
                Bindings::Transform(b) => b.call_init(&mut store).await,
                Bindings::Filter(b) => b.call_init(&mut store).await,
                Bindings::SqlUdf(b) => b.call_init(&mut store).await,
            };
            init.map(|init| (bindings, init))
        };
        // A step without a timeout still gets one for starting: a guest whose `init` never
        // returns must not hold up whoever builds the pipeline (a reload, `weir validate`).
        let bound = limits.timeout.map_or(START_CAP, |t| t + BLOCKED_GRACE);
        let started = tokio::time::timeout(bound, started).await;
        let (bindings, init) = match started {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                return Err(StartError::Failed(classify(&store, &stderr, &limits, e)));
            }
            Err(_) => {
                return Err(StartError::Failed(GuestError {
                    kind: GuestErrorKind::Timeout,
                    message: format!(
                        "the instance did not start (instantiation and `init`) within {bound:?}"
                    ),
                }))
            }
        };
        if let Err(message) = init {
            return Err(StartError::Rejected(message));
        }
        store.data_mut().starting = None;
        self.live = Some(Live {
            store,
            bindings,
            stderr,
        });
        Ok(())
    }

    /// Runs one batch through the guest. On error the instance is discarded; the next call
    /// starts a fresh one.
    pub fn call(&mut self, batch: &Batch) -> Result<Verdicts, GuestError> {
        block_on(self.call_async(batch, None))
    }

    /// As [`Runner::call`], and gives up at once when `abort` turns true (the pipeline stops
    /// and cannot wait for a guest without a timeout).
    pub fn call_until(
        &mut self,
        batch: &Batch,
        abort: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Verdicts, GuestError> {
        block_on(self.call_async(batch, Some(abort.clone())))
    }

    /// The call itself. CPU is bounded by the epoch interrupt (the timeout) and fuel; a call
    /// blocked in a host call is dropped once its timeout (and [`BLOCKED_GRACE`]) has passed,
    /// or when `abort` turns true.
    pub async fn call_async(
        &mut self,
        batch: &Batch,
        abort: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Verdicts, GuestError> {
        match self.request(Request::Batch(batch), abort).await? {
            Answer::Verdicts(v) => Ok(v),
            _ => Err(self.wrong_world("a batch of records")),
        }
    }

    /// The functions a `sql-udf` module provides (its `functions` export).
    pub fn functions(&mut self) -> Result<Vec<Signature>, GuestError> {
        match block_on(self.request(Request::Functions, None))? {
            Answer::Functions(f) => Ok(f),
            _ => Err(self.wrong_world("its functions")),
        }
    }

    /// Evaluates a `sql-udf` function over `rows` rows of `args`, whose result is declared
    /// `returns`. `Ok(Err(message))`: the guest refused the whole call, and keeps its instance;
    /// `Err`: the call itself failed (a trap, a limit, an answer of the wrong size or type, or
    /// `abort` turning true), and the instance is replaced. A call with no timeout of its own
    /// gives up as soon as `abort` turns true.
    pub fn call_udf(
        &mut self,
        name: &str,
        rows: u32,
        args: &[Column],
        returns: DataType,
        abort: Option<&tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Result<Results, String>, GuestError> {
        let request = Request::Udf {
            name,
            rows,
            args,
            returns,
        };
        match block_on(self.request(request, abort.cloned()))? {
            Answer::Udf(r) => Ok(r),
            _ => Err(self.wrong_world("SQL function calls")),
        }
    }

    fn wrong_world(&self, what: &str) -> GuestError {
        GuestError {
            kind: GuestErrorKind::InvalidOutput,
            message: format!(
                "{} implements the `{}` world, which does not take {what}",
                self.plugin.inner.path.display(),
                self.plugin.inner.kind.world()
            ),
        }
    }

    async fn request(
        &mut self,
        request: Request<'_>,
        abort: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Answer, GuestError> {
        if self.live.is_none() {
            self.start().await.map_err(|e| match e {
                StartError::Rejected(message) => GuestError {
                    kind: GuestErrorKind::Instantiate,
                    message: format!("init rejected the config: {message}"),
                },
                StartError::Grant(err) => GuestError {
                    kind: GuestErrorKind::Instantiate,
                    message: err.to_string(),
                },
                StartError::Failed(err) => GuestError {
                    kind: GuestErrorKind::Instantiate,
                    message: err.to_string(),
                },
            })?;
        }
        let live = self.live.as_mut().expect("started above");
        arm(
            &mut live.store,
            &self.settings.limits,
            self.plugin.inner.metered,
        );
        // Only a step without a timeout of its own can be aborted: one with a timeout ends
        // by itself, and its batch is not cut short because its pipeline stops.
        let abort = abort.filter(|_| self.settings.limits.timeout.is_none());
        live.store.data_mut().abort = abort.clone();
        let records = match &request {
            Request::Batch(batch) => batch.data_ends.len(),
            Request::Functions => 0,
            Request::Udf { rows, .. } => *rows as usize,
        };
        let limits = &self.settings.limits;
        let call = async {
            match (&live.bindings, &request) {
                (Bindings::Transform(b), Request::Batch(batch)) => b
                    .call_transform(&mut live.store, batch)
                    .await
                    .map(|t| Some(Answer::Verdicts(Verdicts::Transform(t)))),
                (Bindings::Filter(b), Request::Batch(batch)) => b
                    .call_keep(&mut live.store, batch)
                    .await
                    .map(|d| Some(Answer::Verdicts(Verdicts::Filter(d)))),
                (Bindings::SqlUdf(b), Request::Functions) => b
                    .call_functions(&mut live.store)
                    .await
                    .map(|f| Some(Answer::Functions(f))),
                (
                    Bindings::SqlUdf(b),
                    Request::Udf {
                        name, rows, args, ..
                    },
                ) => b
                    .call_call(&mut live.store, name, *rows, args)
                    .await
                    .map(|r| Some(Answer::Udf(r))),
                _ => Ok(None),
            }
        };
        let deadline = async {
            match limits.timeout {
                Some(t) => tokio::time::sleep(t + BLOCKED_GRACE).await,
                None => std::future::pending().await,
            }
        };
        let aborted = async {
            match abort {
                Some(mut a) => {
                    let _ = a.wait_for(|stop| *stop).await;
                }
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            // A call that finishes wins over a deadline or an abort seen at the same time.
            biased;
            r = call => Ok(r),
            _ = deadline => Err(GuestError {
                kind: GuestErrorKind::Timeout,
                message: blocked_message(limits),
            }),
            _ = aborted => Err(GuestError {
                kind: GuestErrorKind::Aborted,
                message: Aborted.to_string(),
            }),
        };
        let answer = match result {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => return Err(self.wrong_world("this request")),
            Ok(Err(e)) => {
                let err = classify(&live.store, &live.stderr, limits, e);
                self.live = None;
                return Err(err);
            }
            Err(err) => {
                // Dropped mid-call: the instance is in no state to be entered again.
                self.live = None;
                return Err(err);
            }
        };
        let typed = match (&request, &answer) {
            (Request::Udf { returns, .. }, Answer::Udf(Ok(r))) => {
                of_type(&r.column.values, *returns)
            }
            _ => Ok(()),
        };
        if let Err(message) = check(&answer, records).and(typed) {
            // A guest that loses track of records cannot be trusted with the next batch either.
            self.live = None;
            return Err(GuestError {
                kind: GuestErrorKind::InvalidOutput,
                message,
            });
        }
        let returned = output_bytes(&answer);
        if returned as u64 > self.settings.limits.output {
            // As with any failure, the instance is not trusted with the next batch.
            self.live = None;
            return Err(GuestError {
                kind: GuestErrorKind::OutputLimit,
                message: format!(
                    "the guest returned {returned} bytes (records, keys and messages), over its output cap of {} bytes",
                    self.settings.limits.output
                ),
            });
        }
        Ok(answer)
    }

    /// Fuel left in the current instance after its last call, if a fuel budget is set.
    pub fn fuel_remaining(&self) -> Option<u64> {
        self.settings.limits.fuel?;
        self.live.as_ref().and_then(|l| l.store.get_fuel().ok())
    }
}

/// Bytes of an answer that count against `limits.output`: record data, new keys,
/// partition keys and failure messages.
fn output_bytes(answer: &Answer) -> usize {
    let verdicts = match answer {
        Answer::Verdicts(v) => v,
        Answer::Functions(f) => return f.iter().map(|s| s.name.len() + s.args.len()).sum(),
        Answer::Udf(Err(message)) => return message.len(),
        Answer::Udf(Ok(r)) => {
            let values = match &r.column.values {
                Values::Boolean(v) => v.len(),
                Values::Int64(v) | Values::TimestampMs(v) => v.len() * 8,
                Values::Float64(v) => v.len() * 8,
                Values::Utf8(t) => t.data.len() + t.ends.len() * 4,
                Values::Binary(b) => b.data.len() + b.ends.len() * 4,
            };
            let errors: usize = r.errors.iter().map(|e| e.message.len() + 4).sum();
            return values + r.column.nulls.len() * 4 + errors;
        }
    };
    match verdicts {
        Verdicts::Transform(t) => {
            let failures: usize = t
                .outcomes
                .iter()
                .map(|o| match o {
                    Outcome::ProcessingFailed(m) => m.len(),
                    _ => 0,
                })
                .sum();
            let keys: usize = t.keys.iter().map(|k| k.key.len()).sum();
            let partition: usize = t
                .partition_keys
                .iter()
                .map(|k| k.name.len() + k.value.len())
                .sum();
            t.data.len() + failures + keys + partition
        }
        Verdicts::Filter(d) => d
            .iter()
            .map(|d| match d {
                Decision::Failed(m) => m.len(),
                _ => 0,
            })
            .sum(),
    }
}

fn blocked_message(limits: &Limits) -> String {
    format!(
        "the call ran past its timeout of {} (blocked in a host call)",
        limits
            .timeout
            .map(|t| format!("{t:?}"))
            .unwrap_or_else(|| "none".into())
    )
}

/// Checks that an answer accounts for every record of a batch of `records`, so that callers can
/// index it without further checks.
fn check(answer: &Answer, records: usize) -> Result<(), String> {
    let verdicts = match answer {
        Answer::Verdicts(v) => v,
        Answer::Functions(_) | Answer::Udf(Err(_)) => return Ok(()),
        Answer::Udf(Ok(r)) => return check_results(r, records),
    };
    let answered = match verdicts {
        Verdicts::Transform(t) => t.outcomes.len(),
        Verdicts::Filter(d) => d.len(),
    };
    if answered != records {
        return Err(format!(
            "returned {answered} results for a batch of {records} records"
        ));
    }
    let Verdicts::Transform(t) = verdicts else {
        return Ok(());
    };
    let announced: u64 = t
        .outcomes
        .iter()
        .map(|o| match o {
            Outcome::Ok(n) => u64::from(*n),
            _ => 0,
        })
        .sum();
    let outputs = t.data_ends.len();
    if announced != outputs as u64 {
        return Err(format!(
            "its outcomes announce {announced} output records but it returned {outputs}"
        ));
    }
    let mut start = 0u32;
    for &end in &t.data_ends {
        if end < start || end as usize > t.data.len() {
            return Err(format!(
                "output data offsets are not increasing within the {} data bytes",
                t.data.len()
            ));
        }
        start = end;
    }
    if let Some(k) = t.keys.iter().find(|k| k.index as usize >= outputs) {
        return Err(format!(
            "a new key names output record {} of {outputs}",
            k.index
        ));
    }
    if let Some(k) = t
        .partition_keys
        .iter()
        .find(|k| k.index as usize >= records)
    {
        return Err(format!(
            "a partition key names input record {} of {records}",
            k.index
        ));
    }
    Ok(())
}

/// Whether a UDF's result column is of its declared type.
fn of_type(values: &Values, declared: DataType) -> Result<(), String> {
    let (got, name) = match values {
        Values::Boolean(_) => (DataType::Boolean, "boolean"),
        Values::Int64(_) => (DataType::Int64, "int64"),
        Values::Float64(_) => (DataType::Float64, "float64"),
        Values::Utf8(_) => (DataType::Utf8, "utf8"),
        Values::Binary(_) => (DataType::Binary, "binary"),
        Values::TimestampMs(_) => (DataType::TimestampMs, "timestamp-ms"),
    };
    if got == declared {
        Ok(())
    } else {
        Err(format!(
            "returned {name} values; the function is declared to return {declared:?}"
        ))
    }
}

/// Checks a UDF's answer for `rows` rows: one value per row, NULLs and errors naming rows that
/// exist, and string offsets that slice the data (on character boundaries), so that callers can
/// index it without further checks.
fn check_results(r: &Results, rows: usize) -> Result<(), String> {
    fn ends_ok(ends: &[u32], len: usize, boundary: impl Fn(usize) -> bool) -> bool {
        let mut start = 0u32;
        ends.iter().all(|&end| {
            let ok = end >= start && (end as usize) <= len && boundary(end as usize);
            start = end;
            ok
        })
    }
    let (values, offsets_ok) = match &r.column.values {
        Values::Boolean(v) => (v.len(), true),
        Values::Int64(v) | Values::TimestampMs(v) => (v.len(), true),
        Values::Float64(v) => (v.len(), true),
        Values::Utf8(t) => (
            t.ends.len(),
            ends_ok(&t.ends, t.data.len(), |i| t.data.is_char_boundary(i)),
        ),
        Values::Binary(b) => (b.ends.len(), ends_ok(&b.ends, b.data.len(), |_| true)),
    };
    if values != rows {
        return Err(format!("returned {values} values for {rows} rows"));
    }
    if !offsets_ok {
        return Err("its string offsets do not slice its string data".into());
    }
    if let Some(n) = r.column.nulls.iter().find(|&&n| n as usize >= rows) {
        return Err(format!("a NULL names row {n} of {rows}"));
    }
    if let Some(e) = r.errors.iter().find(|e| e.row as usize >= rows) {
        return Err(format!("an error names row {} of {rows}", e.row));
    }
    Ok(())
}

/// Gives a store its per-call budget.
fn arm(store: &mut Store<GuestState>, limits: &Limits, metered: bool) {
    // On the metered engine no budget means an unreachable one; the plain engine has no fuel
    // (and `Plugin::runner` refuses a budget there).
    if metered {
        let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
    }
    let ticks = match limits.timeout {
        Some(t) => (t.as_nanos() / TICK.as_nanos()) as u64 + 1,
        // The epoch callback decides (see `Runner::start`).
        None => ABORT_CHECK_TICKS,
    };
    store.set_epoch_deadline(ticks);
    // What lifting a call's answer may allocate on the host: the output cap, plus room for
    // the per-record parts of the answer. A guest whose answer points many times at the same
    // bytes is stopped here, before the host copies them.
    let fuel = usize::try_from(limits.output)
        .unwrap_or(usize::MAX)
        .saturating_add(HOSTCALL_OVERHEAD);
    store.set_hostcall_fuel(fuel);
}

/// How often a call without a timeout looks at its stop switch: 20 ticks, 100 ms.
const ABORT_CHECK_TICKS: u64 = 20;

/// Hostcall fuel beyond the output cap: outcomes, offsets and keys of a large batch.
const HOSTCALL_OVERHEAD: usize = 4 << 20;

/// Turns a wasmtime error from a call into the reason recorded with the batch's records.
fn classify(
    store: &Store<GuestState>,
    stderr: &StderrTail,
    limits: &Limits,
    err: wasmtime::Error,
) -> GuestError {
    let trap = err.downcast_ref::<Trap>().copied();
    let tail = stderr.text();
    let with_tail = |msg: String| {
        if tail.is_empty() {
            msg
        } else {
            format!("{msg}; guest stderr: {tail}")
        }
    };
    if err.downcast_ref::<Aborted>().is_some() {
        return GuestError {
            kind: if store.data().starting.is_some() {
                GuestErrorKind::Timeout
            } else {
                GuestErrorKind::Aborted
            },
            message: if store.data().starting.is_some() {
                format!(
                    "the instance did not start (instantiation and `init`) within {START_CAP:?}"
                )
            } else {
                Aborted.to_string()
            },
        };
    }
    if format!("{err:#}").contains("fuel allocated for hostcalls has been exhausted") {
        return GuestError {
            kind: GuestErrorKind::OutputLimit,
            message: format!(
                "the guest's answer would copy more than its output cap of {} bytes to the host",
                limits.output
            ),
        };
    }
    if store.data().cap.hit {
        return GuestError {
            kind: GuestErrorKind::MemoryLimit,
            message: format!(
                "the guest tried to use more than its memory cap of {} bytes",
                limits.memory
            ),
        };
    }
    match trap {
        Some(Trap::OutOfFuel) => GuestError {
            kind: GuestErrorKind::FuelExhausted,
            message: format!(
                "the call used up its fuel budget of {}",
                limits.fuel.unwrap_or(u64::MAX)
            ),
        },
        Some(Trap::Interrupt) => GuestError {
            kind: GuestErrorKind::Timeout,
            message: format!(
                "the call ran past its timeout of {}",
                limits
                    .timeout
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|| "none".into())
            ),
        },
        Some(trap) => GuestError {
            kind: GuestErrorKind::Trap,
            message: with_tail(format!("guest trapped: {trap}")),
        },
        None => GuestError {
            kind: GuestErrorKind::Trap,
            message: with_tail(format!("{err:#}")),
        },
    }
}

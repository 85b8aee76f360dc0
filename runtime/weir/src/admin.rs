//! The admin API and Prometheus metrics of a `weir run`: an HTTP/1.1 server (hyper) on a
//! listener the caller binds (loopback by default, see `weir run --admin`).
//!
//! Routes:
//! - `GET /metrics`: Prometheus text format, per pipeline (and per Kinesis shard).
//! - `GET /pipelines`, `GET /pipelines/<name>`: state, version, file, last error, counters.
//! - `POST /pipelines/<name>/pause`, `POST /pipelines/<name>/resume`.
//! - `POST /reload` (rescan every pipeline file and module), `POST /pipelines/<name>/reload`
//!   (rebuild that pipeline even if nothing changed): answered with what the reload did.
//!
//! Invariants:
//! - The server only reads counters, flips pause switches and hands reload requests to the
//!   supervisor; it never touches records, so a slow or hostile client cannot stall a pipeline.
//! - No web page can drive it through a browser (CSRF, DNS rebinding). Every request must name
//!   the server in `Host` (an IP address or `localhost` with its port, or a name given with
//!   `--admin-host`), and one that carries an `Origin` must come from such an origin; others
//!   get 403. A `POST` must be `Content-Type: application/json` (a cross-origin page cannot
//!   send that without a preflight, which is never granted) and carry `Authorization: Bearer
//!   <token>`: the token of `--admin-token-file`, or one made at start into
//!   `<state dir>/admin-token` (mode 0600). Reads need no token, so Prometheus can scrape.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

type HttpResponse = hyper::Response<Full<Bytes>>;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;

/// How a pipeline is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Stopped,
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// What the admin API knows of one pipeline. One handle lives as long as the pipeline's name:
/// a reload keeps it (and its counters) and bumps the version.
pub struct PipelineHandle {
    pub name: String,
    pub stats: Arc<Stats>,
    pub paused: tokio::sync::watch::Sender<bool>,
    status: Mutex<Status>,
}

/// A pipeline's state as the admin API shows it.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    /// Why the pipeline failed.
    pub error: Option<String>,
    /// 1 at start, plus one per successful reload.
    pub version: u32,
    pub file: String,
    pub tenant: String,
    pub last_reload: Option<ReloadOutcome>,
}

/// What the last reload of a pipeline did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadOutcome {
    /// `swapped` (new processors at a batch boundary), `restarted` (drained and started again
    /// from its checkpoint), `unchanged` or `failed`.
    pub action: &'static str,
    /// Why it failed; the old version keeps running.
    pub error: Option<String>,
    /// From the change being noticed to the new version running.
    pub millis: f64,
    /// Wall-clock time of the reload, in ms since the epoch.
    pub at_ms: i64,
}

impl ReloadOutcome {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "action": self.action,
            "error": self.error,
            "millis": self.millis,
            "at_ms": self.at_ms,
        })
    }
}

impl PipelineHandle {
    pub fn new(name: &str, file: String, tenant: &str, stats: Arc<Stats>) -> Self {
        PipelineHandle {
            name: name.to_string(),
            stats,
            paused: tokio::sync::watch::channel(false).0,
            status: Mutex::new(Status {
                state: State::Running,
                error: None,
                version: 1,
                file,
                tenant: tenant.to_string(),
                last_reload: None,
            }),
        }
    }

    /// Records how the pipeline ended.
    pub fn finished(&self, error: Option<String>) {
        let mut status = self.lock();
        status.state = if error.is_some() {
            State::Failed
        } else {
            State::Stopped
        };
        status.error = error;
    }

    /// Records a reload: a successful one bumps the version (and restarts count as running
    /// again, paused or not as the switch says).
    pub fn reloaded(&self, outcome: ReloadOutcome, tenant: &str, file: &str) {
        let mut status = self.lock();
        if outcome.error.is_none() && outcome.action != "unchanged" {
            status.version += 1;
            status.tenant = tenant.to_string();
            status.file = file.to_string();
            if matches!(status.state, State::Stopped | State::Failed) {
                status.state = if *self.paused.borrow() {
                    State::Paused
                } else {
                    State::Running
                };
                status.error = None;
            }
        }
        status.last_reload = Some(outcome);
    }

    pub fn status(&self) -> Status {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn json(&self) -> serde_json::Value {
        let status = self.status();
        let s = self.stats.snapshot();
        serde_json::json!({
            "name": self.name,
            "tenant": status.tenant,
            "state": status.state.as_str(),
            "version": status.version,
            "file": status.file,
            "last_error": status.error,
            "last_reload": status.last_reload.as_ref().map(ReloadOutcome::json),
            "records_in": s.records_in,
            "records_out": s.records_out,
            "records_dropped": s.records_dropped,
            "records_failed": s.records_failed,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "objects_written": s.objects_written,
            "records_undelivered": s.records_undelivered,
            "destinations": {
                "sink": health_json(&self.stats.sink_health),
                "errors": health_json(&self.stats.errors_health),
                "backup": health_json(&self.stats.backup_health),
            },
        })
    }

    fn set_paused(&self, pause: bool) -> Result<(), &'static str> {
        let mut status = self.lock();
        match (status.state, pause) {
            (State::Running, true) => status.state = State::Paused,
            (State::Paused, false) => status.state = State::Running,
            (State::Running, false) | (State::Paused, true) => return Ok(()),
            _ => return Err("the pipeline is not running"),
        }
        self.paused.send_replace(pause);
        Ok(())
    }
}

/// A destination's health as the status shows it: `up`, since when it fails, the last error.
fn health_json(health: &crate::stats::Health) -> serde_json::Value {
    let h = health.read();
    serde_json::json!({
        "up": h.down_since_ms.is_none(),
        "down_since_ms": h.down_since_ms,
        "last_error": h.last_error,
        "failures": h.failures,
    })
}

/// A reload asked for through the API: `only` names one pipeline to rebuild even if its files
/// did not change; `None` rescans every pipeline file and module.
pub struct ReloadRequest {
    pub only: Option<String>,
    pub reply: tokio::sync::oneshot::Sender<serde_json::Value>,
}

/// The pipelines the API serves, which reloads add and remove, and where reload requests go.
#[derive(Default)]
pub struct Registry {
    pipelines: std::sync::RwLock<Vec<Arc<PipelineHandle>>>,
    reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
}

impl Registry {
    pub fn new(reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>) -> Self {
        Registry {
            pipelines: Default::default(),
            reload,
        }
    }

    pub fn list(&self) -> Vec<Arc<PipelineHandle>> {
        self.pipelines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<PipelineHandle>> {
        self.list().into_iter().find(|p| p.name == name)
    }

    /// Adds a pipeline, or replaces the one of the same name.
    pub fn insert(&self, handle: Arc<PipelineHandle>) {
        let mut all = self.pipelines.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|p| p.name != handle.name);
        all.push(handle);
        all.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn remove(&self, name: &str) {
        self.pipelines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| p.name != name);
    }
}

/// Who may use the admin API: the token mutating requests need, and the names the server
/// answers to besides IP addresses and `localhost`.
#[derive(Debug, Clone)]
pub struct Access {
    pub token: String,
    /// Extra host names (`name` or `name:port`) a `Host` or `Origin` may use.
    pub hosts: Vec<String>,
}

impl Access {
    /// Reads the token from `file`, or makes one into `state_dir/admin-token` (mode 0600);
    /// returns the access and the token file's path.
    pub fn load_or_create(
        file: Option<&std::path::Path>,
        state_dir: &std::path::Path,
        hosts: Vec<String>,
    ) -> std::io::Result<(Access, std::path::PathBuf)> {
        if let Some(path) = file {
            let token = std::fs::read_to_string(path)?.trim().to_string();
            if token.len() < 16 {
                return Err(std::io::Error::other(format!(
                    "{}: an admin token needs at least 16 characters",
                    path.display()
                )));
            }
            return Ok((Access { token, hosts }, path.to_path_buf()));
        }
        let token: String = (0..2)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        let path = state_dir.join("admin-token");
        crate::durable::create_dirs(state_dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&path)?;
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())?;
        f.sync_all()?;
        Ok((Access { token, hosts }, path))
    }
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    access: Access,
    shutdown: CancellationToken,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "Admin API: no local address");
            return;
        }
    };
    let access = Arc::new(access);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "Admin API: accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let (registry, access) = (registry.clone(), access.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (registry, access) = (registry.clone(), access.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(handle(req, &registry, &access, local).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // A client that never finishes is dropped; a reload may take as long as
            // compiling a module.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(300), conn).await;
        });
    }
}

/// The most bytes of a request body read (bodies are ignored, but must be read).
const MAX_BODY: usize = 64 << 10;

async fn handle(
    req: Request<Incoming>,
    registry: &Registry,
    access: &Access,
    local: SocketAddr,
) -> HttpResponse {
    if let Err((status, message)) = guard(&req, access, local) {
        let mut r = reply(error(status, message));
        if status == "401 Unauthorized" {
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
        }
        return r;
    }
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .is_err()
    {
        return reply(error(
            "413 Payload Too Large",
            "the request body is too large",
        ));
    }
    reply(respond(&method, &path, registry).await)
}

fn reply((status, content_type, body): Response3) -> HttpResponse {
    let code = status
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    hyper::Response::builder()
        .status(code)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header("X-Content-Type-Options", "nosniff")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers")
}

type Response3 = (&'static str, &'static str, String);

/// Refuses what a browser page could send (a foreign `Host` or `Origin`, a `POST` that is not
/// JSON) and `POST`s without the token.
fn guard(
    req: &Request<Incoming>,
    access: &Access,
    local: SocketAddr,
) -> Result<(), (&'static str, &'static str)> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
    };
    let forbidden = "403 Forbidden";
    match header("host") {
        Some(host) if ours(host, access, local) => {}
        _ => return Err((forbidden, "the Host header does not name this server")),
    }
    if let Some(origin) = header("origin") {
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !host.is_some_and(|h| ours(h, access, local)) {
            return Err((forbidden, "requests from other origins are refused"));
        }
    }
    if header("sec-fetch-site").is_some_and(|s| s == "cross-site") {
        return Err((forbidden, "requests from other sites are refused"));
    }
    if req.method() == hyper::Method::POST {
        let json = header("content-type").is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return Err((forbidden, "a POST must be Content-Type: application/json"));
        }
        let token = header("authorization").and_then(|a| a.strip_prefix("Bearer "));
        if !token.is_some_and(|t| same(t.trim().as_bytes(), access.token.as_bytes())) {
            return Err((
                "401 Unauthorized",
                "a POST needs Authorization: Bearer <token> (the admin token file)",
            ));
        }
    }
    Ok(())
}

/// Whether `host` (`name[:port]`, as in `Host` or an origin) names this server: an IP address
/// or `localhost` with the listening port, or a configured name. A DNS name could be an
/// attacker's pointing at 127.0.0.1 (rebinding), so no other name is trusted.
fn ours(host: &str, access: &Access, local: SocketAddr) -> bool {
    let host = host.trim().to_ascii_lowercase();
    if access.hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(&host) || format!("{h}:{}", local.port()).eq_ignore_ascii_case(&host)
    }) {
        return true;
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') && (n.starts_with('[') || !n.contains(':')) => {
            (n, Some(p))
        }
        _ => (host.as_str(), None),
    };
    let default_port = local.port() == 80;
    let port_ok = match port {
        Some(p) => p.parse::<u16>().ok() == Some(local.port()),
        None => default_port,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    port_ok && (name == "localhost" || name.parse::<std::net::IpAddr>().is_ok())
}

/// Compares secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const JSON: &str = "application/json";

/// Answers a request; reloads are handed to the supervisor and answered with what it did.
async fn respond(method: &str, path: &str, registry: &Registry) -> Response3 {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let only = match (method, parts.as_slice()) {
        ("POST", ["reload"]) => None,
        ("POST", ["pipelines", name, "reload"]) => {
            if registry.get(name).is_none() {
                return error("404 Not Found", "no such pipeline");
            }
            Some(name.to_string())
        }
        _ => return route(method, path, &registry.list()),
    };
    let Some(tx) = &registry.reload else {
        return error("409 Conflict", "reloading is not available in this run");
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if tx.send(ReloadRequest { only, reply }).await.is_err() {
        return error("503 Service Unavailable", "weir is shutting down");
    }
    match answer.await {
        Ok(summary) => ("200 OK", JSON, summary.to_string()),
        Err(_) => error("503 Service Unavailable", "weir is shutting down"),
    }
}

fn error(status: &'static str, message: &str) -> Response3 {
    (
        status,
        JSON,
        serde_json::json!({ "error": message }).to_string(),
    )
}

fn route(method: &str, path: &str, pipelines: &[Arc<PipelineHandle>]) -> Response3 {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let find = |name: &str| pipelines.iter().find(|p| p.name == name);
    match (method, parts.as_slice()) {
        ("GET", ["metrics"]) => (
            "200 OK",
            "text/plain; version=0.0.4",
            metrics(pipelines, chrono::Utc::now().timestamp_millis()),
        ),
        ("GET", ["pipelines"]) => (
            "200 OK",
            JSON,
            serde_json::Value::Array(pipelines.iter().map(|p| p.json()).collect()).to_string(),
        ),
        ("GET", ["pipelines", name]) => match find(name) {
            Some(p) => ("200 OK", JSON, p.json().to_string()),
            None => error("404 Not Found", "no such pipeline"),
        },
        ("POST", ["pipelines", name, action @ ("pause" | "resume")]) => match find(name) {
            Some(p) => match p.set_paused(*action == "pause") {
                Ok(()) => ("200 OK", JSON, p.json().to_string()),
                Err(e) => error("409 Conflict", e),
            },
            None => error("404 Not Found", "no such pipeline"),
        },
        (_, ["metrics"] | ["pipelines", ..] | ["reload"]) => {
            error("405 Method Not Allowed", "method not allowed")
        }
        _ => error("404 Not Found", "no such route"),
    }
}

/// Records read and not yet delivered, dropped or failed.
fn in_flight(s: &crate::stats::Snapshot) -> u64 {
    s.records_in
        .saturating_sub(s.records_out + s.records_dropped + s.records_failed)
}

/// Prometheus text exposition of every pipeline's counters, labelled by pipeline and tenant.
pub fn metrics(pipelines: &[Arc<PipelineHandle>], now_ms: i64) -> String {
    let mut out = String::new();
    let label = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let rows: Vec<_> = pipelines
        .iter()
        .map(|p| {
            let status = p.status();
            let labels = format!(
                "pipeline=\"{}\",tenant=\"{}\"",
                label(&p.name),
                label(&status.tenant)
            );
            (labels, p.stats.snapshot(), status, p)
        })
        .collect();
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&crate::stats::Snapshot, &Status, i64) -> Option<f64>,
    );
    let series: [Series; 15] = [
        (
            "weir_records_in_total",
            "counter",
            "Records the source emitted.",
            |s, _, _| Some(s.records_in as f64),
        ),
        (
            "weir_records_out_total",
            "counter",
            "Records the sink delivered.",
            |s, _, _| Some(s.records_out as f64),
        ),
        (
            "weir_records_dropped_total",
            "counter",
            "Records a step dropped on purpose.",
            |s, _, _| Some(s.records_dropped as f64),
        ),
        (
            "weir_records_failed_total",
            "counter",
            "Records sent to the error output.",
            |s, _, _| Some(s.records_failed as f64),
        ),
        (
            "weir_records_undelivered_total",
            "counter",
            "Records given up at shutdown while their destination still failed: read again from the checkpoint, or kept under the state directory.",
            |s, _, _| Some(s.records_undelivered as f64),
        ),
        (
            "weir_bytes_in_total",
            "counter",
            "Bytes of record data the source emitted.",
            |s, _, _| Some(s.bytes_in as f64),
        ),
        (
            "weir_bytes_out_total",
            "counter",
            "Bytes the sink delivered.",
            |s, _, _| Some(s.bytes_out as f64),
        ),
        (
            "weir_objects_written_total",
            "counter",
            "Objects durably stored.",
            |s, _, _| Some(s.objects_written as f64),
        ),
        (
            "weir_guest_seconds_total",
            "counter",
            "Time spent in the pipeline's steps (guest calls).",
            |s, _, _| Some(s.process_nanos as f64 / 1e9),
        ),
        (
            "weir_fuel_used_total",
            "counter",
            "Fuel burned by steps with a fuel budget.",
            |s, _, _| Some(s.fuel_used as f64),
        ),
        (
            "weir_records_in_flight",
            "gauge",
            "Records read and not yet delivered, dropped or failed.",
            |s, _, _| Some(in_flight(s) as f64),
        ),
        (
            "weir_checkpoint_lag_seconds",
            "gauge",
            "How long the source's checkpoint has been behind what it read: time since its last \
             checkpoint while records are in flight, else 0 (absent without checkpoints).",
            |s, _, now| {
                (s.checkpoint_ms > 0).then(|| match in_flight(s) {
                    0 => 0.0,
                    _ => (now - s.checkpoint_ms as i64).max(0) as f64 / 1e3,
                })
            },
        ),
        (
            "weir_pipeline_up",
            "gauge",
            "1 while the pipeline runs (paused or not).",
            |_, st, _| Some(matches!(st.state, State::Running | State::Paused) as u8 as f64),
        ),
        (
            "weir_pipeline_paused",
            "gauge",
            "1 while the pipeline is paused.",
            |_, st, _| Some((st.state == State::Paused) as u8 as f64),
        ),
        (
            "weir_pipeline_version",
            "gauge",
            "The pipeline's version: 1, plus one per reload.",
            |_, st, _| Some(st.version as f64),
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, s, status, _) in &rows {
            if let Some(v) = get(s, status, now_ms) {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    }
    type HealthOf = fn(&Stats) -> &crate::stats::Health;
    let outputs: [(&str, HealthOf); 3] = [
        ("sink", |s| &s.sink_health),
        ("errors", |s| &s.errors_health),
        ("backup", |s| &s.backup_health),
    ];
    let name = "weir_destination_up";
    let _ = writeln!(out, "# HELP {name} 1 while the output's destination takes what it is sent, 0 while it fails (and is retried).\n# TYPE {name} gauge");
    for (labels, _, _, p) in &rows {
        for (output, health) in outputs {
            let up = health(&p.stats).read().down_since_ms.is_none() as u8;
            let _ = writeln!(out, "{name}{{{labels},output=\"{output}\"}} {up}");
        }
    }
    let name = "weir_destination_failures_total";
    let _ = writeln!(out, "# HELP {name} Deliveries to the output's destination that failed as a whole and were retried.\n# TYPE {name} counter");
    for (labels, _, _, p) in &rows {
        for (output, health) in outputs {
            let failures = health(&p.stats).read().failures;
            let _ = writeln!(out, "{name}{{{labels},output=\"{output}\"}} {failures}");
        }
    }
    let name = "weir_end_to_end_latency_seconds";
    let _ = writeln!(out, "# HELP {name} Age of each delivery's oldest record, from its arrival at the source to durable delivery.\n# TYPE {name} histogram");
    for (labels, _, _, p) in &rows {
        let (counts, sum_ms) = p.stats.latency.read();
        for (i, count) in counts.iter().enumerate() {
            let le = crate::stats::LATENCY_BUCKETS_MS
                .get(i)
                .map_or("+Inf".to_string(), |ms| format!("{}", *ms as f64 / 1e3));
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_ms as f64 / 1e3);
        let _ = writeln!(
            out,
            "{name}_count{{{labels}}} {}",
            counts.last().copied().unwrap_or(0)
        );
    }
    let shard_series: [(&str, &str, &str); 4] = [
        (
            "weir_kinesis_shard_records_total",
            "counter",
            "Kinesis records read from the shard.",
        ),
        (
            "weir_kinesis_shard_bytes_total",
            "counter",
            "Bytes read from the shard.",
        ),
        (
            "weir_kinesis_millis_behind_latest",
            "gauge",
            "The shard's last MillisBehindLatest.",
        ),
        (
            "weir_kinesis_iterator_age_milliseconds",
            "gauge",
            "Now minus the newest record's arrival.",
        ),
    ];
    for (i, (name, kind, help)) in shard_series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, _, _, p) in &rows {
            for (shard, m) in p.stats.shard_metrics() {
                let value = match i {
                    0 => Some(m.records as i64),
                    1 => Some(m.bytes as i64),
                    2 => m.millis_behind_latest,
                    _ => m.iterator_age_ms,
                };
                if let Some(v) = value {
                    let _ = writeln!(out, "{name}{{{labels},shard=\"{}\"}} {v}", label(&shard));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_servers_addresses_and_names_are_ours() {
        let local: SocketAddr = "127.0.0.1:9870".parse().unwrap();
        let access = Access {
            token: "t".repeat(20),
            hosts: vec!["weir.internal".into()],
        };
        for host in [
            "127.0.0.1:9870",
            "localhost:9870",
            "[::1]:9870",
            "10.0.0.7:9870",
            "weir.internal",
            "weir.internal:9870",
        ] {
            assert!(ours(host, &access, local), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9870",
            "127.0.0.1:80",
            "localhost",
            "127.0.0.1.evil.example:9870",
        ] {
            assert!(!ours(host, &access, local), "{host}");
        }
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }

    #[test]
    fn routes_answer_and_pause_flips_the_switch() {
        let p = Arc::new(PipelineHandle::new(
            "clicks",
            "clicks.toml".into(),
            "acme",
            Arc::new(Stats::default()),
        ));
        let mut watch = p.paused.subscribe();
        Stats::add(&p.stats.records_in, 7);
        p.stats.delivered(1_000, 1_040);
        p.stats.checkpointed(1_000);
        let all = vec![p.clone()];
        let (status, _, body) = route("GET", "/pipelines", &all);
        assert_eq!(status, "200 OK");
        assert!(body.contains(r#""records_in":7"#), "{body}");
        let (status, _, body) = route("POST", "/pipelines/clicks/pause", &all);
        assert_eq!(status, "200 OK");
        assert!(body.contains(r#""state":"paused""#), "{body}");
        assert!(*watch.borrow_and_update());
        assert_eq!(route("GET", "/pipelines/nope", &all).0, "404 Not Found");
        assert_eq!(
            route("DELETE", "/pipelines", &all).0,
            "405 Method Not Allowed"
        );
        p.reloaded(
            ReloadOutcome {
                action: "failed",
                error: Some("p.toml:3:1: bad".into()),
                millis: 1.0,
                at_ms: 5,
            },
            "acme",
            "clicks.toml",
        );
        let body = route("GET", "/pipelines/clicks", &all).2;
        assert!(
            body.contains(r#""version":1"#),
            "a failed reload keeps the version: {body}"
        );
        assert!(body.contains("p.toml:3:1: bad"), "{body}");
        p.finished(Some("boom".into()));
        assert_eq!(
            route("POST", "/pipelines/clicks/resume", &all).0,
            "409 Conflict"
        );
        let text = metrics(&all, 3_500);
        assert!(
            text.contains("weir_checkpoint_lag_seconds{pipeline=\"clicks\",tenant=\"acme\"} 2.5"),
            "7 records in flight, the last checkpoint 2.5 s ago: {text}"
        );
        assert!(
            text.contains("weir_records_in_total{pipeline=\"clicks\",tenant=\"acme\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("weir_pipeline_up{pipeline=\"clicks\",tenant=\"acme\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("weir_end_to_end_latency_seconds_bucket{pipeline=\"clicks\",tenant=\"acme\",le=\"0.05\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("weir_end_to_end_latency_seconds_bucket{pipeline=\"clicks\",tenant=\"acme\",le=\"0.025\"} 0"),
            "{text}"
        );
    }
}

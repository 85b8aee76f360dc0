//! The admin API and Prometheus metrics of a `weir run`: a small HTTP/1.1 server on a listener
//! the caller binds (loopback by default, see `weir run --admin`).
//!
//! Routes:
//! - `GET /metrics`: Prometheus text format, per pipeline (and per Kinesis shard).
//! - `GET /pipelines`, `GET /pipelines/<name>`: state, version, file, last error, counters.
//! - `POST /pipelines/<name>/pause`, `POST /pipelines/<name>/resume`.
//!
//! Invariant: the server only reads counters and flips pause switches; it never touches
//! records, so a slow or hostile client cannot stall a pipeline. Each connection serves one
//! request and is closed.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

/// What the admin API knows of one pipeline.
pub struct PipelineHandle {
    pub name: String,
    pub file: String,
    pub version: u32,
    pub stats: Arc<Stats>,
    pub paused: tokio::sync::watch::Sender<bool>,
    pub status: Mutex<(State, Option<String>)>,
}

impl PipelineHandle {
    /// Records how the pipeline ended.
    pub fn finished(&self, error: Option<String>) {
        let state = if error.is_some() {
            State::Failed
        } else {
            State::Stopped
        };
        *self.status.lock().expect("status lock") = (state, error);
    }

    fn state(&self) -> (State, Option<String>) {
        self.status.lock().expect("status lock").clone()
    }

    fn json(&self) -> serde_json::Value {
        let (state, error) = self.state();
        let s = self.stats.snapshot();
        serde_json::json!({
            "name": self.name,
            "state": state.as_str(),
            "version": self.version,
            "file": self.file,
            "last_error": error,
            "records_in": s.records_in,
            "records_out": s.records_out,
            "records_dropped": s.records_dropped,
            "records_failed": s.records_failed,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "objects_written": s.objects_written,
        })
    }

    fn set_paused(&self, pause: bool) -> Result<(), &'static str> {
        let mut status = self.status.lock().expect("status lock");
        match (status.0, pause) {
            (State::Running, true) => status.0 = State::Paused,
            (State::Paused, false) => status.0 = State::Running,
            (State::Running, false) | (State::Paused, true) => return Ok(()),
            _ => return Err("the pipeline is not running"),
        }
        self.paused.send_replace(pause);
        Ok(())
    }
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    pipelines: Arc<Vec<Arc<PipelineHandle>>>,
    shutdown: CancellationToken,
) {
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
        let pipelines = pipelines.clone();
        tokio::spawn(async move {
            // A client that never finishes its request is dropped.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                handle(stream, &pipelines),
            )
            .await;
        });
    }
}

async fn handle(mut stream: TcpStream, pipelines: &[Arc<PipelineHandle>]) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 << 10 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, body) = route(method, path, pipelines);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

const JSON: &str = "application/json";

fn route(
    method: &str,
    path: &str,
    pipelines: &[Arc<PipelineHandle>],
) -> (&'static str, &'static str, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let find = |name: &str| pipelines.iter().find(|p| p.name == name);
    let error = |status, message: &str| {
        (
            status,
            JSON,
            serde_json::json!({ "error": message }).to_string(),
        )
    };
    match (method, parts.as_slice()) {
        ("GET", ["metrics"]) => ("200 OK", "text/plain; version=0.0.4", metrics(pipelines)),
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
        (_, ["metrics"] | ["pipelines", ..]) => {
            error("405 Method Not Allowed", "method not allowed")
        }
        _ => error("404 Not Found", "no such route"),
    }
}

/// Prometheus text exposition of every pipeline's counters.
pub fn metrics(pipelines: &[Arc<PipelineHandle>]) -> String {
    let mut out = String::new();
    let label = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let snapshots: Vec<_> = pipelines
        .iter()
        .map(|p| (label(&p.name), p.stats.snapshot(), p.state().0))
        .collect();
    type Counter = (
        &'static str,
        &'static str,
        fn(&crate::stats::Snapshot) -> u64,
    );
    let counters: [Counter; 7] = [
        (
            "weir_records_in_total",
            "Records the source emitted.",
            |s| s.records_in,
        ),
        (
            "weir_records_out_total",
            "Records the sink delivered.",
            |s| s.records_out,
        ),
        (
            "weir_records_dropped_total",
            "Records a step dropped on purpose.",
            |s| s.records_dropped,
        ),
        (
            "weir_records_failed_total",
            "Records sent to the error output.",
            |s| s.records_failed,
        ),
        (
            "weir_bytes_in_total",
            "Bytes of record data the source emitted.",
            |s| s.bytes_in,
        ),
        ("weir_bytes_out_total", "Bytes the sink delivered.", |s| {
            s.bytes_out
        }),
        (
            "weir_objects_written_total",
            "Objects durably stored.",
            |s| s.objects_written,
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (pipeline, s, _) in &snapshots {
            let _ = writeln!(out, "{name}{{pipeline=\"{pipeline}\"}} {}", get(s));
        }
    }
    let _ = writeln!(out, "# HELP weir_pipeline_up 1 while the pipeline runs (paused or not).\n# TYPE weir_pipeline_up gauge");
    for (pipeline, _, state) in &snapshots {
        let up = matches!(state, State::Running | State::Paused) as u8;
        let _ = writeln!(out, "weir_pipeline_up{{pipeline=\"{pipeline}\"}} {up}");
    }
    let _ = writeln!(out, "# HELP weir_pipeline_paused 1 while the pipeline is paused.\n# TYPE weir_pipeline_paused gauge");
    for (pipeline, _, state) in &snapshots {
        let paused = (*state == State::Paused) as u8;
        let _ = writeln!(
            out,
            "weir_pipeline_paused{{pipeline=\"{pipeline}\"}} {paused}"
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
        for p in pipelines {
            for (shard, m) in p.stats.shard_metrics() {
                let value = match i {
                    0 => Some(m.records as i64),
                    1 => Some(m.bytes as i64),
                    2 => m.millis_behind_latest,
                    _ => m.iterator_age_ms,
                };
                if let Some(v) = value {
                    let _ = writeln!(
                        out,
                        "{name}{{pipeline=\"{}\",shard=\"{}\"}} {v}",
                        label(&p.name),
                        label(&shard)
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(name: &str) -> Arc<PipelineHandle> {
        Arc::new(PipelineHandle {
            name: name.into(),
            file: format!("{name}.toml"),
            version: 1,
            stats: Arc::new(Stats::default()),
            paused: tokio::sync::watch::channel(false).0,
            status: Mutex::new((State::Running, None)),
        })
    }

    #[test]
    fn routes_answer_and_pause_flips_the_switch() {
        let p = handle("clicks");
        let mut watch = p.paused.subscribe();
        Stats::add(&p.stats.records_in, 7);
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
        p.finished(Some("boom".into()));
        assert_eq!(
            route("POST", "/pipelines/clicks/resume", &all).0,
            "409 Conflict"
        );
        let text = metrics(&all);
        assert!(
            text.contains("weir_records_in_total{pipeline=\"clicks\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("weir_pipeline_up{pipeline=\"clicks\"} 0"),
            "{text}"
        );
    }
}

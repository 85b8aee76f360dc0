//! Hot reload and tenants, end to end: a real `weir run` watching its files, reloaded while
//! records stream through it, checked through the admin API and the delivered objects.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{admin, eventually, root, stop, walk, Running, Start};

fn guest(name: &str) -> PathBuf {
    let path = root().join("guests/dist").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "build the guests with guests/build.sh (scripts/test does)"
    );
    path
}

/// `weir run DIR/pipelines --admin ADDR` plus `args`; returns the process and the address.
fn weir(dir: &Path, args: &[&str]) -> (Running, String) {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.join("pipelines"))
        .args(common::admin_args(&addr))
        .args(["--progress", "0s"])
        .args(args)
        .env("WEIR_STATE_DIR", dir.join("state"))
        .env("RUST_LOG", "warn")
        .stderr(if std::env::var_os("WEIR_TEST_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .start();
    common::wait_port(port, "the admin API");
    // The port is bound before the pipelines start; the API answers once they run and their
    // files are watched: only then may a test change them.
    let (code, body) = admin(&addr, "GET", "/pipelines");
    assert_eq!(code, 200, "{body}");
    (child, addr)
}

/// Replaces a file the way careful tools do: a new file renamed over the old one.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn status(addr: &str, name: &str) -> serde_json::Value {
    let (code, body) = admin(addr, "GET", &format!("/pipelines/{name}"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls the pipeline's status until `done` holds; returns it then.
fn wait_for(
    addr: &str,
    name: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let s = status(addr, name);
        if done(&s) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited for {what}; last status {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_version(addr: &str, name: &str, version: u64) -> serde_json::Value {
    wait_for(addr, name, &format!("version {version}"), |s| {
        s["version"].as_u64() >= Some(version)
    })
}

/// A pipeline that follows `in.jsonl` with checkpoints, runs `m.wasm` (configured as the
/// redact guest, masking `secret` with `mask`), and writes each batch to `out/` at once.
fn live_pipeline(mask: &str, linger: &str) -> String {
    format!(
        r#"
[pipeline]
name = "live"
batch = {{ records = 50, linger = "{linger}" }}
[source]
type = "file"
path = "../in.jsonl"
format = "json"
follow = true
checkpoint = true
[[process]]
type = "wasm"
module = "../m.wasm"
config = {{ fields = ["secret"], mask = "{mask}" }}
[sink]
type = "file"
path = "../out"
buffer = {{ interval = "0s" }}
"#
    )
}

/// A directory with `pipelines/live.toml` (mask `v1`), `m.wasm` (the redact guest) and an
/// empty `in.jsonl`; returns it and the pipeline file's path.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("m.wasm"),
        std::fs::read(guest("redact")).unwrap(),
    )
    .unwrap();
    let file = dir.path().join("pipelines/live.toml");
    std::fs::write(&file, live_pipeline("v1", "10ms")).unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "").unwrap();
    (dir, file)
}

/// Appends `{"n":i,"secret":"x"}` lines to `path` in small bursts until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let (s, w) = (stop.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                let mut burst = String::new();
                for _ in 0..20 {
                    burst.push_str(&format!("{{\"n\":{n},\"secret\":\"x\"}}\n"));
                    n += 1;
                }
                f.write_all(burst.as_bytes()).unwrap();
                w.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Writer {
            stop,
            written,
            thread: Some(thread),
        }
    }

    /// Stops writing; returns how many lines were written.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.written.load(Ordering::Relaxed)
    }
}

/// Every delivered record: `n` to the `secret` values it was delivered with.
fn delivered(out: &Path) -> BTreeMap<u64, Vec<String>> {
    let mut seen: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for path in walk(out) {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with('.') || path.starts_with(out.join("errors")) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            seen.entry(v["n"].as_u64().unwrap())
                .or_default()
                .push(v["secret"].as_str().unwrap().to_string());
        }
    }
    seen
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn describe(what: &str, mut millis: Vec<f64>) -> String {
    millis.sort_by(f64::total_cmp);
    format!(
        "{what}: {} reloads, swap latency median {:.1} ms, p99 {:.1} ms",
        millis.len(),
        percentile(&millis, 0.5),
        percentile(&millis, 0.99)
    )
}

#[test]
fn a_hundred_module_and_pipeline_reloads_under_load_lose_nothing() {
    let (redact, identity) = (
        std::fs::read(guest("redact")).unwrap(),
        std::fs::read(guest("identity")).unwrap(),
    );
    let (dir, file) = setup();
    std::fs::write(&file, live_pipeline("v0", "10ms")).unwrap();
    let (child, addr) = weir(dir.path(), &["--watch-debounce", "50ms"]);
    let writer = Writer::start(dir.path().join("in.jsonl"));
    let mut version = 1;

    // 100 module changes: the identity guest and the redact guest in turn.
    let mut module_swaps = Vec::new();
    for k in 1..=100 {
        let bytes = if k % 2 == 1 { &identity } else { &redact };
        replace(&dir.path().join("m.wasm"), bytes);
        version += 1;
        let s = wait_version(&addr, "live", version);
        assert_eq!(s["last_reload"]["action"], "swapped", "{s}");
        module_swaps.push(s["last_reload"]["millis"].as_f64().unwrap());
    }
    // 100 pipeline-file changes: a new mask each time (a swap); every tenth also changes the
    // batching, which restarts the pipeline from its checkpoint.
    let (mut file_swaps, mut restarts) = (Vec::new(), Vec::new());
    for k in 1..=100 {
        // Changes exactly at every tenth reload.
        let linger = if (k / 10) % 2 == 1 { "20ms" } else { "10ms" };
        replace(&file, live_pipeline(&format!("v{k}"), linger).as_bytes());
        version += 1;
        let s = wait_version(&addr, "live", version);
        let expected = if k % 10 == 0 { "restarted" } else { "swapped" };
        assert_eq!(s["last_reload"]["action"], expected, "change {k}: {s}");
        let millis = s["last_reload"]["millis"].as_f64().unwrap();
        if k % 10 == 0 {
            restarts.push(millis)
        } else {
            file_swaps.push(millis)
        }
    }
    // The last version is running: what is written now comes out with its mask.
    std::thread::sleep(Duration::from_millis(300));
    let total = writer.finish();
    let out = dir.path().join("out");
    eventually(
        || format!("all {total} records delivered"),
        || delivered(&out).len() == total,
    );
    let stderr = stop(child);
    let seen = delivered(&out);
    let missing: Vec<u64> = (0..total as u64)
        .filter(|n| !seen.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "lost records: {missing:?}\n{stderr}");
    let duplicated = seen.values().filter(|v| v.len() > 1).count();
    assert_eq!(
        duplicated, 0,
        "a clean drain and a swap repeat nothing\n{stderr}"
    );
    assert_eq!(
        seen[&(total as u64 - 1)],
        ["v100"],
        "the last version ran last"
    );
    // Every version's mask reached the output, in order: none was skipped or applied late.
    let masks: Vec<&str> = seen.values().map(|v| v[0].as_str()).collect();
    let mut order: Vec<&str> = masks.clone();
    order.dedup();
    let mut numbered: Vec<u32> = order
        .iter()
        .filter_map(|m| m.strip_prefix('v').map(|n| n.parse().unwrap()))
        .collect();
    // While the module flips, v0 (redact) and x (identity) alternate.
    numbered.dedup();
    assert!(
        numbered.windows(2).all(|w| w[0] < w[1]),
        "masks came out of order: {order:?}"
    );
    assert!(masks.contains(&"x"), "the identity module ran");
    eprintln!("{} records delivered once each", total);
    eprintln!("{}", describe("module swaps", module_swaps));
    eprintln!("{}", describe("pipeline-file swaps", file_swaps));
    eprintln!("{}", describe("pipeline-file restarts", restarts));
}

#[test]
fn invalid_modules_and_pipeline_files_keep_the_old_version_running() {
    let (dir, file) = setup();
    let input = dir.path().join("in.jsonl");
    let append = |from: usize, to: usize| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&input)
            .unwrap();
        for n in from..to {
            writeln!(f, r#"{{"n":{n},"secret":"x"}}"#).unwrap();
        }
    };
    append(0, 10);
    let (child, addr) = weir(dir.path(), &["--watch-debounce", "50ms"]);
    let out = dir.path().join("out");
    eventually(|| "10 records".into(), || delivered(&out).len() == 10);

    // A module that is not a component.
    replace(&dir.path().join("m.wasm"), b"not wasm at all");
    let s = wait_for(&addr, "live", "the bad module reported", |s| {
        s["last_reload"]["action"] == "failed"
    });
    let error = s["last_reload"]["error"].as_str().unwrap();
    assert!(error.contains("m.wasm"), "{error}");
    assert_eq!(s["version"], 1);
    assert_eq!(s["state"], "running");
    append(10, 20);
    eventually(|| "20 records".into(), || delivered(&out).len() == 20);
    assert_eq!(delivered(&out)[&19], ["v1"], "the old version still runs");

    // The good module back: the running version is that already, so nothing restarts, and
    // the status no longer shows the failure.
    replace(
        &dir.path().join("m.wasm"),
        &std::fs::read(guest("redact")).unwrap(),
    );
    let s = wait_for(&addr, "live", "the failure cleared", |s| {
        s["last_reload"]["action"] == "unchanged"
    });
    assert_eq!(s["version"], 1);

    // A pipeline file with a misspelled key.
    let broken = live_pipeline("v2", "10ms").replace("follow = true", "folow = true");
    replace(&file, broken.as_bytes());
    let s = wait_for(&addr, "live", "the bad pipeline file reported", |s| {
        s["last_reload"]["action"] == "failed"
    });
    let error = s["last_reload"]["error"].as_str().unwrap();
    assert!(
        error.contains("live.toml:9:") && error.contains("folow"),
        "the error names the file, line and key: {error}"
    );
    assert_eq!(s["version"], 1);
    append(20, 30);
    eventually(|| "30 records".into(), || delivered(&out).len() == 30);
    assert_eq!(delivered(&out)[&29], ["v1"]);

    // Fixed: the new version takes over from the next batch.
    replace(&file, live_pipeline("v3", "10ms").as_bytes());
    wait_version(&addr, "live", 2);
    append(30, 40);
    eventually(|| "40 records".into(), || delivered(&out).len() == 40);
    assert_eq!(delivered(&out)[&39], ["v3"]);

    // A new file starts a pipeline; removing it drains and stops it.
    std::fs::write(
        dir.path().join("side.jsonl"),
        "{\"n\":1000,\"secret\":\"s\"}\n",
    )
    .unwrap();
    replace(
        &dir.path().join("pipelines/side.toml"),
        live_pipeline("side", "10ms")
            .replace("name = \"live\"", "name = \"side\"")
            .replace("../in.jsonl", "../side.jsonl")
            .as_bytes(),
    );
    eventually(
        || "the side pipeline delivered".into(),
        || delivered(&out).contains_key(&1000),
    );
    assert_eq!(status(&addr, "side")["state"], "running");
    std::fs::remove_file(dir.path().join("pipelines/side.toml")).unwrap();
    eventually(
        || "the side pipeline gone".into(),
        || admin(&addr, "GET", "/pipelines/side").0 == 404,
    );
    assert_eq!(status(&addr, "live")["state"], "running");
    stop(child);
    assert_eq!(delivered(&out).len(), 41);
}

#[test]
fn sighup_and_the_admin_api_reload_without_file_watching() {
    let (dir, file) = setup();
    let (child, addr) = weir(dir.path(), &["--no-watch"]);

    replace(&file, live_pipeline("v2", "10ms").as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&addr, "live")["version"], 1, "not watching");
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    wait_version(&addr, "live", 2);

    replace(&file, live_pipeline("v3", "10ms").as_bytes());
    let (code, body) = admin(&addr, "POST", "/reload");
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["changes"][0]["action"], "swapped", "{answer}");
    assert_eq!(status(&addr, "live")["version"], 3);

    // Nothing changed: a rescan leaves it alone, a named reload rebuilds it.
    let (_, body) = admin(&addr, "POST", "/reload");
    assert_eq!(body, r#"{"changes":[]}"#);
    let (code, body) = admin(&addr, "POST", "/pipelines/live/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&addr, "live")["version"], 4);
    assert_eq!(admin(&addr, "POST", "/pipelines/nope/reload").0, 404);

    // A moved file is a new version of the same pipeline, not a second one.
    std::fs::rename(&file, dir.path().join("pipelines/moved.toml")).unwrap();
    let (_, body) = admin(&addr, "POST", "/reload");
    assert!(body.contains(r#""action":"swapped""#), "{body}");
    let s = status(&addr, "live");
    assert_eq!(s["version"], 5);
    assert!(s["file"].as_str().unwrap().ends_with("moved.toml"), "{s}");
    assert_eq!(s["state"], "running");
    stop(child);
}

const TENANTS: &str = r#"
[tenant.acme]
paths = ["pipelines/"]
memory = "16MiB"
pipelines = 1
instances = 1
cpu = "200ms"
allow = { dirs = ["."] }
"#;

fn hog_pipeline(name: &str, behaviour: &str) -> String {
    format!(
        r#"
[pipeline]
name = "{name}"
tenant = "acme"
[source]
type = "file"
path = "../{name}.jsonl"
format = "json"
follow = true
[[process]]
type = "wasm"
module = "{}"
config = {{ behaviour = "{behaviour}" }}
[sink]
type = "file"
path = "../out-{name}"
buffer = {{ interval = "0s" }}
"#,
        guest("misbehave").display()
    )
}

#[test]
fn tenant_quotas_cap_memory_pipelines_and_instances() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("tenants.toml"), TENANTS).unwrap();
    std::fs::write(
        dir.path().join("hog.jsonl"),
        "{\"a\":1}\n{\"a\":\"boom\"}\n{\"a\":3}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pipelines/hog.toml"),
        hog_pipeline("hog", "alloc"),
    )
    .unwrap();
    let tenants = dir.path().join("tenants.toml");
    let tenants = tenants.to_str().unwrap();

    // The step sets no memory cap: it gets the tenant's 16 MiB.
    let (child, addr) = weir(dir.path(), &["--tenants", tenants]);
    // A failed call fails its whole batch (here, all three records) to the error output.
    eventually(
        || "the hog's failed batch".into(),
        || !walk(&dir.path().join("out-hog/errors")).is_empty(),
    );
    let errors: String = walk(&dir.path().join("out-hog/errors"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(errors.contains("Wasm.MemoryLimit"), "{errors}");
    assert!(errors.contains("16777216 bytes"), "{errors}");
    let (_, metrics) = admin(&addr, "GET", "/metrics");
    assert!(
        metrics.contains("weir_records_failed_total{pipeline=\"hog\",tenant=\"acme\"} 3"),
        "{metrics}"
    );

    // A second pipeline of the tenant is over its quota: refused, the first runs on.
    std::fs::write(dir.path().join("more.jsonl"), "{\"a\":1}\n").unwrap();
    std::fs::write(
        dir.path().join("pipelines/more.toml"),
        hog_pipeline("more", "alloc"),
    )
    .unwrap();
    let (_, body) = admin(&addr, "POST", "/reload");
    assert!(
        body.contains("more.toml:2:1: key `pipeline.tenant`: tenant `acme` may run 1 pipeline(s) and runs 1 already"),
        "{body}"
    );
    assert_eq!(admin(&addr, "GET", "/pipelines/more").0, 404);
    stop(child);

    // At start, the same excess fails the run with the same message.
    // A run that fails to start; its stderr.
    let refused = || {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .arg(dir.path().join("pipelines"))
            .args(["--tenants", tenants])
            .env("WEIR_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused();
    assert!(
        stderr.contains("tenant `acme` may run 1 pipeline(s)"),
        "{stderr}"
    );

    // A step asking for more memory than its tenant allows is refused, with its line.
    std::fs::remove_file(dir.path().join("pipelines/more.toml")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/hog.toml"),
        hog_pipeline("hog", "alloc").replace(
            "config = { behaviour = \"alloc\" }",
            "config = { behaviour = \"alloc\" }\nlimits = { memory = \"1GiB\" }",
        ),
    )
    .unwrap();
    let stderr = refused();
    assert!(
        stderr.contains("hog.toml:10:1: key `process[0].limits.memory`: 1073741824 bytes is over tenant `acme`'s cap of 16777216 bytes"),
        "{stderr}"
    );
}

#[test]
fn a_pipeline_that_ended_by_itself_starts_again_only_when_its_file_changes() {
    let (dir, _) = setup();
    std::fs::write(
        dir.path().join("once.jsonl"),
        "{\"n\":500,\"secret\":\"s\"}\n",
    )
    .unwrap();
    let once = live_pipeline("once", "10ms")
        .replace("name = \"live\"", "name = \"once\"")
        .replace("../in.jsonl", "../once.jsonl")
        .replace("follow = true\ncheckpoint = true\n", "")
        .replace("../out", "../out-once");
    let once_file = dir.path().join("pipelines/once.toml");
    std::fs::write(&once_file, &once).unwrap();
    let (child, addr) = weir(dir.path(), &["--no-watch"]);
    wait_for(&addr, "once", "the finite pipeline to end", |s| {
        s["state"] == "stopped"
    });
    let out = dir.path().join("out-once");
    assert_eq!(delivered(&out)[&500].len(), 1);

    // A rescan that finds its file unchanged leaves it ended.
    let (_, body) = admin(&addr, "POST", "/reload");
    assert_eq!(body, r#"{"changes":[]}"#);
    assert_eq!(status(&addr, "once")["state"], "stopped");

    // An edited file starts it again (it has no checkpoint: it reads its input again).
    replace(&once_file, format!("# edited\n{once}").as_bytes());
    let (_, body) = admin(&addr, "POST", "/reload");
    assert!(body.contains(r#""action":"started""#), "{body}");
    eventually(
        || "the second run's record".into(),
        || delivered(&out).get(&500).map(Vec::len) == Some(2),
    );
    let s = wait_for(&addr, "once", "the second run to end", |s| {
        s["state"] == "stopped"
    });
    assert_eq!(s["version"], 2, "the same pipeline, one version on: {s}");
    // A named reload runs it once more, even unchanged.
    let (_, body) = admin(&addr, "POST", "/pipelines/once/reload");
    assert!(body.contains(r#""action":"started""#), "{body}");
    eventually(
        || "the third run's record".into(),
        || delivered(&out).get(&500).map(Vec::len) == Some(3),
    );
    stop(child);
}

#[test]
fn a_swap_stuck_behind_slow_batches_lands_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    let lines: String = (0..20)
        .map(|n| format!("{{\"n\":{n},\"x\":\"boom\"}}\n"))
        .collect();
    std::fs::write(dir.path().join("slow.jsonl"), lines).unwrap();
    // Every record makes the guest spin for its whole 2 s timeout, one record per batch.
    let pipeline = |trigger: &str| {
        format!(
            r#"
[pipeline]
name = "slow"
batch = {{ records = 1 }}
[source]
type = "file"
path = "../slow.jsonl"
format = "json"
follow = true
[[process]]
type = "wasm"
module = "{}"
config = {{ behaviour = "loop", trigger = "{trigger}" }}
limits = {{ timeout = "2s" }}
[sink]
type = "file"
path = "../out"
buffer = {{ interval = "0s" }}
"#,
            guest("misbehave").display()
        )
    };
    let file = dir.path().join("pipelines/slow.toml");
    std::fs::write(&file, pipeline("boom")).unwrap();
    let (child, addr) = weir(dir.path(), &["--no-watch"]);
    std::thread::sleep(Duration::from_millis(500));

    replace(&file, pipeline("never").as_bytes());
    let (_, body) = admin(&addr, "POST", "/reload");
    assert!(body.contains(r#""action":"swapping""#), "{body}");
    // The supervisor is free meanwhile: another request is answered at once.
    let (_, body) = admin(&addr, "POST", "/reload");
    assert_eq!(body, r#"{"changes":[]}"#);
    assert_eq!(status(&addr, "slow")["version"], 1);
    let s = wait_version(&addr, "slow", 2);
    assert_eq!(s["last_reload"]["action"], "swapped", "{s}");
    // Records after the swap pass through the new version.
    eventually(
        || "records through the new version".into(),
        || delivered_raw(&dir.path().join("out")) > 0,
    );
    stop(child);
}

/// How many records reached the sink (not its error output).
fn delivered_raw(out: &Path) -> usize {
    walk(out)
        .iter()
        .filter(|p| !p.starts_with(out.join("errors")))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

/// A tumbling window per second of event time, its rows tagged with the SQL's version.
fn versioned_sql(version: &str) -> String {
    format!(
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    WINDOW_START TIMESTAMP, N INTEGER, VERSION VARCHAR(4));
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM FLOOR(s.ROWTIME TO SECOND), COUNT(*), '{version}'
    FROM "SOURCE_SQL_STREAM_001" AS s
    GROUP BY FLOOR(s.ROWTIME TO SECOND);
"#
    )
}

#[test]
fn a_sql_step_reloaded_mid_window_never_mixes_versions_or_emits_a_partial_window() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("app.sql"), versioned_sql("v1")).unwrap();
    std::fs::write(
        dir.path().join("inputs.json"),
        r#"[{"NamePrefix": "SOURCE_SQL_STREAM", "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON",
        "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "N", "Mapping": "$.n", "SqlType": "INTEGER"},
                      {"Name": "TS", "Mapping": "$.ts", "SqlType": "TIMESTAMP"}]}}]"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pipelines/live.toml"),
        r#"
[pipeline]
name = "live"
batch = { records = 50, linger = "10ms" }
[source]
type = "file"
path = "../in.jsonl"
follow = true
checkpoint = true
[[process]]
type = "sql"
code = "../app.sql"
inputs = "../inputs.json"
rowtime = "TS"
[sink]
type = "file"
path = "../out"
buffer = { interval = "0s" }
"#,
    )
    .unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "").unwrap();
    // 100 records a second of event time, written in bursts of 20.
    const PER_WINDOW: u64 = 100;
    let mut n = 0u64;
    let mut append = |records: u64| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .unwrap();
        for _ in 0..records {
            let ms = n * 1000 / PER_WINDOW;
            writeln!(
                f,
                r#"{{"n":{n},"ts":"2024-05-01 10:{:02}:{:02}.{:03}"}}"#,
                ms / 60_000,
                ms / 1000 % 60,
                ms % 1000
            )
            .unwrap();
            n += 1;
        }
    };
    let (run, addr) = weir(dir.path(), &[]);
    let out = dir.path().join("out");
    let windows = |out: &Path| -> Vec<(String, u64, String)> {
        let mut rows = Vec::new();
        for path in walk(out) {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || path.starts_with(out.join("errors")) {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                rows.push((
                    v["WINDOW_START"].as_str().unwrap().to_string(),
                    v["N"].as_u64().unwrap(),
                    v["VERSION"].as_str().unwrap().to_string(),
                ));
            }
        }
        rows.sort();
        rows
    };
    // Three windows and half of a fourth, under v1.
    append(350);
    eventually(
        || "v1's first three windows".into(),
        || windows(&out).len() >= 3,
    );
    replace(&dir.path().join("app.sql"), versioned_sql("v2").as_bytes());
    wait_version(&addr, "live", 2);
    // The rest of the fourth window, and three more; then a record that closes the last.
    append(350);
    append(1);
    eventually(
        || format!("v2's windows: {:?}", windows(&out)),
        || {
            let w = windows(&out);
            w.iter().filter(|(_, _, v)| v == "v2").count() >= 4
        },
    );
    stop(run);
    let got = windows(&out);
    // Every row is a whole window, whichever version made it: none mixes records counted by
    // the two (a partial window would count fewer).
    for (start, count, version) in &got {
        assert_eq!(*count, PER_WINDOW, "{start} {version}: {got:?}");
    }
    // v1 made the windows that ended before the reload; the window open at the reload was
    // read again from the checkpoint and made whole by v2, as were all later ones.
    let by_window: BTreeMap<&str, Vec<&str>> = got.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.0.as_str()).or_default().push(r.2.as_str());
        m
    });
    assert_eq!(by_window.len(), 7, "{got:?}");
    let versions: Vec<&Vec<&str>> = by_window.values().collect();
    assert!(versions[..3].iter().all(|v| v.contains(&"v1")), "{got:?}");
    assert!(versions[3..].iter().all(|v| v == &&vec!["v2"]), "{got:?}");
}

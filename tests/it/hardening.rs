//! Adversarial tests: one per way a review found to lose acknowledged records, stall a
//! pipeline for good, or get past the sandbox or the admin API. Each runs the `weir` binary
//! against real peers on 127.0.0.1 (kinesalite, moto server, local HTTP receivers).

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::kinesis::{client, create_stream, dynamodb, kinesalite, lease_items, owner, put};
use common::{admin, admin_raw, eventually, moto, root, runtime, stop, walk, Start};

fn weir(dir: &Path) -> Command {
    // WEIR_BIN runs the tests against another build (say, a release before these fixes).
    let bin = std::env::var_os("WEIR_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_weir").into());
    let mut cmd = Command::new(bin);
    cmd.env("WEIR_STATE_DIR", dir.join("state"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn");
    if std::env::var_os("WEIR_TEST_STDERR").is_none() {
        cmd.stderr(Stdio::piped());
    }
    cmd
}

/// Whether the tests run the `weir` built with them (not one given by WEIR_BIN, which may
/// not know the flags this release added).
fn this_build() -> bool {
    std::env::var_os("WEIR_BIN").is_none()
}

/// `weir run DIR/p.toml`, with `${WEIR_TEST_*}` allowed.
fn run_pipeline(dir: &Path) -> Command {
    let mut cmd = weir(dir);
    cmd.arg("run")
        .arg(dir.join("p.toml"))
        .args(["--progress", "0s"]);
    if this_build() {
        cmd.args(["--allow-env", "WEIR_TEST_*"]);
    }
    cmd
}

/// `--admin ADDR` with the test token (only the address for an older build).
fn admin_args(addr: &str) -> Vec<String> {
    if this_build() {
        common::admin_args(addr)
    } else {
        vec!["--admin".into(), addr.into()]
    }
}

fn guest(name: &str) -> PathBuf {
    let path = root().join("guests/dist").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "build the guests with guests/build.sh (scripts/test does)"
    );
    path
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Every line of every object under `dir` (temporary files and `skip` directories aside).
fn lines_under(dir: &Path, skip: &str) -> Vec<String> {
    walk(dir)
        .iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == skip))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The error records (JSON lines) under `dir`.
fn error_records(dir: &Path) -> Vec<serde_json::Value> {
    lines_under(dir, "-")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn raw(error: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(error["rawData"].as_str().unwrap())
        .unwrap()
}

/// The peak resident memory of a running process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Waits for a process to exit by itself; its status and stderr. Fails the test after `limit`.
fn exits_within(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    // Read as it comes, so that a full pipe never blocks the process.
    let reader = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = e.read_to_string(&mut text);
            text
        })
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.map(|r| r.join().unwrap()).unwrap_or_default();
    match status {
        Some(status) => (status, stderr),
        None => panic!("still running after {limit:?}:\n{stderr}"),
    }
}

fn kill_9(child: &Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
}

fn kinesis_pipeline(dir: &Path, stream: &str, start: &str, extra: &str, sink: &str) {
    write(
        &dir.join("p.toml"),
        &format!(
            r#"
[pipeline]
name = "kin"
batch = {{ records = 500, linger = "20ms" }}
[source]
type = "kinesis"
stream = "{stream}"
endpoint = "${{WEIR_TEST_ENDPOINT}}"
start = "{start}"
idle_interval = "50ms"
discovery_interval = "500ms"
{extra}
[sink]
type = "file"
path = "out"
{sink}
[errors]
type = "file"
path = "errors"
buffer = {{ interval = "0s" }}
"#
        ),
    );
}

/// Records `n` for n in `range`, one partition key each.
fn numbered(range: std::ops::Range<u64>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|n| (format!("k{n}"), format!(r#"{{"n":{n}}}"#).into_bytes()))
        .collect()
}

fn numbers(lines: &[String]) -> std::collections::BTreeSet<u64> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Loss

#[test]
fn a_kpl_bomb_goes_to_the_error_output_whole_and_the_records_behind_it_arrive() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(create_stream(&client, "bomb", 1));
    // A 512 KB partition key shared by 85,000 empty user records: about 1 MB on the wire,
    // and 43 GB if every user record got its own copy of the key.
    let key = "k".repeat(512 * 1024);
    let empties: Vec<(u64, &[u8])> = vec![(0, b""); 85_000];
    let bomb = weir::source::kinesis::kpl::aggregate(&[&key], &empties);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    rt.block_on(put(&client, "bomb", &[("bomb".into(), bomb.clone())]));
    rt.block_on(put(&client, "bomb", &numbered(0..100)));
    let dir = tempfile::tempdir().unwrap();
    kinesis_pipeline(
        dir.path(),
        "bomb",
        "trim_horizon",
        "",
        "buffer = { interval = \"0s\" }",
    );
    let child = run_pipeline(dir.path())
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .start();
    eventually(
        || {
            format!(
                "100 records, have {}",
                lines_under(&dir.path().join("out"), "-").len()
            )
        },
        || lines_under(&dir.path().join("out"), "-").len() >= 100,
    );
    eventually(
        || "the bomb in the error output".into(),
        || !error_records(&dir.path().join("errors")).is_empty(),
    );
    let peak = peak_rss(child.id());
    stop(child);
    assert_eq!(
        numbers(&lines_under(&dir.path().join("out"), "-")),
        (0..100).collect()
    );
    let errors = error_records(&dir.path().join("errors"));
    assert_eq!(errors.len(), 1, "the aggregate goes whole, once");
    assert_eq!(errors[0]["errorCode"], "Kinesis.AggregateLimitExceeded");
    assert_eq!(raw(&errors[0]), bomb, "with its bytes");
    assert!(peak < 400 << 20, "peak RSS {} MiB", peak >> 20);
}

/// Starts at LATEST, reads 200 records that no object holds yet, is killed, restarts: all 300
/// records (the 200 and 100 put after the restart) arrive.
fn latest_then_kill_9(checkpoints: &str, db: Option<&str>) {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(create_stream(&client, "late", 1));
    let dir = tempfile::tempdir().unwrap();
    // A buffer that is never written while the first run lives: nothing is checkpointed.
    kinesis_pipeline(
        dir.path(),
        "late",
        "latest",
        checkpoints,
        "buffer = { size = \"128MiB\", interval = \"900s\" }",
    );
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut first = run_pipeline(dir.path());
    first
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .envs(db.map(|d| ("WEIR_TEST_DYNAMODB", d)))
        .args(admin_args(&addr));
    let first = first.start();
    common::wait_port(port, "the admin API");
    // Reading has begun (LATEST resolved) once the shard reports a GetRecords.
    eventually(
        || "the shard's first read".into(),
        || {
            admin(&addr, "GET", "/metrics")
                .1
                .contains("weir_kinesis_shard_records_total{")
        },
    );
    rt.block_on(put(&client, "late", &numbered(0..200)));
    eventually(
        || "200 records read".into(),
        || {
            admin(&addr, "GET", "/pipelines")
                .1
                .contains("\"records_in\":200")
        },
    );
    kill_9(&first);
    drop(first);
    assert!(lines_under(&dir.path().join("out"), "-").is_empty());
    kinesis_pipeline(
        dir.path(),
        "late",
        "latest",
        checkpoints,
        "buffer = { interval = \"0s\" }",
    );
    let second = run_pipeline(dir.path())
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .envs(db.map(|d| ("WEIR_TEST_DYNAMODB", d)))
        .start();
    rt.block_on(put(&client, "late", &numbered(200..300)));
    eventually(
        || {
            format!(
                "300 records, have {}",
                numbers(&lines_under(&dir.path().join("out"), "-")).len()
            )
        },
        || numbers(&lines_under(&dir.path().join("out"), "-")).len() == 300,
    );
    stop(second);
}

#[test]
fn start_latest_and_kill_9_before_the_first_checkpoint_loses_nothing_locally() {
    latest_then_kill_9("", None);
}

#[test]
fn start_latest_and_kill_9_before_the_first_checkpoint_loses_nothing_with_leases() {
    let (_moto, db) = moto();
    latest_then_kill_9(
        r#"checkpoints = { store = "dynamodb", table = "late-leases", endpoint = "${WEIR_TEST_DYNAMODB}", lease_timeout = "1s" }"#,
        Some(&db),
    );
}

#[test]
fn printed_records_never_move_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), "one\ntwo\n");
    write(
        &dir.path().join("p.toml"),
        "[source]\ntype = \"file\"\npath = \"in.txt\"\ncheckpoint = true\n[sink]\ntype = \"stdout\"\n",
    );
    for _ in 0..2 {
        let out = run_pipeline(dir.path()).output().unwrap();
        assert!(out.status.success());
        // Printed is not delivered: the next run prints the same lines again.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    }
    let saved: Vec<_> = walk(&dir.path().join("state"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(saved.is_empty(), "{saved:?}");
}

#[test]
fn pipelines_named_a_b_and_a_underscore_b_keep_separate_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: Vec<String> = (0..100).map(|n| format!("line {n}")).collect();
    write(&input, &(lines.join("\n") + "\n"));
    let pipeline = |name: &str, out: &str| {
        write(
            &dir.path().join("p.toml"),
            &format!(
                "[pipeline]\nname = \"{name}\"\n[source]\ntype = \"file\"\npath = \"in.txt\"\ncheckpoint = true\n[sink]\ntype = \"file\"\npath = \"{out}\"\nbuffer = {{ interval = \"0s\" }}\n"
            ),
        )
    };
    pipeline("a b", "out-space");
    assert!(run_pipeline(dir.path()).status().unwrap().success());
    assert_eq!(
        lines_under(&dir.path().join("out-space"), "errors").len(),
        100
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    for n in 100..110 {
        writeln!(f, "line {n}").unwrap();
    }
    pipeline("a_b", "out-underscore");
    assert!(run_pipeline(dir.path()).status().unwrap().success());
    assert_eq!(
        lines_under(&dir.path().join("out-underscore"), "errors").len(),
        110,
        "a_b has its own checkpoint, not a b's"
    );
}

#[test]
fn a_pipeline_renamed_while_running_keeps_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let append = |from: u64, to: u64| common::append_numbered(&log, from, to);
    append(0, 50);
    let file = |name: &str| {
        format!(
            "[pipeline]\nname = \"{name}\"\nbatch = {{ linger = \"10ms\" }}\n[source]\ntype = \"file\"\npath = \"../app.log\"\nfollow = true\ncheckpoint = true\n[sink]\ntype = \"file\"\npath = \"../out\"\nbuffer = {{ interval = \"0s\" }}\n"
        )
    };
    write(&dir.path().join("pipelines/p.toml"), &file("before"));
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = weir(dir.path())
        .arg("run")
        .arg(dir.path().join("pipelines"))
        .args(admin_args(&addr))
        .args(["--progress", "0s"])
        .start();
    common::wait_port(port, "the admin API");
    let out = || lines_under(&dir.path().join("out"), "errors");
    eventually(|| "50 lines".into(), || out().len() == 50);
    let tmp = dir.path().join("pipelines/p.partial");
    std::fs::write(&tmp, file("after")).unwrap();
    std::fs::rename(&tmp, dir.path().join("pipelines/p.toml")).unwrap();
    eventually(
        || "the renamed pipeline".into(),
        || {
            admin(&addr, "GET", "/pipelines/after")
                .1
                .contains("\"state\":\"running\"")
        },
    );
    append(50, 60);
    eventually(
        || format!("60 lines, have {}", out().len()),
        || out().len() >= 60,
    );
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    assert_eq!(numbers(&out()).len(), 60);
    assert_eq!(out().len(), 60, "nothing read again after the rename");
    assert!(dir.path().join("state/after").exists());
    assert!(!dir.path().join("state/before").exists());
}

#[test]
fn a_second_process_with_the_same_worker_id_is_refused() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let (_moto, db_url) = moto();
    let client = rt.block_on(client(&endpoint));
    let db = rt.block_on(dynamodb(&db_url));
    rt.block_on(create_stream(&client, "twins", 2));
    let checkpoints = r#"checkpoints = { store = "dynamodb", table = "twins", endpoint = "${WEIR_TEST_DYNAMODB}", worker_id = "same", lease_timeout = "1s" }"#;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        kinesis_pipeline(
            dir.path(),
            "twins",
            "trim_horizon",
            checkpoints,
            "buffer = { interval = \"0s\" }",
        );
    }
    let first = run_pipeline(a.path())
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .env("WEIR_TEST_DYNAMODB", &db_url)
        .start();
    eventually(
        || "the first process holds both leases".into(),
        || {
            let items = rt.block_on(lease_items(&db, "twins"));
            items.len() == 2 && items.iter().all(|i| owner(i) == Some("same"))
        },
    );
    // The second process sees leases under its own worker id that another process renews.
    let second = run_pipeline(b.path())
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .env("WEIR_TEST_DYNAMODB", &db_url)
        .spawn()
        .unwrap();
    let (status, stderr) = exits_within(second, Duration::from_secs(30));
    assert!(!status.success());
    assert!(stderr.contains("must not share a worker_id"), "{stderr}");
    rt.block_on(put(&client, "twins", &numbered(0..20)));
    eventually(
        || "the first process reads on".into(),
        || lines_under(&a.path().join("out"), "-").len() == 20,
    );
    stop(first);
    assert!(lines_under(&b.path().join("out"), "-").is_empty());
}

#[test]
fn a_lease_holder_that_lost_its_lease_cannot_write_it_and_shard_end_is_final() {
    use weir::source::kinesis::leases::{LeaseTable, NewLease};
    let rt = runtime();
    let (_moto, db_url) = moto();
    rt.block_on(async {
        let db = dynamodb(&db_url).await;
        // Two handles with the same worker id: two processes misconfigured alike.
        let mut a = LeaseTable::new(db.clone(), "fenced", "w", Duration::from_secs(1));
        let mut b = LeaseTable::new(db, "fenced", "w", Duration::from_secs(1));
        a.ensure_table().await.unwrap();
        a.create(&NewLease {
            key: "shardId-000000000000".into(),
            checkpoint: "TRIM_HORIZON".into(),
            parents: Vec::new(),
            hash_range: None,
            stream: None,
        })
        .await
        .unwrap();
        let lease = a.scan().await.unwrap().pop().unwrap();
        assert!(a.take(&lease).await.unwrap());
        let seen_by_b = b.scan().await.unwrap().pop().unwrap();
        assert!(b.take(&seen_by_b).await.unwrap(), "b takes it over");
        // a's writes are fenced by the counter, though the owner is still "w".
        assert!(!a
            .checkpoint("shardId-000000000000", "100", 0)
            .await
            .unwrap());
        assert!(!a.renew("shardId-000000000000").await.unwrap());
        assert!(b
            .checkpoint("shardId-000000000000", "SHARD_END", 0)
            .await
            .unwrap());
        assert!(
            !b.checkpoint("shardId-000000000000", "50", 0).await.unwrap(),
            "an older sequence never replaces SHARD_END"
        );
        let end = b.scan().await.unwrap().pop().unwrap();
        assert_eq!(end.checkpoint, "SHARD_END");
    });
}

#[test]
fn a_truncation_seen_before_a_kill_9_is_not_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let old: String = (0..100).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    write(&log, &old);
    write(
        &dir.path().join("p.toml"),
        "[pipeline]\nbatch = { linger = \"10ms\" }\n[source]\ntype = \"file\"\npath = \"app.log\"\nfollow = true\ncheckpoint = true\n[sink]\ntype = \"file\"\npath = \"out\"\nbuffer = { interval = \"0s\" }\n",
    );
    let first = run_pipeline(dir.path()).start();
    let out = || lines_under(&dir.path().join("out"), "errors");
    eventually(|| "100 lines".into(), || out().len() == 100);
    // copytruncate: same file, emptied. The source notices within a poll.
    std::fs::File::create(&log).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    kill_9(&first);
    drop(first);
    // New content, longer than the old: resuming at the old offset would skip its start.
    let new: String = (1000..1150).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(new.as_bytes())
        .unwrap();
    let second = run_pipeline(dir.path()).start();
    eventually(
        || format!("250 lines, have {}", out().len()),
        || out().len() >= 250,
    );
    stop(second);
    let got = numbers(&out());
    assert!((1000..1150).all(|n| got.contains(&n)), "every new line");
}

#[test]
fn a_checkpoint_that_cannot_be_saved_stops_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write(&log, "{\"n\":1}\n");
    write(
        &dir.path().join("p.toml"),
        "[pipeline]\nname = \"p\"\n[source]\ntype = \"file\"\npath = \"app.log\"\nfollow = true\ncheckpoint = true\n[sink]\ntype = \"file\"\npath = \"out\"\nbuffer = { interval = \"0s\" }\n",
    );
    let child = run_pipeline(dir.path()).spawn().unwrap();
    let key = format!("file/{}", log.display());
    let checkpoint = dir
        .path()
        .join("state/p")
        .join(format!("{}.json", weir::durable::file_name(&key)));
    eventually(|| "the first checkpoint".into(), || checkpoint.exists());
    // Something else takes the checkpoint's name: a directory (with a file in it), which a
    // checkpoint can never be renamed over. The next save fails.
    std::fs::remove_file(&checkpoint).unwrap();
    write(&checkpoint.join("occupied"), "");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"{\"n\":2}\n")
        .unwrap();
    let (status, stderr) = exits_within(child, Duration::from_secs(30));
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("cannot save the checkpoint"), "{stderr}");
}

#[test]
fn a_stream_deleted_and_created_again_is_read_from_start_and_its_old_checkpoint_kept() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(create_stream(&client, "again", 1));
    rt.block_on(put(&client, "again", &numbered(0..10)));
    let dir = tempfile::tempdir().unwrap();
    kinesis_pipeline(
        dir.path(),
        "again",
        "trim_horizon",
        "",
        "buffer = { interval = \"0s\" }",
    );
    let out = || numbers(&lines_under(&dir.path().join("out"), "-"));
    let child = run_pipeline(dir.path())
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .start();
    eventually(|| "10 records".into(), || out().len() == 10);
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    rt.block_on(async {
        client
            .delete_stream()
            .stream_name("again")
            .send()
            .await
            .unwrap();
        let started = Instant::now();
        while client
            .describe_stream_summary()
            .stream_name("again")
            .send()
            .await
            .is_ok()
        {
            assert!(started.elapsed() < Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Kinesis's creation times are in seconds.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        create_stream(&client, "again", 1).await;
    });
    rt.block_on(put(&client, "again", &numbered(100..105)));
    let mut child = run_pipeline(dir.path());
    child
        .env("WEIR_TEST_ENDPOINT", &endpoint)
        .env("RUST_LOG", "warn");
    let child = child.start();
    eventually(
        || format!("15 records, have {:?}", out()),
        || out().len() == 15,
    );
    let stderr = stop(child);
    assert!(stderr.contains("deleted and created again"), "{stderr}");
    let kept: Vec<_> = walk(&dir.path().join("state"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".json.stream-"))
        .collect();
    assert_eq!(kept.len(), 1, "the old checkpoint is kept aside: {kept:?}");
}

#[test]
fn a_record_whose_object_key_would_be_too_long_goes_to_the_error_output() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(200);
    write(
        &dir.path().join("in.jsonl"),
        &format!("{{\"k\":\"a\"}}\n{{\"k\":\"{long}\"}}\n{{\"k\":\"b\"}}\n"),
    );
    write(
        &dir.path().join("p.toml"),
        r#"
[source]
type = "file"
path = "in.jsonl"
format = "json"
[sink]
type = "file"
path = "out"
prefix = "!{partitionKeyFromQuery:k}"
error_prefix = "errors/!{firehose:error-output-type}/"
partition_keys = { k = ".k" }
buffer = { interval = "0s" }
"#,
    );
    let out = run_pipeline(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "one record cannot stop the sink: {stderr}"
    );
    assert_eq!(lines_under(&dir.path().join("out"), "errors").len(), 2);
    let errors = error_records(&dir.path().join("out/errors"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["errorCode"], "ObjectKey.TooLong");
    assert!(
        errors[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("a file name is at most 255"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_kinesis_sink_waits_for_its_stream_rather_than_failing_its_records() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<String> = (0..20).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
    write(&dir.path().join("in.jsonl"), &(input.join("\n") + "\n"));
    write(
        &dir.path().join("p.toml"),
        r#"
[source]
type = "file"
path = "in.jsonl"
[sink]
type = "kinesis"
stream = "later"
endpoint = "${WEIR_TEST_ENDPOINT}"
[errors]
type = "file"
path = "errors"
buffer = { interval = "0s" }
"#,
    );
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = run_pipeline(dir.path());
    cmd.env("WEIR_TEST_ENDPOINT", &endpoint)
        .args(admin_args(&addr));
    let child = cmd.spawn().unwrap();
    common::wait_port(port, "the admin API");
    // The stream does not exist yet: the destination is down, and says so.
    eventually(
        || "the sink reported down".into(),
        || {
            let (_, body) = admin(&addr, "GET", "/pipelines/p");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["destinations"]["sink"]["up"] == false
                && v["destinations"]["sink"]["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("ResourceNotFound"))
        },
    );
    assert!(admin(&addr, "GET", "/metrics")
        .1
        .contains("weir_destination_up{pipeline=\"p\",tenant=\"default\",output=\"sink\"} 0"));
    rt.block_on(create_stream(&client, "later", 1));
    let (status, stderr) = exits_within(child, Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
    assert!(error_records(&dir.path().join("errors")).is_empty());
    let got = rt.block_on(async {
        let shard = client
            .list_shards()
            .stream_name("later")
            .send()
            .await
            .unwrap()
            .shards()[0]
            .shard_id()
            .to_string();
        let it = client
            .get_shard_iterator()
            .stream_name("later")
            .shard_id(shard)
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let r = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap();
        r.records()
            .iter()
            .map(|r| String::from_utf8(r.data().as_ref().to_vec()).unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(got, input, "every record, once the stream exists");
}

// ---------------------------------------------------------------------------------------------
// Limits and bad input

#[test]
fn the_buffers_of_a_pipeline_share_one_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("in.jsonl");
    let pad = "p".repeat(1000);
    let text: String = (0..8000)
        .map(|n| format!("{{\"k\":\"{}\",\"n\":{n},\"pad\":\"{pad}\"}}\n", n % 50))
        .collect();
    write(&log, &text);
    // 50 partitions of up to 64 MiB each would hold all 8 MB until shutdown; the budget of
    // 2 MiB makes the largest buffer go out whenever it is spent.
    write(
        &dir.path().join("p.toml"),
        r#"
[pipeline]
buffer_memory = "2MiB"
[source]
type = "file"
path = "in.jsonl"
format = "json"
follow = true
[sink]
type = "file"
path = "out"
prefix = "k=!{partitionKeyFromQuery:k}/"
error_prefix = "errors/!{firehose:error-output-type}/"
partition_keys = { k = ".k" }
buffer = { size = "64MiB", interval = "900s" }
"#,
    );
    let child = run_pipeline(dir.path()).start();
    eventually(
        || "objects written while the pipeline runs".into(),
        || lines_under(&dir.path().join("out"), "errors").len() >= 5000,
    );
    stop(child);
    assert_eq!(
        numbers(&lines_under(&dir.path().join("out"), "errors")).len(),
        8000
    );
}

#[test]
fn a_line_over_max_line_goes_to_the_error_output_and_is_never_held_whole() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(3 << 20);
    write(&dir.path().join("in.txt"), &format!("a\n{long}\nb\n"));
    write(
        &dir.path().join("p.toml"),
        "[source]\ntype = \"file\"\npath = \"in.txt\"\nmax_line = \"64KiB\"\n[sink]\ntype = \"file\"\npath = \"out\"\nbuffer = { interval = \"0s\" }\n",
    );
    let out = run_pipeline(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines_under(&dir.path().join("out"), "errors"), ["a", "b"]);
    let errors = error_records(&dir.path().join("out/errors"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["errorCode"], "Source.LineTooLong");
    assert_eq!(raw(&errors[0]).len(), 64 << 10);
    assert!(errors[0]["errorMessage"]
        .as_str()
        .unwrap()
        .contains(&format!("the line is {} bytes", 3 << 20)));
}

#[test]
fn an_endless_http_answer_is_not_read_whole_and_secrets_in_the_url_are_not_logged() {
    // A receiver whose answer is a 400 MB body.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                let total = 400usize << 20;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n"
                );
                let chunk = vec![b' '; 1 << 20];
                for _ in 0..total >> 20 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), "one\n");
    write(
        &dir.path().join("p.toml"),
        &format!(
            r#"
[source]
type = "file"
path = "in.txt"
[sink]
type = "http"
url = "http://user:s3cret-pass@127.0.0.1:{port}/in?token=t0ken-value"
retry_duration = "1s"
buffer = {{ interval = "0s" }}
[errors]
type = "file"
path = "errors"
buffer = {{ interval = "0s" }}
"#
        ),
    );
    let mut cmd = run_pipeline(dir.path());
    let child = cmd.env("RUST_LOG", "info").spawn().unwrap();
    let pid = child.id();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            peak = peak.max(peak_rss(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let (status, stderr) = exits_within(child, Duration::from_secs(60));
    let peak = watcher.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(peak < 200 << 20, "peak RSS {} MiB", peak >> 20);
    let errors = error_records(&dir.path().join("errors"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["errorCode"], "HttpEndpoint.ResponseFailed");
    for secret in ["s3cret-pass", "t0ken-value"] {
        assert!(!stderr.contains(secret), "{secret} was logged:\n{stderr}");
        let kept = serde_json::to_string(&errors).unwrap();
        assert!(!kept.contains(secret), "{secret} is in the error output");
    }
    assert!(stderr.contains("token=***"), "{stderr}");
}

#[test]
fn a_header_value_that_can_never_be_sent_is_refused_at_validate() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("p.toml"),
        "[source]\ntype = \"stdin\"\n[sink]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/in\"\naccess_key = \"${WEIR_TEST_KEY}\"\n",
    );
    let out = weir(dir.path())
        .args(["validate", "--allow-env", "WEIR_TEST_KEY"])
        .arg(dir.path().join("p.toml"))
        // A key read from a file, with its newline.
        .env("WEIR_TEST_KEY", "k3y\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("p.toml:6:14: key `sink.access_key`: cannot be sent as an HTTP header"),
        "{stdout}"
    );
    assert!(stdout.contains("ends in a newline"), "{stdout}");
}

#[test]
fn variables_expand_only_when_allowed_and_always_as_data() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("p.toml"),
        "[source]\ntype = \"generator\"\ntemplate = \"${WEIR_TEST_VALUE}\"\ncount = 1\n[sink]\ntype = \"stdout\"\n",
    );
    // A value that would end the string and add a key, were it pasted as text.
    let value = r#"x", count = 5, rate = 1 #"#;
    let refused = weir(dir.path())
        .args(["run", "--progress", "0s"])
        .arg(dir.path().join("p.toml"))
        .env("WEIR_TEST_VALUE", value)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("p.toml:3:13: environment variable `WEIR_TEST_VALUE` is not allowed here"),
        "{stderr}"
    );
    let out = weir(dir.path())
        .args(["run", "--progress", "0s", "--allow-env", "WEIR_TEST_VALUE"])
        .arg(dir.path().join("p.toml"))
        .env("WEIR_TEST_VALUE", value)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{value}\n"),
        "one record, holding the value as it is"
    );
}

// ---------------------------------------------------------------------------------------------
// Tenancy, the sandbox and the admin API

#[test]
fn the_operator_decides_each_pipelines_tenant_and_what_it_may_be_granted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("tenants.toml"),
        "[tenant.acme]\npaths = [\"pipelines/acme/\"]\nallow = { env = [\"ACME_*\"] }\n",
    );
    let step = |grants: &str| {
        format!(
            "[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\ngrants = {{ {grants} }}\n",
            guest("identity").display()
        )
    };
    let base = "[source]\ntype = \"stdin\"\n[sink]\ntype = \"stdout\"\n";
    write(
        &dir.path().join("pipelines/acme/ok.toml"),
        &format!("{base}{}", step("env = [\"ACME_KEY\"]")),
    );
    write(
        &dir.path().join("pipelines/acme/nosy.toml"),
        &format!("{base}{}", step("network = true")),
    );
    write(
        &dir.path().join("pipelines/claims.toml"),
        &format!("[pipeline]\ntenant = \"acme\"\n{base}"),
    );
    // A tenant's own sources and sinks stay inside its allowed directories too: a file
    // source cannot read another team's (or the system's) files.
    write(
        &dir.path().join("pipelines/acme/reader.toml"),
        "[source]\ntype = \"file\"\npath = \"/etc/passwd\"\n[sink]\ntype = \"stdout\"\n",
    );
    let out = weir(dir.path())
        .args(["validate", "--tenants"])
        .arg(dir.path().join("tenants.toml"))
        .arg(dir.path().join("pipelines/acme"))
        .arg(dir.path().join("pipelines/claims.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok: ") && stdout.contains("ok.toml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nosy.toml:5:1: key `process[0].grants.network`: tenant `acme` may not grant the network"),
        "{stdout}"
    );
    assert!(
        stdout.contains("claims.toml:1:1: key `pipeline.tenant`: the file says tenant `acme`, but it belongs to tenant `default`"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("reader.toml:1:1: key `source.path`: tenant `acme` may not use /etc/passwd"),
        "{stdout}"
    );
}

#[test]
fn a_web_page_cannot_drive_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("app.log"), "{\"n\":1}\n");
    write(
        &dir.path().join("p.toml"),
        "[pipeline]\nname = \"tail\"\n[source]\ntype = \"file\"\npath = \"app.log\"\nfollow = true\n[sink]\ntype = \"file\"\npath = \"out\"\nbuffer = { interval = \"0s\" }\n",
    );
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = run_pipeline(dir.path()).args(admin_args(&addr)).start();
    common::wait_port(port, "the admin API");
    let token = common::ADMIN_TOKEN;
    let post = |extra: &str| {
        admin_raw(
            &addr,
            &format!("POST /pipelines/tail/pause HTTP/1.1\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"),
        )
        .0
    };
    let good = format!(
        "Host: {addr}\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
    );
    // What a page on another site can make a browser send.
    assert_eq!(
        post(&format!("{good}Origin: http://evil.example\r\n")),
        403,
        "a cross-origin POST"
    );
    assert_eq!(
        post(&format!("Host: evil.example:{port}\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\n")),
        403,
        "a foreign Host (DNS rebinding)"
    );
    assert_eq!(
        post(&format!(
            "Host: {addr}\r\nContent-Type: text/plain\r\nAuthorization: Bearer {token}\r\n"
        )),
        403,
        "a POST that is not JSON"
    );
    assert_eq!(
        post(&format!(
            "Host: {addr}\r\nContent-Type: application/json\r\n"
        )),
        401,
        "no token"
    );
    let (_, body) = admin(&addr, "GET", "/pipelines/tail");
    assert!(
        body.contains("\"state\":\"running\""),
        "nothing paused it: {body}"
    );
    assert_eq!(post(&good), 200, "with the token, from a script");
    let (_, body) = admin(&addr, "GET", "/pipelines/tail");
    assert!(body.contains("\"state\":\"paused\""), "{body}");
    stop(child);
}

#[test]
fn a_guest_blocked_in_a_host_call_holds_up_neither_reloads_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("sleepy.log"), "boom\n");
    write(&dir.path().join("busy.log"), "a\nb\n");
    // The sleepy guest waits an hour in a WASI clock wait, and its step has no timeout.
    let sleepy = |linger: &str| {
        format!(
            "[pipeline]\nname = \"sleepy\"\nbatch = {{ linger = \"{linger}\" }}\n[source]\ntype = \"file\"\npath = \"../sleepy.log\"\nfollow = true\ncheckpoint = true\n[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\nconfig = {{ behaviour = \"sleep\" }}\nlimits = {{ timeout = \"0s\" }}\n[sink]\ntype = \"file\"\npath = \"../out-sleepy\"\nbuffer = {{ interval = \"0s\" }}\n",
            guest("misbehave").display()
        )
    };
    let busy = |mask: &str| {
        format!(
            "[pipeline]\nname = \"busy\"\nbatch = {{ linger = \"10ms\" }}\n[source]\ntype = \"file\"\npath = \"../busy.log\"\nfollow = true\ncheckpoint = true\n[[process]]\ntype = \"wasm\"\nmodule = \"{}\"\nconfig = {{ behaviour = \"trap\", trigger = \"{mask}\" }}\n[sink]\ntype = \"file\"\npath = \"../out-busy\"\nbuffer = {{ interval = \"0s\" }}\n",
            guest("misbehave").display()
        )
    };
    write(&dir.path().join("pipelines/sleepy.toml"), &sleepy("10ms"));
    write(&dir.path().join("pipelines/busy.toml"), &busy("zzz"));
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = weir(dir.path())
        .arg("run")
        .arg(dir.path().join("pipelines"))
        .args(admin_args(&addr))
        .args(["--progress", "0s", "--no-watch"])
        .spawn()
        .unwrap();
    common::wait_port(port, "the admin API");
    eventually(
        || "busy delivers".into(),
        || lines_under(&dir.path().join("out-busy"), "errors").len() == 2,
    );
    eventually(
        || "the sleepy guest is called".into(),
        || {
            admin(&addr, "GET", "/pipelines/sleepy")
                .1
                .contains("\"records_in\":1")
        },
    );
    // A change that restarts sleepy (batching) and one that swaps busy's steps, at once.
    write(&dir.path().join("pipelines/sleepy.toml"), &sleepy("20ms"));
    write(&dir.path().join("pipelines/busy.toml"), &busy("yyy"));
    let started = Instant::now();
    let (code, body) = admin(&addr, "POST", "/reload");
    assert_eq!(code, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the reload answered in {:?}",
        started.elapsed()
    );
    assert!(
        body.contains("\"pipeline\":\"sleepy\"") && body.contains("\"restarting\""),
        "{body}"
    );
    assert!(
        body.contains("\"pipeline\":\"busy\"") && body.contains("\"swapped\""),
        "{body}"
    );
    let (_, status) = admin(&addr, "GET", "/pipelines/busy");
    assert!(status.contains("\"version\":2"), "{status}");
    // Shutdown waits for the blocked call only so long (10 s), then cuts it off. The record
    // was not the cause: it is not sent to the error output, and its checkpoint does not move
    // past it, so the next start reads it again.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let (_, stderr) = exits_within(child, Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(25), "{stderr}");
    assert!(
        error_records(&dir.path().join("out-sleepy/errors")).is_empty(),
        "{stderr}"
    );
    assert!(lines_under(&dir.path().join("out-sleepy"), "errors").is_empty());
    let key = format!("file/{}", dir.path().join("sleepy.log").display());
    let checkpoint = dir
        .path()
        .join("state/sleepy")
        .join(format!("{}.json", weir::durable::file_name(&key)));
    let saved = std::fs::read_to_string(&checkpoint).unwrap_or_default();
    assert!(
        saved.is_empty() || saved.contains("\"offset\":0"),
        "the checkpoint stays before the record: {saved}"
    );
}

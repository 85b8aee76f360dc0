//! End-to-end tests of the Kinesis source against kinesalite, started on 127.0.0.1 for each test
//! (`scripts/test` installs it into tests/peers/node_modules).

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_kinesis::Client;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A peer process, killed when the test ends however it ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kinesalite() -> (Peer, String) {
    let script = root().join("tests/peers/kinesalite.js");
    assert!(
        root().join("tests/peers/node_modules/kinesalite").exists(),
        "kinesalite is missing: run `npm ci --prefix tests/peers` (scripts/test does)"
    );
    let port = free_port();
    let child = Command::new("node")
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("node runs");
    let peer = Peer(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "kinesalite did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (peer, format!("http://127.0.0.1:{port}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "weir-tests",
        ))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build();
    Client::from_conf(conf)
}

async fn wait_active(client: &Client, stream: &str) {
    let started = Instant::now();
    loop {
        let d = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap();
        let status = d.stream_description_summary().unwrap().stream_status();
        if *status == StreamStatus::Active {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_stream(client: &Client, stream: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    wait_active(client, stream).await;
}

async fn put(client: &Client, stream: &str, records: &[(String, Vec<u8>)]) {
    for chunk in records.chunks(100) {
        let entries = chunk
            .iter()
            .map(|(key, data)| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
    }
}

fn weir(dir: &Path, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run")
        .arg(dir.join("p.toml"))
        .env("WEIR_STATE_DIR", dir.join("state"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .env("WEIR_TEST_ENDPOINT", endpoint)
        .stderr(Stdio::piped());
    cmd
}

fn pipeline(dir: &Path, stream: &str, extra: &str) {
    std::fs::write(
        dir.join("p.toml"),
        format!(
            r#"
[pipeline]
name = "kin"
batch = {{ records = 50, linger = "20ms" }}
[source]
type = "kinesis"
stream = "{stream}"
endpoint = "${{WEIR_TEST_ENDPOINT}}"
start = "trim_horizon"
idle_interval = "50ms"
discovery_interval = "500ms"
{extra}
[sink]
type = "file"
path = "out"
buffer = {{ interval = "0s" }}
"#
        ),
    )
    .unwrap();
}

/// Output lines in the order they were written.
fn output(dir: &Path, sub: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.join(sub)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().unwrap() != "errors" {
                    stack.push(p);
                }
            } else {
                files.push((std::fs::metadata(&p).unwrap().modified().unwrap(), p));
            }
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn wait_for(dir: &Path, sub: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines = output(dir, sub);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited for {n} lines under {sub}, have {}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// (key, n) of a test record.
fn parse(line: &str) -> (String, u64) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    (
        v["key"].as_str().unwrap().to_string(),
        v["n"].as_u64().unwrap(),
    )
}

fn records(keys: usize, per_key: u64, from: u64) -> Vec<(String, Vec<u8>)> {
    (from..from + per_key)
        .flat_map(|n| {
            (0..keys).map(move |k| {
                let key = format!("k{k}");
                let data = format!(r#"{{"key":"{key}","n":{n}}}"#).into_bytes();
                (key, data)
            })
        })
        .collect()
}

/// Every key's values, in output order, with repeats of already seen values removed, must be
/// increasing: order per partition key holds, replays aside.
fn assert_ordered_per_key(lines: &[String]) {
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut all = HashSet::new();
    for line in lines {
        let (key, n) = parse(line);
        if all.insert((key.clone(), n)) {
            let values = seen.entry(key.clone()).or_default();
            assert!(
                values.last().is_none_or(|&last| last < n),
                "key {key}: {n} came after {:?}",
                values.last()
            );
            values.push(n);
        }
    }
}

#[test]
fn records_arrive_in_order_per_key_and_kill_9_loses_nothing() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    let all = records(6, 50, 0);
    rt.block_on(async {
        create_stream(&client, "clicks", 2).await;
        put(&client, "clicks", &all).await;
    });
    let dir = tempfile::tempdir().unwrap();
    // Small reads, so that the first run is still busy when it is killed.
    pipeline(dir.path(), "clicks", "max_records = 10");

    let mut first = weir(dir.path(), &endpoint).spawn().unwrap();
    wait_for(dir.path(), "out", 60);
    first.kill().unwrap(); // SIGKILL: no flush, no final checkpoint.
    first.wait().unwrap();
    let before = output(dir.path(), "out").len();
    assert!(before < all.len(), "the first run was stopped midway");
    let checkpoints = dir.path().join("state/kin");
    assert!(
        std::fs::read_dir(&checkpoints).unwrap().count() > 0,
        "checkpoints were saved while running"
    );

    let second = weir(dir.path(), &endpoint).spawn().unwrap();
    let started = Instant::now();
    loop {
        let distinct: HashSet<(String, u64)> =
            output(dir.path(), "out").iter().map(|l| parse(l)).collect();
        if distinct.len() == all.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "have {}",
            distinct.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(second);
    let lines = output(dir.path(), "out");
    assert_ordered_per_key(&lines);
    let replayed = lines.len() - all.len();
    assert!(
        replayed <= before,
        "only records after the last checkpoint come again ({replayed} replayed, {before} delivered before the kill)"
    );
}

#[test]
fn a_split_shard_is_read_to_its_end_before_its_children() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(async {
        create_stream(&client, "split", 1).await;
        put(&client, "split", &records(4, 30, 0)).await;
        let shard = client
            .list_shards()
            .stream_name("split")
            .send()
            .await
            .unwrap()
            .shards()[0]
            .shard_id()
            .to_string();
        client
            .split_shard()
            .stream_name("split")
            .shard_to_split(shard)
            .new_starting_hash_key("170141183460469231731687303715884105728")
            .send()
            .await
            .unwrap();
        wait_active(&client, "split").await;
        put(&client, "split", &records(4, 30, 30)).await;
    });
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), "split", "max_records = 25");
    let child = weir(dir.path(), &endpoint).spawn().unwrap();
    wait_for(dir.path(), "out", 240);
    stop(child);
    let lines = output(dir.path(), "out");
    assert_eq!(lines.len(), 240, "exactly what was written, once");
    assert_ordered_per_key(&lines);
    let state = dir.path().join("state/kin");
    let ended = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .contains("shard_end")
        })
        .count();
    assert_eq!(ended, 1, "the parent is checkpointed SHARD_END");
}

#[test]
fn kpl_aggregates_come_out_as_their_user_records() {
    // Made by aws-kinesis-agg 1.2.3 (Python): user records (a, "r1"), (b, "r2"), (c, "r3").
    let hex = "f3899ac20a01610a01620a01631a0608001a0272311a0608011a0272321a0608021a027233e0cb781f1b1019dad07909c33922ee33";
    let aggregate: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut corrupt = aggregate.clone();
    corrupt[12] ^= 0xff;
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(async {
        create_stream(&client, "kpl", 1).await;
        put(
            &client,
            "kpl",
            &[
                ("a".into(), aggregate),
                ("x".into(), corrupt),
                ("p".into(), b"plain".to_vec()),
            ],
        )
        .await;
    });
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), "kpl", "");
    let child = weir(dir.path(), &endpoint)
        .args(["--progress", "200ms"])
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    assert_eq!(wait_for(dir.path(), "out", 4), ["r1", "r2", "r3", "plain"]);
    let errors = wait_for(dir.path(), "out/errors", 1);
    std::thread::sleep(Duration::from_millis(500));
    let stderr = stop(child);
    // Per-shard metrics in the progress lines: 3 Kinesis records read, none behind.
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("Shard progress"))
        .unwrap_or_else(|| panic!("no shard progress in: {stderr}"));
    assert!(
        line.contains("shard=kinesis:kpl/shardId-000000000000"),
        "{line}"
    );
    assert!(line.contains("records=3"), "{line}");
    assert!(line.contains("millis_behind_latest=0"), "{line}");
    assert!(line.contains("iterator_age_ms="), "{line}");
    let error: serde_json::Value = serde_json::from_str(&errors[0]).unwrap();
    assert_eq!(error["errorCode"], "Kinesis.CorruptAggregate");
    assert!(error["errorMessage"].as_str().unwrap().contains("MD5"));
    assert!(error["source"]
        .as_str()
        .unwrap()
        .starts_with("kinesis:kpl/shardId-"));
}

#[test]
fn the_kinesis_sink_writes_records_keyed_by_a_json_field() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(create_stream(&client, "out", 2));
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..120)
        .map(|n| format!(r#"{{"user":"u{}","n":{n}}}"#, n % 7))
        .chain([r#"{"n":"no user"}"#.to_string()])
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[source]
type = "file"
path = "in.jsonl"
format = "json"
[sink]
type = "kinesis"
stream = "out"
endpoint = "${WEIR_TEST_ENDPOINT}"
partition_key = { field = "user" }
[errors]
type = "file"
path = "errors"
"#,
    )
    .unwrap();
    let out = weir(dir.path(), &endpoint).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("121 records in, 120 out, 0 dropped, 1 failed"),
        "{stderr}"
    );

    // Read everything back, shard by shard.
    let got: Vec<(String, String)> = rt.block_on(async {
        let mut got = Vec::new();
        let shards = client
            .list_shards()
            .stream_name("out")
            .send()
            .await
            .unwrap();
        for shard in shards.shards() {
            let mut it = client
                .get_shard_iterator()
                .stream_name("out")
                .shard_id(shard.shard_id())
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap();
            loop {
                let r = client
                    .get_records()
                    .shard_iterator(&it)
                    .send()
                    .await
                    .unwrap();
                if r.records().is_empty() {
                    break;
                }
                for rec in r.records() {
                    got.push((
                        rec.partition_key().unwrap().to_string(),
                        String::from_utf8(rec.data().as_ref().to_vec()).unwrap(),
                    ));
                }
                it = r.next_shard_iterator().unwrap().to_string();
            }
        }
        got
    });
    assert_eq!(got.len(), 120);
    for (key, data) in &got {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(&v["user"], key.as_str(), "keyed by the user field");
    }
    assert_ordered_by_n_per_user(&got);
    let errors = output(dir.path(), "errors");
    assert_eq!(errors.len(), 1);
    let e: serde_json::Value = serde_json::from_str(&errors[0]).unwrap();
    assert_eq!(e["errorCode"], "Kinesis.NoPartitionKey");
}

fn assert_ordered_by_n_per_user(records: &[(String, String)]) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for (key, data) in records {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        let n = v["n"].as_u64().unwrap();
        if let Some(prev) = last.insert(key, n) {
            assert!(prev < n, "user {key}: {n} after {prev}");
        }
    }
}

#[test]
fn a_failing_sink_stops_the_pipeline_and_no_checkpoint_moves() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(async {
        create_stream(&client, "stuck", 1).await;
        put(&client, "stuck", &records(2, 5, 0)).await;
    });
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), "stuck", "");
    // The sink's directory is a file: every object write fails.
    std::fs::write(dir.path().join("out"), "not a directory").unwrap();
    let started = Instant::now();
    let out = weir(dir.path(), &endpoint).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the pipeline stops by itself"
    );
    assert!(stderr.contains("cannot write object"), "{stderr}");
    let saved: Vec<String> = std::fs::read_dir(dir.path().join("state/kin"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        saved.is_empty(),
        "no checkpoint moved past undelivered records: {saved:?}"
    );
}

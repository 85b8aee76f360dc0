//! End-to-end tests of the Kinesis source and sink against real peers started on 127.0.0.1 for
//! each test (`scripts/test` installs them): kinesalite and kinesis-local (npm, into
//! tests/peers/node_modules) for Kinesis, moto server (PyPI, into .venv) for DynamoDB leases.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::Client;
use common::kinesis::{
    client, create_stream, dynamodb, kinesalite, lease_items, owner, put, wait_active, Item,
};
use common::{free_port, moto, root, runtime, stop, wait_port, Peer, Start};

/// kinesis-local (kinesis-mock): enhanced fan-out, ChildShards, ON_DEMAND streams. It binds
/// 0.0.0.0 by itself; `force-loopback.js` keeps it on 127.0.0.1.
fn kinesis_local() -> (Peer, String) {
    let dir = root().join("tests/peers/node_modules/kinesis-local");
    assert!(
        dir.exists(),
        "kinesis-local is missing: run `npm ci --prefix tests/peers` (scripts/test does)"
    );
    let (plain, tls) = (free_port(), free_port());
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .args(["-r", "../../force-loopback.js", "main.js"])
        .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
        .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
        .env("LOG_LEVEL", "ERROR")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for op in [
        "CREATE_STREAM",
        "DELETE_STREAM",
        "REGISTER_STREAM_CONSUMER",
        "DEREGISTER_STREAM_CONSUMER",
        "SPLIT_SHARD",
        "MERGE_SHARDS",
        "UPDATE_SHARD_COUNT",
    ] {
        cmd.env(format!("{op}_DURATION"), "50ms");
    }
    // Peer's Drop kills with SIGKILL, the only signal kinesis-local obeys at once.
    let peer = Peer(cmd.spawn().expect("node runs"));
    wait_port(plain, "kinesis-local");
    (peer, format!("http://127.0.0.1:{plain}"))
}

fn weir(dir: &Path, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run")
        .arg(dir.join("p.toml"))
        .args(["--allow-env", "WEIR_TEST_*"])
        .env("WEIR_STATE_DIR", dir.join("state"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .env("WEIR_TEST_ENDPOINT", endpoint);
    // WEIR_TEST_STDERR=1 shows the runtime's log live, to debug a test.
    if std::env::var_os("WEIR_TEST_STDERR").is_none() {
        cmd.stderr(Stdio::piped());
    }
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
            } else if let Ok(meta) = std::fs::metadata(&p) {
                // Objects are written to a temporary file and renamed: skip the temporary ones.
                if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                    files.push((meta.modified().unwrap(), p));
                }
            }
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
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

    let mut first = weir(dir.path(), &endpoint).start();
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

    let second = weir(dir.path(), &endpoint).start();
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
    let child = weir(dir.path(), &endpoint).start();
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

/// Aggregates made by aws-kinesis-agg (the reference aggregator, from PyPI): each group of
/// (partition key, data, explicit hash key) becomes one aggregated record (key, data).
fn kpl_aggregates(groups: &[Vec<(String, String, Option<String>)>]) -> Vec<(String, Vec<u8>)> {
    use std::io::Write;
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the .venv is missing: run scripts/test, which installs aws-kinesis-agg"
    );
    let mut child = Command::new(python)
        .arg(root().join("tests/peers/kpl_aggregate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_string(groups).unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kpl_aggregate.py failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, hex) = line.split_once(' ').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (key.to_string(), bytes)
        })
        .collect()
}

#[test]
fn kpl_aggregates_come_out_as_their_user_records() {
    // 40 user records over 5 keys, one with an explicit hash key; then 3 more.
    let first: Vec<(String, String, Option<String>)> = (0..40)
        .map(|i| {
            let ehk = (i == 7).then(|| "170141183460469231731687303715884105728".to_string());
            (format!("u{}", i % 5), format!("first-{i}"), ehk)
        })
        .collect();
    let second: Vec<(String, String, Option<String>)> = (0..3)
        .map(|i| (format!("v{i}"), format!("second-{i}"), None))
        .collect();
    let aggregates = kpl_aggregates(&[first.clone(), second.clone()]);
    let mut corrupt = aggregates[1].1.clone();
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
                aggregates[0].clone(),
                ("x".into(), corrupt),
                ("p".into(), b"plain".to_vec()),
                aggregates[1].clone(),
            ],
        )
        .await;
    });
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), "kpl", "");
    let child = weir(dir.path(), &endpoint)
        .args(["--progress", "200ms"])
        .env("RUST_LOG", "info")
        .start();
    let expected: Vec<String> = first
        .iter()
        .map(|u| u.1.clone())
        .chain(["plain".to_string()])
        .chain(second.iter().map(|u| u.1.clone()))
        .collect();
    assert_eq!(wait_for(dir.path(), "out", expected.len()), expected);
    let errors = wait_for(dir.path(), "out/errors", 1);
    std::thread::sleep(Duration::from_millis(500));
    let stderr = stop(child);
    // Per-shard metrics in the progress lines: 4 Kinesis records read, none behind.
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("Shard progress"))
        .unwrap_or_else(|| panic!("no shard progress in: {stderr}"));
    assert!(
        line.contains("shard=kinesis:kpl/shardId-000000000000"),
        "{line}"
    );
    assert!(line.contains("records=4"), "{line}");
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
fn a_failing_sink_is_retried_and_no_checkpoint_moves_past_what_it_did_not_take() {
    let rt = runtime();
    let (_peer, endpoint) = kinesalite();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(async {
        create_stream(&client, "stuck", 1).await;
        put(&client, "stuck", &records(2, 5, 0)).await;
    });
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), "stuck", "");
    // The sink's directory is a file: every object write fails, as a full or read-only disk
    // would. The sink keeps retrying (a destination failure is not the records' fault).
    std::fs::write(dir.path().join("out"), "not a directory").unwrap();
    let child = weir(dir.path(), &endpoint).start();
    std::thread::sleep(Duration::from_secs(4));
    let saved = || -> Vec<String> {
        std::fs::read_dir(dir.path().join("state/kin"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        saved().is_empty(),
        "no checkpoint moved past undelivered records: {:?}",
        saved()
    );
    // Stopping gives the records up undelivered: the run fails and says so.
    let mut child = child;
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("still failed when the pipeline stopped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("read again from the source's checkpoint"),
        "{stderr}"
    );
    assert!(saved().is_empty(), "{:?}", saved());
    // With the disk back, a restart delivers every record.
    std::fs::remove_file(dir.path().join("out")).unwrap();
    let child = weir(dir.path(), &endpoint).start();
    let lines = wait_for(dir.path(), "out", 10);
    stop(child);
    assert_eq!(lines.len(), 10, "{lines:?}");
}

/// Shard ids of a stream, with whether each is open.
async fn shards(client: &Client, stream: &str) -> Vec<(String, bool)> {
    client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards()
        .iter()
        .map(|s| {
            let open = s
                .sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_none();
            (s.shard_id().to_string(), open)
        })
        .collect()
}

fn open_shards(rt: &tokio::runtime::Runtime, client: &Client, stream: &str) -> Vec<String> {
    rt.block_on(shards(client, stream))
        .into_iter()
        .filter(|(_, open)| *open)
        .map(|(id, _)| id)
        .collect()
}

/// Writes, splits the shard, writes, merges the two children, writes, all while the pipeline
/// runs: exactly what was written comes out, once, in order per key.
fn reshard_while_running(consumer: &str) {
    let rt = runtime();
    let (_peer, endpoint) = kinesis_local();
    let client = rt.block_on(client(&endpoint));
    rt.block_on(create_stream(&client, "reshard", 1));
    let dir = tempfile::tempdir().unwrap();
    pipeline(
        dir.path(),
        "reshard",
        &format!(
            r#"consumer = "{consumer}"
resubscribe_interval = "1s"
heartbeat_timeout = "10s""#
        ),
    );
    let child = weir(dir.path(), &endpoint)
        .env("RUST_LOG", "warn,weir=info")
        .start();
    let batch = |from| records(8, 20, from);
    rt.block_on(put(&client, "reshard", &batch(0)));
    wait_for(dir.path(), "out", 160);

    let parent = open_shards(&rt, &client, "reshard").remove(0);
    rt.block_on(async {
        client
            .split_shard()
            .stream_name("reshard")
            .shard_to_split(&parent)
            .new_starting_hash_key("170141183460469231731687303715884105728")
            .send()
            .await
            .unwrap();
        wait_active(&client, "reshard").await;
        put(&client, "reshard", &batch(20)).await;
    });
    wait_for(dir.path(), "out", 320);

    let children = open_shards(&rt, &client, "reshard");
    assert_eq!(children.len(), 2, "{children:?}");
    rt.block_on(async {
        client
            .merge_shards()
            .stream_name("reshard")
            .shard_to_merge(&children[0])
            .adjacent_shard_to_merge(&children[1])
            .send()
            .await
            .unwrap();
        wait_active(&client, "reshard").await;
        put(&client, "reshard", &batch(40)).await;
    });
    wait_for(dir.path(), "out", 480);
    std::thread::sleep(Duration::from_millis(500));
    let stderr = stop(child);
    let lines = output(dir.path(), "out");
    assert_eq!(lines.len(), 480, "exactly what was written, once: {stderr}");
    assert_ordered_per_key(&lines);
    let ends = stderr.matches("Shard read to its end").count();
    assert_eq!(ends, 3, "the parent and both children ended: {stderr}");
}

#[test]
fn polling_keeps_order_across_a_split_and_a_merge_on_kinesis_local() {
    reshard_while_running("polling");
}

#[test]
fn enhanced_fan_out_keeps_order_across_a_split_and_a_merge() {
    reshard_while_running("efo");
}

#[test]
fn enhanced_fan_out_reads_an_on_demand_stream_by_arn_and_resumes_from_its_checkpoints() {
    let rt = runtime();
    let (_peer, endpoint) = kinesis_local();
    let client = rt.block_on(client(&endpoint));
    let arn = rt.block_on(async {
        client
            .create_stream()
            .stream_name("ondemand")
            .stream_mode_details(
                aws_sdk_kinesis::types::StreamModeDetails::builder()
                    .stream_mode(aws_sdk_kinesis::types::StreamMode::OnDemand)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        wait_active(&client, "ondemand").await;
        put(&client, "ondemand", &records(10, 10, 0)).await;
        client
            .describe_stream_summary()
            .stream_name("ondemand")
            .send()
            .await
            .unwrap()
            .stream_description_summary()
            .unwrap()
            .stream_arn()
            .to_string()
    });
    let shard_count = rt.block_on(shards(&client, "ondemand")).len();
    assert!(
        shard_count > 1,
        "an on-demand stream starts with several shards"
    );
    let dir = tempfile::tempdir().unwrap();
    pipeline(
        dir.path(),
        &arn,
        r#"consumer = "efo"
consumer_name = "weir-tests""#,
    );
    let first = weir(dir.path(), &endpoint).start();
    wait_for(dir.path(), "out", 100);
    std::thread::sleep(Duration::from_millis(500));
    stop(first);
    assert_eq!(output(dir.path(), "out").len(), 100);

    // The consumer is registered once and found again; the restart reads only new records.
    rt.block_on(put(&client, "ondemand", &records(10, 10, 10)));
    let second = weir(dir.path(), &endpoint).start();
    wait_for(dir.path(), "out", 200);
    std::thread::sleep(Duration::from_millis(1500));
    stop(second);
    let lines = output(dir.path(), "out");
    assert_eq!(lines.len(), 200, "no record twice after a clean stop");
    assert_ordered_per_key(&lines);
    let consumers = rt.block_on(async {
        client
            .list_stream_consumers()
            .stream_arn(&arn)
            .send()
            .await
            .unwrap()
            .consumers()
            .iter()
            .map(|c| c.consumer_name().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(consumers, ["weir-tests"]);
}

/// Waits until `check` holds for the lease items; returns how long that took.
fn wait_leases(
    rt: &tokio::runtime::Runtime,
    db: &aws_sdk_dynamodb::Client,
    what: &str,
    check: impl Fn(&[Item]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let items = rt.block_on(lease_items(db, "weir-leases"));
        if check(&items) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited for {what}; leases: {items:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn owned_by(items: &[Item], worker: &str) -> usize {
    items.iter().filter(|i| owner(i) == Some(worker)).count()
}

/// Distinct (key, n) delivered by any of the processes.
fn delivered(dirs: &[&Path]) -> HashSet<(String, u64)> {
    dirs.iter()
        .flat_map(|d| output(d, "out"))
        .map(|l| parse(&l))
        .collect()
}

fn wait_delivered(dirs: &[&Path], n: usize) {
    let started = Instant::now();
    while delivered(dirs).len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited for {n} records, have {}",
            delivered(dirs).len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_processes_share_shards_through_dynamodb_leases_and_one_takes_over_after_kill_9() {
    let rt = runtime();
    let (_kinesis, endpoint) = kinesalite();
    let (_moto, moto_endpoint) = moto();
    let client = rt.block_on(client(&endpoint));
    let db = rt.block_on(dynamodb(&moto_endpoint));
    rt.block_on(async {
        create_stream(&client, "shared", 4).await;
        put(&client, "shared", &records(8, 20, 0)).await;
    });
    let lease_timeout = Duration::from_secs(2);
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, worker) in [(one.path(), "one"), (two.path(), "two")] {
        pipeline(
            dir,
            "shared",
            &format!(
                r#"checkpoints = {{ store = "dynamodb", table = "weir-leases", endpoint = "${{WEIR_TEST_DYNAMODB}}", worker_id = "{worker}", lease_timeout = "{}ms" }}"#,
                lease_timeout.as_millis()
            ),
        );
    }
    let start = |dir: &Path| {
        weir(dir, &endpoint)
            .env("WEIR_TEST_DYNAMODB", &moto_endpoint)
            .env("RUST_LOG", "warn,weir::source=info")
            .start()
    };

    // One process alone takes every lease.
    let mut first = start(one.path());
    wait_leases(&rt, &db, "`one` to hold all 4 leases", |items| {
        owned_by(items, "one") == 4
    });
    wait_delivered(&[one.path()], 160);

    // A second one: the shards are divided, two each.
    let second = start(two.path());
    wait_leases(&rt, &db, "2 leases each", |items| {
        owned_by(items, "one") == 2 && owned_by(items, "two") == 2
    });
    rt.block_on(put(&client, "shared", &records(8, 20, 20)));
    wait_delivered(&[one.path(), two.path()], 320);
    // The first may still read a stolen shard until its next renewal shows the loss; the
    // second reads it from the checkpoint either way.
    wait_for(two.path(), "out", 1);

    // kill -9 the first: the second takes its leases once they expire, and reads on.
    first.kill().unwrap();
    first.wait().unwrap();
    let takeover = wait_leases(&rt, &db, "`two` to hold all 4 leases", |items| {
        owned_by(items, "two") == 4
    });
    eprintln!("leases taken over {takeover:?} after kill -9 (lease timeout {lease_timeout:?})");
    assert!(
        takeover >= lease_timeout / 2 && takeover < lease_timeout * 3,
        "taken over after {takeover:?}, lease timeout {lease_timeout:?}"
    );
    rt.block_on(put(&client, "shared", &records(8, 20, 40)));
    wait_delivered(&[one.path(), two.path()], 480);
    std::thread::sleep(Duration::from_millis(500));
    stop(second);

    let all: HashSet<(String, u64)> = records(8, 60, 0)
        .iter()
        .map(|(_, d)| parse(std::str::from_utf8(d).unwrap()))
        .collect();
    assert_eq!(delivered(&[one.path(), two.path()]), all, "none lost");
    assert_ordered_per_key(&output(one.path(), "out"));
    assert_ordered_per_key(&output(two.path(), "out"));

    // The KCL's layout; a clean stop gives the leases up.
    let items = rt.block_on(lease_items(&db, "weir-leases"));
    assert_eq!(items.len(), 4);
    for item in &items {
        let text = |k: &str| item[k].as_s().unwrap().clone();
        let number = |k: &str| item[k].as_n().unwrap().parse::<u64>().unwrap();
        assert!(text("leaseKey").starts_with("shardId-"), "{item:?}");
        assert!(
            text("checkpoint").chars().all(|c| c.is_ascii_digit()),
            "a sequence number: {item:?}"
        );
        assert_eq!(number("checkpointSubSequenceNumber"), 0);
        assert!(number("leaseCounter") > 0);
        assert_eq!(owner(item), None, "released at shutdown: {item:?}");
    }
}

/// Puts records one by one into the shard owning `hash_key`; returns their sequence numbers.
async fn put_to(
    client: &Client,
    stream: &str,
    hash_key: &str,
    records: &[(String, Vec<u8>)],
) -> Vec<String> {
    let mut sequences = Vec::new();
    for (key, data) in records {
        let out = client
            .put_record()
            .stream_name(stream)
            .partition_key(key)
            .explicit_hash_key(hash_key)
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap();
        sequences.push(out.sequence_number().to_string());
    }
    sequences
}

#[test]
fn a_kcl_applications_lease_table_is_taken_over_from_its_checkpoints() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let rt = runtime();
    let (_kinesis, endpoint) = kinesalite();
    let (_moto, moto_endpoint) = moto();
    let client = rt.block_on(client(&endpoint));
    let db = rt.block_on(dynamodb(&moto_endpoint));
    let plain = |from: u64, to: u64| -> Vec<(String, Vec<u8>)> {
        (from..to)
            .map(|n| {
                (
                    "k".to_string(),
                    format!(r#"{{"key":"k","n":{n}}}"#).into_bytes(),
                )
            })
            .collect()
    };
    let users: Vec<(String, String, Option<String>)> = (0..3)
        .map(|i| ("a".to_string(), format!(r#"{{"key":"a","n":{i}}}"#), None))
        .collect();
    let aggregate = kpl_aggregates(&[users]).remove(0);
    let (low, high) = ("0", "170141183460469231731687303715884105728");
    let (plain_seqs, aggregate_seq) = rt.block_on(async {
        create_stream(&client, "kcl", 2).await;
        let plain_seqs = put_to(&client, "kcl", low, &plain(0, 10)).await;
        let aggregate_seq = put_to(&client, "kcl", high, &[aggregate]).await.remove(0);
        put_to(&client, "kcl", high, &plain(100, 105)).await;
        (plain_seqs, aggregate_seq)
    });
    // The table a KCL application left: shard 0 done up to record 4, shard 1 up to user
    // record 1 of the aggregate; both held by a worker that is gone.
    rt.block_on(async {
        db.create_table()
            .table_name("weir-leases")
            .attribute_definitions(
                aws_sdk_dynamodb::types::AttributeDefinition::builder()
                    .attribute_name("leaseKey")
                    .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                aws_sdk_dynamodb::types::KeySchemaElement::builder()
                    .attribute_name("leaseKey")
                    .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
        for (shard, checkpoint, sub) in [
            ("shardId-000000000000", plain_seqs[4].clone(), 0),
            ("shardId-000000000001", aggregate_seq.clone(), 1),
        ] {
            db.put_item()
                .table_name("weir-leases")
                .item("leaseKey", V::S(shard.into()))
                .item("leaseOwner", V::S("kcl-worker-gone".into()))
                .item("leaseCounter", V::N("41".into()))
                .item("checkpoint", V::S(checkpoint))
                .item("checkpointSubSequenceNumber", V::N(sub.to_string()))
                .item("ownerSwitchesSinceCheckpoint", V::N("0".into()))
                .send()
                .await
                .unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    pipeline(
        dir.path(),
        "kcl",
        r#"checkpoints = { store = "dynamodb", table = "weir-leases", endpoint = "${WEIR_TEST_DYNAMODB}", lease_timeout = "1s" }"#,
    );
    let child = weir(dir.path(), &endpoint)
        .env("WEIR_TEST_DYNAMODB", &moto_endpoint)
        .start();
    wait_for(dir.path(), "out", 11);
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    let mut got: Vec<(String, u64)> = output(dir.path(), "out").iter().map(|l| parse(l)).collect();
    got.sort();
    let expected: Vec<(String, u64)> = [("a", 2)]
        .into_iter()
        .chain((5..10).map(|n| ("k", n)))
        .chain((100..105).map(|n| ("k", n)))
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    assert_eq!(
        got, expected,
        "exactly the records after the KCL's checkpoints"
    );
}

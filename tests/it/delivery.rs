//! End-to-end tests of Firehose-style delivery: S3 and Firehose on moto server, the HTTP endpoint
//! protocol against a local receiver that fails on purpose, compressions, Parquet, the backup,
//! and at-least-once with a checkpointing file source across kill -9.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{admin, eventually, moto, root, runtime, s3, stop, walk, Start};

fn weir(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run")
        .arg(dir.join("p.toml"))
        .args(["--allow-env", "WEIR_TEST_*"])
        .env("WEIR_STATE_DIR", dir.join("state"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped());
    cmd
}

fn run(dir: &Path, envs: &[(&str, &str)]) -> String {
    let out = weir(dir).envs(envs.iter().copied()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// `n` JSON lines; every seventh has no customer.
fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 7 == 6 {
                format!(r#"{{"n":{i}}}"#)
            } else {
                format!(
                    r#"{{"customer":"c{}","n":{i},"pad":"{}"}}"#,
                    i % 3,
                    "x".repeat(i % 50)
                )
            }
        })
        .collect()
}

/// Every object in a bucket: key and bytes.
async fn bucket(client: &aws_sdk_s3::Client, name: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let listed = client.list_objects_v2().bucket(name).send().await.unwrap();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let body = client
            .get_object()
            .bucket(name)
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        out.insert(key, body);
    }
    out
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn s3_objects_are_partitioned_by_jq_queries_and_failures_go_under_the_error_prefix() {
    let rt = runtime();
    let (_moto, endpoint) = moto();
    let client = rt.block_on(s3(&endpoint));
    rt.block_on(client.create_bucket().bucket("lake").send())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = lines(300);
    std::fs::write(dir.path().join("in.jsonl"), input.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[pipeline]
name = "clicks"
[source]
type = "file"
path = "in.jsonl"
format = "json"
[sink]
type = "s3"
bucket = "lake"
region = "us-east-1"
endpoint = "${WEIR_TEST_S3}"
force_path_style = true
prefix = "clicks/customer=!{partitionKeyFromQuery:customer}/!{timestamp:yyyy/MM/dd}/"
error_prefix = "errors/!{firehose:error-output-type}/!{timestamp:yyyy}/"
partition_keys = { customer = ".customer" }
compression = "gzip"
buffer = { size = "1MiB", interval = "60s" }
"#,
    )
    .unwrap();
    let day_before = chrono::Utc::now().format("%Y/%m/%d").to_string();
    let stderr = run(dir.path(), &[("WEIR_TEST_S3", &endpoint)]);
    let failing = input.iter().filter(|l| !l.contains("customer")).count();
    assert!(
        stderr.contains(&format!("300 records in, {} out", 300 - failing)),
        "{stderr}"
    );

    let objects = rt.block_on(bucket(&client, "lake"));
    let day_after = chrono::Utc::now().format("%Y/%m/%d").to_string();
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (key, body) in &objects {
        assert!(key.ends_with(".gz"), "{key}");
        let text = gunzip(body);
        if let Some(rest) = key.strip_prefix("clicks/customer=") {
            let (customer, rest) = rest.split_once('/').unwrap();
            assert!(
                rest.starts_with(&day_before) || rest.starts_with(&day_after),
                "{key}"
            );
            let name = rest.rsplit('/').next().unwrap();
            assert!(name.starts_with("clicks-1-"), "{key}");
            by_customer
                .entry(customer.to_string())
                .or_default()
                .extend(text.lines().map(str::to_string));
        } else {
            assert!(
                key.starts_with("errors/processing-failed/"),
                "an unexpected object: {key}"
            );
            errors.extend(text.lines().map(str::to_string));
        }
    }
    for (customer, got) in &by_customer {
        let want: Vec<&String> = input
            .iter()
            .filter(|l| l.contains(&format!(r#""customer":"{customer}""#)))
            .collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want,
            "customer {customer}, in order"
        );
    }
    assert_eq!(by_customer.len(), 3);
    assert_eq!(errors.len(), failing);
    let e: serde_json::Value = serde_json::from_str(&errors[0]).unwrap();
    assert_eq!(
        e["errorCode"],
        "DynamicPartitioning.MetadataExtractionFailed"
    );
    assert!(e["errorMessage"].as_str().unwrap().contains("customer"));
}

#[test]
fn large_s3_objects_go_up_by_multipart_upload() {
    let rt = runtime();
    let (_moto, endpoint) = moto();
    let client = rt.block_on(s3(&endpoint));
    rt.block_on(client.create_bucket().bucket("big").send())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 12 MiB of records in one object: three 5 MiB parts.
    let line = "y".repeat(1023);
    let body: String = (0..12 * 1024).map(|_| format!("{line}\n")).collect();
    std::fs::write(dir.path().join("in.txt"), &body).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[source]
type = "file"
path = "in.txt"
[sink]
type = "s3"
bucket = "big"
endpoint = "${WEIR_TEST_S3}"
force_path_style = true
prefix = "raw/"
buffer = { size = "64MiB", interval = "900s" }
multipart_threshold = "5MiB"
part_size = "5MiB"
"#,
    )
    .unwrap();
    run(dir.path(), &[("WEIR_TEST_S3", &endpoint)]);
    let objects = rt.block_on(bucket(&client, "big"));
    assert_eq!(objects.len(), 1, "{:?}", objects.keys());
    let (key, got) = objects.iter().next().unwrap();
    assert!(key.starts_with("raw/"), "{key}");
    let head = rt
        .block_on(client.head_object().bucket("big").key(key).send())
        .unwrap();
    assert!(
        head.e_tag().unwrap().trim_matches('"').ends_with("-3"),
        "uploaded in 3 parts: ETag {:?}",
        head.e_tag()
    );
    assert!(
        got == body.as_bytes(),
        "the object is the input, byte for byte"
    );
}

/// Runs a file → file pipeline with `sink` settings; returns the objects under `out`.
fn file_objects(
    input: &str,
    sink: &str,
    files: &[(&str, &str)],
) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            r#"
[source]
type = "file"
path = "in.jsonl"
format = "json"
[sink]
type = "file"
path = "out"
{sink}
"#
        ),
    )
    .unwrap();
    run(dir.path(), &[]);
    let mut found = Vec::new();
    let mut stack = vec![dir.path().join("out")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    found.sort();
    (dir, found)
}

fn python(script: &str, arg: &Path) -> Vec<u8> {
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn gzip_zip_snappy_and_hadoop_snappy_objects_decompress_to_the_records() {
    let input: String = lines(8000).iter().map(|l| format!("{l}\n")).collect();
    for (compression, ext) in [
        ("gzip", "gz"),
        ("zip", "zip"),
        ("snappy", "snappy"),
        ("hadoop_snappy", "snappy"),
    ] {
        let (_dir, objects) = file_objects(
            &input,
            &format!("compression = \"{compression}\"\nbuffer = {{ size = \"128MiB\", interval = \"900s\" }}"),
            &[],
        );
        assert_eq!(objects.len(), 1, "{compression}: {objects:?}");
        let object = &objects[0];
        assert_eq!(object.extension().unwrap(), ext, "{compression}");
        // Independent decoders where Python's standard library has one.
        let plain = match compression {
            "gzip" => python("import gzip,sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())", object),
            "zip" => python(
                "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); sys.stdout.buffer.write(b''.join(z.read(n) for n in z.namelist()))",
                object,
            ),
            "snappy" => weir::sink::compress::decompress(&std::fs::read(object).unwrap(), weir::config::Compression::Snappy).unwrap(),
            _ => weir::sink::compress::decompress(&std::fs::read(object).unwrap(), weir::config::Compression::HadoopSnappy).unwrap(),
        };
        assert!(plain == input.as_bytes(), "{compression}: byte for byte");
    }
}

#[test]
fn json_records_become_parquet_rows_and_misfits_go_to_format_conversion_failed() {
    let schema = r#"{"columns": [
        {"name": "customer", "type": "string", "optional": false},
        {"name": "n", "type": "long"},
        {"name": "pad", "type": "string"}
    ]}"#;
    let input: String = lines(100).iter().map(|l| format!("{l}\n")).collect();
    let (dir, objects) = file_objects(
        &input,
        r#"format = { parquet = { schema = "schema.json" } }"#,
        &[("schema.json", schema)],
    );
    let parquet: Vec<&PathBuf> = objects
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parquet.len(), 1, "{objects:?}");
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let reader = SerializedFileReader::new(std::fs::File::open(parquet[0]).unwrap()).unwrap();
    let rows: Vec<(String, i64, String)> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.get_string(0).unwrap().clone(),
                r.get_long(1).unwrap(),
                r.get_string(2).unwrap().clone(),
            )
        })
        .collect();
    let want: Vec<(String, i64, String)> = lines(100)
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((
                v["customer"].as_str()?.to_string(),
                v["n"].as_i64().unwrap(),
                v["pad"].as_str().unwrap().to_string(),
            ))
        })
        .collect();
    assert_eq!(rows, want, "row by row");
    let errors: Vec<&PathBuf> = objects
        .iter()
        .filter(|p| {
            p.to_string_lossy()
                .contains("errors/format-conversion-failed/")
        })
        .collect();
    assert_eq!(errors.len(), 1, "{objects:?}");
    let text = std::fs::read_to_string(errors[0]).unwrap();
    assert_eq!(text.lines().count(), 100 / 7);
    assert!(text.contains("required column `customer`"), "{text}");
    drop(dir);
}

#[test]
fn the_backup_keeps_every_source_record_before_processing() {
    let filter = root().join("guests/dist/filter-json.wasm");
    assert!(
        filter.exists(),
        "build the guests with guests/build.sh (scripts/test does)"
    );
    let input: String = lines(70).iter().map(|l| format!("{l}\n")).collect();
    let (dir, objects) = file_objects(
        &input,
        &format!(
            r#"buffer = {{ interval = "0s" }}
[[process]]
type = "wasm"
module = "{}"
config = {{ field = "customer", one_of = ["c0", "c1", "c2"] }}
[backup]
type = "file"
path = "backup"
prefix = "source/"
"#,
            filter.display()
        ),
        &[],
    );
    let delivered: usize = objects
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    assert_eq!(
        delivered, 60,
        "the filter dropped the records without a customer"
    );
    let mut backup = Vec::new();
    for e in walk(&dir.path().join("backup/source")) {
        backup.extend(
            std::fs::read_to_string(e)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    let want: HashSet<String> = lines(70).into_iter().collect();
    assert_eq!(backup.len(), 70);
    assert_eq!(backup.into_iter().collect::<HashSet<_>>(), want);
}

#[test]
fn a_firehose_delivery_stream_receives_the_records() {
    let rt = runtime();
    let (_moto, endpoint) = moto();
    let client = rt.block_on(s3(&endpoint));
    let firehose = rt.block_on(async {
        let conf = aws_sdk_firehose::Config::builder()
            .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
            .region(aws_sdk_firehose::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_firehose::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "weir-tests",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_firehose::Client::from_conf(conf)
    });
    rt.block_on(async {
        client
            .create_bucket()
            .bucket("landing")
            .send()
            .await
            .unwrap();
        firehose
            .create_delivery_stream()
            .delivery_stream_name("clicks")
            .extended_s3_destination_configuration(
                aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                    .bucket_arn("arn:aws:s3:::landing")
                    .role_arn("arn:aws:iam::123456789012:role/firehose")
                    .compression_format(aws_sdk_firehose::types::CompressionFormat::Uncompressed)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<String> = (0..1200).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    std::fs::write(dir.path().join("in.jsonl"), input.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[pipeline]
# One batch of all 1,200 (the source's end closes it): three calls of 500, 500, 200.
batch = { records = 1200, linger = "60s" }
[source]
type = "file"
path = "in.jsonl"
[sink]
type = "firehose"
delivery_stream = "clicks"
endpoint = "${WEIR_TEST_FIREHOSE}"
"#,
    )
    .unwrap();
    let stderr = run(dir.path(), &[("WEIR_TEST_FIREHOSE", &endpoint)]);
    assert!(stderr.contains("1200 records in, 1200 out"), "{stderr}");
    // moto delivers each call into the bucket as it comes: records back to back.
    let objects = rt.block_on(bucket(&client, "landing"));
    assert_eq!(
        objects.len(),
        3,
        "one object per PutRecordBatch of at most 500 records"
    );
    let all: String = objects
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let mut got: Vec<String> = all.split_inclusive('}').map(str::to_string).collect();
    got.sort();
    let mut want = input;
    want.sort();
    assert_eq!(got, want, "every record once");
}

/// What the local HTTP receiver does with each request, in turn (the last one repeats).
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Accept the connection, read the request, answer nothing for this long.
    Hang(Duration),
    /// 200 with the request id echoed.
    Ok,
    /// 200 with a different request id.
    WrongId,
}

struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A Firehose HTTP endpoint on 127.0.0.1 that answers as scripted and records every request.
fn receiver(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut out = stream;
            loop {
                let mut headers = BTreeMap::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (k, v) = l.split_once(':').unwrap();
                    headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
                }
                let len: usize = headers["content-length"].parse().unwrap();
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let id = headers["x-amz-firehose-request-id"].clone();
                log.lock().unwrap().push(Received { headers, body });
                let answer = script[n.min(script.len() - 1)];
                n += 1;
                let reply = |status: u16, body: String| {
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                let text = match answer {
                    Answer::Status(s) => reply(s, r#"{"errorMessage":"no"}"#.into()),
                    Answer::Hang(d) => {
                        std::thread::sleep(d);
                        break;
                    }
                    Answer::Ok => reply(200, format!(r#"{{"requestId":"{id}","timestamp":1}}"#)),
                    Answer::WrongId => reply(200, r#"{"requestId":"other","timestamp":1}"#.into()),
                };
                if out.write_all(text.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (url, seen)
}

fn http_pipeline(dir: &Path, url: &str, extra: &str) {
    let input: Vec<String> = (0..40).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    std::fs::write(dir.join("in.jsonl"), input.join("\n")).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        format!(
            r#"
[pipeline]
batch = {{ records = 40 }}
[source]
type = "file"
path = "in.jsonl"
[sink]
type = "http"
url = "{url}"
access_key = "k3y"
common_attributes = {{ team = "data" }}
request_timeout = "1s"
{extra}
[errors]
type = "file"
path = "errors"
buffer = {{ interval = "0s" }}
"#
        ),
    )
    .unwrap();
}

#[test]
fn http_endpoint_delivery_retries_with_the_same_request_id_until_a_200_echoes_it() {
    let (url, seen) = receiver(vec![
        Answer::Status(500),
        Answer::Hang(Duration::from_millis(1500)),
        Answer::WrongId,
        Answer::Ok,
    ]);
    let dir = tempfile::tempdir().unwrap();
    http_pipeline(
        dir.path(),
        &url,
        "content_encoding = \"gzip\"\nretry_duration = \"60s\"",
    );
    let stderr = run(dir.path(), &[]);
    assert!(
        stderr.contains("40 records in, 40 out, 0 dropped, 0 failed"),
        "{stderr}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "500, timeout, wrong id, then success");
    let id = &seen[0].headers["x-amz-firehose-request-id"];
    for r in seen.iter() {
        assert_eq!(
            &r.headers["x-amz-firehose-request-id"], id,
            "one id across retries"
        );
        assert_eq!(r.headers["x-amz-firehose-protocol-version"], "1.0");
        assert_eq!(r.headers["x-amz-firehose-access-key"], "k3y");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(
            r.headers["x-amz-firehose-common-attributes"],
            r#"{"commonAttributes":{"team":"data"}}"#
        );
        assert!(r.headers["x-amz-firehose-source-arn"].starts_with("arn:aws:firehose:"));
    }
    let body: serde_json::Value = serde_json::from_str(&gunzip(&seen[3].body)).unwrap();
    assert_eq!(body["requestId"], id.as_str());
    assert!(body["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    use base64::Engine as _;
    let records: Vec<String> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(r["data"].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    let want: Vec<String> = (0..40).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    assert_eq!(records, want);
}

fn error_lines(dir: &Path) -> Vec<serde_json::Value> {
    walk(&dir.join("errors"))
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn http_413_is_permanent_and_a_refusal_gives_up_after_the_retry_duration() {
    // 413: no retry, the records go to the error output at once.
    let (url, seen) = receiver(vec![Answer::Status(413)]);
    let dir = tempfile::tempdir().unwrap();
    http_pipeline(dir.path(), &url, "retry_duration = \"60s\"");
    let started = Instant::now();
    let stderr = run(dir.path(), &[]);
    assert!(started.elapsed() < Duration::from_secs(30), "{stderr}");
    assert_eq!(seen.lock().unwrap().len(), 1, "413 is not retried");
    let errors = error_lines(dir.path());
    assert_eq!(errors.len(), 40);
    assert_eq!(errors[0]["errorCode"], "HttpEndpoint.RequestEntityTooLarge");
    let objects = walk(&dir.path().join("errors"));
    assert!(
        objects
            .iter()
            .all(|p| p.starts_with(dir.path().join("errors/http-endpoint-failed"))),
        "{objects:?}"
    );

    // 400 forever: the endpoint refuses the content; retried with back-off until 3 s have
    // passed, then given up to the error output, as Firehose does.
    let (url, seen) = receiver(vec![Answer::Status(400)]);
    let dir = tempfile::tempdir().unwrap();
    http_pipeline(dir.path(), &url, "retry_duration = \"3s\"");
    run(dir.path(), &[]);
    let attempts = seen.lock().unwrap().len();
    assert!(
        (2..=4).contains(&attempts),
        "1 s, 2 s back-off within 3 s: {attempts} attempts"
    );
    let errors = error_lines(dir.path());
    assert_eq!(errors.len(), 40);
    assert_eq!(errors[0]["errorCode"], "HttpEndpoint.400");
    assert_eq!(errors[0]["attemptsMade"], attempts);
}

#[test]
fn an_http_endpoint_down_past_the_retry_duration_loses_nothing() {
    // The endpoint answers 503 for far longer than `retry_duration`, and the pipeline names no
    // [errors]. Records are neither given up nor printed: after a restart against a healthy
    // endpoint, every one arrives there.
    let (url, seen) = receiver(vec![Answer::Status(503)]);
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<String> = (0..50).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    std::fs::write(dir.path().join("in.jsonl"), input.join("\n") + "\n").unwrap();
    let write = |url: &str| {
        std::fs::write(
            dir.path().join("p.toml"),
            format!(
                r#"
[pipeline]
name = "down"
[source]
type = "file"
path = "in.jsonl"
follow = true
checkpoint = true
[sink]
type = "http"
url = "{url}"
retry_duration = "1s"
request_timeout = "1s"
buffer = {{ interval = "0s" }}
"#
            ),
        )
        .unwrap()
    };
    write(&url);
    let mut child = weir(dir.path()).stderr(Stdio::null()).start();
    // Past the retry duration (1 s) several times over: 1 + 2 + 4 s of back-off.
    eventually(
        || "four attempts".into(),
        || seen.lock().unwrap().len() >= 4,
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "stopping with records undelivered is a failed run"
    );
    let errors = walk(&dir.path().join("state"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/errors/"))
        .count();
    assert_eq!(
        errors, 0,
        "an endpoint that is down is not the records' fault"
    );
    let (url, seen) = receiver(vec![Answer::Ok]);
    write(&url);
    let child = weir(dir.path()).start();
    let got = || -> Vec<String> {
        use base64::Engine as _;
        let mut all: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                body["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        String::from_utf8(
                            base64::engine::general_purpose::STANDARD
                                .decode(d["data"].as_str().unwrap())
                                .unwrap(),
                        )
                        .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all.dedup();
        all
    };
    eventually(
        || format!("50 records, have {}", got().len()),
        || got().len() == 50,
    );
    stop(child);
    let mut want = input;
    want.sort();
    assert_eq!(got(), want, "every record arrived");
}

#[test]
fn a_checkpointed_file_source_loses_nothing_across_kill_9_with_full_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let input: Vec<String> = (0..20_000).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    std::fs::write(dir.path().join("in.jsonl"), input.join("\n") + "\n").unwrap();
    let pipeline = |interval: &str| {
        std::fs::write(
            dir.path().join("p.toml"),
            format!(
                r#"
[pipeline]
batch = {{ records = 500, linger = "5ms" }}
[source]
type = "file"
path = "in.jsonl"
format = "json"
follow = true
checkpoint = true
[sink]
type = "file"
path = "out"
buffer = {{ size = "1MiB", interval = "{interval}" }}
"#
            ),
        )
        .unwrap();
    };
    let checkpoint = || {
        walk(&dir.path().join("state"))
            .iter()
            .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .map(|p| {
                serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap())
                    .unwrap()
            })
    };
    // Buffers that hold everything for 15 minutes: kill -9 while they are full.
    pipeline("900s");
    let log = dir.path().join("first.log");
    let mut first = weir(dir.path())
        .args(["--progress", "100ms"])
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .start();
    // Kill once every record was read (a progress line counts them in) and handed on.
    eventually(
        || "the source to read every record".into(),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("records_in=20000")
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        walk(&dir.path().join("out")).is_empty(),
        "nothing was flushed"
    );
    assert_eq!(
        checkpoint(),
        None,
        "no checkpoint moved past buffered records"
    );

    // Deliver some, then kill -9 again mid-way.
    pipeline("0s");
    let mut second = weir(dir.path()).start();
    eventually(|| "a checkpoint".into(), || checkpoint().is_some());
    second.kill().unwrap();
    second.wait().unwrap();
    let saved = checkpoint().unwrap();
    let delivered_before = count_lines(&dir.path().join("out"));
    let line = saved["line"].as_u64().unwrap() as usize;
    assert!(
        line <= delivered_before,
        "the checkpoint is never past delivered records"
    );

    // Restart: everything arrives; only records after the checkpoint come twice.
    let third = weir(dir.path()).start();
    let delivered = || -> HashSet<String> {
        walk(&dir.path().join("out"))
            .iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    eventually(
        || format!("{} records, have {}", input.len(), delivered().len()),
        || delivered().len() == input.len(),
    );
    stop(third);
    let total = count_lines(&dir.path().join("out"));
    let duplicates = total - input.len();
    assert!(
        duplicates <= delivered_before - line,
        "{duplicates} duplicates; only the {} records after the checkpoint may repeat",
        delivered_before - line
    );
}

fn count_lines(dir: &Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn a_python_transform_s_partition_keys_fill_partition_key_from_lambda() {
    let enrich = root().join("guests/dist/enrich.wasm");
    assert!(
        enrich.exists(),
        "build the guests with guests/build.sh (scripts/test does)"
    );
    let input: Vec<String> = (0..30)
        .map(|i| match i % 3 {
            0 => format!(r#"{{"team":"red","n":{i}}}"#),
            1 => format!(r#"{{"team":"blue","n":{i}}}"#),
            _ => format!(r#"{{"n":{i}}}"#),
        })
        .collect();
    let (dir, objects) = file_objects(
        &(input.join("\n") + "\n"),
        &format!(
            r#"prefix = "team=!{{partitionKeyFromLambda:team}}/"
error_prefix = "failed/!{{firehose:error-output-type}}/"
buffer = {{ interval = "0s" }}
[[process]]
type = "wasm"
module = "{}"
config = {{ add = {{ seen = true }}, partition_keys = {{ team = "team" }} }}
"#,
            enrich.display()
        ),
        &[],
    );
    let mut teams: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut failed = Vec::new();
    for p in &objects {
        let rel = p
            .strip_prefix(dir.path().join("out"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        match rel.strip_prefix("team=") {
            // No timestamp is appended to a dynamically partitioned prefix.
            Some(rest) => {
                let (team, name) = rest.split_once('/').unwrap();
                assert!(name.starts_with("p-1-"), "{rel}");
                teams.entry(team.to_string()).or_default().extend(lines);
            }
            None => {
                assert!(rel.starts_with("failed/processing-failed/"), "{rel}");
                failed.extend(lines);
            }
        }
    }
    assert_eq!(teams.keys().collect::<Vec<_>>(), ["blue", "red"]);
    for (team, records) in &teams {
        assert_eq!(records.len(), 10);
        assert!(records
            .iter()
            .all(|r| r["team"] == team.as_str() && r["seen"] == true));
    }
    assert_eq!(failed.len(), 10, "records the transform gave no key");
    assert_eq!(
        failed[0]["errorCode"],
        "DynamicPartitioning.MetadataExtractionFailed"
    );
}

#[test]
fn a_followed_file_is_read_across_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let write = |path: &Path, from: usize, to: usize| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for i in from..to {
            writeln!(f, r#"{{"n":{i}}}"#).unwrap();
        }
    };
    write(&log, 0, 10);
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[pipeline]
batch = { linger = "10ms" }
[source]
type = "file"
path = "app.log"
format = "json"
follow = true
checkpoint = true
[sink]
type = "file"
path = "out"
buffer = { interval = "0s" }
"#,
    )
    .unwrap();
    let child = weir(dir.path()).start();
    let wait = |n: usize| {
        eventually(
            || format!("{n} lines"),
            || count_lines(&dir.path().join("out")) >= n,
        )
    };
    wait(10);
    // Rotation by rename; the writer still appends to the old file for a moment.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    write(&dir.path().join("app.log.1"), 10, 12);
    write(&log, 12, 20);
    wait(20);
    // copytruncate: the file shrinks under the reader.
    std::fs::write(&log, "").unwrap();
    write(&log, 20, 25);
    wait(25);
    stop(child);
    let mut got: Vec<u64> = walk(&dir.path().join("out"))
        .iter()
        .filter(|p| !p.starts_with(dir.path().join("out/errors")))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                        .as_u64()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    assert_eq!(got, (0..25).collect::<Vec<u64>>(), "every line once");
}

/// One HTTP/1.1 request to the admin API; returns the status line's code and the body.
#[test]
fn the_admin_api_pauses_and_resumes_a_pipeline_and_serves_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let append = |from: usize, to: usize| common::append_numbered(&log, from as u64, to as u64);
    append(0, 5);
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[pipeline]
name = "tail"
batch = { linger = "10ms" }
[source]
type = "file"
path = "app.log"
format = "json"
follow = true
[sink]
type = "file"
path = "out"
buffer = { interval = "0s" }
"#,
    )
    .unwrap();
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = weir(dir.path()).args(common::admin_args(&addr)).start();
    common::wait_port(port, "the admin API");
    let lines = || count_lines(&dir.path().join("out"));
    eventually(|| "5 lines".into(), || lines() == 5);

    let (code, body) = admin(&addr, "GET", "/pipelines");
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["name"], "tail");
    assert_eq!(list[0]["state"], "running");
    assert_eq!(list[0]["records_out"], 5);

    let (code, body) = admin(&addr, "POST", "/pipelines/tail/pause");
    assert_eq!(code, 200, "{body}");
    append(5, 10);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lines(), 5, "nothing moves while paused");
    let (_, metrics) = admin(&addr, "GET", "/metrics");
    assert!(
        metrics.contains("weir_pipeline_paused{pipeline=\"tail\",tenant=\"default\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_records_out_total{pipeline=\"tail\",tenant=\"default\"} 5"),
        "{metrics}"
    );

    let (code, body) = admin(&addr, "POST", "/pipelines/tail/resume");
    assert_eq!(code, 200, "{body}");
    eventually(|| "10 lines after resuming".into(), || lines() == 10);
    assert_eq!(admin(&addr, "GET", "/pipelines/nope").0, 404);

    // Shutdown wins over a pause: the pipeline drains and stops.
    admin(&addr, "POST", "/pipelines/tail/pause");
    append(10, 12);
    std::thread::sleep(Duration::from_millis(300));
    stop(child);
    assert_eq!(lines(), 12, "paused records are delivered at shutdown");
}

#[test]
fn a_checkpoint_never_passes_a_last_line_without_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"n\":0}\n{\"n\":1}\n{\"n\":").unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[source]
type = "file"
path = "in.jsonl"
format = "json"
checkpoint = true
[sink]
type = "file"
path = "out"
buffer = { interval = "0s" }
"#,
    )
    .unwrap();
    run(dir.path(), &[]);
    // The writer finishes the line; the next run reads it whole.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("in.jsonl"))
        .unwrap();
    writeln!(f, "2}}").unwrap();
    run(dir.path(), &[]);
    let mut got: Vec<String> = walk(&dir.path().join("out"))
        .iter()
        .filter(|p| !p.starts_with(dir.path().join("out/errors")))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    assert_eq!(got, [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#]);
}

//! Kinesis peers and clients the tests share.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_kinesis::Client;

use super::{free_port, root, wait_port, Peer};

/// kinesalite on 127.0.0.1: polling, resharding through ListShards' parent links.
pub fn kinesalite() -> (Peer, String) {
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
    wait_port(port, "kinesalite");
    (peer, format!("http://127.0.0.1:{port}"))
}

pub async fn client(endpoint: &str) -> Client {
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

pub async fn wait_active(client: &Client, stream: &str) {
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

pub async fn create_stream(client: &Client, stream: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    wait_active(client, stream).await;
}

pub async fn put(client: &Client, stream: &str, records: &[(String, Vec<u8>)]) {
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

/// A DynamoDB client for moto.
pub async fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "weir-tests",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

pub async fn lease_items(db: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    match db.scan().table_name(table).send().await {
        Ok(out) => out.items().to_vec(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Vec::new() // not created yet
        }
        Err(e) => panic!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)),
    }
}

pub fn owner(item: &Item) -> Option<&str> {
    item.get("leaseOwner")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

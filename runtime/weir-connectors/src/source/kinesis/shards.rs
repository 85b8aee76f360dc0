//! The stream and its shards as Kinesis describes them: names and ARNs, the stream's identity,
//! ListShards.

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::Client;

use super::leases::StreamIdentity;
use crate::aws::brief;

pub(super) use crate::aws::Stream;

/// The stream's ARN and creation time, from DescribeStreamSummary; `None` if the endpoint
/// cannot say (checkpoints are then kept without them).
pub(super) async fn describe(client: &Client, stream: &Stream) -> Option<StreamIdentity> {
    let mut req = client.describe_stream_summary();
    req = if stream.is_arn {
        req.stream_arn(&stream.id)
    } else {
        req.stream_name(&stream.id)
    };
    match req.send().await {
        Ok(out) => {
            let d = out.stream_description_summary()?;
            Some(StreamIdentity {
                arn: d.stream_arn().to_string(),
                created_ms: d.stream_creation_timestamp().to_millis().ok()?,
            })
        }
        Err(e) => {
            tracing::warn!(stream = %stream.id, error = %brief(&e), "Cannot describe the stream; its checkpoints are kept without its creation time");
            None
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct ShardInfo {
    pub(super) parents: Vec<String>,
    /// ListShards gave the shard an ending sequence number: it takes no more records.
    pub(super) closed: bool,
    pub(super) hash_range: Option<(String, String)>,
}

pub(super) async fn list_shards(
    client: &Client,
    stream: &Stream,
) -> Result<Vec<(String, ShardInfo)>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = client.list_shards();
        req = match &token {
            Some(t) => req.next_token(t),
            None if stream.is_arn => req.stream_arn(&stream.id),
            None => req.stream_name(&stream.id),
        };
        let page = req
            .send()
            .await
            .map_err(|e| format!("{}", DisplayErrorContext(&e)))?;
        for s in page.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_string)
                .collect();
            let closed = s
                .sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_some();
            let hash_range = s.hash_key_range().map(|r| {
                (
                    r.starting_hash_key().to_string(),
                    r.ending_hash_key().to_string(),
                )
            });
            out.push((
                s.shard_id().to_string(),
                ShardInfo {
                    parents,
                    closed,
                    hash_range,
                },
            ));
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(out),
        }
    }
}

/// Whether Kinesis refused a position as not of this stream: the error a checkpoint of a
/// stream that was deleted and created again gets.
pub(super) fn of_another_stream(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("InvalidArgumentException")
        && message.is_some_and(|m| m.contains("did not come from this stream"))
}

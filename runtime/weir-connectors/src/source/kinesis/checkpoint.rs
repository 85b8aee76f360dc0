//! A shard's position as saved: the local checkpoint format, and which stream incarnation it
//! belongs to.

use serde::{Deserialize, Serialize};

use super::leases::StreamIdentity;
use super::shards::Stream;
use crate::checkpoint::LocalStore;
use crate::source::SourceError;

/// Where a shard resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checkpoint {
    /// After this record (and, inside a KPL aggregate, after this user record).
    At {
        sequence: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub_sequence: Option<u64>,
    },
    /// The shard is closed and everything in it was delivered.
    End { shard_end: bool },
    /// Nothing delivered yet; reading began at this time (ms since the epoch): resume at it.
    Started { started_at_ms: i64 },
}

/// A checkpoint as the local store keeps it: the position and the stream incarnation it is of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Saved {
    #[serde(flatten)]
    pub(super) position: Checkpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) stream_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) stream_created_ms: Option<i64>,
}

/// A shard's key in the local store: `<stream>_<shard id>` (stream names and shard ids never
/// contain `/`, and a stream name never ends in `_shardId-`).
pub(super) fn key(stream: &Stream, shard: &str) -> String {
    format!("{}_{shard}", stream.name())
}

pub(super) fn save(
    stream: &Stream,
    store: &LocalStore,
    shard: &str,
    c: &Checkpoint,
    identity: Option<&StreamIdentity>,
) -> Result<(), SourceError> {
    let saved = Saved {
        position: c.clone(),
        stream_arn: identity.map(|i| i.arn.clone()),
        stream_created_ms: identity.map(|i| i.created_ms),
    };
    let text = serde_json::to_string(&saved).expect("checkpoints serialize");
    store
        .save(&key(stream, shard), &text)
        .map_err(|e| SourceError::Checkpoint(format!("cannot save checkpoint of {shard}: {e}")))
}

/// A shard's checkpoint, if it is of the stream incarnation being read. One of another
/// incarnation is set aside (renamed with its stream's creation time), with a warning. When
/// the stream could not be described (`identity` is `None`), the identity the checkpoint
/// holds is taken as the stream's, so that saving it again does not forget it.
pub(super) fn load(
    stream: &Stream,
    store: &LocalStore,
    shard: &str,
    identity: &mut Option<StreamIdentity>,
) -> Result<Option<Checkpoint>, SourceError> {
    let key = key(stream, shard);
    let text = store
        .load(&key)
        .map_err(|e| SourceError::Checkpoint(format!("cannot read checkpoint of {shard}: {e}")))?;
    let Some(text) = text else { return Ok(None) };
    let saved: Saved = serde_json::from_str(&text).map_err(|e| {
        SourceError::Checkpoint(format!("checkpoint of {shard} is unreadable ({e}): {text}"))
    })?;
    if identity.is_none() {
        if let (Some(arn), Some(created_ms)) = (&saved.stream_arn, saved.stream_created_ms) {
            *identity = Some(StreamIdentity {
                arn: arn.clone(),
                created_ms,
            });
            return Ok(Some(saved.position));
        }
    }
    let identity = identity.as_ref();
    let stale = match (identity, &saved.stream_created_ms, &saved.stream_arn) {
        (Some(now), Some(created), arn) => {
            *created != now.created_ms || arn.as_ref().is_some_and(|a| *a != now.arn)
        }
        _ => false,
    };
    if !stale {
        return Ok(Some(saved.position));
    }
    let suffix = format!("stream-{}", saved.stream_created_ms.unwrap_or_default());
    let kept = store.set_aside(&key, &suffix).map_err(|e| {
        SourceError::Checkpoint(format!("cannot set the checkpoint of {shard} aside: {e}"))
    })?;
    tracing::warn!(
        stream = %stream.id,
        shard = %shard,
        checkpoint_stream_created_ms = ?saved.stream_created_ms,
        stream_created_ms = ?identity.map(|i| i.created_ms),
        kept_at = %kept.map(|p| p.display().to_string()).unwrap_or_default(),
        "The stream was deleted and created again since this checkpoint: the shard is read from `start`; the old checkpoint is kept aside"
    );
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_keeps_its_stream_when_the_stream_cannot_be_described() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "p");
        let stream = Stream::new("clicks");
        let first = StreamIdentity {
            arn: "arn:aws:kinesis:us-east-1:000000000000:stream/clicks".into(),
            created_ms: 1_000,
        };
        let at = Checkpoint::At {
            sequence: "7".into(),
            sub_sequence: None,
        };
        save(&stream, &store, "shard-0", &at, Some(&first)).unwrap();
        // DescribeStreamSummary failed at start: the identity on disk is taken, and saved again.
        let mut unknown = None;
        let loaded = load(&stream, &store, "shard-0", &mut unknown).unwrap();
        assert_eq!(loaded, Some(at.clone()));
        assert_eq!(unknown.as_ref(), Some(&first));
        save(&stream, &store, "shard-0", &at, unknown.as_ref()).unwrap();
        // So a later incarnation is still told apart, and the old checkpoint set aside.
        let mut second = Some(StreamIdentity {
            created_ms: 2_000,
            ..first.clone()
        });
        assert_eq!(load(&stream, &store, "shard-0", &mut second).unwrap(), None);
        assert!(dir.path().join("p").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with("stream-1000")));
    }

    #[test]
    fn checkpoints_round_trip_in_their_documented_format() {
        let at = Checkpoint::At {
            sequence: "49680581342493285632077337212590733722758422410672734210".into(),
            sub_sequence: Some(2),
        };
        let text = serde_json::to_string(&at).unwrap();
        assert_eq!(
            text,
            r#"{"sequence":"49680581342493285632077337212590733722758422410672734210","sub_sequence":2}"#
        );
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), at);
        assert_eq!(
            serde_json::from_str::<Checkpoint>(r#"{"sequence":"1"}"#).unwrap(),
            Checkpoint::At {
                sequence: "1".into(),
                sub_sequence: None
            }
        );
        let end = Checkpoint::End { shard_end: true };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"shard_end":true}"#
        );
        let saved = Saved {
            position: Checkpoint::Started {
                started_at_ms: 1_764_000_000_000,
            },
            stream_arn: Some("arn:aws:kinesis:us-east-1:000000000000:stream/s".into()),
            stream_created_ms: Some(1_700_000_000_000),
        };
        let text = serde_json::to_string(&saved).unwrap();
        assert_eq!(
            text,
            r#"{"started_at_ms":1764000000000,"stream_arn":"arn:aws:kinesis:us-east-1:000000000000:stream/s","stream_created_ms":1700000000000}"#
        );
        let back: Saved = serde_json::from_str(&text).unwrap();
        assert_eq!(back.position, saved.position);
        // A checkpoint an older release saved has no stream fields, and still reads.
        let old: Saved = serde_json::from_str(r#"{"sequence":"7","sub_sequence":1}"#).unwrap();
        assert_eq!(old.stream_created_ms, None);
    }

    #[test]
    fn a_checkpoint_of_an_older_stream_incarnation_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "p");
        let stream = Stream::new("s");
        let old = StreamIdentity {
            arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
            created_ms: 1,
        };
        let new = StreamIdentity {
            created_ms: 2,
            ..old.clone()
        };
        let at = Checkpoint::At {
            sequence: "9".into(),
            sub_sequence: None,
        };
        save(&stream, &store, "shardId-0", &at, Some(&old)).unwrap();
        assert_eq!(
            load(&stream, &store, "shardId-0", &mut Some(old.clone())).unwrap(),
            Some(at.clone())
        );
        assert_eq!(
            load(&stream, &store, "shardId-0", &mut Some(new.clone())).unwrap(),
            None
        );
        assert!(dir.path().join("p/s_shardId-0.json.stream-1").exists());
        assert_eq!(
            load(&stream, &store, "shardId-0", &mut Some(new.clone())).unwrap(),
            None
        );
    }
}

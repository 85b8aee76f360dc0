//! KPL aggregated records: de-aggregation into the user records they carry.
//!
//! Wire format (as the Kinesis Producer Library writes it): the magic bytes `F3 89 9A C2`, then a
//! protobuf `AggregatedRecord`, then the 16-byte MD5 of the protobuf bytes.
//!
//! ```proto
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;   // skipped
//! }
//! ```
//!
//! A record without the magic is an ordinary record. A record with it whose MD5 or protobuf
//! does not check out is an error: the caller sends it, unchanged, to the error output.

use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Kinesis caps a partition key at 256 characters.
pub const MAX_KEY_CHARS: usize = 256;
/// An explicit hash key is a 128-bit decimal number: at most 39 digits.
pub const MAX_HASH_KEY_CHARS: usize = 39;
/// The most user records (and table entries) one aggregate may hold. A 1 MiB aggregate of
/// tiny records made by the KPL holds a few tens of thousands; more is a bomb.
pub const MAX_USER_RECORDS: usize = 100_000;
/// The most bytes an aggregate may expand to: every user record's data plus its partition key,
/// which downstream stages (a sink's buffer, an error record) may each hold on their own. A
/// 1 MiB aggregate the KPL makes expands to at most a few MiB; 16 MiB lets a 10 MiB record of
/// large user records through and stops a small aggregate of many records that all name a
/// 256-character key (100,000 of them would be 25 MB).
pub const MAX_EXPANDED_BYTES: usize = 16 << 20;

/// One user record of an aggregate; its sub-sequence number is its index in the aggregate.
/// Its key and data point into the aggregate's tables and bytes: nothing is copied per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: Arc<str>,
    pub explicit_hash_key: Option<Arc<str>>,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    #[error("KPL aggregate: MD5 checksum does not match")]
    Checksum,
    #[error("KPL aggregate: malformed protobuf: {0}")]
    Protobuf(&'static str),
    #[error(
        "KPL aggregate: user record {record} refers to {table} entry {index}, which does not exist"
    )]
    Index {
        record: usize,
        table: &'static str,
        index: u64,
    },
    /// Well formed, but past what a real aggregate holds: see the `MAX_*` limits.
    #[error("KPL aggregate over Weir's limits: {0}")]
    Limit(String),
}

impl KplError {
    /// The error output code of an aggregate that failed so.
    pub fn code(&self) -> &'static str {
        match self {
            KplError::Limit(_) => crate::codes::KINESIS_AGGREGATE_LIMIT,
            _ => crate::codes::KINESIS_CORRUPT_AGGREGATE,
        }
    }
}

/// The user records of `data` if it is a KPL aggregate, `None` if it is an ordinary record.
/// Memory is bounded by the aggregate's size: limits are checked before anything is expanded.
pub fn deaggregate(data: &Bytes) -> Result<Option<Vec<UserRecord>>, KplError> {
    if data.len() < MAGIC.len() + 16 || data[..4] != MAGIC {
        return Ok(None);
    }
    let body = &data[4..data.len() - 16];
    if Md5::digest(body).as_slice() != &data[data.len() - 16..] {
        return Err(KplError::Checksum);
    }
    let too_many = |what: &str| {
        KplError::Limit(format!(
            "more than {MAX_USER_RECORDS} {what} (a bomb, not a KPL aggregate)"
        ))
    };
    let mut keys: Vec<Arc<str>> = Vec::new();
    let mut hash_keys: Vec<Arc<str>> = Vec::new();
    let mut raw = Vec::new();
    let mut r = Reader(body);
    while !r.0.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 2) => {
                let key = r.string()?;
                if key.len() > MAX_KEY_CHARS && key.chars().count() > MAX_KEY_CHARS {
                    return Err(KplError::Limit(format!(
                        "partition key {} has {} characters; Kinesis allows {MAX_KEY_CHARS}",
                        keys.len(),
                        key.chars().count()
                    )));
                }
                if keys.len() == MAX_USER_RECORDS {
                    return Err(too_many("partition keys"));
                }
                keys.push(key.into());
            }
            (2, 2) => {
                let key = r.string()?;
                if key.len() > MAX_HASH_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(KplError::Limit(format!(
                        "explicit hash key {} is not a decimal of at most {MAX_HASH_KEY_CHARS} digits",
                        hash_keys.len()
                    )));
                }
                if hash_keys.len() == MAX_USER_RECORDS {
                    return Err(too_many("explicit hash keys"));
                }
                hash_keys.push(key.into());
            }
            (3, 2) => {
                if raw.len() == MAX_USER_RECORDS {
                    return Err(too_many("user records"));
                }
                raw.push(r.bytes()?);
            }
            _ => r.skip(wire)?,
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut expanded = 0usize;
    for (n, bytes) in raw.into_iter().enumerate() {
        let (mut key_index, mut hash_index, mut payload) = (None, None, None);
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            let (field, wire) = r.key()?;
            match (field, wire) {
                (1, 0) => key_index = Some(r.varint()?),
                (2, 0) => hash_index = Some(r.varint()?),
                (3, 2) => payload = Some(r.bytes()?),
                _ => r.skip(wire)?,
            }
        }
        let key_index =
            key_index.ok_or(KplError::Protobuf("a record has no partition key index"))?;
        let partition_key = keys
            .get(key_index as usize)
            .ok_or(KplError::Index {
                record: n,
                table: "partition key",
                index: key_index,
            })?
            .clone();
        let explicit_hash_key = match hash_index {
            Some(i) => Some(
                hash_keys
                    .get(i as usize)
                    .ok_or(KplError::Index {
                        record: n,
                        table: "explicit hash key",
                        index: i,
                    })?
                    .clone(),
            ),
            None => None,
        };
        let payload = payload.ok_or(KplError::Protobuf("a record has no data"))?;
        expanded += payload.len() + partition_key.len();
        if expanded > MAX_EXPANDED_BYTES {
            return Err(KplError::Limit(format!(
                "its user records and their keys expand past {MAX_EXPANDED_BYTES} bytes"
            )));
        }
        // A slice of the aggregate: the reader copies it into its batch.
        let data = data.slice_ref(payload);
        out.push(UserRecord {
            partition_key,
            explicit_hash_key,
            data,
        });
    }
    Ok(Some(out))
}

/// Encodes a KPL aggregate: its partition key table, and user records as (index into the
/// table, data). Weir reads aggregates; this writes them, for tests, fuzzing and tools.
pub fn aggregate(keys: &[&str], records: &[(u64, &[u8])]) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(tag << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    let mut body = Vec::new();
    for k in keys {
        field(1, k.as_bytes(), &mut body);
    }
    for (index, data) in records {
        let mut rec = Vec::new();
        varint(1 << 3, &mut rec);
        varint(*index, &mut rec);
        field(3, data, &mut rec);
        field(3, &rec, &mut body);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, KplError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .0
                .split_first()
                .ok_or(KplError::Protobuf("truncated varint"))?;
            self.0 = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KplError::Protobuf("varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u64, u8), KplError> {
        let key = self.varint()?;
        Ok((key >> 3, (key & 7) as u8))
    }

    fn bytes(&mut self) -> Result<&'a [u8], KplError> {
        let len = usize::try_from(self.varint()?).map_err(|_| KplError::Protobuf("length"))?;
        if len > self.0.len() {
            return Err(KplError::Protobuf("length past the end"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<&'a str, KplError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| KplError::Protobuf("a key is not UTF-8"))
    }

    fn skip(&mut self, wire: u8) -> Result<(), KplError> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8),
            2 => self.bytes().map(drop),
            5 => self.take(4),
            _ => Err(KplError::Protobuf("unsupported wire type")),
        }
    }

    fn take(&mut self, n: usize) -> Result<(), KplError> {
        if n > self.0.len() {
            return Err(KplError::Protobuf("field past the end"));
        }
        self.0 = &self.0[n..];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `aws-kinesis-agg` 1.2.3 (Python): user records (a, "r1"), (b, "r2"), (c, "r3").
    const AGGREGATE: &str = "f3899ac20a01610a01620a01631a0608001a0272311a0608011a0272321a0608021a027233e0cb781f1b1019dad07909c33922ee33";

    fn hex(s: &str) -> Bytes {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn a_bomb_fails_whole_before_it_expands() {
        let long_key = "k".repeat(512 * 1024);
        let bomb = Bytes::from(aggregate(&[&long_key], &[(0, b"")]));
        let err = deaggregate(&bomb).unwrap_err();
        assert_eq!(err.code(), "Kinesis.AggregateLimitExceeded");
        assert!(err.to_string().contains("Kinesis allows 256"), "{err}");
        let empties: Vec<(u64, &[u8])> = vec![(0, b""); MAX_USER_RECORDS + 1];
        let err = deaggregate(&aggregate(&["k"], &empties).into()).unwrap_err();
        assert!(err.to_string().contains("user records"), "{err}");
        // 70,000 one-byte records under one 256-character key: 350 KB that would expand to
        // 18 MB in the records' own keys downstream.
        let key = "k".repeat(MAX_KEY_CHARS);
        let small: Vec<(u64, &[u8])> = vec![(0, b"x"); 70_000];
        let dense = aggregate(&[&key], &small);
        assert!(dense.len() < 1 << 20);
        let err = deaggregate(&dense.into()).unwrap_err();
        assert_eq!(err.code(), "Kinesis.AggregateLimitExceeded");
        assert!(
            err.to_string().contains("expand past 16777216 bytes"),
            "{err}"
        );
        // At the limit it is an aggregate like any other, and shares its key.
        let records = deaggregate(&aggregate(&["k"], &empties[1..]).into())
            .unwrap()
            .unwrap();
        assert_eq!(records.len(), MAX_USER_RECORDS);
        assert!(Arc::ptr_eq(
            &records[0].partition_key,
            &records[1].partition_key
        ));
    }

    #[test]
    fn deaggregates_a_record_made_by_the_python_aggregator() {
        let records = deaggregate(&hex(AGGREGATE)).unwrap().unwrap();
        let got: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (&*r.partition_key, &r.data[..]))
            .collect();
        assert_eq!(got, [("a", &b"r1"[..]), ("b", b"r2"), ("c", b"r3")]);
    }

    #[test]
    fn plain_records_pass_and_corrupt_aggregates_fail() {
        assert_eq!(
            deaggregate(&Bytes::from_static(b"{\"plain\":true}")).unwrap(),
            None
        );
        let mut bad = hex(AGGREGATE).to_vec();
        bad[10] ^= 1;
        assert_eq!(deaggregate(&bad.into()), Err(KplError::Checksum));
        // A valid checksum over a truncated protobuf.
        let body = &hex(AGGREGATE)[4..20];
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(body);
        forged.extend_from_slice(&Md5::digest(body));
        assert!(matches!(
            deaggregate(&forged.into()),
            Err(KplError::Protobuf(_))
        ));
    }
}

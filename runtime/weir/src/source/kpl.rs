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

use md5::{Digest, Md5};

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// One user record of an aggregate; its sub-sequence number is its index in the aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
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
}

/// The user records of `data` if it is a KPL aggregate, `None` if it is an ordinary record.
pub fn deaggregate(data: &[u8]) -> Result<Option<Vec<UserRecord>>, KplError> {
    if data.len() < MAGIC.len() + 16 || data[..4] != MAGIC {
        return Ok(None);
    }
    let body = &data[4..data.len() - 16];
    if Md5::digest(body).as_slice() != &data[data.len() - 16..] {
        return Err(KplError::Checksum);
    }
    let mut keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw = Vec::new();
    let mut r = Reader(body);
    while !r.0.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, 2) => keys.push(r.string()?),
            (2, 2) => hash_keys.push(r.string()?),
            (3, 2) => raw.push(r.bytes()?),
            _ => r.skip(wire)?,
        }
    }
    let mut out = Vec::with_capacity(raw.len());
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
        out.push(UserRecord {
            partition_key,
            explicit_hash_key,
            data: payload
                .ok_or(KplError::Protobuf("a record has no data"))?
                .to_vec(),
        });
    }
    Ok(Some(out))
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

    fn string(&mut self) -> Result<String, KplError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| KplError::Protobuf("a key is not UTF-8"))
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn deaggregates_a_record_made_by_the_python_aggregator() {
        let records = deaggregate(&hex(AGGREGATE)).unwrap().unwrap();
        let got: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (r.partition_key.as_str(), r.data.as_slice()))
            .collect();
        assert_eq!(got, [("a", &b"r1"[..]), ("b", b"r2"), ("c", b"r3")]);
    }

    #[test]
    fn plain_records_pass_and_corrupt_aggregates_fail() {
        assert_eq!(deaggregate(b"{\"plain\":true}").unwrap(), None);
        let mut bad = hex(AGGREGATE);
        bad[10] ^= 1;
        assert_eq!(deaggregate(&bad), Err(KplError::Checksum));
        // A valid checksum over a truncated protobuf.
        let body = &hex(AGGREGATE)[4..20];
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(body);
        forged.extend_from_slice(&Md5::digest(body));
        assert!(matches!(deaggregate(&forged), Err(KplError::Protobuf(_))));
    }
}

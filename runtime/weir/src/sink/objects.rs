//! Firehose-style objects: buffering hints, object keys and durable writes, shared by the `file`
//! sink and the file error output.
//!
//! Object key: `<prefix>YYYY/MM/dd/HH/<pipeline>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>[.gz]`, in
//! UTC, where the time is when the object's first record entered the buffer.
//!
//! Durability: an object is written to a hidden temporary file in its final directory, synced,
//! and renamed into place; readers never see a partial object, and an object that exists holds
//! every record that was counted as delivered in it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;

use crate::ack::{Ack, Held};
use crate::clock::Clock;
use crate::config::{BufferConfig, Compression, Delimiter};

/// How a failed object write is retried before the pipeline gives up.
const WRITE_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Where and how objects are written.
#[derive(Clone)]
pub struct ObjectWriter {
    pub dir: PathBuf,
    pub prefix: String,
    pub pipeline: String,
    /// Firehose's configuration version: counts changes of the pipeline, from 1.
    pub version: u32,
    pub compression: Compression,
    pub clock: Arc<dyn Clock>,
}

impl ObjectWriter {
    /// The object's key, relative to `dir`.
    pub fn key(&self, opened_at: DateTime<Utc>, id: uuid::Uuid) -> String {
        let ext = match self.compression {
            Compression::None => "",
            Compression::Gzip => ".gz",
        };
        format!(
            "{}{}{}-{}-{}-{}{}",
            self.prefix,
            opened_at.format("%Y/%m/%d/%H/"),
            self.pipeline,
            self.version,
            opened_at.format("%Y-%m-%d-%H-%M-%S"),
            id,
            ext
        )
    }

    /// Compresses and writes one object durably, retrying with back-off; returns its path.
    pub async fn write(&self, body: Vec<u8>, opened_at: DateTime<Utc>) -> std::io::Result<PathBuf> {
        let path = self.dir.join(self.key(opened_at, uuid::Uuid::new_v4()));
        let compression = self.compression;
        let body = Arc::new(body);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let (p, b) = (path.clone(), body.clone());
            let result = tokio::task::spawn_blocking(move || write_object(&p, &b, compression))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            match result {
                Ok(()) => return Ok(path),
                Err(err) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!(path = %path.display(), attempt, error = %err, "Object write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

fn write_object(path: &Path, body: &[u8], compression: Compression) -> std::io::Result<()> {
    let dir = path.parent().expect("object keys have a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".weir-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    match compression {
        Compression::None => tmp.write_all(body)?,
        Compression::Gzip => {
            let mut gz = GzEncoder::new(&mut tmp, flate2::Compression::default());
            gz.write_all(body)?;
            gz.finish()?;
        }
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    std::fs::File::open(dir)?.sync_all()
}

/// Records waiting to become an object.
pub struct Buffer {
    pub hints: BufferConfig,
    pub delimiter: Delimiter,
    body: Vec<u8>,
    /// Bytes of record data, before delimiters and compression (what the size hint counts).
    data_bytes: u64,
    records: u64,
    opened: Option<(DateTime<Utc>, tokio::time::Instant)>,
    acks: Held,
}

/// The contents of a buffer on their way to becoming an object.
pub struct Taken {
    pub body: Vec<u8>,
    pub records: u64,
    /// When the first record was buffered.
    pub opened_at: DateTime<Utc>,
    /// Released once the object is durably written; failed if it never is.
    pub acks: Held,
}

impl Buffer {
    pub fn new(hints: BufferConfig, delimiter: Delimiter) -> Self {
        Buffer {
            hints,
            delimiter,
            body: Vec::new(),
            data_bytes: 0,
            records: 0,
            opened: None,
            acks: Held::default(),
        }
    }

    pub fn push(&mut self, data: &[u8], ack: &Ack, clock: &dyn Clock) {
        self.acks.hold(ack);
        if self.opened.is_none() {
            self.opened = Some((clock.now(), tokio::time::Instant::now()));
        }
        self.body.extend_from_slice(data);
        if self.delimiter == Delimiter::Newline {
            self.body.push(b'\n');
        }
        self.data_bytes += data.len() as u64;
        self.records += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The size hint is reached, or the interval is zero (deliver at once).
    pub fn is_full(&self) -> bool {
        !self.is_empty()
            && (self.data_bytes >= self.hints.size.0 || self.hints.interval.0.is_zero())
    }

    /// The size hint alone is reached.
    pub fn over_size(&self) -> bool {
        !self.is_empty() && self.data_bytes >= self.hints.size.0
    }

    /// When the interval hint runs out, if anything is buffered.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.opened.map(|(_, at)| at + self.hints.interval.0)
    }

    /// Empties the buffer.
    pub fn take(&mut self) -> Option<Taken> {
        let (opened_at, _) = self.opened.take()?;
        self.data_bytes = 0;
        Some(Taken {
            body: std::mem::take(&mut self.body),
            records: std::mem::take(&mut self.records),
            opened_at,
            acks: std::mem::take(&mut self.acks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    #[test]
    fn object_keys_follow_firehose_naming_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T09:05:07.250+02:00")
            .unwrap()
            .with_timezone(&Utc);
        let writer = ObjectWriter {
            dir: PathBuf::from("out"),
            prefix: "clicks/".into(),
            pipeline: "quickstart".into(),
            version: 1,
            compression: Compression::Gzip,
            clock: Arc::new(FixedClock(at)),
        };
        let id = uuid::Uuid::from_u128(0x1234);
        assert_eq!(
            writer.key(at, id),
            "clicks/2026/11/26/07/quickstart-1-2026-11-26-07-05-07-00000000-0000-0000-0000-000000001234.gz"
        );
    }

    #[test]
    fn buffer_is_full_at_the_size_hint_counting_data_bytes_only() {
        let clock = FixedClock(Utc::now());
        let hints = BufferConfig {
            size: crate::units::ByteSize(10),
            interval: crate::units::HumanDuration(Duration::from_secs(60)),
        };
        let mut b = Buffer::new(hints, Delimiter::Newline);
        let none = Ack::none();
        b.push(b"12345", &none, &clock);
        b.push(b"1234", &none, &clock);
        assert!(!b.is_full(), "9 data bytes (11 with newlines) is under 10");
        b.push(b"1", &none, &clock);
        assert!(b.is_full());
        let taken = b.take().unwrap();
        assert_eq!(
            (taken.body, taken.records),
            (b"12345\n1234\n1\n".to_vec(), 3)
        );
        assert!(b.is_empty() && b.deadline().is_none());
    }
}

//! Where objects go: a directory (written atomically and durably) or an S3 bucket, and which
//! keys each can hold.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::show;
use crate::sink::retry::Retrying;
use crate::sink::s3::{S3Store, S3_MAX_KEY};

/// File systems take names of at most 255 bytes and paths of at most 4,095.
const MAX_COMPONENT: usize = 255;
const MAX_PATH: usize = 4095;

/// Where objects are stored.
#[derive(Clone)]
pub enum Store {
    Dir(PathBuf),
    S3(Arc<S3Store>),
}

impl Store {
    /// Where the store is, for messages and the run summary.
    pub fn location(&self) -> String {
        match self {
            Store::Dir(dir) => show(dir),
            Store::S3(s) => format!("s3://{}", s.bucket),
        }
    }

    pub(super) fn object_location(&self, key: &str) -> String {
        match self {
            Store::Dir(dir) => show(&dir.join(key)),
            Store::S3(s) => format!("s3://{}/{key}", s.bucket),
        }
    }

    /// Stores one object, made of `body`'s parts in order, durably, retrying with back-off
    /// while `retry` allows; returns its location, or the last error once `retry` gives up. A
    /// file is written from the parts (a vectored write); an upload joins them first (the
    /// sink hands it one part).
    pub async fn put(
        &self,
        key: &str,
        body: Vec<Bytes>,
        encoding: Option<&'static str>,
        retry: &mut Retrying<'_>,
    ) -> Result<String, String> {
        let joined = match self {
            Store::S3(_) if body.len() == 1 => body[0].clone(),
            Store::S3(_) => Bytes::from(body.concat()),
            Store::Dir(_) => Bytes::new(),
        };
        loop {
            let result = match self {
                Store::Dir(dir) => {
                    let (path, b) = (dir.join(key), body.clone());
                    tokio::task::spawn_blocking(move || {
                        crate::durable::write_atomic_parts(&path, &b, ".weir-")
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
                    .map_err(|e| e.to_string())
                }
                Store::S3(s3) => s3.put(key, joined.clone(), encoding).await,
            };
            match result {
                Ok(()) => {
                    retry.succeeded();
                    return Ok(self.object_location(key));
                }
                Err(err) => {
                    let err = format!("{}: {err}", self.object_location(key));
                    if !retry.failed(&err).await {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// Why `key` cannot be stored here, if it cannot: too long for S3, or a name or path too
    /// long for a file system.
    pub(super) fn refuses(&self, key: &str) -> Option<String> {
        match self {
            Store::S3(_) if key.len() > S3_MAX_KEY => Some(format!(
                "the object key would be {} bytes; S3 takes at most {S3_MAX_KEY}",
                key.len()
            )),
            Store::S3(_) => None,
            Store::Dir(dir) => {
                let long = key.split('/').find(|part| part.len() > MAX_COMPONENT);
                if let Some(part) = long {
                    return Some(format!(
                        "the object name `{}...` would be {} bytes; a file name is at most {MAX_COMPONENT}",
                        part.chars().take(40).collect::<String>(),
                        part.len()
                    ));
                }
                let len = dir.join(key).as_os_str().len();
                (len > MAX_PATH).then(|| {
                    format!("the object's path would be {len} bytes; a path is at most {MAX_PATH}")
                })
            }
        }
    }
}

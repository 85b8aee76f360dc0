//! Checkpoints: where a source resumes after a restart.
//!
//! On-disk layout of the local store: one small file per source position,
//! `<state dir>/<pipeline>/<key>.json`, holding the JSON the source saved (for Kinesis:
//! `{"sequence": "...", "sub_sequence": 3}` or `{"shard_end": true}`). A file is replaced by
//! writing a temporary file in the same directory, syncing it, renaming it over the old one and
//! syncing the directory, so after a crash (kill -9, power loss) a reader finds either the old
//! checkpoint or the new one, never a torn one. Recovery rule: a checkpoint is only ever
//! behind the delivered records, so resuming from it may deliver some records again (the
//! at-least-once replay range) and never skips one.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The local checkpoint store of one pipeline.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(state_dir: &Path, pipeline: &str) -> Self {
        LocalStore {
            dir: state_dir.join(file_safe(pipeline)),
        }
    }

    /// The default state directory: `$WEIR_STATE_DIR`, else `$XDG_STATE_HOME/weir`, else
    /// `$HOME/.local/state/weir`, else `.weir-state` in the current directory.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WEIR_STATE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
            return PathBuf::from(dir).join("weir");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(".local/state/weir");
        }
        PathBuf::from(".weir-state")
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_safe(key)))
    }

    pub fn load(&self, key: &str) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(self.path(key)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, key: &str, value: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(value.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

/// Keeps names usable as file names: anything but letters, digits, `.`, `-` and `_` becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Orders the acks of one shard (or file): the checkpoint moves only past an unbroken run of
/// delivered chunks, whatever order their acks resolve in. A chunk that was not delivered stops
/// it for good: the pipeline has failed and a restart replays from there.
#[derive(Debug)]
pub struct Tracker<P> {
    pending: VecDeque<(u64, P, Option<bool>)>,
    stuck: bool,
}

impl<P> Default for Tracker<P> {
    fn default() -> Self {
        Tracker {
            pending: VecDeque::new(),
            stuck: false,
        }
    }
}

impl<P> Tracker<P> {
    /// A chunk was emitted with ack `token`; `position` is where to resume once it is delivered.
    pub fn push(&mut self, token: u64, position: P) {
        self.pending.push_back((token, position, None));
    }

    /// Records an ack's resolution; returns the position the checkpoint may move to, if any.
    pub fn resolve(&mut self, token: u64, delivered: bool) -> Option<P> {
        if let Some(entry) = self.pending.iter_mut().find(|(t, _, _)| *t == token) {
            entry.2 = Some(delivered);
        }
        let mut newest = None;
        while !self.stuck {
            match self.pending.front() {
                Some((_, _, Some(true))) => newest = self.pending.pop_front().map(|(_, p, _)| p),
                Some((_, _, Some(false))) => self.stuck = true,
                _ => break,
            }
        }
        newest
    }

    /// Chunks emitted whose acks have not resolved yet (or are held back by an earlier one).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_moves_only_past_an_unbroken_delivered_prefix() {
        let mut t = Tracker::default();
        for token in 1..=4 {
            t.push(token, token * 10);
        }
        assert_eq!(t.resolve(2, true), None, "1 is still out");
        assert_eq!(t.resolve(1, true), Some(20));
        assert_eq!(t.resolve(4, true), None);
        assert_eq!(t.resolve(3, true), Some(40));
        assert_eq!(t.outstanding(), 0);
        t.push(5, 50);
        t.push(6, 60);
        assert_eq!(t.resolve(5, false), None);
        assert_eq!(
            t.resolve(6, true),
            None,
            "never past a chunk that was not delivered"
        );
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "my pipe");
        assert_eq!(store.load("s/shard-1").unwrap(), None);
        store.save("s/shard-1", r#"{"sequence":"1"}"#).unwrap();
        store.save("s/shard-1", r#"{"sequence":"2"}"#).unwrap();
        assert_eq!(
            store.load("s/shard-1").unwrap().as_deref(),
            Some(r#"{"sequence":"2"}"#)
        );
        let files: Vec<_> = std::fs::read_dir(dir.path().join("my_pipe"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1, "no temporary files left behind");
    }
}

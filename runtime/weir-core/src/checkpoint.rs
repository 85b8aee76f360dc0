//! Checkpoints: where a source resumes after a restart.
//!
//! On-disk layout of the local store: one small file per source position,
//! `<state dir>/<pipeline>/<key>.json`, holding the JSON the source saved (for Kinesis:
//! `{"sequence": "...", "sub_sequence": 3}` or `{"shard_end": true}`). Pipeline names and keys
//! are encoded with [`durable::file_name`], which never maps two names to one file (`a b` and
//! `a_b` keep separate state). A file is replaced by writing a temporary file in the same
//! directory, syncing it, renaming it over the old one and syncing the directory (new
//! directories are synced in their parents too), so after a crash (kill -9, power loss) a
//! reader finds either the old checkpoint or the new one, never a torn one. Recovery rule: a
//! checkpoint is only ever behind the delivered records, so resuming from it may deliver some
//! records again (the at-least-once replay range) and never skips one.
//!
//! Releases before 0.2 named files by replacing unsafe characters with `_`. For a pipeline whose
//! name needs no encoding (its directory is unchanged), such a file is read when the new one is
//! missing, and removed once the checkpoint is saved again. A pipeline whose name needs encoding
//! never reads the old directory, which may be another pipeline's now.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::durable;

/// The local checkpoint store of one pipeline.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
    /// Whether files of releases before 0.2 may be read here: only when the pipeline's name
    /// needs no encoding, so its directory is the one it always had. (A name that does, `a b`,
    /// had the directory that is now another pipeline's, `a_b`: reading it would take that
    /// pipeline's checkpoints. Such a pipeline starts over, with a warning.)
    legacy: bool,
    /// Keys read from a legacy file: it is removed once the key is saved under its new name.
    migrated: Arc<Mutex<HashSet<String>>>,
}

impl LocalStore {
    pub fn new(state_dir: &Path, pipeline: &str) -> Self {
        let dir = Self::pipeline_dir(state_dir, pipeline);
        let legacy_dir = state_dir.join(durable::legacy_file_name(pipeline));
        let legacy = legacy_dir == dir;
        if !legacy && legacy_dir.is_dir() && !dir.exists() {
            tracing::warn!(pipeline, old = %legacy_dir.display(), new = %dir.display(), "This pipeline's name is now written differently in the state directory, and the old directory may be another pipeline's: it starts without the old checkpoints (move them by hand if they are this pipeline's)");
        }
        LocalStore {
            dir,
            legacy,
            migrated: Arc::default(),
        }
    }

    /// The directory of a pipeline's state: `<state dir>/<pipeline name, encoded>`.
    pub fn pipeline_dir(state_dir: &Path, pipeline: &str) -> PathBuf {
        state_dir.join(durable::file_name(pipeline))
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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", durable::file_name(key)))
    }

    /// Where a release before 0.2 kept `key`: the same directory, the old file name.
    fn legacy_path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", durable::legacy_file_name(key)))
    }

    pub fn load(&self, key: &str) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(self.path(key)) {
            Ok(text) => return Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let legacy = self.legacy_path(key);
        if !self.legacy || legacy == self.path(key) {
            return Ok(None);
        }
        match std::fs::read_to_string(&legacy) {
            Ok(text) => {
                tracing::info!(checkpoint = %legacy.display(), "Reading a checkpoint an older release saved; it moves to its new name at the next save");
                self.lock_migrated().insert(key.to_string());
                Ok(Some(text))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, key: &str, value: &str) -> std::io::Result<()> {
        durable::write_atomic(&self.path(key), value.as_bytes(), ".weir-")?;
        if self.lock_migrated().remove(key) {
            let _ = std::fs::remove_file(self.legacy_path(key));
        }
        Ok(())
    }

    /// Moves `key`'s checkpoint aside (to `<name>.json.<suffix>`), keeping it for a person to
    /// look at; returns where it went, or `None` if there was none.
    pub fn set_aside(&self, key: &str, suffix: &str) -> std::io::Result<Option<PathBuf>> {
        let legacy = self.legacy.then(|| self.legacy_path(key));
        for from in std::iter::once(self.path(key)).chain(legacy) {
            if !from.exists() {
                continue;
            }
            let mut to = from.clone().into_os_string();
            to.push(format!(".{suffix}"));
            let to = PathBuf::from(to);
            std::fs::rename(&from, &to)?;
            std::fs::File::open(to.parent().unwrap_or(Path::new(".")))?.sync_all()?;
            self.lock_migrated().remove(key);
            return Ok(Some(to));
        }
        Ok(None)
    }

    fn lock_migrated(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.migrated.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        let files: Vec<_> = std::fs::read_dir(dir.path().join("my%20pipe"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1, "no temporary files left behind");
        // `my_pipe` is another pipeline: it does not see `my pipe`'s checkpoint, and `my pipe`
        // never reads `my_pipe`'s directory (the name it had before 0.2), in either order.
        let other = LocalStore::new(dir.path(), "my_pipe");
        assert_eq!(other.load("s/shard-1").unwrap(), None);
        other.save("s_shard-2", r#"{"sequence":"9"}"#).unwrap();
        std::fs::remove_dir_all(dir.path().join("my%20pipe")).unwrap();
        let spaced = LocalStore::new(dir.path(), "my pipe");
        assert_eq!(spaced.load("s_shard-2").unwrap(), None);
        spaced.save("s_shard-2", r#"{"sequence":"1"}"#).unwrap();
        assert_eq!(
            other.load("s_shard-2").unwrap().as_deref(),
            Some(r#"{"sequence":"9"}"#),
            "untouched"
        );
    }

    #[test]
    fn a_checkpoint_an_older_release_saved_is_read_and_moved_to_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/file__in.txt.json"), r#"{"offset":3}"#).unwrap();
        let store = LocalStore::new(dir.path(), "p");
        assert_eq!(
            store.load("file//in.txt").unwrap().as_deref(),
            Some(r#"{"offset":3}"#)
        );
        store.save("file//in.txt", r#"{"offset":4}"#).unwrap();
        assert!(!dir.path().join("p/file__in.txt.json").exists());
        assert_eq!(
            store.load("file//in.txt").unwrap().as_deref(),
            Some(r#"{"offset":4}"#)
        );
    }
}

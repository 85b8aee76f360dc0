//! On-disk cache of compiled components.
//!
//! Layout: one file per component, `<dir>/<key>.cwasm`, where `key` is the hex SHA-256 of the
//! component's bytes followed by the engine's compatibility hash (wasmtime version, target and
//! compiler settings). A file is written to a temporary name in the same directory and renamed
//! into place, so a reader sees either no file or a whole one. Recovery rule: an artifact that
//! fails to deserialize is compiled again and overwritten; the cache is never the only copy.
//!
//! Trust: deserializing runs native code produced by Cranelift, so the directory must be
//! writable only by the user running Weir (it is the user's own cache directory by default).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompileCache { dir: dir.into() }
    }

    /// The default location: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir`, else
    /// `$HOME/.cache/weir`, else a `weir-cache` folder in the system temp directory.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("weir");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(".cache").join("weir");
        }
        std::env::temp_dir().join("weir-cache")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, engine: &Engine, digest: &[u8; 32]) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!(
            "{}-{:016x}.cwasm",
            hex::encode(digest),
            hasher.finish()
        ))
    }

    /// Returns the compiled component, from the cache when possible. `compiled` reports whether
    /// this call had to compile. `digest` is the SHA-256 of `wasm` (the caller has it already).
    pub(crate) fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.path_for(engine, digest);
        if path.exists() {
            // SAFETY: the file was written by `store` below from Cranelift's output for this
            // exact engine configuration (the key includes its compatibility hash), in a
            // directory owned by the user; see the module docs on trust.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, false)),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "Recompiling unreadable cached component");
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(err) = self.store(&path, &component) {
            // A cache that cannot be written costs time on the next start, nothing else.
            tracing::warn!(dir = %self.dir.display(), error = %err, "Cannot write compiled component to cache");
        }
        Ok((component, true))
    }

    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

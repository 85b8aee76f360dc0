//! Durable files: writes that survive a crash (kill -9, power loss) whole or not at all, and
//! names that never collide.
//!
//! Invariants:
//! - A file written by [`write_atomic`] is either absent, the old version or the new version,
//!   never torn: it is written to a temporary file in the same directory, synced, renamed over
//!   the target, and the directory is synced so that the rename itself is on disk.
//! - Every directory [`create_dirs`] creates is synced in its parent, so a new directory (and
//!   the file in it) cannot vanish after a crash once the call returned.
//! - [`file_name`] is injective: two different names never map to the same file name.

use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Creates `path` and every missing ancestor, syncing each new directory in its parent.
pub fn create_dirs(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut at = path;
    while !at.as_os_str().is_empty() && !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => sync_parent(dir)?,
            // Another writer made it first; it synced it, or will before it uses it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}

/// Writes `body` to `path` atomically and durably (see the module docs). `prefix` names the
/// temporary file, which readers of the directory should skip.
pub fn write_atomic(path: &Path, body: &[u8], prefix: &str) -> io::Result<()> {
    write_atomic_parts(path, &[body], prefix)
}

/// As [`write_atomic`], for a body made of `parts`, in order: written with vectored writes, so
/// the parts are not first copied into one buffer.
pub fn write_atomic_parts<B: AsRef<[u8]>>(
    path: &Path,
    parts: &[B],
    prefix: &str,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_dirs(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    write_all_parts(tmp.as_file_mut(), parts)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes every part, in order, a bounded number of them per system call.
fn write_all_parts<B: AsRef<[u8]>>(out: &mut impl Write, parts: &[B]) -> io::Result<()> {
    // Linux takes at most 1,024 slices per call (IOV_MAX).
    for group in parts.chunks(1024) {
        let mut slices: Vec<io::IoSlice<'_>> =
            group.iter().map(|p| io::IoSlice::new(p.as_ref())).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match out.write_vectored(rest) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The longest file name [`file_name`] makes, in bytes: well under the 255 bytes file systems
/// allow, so that a suffix such as `.json` still fits.
const MAX_NAME: usize = 120;

/// A file name for `name`, injectively: ASCII letters, digits, `-`, `_` and `.` (except a
/// leading `.`) stay as they are; every other byte is written `%XX`. A name whose encoding would
/// pass [`MAX_NAME`] bytes keeps its first 80 encoded bytes and gets `~` and the first 32 hex
/// digits of its SHA-256 appended (`~` never appears in an encoding, so such a name cannot
/// equal a short one).
pub fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if name.is_empty() {
        out.push('%');
    }
    if out.len() <= MAX_NAME {
        return out;
    }
    let mut cut = 80;
    // Never split a `%XX` escape.
    while out.as_bytes()[cut - 1] == b'%' || out.as_bytes().get(cut - 2) == Some(&b'%') {
        cut -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hex}", &out[..cut])
}

/// The file names releases before 0.2 used: anything but letters, digits, `.`, `-` and `_`
/// became `_`, so `a b` and `a_b` shared one. Only read, to carry old state over.
pub fn legacy_file_name(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_in_parts_is_written_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/object");
        // More parts than one system call takes, some empty.
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| {
                if i % 7 == 0 {
                    Vec::new()
                } else {
                    i.to_string().into_bytes()
                }
            })
            .collect();
        write_atomic_parts(&path, &parts, ".t-").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), parts.concat());
        // No temporary file is left beside it.
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
    }

    #[test]
    fn names_that_used_to_collide_no_longer_do() {
        assert_eq!(file_name("clicks"), "clicks");
        assert_eq!(file_name("a_b"), "a_b");
        assert_eq!(file_name("a b"), "a%20b");
        assert_ne!(file_name("a b"), file_name("a_b"));
        assert_eq!(legacy_file_name("a b"), legacy_file_name("a_b"));
        assert_eq!(file_name(".."), "%2E.");
        assert_eq!(file_name("%20"), "%2520");
        assert_ne!(file_name("%20"), file_name(" "));
    }

    #[test]
    fn long_names_are_hashed_and_stay_distinct() {
        let a = "x".repeat(300);
        let b = format!("{}y", "x".repeat(299));
        let (fa, fb) = (file_name(&a), file_name(&b));
        assert!(fa.len() <= MAX_NAME && fb.len() <= MAX_NAME);
        assert_ne!(fa, fb);
        // A cut never splits an escape.
        let spaced = " ".repeat(100);
        let f = file_name(&spaced);
        let (head, _) = f.split_once('~').unwrap();
        assert!(head.len() % 3 == 0, "{head}");
    }

    #[test]
    fn new_directories_are_created_with_their_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dirs(&deep).unwrap();
        assert!(deep.is_dir());
        write_atomic(&deep.join("d/f.json"), b"{}", ".weir-").unwrap();
        assert_eq!(std::fs::read(deep.join("d/f.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(deep.join("d")).unwrap().count(), 1);
    }
}

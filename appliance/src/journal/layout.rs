//! Where the journal's files live and how they are named, listed, locked and made durable.
//!
//! ```text
//! <dir>/writer.lock                      flock(2) held by the one writer (and by repair_tail)
//! <dir>/segments/<20-digit first seq>.seg
//! <dir>/segments/prepare-*.tmp           a segment being preallocated, or ready for rotation
//! <dir>/snapshots/<20-digit seq>.snap
//! <dir>/snapshots/<20-digit seq>.snap.tmp  a snapshot being written
//! ```
//!
//! Twenty digits hold any u64, so names sort in sequence order as strings too (`ls` shows the
//! journal in order).

use super::error::JournalError;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Subdirectory of the journal directory holding segment files.
pub const SEGMENTS_DIR: &str = "segments";
/// Subdirectory of the journal directory holding snapshot files.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The writer's lock file in the journal directory.
pub const LOCK_FILE: &str = "writer.lock";

pub(crate) const SEG_EXT: &str = "seg";
pub(crate) const SNAP_EXT: &str = "snap";
pub(crate) const PREPARE_PREFIX: &str = "prepare-";
pub(crate) const TMP_EXT: &str = "tmp";

/// `<dir>/segments`.
pub fn segments_dir(dir: &Path) -> PathBuf {
    dir.join(SEGMENTS_DIR)
}

/// `<dir>/snapshots`.
pub fn snapshots_dir(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOTS_DIR)
}

/// `<20-digit seq>.seg`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEG_EXT}")
}

/// `<20-digit seq>.snap`.
pub fn snapshot_file_name(seq: u64) -> String {
    format!("{seq:020}.{SNAP_EXT}")
}

/// The seq in a `<20 digits>.<ext>` name; `None` when the name does not end in `.<ext>`,
/// `Some(Err)` when it does but the stem is not 20 digits.
fn parse_seq_name(name: &str, ext: &str) -> Option<Result<u64, ()>> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err(()));
    }
    Some(stem.parse::<u64>().map_err(|_| ()))
}

/// The files of `sub` named `<20 digits>.<ext>`, sorted by seq. Other names are ignored,
/// except ones ending in `.<ext>` with a malformed stem, which are refused.
pub(crate) fn list_numbered(
    sub: &Path,
    ext: &'static str,
) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let rd = match fs::read_dir(sub) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(JournalError::io(sub, "list directory", e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| JournalError::io(sub, "list directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match parse_seq_name(name, ext) {
            None => {}
            Some(Ok(seq)) => out.push((seq, entry.path())),
            Some(Err(())) => {
                return Err(JournalError::UnexpectedFile {
                    path: entry.path(),
                    ext,
                })
            }
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// The segment files of journal `dir`, sorted by first seq.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    list_numbered(&segments_dir(dir), SEG_EXT)
}

/// fsync of a directory: makes the creations, renames and removals in it durable.
pub(crate) fn fsync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates `path` (and parents) if missing, and makes each new entry durable in its parent,
/// so a directory created at first start does not vanish with the files in it after a crash.
pub(crate) fn ensure_dir(path: &Path) -> Result<(), JournalError> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(JournalError::io(path, "create directory", e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent).map_err(|e| JournalError::io(parent, "fsync directory", e))?;
    }
    Ok(())
}

/// Exclusive, non-blocking flock of `<dir>/writer.lock`, released when the file is dropped
/// (also by the kernel when the process dies, so a crash never leaves a stale lock).
pub(crate) fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::io(&path, "open lock file", e))?;
    // SAFETY: flock on a descriptor this function owns (f lives until returned); no memory
    // is passed to the kernel.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(JournalError::Locked { path });
        }
        return Err(JournalError::io(&path, "flock", e));
    }
    Ok(f)
}

/// Wall-clock time for header fields (informational only, so a clock step is harmless).
pub(crate) fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits_and_parse_back() {
        assert_eq!(segment_file_name(1), "00000000000000000001.seg");
        assert_eq!(snapshot_file_name(u64::MAX), "18446744073709551615.snap");
        assert_eq!(
            parse_seq_name("00000000000000000042.seg", "seg"),
            Some(Ok(42))
        );
        assert_eq!(parse_seq_name("42.seg", "seg"), Some(Err(())));
        assert_eq!(parse_seq_name("prepare-1-2.tmp", "seg"), None);
        assert_eq!(
            parse_seq_name("00000000000000000042.snap.tmp", "snap"),
            None
        );
        assert_eq!(
            parse_seq_name("99999999999999999999.seg", "seg"),
            Some(Err(()))
        );
    }
}

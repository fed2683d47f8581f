//! Deleting segments a snapshot has made unnecessary.

use super::error::JournalError;
use super::layout::{fsync_dir, list_segments, segments_dir};
use std::fs;
use std::path::{Path, PathBuf};

/// A segment [`remove_segments_before`] deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedSegment {
    /// The file.
    pub path: PathBuf,
    /// Seq of its first record.
    pub first_seq: u64,
    /// Seq of its last record (the next segment's first seq - 1).
    pub last_seq: u64,
}

/// Deletes the segments whose every record has a seq below `seq` (typically the newest
/// snapshot's seq + 1), oldest first, then fsyncs the directory. Never deletes the last
/// segment, so the writer's file and the journal's end position always survive.
///
/// Decides from file names alone (a segment's records end where the next segment's begin),
/// so it reads no segment. Oldest first, so a crash part-way leaves a contiguous journal.
/// Safe while a writer is open: the writer only appends to the last segment and keeps its
/// own descriptors for the ones it still has to fdatasync; pass only a seq that is synced.
pub fn remove_segments_before(dir: &Path, seq: u64) -> Result<Vec<RemovedSegment>, JournalError> {
    let list = list_segments(dir)?;
    let mut removed = Vec::new();
    for pair in list.windows(2) {
        let ((first, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first > seq {
            break;
        }
        fs::remove_file(path).map_err(|e| JournalError::io(path, "remove segment", e))?;
        removed.push(RemovedSegment {
            path: path.clone(),
            first_seq: *first,
            last_seq: next_first.saturating_sub(1),
        });
    }
    if !removed.is_empty() {
        let d = segments_dir(dir);
        fsync_dir(&d).map_err(|e| JournalError::io(&d, "fsync directory", e))?;
    }
    Ok(removed)
}

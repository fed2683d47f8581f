//! The journal's errors. Every message names the file, and where bytes are at fault, the byte
//! offset, because the person reading it is an operator deciding whether a disk lied.

use super::format::{FrameDamage, HeaderDamage};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What is wrong at a place in a journal file (the file and offset are in
/// [`JournalError::Corrupt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The segment or snapshot header does not verify.
    Header(HeaderDamage),
    /// The file name says one first sequence number, the header another.
    NameMismatch {
        /// From the file name.
        name_seq: u64,
        /// From the header.
        header_seq: u64,
    },
    /// A segment does not start where the previous one ended (a gap, or records repeated).
    SegmentSeq {
        /// Previous segment's last seq + 1.
        expected: u64,
        /// This segment's first seq.
        found: u64,
    },
    /// A record that is not valid where the torn-tail rule does not apply (a segment that is
    /// not the last one).
    Frame(FrameDamage),
    /// A bad record with a valid record somewhere after it: not a torn write, lost data.
    FrameFollowedByValid {
        /// What is wrong with the bad record.
        damage: FrameDamage,
        /// Offset of the first valid record after it.
        valid_offset: u64,
        /// That record's seq.
        valid_seq: u64,
    },
    /// A frame whose CRC verifies but that this format never writes (kind 0, or non-zero
    /// reserved fields): written by something else, not torn.
    InvalidFrame {
        /// The kind field.
        kind: u16,
        /// The flags field.
        flags: u16,
        /// The reserved field.
        reserved: u32,
    },
    /// A valid record with the wrong sequence number (a gap or a repeat).
    RecordSeq {
        /// The seq the record should have had.
        expected: u64,
        /// The seq it has.
        found: u64,
    },
    /// A valid record after the end-of-data marker (an all-zero frame header).
    RecordAfterEnd {
        /// Offset of that record.
        valid_offset: u64,
        /// Its seq.
        valid_seq: u64,
    },
    /// Non-zero bytes after the end of data in a segment that is not the last one.
    DataAfterEnd {
        /// Offset of the first non-zero byte.
        first_nonzero: u64,
    },
    /// A snapshot file whose length is not header + payload length (partial, or extended).
    SnapshotLength {
        /// 64 + the header's payload length.
        expected: u64,
        /// The file's length.
        found: u64,
    },
    /// A snapshot payload whose CRC does not verify.
    PayloadCrc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the payload.
        computed: u32,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(h) => write!(f, "{h}"),
            Self::NameMismatch {
                name_seq,
                header_seq,
            } => write!(
                f,
                "file name says first seq {name_seq}, header says {header_seq}"
            ),
            Self::SegmentSeq { expected, found } => write!(
                f,
                "segment starts at seq {found}, but the previous segment ends before seq \
                 {expected} ({})",
                if found > expected {
                    "records missing"
                } else {
                    "records repeated"
                }
            ),
            Self::Frame(d) => write!(f, "{d} (not in the last segment, so not a torn write)"),
            Self::FrameFollowedByValid {
                damage,
                valid_offset,
                valid_seq,
            } => write!(
                f,
                "{damage}, followed by a valid record (seq {valid_seq}) at byte {valid_offset}: \
                 damage inside written data, not a torn write"
            ),
            Self::InvalidFrame {
                kind,
                flags,
                reserved,
            } => write!(
                f,
                "record with a valid CRC but kind {kind}, flags {flags}, reserved {reserved} \
                 (this format writes kind != 0 and zero reserved fields)"
            ),
            Self::RecordSeq { expected, found } => write!(
                f,
                "record has seq {found}, expected {expected} ({})",
                if found > expected { "gap" } else { "repeat" }
            ),
            Self::RecordAfterEnd {
                valid_offset,
                valid_seq,
            } => write!(
                f,
                "end-of-data marker, but a valid record (seq {valid_seq}) follows at byte \
                 {valid_offset}"
            ),
            Self::DataAfterEnd { first_nonzero } => write!(
                f,
                "non-zero bytes at byte {first_nonzero} after the end of data in a segment that \
                 is not the last one"
            ),
            Self::SnapshotLength { expected, found } => write!(
                f,
                "snapshot file is {found} bytes, its header says {expected} (partial or extended)"
            ),
            Self::PayloadCrc { stored, computed } => write!(
                f,
                "snapshot payload CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// Errors of the journal's cold-path operations (open, scan, repair, read, retention,
/// snapshots). The hot-path calls return [`super::AppendError`] or plain `io::Error`.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A system call on a journal file or directory failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Bytes that are neither valid data nor a torn tail.
    #[error("{}: byte {offset}: {damage}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
    /// A file in `segments/` or `snapshots/` ends in `.seg`/`.snap` but is not named
    /// `<20-digit seq>.seg`/`.snap`: someone else's file, refused rather than ignored.
    #[error("{}: unexpected file name (expected <20-digit seq>.{ext})", path.display())]
    UnexpectedFile {
        /// The file.
        path: PathBuf,
        /// The extension expected.
        ext: &'static str,
    },
    /// The writer's options cannot work together.
    #[error("invalid journal options: {0}")]
    InvalidOptions(String),
    /// The writer was asked to continue at a seq the journal does not end at.
    #[error(
        "{}: the journal continues at seq {expected}, but the writer was asked to continue at \
         {requested}",
        path.display()
    )]
    NextSeq {
        /// The last segment.
        path: PathBuf,
        /// The seq after the journal's last record.
        expected: u64,
        /// The seq passed to `JournalWriter::open`.
        requested: u64,
    },
    /// The last segment has a torn tail the writer would write over; recovery must call
    /// `scan` and `repair_tail` first.
    #[error(
        "{}: byte {offset}: unrepaired torn tail; run scan() and repair_tail() before opening \
         the writer",
        path.display()
    )]
    TornTailPresent {
        /// The last segment.
        path: PathBuf,
        /// Where the torn data starts.
        offset: u64,
    },
    /// Another writer (or a repair) holds the journal directory's lock.
    #[error("{}: locked by another journal writer or repair", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A read from a sequence number the journal does not hold.
    #[error(
        "cannot read from seq {requested}: the journal holds seqs {first} to {next} (exclusive)"
    )]
    SeqOutOfRange {
        /// The seq asked for.
        requested: u64,
        /// First seq present.
        first: u64,
        /// Seq after the last present.
        next: u64,
    },
    /// The file changed between a scan and an operation that relied on the scan.
    #[error("{}: changed since it was scanned: {what}", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// What differs.
        what: String,
    },
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, damage: Damage) -> Self {
        Self::Corrupt {
            path: path.into(),
            offset,
            damage,
        }
    }
}

/// Why [`super::JournalWriter::append`] refused a record. Nothing was buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The in-memory buffer has no room for the frame: call `write()` (back-pressure).
    #[error("journal buffer full: frame needs {needed} bytes, {free} free")]
    BufferFull {
        /// Frame bytes needed.
        needed: usize,
        /// Bytes free in the buffer.
        free: usize,
    },
    /// The payload exceeds the writer's configured maximum.
    #[error("journal record payload of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The payload length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Kind 0 is reserved so that an all-zero header can never be a record.
    #[error("journal record kind 0 is reserved")]
    InvalidKind,
}

//! Journal storage: an append-only, checksummed log of opaque records in preallocated segment
//! files, and atomically written, checksummed snapshot files.
//!
//! This layer knows nothing about what records mean: a record is a `u16` kind (non-zero,
//! defined by the layer above) and a payload of bytes. It gives the journal agent an
//! allocation-free writer ([`JournalWriter`]) and recovery a verifying scan ([`scan`]), a
//! torn-tail repair ([`repair_tail`]), an in-order reader ([`JournalReader`]), retention
//! ([`remove_segments_before`], [`remove_snapshots_before`]) and snapshot files
//! ([`write_snapshot`], [`latest_valid_snapshot`]).
//!
//! # Directory layout
//!
//! ```text
//! <dir>/writer.lock                          flock(2) of the one writer (and of repair_tail)
//! <dir>/segments/<20-digit first seq>.seg    e.g. 00000000000000000001.seg
//! <dir>/segments/prepare-<pid>-<ns>-<n>.tmp  a segment being preallocated, or ready to use
//! <dir>/snapshots/<20-digit seq>.snap
//! <dir>/snapshots/<20-digit seq>.snap.tmp    a snapshot being written
//! ```
//!
//! Only `.seg` and `.snap` files are part of the journal; `.tmp` files are ignored by readers
//! and deleted by `JournalWriter::open` (segments) or `remove_snapshots_before` (snapshots).
//! A file ending in `.seg` or `.snap` whose stem is not 20 digits is refused.
//!
//! # Segment file
//!
//! All integers little-endian. Version 1.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `MAJNLSEG` |
//! | 8 | 2 | format version, `1` (a reader refuses any other) |
//! | 10 | 2 | header size, `64` |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | segment size in bytes as created (informational: scans use the file length) |
//! | 24 | 8 | first record seq (equals the seq in the file name) |
//! | 32 | 8 | creation time, Unix ns (informational) |
//! | 40 | 20 | reserved, 0 |
//! | 60 | 4 | CRC32C of bytes 0..60 |
//! | 64 | .. | record frames, back to back, then zeros to the end of the file |
//!
//! Segments are preallocated to `segment_bytes` (default 64 MiB): `fallocate`, then every byte
//! written with zeros, then `fsync`, under a temporary name; see [`segfile`] for why both.
//! A full disk therefore fails when a segment is prepared, not in the middle of a record, and
//! an `fdatasync` after appending needs no metadata update.
//!
//! # Record frame
//!
//! Frames start at offsets that are multiples of 8 (from 64).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | `payload_len` (at most 1 MiB, [`format::MAX_PAYLOAD`]; writers may be set lower) |
//! | 4 | 4 | CRC32C of frame bytes 8 .. 24 + `payload_len` (seq, kind, flags, reserved, payload) |
//! | 8 | 8 | `seq`: global, from 1, +1 per record across segments |
//! | 16 | 2 | `kind`: non-zero (0 is reserved, so zeros can never be a record) |
//! | 18 | 2 | `flags`: reserved, 0 |
//! | 20 | 4 | reserved, 0 |
//! | 24 | `payload_len` | payload |
//! | .. | 0-7 | zero padding to a multiple of 8 (not covered by the CRC, not checked) |
//!
//! Frame size = `(24 + payload_len)` rounded up to 8. A record never spans segments: when the
//! next frame does not fit in the current segment, the writer rotates, and the rest of the old
//! segment stays zero. An all-zero 24-byte frame header (or fewer than 24 bytes left before
//! the end of the file, all zero) marks the end of written data.
//!
//! # Snapshot file
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `MAJNLSNP` |
//! | 8 | 2 | format version, `1` |
//! | 10 | 2 | header size, `64` |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | seq covered: every record up to and including it is reflected (= name) |
//! | 24 | 8 | payload length |
//! | 32 | 4 | CRC32C of the payload |
//! | 36 | 4 | reserved, 0 |
//! | 40 | 8 | creation time, Unix ns (informational) |
//! | 48 | 12 | reserved, 0 |
//! | 60 | 4 | CRC32C of bytes 0..60 |
//! | 64 | payload length | payload; the file is exactly 64 + payload length bytes |
//!
//! # What the scan accepts (torn tail vs corruption)
//!
//! [`scan`] walks the segments in name order. Per segment:
//!
//! 1. The header must verify (magic, version, size, CRC) and its first seq must equal the file
//!    name's and the previous segment's last seq + 1. Otherwise: corruption.
//! 2. From byte 64, each frame must have a length within the format limit and inside the
//!    file, and a CRC that verifies. A frame that verifies must also have kind != 0, zero
//!    flags and reserved fields, and the next seq; if not, it is corruption (a gap, a repeat,
//!    or bytes this format never writes), never a torn tail.
//! 3. Data ends at the first all-zero frame header, or at the first frame that does not
//!    verify ("bad record").
//! 4. Then every 8-aligned offset from there to the end of the file is tried for a frame
//!    that verifies (kind != 0, reserved fields zero, length within limits, CRC):
//!    - one is found: corruption, in any segment ("bad record followed by a valid record",
//!      or "valid record after the end-of-data marker");
//!    - none, and the rest of the file is all zero: a clean end. In a segment that is not the
//!      last, this is how a segment rotated before it was full ends;
//!    - none, but there are non-zero bytes (a bad record, or garbage after the end marker):
//!      in the **last** segment a **torn tail**, reported as the cut offset (the end of the
//!      last good record) and the last good seq, for [`repair_tail`]; in any other segment,
//!      corruption.
//!
//! Corruption is a [`JournalError::Corrupt`] naming the file, the byte offset and what is
//! wrong; recovery stops and an operator decides. A torn tail is what a crash during a write
//! leaves: bytes after the last good record that no completed `sync` covered. Damage with a
//! valid record after it is taken as written data lost, and reported. Two limits of any log
//! of this kind: when nothing valid follows, the scan cannot tell a torn unsynced write from
//! a disk that lost the last records it had acknowledged, and assumes the former (recovery
//! may compare `last_good_seq` with whatever else knows what was acknowledged); and a crash
//! that persisted a later page of an unsynced write but not an earlier one (write-back order
//! is not guaranteed) is reported as corruption, since we prefer asking an operator to
//! dropping records silently.
//!
//! # Recovery, then writing
//!
//! ```no_run
//! # use appliance::journal::*;
//! # fn f(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! let snap = latest_valid_snapshot(dir)?;            // log snap.skipped
//! let report = scan(dir)?;                            // Err = corruption: stop
//! if let Some(cut) = repair_tail(&report)? { /* log + metric: cut.offset, cut.garbage_bytes */ }
//! let from = snap.latest.as_ref().map_or(1, |s| s.seq + 1);
//! let mut reader = JournalReader::new(&report, from)?;
//! while let Some(r) = reader.next_record()? { /* apply r.kind, r.payload */ }
//! let next = report.next_seq().unwrap_or(from);
//! let mut w = JournalWriter::open(dir, WriterOptions::default(), next)?;
//! let seq = w.append(1, b"payload").expect("buffer has room");
//! w.write()?;   // in the page cache: written_seq() >= seq
//! w.sync()?;    // on disk: synced_seq() >= seq
//! # Ok(()) }
//! ```
//!
//! # Writer errors
//!
//! `append` refuses (buffering nothing) when the buffer is full, the payload too large or the
//! kind 0. `write` failing (ENOSPC, EIO, a short write, a failed rotation) loses nothing: the
//! unwritten records stay buffered, `written_seq` does not count them, and the next `write`
//! retries at the same file offset. A new segment is prepared under a temporary name and only
//! renamed to `.seg` once complete, so a failure there leaves nothing a scan sees. Rotation
//! makes the segment it leaves durable before the new name exists, so after a crash only the
//! last segment can be torn. A failed `fdatasync` (in `sync` or in a rotation) is sticky (see
//! [`JournalWriter::sync`]). Tests inject failures through [`JournalWriter::set_fault_hook`].

pub mod error;
pub mod fault;
pub mod format;
pub mod layout;
pub mod mapping;
pub mod reader;
pub mod retention;
pub mod scan;
pub mod segfile;
pub mod snapfile;
pub mod writer;

#[cfg(test)]
pub(crate) mod testutil;

pub use error::{AppendError, Damage, JournalError};
pub use fault::{Fault, FaultHook, IoOp};
pub use format::{FrameDamage, HeaderDamage, MAX_PAYLOAD};
pub use reader::{records_from, JournalReader, Record};
pub use retention::{remove_segments_before, RemovedSegment};
pub use scan::{repair_tail, scan, ScanReport, SegmentSummary, TailCut, TornReason, TornTail};
pub use segfile::PreparedSegment;
pub use snapfile::{
    latest_valid_snapshot, latest_valid_snapshot_info, read_snapshot, remove_snapshots_before,
    verify_snapshot, write_snapshot, SkippedSnapshot, Snapshot, SnapshotInfo, SnapshotReader,
    SnapshotSearch, SnapshotWriter,
};
pub use writer::{JournalWriter, WriteFailure, WriterOptions};

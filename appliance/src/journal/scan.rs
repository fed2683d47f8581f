//! The recovery scan: verifies every segment, finds a torn tail, and cuts it.
//!
//! The rules (also in the module documentation of [`crate::journal`]):
//!
//! - Segments are taken in file-name order. Each header must verify and name the same first
//!   seq as the file name; each segment's first seq must be the previous segment's last + 1.
//! - Records are read from byte 64 on. Each must verify (length within limits and inside the
//!   file, CRC), be something this format writes (kind != 0, flags and reserved zero) and
//!   carry the next seq. A valid record with another seq is corruption, never a torn tail.
//! - Data ends at the first all-zero frame header (or at the end of the file, or when fewer
//!   than 24 bytes are left and they are zero), or at the first bad record.
//! - After the end, the rest of the file is examined:
//!   - all zero: clean end;
//!   - a valid frame at some 8-aligned offset after it: corruption (data was lost in the
//!     middle), in any segment;
//!   - otherwise, non-zero bytes with no valid frame: in the last segment, a **torn tail**,
//!     cut at the end of the last good record; in any other segment, corruption.

use super::error::{Damage, JournalError};
use super::fault::Faults;
use super::format::{
    first_nonzero, frame_at, nonzero_end, plausible_valid_frame_at, Frame, FrameDamage,
    FrameHeader, SegmentHeader, FRAME_ALIGN, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use super::layout::{list_segments, lock_dir};
use super::segfile::{write_op, zero_range};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the scan found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub header: SegmentHeader,
    /// Seq of its first record (= `header.first_seq`).
    pub first_seq: u64,
    /// Valid records in it (before a torn tail, if it has one).
    pub records: u64,
    /// Offset just past the last valid record (64 when it has none).
    pub data_end: u64,
    /// File length.
    pub file_len: u64,
}

impl SegmentSummary {
    /// Seq of its last valid record, if it has any.
    pub fn last_seq(&self) -> Option<u64> {
        (self.records > 0).then(|| self.first_seq + self.records - 1)
    }

    /// The seq a record following this segment's last must have.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.records
    }
}

/// Why the scan calls the end of the last segment torn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TornReason {
    /// A record that does not verify, with no valid record anywhere after it.
    Frame(FrameDamage),
    /// The end-of-data marker, then non-zero bytes containing no valid record.
    GarbageAfterEnd {
        /// Offset of the first non-zero byte.
        first_nonzero: u64,
    },
}

/// A torn tail: where to cut the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub segment: PathBuf,
    /// Offset of the cut: just past the last good record.
    pub offset: u64,
    /// Seq of the last record before the cut (the seq before the segment's first when the
    /// cut is at its first record; 0 when nothing precedes it).
    pub last_good_seq: u64,
    /// What was found at the cut.
    pub reason: TornReason,
    /// Offset just past the last non-zero byte of the file: `garbage_end - offset` bytes of
    /// torn data.
    pub garbage_end: u64,
}

/// The outcome of [`scan`] on a journal that is not corrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// The journal directory.
    pub dir: PathBuf,
    /// Every segment, in order.
    pub segments: Vec<SegmentSummary>,
    /// A torn tail in the last segment, to be cut by [`repair_tail`] before writing.
    pub torn_tail: Option<TornTail>,
}

impl ScanReport {
    /// Seq of the first record the journal can hold (the first segment's first seq).
    pub fn first_seq(&self) -> Option<u64> {
        self.segments.first().map(|s| s.first_seq)
    }

    /// Seq of the last valid record, if there is any.
    pub fn last_seq(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find_map(SegmentSummary::last_seq)
    }

    /// The seq to pass to [`super::JournalWriter::open`]: one past the last valid record.
    /// `None` when there are no segments (the caller decides, e.g. snapshot seq + 1).
    pub fn next_seq(&self) -> Option<u64> {
        self.segments.last().map(SegmentSummary::next_seq)
    }

    /// Valid records in all segments.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }
}

/// What [`repair_tail`] cut, for a log line and a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    /// The segment cut.
    pub segment: PathBuf,
    /// Offset of the cut.
    pub offset: u64,
    /// Bytes of torn data removed (up to the last non-zero byte).
    pub garbage_bytes: u64,
    /// Bytes zeroed (the torn data, plus any length restored to a truncated segment).
    pub zeroed_bytes: u64,
    /// Seq of the last record kept.
    pub last_good_seq: u64,
}

/// Reads a whole file into `buf` (reusing its capacity).
pub(crate) fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<(), JournalError> {
    buf.clear();
    let mut f = File::open(path).map_err(|e| JournalError::io(path, "open", e))?;
    f.read_to_end(buf)
        .map_err(|e| JournalError::io(path, "read", e))?;
    Ok(())
}

/// First offset `>= start` (rounded up to [`FRAME_ALIGN`]) where a valid frame starts.
fn find_valid_frame(bytes: &[u8], start: usize) -> Option<(usize, FrameHeader)> {
    let mut q = start.next_multiple_of(FRAME_ALIGN);
    while q + FRAME_HEADER_BYTES <= bytes.len() {
        if let Some(h) = plausible_valid_frame_at(bytes, q) {
            return Some((q, h));
        }
        q += FRAME_ALIGN;
    }
    None
}

/// Verifies one segment image. `expected_first` is the previous segment's next seq (`None`
/// for the first segment). Returns the summary and, for the last segment, a torn tail.
pub(crate) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    name_seq: u64,
    expected_first: Option<u64>,
    is_last: bool,
) -> Result<(SegmentSummary, Option<TornTail>), JournalError> {
    let header = SegmentHeader::decode(bytes)
        .map_err(|d| JournalError::corrupt(path, 0, Damage::Header(d)))?;
    if header.first_seq != name_seq {
        return Err(JournalError::corrupt(
            path,
            24,
            Damage::NameMismatch {
                name_seq,
                header_seq: header.first_seq,
            },
        ));
    }
    if let Some(expected) = expected_first {
        if header.first_seq != expected {
            return Err(JournalError::corrupt(
                path,
                24,
                Damage::SegmentSeq {
                    expected,
                    found: header.first_seq,
                },
            ));
        }
    }
    let mut off = SEGMENT_HEADER_BYTES;
    let mut next = header.first_seq;
    let stop = loop {
        match frame_at(bytes, off) {
            Frame::End => break None,
            Frame::Bad(d) => break Some(d),
            Frame::Valid { header: h, len } => {
                if h.kind == 0 || h.flags != 0 || h.reserved != 0 {
                    return Err(JournalError::corrupt(
                        path,
                        off as u64,
                        Damage::InvalidFrame {
                            kind: h.kind,
                            flags: h.flags,
                            reserved: h.reserved,
                        },
                    ));
                }
                if h.seq != next {
                    return Err(JournalError::corrupt(
                        path,
                        off as u64,
                        Damage::RecordSeq {
                            expected: next,
                            found: h.seq,
                        },
                    ));
                }
                next += 1;
                off += len;
            }
        }
    };
    let summary = SegmentSummary {
        path: path.to_path_buf(),
        header,
        first_seq: header.first_seq,
        records: next - header.first_seq,
        data_end: off as u64,
        file_len: bytes.len() as u64,
    };
    let tail = &bytes[off.min(bytes.len())..];
    let torn = |reason| TornTail {
        segment: path.to_path_buf(),
        offset: off as u64,
        last_good_seq: next - 1,
        reason,
        garbage_end: (off + nonzero_end(tail)) as u64,
    };
    match stop {
        None => {
            let Some(nz) = first_nonzero(tail) else {
                return Ok((summary, None));
            };
            let first_nz = off + nz;
            // A frame whose header contains that first non-zero byte starts at most 23 bytes
            // before it; the end marker itself at `off` is not a frame.
            let start = (off + FRAME_ALIGN).max(first_nz.saturating_sub(FRAME_HEADER_BYTES - 1));
            if let Some((q, h)) = find_valid_frame(bytes, start) {
                return Err(JournalError::corrupt(
                    path,
                    off as u64,
                    Damage::RecordAfterEnd {
                        valid_offset: q as u64,
                        valid_seq: h.seq,
                    },
                ));
            }
            if !is_last {
                return Err(JournalError::corrupt(
                    path,
                    first_nz as u64,
                    Damage::DataAfterEnd {
                        first_nonzero: first_nz as u64,
                    },
                ));
            }
            let t = torn(TornReason::GarbageAfterEnd {
                first_nonzero: first_nz as u64,
            });
            Ok((summary, Some(t)))
        }
        Some(damage) => {
            if let Some((q, h)) = find_valid_frame(bytes, off + FRAME_ALIGN) {
                return Err(JournalError::corrupt(
                    path,
                    off as u64,
                    Damage::FrameFollowedByValid {
                        damage,
                        valid_offset: q as u64,
                        valid_seq: h.seq,
                    },
                ));
            }
            if !is_last {
                return Err(JournalError::corrupt(
                    path,
                    off as u64,
                    Damage::Frame(damage),
                ));
            }
            let t = torn(TornReason::Frame(damage));
            Ok((summary, Some(t)))
        }
    }
}

/// Verifies the whole journal in `dir` (see the module documentation for the rules).
/// `Ok` means every record before the reported end is intact and contiguous; a torn tail, if
/// any, is reported for [`repair_tail`]. Anything else is a [`JournalError::Corrupt`] naming
/// the file and byte offset. A journal with no `segments/` directory scans as empty.
///
/// Reads every segment whole (one `read` per file into one reused buffer): recovery is
/// bandwidth-bound, and the tail rule has to look at the unwritten remainder anyway.
pub fn scan(dir: &Path) -> Result<ScanReport, JournalError> {
    let list = list_segments(dir)?;
    let mut segments = Vec::with_capacity(list.len());
    let mut torn_tail = None;
    let mut buf = Vec::new();
    let mut expected = None;
    for (i, (name_seq, path)) in list.iter().enumerate() {
        read_file(path, &mut buf)?;
        let is_last = i + 1 == list.len();
        let (summary, torn) = scan_segment(path, &buf, *name_seq, expected, is_last)?;
        expected = Some(summary.next_seq());
        segments.push(summary);
        torn_tail = torn;
    }
    Ok(ScanReport {
        dir: dir.to_path_buf(),
        segments,
        torn_tail,
    })
}

/// Cuts the torn tail `report` found: zeroes the last segment from the cut to its last
/// non-zero byte (and, if the file was truncated, back to its created size, so its blocks are
/// allocated again), then `fdatasync`s it. Afterwards the segment ends cleanly at the cut and
/// `JournalWriter::open(dir, .., report.next_seq())` continues there.
///
/// Takes the writer lock (refused while a writer is open) and re-scans the segment first,
/// refusing if it no longer has the same torn tail. Returns `None` when there is nothing to
/// cut.
pub fn repair_tail(report: &ScanReport) -> Result<Option<TailCut>, JournalError> {
    let Some(t) = &report.torn_tail else {
        return Ok(None);
    };
    let _lock = lock_dir(&report.dir)?;
    let list = list_segments(&report.dir)?;
    let Some((name_seq, last)) = list.last() else {
        return Err(JournalError::Changed {
            path: t.segment.clone(),
            what: "no segments left".into(),
        });
    };
    if *last != t.segment {
        return Err(JournalError::Changed {
            path: t.segment.clone(),
            what: format!("it is no longer the last segment ({} is)", last.display()),
        });
    }
    let mut buf = Vec::new();
    read_file(last, &mut buf)?;
    let (summary, again) = scan_segment(last, &buf, *name_seq, None, true)?;
    if again.as_ref() != Some(t) {
        return Err(JournalError::Changed {
            path: t.segment.clone(),
            what: format!("torn tail now {again:?}, was {t:?}"),
        });
    }
    drop(buf);
    let file = OpenOptions::new()
        .write(true)
        .open(last)
        .map_err(|e| JournalError::io(last, "open for repair", e))?;
    let mut faults = Faults::default();
    let io = |e| JournalError::io(last, "zero torn tail", e);
    zero_range(&file, t.offset, t.garbage_end, &mut faults, write_op).map_err(io)?;
    let mut zeroed = t.garbage_end.saturating_sub(t.offset);
    let created = summary.header.segment_bytes;
    if summary.file_len < created {
        zero_range(&file, summary.file_len, created, &mut faults, write_op).map_err(io)?;
        zeroed += created - summary.file_len;
    }
    file.sync_data()
        .map_err(|e| JournalError::io(last, "fdatasync after repair", e))?;
    Ok(Some(TailCut {
        segment: t.segment.clone(),
        offset: t.offset,
        garbage_bytes: t.garbage_end - t.offset,
        zeroed_bytes: zeroed,
        last_good_seq: t.last_good_seq,
    }))
}

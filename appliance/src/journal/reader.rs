//! Replay: the records of a scanned journal, in order, from a given seq.
//!
//! Each segment is read whole (up to the end of its valid data, as the scan measured it) into
//! one reused buffer, and records are handed out as slices of it: one `read` per segment and
//! no per-record allocation or copy. Every record's CRC and seq are checked again, cheaply,
//! in case a file changed since the scan.

use super::error::{Damage, JournalError};
use super::format::{frame_at, Frame, FrameHeader, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use super::scan::{scan, ScanReport, SegmentSummary};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// One record, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Global sequence number.
    pub seq: u64,
    /// Kind, as given to `append`.
    pub kind: u16,
    /// Payload, as given to `append`.
    pub payload: &'a [u8],
    /// The segment holding it.
    pub segment: &'a Path,
    /// Byte offset of its frame in that segment.
    pub offset: u64,
}

/// Reads records in seq order. Not an `Iterator` because each record borrows the reader's
/// buffer: `while let Some(r) = reader.next_record()? { .. }`.
#[derive(Debug)]
pub struct JournalReader {
    segments: Vec<SegmentSummary>,
    /// Index of the next segment to load.
    next_segment: usize,
    /// Index of the loaded segment.
    loaded: usize,
    buf: Vec<u8>,
    pos: usize,
    next_seq: u64,
    skip_to: u64,
}

impl JournalReader {
    /// A reader of the records of `report` from seq `from_seq` on, up to the end of valid
    /// data (before a torn tail, if the report has one). `from_seq` may be one past the last
    /// record (nothing to read); outside the journal's range it is refused, since replay
    /// would silently miss records.
    pub fn new(report: &ScanReport, from_seq: u64) -> Result<Self, JournalError> {
        let segments = report.segments.clone();
        let mut r = Self {
            next_segment: 0,
            loaded: 0,
            buf: Vec::new(),
            pos: 0,
            next_seq: from_seq,
            skip_to: from_seq,
            segments,
        };
        if let (Some(first), Some(next)) = (report.first_seq(), report.next_seq()) {
            if from_seq < first || from_seq > next {
                return Err(JournalError::SeqOutOfRange {
                    requested: from_seq,
                    first,
                    next,
                });
            }
            // The last segment starting at or before from_seq holds it.
            r.next_segment = r
                .segments
                .partition_point(|s| s.first_seq <= from_seq)
                .saturating_sub(1);
            r.next_seq = r.segments[r.next_segment].first_seq;
        } else {
            r.next_segment = r.segments.len();
        }
        Ok(r)
    }

    /// The seq the next record will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(self.skip_to)
    }

    fn end(&self) -> usize {
        self.segments
            .get(self.loaded)
            .map_or(0, |s| s.data_end as usize)
            .min(self.buf.len())
    }

    /// Loads the next segment with records; false at the end of the journal.
    fn load_next(&mut self) -> Result<bool, JournalError> {
        while self.next_segment < self.segments.len() {
            let s = &self.segments[self.next_segment];
            self.loaded = self.next_segment;
            self.next_segment += 1;
            if s.records == 0 {
                continue;
            }
            if s.first_seq != self.next_seq {
                return Err(JournalError::Changed {
                    path: s.path.clone(),
                    what: format!("starts at seq {}, expected {}", s.first_seq, self.next_seq),
                });
            }
            self.buf.clear();
            let f = File::open(&s.path).map_err(|e| JournalError::io(&s.path, "open", e))?;
            f.take(s.data_end)
                .read_to_end(&mut self.buf)
                .map_err(|e| JournalError::io(&s.path, "read", e))?;
            if (self.buf.len() as u64) < s.data_end.min(s.file_len) {
                return Err(JournalError::Changed {
                    path: s.path.clone(),
                    what: format!(
                        "now {} bytes, scan saw valid data to {}",
                        self.buf.len(),
                        s.data_end
                    ),
                });
            }
            self.pos = SEGMENT_HEADER_BYTES;
            return Ok(true);
        }
        Ok(false)
    }

    /// The next record, `None` at the end of valid data.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        loop {
            if self.pos >= self.end() {
                if !self.load_next()? {
                    return Ok(None);
                }
                continue;
            }
            if self.next_seq < self.skip_to {
                // Before the requested seq: hop over the frame without verifying it (the
                // scan did).
                let h = FrameHeader::read(&self.buf[self.pos..self.pos + FRAME_HEADER_BYTES]);
                self.pos += super::format::frame_len(h.payload_len as usize);
                self.next_seq += 1;
                continue;
            }
            break;
        }
        let end = self.end();
        let s = &self.segments[self.loaded];
        let off = self.pos;
        match frame_at(&self.buf[..end], off) {
            Frame::Valid { header, len } if header.seq == self.next_seq => {
                self.pos += len;
                self.next_seq += 1;
                let start = off + FRAME_HEADER_BYTES;
                Ok(Some(Record {
                    seq: header.seq,
                    kind: header.kind,
                    payload: &self.buf[start..start + header.payload_len as usize],
                    segment: &s.path,
                    offset: off as u64,
                }))
            }
            Frame::Valid { header, .. } => Err(JournalError::corrupt(
                &s.path,
                off as u64,
                Damage::RecordSeq {
                    expected: self.next_seq,
                    found: header.seq,
                },
            )),
            Frame::Bad(d) => Err(JournalError::corrupt(&s.path, off as u64, Damage::Frame(d))),
            Frame::End => Err(JournalError::Changed {
                path: s.path.clone(),
                what: format!("end of data at byte {off}, scan saw records to {end}"),
            }),
        }
    }
}

/// Scans the journal in `dir` and returns a reader from `from_seq` (see [`scan`] and
/// [`JournalReader::new`]). A torn tail is not an error here: reading stops before it.
pub fn records_from(dir: &Path, from_seq: u64) -> Result<JournalReader, JournalError> {
    let report = scan(dir)?;
    JournalReader::new(&report, from_seq)
}

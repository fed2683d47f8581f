//! Following the journal while it is written (cold path): the snapshotter's reader.
//!
//! It reads segment files with positioned reads, frame by frame, and only up to a sequence
//! number the writer has published as written: every record up to it is completely in the
//! files (its `pwrite` returned before the number was published), so a frame that does not
//! verify below the limit is damage, never a write in progress. When the next record is not
//! in the current segment, the next segment file is the one named after that record.

use crate::journal::format::{frame_at, Frame, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::journal::layout::{segment_file_name, segments_dir};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Reads records in order as they are written.
pub struct Tail {
    dir: PathBuf,
    file: Option<(File, PathBuf)>,
    /// File offset of the next frame.
    offset: u64,
    /// Sequence number of the next record.
    next: u64,
    buf: Vec<u8>,
}

/// A record read by the tail, borrowed until the next call.
pub struct TailRecord<'a> {
    /// Journal sequence number.
    pub seq: u64,
    /// Kind.
    pub kind: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl Tail {
    /// A reader of journal `dir` from record `next` on.
    pub fn new(dir: &Path, next: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            file: None,
            offset: 0,
            next,
            buf: vec![0; 64 << 10],
        }
    }

    /// Sequence number of the next record to read.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    fn open(&mut self, first_seq: u64) -> std::io::Result<bool> {
        let path = segments_dir(&self.dir).join(segment_file_name(first_seq));
        match File::open(&path) {
            Ok(f) => {
                self.file = Some((f, path));
                self.offset = SEGMENT_HEADER_BYTES as u64;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The next record if its sequence number is at most `limit` (what the writer has
    /// published as written), `Ok(None)` otherwise.
    pub fn next_record(&mut self, limit: u64) -> anyhow::Result<Option<TailRecord<'_>>> {
        if self.next > limit {
            return Ok(None);
        }
        if self.file.is_none() {
            // Starting up: the segment holding `next` is the last one starting at or before it.
            let first = self.segment_holding(self.next)?;
            if !self.open(first)? {
                anyhow::bail!("journal segment for record {} is missing", self.next);
            }
        }
        loop {
            let (file, _) = self.file.as_ref().expect("opened above");
            let mut n = read_some(file, self.offset, &mut self.buf[..FRAME_HEADER_BYTES])?;
            if let Frame::End = frame_at(&self.buf[..n], 0) {
                // The rest of this segment is empty: the record is in the next one.
                let next = self.next;
                let current = self
                    .file
                    .as_ref()
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                if !self.open(next)? {
                    anyhow::bail!(
                        "record {next} is written but neither {} nor its successor holds it",
                        current.display()
                    );
                }
                continue;
            }
            let (file, path) = self.file.as_ref().expect("opened above");
            let len =
                u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            let total = crate::journal::format::frame_len(len);
            if self.buf.len() < total {
                self.buf.resize(total, 0);
            }
            n = read_some(file, self.offset, &mut self.buf[..total])?;
            match frame_at(&self.buf[..n], 0) {
                Frame::Valid { header, len } if header.seq == self.next => {
                    self.offset += len as u64;
                    self.next += 1;
                    let start = FRAME_HEADER_BYTES;
                    let end = start + header.payload_len as usize;
                    return Ok(Some(TailRecord {
                        seq: header.seq,
                        kind: header.kind,
                        payload: &self.buf[start..end],
                    }));
                }
                other => anyhow::bail!(
                    "{} at offset {}: expected record {}, found {other:?}",
                    path.display(),
                    self.offset,
                    self.next
                ),
            }
        }
    }

    fn segment_holding(&self, seq: u64) -> anyhow::Result<u64> {
        let mut best = None;
        for entry in std::fs::read_dir(segments_dir(&self.dir))? {
            let name = entry?.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if let Ok(first) = stem.parse::<u64>() {
                if first <= seq && best.is_none_or(|b| first > b) {
                    best = Some(first);
                }
            }
        }
        best.ok_or_else(|| anyhow::anyhow!("no journal segment holds record {seq}"))
    }
}

/// Reads up to `buf.len()` bytes at `offset` (fewer at the end of the file).
fn read_some(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

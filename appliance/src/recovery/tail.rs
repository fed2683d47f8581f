//! Following the journal while it is written (cold path): the snapshotter's reader.
//!
//! It reads segment files with positioned reads into a buffer, frame by frame, and only up to
//! a sequence number the writer has published as written: every record up to it is completely
//! in the files (its `pwrite` returned before the number was published), so a frame that does
//! not verify below the limit is damage, never a write in progress. When the next record is
//! not in the current segment, the next segment file is the one named after that record.

use crate::journal::format::{
    frame_at, frame_len, Frame, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::journal::layout::{segment_file_name, segments_dir};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read from a segment at a time.
const CHUNK: usize = 1 << 20;

/// Reads records in order as they are written.
pub struct Tail {
    dir: PathBuf,
    file: Option<(File, PathBuf)>,
    /// File offset of the next frame.
    offset: u64,
    /// Sequence number of the next record.
    next: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]` and the bytes of `buf` holding file data.
    buf_at: u64,
    buf_len: usize,
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
            buf: vec![0; CHUNK],
            buf_at: 0,
            buf_len: 0,
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
                self.buf_len = 0;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes `buf` hold at least `n` bytes from `self.offset` (fewer at the end of the
    /// file); returns the slice from `self.offset`.
    fn window(&mut self, n: usize) -> std::io::Result<&[u8]> {
        let have = (self.buf_at + self.buf_len as u64).saturating_sub(self.offset) as usize;
        if self.offset < self.buf_at || have < n {
            // Re-read from the frame's start; the file data written since is picked up too.
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            let (file, _) = self.file.as_ref().expect("a segment is open");
            let want = self.buf.len();
            let mut done = 0;
            while done < want {
                let k = file.read_at(&mut self.buf[done..want], self.offset + done as u64)?;
                if k == 0 {
                    break;
                }
                done += k;
            }
            self.buf_at = self.offset;
            self.buf_len = done;
        }
        let start = (self.offset - self.buf_at) as usize;
        Ok(&self.buf[start..self.buf_len])
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
        // The buffer may hold bytes read before the writer wrote them: a frame that is not
        // there (or not whole) is read again from the file once before anything is concluded.
        let mut fresh = false;
        loop {
            let w = self.window(FRAME_HEADER_BYTES)?;
            let header_only = &w[..w.len().min(FRAME_HEADER_BYTES)];
            if let Frame::End = frame_at(header_only, 0) {
                if !fresh {
                    self.buf_len = 0;
                    fresh = true;
                    continue;
                }
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
                fresh = false;
                continue;
            }
            let len = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize;
            let total = frame_len(len.min(crate::journal::MAX_PAYLOAD));
            let w = self.window(total)?;
            match frame_at(&w[..w.len().min(total)], 0) {
                Frame::Valid { header, len } if header.seq < self.next => {
                    // Before the first record wanted (starting in the middle of a segment).
                    self.offset += len as u64;
                    fresh = false;
                }
                Frame::Valid { header, len } if header.seq == self.next => {
                    let at = (self.offset - self.buf_at) as usize;
                    self.offset += len as u64;
                    self.next += 1;
                    let start = at + FRAME_HEADER_BYTES;
                    let end = start + header.payload_len as usize;
                    return Ok(Some(TailRecord {
                        seq: header.seq,
                        kind: header.kind,
                        payload: &self.buf[start..end],
                    }));
                }
                _ if !fresh => {
                    self.buf_len = 0;
                    fresh = true;
                }
                other => {
                    let path = self
                        .file
                        .as_ref()
                        .map(|(_, p)| p.clone())
                        .unwrap_or_default();
                    anyhow::bail!(
                        "{} at offset {}: expected record {}, found {other:?}",
                        path.display(),
                        self.offset,
                        self.next
                    )
                }
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

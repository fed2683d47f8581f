//! The journal writer: frames records into a buffer, hands them to the kernel, makes them
//! durable. One thread owns it (the journal agent).
//!
//! Three positions move forward independently, so the caller can tell a client exactly what
//! is safe: `appended_seq` (framed in memory) >= `written_seq` (in the page cache, survives a
//! process crash) >= `synced_seq` (on disk, survives a power cut).
//!
//! Allocation: `open` reserves the buffer; `append`, `append_with`, `write` and `sync` then
//! allocate nothing, except at a rotation (once per segment: the new segment's paths) and on
//! error paths (error messages).

use super::error::{AppendError, JournalError};
use super::fault::{FaultHook, Faults, IoOp};
use super::format::{frame_len, seal_frame, FRAME_HEADER_BYTES, MAX_PAYLOAD, SEGMENT_HEADER_BYTES};
use super::layout::{ensure_dir, list_segments, lock_dir, segments_dir, PREPARE_PREFIX, TMP_EXT};
use super::mapping::SegmentMap;
use super::scan::{read_file, scan_segment};
use super::segfile::{activate, create_prepared, OpenSegment, PreparedSegment};
use super::segfile::{activate_as, segment_path_into};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// How the writer sizes things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Size of each new segment file, preallocated in full. Larger means fewer rotations and
    /// fewer files; the cost is the preallocation (write + fsync of this many zeros) and the
    /// granularity of retention. Must be a multiple of 8 and hold a header plus one frame of
    /// `max_payload`.
    pub segment_bytes: u64,
    /// Largest payload `append` accepts (at most [`MAX_PAYLOAD`]).
    pub max_payload: usize,
    /// In-memory buffer for framed records not yet written. When full, `append` refuses and
    /// the caller applies back-pressure; size it for the records arriving between two
    /// `write` calls. Must hold one frame of `max_payload`.
    pub buffer_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_payload: MAX_PAYLOAD,
            buffer_bytes: 4 << 20,
        }
    }
}

impl WriterOptions {
    /// Checks that the sizes work together.
    pub fn validate(&self) -> Result<(), JournalError> {
        let bad = |m: String| Err(JournalError::InvalidOptions(m));
        if self.max_payload > MAX_PAYLOAD {
            return bad(format!(
                "max_payload {} exceeds the format's limit {MAX_PAYLOAD}",
                self.max_payload
            ));
        }
        let frame = frame_len(self.max_payload) as u64;
        if self.segment_bytes % 8 != 0 || self.segment_bytes < SEGMENT_HEADER_BYTES as u64 + frame {
            return bad(format!(
                "segment_bytes {} must be a multiple of 8 and at least {} (64-byte header plus \
                 one frame of max_payload {})",
                self.segment_bytes,
                SEGMENT_HEADER_BYTES as u64 + frame,
                self.max_payload
            ));
        }
        if (self.buffer_bytes as u64) < frame {
            return bad(format!(
                "buffer_bytes {} must hold one frame of max_payload ({frame} bytes)",
                self.buffer_bytes
            ));
        }
        Ok(())
    }
}

/// The context of a failed `write` or `sync`, carried inside the returned `io::Error` (whose
/// kind is the original's): which file, where, what call. Get it with
/// `err.get_ref().and_then(|e| e.downcast_ref::<WriteFailure>())`.
#[derive(Debug)]
pub struct WriteFailure {
    /// The segment file or directory.
    pub path: PathBuf,
    /// Byte offset of the write (0 for a sync).
    pub offset: u64,
    /// The call.
    pub op: &'static str,
    /// The OS error.
    pub source: io::Error,
}

impl fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} at byte {}: {}",
            self.path.display(),
            self.op,
            self.offset,
            self.source
        )
    }
}

impl std::error::Error for WriteFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn failure(path: &Path, offset: u64, op: &'static str, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        WriteFailure {
            path: path.to_path_buf(),
            offset,
            op,
            source,
        },
    )
}

/// Appends records to the journal in a directory. See the module documentation of
/// [`crate::journal`] for the format and the recovery sequence that precedes `open`.
///
/// `Send`, so it can be built on one thread and moved to the journal agent. Dropping it
/// neither writes nor syncs what is buffered (a shutdown calls `write` and `sync` first); it
/// removes a prepared segment that was not used.
pub struct JournalWriter {
    dir: PathBuf,
    seg_dir: PathBuf,
    /// Handle on `segments/` for the fsync after a rotation (no path lookup in `sync`).
    seg_dir_file: File,
    opts: WriterOptions,
    _lock: File,
    /// Framed records not yet written, contiguous, in seq order.
    buf: Vec<u8>,
    appended: u64,
    written: u64,
    synced: u64,
    cur: OpenSegment,
    /// A rename in `segments/` not yet made durable.
    dir_dirty: bool,
    prepared: Option<PreparedSegment>,
    /// Whether a rotation with nothing prepared ahead prepares the next segment itself (see
    /// [`JournalWriter::set_inline_prepare`]).
    inline_prepare: bool,
    /// Set by a failed fdatasync/fsync (in `sync` or a rotation): see [`JournalWriter::sync`].
    sync_failed: Option<io::ErrorKind>,
    faults: Faults,
    rotations: u64,
    /// A path buffer with room for a segment name, for the next rotation.
    spare_path: PathBuf,
    /// Buffers rotation no longer needs, for the caller to drop off the hot thread.
    spent: Vec<PathBuf>,
    /// Mappings of segments rotated out, likewise.
    spent_maps: Vec<SegmentMap>,
}

// The journal agent owns the writer on its own thread.
const _: fn() = assert_send::<JournalWriter>;
fn assert_send<T: Send>() {}

impl fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.dir)
            .field("segment", &self.cur.path)
            .field("appended", &self.appended)
            .field("written", &self.written)
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Opens the journal in `dir` for appending, the next record getting seq `next_seq`
    /// (from recovery: [`super::ScanReport::next_seq`], or snapshot seq + 1 for a journal with
    /// no segments, or 1 for a new one).
    ///
    /// Creates the directories if missing, takes the writer lock, deletes leftover
    /// `prepare-*.tmp` files, then:
    /// - no segment: creates one starting at `next_seq` (preallocated; a full disk fails here);
    /// - otherwise continues in the last segment, after its last record, which must be
    ///   `next_seq - 1` (or, if it is empty, its first seq must be `next_seq`). A torn tail
    ///   there is refused ([`JournalError::TornTailPresent`]): scan and repair first.
    ///
    /// Finally `fdatasync` of every segment and `fsync` of `segments/`: what recovery read may
    /// have been only in the page cache of a process that crashed; it is durable before the
    /// writer calls it synced.
    pub fn open(dir: &Path, opts: WriterOptions, next_seq: u64) -> Result<Self, JournalError> {
        opts.validate()?;
        if next_seq == 0 {
            return Err(JournalError::InvalidOptions(
                "next_seq must be at least 1 (sequence numbers start at 1)".into(),
            ));
        }
        let seg_dir = segments_dir(dir);
        ensure_dir(&seg_dir)?;
        let lock = lock_dir(dir)?;
        remove_leftovers(&seg_dir)?;
        let seg_dir_file =
            File::open(&seg_dir).map_err(|e| JournalError::io(&seg_dir, "open directory", e))?;
        let mut faults = Faults::default();
        let min_capacity = (SEGMENT_HEADER_BYTES + frame_len(opts.max_payload)) as u64;
        let list = list_segments(dir)?;
        let cur = match list.last() {
            None => new_segment(&seg_dir, &opts, next_seq, false, &mut faults)?,
            Some((name_seq, path)) => {
                let mut bytes = Vec::new();
                read_file(path, &mut bytes)?;
                let (s, torn) = scan_segment(path, &bytes, *name_seq, None, true)?;
                drop(bytes);
                if let Some(t) = torn {
                    return Err(JournalError::TornTailPresent {
                        path: t.segment,
                        offset: t.offset,
                    });
                }
                if s.next_seq() != next_seq {
                    return Err(JournalError::NextSeq {
                        path: path.clone(),
                        expected: s.next_seq(),
                        requested: next_seq,
                    });
                }
                // Capacity as created: a truncated file (tests, tampering) is extended by the
                // writes themselves.
                let capacity = s.file_len.max(s.header.segment_bytes) & !7;
                if s.records == 0 && capacity < min_capacity {
                    // Too small for these options and holds nothing: replace it.
                    new_segment(&seg_dir, &opts, next_seq, true, &mut faults)?
                } else {
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path)
                        .map_err(|e| JournalError::io(path, "open segment", e))?;
                    // Mapped as far as the file goes (cold path); beyond, pwrite extends it.
                    let map = SegmentMap::map(&file, s.file_len).ok();
                    OpenSegment {
                        file,
                        path: path.clone(),
                        first_seq: s.first_seq,
                        write_off: s.data_end,
                        capacity,
                        dirty: false,
                        map,
                    }
                }
            }
        };
        let mut cur = cur;
        if cur.map.is_none() {
            // A segment made here rather than by the helper: map it now (cold path).
            cur.map = cur
                .file
                .metadata()
                .ok()
                .and_then(|m| SegmentMap::map(&cur.file, m.len()).ok());
        }
        // What recovery read may have been only in the page cache of a process that crashed:
        // make it durable before calling it synced. fdatasync of a clean file returns at
        // once; syncfs would also flush every other process's dirty data on the filesystem.
        for (_, path) in &list {
            File::open(path)
                .and_then(|f| f.sync_data())
                .map_err(|e| JournalError::io(path, "fdatasync at open", e))?;
        }
        seg_dir_file
            .sync_all()
            .map_err(|e| JournalError::io(&seg_dir, "fsync directory", e))?;
        let spare_path = PathBuf::with_capacity(seg_dir.as_os_str().len() + 64);
        Ok(Self {
            spare_path,
            spent: Vec::with_capacity(4),
            spent_maps: Vec::with_capacity(4),
            dir: dir.to_path_buf(),
            seg_dir,
            seg_dir_file,
            buf: Vec::with_capacity(opts.buffer_bytes),
            opts,
            _lock: lock,
            appended: next_seq - 1,
            written: next_seq - 1,
            synced: next_seq - 1,
            cur,
            dir_dirty: false,
            prepared: None,
            inline_prepare: true,
            sync_failed: None,
            faults,
            rotations: 0,
        })
    }

    /// Frames a record into the buffer and returns its seq. Nothing reaches the kernel until
    /// [`JournalWriter::write`]. Refuses (buffering nothing) a kind of 0, a payload over
    /// `max_payload`, or a frame that does not fit in the buffer's free space. Does not
    /// allocate.
    #[inline]
    pub fn append(&mut self, kind: u16, payload: &[u8]) -> Result<u64, AppendError> {
        self.append_with(kind, payload.len(), |dst| dst.copy_from_slice(payload))
    }

    /// Like [`JournalWriter::append`], but `fill` writes the `len`-byte payload directly into
    /// the buffer (it is handed zeroed memory), so the caller encodes in place without a
    /// staging copy. If `fill` panics the record is dropped and the buffer left as before.
    pub fn append_with(
        &mut self,
        kind: u16,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<u64, AppendError> {
        if kind == 0 {
            return Err(AppendError::InvalidKind);
        }
        if len > self.opts.max_payload {
            return Err(AppendError::TooLarge {
                len,
                max: self.opts.max_payload,
            });
        }
        let flen = frame_len(len);
        let start = self.buf.len();
        let free = self.buf.capacity() - start;
        if flen > free {
            return Err(AppendError::BufferFull { needed: flen, free });
        }
        let seq = self.appended + 1;
        // Within capacity: no reallocation. Zeroing gives the padding (and a defined payload
        // for `fill`).
        self.buf.resize(start + flen, 0);
        let guard = TruncateOnUnwind {
            buf: &mut self.buf,
            len: start,
        };
        let frame = &mut guard.buf[start..];
        fill(&mut frame[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]);
        seal_frame(frame, len, seq, kind);
        std::mem::forget(guard);
        self.appended = seq;
        Ok(seq)
    }

    /// Hands every buffered record to the kernel: `pwrite` at the tracked offset of the
    /// current segment, one call per run of records that fits, rotating to a new segment
    /// when the next record does not (a record never spans segments). Returns when the
    /// buffer is empty.
    ///
    /// On error (ENOSPC, EIO, a failed rotation) nothing is lost: records whose run was not
    /// completely written stay in the buffer and are not counted in `written_seq`; the next
    /// call writes them again at the same file offset (the same bytes, so any partial write
    /// is simply overwritten). A rotation that fails leaves the current segment as it was and
    /// no new `.seg` file (see `segfile`), so it is retried by the next call too.
    ///
    /// A rotation makes the segment it leaves durable first (`fdatasync`, plus the
    /// directory's `fsync` if that segment's own rename is not durable yet), so that after a
    /// crash only the last segment can hold a torn tail; it therefore also advances
    /// `synced_seq`, and a failure of those syncs is sticky like one of [`JournalWriter::sync`].
    /// Cost: about half a millisecond at the median, once per segment (p50 512 us on the
    /// development VM, `examples/journal_cost.rs`).
    ///
    /// The error carries a [`WriteFailure`] naming the file and offset. No allocation unless
    /// rotating or failing.
    pub fn write(&mut self) -> io::Result<()> {
        let mut pos = 0usize;
        let result = self.write_runs(&mut pos);
        if pos == self.buf.len() {
            self.buf.clear();
        } else if pos > 0 {
            // Only after an error: keep the unwritten records at the front.
            self.buf.copy_within(pos.., 0);
            self.buf.truncate(self.buf.len() - pos);
        }
        result
    }

    fn write_runs(&mut self, pos: &mut usize) -> io::Result<()> {
        while *pos < self.buf.len() {
            let room = (self.cur.capacity.saturating_sub(self.cur.write_off)) as usize;
            let pending = self.buf.len() - *pos;
            let (run, frames) = if pending <= room {
                (pending, self.appended - self.written)
            } else {
                let (mut run, mut frames) = (0usize, 0u64);
                loop {
                    let at = *pos + run;
                    if at >= self.buf.len() {
                        break;
                    }
                    let plen = u32::from_le_bytes([
                        self.buf[at],
                        self.buf[at + 1],
                        self.buf[at + 2],
                        self.buf[at + 3],
                    ]) as usize;
                    let flen = frame_len(plen);
                    if run + flen > room {
                        break;
                    }
                    run += flen;
                    frames += 1;
                }
                (run, frames)
            };
            if run == 0 {
                if self.cur.write_off == SEGMENT_HEADER_BYTES as u64 {
                    // Only reachable with a prepared segment smaller than a frame, which
                    // install_prepared refuses; rotating again would loop.
                    return Err(io::Error::other(format!(
                        "{}: record does not fit in an empty segment",
                        self.cur.path.display()
                    )));
                }
                self.rotate()?;
                continue;
            }
            let off = self.cur.write_off;
            self.cur
                .write_at(&self.buf[*pos..*pos + run], off, &mut self.faults)
                .map_err(|e| failure(&self.cur.path, off, "write", e))?;
            self.cur.write_off += run as u64;
            self.cur.dirty = true;
            self.written += frames;
            *pos += run;
        }
        Ok(())
    }

    /// Moves to a new segment starting at the next unwritten record. Order matters for what a
    /// crash can leave: (1) prepare the new file if none is waiting (ENOSPC here changes
    /// nothing); (2) make the old segment durable: `fdatasync` it, and `fsync` the directory if
    /// its own rename is not durable yet; (3) header, `fdatasync`, rename of the new one. So
    /// a `.seg` name never exists on disk before every record ahead of it does: every segment
    /// with a successor is complete, and only the last one can be torn, as the scan assumes.
    fn rotate(&mut self) -> io::Result<()> {
        let first_seq = self.written + 1;
        if self.prepared.is_none() {
            if !self.inline_prepare {
                // No allocation: a simple error kind, not a boxed message.
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            let p = create_prepared(&self.seg_dir, self.opts.segment_bytes, &mut self.faults)
                .map_err(|e| failure(&self.seg_dir, 0, "create segment", e))?;
            self.prepared = Some(p);
        }
        self.make_durable()?;
        // With a segment prepared ahead (by a cold thread, `install_prepared`) and the
        // spent-buffer list drained, a rotation allocates and frees nothing: the new name is
        // composed in a buffer kept for it, the old segment's buffer becomes the next spare,
        // and the prepared file's buffer goes to `spent`.
        let mut path = std::mem::take(&mut self.spare_path);
        segment_path_into(&mut path, &self.seg_dir, first_seq);
        let p = self.prepared.as_mut().expect("set above");
        let seg = match activate_as(p, path, first_seq, false, &mut self.faults) {
            Ok(seg) => seg,
            Err(e) => return Err(failure(p.path(), 0, "activate segment", e)),
        };
        if let Some(mut p) = self.prepared.take() {
            if self.spent.len() < self.spent.capacity() {
                self.spent.push(p.take_path());
            }
        }
        // The old segment's descriptor closes here; its data is already on disk. Its mapping
        // goes to the caller to drop off the hot thread (unmapping 64 MiB takes a while).
        let mut old = std::mem::replace(&mut self.cur, seg);
        self.spare_path = std::mem::take(&mut old.path);
        if let Some(m) = old.map.take() {
            if self.spent_maps.len() < self.spent_maps.capacity() {
                self.spent_maps.push(m);
            }
        }
        self.dir_dirty = true;
        self.rotations += 1;
        Ok(())
    }

    /// With `false`, a rotation that finds no segment prepared ahead
    /// ([`JournalWriter::install_prepared`]) does not prepare one on the calling thread
    /// (that allocates, zero-fills and syncs a whole segment): [`JournalWriter::write`] stops
    /// there with an error of kind `WouldBlock`, having written what fitted, and writes the
    /// rest on a later call once a segment is installed. The journal agent sets it: its thread
    /// is a hot one, and a helper thread prepares segments for it. Default `true`.
    pub fn set_inline_prepare(&mut self, on: bool) {
        self.inline_prepare = on;
    }

    /// Path buffers rotations no longer need (drop them off the hot thread).
    pub fn take_spent(&mut self) -> Option<PathBuf> {
        self.spent.pop()
    }

    /// Mappings of segments rotations left (unmap them off the hot thread).
    pub fn take_spent_map(&mut self) -> Option<SegmentMap> {
        self.spent_maps.pop()
    }

    /// Whether the current segment is written through a mapping (else with `pwrite`).
    pub fn is_mapped(&self) -> bool {
        self.cur.map.is_some()
    }

    /// Makes every written record durable: `fdatasync` of the current segment if it was
    /// written since, then `fsync` of `segments/` if a rotation renamed a file since. Segments
    /// rotated out were made durable by the rotation itself (see `write`). Only then does
    /// `synced_seq` advance (to `written_seq` as of the call). Allocation-free on success.
    ///
    /// A failure (here or in a rotation's syncs) is sticky: this and every later call, and
    /// every later rotation, return an error, and `synced_seq` stays. After a failed
    /// fdatasync Linux may have dropped the dirty pages' error state and even the pages, so a
    /// retry that "succeeds" proves nothing. Records not yet synced must not be acknowledged;
    /// restart, and let recovery's scan say what is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.make_durable()
    }

    fn make_durable(&mut self) -> io::Result<()> {
        if let Some(kind) = self.sync_failed {
            return Err(io::Error::new(
                kind,
                format!(
                    "{}: an earlier fdatasync failed; durability of records after seq {} is \
                     unknown: restart and recover",
                    self.seg_dir.display(),
                    self.synced
                ),
            ));
        }
        let target = self.written;
        let result = self.sync_files();
        match &result {
            Ok(()) => self.synced = target,
            Err(e) => self.sync_failed = Some(e.kind()),
        }
        result
    }

    fn sync_files(&mut self) -> io::Result<()> {
        if self.cur.dirty {
            self.faults
                .fail(IoOp::Sync)
                .and_then(|()| self.cur.file.sync_data())
                .map_err(|e| failure(&self.cur.path, 0, "fdatasync", e))?;
            self.cur.dirty = false;
        }
        if self.dir_dirty {
            self.faults
                .fail(IoOp::DirSync)
                .and_then(|()| self.seg_dir_file.sync_all())
                .map_err(|e| failure(&self.seg_dir, 0, "fsync directory", e))?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Preallocates the next segment now, if none is waiting, so the coming rotation is a
    /// header write, a 4 KiB `fdatasync` and a rename. Slow (writes `segment_bytes` of zeros):
    /// call it while idle, e.g. when [`JournalWriter::segment_room`] drops under half a
    /// segment. Returns whether it created one. Without it, rotation prepares synchronously.
    pub fn prepare_next(&mut self) -> Result<bool, JournalError> {
        if self.prepared.is_some() {
            return Ok(false);
        }
        let p = create_prepared(&self.seg_dir, self.opts.segment_bytes, &mut self.faults)
            .map_err(|e| JournalError::io(&self.seg_dir, "prepare segment", e))?;
        self.prepared = Some(p);
        Ok(true)
    }

    /// Takes a segment prepared by another thread ([`PreparedSegment::create`] with the same
    /// `dir` as this writer was opened with). Returns
    /// whether it was installed: `false` (and the file is removed) when one is already
    /// waiting. Refuses a segment of another journal or too small for one frame.
    pub fn install_prepared(&mut self, p: PreparedSegment) -> Result<bool, JournalError> {
        if p.path().parent() != Some(self.seg_dir.as_path()) {
            return Err(JournalError::InvalidOptions(format!(
                "prepared segment {} is not in {}",
                p.path().display(),
                self.seg_dir.display()
            )));
        }
        let min = (SEGMENT_HEADER_BYTES + frame_len(self.opts.max_payload)) as u64;
        if p.len() < min {
            return Err(JournalError::InvalidOptions(format!(
                "prepared segment {} has {} bytes, less than the {min} one frame needs",
                p.path().display(),
                p.len()
            )));
        }
        if self.prepared.is_some() {
            return Ok(false);
        }
        self.prepared = Some(p);
        Ok(true)
    }

    /// Installs (or with `None` removes) a fault-injection hook consulted before every
    /// system call that changes a journal file. For tests of the layers above as much as of
    /// this one.
    pub fn set_fault_hook(&mut self, hook: Option<FaultHook>) {
        self.faults.set(hook);
    }

    /// Seq of the last record framed by `append`.
    pub fn appended_seq(&self) -> u64 {
        self.appended
    }

    /// Seq of the last record handed to the kernel (survives a crash of this process).
    pub fn written_seq(&self) -> u64 {
        self.written
    }

    /// Seq of the last record made durable (survives a power cut).
    pub fn synced_seq(&self) -> u64 {
        self.synced
    }

    /// Bytes framed and not yet written.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes free in the buffer (an `append` of a frame larger than this is refused).
    pub fn buffer_free(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }

    /// The segment being written.
    pub fn segment_path(&self) -> &Path {
        &self.cur.path
    }

    /// First seq of the segment being written.
    pub fn segment_first_seq(&self) -> u64 {
        self.cur.first_seq
    }

    /// Bytes left in the segment being written (buffered records not counted).
    pub fn segment_room(&self) -> u64 {
        self.cur.capacity.saturating_sub(self.cur.write_off)
    }

    /// Whether a prepared segment is waiting for the next rotation.
    pub fn has_prepared(&self) -> bool {
        self.prepared.is_some()
    }

    /// Rotations since `open`.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options in force.
    pub fn options(&self) -> &WriterOptions {
        &self.opts
    }
}

/// Truncates the buffer back to `len` if dropped, i.e. if `fill` panicked.
struct TruncateOnUnwind<'a> {
    buf: &'a mut Vec<u8>,
    len: usize,
}

impl Drop for TruncateOnUnwind<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.len);
    }
}

fn new_segment(
    seg_dir: &Path,
    opts: &WriterOptions,
    first_seq: u64,
    replace: bool,
    faults: &mut Faults,
) -> Result<OpenSegment, JournalError> {
    let mut p = create_prepared(seg_dir, opts.segment_bytes, faults)
        .map_err(|e| JournalError::io(seg_dir, "create segment", e))?;
    let seg = activate(&mut p, seg_dir, first_seq, replace, faults)
        .map_err(|e| JournalError::io(p.path(), "activate segment", e))?;
    super::layout::fsync_dir(seg_dir)
        .map_err(|e| JournalError::io(seg_dir, "fsync directory", e))?;
    Ok(seg)
}

/// Deletes `prepare-*.tmp` files: segments a crashed (or dropped) writer prepared or was
/// preparing. Never named `.seg`, so never part of the journal.
fn remove_leftovers(seg_dir: &Path) -> Result<(), JournalError> {
    let rd = fs::read_dir(seg_dir).map_err(|e| JournalError::io(seg_dir, "list directory", e))?;
    for entry in rd {
        let entry = entry.map_err(|e| JournalError::io(seg_dir, "list directory", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREPARE_PREFIX) && name.ends_with(&format!(".{TMP_EXT}")) {
            fs::remove_file(entry.path())
                .map_err(|e| JournalError::io(entry.path(), "remove leftover", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::fault::Fault;
    use crate::journal::testutil::TempDir;
    use crate::journal::{scan, JournalReader};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn small() -> WriterOptions {
        WriterOptions {
            segment_bytes: 4096,
            max_payload: 1024,
            buffer_bytes: 16 << 10,
        }
    }

    fn enospc() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }

    /// Every record in `dir`, as (seq, kind, payload).
    fn all_records(dir: &Path) -> Vec<(u64, u16, Vec<u8>)> {
        let report = scan(dir).unwrap();
        assert!(report.torn_tail.is_none(), "{:?}", report.torn_tail);
        let mut r = JournalReader::new(&report, report.first_seq().unwrap()).unwrap();
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push((rec.seq, rec.kind, rec.payload.to_vec()));
        }
        out
    }

    fn payload(seq: u64) -> Vec<u8> {
        (0..(seq * 13 % 300) as usize)
            .map(|i| (i as u64 ^ seq) as u8)
            .collect()
    }

    #[test]
    fn options_that_cannot_work_are_refused() {
        let mut o = small();
        o.segment_bytes = 1000;
        assert!(matches!(o.validate(), Err(JournalError::InvalidOptions(_))));
        let mut o = small();
        o.max_payload = MAX_PAYLOAD + 1;
        assert!(o.validate().is_err());
        let mut o = small();
        o.buffer_bytes = 100;
        assert!(o.validate().is_err());
        assert!(WriterOptions::default().validate().is_ok());
    }

    #[test]
    fn append_refuses_kind_zero_oversize_and_full_buffer_and_buffers_nothing() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        assert_eq!(w.append(0, b"x"), Err(AppendError::InvalidKind));
        assert_eq!(
            w.append(1, &[0u8; 1025]),
            Err(AppendError::TooLarge {
                len: 1025,
                max: 1024
            })
        );
        assert_eq!(w.buffered_bytes(), 0);
        let mut n = 0;
        let err = loop {
            match w.append(1, &[7u8; 1000]) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(n, (16 << 10) / frame_len(1000));
        assert!(matches!(err, AppendError::BufferFull { needed: 1024, .. }));
        assert_eq!(w.appended_seq(), n as u64);
        w.write().unwrap();
        assert_eq!(w.written_seq(), n as u64);
        assert_eq!(w.buffered_bytes(), 0);
    }

    #[test]
    fn buffer_is_reused_without_growing() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        let cap = w.buf.capacity();
        for round in 0..50u64 {
            for i in 0..10 {
                w.append(2, &payload(round * 10 + i)).unwrap();
            }
            w.write().unwrap();
        }
        assert_eq!(w.buf.capacity(), cap);
        assert_eq!(w.written_seq(), 500);
    }

    #[test]
    fn panicking_fill_leaves_the_buffer_as_it_was() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        w.append(1, b"first").unwrap();
        let before = w.buffered_bytes();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = w.append_with(1, 10, |_| panic!("encoder bug"));
        }));
        assert!(r.is_err());
        assert_eq!(w.buffered_bytes(), before);
        assert_eq!(w.append(1, b"second"), Ok(2));
        w.write().unwrap();
        w.sync().unwrap();
        drop(w);
        let recs = all_records(&d.0);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1], (2, 1, b"second".to_vec()));
    }

    #[test]
    fn append_with_fills_in_place() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 5).unwrap();
        let seq = w
            .append_with(9, 4, |dst| {
                dst.copy_from_slice(&0xdead_beef_u32.to_le_bytes())
            })
            .unwrap();
        assert_eq!(seq, 5);
        w.write().unwrap();
        drop(w);
        assert_eq!(
            all_records(&d.0),
            vec![(5, 9, 0xdead_beef_u32.to_le_bytes().to_vec())]
        );
    }

    #[test]
    fn short_write_then_enospc_on_pwrite_loses_nothing_and_retry_writes_each_record_once() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        for seq in 1..=20 {
            w.append(1, &payload(seq)).unwrap();
        }
        // First pwrite is cut short after 100 bytes, the next one fails: part of the run
        // reached the file, none of it may count as written.
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        w.set_fault_hook(Some(Box::new(move |op| match op {
            IoOp::Write { .. } => match c.fetch_add(1, Ordering::Relaxed) {
                0 => Some(Fault::Short(100)),
                1 => Some(Fault::Error(enospc())),
                _ => None,
            },
            _ => None,
        })));
        let e = w.write().unwrap_err();
        assert_eq!(e.raw_os_error(), None, "wrapped with context");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        let ctx = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<WriteFailure>())
            .unwrap();
        assert_eq!(ctx.path, w.segment_path());
        assert_eq!(ctx.offset, 64);
        assert_eq!(w.written_seq(), 0);
        assert_eq!(w.appended_seq(), 20);
        // The 100 bytes that reached the file hold records 1 and 2 (40 + 56 bytes) and 4 bytes
        // of record 3: a scan sees a torn tail there, and the retry overwrites it.
        let report = scan(&d.0).unwrap();
        assert_eq!(report.records(), 2);
        assert_eq!(report.torn_tail.as_ref().map(|t| t.offset), Some(64 + 96));
        w.write().unwrap();
        assert_eq!(w.written_seq(), 20);
        w.sync().unwrap();
        assert_eq!(w.synced_seq(), 20);
        drop(w);
        let recs = all_records(&d.0);
        let seqs: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        for (seq, _, p) in recs {
            assert_eq!(p, payload(seq));
        }
    }

    #[test]
    fn enospc_creating_the_next_segment_leaves_no_file_and_retry_rotates() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        let fail = Arc::new(AtomicUsize::new(1));
        let f = fail.clone();
        // The temporary file is created and fallocated, then zero-filling it fails.
        w.set_fault_hook(Some(Box::new(move |op| match op {
            IoOp::Preallocate { .. } if f.load(Ordering::Relaxed) > 0 => {
                Some(Fault::Error(enospc()))
            }
            _ => None,
        })));
        // 3 x 1000-byte records fill the first 4 KiB segment; the 4th needs a rotation.
        for _ in 0..6 {
            w.append(3, &[1u8; 1000]).unwrap();
        }
        let e = w.write().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(w.written_seq(), 3, "the records that fit were written");
        assert_eq!(w.buffered_bytes(), 3 * frame_len(1000));
        let names: Vec<String> = fs::read_dir(segments_dir(&d.0))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["00000000000000000001.seg".to_string()],
            "no half-made file"
        );
        let report = scan(&d.0).unwrap();
        assert_eq!((report.records(), report.torn_tail.clone()), (3, None));
        // Space comes back.
        fail.store(0, Ordering::Relaxed);
        w.write().unwrap();
        assert_eq!(w.written_seq(), 6);
        assert_eq!(w.rotations(), 1);
        w.sync().unwrap();
        drop(w);
        let seqs: Vec<u64> = all_records(&d.0).iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
    }

    #[test]
    fn failed_header_write_or_rename_at_rotation_is_retried_with_the_prepared_file() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        w.prepare_next().unwrap();
        let step = Arc::new(AtomicUsize::new(0));
        let s = step.clone();
        w.set_fault_hook(Some(Box::new(move |op| {
            let fail = matches!(
                (op, s.load(Ordering::Relaxed)),
                (IoOp::Write { offset: 0, len: 64 }, 0) | (IoOp::Rename, 1)
            );
            if fail {
                s.fetch_add(1, Ordering::Relaxed);
                return Some(Fault::Error(io::Error::from_raw_os_error(libc::EIO)));
            }
            None
        })));
        for _ in 0..4 {
            w.append(3, &[2u8; 1000]).unwrap();
        }
        assert!(w.write().is_err());
        assert!(w.has_prepared());
        assert!(w.write().is_err());
        assert!(w.has_prepared());
        w.write().unwrap();
        assert!(!w.has_prepared());
        assert_eq!((w.written_seq(), w.rotations()), (4, 1));
        w.sync().unwrap();
        drop(w);
        assert_eq!(all_records(&d.0).len(), 4);
    }

    #[test]
    fn prepared_segment_makes_rotation_write_no_zeros() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        assert!(w.prepare_next().unwrap());
        assert!(!w.prepare_next().unwrap());
        let zero_writes = Arc::new(AtomicUsize::new(0));
        let z = zero_writes.clone();
        w.set_fault_hook(Some(Box::new(move |op| {
            if let IoOp::Preallocate { .. } = op {
                z.fetch_add(1, Ordering::Relaxed);
            }
            None
        })));
        for _ in 0..5 {
            w.append(3, &[2u8; 1000]).unwrap();
        }
        w.write().unwrap();
        assert_eq!(w.rotations(), 1);
        assert_eq!(zero_writes.load(Ordering::Relaxed), 0);
        // A segment prepared elsewhere is taken too.
        let p = PreparedSegment::create(&d.0, 4096).unwrap();
        assert!(w.install_prepared(p).unwrap());
        let other = TempDir::new();
        fs::create_dir_all(segments_dir(&other.0)).unwrap();
        let foreign = PreparedSegment::create(&other.0, 4096).unwrap();
        assert!(w.install_prepared(foreign).is_err());
    }

    #[test]
    fn without_inline_preparation_a_rotation_waits_for_a_prepared_segment_and_loses_nothing() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        w.set_inline_prepare(false);
        // 3 x 1000-byte records fill the first 4 KiB segment; 6 need a second one.
        for _ in 0..6 {
            w.append(3, &[7u8; 1000]).unwrap();
        }
        let e = w.write().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(w.written_seq(), 3, "what fitted is written");
        assert_eq!(w.rotations(), 0);
        // Asking again without a segment changes nothing.
        assert_eq!(w.write().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(w.written_seq(), 3);
        // Once one is installed the rest goes in, each record once.
        assert!(w
            .install_prepared(PreparedSegment::create(&d.0, 4096).unwrap())
            .unwrap());
        w.write().unwrap();
        assert_eq!((w.written_seq(), w.rotations()), (6, 1));
        drop(w);
        let seqs: Vec<u64> = all_records(&d.0).iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
    }

    #[test]
    fn rotation_makes_the_old_segment_and_its_name_durable_before_the_new_name_exists() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = log.clone();
        w.set_fault_hook(Some(Box::new(move |op| {
            let name = match op {
                IoOp::Write { offset: 0, len: 64 } => "header",
                IoOp::Fallocate { .. } => "fallocate",
                IoOp::Sync => "sync",
                IoOp::DirSync => "dirsync",
                IoOp::Rename => "rename",
                IoOp::Write { .. } | IoOp::Preallocate { .. } => return None,
            };
            l.lock().unwrap().push(name);
            None
        })));
        // 3 frames of 1024 bytes per 4 KiB segment: 9 records, two rotations in one write().
        for _ in 0..9 {
            w.append(3, &[2u8; 1000]).unwrap();
        }
        w.write().unwrap();
        assert_eq!(w.rotations(), 2);
        let prepare = ["fallocate", "sync"];
        let activate = ["header", "sync", "rename"];
        let mut expected = Vec::new();
        // Rotation 1: the old segment's data; its name was made durable at open.
        expected.extend(prepare);
        expected.push("sync");
        expected.extend(activate);
        // Rotation 2: the old segment's data, and its rename from rotation 1.
        expected.extend(prepare);
        expected.extend(["sync", "dirsync"]);
        expected.extend(activate);
        assert_eq!(*log.lock().unwrap(), expected);
        assert_eq!(
            w.synced_seq(),
            6,
            "the rotations made records 1..=6 durable"
        );
        log.lock().unwrap().clear();
        w.sync().unwrap();
        assert_eq!(*log.lock().unwrap(), ["sync", "dirsync"]);
        assert_eq!(w.synced_seq(), 9);
        log.lock().unwrap().clear();
        w.sync().unwrap();
        assert!(log.lock().unwrap().is_empty(), "nothing new to sync");
    }

    #[test]
    fn a_failed_sync_at_rotation_is_sticky_and_no_new_segment_appears() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        w.prepare_next().unwrap();
        w.set_fault_hook(Some(Box::new(|op| {
            (op == IoOp::Sync).then(|| Fault::Error(io::Error::from_raw_os_error(libc::EIO)))
        })));
        for _ in 0..4 {
            w.append(3, &[2u8; 1000]).unwrap();
        }
        assert!(w.write().is_err());
        assert_eq!((w.written_seq(), w.rotations()), (3, 0));
        w.set_fault_hook(None);
        let again = w.write().unwrap_err();
        assert!(
            again.to_string().contains("earlier fdatasync failed"),
            "{again}"
        );
        assert!(w.sync().is_err());
        assert_eq!(list_segments(&d.0).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_sync_is_sticky_and_synced_seq_stays() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        w.append(1, b"a").unwrap();
        w.write().unwrap();
        w.sync().unwrap();
        w.append(1, b"b").unwrap();
        w.write().unwrap();
        let once = Arc::new(AtomicUsize::new(0));
        let o = once.clone();
        w.set_fault_hook(Some(Box::new(move |op| {
            (op == IoOp::Sync && o.fetch_add(1, Ordering::Relaxed) == 0)
                .then(|| Fault::Error(io::Error::from_raw_os_error(libc::EIO)))
        })));
        assert!(w.sync().is_err());
        let again = w.sync().unwrap_err();
        assert!(
            again.to_string().contains("earlier fdatasync failed"),
            "{again}"
        );
        assert_eq!(w.synced_seq(), 1);
        assert_eq!(w.written_seq(), 2);
    }

    #[test]
    fn open_refuses_a_wrong_next_seq_and_a_second_writer() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        assert!(matches!(
            JournalWriter::open(&d.0, small(), 1),
            Err(JournalError::Locked { .. })
        ));
        for seq in 1..=5 {
            w.append(1, &payload(seq)).unwrap();
        }
        w.write().unwrap();
        drop(w);
        for bad in [5, 7] {
            match JournalWriter::open(&d.0, small(), bad) {
                Err(JournalError::NextSeq {
                    expected,
                    requested,
                    ..
                }) => assert_eq!((expected, requested), (6, bad)),
                other => panic!("{other:?}"),
            }
        }
        let mut w = JournalWriter::open(&d.0, small(), 6).unwrap();
        assert_eq!(w.append(1, b"six"), Ok(6));
    }

    #[test]
    fn open_deletes_leftover_prepared_files() {
        let d = TempDir::new();
        let mut w = JournalWriter::open(&d.0, small(), 1).unwrap();
        w.prepare_next().unwrap();
        let p = w.prepared.as_ref().unwrap().path().to_path_buf();
        std::mem::forget(w.prepared.take()); // as if the process died
        drop(w);
        assert!(p.exists());
        let _w = JournalWriter::open(&d.0, small(), 1).unwrap();
        assert!(!p.exists());
    }
}

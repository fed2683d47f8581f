//! Segment files: preallocation, activation (header, rename), positioned writes.
//!
//! A segment comes to exist in two steps, so that nothing half-made ever carries a segment
//! name:
//!
//! 1. **prepare** (cold: any thread, ahead of time): create `segments/prepare-*.tmp` with
//!    `O_EXCL`, reserve and zero-fill all of it, `fsync` (size and extents durable). On any
//!    error the temporary file is removed. A crash leaves a `.tmp` that scans ignore and the
//!    next `JournalWriter::open` deletes.
//! 2. **activate** (at rotation, on the writer's thread): write the 64-byte header (its first
//!    seq is only known now), `fdatasync`, `rename` to `<20-digit first seq>.seg`. Before
//!    this the writer has made the segment it leaves durable (`fdatasync`, and the directory
//!    `fsync` if that segment's own rename is not yet durable). The new name is made durable
//!    by the writer's next `sync()` (or next rotation), before any record in the new segment
//!    is reported durable.
//!
//! Why `fdatasync` the header before the rename: the rename can reach the disk with any
//! journal commit, ours or not, while a header written but not synced may not. A crash in
//! between would leave a file with a segment name and a zero header, which a scan could only
//! call corruption. Why the old segment first: for the same reason, a new name on disk with
//! the end of the previous segment lost would be damage in a segment that is not the last
//! one, or a gap, which the scan also calls corruption. With both, every `.seg` file has a
//! valid header and every segment with a successor is complete, so only the last segment can
//! be torn, which is the scan's rule. Cost: two `fdatasync`s (old segment's unsynced tail,
//! new 4 KiB header), sometimes a directory `fsync`, once per `segment_bytes` of records (see
//! `examples/journal_cost.rs` for the figure).
//!
//! Why zero-fill rather than only `fallocate`: `fallocate` reserves blocks as *unwritten*
//! extents. Writing into one converts it to written, which is a metadata change, so every
//! `fdatasync` after such a write has to commit the filesystem journal too (on ext4 and xfs).
//! Blocks that were zero-filled once are plain overwrites afterwards: `fdatasync` flushes data
//! only. `examples/journal_cost.rs` measures both; in two runs on the development VM (ext4 on
//! a virtio disk, two shared vCPUs under load) `fdatasync` after a 4 KiB overwrite took p50
//! 78 and 136 us on zero-filled blocks against 138 and 169 us on fallocated-only ones (133 and
//! 166 us when appending to a growing file). `fallocate` still runs first, where the
//! filesystem supports it: a full disk fails it at once, before 64 MiB of zeros are written,
//! and the extents it picks are contiguous. It costs nothing measurable: preparing 64 MiB
//! took 36-40 ms with it, 32-41 ms without.

use super::fault::{Fault, Faults, IoOp};
use super::format::{SegmentHeader, SEGMENT_HEADER_BYTES};
use super::layout::{segments_dir, unix_ns, PREPARE_PREFIX, TMP_EXT};
use super::mapping::SegmentMap;
use super::JournalError;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Zero-fill chunk: large enough that preallocating 64 MiB is 64 system calls; static so
/// preallocation allocates nothing (it lives in .bss, costing no file or page until touched,
/// and only read).
pub(crate) static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// Writes all of `data` at `offset`, retrying short writes and EINTR. `op` names the call for
/// the fault hook. On error, some prefix of `data` may have reached the file; the caller
/// retries from the same offset (the bytes are the same, so overwriting is harmless).
pub(crate) fn pwrite_all(
    file: &File,
    mut data: &[u8],
    mut offset: u64,
    faults: &mut Faults,
    op: fn(u64, usize) -> IoOp,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = match faults.check(op(offset, data.len())) {
            Some(Fault::Error(e)) => return Err(e),
            Some(Fault::Short(k)) => file.write_at(&data[..k.min(data.len())], offset),
            None => file.write_at(data, offset),
        };
        match n {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "pwrite wrote nothing",
                ))
            }
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(crate) fn write_op(offset: u64, len: usize) -> IoOp {
    IoOp::Write { offset, len }
}

fn prealloc_op(offset: u64, len: usize) -> IoOp {
    IoOp::Preallocate { offset, len }
}

/// Writes zeros over `[from, to)`.
pub(crate) fn zero_range(
    file: &File,
    from: u64,
    to: u64,
    faults: &mut Faults,
    op: fn(u64, usize) -> IoOp,
) -> io::Result<()> {
    let mut off = from;
    while off < to {
        let n = (to - off).min(ZEROS.len() as u64) as usize;
        pwrite_all(file, &ZEROS[..n], off, faults, op)?;
        off += n as u64;
    }
    Ok(())
}

/// A zero-filled, fully allocated segment file under a temporary name, waiting to become the
/// next segment. Dropping it unused removes the file.
#[derive(Debug)]
pub struct PreparedSegment {
    file: Option<File>,
    path: PathBuf,
    len: u64,
    /// The file mapped for writing, when prepared by [`PreparedSegment::create`] (on a cold
    /// thread: with `mlockall` the mapping is populated and locked when made).
    map: Option<SegmentMap>,
}

impl PreparedSegment {
    /// Gives up the segment's name buffer once the segment is in use (the writer returns it
    /// to a cold thread to be dropped there, so rotation frees nothing on the hot side).
    pub(crate) fn take_path(&mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }

    /// Prepares a segment of `segment_bytes` for journal `dir`. Slow (writes every byte, then
    /// fsyncs): call it from a cold thread and hand the result to
    /// [`super::JournalWriter::install_prepared`], or let the writer's thread call
    /// [`super::JournalWriter::prepare_next`] while idle. Call it after the writer is open
    /// (opening deletes leftover temporary files).
    pub fn create(dir: &Path, segment_bytes: u64) -> Result<Self, JournalError> {
        let seg_dir = segments_dir(dir);
        let mut p = create_prepared(&seg_dir, segment_bytes, &mut Faults::default())
            .map_err(|e| JournalError::io(&seg_dir, "prepare segment", e))?;
        // Without a mapping (mmap refused, e.g. a locked-memory limit) the writer uses pwrite.
        // Not prefaulted: MADV_POPULATE_WRITE dirtied the whole segment (64 MiB of zeros
        // for writeback, and for the first group commit under `fsync`) and measured no
        // better on the writer's side (docs/benchmarks.md#durability).
        p.map = p.file.as_ref().and_then(|f| SegmentMap::map(f, p.len).ok());
        Ok(p)
    }

    /// File size.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for a zero-length file (never produced by [`PreparedSegment::create`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The temporary path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PreparedSegment {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// See the module documentation, step 1.
pub(crate) fn create_prepared(
    seg_dir: &Path,
    len: u64,
    faults: &mut Faults,
) -> io::Result<PreparedSegment> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Relaxed: only uniqueness of the number matters; the pid and clock separate processes.
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = seg_dir.join(format!(
        "{PREPARE_PREFIX}{}-{}-{n}.{TMP_EXT}",
        std::process::id(),
        unix_ns()
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    match fill(&file, len, faults) {
        Ok(()) => Ok(PreparedSegment {
            file: Some(file),
            path,
            len,
            map: None,
        }),
        Err(e) => {
            drop(file);
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

fn fill(file: &File, len: u64, faults: &mut Faults) -> io::Result<()> {
    faults.fail(IoOp::Fallocate { len })?;
    // SAFETY: fallocate on a descriptor owned by `file`, which outlives the call; no memory is
    // passed to the kernel.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        // Filesystems without fallocate (tmpfs has it; some FUSE and NFS do not): the zero
        // fill below allocates the blocks anyway, and finds a full disk, only later.
        if !matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
        ) {
            return Err(e);
        }
    }
    zero_range(file, 0, len, faults, prealloc_op)?;
    faults.fail(IoOp::Sync)?;
    file.sync_all()
}

/// The segment the writer appends to (or one rotated out and not yet synced).
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) first_seq: u64,
    /// Where the next frame goes.
    pub(crate) write_off: u64,
    /// Frames must end at or before this offset.
    pub(crate) capacity: u64,
    /// Written since its last fdatasync.
    pub(crate) dirty: bool,
    /// The file mapped for writing (records are copied in rather than `pwrite`n), if it is.
    pub(crate) map: Option<SegmentMap>,
}

impl OpenSegment {
    /// Hands `data` to the kernel at `offset`: a copy into the mapping when the range is
    /// mapped, `pwrite` otherwise. The fault hook sees both as [`IoOp::Write`].
    #[inline]
    pub(crate) fn write_at(
        &mut self,
        data: &[u8],
        offset: u64,
        faults: &mut Faults,
    ) -> io::Result<()> {
        if let Some(m) = self.map.as_mut() {
            if offset.saturating_add(data.len() as u64) <= m.len() as u64 {
                // The same loop as `pwrite_all`, so injected faults (an error, a short
                // write then the rest) behave as they do on the `pwrite` path.
                let (mut data, mut offset) = (data, offset);
                while !data.is_empty() {
                    let n = match faults.check(write_op(offset, data.len())) {
                        Some(Fault::Error(e)) => return Err(e),
                        Some(Fault::Short(k)) => k.clamp(1, data.len()),
                        None => data.len(),
                    };
                    let copied = m.write_at(offset, &data[..n]);
                    debug_assert!(copied, "range checked above");
                    data = &data[n..];
                    offset += n as u64;
                }
                return Ok(());
            }
        }
        pwrite_all(&self.file, data, offset, faults, write_op)
    }
}

/// See the module documentation, step 2. On error the prepared segment is left as it was
/// (still a temporary file, header possibly written), so the caller can retry with it.
/// `replace` allows the final name to exist already (replacing an empty last segment at open).
pub(crate) fn activate(
    p: &mut PreparedSegment,
    seg_dir: &Path,
    first_seq: u64,
    replace: bool,
    faults: &mut Faults,
) -> io::Result<OpenSegment> {
    let mut path = PathBuf::new();
    segment_path_into(&mut path, seg_dir, first_seq);
    activate_as(p, path, first_seq, replace, faults)
}

/// Writes `seg_dir/<20-digit first_seq>.seg` into `path`, reusing its buffer: no allocation
/// when its capacity suffices (the writer keeps one sized for it).
pub(crate) fn segment_path_into(path: &mut PathBuf, seg_dir: &Path, first_seq: u64) {
    use std::io::Write as _;
    let mut name = [0u8; 24];
    let mut w = &mut name[..];
    let _ = write!(w, "{first_seq:020}.seg");
    let s = path.as_mut_os_string();
    s.clear();
    s.push(seg_dir.as_os_str());
    s.push("/");
    s.push(
        std::str::from_utf8(&name)
            .unwrap_or("")
            .trim_end_matches('\0'),
    );
}

/// [`activate`] under a name the caller composed (see [`segment_path_into`]).
pub(crate) fn activate_as(
    p: &mut PreparedSegment,
    path: PathBuf,
    first_seq: u64,
    replace: bool,
    faults: &mut Faults,
) -> io::Result<OpenSegment> {
    let file = p
        .file
        .as_ref()
        .ok_or_else(|| io::Error::other("prepared segment already used"))?;
    let header = SegmentHeader {
        segment_bytes: p.len,
        first_seq,
        created_unix_ns: unix_ns(),
    }
    .encode();
    pwrite_all(file, &header, 0, faults, write_op)?;
    faults.fail(IoOp::Sync)?;
    file.sync_data()?;
    if !replace && fs::symlink_metadata(&path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists; refusing to replace a segment", path.display()),
        ));
    }
    faults.fail(IoOp::Rename)?;
    fs::rename(&p.path, &path)?;
    let file = p.file.take().expect("checked above");
    Ok(OpenSegment {
        file,
        path,
        first_seq,
        write_off: SEGMENT_HEADER_BYTES as u64,
        capacity: p.len & !7,
        dirty: false,
        map: p.map.take(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_are_composed_in_place_like_the_layout_names_them() {
        let dir = Path::new("/var/lib/appliance/appliance-data/segments");
        let mut p = PathBuf::with_capacity(dir.as_os_str().len() + 64);
        let cap = p.capacity();
        for seq in [1u64, 42, 123_456_789, u64::MAX] {
            segment_path_into(&mut p, dir, seq);
            assert_eq!(p, dir.join(super::super::layout::segment_file_name(seq)));
            assert_eq!(p.capacity(), cap, "no reallocation");
        }
    }
    use crate::journal::testutil::TempDir;

    #[test]
    fn failed_preallocation_leaves_no_file_behind() {
        let d = TempDir::new();
        let mut calls = 0;
        let mut faults = Faults::default();
        faults.set(Some(Box::new(move |op| {
            if let IoOp::Preallocate { .. } = op {
                calls += 1;
                if calls == 2 {
                    return Some(Fault::Error(io::Error::from_raw_os_error(libc::ENOSPC)));
                }
            }
            None
        })));
        let e = create_prepared(&d.0, 3 << 20, &mut faults).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 0);
    }

    #[test]
    fn prepared_segment_is_zero_filled_allocated_and_removed_when_dropped() {
        let d = TempDir::new();
        let p = create_prepared(&d.0, 1 << 16, &mut Faults::default()).unwrap();
        let meta = fs::metadata(p.path()).unwrap();
        assert_eq!(meta.len(), 1 << 16);
        // st_blocks counts 512-byte units actually allocated: no holes.
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= 1 << 16, "blocks {}", meta.blocks());
        assert!(fs::read(p.path()).unwrap().iter().all(|&b| b == 0));
        let path = p.path().to_path_buf();
        drop(p);
        assert!(!path.exists());
    }

    #[test]
    fn activation_writes_a_valid_header_and_renames() {
        let d = TempDir::new();
        let mut p = create_prepared(&d.0, 4096, &mut Faults::default()).unwrap();
        let tmp = p.path().to_path_buf();
        let seg = activate(&mut p, &d.0, 77, false, &mut Faults::default()).unwrap();
        drop(p);
        assert!(!tmp.exists());
        assert_eq!(seg.path, d.0.join("00000000000000000077.seg"));
        let bytes = fs::read(&seg.path).unwrap();
        let h = SegmentHeader::decode(&bytes).unwrap();
        assert_eq!((h.first_seq, h.segment_bytes), (77, 4096));
        assert_eq!(seg.write_off, 64);
    }

    #[test]
    fn short_writes_are_completed_by_the_loop() {
        let d = TempDir::new();
        let f = File::create(d.0.join("f")).unwrap();
        let mut faults = Faults::default();
        faults.set(Some(Box::new(|_| Some(Fault::Short(3)))));
        pwrite_all(&f, b"0123456789", 5, &mut faults, write_op).unwrap();
        let got = fs::read(d.0.join("f")).unwrap();
        assert_eq!(&got[5..], b"0123456789");
    }
}

//! Snapshot files: a checksummed payload covering the journal up to a seq, written atomically.
//!
//! Writing streams the payload to `snapshots/<seq>.snap.tmp` (CRC computed on the way, so a
//! payload of hundreds of MB needs no buffer of that size), writes the header last, then
//! `fdatasync`, `rename` to `<seq>.snap`, `fsync` of the directory. A `.snap` name therefore
//! always means a complete file as far as this process knew; a crash leaves at most a
//! `.snap.tmp`, which readers ignore. Readers still verify everything (length, header CRC,
//! payload CRC), because disks lie, and fall back to an older snapshot if the newest fails:
//! hence retention keeps at least two.

use super::error::{Damage, JournalError};
use super::format::{SnapshotHeader, SNAPSHOT_HEADER_BYTES};
use super::layout::{
    ensure_dir, fsync_dir, list_numbered, snapshot_file_name, snapshots_dir, unix_ns, SNAP_EXT,
};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Streams one snapshot into its file. Dropping it without [`SnapshotWriter::finish`] removes
/// the temporary file.
#[derive(Debug)]
pub struct SnapshotWriter {
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    snap_dir: PathBuf,
    seq: u64,
    crc: u32,
    len: u64,
}

impl SnapshotWriter {
    /// Starts the snapshot covering every record up to and including `seq`, for journal `dir`.
    pub fn create(dir: &Path, seq: u64) -> Result<Self, JournalError> {
        let snap_dir = snapshots_dir(dir);
        ensure_dir(&snap_dir)?;
        let tmp = snap_dir.join(format!("{}.tmp", snapshot_file_name(seq)));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| JournalError::io(&tmp, "create snapshot", e))?;
        // Room for the header, written last, once the CRC and length are known.
        f.write_all(&[0u8; SNAPSHOT_HEADER_BYTES])
            .map_err(|e| JournalError::io(&tmp, "write snapshot", e))?;
        Ok(Self {
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            tmp,
            snap_dir,
            seq,
            crc: 0,
            len: 0,
        })
    }

    /// Completes the snapshot: header, `fdatasync`, rename to `<seq>.snap`, directory
    /// `fsync`. Returns the final path. A snapshot of the same seq is replaced.
    pub fn finish(mut self) -> Result<PathBuf, JournalError> {
        let out = self.out.take().expect("only finish takes it");
        let done = self.complete(out);
        if done.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        let path = done?;
        fsync_dir(&self.snap_dir)
            .map_err(|e| JournalError::io(&self.snap_dir, "fsync directory", e))?;
        Ok(path)
    }

    fn complete(&self, out: BufWriter<File>) -> Result<PathBuf, JournalError> {
        let tmp = &self.tmp;
        let file = out
            .into_inner()
            .map_err(|e| JournalError::io(tmp, "write snapshot", e.into_error()))?;
        let header = SnapshotHeader {
            seq: self.seq,
            payload_len: self.len,
            payload_crc: self.crc,
            created_unix_ns: unix_ns(),
        }
        .encode();
        file.write_all_at(&header, 0)
            .map_err(|e| JournalError::io(tmp, "write snapshot header", e))?;
        file.sync_data()
            .map_err(|e| JournalError::io(tmp, "fdatasync snapshot", e))?;
        drop(file);
        let path = self.snap_dir.join(snapshot_file_name(self.seq));
        fs::rename(tmp, &path).map_err(|e| JournalError::io(&path, "rename snapshot", e))?;
        Ok(path)
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self.out.as_mut().expect("present until finish");
        let n = out.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("present until finish").flush()
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a snapshot of `payload` covering records up to `seq` (see [`SnapshotWriter`] to
/// stream one instead).
pub fn write_snapshot(dir: &Path, seq: u64, payload: &[u8]) -> Result<PathBuf, JournalError> {
    let mut w = SnapshotWriter::create(dir, seq)?;
    w.write_all(payload)
        .map_err(|e| JournalError::io(&w.tmp, "write snapshot", e))?;
    w.finish()
}

/// A verified snapshot's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Records up to and including this seq are reflected in it.
    pub seq: u64,
    /// The file.
    pub path: PathBuf,
    /// Payload bytes.
    pub payload_len: u64,
}

/// A verified snapshot and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Records up to and including this seq are reflected in it.
    pub seq: u64,
    /// The file.
    pub path: PathBuf,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A snapshot passed over because it does not verify.
#[derive(Debug)]
pub struct SkippedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: JournalError,
}

/// What [`latest_valid_snapshot`] found.
#[derive(Debug, Default)]
pub struct SnapshotSearch {
    /// The newest snapshot that verifies.
    pub latest: Option<Snapshot>,
    /// Newer snapshots that did not verify, newest first: each deserves a log line.
    pub skipped: Vec<SkippedSnapshot>,
}

/// Opens `path` and checks everything but the payload CRC: header, name, length.
fn open_checked(
    path: &Path,
    name_seq: Option<u64>,
) -> Result<(File, SnapshotHeader), JournalError> {
    let mut f = File::open(path).map_err(|e| JournalError::io(path, "open snapshot", e))?;
    let file_len = f
        .metadata()
        .map_err(|e| JournalError::io(path, "stat snapshot", e))?
        .len();
    let mut hb = [0u8; SNAPSHOT_HEADER_BYTES];
    let n = read_up_to(&mut f, &mut hb).map_err(|e| JournalError::io(path, "read snapshot", e))?;
    let header = SnapshotHeader::decode(&hb[..n])
        .map_err(|d| JournalError::corrupt(path, 0, Damage::Header(d)))?;
    if let Some(name_seq) = name_seq {
        if name_seq != header.seq {
            return Err(JournalError::corrupt(
                path,
                16,
                Damage::NameMismatch {
                    name_seq,
                    header_seq: header.seq,
                },
            ));
        }
    }
    let expected = (SNAPSHOT_HEADER_BYTES as u64).saturating_add(header.payload_len);
    if file_len != expected {
        return Err(JournalError::corrupt(
            path,
            file_len.min(expected),
            Damage::SnapshotLength {
                expected,
                found: file_len,
            },
        ));
    }
    Ok((f, header))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn crc_error(path: &Path, stored: u32, computed: u32) -> JournalError {
    JournalError::corrupt(
        path,
        SNAPSHOT_HEADER_BYTES as u64,
        Damage::PayloadCrc { stored, computed },
    )
}

/// Reads and fully verifies one snapshot file (the payload is read into memory once).
pub fn read_snapshot(path: &Path) -> Result<Snapshot, JournalError> {
    let (f, h) = open_checked(path, None)?;
    // The length was checked against the file size, so this allocation is what the file holds.
    let mut payload = Vec::with_capacity(h.payload_len as usize);
    f.take(h.payload_len)
        .read_to_end(&mut payload)
        .map_err(|e| JournalError::io(path, "read snapshot", e))?;
    if payload.len() as u64 != h.payload_len {
        return Err(JournalError::corrupt(
            path,
            SNAPSHOT_HEADER_BYTES as u64 + payload.len() as u64,
            Damage::SnapshotLength {
                expected: SNAPSHOT_HEADER_BYTES as u64 + h.payload_len,
                found: SNAPSHOT_HEADER_BYTES as u64 + payload.len() as u64,
            },
        ));
    }
    let computed = crc32c::crc32c(&payload);
    if computed != h.payload_crc {
        return Err(crc_error(path, h.payload_crc, computed));
    }
    Ok(Snapshot {
        seq: h.seq,
        path: path.to_path_buf(),
        payload,
    })
}

/// The newest snapshot in journal `dir` that verifies, with its payload, and the newer ones
/// that did not. `Err` only when the directory cannot be listed.
pub fn latest_valid_snapshot(dir: &Path) -> Result<SnapshotSearch, JournalError> {
    let mut out = SnapshotSearch::default();
    for (seq, path) in list_numbered(&snapshots_dir(dir), SNAP_EXT)?
        .into_iter()
        .rev()
    {
        match read_snapshot(&path).and_then(|s| {
            if s.seq == seq {
                Ok(s)
            } else {
                Err(JournalError::corrupt(
                    &path,
                    16,
                    Damage::NameMismatch {
                        name_seq: seq,
                        header_seq: s.seq,
                    },
                ))
            }
        }) {
            Ok(s) => {
                out.latest = Some(s);
                break;
            }
            Err(error) => out.skipped.push(SkippedSnapshot { path, error }),
        }
    }
    Ok(out)
}

/// Streams a snapshot's payload, verifying its CRC: the `read` that delivers the last payload
/// byte fails instead (with `InvalidData`, wrapping the [`JournalError`]) if the CRC does not
/// match. For payloads too large to hold twice; decode as it streams, and discard the result
/// if the stream ends in an error.
#[derive(Debug)]
pub struct SnapshotReader {
    inner: BufReader<io::Take<File>>,
    info: SnapshotInfo,
    remaining: u64,
    stored_crc: u32,
    crc: u32,
}

impl SnapshotReader {
    /// Opens `path`, checking header and length.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let (f, h) = open_checked(path, None)?;
        Ok(Self {
            inner: BufReader::with_capacity(1 << 20, f.take(h.payload_len)),
            info: SnapshotInfo {
                seq: h.seq,
                path: path.to_path_buf(),
                payload_len: h.payload_len,
            },
            remaining: h.payload_len,
            stored_crc: h.payload_crc,
            crc: 0,
        })
    }

    /// Which snapshot this is.
    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: snapshot ended early", self.info.path.display()),
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.remaining -= n as u64;
        if self.remaining == 0 && self.crc != self.stored_crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                crc_error(&self.info.path, self.stored_crc, self.crc),
            ));
        }
        Ok(n)
    }
}

/// Verifies a snapshot by streaming it (memory: one 1 MiB buffer), without keeping the
/// payload. With [`latest_valid_snapshot_info`], finds the snapshot to restore before
/// streaming it again through [`SnapshotReader`].
pub fn verify_snapshot(path: &Path) -> Result<SnapshotInfo, JournalError> {
    let mut r = SnapshotReader::open(path)?;
    io::copy(&mut r, &mut io::sink()).map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<JournalError>() {
            Ok(j) => *j,
            Err(other) => JournalError::io(path, "read snapshot", io::Error::other(other)),
        },
        None => JournalError::io(path, "read snapshot", io::ErrorKind::Other.into()),
    })?;
    Ok(r.info)
}

/// Like [`latest_valid_snapshot`], but verifies by streaming and returns no payload.
pub fn latest_valid_snapshot_info(
    dir: &Path,
) -> Result<(Option<SnapshotInfo>, Vec<SkippedSnapshot>), JournalError> {
    let mut skipped = Vec::new();
    for (seq, path) in list_numbered(&snapshots_dir(dir), SNAP_EXT)?
        .into_iter()
        .rev()
    {
        match verify_snapshot(&path) {
            Ok(info) if info.seq == seq => return Ok((Some(info), skipped)),
            Ok(info) => skipped.push(SkippedSnapshot {
                error: JournalError::corrupt(
                    &path,
                    16,
                    Damage::NameMismatch {
                        name_seq: seq,
                        header_seq: info.seq,
                    },
                ),
                path,
            }),
            Err(error) => skipped.push(SkippedSnapshot { path, error }),
        }
    }
    Ok((None, skipped))
}

/// Deletes snapshots older than `seq`, always keeping the newest `keep` (at least 2, whatever
/// is asked, so a damaged newest one has a fallback), and leftover `.snap.tmp` files of seqs
/// below `seq`. Keeping is by file name, without reading the files. Returns the paths
/// removed.
pub fn remove_snapshots_before(
    dir: &Path,
    seq: u64,
    keep: usize,
) -> Result<Vec<PathBuf>, JournalError> {
    let snap_dir = snapshots_dir(dir);
    let list = list_numbered(&snap_dir, SNAP_EXT)?;
    let keep = keep.max(2);
    let mut removed = Vec::new();
    let removable = list.len().saturating_sub(keep);
    for (s, path) in list.into_iter().take(removable) {
        if s < seq {
            fs::remove_file(&path).map_err(|e| JournalError::io(&path, "remove snapshot", e))?;
            removed.push(path);
        }
    }
    for (s, path) in list_numbered(&snap_dir, "snap.tmp")? {
        if s < seq {
            fs::remove_file(&path).map_err(|e| JournalError::io(&path, "remove snapshot", e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        fsync_dir(&snap_dir).map_err(|e| JournalError::io(&snap_dir, "fsync directory", e))?;
    }
    Ok(removed)
}

//! A segment file mapped into memory (`mmap`, shared, writable), so that handing records to
//! the kernel is a `memcpy` into its page cache rather than a `pwrite`.
//!
//! Why: on the development VM a `pwrite` of a few hundred bytes into a preallocated ext4 file
//! costs about 5 us (the write path, timestamps, the filesystem journal's handle), and under
//! `journal.ack = "written"` one sits between every engine reply and its send. Stores into a
//! shared mapping are in the page cache as soon as they are made: they survive the process
//! dying exactly as a completed `pwrite` does, `fdatasync` of the file writes them out, and
//! reads of the file (recovery, the snapshotter) see them. The filesystem's per-write work
//! happens once per page, at the first store into it (Aeron's log buffers and Chronicle
//! Queue write the same way).
//!
//! Safety rests on three facts the journal guarantees: segments are preallocated and
//! zero-filled before they are mapped (a store never needs a block, so never faults with
//! SIGBUS for lack of space); only the range the file holds is mapped and every write is
//! bounds-checked against it; nobody truncates a segment while the writer holds the journal's
//! lock. Mapping and unmapping happen on cold paths (segment preparation, writer open, the
//! helper thread that drops a spent segment).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// A writable shared mapping of the first `len` bytes of a segment file.
#[derive(Debug)]
pub struct SegmentMap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the raw pointer is not shared
// with anything that could be used from another thread concurrently (writes go through
// `&mut self`), so moving it between threads (prepared on the helper thread, written on the
// journal's, unmapped on the helper's) is sound.
unsafe impl Send for SegmentMap {}

impl SegmentMap {
    /// Maps the first `len` bytes of `file` (which must hold at least that many: the caller
    /// passes the file's length). Cold path.
    pub fn map(file: &File, len: u64) -> io::Result<SegmentMap> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("segment too large"))?;
        if len == 0 {
            return Err(io::Error::other("empty segment"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint), of a file descriptor we
        // own, for `len` bytes the file holds; the result is checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(SegmentMap { ptr, len })
    }

    /// Bytes mapped.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (an empty mapping is refused).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` to file offset `offset`; `false` (nothing copied) when the range is not
    /// inside the mapping.
    #[inline]
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> bool {
        let Ok(off) = usize::try_from(offset) else {
            return false;
        };
        if off.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: `off + data.len() <= self.len` (checked above), so the destination lies in
        // the mapping, which is valid and writable for `self.len` bytes while `self` lives;
        // `data` is a live slice of our own memory, which cannot overlap a file mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len());
        }
        true
    }
}

impl Drop for SegmentMap {
    fn drop(&mut self) {
        // SAFETY: exactly the region `map` returned, unmapped once (Drop runs once); nothing
        // borrows into it (writes copy in and return).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn writes_land_in_the_file_and_out_of_range_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(8192).unwrap();
        let mut m = SegmentMap::map(&f, 8192).unwrap();
        assert!(m.write_at(100, b"hello"));
        assert!(m.write_at(8187, b"edge!"));
        assert!(!m.write_at(8188, b"edge!"), "past the end");
        assert!(!m.write_at(u64::MAX, b"x"));
        drop(m);
        let mut b = [0u8; 5];
        f.read_exact_at(&mut b, 100).unwrap();
        assert_eq!(&b, b"hello");
        f.read_exact_at(&mut b, 8187).unwrap();
        assert_eq!(&b, b"edge!");
    }
}

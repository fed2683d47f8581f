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

    /// Copies `data` to file offset `offset`, in ascending address order; `false` (nothing
    /// copied) when the range is not inside the mapping.
    ///
    /// Why not `memcpy`: a process killed in the middle of a copy (SIGKILL takes effect at
    /// any interrupt) keeps exactly the stores it made before, and `memcpy` makes no promise
    /// about their order: glibc's vector copies store the end of a range before its start.
    /// A batch of records killed half-way could then hold a later record whole and an
    /// earlier one not at all, which recovery must call damage (a hole before valid
    /// records), not a torn tail. Stores issued in ascending order (volatile, so the compiler
    /// keeps them in order; interrupts are precise, so every store before the point of the
    /// kill is made and none after) leave a prefix: at worst the last record is cut, which
    /// its CRC shows. Frames are 8-byte aligned, so almost all of it moves in 8-byte words.
    #[inline]
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> bool {
        let Ok(off) = usize::try_from(offset) else {
            return false;
        };
        if off.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: `off + data.len() <= self.len` (checked above), so every byte written below
        // lies in the mapping, which is valid and writable for `self.len` bytes while `self`
        // lives; `data` is a live slice of our own memory (read with unaligned loads), which
        // cannot overlap a file mapping.
        unsafe {
            let mut dst = self.ptr.as_ptr().add(off);
            let mut src = data.as_ptr();
            let end = src.add(data.len());
            // Bytes up to the first 8-byte boundary of the destination, then words, then the
            // remainder.
            while src < end && (dst as usize) % 8 != 0 {
                std::ptr::write_volatile(dst, *src);
                src = src.add(1);
                dst = dst.add(1);
            }
            while (end as usize) - (src as usize) >= 8 {
                let w = std::ptr::read_unaligned(src.cast::<u64>());
                std::ptr::write_volatile(dst.cast::<u64>(), w);
                src = src.add(8);
                dst = dst.add(8);
            }
            while src < end {
                std::ptr::write_volatile(dst, *src);
                src = src.add(1);
                dst = dst.add(1);
            }
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

    #[test]
    fn the_ordered_copy_is_exact_at_every_alignment_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("seg"))
            .unwrap();
        f.set_len(4096).unwrap();
        let mut m = SegmentMap::map(&f, 4096).unwrap();
        let src: Vec<u8> = (0..100u32).map(|i| (i * 7 + 1) as u8).collect();
        let mut expect = vec![0u8; 4096];
        let mut at = 0usize;
        for dst_misalign in 0..8 {
            for src_start in 0..8 {
                for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 90] {
                    let off = at + dst_misalign;
                    let data = &src[src_start..src_start + len];
                    assert!(m.write_at(off as u64, data));
                    expect[off..off + len].copy_from_slice(data);
                    at = (off + len + 8) & !7;
                    if at > 4096 - 200 {
                        at = 0;
                    }
                }
            }
        }
        drop(m);
        let mut got = vec![0u8; 4096];
        f.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got, expect);
    }
}

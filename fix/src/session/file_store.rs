//! A file-backed message store that survives a restart: a session reopened on the same files
//! continues its sequence numbers and can still resend what it sent before.
//!
//! Two files per session in a directory:
//! - `<name>.seqnums`: 16 bytes, next sender and next target MsgSeqNum (little-endian u64),
//!   overwritten in place on every change;
//! - `<name>.body`: append-only records `[seq u64 LE][len u32 LE][message bytes]`.
//!
//! On open the body file is scanned to rebuild the in-memory index; a record torn by a crash
//! is cut off. Writes go to the page cache and are not fsynced unless [`FileStore::set_sync`]
//! is on, which trades a disk flush per message for surviving a power cut. This store makes a
//! system call per message, so the gateway's hot path should use [`super::MemoryStore`] and
//! leave durability to the journal; the file store suits initiators, tools and cold sessions.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::store::{MessageStore, StoreError};

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.kind())
}

/// A [`MessageStore`] kept in two files.
#[derive(Debug)]
pub struct FileStore {
    seqnums: File,
    body: File,
    body_len: u64,
    index: Vec<(u64, u64, u32)>,
    buf: Vec<u8>,
    next_sender: u64,
    next_target: u64,
    sync: bool,
    body_path: PathBuf,
}

impl FileStore {
    /// Opens (or creates) the store `name` in `dir`.
    pub fn open(dir: &Path, name: &str) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let seq_path = dir.join(format!("{name}.seqnums"));
        let body_path = dir.join(format!("{name}.body"));
        let mut seqnums = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&seq_path)
            .map_err(io)?;
        let mut raw = Vec::new();
        seqnums.read_to_end(&mut raw).map_err(io)?;
        let (next_sender, next_target) = match raw.len() {
            0 => (1, 1),
            16 => (
                u64::from_le_bytes(raw[0..8].try_into().map_err(|_| StoreError::Corrupt)?),
                u64::from_le_bytes(raw[8..16].try_into().map_err(|_| StoreError::Corrupt)?),
            ),
            _ => return Err(StoreError::Corrupt),
        };
        let mut body = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&body_path)
            .map_err(io)?;
        let mut all = Vec::new();
        body.read_to_end(&mut all).map_err(io)?;
        let mut index = Vec::new();
        let mut off = 0usize;
        while off + 12 <= all.len() {
            let seq = u64::from_le_bytes(
                all[off..off + 8]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt)?,
            );
            let len = u32::from_le_bytes(
                all[off + 8..off + 12]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt)?,
            );
            if off + 12 + len as usize > all.len() {
                break;
            }
            index.push((seq, off as u64 + 12, len));
            off += 12 + len as usize;
        }
        if off != all.len() {
            body.set_len(off as u64).map_err(io)?;
        }
        body.seek(SeekFrom::End(0)).map_err(io)?;
        let mut s = FileStore {
            seqnums,
            body,
            body_len: off as u64,
            index,
            buf: Vec::new(),
            next_sender,
            next_target,
            sync: false,
            body_path,
        };
        s.write_seqnums()?;
        Ok(s)
    }

    /// Fsync after every write (durable across power loss, much slower).
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// Path of the message file (for operators and tests).
    pub fn body_path(&self) -> &Path {
        &self.body_path
    }

    fn write_seqnums(&mut self) -> Result<(), StoreError> {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&self.next_sender.to_le_bytes());
        raw[8..].copy_from_slice(&self.next_target.to_le_bytes());
        self.seqnums.write_all_at(&raw, 0).map_err(io)?;
        if self.sync {
            self.seqnums.sync_data().map_err(io)?;
        }
        Ok(())
    }
}

impl MessageStore for FileStore {
    fn next_sender_seq(&self) -> u64 {
        self.next_sender
    }
    fn next_target_seq(&self) -> u64 {
        self.next_target
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_sender = seq;
        self.write_seqnums()
    }
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_target = seq;
        self.write_seqnums()
    }
    fn store(&mut self, seq: u64, message: &[u8]) -> Result<(), StoreError> {
        let mut rec = Vec::with_capacity(12 + message.len());
        rec.extend_from_slice(&seq.to_le_bytes());
        rec.extend_from_slice(&(message.len() as u32).to_le_bytes());
        rec.extend_from_slice(message);
        self.body.write_all(&rec).map_err(io)?;
        if self.sync {
            self.body.sync_data().map_err(io)?;
        }
        self.index
            .push((seq, self.body_len + 12, message.len() as u32));
        self.body_len += rec.len() as u64;
        Ok(())
    }
    fn first_in_range(&mut self, from: u64, to: u64) -> Option<(u64, &[u8])> {
        let i = self.index.partition_point(|e| e.0 < from);
        let (seq, off, len) = *self.index.get(i)?;
        if seq > to {
            return None;
        }
        self.buf.resize(len as usize, 0);
        self.body.read_exact_at(&mut self.buf, off).ok()?;
        Some((seq, &self.buf))
    }
    fn reset(&mut self) -> Result<(), StoreError> {
        self.body.set_len(0).map_err(io)?;
        self.body.seek(SeekFrom::Start(0)).map_err(io)?;
        self.body.flush().map_err(io)?;
        self.body_len = 0;
        self.index.clear();
        self.next_sender = 1;
        self.next_target = 1;
        self.write_seqnums()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fix-filestore-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn survives_reopen() {
        let dir = tmpdir("reopen");
        {
            let mut s = FileStore::open(&dir, "S").unwrap();
            s.store(1, b"first").unwrap();
            s.store(3, b"third").unwrap();
            s.set_next_sender_seq(4).unwrap();
            s.set_next_target_seq(9).unwrap();
        }
        let mut s = FileStore::open(&dir, "S").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (4, 9));
        assert_eq!(s.first_in_range(2, 10), Some((3, &b"third"[..])));
        assert_eq!(s.first_in_range(1, 1), Some((1, &b"first"[..])));
        s.reset().unwrap();
        drop(s);
        let mut s = FileStore::open(&dir, "S").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
        assert_eq!(s.first_in_range(1, 100), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn torn_record_is_cut_off() {
        let dir = tmpdir("torn");
        {
            let mut s = FileStore::open(&dir, "S").unwrap();
            s.store(1, b"whole").unwrap();
            let path = s.body_path().to_path_buf();
            drop(s);
            let mut f = OpenOptions::new().append(true).open(path).unwrap();
            f.write_all(&2u64.to_le_bytes()).unwrap();
            f.write_all(&100u32.to_le_bytes()).unwrap();
            f.write_all(b"partial").unwrap();
        }
        let mut s = FileStore::open(&dir, "S").unwrap();
        assert_eq!(s.first_in_range(1, 10), Some((1, &b"whole"[..])));
        s.store(2, b"again").unwrap();
        drop(s);
        let mut s = FileStore::open(&dir, "S").unwrap();
        assert_eq!(s.first_in_range(2, 2), Some((2, &b"again"[..])));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

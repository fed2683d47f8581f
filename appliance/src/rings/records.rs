//! Variable-length records through an SPSC byte ring: how hot threads hand journal records to
//! the journal agent without allocating, locking or knowing what the records mean.
//!
//! Each record is an 8-byte header (`u32` payload length, `u16` kind, `u16` reserved) and its
//! payload, padded to a multiple of 8 bytes, written into an `rtrb` ring of bytes. A record
//! may straddle the end of the ring (the ring's chunks come as two slices); both ends copy
//! through a small buffer of [`MAX_RECORD`] bytes in that case. The producer counts the
//! records it pushed, so a consumer's published count of records it has made durable tells
//! the producer which of its own records are durable.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Whether the journal takes new state-changing input: set by the journal agent when its
/// writes fail or it cannot prepare the next segment (a full disk), read by the gateways
/// before every order operation (one relaxed load of a line nobody else writes often).
/// While it is set, gateways refuse new orders, cancels, replaces and mass cancels with
/// reject 114 `journal_unavailable` instead of queueing input that could not be journaled.
#[derive(Debug, Default)]
pub struct JournalGate {
    refusing: CachePadded<AtomicBool>,
}

impl JournalGate {
    /// Whether state-changing input is refused now.
    #[inline]
    pub fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Sets the state (the journal agent).
    pub fn set_refusing(&self, yes: bool) {
        if self.refusing.load(Ordering::Relaxed) != yes {
            self.refusing.store(yes, Ordering::Relaxed);
        }
    }
}

/// Largest payload a record may carry (a FIX message the appliance sends is far smaller).
pub const MAX_RECORD: usize = 8 << 10;
const HEADER: usize = 8;

#[inline]
const fn padded(n: usize) -> usize {
    (n + 7) & !7
}

/// The producing end.
pub struct RecordTx {
    inner: rtrb::Producer<u8>,
    /// Free bytes as of the last look at the consumer's index (refreshed when short).
    free_cache: usize,
    pushed: u64,
    durable: Arc<AtomicU64>,
    scratch: Box<[u8]>,
}

/// The consuming end.
pub struct RecordRx {
    inner: rtrb::Consumer<u8>,
    durable: Arc<AtomicU64>,
    scratch: Box<[u8]>,
    taken: u64,
}

/// A ring of `bytes` bytes (rounded up to a multiple of 8, at least 2 records' room).
pub fn record_channel(bytes: usize) -> (RecordTx, RecordRx) {
    let cap = padded(bytes.max(2 * (HEADER + MAX_RECORD)));
    let (p, c) = rtrb::RingBuffer::new(cap);
    let durable = Arc::new(AtomicU64::new(0));
    (
        RecordTx {
            inner: p,
            free_cache: cap,
            pushed: 0,
            durable: durable.clone(),
            scratch: vec![0; HEADER + MAX_RECORD].into_boxed_slice(),
        },
        RecordRx {
            inner: c,
            durable,
            scratch: vec![0; HEADER + MAX_RECORD].into_boxed_slice(),
            taken: 0,
        },
    )
}

impl RecordTx {
    /// Whether `bytes` bytes of records (headers and padding included) fit now. Answered from
    /// a cached count while it suffices.
    #[inline]
    pub fn has_room(&mut self, bytes: usize) -> bool {
        if self.free_cache >= bytes {
            return true;
        }
        self.free_cache = self.inner.slots();
        self.free_cache >= bytes
    }

    /// Free bytes now (reads the consumer's index).
    #[inline]
    pub fn room(&mut self) -> usize {
        self.free_cache = self.inner.slots();
        self.free_cache
    }

    /// Bytes a record of `len` payload bytes takes in the ring.
    #[inline]
    pub const fn footprint(len: usize) -> usize {
        HEADER + padded(len)
    }

    /// Appends a record whose payload `fill` writes into the `len` bytes it is given.
    /// Returns `false` (appending nothing, without calling `fill`) when the ring lacks room or
    /// `len` exceeds [`MAX_RECORD`].
    #[inline]
    pub fn push_with(&mut self, kind: u16, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        let total = HEADER + padded(len);
        if len > MAX_RECORD || !self.has_room(total) {
            return false;
        }
        let rec = &mut self.scratch[..total];
        rec[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        rec[4..6].copy_from_slice(&kind.to_le_bytes());
        rec[6..8].copy_from_slice(&[0, 0]);
        rec[HEADER + len..].fill(0);
        fill(&mut rec[HEADER..HEADER + len]);
        let Ok(mut chunk) = self.inner.write_chunk(total) else {
            return false;
        };
        let (a, b) = chunk.as_mut_slices();
        let (ra, rb) = rec.split_at(a.len());
        a.copy_from_slice(ra);
        b.copy_from_slice(rb);
        chunk.commit_all();
        self.free_cache -= total;
        self.pushed += 1;
        true
    }

    /// Records pushed so far.
    #[inline]
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Records the consumer has made durable (under its policy) so far.
    #[inline]
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Whether every record pushed so far is durable.
    #[inline]
    pub fn all_durable(&self) -> bool {
        self.durable() >= self.pushed
    }

    /// Whether the consumer is gone.
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

impl RecordRx {
    /// Bytes waiting (a snapshot: a consumer can take exactly what was there at this point
    /// with [`RecordRx::take`]).
    #[inline]
    pub fn available(&self) -> usize {
        self.inner.slots()
    }

    /// Hands every whole record within the first `max_bytes` waiting bytes to `f(kind,
    /// payload)`, in order, consuming each one `f` accepts (returns `true` for). Stops at the
    /// first record `f` refuses, which stays in the ring. Returns the number of records
    /// taken.
    pub fn take(&mut self, max_bytes: usize, mut f: impl FnMut(u16, &[u8]) -> bool) -> u64 {
        let n = self.inner.slots().min(max_bytes);
        if n < HEADER {
            return 0;
        }
        let Ok(chunk) = self.inner.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
        let mut pos = 0usize;
        let mut records = 0u64;
        while pos + HEADER <= n {
            let mut h = [0u8; HEADER];
            for (k, x) in h.iter_mut().enumerate() {
                *x = at(pos + k);
            }
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let kind = u16::from_le_bytes([h[4], h[5]]);
            let total = HEADER + padded(len);
            if pos + total > n {
                break;
            }
            let start = pos + HEADER;
            let accepted = if start + len <= a.len() {
                f(kind, &a[start..start + len])
            } else if start >= a.len() {
                let s = start - a.len();
                f(kind, &b[s..s + len])
            } else {
                for k in 0..len {
                    self.scratch[k] = at(start + k);
                }
                f(kind, &self.scratch[..len])
            };
            if !accepted {
                break;
            }
            pos += total;
            records += 1;
        }
        chunk.commit(pos);
        self.taken += records;
        records
    }

    /// Records taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Publishes that the first `records` records of this ring are durable.
    #[inline]
    pub fn publish_durable(&self, records: u64) {
        self.durable.store(records, Ordering::Release);
    }

    /// Whether the producer is gone.
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_every_size_cross_the_ring_edge_intact() {
        let (mut tx, mut rx) = record_channel(0);
        let mut expected = Vec::new();
        let mut got: Vec<(u16, Vec<u8>)> = Vec::new();
        for i in 0..5_000usize {
            let len = (i * 37) % 3_000;
            let kind = (i % 7 + 1) as u16;
            let byte = i as u8;
            while !tx.push_with(kind, len, |p| p.fill(byte)) {
                rx.take(usize::MAX, |k, p| {
                    got.push((k, p.to_vec()));
                    true
                });
            }
            expected.push((kind, vec![byte; len]));
        }
        rx.take(usize::MAX, |k, p| {
            got.push((k, p.to_vec()));
            true
        });
        assert_eq!(got, expected);
        assert_eq!(tx.pushed(), 5_000);
        assert_eq!(rx.taken(), 5_000);
    }

    #[test]
    fn full_ring_refuses_without_calling_fill_and_durability_is_counted() {
        let (mut tx, mut rx) = record_channel(0);
        let mut n = 0;
        while tx.push_with(1, MAX_RECORD, |_| {}) {
            n += 1;
        }
        assert!(n >= 2);
        assert!(!tx.push_with(1, 8, |_| panic!("no room: fill must not run")));
        assert!(!tx.push_with(1, MAX_RECORD + 1, |_| panic!("too large")));
        assert!(!tx.all_durable());
        let taken = rx.take(usize::MAX, |_, _| true);
        rx.publish_durable(taken);
        assert!(tx.all_durable());
        // A refused record stays, with everything after it.
        assert!(tx.push_with(2, 4, |p| p.copy_from_slice(b"abcd")));
        assert!(tx.push_with(3, 4, |p| p.copy_from_slice(b"efgh")));
        assert_eq!(rx.take(usize::MAX, |k, _| k != 3), 1);
        assert_eq!(rx.take(usize::MAX, |k, p| k == 3 && p == b"efgh"), 1);
        assert_eq!(rx.taken(), taken + 2);
    }
}

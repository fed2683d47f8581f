//! Inbound messages that arrived ahead of a sequence gap, kept until the gap is filled.
//!
//! Capacity is reserved once. The queue is used only while a gap is open, so it favours
//! simplicity over speed: removal compacts the arena with one `copy_within`.

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    start: usize,
    len: usize,
}

/// A bounded queue of raw frames keyed by MsgSeqNum.
#[derive(Debug)]
pub struct InboundQueue {
    arena: Box<[u8]>,
    used: usize,
    entries: Vec<Entry>,
    max_entries: usize,
    dropped: u64,
}

impl InboundQueue {
    /// A queue holding up to `bytes` of frames.
    pub fn new(bytes: usize) -> Self {
        let max_entries = (bytes / 32).max(4);
        InboundQueue {
            arena: vec![0u8; bytes].into_boxed_slice(),
            used: 0,
            entries: Vec::with_capacity(max_entries),
            max_entries,
            dropped: 0,
        }
    }

    /// Keeps `frame` under `seq`. A sequence number already queued keeps its first frame
    /// (as QuickFIX). Returns false, and counts a drop, when there is no room.
    pub fn push(&mut self, seq: u64, frame: &[u8]) -> bool {
        if self.entries.iter().any(|e| e.seq == seq) {
            return true;
        }
        if self.used + frame.len() > self.arena.len() || self.entries.len() == self.max_entries {
            self.dropped += 1;
            return false;
        }
        self.arena[self.used..self.used + frame.len()].copy_from_slice(frame);
        self.entries.push(Entry {
            seq,
            start: self.used,
            len: frame.len(),
        });
        self.used += frame.len();
        true
    }

    /// Drops frames below `expected`, then moves the frame for `expected` (if queued) into
    /// `into` and returns its length.
    pub fn take(&mut self, expected: u64, into: &mut [u8]) -> Option<usize> {
        while let Some(i) = self.entries.iter().position(|e| e.seq < expected) {
            self.remove(i);
        }
        let i = self.entries.iter().position(|e| e.seq == expected)?;
        let e = self.entries[i];
        let n = e.len.min(into.len());
        into[..n].copy_from_slice(&self.arena[e.start..e.start + n]);
        self.remove(i);
        Some(n)
    }

    fn remove(&mut self, i: usize) {
        let e = self.entries.remove(i);
        self.arena.copy_within(e.start + e.len..self.used, e.start);
        self.used -= e.len;
        for other in &mut self.entries {
            if other.start > e.start {
                other.start -= e.len;
            }
        }
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Frames dropped for lack of room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_in_sequence_and_discards_stale() {
        let mut q = InboundQueue::new(256);
        assert!(q.push(5, b"five"));
        assert!(q.push(3, b"three"));
        assert!(q.push(7, b"seven"));
        assert!(q.push(5, b"FIVE")); // first kept
        let mut buf = [0u8; 16];
        assert_eq!(q.take(4, &mut buf), None); // drops 3
        let n = q.take(5, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"five");
        assert_eq!(q.take(6, &mut buf), None);
        let n = q.take(7, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"seven");
        assert!(q.is_empty());
    }

    #[test]
    fn full_queue_drops() {
        let mut q = InboundQueue::new(8);
        assert!(q.push(1, b"12345"));
        assert!(!q.push(2, b"12345"));
        assert_eq!(q.dropped(), 1);
    }
}

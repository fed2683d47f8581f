//! Message stores: where a session keeps its sequence numbers and the application messages
//! it sent, so it can answer a ResendRequest.
//!
//! Only application messages are kept. Admin messages are never resent (FIX replaces them with
//! SequenceReset-GapFill), so any sequence number without a stored message is gap-filled;
//! the result on the wire is the same as QuickFIX's, which stores admin messages only to skip
//! them later.

use std::collections::VecDeque;

/// A store operation failed (file stores only; the memory store never fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The operating system refused a read or write.
    Io(std::io::ErrorKind),
    /// A stored file is not in the expected format.
    Corrupt,
}

/// Sequence numbers and sent application messages of one session.
pub trait MessageStore {
    /// MsgSeqNum the next outgoing message gets.
    fn next_sender_seq(&self) -> u64;
    /// MsgSeqNum expected on the next incoming message.
    fn next_target_seq(&self) -> u64;
    /// Sets the next outgoing MsgSeqNum.
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Sets the next expected incoming MsgSeqNum.
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Keeps a sent application message under its MsgSeqNum. Sequence numbers only grow
    /// between resets.
    fn store(&mut self, seq: u64, message: &[u8]) -> Result<(), StoreError>;
    /// The stored message with the lowest MsgSeqNum in `from..=to`, if any.
    fn first_in_range(&mut self, from: u64, to: u64) -> Option<(u64, &[u8])>;
    /// Forgets every message and sets both sequence numbers to 1.
    fn reset(&mut self) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    start: usize,
    len: usize,
}

/// An in-memory store with capacity reserved up front, so storing never allocates.
///
/// Messages live in one byte arena used as a ring, indexed by a bounded deque. When either is
/// full, the oldest messages are evicted; a later ResendRequest covering them is answered with
/// SequenceReset-GapFill (the counterparty loses those messages, as with QuickFIX's
/// `PersistMessages=N`). Size the arena for a session's daily volume to avoid that; see
/// [`MemoryStore::evicted`] to monitor it.
#[derive(Debug)]
pub struct MemoryStore {
    arena: Box<[u8]>,
    head: usize,
    entries: VecDeque<Entry>,
    max_entries: usize,
    next_sender: u64,
    next_target: u64,
    evicted: u64,
}

impl MemoryStore {
    /// A store holding up to `arena_bytes` of messages and `max_messages` messages.
    pub fn with_capacity(arena_bytes: usize, max_messages: usize) -> Self {
        MemoryStore {
            arena: vec![0u8; arena_bytes].into_boxed_slice(),
            head: 0,
            entries: VecDeque::with_capacity(max_messages.max(1)),
            max_entries: max_messages.max(1),
            next_sender: 1,
            next_target: 1,
            evicted: 0,
        }
    }

    /// Every stored message, oldest first, with its MsgSeqNum (for snapshots of the store).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.entries
            .iter()
            .map(|e| (e.seq, &self.arena[e.start..e.start + e.len]))
    }

    /// Messages evicted so far to make room (never resendable).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Messages currently held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no message is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Finds room for `len` contiguous bytes, evicting the oldest entries as needed.
    fn reserve(&mut self, len: usize) -> usize {
        let cap = self.arena.len();
        loop {
            let Some(front) = self.entries.front() else {
                if self.head + len > cap {
                    self.head = 0;
                }
                return self.head;
            };
            if front.start < self.head {
                // Live data sits behind the head: free space is [head, cap).
                if self.head + len <= cap {
                    return self.head;
                }
                self.head = 0;
            } else if self.head + len <= front.start {
                // Live data wraps: free space is [head, front.start).
                return self.head;
            } else {
                self.entries.pop_front();
                self.evicted += 1;
            }
        }
    }
}

impl MessageStore for MemoryStore {
    fn next_sender_seq(&self) -> u64 {
        self.next_sender
    }
    fn next_target_seq(&self) -> u64 {
        self.next_target
    }
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_sender = seq;
        Ok(())
    }
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.next_target = seq;
        Ok(())
    }
    fn store(&mut self, seq: u64, message: &[u8]) -> Result<(), StoreError> {
        let len = message.len();
        if len > self.arena.len() {
            // Cannot be kept at all; it will be gap-filled if requested.
            self.evicted += 1;
            return Ok(());
        }
        if self.entries.len() == self.max_entries {
            self.entries.pop_front();
            self.evicted += 1;
        }
        let start = self.reserve(len);
        self.arena[start..start + len].copy_from_slice(message);
        self.head = start + len;
        self.entries.push_back(Entry { seq, start, len });
        Ok(())
    }
    fn first_in_range(&mut self, from: u64, to: u64) -> Option<(u64, &[u8])> {
        let i = self.entries.partition_point(|e| e.seq < from);
        let e = *self.entries.get(i)?;
        if e.seq > to {
            return None;
        }
        Some((e.seq, &self.arena[e.start..e.start + e.len]))
    }
    fn reset(&mut self) -> Result<(), StoreError> {
        self.entries.clear();
        self.head = 0;
        self.next_sender = 1;
        self.next_target = 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_finds_by_range() {
        let mut s = MemoryStore::with_capacity(1024, 16);
        s.store(2, b"two").unwrap();
        s.store(5, b"five").unwrap();
        assert_eq!(s.first_in_range(1, 10), Some((2, &b"two"[..])));
        assert_eq!(s.first_in_range(3, 10), Some((5, &b"five"[..])));
        assert_eq!(s.first_in_range(3, 4), None);
        assert_eq!(s.first_in_range(6, 10), None);
        s.reset().unwrap();
        assert!(s.is_empty());
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
    }

    #[test]
    fn ring_evicts_oldest_and_keeps_newest_intact() {
        let mut s = MemoryStore::with_capacity(100, 1000);
        for seq in 1..=200u64 {
            let msg = format!("message-{seq:04}-{}", "x".repeat((seq % 17) as usize));
            s.store(seq, msg.as_bytes()).unwrap();
            // the newest is always retrievable and intact
            let (got, bytes) = s.first_in_range(seq, seq).unwrap();
            assert_eq!(got, seq);
            assert_eq!(bytes, msg.as_bytes());
        }
        assert!(s.evicted() > 0);
        // every held entry is intact and in order
        let mut from = 1;
        let mut last = 0;
        while let Some((seq, bytes)) = s.first_in_range(from, u64::MAX) {
            assert!(seq > last);
            assert!(bytes.starts_with(format!("message-{seq:04}").as_bytes()));
            last = seq;
            from = seq + 1;
        }
        assert_eq!(last, 200);
    }

    #[test]
    fn entry_limit_evicts() {
        let mut s = MemoryStore::with_capacity(1024, 2);
        for seq in 1..=3 {
            s.store(seq, b"m").unwrap();
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.first_in_range(1, 3).map(|x| x.0), Some(2));
    }
}

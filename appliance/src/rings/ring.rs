//! SPSC rings between gateways and engines, with the accounting operators need.
//!
//! The rings are `rtrb` (cache-padded head/tail, cached indices). This wrapper adds two
//! counters per ring, written only by the producer thread and read by the exporter: how often
//! a push found the ring full (back-pressure events), and the highest occupancy seen.
//! Single writer, so plain Relaxed stores suffice: no read-modify-write on the hot path.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one ring, shared with the exporter.
#[derive(Debug, Default)]
pub struct RingStats {
    full_events: CachePadded<AtomicU64>,
    high_water: AtomicU64,
    capacity: AtomicU64,
}

impl RingStats {
    /// Times a push found the ring full.
    pub fn full_events(&self) -> u64 {
        self.full_events.load(Ordering::Relaxed)
    }
    /// Highest occupancy observed at a push.
    pub fn high_water(&self) -> u64 {
        self.high_water.load(Ordering::Relaxed)
    }
    /// Slots in the ring.
    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Relaxed)
    }
}

/// The producing end of a ring.
pub struct Sender<T> {
    inner: rtrb::Producer<T>,
    stats: Arc<RingStats>,
    full_events: u64,
    high_water: u64,
    /// Free slots as of the last look at the consumer's index: lets [`Sender::reserve`]
    /// answer from a local count and touch the shared index only when it runs low (the
    /// `cached_head` idea from rtrb, one level up).
    free_cache: usize,
    /// Items pushed since the ring was made: with the free slots it says how many the
    /// consumer has taken ([`Sender::consumed`]).
    pushed: u64,
}

/// The consuming end of a ring.
pub struct Receiver<T> {
    inner: rtrb::Consumer<T>,
}

/// A ring of `capacity` slots (rounded to what rtrb allocates: exactly `capacity`).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>, Arc<RingStats>) {
    let (p, c) = rtrb::RingBuffer::new(capacity);
    let stats = Arc::new(RingStats::default());
    stats.capacity.store(capacity as u64, Ordering::Relaxed);
    (
        Sender {
            inner: p,
            stats: stats.clone(),
            full_events: 0,
            high_water: 0,
            free_cache: capacity,
            pushed: 0,
        },
        Receiver { inner: c },
        stats,
    )
}

impl<T> Sender<T> {
    /// Whether `n` pushes will succeed. Answers from the local count while it suffices and
    /// refreshes it from the consumer's index otherwise; a refusal counts as a full event
    /// (the caller is about to apply back-pressure).
    #[inline]
    pub fn reserve(&mut self, n: usize) -> bool {
        if self.free_cache >= n {
            return true;
        }
        self.free_cache = self.inner.slots();
        if self.free_cache >= n {
            return true;
        }
        self.full_events += 1;
        self.stats
            .full_events
            .store(self.full_events, Ordering::Relaxed);
        false
    }

    /// Pushes `value`, or hands it back when the ring is full (counted as a full event).
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        match self.inner.push(value) {
            Ok(()) => {
                self.free_cache = self.free_cache.saturating_sub(1);
                self.pushed += 1;
                Ok(())
            }
            Err(rtrb::PushError::Full(v)) => {
                self.full_events += 1;
                self.stats
                    .full_events
                    .store(self.full_events, Ordering::Relaxed);
                Err(v)
            }
        }
    }

    /// Free slots (reads the consumer's index: call once per batch, not per item).
    #[inline]
    pub fn free_slots(&self) -> usize {
        self.inner.slots()
    }

    /// Items pushed so far.
    #[inline]
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Items the consumer has taken so far (one shared load). A consumer commits a batch
    /// after handling it, so an item counted here has been handled: the gateways rely on it
    /// to know an engine has journaled a command.
    #[inline]
    pub fn consumed(&self) -> u64 {
        let waiting = self.inner.buffer().capacity() - self.inner.slots();
        self.pushed - waiting as u64
    }

    /// Slots in the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.inner.buffer().capacity()
    }

    /// Records the occupancy after a batch (one shared load; updates the high-water mark).
    #[inline]
    pub fn note_occupancy(&mut self) {
        let used = (self.inner.buffer().capacity() - self.inner.slots()) as u64;
        if used > self.high_water {
            self.high_water = used;
            self.stats.high_water.store(used, Ordering::Relaxed);
        }
    }

    /// Whether the consumer is gone (its thread ended).
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

impl<T> Receiver<T> {
    /// Pops the oldest item, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.inner.pop().ok()
    }

    /// Whether the ring is empty (one shared load).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Up to `max` waiting items as (at most) two slices, handed to `f`, then consumed: the
    /// batch read a consumer uses to see several items ahead (prefetch hints) without
    /// popping them one by one. Returns how many were consumed.
    #[inline]
    pub fn read_batch(&mut self, max: usize, f: impl FnOnce(&[T], &[T])) -> usize {
        let n = self.inner.slots().min(max);
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = self.inner.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        f(a, b);
        chunk.commit_all();
        n
    }

    /// Items waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.inner.slots()
    }

    /// Whether the producer is gone (its thread ended).
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_pushes_hand_the_value_back_and_are_counted() {
        let (mut tx, mut rx, stats) = channel::<u32>(4);
        for i in 0..4 {
            tx.push(i).unwrap();
        }
        tx.note_occupancy();
        assert_eq!(tx.push(99), Err(99));
        assert_eq!(tx.push(98), Err(98));
        assert_eq!(stats.full_events(), 2);
        assert_eq!(stats.high_water(), 4);
        assert_eq!(stats.capacity(), 4);
        assert!(!tx.reserve(1));
        assert_eq!(stats.full_events(), 3);
        assert_eq!(rx.pop(), Some(0));
        assert!(tx.reserve(1), "the consumer freed a slot");
        assert!(!tx.reserve(2));
        tx.push(4).unwrap();
        let drained: Vec<u32> = std::iter::from_fn(|| rx.pop()).collect();
        assert_eq!(drained, vec![1, 2, 3, 4]);
        assert!(rx.is_empty());
    }
}

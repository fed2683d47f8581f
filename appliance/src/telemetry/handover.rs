//! The lock-free histogram hand-over between a hot thread and the exporter.
//!
//! Each hot thread records into its own [`StageHistograms`]. Once per telemetry interval it
//! swaps that (boxed) set for an empty one popped from a return ring and pushes the full one
//! to the exporter through a second ring. Both rings are `rtrb` SPSC rings of `Box` pointers,
//! so a hand-over moves two pointers and touches no histogram memory: no allocation, no lock,
//! no copy on the hot thread. The exporter merges what it receives, resets it (the expensive
//! part, off the hot thread) and returns it.
//!
//! Every box is allocated at start-up ([`pair`]): one the thread records into and
//! [`SPARES`] waiting in the return ring. If the exporter falls behind and the return ring is
//! empty, the hot thread keeps recording into the set it has (nothing is lost, the samples are
//! only late) and counts a skipped hand-over, which the exporter exports.

use crate::rings::stamp::StageHistograms;

/// Empty sets waiting in each thread's return ring: with one in flight to the exporter and
/// one being reset, two spares let the exporter be a whole interval late without a skip.
pub const SPARES: usize = 2;

/// The hot thread's end.
pub struct HandoverTx {
    full: rtrb::Producer<Box<StageHistograms>>,
    empty: rtrb::Consumer<Box<StageHistograms>>,
    interval_ns: u64,
    next_ns: u64,
    /// Hand-overs done.
    pub handovers: u64,
    /// Hand-overs skipped because no empty set had come back.
    pub skips: u64,
}

/// The exporter's end.
pub struct HandoverRx {
    full: rtrb::Consumer<Box<StageHistograms>>,
    empty: rtrb::Producer<Box<StageHistograms>>,
}

/// Builds the two rings of one hot thread and the spare sets (cold path: allocates
/// `SPARES` histogram sets of about 1 MiB each).
pub fn pair(interval_ns: u64) -> (HandoverTx, HandoverRx) {
    // Capacity SPARES + 1 in both directions: every box in existence fits in either ring,
    // so neither push below can find its ring full.
    let (full_tx, full_rx) = rtrb::RingBuffer::new(SPARES + 1);
    let (mut empty_tx, empty_rx) = rtrb::RingBuffer::new(SPARES + 1);
    for _ in 0..SPARES {
        if empty_tx.push(Box::new(StageHistograms::new())).is_err() {
            unreachable!("the return ring holds SPARES + 1 boxes");
        }
    }
    (
        HandoverTx {
            full: full_tx,
            empty: empty_rx,
            interval_ns: interval_ns.max(1),
            next_ns: interval_ns,
            handovers: 0,
            skips: 0,
        },
        HandoverRx {
            full: full_rx,
            empty: empty_tx,
        },
    )
}

impl HandoverTx {
    /// Whether the interval has elapsed at `now_ns` (one compare: call once per loop
    /// iteration with a time the loop already read).
    #[inline]
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_ns
    }

    /// Hands `current` over if an empty set is back, swapping it in; otherwise keeps
    /// recording into `current` and counts the skip. Schedules the next hand-over one
    /// interval after `now_ns`. Never blocks, never allocates.
    #[inline]
    pub fn hand_over(&mut self, current: &mut Box<StageHistograms>, now_ns: u64) {
        self.next_ns = now_ns.saturating_add(self.interval_ns);
        match self.empty.pop() {
            Ok(mut fresh) => {
                std::mem::swap(current, &mut fresh);
                // Cannot fail: the full ring has room for every box there is. If it ever
                // did, the set would be dropped here (a loss, never a block).
                if self.full.push(fresh).is_err() {
                    self.skips += 1;
                } else {
                    self.handovers += 1;
                }
            }
            Err(_) => self.skips += 1,
        }
    }
}

impl HandoverRx {
    /// Merges every set the thread has handed over into `into` (and `window`), resets them
    /// and returns them to the thread. Returns how many sets were taken.
    pub fn collect(&mut self, into: &mut StageHistograms, window: &mut StageHistograms) -> usize {
        let mut n = 0;
        while let Ok(mut h) = self.full.pop() {
            into.merge(&h);
            window.merge(&h);
            h.reset();
            // The return ring has room for every box; a failed push would only mean the
            // thread skips hand-overs from then on.
            let _ = self.empty.push(h);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rings::stamp::Stage;

    #[test]
    fn sets_go_round_and_a_slow_exporter_costs_skips_not_samples() {
        let (mut tx, mut rx) = pair(100);
        let mut cur = Box::new(StageHistograms::new());
        assert!(!tx.due(99));
        assert!(tx.due(100));
        cur.record(Stage::Engine, 5);
        tx.hand_over(&mut cur, 100);
        assert_eq!(cur.get(Stage::Engine).len(), 0, "swapped for an empty set");
        assert!(!tx.due(150) && tx.due(200));
        cur.record(Stage::Engine, 6);
        tx.hand_over(&mut cur, 200);
        // The exporter has not run: both spares are gone, so the next hand-over is skipped
        // and the thread keeps its samples.
        cur.record(Stage::Engine, 7);
        tx.hand_over(&mut cur, 300);
        assert_eq!((tx.handovers, tx.skips), (2, 1));
        assert_eq!(cur.get(Stage::Engine).len(), 1);
        let (mut total, mut window) = (StageHistograms::new(), StageHistograms::new());
        assert_eq!(rx.collect(&mut total, &mut window), 2);
        assert_eq!(total.get(Stage::Engine).len(), 2);
        assert_eq!(window.get(Stage::Engine).len(), 2);
        // The sets came back empty and the thread can hand over again.
        cur.record(Stage::Engine, 8);
        tx.hand_over(&mut cur, 400);
        assert_eq!(tx.handovers, 3);
        assert_eq!(
            cur.get(Stage::Engine).len(),
            0,
            "the returned set was reset"
        );
        assert_eq!(rx.collect(&mut total, &mut window), 1);
        assert_eq!(
            total.get(Stage::Engine).len(),
            4,
            "nothing lost: 5, 6, 7 and 8"
        );
    }
}

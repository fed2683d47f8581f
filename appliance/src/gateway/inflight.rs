//! Which inbound messages the journal holds: commands in flight to the engines (live, hot
//! path) and commands the journal shows applied beyond a session's sequence record
//! (recovered, cold to build and hot only while a client resends).
//!
//! A command is journaled by its engine (`COMMAND` record, pushed before the engine handles
//! it), while the session's inbound sequence number is journaled by the gateway (`SEQ`). The
//! two travel different paths: a `SEQ` record saying "message 500 received" could be durable
//! while message 500's order still waits in the engine's ring, and a crash then would lose the
//! order without the client ever being asked for it again. So a gateway journals, for each
//! session, the next inbound number *up to the oldest of its commands not yet taken by an
//! engine* ([`InFlight::safe_next_in`]): an engine commits a batch to its ring after pushing
//! the batch's `COMMAND` records, and the journal agent writes the engines' records before the
//! gateways' records it noted first, so a `SEQ` pushed after that point is never durable
//! before the commands it covers.
//!
//! The price is the other direction: after a crash the journal may hold commands from messages
//! past the session's recorded number. The client resends them (FIX ResendRequest, binary
//! `next_client_seq`); [`Applied`] lists them per session so a resend of a message already
//! applied is skipped instead of being applied twice (or refused as a duplicate ClOrdID).

use std::collections::VecDeque;

/// Commands a gateway pushed and the engines have not yet taken, per engine ring in push
/// order, with per-session bounds on the oldest one's inbound sequence number.
pub struct InFlight {
    engines: usize,
    /// Per engine: (session, inbound seq; 0 for commands not from a client message).
    queues: Vec<VecDeque<(u16, u64)>>,
    /// Per engine: entries popped so far (the ring position of the queue's front).
    popped: Vec<u64>,
    /// Per (session, engine): commands of that session still in that engine's ring.
    count: Vec<u32>,
    /// Per (session, engine), valid while `count` > 0: a lower bound on the inbound seq of
    /// the session's oldest command in that ring (exact after a push into an empty one; after
    /// a pop, one past the popped command's, which no later command of the session is below).
    floor: Vec<u64>,
}

impl InFlight {
    /// Tracking for `sessions` sessions over engine rings of the given capacities (cold path).
    pub fn new(sessions: usize, capacities: &[usize]) -> Self {
        let engines = capacities.len();
        Self {
            engines,
            queues: capacities
                .iter()
                .map(|&c| VecDeque::with_capacity(c + 1))
                .collect(),
            popped: vec![0; engines],
            count: vec![0; sessions.max(1) * engines],
            floor: vec![0; sessions.max(1) * engines],
        }
    }

    /// A command from session `s`'s inbound message `in_seq` (0: none) went into engine
    /// `e`'s ring. `consumed` is the ring's consumed count, used only when the queue is full
    /// (it never holds more than the ring plus what was taken since the last
    /// [`InFlight::retire`]).
    #[inline]
    pub fn pushed(&mut self, e: usize, s: u16, in_seq: u64, consumed: impl FnOnce() -> u64) {
        if self.queues[e].len() == self.queues[e].capacity() {
            self.retire(e, consumed());
        }
        // Never grows: the ring accepted the push, so at most `capacity` are unconsumed.
        self.queues[e].push_back((s, in_seq));
        if in_seq == 0 {
            return;
        }
        let i = s as usize * self.engines + e;
        if self.count[i] == 0 {
            self.floor[i] = in_seq;
        }
        self.count[i] += 1;
    }

    /// Engine `e` has taken `consumed` commands from its ring so far: drops them.
    #[inline]
    pub fn retire(&mut self, e: usize, consumed: u64) {
        while self.popped[e] < consumed {
            let Some((s, in_seq)) = self.queues[e].pop_front() else {
                break;
            };
            self.popped[e] += 1;
            if in_seq == 0 {
                continue;
            }
            let i = s as usize * self.engines + e;
            self.count[i] -= 1;
            self.floor[i] = in_seq + 1;
        }
    }

    /// The inbound sequence number session `s` may journal when it expects `next_in`: no
    /// higher than the oldest of its commands an engine has not taken.
    #[inline]
    pub fn safe_next_in(&self, s: u16, next_in: u64) -> u64 {
        let base = s as usize * self.engines;
        let mut safe = next_in;
        for e in 0..self.engines {
            if self.count[base + e] > 0 {
                safe = safe.min(self.floor[base + e]);
            }
        }
        safe
    }

    /// Session `s`'s commands the engines have not taken yet (as of the last retire).
    #[inline]
    pub fn session_count(&self, s: u16) -> u32 {
        let base = s as usize * self.engines;
        self.count
            .get(base..base + self.engines)
            .map_or(0, |c| c.iter().sum())
    }

    /// Sessions tracked.
    pub fn sessions(&self) -> usize {
        self.count.len() / self.engines.max(1)
    }

    /// Whether every command pushed has been taken by its engine.
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(|q| q.is_empty())
    }
}

/// Inbound messages of one session the journal shows applied (their commands journaled) at
/// or past the session's recorded next inbound number: a resend of one is skipped. Sorted by
/// sequence number, each with the engines that hold its command (a mass cancel goes to
/// several; one journaled on some engines only is sent to the others).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    entries: VecDeque<(u64, u64)>,
}

impl Applied {
    /// Recovery: message `in_seq`'s command is journaled on engine `engine` (cold path).
    pub fn insert(&mut self, in_seq: u64, engine: usize) {
        let bit = 1u64 << (engine % 64);
        match self.entries.binary_search_by_key(&in_seq, |&(s, _)| s) {
            Ok(i) => self.entries[i].1 |= bit,
            Err(i) => self.entries.insert(i, (in_seq, bit)),
        }
    }

    /// Forgets messages below `next_in` (the session's record moved past them).
    pub fn prune_below(&mut self, next_in: u64) {
        while self.entries.front().is_some_and(|&(s, _)| s < next_in) {
            self.entries.pop_front();
        }
    }

    /// Forgets everything (the session's sequence numbers were reset).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Messages listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is listed (the common case: one check on the hot path).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The session received message `in_seq`: the engines that already hold its command
    /// (0: none, apply it). Entries up to it are dropped (messages come in order).
    #[inline]
    pub fn take(&mut self, in_seq: u64) -> u64 {
        let mut mask = 0;
        while let Some(&(s, m)) = self.entries.front() {
            if s > in_seq {
                break;
            }
            if s == in_seq {
                mask = m;
            }
            self.entries.pop_front();
        }
        mask
    }

    /// The listed messages, for a snapshot (cold path).
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Restores one listed message from a snapshot (cold path; in order).
    pub fn push(&mut self, in_seq: u64, engines: u64) {
        self.entries.push_back((in_seq, engines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_next_in_waits_for_the_oldest_command_on_any_engine() {
        let mut f = InFlight::new(2, &[4, 4]);
        assert_eq!(f.safe_next_in(0, 10), 10);
        f.pushed(0, 0, 10, || 0); // session 0 msg 10 -> engine 0
        f.pushed(1, 0, 11, || 0); // session 0 msg 11 -> engine 1
        f.pushed(1, 1, 7, || 0); // session 1 msg 7 -> engine 1
        assert_eq!(f.safe_next_in(0, 12), 10);
        assert_eq!(f.safe_next_in(1, 8), 7);
        // Engine 1 takes both of its commands: session 0 still waits for engine 0.
        f.retire(1, 2);
        assert_eq!(f.safe_next_in(0, 12), 10);
        assert_eq!(f.safe_next_in(1, 8), 8);
        f.retire(0, 1);
        assert_eq!(f.safe_next_in(0, 12), 12);
        assert!(f.is_empty());
    }

    #[test]
    fn a_pop_leaves_a_bound_no_later_command_is_below() {
        let mut f = InFlight::new(1, &[8]);
        for seq in [3, 5, 9] {
            f.pushed(0, 0, seq, || 0);
        }
        f.pushed(0, 0, 0, || 0); // internal command: no session bound
        f.retire(0, 1);
        assert_eq!(
            f.safe_next_in(0, 10),
            4,
            "5 is the oldest; 4 is a safe bound"
        );
        f.retire(0, 3);
        assert_eq!(f.safe_next_in(0, 10), 10);
    }

    #[test]
    fn a_full_queue_retires_what_the_ring_consumed() {
        let mut f = InFlight::new(1, &[2]);
        let cap = f.queues[0].capacity();
        for seq in 1..=cap as u64 {
            f.pushed(0, 0, seq, || 0);
        }
        f.pushed(0, 0, 100, || 2);
        assert_eq!(f.queues[0].len(), cap - 1);
        assert_eq!(f.safe_next_in(0, 101), 3);
    }

    #[test]
    fn applied_messages_are_taken_in_order() {
        let mut a = Applied::default();
        a.insert(12, 0);
        a.insert(10, 1);
        a.insert(12, 1);
        a.insert(15, 0);
        a.prune_below(11);
        assert_eq!(a.entries().collect::<Vec<_>>(), vec![(12, 3), (15, 1)]);
        assert_eq!(a.take(11), 0);
        assert_eq!(a.take(12), 3);
        assert_eq!(a.take(14), 0);
        assert!(!a.is_empty());
        assert_eq!(a.take(15), 1);
        assert!(a.is_empty());
    }
}

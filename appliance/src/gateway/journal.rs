//! What a gateway writes to the journal, and which of its output may leave. Hot path.
//!
//! A gateway journals what a replay of the engines' commands cannot rebuild: the sequenced
//! messages it sends (`OUT`, with the engine event each one answers and the exec-id counter)
//! and its sessions' sequence numbers when they moved otherwise (`SEQ`: heartbeats, session
//! rejects, inbound messages, resets). Records go into the gateway's record ring; the journal
//! agent writes them and publishes how many are durable. Output leaves the gateway only when
//! every record the gateway pushed before it is durable (`all_durable`): an acknowledgement
//! never leaves before what it acknowledges is journaled (the engine's `COMMAND` record is
//! written before any gateway record that depends on it: see `runtime::journal_agent`).
//!
//! Journaling a session is idempotent: [`GatewayJournal::sync_fix`] and
//! [`GatewayJournal::sync_binary`] compare the session with what was journaled and push the
//! difference; when the ring is full they push what fits and the rest goes on the next call
//! (the messages stay in the session's store meanwhile, and the output stays held).

use super::binary::BinaryUser;
use super::fix::FixSession;
use crate::recovery::records::{kind, Cause, OutHeader, SeqRecord, OUT_HEADER, SEQ_LEN};
use crate::rings::records::RecordTx;
use crate::vocab::Protocol;
use fix::session::MessageStore;

/// What was journaled of one session. Recovery takes the next outbound sequence number as
/// the larger of the last `SEQ` record's and the last `OUT` record's plus one, so a `SEQ` is
/// needed only when messages went out that have no `OUT` (admin messages) after the last one,
/// or when the inbound number moved.
#[derive(Clone, Copy, Debug)]
struct Mark {
    /// The first sequence number whose message is still to be looked at for an `OUT`.
    out_next: u64,
    /// One past the last `OUT` journaled (or the baseline after a reset or recovery).
    out_end: u64,
    /// The last `SEQ` record's values.
    seq_out: u64,
    seq_in: u64,
    /// A reset happened and its `SEQ` record is still to be pushed.
    reset: bool,
}

impl Mark {
    fn at(next_out: u64, next_in: u64) -> Self {
        Self {
            out_next: next_out,
            out_end: next_out,
            seq_out: next_out,
            seq_in: next_in,
            reset: false,
        }
    }

    /// Whether the journal shows `next_out` / `next_in` already.
    fn covers(&self, next_out: u64, next_in: u64) -> bool {
        next_out <= self.out_end.max(self.seq_out) && next_in == self.seq_in
    }
}

/// Room a gateway makes sure its record ring has before it handles an inbound message or an
/// engine event (each produces at most a few records of at most a few hundred bytes), so a
/// record push never fails on the way.
pub const RESERVE: usize = 16 << 10;

/// What a gateway has journaled of its sessions (the records go through the core's record
/// ring, passed in).
pub struct GatewayJournal {
    gateway: u8,
    marks: Vec<Mark>,
    /// Sessions with something still to journal.
    dirty: u64,
    /// Times a record did not fit (retried later).
    pub ring_full: u64,
}

impl GatewayJournal {
    /// A producer for gateway `gateway` with `sessions` sessions (cold path).
    pub fn new(gateway: usize, sessions: usize) -> Self {
        Self {
            gateway: gateway as u8,
            marks: vec![Mark::at(1, 1); sessions],
            dirty: 0,
            ring_full: 0,
        }
    }

    /// Starts from a recovered session's sequence numbers (cold path): what recovery rebuilt
    /// is journaled already.
    pub fn recovered(&mut self, s: u16, next_out: u64, next_in: u64) {
        self.marks[s as usize] = Mark::at(next_out, next_in);
    }

    #[inline]
    fn out(&mut self, tx: &mut RecordTx, h: &OutHeader, msg: &[u8]) -> bool {
        let ok = tx.push_with(kind::OUT, OUT_HEADER + msg.len(), |b| {
            h.encode(&mut b[..OUT_HEADER]);
            b[OUT_HEADER..].copy_from_slice(msg);
        });
        if !ok {
            self.ring_full += 1;
        }
        ok
    }

    /// Journals what changed in FIX session `s`: a reset (`SEQ` with the reset flag), new
    /// stored messages (`OUT`, answering `cause`). Sequence numbers that moved without a
    /// message mark the session for [`GatewayJournal::seq_if_moved`].
    #[inline]
    pub fn sync_fix(
        &mut self,
        tx: &mut RecordTx,
        s: u16,
        fs: &mut FixSession,
        cause: Option<Cause>,
        exec_counter: u64,
    ) {
        let gateway = self.gateway;
        let store = fs.session.store_mut();
        let m = &mut self.marks[s as usize];
        if store.take_resets() > 0 {
            m.reset = true;
            m.out_next = 1;
        }
        let next = store.next_sender_seq();
        let next_in = store.next_target_seq();
        if m.reset {
            let r = SeqRecord {
                gateway,
                protocol: Protocol::Fix.index() as u8,
                session: s,
                reset: true,
                next_out: next,
                next_in,
            };
            if !tx.push_with(kind::SEQ, SEQ_LEN, |b| r.encode(b)) {
                self.ring_full += 1;
                self.dirty |= 1 << (s % 64);
                return;
            }
            let out_next = m.out_next;
            *m = Mark::at(next, next_in);
            m.out_next = out_next;
            m.out_end = 1;
        }
        while m.out_next < next {
            let Some((seq, bytes)) = store.first_in_range(m.out_next, next - 1) else {
                break;
            };
            let h = OutHeader {
                gateway,
                protocol: Protocol::Fix.index() as u8,
                session: s,
                seq,
                cause,
                exec_counter,
            };
            let ok = tx.push_with(kind::OUT, OUT_HEADER + bytes.len(), |b| {
                h.encode(&mut b[..OUT_HEADER]);
                b[OUT_HEADER..].copy_from_slice(bytes);
            });
            if !ok {
                self.ring_full += 1;
                self.dirty |= 1 << (s % 64);
                return;
            }
            m.out_next = seq + 1;
            m.out_end = seq + 1;
        }
        m.out_next = next;
        if !m.covers(next, next_in) {
            self.dirty |= 1 << (s % 64);
        }
    }

    /// Journals what changed in binary user `s`: new sequenced frames (`OUT`, answering
    /// `cause`); an inbound number that moved marks the session for
    /// [`GatewayJournal::seq_if_moved`].
    #[inline]
    pub fn sync_binary(
        &mut self,
        tx: &mut RecordTx,
        s: u16,
        user: &BinaryUser,
        cause: Option<Cause>,
        exec_counter: u64,
    ) {
        let log = &user.state;
        let next = log.next_out_seq as u64;
        while self.marks[s as usize].out_next < next {
            let seq = self.marks[s as usize].out_next;
            if let Some(frame) = log.frame(seq as u32) {
                let h = OutHeader {
                    gateway: self.gateway,
                    protocol: Protocol::Binary.index() as u8,
                    session: s,
                    seq,
                    cause,
                    exec_counter,
                };
                if !self.out(tx, &h, frame) {
                    self.dirty |= 1 << (s % 64);
                    return;
                }
                self.marks[s as usize].out_end = seq + 1;
            }
            // A frame already dropped from the replay log (impossible while the log is larger
            // than the ring) has nothing left to journal.
            self.marks[s as usize].out_next = seq + 1;
        }
        let m = &self.marks[s as usize];
        if !m.covers(next, log.next_in_seq as u64) {
            self.dirty |= 1 << (s % 64);
        }
    }

    /// Whether any session has sequence numbers (or a record) still to journal.
    #[inline]
    pub fn has_dirty(&self) -> bool {
        self.dirty != 0
    }

    /// Sessions to look at in [`GatewayJournal::flush_seq`] (a bit per session, modulo 64).
    #[inline]
    pub fn dirty_mask(&self) -> u64 {
        self.dirty
    }

    /// Pushes a `SEQ` record for session `s` if its sequence numbers moved since the last
    /// one; returns whether the session is journaled up to date.
    #[inline]
    pub fn seq_if_moved(
        &mut self,
        tx: &mut RecordTx,
        s: u16,
        protocol: Protocol,
        next_out: u64,
        next_in: u64,
    ) -> bool {
        let m = self.marks[s as usize];
        if m.reset || m.out_next < next_out {
            // Records of an earlier sync are still to go first (the next sync pushes them).
            return false;
        }
        if m.covers(next_out, next_in) {
            return true;
        }
        let r = SeqRecord {
            gateway: self.gateway,
            protocol: protocol.index() as u8,
            session: s,
            reset: false,
            next_out,
            next_in,
        };
        if !tx.push_with(kind::SEQ, SEQ_LEN, |b| r.encode(b)) {
            self.ring_full += 1;
            return false;
        }
        let m = &mut self.marks[s as usize];
        m.seq_out = next_out;
        m.seq_in = next_in;
        true
    }

    /// Clears the dirty mask (the caller re-marks what could not be journaled).
    #[inline]
    pub fn take_dirty(&mut self) -> u64 {
        std::mem::take(&mut self.dirty)
    }

    /// Marks session `s` as having something left to journal.
    #[inline]
    pub fn mark_dirty(&mut self, s: u16) {
        self.dirty |= 1 << (s % 64);
    }
}

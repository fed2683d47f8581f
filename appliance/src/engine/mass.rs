//! Mass cancel (by owner, by session, cancel on disconnect) and Day-order expiry.
//!
//! Rare commands, so they scan instead of keeping per-owner and per-session lists: those lists
//! would cost two more links in every order slot (pushing it past one cache line) and two more
//! pointer updates on every add, fill and cancel, to speed up a command that runs a few times a
//! day. The scan reads the order arena sequentially up to its high-water mark (the peak number
//! of live orders), which the hardware prefetcher streams; walking the levels' linked lists
//! instead took a cache miss per order (140 ms for 1,000,000 resting orders against ~6 ms for
//! the sequential scan, see `docs/engine.md`).
//!
//! Event order: the `Cancelled` events in arena order (deterministic: slot assignment is a pure
//! function of the input), then one `BookChange` per changed level in book order (instrument
//! id ascending, bids then asks, best level first), then `MassCancelDone`.

use super::command::{ExpireDayOrders, MassCancel};
use super::event::{Event, EventKind, EventSink, MassCancelDone};
use super::index::RemovalBatch;
use super::matching::{cancelled_event, level_changed, unlink};
use super::orders::OrderSlot;
use super::process::Engine;
use super::reason::{CancelReason, MassCancelScope, RejectReason};
use super::types::{InstrumentId, Seq, Side, TimeInForce};

impl Engine {
    /// Cancels every resting order in `instrument` (or every book) that `select` picks.
    /// Returns how many were cancelled.
    fn cancel_where<S: EventSink + ?Sized, F: Fn(&OrderSlot) -> bool>(
        &mut self,
        instrument: Option<InstrumentId>,
        select: F,
        reason: CancelReason,
        seq: Seq,
        sink: &mut S,
    ) -> u32 {
        let (only, range) = match instrument {
            Some(i) => match self.book_index(i) {
                Some(b) => (Some(b as u32), b..b + 1),
                None => return 0,
            },
            None => (None, 0..self.books.len()),
        };
        let mut gone = RemovalBatch::new();
        let mut count = 0;
        for slot in 0..self.orders.high_water() {
            if !self.orders.is_resting(slot) {
                continue;
            }
            let o = self.orders.slots[slot as usize];
            if only.is_some_and(|b| b != o.book) || !select(&o) {
                continue;
            }
            let book = &mut self.books[o.book as usize];
            let id = book.id;
            let side = book.side_mut(o.side);
            unlink(side, &mut self.orders.slots, slot);
            side.levels[o.level as usize].dirty = true;
            gone.push(&mut self.index, o.id);
            self.orders.free(slot);
            count += 1;
            sink.event(&Event {
                seq,
                kind: cancelled_event(&o, id, reason),
            });
        }
        gone.flush(&mut self.index);
        if count == 0 {
            return 0;
        }
        for b in range {
            for side in [Side::Buy, Side::Sell] {
                let book = &mut self.books[b];
                let id = book.id;
                let bs = book.side_mut(side);
                // From the best level down. Removing the level at rank r shifts only the
                // levels better than it, which were already visited: stay at rank r.
                let mut r = 0;
                while r < bs.len() {
                    let lid = bs.level_at_rank(r);
                    let l = &mut bs.levels[lid as usize];
                    if !l.dirty {
                        r += 1;
                        continue;
                    }
                    l.dirty = false;
                    let emptied = l.count == 0;
                    level_changed(bs, id, lid, seq, sink);
                    if !emptied {
                        r += 1;
                    }
                }
            }
        }
        count
    }

    pub(super) fn on_mass_cancel<S: EventSink + ?Sized>(
        &mut self,
        seq: Seq,
        m: &MassCancel,
        sink: &mut S,
    ) {
        let unknown = m.instrument.is_some_and(|i| self.book_index(i).is_none());
        let side = m.side;
        let count = match m.scope {
            MassCancelScope::ByOwner => {
                let owner = m.owner;
                let f = |o: &OrderSlot| o.owner == owner && side.is_none_or(|s| o.side == s);
                self.cancel_where(m.instrument, f, m.reason, seq, sink)
            }
            MassCancelScope::BySession => {
                let session = m.session;
                let f = |o: &OrderSlot| o.session == session && side.is_none_or(|s| o.side == s);
                self.cancel_where(m.instrument, f, m.reason, seq, sink)
            }
        };
        sink.event(&Event {
            seq,
            kind: EventKind::MassCancelDone(MassCancelDone {
                session: m.session,
                owner: m.owner,
                instrument: m.instrument,
                scope: Some(m.scope),
                reason: m.reason,
                rejected: unknown.then_some(RejectReason::UnknownInstrument),
                count,
            }),
        });
    }

    pub(super) fn on_expire_day<S: EventSink + ?Sized>(
        &mut self,
        seq: Seq,
        e: &ExpireDayOrders,
        sink: &mut S,
    ) {
        let unknown = e.instrument.is_some_and(|i| self.book_index(i).is_none());
        let count = self.cancel_where(
            e.instrument,
            |o| o.tif == TimeInForce::Day,
            CancelReason::DayExpired,
            seq,
            sink,
        );
        sink.event(&Event {
            seq,
            kind: EventKind::MassCancelDone(MassCancelDone {
                session: 0,
                owner: 0,
                instrument: e.instrument,
                scope: None,
                reason: CancelReason::DayExpired,
                rejected: unknown.then_some(RejectReason::UnknownInstrument),
                count,
            }),
        });
    }
}

//! Mass cancel (by owner, by session, cancel on disconnect) and Day-order expiry.
//!
//! Rare commands, so they walk the books instead of keeping per-owner and per-session lists:
//! those lists would cost two more links in every order slot (pushing it past one cache line)
//! and two more pointer updates on every add, fill and cancel, to speed up a command that runs
//! a few times a day. The walk is O(resting orders in scope), allocates nothing, and its order
//! is fixed (instrument id ascending, bids then asks, best level first, time priority within a
//! level), which is the order the Cancelled events come out in.

use super::command::{ExpireDayOrders, MassCancel};
use super::event::{EventKind, EventSink, MassCancelDone};
use super::orders::{OrderSlot, NIL};
use super::process::{cancelled_event, level_changed, unlink, Engine};
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
        let range = match instrument {
            Some(i) => match self.book_index(i) {
                Some(b) => b..b + 1,
                None => 0..0,
            },
            None => 0..self.books.len(),
        };
        let mut count = 0;
        for b in range {
            for side in [Side::Buy, Side::Sell] {
                let book = &mut self.books[b];
                let id = book.id;
                let bs = book.side_mut(side);
                // Walk from the best level down. Removing the level at rank r shifts only the
                // levels better than it, which were already visited.
                let mut r = 0;
                while r < bs.len() {
                    let lid = bs.level_at_rank(r);
                    let mut i = bs.levels[lid as usize].head;
                    let mut changed = false;
                    while i != NIL {
                        let o = self.orders.slots[i as usize];
                        if select(&o) {
                            unlink(bs, &mut self.orders.slots, i);
                            self.index.remove(o.id);
                            self.orders.free(i);
                            changed = true;
                            count += 1;
                            sink.event(&super::event::Event {
                                seq,
                                kind: cancelled_event(&o, id, reason),
                            });
                        }
                        i = o.next;
                    }
                    let emptied = bs.levels[lid as usize].count == 0;
                    if changed {
                        level_changed(bs, id, lid, seq, sink);
                    }
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
        let count = if unknown {
            0
        } else {
            match m.scope {
                MassCancelScope::ByOwner => {
                    let owner = m.owner;
                    self.cancel_where(m.instrument, |o| o.owner == owner, m.reason, seq, sink)
                }
                MassCancelScope::BySession => {
                    let session = m.session;
                    self.cancel_where(m.instrument, |o| o.session == session, m.reason, seq, sink)
                }
            }
        };
        sink.event(&super::event::Event {
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
        let count = if unknown {
            0
        } else {
            self.cancel_where(
                e.instrument,
                |o| o.tif == TimeInForce::Day,
                CancelReason::DayExpired,
                seq,
                sink,
            )
        };
        sink.event(&super::event::Event {
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

//! Matching: the sweep of an incoming order through the opposite side in price-time priority,
//! the FOK pre-check, and putting a remainder on the book. Hot path.
//!
//! Trades happen at the resting order's price. Within a sweep, events come level by level:
//! the level's trades and self-trade cancels in queue order, then the level's `BookChange` as
//! the sweep leaves it.

use super::event::{BookChange, Cancelled, Event, EventKind, EventSink, Fill, Trade};
use super::index::RemovalBatch;
use super::levels::BookSide;
use super::orders::{OrderSlot, NIL};
use super::process::Engine;
use super::reason::{BookAction, CancelReason};
use super::types::{InstrumentId, OrderId, OwnerId, Price, Qty, Seq, SessionId, Side, StpMode};

/// The incoming side of a match: a new order, or a replaced order that lost priority.
pub(super) struct Taker {
    pub order_id: OrderId,
    pub session: SessionId,
    pub owner: OwnerId,
    pub side: Side,
    /// Limit price, `None` for a market order.
    pub limit: Option<Price>,
    pub leaves: Qty,
    pub filled: Qty,
    pub stp: StpMode,
}

#[inline]
fn emit<S: EventSink + ?Sized>(sink: &mut S, seq: Seq, kind: EventKind) {
    sink.event(&Event { seq, kind });
}

/// Whether a level at `level_price` is marketable for a taker on `side` with `limit`.
#[inline]
pub(super) fn marketable(side: Side, limit: Option<Price>, level_price: Price) -> bool {
    match (limit, side) {
        (None, _) => true,
        (Some(l), Side::Buy) => level_price <= l,
        (Some(l), Side::Sell) => level_price >= l,
    }
}

/// Takes `slot` out of its level's FIFO and the level's totals. The level may become empty;
/// the caller decides when to report and remove it.
#[inline]
pub(super) fn unlink(side: &mut BookSide, slots: &mut [OrderSlot], slot: u32) {
    let o = slots[slot as usize];
    let lvl = &mut side.levels[o.level as usize];
    if o.prev != NIL {
        slots[o.prev as usize].next = o.next;
    } else {
        lvl.head = o.next;
    }
    if o.next != NIL {
        slots[o.next as usize].prev = o.prev;
    } else {
        lvl.tail = o.prev;
    }
    lvl.qty -= o.leaves;
    lvl.count -= 1;
    side.orders -= 1;
}

/// Reports a level after a change and takes it out of the side when it is empty.
#[inline]
pub(super) fn level_changed<S: EventSink + ?Sized>(
    side: &mut BookSide,
    instrument: InstrumentId,
    level: u32,
    seq: Seq,
    sink: &mut S,
) {
    let l = side.levels[level as usize];
    let action = if l.count == 0 {
        side.remove_level(l.price);
        BookAction::Delete
    } else {
        BookAction::Update
    };
    emit(
        sink,
        seq,
        EventKind::BookChange(BookChange {
            instrument,
            side: side.side,
            action,
            price: l.price,
            qty: l.qty,
            count: l.count,
        }),
    );
}

/// The Cancelled event for a resting order.
#[inline]
pub(super) fn cancelled_event(
    o: &OrderSlot,
    instrument: InstrumentId,
    reason: CancelReason,
) -> EventKind {
    EventKind::Cancelled(Cancelled {
        order_id: o.id,
        instrument,
        session: o.session,
        side: o.side,
        reason,
        price: o.price,
        cancelled_qty: o.leaves,
        cum_qty: o.filled,
    })
}

impl Engine {
    /// Links a filled-in slot at the tail of its price level and reports the level.
    pub(super) fn rest<S: EventSink + ?Sized>(&mut self, slot: u32, seq: Seq, sink: &mut S) {
        let o = self.orders.slots[slot as usize];
        let book = &mut self.books[o.book as usize];
        let instrument = book.id;
        let side = book.side_mut(o.side);
        let Some((lid, created)) = side.get_or_insert(o.price) else {
            // Unreachable: the level was checked before matching, and matching never takes
            // levels from this side. Cancel rather than corrupt the book.
            let ev = cancelled_event(&o, instrument, CancelReason::Unfilled);
            self.index.remove(o.id);
            self.orders.free(slot);
            emit(sink, seq, ev);
            return;
        };
        let lvl = &mut side.levels[lid as usize];
        let tail = lvl.tail;
        if tail != NIL {
            self.orders.slots[tail as usize].next = slot;
        } else {
            lvl.head = slot;
        }
        lvl.tail = slot;
        lvl.qty += o.leaves;
        lvl.count += 1;
        let (qty, count) = (lvl.qty, lvl.count);
        side.orders += 1;
        let s = &mut self.orders.slots[slot as usize];
        s.prev = tail;
        s.next = NIL;
        s.level = lid;
        emit(
            sink,
            seq,
            EventKind::BookChange(BookChange {
                instrument,
                side: o.side,
                action: if created {
                    BookAction::Add
                } else {
                    BookAction::Update
                },
                price: o.price,
                qty,
                count,
            }),
        );
    }

    /// FOK pre-check: whether the taker could trade in full now, under its STP mode, without
    /// touching the book. Same-owner orders are skipped under CancelResting (they would be
    /// cancelled) and end the walk under CancelAggressing/CancelBoth (matching would stop there).
    pub(super) fn fok_fillable(&self, b: usize, t: &Taker) -> bool {
        let opp = self.books[b].side(t.side.opposite());
        let mut need = t.leaves;
        for r in 0..opp.len() {
            let lvl = &opp.levels[opp.level_at_rank(r) as usize];
            if !marketable(t.side, t.limit, lvl.price) {
                return false;
            }
            if t.stp == StpMode::None {
                if lvl.qty >= need {
                    return true;
                }
                need -= lvl.qty;
                continue;
            }
            let mut i = lvl.head;
            while i != NIL {
                let m = &self.orders.slots[i as usize];
                if m.owner == t.owner {
                    if t.stp != StpMode::CancelResting {
                        return false;
                    }
                } else {
                    if m.leaves >= need {
                        return true;
                    }
                    need -= m.leaves;
                }
                i = m.next;
            }
        }
        false
    }

    /// Matches the taker against the opposite side in price-time priority. Trades happen at
    /// the resting price. Returns true when self-trade prevention killed the taker's remainder
    /// (the caller reports it).
    pub(super) fn match_taker<S: EventSink + ?Sized>(
        &mut self,
        b: usize,
        t: &mut Taker,
        seq: Seq,
        sink: &mut S,
    ) -> bool {
        let mut gone = RemovalBatch::new();
        let killed = self.sweep(b, t, seq, sink, &mut gone);
        gone.flush(&mut self.index);
        killed
    }

    /// The body of [`Engine::match_taker`]; ids of makers that leave the book are queued in
    /// `gone` instead of being removed from the index one by one.
    #[inline]
    fn sweep<S: EventSink + ?Sized>(
        &mut self,
        b: usize,
        t: &mut Taker,
        seq: Seq,
        sink: &mut S,
        gone: &mut RemovalBatch,
    ) -> bool {
        let book = &mut self.books[b];
        let instrument = book.id;
        let slots = &mut self.orders;
        let index = &mut self.index;
        let stp_on = t.stp != StpMode::None;
        while t.leaves > 0 {
            let opp = match t.side {
                Side::Buy => &mut book.asks,
                Side::Sell => &mut book.bids,
            };
            let Some(lid) = opp.best() else { break };
            let lprice = opp.levels[lid as usize].price;
            if !marketable(t.side, t.limit, lprice) {
                break;
            }
            let mut killed = false;
            let mut changed = false;
            while t.leaves > 0 {
                let opp = match t.side {
                    Side::Buy => &mut book.asks,
                    Side::Sell => &mut book.bids,
                };
                let head = opp.levels[lid as usize].head;
                if head == NIL {
                    break;
                }
                let m = slots.slots[head as usize];
                if m.next != NIL {
                    // The queue is a linked list: start the next order's miss now.
                    super::storage::prefetch(&slots.slots[m.next as usize]);
                }
                if stp_on && m.owner == t.owner {
                    if t.stp != StpMode::CancelAggressing {
                        unlink(opp, &mut slots.slots, head);
                        gone.push(index, m.id);
                        slots.free(head);
                        changed = true;
                        emit(
                            sink,
                            seq,
                            cancelled_event(&m, instrument, CancelReason::SelfTrade),
                        );
                    }
                    if t.stp != StpMode::CancelResting {
                        killed = true;
                        break;
                    }
                    continue;
                }
                let q = t.leaves.min(m.leaves);
                t.leaves -= q;
                t.filled += q;
                let lvl = &mut opp.levels[lid as usize];
                lvl.qty -= q;
                let maker_leaves = m.leaves - q;
                let maker_cum = m.filled + q;
                if maker_leaves == 0 {
                    // The head is done: pop it.
                    lvl.head = m.next;
                    if m.next != NIL {
                        slots.slots[m.next as usize].prev = NIL;
                    } else {
                        lvl.tail = NIL;
                    }
                    lvl.count -= 1;
                    opp.orders -= 1;
                    gone.push(index, m.id);
                    slots.free(head);
                } else {
                    let s = &mut slots.slots[head as usize];
                    s.leaves = maker_leaves;
                    s.filled = maker_cum;
                }
                changed = true;
                book.last_trade = Some(lprice);
                let exec_id = book.next_exec_id();
                emit(
                    sink,
                    seq,
                    EventKind::Trade(Trade {
                        exec_id,
                        instrument,
                        price: lprice,
                        qty: q,
                        aggressor_side: t.side,
                        maker: Fill {
                            order_id: m.id,
                            session: m.session,
                            leaves: maker_leaves,
                            cum_qty: maker_cum,
                        },
                        taker: Fill {
                            order_id: t.order_id,
                            session: t.session,
                            leaves: t.leaves,
                            cum_qty: t.filled,
                        },
                    }),
                );
            }
            let opp = match t.side {
                Side::Buy => &mut book.asks,
                Side::Sell => &mut book.bids,
            };
            if changed {
                let l = opp.levels[lid as usize];
                let action = if l.count == 0 {
                    // Matching only ever empties the best level: pop it from the end.
                    opp.pop_best();
                    BookAction::Delete
                } else {
                    BookAction::Update
                };
                emit(
                    sink,
                    seq,
                    EventKind::BookChange(BookChange {
                        instrument,
                        side: opp.side,
                        action,
                        price: lprice,
                        qty: l.qty,
                        count: l.count,
                    }),
                );
            }
            if killed {
                return true;
            }
        }
        false
    }
}

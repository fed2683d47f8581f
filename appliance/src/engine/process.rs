//! The engine: sequencing, validation and the per-command handlers. Hot path.
//!
//! Every handler emits its events in the order `docs/engine.md` fixes: the answer to the
//! request first (Accepted / Rejected / Replaced / Cancelled / CancelRejected), then the trades
//! with the book change of each level the matching left, then the fate of the remainder (the
//! resting level's Add/Update, or a Cancelled with its reason).

use super::book::Book;
use super::command::{Cancel, Command, NewOrder, Replace};
use super::config::{ConfigError, EngineConfig, MAX_INSTRUMENT_ID};
use super::event::{
    Accepted, BookChange, CancelRejected, Cancelled, Event, EventKind, EventSink, Fill, Rejected,
    Replaced, Trade,
};
use super::index::{OrderIndex, RemovalBatch};
use super::levels::BookSide;
use super::orders::{Arena, OrderSlot, NIL};
use super::reason::{BookAction, CancelKind, CancelReason, RejectReason};
use super::types::{
    InstrumentId, OrdType, OrderId, OwnerId, Price, Qty, Seq, SessionId, Side, StpMode, TimeInForce,
};

/// The matching engine for a shard of instruments. Sans-IO: [`Engine::process`] takes one
/// command and reports its events to a sink; no threads, clocks or sockets inside.
pub struct Engine {
    pub(super) seq: Seq,
    /// Books in ascending instrument id order (the order mass cancels and dumps walk).
    pub(super) books: Box<[Book]>,
    /// Instrument id -> index into `books`, `NIL` when this engine does not own it.
    pub(super) book_of: Box<[u32]>,
    pub(super) orders: Arena,
    pub(super) index: OrderIndex,
    pub(super) config: EngineConfig,
}

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
    /// Builds an engine and reserves all of its memory: the order arena and id index sized by
    /// `capacity.max_orders`, and `capacity.max_levels_per_side` levels for each book side.
    /// Nothing is allocated after this returns.
    pub fn new(config: EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        let mut cfgs = config.instruments.clone();
        cfgs.sort_by_key(|i| i.id);
        let table_len = cfgs.last().map_or(0, |i| i.id as usize + 1);
        debug_assert!(table_len <= MAX_INSTRUMENT_ID as usize + 1);
        let mut book_of = vec![NIL; table_len].into_boxed_slice();
        let mut books = Vec::with_capacity(cfgs.len());
        for (n, c) in cfgs.iter().enumerate() {
            book_of[c.id as usize] = n as u32;
            books.push(Book::new(c, config.capacity));
        }
        Ok(Engine {
            seq: 0,
            books: books.into_boxed_slice(),
            book_of,
            orders: Arena::new(config.capacity.max_orders),
            index: OrderIndex::new(config.capacity.max_orders),
            config,
        })
    }

    /// Sequences and executes one command, reporting its events to `sink` in order.
    /// Returns the sequence number given to the command (1 for the first).
    #[inline]
    pub fn process<S: EventSink + ?Sized>(&mut self, cmd: &Command, sink: &mut S) -> Seq {
        self.seq += 1;
        let seq = self.seq;
        match cmd {
            Command::New(o) => self.on_new(seq, o, sink),
            Command::Cancel(c) => self.on_cancel(seq, c, sink),
            Command::Replace(r) => self.on_replace(seq, r, sink),
            Command::MassCancel(m) => self.on_mass_cancel(seq, m, sink),
            Command::ExpireDayOrders(e) => self.on_expire_day(seq, e, sink),
        }
        seq
    }

    /// A hint, not a command: starts loading the memory `cmd` will touch first (the id-index
    /// bucket of the order a cancel or replace names), without changing any state.
    ///
    /// A runtime that has more than one command waiting in its ring calls this for a command
    /// two places ahead (and [`Engine::prefetch_order`] for the next one) before processing
    /// the current one, so those commands' cache misses overlap with this one's work. Output
    /// is unaffected: calling it or not, anywhere, never changes what `process` does.
    #[inline]
    pub fn prefetch(&self, cmd: &Command) {
        match cmd {
            Command::Cancel(c) => self.index.prefetch(c.order_id),
            Command::Replace(r) => self.index.prefetch(r.order_id),
            _ => {}
        }
    }

    /// Second stage of [`Engine::prefetch`]: looks up the order a cancel or replace names (its
    /// bucket should be in cache from an earlier `prefetch`) and starts loading its slot.
    /// Changes no state.
    #[inline]
    pub fn prefetch_order(&self, cmd: &Command) {
        let id = match cmd {
            Command::Cancel(c) => c.order_id,
            Command::Replace(r) => r.order_id,
            _ => return,
        };
        if let Some(slot) = self.index.get(id) {
            super::storage::prefetch(&self.orders.slots[slot as usize]);
        }
    }

    /// Sequence number of the last command processed (0 before the first).
    #[inline]
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The configuration the engine was built from.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    #[inline]
    pub(super) fn book_index(&self, instrument: InstrumentId) -> Option<usize> {
        match self.book_of.get(instrument as usize) {
            Some(&b) if b != NIL => Some(b as usize),
            _ => None,
        }
    }

    /// Risk and sanity checks for a new order, in the documented precedence.
    #[inline]
    fn check_new(&self, b: usize, o: &NewOrder) -> Result<(), RejectReason> {
        let book = &self.books[b];
        if self.index.get(o.order_id).is_some() {
            return Err(RejectReason::DuplicateOrderId);
        }
        if o.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        // Division is the slowest instruction on this path; unit lots and ticks skip it.
        if book.lot != 1 && o.qty % book.lot != 0 {
            return Err(RejectReason::OffLot);
        }
        if o.qty > book.max_qty {
            return Err(RejectReason::QuantityOverMax);
        }
        let limit = o.ord_type == OrdType::Limit;
        if limit {
            if o.price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            if book.tick != 1 && o.price % book.tick != 0 {
                return Err(RejectReason::OffTick);
            }
            if !book.in_band(o.price) {
                return Err(RejectReason::OutsidePriceBand);
            }
        }
        // Market orders are valued at the opposite best (where they start trading); with an
        // empty opposite side they cannot trade at all.
        let notional_price = if limit {
            Some(o.price)
        } else {
            book.opposite_best(o.side)
        };
        if let Some(p) = notional_price {
            if (p as u128) * (o.qty as u128) > book.max_notional {
                return Err(RejectReason::NotionalOverMax);
            }
        }
        let may_rest = limit && !o.tif.is_immediate();
        if o.post_only {
            if !may_rest {
                return Err(RejectReason::PostOnlyNotResting);
            }
            if book.crosses(o.side, o.price) {
                return Err(RejectReason::PostOnlyWouldTake);
            }
        }
        if may_rest {
            if !self.orders.has_free() {
                return Err(RejectReason::OrderCapacityExhausted);
            }
            let own = book.side(o.side);
            if !own.has_free_level() && own.level_id(o.price).is_none() {
                return Err(RejectReason::LevelCapacityExhausted);
            }
        }
        Ok(())
    }

    fn on_new<S: EventSink + ?Sized>(&mut self, seq: Seq, o: &NewOrder, sink: &mut S) {
        let checked = match self.book_index(o.instrument) {
            None => Err(RejectReason::UnknownInstrument),
            Some(b) => self.check_new(b, o).map(|()| b),
        };
        let b = match checked {
            Ok(b) => b,
            Err(reason) => {
                emit(
                    sink,
                    seq,
                    EventKind::Rejected(Rejected {
                        order_id: o.order_id,
                        instrument: o.instrument,
                        session: o.session,
                        side: o.side,
                        ord_type: o.ord_type,
                        reason,
                        price: o.price,
                        qty: o.qty,
                    }),
                );
                return;
            }
        };
        let market = o.ord_type == OrdType::Market;
        let price = if market { 0 } else { o.price };
        emit(
            sink,
            seq,
            EventKind::Accepted(Accepted {
                order_id: o.order_id,
                instrument: o.instrument,
                session: o.session,
                owner: o.owner,
                side: o.side,
                ord_type: o.ord_type,
                tif: o.tif,
                post_only: o.post_only,
                price,
                qty: o.qty,
            }),
        );
        let mut t = Taker {
            order_id: o.order_id,
            session: o.session,
            owner: o.owner,
            side: o.side,
            limit: if market { None } else { Some(o.price) },
            leaves: o.qty,
            filled: 0,
            stp: o.stp,
        };
        let remainder = |t: &Taker, reason| {
            EventKind::Cancelled(Cancelled {
                order_id: t.order_id,
                instrument: o.instrument,
                session: t.session,
                side: t.side,
                reason,
                price,
                cancelled_qty: t.leaves,
                cum_qty: t.filled,
            })
        };
        if o.tif == TimeInForce::Fok && !self.fok_fillable(b, &t) {
            emit(sink, seq, remainder(&t, CancelReason::FokUnfillable));
            return;
        }
        // Most orders do not cross: test that inline before calling the matcher.
        let killed =
            self.books[b].marketable_now(t.side, t.limit) && self.match_taker(b, &mut t, seq, sink);
        if t.leaves == 0 {
            return;
        }
        if killed {
            emit(sink, seq, remainder(&t, CancelReason::SelfTrade));
            return;
        }
        if market || o.tif.is_immediate() {
            emit(sink, seq, remainder(&t, CancelReason::Unfilled));
            return;
        }
        let Some(slot) = self.orders.alloc() else {
            // Unreachable: check_new reserved a slot and matching only frees slots.
            emit(sink, seq, remainder(&t, CancelReason::Unfilled));
            return;
        };
        self.orders.slots[slot as usize] = OrderSlot {
            id: o.order_id,
            price: o.price,
            leaves: t.leaves,
            filled: t.filled,
            prev: NIL,
            next: NIL,
            level: NIL,
            book: b as u32,
            session: o.session,
            owner: o.owner,
            side: o.side,
            tif: o.tif,
            stp: o.stp,
            post_only: o.post_only,
        };
        self.index.insert(o.order_id, slot);
        self.rest(slot, seq, sink);
    }

    /// Links a filled-in slot at the tail of its price level and reports the level.
    fn rest<S: EventSink + ?Sized>(&mut self, slot: u32, seq: Seq, sink: &mut S) {
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
    fn fok_fillable(&self, b: usize, t: &Taker) -> bool {
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

    fn cancel_reject<S: EventSink + ?Sized>(
        seq: Seq,
        order_id: OrderId,
        session: SessionId,
        kind: CancelKind,
        reason: RejectReason,
        sink: &mut S,
    ) {
        emit(
            sink,
            seq,
            EventKind::CancelRejected(CancelRejected {
                order_id,
                session,
                kind,
                reason,
            }),
        );
    }

    /// Looks up a live order for a cancel or replace from `session`.
    #[inline]
    fn owned_slot(&self, order_id: OrderId, session: SessionId) -> Result<u32, RejectReason> {
        let slot = self.index.get(order_id).ok_or(RejectReason::UnknownOrder)?;
        if self.orders.slots[slot as usize].session != session {
            return Err(RejectReason::NotOrderOwner);
        }
        Ok(slot)
    }

    /// Removes a resting order with `reason`: Cancelled, then its level's change.
    fn cancel_resting<S: EventSink + ?Sized>(
        &mut self,
        slot: u32,
        reason: CancelReason,
        seq: Seq,
        sink: &mut S,
    ) {
        let o = self.orders.slots[slot as usize];
        let book = &mut self.books[o.book as usize];
        let instrument = book.id;
        let side = book.side_mut(o.side);
        unlink(side, &mut self.orders.slots, slot);
        emit(sink, seq, cancelled_event(&o, instrument, reason));
        level_changed(side, instrument, o.level, seq, sink);
        self.index.remove(o.id);
        self.orders.free(slot);
    }

    fn on_cancel<S: EventSink + ?Sized>(&mut self, seq: Seq, c: &Cancel, sink: &mut S) {
        match self.owned_slot(c.order_id, c.session) {
            Ok(slot) => self.cancel_resting(slot, CancelReason::User, seq, sink),
            Err(reason) => {
                Self::cancel_reject(seq, c.order_id, c.session, CancelKind::Cancel, reason, sink)
            }
        }
    }

    /// Validation of a replace against the order's instrument, in the documented precedence.
    fn check_replace(
        &self,
        o: &OrderSlot,
        r: &Replace,
        new_price: Price,
    ) -> Result<(), RejectReason> {
        let book = &self.books[o.book as usize];
        if r.qty == 0 {
            return Err(RejectReason::ZeroQuantity);
        }
        if r.qty % book.lot != 0 {
            return Err(RejectReason::OffLot);
        }
        if r.qty > book.max_qty {
            return Err(RejectReason::QuantityOverMax);
        }
        if new_price != o.price {
            if new_price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            if new_price % book.tick != 0 {
                return Err(RejectReason::OffTick);
            }
            if !book.in_band(new_price) {
                return Err(RejectReason::OutsidePriceBand);
            }
        }
        if (new_price as u128) * (r.qty as u128) > book.max_notional {
            return Err(RejectReason::NotionalOverMax);
        }
        if new_price != o.price {
            if o.post_only && book.crosses(o.side, new_price) {
                return Err(RejectReason::PostOnlyWouldTake);
            }
            let own = book.side(o.side);
            if !own.has_free_level() && own.level_id(new_price).is_none() {
                return Err(RejectReason::LevelCapacityExhausted);
            }
        }
        Ok(())
    }

    fn on_replace<S: EventSink + ?Sized>(&mut self, seq: Seq, r: &Replace, sink: &mut S) {
        let slot = match self.owned_slot(r.order_id, r.session) {
            Ok(s) => s,
            Err(reason) => {
                return Self::cancel_reject(
                    seq,
                    r.order_id,
                    r.session,
                    CancelKind::Replace,
                    reason,
                    sink,
                )
            }
        };
        let o = self.orders.slots[slot as usize];
        let new_price = r.price.unwrap_or(o.price);
        if let Err(reason) = self.check_replace(&o, r, new_price) {
            return Self::cancel_reject(
                seq,
                r.order_id,
                r.session,
                CancelKind::Replace,
                reason,
                sink,
            );
        }
        if r.qty <= o.filled {
            // Nothing left to work: the order is done, report it as cancelled.
            return self.cancel_resting(slot, CancelReason::ReplacedBelowFilled, seq, sink);
        }
        let new_leaves = r.qty - o.filled;
        let same_price = new_price == o.price;
        let keep = same_price && new_leaves <= o.leaves;
        let b = o.book as usize;
        let instrument = self.books[b].id;
        emit(
            sink,
            seq,
            EventKind::Replaced(Replaced {
                order_id: o.id,
                instrument,
                session: o.session,
                side: o.side,
                priority_kept: keep,
                price: new_price,
                qty: r.qty,
                leaves: new_leaves,
                cum_qty: o.filled,
            }),
        );
        let side = self.books[b].side_mut(o.side);
        if same_price {
            // Same level: shrink in place (keeps priority) or move to the tail (loses it).
            if !keep {
                unlink(side, &mut self.orders.slots, slot);
                let lvl = &mut side.levels[o.level as usize];
                let tail = lvl.tail;
                if tail != NIL {
                    self.orders.slots[tail as usize].next = slot;
                } else {
                    lvl.head = slot;
                }
                lvl.tail = slot;
                lvl.count += 1;
                side.orders += 1;
                let s = &mut self.orders.slots[slot as usize];
                s.prev = tail;
                s.next = NIL;
            } else {
                side.levels[o.level as usize].qty -= o.leaves;
            }
            side.levels[o.level as usize].qty += new_leaves;
            self.orders.slots[slot as usize].leaves = new_leaves;
            if new_leaves != o.leaves || !keep {
                level_changed(side, instrument, o.level, seq, sink);
            }
            return;
        }
        // New price: leave the old level, trade if the new price crosses, rest the remainder.
        unlink(side, &mut self.orders.slots, slot);
        level_changed(side, instrument, o.level, seq, sink);
        let mut t = Taker {
            order_id: o.id,
            session: o.session,
            owner: o.owner,
            side: o.side,
            limit: Some(new_price),
            leaves: new_leaves,
            filled: o.filled,
            stp: o.stp,
        };
        let killed = self.match_taker(b, &mut t, seq, sink);
        let s = &mut self.orders.slots[slot as usize];
        s.price = new_price;
        s.leaves = t.leaves;
        s.filled = t.filled;
        s.prev = NIL;
        s.next = NIL;
        if t.leaves == 0 {
            self.index.remove(o.id);
            self.orders.free(slot);
        } else if killed {
            let ev = cancelled_event(s, instrument, CancelReason::SelfTrade);
            self.index.remove(o.id);
            self.orders.free(slot);
            emit(sink, seq, ev);
        } else {
            self.rest(slot, seq, sink);
        }
    }
}

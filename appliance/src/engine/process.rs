//! The engine: sequencing and the per-command handlers (new order, cancel, replace). Hot path.
//! Validation lives in `validate`, the sweep and resting in `matching`.
//!
//! Every handler emits its events in the order `docs/engine.md` fixes: the answer to the
//! request first (Accepted / Rejected / Replaced / Cancelled / CancelRejected), then the trades
//! with the book change of each level the matching left, then the fate of the remainder (the
//! resting level's Add/Update, or a Cancelled with its reason).

use super::book::Book;
use super::command::{Cancel, Command, NewOrder, Replace};
use super::config::{ConfigError, EngineConfig, MAX_INSTRUMENT_ID};
use super::event::{
    Accepted, CancelRejected, Cancelled, Event, EventKind, EventSink, Rejected, Replaced,
};
use super::index::OrderIndex;
use super::matching::{cancelled_event, level_changed, unlink, Taker};
use super::orders::{Arena, OrderSlot, NIL};
use super::reason::{CancelKind, CancelReason, RejectReason};
use super::types::{InstrumentId, OrdType, OrderId, Seq, SessionId, TimeInForce};

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

#[inline]
fn emit<S: EventSink + ?Sized>(sink: &mut S, seq: Seq, kind: EventKind) {
    sink.event(&Event { seq, kind });
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

//! Events: what the engine tells the gateways, market data and the journal.
//!
//! Every event carries the sequence number of the command that caused it and the session(s) to
//! route it to. Events are `Copy` and at most 128 bytes so they cross `rtrb` rings by value; the
//! fixed 96-byte little-endian encoding ([`Event::to_bytes`]) is what the determinism test
//! compares and what a journal of outputs would store.

use super::reason::{BookAction, CancelKind, CancelReason, MassCancelScope, RejectReason};
use super::types::{
    ExecId, InstrumentId, OrdType, OrderId, OwnerId, Price, Qty, Seq, SessionId, Side, TimeInForce,
};

/// Size of one encoded event record.
pub const EVENT_BYTES: usize = 96;

/// One output of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Sequence number of the command that caused this event.
    pub seq: Seq,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of event, in the order `docs/engine.md` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A new order passed validation (ExecType=New).
    Accepted(Accepted),
    /// A new order was refused (ExecType=Rejected).
    Rejected(Rejected),
    /// Two orders traded; routed to both sessions.
    Trade(Trade),
    /// An order, or an accepted order's remainder, was cancelled.
    Cancelled(Cancelled),
    /// A replace was applied.
    Replaced(Replaced),
    /// A cancel or replace was refused.
    CancelRejected(CancelRejected),
    /// A mass cancel (or day expiry) finished; one per command.
    MassCancelDone(MassCancelDone),
    /// A price level changed (market data).
    BookChange(BookChange),
}

/// A new order was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Order id.
    pub order_id: OrderId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Session to route to.
    pub session: SessionId,
    /// Owner.
    pub owner: OwnerId,
    /// Side.
    pub side: Side,
    /// Order type.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Post-only flag.
    pub post_only: bool,
    /// Limit price (0 for market orders).
    pub price: Price,
    /// Order quantity (all of it is leaves at this point).
    pub qty: Qty,
}

/// A new order was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Order id.
    pub order_id: OrderId,
    /// Instrument as sent.
    pub instrument: InstrumentId,
    /// Session to route to.
    pub session: SessionId,
    /// Side.
    pub side: Side,
    /// Order type.
    pub ord_type: OrdType,
    /// Why.
    pub reason: RejectReason,
    /// Price as sent.
    pub price: Price,
    /// Quantity as sent.
    pub qty: Qty,
}

/// One side of a trade, as its ExecutionReport needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Order id.
    pub order_id: OrderId,
    /// Session to route this side's report to.
    pub session: SessionId,
    /// Quantity still open after this trade.
    pub leaves: Qty,
    /// Quantity filled so far, this trade included.
    pub cum_qty: Qty,
}

/// A trade between a resting (maker) and an incoming (taker) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// Deterministic execution id, unique across engines (see `docs/engine.md`).
    pub exec_id: ExecId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Trade price: always the resting order's price.
    pub price: Price,
    /// Trade quantity.
    pub qty: Qty,
    /// Side of the taker.
    pub aggressor_side: Side,
    /// Resting order.
    pub maker: Fill,
    /// Incoming order.
    pub taker: Fill,
}

/// An order was cancelled (wholly or its remainder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled {
    /// Order id.
    pub order_id: OrderId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Session to route to.
    pub session: SessionId,
    /// Side.
    pub side: Side,
    /// Why.
    pub reason: CancelReason,
    /// Order price (0 for market orders).
    pub price: Price,
    /// Quantity taken off (the leaves before the cancel).
    pub cancelled_qty: Qty,
    /// Quantity filled before the cancel.
    pub cum_qty: Qty,
}

/// A replace was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// Order id.
    pub order_id: OrderId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Session to route to.
    pub session: SessionId,
    /// Side.
    pub side: Side,
    /// True when the order kept its place in the queue (same price, quantity not increased).
    pub priority_kept: bool,
    /// New price.
    pub price: Price,
    /// New total quantity.
    pub qty: Qty,
    /// New open quantity (before any trade the replace itself causes).
    pub leaves: Qty,
    /// Quantity filled so far.
    pub cum_qty: Qty,
}

/// A cancel or replace was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelRejected {
    /// Order id named by the request.
    pub order_id: OrderId,
    /// Session that asked.
    pub session: SessionId,
    /// Cancel or replace.
    pub kind: CancelKind,
    /// Why.
    pub reason: RejectReason,
}

/// A mass cancel or day expiry finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassCancelDone {
    /// Session that asked (0 for day expiry).
    pub session: SessionId,
    /// Owner named by the request.
    pub owner: OwnerId,
    /// Instrument named by the request, if any.
    pub instrument: Option<InstrumentId>,
    /// Scope named by the request (`None` for day expiry).
    pub scope: Option<MassCancelScope>,
    /// The reason every cancelled order carried.
    pub reason: CancelReason,
    /// Set when the request was refused (nothing cancelled).
    pub rejected: Option<RejectReason>,
    /// Orders cancelled by this engine (FIX TotalAffectedOrders).
    pub count: u32,
}

/// A price level changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookChange {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side of the level.
    pub side: Side,
    /// Add, update or delete.
    pub action: BookAction,
    /// Level price.
    pub price: Price,
    /// Total open quantity at the level after the change (0 on delete).
    pub qty: Qty,
    /// Orders at the level after the change (0 on delete).
    pub count: u32,
}

/// Receives the engine's events. The runtime implements it over rings; tests use `Vec<Event>`.
pub trait EventSink {
    /// Called once per event, in order.
    fn event(&mut self, ev: &Event);
}

impl EventSink for Vec<Event> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        self.push(*ev);
    }
}

/// Writes fields at fixed offsets of an event record.
struct Rec([u8; EVENT_BYTES]);

impl Rec {
    fn u8(&mut self, at: usize, v: u8) -> &mut Self {
        self.0[at] = v;
        self
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
}

impl Event {
    /// Encodes the event as a fixed 96-byte little-endian record. Byte 0 is the kind
    /// (1 Accepted ... 8 BookChange), bytes 8..16 the sequence number; the rest is per kind
    /// (documented in `docs/engine.md`). Unused bytes are zero.
    pub fn to_bytes(&self) -> [u8; EVENT_BYTES] {
        let mut r = Rec([0u8; EVENT_BYTES]);
        r.u64(8, self.seq);
        match self.kind {
            EventKind::Accepted(a) => {
                r.u8(0, 1)
                    .u8(1, a.side as u8)
                    .u8(2, a.ord_type as u8)
                    .u8(3, a.tif as u8);
                r.u8(4, a.post_only as u8)
                    .u64(16, a.order_id)
                    .u64(24, a.price as u64);
                r.u64(32, a.qty)
                    .u32(40, a.instrument)
                    .u32(44, a.session)
                    .u32(48, a.owner);
            }
            EventKind::Rejected(j) => {
                r.u8(0, 2)
                    .u8(1, j.side as u8)
                    .u8(2, j.ord_type as u8)
                    .u8(3, j.reason as u8);
                r.u64(16, j.order_id).u64(24, j.price as u64).u64(32, j.qty);
                r.u32(40, j.instrument).u32(44, j.session);
            }
            EventKind::Trade(t) => {
                r.u8(0, 3)
                    .u8(1, t.aggressor_side as u8)
                    .u32(4, t.instrument);
                r.u64(16, t.exec_id).u64(24, t.price as u64).u64(32, t.qty);
                r.u64(40, t.maker.order_id)
                    .u64(48, t.maker.leaves)
                    .u64(56, t.maker.cum_qty);
                r.u64(64, t.taker.order_id)
                    .u64(72, t.taker.leaves)
                    .u64(80, t.taker.cum_qty);
                r.u32(88, t.maker.session).u32(92, t.taker.session);
            }
            EventKind::Cancelled(c) => {
                r.u8(0, 4).u8(1, c.side as u8).u8(3, c.reason as u8);
                r.u64(16, c.order_id)
                    .u64(24, c.price as u64)
                    .u64(32, c.cancelled_qty);
                r.u64(48, c.cum_qty)
                    .u32(40, c.instrument)
                    .u32(44, c.session);
            }
            EventKind::Replaced(p) => {
                r.u8(0, 5).u8(1, p.side as u8).u8(4, p.priority_kept as u8);
                r.u64(16, p.order_id).u64(24, p.price as u64).u64(32, p.qty);
                r.u32(40, p.instrument)
                    .u32(44, p.session)
                    .u64(48, p.leaves)
                    .u64(56, p.cum_qty);
            }
            EventKind::CancelRejected(x) => {
                r.u8(0, 6).u8(2, x.kind as u8).u8(3, x.reason as u8);
                r.u64(16, x.order_id).u32(44, x.session);
            }
            EventKind::MassCancelDone(m) => {
                r.u8(0, 7).u8(1, m.instrument.is_some() as u8);
                r.u8(2, m.scope.map_or(0, |s| s as u8))
                    .u8(3, m.reason as u8);
                r.u8(5, m.rejected.map_or(0, |x| x as u8));
                r.u32(40, m.instrument.unwrap_or(0))
                    .u32(44, m.session)
                    .u32(48, m.owner);
                r.u32(52, m.count);
            }
            EventKind::BookChange(b) => {
                r.u8(0, 8).u8(1, b.side as u8).u8(2, b.action as u8);
                r.u64(24, b.price as u64)
                    .u64(32, b.qty)
                    .u32(40, b.instrument)
                    .u32(48, b.count);
            }
        }
        r.0
    }

    /// The sessions this event must reach (up to two: both sides of a trade). `None` entries
    /// are market-data-only events (book changes).
    pub fn sessions(&self) -> [Option<SessionId>; 2] {
        match self.kind {
            EventKind::Accepted(a) => [Some(a.session), None],
            EventKind::Rejected(j) => [Some(j.session), None],
            EventKind::Trade(t) => [Some(t.maker.session), Some(t.taker.session)],
            EventKind::Cancelled(c) => [Some(c.session), None],
            EventKind::Replaced(p) => [Some(p.session), None],
            EventKind::CancelRejected(x) => [Some(x.session), None],
            EventKind::MassCancelDone(m) => [Some(m.session), None],
            EventKind::BookChange(_) => [None, None],
        }
    }
}

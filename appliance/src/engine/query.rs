//! Read-only queries for tests, telemetry and replay checks. Cold path except the O(1) ones.

use super::orders::NIL;
use super::process::Engine;
use super::types::{
    InstrumentId, OrderId, OwnerId, Price, Qty, Seq, SessionId, Side, StpMode, TimeInForce,
};

/// Aggregate of one price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelInfo {
    /// Level price.
    pub price: Price,
    /// Total open quantity.
    pub qty: Qty,
    /// Number of orders.
    pub count: u32,
}

/// A live order as the engine holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderInfo {
    /// Order id.
    pub order_id: OrderId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Session.
    pub session: SessionId,
    /// Owner.
    pub owner: OwnerId,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Open quantity.
    pub leaves: Qty,
    /// Filled quantity.
    pub filled: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// STP mode.
    pub stp: StpMode,
    /// Post-only flag.
    pub post_only: bool,
}

/// One level of a dump, orders in time priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelDump {
    /// Aggregates as the level records them.
    pub info: LevelInfo,
    /// Orders, first in the queue first.
    pub orders: Vec<OrderInfo>,
}

/// Full state of one book, best levels first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookDump {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Last trade price.
    pub last_trade: Option<Price>,
    /// Bid levels, highest first.
    pub bids: Vec<LevelDump>,
    /// Ask levels, lowest first.
    pub asks: Vec<LevelDump>,
}

/// Occupancy of the reserved memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Live orders.
    pub orders: u32,
    /// Order capacity.
    pub max_orders: u32,
}

/// XXH3 (deterministic across platforms and runs: no random seed) over a stream of `u64`s, fed to the hasher 64 words at a time (cold path: the state
/// hash walks every resting order).
struct Digest {
    h: xxhash_rust::xxh3::Xxh3Default,
    buf: [u8; 512],
    len: usize,
}

impl Digest {
    fn new() -> Self {
        Self {
            h: xxhash_rust::xxh3::Xxh3Default::new(),
            buf: [0; 512],
            len: 0,
        }
    }

    #[inline]
    fn u64(&mut self, v: u64) {
        self.buf[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
        if self.len == self.buf.len() {
            self.h.update(&self.buf);
            self.len = 0;
        }
    }

    fn finish(mut self) -> u64 {
        self.h.update(&self.buf[..self.len]);
        self.h.digest()
    }
}

impl Engine {
    fn level_info(&self, instrument: InstrumentId, side: Side, rank: usize) -> Option<LevelInfo> {
        let b = self.book_index(instrument)?;
        let s = self.books[b].side(side);
        if rank >= s.len() {
            return None;
        }
        let l = &s.levels[s.level_at_rank(rank) as usize];
        Some(LevelInfo {
            price: l.price,
            qty: l.qty,
            count: l.count,
        })
    }

    /// Best bid level.
    pub fn best_bid(&self, instrument: InstrumentId) -> Option<LevelInfo> {
        self.level_info(instrument, Side::Buy, 0)
    }

    /// Best ask level.
    pub fn best_ask(&self, instrument: InstrumentId) -> Option<LevelInfo> {
        self.level_info(instrument, Side::Sell, 0)
    }

    /// The level at `price` on `side`, if any orders rest there.
    pub fn depth_at(
        &self,
        instrument: InstrumentId,
        side: Side,
        price: Price,
    ) -> Option<LevelInfo> {
        let b = self.book_index(instrument)?;
        let s = self.books[b].side(side);
        let l = &s.levels[s.level_id(price)? as usize];
        Some(LevelInfo {
            price: l.price,
            qty: l.qty,
            count: l.count,
        })
    }

    /// Number of price levels on a side.
    pub fn level_count(&self, instrument: InstrumentId, side: Side) -> usize {
        self.book_index(instrument)
            .map_or(0, |b| self.books[b].side(side).len())
    }

    /// Number of resting orders on a side.
    pub fn resting_orders(&self, instrument: InstrumentId, side: Side) -> u32 {
        self.book_index(instrument)
            .map_or(0, |b| self.books[b].side(side).orders)
    }

    /// Last trade price of an instrument.
    pub fn last_trade(&self, instrument: InstrumentId) -> Option<Price> {
        self.book_index(instrument)
            .and_then(|b| self.books[b].last_trade)
    }

    /// A live (resting) order.
    pub fn order(&self, order_id: OrderId) -> Option<OrderInfo> {
        let slot = self.index.get(order_id)?;
        Some(self.order_info(slot))
    }

    fn order_info(&self, slot: u32) -> OrderInfo {
        let o = &self.orders.slots[slot as usize];
        OrderInfo {
            order_id: o.id,
            instrument: self.books[o.book as usize].id,
            session: o.session,
            owner: o.owner,
            side: o.side,
            price: o.price,
            leaves: o.leaves,
            filled: o.filled,
            tif: o.tif,
            stp: o.stp,
            post_only: o.post_only,
        }
    }

    /// Reserved memory in use.
    pub fn usage(&self) -> Usage {
        Usage {
            orders: self.orders.used(),
            max_orders: self.orders.capacity(),
        }
    }

    /// The instruments this engine owns, ascending.
    pub fn instruments(&self) -> impl Iterator<Item = InstrumentId> + '_ {
        self.books.iter().map(|b| b.id)
    }

    /// Full, deterministic dump of one book (`None` if not owned).
    pub fn dump_book(&self, instrument: InstrumentId) -> Option<BookDump> {
        let b = self.book_index(instrument)?;
        let book = &self.books[b];
        let side_dump = |side: Side| {
            let s = book.side(side);
            (0..s.len())
                .map(|r| {
                    let l = &s.levels[s.level_at_rank(r) as usize];
                    let mut orders = Vec::with_capacity(l.count as usize);
                    let mut i = l.head;
                    while i != NIL {
                        orders.push(self.order_info(i));
                        i = self.orders.slots[i as usize].next;
                    }
                    LevelDump {
                        info: LevelInfo {
                            price: l.price,
                            qty: l.qty,
                            count: l.count,
                        },
                        orders,
                    }
                })
                .collect()
        };
        Some(BookDump {
            instrument,
            last_trade: book.last_trade,
            bids: side_dump(Side::Buy),
            asks: side_dump(Side::Sell),
        })
    }

    /// Dumps of every book, ascending instrument id.
    pub fn dump(&self) -> Vec<BookDump> {
        self.instruments()
            .filter_map(|i| self.dump_book(i))
            .collect()
    }

    /// A hash of the whole matching state (sequence number, every book's levels in priority
    /// with their queues' ends, every resting order with its arena slot and queue links, trade
    /// counters, last trades, and the order in which freed arena slots will be reused). Equal input streams give equal hashes; a replay from a
    /// journal, or an engine restored from a snapshot, is checked against the live run with
    /// it. Allocation-free.
    ///
    /// Slots and the free list are included because they decide output: a mass cancel reports
    /// in slot order and a new order takes the slot at the head of the free list, so two
    /// engines with equal books but different placement can answer the same command
    /// differently. (Level ids and the id-index layout decide no output and are left out.)
    pub fn state_hash(&self) -> u64 {
        let mut h = Digest::new();
        let seq: Seq = self.seq;
        h.u64(seq);
        // Books: each side's levels in price priority, each with its FIFO's ends.
        for book in self.books.iter() {
            h.u64(book.id as u64);
            h.u64(book.trades);
            h.u64(book.last_trade.map_or(u64::MAX, |p| p as u64));
            for side in [Side::Buy, Side::Sell] {
                let s = book.side(side);
                h.u64(s.len() as u64);
                for r in 0..s.len() {
                    let l = &s.levels[s.level_at_rank(r) as usize];
                    h.u64(l.price as u64);
                    h.u64(l.qty);
                    h.u64(l.count as u64);
                    h.u64(((l.head as u64) << 32) | l.tail as u64);
                }
            }
        }
        // Every resting order with its links, in slot order: with the levels' ends above this
        // fixes each FIFO exactly, and a sequential scan of the arena costs a fraction of
        // walking the FIFOs (which misses the cache on every order).
        let hw = self.orders.high_water();
        for (i, o) in self.orders.slots[..hw as usize].iter().enumerate() {
            if o.level == NIL {
                continue;
            }
            h.u64(i as u64);
            h.u64(o.id);
            h.u64(o.price as u64);
            h.u64(o.leaves);
            h.u64(o.filled);
            h.u64(((o.prev as u64) << 32) | o.next as u64);
            h.u64(o.book as u64);
            h.u64(((o.session as u64) << 32) | o.owner as u64);
            h.u64(
                (o.side as u64)
                    | (o.tif as u64) << 8
                    | (o.stp as u64) << 16
                    | (o.post_only as u64) << 24,
            );
        }
        for i in self.orders.reuse_order() {
            h.u64(i as u64);
        }
        h.finish()
    }

    /// Checks every internal invariant (links, level totals, counts, index) and describes the
    /// first violation. For tests; O(resting orders).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut live = 0usize;
        for book in self.books.iter() {
            for side in [Side::Buy, Side::Sell] {
                let s = book.side(side);
                let mut orders = 0u32;
                let mut prev_price: Option<Price> = None;
                for r in 0..s.len() {
                    let lid = s.level_at_rank(r);
                    let l = &s.levels[lid as usize];
                    if let Some(p) = prev_price {
                        let better = match side {
                            Side::Buy => p > l.price,
                            Side::Sell => p < l.price,
                        };
                        if !better {
                            return Err(format!("levels out of order at {} {:?}", l.price, side));
                        }
                    }
                    prev_price = Some(l.price);
                    if l.count == 0 {
                        return Err(format!("empty level {} kept", l.price));
                    }
                    let (mut qty, mut count, mut prev, mut i) = (0u64, 0u32, NIL, l.head);
                    while i != NIL {
                        let o = &self.orders.slots[i as usize];
                        if o.prev != prev || o.level != lid || o.price != l.price || o.side != side
                        {
                            return Err(format!("order {} badly linked", o.id));
                        }
                        if o.leaves == 0 {
                            return Err(format!("order {} rests with no leaves", o.id));
                        }
                        if self.index.get(o.id) != Some(i) {
                            return Err(format!("order {} missing from the index", o.id));
                        }
                        qty += o.leaves;
                        count += 1;
                        prev = i;
                        i = o.next;
                    }
                    if l.tail != prev || qty != l.qty || count != l.count {
                        return Err(format!("level {} totals or tail wrong", l.price));
                    }
                    orders += count;
                }
                if orders != s.orders {
                    return Err(format!("side order count {} != {}", s.orders, orders));
                }
                live += orders as usize;
            }
        }
        if live != self.index.len() || live != self.orders.used() as usize {
            return Err(format!(
                "live {} index {} arena {}",
                live,
                self.index.len(),
                self.orders.used()
            ));
        }
        Ok(())
    }
}

//! FIX market data for one gateway's sessions: MarketDataRequest (35=V) answered with a
//! snapshot (W), then incremental (X) or full (W) refreshes, or a MarketDataRequestReject (Y).
//! Hot path, except construction and seeding.
//!
//! The gateway keeps its own copy of every book's price levels (aggregated: price, size and
//! order count per level), kept current by the engines' `BookChange` events and seeded at
//! launch with the books as recovered. A subscription remembers the levels it last sent; after
//! each pass over the engines' events the gateway compares the top of every changed book with
//! that and sends the difference. That is the conflation: a subscriber sees each book as it is
//! at the end of a pass, not every intermediate state (a level that appeared and went within a
//! pass is never shown). Trades are not conflated: each is an entry of its own.
//!
//! The answer to a request (W or Y) is stored and resent like any reply. Refreshes are
//! sequenced but not stored: a ResendRequest over them gets a SequenceReset-GapFill, because a
//! resent refresh would describe a book that has moved since; a subscriber that lost some asks
//! for a new snapshot. While a session is answering a ResendRequest its refreshes wait (the
//! difference keeps growing) and go out, as one, when the answer is done.
//!
//! All memory is reserved at construction: the levels for `max_levels_per_side` on each side
//! of each book (the engine cannot hold more), the subscriptions' slots and their last-sent
//! levels, the entries of the largest message.

use super::instruments::Instruments;
use crate::engine::{BookChange, InstrumentId, LevelInfo, Price, Qty, Side};
use fix::app::market_data::{
    reject_reason, subscription, update_type, MarketDataIncremental, MarketDataRequest,
    MarketDataRequestReject, MarketDataSnapshot, MdEntry, MdEntryType, MdUpdate, MdUpdateAction,
};
use fix::session::OutboundMessage;

/// Longest MDReqID (262) kept; a longer one is refused.
pub const MAX_MD_REQ_ID: usize = 64;

/// Trades of one book buffered within a pass; when full the gateway publishes early.
pub const TRADES_PER_PASS: usize = 32;

/// Bytes of a message besides its entries (header, MDReqID, Symbol, counts, trailer), at most.
pub const MESSAGE_OVERHEAD: usize = 400;
/// Bytes of one entry at most (every field at its widest).
pub const ENTRY_BYTES: usize = 100;

/// One aggregated price level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Level {
    /// Price in units.
    pub price: Price,
    /// Open quantity at the level.
    pub qty: Qty,
    /// Orders at the level.
    pub count: u32,
}

/// One side's levels, sorted with the best last (as the engine keeps them): changes happen
/// near the top, so inserting and removing shift only the few levels above.
struct Ladder {
    levels: Vec<Level>,
    bids: bool,
}

impl Ladder {
    fn new(capacity: usize, bids: bool) -> Self {
        Self {
            levels: Vec::with_capacity(capacity),
            bids,
        }
    }

    /// Index of `price` (or where it would go): bids ascend, asks descend.
    #[inline]
    fn find(&self, price: Price) -> Result<usize, usize> {
        let bids = self.bids;
        self.levels.binary_search_by(|l| {
            if bids {
                l.price.cmp(&price)
            } else {
                price.cmp(&l.price)
            }
        })
    }

    /// Applies a level's new totals (`qty` 0 removes it). False when a new level does not
    /// fit (it cannot happen while the capacity is the engine's).
    #[inline]
    fn apply(&mut self, price: Price, qty: Qty, count: u32) -> bool {
        match self.find(price) {
            Ok(i) if qty == 0 => {
                self.levels.remove(i);
            }
            Ok(i) => self.levels[i] = Level { price, qty, count },
            Err(_) if qty == 0 => {}
            Err(i) => {
                if self.levels.len() == self.levels.capacity() {
                    return false;
                }
                self.levels.insert(i, Level { price, qty, count });
            }
        }
        true
    }

    /// The best `n` levels, best first.
    #[inline]
    fn top(&self, n: usize) -> impl Iterator<Item = &Level> {
        self.levels.iter().rev().take(n)
    }
}

/// One instrument's levels, trades of the pass and labels.
struct Book {
    bids: Ladder,
    asks: Ladder,
    symbol: [u8; 8],
    symbol_len: u8,
    scale: u8,
    /// The last trade (price, quantity) since the start (the price only when recovered).
    last_trade: Option<(Price, Qty)>,
    trades: [(Price, Qty); TRADES_PER_PASS],
    n_trades: usize,
    /// Levels changed since the last publication.
    changed: bool,
}

impl Book {
    fn symbol(&self) -> &[u8] {
        &self.symbol[..self.symbol_len as usize]
    }
}

/// A free subscription slot's session.
const FREE: u16 = u16::MAX;

/// One subscription: one symbol of one request of one session.
struct Sub {
    session: u16,
    id: [u8; MAX_MD_REQ_ID],
    id_len: u8,
    instrument: InstrumentId,
    depth: usize,
    /// [`MdEntryType::bit`]s asked for.
    types: u8,
    /// X refreshes (else W).
    incremental: bool,
    /// A refresh could not go out (the session was answering a ResendRequest).
    waiting: bool,
    /// The levels last sent, best first.
    sent_bids: Vec<Level>,
    sent_asks: Vec<Level>,
}

impl Sub {
    fn id(&self) -> &[u8] {
        &self.id[..self.id_len as usize]
    }
}

/// What the gateway counts of FIX market data (exported per gateway).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixMdStats {
    /// Snapshots sent in answer to requests (W).
    pub snapshots: u64,
    /// Incremental refreshes sent (X).
    pub incrementals: u64,
    /// Full refreshes sent to `MDUpdateType=0` subscriptions (W).
    pub full_refreshes: u64,
    /// Requests refused (Y).
    pub rejects: u64,
    /// Subscriptions active now.
    pub subscriptions: u64,
    /// Book changes that found their side's levels full (should stay 0).
    pub ladder_full: u64,
}

/// FIX market data of one gateway: its copy of the books and its sessions' subscriptions.
pub struct FixMarketData {
    books: Vec<Book>,
    subs: Vec<Sub>,
    per_session: usize,
    max_depth: usize,
    /// A book changed, a trade was buffered or a refresh waits: publication has work.
    pending: bool,
    entries: Vec<MdEntry>,
    updates: Vec<MdUpdate>,
    top: Vec<Level>,
    /// Most entries an X may carry within `fix.max_message_size` (a longer one is split).
    x_entries: usize,
    /// Counters.
    pub stats: FixMdStats,
}

/// How a refresh or an answer reaches a session: `send(session, message, go_on)`, false when
/// the session cannot take it now (the refresh waits). `go_on` is set for the later parts of
/// an X split in several: the first part went, so the rest must too (only a full output
/// buffer, a slow consumer, stops them).
pub type SendTo<'a> = dyn FnMut(u16, &dyn OutboundMessage, bool) -> bool + 'a;

impl FixMarketData {
    /// Reserves everything for `sessions` sessions whose messages are at most
    /// `max_message_size` bytes (cold path).
    pub fn new(
        instruments: &Instruments,
        sessions: usize,
        max_levels_per_side: usize,
        max_depth: usize,
        per_session: usize,
        max_message_size: usize,
    ) -> Self {
        let books = instruments
            .all()
            .iter()
            .map(|i| Book {
                bids: Ladder::new(max_levels_per_side, true),
                asks: Ladder::new(max_levels_per_side, false),
                symbol: i.symbol,
                symbol_len: i.symbol_len,
                scale: i.price_decimals,
                last_trade: None,
                trades: [(0, 0); TRADES_PER_PASS],
                n_trades: 0,
                changed: false,
            })
            .collect();
        let subs = (0..sessions * per_session)
            .map(|_| Sub {
                session: FREE,
                id: [0; MAX_MD_REQ_ID],
                id_len: 0,
                instrument: 0,
                depth: 0,
                types: 0,
                incremental: true,
                waiting: false,
                sent_bids: Vec::with_capacity(max_depth),
                sent_asks: Vec::with_capacity(max_depth),
            })
            .collect();
        let most = 2 * max_depth + TRADES_PER_PASS + 1;
        Self {
            books,
            subs,
            per_session,
            max_depth,
            pending: false,
            entries: Vec::with_capacity(most),
            updates: Vec::with_capacity(2 * most),
            top: Vec::with_capacity(max_depth),
            x_entries: (max_message_size.saturating_sub(MESSAGE_OVERHEAD) / ENTRY_BYTES).max(1),
            stats: FixMdStats::default(),
        }
    }

    /// Seeds instrument `instrument`'s levels (best first) as recovered (cold path).
    pub fn seed(
        &mut self,
        instrument: InstrumentId,
        bids: impl IntoIterator<Item = LevelInfo>,
        asks: impl IntoIterator<Item = LevelInfo>,
        last_trade: Option<Price>,
    ) {
        let Some(b) = self.books.get_mut(instrument as usize) else {
            return;
        };
        for l in bids {
            b.bids.apply(l.price, l.qty, l.count);
        }
        for l in asks {
            b.asks.apply(l.price, l.qty, l.count);
        }
        b.last_trade = last_trade.map(|p| (p, 0));
    }

    /// Whether [`FixMarketData::publish`] has something to do.
    #[inline]
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// A level changed.
    #[inline]
    pub fn on_book_change(&mut self, c: &BookChange) {
        let Some(b) = self.books.get_mut(c.instrument as usize) else {
            return;
        };
        let side = match c.side {
            Side::Buy => &mut b.bids,
            Side::Sell => &mut b.asks,
        };
        if !side.apply(c.price, c.qty, c.count) {
            self.stats.ladder_full += 1;
        }
        b.changed = true;
        self.pending = true;
    }

    /// A trade. False when the book's trades of this pass are full: publish, then call again.
    #[inline]
    pub fn on_trade(&mut self, instrument: InstrumentId, price: Price, qty: Qty) -> bool {
        let Some(b) = self.books.get_mut(instrument as usize) else {
            return true;
        };
        if b.n_trades == TRADES_PER_PASS {
            return false;
        }
        b.trades[b.n_trades] = (price, qty);
        b.n_trades += 1;
        b.last_trade = Some((price, qty));
        self.pending = true;
        true
    }

    /// Ends session `session`'s subscriptions (it disconnected or logged out).
    pub fn drop_session(&mut self, session: u16) {
        let mut ended = 0;
        for sub in self.session_subs(session) {
            if sub.session != FREE {
                sub.session = FREE;
                ended += 1;
            }
        }
        self.stats.subscriptions -= ended;
    }

    fn session_subs(&mut self, session: u16) -> &mut [Sub] {
        let at = session as usize * self.per_session;
        self.subs
            .get_mut(at..at + self.per_session)
            .unwrap_or_default()
    }

    /// Answers a MarketDataRequest from `session`: snapshots (and, for a subscription, the
    /// subscriptions), the end of a subscription, or a reject. Everything named is checked
    /// before anything is sent or kept: a request is taken whole or refused whole.
    pub fn request(
        &mut self,
        session: u16,
        r: &MarketDataRequest<'_>,
        instruments: &Instruments,
        send: &mut SendTo<'_>,
    ) {
        let id = r.md_req_id;
        let mut refuse = |stats: &mut FixMdStats, reason: Option<u8>, text: &[u8]| {
            stats.rejects += 1;
            let y = MarketDataRequestReject {
                md_req_id: id,
                reason,
                text: Some(text),
            };
            send(session, &y, false);
        };
        if id.len() > MAX_MD_REQ_ID {
            return refuse(&mut self.stats, None, b"MDReqID longer than 64 characters");
        }
        let kind = match r.subscription_type {
            [subscription::SNAPSHOT] => subscription::SNAPSHOT,
            [subscription::SUBSCRIBE] => subscription::SUBSCRIBE,
            [subscription::UNSUBSCRIBE] => subscription::UNSUBSCRIBE,
            _ => {
                return refuse(
                    &mut self.stats,
                    Some(reject_reason::UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE),
                    b"SubscriptionRequestType must be 0, 1 or 2",
                )
            }
        };
        if kind == subscription::UNSUBSCRIBE {
            let mut ended = 0;
            for sub in self.session_subs(session) {
                if sub.session != FREE && sub.id() == id {
                    sub.session = FREE;
                    ended += 1;
                }
            }
            self.stats.subscriptions -= ended;
            if ended == 0 {
                refuse(&mut self.stats, None, b"no subscription with this MDReqID");
            }
            return;
        }
        let depth = match r.market_depth {
            Some(d) if d >= 1 && d as usize <= self.max_depth => d as usize,
            _ => {
                return refuse(
                    &mut self.stats,
                    Some(reject_reason::UNSUPPORTED_MARKET_DEPTH),
                    depth_text(self.max_depth),
                )
            }
        };
        let incremental = match r.update_type {
            None | Some([update_type::INCREMENTAL]) => true,
            Some([update_type::FULL]) => false,
            Some(_) => {
                return refuse(
                    &mut self.stats,
                    Some(reject_reason::UNSUPPORTED_MD_UPDATE_TYPE),
                    b"MDUpdateType must be 0 or 1",
                )
            }
        };
        if r.aggregated_book == Some(false) {
            return refuse(
                &mut self.stats,
                Some(reject_reason::UNSUPPORTED_AGGREGATED_BOOK),
                b"only the aggregated book (266=Y) is published",
            );
        }
        if r.unsupported_entry_type.is_some() || r.entry_types == 0 {
            return refuse(
                &mut self.stats,
                Some(reject_reason::UNSUPPORTED_MD_ENTRY_TYPE),
                b"MDEntryType must be 0 (bid), 1 (offer) or 2 (trade)",
            );
        }
        if r.symbol_count == 0 || r.symbol_count > r.symbols.len() {
            return refuse(
                &mut self.stats,
                Some(reject_reason::UNKNOWN_SYMBOL),
                b"a request names 1 to 16 symbols",
            );
        }
        for sym in r.symbols() {
            if instruments.find(sym).is_none() {
                return refuse(
                    &mut self.stats,
                    Some(reject_reason::UNKNOWN_SYMBOL),
                    b"unknown symbol",
                );
            }
        }
        let subscribe = kind == subscription::SUBSCRIBE;
        if subscribe {
            let subs = self.session_subs(session);
            if subs.iter().any(|s| s.session != FREE && s.id() == id) {
                return refuse(
                    &mut self.stats,
                    Some(reject_reason::DUPLICATE_MD_REQ_ID),
                    b"a subscription with this MDReqID is active",
                );
            }
            let free = subs.iter().filter(|s| s.session == FREE).count();
            if free < r.symbols().len() {
                return refuse(
                    &mut self.stats,
                    Some(reject_reason::INSUFFICIENT_BANDWIDTH),
                    b"too many subscriptions on this session (market_data.fix_max_subscriptions)",
                );
            }
        }
        for sym in r.symbols() {
            let Some(ins) = instruments.find(sym) else {
                continue;
            };
            let instrument = ins.id;
            self.snapshot(session, id, instrument, depth, r.entry_types, send);
            self.stats.snapshots += 1;
            if !subscribe {
                continue;
            }
            let Some(k) = self
                .session_subs(session)
                .iter()
                .position(|s| s.session == FREE)
            else {
                continue;
            };
            let at = session as usize * self.per_session + k;
            let book = &self.books[instrument as usize];
            let sub = &mut self.subs[at];
            sub.session = session;
            sub.id[..id.len()].copy_from_slice(id);
            sub.id_len = id.len() as u8;
            sub.instrument = instrument;
            sub.depth = depth;
            sub.types = r.entry_types;
            sub.incremental = incremental;
            sub.waiting = false;
            remember(&mut sub.sent_bids, &book.bids, depth);
            remember(&mut sub.sent_asks, &book.asks, depth);
            self.stats.subscriptions += 1;
        }
    }

    /// Writes a W of `instrument`'s top `depth` levels and last trade, as `types` asks.
    fn snapshot(
        &mut self,
        session: u16,
        id: &[u8],
        instrument: InstrumentId,
        depth: usize,
        types: u8,
        send: &mut SendTo<'_>,
    ) -> bool {
        let b = &self.books[instrument as usize];
        self.entries.clear();
        let levels = |e: &mut Vec<MdEntry>, l: &Ladder, t: MdEntryType| {
            if types & t.bit() != 0 {
                e.extend(l.top(depth).map(|l| MdEntry {
                    entry_type: t,
                    price: l.price,
                    size: l.qty,
                    orders: l.count,
                }));
            }
        };
        levels(&mut self.entries, &b.bids, MdEntryType::Bid);
        levels(&mut self.entries, &b.asks, MdEntryType::Offer);
        if types & MdEntryType::Trade.bit() != 0 {
            if let Some((price, size)) = b.last_trade {
                self.entries.push(MdEntry {
                    entry_type: MdEntryType::Trade,
                    price,
                    size,
                    orders: 0,
                });
            }
        }
        let w = MarketDataSnapshot {
            md_req_id: id,
            symbol: b.symbol(),
            price_scale: b.scale,
            entries: &self.entries,
        };
        send(session, &w, false)
    }

    /// Sends every subscription what changed in its book since it was last sent (cleared
    /// afterwards: the books' change flags and trades of the pass).
    pub fn publish(&mut self, send: &mut SendTo<'_>) {
        if !self.pending {
            return;
        }
        let mut waiting = false;
        for i in 0..self.subs.len() {
            let sub = &self.subs[i];
            if sub.session == FREE {
                continue;
            }
            let b = &self.books[sub.instrument as usize];
            let trades = if sub.types & MdEntryType::Trade.bit() != 0 {
                b.n_trades
            } else {
                0
            };
            if !b.changed && trades == 0 && !sub.waiting {
                continue;
            }
            let sent = if sub.incremental {
                self.incremental(i, trades, send)
            } else {
                self.full_refresh(i, trades, send)
            };
            self.subs[i].waiting = !sent;
            waiting |= !sent;
        }
        for b in &mut self.books {
            b.changed = false;
            b.n_trades = 0;
        }
        self.pending = waiting;
    }

    /// An X for subscription `i`: the pass's trades, then its levels' differences.
    fn incremental(&mut self, i: usize, trades: usize, send: &mut SendTo<'_>) -> bool {
        let sub = &self.subs[i];
        let b = &self.books[sub.instrument as usize];
        self.updates.clear();
        for &(price, size) in &b.trades[..trades] {
            self.updates.push(MdUpdate {
                action: MdUpdateAction::New,
                entry: MdEntry {
                    entry_type: MdEntryType::Trade,
                    price,
                    size,
                    orders: 0,
                },
            });
        }
        if sub.types & MdEntryType::Bid.bit() != 0 {
            diff(
                &mut self.updates,
                &mut self.top,
                &sub.sent_bids,
                &b.bids,
                sub.depth,
                MdEntryType::Bid,
            );
        }
        if sub.types & MdEntryType::Offer.bit() != 0 {
            diff(
                &mut self.updates,
                &mut self.top,
                &sub.sent_asks,
                &b.asks,
                sub.depth,
                MdEntryType::Offer,
            );
        }
        if self.updates.is_empty() {
            return true;
        }
        for (k, part) in self.updates.chunks(self.x_entries).enumerate() {
            let x = MarketDataIncremental {
                md_req_id: sub.id(),
                symbol: b.symbol(),
                price_scale: b.scale,
                entries: part,
            };
            if !send(sub.session, &x, k > 0) && k == 0 {
                return false;
            }
            self.stats.incrementals += 1;
        }
        let sub = &mut self.subs[i];
        remember(&mut sub.sent_bids, &b.bids, sub.depth);
        remember(&mut sub.sent_asks, &b.asks, sub.depth);
        true
    }

    /// A W for subscription `i` (MDUpdateType=0) when its top levels changed or it trades.
    fn full_refresh(&mut self, i: usize, trades: usize, send: &mut SendTo<'_>) -> bool {
        let sub = &self.subs[i];
        let b = &self.books[sub.instrument as usize];
        let (bids, asks) = (
            sub.types & MdEntryType::Bid.bit() != 0,
            sub.types & MdEntryType::Offer.bit() != 0,
        );
        let moved = (bids && !same(&sub.sent_bids, &b.bids, sub.depth))
            || (asks && !same(&sub.sent_asks, &b.asks, sub.depth));
        if !moved && trades == 0 && !sub.waiting {
            return true;
        }
        let (session, instrument, depth, types) =
            (sub.session, sub.instrument, sub.depth, sub.types);
        let mut id = [0u8; MAX_MD_REQ_ID];
        let n = sub.id_len as usize;
        id[..n].copy_from_slice(sub.id());
        if !self.snapshot(session, &id[..n], instrument, depth, types, send) {
            return false;
        }
        self.stats.full_refreshes += 1;
        let b = &self.books[instrument as usize];
        let sub = &mut self.subs[i];
        remember(&mut sub.sent_bids, &b.bids, depth);
        remember(&mut sub.sent_asks, &b.asks, depth);
        true
    }
}

fn depth_text(max: usize) -> &'static [u8] {
    if max == 10 {
        b"MarketDepth must be 1 to 10 (0, the full book, is not offered)"
    } else {
        b"MarketDepth must be 1 to market_data.fix_max_depth (0, the full book, is not offered)"
    }
}

/// Keeps `l`'s top `depth` levels in `into`, best first.
#[inline]
fn remember(into: &mut Vec<Level>, l: &Ladder, depth: usize) {
    into.clear();
    into.extend(l.top(depth).copied());
}

/// Whether `sent` is `l`'s top `depth` levels.
#[inline]
fn same(sent: &[Level], l: &Ladder, depth: usize) -> bool {
    sent.len() == l.levels.len().min(depth) && sent.iter().eq(l.top(depth))
}

/// Appends the updates that turn `sent` into `l`'s top `depth`: deletes first (a level
/// that left the top or emptied), then changes and new levels, best first. A level is
/// keyed by its price.
#[inline]
fn diff(
    out: &mut Vec<MdUpdate>,
    top: &mut Vec<Level>,
    sent: &[Level],
    l: &Ladder,
    depth: usize,
    t: MdEntryType,
) {
    top.clear();
    top.extend(l.top(depth).copied());
    let entry = |l: &Level| MdEntry {
        entry_type: t,
        price: l.price,
        size: l.qty,
        orders: l.count,
    };
    for old in sent {
        if !top.iter().any(|n| n.price == old.price) {
            out.push(MdUpdate {
                action: MdUpdateAction::Delete,
                entry: entry(old),
            });
        }
    }
    for new in top.iter() {
        match sent.iter().find(|o| o.price == new.price) {
            Some(o) if o == new => {}
            Some(_) => out.push(MdUpdate {
                action: MdUpdateAction::Change,
                entry: entry(new),
            }),
            None => out.push(MdUpdate {
                action: MdUpdateAction::New,
                entry: entry(new),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::BookAction;
    use fix::Encoder;

    fn instruments() -> Instruments {
        // ACME and BOLT, prices with 4 decimals (1_000_000 is 100).
        Instruments::new(&Config::default_config().resolved_instruments())
    }

    /// Renders what is sent as `session|35=..|body` lines (SOH as `|`).
    fn render(s: u16, m: &dyn OutboundMessage) -> String {
        let mut buf = vec![0u8; 4096];
        let mut e = Encoder::new(&mut buf, b"FIX.4.4", m.msg_type());
        m.write_body(&mut e);
        let r = e.finish(b"FIX.4.4").unwrap();
        let text = String::from_utf8_lossy(&buf[r]).replace('\x01', "|");
        let body = &text[text.find("35=").unwrap()..text.find("10=").unwrap()];
        format!("{s}|{body}")
    }

    fn change(side: Side, price: Price, qty: Qty, count: u32) -> BookChange {
        BookChange {
            instrument: 0,
            side,
            action: BookAction::Update,
            price,
            qty,
            count,
        }
    }

    fn request<'a>(
        id: &'a [u8],
        kind: &'a [u8],
        depth: u64,
        update: &'a [u8],
        symbols: &[&'a [u8]],
    ) -> MarketDataRequest<'a> {
        let mut r = MarketDataRequest {
            md_req_id: id,
            subscription_type: kind,
            market_depth: Some(depth),
            update_type: Some(update),
            aggregated_book: None,
            entry_types: 0b111,
            unsupported_entry_type: None,
            symbols: [b""; fix::app::market_data::MAX_REQUEST_SYMBOLS],
            symbol_count: symbols.len(),
        };
        r.symbols[..symbols.len()].copy_from_slice(symbols);
        r
    }

    #[test]
    fn a_subscriber_gets_a_snapshot_then_the_conflated_difference_of_each_pass() {
        let ins = instruments();
        let mut md = FixMarketData::new(&ins, 2, 64, 10, 4, 4096);
        md.seed(
            0,
            [LevelInfo {
                price: 1_000_000,
                qty: 5,
                count: 1,
            }],
            [],
            None,
        );
        let mut out = Vec::new();
        let mut send = |s: u16, m: &dyn OutboundMessage, _: bool| {
            out.push(render(s, m));
            true
        };
        md.request(
            1,
            &request(b"R1", b"1", 2, b"1", &[b"ACME"]),
            &ins,
            &mut send,
        );
        // Within one pass: a new best bid, a level that appears and goes, an offer, a trade.
        md.on_book_change(&change(Side::Buy, 1_010_000, 3, 1));
        md.on_book_change(&change(Side::Buy, 1_005_000, 1, 1));
        md.on_book_change(&change(Side::Buy, 1_005_000, 0, 0));
        md.on_book_change(&change(Side::Sell, 1_020_000, 7, 2));
        assert!(md.on_trade(0, 1_015_000, 4));
        md.publish(&mut send);
        // The next pass: the best bid trades away; the old bid is back in the top 2.
        md.on_book_change(&change(Side::Buy, 1_010_000, 0, 0));
        md.on_book_change(&change(Side::Buy, 990_000, 2, 1));
        md.publish(&mut send);
        assert_eq!(
            out,
            [
                "1|35=W|262=R1|55=ACME|268=1|269=0|270=100|271=5|346=1|",
                "1|35=X|262=R1|268=3|279=0|269=2|55=ACME|270=101.5|271=4|\
                 279=0|269=0|55=ACME|270=101|271=3|346=1|279=0|269=1|55=ACME|270=102|271=7|346=2|",
                "1|35=X|262=R1|268=2|279=2|269=0|55=ACME|270=101|279=0|269=0|55=ACME|270=99|271=2|346=1|",
            ]
        );
        assert_eq!(md.stats.subscriptions, 1);
        assert_eq!((md.stats.snapshots, md.stats.incrementals), (1, 2));
    }

    #[test]
    fn a_request_is_refused_whole_with_the_reason_and_unsubscribe_ends_it() {
        let ins = instruments();
        let mut md = FixMarketData::new(&ins, 1, 64, 10, 2, 4096);
        let mut out = Vec::new();
        let mut send = |s: u16, m: &dyn OutboundMessage, _: bool| {
            out.push(render(s, m));
            true
        };
        // (MDReqID, 263, 264, 265, symbols)
        type Req = (
            &'static [u8],
            &'static [u8],
            u64,
            &'static [u8],
            &'static [&'static [u8]],
        );
        let requests: [Req; 9] = [
            (b"A", b"1", 1, b"1", &[b"ACME", b"NOPE"]),
            (b"B", b"1", 0, b"1", &[b"ACME"]),
            (b"C", b"1", 1, b"5", &[b"ACME"]),
            (b"D", b"7", 1, b"1", &[b"ACME"]),
            (b"E", b"1", 1, b"0", &[b"ACME", b"BOLT"]),
            (b"E", b"1", 1, b"1", &[b"ACME"]),
            (b"F", b"1", 1, b"1", &[b"ACME"]),
            (b"E", b"2", 1, b"1", &[b"ACME"]),
            (b"E", b"2", 1, b"1", &[b"ACME"]),
        ];
        for (id, kind, depth, update, symbols) in requests {
            md.request(
                0,
                &request(id, kind, depth, update, symbols),
                &ins,
                &mut send,
            );
        }
        let tags: Vec<&str> = out
            .iter()
            .map(|l| {
                let t = &l[2..6];
                match l.find("281=") {
                    Some(p) if t == "35=Y" => &l[p..p + 5],
                    _ => t,
                }
            })
            .collect();
        assert_eq!(
            tags,
            ["281=0", "281=5", "281=6", "281=4", "35=W", "35=W", "281=1", "281=2", "35=Y"],
            "{out:#?}"
        );
        assert!(
            out[8].contains("no subscription with this MDReqID"),
            "{}",
            out[8]
        );
        assert_eq!(md.stats.subscriptions, 0);
        assert_eq!(md.stats.rejects, 7);
    }

    #[test]
    fn a_refresh_that_cannot_go_out_waits_and_goes_out_whole() {
        let ins = instruments();
        let mut md = FixMarketData::new(&ins, 1, 64, 10, 2, 4096);
        let out = std::cell::RefCell::new(Vec::new());
        let open = std::cell::Cell::new(true);
        let mut send = |s: u16, m: &dyn OutboundMessage, _: bool| {
            if open.get() {
                out.borrow_mut().push(render(s, m));
            }
            open.get()
        };
        md.request(
            0,
            &request(b"R", b"1", 1, b"0", &[b"ACME"]),
            &ins,
            &mut send,
        );
        open.set(false);
        md.on_book_change(&change(Side::Sell, 1_020_000, 7, 2));
        md.publish(&mut send);
        assert!(md.pending(), "the refresh waits");
        open.set(true);
        md.publish(&mut send);
        let out = out.into_inner();
        assert!(!md.pending());
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(
            out[1],
            "0|35=W|262=R|55=ACME|268=1|269=1|270=102|271=7|346=2|"
        );
        md.drop_session(0);
        assert_eq!(md.stats.subscriptions, 0);
    }

    #[test]
    fn an_incremental_refresh_too_long_for_one_message_is_split_in_order() {
        let ins = instruments();
        // Room for 3 entries a message.
        let size = MESSAGE_OVERHEAD + 3 * ENTRY_BYTES;
        let mut md = FixMarketData::new(&ins, 1, 64, 10, 2, size);
        let mut out = Vec::new();
        let mut send = |s: u16, m: &dyn OutboundMessage, go_on: bool| {
            out.push((render(s, m), go_on));
            true
        };
        md.request(
            0,
            &request(b"R", b"1", 5, b"1", &[b"ACME"]),
            &ins,
            &mut send,
        );
        for k in 0..5 {
            md.on_book_change(&change(Side::Buy, 1_000_000 - k * 100, 1, 1));
        }
        md.publish(&mut send);
        let xs: Vec<_> = out[1..]
            .iter()
            .map(|(m, go_on)| (&m[..6], m.matches("279=").count(), *go_on))
            .collect();
        assert_eq!(xs, [("0|35=X", 3, false), ("0|35=X", 2, true)], "{out:#?}");
        assert_eq!(md.stats.incrementals, 2);
    }

    #[test]
    fn ladders_keep_the_best_last_for_both_sides() {
        let mut bids = Ladder::new(8, true);
        let mut asks = Ladder::new(8, false);
        for p in [5, 9, 7] {
            bids.apply(p, 1, 1);
            asks.apply(p, 1, 1);
        }
        let top = |l: &Ladder| l.top(2).map(|l| l.price).collect::<Vec<_>>();
        assert_eq!(top(&bids), [9, 7]);
        assert_eq!(top(&asks), [5, 7]);
        bids.apply(9, 0, 0);
        asks.apply(5, 0, 0);
        assert_eq!(top(&bids), [7, 5]);
        assert_eq!(top(&asks), [7, 9]);
        let mut small = Ladder::new(1, true);
        assert!(small.apply(1, 1, 1));
        assert!(!small.apply(2, 1, 1), "full: refused, not grown");
    }
}

//! A consumer of the order-by-order feed, written from `docs/market-data.md`: the books
//! rebuilt order by order ([`Books`]), the MoldUDP64 sequence ([`Feed`]: next expected number,
//! gaps, duplicates, heartbeats, end of session, a new session when the appliance restarts) and
//! the recovery service's client ([`RecoveryClient`]: retransmission of a range, snapshot).
//!
//! [`Feed::on_packet`] takes the packets as the socket hands them over. The first packet of a
//! session decides how the consumer joins: a packet numbered 1 is the session's start, applied
//! as it is; any later one means the consumer joins late, so it asks for a snapshot, applies it
//! and then applies the messages numbered at or after the snapshot's number (this packet's, and
//! those that arrive meanwhile, which wait in the socket or the caller's queue). A packet
//! numbered beyond the next expected number is a gap: the missing range is asked for by
//! retransmission (a snapshot when the service no longer keeps it) before the packet is
//! applied. Messages numbered before the next expected one are duplicates and are ignored.
//!
//! Sans-IO apart from [`RecoveryClient`]: the recovery service is reached through the
//! [`Recovery`] trait, so the logic is tested with synthetic packets. `appliance watch`
//! (`marketdata::watch`) is built on it.

use super::recovery::{request_type, MAX_PER_REQUEST};
use super::wire::{decode_packet, system_event, Message, END_OF_SESSION};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Trades kept per instrument (newest first).
pub const TRADES_KEPT: usize = 32;

/// A price level's queue: (order reference, quantity) in time priority.
type Queue = VecDeque<(u64, u64)>;

/// A price level as shown: price, total quantity, orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    /// Price (instrument's price units).
    pub price: i64,
    /// Total quantity resting at the price.
    pub size: u64,
    /// Orders resting at the price.
    pub orders: usize,
}

/// A trade, from an `E` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// Publisher's timestamp (Unix nanoseconds).
    pub ts: u64,
    /// Price (the resting order's).
    pub price: i64,
    /// Quantity.
    pub qty: u64,
    /// Match number (the trade's execution id).
    pub match_id: u64,
    /// Side of the resting order (`B`/`S`); the aggressor was on the other side.
    pub resting_side: u8,
}

/// One instrument's book.
#[derive(Clone, Debug, Default)]
pub struct Book {
    /// Instrument id.
    pub instrument: u32,
    /// Symbol (from the directory message; `#id` until it arrives).
    pub symbol: String,
    /// Implied decimals of a price.
    pub price_decimals: u8,
    /// Tick size in price units.
    pub tick: u64,
    /// Halted by the venue's operator (`H` messages).
    pub halted: bool,
    bids: BTreeMap<i64, Queue>,
    asks: BTreeMap<i64, Queue>,
    trades: VecDeque<Trade>,
}

impl Book {
    fn new(instrument: u32) -> Self {
        Self {
            instrument,
            symbol: format!("#{instrument}"),
            ..Self::default()
        }
    }

    fn side_mut(&mut self, side: u8) -> &mut BTreeMap<i64, Queue> {
        if side == b'B' {
            &mut self.bids
        } else {
            &mut self.asks
        }
    }

    fn view(levels: &Queue, price: i64) -> LevelView {
        LevelView {
            price,
            size: levels.iter().map(|o| o.1).sum(),
            orders: levels.len(),
        }
    }

    /// The best `n` bid levels, best (highest) first.
    pub fn bids(&self, n: usize) -> Vec<LevelView> {
        self.bids
            .iter()
            .rev()
            .take(n)
            .map(|(p, q)| Self::view(q, *p))
            .collect()
    }

    /// The best `n` ask levels, best (lowest) first.
    pub fn asks(&self, n: usize) -> Vec<LevelView> {
        self.asks
            .iter()
            .take(n)
            .map(|(p, q)| Self::view(q, *p))
            .collect()
    }

    /// The orders at `price` on `side` (`B`/`S`), in queue order: (order reference, quantity).
    pub fn queue(&self, side: u8, price: i64) -> Vec<(u64, u64)> {
        let s = if side == b'B' { &self.bids } else { &self.asks };
        s.get(&price)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The last trades, newest first (at most [`TRADES_KEPT`]).
    pub fn trades(&self) -> impl Iterator<Item = &Trade> {
        self.trades.iter()
    }

    /// `price` with the instrument's implied decimals (`990000` at 4 decimals: `99.0000`).
    pub fn format_price(&self, price: i64) -> String {
        format_price(price, self.price_decimals)
    }
}

/// `price` with `decimals` implied decimals.
pub fn format_price(price: i64, decimals: u8) -> String {
    let d = decimals.min(30) as u32;
    if d == 0 {
        return price.to_string();
    }
    let unit = 10i128.pow(d);
    let a = (price as i128).abs();
    let sign = if price < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        a / unit,
        a % unit,
        width = d as usize
    )
}

/// A message that does not fit the book as rebuilt so far (the feed and the consumer
/// disagree: messages were lost for good, or a bug).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The message names an order the book does not hold.
    #[error("order {0:#x} is not in the book")]
    UnknownOrder(u64),
    /// An `A` for an order the book already holds (the old one is replaced).
    #[error("order {0:#x} added twice")]
    DuplicateOrder(u64),
    /// More executed or cancelled than the order had (it is removed).
    #[error("order {0:#x}: {1} taken off {2}")]
    Overfill(u64, u64, u64),
}

/// Every instrument's book, rebuilt from the messages as "Rebuilding the book" in
/// docs/market-data.md says.
#[derive(Clone, Debug, Default)]
pub struct Books {
    /// order -> (instrument, side, price, quantity).
    orders: HashMap<u64, (u32, u8, i64, u64)>,
    books: BTreeMap<u32, Book>,
    /// The start of messages was seen.
    pub started: bool,
    /// The end of messages was seen.
    pub ended: bool,
}

impl Books {
    /// The book of `instrument`, if the feed named it.
    pub fn book(&self, instrument: u32) -> Option<&Book> {
        self.books.get(&instrument)
    }

    /// The book of `symbol`.
    pub fn by_symbol(&self, symbol: &str) -> Option<&Book> {
        self.books.values().find(|b| b.symbol == symbol)
    }

    /// Every book, by instrument id.
    pub fn books(&self) -> impl Iterator<Item = &Book> {
        self.books.values()
    }

    /// Orders resting.
    pub fn resting_orders(&self) -> usize {
        self.orders.len()
    }

    /// Forgets every resting order (before a snapshot); instruments and trades stay.
    pub fn clear_orders(&mut self) {
        self.orders.clear();
        for b in self.books.values_mut() {
            b.bids.clear();
            b.asks.clear();
        }
    }

    fn book_mut(&mut self, instrument: u32) -> &mut Book {
        self.books
            .entry(instrument)
            .or_insert_with(|| Book::new(instrument))
    }

    fn add(&mut self, order: u64, instrument: u32, side: u8, price: i64, qty: u64) -> bool {
        let dup = self.remove(order).is_some();
        self.orders.insert(order, (instrument, side, price, qty));
        self.book_mut(instrument)
            .side_mut(side)
            .entry(price)
            .or_default()
            .push_back((order, qty));
        dup
    }

    fn remove(&mut self, order: u64) -> Option<(u32, u8, i64, u64)> {
        let o = self.orders.remove(&order)?;
        if let Some(book) = self.books.get_mut(&o.0) {
            let side = book.side_mut(o.1);
            if let Some(q) = side.get_mut(&o.2) {
                q.retain(|(id, _)| *id != order);
                if q.is_empty() {
                    side.remove(&o.2);
                }
            }
        }
        Some(o)
    }

    /// Takes `by` off `order`, removing it at zero.
    fn reduce(&mut self, order: u64, by: u64) -> Result<(), BookError> {
        let o = *self
            .orders
            .get(&order)
            .ok_or(BookError::UnknownOrder(order))?;
        if by >= o.3 {
            self.remove(order);
            return if by > o.3 {
                Err(BookError::Overfill(order, by, o.3))
            } else {
                Ok(())
            };
        }
        if let Some(e) = self.orders.get_mut(&order) {
            e.3 -= by;
        }
        if let Some(q) = self
            .books
            .get_mut(&o.0)
            .and_then(|b| b.side_mut(o.1).get_mut(&o.2))
        {
            if let Some(e) = q.iter_mut().find(|(id, _)| *id == order) {
                e.1 -= by;
            }
        }
        Ok(())
    }

    /// Applies one message. An error says the message did not fit; the book is kept as
    /// consistent as it can be (the message is applied as far as it makes sense).
    pub fn apply(&mut self, m: &Message) -> Result<(), BookError> {
        match *m {
            Message::System { code, .. } => {
                if code == system_event::START {
                    self.started = true;
                } else if code == system_event::END {
                    self.ended = true;
                }
            }
            Message::Directory {
                instrument,
                symbol,
                price_decimals,
                tick,
                ..
            } => {
                let b = self.book_mut(instrument);
                b.symbol = String::from_utf8_lossy(&symbol).trim_end().to_string();
                b.price_decimals = price_decimals;
                b.tick = tick;
            }
            Message::Add {
                order,
                instrument,
                side,
                qty,
                price,
                ..
            } => {
                if self.add(order, instrument, side, price, qty) {
                    return Err(BookError::DuplicateOrder(order));
                }
            }
            Message::Executed {
                ts,
                order,
                qty,
                match_id,
                price,
            } => {
                let (instrument, side, _, _) = *self
                    .orders
                    .get(&order)
                    .ok_or(BookError::UnknownOrder(order))?;
                let trades = &mut self.book_mut(instrument).trades;
                trades.push_front(Trade {
                    ts,
                    price,
                    qty,
                    match_id,
                    resting_side: side,
                });
                trades.truncate(TRADES_KEPT);
                self.reduce(order, qty)?;
            }
            Message::Cancel { order, qty, .. } => self.reduce(order, qty)?,
            Message::State {
                instrument, state, ..
            } => {
                self.book_mut(instrument).halted = state == super::wire::instrument_state::HALTED;
            }
            Message::Delete { order, .. } => {
                self.remove(order).ok_or(BookError::UnknownOrder(order))?;
            }
            Message::Replace {
                order, qty, price, ..
            } => {
                let (instrument, side, _, _) =
                    self.remove(order).ok_or(BookError::UnknownOrder(order))?;
                self.add(order, instrument, side, price, qty);
            }
        }
        Ok(())
    }
}

/// Why the recovery service did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// No recovery service is configured.
    #[error("no recovery service")]
    Unavailable,
    /// The connection failed.
    #[error("recovery service: {0}")]
    Io(#[from] std::io::Error),
    /// The service refused the session (the appliance restarted).
    #[error("recovery service refused the session (the appliance restarted)")]
    SessionRefused,
    /// The answer does not decode.
    #[error("recovery service: malformed answer: {0}")]
    Malformed(String),
}

/// A snapshot: the directory and an `A` for every resting order, as of a sequence number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The messages (`R`, then `A` in queue order).
    pub messages: Vec<Message>,
    /// The number of the first live message the snapshot does not include.
    pub as_of: u64,
}

/// A retransmission's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retransmission {
    /// The messages with their sequence numbers (empty when the first one asked is no longer
    /// kept).
    pub messages: Vec<(u64, Message)>,
    /// The terminating packet's number: one past the last message sent, or the oldest number
    /// still kept when nothing was sent.
    pub next: u64,
}

/// The recovery service as a consumer sees it.
pub trait Recovery {
    /// Every resting order of `session`, as of a sequence number.
    fn snapshot(&mut self, session: &[u8; 10]) -> Result<Snapshot, RecoveryError>;
    /// Messages `seq ..` of `session`, at most `count` (and at most the service's limit).
    fn retransmit(
        &mut self,
        session: &[u8; 10],
        seq: u64,
        count: u16,
    ) -> Result<Retransmission, RecoveryError>;
    /// Done asking for now: the service serves one connection at a time, so a client lets
    /// go of its connection between recoveries (the default does nothing).
    fn done(&mut self) {}
}

/// No recovery service: every request fails with [`RecoveryError::Unavailable`].
pub struct NoRecovery;

impl Recovery for NoRecovery {
    fn snapshot(&mut self, _: &[u8; 10]) -> Result<Snapshot, RecoveryError> {
        Err(RecoveryError::Unavailable)
    }
    fn retransmit(
        &mut self,
        _: &[u8; 10],
        _: u64,
        _: u16,
    ) -> Result<Retransmission, RecoveryError> {
        Err(RecoveryError::Unavailable)
    }
}

/// A retransmission request (21 bytes).
pub fn retransmit_request(session: &[u8; 10], seq: u64, count: u16) -> [u8; 21] {
    let mut r = [0u8; 21];
    r[0] = request_type::RETRANSMIT;
    r[1..11].copy_from_slice(session);
    r[11..19].copy_from_slice(&seq.to_be_bytes());
    r[19..21].copy_from_slice(&count.to_be_bytes());
    r
}

/// A snapshot request (11 bytes).
pub fn snapshot_request(session: &[u8; 10]) -> [u8; 11] {
    let mut r = [0u8; 11];
    r[0] = request_type::SNAPSHOT;
    r[1..11].copy_from_slice(session);
    r
}

/// The recovery service's TCP client. One connection, opened at the first request and opened
/// again when the service closed it (it does after 5 s of silence).
pub struct RecoveryClient {
    addr: SocketAddr,
    conn: Option<TcpStream>,
    timeout: Duration,
}

impl RecoveryClient {
    /// A client of the service at `addr`; connecting, and each read, wait at most `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self {
            addr,
            conn: None,
            timeout,
        }
    }

    /// The service's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether a connection is open.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Sends `request`, reads the answer: the messages with their numbers (0 in a snapshot)
    /// and the terminating packet's number. A connection the service closed is opened again
    /// once.
    fn request(&mut self, request: &[u8]) -> Result<(Vec<(u64, Message)>, u64), RecoveryError> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            let conn = match &mut self.conn {
                Some(c) => c,
                None => {
                    let c = TcpStream::connect_timeout(&self.addr, self.timeout)?;
                    c.set_read_timeout(Some(self.timeout))?;
                    c.set_write_timeout(Some(self.timeout))?;
                    let _ = c.set_nodelay(true);
                    self.conn.insert(c)
                }
            };
            match exchange(conn, request) {
                Ok(a) => return Ok(a),
                Err(e) => {
                    self.conn = None;
                    let retry = attempt == 0 && reused && matches!(e, RecoveryError::Io(_));
                    if !retry {
                        return Err(e);
                    }
                }
            }
        }
        Err(RecoveryError::Unavailable)
    }
}

fn exchange(
    conn: &mut TcpStream,
    request: &[u8],
) -> Result<(Vec<(u64, Message)>, u64), RecoveryError> {
    conn.write_all(request)?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len)?;
        buf.resize(u16::from_be_bytes(len) as usize, 0);
        conn.read_exact(&mut buf)?;
        let (h, blocks) =
            decode_packet(&buf).map_err(|e| RecoveryError::Malformed(e.to_string()))?;
        if h.count == END_OF_SESSION {
            return Err(RecoveryError::SessionRefused);
        }
        if h.count == 0 {
            return Ok((out, h.seq));
        }
        for (i, b) in blocks.iter().enumerate() {
            let m = Message::decode(b).map_err(|e| RecoveryError::Malformed(e.to_string()))?;
            let seq = if h.seq == 0 { 0 } else { h.seq + i as u64 };
            out.push((seq, m));
        }
    }
}

impl Recovery for RecoveryClient {
    fn snapshot(&mut self, session: &[u8; 10]) -> Result<Snapshot, RecoveryError> {
        let (msgs, as_of) = self.request(&snapshot_request(session))?;
        Ok(Snapshot {
            messages: msgs.into_iter().map(|(_, m)| m).collect(),
            as_of,
        })
    }

    fn retransmit(
        &mut self,
        session: &[u8; 10],
        seq: u64,
        count: u16,
    ) -> Result<Retransmission, RecoveryError> {
        let (messages, next) = self.request(&retransmit_request(session, seq, count))?;
        Ok(Retransmission { messages, next })
    }

    fn done(&mut self) {
        self.conn = None;
    }
}

/// How the consumer joined the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Join {
    /// No packet of the session yet.
    Waiting,
    /// From its first message: no snapshot needed.
    FromStart,
    /// Late, from a snapshot.
    Snapshot {
        /// The snapshot's number (the first live message it does not include).
        as_of: u64,
        /// Orders it held.
        orders: usize,
    },
    /// Late, and the snapshot failed: the books miss what rested before.
    WithoutSnapshot(String),
}

/// What happened on the feed, for display.
#[derive(Clone, Debug, Default)]
pub struct FeedStats {
    /// Packets received from the live feed (data, heartbeats, end of session).
    pub packets: u64,
    /// Messages applied, live and retransmitted (a snapshot's are not counted).
    pub messages: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Messages received again (numbered before the next expected one), ignored.
    pub duplicates: u64,
    /// Gaps detected (a packet numbered beyond the next expected one).
    pub gaps_detected: u64,
    /// Gaps filled (by retransmission, or by a snapshot).
    pub gaps_repaired: u64,
    /// Messages received by retransmission.
    pub retransmitted: u64,
    /// Gaps given up on (no recovery): the books may be wrong.
    pub gaps_unrepaired: u64,
    /// Snapshots applied.
    pub snapshots: u64,
    /// Messages that did not fit the books.
    pub inconsistencies: u64,
    /// Packets that did not decode.
    pub malformed: u64,
    /// Sessions seen (more than one: the appliance restarted meanwhile).
    pub sessions: u64,
    /// When the last packet arrived.
    pub last_packet: Option<Instant>,
    /// The last error (recovery, decoding, a message that did not fit).
    pub last_error: Option<String>,
}

/// The feed as one consumer follows it: the books, the sequence, recovery.
#[derive(Clone, Debug)]
pub struct Feed {
    /// The books.
    pub books: Books,
    /// The session (`YYMMDDHHMM`), once a packet arrived.
    pub session: Option<[u8; 10]>,
    /// The next expected sequence number, once joined.
    next: Option<u64>,
    /// How the consumer joined the session.
    pub join: Join,
    /// The session ended (end-of-session packet).
    pub ended: bool,
    /// Counters.
    pub stats: FeedStats,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// A consumer that has seen nothing yet.
    pub fn new() -> Self {
        Self {
            books: Books::default(),
            session: None,
            next: None,
            join: Join::Waiting,
            ended: false,
            stats: FeedStats::default(),
        }
    }

    /// The next expected sequence number (None before joining).
    pub fn next_seq(&self) -> Option<u64> {
        self.next
    }

    /// The session as text.
    pub fn session_text(&self) -> Option<String> {
        self.session
            .map(|s| String::from_utf8_lossy(&s).trim_end().to_string())
    }

    fn error(&mut self, e: impl std::fmt::Display) {
        self.stats.last_error = Some(e.to_string());
    }

    /// Handles one packet of the live feed, received at `now`, using `recovery` to join late
    /// and to repair gaps.
    pub fn on_packet(&mut self, bytes: &[u8], now: Instant, recovery: &mut dyn Recovery) {
        let (h, blocks) = match decode_packet(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                self.error(format!("packet: {e}"));
                return;
            }
        };
        self.stats.packets += 1;
        self.stats.last_packet = Some(now);
        if self.session != Some(h.session) {
            if self.session.is_some() {
                // The appliance restarted: a new session, numbered from 1, new books.
                let stats = std::mem::take(&mut self.stats);
                *self = Self::new();
                self.stats = stats;
            }
            self.session = Some(h.session);
            self.stats.sessions += 1;
        }
        if self.next.is_none() {
            if h.seq <= 1 {
                self.next = Some(1);
                self.join = Join::FromStart;
            } else {
                self.join_late(h.seq, recovery);
                recovery.done();
            }
        }
        let mut next = self.next.unwrap_or(h.seq);
        match h.count {
            0 => {
                self.stats.heartbeats += 1;
                if h.seq > next {
                    // The last data packet(s) before this heartbeat were lost.
                    self.repair(h.seq, recovery);
                }
            }
            END_OF_SESSION => {
                if h.seq > next {
                    self.repair(h.seq, recovery);
                }
                self.ended = true;
            }
            _ => {
                if h.seq > next {
                    self.repair(h.seq, recovery);
                    next = self.next.unwrap_or(h.seq);
                }
                for (i, b) in blocks.iter().enumerate() {
                    let seq = h.seq + i as u64;
                    if seq < next {
                        self.stats.duplicates += 1;
                        continue;
                    }
                    match Message::decode(b) {
                        Ok(m) => self.apply(&m),
                        Err(e) => {
                            self.stats.malformed += 1;
                            self.error(format!("message {seq}: {e}"));
                        }
                    }
                    next = seq + 1;
                }
                self.next = Some(next);
            }
        }
    }

    fn apply(&mut self, m: &Message) {
        self.stats.messages += 1;
        if let Err(e) = self.books.apply(m) {
            self.stats.inconsistencies += 1;
            self.error(e);
        }
    }

    /// Joins late: a snapshot, or, without one, from the packet numbered `first` on.
    fn join_late(&mut self, first: u64, recovery: &mut dyn Recovery) {
        if let Err(e) = self.take_snapshot(recovery) {
            self.error(format!("snapshot: {e}"));
            self.join = Join::WithoutSnapshot(e.to_string());
            self.next = Some(first);
        }
    }

    fn take_snapshot(&mut self, recovery: &mut dyn Recovery) -> Result<(), RecoveryError> {
        let session = self.session.ok_or(RecoveryError::Unavailable)?;
        let snap = recovery.snapshot(&session)?;
        self.books.clear_orders();
        let mut orders = 0;
        for m in &snap.messages {
            if matches!(m, Message::Add { .. }) {
                orders += 1;
            }
            if let Err(e) = self.books.apply(m) {
                self.stats.inconsistencies += 1;
                self.error(e);
            }
        }
        self.stats.snapshots += 1;
        self.next = Some(snap.as_of);
        self.join = Join::Snapshot {
            as_of: snap.as_of,
            orders,
        };
        Ok(())
    }

    /// Fills the gap from the next expected number up to `upto` (excluded): retransmission,
    /// a snapshot when the service no longer keeps the range; given up on otherwise.
    fn repair(&mut self, upto: u64, recovery: &mut dyn Recovery) {
        self.stats.gaps_detected += 1;
        let Some(session) = self.session else { return };
        while let Some(next) = self.next.filter(|n| *n < upto) {
            let want = (upto - next).min(MAX_PER_REQUEST as u64) as u16;
            match recovery.retransmit(&session, next, want) {
                Ok(r) if r.messages.is_empty() => {
                    // Too old for the service: start again from a snapshot.
                    if let Err(e) = self.take_snapshot(recovery) {
                        self.error(format!("snapshot: {e}"));
                        break;
                    }
                    if self.next.is_some_and(|n| n < upto) && self.next == Some(next) {
                        break;
                    }
                }
                Ok(r) => {
                    let mut n = next;
                    for (seq, m) in r.messages {
                        if seq < n {
                            self.stats.duplicates += 1;
                            continue;
                        }
                        if seq > n {
                            break;
                        }
                        self.stats.retransmitted += 1;
                        self.apply(&m);
                        n += 1;
                    }
                    if n == next {
                        self.error(format!("retransmission from {next}: nothing usable"));
                        break;
                    }
                    self.next = Some(n);
                }
                Err(e) => {
                    self.error(format!("retransmission from {next}: {e}"));
                    break;
                }
            }
        }
        recovery.done();
        if self.next.is_some_and(|n| n >= upto) {
            self.stats.gaps_repaired += 1;
        } else {
            // Lost for good: go on from the packet (the books may be wrong).
            self.stats.gaps_unrepaired += 1;
            self.next = Some(upto);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::recovery::Mirror;
    use super::super::wire::{encode_header, PacketHeader, HEADER, MAX_MESSAGE};
    use super::*;

    const SESSION: [u8; 10] = *b"2606121412";

    /// A publisher in miniature: numbers messages, packs packets, keeps everything for
    /// retransmission and a mirror for snapshots.
    struct Sim {
        session: [u8; 10],
        log: Vec<Message>,
        mirror: Mirror,
        /// Messages older than this are no longer kept.
        kept_from: u64,
        snapshots: usize,
        retransmissions: usize,
        /// The session's first packet (start of messages, directory).
        opening: Vec<u8>,
    }

    impl Sim {
        fn new() -> Self {
            let mut s = Sim {
                session: SESSION,
                log: Vec::new(),
                mirror: Mirror::default(),
                kept_from: 1,
                snapshots: 0,
                retransmissions: 0,
                opening: Vec::new(),
            };
            s.opening = s.packet(&[
                Message::System {
                    ts: 1,
                    code: system_event::START,
                },
                Message::Directory {
                    ts: 1,
                    instrument: 0,
                    symbol: *b"ACME    ",
                    price_decimals: 4,
                    tick: 100,
                },
            ]);
            s
        }

        fn next(&self) -> u64 {
            self.log.len() as u64 + 1
        }

        /// Publishes `msgs` as one packet and returns it.
        fn packet(&mut self, msgs: &[Message]) -> Vec<u8> {
            let mut p = vec![0u8; HEADER];
            encode_header(
                &mut p,
                &PacketHeader {
                    session: self.session,
                    seq: self.next(),
                    count: msgs.len() as u16,
                },
            );
            for m in msgs {
                let mut b = [0u8; MAX_MESSAGE];
                let n = m.encode(&mut b);
                p.extend_from_slice(&(n as u16).to_be_bytes());
                p.extend_from_slice(&b[..n]);
                self.log.push(*m);
                self.mirror.apply(m);
            }
            p
        }

        fn heartbeat(&self) -> Vec<u8> {
            let mut p = vec![0u8; HEADER];
            encode_header(
                &mut p,
                &PacketHeader {
                    session: self.session,
                    seq: self.next(),
                    count: 0,
                },
            );
            p
        }
    }

    impl Recovery for Sim {
        fn snapshot(&mut self, session: &[u8; 10]) -> Result<Snapshot, RecoveryError> {
            if *session != self.session {
                return Err(RecoveryError::SessionRefused);
            }
            self.snapshots += 1;
            Ok(Snapshot {
                messages: self.mirror.snapshot(0),
                as_of: self.next(),
            })
        }
        fn retransmit(
            &mut self,
            session: &[u8; 10],
            seq: u64,
            count: u16,
        ) -> Result<Retransmission, RecoveryError> {
            if *session != self.session {
                return Err(RecoveryError::SessionRefused);
            }
            self.retransmissions += 1;
            if seq < self.kept_from {
                return Ok(Retransmission {
                    messages: Vec::new(),
                    next: self.kept_from,
                });
            }
            let messages: Vec<(u64, Message)> = (seq..self.next())
                .take(count.min(MAX_PER_REQUEST) as usize)
                .map(|s| (s, self.log[s as usize - 1]))
                .collect();
            let next = seq + messages.len() as u64;
            Ok(Retransmission { messages, next })
        }
    }

    fn add(order: u64, side: u8, price: i64, qty: u64) -> Message {
        Message::Add {
            ts: 2,
            order,
            instrument: 0,
            side,
            qty,
            price,
        }
    }

    fn exec(order: u64, qty: u64, match_id: u64, price: i64) -> Message {
        Message::Executed {
            ts: 3,
            order,
            qty,
            match_id,
            price,
        }
    }

    /// A price level: side, price, queue.
    type LevelRow = (u8, i64, Vec<(u64, u64)>);

    /// ACME's book as (side, price, queue) rows.
    fn rows(b: &Books) -> Vec<LevelRow> {
        let book = b.book(0).unwrap();
        let mut v = Vec::new();
        for l in book.bids(usize::MAX) {
            v.push((b'B', l.price, book.queue(b'B', l.price)));
        }
        for l in book.asks(usize::MAX) {
            v.push((b'S', l.price, book.queue(b'S', l.price)));
        }
        v
    }

    fn mirror_rows(sim: &Sim) -> Vec<LevelRow> {
        let mut b = Books::default();
        for m in sim.mirror.snapshot(0) {
            b.apply(&m).unwrap();
        }
        rows(&b)
    }

    #[test]
    fn the_book_follows_every_message_type() {
        let mut b = Books::default();
        let msgs = [
            Message::Directory {
                ts: 1,
                instrument: 0,
                symbol: *b"ACME    ",
                price_decimals: 4,
                tick: 100,
            },
            add(1, b'B', 990_000, 10),
            add(2, b'B', 990_000, 5),
            add(3, b'B', 980_000, 7),
            add(4, b'S', 1_010_000, 4),
            add(5, b'S', 1_020_000, 6),
            exec(1, 3, 77, 990_000),
            Message::Cancel {
                ts: 4,
                order: 2,
                qty: 1,
            },
            Message::Delete { ts: 5, order: 3 },
            Message::Replace {
                ts: 6,
                order: 1,
                qty: 9,
                price: 990_000,
            },
            exec(4, 4, 78, 1_010_000),
        ];
        for m in &msgs {
            b.apply(m).unwrap();
        }
        let book = b.by_symbol("ACME").unwrap();
        assert_eq!(book.format_price(990_000), "99.0000");
        assert_eq!(
            book.bids(5),
            vec![LevelView {
                price: 990_000,
                size: 13,
                orders: 2
            }]
        );
        // The replaced order lost its place: 2 is first now.
        assert_eq!(book.queue(b'B', 990_000), vec![(2, 4), (1, 9)]);
        assert_eq!(
            book.asks(5),
            vec![LevelView {
                price: 1_020_000,
                size: 6,
                orders: 1
            }]
        );
        let trades: Vec<_> = book
            .trades()
            .map(|t| (t.price, t.qty, t.match_id))
            .collect();
        assert_eq!(trades, vec![(1_010_000, 4, 78), (990_000, 3, 77)]);
        assert_eq!(b.resting_orders(), 3);
        assert_eq!(
            b.apply(&Message::Delete { ts: 7, order: 99 }),
            Err(BookError::UnknownOrder(99))
        );
        assert_eq!(format_price(-15, 2), "-0.15");
        assert_eq!(format_price(42, 0), "42");
    }

    #[test]
    fn a_consumer_from_the_start_needs_no_recovery() {
        let mut sim = Sim::new();
        let mut feed = Feed::new();
        let now = Instant::now();
        feed.on_packet(&sim.opening, now, &mut NoRecovery);
        let p = sim.packet(&[add(1, b'B', 990_000, 10)]);
        feed.on_packet(&p, now, &mut NoRecovery);
        feed.on_packet(&sim.heartbeat(), now, &mut NoRecovery);
        assert_eq!(feed.join, Join::FromStart);
        assert_eq!(feed.next_seq(), Some(sim.next()));
        assert_eq!(feed.stats.heartbeats, 1);
        assert_eq!(feed.stats.gaps_detected, 0);
        assert_eq!(rows(&feed.books), mirror_rows(&sim));
    }

    #[test]
    fn gaps_are_repaired_and_duplicates_ignored() {
        let mut sim = Sim::new();
        let mut feed = Feed::new();
        let now = Instant::now();
        let opening = sim.opening.clone();
        feed.on_packet(&opening, now, &mut sim);
        let p2 = sim.packet(&[add(1, b'B', 990_000, 10), add(2, b'S', 1_010_000, 5)]);
        let p3 = sim.packet(&[exec(2, 2, 50, 1_010_000), add(3, b'B', 990_000, 4)]);
        let p4 = sim.packet(&[Message::Delete { ts: 9, order: 1 }]);
        // p2 and p3 lost: p4 reveals the gap, repaired by retransmission.
        feed.on_packet(&p4, now, &mut sim);
        assert_eq!(feed.stats.gaps_detected, 1);
        assert_eq!(feed.stats.gaps_repaired, 1);
        assert_eq!(feed.stats.retransmitted, 4);
        assert_eq!(sim.retransmissions, 1);
        // Late copies of p2 and p3 (and p4 again) are duplicates.
        for p in [&p2, &p3, &p4] {
            feed.on_packet(p, now, &mut sim);
        }
        assert_eq!(feed.stats.duplicates, 5);
        assert_eq!(feed.stats.inconsistencies, 0);
        assert_eq!(rows(&feed.books), mirror_rows(&sim));
        let trades: Vec<_> = feed.books.book(0).unwrap().trades().copied().collect();
        assert_eq!(trades.len(), 1);
        assert_eq!(
            (trades[0].price, trades[0].qty, trades[0].match_id),
            (1_010_000, 2, 50)
        );
        // A lost last packet shows at the next heartbeat.
        let _lost = sim.packet(&[add(4, b'S', 1_020_000, 1)]);
        feed.on_packet(&sim.heartbeat(), now, &mut sim);
        assert_eq!(feed.stats.gaps_repaired, 2);
        assert_eq!(feed.next_seq(), Some(sim.next()));
        assert_eq!(rows(&feed.books), mirror_rows(&sim));
    }

    #[test]
    fn a_gap_older_than_the_service_keeps_is_filled_by_a_snapshot() {
        let mut sim = Sim::new();
        let mut feed = Feed::new();
        let now = Instant::now();
        let opening = sim.opening.clone();
        feed.on_packet(&opening, now, &mut sim);
        for i in 0..10 {
            let _lost = sim.packet(&[add(10 + i, b'B', 990_000 - i as i64 * 100, 1)]);
        }
        sim.kept_from = sim.next() - 2;
        let p = sim.packet(&[Message::Delete { ts: 9, order: 12 }]);
        feed.on_packet(&p, now, &mut sim);
        assert_eq!(sim.snapshots, 1);
        assert_eq!(feed.stats.gaps_repaired, 1);
        assert_eq!(rows(&feed.books), mirror_rows(&sim));
    }

    #[test]
    fn a_late_joiner_starts_from_a_snapshot_and_applies_what_follows() {
        let mut sim = Sim::new();
        for i in 0..5 {
            let _missed = sim.packet(&[add(1 + i, b'B', 990_000, 10 + i)]);
        }
        let mut feed = Feed::new();
        let now = Instant::now();
        // The consumer arrives: the first packet it sees is this one (numbered 8).
        let p = sim.packet(&[add(20, b'S', 1_010_000, 3), exec(1, 10, 60, 990_000)]);
        // The snapshot the service will answer with is as of after this packet (the service
        // answered later): the packet's messages are then older than the snapshot.
        feed.on_packet(&p, now, &mut sim);
        assert_eq!(sim.snapshots, 1);
        assert!(matches!(feed.join, Join::Snapshot { as_of, orders: 5 } if as_of == sim.next()));
        assert_eq!(feed.stats.duplicates, 2, "already in the snapshot");
        let p = sim.packet(&[Message::Cancel {
            ts: 9,
            order: 2,
            qty: 1,
        }]);
        feed.on_packet(&p, now, &mut sim);
        assert_eq!(feed.stats.gaps_detected, 0);
        assert_eq!(rows(&feed.books), mirror_rows(&sim));
        let book = feed.books.by_symbol("ACME").unwrap();
        assert_eq!(book.bids(1)[0].size, 11 + 12 + 13 + 14 - 1);
    }

    #[test]
    fn a_snapshot_older_than_the_first_packet_is_completed_by_retransmission() {
        let mut sim = Sim::new();
        for i in 0..3 {
            let _ = sim.packet(&[add(1 + i, b'B', 990_000, 1)]);
        }
        // The service's snapshot is taken now...
        let snap = sim.snapshot(&SESSION).unwrap();
        // ...and the consumer's first packet comes after more traffic.
        let _missed = sim.packet(&[add(9, b'S', 1_000_000, 2)]);
        let p = sim.packet(&[Message::Delete { ts: 9, order: 1 }]);
        struct Stale<'a>(&'a mut Sim, Option<Snapshot>);
        impl Recovery for Stale<'_> {
            fn snapshot(&mut self, _: &[u8; 10]) -> Result<Snapshot, RecoveryError> {
                self.1.take().ok_or(RecoveryError::Unavailable)
            }
            fn retransmit(
                &mut self,
                s: &[u8; 10],
                seq: u64,
                count: u16,
            ) -> Result<Retransmission, RecoveryError> {
                self.0.retransmit(s, seq, count)
            }
        }
        let mut feed = Feed::new();
        feed.on_packet(&p, Instant::now(), &mut Stale(&mut sim, Some(snap)));
        assert_eq!(feed.stats.gaps_repaired, 1);
        assert_eq!(feed.stats.retransmitted, 1);
        assert_eq!(rows(&feed.books), mirror_rows(&sim));
    }

    #[test]
    fn without_recovery_a_late_joiner_goes_on_with_what_it_sees() {
        let mut sim = Sim::new();
        let _ = sim.packet(&[add(1, b'B', 990_000, 1)]);
        let p = sim.packet(&[add(2, b'B', 980_000, 1)]);
        let mut feed = Feed::new();
        feed.on_packet(&p, Instant::now(), &mut NoRecovery);
        assert!(matches!(feed.join, Join::WithoutSnapshot(_)));
        assert_eq!(feed.books.resting_orders(), 1);
        // A new session (the appliance restarted) starts the books again.
        let mut again = Sim::new();
        again.opening[..10].copy_from_slice(b"2606121500");
        feed.on_packet(&again.opening, Instant::now(), &mut NoRecovery);
        assert_eq!(feed.join, Join::FromStart);
        assert_eq!(feed.books.resting_orders(), 0);
        assert_eq!(feed.stats.sessions, 2);
    }

    #[test]
    fn the_client_speaks_the_service_protocol() {
        use super::super::recovery::frames;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let deletes = [
            Message::Delete { ts: 1, order: 7 },
            Message::Delete { ts: 1, order: 8 },
        ];
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = [0u8; 21];
            c.read_exact(&mut req).unwrap();
            assert_eq!(req, retransmit_request(&SESSION, 5, 2));
            let msgs = deletes.map(|m| {
                let mut b = [0u8; MAX_MESSAGE];
                let n = m.encode(&mut b);
                b[..n].to_vec()
            });
            c.write_all(&frames(SESSION, msgs, Some(5), 7, 1400))
                .unwrap();
            let mut req = [0u8; 11];
            c.read_exact(&mut req).unwrap();
            assert_eq!(req, snapshot_request(&SESSION));
            let mut p = [0u8; HEADER];
            encode_header(
                &mut p,
                &PacketHeader {
                    session: SESSION,
                    seq: 0,
                    count: END_OF_SESSION,
                },
            );
            c.write_all(&(HEADER as u16).to_be_bytes()).unwrap();
            c.write_all(&p).unwrap();
        });
        let mut client = RecoveryClient::new(addr, Duration::from_secs(5));
        let r = client.retransmit(&SESSION, 5, 2).unwrap();
        assert_eq!(r.messages, vec![(5, deletes[0]), (6, deletes[1])]);
        assert_eq!(r.next, 7);
        assert!(client.connected(), "one connection for several requests");
        assert!(matches!(
            client.snapshot(&SESSION),
            Err(RecoveryError::SessionRefused)
        ));
        assert!(!client.connected());
        server.join().unwrap();
    }

    #[test]
    fn requests_have_their_documented_layout() {
        let r = retransmit_request(&SESSION, 0x0102, 3);
        assert_eq!(r[0], b'R');
        assert_eq!(&r[1..11], &SESSION);
        assert_eq!(u64::from_be_bytes(r[11..19].try_into().unwrap()), 0x0102);
        assert_eq!(u16::from_be_bytes([r[19], r[20]]), 3);
        let s = snapshot_request(&SESSION);
        assert_eq!((s[0], &s[1..]), (b'S', &SESSION[..]));
    }
}

//! The counters hot threads keep and the shared cells the exporter reads.
//!
//! Each hot thread counts into plain `u64`s it owns (no atomics, no sharing: an increment is
//! one add on a line already in its L1). Once per telemetry interval the thread copies them
//! into its own block of atomics with `Relaxed` stores: single writer, so no read-modify-write,
//! and the block is `CachePadded` so no two threads' blocks share a line. The exporter reads
//! the atomics with `Relaxed` loads whenever it is scraped.
//!
//! Why Relaxed is enough: every cell is an independent monotone counter or a gauge; the
//! exporter needs each value to be one the writer stored, not a consistent snapshot across
//! cells (Prometheus scrapes are not atomic either). Nothing else is published through them.

use crate::vocab::{DisconnectCause, Protocol, CANCEL_SLOTS, REJECT_SLOTS};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Sides counted (buy, sell).
pub const SIDES: usize = 2;
/// Order types counted (limit, market).
pub const ORD_TYPES: usize = 2;
/// Protocols counted.
pub const PROTOCOLS: usize = Protocol::ALL.len();
/// Disconnect causes counted.
pub const DISCONNECT_CAUSES: usize = DisconnectCause::ALL.len();

/// Offsets of each family in a gateway's flat counter array.
pub mod gw {
    use super::*;
    /// Orders received: `[protocol][side][type]`.
    pub const ORDERS: usize = 0;
    /// New-order rejects by reason index.
    pub const REJECTS: usize = ORDERS + PROTOCOLS * SIDES * ORD_TYPES;
    /// Cancel/replace rejects by reason index.
    pub const CANCEL_REJECTS: usize = REJECTS + REJECT_SLOTS;
    /// Logons by protocol.
    pub const LOGONS: usize = CANCEL_REJECTS + REJECT_SLOTS;
    /// Disconnects `[protocol][cause]`.
    pub const DISCONNECTS: usize = LOGONS + PROTOCOLS;
    /// Messages decoded by protocol.
    pub const MESSAGES_IN: usize = DISCONNECTS + PROTOCOLS * DISCONNECT_CAUSES;
    /// Messages queued to clients by protocol.
    pub const MESSAGES_OUT: usize = MESSAGES_IN + PROTOCOLS;
    /// Connected sessions by protocol (gauge, counted at publication).
    pub const CONNECTED: usize = MESSAGES_OUT + PROTOCOLS;
    /// FIX ResendRequests received (summed over the sessions at publication).
    pub const RESEND_RECEIVED: usize = CONNECTED + PROTOCOLS;
    /// FIX ResendRequests sent.
    pub const RESEND_SENT: usize = RESEND_RECEIVED + 1;
    /// Histogram hand-overs done.
    pub const HANDOVERS: usize = RESEND_SENT + 1;
    /// Hand-overs skipped because the exporter had not returned an empty histogram.
    pub const HANDOVER_SKIPS: usize = HANDOVERS + 1;
    /// Times a connection's input was paused because an engine ring was full.
    pub const BACKPRESSURE: usize = HANDOVER_SKIPS + 1;
    /// Connections closed because their output overflowed (slow consumers).
    pub const SLOW_CONSUMERS: usize = BACKPRESSURE + 1;
    /// Resent messages skipped because the journal showed them applied before a restart.
    pub const RESENT_APPLIED: usize = SLOW_CONSUMERS + 1;
    /// Connections not logged on closed to make room for a newcomer (a budget was full).
    pub const EVICTED: usize = RESENT_APPLIED + 1;
    /// Closing connections closed hard because they did not flush within the deadline.
    pub const CLOSING_TIMEOUTS: usize = EVICTED + 1;
    /// Connections closed at accept because no slot was free (the ones evicted to make
    /// room were still closing).
    pub const REFUSED: usize = CLOSING_TIMEOUTS + 1;
    /// Accepts that failed (out of descriptors or memory: accepting then pauses).
    pub const ACCEPT_ERRORS: usize = REFUSED + 1;
    /// Kill switches engaged by the operator (per session).
    pub const KILLS: usize = ACCEPT_ERRORS + 1;
    /// Gauge: sessions with the kill switch engaged now.
    pub const KILLED_SESSIONS: usize = KILLS + 1;
    /// Gauge: instruments halted now.
    pub const HALTED_INSTRUMENTS: usize = KILLED_SESSIONS + 1;
    /// Audit records dropped because the logging thread's ring was full.
    pub const AUDIT_DROPPED: usize = HALTED_INSTRUMENTS + 1;
    /// Messages evicted from the sessions' resend stores (FIX message stores, binary replay
    /// logs) by protocol (summed over the sessions at publication).
    pub const STORE_EVICTED: usize = AUDIT_DROPPED + 1;
    /// Audit records not written because the gateway was over `gateway.audit_records_per_sec`.
    pub const AUDIT_RATE_LIMITED: usize = STORE_EVICTED + PROTOCOLS;
    /// FIX market-data messages sent, by kind: snapshot (W answering a request), incremental
    /// refresh (X), full refresh (W to an MDUpdateType=0 subscription), reject (Y).
    pub const FIX_MD_MESSAGES: usize = AUDIT_RATE_LIMITED + 1;
    /// Gauge: FIX market-data subscriptions active now.
    pub const FIX_MD_SUBSCRIPTIONS: usize = FIX_MD_MESSAGES + 4;
    /// Slots in all.
    pub const LEN: usize = FIX_MD_SUBSCRIPTIONS + 1;
}

/// A gateway thread's own counters (plain integers; see the module doc).
#[derive(Clone, Debug)]
pub struct GatewayCounters {
    v: [u64; gw::LEN],
}

impl Default for GatewayCounters {
    fn default() -> Self {
        Self { v: [0; gw::LEN] }
    }
}

impl GatewayCounters {
    /// A new order was decoded.
    #[inline]
    pub fn order_received(&mut self, protocol: usize, side: usize, ord_type: usize) {
        self.v[gw::ORDERS + (protocol * SIDES + side) * ORD_TYPES + ord_type] += 1;
    }
    /// A new order was refused (reason index from `labels::reject_index`).
    #[inline]
    pub fn reject(&mut self, reason: usize) {
        self.v[gw::REJECTS + reason.min(REJECT_SLOTS - 1)] += 1;
    }
    /// A cancel or replace was refused.
    #[inline]
    pub fn cancel_reject(&mut self, reason: usize) {
        self.v[gw::CANCEL_REJECTS + reason.min(REJECT_SLOTS - 1)] += 1;
    }
    /// A session logged on.
    #[inline]
    pub fn logon(&mut self, protocol: usize) {
        self.v[gw::LOGONS + protocol] += 1;
    }
    /// A logged-on session lost its connection.
    #[inline]
    pub fn disconnect(&mut self, protocol: usize, cause: DisconnectCause) {
        self.v[gw::DISCONNECTS + protocol * DISCONNECT_CAUSES + cause as usize] += 1;
    }
    /// A message was decoded.
    #[inline]
    pub fn message_in(&mut self, protocol: usize) {
        self.v[gw::MESSAGES_IN + protocol] += 1;
    }
    /// A message was queued for a client.
    #[inline]
    pub fn message_out(&mut self, protocol: usize) {
        self.v[gw::MESSAGES_OUT + protocol] += 1;
    }
    /// Sets a gauge or a sum computed at publication.
    #[inline]
    pub fn set(&mut self, slot: usize, value: u64) {
        self.v[slot] = value;
    }
    /// Adds one to a slot.
    #[inline]
    pub fn bump(&mut self, slot: usize) {
        self.v[slot] += 1;
    }
    /// A slot's value.
    #[inline]
    pub fn get(&self, slot: usize) -> u64 {
        self.v[slot]
    }
}

/// A gateway's per-session figures for the exporter: one row per configured session (a
/// bounded label set), filled in once by the gateway before its loop starts.
#[derive(Debug, Default)]
pub struct SessionMetrics {
    table: std::sync::OnceLock<SessionTable>,
}

/// The sessions' names and their rows of published values.
type SessionTable = (Vec<String>, Box<[[AtomicU64; 4]]>);

/// Columns of [`SessionMetrics`].
pub mod session_col {
    /// Messages received.
    pub const MESSAGES_IN: usize = 0;
    /// Orders, cancels and replaces refused.
    pub const REJECTS: usize = 1;
    /// New orders and replaces refused by a throttle.
    pub const THROTTLED: usize = 2;
    /// 1 while logged on.
    pub const CONNECTED: usize = 3;
}

impl SessionMetrics {
    /// Names the sessions (`fix:CLIENT1`, by local index); once (cold path).
    pub fn init(&self, names: Vec<String>) {
        let rows = (0..names.len())
            .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            .collect();
        let _ = self.table.set((names, rows));
    }

    /// Publishes session `s`'s values.
    #[inline]
    pub fn publish(&self, s: usize, values: [u64; 4]) {
        if let Some(row) = self.table.get().and_then(|(_, rows)| rows.get(s)) {
            for (cell, v) in row.iter().zip(values) {
                cell.store(v, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// (name, values) of every session (exporter side).
    pub fn rows(&self) -> Vec<(String, [u64; 4])> {
        self.table.get().map_or_else(Vec::new, |(names, rows)| {
            names
                .iter()
                .zip(rows.iter())
                .map(|(n, r)| {
                    (
                        n.clone(),
                        std::array::from_fn(|i| r[i].load(std::sync::atomic::Ordering::Relaxed)),
                    )
                })
                .collect()
        })
    }
}

/// What a gateway publishes for the exporter.
#[derive(Debug)]
pub struct GatewayMetrics {
    v: CachePadded<[AtomicU64; gw::LEN]>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            v: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl GatewayMetrics {
    /// Copies the thread's counters (single writer: plain stores).
    #[inline]
    pub fn publish(&self, c: &GatewayCounters) {
        for (cell, v) in self.v.iter().zip(c.v.iter()) {
            cell.store(*v, Relaxed);
        }
    }
    /// A published value.
    pub fn get(&self, slot: usize) -> u64 {
        self.v[slot].load(Relaxed)
    }
    /// Orders received for `[protocol][side][type]`.
    pub fn orders(&self, protocol: usize, side: usize, ord_type: usize) -> u64 {
        self.get(gw::ORDERS + (protocol * SIDES + side) * ORD_TYPES + ord_type)
    }
    /// Disconnects for `[protocol][cause]`.
    pub fn disconnects(&self, protocol: usize, cause: usize) -> u64 {
        self.get(gw::DISCONNECTS + protocol * DISCONNECT_CAUSES + cause)
    }
}

/// Sentinel for "no price" in the price cells (no bid, no ask, no trade yet).
pub const NO_PRICE: i64 = i64::MIN;

/// An engine thread's own counters.
#[derive(Clone, Debug)]
pub struct EngineCounters {
    /// Cancels by reason index.
    pub cancels: [u64; CANCEL_SLOTS],
    /// Trades by instrument id.
    pub trades: Box<[u64]>,
    /// Traded quantity by instrument id.
    pub volume: Box<[u64]>,
    /// Nanoseconds spent processing commands (dequeue to last event pushed).
    pub busy_ns: u64,
    /// Hand-overs done.
    pub handovers: u64,
    /// Hand-overs skipped.
    pub handover_skips: u64,
    /// Commands processed.
    pub commands: u64,
    /// Loop iterations that found work.
    pub busy_loops: u64,
    /// Loop iterations that found none.
    pub idle_loops: u64,
    /// Times the engine waited on a full outbound ring.
    pub out_ring_waits: u64,
    /// Times the engine waited on a full ring to the market-data publisher.
    pub md_ring_waits: u64,
}

impl EngineCounters {
    /// Counters for `instruments` instrument ids (allocated here, at start-up).
    pub fn new(instruments: usize) -> Self {
        Self {
            cancels: [0; CANCEL_SLOTS],
            trades: vec![0; instruments].into_boxed_slice(),
            volume: vec![0; instruments].into_boxed_slice(),
            busy_ns: 0,
            handovers: 0,
            handover_skips: 0,
            commands: 0,
            busy_loops: 0,
            idle_loops: 0,
            out_ring_waits: 0,
            md_ring_waits: 0,
        }
    }
}

/// Published state of one instrument (written by the engine that owns it).
#[derive(Debug)]
pub struct InstrumentCells {
    /// Trades.
    pub trades: AtomicU64,
    /// Traded quantity.
    pub volume: AtomicU64,
    /// Resting orders on the bid side.
    pub resting_bids: AtomicU64,
    /// Resting orders on the ask side.
    pub resting_asks: AtomicU64,
    /// Best bid in price units, or [`NO_PRICE`].
    pub best_bid: AtomicI64,
    /// Best ask in price units, or [`NO_PRICE`].
    pub best_ask: AtomicI64,
    /// Last trade price in price units, or [`NO_PRICE`].
    pub last_trade: AtomicI64,
}

impl Default for InstrumentCells {
    fn default() -> Self {
        Self {
            trades: AtomicU64::new(0),
            volume: AtomicU64::new(0),
            resting_bids: AtomicU64::new(0),
            resting_asks: AtomicU64::new(0),
            best_bid: AtomicI64::new(NO_PRICE),
            best_ask: AtomicI64::new(NO_PRICE),
            last_trade: AtomicI64::new(NO_PRICE),
        }
    }
}

/// What an engine publishes for the exporter.
#[derive(Debug)]
pub struct EngineMetrics {
    /// Cancels by reason index.
    pub cancels: CachePadded<[AtomicU64; CANCEL_SLOTS]>,
    /// Busy nanoseconds (cumulative).
    pub busy_ns: AtomicU64,
    /// Busy share of the last interval, in parts per million.
    pub busy_ppm: AtomicU64,
    /// Hand-overs done.
    pub handovers: AtomicU64,
    /// Hand-overs skipped.
    pub handover_skips: AtomicU64,
    /// Commands processed.
    pub commands: AtomicU64,
    /// Loop iterations that found work.
    pub busy_loops: AtomicU64,
    /// Loop iterations that found none.
    pub idle_loops: AtomicU64,
    /// Times the engine waited on a full outbound ring.
    pub out_ring_waits: AtomicU64,
    /// Times the engine waited on a full ring to the market-data publisher.
    pub md_ring_waits: AtomicU64,
    /// Per instrument id (only the engine's own instruments are written).
    pub instruments: Box<[InstrumentCells]>,
}

impl EngineMetrics {
    /// Cells for `instruments` instrument ids.
    pub fn new(instruments: usize) -> Self {
        Self {
            cancels: CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
            busy_ns: AtomicU64::new(0),
            busy_ppm: AtomicU64::new(0),
            handovers: AtomicU64::new(0),
            handover_skips: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            busy_loops: AtomicU64::new(0),
            idle_loops: AtomicU64::new(0),
            out_ring_waits: AtomicU64::new(0),
            md_ring_waits: AtomicU64::new(0),
            instruments: (0..instruments)
                .map(|_| InstrumentCells::default())
                .collect(),
        }
    }

    /// Copies the thread's counters (single writer: plain stores).
    pub fn publish(&self, c: &EngineCounters) {
        for (cell, v) in self.cancels.iter().zip(c.cancels.iter()) {
            cell.store(*v, Relaxed);
        }
        for (i, cell) in self.instruments.iter().enumerate() {
            cell.trades.store(c.trades[i], Relaxed);
            cell.volume.store(c.volume[i], Relaxed);
        }
        self.busy_ns.store(c.busy_ns, Relaxed);
        self.handovers.store(c.handovers, Relaxed);
        self.handover_skips.store(c.handover_skips, Relaxed);
        self.commands.store(c.commands, Relaxed);
        self.busy_loops.store(c.busy_loops, Relaxed);
        self.idle_loops.store(c.idle_loops, Relaxed);
        self.out_ring_waits.store(c.out_ring_waits, Relaxed);
        self.md_ring_waits.store(c.md_ring_waits, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{reject_index, REJECT_OTHER};

    #[test]
    fn gateway_counters_reach_the_exporter_only_when_published() {
        let mut c = GatewayCounters::default();
        let m = GatewayMetrics::default();
        c.order_received(1, 0, 1);
        c.order_received(1, 0, 1);
        c.reject(reject_index(100));
        c.reject(9999);
        c.disconnect(0, DisconnectCause::SlowConsumer);
        assert_eq!(m.orders(1, 0, 1), 0, "nothing published yet");
        m.publish(&c);
        assert_eq!(m.orders(1, 0, 1), 2);
        assert_eq!(m.orders(0, 0, 1), 0);
        assert_eq!(m.get(gw::REJECTS + reject_index(100)), 1);
        assert_eq!(m.get(gw::REJECTS + REJECT_OTHER), 1);
        assert_eq!(m.disconnects(0, DisconnectCause::SlowConsumer as usize), 1);
        // The families do not overlap and fill the array exactly.
        const {
            assert!(gw::LEN == gw::FIX_MD_SUBSCRIPTIONS + 1);
            assert!(gw::FIX_MD_MESSAGES == gw::AUDIT_RATE_LIMITED + 1);
            assert!(gw::AUDIT_RATE_LIMITED == gw::STORE_EVICTED + PROTOCOLS);
            assert!(gw::REJECTS >= 8 && gw::CANCEL_REJECTS - gw::REJECTS == REJECT_SLOTS);
        }
    }

    #[test]
    fn shared_blocks_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<GatewayMetrics>() >= 64);
        assert_eq!(std::mem::size_of::<GatewayMetrics>() % 64, 0);
        assert!(std::mem::align_of::<CachePadded<[AtomicU64; 8]>>() >= 64);
    }

    #[test]
    fn engine_metrics_start_without_prices() {
        let m = EngineMetrics::new(3);
        let mut c = EngineCounters::new(3);
        c.trades[2] = 5;
        c.volume[2] = 500;
        c.cancels[1] = 7;
        m.publish(&c);
        assert_eq!(m.instruments[2].trades.load(Relaxed), 5);
        assert_eq!(m.instruments[2].volume.load(Relaxed), 500);
        assert_eq!(m.cancels[1].load(Relaxed), 7);
        assert_eq!(m.instruments[0].best_bid.load(Relaxed), NO_PRICE);
    }
}

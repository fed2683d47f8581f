//! The gateway's protocol-neutral core: connection slots, the order table, the instruments,
//! the rings to and from the engines, and the clocks, stamps and counters. Hot path, except
//! where a function says otherwise.
//!
//! The core knows no protocol and no session state. Its API is narrow: connections (accept,
//! receive, send, close), order operations (enter, cancel, replace, mass cancel), and the
//! engine links. The protocol handlers (`fix`, `binary`) borrow it alongside the one session
//! they serve; the [`super::Gateway`] owns both and does what needs the two together
//! (binding a connection to a session, and detaching it again: when the core closes a bound
//! connection, it queues it in [`Core::take_detached`] rather than touching the session).

use super::conn::{Conn, ConnId, ConnState, InBuf, OutBuf};
use super::inflight::{Applied, InFlight};
use super::instruments::Instruments;
use super::orders::{ClientId, InsertError, OrderBook, OrderState, Pending};
use crate::engine::{
    Cancel, CancelReason, Command, InstrumentId, MassCancel, MassCancelScope, NewOrder, OrdType,
    OwnerId, Price, Qty, Replace, SessionId, Side, StpMode, TimeInForce,
};
use crate::rings::msg::{FromEngine, Origin, ToEngine};
use crate::rings::records::RecordTx;
use crate::rings::ring::{Receiver, Sender};
use crate::rings::stamp::{Stage, StageHistograms, Tsc};
use crate::rings::wait::Waker;
use crate::telemetry::counters::{gw as slot, GatewayCounters};
use crate::vocab::{
    ord_type_index, reject_index, side_index, DisconnectCause, GatewayReject, Protocol,
};
use std::sync::Arc;

/// Who an order operation is for: the session's identity as the engine sees it.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    /// Local session index (within this gateway).
    pub local: u16,
    /// Engine-wide session id.
    pub global: SessionId,
    /// Firm.
    pub owner: OwnerId,
    /// The session's default self-trade prevention.
    pub stp: StpMode,
    /// The session's protocol (for counting).
    pub protocol: Protocol,
    /// The operator's kill switch is engaged for the session or its firm.
    pub killed: bool,
    /// A drop-copy session: it may not send orders.
    pub read_only: bool,
}

/// The inbound message an order operation comes from: when it was received (TSC) and its
/// sequence number (FIX MsgSeqNum, binary sequence number), journaled with the command.
#[derive(Clone, Copy, Debug, Default)]
pub struct Arrival {
    /// TSC of the receive completion.
    pub t_recv: u64,
    /// The message's sequence number (0: none).
    pub seq: u64,
    /// Engines that already hold this message's command: a resend after a restart of a
    /// message the journal shows applied ([`Core::already_applied`]). Handlers skip such a
    /// message; a mass cancel goes only to the engines it did not reach.
    pub applied: u64,
}

/// A reply the protocol handlers render.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// New order acknowledged.
    Accepted {
        /// Order slot.
        slot: u32,
    },
    /// New order refused by the engine.
    Rejected {
        /// Order slot.
        slot: u32,
        /// Engine reject code.
        reason: u16,
    },
    /// A fill.
    Fill {
        /// Order slot.
        slot: u32,
        /// Execution id.
        exec_id: u64,
        /// Trade price.
        price: Price,
        /// Trade quantity.
        qty: Qty,
        /// Open quantity after the fill.
        leaves: Qty,
        /// Whether the order was resting.
        maker: bool,
    },
    /// Order (remainder) cancelled.
    Cancelled {
        /// Order slot.
        slot: u32,
        /// Quantity cancelled.
        qty: Qty,
        /// Why.
        reason: CancelReason,
        /// The cancel request's client id, for user cancels.
        request: Option<ClientId>,
    },
    /// Replace applied.
    Replaced {
        /// Order slot (its `client_id` is the new id, `orig_client_id` the previous).
        slot: u32,
        /// Whether time priority was kept.
        priority_kept: bool,
        /// Open quantity.
        leaves: Qty,
    },
    /// Cancel or replace refused.
    CancelRejected {
        /// Order slot, when the order is known.
        slot: Option<u32>,
        /// The request's client id (FIX: the cancel/replace ClOrdID; binary: the token named).
        request: ClientId,
        /// The order's id as named by the request.
        orig: ClientId,
        /// Cancel or replace.
        kind: crate::engine::CancelKind,
        /// Reject code (engine or gateway).
        reason: u16,
    },
    /// Mass cancel finished.
    MassCancelDone {
        /// The request's id.
        request: ClientId,
        /// Orders cancelled across engines.
        count: u64,
        /// The instrument the request named, if any.
        instrument: Option<InstrumentId>,
    },
}

impl Reply {
    /// Whether it is rendered as an ExecutionReport (what a drop copy receives).
    #[inline]
    pub fn is_execution_report(&self) -> bool {
        matches!(
            self,
            Reply::Accepted { .. }
                | Reply::Rejected { .. }
                | Reply::Fill { .. }
                | Reply::Cancelled { .. }
                | Reply::Replaced { .. }
        )
    }

    /// The order slot the reply is about, if any.
    #[inline]
    pub fn slot(&self) -> Option<u32> {
        match *self {
            Reply::Accepted { slot }
            | Reply::Rejected { slot, .. }
            | Reply::Fill { slot, .. }
            | Reply::Cancelled { slot, .. }
            | Reply::Replaced { slot, .. } => Some(slot),
            Reply::CancelRejected { slot, .. } => slot,
            Reply::MassCancelDone { .. } => None,
        }
    }
}

/// A firm's limits over all its sessions on this gateway.
#[derive(Clone, Debug, Default)]
pub struct FirmLimits {
    /// The firm's local sessions.
    pub sessions: Vec<u16>,
    /// Working orders together (0: no limit).
    pub max_open_orders: u32,
    /// Gross open notional per instrument, in price units x quantity (0: no limit).
    pub notional: Vec<i128>,
}

/// A validated new order, ready for the engine.
#[derive(Clone, Copy, Debug)]
pub struct OrderRequest {
    /// Client order id.
    pub client_id: ClientId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Order type.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Limit price (0 for market).
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Post-only.
    pub post_only: bool,
    /// Self-trade prevention override (`None`: the session's default).
    pub stp: Option<StpMode>,
}

/// How a gateway shares its connection slots and how long a closing connection may take.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Connections not logged on yet, in all.
    pub max_unauthenticated: usize,
    /// Connections not logged on yet, from one address.
    pub max_unauthenticated_per_address: usize,
    /// Time a closing connection gets to flush (monotonic ns).
    pub closing_timeout_ns: u64,
    /// TCP_USER_TIMEOUT of accepted sockets, ms (0: the kernel's default).
    pub tcp_user_timeout_ms: u32,
    /// TCP keepalive idle time of accepted sockets, s (0: off).
    pub tcp_keepalive_secs: u32,
}

impl ConnLimits {
    /// From the `[gateway]` section.
    pub fn from_config(g: &crate::config::GatewaySection) -> Self {
        Self {
            max_unauthenticated: g.max_unauthenticated,
            max_unauthenticated_per_address: g.max_unauthenticated_per_address,
            closing_timeout_ns: g.closing_timeout_ms * 1_000_000,
            tcp_user_timeout_ms: g.tcp_user_timeout_ms,
            tcp_keepalive_secs: g.tcp_keepalive_secs,
        }
    }

    /// Defaults for `max_connections` slots: half of them for connections not logged on.
    pub fn for_slots(max_connections: usize) -> Self {
        let unauth = (max_connections / 2).max(1);
        Self {
            max_unauthenticated: unauth,
            max_unauthenticated_per_address: unauth,
            closing_timeout_ns: 2_000_000_000,
            tcp_user_timeout_ms: 30_000,
            tcp_keepalive_secs: 30,
        }
    }
}

/// Sizes of a gateway's reserved memory.
#[derive(Clone, Copy, Debug)]
pub struct GatewaySizing {
    /// Connection slots.
    pub max_connections: usize,
    /// Order slots.
    pub max_orders: usize,
    /// Input buffer per connection.
    pub input_bytes: usize,
    /// Output buffer per connection.
    pub output_bytes: usize,
    /// Replay log per binary user.
    pub replay_log_bytes: usize,
    /// Bytes of sent messages each FIX session keeps for resends.
    pub fix_store_bytes: usize,
    /// Messages each FIX session keeps for resends.
    pub fix_store_messages: usize,
}

impl Default for GatewaySizing {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_orders: 1 << 18,
            input_bytes: 64 << 10,
            output_bytes: 2 << 20,
            replay_log_bytes: 16 << 20,
            fix_store_bytes: super::fix::STORE_BYTES,
            fix_store_messages: super::fix::STORE_MESSAGES,
        }
    }
}

/// The rings and wakers connecting one gateway to the engines.
pub struct GatewayRings {
    /// One inbound ring per engine (index = engine).
    pub to_engines: Vec<Sender<ToEngine>>,
    /// The engines' wakers.
    pub engine_wakers: Vec<Arc<Waker>>,
    /// One outbound ring per engine.
    pub from_engines: Vec<Receiver<FromEngine>>,
}

/// A mass cancel waiting for every engine's completion.
#[derive(Clone, Copy, Debug)]
pub struct MassPending {
    /// Local session that asked.
    pub session: u16,
    /// The request's id.
    pub request: ClientId,
    /// Instrument named, if any.
    pub instrument: Option<InstrumentId>,
    /// Engines that have not answered yet (bit per engine).
    pub awaiting: u64,
    /// Orders cancelled so far.
    pub count: u64,
}

/// Most TSC stamp pairs kept between two send submissions.
const STAMP_CAP: usize = 8192;
/// Capacity of the lists of connections needing the driver's attention.
pub const DIRTY_CAP: usize = 1024;
/// Most mass cancels awaiting completion per gateway.
const MASS_CAP: usize = 256;

/// Commands of one session the engines have not yet taken beyond which its input waits
/// ([`Core::input_ready`]); a client with a window of a few hundred never reaches it.
pub const MAX_UNTAKEN: u32 = 512;

/// The protocol-neutral core of one gateway.
pub struct Core {
    /// Gateway index.
    pub id: usize,
    conns: Vec<Conn>,
    free_conns: Vec<ConnId>,
    /// Connection budgets and the closing deadline (set from the configuration at start).
    pub limits: ConnLimits,
    /// Each local session's throttle buckets.
    pub throttles: Vec<super::throttle::Throttle>,
    /// Each local session's open-order quota (0: none).
    pub open_quota: Vec<u32>,
    /// Gross open notional allowed per (local session, instrument), `session * instruments
    /// + instrument`, in price units x quantity (0: no limit).
    pub notional_quota: Vec<i128>,
    /// Firm-wide limits, and which applies to each local session (`firms[]` index).
    pub firm_limits: Vec<FirmLimits>,
    /// Per local session, the index of its firm's limits, if any.
    pub firm_of: Vec<Option<u16>>,
    /// Each local session's protocol and name (a drop copy names the originating session).
    pub session_labels: Vec<(Protocol, String)>,
    /// Per local session: messages received, orders and cancels refused, orders throttled
    /// (published as the per-session metrics).
    pub session_counts: Vec<[u64; 3]>,
    /// The session whose message or event is being handled (set around each one), so a
    /// refusal counted on the way is counted for it too.
    pub on_behalf: Option<u16>,
    /// The audit trail's ring to the logging thread.
    pub audit_tx: Option<crate::rings::ring::Sender<super::audit::AuditRecord>>,
    /// Whether order-level audit records (order, cancel and business rejects) are pushed
    /// (`gateway.audit_order_events`; `off`: not even pushed).
    pub audit_order_events: bool,
    /// Hand every step of an order's life to the audit thread
    /// (`gateway.audit_order_lifecycle` not `off`).
    pub audit_order_lifecycle: bool,
    /// `gateway.audit_records_per_sec` as a token bucket over every audit record.
    pub audit_bucket: super::throttle::Bucket,
    /// A session that went past its throttle under the `disconnect` policy: its protocol
    /// handler logs it out after rendering the refusal.
    throttle_tripped: Option<u16>,
    dirty: Vec<ConnId>,
    /// Bound connections that left `Open`, with their session and cause, for the owner of the
    /// sessions to detach (see the module docs).
    detached: Vec<(ConnId, u16, DisconnectCause)>,
    /// The order table.
    pub orders: OrderBook,
    /// The instrument table.
    pub instruments: Instruments,
    engines: Vec<Sender<ToEngine>>,
    engine_wakers: Vec<Arc<Waker>>,
    from_engines: Vec<Receiver<FromEngine>>,
    touched: u64,
    mass: Vec<MassPending>,
    stamps: Vec<(u64, u64)>,
    /// The TSC clock (stamps and the monotonic clock).
    pub tsc: Tsc,
    tsc_origin: u64,
    /// Monotonic nanoseconds since the gateway started (refreshed per loop iteration).
    pub now_ns: u64,
    /// Wall clock, nanoseconds since the Unix epoch (refreshed per loop iteration).
    pub wall_ns: i64,
    /// Boxed so the telemetry hand-over swaps a pointer, not a megabyte of buckets.
    pub hist: Box<StageHistograms>,
    /// Business and session counters (plain integers; published once per interval).
    pub counters: GatewayCounters,
    /// The gateway's record ring to the journal agent (`None`: journaling off).
    pub journal: Option<RecordTx>,
    /// Whether the journal takes new input (journaling on).
    pub journal_gate: Option<Arc<crate::rings::records::JournalGate>>,
    /// Commands the engines have not taken yet (tracked when journaling: see
    /// [`super::inflight`]).
    pub inflight: Option<InFlight>,
    /// Per session: messages past its journaled next inbound number whose commands the
    /// journal holds (recovered; empty in normal running).
    pub applied: Vec<Applied>,
}

impl Core {
    /// Builds the core with its memory reserved (cold path).
    pub fn new(
        id: usize,
        instruments: Instruments,
        rings: GatewayRings,
        sizing: GatewaySizing,
    ) -> Self {
        assert!(
            rings.to_engines.len() <= 64,
            "engine bitmaps are 64 bits wide"
        );
        let tsc = Tsc::new();
        let tsc_origin = tsc.now();
        Self {
            id,
            conns: (0..sizing.max_connections)
                .map(|_| Conn::new(sizing.input_bytes, sizing.output_bytes))
                .collect(),
            free_conns: (0..sizing.max_connections as ConnId).rev().collect(),
            limits: ConnLimits::for_slots(sizing.max_connections),
            throttles: Vec::new(),
            open_quota: Vec::new(),
            notional_quota: Vec::new(),
            session_labels: Vec::new(),
            firm_limits: Vec::new(),
            firm_of: Vec::new(),
            audit_tx: None,
            audit_order_events: true,
            audit_bucket: super::throttle::Bucket::new(0),
            audit_order_lifecycle: false,
            session_counts: Vec::new(),
            on_behalf: None,
            throttle_tripped: None,
            // The driver swaps this list with its own and appends its marks to it: room for
            // both, so neither ever grows.
            dirty: Vec::with_capacity(DIRTY_CAP.max(2 * sizing.max_connections)),
            detached: Vec::with_capacity(sizing.max_connections),
            orders: OrderBook::new(id as u8, sizing.max_orders),
            instruments,
            engines: rings.to_engines,
            engine_wakers: rings.engine_wakers,
            from_engines: rings.from_engines,
            touched: 0,
            mass: Vec::with_capacity(MASS_CAP),
            stamps: Vec::with_capacity(STAMP_CAP),
            tsc,
            tsc_origin,
            now_ns: 0,
            wall_ns: 0,
            hist: Box::new(StageHistograms::new()),
            counters: GatewayCounters::default(),
            journal: None,
            journal_gate: None,
            inflight: None,
            applied: Vec::new(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Clocks
    // ---------------------------------------------------------------------------------------

    /// Refreshes the cached clocks; the loop calls it once per iteration.
    #[inline]
    pub fn tick_clock(&mut self) {
        self.now_ns = self.tsc.ns_between(self.tsc_origin, self.tsc.now());
        self.wall_ns = wall_clock_ns();
    }

    // ---------------------------------------------------------------------------------------
    // Connections
    // ---------------------------------------------------------------------------------------

    /// Takes a free connection slot for a connection from `peer` (an address, IPv4 mapped
    /// into IPv6) on a listener of `protocol`; `None` when no slot is free (the driver closes
    /// the socket). Connections that have not logged on share a budget, in all and per
    /// address: when the newcomer would exceed one, the oldest such connection (of that
    /// address, for the per-address budget) is closed first, so a flood of idle connections
    /// pushes out its own oldest instead of locking a configured session out (cold path: a
    /// walk over the slots).
    pub fn accept(&mut self, protocol: Protocol, peer: u128) -> Option<ConnId> {
        self.make_room(peer);
        let Some(c) = self.free_conns.pop() else {
            self.counters.bump(slot::REFUSED);
            return None;
        };
        let now = self.now_ns;
        let conn = &mut self.conns[c as usize];
        conn.state = ConnState::Open;
        conn.protocol = protocol;
        conn.session = None;
        conn.input.clear();
        conn.output.clear();
        conn.paused = false;
        conn.dirty = false;
        conn.opened_ns = now;
        conn.peer = peer;
        conn.closing_ns = 0;
        conn.cause = DisconnectCause::PeerClosed;
        Some(c)
    }

    /// Closes the oldest connections not logged on while the newcomer from `peer` would
    /// exceed a budget.
    #[cold]
    fn make_room(&mut self, peer: u128) {
        let per_address = self.limits.max_unauthenticated_per_address;
        if let Some(c) = self.oldest_unauthenticated(Some(peer), per_address) {
            self.evict(c);
        }
        let all = self.limits.max_unauthenticated;
        if let Some(c) = self.oldest_unauthenticated(None, all) {
            self.evict(c);
        }
        // With the budget below the slots left after one per configured session (checked
        // by the configuration), slots run out only while evicted connections are still
        // closing: the newcomer is then refused, and the next finds a slot.
    }

    /// The oldest open connection not logged on (from `peer`, or from anywhere) when there
    /// are at least `limit` of them.
    fn oldest_unauthenticated(&self, peer: Option<u128>, limit: usize) -> Option<ConnId> {
        let mut n = 0;
        let mut oldest: Option<(u64, ConnId)> = None;
        for (i, conn) in self.conns.iter().enumerate() {
            if conn.state != ConnState::Open
                || conn.session.is_some()
                || peer.is_some_and(|p| p != conn.peer)
            {
                continue;
            }
            n += 1;
            if oldest.is_none_or(|(t, _)| conn.opened_ns < t) {
                oldest = Some((conn.opened_ns, i as ConnId));
            }
        }
        if n >= limit {
            oldest.map(|(_, c)| c)
        } else {
            None
        }
    }

    #[cold]
    fn evict(&mut self, c: ConnId) {
        self.counters.bump(slot::EVICTED);
        self.close_now(c, DisconnectCause::Evicted);
        let closed = super::audit::AuditEvent::ClosedUnbound(DisconnectCause::Evicted);
        self.audit(c, None, closed);
    }

    /// Hands an audit record to the logging thread (dropped and counted when its ring is
    /// full). Cold: connection and session events, not orders.
    #[cold]
    pub fn audit(&mut self, c: ConnId, session: Option<u16>, event: super::audit::AuditEvent) {
        let conn = &self.conns[c as usize];
        let (protocol, peer) = (conn.protocol, conn.peer);
        self.push_audit(Some(c), protocol, session, peer, event);
    }

    /// Hands an audit record about local session `session` (connected over `c`, or not
    /// connected) to the logging thread. Order-level refusals are not pushed when
    /// `gateway.audit_order_events` is `off`. Cold: refusals and session events only.
    #[cold]
    pub fn audit_session(
        &mut self,
        session: u16,
        c: Option<ConnId>,
        protocol: Protocol,
        event: super::audit::AuditEvent,
    ) {
        if let super::audit::AuditEvent::Reject(r) = &event {
            if r.kind.is_order_level() && !self.audit_order_events {
                return;
            }
        }
        let peer = c.map_or(0, |c| self.conns[c as usize].peer);
        self.push_audit(c, protocol, Some(session), peer, event);
    }

    fn push_audit(
        &mut self,
        conn: Option<ConnId>,
        protocol: Protocol,
        session: Option<u16>,
        peer: u128,
        event: super::audit::AuditEvent,
    ) {
        let Some(tx) = self.audit_tx.as_mut() else {
            return;
        };
        if !self.audit_bucket.take(self.now_ns) {
            self.counters.bump(slot::AUDIT_RATE_LIMITED);
            return;
        }
        let rec = super::audit::AuditRecord {
            wall_ns: wall_clock_ns(),
            event,
            conn,
            protocol,
            session,
            peer,
        };
        if tx.push(rec).is_err() {
            self.counters.bump(slot::AUDIT_DROPPED);
        }
    }

    /// Closes `c` hard if it has been closing longer than the closing deadline (a peer that
    /// does not read its last messages); returns whether it did.
    pub fn expire_closing(&mut self, c: ConnId) -> bool {
        let conn = &self.conns[c as usize];
        if conn.state != ConnState::Closing
            || self.now_ns.saturating_sub(conn.closing_ns) < self.limits.closing_timeout_ns
        {
            return false;
        }
        let cause = conn.cause;
        self.counters.bump(slot::CLOSING_TIMEOUTS);
        let conn = &mut self.conns[c as usize];
        conn.state = ConnState::Dead;
        conn.output.clear();
        self.leave_open(c, cause);
        true
    }

    /// When closing connection `c` must be closed hard, if it is closing.
    pub fn closing_deadline(&self, c: ConnId) -> Option<u64> {
        let conn = &self.conns[c as usize];
        (conn.state == ConnState::Closing).then(|| {
            conn.closing_ns
                .saturating_add(self.limits.closing_timeout_ns)
        })
    }

    /// The connection in slot `c`.
    #[inline]
    pub fn conn(&self, c: ConnId) -> &Conn {
        &self.conns[c as usize]
    }

    /// The connection's state.
    #[inline]
    pub fn state(&self, c: ConnId) -> ConnState {
        self.conns[c as usize].state
    }

    /// Slots, for walks over every connection (timers, shutdown).
    #[inline]
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether any connection is still open or closing.
    pub fn has_connections(&self) -> bool {
        self.conns.iter().any(|c| c.state != ConnState::Free)
    }

    /// Appends received bytes to `c`'s input; `false` when they do not fit.
    #[inline]
    pub fn append_input(&mut self, c: ConnId, data: &[u8], t_recv: u64) -> bool {
        let conn = &mut self.conns[c as usize];
        conn.t_recv = t_recv;
        conn.input.append(data)
    }

    /// Lends `c`'s input buffer out (a pointer swap), so frames can be borrowed from it while
    /// the core is updated; give it back with [`Core::put_input`].
    #[inline]
    pub fn take_input(&mut self, c: ConnId) -> InBuf {
        std::mem::replace(&mut self.conns[c as usize].input, InBuf::empty())
    }

    /// Returns a buffer taken with [`Core::take_input`].
    #[inline]
    pub fn put_input(&mut self, c: ConnId, input: InBuf) {
        self.conns[c as usize].input = input;
    }

    /// Whether the driver should (re)arm reading on `c`.
    #[inline]
    pub fn wants_input(&self, c: ConnId) -> bool {
        let conn = &self.conns[c as usize];
        conn.state == ConnState::Open && !conn.paused && conn.input.space() > 0
    }

    /// Bytes `c`'s input buffer can take now: a driver reads at most this much, so a client
    /// that pipelines hard is paused by TCP back-pressure, never closed for overflowing a
    /// buffer it could not see.
    #[inline]
    pub fn input_space(&self, c: ConnId) -> usize {
        self.conns[c as usize].input.space()
    }

    /// Binds `c` to local session `s` (the session's side is the caller's).
    pub fn bind(&mut self, c: ConnId, s: u16, protocol: Protocol) {
        self.counters.logon(protocol.index());
        self.conns[c as usize].session = Some(s);
    }

    /// Closes `c` at once (peer gone, stream corrupt, output overflowed): nothing more is
    /// read or sent. A bound session is queued for detaching.
    pub fn close_now(&mut self, c: ConnId, cause: DisconnectCause) {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Free || conn.state == ConnState::Dead {
            return;
        }
        conn.state = ConnState::Dead;
        self.leave_open(c, cause);
    }

    /// Sets `c` Closing (send what is queued, then close) and queues its session for
    /// detaching.
    pub fn close_after_flush(&mut self, c: ConnId, cause: DisconnectCause) {
        let conn = &mut self.conns[c as usize];
        if conn.state != ConnState::Open {
            self.mark_dirty(c);
            return;
        }
        conn.state = ConnState::Closing;
        conn.closing_ns = self.now_ns;
        self.leave_open(c, cause);
    }

    fn leave_open(&mut self, c: ConnId, cause: DisconnectCause) {
        let conn = &mut self.conns[c as usize];
        conn.cause = cause;
        if let Some(s) = conn.session.take() {
            self.detached.push((c, s, cause));
        }
        self.mark_dirty(c);
    }

    /// The next bound connection that left `Open`: `(connection, session, cause)`.
    #[inline]
    pub fn take_detached(&mut self) -> Option<(ConnId, u16, DisconnectCause)> {
        self.detached.pop()
    }

    /// Returns `c`'s slot to the pool; the driver calls it once the socket is closed and no
    /// operation is in flight.
    pub fn release(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Free {
            return;
        }
        if conn.state == ConnState::Open {
            self.close_now(c, DisconnectCause::PeerClosed);
        }
        let conn = &mut self.conns[c as usize];
        conn.state = ConnState::Free;
        conn.output.clear();
        conn.input.clear();
        conn.paused = false;
        self.free_conns.push(c);
    }

    /// Connections with output to send or a state change for the driver, since the last call.
    #[inline]
    pub fn take_dirty(&mut self, into: &mut Vec<ConnId>) {
        into.clear();
        for &c in &self.dirty {
            self.conns[c as usize].dirty = false;
        }
        std::mem::swap(into, &mut self.dirty);
    }

    /// Queues `c` for the driver's attention.
    #[inline]
    pub fn mark_dirty(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(c);
        }
    }

    /// The connection's output buffer.
    #[inline]
    pub fn output(&mut self, c: ConnId) -> &mut OutBuf {
        &mut self.conns[c as usize].output
    }

    /// Whether `c` should be closed now: Dead, or Closing with its output flushed.
    #[inline]
    pub fn should_close(&self, c: ConnId) -> bool {
        let conn = &self.conns[c as usize];
        match conn.state {
            ConnState::Dead => true,
            ConnState::Closing => conn.output.pending() == 0,
            _ => false,
        }
    }

    /// Appends `bytes` to `c`'s output. On overflow the client is a slow consumer: the
    /// connection closes (its session's messages stay stored for resend or replay after it
    /// reconnects). Returns whether the bytes were queued.
    #[inline]
    pub fn send(&mut self, c: ConnId, bytes: &[u8]) -> bool {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Dead || conn.state == ConnState::Free {
            return false;
        }
        if !conn.output.append(bytes) {
            self.slow_consumer(c);
            return false;
        }
        let p = conn.protocol.index();
        self.counters.message_out(p);
        self.mark_dirty(c);
        true
    }

    /// Closes `c` as a slow consumer (its client does not read what it is owed).
    #[cold]
    pub fn close_slow_consumer(&mut self, c: ConnId) {
        self.slow_consumer(c);
    }

    #[cold]
    fn slow_consumer(&mut self, c: ConnId) {
        self.counters.bump(slot::SLOW_CONSUMERS);
        self.close_now(c, DisconnectCause::SlowConsumer);
    }

    /// Records the stamps of an event whose reply was just queued.
    #[inline]
    pub fn stamp_reply(&mut self, t_recv: u64, t_done: u64) {
        if self.stamps.len() < STAMP_CAP {
            self.stamps.push((t_recv, t_done));
        }
    }

    /// The driver handed this iteration's sends to the kernel: records egress and
    /// wire-to-wire for every reply queued since the last submission.
    #[inline]
    pub fn sends_submitted(&mut self) {
        if self.stamps.is_empty() {
            return;
        }
        let t_send = self.tsc.now();
        for &(t_recv, t_done) in &self.stamps {
            self.hist
                .record(Stage::Egress, self.tsc.ns_between(t_done, t_send));
            self.hist
                .record(Stage::WireToWire, self.tsc.ns_between(t_recv, t_send));
        }
        self.stamps.clear();
    }

    // ---------------------------------------------------------------------------------------
    // Counting
    // ---------------------------------------------------------------------------------------

    /// Counts a decoded inbound message.
    #[inline]
    pub fn count_in(&mut self, p: Protocol) {
        self.counters.message_in(p.index());
    }

    /// Counts a refused new order (engine or gateway code).
    #[inline]
    pub fn count_reject(&mut self, code: u16) {
        self.counters.reject(reject_index(code));
        self.count_for_session(1);
    }

    /// Counts a refused cancel or replace (engine or gateway code).
    #[inline]
    pub fn count_cancel_reject(&mut self, code: u16) {
        self.counters.cancel_reject(reject_index(code));
        self.count_for_session(1);
    }

    /// Counts an inbound message of local session `s`.
    #[inline]
    pub fn count_session_in(&mut self, s: u16) {
        if let Some(c) = self.session_counts.get_mut(s as usize) {
            c[0] += 1;
        }
    }

    #[inline]
    fn count_for_session(&mut self, k: usize) {
        if let Some(c) = self
            .on_behalf
            .and_then(|s| self.session_counts.get_mut(s as usize))
        {
            c[k] += 1;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Engine links
    // ---------------------------------------------------------------------------------------

    /// Engines this gateway feeds.
    #[inline]
    pub fn engine_count(&self) -> usize {
        self.engines.len()
    }

    /// Whether every engine ring has room for one more command (a mass cancel needs one on
    /// each) and the record ring for what one message can produce. Answered from cached
    /// counts almost always. Every message that may produce commands or records is handled
    /// only after this said yes, so a push never finds its ring full.
    #[inline]
    pub fn rings_ready(&mut self) -> bool {
        let mut ok = true;
        for r in self.engines.iter_mut() {
            ok &= r.reserve(1);
        }
        if let Some(j) = self.journal.as_mut() {
            ok &= j.has_room(super::journal::RESERVE);
        }
        ok
    }

    /// Whether the record ring has room for what one engine event can produce.
    #[inline]
    pub fn journal_ready(&mut self) -> bool {
        self.journal
            .as_mut()
            .is_none_or(|j| j.has_room(super::journal::RESERVE))
    }

    /// Whether output may leave: every record this gateway pushed is durable.
    #[inline]
    pub fn output_durable(&self) -> bool {
        self.journal.as_ref().is_none_or(|j| j.all_durable())
    }

    /// Marks `c` paused by back-pressure (input stays buffered until the rings drain).
    #[cold]
    pub fn pause(&mut self, c: ConnId) {
        self.conns[c as usize].paused = true;
        self.counters.bump(slot::BACKPRESSURE);
    }

    /// Whether `c` may take another inbound message: room in the rings for what it may
    /// produce, and its session not too far ahead of its answers (see
    /// [`Core::answers_backlogged`]).
    #[inline]
    pub fn input_ready(&mut self, c: ConnId) -> bool {
        self.rings_ready() && !self.answers_backlogged(c, MAX_UNTAKEN, 2)
    }

    /// Whether paused `c` may go on: the rings have room and its session is well below the
    /// limits that paused it.
    #[inline]
    pub fn may_resume(&mut self, c: ConnId) -> bool {
        self.rings_ready() && !self.answers_backlogged(c, MAX_UNTAKEN / 2, 4)
    }

    /// With journaling, a client that sends faster than its answers can leave must wait, or
    /// its answers overflow its output buffer and it is closed as a slow consumer although it
    /// reads everything it is sent: answers are held until the journal has what they
    /// acknowledge, and the engine runs ahead of the journal. So `c` waits (its input
    /// paused; TCP slows the client) while its session has `untaken` commands or more that
    /// the engines have not taken (within one pass the gateway could otherwise push a whole
    /// input buffer's worth before any answer exists), or while its output is held for the
    /// journal and more than `1/fraction` full. A client that does not read at all is still
    /// a slow consumer: its answers, once durable, overflow a buffer that does not drain.
    #[inline]
    fn answers_backlogged(&self, c: ConnId, untaken: u32, fraction: usize) -> bool {
        let conn = &self.conns[c as usize];
        let (Some(s), Some(f)) = (conn.session, self.inflight.as_ref()) else {
            return false;
        };
        if f.session_count(s) >= untaken {
            return true;
        }
        let held = self.journal.as_ref().is_some_and(|j| !j.all_durable());
        held && conn.output.pending() > conn.output.capacity() / fraction
    }

    /// Un-pauses `c` (the rings drained); the caller processes its input again.
    pub fn resume(&mut self, c: ConnId) {
        self.conns[c as usize].paused = false;
    }

    /// Whether any connection is paused by back-pressure.
    pub fn any_paused(&self) -> bool {
        self.conns.iter().any(|c| c.paused)
    }

    /// The next event from engine `e`, if any.
    #[inline]
    pub fn pop_event(&mut self, e: usize) -> Option<FromEngine> {
        self.from_engines[e].pop()
    }

    /// Whether an engine has events waiting for this gateway (checked before sleeping).
    pub fn engine_events_waiting(&self) -> bool {
        self.from_engines.iter().any(|r| !r.is_empty())
    }

    #[inline]
    fn push(&mut self, engine: usize, cmd: Command, t_recv: u64, origin: &Origin) {
        let msg = ToEngine {
            cmd,
            t_recv,
            t_push: self.tsc.now(),
            origin: *origin,
        };
        // Callers made sure of the room (`rings_ready` before the message that led here), so
        // this cannot fail; if it ever did, dropping would lose an order: fail loudly.
        if self.engines[engine].push(msg).is_err() {
            panic!("engine ring {engine} full after reserve: back-pressure bookkeeping bug");
        }
        if let Some(f) = self.inflight.as_mut() {
            let ring = &self.engines[engine];
            f.pushed(engine, origin.session, origin.in_seq, || ring.consumed());
        }
        self.hist
            .record(Stage::Ingress, self.tsc.ns_between(t_recv, msg.t_push));
        self.touched |= 1 << engine;
    }

    /// Wakes the engines this iteration pushed to (once per batch).
    #[inline]
    pub fn publish(&mut self) {
        let mut t = self.touched;
        self.touched = 0;
        while t != 0 {
            let e = t.trailing_zeros() as usize;
            t &= t - 1;
            self.engines[e].note_occupancy();
            self.engine_wakers[e].wake_after_publish();
        }
    }

    // ---------------------------------------------------------------------------------------
    // Order operations (the caller has checked `rings_ready`)
    // ---------------------------------------------------------------------------------------

    /// A new order or replace of local session `s` against its throttles.
    #[inline]
    fn throttle_order(&mut self, s: u16) -> Result<(), GatewayReject> {
        let now = self.now_ns;
        let Some(t) = self.throttles.get_mut(s as usize) else {
            return Ok(());
        };
        if t.order(now) {
            return Ok(());
        }
        if let Some(c) = self.session_counts.get_mut(s as usize) {
            c[2] += 1;
        }
        if t.policy == super::throttle::ThrottlePolicy::Disconnect {
            self.throttle_tripped = Some(s);
        }
        Err(GatewayReject::Throttled)
    }

    #[inline]
    fn throttle_cancel(&mut self, s: u16) {
        let now = self.now_ns;
        if let Some(t) = self.throttles.get_mut(s as usize) {
            t.cancel(now);
        }
    }

    /// The session that went past its throttle under the `disconnect` policy, once.
    #[inline]
    pub fn take_throttle_trip(&mut self) -> Option<u16> {
        self.throttle_tripped.take()
    }

    /// Whether adding `adds` (price units x quantity) to local session `s`'s open notional
    /// on `instrument` would pass its quota.
    #[inline]
    fn over_notional(&self, s: u16, instrument: InstrumentId, adds: i128) -> bool {
        let n = self.instruments.all().len();
        match self
            .notional_quota
            .get(s as usize * n + instrument as usize)
        {
            Some(&max) if max > 0 => self.orders.exposure(s, instrument) + adds > max,
            _ => false,
        }
    }

    /// Whether adding `adds` to firm `f`'s open notional on `instrument` (over its sessions
    /// here) would pass its quota.
    #[inline]
    fn firm_over_notional(&self, f: u16, instrument: InstrumentId, adds: i128) -> bool {
        let firm = &self.firm_limits[f as usize];
        match firm.notional.get(instrument as usize) {
            Some(&max) if max > 0 => {
                let open: i128 = firm
                    .sessions
                    .iter()
                    .map(|&s| self.orders.exposure(s, instrument))
                    .sum();
                open + adds > max
            }
            _ => false,
        }
    }

    /// Registers a new order and sends it to its engine. Returns the order's slot.
    #[inline]
    pub fn enter(
        &mut self,
        who: &Who,
        req: &OrderRequest,
        at: Arrival,
    ) -> Result<u32, GatewayReject> {
        if who.killed {
            return Err(GatewayReject::KillSwitch);
        }
        if self.instruments.is_halted(req.instrument) {
            return Err(GatewayReject::InstrumentHalted);
        }
        self.throttle_order(who.local)?;
        match self.open_quota.get(who.local as usize) {
            Some(&max) if max > 0 && self.orders.live_of(who.local) >= max => {
                return Err(GatewayReject::OpenOrderQuota)
            }
            _ => {}
        }
        let adds = (req.price as i128).abs() * req.qty as i128;
        if self.over_notional(who.local, req.instrument, adds) {
            return Err(GatewayReject::NotionalQuota);
        }
        if let Some(f) = self.firm_of.get(who.local as usize).copied().flatten() {
            let firm = &self.firm_limits[f as usize];
            if firm.max_open_orders > 0 {
                let open: u32 = firm.sessions.iter().map(|&s| self.orders.live_of(s)).sum();
                if open >= firm.max_open_orders {
                    return Err(GatewayReject::FirmOpenOrderQuota);
                }
            }
            if self.firm_over_notional(f, req.instrument, adds) {
                return Err(GatewayReject::FirmNotionalQuota);
            }
        }
        self.journal_open()?;
        let slot = self
            .orders
            .insert(who.local, req.client_id)
            .map_err(|e| match e {
                InsertError::Duplicate => GatewayReject::DuplicateClientId,
                InsertError::Full => GatewayReject::Capacity,
            })?;
        let o = self.orders.get_mut(slot);
        o.instrument = req.instrument;
        o.side = req.side;
        o.ord_type = req.ord_type;
        o.tif = req.tif;
        o.post_only = req.post_only;
        o.price = req.price;
        o.qty = req.qty;
        self.orders.expose(slot);
        let cmd = Command::New(NewOrder {
            order_id: self.orders.order_id(slot),
            instrument: req.instrument,
            session: who.global,
            owner: who.owner,
            side: req.side,
            ord_type: req.ord_type,
            tif: req.tif,
            price: req.price,
            qty: req.qty,
            post_only: req.post_only,
            stp: req.stp.unwrap_or(who.stp),
        });
        let engine = self.instruments.get(req.instrument).map_or(0, |i| i.engine);
        let origin = self.origin(who, at, &req.client_id);
        self.push(engine, cmd, at.t_recv, &origin);
        self.counters.order_received(
            who.protocol.index(),
            side_index(req.side),
            ord_type_index(req.ord_type),
        );
        Ok(slot)
    }

    /// Refuses state-changing input while the journal cannot take it (a relaxed load).
    #[inline]
    fn journal_open(&self) -> Result<(), GatewayReject> {
        match &self.journal_gate {
            Some(g) if g.refusing() => Err(GatewayReject::JournalUnavailable),
            _ => Ok(()),
        }
    }

    /// Finds a live order of session `s` for a cancel or replace.
    #[inline]
    fn live_order(&self, s: u16, orig: &ClientId) -> Result<u32, (GatewayReject, Option<u32>)> {
        let slot = self
            .orders
            .find(s, orig)
            .ok_or((GatewayReject::UnknownOrder, None))?;
        let o = self.orders.get(slot);
        match o.state {
            OrderState::Done | OrderState::Free => Err((GatewayReject::OrderNotLive, Some(slot))),
            _ if o.pending != Pending::None => Err((GatewayReject::RequestPending, Some(slot))),
            _ => Ok(slot),
        }
    }

    /// The origin of a command from `who`'s message `at`, naming `id`.
    #[inline]
    fn origin(&self, who: &Who, at: Arrival, id: &ClientId) -> Origin {
        let mut o = Origin::new(self.id as u8, who.local, at.seq);
        o.set_id(id.as_bytes());
        o
    }

    /// Sends a cancel of the session's order `orig`.
    #[inline]
    pub fn cancel(
        &mut self,
        who: &Who,
        orig: &ClientId,
        request: ClientId,
        at: Arrival,
    ) -> Result<u32, (GatewayReject, Option<u32>)> {
        // Cancels are never refused for a kill switch, a halt or a throttle: risk goes down
        // (they count against the message rate).
        self.throttle_cancel(who.local);
        self.journal_open().map_err(|r| (r, None))?;
        let slot = self.live_order(who.local, orig)?;
        let o = self.orders.get_mut(slot);
        o.pending = Pending::Cancel(request);
        let engine = self.instruments.get(o.instrument).map_or(0, |i| i.engine);
        let cmd = Command::Cancel(Cancel {
            order_id: self.orders.order_id(slot),
            session: who.global,
        });
        let origin = self.origin(who, at, &request);
        self.push(engine, cmd, at.t_recv, &origin);
        Ok(slot)
    }

    /// Sends a replace; the order takes `new_id` when the engine applies it.
    #[inline]
    pub fn replace(
        &mut self,
        who: &Who,
        orig: &ClientId,
        new_id: ClientId,
        price: Option<Price>,
        qty: Qty,
        at: Arrival,
    ) -> Result<u32, (GatewayReject, Option<u32>)> {
        if who.killed {
            let slot = self.live_order(who.local, orig).ok();
            return Err((GatewayReject::KillSwitch, slot));
        }
        self.journal_open().map_err(|r| (r, None))?;
        let slot = self.live_order(who.local, orig)?;
        if self.instruments.is_halted(self.orders.get(slot).instrument) {
            return Err((GatewayReject::InstrumentHalted, Some(slot)));
        }
        self.throttle_order(who.local)
            .map_err(|r| (r, Some(slot)))?;
        {
            // Only a replace that adds notional is checked: one that reduces it takes risk off.
            let o = self.orders.get(slot);
            let now = self.orders.exposure_of_slot(slot);
            let new_price = (price.unwrap_or(o.price) as i128).abs();
            let then = new_price * qty.saturating_sub(o.cum_qty) as i128;
            if then > now && self.over_notional(who.local, o.instrument, then - now) {
                return Err((GatewayReject::NotionalQuota, Some(slot)));
            }
            let firm = self.firm_of.get(who.local as usize).copied().flatten();
            if let Some(f) = firm.filter(|_| then > now) {
                if self.firm_over_notional(f, o.instrument, then - now) {
                    return Err((GatewayReject::FirmNotionalQuota, Some(slot)));
                }
            }
        }
        if new_id != *orig {
            self.orders
                .add_alias(who.local, new_id, slot)
                .map_err(|_| (GatewayReject::DuplicateClientId, Some(slot)))?;
        }
        let o = self.orders.get_mut(slot);
        o.pending = Pending::Replace(new_id);
        let engine = self.instruments.get(o.instrument).map_or(0, |i| i.engine);
        let cmd = Command::Replace(Replace {
            order_id: self.orders.order_id(slot),
            session: who.global,
            price,
            qty,
        });
        let origin = self.origin(who, at, &new_id);
        self.push(engine, cmd, at.t_recv, &origin);
        Ok(slot)
    }

    /// Sends a mass cancel of the session's orders (of one side, if `side`) to every engine
    /// concerned; the reply comes once every engine answered ([`Core::mass_answered`]). The
    /// session's own orders, as the rules of engagement say: a firm-wide cancel is the
    /// operator's.
    pub fn mass_cancel(
        &mut self,
        who: &Who,
        request: ClientId,
        instrument: Option<InstrumentId>,
        side: Option<Side>,
        at: Arrival,
    ) -> Result<(), GatewayReject> {
        self.throttle_cancel(who.local);
        self.journal_open()?;
        let cmd = Command::MassCancel(MassCancel {
            side,
            session: who.global,
            owner: who.owner,
            instrument,
            scope: MassCancelScope::BySession,
            reason: CancelReason::MassCancel,
        });
        if at.applied != 0 {
            // Resent after a restart and journaled on some engines: recovery restored the
            // request waiting for the others; send it to those only.
            let origin = self.origin(who, at, &request);
            let mut a = self
                .mass
                .iter()
                .find(|p| p.session == who.local && p.request == request)
                .map_or(0, |p| p.awaiting & !at.applied);
            while a != 0 {
                let e = a.trailing_zeros() as usize;
                a &= a - 1;
                self.push(e, cmd, at.t_recv, &origin);
            }
            return Ok(());
        }
        if self.mass.len() == MASS_CAP {
            return Err(GatewayReject::Capacity);
        }
        let awaiting = match instrument.and_then(|i| self.instruments.get(i)) {
            Some(ins) => 1u64 << ins.engine,
            None => u64::MAX >> (64 - self.engines.len()),
        };
        self.mass.push(MassPending {
            session: who.local,
            request,
            instrument,
            awaiting,
            count: 0,
        });
        let origin = self.origin(who, at, &request);
        let mut a = awaiting;
        while a != 0 {
            let e = a.trailing_zeros() as usize;
            a &= a - 1;
            self.push(e, cmd, at.t_recv, &origin);
        }
        Ok(())
    }

    /// Engine `engine` finished its part of session `s`'s mass cancel with `count` orders;
    /// returns the whole request once every engine has answered.
    pub fn mass_answered(&mut self, engine: usize, s: u16, count: u32) -> Option<MassPending> {
        let bit = 1u64 << engine;
        let i = self
            .mass
            .iter()
            .position(|p| p.session == s && p.awaiting & bit != 0)?;
        let p = &mut self.mass[i];
        p.awaiting &= !bit;
        p.count += count as u64;
        (p.awaiting == 0).then(|| self.mass.remove(i))
    }

    /// Recovery: a mass cancel the journal shows was sent and awaits its engines (one record
    /// per engine: the first creates it).
    pub fn restore_mass(&mut self, m: MassPending) {
        let exists = self
            .mass
            .iter()
            .any(|p| p.session == m.session && p.request == m.request);
        if !exists && self.mass.len() < MASS_CAP {
            self.mass.push(m);
        }
    }

    /// The mass cancels awaiting engines, for a snapshot or the state hash (cold path).
    pub fn encode_mass(&self, p: &mut crate::recovery::codec::Put) {
        p.u32(self.mass.len() as u32);
        for m in &self.mass {
            p.u16(m.session);
            p.bytes(m.request.as_bytes());
            match m.instrument {
                Some(i) => {
                    p.u8(1);
                    p.u32(i);
                }
                None => p.u8(0),
            }
            p.u64(m.awaiting);
            p.u64(m.count);
        }
    }

    /// Restores what [`Core::encode_mass`] wrote (cold path).
    pub fn decode_mass(
        &mut self,
        g: &mut crate::recovery::codec::Get<'_>,
    ) -> Result<(), crate::recovery::codec::CodecError> {
        let n = g.count(MASS_CAP)?;
        self.mass.clear();
        for _ in 0..n {
            let session = g.u16()?;
            let id = g.bytes()?;
            let request = ClientId::from_bytes(id).ok_or_else(|| g.err("mass cancel id"))?;
            let instrument = match g.u8()? {
                0 => None,
                _ => Some(g.u32()?),
            };
            self.mass.push(MassPending {
                session,
                request,
                instrument,
                awaiting: g.u64()?,
                count: g.u64()?,
            });
        }
        Ok(())
    }

    /// Replaces the engine links (a gateway rebuilt by recovery goes live).
    pub fn attach_rings(&mut self, rings: GatewayRings) {
        self.engines = rings.to_engines;
        self.engine_wakers = rings.engine_wakers;
        self.from_engines = rings.from_engines;
        if let Some(sessions) = self.inflight.as_ref().map(|f| f.sessions()) {
            self.inflight = Some(InFlight::new(sessions, &self.ring_capacities()));
        }
    }

    /// Starts tracking the commands in flight to the engines, for `sessions` sessions (cold
    /// path: journaling is on).
    pub fn track_in_flight(&mut self, sessions: usize) {
        self.inflight = Some(InFlight::new(sessions, &self.ring_capacities()));
        self.applied.resize_with(sessions, Applied::default);
    }

    /// Session `s` received message `seq`: the engines that already hold its command, as
    /// the journal showed at recovery (0, almost always: apply it). See [`Applied`].
    #[inline]
    pub fn already_applied(&mut self, s: u16, seq: u64) -> u64 {
        match self.applied.get_mut(s as usize) {
            Some(a) if !a.is_empty() && seq > 0 => {
                let mask = a.take(seq);
                if mask != 0 {
                    self.counters.bump(slot::RESENT_APPLIED);
                }
                mask
            }
            _ => 0,
        }
    }

    fn ring_capacities(&self) -> Vec<usize> {
        self.engines.iter().map(|r| r.capacity()).collect()
    }

    /// Drops the commands the engines have taken (one shared load per engine; once per
    /// pass, before the pass's sequence records).
    #[inline]
    pub fn retire_in_flight(&mut self) {
        if let Some(f) = self.inflight.as_mut() {
            for (e, ring) in self.engines.iter().enumerate() {
                f.retire(e, ring.consumed());
            }
        }
    }

    /// The next inbound number session `s` may journal when it expects `next_in`.
    #[inline]
    pub fn safe_next_in(&self, s: u16, next_in: u64) -> u64 {
        self.inflight
            .as_ref()
            .map_or(next_in, |f| f.safe_next_in(s, next_in))
    }

    /// Whether every command this gateway pushed has been taken by its engine.
    pub fn in_flight_empty(&self) -> bool {
        self.inflight.as_ref().is_none_or(|f| f.is_empty())
    }

    /// Sends instrument `instrument`'s engine `ExpireDayOrders` (its session ended). The
    /// caller has checked `rings_ready`. Returns whether the instrument exists.
    pub fn expire_day(&mut self, instrument: InstrumentId) -> bool {
        let Some(engine) = self.instruments.get(instrument).map(|i| i.engine) else {
            return false;
        };
        let cmd = Command::ExpireDayOrders(crate::engine::ExpireDayOrders {
            instrument: Some(instrument),
        });
        let t = self.tsc.now();
        let origin = Origin::new(self.id as u8, 0, 0);
        self.push(engine, cmd, t, &origin);
        true
    }

    /// Sends the cancel-on-disconnect of a session (a mass cancel by session on every
    /// engine). The caller has checked `rings_ready`.
    pub fn disconnect_cancel(&mut self, who: &Who) {
        self.session_cancel(who, CancelReason::Disconnect);
    }

    /// Cancels every working order of a session on every engine, for `reason` (disconnect,
    /// kill switch). The caller has checked `rings_ready`.
    pub fn session_cancel(&mut self, who: &Who, reason: CancelReason) {
        self.operator_cancel(who, None, reason);
    }

    /// Cancels a session's working orders, on `instrument` only if given (its engine alone
    /// then), for `reason`. The caller checked `rings_ready`.
    pub fn operator_cancel(
        &mut self,
        who: &Who,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
    ) {
        let cmd = Command::MassCancel(MassCancel {
            side: None,
            session: who.global,
            owner: who.owner,
            instrument,
            scope: MassCancelScope::BySession,
            reason,
        });
        let t = self.tsc.now();
        let origin = Origin::new(self.id as u8, who.local, 0);
        let only = instrument
            .and_then(|i| self.instruments.get(i))
            .map(|i| i.engine);
        for e in 0..self.engines.len() {
            if only.is_none_or(|o| o == e) {
                self.push(e, cmd, t, &origin);
            }
        }
    }
}

/// Wall-clock time in nanoseconds since the Unix epoch (vDSO `clock_gettime`, no syscall).
#[inline]
pub fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

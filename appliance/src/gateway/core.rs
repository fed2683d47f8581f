//! The gateway's protocol-neutral core: connections, sessions, orders and the two ring
//! directions. I/O drivers (io_uring, epoll) feed it received bytes and send what it queues;
//! the protocol modules (`binary_glue`, `fix_glue`) turn frames into order requests and
//! engine events into replies. Hot path, except where a function says otherwise.

use super::conn::{InBuf, OutBuf};
use super::instruments::Instruments;
use super::orders::{ClientId, InsertError, OrderBook, OrderState, Pending};
use crate::binary::session::{Connection as BinConn, UserState};
use crate::engine::{
    Cancel, CancelKind, CancelReason, Command, EventKind, InstrumentId, MassCancel,
    MassCancelScope, NewOrder, OrdType, OwnerId, Price, Qty, Replace, SessionId, Side, StpMode,
    TimeInForce,
};
use crate::runtime::msg::{session_id, FromEngine, ToEngine};
use crate::runtime::ring::{Receiver, Sender};
use crate::runtime::stamp::{Stage, StageHistograms, Tsc};
use crate::runtime::wait::Waker;
use crate::telemetry::counters::{gw as slot, GatewayCounters};
use crate::telemetry::labels::{self, DisconnectCause};
use crate::telemetry::GatewayTelemetry;
use std::sync::Arc;

/// Connection handle: the index of the connection's slot.
pub type ConnId = u32;

/// Which protocol a listener (and its connections) speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// FIX 4.4 tag=value.
    Fix,
    /// The binary order-entry protocol.
    Binary,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Slot unused.
    Free,
    /// Reading and writing.
    Open,
    /// A goodbye is queued: close once the output is flushed, read nothing more.
    Closing,
    /// Close now (peer gone, stream corrupt, or output overflowed); the driver closes the
    /// socket and calls [`Gateway::release`] once no operation is in flight.
    Dead,
}

/// Gateway-level reject codes (below 100 are the engine's; see `docs/binary-protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum GatewayReject {
    /// Symbol not configured.
    UnknownSymbol = 100,
    /// Client order id already used by the session.
    DuplicateClientId = 101,
    /// Side not recognised.
    InvalidSide = 102,
    /// Order type not recognised.
    InvalidOrdType = 103,
    /// Time in force not recognised.
    InvalidTimeInForce = 104,
    /// Self-trade-prevention value not recognised.
    InvalidStp = 105,
    /// Unknown flag bits.
    InvalidFlags = 106,
    /// The gateway's order table is full of live orders (or too many mass cancels pending).
    Capacity = 107,
    /// Cancel/replace names an order the session never entered.
    UnknownOrder = 108,
    /// Cancel/replace names a finished order.
    OrderNotLive = 109,
    /// A cancel or replace is already pending for the order.
    RequestPending = 110,
    /// Price missing or malformed for the instrument (FIX).
    InvalidPrice = 111,
    /// Quantity missing or malformed (FIX).
    InvalidQuantity = 112,
    /// Client order id longer than the gateway keeps (FIX ClOrdID over 24 characters).
    ClientIdTooLong = 113,
}

/// Per-session settings and the state that outlives connections.
pub struct SessionSlot {
    /// Protocol.
    pub protocol: Protocol,
    /// Engine-wide session id.
    pub global: SessionId,
    /// FIX: the client's CompID; binary: the username.
    pub name: String,
    /// FIX: Username (553) required at logon.
    pub username: Option<String>,
    /// Password required at logon.
    pub password: Option<String>,
    /// Firm.
    pub owner: OwnerId,
    /// Default self-trade prevention.
    pub stp: StpMode,
    /// Cancel resting orders when the connection drops.
    pub cancel_on_disconnect: bool,
    /// The logged-in connection.
    pub conn: Option<ConnId>,
    /// Binary users: sequence numbers and replay log.
    pub user: Option<UserState>,
    /// FIX sessions: the session state machine.
    pub fix: Option<super::fix_glue::FixSession>,
    /// A cancel-on-disconnect still to be pushed (the rings were full when the link dropped).
    pub disconnect_cancel_pending: bool,
}

/// One client connection.
pub struct Conn {
    /// Life-cycle state.
    pub state: ConnState,
    /// Protocol of the listener it came from.
    pub protocol: Protocol,
    /// Bound session, once logged in.
    pub session: Option<u16>,
    /// Binary protocol state (unused on FIX connections).
    pub bin: BinConn,
    /// Received bytes not yet framed.
    pub input: InBuf,
    /// Replies not yet sent.
    pub output: OutBuf,
    /// Input processing stopped because an engine ring was full.
    pub paused: bool,
    /// TSC of the last receive completion (stamped on the commands it produced).
    pub t_recv: u64,
    /// Binary replay in progress: the next sequence number to copy from the user's log.
    pub replay_next: Option<u32>,
    /// When the connection was accepted (monotonic ns): unbound FIX connections time out.
    pub opened_ns: u64,
    dirty: bool,
}

/// A mass cancel waiting for every engine's completion.
#[derive(Clone, Copy, Debug)]
struct MassPending {
    session: u16,
    request: ClientId,
    instrument: Option<InstrumentId>,
    awaiting: u64,
    count: u64,
}

/// A reply the protocol modules render.
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
        kind: CancelKind,
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
}

impl Default for GatewaySizing {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_orders: 1 << 18,
            input_bytes: 64 << 10,
            output_bytes: 2 << 20,
            replay_log_bytes: 16 << 20,
        }
    }
}

/// Counters a gateway publishes (single writer, read by the exporter).
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Messages decoded from clients.
    pub messages_in: std::sync::atomic::AtomicU64,
    /// Messages queued to clients.
    pub messages_out: std::sync::atomic::AtomicU64,
    /// Times input was paused because an engine ring was full.
    pub backpressure_events: std::sync::atomic::AtomicU64,
    /// Connections closed because their output overflowed.
    pub slow_consumer_disconnects: std::sync::atomic::AtomicU64,
    /// Set while the gateway's listeners are open (readiness).
    pub listening: std::sync::atomic::AtomicBool,
}

/// Most TSC stamp pairs kept between two send submissions.
const STAMP_CAP: usize = 8192;
/// Most mass cancels awaiting completion per gateway.
const MASS_CAP: usize = 256;

/// The gateway core.
pub struct Gateway {
    /// Gateway index.
    pub id: usize,
    pub(crate) conns: Vec<Conn>,
    free_conns: Vec<ConnId>,
    /// Sessions this gateway serves (FIX sessions, then binary users).
    pub(crate) sessions: Vec<SessionSlot>,
    pub(crate) orders: OrderBook,
    pub(crate) instruments: Instruments,
    engines: Vec<Sender<ToEngine>>,
    engine_wakers: Vec<Arc<Waker>>,
    from_engines: Vec<Receiver<FromEngine>>,
    touched: u64,
    dirty: Vec<ConnId>,
    stamps: Vec<(u64, u64)>,
    mass: Vec<MassPending>,
    pub(crate) tsc: Tsc,
    tsc_origin: u64,
    /// Monotonic nanoseconds since the gateway started (refreshed per call).
    pub(crate) now_ns: u64,
    /// Wall clock, nanoseconds since the Unix epoch (refreshed per call).
    pub(crate) wall_ns: i64,
    /// Boxed so the telemetry hand-over swaps a pointer, not a megabyte of buckets.
    pub(crate) hist: Box<StageHistograms>,
    /// Published counters.
    pub stats: Arc<GatewayStats>,
    messages_in: u64,
    messages_out: u64,
    /// Business and session counters (plain integers; published once per interval).
    pub(crate) counters: GatewayCounters,
    /// Why the connection being closed now closes (set by the protocol modules just before
    /// they close it; read when its session is unbound).
    pub(crate) close_cause: Option<DisconnectCause>,
    telemetry: Option<GatewayTelemetry>,
    /// Connections with a binary replay in progress.
    pub(crate) replaying: usize,
    pub(crate) fix_settings: super::fix_glue::FixSettings,
    pub(crate) fix_shared: super::fix_glue::FixShared,
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

impl Gateway {
    /// Builds a gateway with its memory reserved (cold path).
    pub fn new(
        id: usize,
        sessions: Vec<SessionSlot>,
        instruments: Instruments,
        rings: GatewayRings,
        sizing: GatewaySizing,
        fix_settings: super::fix_glue::FixSettings,
    ) -> Self {
        assert!(
            rings.to_engines.len() <= 64,
            "engine bitmaps are 64 bits wide"
        );
        let conns = (0..sizing.max_connections)
            .map(|_| Conn {
                state: ConnState::Free,
                protocol: Protocol::Binary,
                session: None,
                bin: BinConn::new(0),
                input: InBuf::new(sizing.input_bytes),
                output: OutBuf::new(sizing.output_bytes),
                paused: false,
                t_recv: 0,
                replay_next: None,
                opened_ns: 0,
                dirty: false,
            })
            .collect();
        let tsc = Tsc::new();
        let tsc_origin = tsc.now();
        Self {
            id,
            conns,
            free_conns: (0..sizing.max_connections as ConnId).rev().collect(),
            sessions,
            orders: OrderBook::new(id as u8, sizing.max_orders),
            instruments,
            engines: rings.to_engines,
            engine_wakers: rings.engine_wakers,
            from_engines: rings.from_engines,
            touched: 0,
            dirty: Vec::with_capacity(sizing.max_connections),
            stamps: Vec::with_capacity(STAMP_CAP),
            mass: Vec::with_capacity(MASS_CAP),
            tsc,
            tsc_origin,
            now_ns: 0,
            wall_ns: 0,
            hist: Box::new(StageHistograms::new()),
            stats: Arc::new(GatewayStats::default()),
            messages_in: 0,
            messages_out: 0,
            counters: GatewayCounters::default(),
            close_cause: None,
            telemetry: None,
            replaying: 0,
            fix_shared: super::fix_glue::FixShared::new(&fix_settings),
            fix_settings,
        }
    }

    /// Session slot sizes for a binary user (cold path, for the runtime's set-up).
    pub fn binary_user_state(sizing: &GatewaySizing) -> UserState {
        UserState::new(sizing.replay_log_bytes, sizing.replay_log_bytes / 32)
    }

    // ---------------------------------------------------------------------------------------
    // Driver API
    // ---------------------------------------------------------------------------------------

    /// Refreshes the cached clocks; drivers call it once per loop iteration.
    #[inline]
    pub fn tick_clock(&mut self) {
        self.now_ns = self.tsc.ns_between(self.tsc_origin, self.tsc.now());
        self.wall_ns = wall_clock_ns();
    }

    /// A new connection from a listener of `protocol`; `None` when every slot is taken
    /// (the driver closes the socket).
    pub fn accept(&mut self, protocol: Protocol) -> Option<ConnId> {
        let c = self.free_conns.pop()?;
        let now = self.now_ns;
        let conn = &mut self.conns[c as usize];
        conn.state = ConnState::Open;
        conn.protocol = protocol;
        conn.session = None;
        conn.bin = BinConn::new(now);
        conn.input.clear();
        conn.output.clear();
        conn.paused = false;
        conn.dirty = false;
        conn.replay_next = None;
        if protocol == Protocol::Fix {
            self.fix_on_accept(c);
        }
        Some(c)
    }

    /// The connection's state.
    #[inline]
    pub fn state(&self, c: ConnId) -> ConnState {
        self.conns[c as usize].state
    }

    /// Bytes arrived on `c`, received at TSC `t_recv`. Returns `false` when the input buffer
    /// is full: the driver must stop reading the connection until [`Gateway::wants_input`].
    #[inline]
    pub fn on_recv(&mut self, c: ConnId, data: &[u8], t_recv: u64) -> bool {
        let conn = &mut self.conns[c as usize];
        if conn.state != ConnState::Open {
            return true;
        }
        conn.t_recv = t_recv;
        if !conn.input.append(data) {
            // Cannot happen while we keep consuming; it means the client outran a paused
            // connection by a whole buffer. The bytes stay in the kernel (TCP back-pressure).
            return false;
        }
        self.process_input(c);
        true
    }

    /// Whether the driver should (re)arm reading on `c`.
    #[inline]
    pub fn wants_input(&self, c: ConnId) -> bool {
        let conn = &self.conns[c as usize];
        conn.state == ConnState::Open && !conn.paused && conn.input.space() > 0
    }

    /// The peer closed `c`, or the socket failed. The driver then closes the socket and,
    /// once nothing is in flight, calls [`Gateway::release`].
    pub fn on_closed(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Free {
            return;
        }
        conn.state = ConnState::Dead;
        if conn.replay_next.take().is_some() {
            self.replaying -= 1;
        }
        if let Some(s) = conn.session.take() {
            self.unbind(s, DisconnectCause::PeerClosed);
        }
    }

    /// Returns `c`'s slot to the pool (after [`Gateway::on_closed`] or a Dead state).
    pub fn release(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Free {
            return;
        }
        if let Some(s) = conn.session.take() {
            self.unbind(s, DisconnectCause::PeerClosed);
        }
        let conn = &mut self.conns[c as usize];
        conn.state = ConnState::Free;
        conn.output.clear();
        conn.input.clear();
        self.free_conns.push(c);
    }

    /// Connections with output to send or a state change for the driver, since the last call.
    /// The driver sends (`output`), then closes those that are Dead, or Closing with nothing
    /// left to send.
    #[inline]
    pub fn take_dirty(&mut self, into: &mut Vec<ConnId>) {
        into.clear();
        for &c in &self.dirty {
            self.conns[c as usize].dirty = false;
        }
        std::mem::swap(into, &mut self.dirty);
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

    /// The driver submitted the sends of this iteration: records egress and wire-to-wire.
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

    /// Drains the engines' events into replies, resumes paused connections when the rings
    /// have room again, and pushes cancel-on-disconnects that were waiting for room.
    /// Returns whether anything was done.
    pub fn poll(&mut self) -> bool {
        let mut did = false;
        for e in 0..self.from_engines.len() {
            for _ in 0..1024 {
                let Some(msg) = self.from_engines[e].pop() else {
                    break;
                };
                did = true;
                self.on_event(e, &msg);
            }
        }
        if self.replaying > 0 {
            for c in 0..self.conns.len() as ConnId {
                if self.conns[c as usize].replay_next.is_some() {
                    self.binary_pump_replay(c);
                }
            }
        }
        if self.any_paused_or_pending() && self.rings_ready() {
            for s in 0..self.sessions.len() {
                if self.sessions[s].disconnect_cancel_pending {
                    self.push_disconnect_cancel(s as u16);
                }
            }
            for c in 0..self.conns.len() as ConnId {
                if self.conns[c as usize].paused && self.rings_ready() {
                    self.conns[c as usize].paused = false;
                    self.process_input(c);
                    did = true;
                }
            }
        }
        self.publish();
        did
    }

    /// Heartbeats and timeouts; call every few milliseconds (cold-ish: walks every connection).
    pub fn on_timer(&mut self) {
        for c in 0..self.conns.len() as ConnId {
            match (
                self.conns[c as usize].state,
                self.conns[c as usize].protocol,
            ) {
                (ConnState::Open, Protocol::Binary) => self.binary_timer(c),
                (ConnState::Open, Protocol::Fix) => self.fix_timer(c),
                _ => {}
            }
        }
        self.publish();
    }

    /// Starts a graceful shutdown: every logged-in session gets a Logout, connections close
    /// once flushed (cold path).
    pub fn begin_shutdown(&mut self) {
        for c in 0..self.conns.len() as ConnId {
            match (
                self.conns[c as usize].state,
                self.conns[c as usize].protocol,
            ) {
                (ConnState::Open, Protocol::Binary) => self.binary_shutdown(c),
                (ConnState::Open, Protocol::Fix) => self.fix_shutdown(c),
                _ => {}
            }
        }
        self.publish();
    }

    /// Whether any connection is still open or closing (shutdown waits for none).
    pub fn has_connections(&self) -> bool {
        self.conns.iter().any(|c| c.state != ConnState::Free)
    }

    /// Whether an engine has events waiting for this gateway (checked before sleeping).
    pub fn engine_events_waiting(&self) -> bool {
        self.from_engines.iter().any(|r| !r.is_empty())
    }

    /// This thread's latency histograms (what has not been handed to the exporter yet).
    pub fn histograms(&self) -> &StageHistograms {
        &self.hist
    }

    /// Business and session counters counted so far (not yet published ones included).
    pub fn counters(&self) -> &GatewayCounters {
        &self.counters
    }

    /// Connects the gateway to the exporter (cold path, before the loop starts).
    pub fn attach_telemetry(&mut self, t: GatewayTelemetry) {
        self.telemetry = Some(t);
    }

    /// Publishes counters and hands the histograms over when the interval has elapsed;
    /// drivers call it once per loop iteration (one compare when not due).
    #[inline]
    pub fn telemetry_tick(&mut self) {
        if let Some(t) = &self.telemetry {
            if t.handover.due(self.now_ns) {
                self.publish_telemetry();
            }
        }
    }

    /// Hands the histograms over and copies every counter into the published block (once
    /// per interval; walks the sessions for the gauges).
    #[cold]
    fn publish_telemetry(&mut self) {
        let Some(t) = self.telemetry.as_mut() else {
            return;
        };
        t.handover.hand_over(&mut self.hist, self.now_ns);
        let mut connected = [0u64; labels::PROTOCOLS.len()];
        let (mut resend_in, mut resend_out) = (0, 0);
        for sess in &self.sessions {
            let p = labels::protocol_index(sess.protocol);
            connected[p] += sess.conn.is_some() as u64;
            if let Some(f) = &sess.fix {
                resend_in += f.session.resend_requests_received();
                resend_out += f.session.resend_requests_sent();
            }
        }
        for (p, n) in connected.iter().enumerate() {
            self.counters.set(slot::CONNECTED + p, *n);
        }
        self.counters.set(slot::RESEND_RECEIVED, resend_in);
        self.counters.set(slot::RESEND_SENT, resend_out);
        self.counters.set(slot::HANDOVERS, t.handover.handovers);
        self.counters.set(slot::HANDOVER_SKIPS, t.handover.skips);
        t.metrics.publish(&self.counters);
    }

    // ---------------------------------------------------------------------------------------
    // Shared machinery for the protocol modules
    // ---------------------------------------------------------------------------------------

    /// Queues `c` for the driver's attention.
    #[inline]
    pub(crate) fn mark_dirty(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(c);
        }
    }

    /// Appends `bytes` to `c`'s output; on overflow the connection is a slow consumer and is
    /// closed (its session's messages stay stored for resend/replay after reconnecting).
    #[inline]
    pub(crate) fn send_bytes(&mut self, c: ConnId, bytes: &[u8]) {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Dead || conn.state == ConnState::Free {
            return;
        }
        if !conn.output.append(bytes) {
            self.slow_consumer(c);
            return;
        }
        self.messages_out += 1;
        let p = labels::protocol_index(self.conns[c as usize].protocol);
        self.counters.message_out(p);
        self.mark_dirty(c);
    }

    #[cold]
    pub(crate) fn slow_consumer(&mut self, c: ConnId) {
        self.stats
            .slow_consumer_disconnects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.close_cause = Some(DisconnectCause::SlowConsumer);
        self.on_closed(c);
        self.mark_dirty(c);
    }

    /// Sets `c` Closing (send what is queued, then close) and detaches its session.
    pub(crate) fn close_after_flush(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        if conn.state == ConnState::Open {
            conn.state = ConnState::Closing;
        }
        if conn.replay_next.take().is_some() {
            self.replaying -= 1;
        }
        if let Some(s) = conn.session.take() {
            self.unbind(s, DisconnectCause::ProtocolError);
        }
        self.mark_dirty(c);
    }

    /// Records the stamps of an event whose reply was just queued.
    #[inline]
    pub(crate) fn stamp_reply(&mut self, t_recv: u64, t_done: u64) {
        if self.stamps.len() < STAMP_CAP {
            self.stamps.push((t_recv, t_done));
        }
    }

    /// Counts a decoded inbound message.
    #[inline]
    pub(crate) fn count_in(&mut self, p: Protocol) {
        self.messages_in += 1;
        self.counters.message_in(labels::protocol_index(p));
    }

    /// Counts a refused new order (engine or gateway code).
    #[inline]
    pub(crate) fn count_reject(&mut self, code: u16) {
        self.counters.reject(labels::reject_index(code));
    }

    /// Counts a refused cancel or replace (engine or gateway code).
    #[inline]
    pub(crate) fn count_cancel_reject(&mut self, code: u16) {
        self.counters.cancel_reject(labels::reject_index(code));
    }

    /// Binds a logged-in session to a connection.
    pub(crate) fn bind(&mut self, c: ConnId, s: u16) {
        self.counters
            .logon(labels::protocol_index(self.sessions[s as usize].protocol));
        self.conns[c as usize].session = Some(s);
        self.sessions[s as usize].conn = Some(c);
        if self.sessions[s as usize].disconnect_cancel_pending {
            // The previous connection's cancel goes first, so it cannot touch orders the new
            // connection enters (the input loop made sure the rings have room).
            self.push_disconnect_cancel(s);
        }
    }

    fn unbind(&mut self, s: u16, default_cause: DisconnectCause) {
        let cause = self.close_cause.take().unwrap_or(default_cause);
        let p = labels::protocol_index(self.sessions[s as usize].protocol);
        self.counters.disconnect(p, cause);
        let slot = &mut self.sessions[s as usize];
        slot.conn = None;
        if let Some(f) = slot.fix.as_mut() {
            f.on_disconnect();
        }
        if slot.cancel_on_disconnect {
            slot.disconnect_cancel_pending = true;
            if self.rings_ready() {
                self.push_disconnect_cancel(s);
            }
        }
    }

    fn push_disconnect_cancel(&mut self, s: u16) {
        let slot = &mut self.sessions[s as usize];
        slot.disconnect_cancel_pending = false;
        let cmd = Command::MassCancel(MassCancel {
            session: slot.global,
            owner: slot.owner,
            instrument: None,
            scope: MassCancelScope::BySession,
            reason: CancelReason::Disconnect,
        });
        let t = self.tsc.now();
        for e in 0..self.engines.len() {
            self.push(e, cmd, t);
        }
    }

    fn any_paused_or_pending(&self) -> bool {
        self.conns.iter().any(|c| c.paused)
            || self.sessions.iter().any(|s| s.disconnect_cancel_pending)
    }

    /// Whether every engine ring has room for one more command (a mass cancel needs one on
    /// each). Answered from cached counts almost always.
    #[inline]
    pub(crate) fn rings_ready(&mut self) -> bool {
        let mut ok = true;
        for r in self.engines.iter_mut() {
            ok &= r.reserve(1);
        }
        ok
    }

    /// Marks `c` paused by back-pressure (input stays buffered until the rings drain).
    #[cold]
    pub(crate) fn pause(&mut self, c: ConnId) {
        self.conns[c as usize].paused = true;
        self.stats
            .backpressure_events
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[inline]
    fn push(&mut self, engine: usize, cmd: Command, t_recv: u64) {
        let msg = ToEngine {
            cmd,
            t_recv,
            t_push: self.tsc.now(),
        };
        // `rings_ready` was checked before the message that led here was decoded, so this
        // cannot fail; if it ever did, dropping would lose an order: fail loudly instead.
        if self.engines[engine].push(msg).is_err() {
            panic!("engine ring {engine} full after reserve: back-pressure bookkeeping bug");
        }
        self.hist
            .record(Stage::Ingress, self.tsc.ns_between(t_recv, msg.t_push));
        self.touched |= 1 << engine;
    }

    /// Wakes the engines this iteration pushed to, and publishes counters (once per batch).
    #[inline]
    pub(crate) fn publish(&mut self) {
        let mut t = self.touched;
        self.touched = 0;
        while t != 0 {
            let e = t.trailing_zeros() as usize;
            t &= t - 1;
            self.engines[e].note_occupancy();
            self.engine_wakers[e].wake_after_publish();
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.messages_in.store(self.messages_in, Relaxed);
        self.stats.messages_out.store(self.messages_out, Relaxed);
    }

    fn process_input(&mut self, c: ConnId) {
        match self.conns[c as usize].protocol {
            Protocol::Binary => self.binary_input(c),
            Protocol::Fix => self.fix_input(c),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Order operations (protocol-neutral)
    // ---------------------------------------------------------------------------------------

    /// Sends a new order to its engine. The caller has checked `rings_ready`.
    #[inline]
    pub(crate) fn enter(
        &mut self,
        s: u16,
        req: &OrderRequest,
        t_recv: u64,
    ) -> Result<u32, GatewayReject> {
        let slot = self.orders.insert(s, req.client_id).map_err(|e| match e {
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
        let session = &self.sessions[s as usize];
        let cmd = Command::New(NewOrder {
            order_id: self.orders.order_id(slot),
            instrument: req.instrument,
            session: session.global,
            owner: session.owner,
            side: req.side,
            ord_type: req.ord_type,
            tif: req.tif,
            price: req.price,
            qty: req.qty,
            post_only: req.post_only,
            stp: req.stp.unwrap_or(session.stp),
        });
        let engine = self.instruments.get(req.instrument).map_or(0, |i| i.engine);
        self.push(engine, cmd, t_recv);
        self.counters.order_received(
            labels::protocol_index(self.sessions[s as usize].protocol),
            labels::side_index(req.side),
            labels::ord_type_index(req.ord_type),
        );
        Ok(slot)
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

    /// Sends a cancel. The caller has checked `rings_ready`.
    #[inline]
    pub(crate) fn cancel(
        &mut self,
        s: u16,
        orig: &ClientId,
        request: ClientId,
        t_recv: u64,
    ) -> Result<u32, (GatewayReject, Option<u32>)> {
        let slot = self.live_order(s, orig)?;
        let o = self.orders.get_mut(slot);
        o.pending = Pending::Cancel(request);
        let engine = self.instruments.get(o.instrument).map_or(0, |i| i.engine);
        let cmd = Command::Cancel(Cancel {
            order_id: self.orders.order_id(slot),
            session: self.sessions[s as usize].global,
        });
        self.push(engine, cmd, t_recv);
        Ok(slot)
    }

    /// Sends a replace; the order takes `new_id` when the engine applies it. The caller has
    /// checked `rings_ready`.
    #[inline]
    pub(crate) fn replace(
        &mut self,
        s: u16,
        orig: &ClientId,
        new_id: ClientId,
        price: Option<Price>,
        qty: Qty,
        t_recv: u64,
    ) -> Result<u32, (GatewayReject, Option<u32>)> {
        let slot = self.live_order(s, orig)?;
        if new_id != *orig {
            self.orders
                .add_alias(s, new_id, slot)
                .map_err(|_| (GatewayReject::DuplicateClientId, Some(slot)))?;
        }
        let o = self.orders.get_mut(slot);
        o.pending = Pending::Replace(new_id);
        let engine = self.instruments.get(o.instrument).map_or(0, |i| i.engine);
        let cmd = Command::Replace(Replace {
            order_id: self.orders.order_id(slot),
            session: self.sessions[s as usize].global,
            price,
            qty,
        });
        self.push(engine, cmd, t_recv);
        Ok(slot)
    }

    /// Sends a mass cancel of the session's owner to every engine concerned. The caller has
    /// checked `rings_ready`.
    pub(crate) fn mass_cancel(
        &mut self,
        s: u16,
        request: ClientId,
        instrument: Option<InstrumentId>,
        t_recv: u64,
    ) -> Result<(), GatewayReject> {
        if self.mass.len() == MASS_CAP {
            return Err(GatewayReject::Capacity);
        }
        let session = &self.sessions[s as usize];
        let cmd = Command::MassCancel(MassCancel {
            session: session.global,
            owner: session.owner,
            instrument,
            scope: MassCancelScope::ByOwner,
            reason: CancelReason::MassCancel,
        });
        let awaiting = match instrument.and_then(|i| self.instruments.get(i)) {
            Some(ins) => 1u64 << ins.engine,
            None => u64::MAX >> (64 - self.engines.len()),
        };
        self.mass.push(MassPending {
            session: s,
            request,
            instrument,
            awaiting,
            count: 0,
        });
        let mut a = awaiting;
        while a != 0 {
            let e = a.trailing_zeros() as usize;
            a &= a - 1;
            self.push(e, cmd, t_recv);
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Engine events -> replies
    // ---------------------------------------------------------------------------------------

    #[inline]
    fn local_session(&self, global: SessionId) -> Option<u16> {
        let l = crate::runtime::msg::local_of(global);
        (session_id(self.id, l) == global && (l as usize) < self.sessions.len()).then_some(l)
    }

    fn on_event(&mut self, engine: usize, msg: &FromEngine) {
        let (t_recv, t_done) = (msg.t_recv, msg.t_done);
        match msg.event.kind {
            EventKind::Accepted(a) => {
                let Some(slot) = self.orders.slot_of(a.order_id) else {
                    return;
                };
                let o = self.orders.get_mut(slot);
                if o.state == OrderState::PendingNew {
                    o.state = OrderState::Live;
                }
                let s = o.session;
                self.reply(s, &Reply::Accepted { slot }, t_recv, t_done);
            }
            EventKind::Rejected(r) => {
                let Some(slot) = self.orders.slot_of(r.order_id) else {
                    return;
                };
                let s = self.orders.get(slot).session;
                self.count_reject(r.reason as u8 as u16);
                self.reply(
                    s,
                    &Reply::Rejected {
                        slot,
                        reason: r.reason as u8 as u16,
                    },
                    t_recv,
                    t_done,
                );
                self.orders.finish(slot);
            }
            EventKind::Trade(t) => {
                for (fill, maker) in [(t.maker, true), (t.taker, false)] {
                    let Some(slot) = self.orders.slot_of(fill.order_id) else {
                        continue;
                    };
                    let o = self.orders.get_mut(slot);
                    o.cum_qty = fill.cum_qty;
                    o.cum_notional += t.price as i128 * t.qty as i128;
                    let s = o.session;
                    self.reply(
                        s,
                        &Reply::Fill {
                            slot,
                            exec_id: t.exec_id,
                            price: t.price,
                            qty: t.qty,
                            leaves: fill.leaves,
                            maker,
                        },
                        t_recv,
                        t_done,
                    );
                    // A fill that leaves nothing finishes the order unless a replace is
                    // pending (the engine will answer it; the order stays until then).
                    if fill.leaves == 0 && self.orders.get(slot).pending == Pending::None {
                        self.orders.finish(slot);
                    }
                }
            }
            EventKind::Cancelled(c) => {
                let Some(slot) = self.orders.slot_of(c.order_id) else {
                    return;
                };
                let o = self.orders.get(slot);
                let s = o.session;
                let request = match (c.reason, o.pending) {
                    (CancelReason::User, Pending::Cancel(r)) => Some(r),
                    (CancelReason::ReplacedBelowFilled, Pending::Replace(r)) => Some(r),
                    _ => None,
                };
                if let Pending::Replace(new_id) = o.pending {
                    if c.reason == CancelReason::ReplacedBelowFilled {
                        // The replace ended the order: it takes the replace's id, like FIX.
                        let (cur, orig) = (o.client_id, o.orig_client_id);
                        if orig != cur {
                            self.orders.remove_alias(s, &orig, slot);
                        }
                        let o = self.orders.get_mut(slot);
                        o.orig_client_id = cur;
                        o.client_id = new_id;
                    }
                }
                self.reply(
                    s,
                    &Reply::Cancelled {
                        slot,
                        qty: c.cancelled_qty,
                        reason: c.reason,
                        request,
                    },
                    t_recv,
                    t_done,
                );
                self.orders.finish(slot);
            }
            EventKind::Replaced(r) => {
                let Some(slot) = self.orders.slot_of(r.order_id) else {
                    return;
                };
                let o = *self.orders.get(slot);
                let s = o.session;
                if let Pending::Replace(new_id) = o.pending {
                    if o.orig_client_id != o.client_id && o.orig_client_id != new_id {
                        self.orders.remove_alias(s, &o.orig_client_id, slot);
                    }
                    let m = self.orders.get_mut(slot);
                    m.orig_client_id = o.client_id;
                    m.client_id = new_id;
                }
                let m = self.orders.get_mut(slot);
                m.pending = Pending::None;
                m.price = r.price;
                m.qty = r.qty;
                m.cum_qty = r.cum_qty;
                self.reply(
                    s,
                    &Reply::Replaced {
                        slot,
                        priority_kept: r.priority_kept,
                        leaves: r.leaves,
                    },
                    t_recv,
                    t_done,
                );
                if r.leaves == 0 {
                    self.orders.finish(slot);
                }
            }
            EventKind::CancelRejected(cr) => {
                let Some(s) = self.local_session(cr.session) else {
                    return;
                };
                let slot = self.orders.slot_of(cr.order_id);
                let (request, orig) = match slot {
                    Some(slot) => {
                        let o = *self.orders.get(slot);
                        let req = match o.pending {
                            Pending::Cancel(r) | Pending::Replace(r) => r,
                            Pending::None => o.client_id,
                        };
                        if let Pending::Replace(new_id) = o.pending {
                            if new_id != o.client_id {
                                self.orders.remove_alias(s, &new_id, slot);
                            }
                        }
                        self.orders.get_mut(slot).pending = Pending::None;
                        (req, o.client_id)
                    }
                    None => return,
                };
                // The engine no longer has an order the gateway knows: it filled (or was
                // cancelled) while the request was in flight. To the client that is "too
                // late", and the order is finished here too.
                let gone = cr.reason == crate::engine::RejectReason::UnknownOrder;
                let reason = if gone {
                    GatewayReject::OrderNotLive as u16
                } else {
                    cr.reason as u8 as u16
                };
                self.count_cancel_reject(reason);
                self.reply(
                    s,
                    &Reply::CancelRejected {
                        slot,
                        request,
                        orig,
                        kind: cr.kind,
                        reason,
                    },
                    t_recv,
                    t_done,
                );
                if let (true, Some(slot)) = (gone, slot) {
                    self.orders.finish(slot);
                }
            }
            EventKind::MassCancelDone(m) => {
                if m.reason != CancelReason::MassCancel {
                    return;
                }
                let Some(s) = self.local_session(m.session) else {
                    return;
                };
                let bit = 1u64 << engine;
                let Some(i) = self
                    .mass
                    .iter()
                    .position(|p| p.session == s && p.awaiting & bit != 0)
                else {
                    return;
                };
                let p = &mut self.mass[i];
                p.awaiting &= !bit;
                p.count += m.count as u64;
                if p.awaiting == 0 {
                    let done = self.mass.remove(i);
                    self.reply(
                        s,
                        &Reply::MassCancelDone {
                            request: done.request,
                            count: done.count,
                            instrument: done.instrument,
                        },
                        t_recv,
                        t_done,
                    );
                }
            }
            EventKind::BookChange(_) => {}
        }
    }

    /// Renders a reply for session `s` in its protocol (sequenced and stored even when the
    /// session is disconnected, so it is replayed or resent after a reconnect).
    #[inline]
    fn reply(&mut self, s: u16, reply: &Reply, t_recv: u64, t_done: u64) {
        match self.sessions[s as usize].protocol {
            Protocol::Binary => self.binary_reply(s, reply),
            Protocol::Fix => self.fix_reply(s, reply),
        }
        if self.sessions[s as usize].conn.is_some() {
            self.stamp_reply(t_recv, t_done);
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

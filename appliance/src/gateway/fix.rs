//! FIX 4.4 on top of the gateway core, through the `fix` crate's session layer.
//!
//! A new connection is unbound until its first message: that must be a Logon whose CompIDs
//! name a configured session (our SenderCompID in its 56, theirs in 49); otherwise the
//! connection is dropped without an answer, as QuickFIX does. A Logon for a session that is
//! already connected is dropped the same way and leaves the first connection untouched.
//! Once bound, bytes go through [`fix::Session::on_input`], which answers every session-level
//! matter itself (heartbeats, test requests, gaps, resends, rejects, logout) and hands up
//! validated application messages: D, F, G and q become engine commands, V a market-data
//! answer ([`super::fix_md`], when `market_data.fix` is on); other application types get a
//! BusinessMessageReject (380=3).
//!
//! Replies are sent through the session even while it is disconnected: they are numbered and
//! stored, and the client gets them with a ResendRequest after logging on again.

use super::audit::{AuditEvent, Direction, RejectInfo, RejectKind, ResetVia};
use super::conn::{ConnId, ConnState};
use super::core::{Arrival, Core, OrderRequest, Reply, Who};
use super::fix_md::FixMarketData;
use super::orders::{ClientId, OrderInfo, OrderState};
use super::session::SessionInfo;
use crate::config::{FixSection, FixSessionConfig};
use crate::engine::{CancelKind, CancelReason, OrdType, Side, TimeInForce};
use crate::vocab::{cancel_text, DisconnectCause, GatewayReject, Protocol, RejectCode};
use fix::app::market_data::MarketDataRequest;
use fix::app::outbound::Id;
use fix::app::{
    self, price, CxlRejResponseTo, ExecType, ExecutionReport, MassCancelScope, NewOrderSingle,
    OrdStatus, OrderCancelReject, OrderCancelReplaceRequest, OrderCancelRequest,
    OrderMassCancelReport, OrderMassCancelRequest,
};
use fix::session::{
    BusinessRejectReason, Event, MemoryStore, MessageStore, Note, Scratch, Session, SessionConfig,
    StoreError,
};
use fix::{Message, TimePrecision};

/// Bytes of sent messages each FIX session keeps for resends.
pub const STORE_BYTES: usize = 16 << 20;
/// Messages each FIX session keeps for resends.
pub const STORE_MESSAGES: usize = 1 << 16;
/// Replies a session may have held back behind the answer to its ResendRequest before it is
/// closed as a slow consumer (well below what the store keeps, so none is evicted unsent).
pub const MAX_HELD_BACK: u64 = 8_192;
/// ExecInst (18): not in the `fix` crate's tag list because only the gateway reads it.
const EXEC_INST: u32 = 18;
/// Extra decimals of AvgPx (6) beyond the instrument's price decimals.
pub const AVG_PX_EXTRA_DECIMALS: u8 = 2;

/// FIX settings shared by a gateway's sessions.
#[derive(Clone, Debug)]
pub struct FixSettings {
    /// The appliance's CompID.
    pub sender_comp_id: String,
    /// Reset sequence numbers on every Logon.
    pub reset_on_logon: bool,
    /// Largest message.
    pub max_message_size: usize,
    /// Accepted SendingTime skew, seconds.
    pub max_latency_secs: u32,
    /// How long a connection may stay without a Logon (monotonic ns).
    pub logon_timeout_ns: u64,
}

impl FixSettings {
    /// From the `[fix]` section.
    pub fn from_config(c: &FixSection) -> Self {
        Self {
            sender_comp_id: c.sender_comp_id.clone(),
            reset_on_logon: c.reset_on_logon,
            max_message_size: c.max_message_size,
            // Validated at load: at most 86,400.
            max_latency_secs: u32::try_from(c.sending_time_window_secs).unwrap_or(u32::MAX),
            // Validated at load: at most 300.
            logon_timeout_ns: c.logon_timeout_secs * 1_000_000_000,
        }
    }
}

/// A FIX session's message store: the reserved in-memory store, plus a note of the resets
/// since the gateway last journaled the session (sequence numbers back to 1 and messages
/// forgotten are a state change the journal must see before any later message).
pub struct SessionStore {
    mem: MemoryStore,
    resets: u32,
}

impl SessionStore {
    /// A store of `bytes` bytes and `messages` messages (cold path).
    pub fn with_capacity(bytes: usize, messages: usize) -> Self {
        Self {
            mem: MemoryStore::with_capacity(bytes, messages),
            resets: 0,
        }
    }

    /// Resets since the last call (and clears the count).
    #[inline]
    pub fn take_resets(&mut self) -> u32 {
        std::mem::take(&mut self.resets)
    }

    /// The in-memory store.
    pub fn memory(&self) -> &MemoryStore {
        &self.mem
    }
}

impl MessageStore for SessionStore {
    #[inline]
    fn next_sender_seq(&self) -> u64 {
        self.mem.next_sender_seq()
    }
    #[inline]
    fn next_target_seq(&self) -> u64 {
        self.mem.next_target_seq()
    }
    #[inline]
    fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.mem.set_next_sender_seq(seq)
    }
    #[inline]
    fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        self.mem.set_next_target_seq(seq)
    }
    #[inline]
    fn store(&mut self, seq: u64, message: &[u8]) -> Result<(), StoreError> {
        self.mem.store(seq, message)
    }
    #[inline]
    fn first_in_range(&mut self, from: u64, to: u64) -> Option<(u64, &[u8])> {
        self.mem.first_in_range(from, to)
    }
    fn reset(&mut self) -> Result<(), StoreError> {
        self.resets += 1;
        self.mem.reset()
    }
}

/// One configured FIX session's state machine (it outlives connections).
pub struct FixSession {
    /// The `fix` crate's session.
    pub session: Session<SessionStore>,
    /// The session's dropped notes already counted as dropped audit records.
    notes_dropped: u64,
}

impl FixSession {
    /// A session for `s` (cold path: reserves its store, of the sizes in `sizing`, and
    /// buffers).
    pub fn new(
        settings: &FixSettings,
        s: &FixSessionConfig,
        sizing: &super::core::GatewaySizing,
    ) -> Self {
        let mut cfg = SessionConfig::acceptor(&settings.sender_comp_id, &s.target_comp_id);
        cfg.reset_on_logon = settings.reset_on_logon;
        cfg.username = s.username.clone();
        cfg.password = s.password.clone();
        cfg.max_message_size = settings.max_message_size;
        cfg.max_latency_secs = settings.max_latency_secs;
        Self {
            session: Session::new(
                cfg,
                SessionStore::with_capacity(sizing.fix_store_bytes, sizing.fix_store_messages),
            ),
            notes_dropped: 0,
        }
    }

    /// Hands what the session did on its own (rejects, resends, sequence resets: its
    /// [`Note`]s) to the audit trail, for local session `local` on connection `c`.
    pub fn audit_notes(&mut self, core: &mut Core, local: u16, c: Option<ConnId>) {
        while let Some(n) = self.session.take_note() {
            core.audit_session(local, c, Protocol::Fix, note_event(n));
        }
        let dropped = self.session.notes_dropped();
        if dropped != self.notes_dropped {
            for _ in self.notes_dropped..dropped {
                core.counters
                    .bump(crate::telemetry::counters::gw::AUDIT_DROPPED);
            }
            self.notes_dropped = dropped;
        }
    }

    /// The connection dropped: keep sequence numbers and stored messages for the next one.
    pub fn on_disconnect(&mut self) {
        self.session.on_disconnected();
    }
}

/// The audit record of a session's note.
fn note_event(n: Note) -> AuditEvent {
    match n {
        Note::RejectSent {
            ref_seq,
            reason,
            ref_tag,
            cl_ord_id,
        } => AuditEvent::Reject(RejectInfo {
            kind: RejectKind::Session,
            code: reason.code() as u32,
            reason: reason.text(),
            cl_ord_id,
            seq: ref_seq,
            ref_tag,
        }),
        Note::BusinessRejectSent {
            ref_seq,
            reason,
            ref_tag,
            cl_ord_id,
        } => AuditEvent::Reject(RejectInfo {
            kind: RejectKind::Business,
            code: reason.code() as u32,
            reason: reason.text(),
            cl_ord_id,
            seq: ref_seq,
            ref_tag,
        }),
        Note::RejectReceived { ref_seq, reason } => AuditEvent::Reject(RejectInfo {
            kind: RejectKind::SessionReceived,
            code: reason,
            reason: "counterparty reject",
            cl_ord_id: Default::default(),
            seq: ref_seq,
            ref_tag: 0,
        }),
        Note::ResendRequestReceived { begin, end } => AuditEvent::ResendRequest {
            direction: Direction::Received,
            begin,
            end,
        },
        Note::ResendRequestSent { begin, end } => AuditEvent::ResendRequest {
            direction: Direction::Sent,
            begin,
            end,
        },
        Note::SequenceResetReceived { new_seq, gap_fill } => AuditEvent::SequenceReset {
            direction: Direction::Received,
            via: if gap_fill {
                ResetVia::GapFill
            } else {
                ResetVia::SequenceReset
            },
            new_seq,
        },
        Note::SequenceResetSent { new_seq, .. } => AuditEvent::SequenceReset {
            direction: Direction::Sent,
            via: ResetVia::GapFill,
            new_seq,
        },
        Note::LogonReset { requested } => AuditEvent::SequenceReset {
            direction: if requested {
                Direction::Received
            } else {
                Direction::Sent
            },
            via: ResetVia::Logon,
            new_seq: 1,
        },
    }
}

fn fix_side(s: Side) -> app::Side {
    match s {
        Side::Buy => app::Side::Buy,
        Side::Sell => app::Side::Sell,
    }
}

fn fix_ord_type(t: OrdType) -> app::OrdType {
    match t {
        OrdType::Limit => app::OrdType::Limit,
        OrdType::Market => app::OrdType::Market,
    }
}

fn fix_tif(t: TimeInForce) -> app::TimeInForce {
    match t {
        TimeInForce::Day => app::TimeInForce::Day,
        TimeInForce::Gtc => app::TimeInForce::GoodTillCancel,
        TimeInForce::Ioc => app::TimeInForce::ImmediateOrCancel,
        TimeInForce::Fok => app::TimeInForce::FillOrKill,
    }
}

/// OrdStatus of an order as the gateway knows it.
fn status(o: &OrderInfo) -> OrdStatus {
    match o.state {
        OrderState::Done if o.cum_qty >= o.qty && o.qty > 0 => OrdStatus::Filled,
        OrderState::Done => OrdStatus::Canceled,
        _ if o.cum_qty > 0 && o.cum_qty >= o.qty => OrdStatus::Filled,
        _ if o.cum_qty > 0 => OrdStatus::PartiallyFilled,
        _ => OrdStatus::New,
    }
}

/// Average price in fixed point with `price_decimals + AVG_PX_EXTRA_DECIMALS` decimals.
fn avg_px(o: &OrderInfo) -> i64 {
    if o.cum_qty == 0 {
        return 0;
    }
    let scaled = o.cum_notional * 10i128.pow(AVG_PX_EXTRA_DECIMALS as u32);
    (scaled / o.cum_qty as i128) as i64
}

/// What the first bytes of an unbound FIX connection say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogonPeek<'a> {
    /// The Logon is not complete yet.
    Incomplete,
    /// A complete FIX 4.4 Logon addressed to us: its CompIDs and credentials.
    From(fix::session::acceptor::LogonIdentity<'a>),
    /// The first message cannot be a Logon for us: drop the connection without an answer,
    /// as QuickFIX does.
    NotForUs,
}

/// Reads the Logon at the start of `input` without consuming it.
pub fn peek_logon<'a>(
    input: &'a [u8],
    max_message_size: usize,
    our_comp_id: &str,
) -> LogonPeek<'a> {
    match fix::session::acceptor::peek_logon(input, max_message_size) {
        Ok(None) => LogonPeek::Incomplete,
        Ok(Some(id))
            if id.begin_string == b"FIX.4.4" && id.target_comp_id == our_comp_id.as_bytes() =>
        {
            LogonPeek::From(id)
        }
        _ => LogonPeek::NotForUs,
    }
}

/// The FIX protocol handler of one gateway: the decoder's scratch (shared by the gateway's
/// sessions) and the application logic that turns D, F, G, q into order operations and
/// replies into ExecutionReports. It borrows the core and one session per call.
pub struct FixHandler {
    scratch: Scratch,
    logon_timeout_ns: u64,
    app: FixApp,
    /// Some session may be answering a ResendRequest (the gateway then calls
    /// [`FixHandler::pump_resend`] on each pass).
    resending: bool,
}

/// The half of the handler a decoded message's borrow of the scratch does not cover.
struct FixApp {
    out: Vec<u8>,
    exec_counter: u64,
    gateway: usize,
    /// The message or reply being handled, for audit records: (local session, connection,
    /// MsgSeqNum of the inbound message, 0 for an engine reply).
    cur: (u16, Option<ConnId>, u64),
    /// FIX market data (`market_data.fix`), attached at launch.
    md: Option<Box<FixMarketData>>,
}

impl FixHandler {
    /// Reserved once per gateway (cold path).
    pub fn new(gateway: usize, settings: &FixSettings) -> Self {
        Self {
            scratch: Scratch::new(settings.max_message_size),
            logon_timeout_ns: settings.logon_timeout_ns,
            app: FixApp {
                out: Vec::with_capacity(1 << 20),
                exec_counter: 0,
                gateway,
                cur: (0, None, 0),
                md: None,
            },
            resending: false,
        }
    }

    /// Answers MarketDataRequests with `md` from now on (cold path, at launch).
    pub fn attach_market_data(&mut self, md: FixMarketData) {
        self.app.md = Some(Box::new(md));
    }

    /// The FIX market data, when attached.
    #[inline]
    pub fn market_data(&mut self) -> Option<&mut FixMarketData> {
        self.app.md.as_deref_mut()
    }

    /// Whether some session may still be answering a ResendRequest.
    #[inline]
    pub fn resending(&self) -> bool {
        self.resending
    }

    /// Called by the gateway after a pass over every session found none still resending.
    #[inline]
    pub fn resends_done(&mut self) {
        self.resending = false;
    }

    /// Continues session `fs`'s answer to a ResendRequest on connection `c`, a batch at a
    /// time while the connection's output has room for a whole batch (the rest waits for
    /// the peer to read: the answer never overflows the output buffer, so asking for a long
    /// range cannot make a session a slow consumer). Returns whether more remains.
    pub fn pump_resend(&mut self, core: &mut Core, fs: &mut FixSession, c: ConnId) -> bool {
        let cfg = fs.session.config();
        let need = cfg.resend_batch_bytes + 2 * (cfg.max_message_size + 256);
        let now = core.wall_ns as u64;
        while fs.session.resend_pending()
            && core.state(c) == ConnState::Open
            && core.output(c).room() >= need
        {
            let r = fs.session.pump_resend(now, &mut self.app.out);
            self.app.flush(core, Some(c));
            if let Some(s) = core.conn(c).session {
                fs.audit_notes(core, s, Some(c));
            }
            if let Err(why) = r {
                core.close_after_flush(c, DisconnectCause::from_fix(why));
                return false;
            }
        }
        fs.session.resend_pending() && core.state(c) == ConnState::Open
    }

    /// The exec-id counter (journaled with every sequenced message so that recovery goes on
    /// from it).
    #[inline]
    pub fn exec_counter(&self) -> u64 {
        self.app.exec_counter
    }

    /// Continues the exec-id counter from a recovered value (cold path).
    pub fn set_exec_counter(&mut self, n: u64) {
        self.app.exec_counter = n;
    }

    /// Handles everything buffered on FIX connection `c`, bound to session `fs`.
    pub fn input(&mut self, core: &mut Core, info: &SessionInfo, fs: &mut FixSession, c: ConnId) {
        let mut input = core.take_input(c);
        let t_recv = core.conn(c).t_recv;
        let now = core.wall_ns as u64;
        let who = info.who();
        let mut pos = 0;
        let mut close = None;
        loop {
            if core.state(c) != ConnState::Open {
                break;
            }
            // Room for any command this message may produce, before the session consumes it,
            // and its session not too far ahead of its answers (`Core::input_ready`).
            if !core.input_ready(c) {
                core.pause(c);
                break;
            }
            let r = fs.session.on_input(
                &input.data()[pos..],
                &mut self.scratch,
                now,
                &mut self.app.out,
            );
            pos += r.consumed;
            match r.event {
                Event::NeedMore => break,
                Event::App(msg) => {
                    core.count_in(Protocol::Fix);
                    let seq = msg.seq_num().unwrap_or(0);
                    let at = Arrival {
                        t_recv,
                        seq,
                        applied: core.already_applied(who.local, seq),
                    };
                    // A resend of a message applied before a restart is not applied again
                    // (a mass cancel may still owe some engines).
                    core.count_session_in(who.local);
                    core.on_behalf = Some(who.local);
                    self.app.cur = (who.local, Some(c), seq);
                    if at.applied == 0 || msg.msg_type() == b"q" {
                        self.app.message(core, &who, &mut fs.session, &msg, now, at);
                    }
                    core.on_behalf = None;
                    if core.take_throttle_trip().is_some() {
                        // Past its throttle under the `disconnect` policy: refused, then the
                        // Logout handshake (later application messages get BMR 380=4).
                        let text = b"throttle exceeded";
                        let _ = fs.session.logout(Some(text), now, &mut self.app.out);
                    }
                }
                Event::Disconnect(why) => {
                    close = Some(DisconnectCause::from_fix(why));
                    break;
                }
                _ => core.count_in(Protocol::Fix),
            }
            fs.audit_notes(core, who.local, Some(c));
            // Send as we go: a long resend must not wait for the whole input.
            if self.app.out.len() > 64 << 10 {
                self.app.flush(core, Some(c));
            }
        }
        fs.audit_notes(core, who.local, Some(c));
        input.consume(pos);
        core.put_input(c, input);
        self.app.flush(core, Some(c));
        self.resending |= fs.session.resend_pending();
        if let Some(cause) = close {
            core.close_after_flush(c, cause);
        }
    }

    /// Renders an engine reply for session `fs` (sequenced and stored even when the session
    /// is disconnected, so the client gets it with a ResendRequest after logging on again).
    pub fn render(
        &mut self,
        core: &mut Core,
        info: &SessionInfo,
        fs: &mut FixSession,
        reply: &Reply,
    ) {
        let now = core.wall_ns as u64;
        let exec_id = match *reply {
            Reply::Fill { exec_id, .. } => exec_id,
            _ => self.app.next_exec_id(),
        };
        self.app.cur = (info.local, info.conn, 0);
        let copy = info.drop_copy_of.is_some();
        self.app
            .render(core, &mut fs.session, reply, exec_id, now, copy);
        self.app.flush(core, info.conn);
        if fs.session.held_back() > MAX_HELD_BACK {
            // Its replies wait behind a resend it does not read: a slow consumer, before the
            // store has to evict replies it was never sent.
            if let Some(c) = info.conn {
                core.close_slow_consumer(c);
            }
        }
    }

    /// Timers of FIX connection `c`: its session's heartbeats and timeouts, or the logon
    /// timeout of a connection that never bound.
    pub fn timer(&mut self, core: &mut Core, fs: Option<&mut FixSession>, c: ConnId) {
        let Some(fs) = fs else {
            let waited = core.now_ns.saturating_sub(core.conn(c).opened_ns);
            if waited > self.logon_timeout_ns {
                core.close_now(c, DisconnectCause::HeartbeatTimeout);
            }
            return;
        };
        let now = core.wall_ns as u64;
        if core.conn(c).paused {
            // Its input waits on us (back-pressure): not silence.
            fs.session.peer_alive(now);
        }
        let disconnect = fs.session.on_timer(now, &mut self.app.out);
        self.app.flush(core, Some(c));
        if let Some(s) = core.conn(c).session {
            fs.audit_notes(core, s, Some(c));
        }
        if let Some(why) = disconnect {
            core.close_after_flush(c, DisconnectCause::from_fix(why));
        }
    }

    /// Starts the Logout handshake on FIX connection `c` (shutdown); the connection closes
    /// when the counterparty answers or the logout timeout passes.
    pub fn shutdown(&mut self, core: &mut Core, fs: Option<&mut FixSession>, c: ConnId) {
        self.log_out(
            core,
            fs,
            c,
            b"appliance shutting down",
            DisconnectCause::Shutdown,
        );
    }

    /// Starts the Logout handshake on FIX connection `c` with `text`; the connection closes
    /// when the counterparty answers or the logout timeout passes (at once if not logged on).
    pub fn log_out(
        &mut self,
        core: &mut Core,
        fs: Option<&mut FixSession>,
        c: ConnId,
        text: &[u8],
        cause: DisconnectCause,
    ) {
        let Some(fs) = fs else {
            core.close_after_flush(c, cause);
            return;
        };
        let now = core.wall_ns as u64;
        let ok = fs
            .session
            .logout(Some(text), now, &mut self.app.out)
            .is_ok();
        self.app.flush(core, Some(c));
        if !ok {
            core.close_after_flush(c, cause);
        }
    }
}

impl FixApp {
    /// Copies what the session wrote into `c`'s output (nothing when disconnected).
    #[inline]
    fn flush(&mut self, core: &mut Core, c: Option<ConnId>) {
        if !self.out.is_empty() {
            if let Some(c) = c {
                core.send(c, &self.out);
            }
            self.out.clear();
        }
    }

    /// Hands an order-level refusal of the message or reply being handled to the audit trail.
    #[cold]
    fn audit_reject(
        &self,
        core: &mut Core,
        kind: RejectKind,
        code: u32,
        reason: &'static str,
        cl_ord_id: &[u8],
    ) {
        let (local, c, seq) = self.cur;
        let r = RejectInfo::order(kind, code, reason, cl_ord_id, seq);
        core.audit_session(local, c, Protocol::Fix, AuditEvent::Reject(r));
    }

    /// Exec ids for reports that are not trades: the top bit set, so they never collide with
    /// the engine's trade ids (`instrument << 40 | n`, below 2^60).
    fn next_exec_id(&mut self) -> u64 {
        self.exec_counter += 1;
        (1 << 63) | ((self.gateway as u64) << 48) | self.exec_counter
    }

    /// One validated application message.
    fn message(
        &mut self,
        core: &mut Core,
        who: &Who,
        session: &mut Session<SessionStore>,
        msg: &Message<'_>,
        now: u64,
        at: Arrival,
    ) {
        if who.read_only {
            // A drop-copy session receives; it does not trade.
            let _ = session.send_business_reject(
                msg,
                BusinessRejectReason::NotAuthorized,
                None,
                Some(b"drop copy session: read-only"),
                now,
                &mut self.out,
            );
            return;
        }
        match msg.msg_type() {
            b"D" => match NewOrderSingle::decode(msg) {
                Ok(o) => self.new_order(core, who, session, msg, &o, now, at),
                Err(e) => self.business_reject(session, msg, e, now),
            },
            b"F" => match OrderCancelRequest::decode(msg) {
                Ok(x) => {
                    let (Some(orig), Some(req)) = (
                        ClientId::from_bytes(x.orig_cl_ord_id),
                        ClientId::from_bytes(x.cl_ord_id),
                    ) else {
                        return self.cancel_reject_now(
                            core,
                            session,
                            x.cl_ord_id,
                            x.orig_cl_ord_id,
                            None,
                            CxlRejResponseTo::Cancel,
                            GatewayReject::UnknownOrder.code(),
                            now,
                        );
                    };
                    if let Err((r, slot)) = core.cancel(who, &orig, req, at) {
                        let st = slot.map(|k| status(core.orders.get(k)));
                        self.cancel_reject_now(
                            core,
                            session,
                            x.cl_ord_id,
                            x.orig_cl_ord_id,
                            st,
                            CxlRejResponseTo::Cancel,
                            r.code(),
                            now,
                        );
                    }
                }
                Err(e) => self.business_reject(session, msg, e, now),
            },
            b"G" => match OrderCancelReplaceRequest::decode(msg) {
                Ok(x) => self.replace(core, who, session, &x, now, at),
                Err(e) => self.business_reject(session, msg, e, now),
            },
            b"q" => match OrderMassCancelRequest::decode(msg) {
                Ok(m) => self.mass_cancel(core, who, session, &m, now, at),
                Err(e) => self.business_reject(session, msg, e, now),
            },
            b"V" if self.md.is_some() => match MarketDataRequest::decode(msg) {
                Ok(r) => {
                    let (md, out) = (self.md.as_deref_mut(), &mut self.out);
                    if let Some(md) = md {
                        // Answers are stored (resent like any reply); see `fix_md`.
                        md.request(who.local, &r, &core.instruments, &mut |_, m, _| {
                            session.send(m, now, out).is_ok()
                        });
                    }
                }
                Err(e) => self.business_reject(session, msg, e, now),
            },
            _ => {
                let _ = session.send_business_reject(
                    msg,
                    BusinessRejectReason::UnsupportedMessageType,
                    None,
                    Some(b"Unsupported Message Type"),
                    now,
                    &mut self.out,
                );
            }
        }
    }

    fn business_reject(
        &mut self,
        session: &mut Session<SessionStore>,
        msg: &Message<'_>,
        e: app::AppReject,
        now: u64,
    ) {
        let tag = (e.tag() != 0).then_some(e.tag());
        let text: &[u8] = match e {
            app::AppReject::MissingField(_) => b"Conditionally required field missing",
            app::AppReject::UnsupportedValue(_) => b"Unsupported value",
            app::AppReject::InvalidValue(_) => b"Invalid value",
            app::AppReject::WrongMsgType => b"Unsupported Message Type",
        };
        let _ = session.send_business_reject(
            msg,
            e.business_reason(),
            tag,
            Some(text),
            now,
            &mut self.out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn new_order(
        &mut self,
        core: &mut Core,
        who: &Who,
        session: &mut Session<SessionStore>,
        msg: &Message<'_>,
        o: &NewOrderSingle<'_>,
        now: u64,
        at: Arrival,
    ) {
        let side = match o.side {
            app::Side::Buy => Side::Buy,
            app::Side::Sell => Side::Sell,
        };
        let ord_type = match o.ord_type {
            app::OrdType::Limit => OrdType::Limit,
            app::OrdType::Market => OrdType::Market,
        };
        let tif = match o.time_in_force {
            app::TimeInForce::Day => TimeInForce::Day,
            app::TimeInForce::GoodTillCancel => TimeInForce::Gtc,
            app::TimeInForce::ImmediateOrCancel => TimeInForce::Ioc,
            app::TimeInForce::FillOrKill => TimeInForce::Fok,
        };
        let Some(client_id) = ClientId::from_bytes(o.cl_ord_id) else {
            return self.order_reject_now(core, session, o, GatewayReject::ClientIdTooLong, now);
        };
        let Some(ins) = core.instruments.find(o.symbol) else {
            return self.order_reject_now(core, session, o, GatewayReject::UnknownSymbol, now);
        };
        let (ins_id, decimals) = (ins.id, ins.price_decimals);
        let price = match (ord_type, o.price) {
            (OrdType::Market, _) => 0,
            (OrdType::Limit, Some(text)) => match price::to_units(text, decimals) {
                Ok(p) => p,
                Err(_) => {
                    return self.order_reject_now(
                        core,
                        session,
                        o,
                        GatewayReject::InvalidPrice,
                        now,
                    )
                }
            },
            (OrdType::Limit, None) => {
                return self.order_reject_now(core, session, o, GatewayReject::InvalidPrice, now)
            }
        };
        // ExecInst (18) containing '6' (participate, don't initiate) asks for post-only.
        let post_only = msg
            .get(EXEC_INST)
            .is_some_and(|v| v.split(|&b| b == b' ').any(|t| t == b"6"));
        let req = OrderRequest {
            client_id,
            instrument: ins_id,
            side,
            ord_type,
            tif,
            price,
            qty: o.order_qty,
            post_only,
            stp: None,
        };
        if let Err(r) = core.enter(who, &req, at) {
            self.order_reject_now(core, session, o, r, now);
        }
    }

    fn replace(
        &mut self,
        core: &mut Core,
        who: &Who,
        session: &mut Session<SessionStore>,
        x: &OrderCancelReplaceRequest<'_>,
        now: u64,
        at: Arrival,
    ) {
        let to = CxlRejResponseTo::Replace;
        let (Some(orig), Some(new_id)) = (
            ClientId::from_bytes(x.orig_cl_ord_id),
            ClientId::from_bytes(x.cl_ord_id),
        ) else {
            return self.cancel_reject_now(
                core,
                session,
                x.cl_ord_id,
                x.orig_cl_ord_id,
                None,
                to,
                GatewayReject::UnknownOrder.code(),
                now,
            );
        };
        let found = core.orders.find(who.local, &orig);
        // The engine's replace changes price and quantity only: a TimeInForce (59) other
        // than the order's is refused rather than silently ignored.
        if let (Some(k), Some(tif)) = (found, x.time_in_force) {
            let o = core.orders.get(k);
            if fix_tif(o.tif) != tif {
                let st = Some(status(o));
                return self.cancel_reject_now(
                    core,
                    session,
                    x.cl_ord_id,
                    x.orig_cl_ord_id,
                    st,
                    to,
                    GatewayReject::InvalidTimeInForce.code(),
                    now,
                );
            }
        }
        let decimals = found
            .and_then(|k| core.instruments.get(core.orders.get(k).instrument))
            .map_or(0, |i| i.price_decimals);
        let price = match (x.ord_type, x.price) {
            (app::OrdType::Limit, Some(text)) => match price::to_units(text, decimals) {
                Ok(p) => Some(p),
                Err(_) => {
                    return self.cancel_reject_now(
                        core,
                        session,
                        x.cl_ord_id,
                        x.orig_cl_ord_id,
                        None,
                        to,
                        GatewayReject::InvalidPrice.code(),
                        now,
                    )
                }
            },
            _ => None,
        };
        if let Err((r, slot)) = core.replace(who, &orig, new_id, price, x.order_qty, at) {
            let st = slot.map(|k| status(core.orders.get(k)));
            self.cancel_reject_now(
                core,
                session,
                x.cl_ord_id,
                x.orig_cl_ord_id,
                st,
                to,
                r.code(),
                now,
            );
        }
    }

    fn mass_cancel(
        &mut self,
        core: &mut Core,
        who: &Who,
        session: &mut Session<SessionStore>,
        m: &OrderMassCancelRequest<'_>,
        now: u64,
        at: Arrival,
    ) {
        let instrument = match (m.scope, m.symbol) {
            (MassCancelScope::All, _) => Ok(None),
            (MassCancelScope::Security, Some(sym)) => {
                core.instruments.find(sym).map(|i| Some(i.id)).ok_or(1u32)
            }
            (MassCancelScope::Security, None) => Err(99),
        };
        let out = &mut self.out;
        let reject = |session: &mut Session<SessionStore>, reason: u32, out: &mut Vec<u8>| {
            let r = OrderMassCancelReport {
                cl_ord_id: Some(m.cl_ord_id),
                order_id: Id::Text(b"NONE"),
                request_type: m.scope.as_byte(),
                response: b'0',
                reject_reason: Some(reason),
                total_affected_orders: Some(0),
                symbol: m.symbol,
                side: None,
                transact_time: Some(now),
                text: Some(b"mass cancel rejected"),
            };
            let _ = session.send(&r, now, out);
        };
        let (Ok(instrument), Some(req)) = (instrument, ClientId::from_bytes(m.cl_ord_id)) else {
            return reject(session, 1, out);
        };
        let side = m.side.map(|s| match s {
            app::Side::Buy => Side::Buy,
            app::Side::Sell => Side::Sell,
        });
        if core.mass_cancel(who, req, instrument, side, at).is_err() {
            reject(session, 99, out);
        }
    }

    fn order_reject_now(
        &mut self,
        core: &mut Core,
        session: &mut Session<SessionStore>,
        o: &NewOrderSingle<'_>,
        code: GatewayReject,
        now: u64,
    ) {
        core.count_reject(code.code());
        let exec_id = self.next_exec_id();
        let code = RejectCode::Gateway(code);
        let (fix_code, label) = (code.fix_ord_rej_reason(), code.label());
        self.audit_reject(core, RejectKind::Order, fix_code, label, o.cl_ord_id);
        let er = ExecutionReport {
            order_id: Id::Text(b"NONE"),
            cl_ord_id: o.cl_ord_id,
            orig_cl_ord_id: None,
            exec_id: Id::Num(exec_id),
            exec_type: ExecType::Rejected,
            ord_status: OrdStatus::Rejected,
            ord_rej_reason: Some(code.fix_ord_rej_reason()),
            account: o.account,
            symbol: o.symbol,
            side: o.side,
            order_qty: Some(o.order_qty),
            ord_type: Some(o.ord_type),
            price: None,
            time_in_force: Some(o.time_in_force),
            last_qty: None,
            last_px: None,
            leaves_qty: 0,
            cum_qty: 0,
            avg_px: 0,
            avg_px_decimals: 0,
            price_scale: 0,
            transact_time: now,
            time_precision: TimePrecision::Millis,
            text: Some(code.text()),
            copy_msg_indicator: false,
        };
        let _ = session.send(&er, now, &mut self.out);
    }

    #[allow(clippy::too_many_arguments)]
    fn cancel_reject_now(
        &mut self,
        core: &mut Core,
        session: &mut Session<SessionStore>,
        cl_ord_id: &[u8],
        orig: &[u8],
        st: Option<OrdStatus>,
        to: CxlRejResponseTo,
        code: u16,
        now: u64,
    ) {
        core.count_cancel_reject(code);
        let label = reject_label(code);
        self.audit_reject(
            core,
            RejectKind::Cancel,
            cxl_rej_reason(code),
            label,
            cl_ord_id,
        );
        let r = OrderCancelReject {
            order_id: Id::Text(b"NONE"),
            cl_ord_id,
            orig_cl_ord_id: orig,
            ord_status: st.unwrap_or(OrdStatus::Rejected),
            response_to: to,
            cxl_rej_reason: Some(cxl_rej_reason(code)),
            transact_time: Some(now),
            text: Some(reject_text(code)),
        };
        let _ = session.send(&r, now, &mut self.out);
    }

    /// Renders `reply`; `copy`: for a drop-copy session (797=Y, Account naming the
    /// originating session, binary tokens as decimal ClOrdIDs; not audited again).
    fn render(
        &mut self,
        core: &mut Core,
        session: &mut Session<SessionStore>,
        reply: &Reply,
        exec_id: u64,
        now: u64,
        copy: bool,
    ) {
        match *reply {
            _ if copy => {}
            Reply::Rejected { slot, reason } => {
                let id = core.orders.get(slot).client_id;
                let (code, label) = (ord_rej_reason(reason), reject_label(reason));
                self.audit_reject(core, RejectKind::Order, code, label, id.as_bytes());
            }
            Reply::CancelRejected {
                request, reason, ..
            } => {
                let (code, label) = (cxl_rej_reason(reason), reject_label(reason));
                self.audit_reject(core, RejectKind::Cancel, code, label, request.as_bytes());
            }
            _ => {}
        }
        let out = &mut self.out;
        match *reply {
            Reply::CancelRejected {
                slot,
                request,
                orig,
                kind,
                reason,
            } => {
                let (st, oid) = match slot {
                    Some(k) => (status(core.orders.get(k)), core.orders.order_id(k)),
                    None => (OrdStatus::Rejected, 0),
                };
                let r = OrderCancelReject {
                    order_id: Id::Num(oid),
                    cl_ord_id: request.as_bytes(),
                    orig_cl_ord_id: orig.as_bytes(),
                    ord_status: st,
                    response_to: match kind {
                        CancelKind::Cancel => CxlRejResponseTo::Cancel,
                        CancelKind::Replace => CxlRejResponseTo::Replace,
                    },
                    cxl_rej_reason: Some(cxl_rej_reason(reason)),
                    transact_time: Some(now),
                    text: Some(reject_text(reason)),
                };
                let _ = session.send(&r, now, out);
            }
            Reply::MassCancelDone {
                request,
                count,
                instrument,
            } => {
                let symbol = instrument
                    .and_then(|i| core.instruments.get(i))
                    .map(|i| i.symbol());
                let scope = if instrument.is_some() {
                    MassCancelScope::Security
                } else {
                    MassCancelScope::All
                };
                let r = OrderMassCancelReport {
                    cl_ord_id: Some(request.as_bytes()),
                    order_id: Id::Num(exec_id),
                    request_type: scope.as_byte(),
                    response: scope.as_byte(),
                    reject_reason: None,
                    total_affected_orders: Some(count),
                    symbol,
                    side: None,
                    transact_time: Some(now),
                    text: None,
                };
                let _ = session.send(&r, now, out);
            }
            Reply::Accepted { slot }
            | Reply::Rejected { slot, .. }
            | Reply::Fill { slot, .. }
            | Reply::Cancelled { slot, .. }
            | Reply::Replaced { slot, .. } => {
                let o = *core.orders.get(slot);
                let oid = core.orders.order_id(slot);
                let ins = core.instruments.get(o.instrument);
                let d = ins.map_or(0, |i| i.price_decimals);
                let symbol = ins.map_or(&b"?"[..], |i| i.symbol());
                let mut er = ExecutionReport {
                    order_id: Id::Num(oid),
                    cl_ord_id: o.client_id.as_bytes(),
                    orig_cl_ord_id: None,
                    exec_id: Id::Num(exec_id),
                    exec_type: ExecType::New,
                    ord_status: status(&o),
                    ord_rej_reason: None,
                    account: None,
                    symbol,
                    side: fix_side(o.side),
                    order_qty: Some(o.qty),
                    ord_type: Some(fix_ord_type(o.ord_type)),
                    price: (o.ord_type == OrdType::Limit).then_some(o.price),
                    time_in_force: Some(fix_tif(o.tif)),
                    last_qty: None,
                    last_px: None,
                    leaves_qty: 0,
                    cum_qty: o.cum_qty,
                    avg_px: avg_px(&o),
                    avg_px_decimals: d + AVG_PX_EXTRA_DECIMALS,
                    price_scale: d,
                    transact_time: now,
                    time_precision: TimePrecision::Millis,
                    text: None,
                    copy_msg_indicator: false,
                };
                let mut req_id = ClientId::default();
                match *reply {
                    Reply::Accepted { .. } => {
                        er.leaves_qty = o.qty.saturating_sub(o.cum_qty);
                        er.ord_status = OrdStatus::New;
                    }
                    Reply::Rejected { reason, .. } => {
                        er.exec_type = ExecType::Rejected;
                        er.ord_status = OrdStatus::Rejected;
                        er.ord_rej_reason = Some(ord_rej_reason(reason));
                        er.text = Some(reject_text(reason));
                    }
                    Reply::Fill {
                        price, qty, leaves, ..
                    } => {
                        er.exec_type = ExecType::Trade;
                        er.ord_status = if leaves == 0 {
                            OrdStatus::Filled
                        } else {
                            OrdStatus::PartiallyFilled
                        };
                        er.last_qty = Some(qty);
                        er.last_px = Some(price);
                        er.leaves_qty = leaves;
                    }
                    Reply::Cancelled {
                        reason, request, ..
                    } => {
                        let expired = reason == CancelReason::DayExpired;
                        er.exec_type = if expired {
                            ExecType::Expired
                        } else {
                            ExecType::Canceled
                        };
                        er.ord_status = if expired {
                            OrdStatus::Expired
                        } else {
                            OrdStatus::Canceled
                        };
                        if let Some(r) = request {
                            // The cancel's own ClOrdID; the order's id becomes OrigClOrdID.
                            req_id = r;
                        }
                        er.text = Some(cancel_text(reason));
                    }
                    Reply::Replaced { leaves, .. } => {
                        er.exec_type = ExecType::Replaced;
                        er.leaves_qty = leaves;
                        er.ord_status = if o.cum_qty > 0 {
                            OrdStatus::PartiallyFilled
                        } else {
                            OrdStatus::New
                        };
                        er.orig_cl_ord_id = Some(o.orig_client_id.as_bytes());
                    }
                    _ => {}
                }
                if req_id.as_bytes() != b"" && req_id != o.client_id {
                    er.cl_ord_id = req_id.as_bytes();
                    er.orig_cl_ord_id = Some(o.client_id.as_bytes());
                }
                if !copy {
                    let _ = session.send(&er, now, out);
                    return;
                }
                // The drop copy: the originating session in Account, binary tokens in
                // decimal (a FIX ClOrdID is text). Stack buffers: no allocation.
                let (protocol, name) = core
                    .session_labels
                    .get(o.session as usize)
                    .map_or((Protocol::Fix, ""), |(p, n)| (*p, n.as_str()));
                let mut account = [0u8; 48];
                let prefix = protocol.label().as_bytes();
                let n = name.len().min(account.len() - prefix.len() - 1);
                account[..prefix.len()].copy_from_slice(prefix);
                account[prefix.len()] = b':';
                account[prefix.len() + 1..prefix.len() + 1 + n]
                    .copy_from_slice(&name.as_bytes()[..n]);
                er.account = Some(&account[..prefix.len() + 1 + n]);
                er.copy_msg_indicator = true;
                let (mut b1, mut b2) = ([0u8; 20], [0u8; 20]);
                if protocol == Protocol::Binary {
                    let token = |id: &[u8], buf: &mut [u8; 20]| -> usize {
                        let mut v = [0u8; 8];
                        v[..id.len().min(8)].copy_from_slice(&id[..id.len().min(8)]);
                        decimal(u64::from_le_bytes(v), buf)
                    };
                    let n1 = token(er.cl_ord_id, &mut b1);
                    er.cl_ord_id = &b1[20 - n1..];
                    if let Some(orig) = er.orig_cl_ord_id {
                        let n2 = token(orig, &mut b2);
                        er.orig_cl_ord_id = Some(&b2[20 - n2..]);
                    }
                }
                let _ = session.send(&er, now, out);
            }
        }
    }
}

/// FIX OrdRejReason (103) of a numeric reject code.
fn ord_rej_reason(code: u16) -> u32 {
    RejectCode::from_code(code).map_or(99, |c| c.fix_ord_rej_reason())
}

/// FIX CxlRejReason (102) of a numeric reject code.
fn cxl_rej_reason(code: u16) -> u32 {
    RejectCode::from_code(code).map_or(99, |c| c.fix_cxl_rej_reason())
}

/// Metrics label of a numeric reject code (the audit trail's reason).
fn reject_label(code: u16) -> &'static str {
    RejectCode::from_code(code).map_or("other", |c| c.label())
}

/// Text (58) of a numeric reject code.
fn reject_text(code: u16) -> &'static [u8] {
    RejectCode::from_code(code).map_or(b"rejected", |c| c.text())
}

/// Writes `v` in decimal at the end of `buf`; returns how many bytes (no allocation).
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return buf.len() - i;
        }
    }
}

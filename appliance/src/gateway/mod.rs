//! Gateways: client connections in, engine commands out; engine events in, replies out.
//!
//! A [`Gateway`] is three parts with disjoint borrows:
//! - [`core::Core`], protocol-neutral: connection slots and buffers, the order table, the
//!   instruments, the rings to and from the engines, clocks, stamps and counters;
//! - the sessions ([`session`]): each one's identity and its protocol state, a FIX session
//!   ([`fix`]) or a binary user ([`binary`]), living for the whole run;
//! - one handler per protocol ([`fix::FixHandler`], [`binary::BinaryHandler`]) that borrows
//!   the core and one session per call.
//!
//! The `Gateway` itself does only what needs sessions and connections together: binding a
//! connection to a session at logon, detaching it when the core closes the connection
//! (cancel on disconnect included), and routing engine events to the session they belong to
//! ([`events`]). [`driver`] runs the loop over an I/O backend, [`uring`] (io_uring, the
//! default) or [`epoll`] (the fallback).

pub mod audit;
pub mod binary;
pub mod conn;
pub mod control;
pub mod core;
pub mod driver;
pub mod epoll;
mod events;
pub mod fix;
pub mod fix_md;
pub mod inflight;
pub mod instruments;
pub mod journal;
pub mod orders;
pub mod recovery;
pub mod session;
pub mod throttle;
pub mod uring;

use self::binary::{BinaryHandler, BinaryStep};
use self::conn::{ConnId, ConnState, OutBuf};
use self::core::{Core, GatewayRings, GatewaySizing};
use self::fix::{FixHandler, FixSettings};
use self::instruments::Instruments;
use self::journal::GatewayJournal;
use self::session::{SessionKind, SessionSlot};
use crate::binary::wire::{self, credential_str, LoginRejectReason};
use crate::engine::CancelReason;
use crate::recovery::records::Cause;
use crate::rings::records::RecordTx;
use crate::rings::stamp::StageHistograms;
use crate::telemetry::counters::{gw as slot, GatewayCounters};
use crate::telemetry::GatewayTelemetry;
use crate::vocab::{DisconnectCause, Protocol};
use ::fix::session::MessageStore;

/// How often timers (heartbeats, timeouts) run while connections exist.
pub const TIMER_INTERVAL_NS: u64 = 5_000_000;

/// A gateway: its core, its sessions and its protocol handlers.
pub struct Gateway {
    /// The protocol-neutral core.
    pub core: Core,
    sessions: Vec<SessionSlot>,
    fix: FixHandler,
    fix_settings: FixSettings,
    binary: BinaryHandler,
    telemetry: Option<GatewayTelemetry>,
    next_publish_ns: u64,
    journal: Option<GatewayJournal>,
    causes: events::Causes,
    replay: Option<Box<recovery::Replay>>,
    journal_waker: Option<std::sync::Arc<crate::rings::wait::Waker>>,
    /// Accepting is paused until then (monotonic ns): the process ran out of descriptors.
    accept_paused_until: Option<u64>,
    /// Operator commands from the admin thread and the scheduler.
    controls: Vec<control::ControlLink>,
    /// Per local session, its firm's drop-copy session here (gets a copy of its reports).
    drop_copy: Vec<Option<u16>>,
    /// FIX market data: the encoding buffer of refreshes, and the sessions a publication
    /// sent to (to journal their sequence numbers).
    md_out: Vec<u8>,
    md_touched: Vec<u16>,
}

/// How long accepting pauses after an accept failed for want of descriptors or memory:
/// accepting again at once would fail again at once, and the listener stays readable, so
/// without a pause the gateway thread would spin.
pub const ACCEPT_BACKOFF_NS: u64 = 100_000_000;

/// What a gateway reports when it stops.
#[derive(Default)]
pub struct GatewayReport {
    /// Its latency histograms (ingress, egress, wire-to-wire).
    pub histograms: StageHistograms,
    /// Its I/O backend's counters.
    pub backend: driver::BackendStats,
}

impl Gateway {
    /// Builds a gateway with its memory reserved (cold path).
    pub fn new(
        id: usize,
        sessions: Vec<SessionSlot>,
        instruments: Instruments,
        rings: GatewayRings,
        sizing: GatewaySizing,
        fix_settings: FixSettings,
    ) -> Self {
        let mut core = Core::new(id, instruments, rings, sizing);
        core.throttles = sessions.iter().map(|s| s.info.throttle).collect();
        core.open_quota = sessions.iter().map(|s| s.info.max_open_orders).collect();
        core.session_counts = vec![[0; 3]; sessions.len()];
        core.orders
            .set_sessions(sessions.len(), core.instruments.all().len());
        core.notional_quota = session::notional_quotas(&sessions, &core.instruments);
        core.session_labels = sessions
            .iter()
            .map(|s| (s.info.protocol, s.info.name.clone()))
            .collect();
        let drop_copy = session::drop_copies(&sessions);
        (core.firm_limits, core.firm_of) = session::firm_table(&sessions, &core.instruments);
        Self {
            core,
            sessions,
            fix: FixHandler::new(id, &fix_settings),
            fix_settings,
            binary: BinaryHandler::new(sizing.max_connections),
            telemetry: None,
            next_publish_ns: 0,
            accept_paused_until: None,
            controls: Vec::new(),
            drop_copy,
            md_out: Vec::new(),
            md_touched: Vec::new(),
            journal: None,
            causes: events::Causes::default(),
            replay: None,
            journal_waker: None,
        }
    }

    /// Answers FIX MarketDataRequests with `md` from now on (cold path, at launch: `md` is
    /// seeded with the books as recovered).
    pub fn attach_fix_market_data(&mut self, md: fix_md::FixMarketData) {
        self.md_out = Vec::with_capacity(self.fix_settings.max_message_size + 256);
        self.md_touched = Vec::with_capacity(self.sessions.len());
        self.fix.attach_market_data(md);
    }

    /// Replaces the engine links (a gateway rebuilt by recovery goes live; cold path).
    pub fn attach_rings(&mut self, rings: GatewayRings) {
        self.core.attach_rings(rings);
    }

    /// Wakes the journal agent (output is held for it).
    #[inline]
    pub fn wake_journal(&self) {
        if let Some(w) = &self.journal_waker {
            w.wake_after_publish();
        }
    }

    /// Journals through `tx` from now on, waking the journal agent with `waker` when output
    /// waits for it (cold path, before the loop starts).
    pub fn attach_journal(
        &mut self,
        tx: RecordTx,
        waker: std::sync::Arc<crate::rings::wait::Waker>,
        gate: std::sync::Arc<crate::rings::records::JournalGate>,
    ) {
        self.journal_waker = Some(waker);
        self.core.journal = Some(tx);
        self.core.journal_gate = Some(gate);
        self.core.track_in_flight(self.sessions.len());
        let mut j = GatewayJournal::new(self.core.id, self.sessions.len());
        // Whatever the sessions hold now (recovered from the journal) is journaled already.
        for (i, slot) in self.sessions.iter_mut().enumerate() {
            let (next_out, next_in) = match &mut slot.kind {
                SessionKind::Fix(f) => {
                    f.session.store_mut().take_resets();
                    let st = f.session.store();
                    (st.next_sender_seq(), st.next_target_seq())
                }
                SessionKind::Binary(u) => (u.state.next_out_seq as u64, u.state.next_in_seq as u64),
            };
            j.recovered(i as u16, next_out, next_in);
        }
        self.journal = Some(j);
    }

    /// Whether output may leave now: everything this gateway journaled is durable.
    #[inline]
    pub fn output_durable(&self) -> bool {
        self.core.output_durable()
    }

    /// Journals sequence numbers that moved since the last record, for every session marked
    /// (called once per pass, after the events and timers and before the journal writes, so
    /// one record covers a whole pass's inbound messages).
    pub fn journal_pass(&mut self) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        let core = &mut self.core;
        core.retire_in_flight();
        if !j.has_dirty() {
            return;
        }
        let mask = j.take_dirty();
        let exec = self.fix.exec_counter();
        for (i, slot) in self.sessions.iter_mut().enumerate() {
            if mask & (1 << (i % 64)) == 0 {
                continue;
            }
            let s = i as u16;
            let Some(tx) = core.journal.as_mut() else {
                return;
            };
            let (protocol, next_out, next_in) = match &mut slot.kind {
                SessionKind::Fix(f) => {
                    j.sync_fix(tx, s, f, None, exec);
                    let st = f.session.store();
                    (Protocol::Fix, st.next_sender_seq(), st.next_target_seq())
                }
                SessionKind::Binary(u) => {
                    j.sync_binary(tx, s, u, None, exec);
                    let st = &u.state;
                    (
                        Protocol::Binary,
                        st.next_out_seq as u64,
                        st.next_in_seq as u64,
                    )
                }
            };
            // Not past a message whose command an engine has not taken (see `inflight`):
            // the session stays marked until it may say all.
            let safe_in = core.safe_next_in(s, next_in);
            let tx = core.journal.as_mut().expect("looked up above");
            if !j.seq_if_moved(tx, s, protocol, next_out, safe_in) || safe_in < next_in {
                j.mark_dirty(s);
            }
        }
    }

    /// Journals what changed in session `s` (messages answering `cause`, if any).
    #[inline]
    fn journal_session(&mut self, s: u16, cause: Option<Cause>) {
        let (Some(j), Some(tx)) = (self.journal.as_mut(), self.core.journal.as_mut()) else {
            return;
        };
        let exec = self.fix.exec_counter();
        match &mut self.sessions[s as usize].kind {
            SessionKind::Fix(f) => j.sync_fix(tx, s, f, cause, exec),
            SessionKind::Binary(u) => j.sync_binary(tx, s, u, cause, exec),
        }
    }

    /// Gateway index.
    pub fn id(&self) -> usize {
        self.core.id
    }

    /// The configured sessions (for inspection and tests).
    pub fn sessions(&self) -> &[SessionSlot] {
        &self.sessions
    }

    // ---------------------------------------------------------------------------------------
    // Driver API
    // ---------------------------------------------------------------------------------------

    /// Refreshes the cached clocks; drivers call it once per loop iteration.
    #[inline]
    pub fn tick_clock(&mut self) {
        self.core.tick_clock();
    }

    /// Monotonic nanoseconds since the gateway started, as of the last `tick_clock`.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.core.now_ns
    }

    /// A new connection from `peer` (see [`Core::accept`]) on a listener of `protocol`;
    /// `None` when no slot is free (the driver closes the socket).
    pub fn accept(&mut self, protocol: Protocol, peer: u128) -> Option<ConnId> {
        let c = self.core.accept(protocol, peer)?;
        self.core.audit(c, None, audit::AuditEvent::Connected);
        self.settle();
        if protocol == Protocol::Binary {
            self.binary.on_accept(c, self.core.now_ns);
        }
        Some(c)
    }

    /// The connection's state.
    #[inline]
    pub fn state(&self, c: ConnId) -> ConnState {
        self.core.state(c)
    }

    /// An accept failed with `errno`. Returns whether the backend must stop accepting until
    /// [`Gateway::accept_resume_due`]: out of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
    /// ENOMEM), when retrying at once would only fail again (cold path).
    #[cold]
    pub fn accept_failed(&mut self, errno: i32) -> bool {
        self.core.counters.bump(slot::ACCEPT_ERRORS);
        let exhausted = matches!(
            errno,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
        );
        if exhausted {
            self.accept_paused_until = Some(self.core.now_ns + ACCEPT_BACKOFF_NS);
        }
        exhausted
    }

    /// Whether accepting, paused by [`Gateway::accept_failed`], may resume now (says yes
    /// once per pause).
    #[inline]
    pub fn accept_resume_due(&mut self) -> bool {
        match self.accept_paused_until {
            Some(t) if self.core.now_ns >= t => {
                self.accept_paused_until = None;
                true
            }
            _ => false,
        }
    }

    /// Bytes arrived on `c`, received at TSC `t_recv`. Returns `false` when the input buffer
    /// is full: the driver must stop reading the connection until [`Gateway::wants_input`].
    #[inline]
    pub fn on_recv(&mut self, c: ConnId, data: &[u8], t_recv: u64) -> bool {
        if self.core.state(c) != ConnState::Open {
            return true;
        }
        if !self.core.append_input(c, data, t_recv) {
            return false;
        }
        self.process_input(c);
        self.settle();
        true
    }

    /// Whether the driver should (re)arm reading on `c`.
    #[inline]
    pub fn wants_input(&self, c: ConnId) -> bool {
        self.core.wants_input(c)
    }

    /// Whether `c` is open (neither closing nor free).
    #[inline]
    pub fn is_open(&self, c: ConnId) -> bool {
        self.core.state(c) == ConnState::Open
    }

    /// Bytes `c` can take now (read at most this much).
    #[inline]
    pub fn input_space(&self, c: ConnId) -> usize {
        self.core.input_space(c)
    }

    /// The peer closed `c`, or the socket failed. The driver then closes the socket and,
    /// once nothing is in flight, calls [`Gateway::release`].
    pub fn on_closed(&mut self, c: ConnId) {
        self.core.close_now(c, DisconnectCause::PeerClosed);
        self.settle();
    }

    /// Returns `c`'s slot to the pool (after the socket is closed).
    pub fn release(&mut self, c: ConnId) {
        self.core.release(c);
        self.settle();
    }

    /// Connections with output to send or a state change for the driver, since the last call.
    #[inline]
    pub fn take_dirty(&mut self, into: &mut Vec<ConnId>) {
        self.core.take_dirty(into);
    }

    /// The connection's output buffer.
    #[inline]
    pub fn output(&mut self, c: ConnId) -> &mut OutBuf {
        self.core.output(c)
    }

    /// Whether `c` should be closed now: Dead, or Closing with its output flushed.
    #[inline]
    pub fn should_close(&self, c: ConnId) -> bool {
        self.core.should_close(c)
    }

    /// The driver submitted the sends of this iteration: records egress and wire-to-wire.
    #[inline]
    pub fn sends_submitted(&mut self) {
        self.core.sends_submitted();
    }

    /// Drains the engines' events into replies, continues replays, pushes cancel-on-
    /// disconnects that were waiting for ring room and resumes paused connections. Returns
    /// whether anything was done.
    pub fn poll(&mut self) -> bool {
        let mut did = false;
        for e in 0..self.core.engine_count() {
            for _ in 0..1024 {
                if !self.core.journal_ready() {
                    break;
                }
                let Some(msg) = self.core.pop_event(e) else {
                    break;
                };
                did = true;
                self.on_event(e, &msg);
                self.settle();
            }
        }
        if self.fix.market_data().is_some_and(|m| m.pending()) {
            self.publish_fix_market_data();
        }
        if self.replay.is_some() {
            did |= self.render_backlog();
        }
        if self.binary.replaying() {
            for c in 0..self.core.conn_count() as ConnId {
                if !self.binary.is_replaying(c) {
                    continue;
                }
                let Some(s) = self.core.conn(c).session else {
                    continue;
                };
                if let SessionKind::Binary(u) = &self.sessions[s as usize].kind {
                    self.binary.pump_replay(&mut self.core, c, u);
                }
            }
        }
        if self.fix.resending() {
            did |= self.pump_resends();
        }
        if self.controls.iter().any(|c| c.pending()) {
            did |= self.on_control();
        }
        if self
            .sessions
            .iter()
            .any(|s| s.info.disconnect_cancel_pending || s.info.kill_cancel_pending)
        {
            for s in 0..self.sessions.len() as u16 {
                self.push_pending_cancel(s);
            }
        }
        if self.core.any_paused() {
            for c in 0..self.core.conn_count() as ConnId {
                if self.core.conn(c).paused && self.core.may_resume(c) {
                    self.core.resume(c);
                    self.process_input(c);
                    self.settle();
                    did = true;
                }
            }
        }
        self.core.publish();
        did
    }

    /// Heartbeats and timeouts; call every [`TIMER_INTERVAL_NS`] while connections exist
    /// (cold-ish: walks every connection).
    pub fn on_timer(&mut self) {
        for c in 0..self.core.conn_count() as ConnId {
            if self.core.state(c) == ConnState::Closing && self.core.expire_closing(c) {
                self.settle();
                continue;
            }
            if self.core.state(c) != ConnState::Open {
                continue;
            }
            let session = self.core.conn(c).session;
            match self.core.conn(c).protocol {
                Protocol::Binary => self.binary.timer(&mut self.core, c),
                Protocol::Fix => {
                    let fs = fix_session_of(&mut self.sessions, session);
                    self.fix.timer(&mut self.core, fs, c);
                }
            }
            if let Some(s) = session {
                self.journal_session(s, None);
            }
            self.settle();
        }
        self.core.publish();
    }

    /// When the gateway next needs [`Gateway::on_timer`] (monotonic ns, the `now_ns` clock),
    /// or `None` when no connection needs one: what an idle loop may sleep until.
    pub fn next_timer_deadline(&self) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut take = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.accept_paused_until {
            take(t);
        }
        for c in 0..self.core.conn_count() as ConnId {
            let conn = self.core.conn(c);
            match conn.state {
                ConnState::Free | ConnState::Dead => continue,
                // Flushing a goodbye: look again soon, and close it hard at its deadline.
                ConnState::Closing => {
                    take(self.core.now_ns + TIMER_INTERVAL_NS);
                    if let Some(t) = self.core.closing_deadline(c) {
                        take(t);
                    }
                }
                ConnState::Open => match (conn.protocol, conn.session) {
                    (Protocol::Binary, _) => {
                        if let Some(t) = self.binary.next_deadline(c) {
                            take(t);
                        }
                    }
                    (Protocol::Fix, None) => {
                        take(conn.opened_ns + self.fix_settings.logon_timeout_ns + 1)
                    }
                    (Protocol::Fix, Some(s)) => {
                        if let SessionKind::Fix(f) = &self.sessions[s as usize].kind {
                            // The session's deadline is on the wall clock.
                            let wall = self.core.wall_ns.max(0) as u64;
                            let d = f.session.next_deadline().saturating_sub(wall);
                            take(self.core.now_ns.saturating_add(d));
                        }
                    }
                },
            }
        }
        next
    }

    /// Starts a graceful shutdown: every logged-in session gets a Logout, connections close
    /// once flushed (cold path).
    pub fn begin_shutdown(&mut self) {
        for c in 0..self.core.conn_count() as ConnId {
            if self.core.state(c) != ConnState::Open {
                continue;
            }
            let session = self.core.conn(c).session;
            match self.core.conn(c).protocol {
                Protocol::Binary => self.binary.shutdown(&mut self.core, c),
                Protocol::Fix => {
                    let fs = fix_session_of(&mut self.sessions, session);
                    self.fix.shutdown(&mut self.core, fs, c);
                }
            }
            if let Some(s) = session {
                self.journal_session(s, None);
            }
            self.settle();
        }
        self.core.publish();
    }

    /// Whether every command this gateway sent has been taken by its engine (journaled), as
    /// of the last pass.
    pub fn in_flight_empty(&self) -> bool {
        self.core.in_flight_empty()
    }

    /// Whether any connection is still open or closing (shutdown waits for none).
    pub fn has_connections(&self) -> bool {
        self.core.has_connections()
    }

    /// Whether an engine has events waiting for this gateway (checked before sleeping).
    pub fn engine_events_waiting(&self) -> bool {
        self.core.engine_events_waiting()
    }

    /// This thread's latency histograms (what has not been handed to the exporter yet).
    pub fn histograms(&self) -> &StageHistograms {
        &self.core.hist
    }

    /// Business and session counters counted so far (not yet published ones included).
    pub fn counters(&self) -> &GatewayCounters {
        &self.core.counters
    }

    /// Connects the gateway to the audit logging thread (cold path, before the loop starts).
    pub fn attach_audit(&mut self, tx: crate::rings::ring::Sender<audit::AuditRecord>) {
        self.core.audit_tx = Some(tx);
    }

    /// Connects the gateway to the admin thread (cold path, before the loop starts).
    pub fn attach_control(&mut self, link: control::ControlLink) {
        self.controls.push(link);
    }

    /// Connects the gateway to the exporter (cold path, before the loop starts).
    pub fn attach_telemetry(&mut self, t: GatewayTelemetry) {
        t.sessions.init(
            self.sessions
                .iter()
                .map(|s| format!("{}:{}", s.info.protocol.label(), s.info.name))
                .collect(),
        );
        self.next_publish_ns = t.interval_ns;
        self.telemetry = Some(t);
    }

    /// When the next publication of counters is due (monotonic ns), if telemetry is on.
    pub fn next_publish_ns(&self) -> Option<u64> {
        self.telemetry.as_ref().map(|_| self.next_publish_ns)
    }

    /// Publishes counters and hands the histograms over when the interval has elapsed;
    /// drivers call it once per loop iteration (one compare when not due).
    #[inline]
    pub fn telemetry_tick(&mut self) {
        if self.telemetry.is_some() && self.core.now_ns >= self.next_publish_ns {
            self.publish_telemetry();
        }
    }

    /// Hands the histograms over and copies every counter into the published block (once
    /// per interval, and once more at shutdown; walks the sessions for the gauges).
    #[cold]
    pub fn publish_telemetry(&mut self) {
        let Some(t) = self.telemetry.as_mut() else {
            return;
        };
        let now = self.core.now_ns;
        self.next_publish_ns = now + t.interval_ns;
        if let Some(h) = t.handover.as_mut() {
            h.hand_over(&mut self.core.hist, now);
            self.core.counters.set(slot::HANDOVERS, h.handovers);
            self.core.counters.set(slot::HANDOVER_SKIPS, h.skips);
        }
        self.sum_sessions();
        let Some(t) = self.telemetry.as_mut() else {
            return;
        };
        t.metrics.publish(&self.core.counters);
        for (i, sess) in self.sessions.iter().enumerate() {
            let [m, r, th] = self.core.session_counts.get(i).copied().unwrap_or_default();
            t.sessions
                .publish(i, [m, r, th, sess.info.conn.is_some() as u64]);
        }
    }

    /// Sets the counters that are sums or gauges over the sessions (connected sessions,
    /// ResendRequests, resend-store evictions), as published. Cold path: walks the sessions.
    #[cold]
    pub fn sum_sessions(&mut self) {
        let mut connected = [0u64; Protocol::ALL.len()];
        let mut evicted = [0u64; Protocol::ALL.len()];
        let (mut resend_in, mut resend_out) = (0, 0);
        for sess in &self.sessions {
            let p = sess.info.protocol.index();
            connected[p] += sess.info.conn.is_some() as u64;
            match &sess.kind {
                SessionKind::Fix(f) => {
                    resend_in += f.session.resend_requests_received();
                    resend_out += f.session.resend_requests_sent();
                    evicted[p] += f.session.store().memory().evicted();
                }
                SessionKind::Binary(b) => evicted[p] += b.state.evicted(),
            }
        }
        for (p, n) in connected.iter().enumerate() {
            self.core.counters.set(slot::CONNECTED + p, *n);
        }
        for (p, n) in evicted.iter().enumerate() {
            self.core.counters.set(slot::STORE_EVICTED + p, *n);
        }
        self.core.counters.set(slot::RESEND_RECEIVED, resend_in);
        self.core.counters.set(slot::RESEND_SENT, resend_out);
        if let Some(md) = self.fix.market_data() {
            let st = md.stats;
            let sent = [st.snapshots, st.incrementals, st.full_refreshes, st.rejects];
            for (k, n) in sent.into_iter().enumerate() {
                self.core.counters.set(slot::FIX_MD_MESSAGES + k, n);
            }
            self.core
                .counters
                .set(slot::FIX_MD_SUBSCRIPTIONS, st.subscriptions);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Sessions and connections together
    // ---------------------------------------------------------------------------------------

    fn process_input(&mut self, c: ConnId) {
        match self.core.conn(c).protocol {
            Protocol::Binary => self.binary_input(c),
            Protocol::Fix => self.fix_input(c),
        }
    }

    /// Continues every FIX session's answer to a ResendRequest where the output has room.
    /// Returns whether anything was written.
    fn pump_resends(&mut self) -> bool {
        let mut pending = false;
        let mut did = false;
        for slot in self.sessions.iter_mut() {
            let (SessionKind::Fix(fs), Some(c)) = (&mut slot.kind, slot.info.conn) else {
                continue;
            };
            if !fs.session.resend_pending() {
                continue;
            }
            let before = self.core.output(c).pending();
            pending |= self.fix.pump_resend(&mut self.core, fs, c);
            did |= self.core.output(c).pending() != before;
        }
        if !pending {
            self.fix.resends_done();
        }
        self.settle();
        did
    }

    /// Pushes session `s`'s pending cancel-on-disconnect if the rings have room; returns
    /// whether nothing is pending any more.
    fn push_pending_cancel(&mut self, s: u16) -> bool {
        let info = &mut self.sessions[s as usize].info;
        if !info.disconnect_cancel_pending && !info.kill_cancel_pending {
            return true;
        }
        if !self.core.rings_ready() {
            return false;
        }
        // One cancel of every working order covers both; the kill switch names itself.
        let reason = if info.kill_cancel_pending {
            CancelReason::KillSwitch
        } else {
            CancelReason::Disconnect
        };
        info.disconnect_cancel_pending = false;
        info.kill_cancel_pending = false;
        let who = info.who();
        self.core.session_cancel(&who, reason);
        true
    }

    /// Before a bound connection's input is handled, the previous connection's
    /// cancel-on-disconnect goes first, so it cannot touch orders the new one enters.
    fn ready_for_input(&mut self, c: ConnId) -> bool {
        let session = self.core.conn(c).session;
        match session {
            Some(s) if !self.push_pending_cancel(s) => {
                self.core.pause(c);
                false
            }
            _ => true,
        }
    }

    fn bind(&mut self, c: ConnId, s: u16) {
        let info = &mut self.sessions[s as usize].info;
        self.core.bind(c, s, info.protocol);
        info.conn = Some(c);
        self.core.audit(c, Some(s), audit::AuditEvent::LoggedOn);
    }

    /// Detaches the sessions of connections the core closed (at the end of every entry
    /// point, so a session is never left looking connected).
    fn settle(&mut self) {
        while let Some((c, s, cause)) = self.core.take_detached() {
            self.core
                .audit(c, Some(s), audit::AuditEvent::Disconnected(cause));
            let slot = &mut self.sessions[s as usize];
            self.core
                .counters
                .disconnect(slot.info.protocol.index(), cause);
            slot.info.conn = None;
            match &mut slot.kind {
                SessionKind::Fix(f) => {
                    f.on_disconnect();
                    if let Some(md) = self.fix.market_data() {
                        md.drop_session(s);
                    }
                }
                SessionKind::Binary(_) => self.binary.on_detached(c),
            }
            if slot.info.cancel_on_disconnect {
                slot.info.disconnect_cancel_pending = true;
                self.push_pending_cancel(s);
            }
        }
    }

    fn fix_input(&mut self, c: ConnId) {
        if self.core.conn(c).session.is_none() && !self.fix_bind(c) {
            return;
        }
        if !self.ready_for_input(c) {
            return;
        }
        let Some(s) = self.core.conn(c).session else {
            return;
        };
        let slot = &mut self.sessions[s as usize];
        if let SessionKind::Fix(fs) = &mut slot.kind {
            self.fix.input(&mut self.core, &slot.info, fs, c);
        }
        self.journal_session(s, None);
    }

    /// Binds unbound FIX connection `c` from its first message, if complete. Returns whether
    /// it is bound now. Unknown counterparties, wrong credentials and sessions already
    /// connected elsewhere are dropped without an answer (QuickFIX behaviour; the first
    /// connection stays). Credentials are checked here, before binding, so that a Logon with
    /// a wrong password never touches the session: no Logout from the session's sequence,
    /// no journaled numbers, no effect on a live connection.
    fn fix_bind(&mut self, c: ConnId) -> bool {
        let mut refused = audit::RefuseReason::UnknownSession;
        let found = {
            let input = self.core.conn(c).input.data();
            match fix::peek_logon(
                input,
                self.fix_settings.max_message_size,
                &self.fix_settings.sender_comp_id,
            ) {
                fix::LogonPeek::Incomplete => return false,
                fix::LogonPeek::From(id) => self
                    .sessions
                    .iter()
                    .position(|s| {
                        s.info.protocol == Protocol::Fix
                            && s.info.name.as_bytes() == id.sender_comp_id
                    })
                    .filter(|&s| {
                        let info = &self.sessions[s].info;
                        let ok = ::fix::session::credentials_match(
                            info.username.as_deref(),
                            info.password.as_deref(),
                            id.username,
                            id.password,
                        );
                        if !ok {
                            refused = audit::RefuseReason::BadCredentials;
                        }
                        ok
                    }),
                fix::LogonPeek::NotForUs => None,
            }
        };
        let Some(s) = found else {
            self.core
                .audit(c, None, audit::AuditEvent::LogonRefused(refused));
            self.core.close_now(c, DisconnectCause::ProtocolError);
            return false;
        };
        if self.sessions[s].info.conn.is_some() {
            let why = audit::RefuseReason::AlreadyConnected;
            self.core
                .audit(c, Some(s as u16), audit::AuditEvent::LogonRefused(why));
            self.core.close_now(c, DisconnectCause::ProtocolError);
            return false;
        }
        self.bind(c, s as u16);
        let now = self.core.wall_ns as u64;
        if let SessionKind::Fix(f) = &mut self.sessions[s].kind {
            f.session.on_connected(now);
        }
        true
    }

    fn binary_input(&mut self, c: ConnId) {
        loop {
            if !self.ready_for_input(c) {
                return;
            }
            let session = self.core.conn(c).session;
            let step = match session {
                Some(s) => {
                    let slot = &mut self.sessions[s as usize];
                    let SessionKind::Binary(u) = &mut slot.kind else {
                        return;
                    };
                    let step = self
                        .binary
                        .input(&mut self.core, c, Some((&slot.info, u.as_mut())));
                    self.journal_session(s, None);
                    step
                }
                None => self.binary.input(&mut self.core, c, None),
            };
            match step {
                BinaryStep::Done => return,
                BinaryStep::Login(l) => {
                    self.binary_login(c, &l);
                    self.settle();
                }
            }
        }
    }

    fn binary_login(&mut self, c: ConnId, login: &wire::Login) {
        let name = credential_str(&login.username);
        let password = credential_str(&login.password);
        let found = self
            .sessions
            .iter()
            .position(|s| s.info.protocol == Protocol::Binary && s.info.name.as_bytes() == name);
        let Some(s) = found else {
            return self
                .binary
                .reject_login(&mut self.core, c, LoginRejectReason::NotAuthorized);
        };
        let slot = &mut self.sessions[s];
        // Constant time (a session without a password expects an empty one).
        let expected = slot.info.password.as_deref().unwrap_or("");
        if !::fix::session::credentials_match(None, Some(expected), None, Some(password)) {
            return self
                .binary
                .reject_login(&mut self.core, c, LoginRejectReason::NotAuthorized);
        }
        if slot.info.conn.is_some() {
            return self
                .binary
                .reject_login(&mut self.core, c, LoginRejectReason::AlreadyLoggedIn);
        }
        let SessionKind::Binary(u) = &mut slot.kind else {
            return;
        };
        match self.binary.login(&mut self.core, c, u, login) {
            Ok(()) => self.bind(c, s as u16),
            Err(reason) => self.binary.reject_login(&mut self.core, c, reason),
        }
    }
}

/// The FIX session bound as `session`, if it is one.
fn fix_session_of(
    sessions: &mut [SessionSlot],
    session: Option<u16>,
) -> Option<&mut fix::FixSession> {
    match &mut sessions[session? as usize].kind {
        SessionKind::Fix(f) => Some(f),
        SessionKind::Binary(_) => None,
    }
}

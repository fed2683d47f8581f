//! The gateway agent: one [`Gateway`] over one I/O backend. Hot path.
//!
//! A pass has two halves so a shared duty cycle can run the engines between them:
//! [`GatewayAgent::poll_io`] reaps I/O (accepts, received bytes, send completions) and hands
//! decoded orders to the engine rings; [`GatewayAgent::after_engines`] drains the engines'
//! events into replies, runs timers, then submits sends and closes for every connection that
//! changed (egress latency is stamped at that submission) and publishes telemetry when due.
//! On its own thread the agent runs both halves back to back.

use super::agent::{phase, Agent, Reports};
use crate::gateway::conn::ConnId;
use crate::gateway::driver::{Backend, SHUTDOWN_GRACE_NS};
use crate::gateway::{Gateway, GatewayReport, TIMER_INTERVAL_NS};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long, after the grace period for sessions to log out, a stopping gateway waits for the
/// engines' answers to the last commands before it stops anyway (an engine that died).
const DRAIN_GRACE_NS: u64 = 5_000_000_000;

/// A gateway and its backend.
pub struct GatewayAgent {
    gw: Gateway,
    backend: Box<dyn Backend>,
    scratch: Vec<ConnId>,
    last_timer: u64,
    shutdown_at: Option<u64>,
    role: String,
    /// Output waits for the journal.
    held: bool,
    /// Gateways still sending commands at shutdown: every gateway counts itself out when its
    /// sessions are closed and the engines have taken its commands, and keeps taking engine
    /// events until the count is zero and its event rings are empty. An engine event for this
    /// gateway can come from another gateway's command (a fill against a resting order), so
    /// its order table is final only once no gateway sends any more.
    peers: Arc<AtomicUsize>,
    /// This gateway has counted itself out of `peers`.
    counted_out: bool,
}

impl GatewayAgent {
    /// An agent for `gw` over `backend` (cold path).
    pub fn new(gw: Gateway, backend: Box<dyn Backend>) -> Self {
        let role = format!("gateway-{}", gw.id());
        let cap = crate::gateway::core::DIRTY_CAP.max(2 * gw.core.conn_count());
        Self {
            gw,
            backend,
            scratch: Vec::with_capacity(cap),
            last_timer: 0,
            shutdown_at: None,
            role,
            held: false,
            peers: Arc::new(AtomicUsize::new(1)),
            counted_out: false,
        }
    }

    /// Shares the shutdown count of gateways still sending with the other gateways (cold
    /// path; alone, a gateway counts only itself).
    pub fn with_peers(mut self, peers: Arc<AtomicUsize>) -> Self {
        self.peers = peers;
        self
    }

    /// Whether the shutdown's grace period, plus `extra`, is over.
    fn past_grace(&self, extra: u64) -> bool {
        self.shutdown_at
            .is_some_and(|t| self.gw.now_ns().saturating_sub(t) > SHUTDOWN_GRACE_NS + extra)
    }

    /// The gateway (tests and reports).
    pub fn gateway(&self) -> &Gateway {
        &self.gw
    }

    /// The backend (shared threading wires several backends' wake-ups together).
    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// First half of a pass: reap I/O. Returns whether anything happened.
    #[inline]
    pub fn poll_io(&mut self) -> usize {
        self.gw.tick_clock();
        self.backend.poll_io(&mut self.gw) as usize
    }

    /// Drains the engines' events into replies (what a shared duty cycle calls when an
    /// engine finds this gateway's event ring full).
    #[inline]
    pub fn drain_events(&mut self) {
        self.gw.poll();
    }

    /// Second half of a pass, first part: events into replies, timers, and the pass's
    /// sequence-number records for the journal.
    #[inline]
    pub fn render(&mut self) -> usize {
        let did = self.gw.poll() as usize;
        let now = self.gw.now_ns();
        if now.saturating_sub(self.last_timer) >= TIMER_INTERVAL_NS {
            self.last_timer = now;
            self.gw.on_timer();
        }
        self.gw.journal_pass();
        did
    }

    /// Second half of a pass, last part: sends and closes, once everything journaled is
    /// durable (until then output waits in the connections' buffers), then telemetry.
    /// Returns whether output is still held for the journal.
    #[inline]
    pub fn flush(&mut self) -> bool {
        let held = !self.gw.output_durable();
        if held {
            self.gw.wake_journal();
        } else {
            self.backend.flush(&mut self.gw, &mut self.scratch);
        }
        self.gw.telemetry_tick();
        held
    }

    /// Notes whether output is held for the journal (a shared duty cycle flushes itself).
    #[inline]
    pub fn set_held(&mut self, held: bool) {
        self.held = held;
    }

    /// Second half of a pass: [`GatewayAgent::render`] then [`GatewayAgent::flush`].
    #[inline]
    pub fn after_engines(&mut self) -> usize {
        let did = self.render();
        self.held = self.flush();
        did
    }
}

impl Agent for GatewayAgent {
    fn role(&self) -> &str {
        &self.role
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        self.poll_io() + self.after_engines()
    }

    fn has_work(&self) -> bool {
        self.gw.engine_events_waiting() || (self.held && self.gw.output_durable())
    }

    fn idle_timeout(&self) -> Option<Duration> {
        let now = self.gw.now_ns();
        let mut next = self.gw.next_publish_ns();
        let mut take = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.gw.next_timer_deadline() {
            // Timers run at most every TIMER_INTERVAL_NS.
            take(t.max(self.last_timer + TIMER_INTERVAL_NS));
        }
        if self.shutdown_at.is_some() {
            take(now + TIMER_INTERVAL_NS);
        }
        next.map(|t| Duration::from_nanos(t.saturating_sub(now)))
    }

    fn park(&mut self, timeout: Duration) -> bool {
        self.backend.wait(&mut self.gw, timeout);
        true
    }

    fn first_phase(&self) -> u8 {
        phase::GATEWAYS
    }

    fn on_stop(&mut self, p: u8) {
        match p {
            phase::GATEWAYS => {
                self.backend.close_listeners();
                self.gw.begin_shutdown();
                self.gw.journal_pass();
                self.held = self.flush();
                self.shutdown_at = Some(self.gw.now_ns());
            }
            phase::ENGINES if !self.counted_out => {
                self.counted_out = true;
                self.peers.fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
        }
    }

    fn phase_done(&self, p: u8) -> bool {
        match p {
            // Sessions closed and every command taken by its engine (so the last sequence
            // records can say every message was received: see `gateway::inflight`).
            phase::GATEWAYS => {
                self.shutdown_at.is_some()
                    && ((!self.gw.has_connections() && self.gw.in_flight_empty())
                        || self.past_grace(0))
            }
            // No gateway sends any more and every engine event for this one is taken.
            phase::ENGINES => {
                (self.peers.load(Ordering::Acquire) == 0
                    && self.gw.in_flight_empty()
                    && !self.gw.engine_events_waiting()
                    && !self.held)
                    || self.past_grace(DRAIN_GRACE_NS)
            }
            _ => true,
        }
    }

    fn on_close(&mut self) {
        self.gw.journal_pass();
        self.gw.wake_journal();
        self.gw.publish_telemetry();
    }

    fn report(&self, into: &mut Reports) {
        into.gateway_hashes
            .push((self.gw.id(), self.gw.state_hash()));
        into.histograms.merge(self.gw.histograms());
        into.gateways.push((
            self.gw.id(),
            GatewayReport {
                histograms: self.gw.histograms().clone(),
                backend: self.backend.stats(),
            },
        ));
    }
}

//! Agents and the runner that drives them (Agrona's `Agent` and `AgentRunner`).
//!
//! An agent is one unit of hot-path work with a duty cycle: [`Agent::do_work`] does what is
//! ready and says how much, never blocking. A [`Runner`] owns one thread: it calls its agent
//! in a loop and, when a pass finds nothing, asks its [`IdleStrategy`] whether to poll again
//! or sleep. Sleeping follows the Dekker protocol of [`Waker`]: announce, re-check
//! ([`Agent::has_work`]), then sleep in the agent's own I/O wait when it has one
//! ([`Agent::park`], a gateway's io_uring or epoll wait with the thread's eventfd armed) or on
//! a futex, for no longer than the agent's next timer ([`Agent::idle_timeout`]).
//!
//! The same agents run one per thread (`dedicated`) or composed into one duty cycle on one
//! thread (`shared`, see [`super::shared`]): the runner does not know which.
//!
//! Stopping is in phases, because order matters: gateways first (they log their sessions
//! out and flush), then engines (they drain what the gateways queued), then whatever reads
//! the engines' output. A runner whose stop flag is set calls [`Agent::on_stop`] with the
//! lowest phase still running, and moves to the next phase when the agent says that phase is
//! done ([`Agent::phase_done`]).

use crate::gateway::GatewayReport;
use crate::rings::stamp::StageHistograms;
use crate::rings::wait::{Idle, IdleStrategy, Waker, MAX_PARK};
use crate::telemetry::status::{DeathGuard, ThreadState, ThreadStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stop phases, in order.
pub mod phase {
    /// Gateways: stop accepting, log sessions out, flush, close.
    pub const GATEWAYS: u8 = 0;
    /// Engines: drain the command rings, then stop.
    pub const ENGINES: u8 = 1;
    /// Everything after the engines (nothing yet; the journal will be here).
    pub const AFTER_ENGINES: u8 = 2;
    /// Past the last phase.
    pub const END: u8 = 3;
}

/// One unit of hot-path work with a duty cycle.
pub trait Agent {
    /// Role name for logs (`gateway-0`, `engine-1`, `shared`).
    fn role(&self) -> &str;

    /// One pass of the duty cycle: does what is ready, never blocks. Returns the amount of
    /// work done (0: the pass found nothing).
    fn do_work(&mut self) -> usize;

    /// Called after the runner announced it is going to sleep: whether work arrived in a
    /// queue another thread feeds (the runner then does not sleep).
    fn has_work(&self) -> bool;

    /// How long the agent may go without a pass if no input arrives (its next timer), or
    /// `None` when it only needs input.
    fn idle_timeout(&self) -> Option<Duration>;

    /// Sleeps up to `timeout` in the agent's own wait (I/O readiness plus the thread's
    /// wake-up fd). Returns `false` when the agent has no such wait (the runner parks the
    /// thread instead).
    fn park(&mut self, _timeout: Duration) -> bool {
        false
    }

    /// The lowest stop phase this agent has work in ([`phase`]).
    fn first_phase(&self) -> u8;

    /// The runtime is stopping: begin phase `p` (called once per phase, in order).
    fn on_stop(&mut self, p: u8);

    /// Whether phase `p` is finished (after `on_stop(p)`).
    fn phase_done(&self, p: u8) -> bool;

    /// Tells the thread's status block it is up (gateways: listening; engines: in the loop).
    fn on_start(&mut self) {}

    /// The last publication before the thread ends (final counters and histograms).
    fn on_close(&mut self) {}

    /// Adds what the agent leaves behind (latency histograms, backend counters) to `into`.
    fn report(&self, into: &mut Reports);
}

/// What stopped agents leave behind.
#[derive(Default)]
pub struct Reports {
    /// Latency histograms of every agent, merged (what was not handed to the exporter).
    pub histograms: StageHistograms,
    /// Each gateway's final report, by gateway index.
    pub gateways: Vec<(usize, GatewayReport)>,
    /// Each engine's state hash at the end, by engine index.
    pub engine_hashes: Vec<(usize, u64)>,
    /// Each gateway's state hash at the end, by gateway index.
    pub gateway_hashes: Vec<(usize, u64)>,
}

/// A thread running one agent until its stop flag is set and every phase is done.
pub struct Runner {
    /// The agent (possibly a composite of several).
    pub agent: Box<dyn Agent>,
    /// When to sleep.
    pub idle: Box<dyn IdleStrategy>,
    /// How producers (and the stop request) wake this thread.
    pub waker: Arc<Waker>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// This thread's published state.
    pub status: Arc<ThreadStatus>,
    /// When to panic on purpose (the `APPLIANCE_INJECT_PANIC` test hook, see
    /// [`super::fault`]); `None` in normal operation.
    pub fault: Option<std::time::Instant>,
}

impl Runner {
    /// Runs the duty cycle on the calling thread until stopped; returns what the agent
    /// leaves behind.
    pub fn run(self) -> Reports {
        let Runner {
            mut agent,
            mut idle,
            waker,
            stop,
            status,
            fault,
        } = self;
        let guard = DeathGuard::new(&status);
        agent.on_start();
        status.set(ThreadState::Running);
        let mut stopping: Option<u8> = None;
        loop {
            if let Some(at) = fault {
                super::fault::check(at, agent.role());
            }
            let work = agent.do_work();
            if stopping.is_none() && stop.load(Ordering::Acquire) {
                let p = agent.first_phase();
                agent.on_stop(p);
                stopping = Some(p);
            }
            if let Some(p) = stopping {
                if agent.phase_done(p) {
                    let next = p + 1;
                    if next >= phase::END {
                        break;
                    }
                    agent.on_stop(next);
                    stopping = Some(next);
                    continue;
                }
            }
            if work > 0 {
                idle.reset();
                continue;
            }
            if idle.idle() == Idle::Sleep {
                waker.prepare_sleep();
                if agent.has_work() || (stopping.is_none() && stop.load(Ordering::Acquire)) {
                    waker.woke();
                    continue;
                }
                let timeout = agent.idle_timeout().unwrap_or(MAX_PARK).min(MAX_PARK);
                if !agent.park(timeout) {
                    waker.park(timeout);
                }
                waker.woke();
                waker.drain_eventfd();
                // No reset: after an empty wake-up the next idle pass sleeps again at once,
                // so an idle thread costs one wake-up per timer, not a spin.
            }
        }
        agent.on_close();
        let mut reports = Reports::default();
        agent.report(&mut reports);
        status.set(ThreadState::Stopped);
        guard.disarm();
        reports
    }
}

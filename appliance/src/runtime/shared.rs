//! The shared threading mode's duty cycle: every gateway and engine agent on one thread,
//! through the same rings and the same agent code as the dedicated mode (Aeron's shared
//! media-driver mode, Agrona's `CompositeAgent`).
//!
//! One pass: each gateway reaps its I/O and hands decoded orders to the command rings; each
//! engine drains its command rings; each gateway drains its event ring into replies, runs its
//! timers and submits its sends. With one hot thread there is no cross-thread hop on the path
//! of an order and no second runnable thread competing for a core: on a host with fewer
//! cores than hot threads plus one, that is what keeps the tail out of the scheduler's hands.
//!
//! An engine that finds a gateway's event ring full cannot wait for the gateway (it is the
//! same thread): it runs that gateway's part of the cycle on the spot (journal, event intake,
//! sends), which makes the room.
//! Sleeping happens in the first gateway's I/O wait, which every other gateway's backend is
//! wired to wake (see `Backend::wake_source`).

use super::agent::{phase, Agent, Reports};
use super::engine_agent::EngineAgent;
use super::gateway_agent::GatewayAgent;
use super::journal_agent::JournalAgent;
use std::time::Duration;

/// Gateways and engines composed into one duty cycle.
pub struct SharedDuty {
    gateways: Vec<GatewayAgent>,
    engines: Vec<EngineAgent>,
    /// The journal agent, when it runs in this duty cycle (between the replies and the
    /// sends, so a pass's acknowledgements leave in the same pass).
    journal: Option<JournalAgent>,
}

impl SharedDuty {
    /// The composite (cold path). The first gateway's backend is where the thread sleeps;
    /// every other backend is made to wake it.
    pub fn new(
        mut gateways: Vec<GatewayAgent>,
        engines: Vec<EngineAgent>,
        journal: Option<JournalAgent>,
        wake_fd: std::os::fd::RawFd,
    ) -> std::io::Result<Self> {
        if let Some((first, rest)) = gateways.split_first_mut() {
            for g in rest {
                if let Some(fd) = g.backend_mut().wake_source(wake_fd)? {
                    first.backend_mut().watch(fd)?;
                }
            }
        }
        Ok(Self {
            gateways,
            engines,
            journal,
        })
    }
}

impl Agent for SharedDuty {
    fn role(&self) -> &str {
        "shared"
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        let mut work = 0;
        for g in self.gateways.iter_mut() {
            work += g.poll_io();
        }
        let gateways = &mut self.gateways;
        let journal = &mut self.journal;
        for e in self.engines.iter_mut() {
            work += e.work(&mut |g| {
                // The engine found gateway g's event ring full in the middle of a command (a
                // mass cancel of many orders): run the rest of the cycle for that gateway on
                // the spot. The journal first (the gateway takes events only while its record
                // ring has room), then the events, the journal again for their replies, and
                // the sends (a long burst must not pile up in the connection's buffer).
                if let Some(gw) = gateways.get_mut(g) {
                    if let Some(j) = journal.as_mut() {
                        j.work();
                    }
                    gw.drain_events();
                    if let Some(j) = journal.as_mut() {
                        j.work();
                    }
                    let held = gw.flush();
                    gw.set_held(held);
                }
            });
        }
        for g in self.gateways.iter_mut() {
            work += g.render();
        }
        if let Some(j) = self.journal.as_mut() {
            work += j.work();
        }
        for g in self.gateways.iter_mut() {
            let held = g.flush();
            g.set_held(held);
        }
        work
    }

    fn has_work(&self) -> bool {
        self.engines.iter().any(|e| e.has_work())
            || self.gateways.iter().any(|g| g.has_work())
            || self.journal.as_ref().is_some_and(|j| j.has_work())
    }

    fn idle_timeout(&self) -> Option<Duration> {
        let g = self.gateways.iter().filter_map(|g| g.idle_timeout());
        let e = self.engines.iter().filter_map(|e| e.idle_timeout());
        let j = self.journal.iter().filter_map(|j| j.idle_timeout());
        g.chain(e).chain(j).min()
    }

    fn park(&mut self, timeout: Duration) -> bool {
        match self.gateways.first_mut() {
            Some(g) => g.park(timeout),
            None => false,
        }
    }

    fn first_phase(&self) -> u8 {
        phase::GATEWAYS
    }

    fn on_stop(&mut self, p: u8) {
        for g in self.gateways.iter_mut() {
            g.on_stop(p);
        }
        for e in self.engines.iter_mut() {
            e.on_stop(p);
        }
        if let Some(j) = self.journal.as_mut() {
            j.on_stop(p);
        }
    }

    fn phase_done(&self, p: u8) -> bool {
        self.gateways.iter().all(|g| g.phase_done(p))
            && self.engines.iter().all(|e| e.phase_done(p))
            && self.journal.as_ref().is_none_or(|j| j.phase_done(p))
    }

    fn on_close(&mut self) {
        for g in self.gateways.iter_mut() {
            g.on_close();
        }
        for e in self.engines.iter_mut() {
            e.on_close();
        }
        if let Some(j) = self.journal.as_mut() {
            j.on_close();
        }
    }

    fn report(&self, into: &mut Reports) {
        for g in &self.gateways {
            g.report(into);
        }
        for e in &self.engines {
            e.report(into);
        }
    }
}

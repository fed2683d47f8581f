//! The engine thread: drains every gateway's inbound ring into its [`Engine`] and routes the
//! events to the gateways' outbound rings. Hot path from the first command to shutdown.
//!
//! Loop shape (LMAX's batch event processor): take up to [`BATCH`] commands from each inbound
//! ring in turn, process them, and publish once per batch: the gateways are woken (if asleep)
//! once per batch rather than once per event, and ring occupancy is sampled once per batch.
//!
//! Back-pressure: an outbound ring that is full makes the engine wait (spinning, waking the
//! gateway, counting the event) rather than drop an event; gateways never wait on the engine,
//! so this cannot deadlock. An inbound ring that is full is the gateway's problem (it stops
//! reading the connection that produced the command).

use super::msg::{gateway_of, FromEngine, ToEngine};
use super::ring::{Receiver, Sender};
use super::stamp::{Stage, StageHistograms, Tsc};
use super::wait::{Idle, Idler, Waker};
use crate::config::WaitStrategy;
use crate::engine::{Engine, Event, EventKind, EventSink, Side};
use crate::telemetry::counters::{EngineCounters, NO_PRICE};
use crate::telemetry::labels::cancel_index;
use crate::telemetry::EngineTelemetry;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Commands taken from one inbound ring before looking at the next.
pub const BATCH: usize = 64;

/// Counters one engine thread publishes for the exporter (single writer, Relaxed).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Commands processed.
    pub commands: CachePadded<AtomicU64>,
    /// Loop iterations that found work.
    pub busy_loops: AtomicU64,
    /// Loop iterations that found none.
    pub idle_loops: AtomicU64,
    /// Times the engine waited on a full outbound ring.
    pub out_ring_waits: AtomicU64,
    /// Set once the engine is running its loop (readiness).
    pub running: AtomicBool,
}

/// Everything an engine thread owns.
pub struct EngineThread {
    /// The engine.
    pub engine: Engine,
    /// One inbound ring per gateway.
    pub inputs: Vec<Receiver<ToEngine>>,
    /// One outbound ring per gateway.
    pub outputs: Vec<Sender<FromEngine>>,
    /// Wakers of the gateways (index = gateway).
    pub gateway_wakers: Vec<Arc<Waker>>,
    /// This thread's waker (created on the thread by [`EngineThread::run`]'s caller).
    pub waker: Arc<Waker>,
    /// Wait strategy when idle.
    pub wait: WaitStrategy,
    /// Set by the runtime to stop; the loop drains what is queued, then returns.
    pub stop: Arc<AtomicBool>,
    /// Published counters.
    pub stats: Arc<EngineStats>,
    /// Hand-over and business metrics for the exporter (`None`: exporter disabled).
    pub telemetry: Option<EngineTelemetry>,
}

/// Routes events to the outbound rings while the engine processes one command.
struct RingSink<'a> {
    outputs: &'a mut [Sender<FromEngine>],
    gateway_wakers: &'a [Arc<Waker>],
    touched: u64,
    t_recv: u64,
    tsc: &'a Tsc,
    stop: &'a AtomicBool,
    waits: &'a mut u64,
    counters: &'a mut EngineCounters,
}

impl RingSink<'_> {
    #[inline]
    fn push(&mut self, gateway: usize, msg: FromEngine) {
        let Some(out) = self.outputs.get_mut(gateway) else {
            return;
        };
        let mut msg = msg;
        loop {
            match out.push(msg) {
                Ok(()) => break,
                Err(back) => {
                    msg = back;
                    *self.waits += 1;
                    // The gateway may be asleep with a full ring to drain: wake it.
                    self.gateway_wakers[gateway].wake_after_publish();
                    if self.stop.load(Ordering::Relaxed) && out.is_abandoned() {
                        return;
                    }
                    std::hint::spin_loop();
                }
            }
        }
        self.touched |= 1 << gateway;
    }
}

impl EventSink for RingSink<'_> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        // Business counts first: venue-issued events (no session) count too.
        match &ev.kind {
            EventKind::Trade(t) => {
                let i = t.instrument as usize;
                if let (Some(n), Some(v)) = (
                    self.counters.trades.get_mut(i),
                    self.counters.volume.get_mut(i),
                ) {
                    *n += 1;
                    *v += t.qty;
                }
            }
            EventKind::Cancelled(c) => self.counters.cancels[cancel_index(c.reason)] += 1,
            _ => {}
        }
        let [a, b] = ev.sessions();
        let ga = a.and_then(gateway_of);
        let gb = b.and_then(gateway_of);
        if ga.is_none() && gb.is_none() {
            // Book changes and venue-issued completions have no client to go to (market
            // data will take book changes from here).
            return;
        }
        let msg = FromEngine {
            event: *ev,
            t_recv: self.t_recv,
            t_done: self.tsc.now(),
        };
        if let Some(g) = ga {
            self.push(g, msg);
        }
        if let Some(g) = gb {
            if Some(g) != ga {
                self.push(g, msg);
            }
        }
    }
}

impl EngineThread {
    /// Runs until stopped; returns the thread's latency histograms.
    pub fn run(mut self) -> StageHistograms {
        let tsc = Tsc::new();
        let origin = tsc.now();
        // Boxed so the telemetry hand-over swaps a pointer.
        let mut hist = Box::new(StageHistograms::new());
        let mut counters = EngineCounters::new(
            self.telemetry
                .as_ref()
                .map_or(0, |t| t.metrics.instruments.len()),
        );
        let mut last_publish = (0u64, 0u64);
        let mut idler = Idler::new(self.wait);
        let stats = self.stats.clone();
        stats.running.store(true, Ordering::Release);
        let (mut commands, mut busy, mut idle, mut waits) = (0u64, 0u64, 0u64, 0u64);
        let mut t_last = origin;
        loop {
            if let Some(t) = self.telemetry.as_mut() {
                // One conversion and one compare per iteration, on a TSC reading the loop
                // already took (the last command's end, or the idle path's own reading).
                let now_ns = tsc.ns_between(origin, t_last);
                if t.handover.due(now_ns) {
                    publish(
                        &self.engine,
                        t,
                        &mut hist,
                        &mut counters,
                        now_ns,
                        &mut last_publish,
                    );
                }
            }
            let mut did = 0usize;
            let mut touched = 0u64;
            for input in self.inputs.iter_mut() {
                for _ in 0..BATCH {
                    let Some(msg) = input.pop() else { break };
                    let t_deq = tsc.now();
                    let mut sink = RingSink {
                        outputs: &mut self.outputs,
                        gateway_wakers: &self.gateway_wakers,
                        touched: 0,
                        t_recv: msg.t_recv,
                        tsc: &tsc,
                        stop: &self.stop,
                        waits: &mut waits,
                        counters: &mut counters,
                    };
                    self.engine.process(&msg.cmd, &mut sink);
                    touched |= sink.touched;
                    let t_end = tsc.now();
                    let engine_ns = tsc.ns_between(t_deq, t_end);
                    hist.record(Stage::Ring, tsc.ns_between(msg.t_push, t_deq));
                    hist.record(Stage::Engine, engine_ns);
                    counters.busy_ns += engine_ns;
                    t_last = t_end;
                    did += 1;
                }
            }
            if did > 0 {
                commands += did as u64;
                busy += 1;
                stats.commands.store(commands, Ordering::Relaxed);
                stats.busy_loops.store(busy, Ordering::Relaxed);
                stats.out_ring_waits.store(waits, Ordering::Relaxed);
                let mut t = touched;
                while t != 0 {
                    let g = t.trailing_zeros() as usize;
                    t &= t - 1;
                    self.outputs[g].note_occupancy();
                    self.gateway_wakers[g].wake_after_publish();
                }
                idler.reset();
                continue;
            }
            idle += 1;
            stats.idle_loops.store(idle, Ordering::Relaxed);
            t_last = tsc.now();
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if idler.idle() == Idle::Sleep {
                self.waker.prepare_sleep();
                if self.inputs.iter().all(|i| i.is_empty()) && !self.stop.load(Ordering::Acquire) {
                    self.waker.park();
                } else {
                    self.waker.woke();
                }
                // No reset: after an empty wake-up the next idle iteration sleeps again at
                // once, so an idle engine costs one wake-up per park timeout, not a spin.
            }
        }
        stats.running.store(false, Ordering::Release);
        *hist
    }
}

/// Hands the histograms over and publishes counters and book state (once per interval).
#[cold]
fn publish(
    engine: &Engine,
    t: &mut EngineTelemetry,
    hist: &mut Box<StageHistograms>,
    counters: &mut EngineCounters,
    now_ns: u64,
    last: &mut (u64, u64),
) {
    use std::sync::atomic::Ordering::Relaxed;
    t.handover.hand_over(hist, now_ns);
    counters.handovers = t.handover.handovers;
    counters.handover_skips = t.handover.skips;
    t.metrics.publish(counters);
    // Busy share of the interval just ended, in parts per million.
    let (busy0, t0) = *last;
    let span = now_ns.saturating_sub(t0).max(1);
    let ppm = (counters.busy_ns.saturating_sub(busy0) as u128 * 1_000_000 / span as u128)
        .min(1_000_000) as u64;
    t.metrics.busy_ppm.store(ppm, Relaxed);
    *last = (counters.busy_ns, now_ns);
    for id in engine.instruments() {
        let Some(cell) = t.metrics.instruments.get(id as usize) else {
            continue;
        };
        let price = |l: Option<crate::engine::LevelInfo>| l.map_or(NO_PRICE, |l| l.price);
        cell.resting_bids
            .store(engine.resting_orders(id, Side::Buy) as u64, Relaxed);
        cell.resting_asks
            .store(engine.resting_orders(id, Side::Sell) as u64, Relaxed);
        cell.best_bid.store(price(engine.best_bid(id)), Relaxed);
        cell.best_ask.store(price(engine.best_ask(id)), Relaxed);
        cell.last_trade
            .store(engine.last_trade(id).unwrap_or(NO_PRICE), Relaxed);
    }
}

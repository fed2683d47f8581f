//! The engine agent: drains every gateway's command ring into its [`Engine`] and routes the
//! events to the gateways' event rings. Hot path from the first command to shutdown.
//!
//! Shape (LMAX's batch event processor): take up to [`BATCH`] commands from each command
//! ring in turn as one read chunk ([`super::drain::drain_batch`], with prefetch hints),
//! process them, and publish once per batch: the gateways are woken (if asleep) once per
//! batch rather than once per event, and ring occupancy is sampled once per batch.
//!
//! Back-pressure: an event ring that is full is never dropped into. What the engine does
//! instead is the caller's choice ([`EngineAgent::work`]'s `full` hook): on its own thread it
//! wakes the gateway and spins until there is room (gateways never wait on engines, so this
//! cannot deadlock); in a shared duty cycle it runs that gateway's event intake right there,
//! which makes the room. A full command ring is the gateway's problem (it stops reading the
//! connection that produced the command).

use super::agent::{phase, Agent, Reports};
use super::drain::drain_batch;
use crate::engine::{Engine, Event, EventKind, EventSink, Side};
use crate::marketdata::MdItem;
use crate::recovery::records::{kind, CommandRecord, COMMAND_RECORD_MAX};
use crate::rings::msg::{gateway_of, FromEngine, ToEngine};
use crate::rings::records::RecordTx;
use crate::rings::ring::{Receiver, Sender};
use crate::rings::stamp::{Stage, StageHistograms, Tsc};
use crate::rings::wait::Waker;
use crate::telemetry::counters::{EngineCounters, NO_PRICE};
use crate::telemetry::EngineTelemetry;
use crate::vocab::cancel_index;
use std::sync::Arc;
use std::time::Duration;

/// Commands taken from one command ring before looking at the next.
pub const BATCH: usize = 64;

/// Everything one engine agent owns.
pub struct EngineAgent {
    /// Engine index.
    pub id: usize,
    /// The gateways' wakers (apart from the rest so the `full` hook can borrow them while
    /// [`Matching::work`] borrows everything else).
    gateway_wakers: Vec<Arc<Waker>>,
    /// The journal agent's waker (woken after a batch that journaled commands).
    journal_waker: Option<Arc<Waker>>,
    /// The market-data publisher's waker (woken after a batch that pushed market data).
    md_waker: Option<Arc<Waker>>,
    m: Matching,
    stopping: bool,
    role: String,
}

/// The engine, its rings, clocks and counters.
struct Matching {
    /// Engine index (journaled with each command).
    id: u8,
    /// Record ring to the journal agent (`None`: journaling off).
    journal: Option<RecordTx>,
    /// Ring to the market-data publisher (`None`: no feed).
    md: Option<Sender<MdItem>>,
    /// Gateways that take every book change and trade (FIX market data), one bit each.
    book_gateways: u64,
    engine: Engine,
    inputs: Vec<Receiver<ToEngine>>,
    outputs: Vec<Sender<FromEngine>>,
    telemetry: EngineTelemetry,
    counters: EngineCounters,
    hist: Box<StageHistograms>,
    tsc: Tsc,
    origin: u64,
    /// TSC of the last command's end, or of the last idle pass (publication clock).
    t_last: u64,
    next_publish_ns: u64,
    last_publish: (u64, u64),
}

/// Routes events to the event rings while the engine processes one command.
struct RingSink<'a> {
    outputs: &'a mut [Sender<FromEngine>],
    /// The market-data ring, and whether this command pushed into it.
    md: Option<&'a mut Sender<MdItem>>,
    md_pushed: bool,
    /// Gateways that take every book change and trade (FIX market data), one bit each.
    book_gateways: u64,
    full: &'a mut dyn FnMut(usize),
    touched: u64,
    t_recv: u64,
    tsc: &'a Tsc,
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
                    if out.is_abandoned() {
                        // The gateway is gone (its thread ended): nobody will ever read this
                        // ring, and waiting on it would freeze matching for every gateway.
                        return;
                    }
                    msg = back;
                    self.counters.out_ring_waits += 1;
                    (self.full)(gateway);
                }
            }
        }
        self.touched |= 1 << gateway;
    }
}

impl RingSink<'_> {
    /// Hands `item` to the publisher, waiting while its ring is full (a feed never skips).
    #[inline]
    fn push_md(&mut self, item: MdItem) {
        let Some(md) = self.md.as_deref_mut() else {
            return;
        };
        let mut item = item;
        let mut waited = false;
        while let Err(back) = md.push(item) {
            if md.is_abandoned() {
                return;
            }
            item = back;
            waited = true;
            std::hint::spin_loop();
        }
        if waited {
            self.counters.md_ring_waits += 1;
        }
        self.md_pushed = true;
    }
}

impl EventSink for RingSink<'_> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        if self.md.is_some()
            && matches!(
                ev.kind,
                EventKind::Accepted(_)
                    | EventKind::Trade(_)
                    | EventKind::Cancelled(_)
                    | EventKind::Replaced(_)
            )
        {
            let t = self.tsc.now();
            self.push_md(MdItem::Event { event: *ev, t });
        }
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
        let book = match ev.kind {
            EventKind::BookChange(_) | EventKind::Trade(_) => self.book_gateways,
            _ => 0,
        };
        if ga.is_none() && gb.is_none() && book == 0 {
            // Venue-issued completions have no client to go to (and book changes none
            // when no gateway publishes FIX market data).
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
        // The FIX market-data gateways that have not had it as a counterparty's.
        let bit = |g: Option<usize>| g.map_or(0, |g| 1u64 << (g % 64));
        let mut rest = book & !(bit(ga) | bit(gb));
        while rest != 0 {
            let g = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            self.push(g, msg);
        }
    }
}

impl EngineAgent {
    /// An agent for engine `id` (cold path).
    pub fn new(
        id: usize,
        engine: Engine,
        inputs: Vec<Receiver<ToEngine>>,
        outputs: Vec<Sender<FromEngine>>,
        gateway_wakers: Vec<Arc<Waker>>,
        telemetry: EngineTelemetry,
    ) -> Self {
        let tsc = Tsc::new();
        let origin = tsc.now();
        let counters = EngineCounters::new(telemetry.metrics.instruments.len());
        Self {
            id,
            gateway_wakers,
            journal_waker: None,
            md_waker: None,
            m: Matching {
                id: id as u8,
                journal: None,
                md: None,
                book_gateways: 0,
                engine,
                inputs,
                outputs,
                next_publish_ns: telemetry.interval_ns,
                telemetry,
                counters,
                hist: Box::new(StageHistograms::new()),
                tsc,
                origin,
                t_last: origin,
                last_publish: (0, 0),
            },
            stopping: false,
            role: format!("engine-{id}"),
        }
    }

    /// Journals every command through `tx` from now on, waking the journal agent with
    /// `waker` (cold path, before the loop starts).
    pub fn attach_journal(&mut self, tx: RecordTx, waker: Arc<Waker>) {
        self.m.journal = Some(tx);
        self.journal_waker = Some(waker);
    }

    /// Publishes the feed's events through `tx` from now on, waking the publisher with
    /// `waker` (cold path, before the loop starts).
    pub fn attach_market_data(&mut self, tx: Sender<MdItem>, waker: Arc<Waker>) {
        self.m.md = Some(tx);
        self.md_waker = Some(waker);
    }

    /// Sends every book change and trade to the gateways in `mask` (one bit per gateway:
    /// those answering FIX MarketDataRequests) as well as to the sessions concerned (cold
    /// path, before the loop starts).
    pub fn set_book_gateways(&mut self, mask: u64) {
        self.m.book_gateways = mask;
    }

    /// Whether a command ring has commands waiting.
    pub fn has_input(&self) -> bool {
        self.m.inputs.iter().any(|i| !i.is_empty())
    }

    /// One pass: drains up to [`BATCH`] commands from each command ring, then wakes the
    /// gateways that got events. `full(g)` is called whenever gateway `g`'s event ring is
    /// full; the push is retried after it returns. Returns the commands processed.
    #[inline]
    pub fn work(&mut self, full: &mut dyn FnMut(usize)) -> usize {
        let did = self.m.work(&self.gateway_wakers, full);
        if did > 0 {
            self.wake_consumers();
        }
        did
    }

    /// Wakes the journal agent and the publisher after a batch.
    #[inline]
    fn wake_consumers(&self) {
        if let Some(w) = &self.journal_waker {
            w.wake_after_publish();
        }
        if let Some(w) = &self.md_waker {
            w.wake_after_publish();
        }
    }

    /// The engine (tests and the final state hash).
    pub fn engine(&self) -> &Engine {
        &self.m.engine
    }
}

impl Matching {
    #[inline]
    fn work(&mut self, gateway_wakers: &[Arc<Waker>], full: &mut dyn FnMut(usize)) -> usize {
        let now_ns = self.tsc.ns_between(self.origin, self.t_last);
        if now_ns >= self.next_publish_ns {
            self.publish(now_ns);
        }
        let mut did = 0usize;
        let mut touched = 0u64;
        let tsc = &self.tsc;
        let hist = &mut self.hist;
        let counters = &mut self.counters;
        let outputs = &mut self.outputs;
        let mut t_last = self.t_last;
        let journal = &mut self.journal;
        let md = &mut self.md;
        let book_gateways = self.book_gateways;
        let id = self.id;
        for input in self.inputs.iter_mut() {
            // Every command is journaled before it is processed: take no more than the
            // record ring has room for.
            let batch = match journal.as_mut() {
                Some(j) => BATCH.min(j.room() / RecordTx::footprint(COMMAND_RECORD_MAX)),
                None => BATCH,
            };
            if batch == 0 {
                break;
            }
            did += drain_batch(input, &mut self.engine, batch, |engine, msg| {
                if let Some(j) = journal.as_mut() {
                    let r = CommandRecord {
                        engine: id,
                        engine_seq: engine.seq() + 1,
                        command: msg.cmd,
                        origin: msg.origin,
                    };
                    let pushed = j.push_with(kind::COMMAND, r.len(), |b| r.encode(b));
                    debug_assert!(pushed, "room was checked for the whole batch");
                }
                let t_deq = tsc.now();
                let mut sink = RingSink {
                    outputs,
                    md: md.as_mut(),
                    md_pushed: false,
                    book_gateways,
                    full: &mut *full,
                    touched: 0,
                    t_recv: msg.t_recv,
                    tsc,
                    counters,
                };
                engine.process(&msg.cmd, &mut sink);
                if sink.md_pushed {
                    sink.push_md(MdItem::End);
                }
                touched |= sink.touched;
                let t_end = tsc.now();
                let engine_ns = tsc.ns_between(t_deq, t_end);
                hist.record(Stage::Ring, tsc.ns_between(msg.t_push, t_deq));
                hist.record(Stage::Engine, engine_ns);
                counters.busy_ns += engine_ns;
                t_last = t_end;
            });
        }
        if did > 0 {
            self.t_last = t_last;
            self.counters.commands += did as u64;
            self.counters.busy_loops += 1;
            let mut t = touched;
            while t != 0 {
                let g = t.trailing_zeros() as usize;
                t &= t - 1;
                self.outputs[g].note_occupancy();
                gateway_wakers[g].wake_after_publish();
            }
        } else {
            self.counters.idle_loops += 1;
            self.t_last = self.tsc.now();
        }
        did
    }

    /// Hands the histograms over and publishes counters and book state (once per interval).
    #[cold]
    fn publish(&mut self, now_ns: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let t = &mut self.telemetry;
        self.next_publish_ns = now_ns + t.interval_ns;
        if let Some(h) = t.handover.as_mut() {
            h.hand_over(&mut self.hist, now_ns);
            self.counters.handovers = h.handovers;
            self.counters.handover_skips = h.skips;
        }
        t.metrics.publish(&self.counters);
        // Busy share of the interval just ended, in parts per million.
        let (busy0, t0) = self.last_publish;
        let span = now_ns.saturating_sub(t0).max(1);
        let ppm = (self.counters.busy_ns.saturating_sub(busy0) as u128 * 1_000_000 / span as u128)
            .min(1_000_000) as u64;
        t.metrics.busy_ppm.store(ppm, Relaxed);
        self.last_publish = (self.counters.busy_ns, now_ns);
        let engine = &self.engine;
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

    fn until_publish(&self) -> Duration {
        let now_ns = self.tsc.ns_between(self.origin, self.tsc.now());
        Duration::from_nanos(self.next_publish_ns.saturating_sub(now_ns))
    }

    fn publish_now(&mut self) {
        let now_ns = self.tsc.ns_between(self.origin, self.tsc.now());
        self.publish(now_ns);
    }
}

impl Agent for EngineAgent {
    fn role(&self) -> &str {
        &self.role
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        let wakers = &self.gateway_wakers;
        // On its own thread: the gateway may be asleep with a full ring to drain; wake it
        // and let the push retry.
        let mut full = |g: usize| {
            wakers[g].wake_after_publish();
            std::hint::spin_loop();
        };
        let did = self.m.work(wakers, &mut full);
        if did > 0 {
            self.wake_consumers();
        }
        did
    }

    fn has_work(&self) -> bool {
        self.has_input()
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(self.m.until_publish())
    }

    fn first_phase(&self) -> u8 {
        phase::ENGINES
    }

    fn on_stop(&mut self, p: u8) {
        if p == phase::ENGINES {
            self.stopping = true;
        }
    }

    fn phase_done(&self, p: u8) -> bool {
        p != phase::ENGINES || (self.stopping && !self.has_input())
    }

    fn on_close(&mut self) {
        self.m.publish_now();
    }

    fn report(&self, into: &mut Reports) {
        into.histograms.merge(&self.m.hist);
        into.engine_hashes
            .push((self.id, self.m.engine.state_hash()));
    }
}

//! Start-up and shutdown of the whole appliance (cold path).
//!
//! Order of events: validate and resolve the configuration; choose the threading layout
//! ([`super::threading`]); bind the listeners (so a port conflict fails start-up with a clear
//! message); build the engines and the rings (one per gateway->engine pair and one per
//! engine->gateway pair); start the runner threads, each building its own I/O backend (a
//! SINGLE_ISSUER io_uring belongs to the thread that created it); start the exporter; wait
//! until every engine runs and every gateway listens; then report ready.
//!
//! In `dedicated` mode there is one runner per engine and one per gateway; in `shared` mode
//! one runner runs them all ([`super::shared::SharedDuty`]). Shutdown is the same either
//! way: gateways log their sessions out and drain, then engines drain and stop.

use super::agent::{Agent, Reports, Runner};
use super::engine_agent::EngineAgent;
use super::gateway_agent::GatewayAgent;
use super::shared::SharedDuty;
use super::threading::{self, Host, Mode, Plan};
use crate::config::{Config, Threading};
use crate::engine::{Capacity, Engine, EngineConfig, InstrumentConfig, PriceBand};
use crate::exporter::render::{
    EngineSource, GatewaySource, InstrumentLabel, Sources, ThreadingLabel,
};
use crate::exporter::thread::housekeeping_core;
use crate::exporter::{Exporter, Placement};
use crate::gateway::core::{GatewayRings, GatewaySizing};
use crate::gateway::driver::{self, Listener};
use crate::gateway::fix::FixSettings;
use crate::gateway::instruments::Instruments;
use crate::gateway::session::build_sessions;
use crate::gateway::{Gateway, GatewayReport};
use crate::rings::msg::{FromEngine, ToEngine};
use crate::rings::ring::{channel, Receiver, RingStats, Sender};
use crate::rings::stamp::StageHistograms;
use crate::rings::wait::{idle_strategy, Waker};
use crate::telemetry::counters::{EngineMetrics, GatewayMetrics};
use crate::telemetry::handover::{self, HandoverRx};
use crate::telemetry::status::ThreadStatus;
use crate::telemetry::{EngineTelemetry, GatewayTelemetry};
use crate::vocab::Protocol;
use anyhow::{bail, Context};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Run-time overrides of the configuration (from the command line or tests).
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Force an I/O backend.
    pub io: Option<crate::config::IoBackend>,
    /// Gateway sizing (connections, buffers); defaults when `None`.
    pub sizing: Option<GatewaySizing>,
    /// Force a threading mode.
    pub threading: Option<Threading>,
    /// Called on each hot thread as it starts, with its role (`engine-0`, `gateway-1`,
    /// `shared`): a thread-start hook in the manner of a thread factory, for instrumentation
    /// (the hot-path allocation test marks the threads it watches with it).
    pub on_hot_thread_start: Option<fn(&str)>,
}

/// Handles on a running appliance.
pub struct Running {
    stop: Arc<AtomicBool>,
    engine_stop: Arc<AtomicBool>,
    /// Runners stopped first (gateways, or the shared one), with their wakers.
    front: Vec<(JoinHandle<Reports>, Arc<Waker>)>,
    /// Engine runners (dedicated mode), stopped once the front ones have ended.
    engines: Vec<(JoinHandle<Reports>, Arc<Waker>)>,
    /// Bound addresses of the FIX and binary listeners (ports resolved when 0 was asked).
    pub fix_addr: SocketAddr,
    /// Bound address of the binary listener.
    pub binary_addr: SocketAddr,
    /// The threading layout in use.
    pub plan: Plan,
    /// Each engine's thread state.
    pub engine_status: Vec<Arc<ThreadStatus>>,
    /// Each gateway's thread state.
    pub gateway_status: Vec<Arc<ThreadStatus>>,
    /// Each engine's published counters.
    pub engine_metrics: Vec<Arc<EngineMetrics>>,
    /// Each gateway's published counters.
    pub gateway_metrics: Vec<Arc<GatewayMetrics>>,
    /// Ring counters: `(name, stats)` with names like `g0->e1`.
    pub ring_stats: Vec<(String, Arc<RingStats>)>,
    /// The I/O backend each gateway uses, and why it fell back, if it did.
    pub backends: Vec<(String, Option<String>)>,
    /// Bound address of the exporter (`None` when `exporter.enabled` is false).
    pub exporter_addr: Option<SocketAddr>,
    exporter: Option<Exporter>,
}

/// What a stopped appliance leaves behind.
pub struct Stopped {
    /// Latency histograms of every hot thread, merged.
    pub histograms: StageHistograms,
    /// Each gateway's final report, by gateway index.
    pub gateways: Vec<GatewayReport>,
}

/// Engine configuration for engine `e`: its shard of instruments and its capacities.
pub fn engine_config(cfg: &Config, e: usize) -> EngineConfig {
    let instruments = cfg
        .resolved_instruments()
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.engine == e)
        .map(|(i, r)| InstrumentConfig {
            id: i as u32,
            symbol: r.symbol.clone(),
            tick_size: r.tick_units,
            lot_size: r.lot_size,
            max_order_qty: Some(r.max_order_qty),
            max_notional: Some(u64::try_from(r.max_notional_units).unwrap_or(u64::MAX)),
            price_band: match (r.band_percent, r.price_min_units, r.price_max_units) {
                (Some(p), _, _) => PriceBand::Percent {
                    bps: p * 100,
                    reference_price: r.reference_units.unwrap_or(0),
                },
                (None, Some(min), Some(max)) => PriceBand::Static { min, max },
                (None, Some(min), None) => PriceBand::Static { min, max: i64::MAX },
                (None, None, Some(max)) => PriceBand::Static { min: 1, max },
                _ => PriceBand::None,
            },
        })
        .collect();
    EngineConfig {
        instruments,
        capacity: Capacity {
            max_orders: cfg.engine.max_orders as u32,
            max_levels_per_side: cfg.engine.max_levels_per_side as u32,
        },
    }
}

/// Everything a gateway agent is built from, handed to the thread that runs it.
struct GatewayParts {
    gw: Gateway,
    listeners: Vec<Listener>,
    waker: Arc<Waker>,
}

type BackendReady = (usize, anyhow::Result<(String, Option<String>)>);

impl GatewayParts {
    /// Builds the backend on the calling thread (the one that will run it) and the agent.
    fn build(
        self,
        io: crate::config::IoBackend,
        max_connections: usize,
        sqpoll: bool,
        ready: &std::sync::mpsc::Sender<BackendReady>,
    ) -> Option<GatewayAgent> {
        let g = self.gw.id();
        match driver::make_backend(io, self.listeners, max_connections, &self.waker, sqpoll) {
            Ok((backend, fallback)) => {
                let _ = ready.send((g, Ok((backend.name().to_string(), fallback))));
                Some(GatewayAgent::new(self.gw, backend))
            }
            Err(e) => {
                let _ = ready.send((g, Err(e.into())));
                None
            }
        }
    }
}

fn spawn_runner(
    name: String,
    core: Option<usize>,
    hook: Option<fn(&str)>,
    build: impl FnOnce() -> Option<Runner> + Send + 'static,
) -> anyhow::Result<JoinHandle<Reports>> {
    let role = name.clone();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let name = role;
            if let Some(hook) = hook {
                hook(&name);
            }
            if let Some(core) = core {
                if let Err(err) = crate::platform::pin_current_thread(core) {
                    tracing::warn!("{name}: cannot pin to core {core}: {err}");
                }
            }
            match build() {
                Some(r) => r.run(),
                None => Reports::default(),
            }
        })
        .with_context(|| format!("spawning {name}"))
}

/// Starts the appliance described by `cfg`.
pub fn start(cfg: &Config, opts: &StartOptions) -> anyhow::Result<Running> {
    let mut cfg = cfg.clone();
    if let Some(t) = opts.threading {
        cfg.runtime.threading = t;
    }
    let cfg = &cfg;
    let n_eng = cfg.engine.threads;
    let n_gw = cfg.gateway.threads;
    let plan = threading::plan(cfg, &Host::current());
    let sizing = opts.sizing.unwrap_or(GatewaySizing {
        max_connections: cfg.gateway.max_connections,
        max_orders: cfg.gateway.max_orders,
        ..GatewaySizing::default()
    });
    let resolved = cfg.resolved_instruments();

    // SCHED_FIFO only on isolated cores (checked here so start-up fails with the reason).
    if cfg.engine.realtime_priority > 0 {
        let isolated = crate::platform::isolated_cores();
        if let Some(c) = cfg.engine.cores.iter().find(|c| !isolated.contains(**c)) {
            bail!(
                "engine.realtime_priority: core {c} is not isolated (isolated: {isolated}); \
                 SCHED_FIFO on a shared core would starve the host (see docs/tuning.md)"
            );
        }
    }

    // Engines, built here so a capacity or instrument problem fails start-up synchronously.
    let mut engines = Vec::with_capacity(n_eng);
    for e in 0..n_eng {
        let ec = engine_config(cfg, e);
        engines.push(Engine::new(ec).with_context(|| format!("engine {e}"))?);
    }

    // Listeners.
    let fix_listener = TcpListener::bind(cfg.fix.listen)
        .with_context(|| format!("fix.listen: cannot listen on {}", cfg.fix.listen))?;
    let bin_listener = TcpListener::bind(cfg.binary.listen)
        .with_context(|| format!("binary.listen: cannot listen on {}", cfg.binary.listen))?;
    let fix_addr = fix_listener.local_addr()?;
    let binary_addr = bin_listener.local_addr()?;
    let mut listeners: Vec<Vec<Listener>> = (0..n_gw).map(|_| Vec::new()).collect();
    listeners[cfg.fix.gateway].push(Listener {
        socket: fix_listener,
        protocol: Protocol::Fix,
    });
    listeners[cfg.binary.gateway].push(Listener {
        socket: bin_listener,
        protocol: Protocol::Binary,
    });

    // Telemetry: published counters for every agent; one hand-over pair per agent when the
    // exporter runs (engines first, then gateways), all histogram sets allocated here.
    let telemetry_on = cfg.exporter.enabled;
    let interval_ns = cfg.exporter.interval_ms.saturating_mul(1_000_000);
    let mut handover_rx: Vec<HandoverRx> = Vec::new();
    let mut handover = || {
        telemetry_on.then(|| {
            let (tx, rx) = handover::pair(interval_ns);
            handover_rx.push(rx);
            tx
        })
    };
    let engine_metrics: Vec<Arc<EngineMetrics>> = (0..n_eng)
        .map(|_| Arc::new(EngineMetrics::new(resolved.len())))
        .collect();
    let mut engine_tel: Vec<Option<EngineTelemetry>> = engine_metrics
        .iter()
        .map(|m| {
            Some(EngineTelemetry {
                handover: handover(),
                metrics: m.clone(),
                interval_ns,
            })
        })
        .collect();
    let gateway_metrics: Vec<Arc<GatewayMetrics>> = (0..n_gw)
        .map(|_| Arc::new(GatewayMetrics::default()))
        .collect();
    let gateway_tel: Vec<GatewayTelemetry> = gateway_metrics
        .iter()
        .map(|m| GatewayTelemetry {
            handover: handover(),
            metrics: m.clone(),
            interval_ns,
        })
        .collect();

    // Rings: to[g][e] and from[e][g].
    let cap = cfg.gateway.ring_capacity;
    let mut ring_stats = Vec::new();
    let mut to_tx: Vec<Vec<Sender<ToEngine>>> = (0..n_gw).map(|_| Vec::new()).collect();
    let mut to_rx: Vec<Vec<Receiver<ToEngine>>> = (0..n_eng).map(|_| Vec::new()).collect();
    let mut from_tx: Vec<Vec<Sender<FromEngine>>> = (0..n_eng).map(|_| Vec::new()).collect();
    let mut from_rx: Vec<Vec<Receiver<FromEngine>>> = (0..n_gw).map(|_| Vec::new()).collect();
    for (g, to_g) in to_tx.iter_mut().enumerate() {
        for (e, to_e) in to_rx.iter_mut().enumerate() {
            let (tx, rx, st) = channel::<ToEngine>(cap);
            to_g.push(tx);
            to_e.push(rx);
            ring_stats.push((format!("g{g}->e{e}"), st));
        }
    }
    for (e, from_e) in from_tx.iter_mut().enumerate() {
        for (g, from_g) in from_rx.iter_mut().enumerate() {
            let (tx, rx, st) = channel::<FromEngine>(cap);
            from_e.push(tx);
            from_g.push(rx);
            ring_stats.push((format!("e{e}->g{g}"), st));
        }
    }

    // Wakers: a gateway sleeps in its I/O wait with an eventfd armed; an engine on its own
    // thread sleeps on a futex. In shared mode the one thread sleeps in the first gateway's
    // wait, and every producer wakes it through the same eventfd.
    let shared_waker = match plan.mode {
        Mode::Shared => Some(Waker::with_eventfd().context("creating the wake-up eventfd")?),
        Mode::Dedicated => None,
    };
    let gateway_wakers: Vec<Arc<Waker>> = match &shared_waker {
        Some(w) => vec![w.clone(); n_gw],
        None => (0..n_gw)
            .map(|_| Waker::with_eventfd())
            .collect::<std::io::Result<_>>()
            .context("creating gateway wake-up eventfds")?,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let engine_stop = Arc::new(AtomicBool::new(false));
    let fix_settings = FixSettings::from_config(&cfg.fix);
    let io = opts.io.unwrap_or(cfg.gateway.io);
    let (sqpoll, max_conn) = (cfg.gateway.sqpoll, sizing.max_connections);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<BackendReady>();
    let hook = opts.on_hot_thread_start;

    // Engine agents need the engines' wakers, which in dedicated mode are made from the
    // engine threads' handles: spawn those threads first and hand them their agents.
    let mut engine_status = Vec::with_capacity(n_eng);
    let mut engine_threads = Vec::new();
    let mut engine_wakers: Vec<Arc<Waker>> = Vec::with_capacity(n_eng);
    let mut engine_agents: Vec<EngineAgent> = Vec::new();
    let shared_status = Arc::new(ThreadStatus::default());
    for (e, engine) in engines.into_iter().enumerate() {
        let agent_parts = (
            engine,
            std::mem::take(&mut to_rx[e]),
            std::mem::take(&mut from_tx[e]),
            engine_tel[e]
                .take()
                .expect("one telemetry block per engine"),
        );
        let make = {
            let gateway_wakers = gateway_wakers.clone();
            move |(engine, inputs, outputs, tel): (Engine, _, _, EngineTelemetry)| {
                EngineAgent::new(e, engine, inputs, outputs, gateway_wakers, tel)
            }
        };
        match &shared_waker {
            Some(w) => {
                engine_wakers.push(w.clone());
                engine_status.push(shared_status.clone());
                engine_agents.push(make(agent_parts));
            }
            None => {
                let status = Arc::new(ThreadStatus::default());
                let (tx, rx) = std::sync::mpsc::channel::<Arc<Waker>>();
                let (stop, st, wait) = (engine_stop.clone(), status.clone(), plan.engine_wait);
                let rt = cfg.engine.realtime_priority;
                let core = plan.engine_cores[e];
                let agent = make(agent_parts);
                let handle = spawn_runner(format!("engine-{e}"), core, hook, move || {
                    if let (Some(core), true) = (core, rt > 0) {
                        if let Err(err) = crate::platform::set_realtime(rt as i32, core) {
                            tracing::warn!("engine-{e}: SCHED_FIFO refused: {err}");
                        }
                    }
                    let waker = rx.recv().ok()?;
                    Some(Runner {
                        agent: Box::new(agent),
                        idle: idle_strategy(wait),
                        waker,
                        stop,
                        status: st,
                    })
                })?;
                let waker = Waker::for_thread(handle.thread().clone());
                tx.send(waker.clone())
                    .expect("the engine thread waits for its waker");
                engine_wakers.push(waker.clone());
                engine_status.push(status);
                engine_threads.push((handle, waker));
            }
        }
    }

    // Gateways.
    let mut parts: Vec<GatewayParts> = Vec::with_capacity(n_gw);
    for (g, (gw_listeners, tel)) in listeners.into_iter().zip(gateway_tel).enumerate() {
        let rings = GatewayRings {
            to_engines: std::mem::take(&mut to_tx[g]),
            engine_wakers: engine_wakers.clone(),
            from_engines: std::mem::take(&mut from_rx[g]),
        };
        let mut gw = Gateway::new(
            g,
            build_sessions(cfg, g, &sizing),
            Instruments::new(&resolved),
            rings,
            sizing,
            fix_settings.clone(),
        );
        gw.attach_telemetry(tel);
        parts.push(GatewayParts {
            gw,
            listeners: gw_listeners,
            waker: gateway_wakers[g].clone(),
        });
    }
    let mut gateway_status = Vec::with_capacity(n_gw);
    let mut front = Vec::new();
    match shared_waker {
        Some(waker) => {
            gateway_status = vec![shared_status.clone(); n_gw];
            let (stop, status, wait, ready) = (
                stop.clone(),
                shared_status.clone(),
                plan.gateway_wait,
                ready_tx.clone(),
            );
            let w2 = waker.clone();
            let handle = spawn_runner("shared".into(), plan.shared_core, hook, move || {
                let mut gateways = Vec::with_capacity(parts.len());
                for p in parts {
                    gateways.push(p.build(io, max_conn, sqpoll, &ready)?);
                }
                let fd = w2.eventfd().expect("the shared waker is eventfd-backed");
                let duty = match SharedDuty::new(gateways, engine_agents, None, fd) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!("shared runner: cannot wire the backends' wake-ups: {e}");
                        return None;
                    }
                };
                Some(Runner {
                    agent: Box::new(duty) as Box<dyn Agent>,
                    idle: idle_strategy(wait),
                    waker: w2,
                    stop,
                    status,
                })
            })?;
            front.push((handle, waker));
        }
        None => {
            for p in parts {
                let g = p.gw.id();
                let status = Arc::new(ThreadStatus::default());
                gateway_status.push(status.clone());
                let waker = p.waker.clone();
                let (stop, wait, ready) = (stop.clone(), plan.gateway_wait, ready_tx.clone());
                let w2 = waker.clone();
                let handle = spawn_runner(
                    format!("gateway-{g}"),
                    plan.gateway_cores[g],
                    hook,
                    move || {
                        let agent = p.build(io, max_conn, sqpoll, &ready)?;
                        Some(Runner {
                            agent: Box::new(agent),
                            idle: idle_strategy(wait),
                            waker: w2,
                            stop,
                            status,
                        })
                    },
                )?;
                front.push((handle, waker));
            }
        }
    }
    drop(ready_tx);

    let mut backends = vec![(String::new(), None); n_gw];
    let mut failure = None;
    for _ in 0..n_gw {
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok((g, Ok(b))) => backends[g] = b,
            Ok((g, Err(e))) => failure = Some(e.context(format!("gateway {g}"))),
            Err(_) => {
                failure = Some(anyhow::anyhow!(
                    "a gateway thread did not start within 10 s"
                ))
            }
        }
    }
    let mut running = Running {
        stop,
        engine_stop,
        front,
        engines: engine_threads,
        fix_addr,
        binary_addr,
        plan,
        engine_status,
        gateway_status,
        engine_metrics,
        gateway_metrics,
        ring_stats,
        backends,
        exporter_addr: None,
        exporter: None,
    };
    if let Some(e) = failure {
        running.stop();
        return Err(e);
    }
    // The exporter starts before readiness so `/health/ready` answers 503 while starting.
    if telemetry_on {
        let sources = Sources {
            engines: running
                .engine_status
                .iter()
                .zip(&running.engine_metrics)
                .map(|(status, metrics)| EngineSource {
                    status: status.clone(),
                    metrics: metrics.clone(),
                })
                .collect(),
            gateways: running
                .gateway_status
                .iter()
                .zip(&running.gateway_metrics)
                .map(|(status, metrics)| GatewaySource {
                    status: status.clone(),
                    metrics: metrics.clone(),
                })
                .collect(),
            rings: running.ring_stats.clone(),
            instruments: resolved
                .iter()
                .map(|r| InstrumentLabel {
                    symbol: r.symbol.clone(),
                    price_decimals: r.price_decimals,
                })
                .collect(),
            threading: ThreadingLabel {
                mode: running.plan.mode.name(),
                reason: running.plan.reason.clone(),
            },
        };
        let pinned: Vec<usize> = running
            .plan
            .engine_cores
            .iter()
            .chain(&running.plan.gateway_cores)
            .chain(std::iter::once(&running.plan.shared_core))
            .flatten()
            .copied()
            .collect();
        let placement = Placement {
            core: housekeeping_core(&pinned),
        };
        match Exporter::start(cfg.exporter.listen, sources, handover_rx, placement) {
            Ok(x) => {
                running.exporter_addr = Some(x.addr);
                running.exporter = Some(x);
            }
            Err(e) => {
                running.stop();
                return Err(e);
            }
        }
    }
    // Ready means: every engine in its loop, every gateway listening.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running.is_ready() {
        if Instant::now() > deadline {
            running.stop();
            bail!("the appliance did not become ready within 10 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(running)
}

impl Running {
    /// Whether every engine runs and every gateway listens.
    pub fn is_ready(&self) -> bool {
        self.engine_status
            .iter()
            .chain(&self.gateway_status)
            .all(|s| s.running())
    }

    /// Asks every thread to stop (gateways log sessions out first).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        for (_, w) in &self.front {
            w.wake();
        }
    }

    /// Stops and joins everything, returning the merged histograms.
    pub fn stop(self) -> Stopped {
        self.request_stop();
        let mut reports = Reports::default();
        let mut take = |r: Reports| {
            reports.histograms.merge(&r.histograms);
            reports.gateways.extend(r.gateways);
        };
        for (h, _) in self.front {
            if let Ok(r) = h.join() {
                take(r);
            }
        }
        // Gateways are gone: engines drain what is queued and stop.
        self.engine_stop.store(true, Ordering::Release);
        for (_, w) in &self.engines {
            w.wake();
        }
        for (h, _) in self.engines {
            if let Ok(r) = h.join() {
                take(r);
            }
        }
        // Last: the exporter takes the hot threads' final hand-overs, then gives back every
        // sample it received, so the summary covers the whole run.
        if let Some(x) = self.exporter {
            reports.histograms.merge(&x.stop());
        }
        reports.gateways.sort_by_key(|(g, _)| *g);
        Stopped {
            histograms: reports.histograms,
            gateways: reports.gateways.into_iter().map(|(_, r)| r).collect(),
        }
    }
}

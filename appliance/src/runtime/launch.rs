//! Start-up and shutdown of the whole appliance (cold path).
//!
//! Order of events: validate and resolve the configuration; bind the listeners (so a port
//! conflict fails start-up with a clear message); build the rings (one per gateway->engine
//! pair and one per engine->gateway pair); start the engine threads, then the gateway threads
//! (each builds its own io_uring, because a SINGLE_ISSUER ring belongs to the thread that
//! created it); wait until every engine runs and every gateway listens; then report ready.
//! Shutdown reverses it: gateways log their sessions out and drain, then engines stop.

use super::engine_thread::{EngineStats, EngineThread};
use super::msg::{session_id, FromEngine, ToEngine};
use super::ring::{channel, RingStats};
use super::stamp::StageHistograms;
use super::wait::Waker;
use crate::config::{Config, StpMode as CfgStp};
use crate::engine::{Capacity, Engine, EngineConfig, InstrumentConfig, PriceBand, StpMode};
use crate::gateway::core::{GatewayRings, GatewaySizing, GatewayStats, Protocol, SessionSlot};
use crate::gateway::driver::{self, Listener};
use crate::gateway::fix_glue::{FixSession, FixSettings};
use crate::gateway::instruments::Instruments;
use crate::gateway::{Gateway, GatewayReport};
use crate::telemetry::counters::{EngineMetrics, GatewayMetrics};
use crate::telemetry::exporter::{self, Exporter, Placement};
use crate::telemetry::handover::{self, HandoverRx};
use crate::telemetry::render::{EngineSource, GatewaySource, InstrumentLabel, Sources};
use crate::telemetry::{EngineTelemetry, GatewayTelemetry};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
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
}

/// Handles on a running appliance.
pub struct Running {
    stop: Arc<AtomicBool>,
    engine_stop: Arc<AtomicBool>,
    gateways: Vec<JoinHandle<GatewayReport>>,
    engines: Vec<JoinHandle<StageHistograms>>,
    /// Bound addresses of the FIX and binary listeners (ports resolved when 0 was asked).
    pub fix_addr: SocketAddr,
    /// Bound address of the binary listener.
    pub binary_addr: SocketAddr,
    /// Per-engine counters.
    pub engine_stats: Vec<Arc<EngineStats>>,
    /// Per-gateway counters.
    pub gateway_stats: Vec<Arc<GatewayStats>>,
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
    /// Each gateway's final report.
    pub gateways: Vec<GatewayReport>,
}

fn engine_stp(s: CfgStp) -> StpMode {
    match s {
        CfgStp::None => StpMode::None,
        CfgStp::CancelResting => StpMode::CancelResting,
        CfgStp::CancelAggressing => StpMode::CancelAggressing,
        CfgStp::CancelBoth => StpMode::CancelBoth,
    }
}

/// Owner (firm) names to ids: sorted, numbered from 1, so the same configuration always
/// gives the same ids (the engine's input must not depend on hash order).
fn owner_ids(cfg: &Config) -> BTreeMap<String, u32> {
    let mut names: Vec<String> = cfg
        .fix
        .sessions
        .iter()
        .map(|s| s.owner.clone().unwrap_or_else(|| s.target_comp_id.clone()))
        .chain(
            cfg.binary
                .users
                .iter()
                .map(|u| u.owner.clone().unwrap_or_else(|| u.username.clone())),
        )
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i as u32 + 1))
        .collect()
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

/// Starts the appliance described by `cfg`.
pub fn start(cfg: &Config, opts: &StartOptions) -> anyhow::Result<Running> {
    let n_eng = cfg.engine.threads;
    let n_gw = cfg.gateway.threads;
    let owners = owner_ids(cfg);
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

    // Telemetry: one hand-over pair per hot thread (engines first, then gateways), all
    // histogram sets allocated here.
    let telemetry_on = cfg.exporter.enabled;
    let interval_ns = cfg.exporter.interval_ms.saturating_mul(1_000_000);
    let n_instruments = resolved.len();
    let mut handover_rx: Vec<HandoverRx> = Vec::new();
    let mut engine_metrics = Vec::with_capacity(n_eng);
    let mut engine_tel: Vec<Option<EngineTelemetry>> = Vec::with_capacity(n_eng);
    for _ in 0..n_eng {
        let m = Arc::new(EngineMetrics::new(n_instruments));
        engine_metrics.push(m.clone());
        engine_tel.push(telemetry_on.then(|| {
            let (tx, rx) = handover::pair(interval_ns);
            handover_rx.push(rx);
            EngineTelemetry {
                handover: tx,
                metrics: m,
            }
        }));
    }
    let mut gateway_metrics = Vec::with_capacity(n_gw);
    let mut gateway_tel: Vec<Option<GatewayTelemetry>> = Vec::with_capacity(n_gw);
    for _ in 0..n_gw {
        let m = Arc::new(GatewayMetrics::default());
        gateway_metrics.push(m.clone());
        gateway_tel.push(telemetry_on.then(|| {
            let (tx, rx) = handover::pair(interval_ns);
            handover_rx.push(rx);
            GatewayTelemetry {
                handover: tx,
                metrics: m,
            }
        }));
    }
    let mut listeners: Vec<Vec<Listener>> = (0..n_gw).map(|_| Vec::new()).collect();
    listeners[cfg.fix.gateway].push(Listener {
        socket: fix_listener,
        protocol: Protocol::Fix,
    });
    listeners[cfg.binary.gateway].push(Listener {
        socket: bin_listener,
        protocol: Protocol::Binary,
    });

    // Rings: to[g][e] and from[e][g].
    let cap = cfg.gateway.ring_capacity;
    let mut ring_stats = Vec::new();
    let mut to_tx: Vec<Vec<_>> = (0..n_gw).map(|_| Vec::new()).collect();
    let mut to_rx: Vec<Vec<_>> = (0..n_eng).map(|_| Vec::new()).collect();
    let mut from_tx: Vec<Vec<_>> = (0..n_eng).map(|_| Vec::new()).collect();
    let mut from_rx: Vec<Vec<_>> = (0..n_gw).map(|_| Vec::new()).collect();
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

    let gateway_wakers: Vec<Arc<Waker>> = (0..n_gw)
        .map(|_| Waker::with_eventfd())
        .collect::<std::io::Result<_>>()
        .context("creating gateway wake-up eventfds")?;

    let stop = Arc::new(AtomicBool::new(false));
    let engine_stop = Arc::new(AtomicBool::new(false));

    // Engine threads: spawned first, each handed its parts (with a waker made from its own
    // thread handle, shared with the gateways) through a one-shot channel.
    let mut engine_handles = Vec::with_capacity(n_eng);
    let mut engine_wakers = Vec::with_capacity(n_eng);
    let mut engine_stats = Vec::with_capacity(n_eng);
    for (e, engine) in engines.into_iter().enumerate() {
        let (tx, rx) = std::sync::mpsc::channel::<EngineThread>();
        let core = cfg.engine.cores.get(e).copied();
        let rt = cfg.engine.realtime_priority;
        let handle = std::thread::Builder::new()
            .name(format!("engine-{e}"))
            .spawn(move || {
                if let Some(core) = core {
                    if let Err(err) = crate::platform::pin_current_thread(core) {
                        eprintln!("engine-{e}: cannot pin to core {core}: {err}");
                    }
                    if rt > 0 {
                        if let Err(err) = crate::platform::set_realtime(rt as i32, core) {
                            eprintln!("engine-{e}: SCHED_FIFO refused: {err}");
                        }
                    }
                }
                let et = rx.recv().expect("the launcher sends the engine's parts");
                et.run()
            })
            .context("spawning an engine thread")?;
        let waker = Waker::for_thread(handle.thread().clone());
        let stats = Arc::new(EngineStats::default());
        tx.send(EngineThread {
            engine,
            inputs: std::mem::take(&mut to_rx[e]),
            outputs: std::mem::take(&mut from_tx[e]),
            gateway_wakers: gateway_wakers.clone(),
            waker: waker.clone(),
            wait: cfg.engine.wait,
            stop: engine_stop.clone(),
            stats: stats.clone(),
            telemetry: engine_tel[e].take(),
        })
        .expect("engine thread is waiting for its parts");
        engine_wakers.push(waker);
        engine_stats.push(stats);
        engine_handles.push(handle);
    }

    // Gateway threads.
    let fix_settings = FixSettings::from_config(&cfg.fix);
    let mut gateway_handles = Vec::with_capacity(n_gw);
    let mut gateway_stats = Vec::with_capacity(n_gw);
    let (ready_tx, ready_rx) =
        std::sync::mpsc::channel::<(usize, anyhow::Result<(String, Option<String>)>)>();
    for (g, gw_listeners) in listeners.into_iter().enumerate() {
        let mut sessions = Vec::new();
        if cfg.fix.gateway == g {
            for s in &cfg.fix.sessions {
                let local = sessions.len() as u16;
                let owner = owners[&s.owner.clone().unwrap_or_else(|| s.target_comp_id.clone())];
                sessions.push(SessionSlot {
                    protocol: Protocol::Fix,
                    global: session_id(g, local),
                    name: s.target_comp_id.clone(),
                    username: s.username.clone(),
                    password: s.password.clone(),
                    owner,
                    stp: engine_stp(s.self_trade_prevention),
                    cancel_on_disconnect: s.cancel_on_disconnect,
                    conn: None,
                    user: None,
                    fix: Some(FixSession::new(&fix_settings, s)),
                    disconnect_cancel_pending: false,
                });
            }
        }
        if cfg.binary.gateway == g {
            for u in &cfg.binary.users {
                let local = sessions.len() as u16;
                let owner = owners[&u.owner.clone().unwrap_or_else(|| u.username.clone())];
                sessions.push(SessionSlot {
                    protocol: Protocol::Binary,
                    global: session_id(g, local),
                    name: u.username.clone(),
                    username: None,
                    password: u.password.clone(),
                    owner,
                    stp: engine_stp(u.self_trade_prevention),
                    cancel_on_disconnect: u.cancel_on_disconnect,
                    conn: None,
                    user: Some(Gateway::binary_user_state(&sizing)),
                    fix: None,
                    disconnect_cancel_pending: false,
                });
            }
        }
        let rings = GatewayRings {
            to_engines: std::mem::take(&mut to_tx[g]),
            engine_wakers: engine_wakers.clone(),
            from_engines: std::mem::take(&mut from_rx[g]),
        };
        let mut gw = Gateway::new(
            g,
            sessions,
            Instruments::new(&resolved),
            rings,
            sizing,
            fix_settings.clone(),
        );
        gateway_stats.push(gw.stats.clone());
        if let Some(t) = gateway_tel[g].take() {
            gw.attach_telemetry(t);
        }
        let waker = gateway_wakers[g].clone();
        let wait = cfg.gateway.wait;
        let io = opts.io.unwrap_or(cfg.gateway.io);
        let sqpoll = cfg.gateway.sqpoll;
        let core = cfg.gateway.cores.get(g).copied();
        let stop = stop.clone();
        let ready_tx = ready_tx.clone();
        let max_conn = sizing.max_connections;
        let handle = std::thread::Builder::new()
            .name(format!("gateway-{g}"))
            .spawn(move || {
                if let Some(core) = core {
                    if let Err(err) = crate::platform::pin_current_thread(core) {
                        eprintln!("gateway-{g}: cannot pin to core {core}: {err}");
                    }
                }
                let (mut backend, fallback) =
                    match driver::make_backend(io, gw_listeners, max_conn, &waker, sqpoll) {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = ready_tx.send((g, Err(e.into())));
                            return GatewayReport::default();
                        }
                    };
                let _ = ready_tx.send((g, Ok((backend.name().to_string(), fallback))));
                driver::run(&mut gw, backend.as_mut(), &waker, wait, &stop);
                GatewayReport::new(&gw, backend.stats())
            })
            .context("spawning a gateway thread")?;
        gateway_handles.push(handle);
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
        gateways: gateway_handles,
        engines: engine_handles,
        fix_addr,
        binary_addr,
        engine_stats,
        gateway_stats,
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
                .engine_stats
                .iter()
                .zip(engine_metrics)
                .map(|(stats, metrics)| EngineSource {
                    stats: stats.clone(),
                    metrics,
                })
                .collect(),
            gateways: running
                .gateway_stats
                .iter()
                .zip(gateway_metrics)
                .map(|(stats, metrics)| GatewaySource {
                    stats: stats.clone(),
                    metrics,
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
        };
        let pinned: Vec<usize> = cfg
            .engine
            .cores
            .iter()
            .chain(&cfg.gateway.cores)
            .copied()
            .collect();
        let placement = Placement {
            core: exporter::housekeeping_core(&pinned),
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
        self.engine_stats
            .iter()
            .all(|s| s.running.load(Ordering::Acquire))
            && self
                .gateway_stats
                .iter()
                .all(|s| s.listening.load(Ordering::Acquire))
    }

    /// Asks every thread to stop (gateways log sessions out first).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops and joins everything, returning the merged histograms.
    pub fn stop(self) -> Stopped {
        self.request_stop();
        let mut histograms = StageHistograms::new();
        let mut gateways = Vec::new();
        for h in self.gateways {
            if let Ok(r) = h.join() {
                histograms.merge(&r.histograms);
                gateways.push(r);
            }
        }
        // Gateways are gone: engines drain what is queued and stop.
        self.engine_stop.store(true, Ordering::Release);
        for h in &self.engines {
            h.thread().unpark();
        }
        for h in self.engines {
            if let Ok(hist) = h.join() {
                histograms.merge(&hist);
            }
        }
        // Last: the exporter takes the hot threads' final hand-overs, then gives back every
        // sample it received, so the summary covers the whole run.
        if let Some(x) = self.exporter {
            histograms.merge(&x.stop());
        }
        Stopped {
            histograms,
            gateways,
        }
    }
}

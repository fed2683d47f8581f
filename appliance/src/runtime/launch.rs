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
use super::journal_agent::{
    AckPolicy as Ack, JournalAgent, JournalStats, SegmentPrep, WriterHandoff,
};
use super::shared::SharedDuty;
use super::threading::{self, Host, Mode, Plan};
use crate::config::{AckPolicy, AuditLevel, Config, JournalPlacement, Threading};
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
use crate::journal::{JournalWriter, WriterOptions};
use crate::recovery::records::{kind, StartRecord, RECORD_VERSION};
use crate::recovery::recover::{recover, RecoveryReport};
use crate::recovery::replica::{fingerprint, state_hash};
use crate::recovery::snapshotter::{SnapshotPolicy, SnapshotStats, Snapshotter};
use crate::recovery::RecoveryStatus;
use crate::rings::msg::{FromEngine, ToEngine};
use crate::rings::records::{record_channel, RecordRx, RecordTx};
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
    /// Size of each record ring to the journal agent (default 16 MiB); tests make it small
    /// to reach a full record ring with little traffic.
    pub record_ring_bytes: Option<usize>,
    /// The configuration file `cfg` was loaded from (`None`: the embedded default), which
    /// the console's `reload` reads again.
    pub config_path: Option<std::path::PathBuf>,
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
    /// The operator's console, when `admin.socket` is set and it could bind.
    pub admin: Option<crate::admin::AdminServer>,
    /// The market-data publisher, when `market_data.enabled`.
    pub market_data: Option<crate::marketdata::publisher::Publisher>,
    /// The session-end scheduler, when an instrument has a `session_end`.
    pub schedule: Option<crate::runtime::schedule::Scheduler>,
    /// The audit trail's writer.
    pub audit: Option<crate::runtime::audit_log::AuditLogger>,
    /// The I/O backend each gateway uses, and why it fell back, if it did.
    pub backends: Vec<(String, Option<String>)>,
    /// Bound address of the exporter (`None` when `exporter.enabled` is false).
    pub exporter_addr: Option<SocketAddr>,
    exporter: Option<Exporter>,
    /// What start-up recovery did (`None`: journaling off).
    pub recovery: Option<RecoveryReport>,
    /// The journal agent's counters (`None`: journaling off).
    pub journal_stats: Option<Arc<JournalStats>>,
    /// The snapshotter's counters (`None`: journaling off).
    pub snapshot_stats: Option<Arc<SnapshotStats>>,
    journal: Option<JournalRun>,
}

/// The journal's moving parts while the appliance runs.
struct JournalRun {
    /// The journal agent's own runner, when it has one, with its waker and stop flag.
    thread: Option<(JoinHandle<Reports>, Arc<Waker>, Arc<AtomicBool>)>,
    /// That runner's state.
    status: Option<Arc<ThreadStatus>>,
    handoff: WriterHandoff,
    snapshotter: Option<Snapshotter>,
}

/// What a stopped appliance leaves behind.
pub struct Stopped {
    /// Latency histograms of every hot thread, merged.
    pub histograms: StageHistograms,
    /// Each gateway's final report, by gateway index.
    pub gateways: Vec<GatewayReport>,
    /// The state hash of the stopped appliance (engines and gateways).
    pub state_hash: u64,
    /// Its parts: each engine's hash, by engine index.
    pub engine_hashes: Vec<u64>,
    /// Each gateway's hash, by gateway index.
    pub gateway_hashes: Vec<u64>,
    /// The snapshotter's replica's hash after its final catch-up, when journaling (equal to
    /// `state_hash` when the journal rebuilds the state exactly).
    pub replica_hash: Option<u64>,
    /// Why the journal's shutdown record or final snapshot failed, if they did.
    pub journal_error: Option<String>,
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
    /// Gateways still sending commands at shutdown (see `GatewayAgent::with_peers`).
    sending: Arc<std::sync::atomic::AtomicUsize>,
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
                Some(GatewayAgent::new(self.gw, backend).with_peers(self.sending))
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
                Some(mut r) => {
                    r.fault = super::fault::panic_time(&name);
                    r.run()
                }
                None => Reports::default(),
            }
        })
        .with_context(|| format!("spawning {name}"))
}

/// Record ring size per engine and per gateway.
const RECORD_RING_BYTES: usize = 16 << 20;

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
    let journaling = cfg.journal.ack != AckPolicy::Off;

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
    let session_metrics: Vec<Arc<crate::telemetry::counters::SessionMetrics>> =
        (0..n_gw).map(|_| Arc::default()).collect();
    let gateway_tel: Vec<GatewayTelemetry> = gateway_metrics
        .iter()
        .zip(&session_metrics)
        .map(|(m, sm)| GatewayTelemetry {
            handover: handover(),
            metrics: m.clone(),
            sessions: sm.clone(),
            interval_ns,
        })
        .collect();

    // Thread states: one per hot thread; in shared mode every agent's is the one thread's.
    let shared_status = Arc::new(ThreadStatus::default());
    let (engine_status, gateway_status): (Vec<Arc<ThreadStatus>>, Vec<Arc<ThreadStatus>>) =
        match plan.mode {
            Mode::Shared => (
                vec![shared_status.clone(); n_eng],
                vec![shared_status.clone(); n_gw],
            ),
            Mode::Dedicated => (
                (0..n_eng).map(|_| Arc::default()).collect(),
                (0..n_gw).map(|_| Arc::default()).collect(),
            ),
        };

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

    // Durability's published state, shown by the exporter from the start: readiness stays
    // false until recovery is done.
    let recovery_status = Arc::new(if journaling {
        RecoveryStatus::pending()
    } else {
        RecoveryStatus::not_needed()
    });
    let journal_stats = journaling.then(|| Arc::new(JournalStats::default()));
    let snapshot_stats = journaling.then(|| Arc::new(SnapshotStats::default()));
    let admin_stats = Arc::new(crate::admin::AdminStats::default());
    let md_stats = cfg
        .market_data
        .enabled
        .then(|| Arc::new(crate::marketdata::publisher::MdStats::default()));

    // The exporter starts before recovery, so `/health/ready` answers 503 while it runs.
    let exporter = if telemetry_on {
        let sources = Sources {
            engines: engine_status
                .iter()
                .zip(&engine_metrics)
                .map(|(status, metrics)| EngineSource {
                    status: status.clone(),
                    metrics: metrics.clone(),
                })
                .collect(),
            gateways: gateway_status
                .iter()
                .zip(&gateway_metrics)
                .zip(&session_metrics)
                .map(|((status, metrics), sessions)| GatewaySource {
                    status: status.clone(),
                    metrics: metrics.clone(),
                    sessions: sessions.clone(),
                })
                .collect(),
            rings: ring_stats.clone(),
            instruments: resolved
                .iter()
                .map(|r| InstrumentLabel {
                    symbol: r.symbol.clone(),
                    price_decimals: r.price_decimals,
                })
                .collect(),
            threading: ThreadingLabel {
                mode: plan.mode.name(),
                reason: plan.reason.clone(),
            },
            recovery: recovery_status.clone(),
            journal: journal_stats.clone(),
            snapshots: snapshot_stats.clone(),
            admin: admin_stats.clone(),
            market_data: md_stats.clone(),
        };
        let pinned: Vec<usize> = plan
            .engine_cores
            .iter()
            .chain(&plan.gateway_cores)
            .chain(std::iter::once(&plan.shared_core))
            .flatten()
            .copied()
            .collect();
        let placement = Placement {
            core: housekeeping_core(&pinned),
        };
        Some(Exporter::start(
            cfg.exporter.listen,
            sources,
            handover_rx,
            placement,
        )?)
    } else {
        None
    };
    let exporter_addr = exporter.as_ref().map(|x| x.addr);
    let fail = |exporter: Option<Exporter>, e: anyhow::Error| -> anyhow::Error {
        if let Some(x) = exporter {
            x.stop();
        }
        e
    };

    // Engines and gateways: rebuilt from the journal, or new.
    let (engines, mut gateways, recovery) = if journaling {
        let dir = &cfg.journal.dir;
        match recover(cfg, dir, true) {
            Ok(r) => {
                tracing::info!("{}", r.report.summary());
                if let Some(cut) = &r.report.torn_tail {
                    tracing::warn!(
                        "journal: torn tail cut in {} at offset {} ({} bytes of an interrupted \
                         write), last good record {}",
                        cut.segment.display(),
                        cut.offset,
                        cut.garbage_bytes,
                        cut.last_good_seq
                    );
                }
                for (path, why) in &r.report.snapshots_skipped {
                    tracing::warn!("snapshot {} skipped: {why}", path.display());
                }
                if matches!(r.report.stop_hash, Some(h) if h != r.report.state_hash) {
                    tracing::error!(
                        "recovery rebuilt a state whose hash differs from the one recorded at the \
                         last clean shutdown: replay is not deterministic (a bug); continuing"
                    );
                }
                let report = r.report.clone();
                (r.replica.engines, r.replica.gateways, Some(report))
            }
            Err(e) => return Err(fail(exporter, e.context("journal recovery"))),
        }
    } else {
        let mut engines = Vec::with_capacity(n_eng);
        for e in 0..n_eng {
            let ec = engine_config(cfg, e);
            match Engine::new(ec) {
                Ok(engine) => engines.push(engine),
                Err(err) => return Err(fail(exporter, anyhow::anyhow!("engine {e}: {err}"))),
            }
        }
        let fix_settings = FixSettings::from_config(&cfg.fix);
        let gateways: Vec<Gateway> = (0..n_gw)
            .map(|g| {
                Gateway::new(
                    g,
                    build_sessions(cfg, g, &sizing),
                    Instruments::new(&resolved),
                    GatewayRings {
                        to_engines: Vec::new(),
                        engine_wakers: Vec::new(),
                        from_engines: Vec::new(),
                    },
                    sizing,
                    fix_settings.clone(),
                )
            })
            .collect::<Vec<_>>();
        (engines, gateways, None)
    };
    for gw in gateways.iter_mut() {
        gw.core.limits = crate::gateway::core::ConnLimits::from_config(&cfg.gateway);
    }
    // Halts recovered from the journal (every gateway carries the same ones), for the console.
    let halted_at_start: Vec<crate::engine::InstrumentId> = gateways
        .first()
        .map(|g| g.halted_instruments())
        .unwrap_or_default();

    // Wakers: a gateway sleeps in its I/O wait with an eventfd armed; an engine or the
    // journal agent on its own thread sleeps on a futex. In shared mode the one thread sleeps
    // in the first gateway's wait, and every producer wakes it through the same eventfd.
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
    let hook = opts.on_hot_thread_start;

    // The journal: record rings from every engine and gateway, the writer continuing after
    // the last recovered record, and the journal agent on its own thread or in the shared
    // duty cycle.
    let mut engine_records: Vec<Option<RecordTx>> = (0..n_eng).map(|_| None).collect();
    let mut gateway_records: Vec<Option<RecordTx>> = (0..n_gw).map(|_| None).collect();
    let mut journal_waker: Option<Arc<Waker>> = None;
    let mut journal_in_duty: Option<JournalAgent> = None;
    let mut journal_run: Option<JournalRun> = None;
    if let (Some(stats), Some(report)) = (&journal_stats, &recovery) {
        let mut engine_rx: Vec<RecordRx> = Vec::with_capacity(n_eng);
        for slot in engine_records.iter_mut() {
            let (tx, rx) = record_channel(opts.record_ring_bytes.unwrap_or(RECORD_RING_BYTES));
            *slot = Some(tx);
            engine_rx.push(rx);
        }
        let mut gateway_rx: Vec<RecordRx> = Vec::with_capacity(n_gw);
        for slot in gateway_records.iter_mut() {
            let (tx, rx) = record_channel(opts.record_ring_bytes.unwrap_or(RECORD_RING_BYTES));
            *slot = Some(tx);
            gateway_rx.push(rx);
        }
        let opts = WriterOptions {
            segment_bytes: cfg.journal.segment_mib << 20,
            ..WriterOptions::default()
        };
        let mut writer = match JournalWriter::open(&cfg.journal.dir, opts, report.next_seq) {
            Ok(w) => w,
            Err(e) => return Err(fail(exporter, anyhow::anyhow!("journal: {e}"))),
        };
        let start_rec = StartRecord {
            version: RECORD_VERSION,
            fingerprint: fingerprint(cfg),
            wall_ns: crate::gateway::core::wall_clock_ns(),
        };
        // Written and synced now: every start is in the journal even if nothing follows,
        // and a journal that cannot be written stops the start here, with the reason.
        if let Err(e) = writer.append(kind::START, &start_rec.encode()) {
            return Err(fail(exporter, anyhow::anyhow!("journal: {e}")));
        }
        if let Err(e) = writer.write().and_then(|()| writer.sync()) {
            return Err(fail(
                exporter,
                anyhow::anyhow!("journal: writing the START record: {e}"),
            ));
        }
        let policy = match cfg.journal.ack {
            AckPolicy::Fsync => Ack::Fsync,
            _ => Ack::Written,
        };
        let handoff: WriterHandoff = Arc::default();
        let mut agent = JournalAgent::new(
            writer,
            engine_rx,
            gateway_rx,
            gateway_wakers.clone(),
            policy,
            stats.clone(),
            handoff.clone(),
        );
        let prep_wakes: Arc<std::sync::OnceLock<Arc<Waker>>> = Arc::default();
        match SegmentPrep::start(
            cfg.journal.dir.clone(),
            cfg.journal.segment_mib << 20,
            stats.clone(),
            prep_wakes.clone(),
        ) {
            Ok(p) => agent = agent.with_prep(p),
            Err(e) => tracing::warn!("journal: segments will be prepared at rotation: {e}"),
        }
        let own_thread = match cfg.journal.placement {
            JournalPlacement::Thread => true,
            JournalPlacement::DutyCycle => plan.mode == Mode::Dedicated,
            JournalPlacement::Auto => plan.mode == Mode::Dedicated || policy == Ack::Fsync,
        };
        let mut run = JournalRun {
            thread: None,
            status: None,
            handoff,
            snapshotter: None,
        };
        if own_thread {
            let journal_stop = Arc::new(AtomicBool::new(false));
            let (tx, rx) = std::sync::mpsc::channel::<Arc<Waker>>();
            let st = Arc::new(ThreadStatus::default());
            run.status = Some(st.clone());
            let stop2 = journal_stop.clone();
            let handle = spawn_runner("journal".into(), None, hook, move || {
                let waker = rx.recv().ok()?;
                Some(Runner {
                    agent: Box::new(agent),
                    idle: idle_strategy(crate::config::WaitStrategy::SpinThenPark),
                    waker,
                    stop: stop2,
                    status: st,
                    fault: None,
                })
            })?;
            let waker = Waker::for_thread(handle.thread().clone());
            tx.send(waker.clone())
                .expect("the journal thread waits for its waker");
            journal_waker = Some(waker.clone());
            run.thread = Some((handle, waker, journal_stop));
        } else {
            journal_waker = shared_waker.clone();
            journal_in_duty = Some(agent);
        }
        if let Some(w) = &journal_waker {
            let _ = prep_wakes.set(w.clone());
        }
        let policy = SnapshotPolicy {
            interval: (cfg.journal.snapshot_interval_secs > 0)
                .then(|| Duration::from_secs(cfg.journal.snapshot_interval_secs)),
            keep: cfg.journal.keep_snapshots,
        };
        match Snapshotter::start(
            cfg.clone(),
            cfg.journal.dir.clone(),
            stats.clone(),
            policy,
            snapshot_stats.clone().unwrap_or_default(),
        ) {
            Ok(s) => run.snapshotter = Some(s),
            Err(e) => tracing::warn!("snapshotter not started: {e}"),
        }
        journal_run = Some(run);
    } else if !journaling {
        tracing::warn!(
            "journal.ack = \"off\": nothing is journaled; a restart forgets every order, \
             session sequence number and message (volatile mode)"
        );
    }

    let io = opts.io.unwrap_or(cfg.gateway.io);
    let (sqpoll, max_conn) = (cfg.gateway.sqpoll, sizing.max_connections);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<BackendReady>();

    // FIX market data: gateways with FIX sessions that may subscribe take every book change
    // and trade, their copy of the books seeded with the books as recovered.
    let fix_md_gateways: u64 = if cfg.market_data.fix {
        gateways
            .iter()
            .enumerate()
            .filter(|(g, gw)| {
                *g < 64
                    && gw.sessions().iter().any(|s| {
                        s.info.protocol == crate::vocab::Protocol::Fix
                            && s.info.drop_copy_of.is_none()
                    })
            })
            .fold(0, |m, (g, _)| m | 1 << g)
    } else {
        0
    };
    // The books as recovered, dumped once for what opens with them: the feed (every order)
    // and the gateways' copies for FIX market data (the levels only).
    let mut seed: Vec<crate::engine::BookDump> = if cfg.market_data.enabled || fix_md_gateways != 0
    {
        engines.iter().flat_map(|e| e.dump()).collect()
    } else {
        Vec::new()
    };
    let fix_md_seed: Vec<crate::engine::BookDump> = if fix_md_gateways != 0 {
        let levels = |l: &[crate::engine::LevelDump]| {
            l.iter()
                .map(|l| crate::engine::LevelDump {
                    info: l.info,
                    orders: Vec::new(),
                })
                .collect()
        };
        seed.iter()
            .map(|d| crate::engine::BookDump {
                instrument: d.instrument,
                last_trade: d.last_trade,
                bids: levels(&d.bids),
                asks: levels(&d.asks),
            })
            .collect()
    } else {
        Vec::new()
    };

    // The market-data publisher: a ring from each engine, the books as recovered (published
    // first, as the feed's opening state), its own thread.
    let mut md_tx: Vec<Option<crate::rings::ring::Sender<crate::marketdata::MdItem>>> =
        (0..n_eng).map(|_| None).collect();
    let mut market_data = None;
    if cfg.market_data.enabled {
        let mut rxs = Vec::with_capacity(n_eng);
        for slot in md_tx.iter_mut() {
            let (tx, rx, _) = crate::rings::ring::channel(crate::marketdata::MD_RING_SLOTS);
            *slot = Some(tx);
            rxs.push(rx);
        }
        let seed = std::mem::take(&mut seed);
        let md_cfg = crate::marketdata::publisher::PublisherConfig {
            destinations: cfg.market_data.destinations.clone(),
            session: crate::marketdata::publisher::session_name(
                crate::gateway::core::wall_clock_ns(),
            ),
            heartbeat: Duration::from_millis(cfg.market_data.heartbeat_ms),
            max_packet: cfg.market_data.max_packet_bytes,
            instruments: resolved
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u32, r.symbol.clone(), r.price_decimals, r.tick_units))
                .collect(),
            retransmit_messages: cfg.market_data.retransmit_messages,
            recovery_listen: cfg.market_data.recovery_listen.parse().ok(),
            halted: halted_at_start.clone(),
        };
        match crate::marketdata::publisher::Publisher::start(
            md_cfg,
            rxs,
            seed,
            cfg.engine.max_orders,
            md_stats.clone().unwrap_or_default(),
        ) {
            Ok(p) => market_data = Some(p),
            Err(e) => return Err(fail(exporter, anyhow::anyhow!("market data: {e}"))),
        }
    }

    drop(seed); // the feed took it, or nothing needs every order

    // Engine agents need the engines' wakers, which in dedicated mode are made from the
    // engine threads' handles: spawn those threads first and hand them their agents.
    let mut engine_threads = Vec::new();
    let mut engine_wakers: Vec<Arc<Waker>> = Vec::with_capacity(n_eng);
    let mut engine_agents: Vec<EngineAgent> = Vec::new();
    for (e, engine) in engines.into_iter().enumerate() {
        let tel = engine_tel[e]
            .take()
            .expect("one telemetry block per engine");
        let mut agent = EngineAgent::new(
            e,
            engine,
            std::mem::take(&mut to_rx[e]),
            std::mem::take(&mut from_tx[e]),
            gateway_wakers.clone(),
            tel,
        );
        if let (Some(tx), Some(w)) = (engine_records[e].take(), &journal_waker) {
            agent.attach_journal(tx, w.clone());
        }
        if let (Some(tx), Some(p)) = (md_tx[e].take(), &market_data) {
            agent.attach_market_data(tx, p.waker());
        }
        agent.set_book_gateways(fix_md_gateways);
        match &shared_waker {
            Some(w) => {
                engine_wakers.push(w.clone());
                engine_agents.push(agent);
            }
            None => {
                let (tx, rx) = std::sync::mpsc::channel::<Arc<Waker>>();
                let (stop, st, wait) = (
                    engine_stop.clone(),
                    engine_status[e].clone(),
                    plan.engine_wait,
                );
                let rt = cfg.engine.realtime_priority;
                let core = plan.engine_cores[e];
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
                        fault: None,
                    })
                })?;
                let waker = Waker::for_thread(handle.thread().clone());
                tx.send(waker.clone())
                    .expect("the engine thread waits for its waker");
                engine_wakers.push(waker.clone());
                engine_threads.push((handle, waker));
            }
        }
    }

    // Gateways.
    let mut parts: Vec<GatewayParts> = Vec::with_capacity(n_gw);
    let mut admin_links = Vec::with_capacity(n_gw);
    let mut directory = Vec::new();
    // Instruments whose Day orders expire at a session end (validated at load).
    let session_ends: Vec<crate::runtime::schedule::SessionEnd> = cfg
        .instruments
        .iter()
        .enumerate()
        .filter_map(|(i, ins)| {
            let at = crate::runtime::schedule::parse_hh_mm(ins.session_end.as_deref()?)?;
            let tz = jiff::tz::TimeZone::get(&ins.time_zone).ok()?;
            Some(crate::runtime::schedule::SessionEnd {
                instrument: i as crate::engine::InstrumentId,
                symbol: ins.symbol.clone(),
                at,
                tz,
            })
        })
        .collect();
    let mut schedule_link = None;
    let mut audit_sources = Vec::with_capacity(n_gw);
    let sending = Arc::new(std::sync::atomic::AtomicUsize::new(n_gw));
    for (g, ((gw_listeners, tel), mut gw)) in listeners
        .into_iter()
        .zip(gateway_tel)
        .zip(gateways.drain(..))
        .enumerate()
    {
        gw.attach_rings(GatewayRings {
            to_engines: std::mem::take(&mut to_tx[g]),
            engine_wakers: engine_wakers.clone(),
            from_engines: std::mem::take(&mut from_rx[g]),
        });
        gw.attach_telemetry(tel);
        if g < 64 && fix_md_gateways & (1 << g) != 0 {
            let mut md = crate::gateway::fix_md::FixMarketData::new(
                &gw.core.instruments,
                gw.sessions().len(),
                cfg.engine.max_levels_per_side,
                cfg.market_data.fix_max_depth,
                cfg.market_data.fix_max_subscriptions,
                cfg.fix.max_message_size,
            );
            for d in &fix_md_seed {
                md.seed(
                    d.instrument,
                    d.bids.iter().map(|l| l.info),
                    d.asks.iter().map(|l| l.info),
                    d.last_trade,
                );
            }
            gw.attach_fix_market_data(md);
        }
        let (admin_end, control) =
            crate::gateway::control::control_channel(g, gateway_wakers[g].clone());
        gw.attach_control(control);
        admin_links.push(admin_end);
        let (audit_tx, audit_rx, _) =
            crate::rings::ring::channel(crate::gateway::audit::AUDIT_SLOTS);
        gw.attach_audit(audit_tx);
        gw.core.audit_order_events = cfg.gateway.audit_order_events != AuditLevel::Off;
        gw.core.audit_order_lifecycle = cfg.gateway.audit_order_lifecycle != AuditLevel::Off;
        gw.core.audit_bucket =
            crate::gateway::throttle::Bucket::new(cfg.gateway.audit_records_per_sec);
        audit_sources.push(crate::runtime::audit_log::AuditSource {
            gateway: g,
            rx: audit_rx,
            names: gw
                .sessions()
                .iter()
                .map(|s| format!("{}:{}", s.info.protocol.label(), s.info.name))
                .collect(),
        });
        if g == 0 && !session_ends.is_empty() {
            let (end, control) =
                crate::gateway::control::control_channel(g, gateway_wakers[g].clone());
            gw.attach_control(control);
            schedule_link = Some(end);
        }
        for slot in gw.sessions() {
            directory.push(crate::admin::DirectoryEntry {
                gateway: g,
                local: slot.info.local,
                name: slot.info.name.clone(),
                protocol: slot.info.protocol,
                owner: slot.info.owner,
                owner_name: slot.info.owner_name.clone(),
            });
        }
        if let (Some(tx), Some(w)) = (gateway_records[g].take(), &journal_waker) {
            let gate = journal_stats.as_ref().map(|s| s.gate.clone());
            gw.attach_journal(tx, w.clone(), gate.unwrap_or_default());
        }
        parts.push(GatewayParts {
            gw,
            listeners: gw_listeners,
            waker: gateway_wakers[g].clone(),
            sending: sending.clone(),
        });
    }
    let mut front = Vec::new();
    match shared_waker {
        Some(waker) => {
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
                let duty = match SharedDuty::new(gateways, engine_agents, journal_in_duty, fd) {
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
                    fault: None,
                })
            })?;
            front.push((handle, waker));
        }
        None => {
            for p in parts {
                let g = p.gw.id();
                let status = gateway_status[g].clone();
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
                            fault: None,
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
    let running = Running {
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
        exporter_addr,
        exporter,
        recovery: recovery.clone(),
        journal_stats,
        snapshot_stats,
        journal: journal_run,
        admin: None,
        market_data,
        schedule: None,
        audit: crate::runtime::audit_log::AuditLogger::start(
            audit_sources,
            cfg.gateway.audit_order_events,
            cfg.gateway.audit_order_lifecycle,
        )
        .map_err(|e| tracing::error!("audit log: cannot start its thread: {e}"))
        .ok(),
    };
    let mut running = running;
    if let (None, Some(link)) = (&failure, schedule_link) {
        match crate::runtime::schedule::Scheduler::start(session_ends, link) {
            Ok(sched) => running.schedule = Some(sched),
            Err(e) => tracing::error!("schedule: cannot start: {e}; Day orders will not expire"),
        }
    }
    if failure.is_none() && !cfg.admin.socket.is_empty() {
        let path = std::path::Path::new(&cfg.admin.socket);
        let symbols = resolved
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = i as crate::engine::InstrumentId;
                (r.symbol.clone(), id, halted_at_start.contains(&id))
            })
            .collect();
        let file = opts.config_path.clone();
        let feed_states = running.market_data.as_ref().map(|p| p.state_sender());
        let parts = crate::admin::ConsoleParts {
            links: admin_links,
            directory,
            instruments: symbols,
            config_path: file,
            config: cfg.clone(),
            stats: admin_stats,
            feed: feed_states,
        };
        match crate::admin::AdminServer::start(path, parts) {
            Ok(a) => running.admin = Some(a),
            // The appliance runs without its console rather than not at all.
            Err(e) => tracing::warn!(
                "admin console on {}: {e}; running without it",
                path.display()
            ),
        }
    }
    if let Some(e) = failure {
        running.stop();
        return Err(e);
    }
    if let Some(r) = recovery {
        recovery_status.done(r);
    }
    // Ready means: every engine in its loop, every gateway listening, recovery done.
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
    /// Threads that ended by a panic (`engine-0`, `gateway-1`, `journal`; in shared mode
    /// every agent of the one thread): the process cannot serve as configured any more, and
    /// the binary exits for its supervisor to restart it.
    pub fn dead_threads(&self) -> Vec<String> {
        let died = |s: &ThreadStatus| s.get() == crate::telemetry::status::ThreadState::Died;
        let mut dead: Vec<String> = Vec::new();
        for (i, s) in self.engine_status.iter().enumerate() {
            if died(s) {
                dead.push(format!("engine-{i}"));
            }
        }
        for (i, s) in self.gateway_status.iter().enumerate() {
            if died(s) {
                dead.push(format!("gateway-{i}"));
            }
        }
        let journal = self.journal.as_ref().and_then(|j| j.status.as_ref());
        if journal.is_some_and(|s| died(s)) {
            dead.push("journal".to_string());
        }
        dead
    }

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

    /// Stops and joins everything: gateways log their sessions out, engines drain, the
    /// journal writes everything and a shutdown record with the state hash, the snapshotter
    /// takes the final snapshot. Returns the merged histograms and the state hash.
    pub fn stop(mut self) -> Stopped {
        if let Some(a) = self.admin.take() {
            a.stop();
        }
        if let Some(sched) = self.schedule.take() {
            sched.stop();
        }
        self.request_stop();
        let mut reports = Reports::default();
        let mut take = |r: Reports| {
            reports.histograms.merge(&r.histograms);
            reports.gateways.extend(r.gateways);
            reports.engine_hashes.extend(r.engine_hashes);
            reports.gateway_hashes.extend(r.gateway_hashes);
        };
        for (h, _) in self.front {
            if let Ok(r) = h.join() {
                take(r);
            }
        }
        // Gateways are gone: their last audit records (the shutdown's disconnects) are written.
        if let Some(a) = self.audit.take() {
            a.stop();
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
        // Engines are gone (in shared mode they ran in the front duty cycle): the feed
        // publishes what they left and ends its session.
        if let Some(p) = self.market_data.take() {
            p.stop();
        }
        // Engines are gone: the journal agent writes the rest.
        let mut journal_error = None;
        let mut replica_hash = None;
        reports.engine_hashes.sort_unstable();
        reports.gateway_hashes.sort_unstable();
        let hash = state_hash(
            reports.engine_hashes.iter().map(|(_, h)| *h),
            reports.gateway_hashes.iter().map(|(_, h)| *h),
        );
        if let Some(run) = self.journal {
            if let Some((h, w, stop)) = run.thread {
                stop.store(true, Ordering::Release);
                w.wake();
                let _ = h.join();
            }
            let writer = run.handoff.lock().ok().and_then(|mut w| w.take());
            let mut last = 0;
            match writer {
                Some(mut w) => {
                    let r = w
                        .append(kind::STOP, &hash.to_le_bytes())
                        .map_err(|e| e.to_string())
                        .and_then(|_| w.write().map_err(|e| e.to_string()))
                        .and_then(|_| w.sync().map_err(|e| e.to_string()));
                    if let Err(e) = r {
                        journal_error = Some(format!("shutdown record: {e}"));
                    }
                    last = w.written_seq();
                }
                None => journal_error = Some("the journal writer was not handed back".into()),
            }
            if let Some(s) = run.snapshotter {
                match s.finish(last) {
                    Ok(h) => replica_hash = h,
                    Err(e) => journal_error = Some(format!("final snapshot: {e:#}")),
                }
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
            state_hash: hash,
            engine_hashes: reports.engine_hashes.iter().map(|(_, h)| *h).collect(),
            gateway_hashes: reports.gateway_hashes.iter().map(|(_, h)| *h).collect(),
            replica_hash,
            journal_error,
        }
    }
}

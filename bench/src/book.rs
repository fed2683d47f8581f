//! `bench book`: replays a workload through one matching engine on one thread.
//!
//! Two passes per run, each on a fresh engine that has taken the preload untimed. Both feed
//! the commands through an SPSC ring drained by the runtime's own `drain_batch` (ring read
//! chunks of 64 with the engine's prefetch hints), so the path measured is the path that runs:
//! - throughput: the whole replay timed at once (commands/s; ring pushes included);
//! - latency: a TSC read (`quanta::Clock::raw`, ~12 ns here) before and after every
//!   command's `process`; each difference goes into an HdrHistogram. The figure therefore
//!   includes one raw clock read (the hints are issued between two timed commands).
//!
//! With several runs, every reported figure is the median over runs.

use std::time::Instant;

use appliance::engine::{
    Capacity, Command, Engine, EngineConfig, Event, EventKind, EventSink, InstrumentConfig,
    OrdType, MAX_ORDERS,
};
use appliance::rings::ring::channel;
use appliance::runtime::drain::drain_batch;
use appliance::runtime::engine_agent::BATCH;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::workload::Workload;

/// Knobs of a replay.
#[derive(Debug, Clone)]
pub struct BookBenchOptions {
    /// Runs (each: one throughput pass and one latency pass on fresh engines).
    pub runs: usize,
    /// Order arena size; `None` sizes it to the workload's worst case (every limit GTC/Day
    /// order resting at once), so a run never hits capacity.
    pub max_orders: Option<u32>,
    /// Price levels reserved per book side.
    pub levels_per_side: u32,
    /// Drain the ring in batches with the runtime's prefetch hints (`drain_batch`), as the
    /// engine agent does; off: one command per drain, no hints.
    pub prefetch: bool,
}

/// Slots of the ring the replay feeds the engine through (the runtime's default).
const RING: usize = 65_536;

/// Feeds `cmds` to `e` the way the runtime's engine agent does: pushed into an SPSC ring and
/// drained in batches of [`BATCH`] by the runtime's own `drain_batch` (with its prefetch
/// hints when `prefetch`; one command at a time otherwise). `each` runs the command.
#[inline(always)]
fn replay(
    e: &mut Engine,
    cmds: &[Command],
    prefetch: bool,
    mut each: impl FnMut(&mut Engine, &Command),
) {
    let (mut tx, mut rx, _) = channel::<Command>(RING);
    let mut next = 0;
    while next < cmds.len() {
        while next < cmds.len() && tx.push(cmds[next]).is_ok() {
            next += 1;
        }
        let batch = if prefetch { BATCH } else { 1 };
        while drain_batch(&mut rx, e, batch, &mut each) > 0 {}
    }
}

impl Default for BookBenchOptions {
    fn default() -> Self {
        BookBenchOptions {
            runs: 1,
            max_orders: None,
            levels_per_side: 8192,
            prefetch: true,
        }
    }
}

/// What the engine answered during a pass (to check the replay did what the file intends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Events of all kinds.
    pub events: u64,
    /// Trades.
    pub trades: u64,
    /// New orders rejected.
    pub rejects: u64,
    /// Cancels and replaces rejected (mostly orders that had already filled).
    pub cancel_rejects: u64,
    /// Orders (or remainders) cancelled.
    pub cancels: u64,
}

/// The result of `bench book`, also its `--json` line.
#[derive(Debug, Clone, Serialize)]
pub struct BookReport {
    /// Workload profile name (or file name).
    pub workload: String,
    /// Measured commands (the preload is not counted).
    pub commands: usize,
    /// Preloaded commands.
    pub preload: usize,
    /// Symbols.
    pub symbols: u32,
    /// Runs the medians are taken over.
    pub runs: usize,
    /// Throughput, plain loop, median over runs.
    pub commands_per_sec: f64,
    /// 1e9 / commands_per_sec.
    pub ns_per_command: f64,
    /// Per-command latency percentiles (ns), median over runs.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// 99.99th percentile.
    pub p9999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Order arena size used.
    pub max_orders: u32,
    /// Whether the replay passed `Engine::prefetch` hints.
    pub prefetch: bool,
    /// What the engine answered (throughput pass of the first run).
    pub outcome: Outcome,
    /// Latency by command kind, all runs' latency passes together.
    pub by_kind: Vec<KindLatency>,
}

/// Counts events by kind. `black_box` makes every event exist in full in memory, so the
/// engine pays for building it, while the sink itself costs next to nothing: copying events
/// into an SPSC ring is the runtime's cost, measured by the runtime's own benchmarks.
struct CountingSink {
    out: Outcome,
}

impl CountingSink {
    fn new() -> CountingSink {
        CountingSink {
            out: Outcome::default(),
        }
    }
}

impl EventSink for CountingSink {
    #[inline]
    fn event(&mut self, ev: &Event) {
        let ev = std::hint::black_box(ev);
        self.out.events += 1;
        match ev.kind {
            EventKind::Trade(_) => self.out.trades += 1,
            EventKind::Rejected(_) => self.out.rejects += 1,
            EventKind::CancelRejected(_) => self.out.cancel_rejects += 1,
            EventKind::Cancelled(_) => self.out.cancels += 1,
            _ => {}
        }
    }
}

/// The engine configuration for a workload: symbols `0..n`, tick 1, lot 1, no limits.
pub fn engine_config(w: &Workload, opts: &BookBenchOptions) -> EngineConfig {
    let max_orders = opts
        .max_orders
        .unwrap_or_else(|| (w.max_resting() as u64).clamp(1024, MAX_ORDERS as u64) as u32);
    EngineConfig {
        instruments: (0..w.symbols.max(1))
            .map(|i| InstrumentConfig::plain(i, &format!("S{i}")))
            .collect(),
        capacity: Capacity {
            max_orders,
            max_levels_per_side: opts.levels_per_side,
        },
    }
}

fn preloaded(w: &Workload, cfg: &EngineConfig, sink: &mut CountingSink) -> anyhow::Result<Engine> {
    let mut e = Engine::new(cfg.clone())?;
    for c in &w.preload {
        e.process(c, sink);
    }
    Ok(e)
}

/// One throughput pass: commands/s and what the engine answered. Never inlined, so a profiler
/// can attribute (and `valgrind --toggle-collect` select) the measured loop.
#[inline(never)]
fn throughput_pass(
    w: &Workload,
    cfg: &EngineConfig,
    prefetch: bool,
) -> anyhow::Result<(f64, Outcome)> {
    let mut sink = CountingSink::new();
    let mut e = preloaded(w, cfg, &mut sink)?;
    sink.out = Outcome::default();
    let cmds: &[Command] = &w.commands;
    let t0 = Instant::now();
    replay(&mut e, cmds, prefetch, |e, c| {
        e.process(std::hint::black_box(c), &mut sink);
    });
    let secs = t0.elapsed().as_secs_f64();
    Ok((cmds.len() as f64 / secs, std::hint::black_box(sink.out)))
}

/// One latency pass: per-command TSC deltas in a histogram of nanoseconds.
#[inline(never)]
fn latency_pass(
    w: &Workload,
    cfg: &EngineConfig,
    clock: &quanta::Clock,
    by_kind: &mut [Histogram<u64>; KINDS.len()],
    prefetch: bool,
) -> anyhow::Result<Histogram<u64>> {
    let mut sink = CountingSink::new();
    let mut e = preloaded(w, cfg, &mut sink)?;
    let mut h = new_histogram()?;
    replay(&mut e, &w.commands, prefetch, |e, c| {
        let start = clock.raw();
        e.process(std::hint::black_box(c), &mut sink);
        let end = clock.raw();
        let ns = clock.delta_as_nanos(start, end).max(1);
        h.saturating_record(ns);
        by_kind[kind_of(c)].saturating_record(ns);
    });
    std::hint::black_box(sink.out);
    Ok(h)
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?)
}

/// Command kinds the latency is broken down by.
pub const KINDS: [&str; 6] = ["passive", "ioc", "market", "cancel", "replace", "other"];

fn kind_of(c: &Command) -> usize {
    match c {
        Command::New(o) if o.ord_type == OrdType::Market => 2,
        Command::New(o) if o.tif.is_immediate() => 1,
        Command::New(_) => 0,
        Command::Cancel(_) => 3,
        Command::Replace(_) => 4,
        _ => 5,
    }
}

/// Latency of one kind of command, over all runs together.
#[derive(Debug, Clone, Serialize)]
pub struct KindLatency {
    /// Command kind (see [`KINDS`]).
    pub kind: &'static str,
    /// Commands of this kind, all runs.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Replays `w` `opts.runs` times and reports medians.
pub fn run(w: &Workload, opts: &BookBenchOptions) -> anyhow::Result<BookReport> {
    anyhow::ensure!(
        !w.commands.is_empty(),
        "the workload has no commands after its preload"
    );
    let runs = opts.runs.max(1);
    let cfg = engine_config(w, opts);
    let clock = quanta::Clock::new();
    let mut cps = Vec::with_capacity(runs);
    let mut pct: [Vec<u64>; 6] = Default::default();
    let mut outcome = None;
    let mut by_kind_h: [Histogram<u64>; KINDS.len()] =
        std::array::from_fn(|_| new_histogram().expect("constant bounds are valid"));
    for _ in 0..runs {
        let (rate, out) = throughput_pass(w, &cfg, opts.prefetch)?;
        cps.push(rate);
        outcome.get_or_insert(out);
        let h = latency_pass(w, &cfg, &clock, &mut by_kind_h, opts.prefetch)?;
        for (slot, q) in pct.iter_mut().zip([50.0, 90.0, 99.0, 99.9, 99.99]) {
            slot.push(h.value_at_percentile(q));
        }
        pct[5].push(h.max());
    }
    let commands_per_sec = median_f64(cps);
    let [p50, p90, p99, p999, p9999, max] = pct.map(median_u64);
    Ok(BookReport {
        workload: w.name.clone(),
        commands: w.commands.len(),
        preload: w.preload.len(),
        symbols: w.symbols,
        runs,
        commands_per_sec,
        ns_per_command: 1e9 / commands_per_sec,
        p50_ns: p50,
        p90_ns: p90,
        p99_ns: p99,
        p999_ns: p999,
        p9999_ns: p9999,
        max_ns: max,
        max_orders: cfg.capacity.max_orders,
        prefetch: opts.prefetch,
        outcome: outcome.unwrap_or_default(),
        by_kind: KINDS
            .iter()
            .zip(&by_kind_h)
            .filter(|(_, h)| !h.is_empty())
            .map(|(kind, h)| KindLatency {
                kind,
                count: h.len(),
                p50_ns: h.value_at_percentile(50.0),
                p99_ns: h.value_at_percentile(99.0),
                p999_ns: h.value_at_percentile(99.9),
                max_ns: h.max(),
            })
            .collect(),
    })
}

impl BookReport {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut kinds = String::new();
        for k in &self.by_kind {
            kinds.push_str(&format!(
                "\n  {:<8} {:>9} commands  p50 {:>6}  p99 {:>6}  p99.9 {:>7}  max {:>9}",
                k.kind, k.count, k.p50_ns, k.p99_ns, k.p999_ns, k.max_ns
            ));
        }
        let head = format!(
            "workload {name}: {n} commands after a preload of {pre}, {sym} symbol(s), median of {runs} run(s)\n\
             throughput: {mcps:.2} M commands/s ({ns:.1} ns/command, plain loop)\n\
             latency per command (ns, TSC stamps around each command, includes one clock read):\n  \
             p50 {p50}  p90 {p90}  p99 {p99}  p99.9 {p999}  p99.99 {p9999}  max {max}\n\
             engine answers: {ev} events, {tr} trades, {cx} cancels, {rj} rejects, {cr} cancel rejects (order arena {cap})",
            name = self.workload,
            n = self.commands,
            pre = self.preload,
            sym = self.symbols,
            runs = self.runs,
            mcps = self.commands_per_sec / 1e6,
            ns = self.ns_per_command,
            p50 = self.p50_ns,
            p90 = self.p90_ns,
            p99 = self.p99_ns,
            p999 = self.p999_ns,
            p9999 = self.p9999_ns,
            max = self.max_ns,
            ev = self.outcome.events,
            tr = self.outcome.trades,
            cx = self.outcome.cancels,
            rj = self.outcome.rejects,
            cr = self.outcome.cancel_rejects,
            cap = self.max_orders,
        );
        format!("{head}\nlatency by command kind (ns, all runs):{kinds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::parse;

    #[test]
    fn replays_a_small_workload_and_reports_consistent_figures() {
        let text = "# workload tiny seed 1 commands 4 preload 2 symbols 1\n\
                    N 1 0 B L G 99 10 1\nN 2 0 S L G 101 10 2\n\
                    N 3 0 B L I 101 4 3\nX 2\nX 9\nN 4 0 S M I 0 3 4\n";
        let w = parse(text).unwrap();
        let r = run(
            &w,
            &BookBenchOptions {
                runs: 3,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (r.workload.as_str(), r.commands, r.preload, r.runs),
            ("tiny", 4, 2, 3)
        );
        assert_eq!(
            r.outcome.trades, 2,
            "the IOC and the market order each trade once"
        );
        assert_eq!(r.outcome.cancel_rejects, 1, "cancel of an unknown order");
        assert_eq!(r.outcome.rejects, 0);
        assert!(r.commands_per_sec > 0.0);
        assert!(r.p50_ns <= r.p90_ns && r.p90_ns <= r.p99_ns && r.p99_ns <= r.p999_ns);
        assert!(r.p999_ns <= r.p9999_ns && r.p9999_ns <= r.max_ns);
        assert_eq!(r.max_orders, 1024, "sized to the workload, at least 1024");
        assert!(r.render().contains("workload tiny"));
    }
}

//! Builds the `/metrics` page: Prometheus families from what the hot threads published
//! (cold path, exporter thread; allocation is fine here).
//!
//! The values already exist as integers in the threads' published blocks, so families are
//! built directly as `prometheus::proto` values and encoded with the crate's `TextEncoder`;
//! the process collector and the build information come from the crate as well. Latency
//! histograms are HdrHistograms; their Prometheus form is computed at scrape time from the
//! cumulative HdrHistogram ([`BUCKETS_NS`], base unit seconds).

use super::health::Readiness;
use super::server::ServerStats;
use crate::engine::{CancelReason, OrdType, Side};
use crate::rings::ring::RingStats;
use crate::rings::stamp::{Stage, StageHistograms};
use crate::telemetry::counters::{gw, EngineMetrics, GatewayMetrics, NO_PRICE};
use crate::telemetry::status::ThreadStatus;
use crate::vocab::{
    cancel_label, ord_type_index, ord_type_label, reject_label, side_index, side_label,
    DisconnectCause, Protocol, REJECT_SLOTS,
};
use hdrhistogram::Histogram;
use prometheus::core::Collector;
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::Encoder;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Quantiles exported for each stage (`appliance_latency_window_quantile_seconds`), with
/// their `q` label values; `q="1"` (the maximum) is added after them.
pub const QUANTILES: [(f64, &str); 5] = [
    (0.5, "0.5"),
    (0.9, "0.9"),
    (0.99, "0.99"),
    (0.999, "0.999"),
    (0.9999, "0.9999"),
];

/// Upper bounds of the latency histogram buckets, in nanoseconds: fine from 100 ns (the
/// engine stage lives there), coarser past 100 µs (only outliers live there).
pub const BUCKETS_NS: [u64; 34] = [
    100,
    200,
    300,
    400,
    500,
    750,
    1_000,
    1_500,
    2_000,
    2_500,
    3_000,
    4_000,
    5_000,
    7_500,
    10_000,
    12_500,
    15_000,
    20_000,
    25_000,
    30_000,
    40_000,
    50_000,
    75_000,
    100_000,
    150_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// One engine's published state.
pub struct EngineSource {
    /// The state of the thread it runs on (readiness).
    pub status: Arc<ThreadStatus>,
    /// Loop and business counters, book state.
    pub metrics: Arc<EngineMetrics>,
}

/// One gateway's published state.
pub struct GatewaySource {
    /// The state of the thread it runs on (readiness).
    pub status: Arc<ThreadStatus>,
    /// Business, session and flow-control counters.
    pub metrics: Arc<GatewayMetrics>,
    /// Its sessions' figures.
    pub sessions: Arc<crate::telemetry::counters::SessionMetrics>,
}

/// The threading mode the runtime chose, and why.
#[derive(Clone, Debug)]
pub struct ThreadingLabel {
    /// `dedicated` or `shared`.
    pub mode: &'static str,
    /// Why (the start-up log's line).
    pub reason: String,
}

/// An instrument as labelled in metrics.
#[derive(Clone, Debug)]
pub struct InstrumentLabel {
    /// Symbol.
    pub symbol: String,
    /// Implied decimals of its prices (price units per currency unit = 10^decimals).
    pub price_decimals: u8,
}

/// Everything the exporter reads, shared with the hot threads.
pub struct Sources {
    /// Engines, by index.
    pub engines: Vec<EngineSource>,
    /// Gateways, by index.
    pub gateways: Vec<GatewaySource>,
    /// Rings: `(name, stats)`, names like `g0->e1`.
    pub rings: Vec<(String, Arc<RingStats>)>,
    /// Instruments, by id.
    pub instruments: Vec<InstrumentLabel>,
    /// The threading mode.
    pub threading: ThreadingLabel,
    /// Start-up recovery.
    pub recovery: Arc<crate::recovery::RecoveryStatus>,
    /// The journal agent's counters (`None`: journaling off).
    pub journal: Option<Arc<crate::runtime::journal_agent::JournalStats>>,
    /// The snapshotter's counters (`None`: journaling off).
    pub snapshots: Option<Arc<crate::recovery::snapshotter::SnapshotStats>>,
    /// The operator's console's counters.
    pub admin: Arc<crate::admin::AdminStats>,
    /// The market-data publisher's counters (`None`: no feed).
    pub market_data: Option<Arc<crate::marketdata::publisher::MdStats>>,
}

impl Sources {
    /// Hot threads that ended by a panic (`engine-0`, `gateway-1`; in shared mode every
    /// agent of the one thread).
    pub fn dead_threads(&self) -> Vec<String> {
        let died = |s: &ThreadStatus| s.get() == crate::telemetry::status::ThreadState::Died;
        let engines = self.engines.iter().enumerate();
        let gateways = self.gateways.iter().enumerate();
        engines
            .filter(|(_, e)| died(&e.status))
            .map(|(i, _)| format!("engine-{i}"))
            .chain(
                gateways
                    .filter(|(_, g)| died(&g.status))
                    .map(|(i, _)| format!("gateway-{i}")),
            )
            .collect()
    }

    /// Readiness as the hot threads report it.
    pub fn readiness(&self) -> Readiness {
        let running = self.engines.iter().filter(|e| e.status.running()).count();
        let listening = self.gateways.iter().filter(|g| g.status.running()).count();
        let recovery = match (self.journal.is_some(), self.recovery.report()) {
            (false, _) => "journal.ack = off: nothing to recover".to_string(),
            (true, None) => "recovering from the journal".to_string(),
            (true, Some(r)) => r.summary(),
        };
        Readiness::new(
            running,
            self.engines.len(),
            listening,
            self.gateways.len(),
            self.recovery.is_complete(),
            recovery,
        )
    }
}

/// Version and git hash, for `appliance_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit the binary was built from (`unknown` outside a git checkout).
pub const GIT_HASH: &str = env!("APPLIANCE_GIT_HASH");

type Labels = Vec<(&'static str, String)>;

/// Collects families in exposition order.
#[derive(Default)]
pub struct Families(pub Vec<MetricFamily>);

fn label_pairs(labels: Labels) -> Vec<proto::LabelPair> {
    labels
        .into_iter()
        .map(|(k, v)| {
            let mut l = proto::LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v);
            l
        })
        .collect()
}

impl Families {
    fn family(&mut self, name: &str, help: &str, ty: MetricType, metrics: Vec<proto::Metric>) {
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(ty);
        f.set_metric(metrics);
        self.0.push(f);
    }

    /// A counter family (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        let metrics = samples
            .into_iter()
            .map(|(labels, v)| {
                let mut c = proto::Counter::default();
                c.set_value(v);
                let mut m = proto::Metric::from_label(label_pairs(labels));
                m.set_counter(c);
                m
            })
            .collect();
        self.family(name, help, MetricType::COUNTER, metrics);
    }

    /// A gauge family.
    pub fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        let metrics = samples
            .into_iter()
            .map(|(labels, v)| {
                let mut g = proto::Gauge::default();
                g.set_value(v);
                let mut m = proto::Metric::from_label(label_pairs(labels));
                m.set_gauge(g);
                m
            })
            .collect();
        self.family(name, help, MetricType::GAUGE, metrics);
    }
}

/// The Prometheus form of one HdrHistogram: cumulative counts at [`BUCKETS_NS`] and the
/// sum (from each recorded value's bucket midpoint, so within the HdrHistogram's 0.1%).
pub fn prometheus_histogram(h: &Histogram<u64>) -> proto::Histogram {
    let mut counts = [0u64; BUCKETS_NS.len()];
    let mut sum_ns = 0f64;
    for v in h.iter_recorded() {
        let value = v.value_iterated_to();
        let n = v.count_at_value();
        sum_ns += h.median_equivalent(value) as f64 * n as f64;
        // A value counts in the first bucket whose bound is at or above the highest value
        // its HdrHistogram bucket can hold, so no bucket claims samples above its bound.
        if let Some(i) = BUCKETS_NS.iter().position(|&b| value <= b) {
            counts[i] += n;
        }
    }
    let mut buckets = Vec::with_capacity(BUCKETS_NS.len());
    let mut cumulative = 0;
    for (i, b) in BUCKETS_NS.iter().enumerate() {
        cumulative += counts[i];
        let mut bucket = proto::Bucket::default();
        bucket.set_upper_bound(*b as f64 / 1e9);
        bucket.set_cumulative_count(cumulative);
        buckets.push(bucket);
    }
    let mut out = proto::Histogram::default();
    out.set_sample_count(h.len());
    out.set_sample_sum(sum_ns / 1e9);
    out.set_bucket(buckets);
    out
}

fn price(units: i64, decimals: u8) -> f64 {
    if units == NO_PRICE {
        f64::NAN
    } else {
        units as f64 / 10f64.powi(decimals as i32)
    }
}

fn l1(k: &'static str, v: impl ToString) -> Labels {
    vec![(k, v.to_string())]
}

/// Renders the whole page.
pub fn render(
    src: &Sources,
    total: &StageHistograms,
    window: &StageHistograms,
    conns: &ServerStats,
    process: Option<&prometheus::process_collector::ProcessCollector>,
) -> String {
    let mut f = Families::default();
    latency(&mut f, total, window);
    business(&mut f, src);
    sessions(&mut f, src);
    rings_and_engines(&mut f, src);
    build_and_health(&mut f, src);
    durability(&mut f, src);
    exporter(&mut f, conns);
    if let Some(p) = process {
        f.0.extend(p.collect());
    }
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&f.0, &mut buf)
        .expect("families built here are well formed");
    String::from_utf8(buf).expect("the text format is UTF-8")
}

fn latency(f: &mut Families, total: &StageHistograms, window: &StageHistograms) {
    let metrics = Stage::ALL
        .iter()
        .map(|s| {
            let mut m = proto::Metric::from_label(label_pairs(l1("stage", s.name())));
            m.set_histogram(prometheus_histogram(total.get(*s)));
            m
        })
        .collect();
    f.family(
        "appliance_latency_seconds",
        "Latency per stage inside the appliance (TSC stamps), since start.",
        MetricType::HISTOGRAM,
        metrics,
    );
    let mut q = Vec::new();
    let mut n = Vec::new();
    for s in Stage::ALL {
        let h = window.get(s);
        for (quantile, label) in QUANTILES {
            let v = if h.is_empty() {
                f64::NAN
            } else {
                h.value_at_quantile(quantile) as f64 / 1e9
            };
            q.push((vec![("stage", s.name().into()), ("q", label.into())], v));
        }
        let max = if h.is_empty() {
            f64::NAN
        } else {
            h.max() as f64 / 1e9
        };
        q.push((vec![("stage", s.name().into()), ("q", "1".into())], max));
        n.push((l1("stage", s.name()), h.len() as f64));
    }
    // A gauge, not a summary: these quantiles cover one scrape window with no matching
    // cumulative _sum/_count (appliance_latency_seconds has those), and Prometheus reserves
    // the `quantile` label for summaries, hence `q` (docs/monitoring.md, "Latency").
    f.gauge(
        "appliance_latency_window_quantile_seconds",
        "HdrHistogram quantiles of each stage over the samples handed over since the previous scrape (q=\"1\" is the maximum; NaN when there were none).",
        q,
    );
    f.gauge(
        "appliance_latency_window_samples",
        "Samples behind appliance_latency_window_quantile_seconds (since the previous scrape).",
        n,
    );
}

fn business(f: &mut Families, src: &Sources) {
    let gws: Vec<&GatewayMetrics> = src.gateways.iter().map(|g| &*g.metrics).collect();
    let sum = |slot: usize| gws.iter().map(|m| m.get(slot)).sum::<u64>() as f64;
    let mut orders = Vec::new();
    for p in Protocol::ALL {
        for side in Side::ALL {
            for t in OrdType::ALL {
                let (si, ti) = (side_index(*side), ord_type_index(*t));
                let v: u64 = gws.iter().map(|m| m.orders(p.index(), si, ti)).sum();
                orders.push((
                    vec![
                        ("protocol", p.label().to_string()),
                        ("side", side_label(*side).to_string()),
                        ("type", ord_type_label(*t).to_string()),
                    ],
                    v as f64,
                ));
            }
        }
    }
    f.counter(
        "appliance_orders_received_total",
        "New orders accepted by a gateway and sent to an engine.",
        orders,
    );
    let by_reason = |base: usize| -> Vec<(Labels, f64)> {
        (0..REJECT_SLOTS)
            .map(|i| (l1("reason", reject_label(i)), sum(base + i)))
            .collect()
    };
    f.counter(
        "appliance_order_rejects_total",
        "New orders refused, by reason (gateway validation or engine).",
        by_reason(gw::REJECTS),
    );
    f.counter(
        "appliance_cancel_rejects_total",
        "Cancel and replace requests refused, by reason.",
        by_reason(gw::CANCEL_REJECTS),
    );
    let engines: Vec<&EngineMetrics> = src.engines.iter().map(|e| &*e.metrics).collect();
    f.counter(
        "appliance_cancels_total",
        "Orders (or remainders) cancelled by the engines, by reason.",
        CancelReason::ALL
            .iter()
            .map(|r| {
                let i = crate::vocab::cancel_index(*r);
                let v: u64 = engines.iter().map(|m| m.cancels[i].load(Relaxed)).sum();
                (l1("reason", cancel_label(*r)), v as f64)
            })
            .collect(),
    );
    // Each instrument belongs to one engine: the others leave its cells at zero / no price.
    let per_symbol = |get: &dyn Fn(&crate::telemetry::counters::InstrumentCells) -> u64| {
        src.instruments
            .iter()
            .enumerate()
            .map(|(id, ins)| {
                let v: u64 = engines
                    .iter()
                    .filter_map(|m| m.instruments.get(id))
                    .map(get)
                    .sum();
                (l1("symbol", &ins.symbol), v as f64)
            })
            .collect::<Vec<_>>()
    };
    f.counter(
        "appliance_trades_total",
        "Trades, by symbol.",
        per_symbol(&|c| c.trades.load(Relaxed)),
    );
    f.counter(
        "appliance_traded_volume_total",
        "Traded quantity (in the instrument's quantity units), by symbol.",
        per_symbol(&|c| c.volume.load(Relaxed)),
    );
    let mut resting = Vec::new();
    for (side, name) in [(0, "buy"), (1, "sell")] {
        for (id, ins) in src.instruments.iter().enumerate() {
            let v: u64 = engines
                .iter()
                .filter_map(|m| m.instruments.get(id))
                .map(|c| {
                    if side == 0 {
                        c.resting_bids.load(Relaxed)
                    } else {
                        c.resting_asks.load(Relaxed)
                    }
                })
                .sum();
            resting.push((
                vec![("symbol", ins.symbol.clone()), ("side", name.to_string())],
                v as f64,
            ));
        }
    }
    f.gauge(
        "appliance_resting_orders",
        "Orders resting in the book, by symbol and side.",
        resting,
    );
    let prices = |get: &dyn Fn(&crate::telemetry::counters::InstrumentCells) -> i64| {
        src.instruments
            .iter()
            .enumerate()
            .map(|(id, ins)| {
                let units = engines
                    .iter()
                    .filter_map(|m| m.instruments.get(id))
                    .map(get)
                    .find(|p| *p != NO_PRICE)
                    .unwrap_or(NO_PRICE);
                (l1("symbol", &ins.symbol), price(units, ins.price_decimals))
            })
            .collect::<Vec<_>>()
    };
    f.gauge(
        "appliance_best_bid_price",
        "Best bid, in the instrument's currency units (NaN when the bid side is empty).",
        prices(&|c| c.best_bid.load(Relaxed)),
    );
    f.gauge(
        "appliance_best_ask_price",
        "Best ask, in the instrument's currency units (NaN when the ask side is empty).",
        prices(&|c| c.best_ask.load(Relaxed)),
    );
    f.gauge(
        "appliance_last_trade_price",
        "Price of the last trade, in currency units (NaN before the first trade).",
        prices(&|c| c.last_trade.load(Relaxed)),
    );
}

fn sessions(f: &mut Families, src: &Sources) {
    let gws: Vec<&GatewayMetrics> = src.gateways.iter().map(|g| &*g.metrics).collect();
    let sum = |slot: usize| gws.iter().map(|m| m.get(slot)).sum::<u64>() as f64;
    let per_protocol = |base: usize| -> Vec<(Labels, f64)> {
        Protocol::ALL
            .iter()
            .map(|p| (l1("protocol", p.label()), sum(base + p.index())))
            .collect()
    };
    f.gauge(
        "appliance_sessions_connected",
        "Logged-on sessions, by protocol.",
        per_protocol(gw::CONNECTED),
    );
    f.counter(
        "appliance_session_logons_total",
        "Sessions bound to a connection by a Logon/Login, by protocol.",
        per_protocol(gw::LOGONS),
    );
    let mut disconnects = Vec::new();
    let mut logouts = Vec::new();
    for p in Protocol::ALL {
        for c in DisconnectCause::ALL {
            let v: u64 = gws
                .iter()
                .map(|m| m.disconnects(p.index(), c as usize))
                .sum();
            disconnects.push((
                vec![
                    ("protocol", p.label().to_string()),
                    ("reason", c.label().to_string()),
                ],
                v as f64,
            ));
            if c == DisconnectCause::Logout {
                logouts.push((l1("protocol", p.label()), v as f64));
            }
        }
    }
    f.counter(
        "appliance_session_logouts_total",
        "Logged-on sessions that ended with an orderly Logout exchange, by protocol.",
        logouts,
    );
    f.counter(
        "appliance_session_disconnects_total",
        "Logged-on sessions that lost their connection, by protocol and reason.",
        disconnects,
    );
    f.counter(
        "appliance_messages_received_total",
        "Messages decoded from clients, by protocol.",
        per_protocol(gw::MESSAGES_IN),
    );
    f.counter(
        "appliance_messages_sent_total",
        "Messages queued to clients, by protocol.",
        per_protocol(gw::MESSAGES_OUT),
    );
    f.counter(
        "appliance_fix_resend_requests_received_total",
        "FIX ResendRequests (35=2) received from counterparties.",
        vec![(vec![], sum(gw::RESEND_RECEIVED))],
    );
    f.counter(
        "appliance_fix_resend_requests_sent_total",
        "FIX ResendRequests (35=2) sent because of inbound sequence gaps.",
        vec![(vec![], sum(gw::RESEND_SENT))],
    );
    let mut evicted = Vec::new();
    for (g, s) in src.gateways.iter().enumerate() {
        for p in Protocol::ALL {
            let labels = vec![
                ("gateway", g.to_string()),
                ("protocol", p.label().to_string()),
            ];
            evicted.push((labels, s.metrics.get(gw::STORE_EVICTED + p.index()) as f64));
        }
    }
    f.counter(
        "appliance_store_evicted_total",
        "Sent messages evicted from the sessions' resend stores (FIX message store, binary \
         replay log) to make room: a later ResendRequest or replay over them gets a gap fill.",
        evicted,
    );
    let per_gw = |slot: usize| -> Vec<(Labels, f64)> {
        src.gateways
            .iter()
            .enumerate()
            .map(|(g, s)| (l1("gateway", g), s.metrics.get(slot) as f64))
            .collect()
    };
    f.counter(
        "appliance_gateway_backpressure_events_total",
        "Times a gateway paused reading a connection because an engine ring was full.",
        per_gw(gw::BACKPRESSURE),
    );
    f.counter(
        "appliance_slow_consumer_disconnects_total",
        "Connections closed because the client did not read its replies (output buffer full).",
        per_gw(gw::SLOW_CONSUMERS),
    );
    f.counter(
        "appliance_connections_evicted_total",
        "Connections not logged on yet closed to make room for a newer one (the \
         gateway.max_unauthenticated budget, in all or per address, was full).",
        per_gw(gw::EVICTED),
    );
    f.counter(
        "appliance_connections_refused_total",
        "Connections closed at accept because no slot was free (those evicted to make room \
         were still closing).",
        per_gw(gw::REFUSED),
    );
    {
        use crate::telemetry::counters::session_col as col;
        let rows: Vec<(String, [u64; 4])> = src
            .gateways
            .iter()
            .flat_map(|g| g.sessions.rows())
            .collect();
        let per_session = |k: usize| -> Vec<(Labels, f64)> {
            rows.iter()
                .map(|(n, v)| (l1("session", n), v[k] as f64))
                .collect()
        };
        f.gauge(
            "appliance_session_connected",
            "1 while the configured session is logged on (label session = protocol:name; one \
             series per configured session).",
            per_session(col::CONNECTED),
        );
        f.counter(
            "appliance_session_messages_received_total",
            "Messages a session sent that reached the application (orders, cancels, ...).",
            per_session(col::MESSAGES_IN),
        );
        f.counter(
            "appliance_session_rejects_total",
            "A session's new orders, cancels and replaces refused (gateway or engine).",
            per_session(col::REJECTS),
        );
        f.counter(
            "appliance_session_throttled_total",
            "A session's new orders and replaces refused by its throttles.",
            per_session(col::THROTTLED),
        );
    }
    f.gauge(
        "appliance_sessions_killed",
        "Sessions whose kill switch is engaged now (appliance admin kill; journaled: a \
         restart keeps it).",
        vec![(vec![], sum(gw::KILLED_SESSIONS))],
    );
    f.gauge(
        "appliance_instruments_halted",
        "Instruments the operator halted (appliance admin halt), as the most-halted gateway \
         sees it.",
        vec![(
            vec![],
            src.gateways
                .iter()
                .map(|g| g.metrics.get(gw::HALTED_INSTRUMENTS) as f64)
                .fold(0.0, f64::max),
        )],
    );
    f.counter(
        "appliance_audit_records_dropped_total",
        "Audit records (connections, logons, disconnects) dropped because the logging thread \
         fell behind (its ring was full): the log stays bounded under a flood.",
        per_gw(gw::AUDIT_DROPPED),
    );
    f.counter(
        "appliance_audit_records_rate_limited_total",
        "Audit records not written because the gateway was over gateway.audit_records_per_sec \
         (a flood of connections or bad orders cannot flood the log).",
        per_gw(gw::AUDIT_RATE_LIMITED),
    );
    f.counter(
        "appliance_fix_md_messages_total",
        "FIX market-data messages sent: snapshot (W answering a MarketDataRequest), \
         incremental (X), full_refresh (W to an MDUpdateType=0 subscription), reject (Y).",
        ["snapshot", "incremental", "full_refresh", "reject"]
            .iter()
            .enumerate()
            .flat_map(|(k, kind)| {
                src.gateways.iter().enumerate().map(move |(g, s)| {
                    (
                        vec![("gateway", g.to_string()), ("kind", kind.to_string())],
                        s.metrics.get(gw::FIX_MD_MESSAGES + k) as f64,
                    )
                })
            })
            .collect(),
    );
    f.gauge(
        "appliance_fix_md_subscriptions",
        "FIX market-data subscriptions active now (one per symbol of a MarketDataRequest \
         with SubscriptionRequestType=1; they end with the session's connection).",
        vec![(vec![], sum(gw::FIX_MD_SUBSCRIPTIONS))],
    );
    if let Some(md) = &src.market_data {
        let v = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as f64;
        f.counter(
            "appliance_md_packets_total",
            "Market-data packets sent (data, heartbeats, end of session), each counted once \
             whatever the number of destinations.",
            vec![(vec![], v(&md.packets))],
        );
        f.counter(
            "appliance_md_messages_total",
            "Market-data messages published.",
            vec![(vec![], v(&md.messages))],
        );
        f.counter(
            "appliance_md_heartbeats_total",
            "Market-data heartbeat packets (sent after market_data.heartbeat_ms without a packet).",
            vec![(vec![], v(&md.heartbeats))],
        );
        f.counter(
            "appliance_md_send_errors_total",
            "Market-data packets the kernel refused, per destination.",
            vec![(vec![], v(&md.send_errors))],
        );
        f.counter(
            "appliance_md_publish_lag_seconds_total",
            "Sum of the lags from an engine's event to the packet carrying it handed to the \
             kernel (TSC); divided by appliance_md_publish_lag_events_total, the mean.",
            vec![(vec![], v(&md.lag_ns_sum) / 1e9)],
        );
        f.counter(
            "appliance_md_publish_lag_events_total",
            "Events appliance_md_publish_lag_seconds_total covers.",
            vec![(vec![], v(&md.lag_count))],
        );
        f.gauge(
            "appliance_md_publish_lag_p50_seconds",
            "Median publish lag over the last second with events (TSC).",
            vec![(vec![], v(&md.lag_p50_ns) / 1e9)],
        );
        f.gauge(
            "appliance_md_publish_lag_p99_seconds",
            "99th percentile of the publish lag over the last second with events (TSC).",
            vec![(vec![], v(&md.lag_p99_ns) / 1e9)],
        );
        f.gauge(
            "appliance_md_resting_orders",
            "Orders resting as the feed shows them.",
            vec![(vec![], v(&md.resting))],
        );
        f.gauge(
            "appliance_md_next_sequence",
            "Sequence number of the feed's next message.",
            vec![(vec![], v(&md.next_seq))],
        );
    }
    f.counter(
        "appliance_admin_commands_total",
        "Commands the operator's console served, by command (kill, halt, cancel, reload, ...; \
         other = not understood) and result (ok, refused).",
        src.admin
            .samples()
            .into_iter()
            .map(|(c, r, n)| {
                (
                    vec![("command", c.to_string()), ("result", r.to_string())],
                    n as f64,
                )
            })
            .collect(),
    );
    f.counter(
        "appliance_kill_switches_engaged_total",
        "Sessions whose kill switch the operator engaged (appliance admin kill).",
        per_gw(gw::KILLS),
    );
    f.counter(
        "appliance_accept_errors_total",
        "Accepts that failed. Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), \
         the gateway stops accepting for 100 ms instead of retrying at once.",
        per_gw(gw::ACCEPT_ERRORS),
    );
    f.counter(
        "appliance_closing_timeouts_total",
        "Closing connections closed hard because they did not take their last messages \
         within gateway.closing_timeout_ms.",
        per_gw(gw::CLOSING_TIMEOUTS),
    );
    f.counter(
        "appliance_resent_already_applied_total",
        "Messages a client resent after a restart that the journal showed applied already \
         (skipped, not applied twice).",
        per_gw(gw::RESENT_APPLIED),
    );
}

fn rings_and_engines(f: &mut Families, src: &Sources) {
    let ring = |get: &dyn Fn(&RingStats) -> u64| -> Vec<(Labels, f64)> {
        src.rings
            .iter()
            .map(|(n, s)| (l1("ring", n), get(s) as f64))
            .collect()
    };
    f.gauge(
        "appliance_ring_high_water_slots",
        "Highest occupancy seen on each SPSC ring (slots), since start.",
        ring(&|s| s.high_water()),
    );
    f.gauge(
        "appliance_ring_capacity_slots",
        "Capacity of each SPSC ring (slots).",
        ring(&|s| s.capacity()),
    );
    f.counter(
        "appliance_ring_full_events_total",
        "Pushes (or reservations) that found the ring full: back-pressure.",
        ring(&|s| s.full_events()),
    );
    let per_engine = |get: &dyn Fn(&EngineSource) -> f64| -> Vec<(Labels, f64)> {
        src.engines
            .iter()
            .enumerate()
            .map(|(e, s)| (l1("engine", e), get(s)))
            .collect()
    };
    f.gauge(
        "appliance_engine_busy_ratio",
        "Share of the last telemetry interval each engine spent processing commands.",
        per_engine(&|s| s.metrics.busy_ppm.load(Relaxed) as f64 / 1e6),
    );
    f.counter(
        "appliance_engine_busy_seconds_total",
        "Time each engine spent processing commands (rate() of it is the busy ratio).",
        per_engine(&|s| s.metrics.busy_ns.load(Relaxed) as f64 / 1e9),
    );
    f.counter(
        "appliance_engine_commands_total",
        "Commands each engine processed.",
        per_engine(&|s| s.metrics.commands.load(Relaxed) as f64),
    );
    let mut loops = Vec::new();
    for (e, s) in src.engines.iter().enumerate() {
        loops.push((
            vec![("engine", e.to_string()), ("state", "busy".into())],
            s.metrics.busy_loops.load(Relaxed) as f64,
        ));
        loops.push((
            vec![("engine", e.to_string()), ("state", "idle".into())],
            s.metrics.idle_loops.load(Relaxed) as f64,
        ));
    }
    f.counter(
        "appliance_engine_loops_total",
        "Engine loop iterations that found work (busy) or none (idle).",
        loops,
    );
    f.counter(
        "appliance_engine_out_ring_waits_total",
        "Times an engine waited on a full outbound ring.",
        per_engine(&|s| s.metrics.out_ring_waits.load(Relaxed) as f64),
    );
    f.counter(
        "appliance_engine_md_ring_waits_total",
        "Times an engine waited on a full ring to the market-data publisher (the feed never \
         skips an event: a slow publisher slows matching instead).",
        per_engine(&|s| s.metrics.md_ring_waits.load(Relaxed) as f64),
    );
    let mut handovers = Vec::new();
    let mut skips = Vec::new();
    for (e, s) in src.engines.iter().enumerate() {
        handovers.push((
            l1("thread", format!("engine-{e}")),
            s.metrics.handovers.load(Relaxed) as f64,
        ));
        skips.push((
            l1("thread", format!("engine-{e}")),
            s.metrics.handover_skips.load(Relaxed) as f64,
        ));
    }
    for (g, s) in src.gateways.iter().enumerate() {
        handovers.push((
            l1("thread", format!("gateway-{g}")),
            s.metrics.get(gw::HANDOVERS) as f64,
        ));
        skips.push((
            l1("thread", format!("gateway-{g}")),
            s.metrics.get(gw::HANDOVER_SKIPS) as f64,
        ));
    }
    f.counter(
        "appliance_telemetry_handovers_total",
        "Latency histograms handed from a hot thread to the exporter.",
        handovers,
    );
    f.counter(
        "appliance_telemetry_handover_skips_total",
        "Hand-overs a hot thread skipped because the exporter had not returned an empty histogram (samples are delayed, not lost).",
        skips,
    );
}

fn build_and_health(f: &mut Families, src: &Sources) {
    f.gauge(
        "appliance_build_info",
        "Build information (value 1).",
        vec![(
            vec![("version", VERSION.into()), ("git_hash", GIT_HASH.into())],
            1.0,
        )],
    );
    f.gauge(
        "appliance_threading_mode",
        "The threading mode the runtime runs in (value 1), and why it was chosen.",
        vec![(
            vec![
                ("mode", src.threading.mode.to_string()),
                ("reason", src.threading.reason.clone()),
            ],
            1.0,
        )],
    );
    let r = src.readiness();
    f.gauge(
        "appliance_ready",
        "1 when every engine runs, every gateway listens and recovery is complete (as /health/ready).",
        vec![(vec![], r.ready as u8 as f64)],
    );
    f.gauge(
        "appliance_recovery_complete",
        "1 once start-up recovery from the journal is complete (1 at once when journal.ack = off).",
        vec![(vec![], r.recovery_complete as u8 as f64)],
    );
    f.gauge(
        "appliance_memory_bytes",
        "Large allocations (arenas, rings, buffers) by page backing: hugetlb-2m, thp or normal.",
        crate::platform::memory::large_allocation_bytes()
            .iter()
            .map(|(b, n)| (l1("backing", b.as_str()), *n as f64))
            .collect(),
    );
}

fn durability(f: &mut Families, src: &Sources) {
    let (Some(j), Some(sn)) = (&src.journal, &src.snapshots) else {
        return;
    };
    if let Some(r) = src.recovery.report() {
        f.gauge(
            "appliance_recovery_seconds",
            "How long start-up recovery took (newest valid snapshot plus the journal's tail).",
            vec![(vec![], r.elapsed.as_secs_f64())],
        );
        f.gauge(
            "appliance_recovery_records",
            "Journal records replayed at start-up after the snapshot.",
            vec![(vec![], r.records as f64)],
        );
        f.gauge(
            "appliance_recovery_resting_orders",
            "Resting orders rebuilt by start-up recovery.",
            vec![(vec![], r.resting_orders as f64)],
        );
        f.gauge(
            "appliance_journal_torn_tail_cut_bytes",
            "Bytes of an interrupted write cut from the journal's tail at start-up (0: none).",
            vec![(
                vec![],
                r.torn_tail.as_ref().map_or(0.0, |t| t.garbage_bytes as f64),
            )],
        );
        f.gauge(
            "appliance_state_hash_info",
            "The state hash start-up recovery rebuilt (value 1; the hash is the label).",
            vec![(vec![("hash", format!("{:016x}", r.state_hash))], 1.0)],
        );
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as f64;
    f.counter(
        "appliance_journal_records_total",
        "Records written to the journal.",
        vec![(vec![], load(&j.records))],
    );
    f.counter(
        "appliance_journal_writes_total",
        "Write passes of the journal agent (one pwrite batch each).",
        vec![(vec![], load(&j.writes))],
    );
    f.counter(
        "appliance_journal_syncs_total",
        "fdatasync calls (journal.ack = fsync).",
        vec![(vec![], load(&j.syncs))],
    );
    f.counter(
        "appliance_journal_errors_total",
        "Journal writes or syncs that failed (the records are kept and retried; output waits).",
        vec![(vec![], load(&j.errors))],
    );
    f.gauge(
        "appliance_journal_failing",
        "1 while the journal's last write failed: acknowledgements are held until it succeeds.",
        vec![(vec![], j.failing.load(Relaxed) as u8 as f64)],
    );
    f.gauge(
        "appliance_journal_refusing",
        "1 while the journal cannot take new input (writes failing, or no next segment: disk \
         full): orders, cancels and replaces are refused with reject 114.",
        vec![(vec![], j.gate.refusing() as u8 as f64)],
    );
    f.counter(
        "appliance_journal_segment_prepare_errors_total",
        "Failed attempts to prepare the journal's next segment (a full disk, usually).",
        vec![(vec![], load(&j.prep_errors))],
    );
    f.counter(
        "appliance_journal_segment_waits_total",
        "Journal writes that reached the end of a segment before the next one was prepared \
         (acknowledgements waited for it; frequent: the helper thread lacks CPU or the disk is slow).",
        vec![(vec![], load(&j.segment_waits))],
    );
    f.gauge(
        "appliance_journal_written_seq",
        "Sequence number of the last journal record written.",
        vec![(vec![], load(&j.written_seq))],
    );
    f.gauge(
        "appliance_journal_synced_seq",
        "Sequence number of the last journal record on disk (fdatasync).",
        vec![(vec![], load(&j.synced_seq))],
    );
    f.counter(
        "appliance_snapshots_total",
        "Snapshots written by the snapshotter.",
        vec![(vec![], load(&sn.written))],
    );
    f.gauge(
        "appliance_snapshot_last_seq",
        "Journal sequence number the newest snapshot covers.",
        vec![(vec![], load(&sn.last_seq))],
    );
    f.gauge(
        "appliance_snapshot_last_seconds",
        "Time the last snapshot took to serialise, write and sync (off the hot threads).",
        vec![(vec![], load(&sn.last_micros) / 1e6)],
    );
    f.gauge(
        "appliance_snapshot_last_bytes",
        "Size of the last snapshot's payload.",
        vec![(vec![], load(&sn.last_bytes))],
    );
    f.counter(
        "appliance_journal_segments_removed_total",
        "Journal segments deleted because the oldest kept snapshot covers them.",
        vec![(vec![], load(&sn.segments_removed))],
    );
    f.gauge(
        "appliance_snapshotter_lag_records",
        "Journal records written but not yet applied by the snapshotter's replica.",
        vec![(
            vec![],
            (j.written_seq.load(Relaxed)).saturating_sub(sn.applied_seq.load(Relaxed)) as f64,
        )],
    );
    f.counter(
        "appliance_snapshotter_errors_total",
        "Snapshotter failures (it stops at the first; recovery still works from the journal).",
        vec![(vec![], load(&sn.errors))],
    );
}

fn exporter(f: &mut Families, conns: &ServerStats) {
    f.counter(
        "appliance_exporter_connections_dropped_total",
        "Exporter connections closed before their answer was sent: at the request deadline (deadline) or to free a slot for a newer connection (table_full).",
        vec![
            (l1("reason", "deadline"), conns.dropped_deadline as f64),
            (l1("reason", "table_full"), conns.dropped_table_full as f64),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdr_histogram_becomes_cumulative_buckets_in_seconds() {
        let mut h = StageHistograms::new();
        for ns in [50, 100, 150, 1_000, 2_000_000_000] {
            h.record(Stage::Engine, ns);
        }
        let p = prometheus_histogram(h.get(Stage::Engine));
        assert_eq!(p.get_sample_count(), 5);
        let b = p.get_bucket();
        assert_eq!(b.len(), BUCKETS_NS.len());
        assert!((b[0].upper_bound() - 1e-7).abs() < 1e-15);
        assert_eq!(b[0].cumulative_count(), 2, "50 and 100 ns are <= 100 ns");
        assert_eq!(b[1].cumulative_count(), 3);
        assert_eq!(b[6].cumulative_count(), 4, "1 µs bucket");
        assert_eq!(b.last().unwrap().cumulative_count(), 4, "2 s only in +Inf");
        let sum = p.get_sample_sum();
        assert!((sum - 2.0000013).abs() < 0.01, "{sum}");
        assert!(b
            .windows(2)
            .all(|w| w[0].cumulative_count() <= w[1].cumulative_count()));
    }

    #[test]
    fn prices_are_currency_units_and_missing_ones_nan() {
        assert_eq!(price(1_000_000, 4), 100.0);
        assert!(price(NO_PRICE, 4).is_nan());
    }
}

//! Latency and business telemetry: what the hot threads count and hand over, and the
//! low-priority exporter thread that serves it to Prometheus.
//!
//! Hot path (inside the engine and gateway loops):
//! - [`counters`]: plain per-thread counters, copied once per interval into the thread's own
//!   cache-padded block of atomics (single writer, `Relaxed` stores).
//! - [`handover`]: the per-thread SPSC swap of full latency histograms for empty ones.
//! - [`labels`]: the dense indexes counters use and their label values.
//!
//! Cold path (the exporter thread, `SCHED_IDLE` on a housekeeping core):
//! - [`exporter`]: the thread: collects hand-overs, serves HTTP.
//! - [`render`]: builds the Prometheus families (`prometheus` crate) from what was published.
//! - [`health`]: the JSON bodies of `/health/live` and `/health/ready`.
//! - [`http`]: the minimal HTTP/1.1 server the exporter answers on.
//!
//! See `docs/monitoring.md` for every metric and `monitoring/` for the Prometheus and
//! Grafana assets.

pub mod counters;
pub mod exporter;
pub mod handover;
pub mod health;
pub mod http;
pub mod labels;
pub mod render;

use counters::{EngineMetrics, GatewayMetrics};
use handover::HandoverTx;
use std::sync::Arc;

/// What a gateway thread needs to publish (absent when the exporter is disabled).
pub struct GatewayTelemetry {
    /// Histogram hand-over to the exporter.
    pub handover: HandoverTx,
    /// The gateway's published counters.
    pub metrics: Arc<GatewayMetrics>,
}

/// What an engine thread needs to publish (absent when the exporter is disabled).
pub struct EngineTelemetry {
    /// Histogram hand-over to the exporter.
    pub handover: HandoverTx,
    /// The engine's published counters and book state.
    pub metrics: Arc<EngineMetrics>,
}

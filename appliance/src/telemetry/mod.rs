//! The hot side of telemetry: what the engine and gateway loops count and hand over, with no
//! allocation, lock or system call.
//!
//! - [`counters`]: plain per-thread counters, copied once per interval into the thread's own
//!   cache-padded block of atomics (single writer, `Relaxed` stores): the one path statistics
//!   take from a hot thread to the exporter.
//! - [`handover`]: the per-thread SPSC swap of full latency histograms for empty ones.
//! - [`status`]: each hot thread's life-cycle state (starting, running, stopped, died), what
//!   readiness and liveness are computed from.
//!
//! The cold side, the exporter thread that reads all of this and serves it over HTTP, is
//! `crate::exporter`.

pub mod counters;
pub mod handover;
pub mod status;

use counters::{EngineMetrics, GatewayMetrics};
use handover::HandoverTx;
use std::sync::Arc;

/// What a gateway needs to publish.
pub struct GatewayTelemetry {
    /// Histogram hand-over to the exporter (`None` when the exporter is disabled).
    pub handover: Option<HandoverTx>,
    /// The gateway's published counters.
    pub metrics: Arc<GatewayMetrics>,
    /// Its sessions' figures.
    pub sessions: Arc<counters::SessionMetrics>,
    /// Publication period, nanoseconds.
    pub interval_ns: u64,
}

/// What an engine needs to publish.
pub struct EngineTelemetry {
    /// Histogram hand-over to the exporter (`None` when the exporter is disabled).
    pub handover: Option<HandoverTx>,
    /// The engine's published counters and book state.
    pub metrics: Arc<EngineMetrics>,
    /// Publication period, nanoseconds.
    pub interval_ns: u64,
}

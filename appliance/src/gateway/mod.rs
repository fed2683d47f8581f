//! Gateways: client connections in, engine commands out; engine events in, replies out.
//!
//! [`core`] is protocol- and I/O-neutral (connections, sessions, orders, rings);
//! `binary_glue` and [`fix_glue`] speak the two protocols on top of it; [`driver`] runs the
//! loop over an I/O backend, [`uring`] (io_uring, the default) or [`epoll`] (the fallback).

mod binary_glue;
pub mod conn;
pub mod core;
pub mod driver;
pub mod epoll;
pub mod fix_glue;
pub mod instruments;
pub mod orders;
pub mod uring;

pub use self::core::Gateway;
use crate::runtime::stamp::StageHistograms;

/// What a gateway thread reports when it stops.
#[derive(Default)]
pub struct GatewayReport {
    /// Its latency histograms (ingress, egress, wire-to-wire).
    pub histograms: StageHistograms,
    /// Its I/O backend's counters.
    pub backend: driver::BackendStats,
}

impl GatewayReport {
    /// The report of a stopped gateway.
    pub fn new(gw: &Gateway, backend: driver::BackendStats) -> Self {
        Self {
            histograms: gw.histograms().clone(),
            backend,
        }
    }
}

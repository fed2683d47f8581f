//! The cold side of telemetry: the low-priority exporter thread ([`thread`]) that collects the
//! hot threads' histogram hand-overs and serves `/metrics` ([`render`], Prometheus text format
//! through the `prometheus` crate), `/health`, `/health/live` and `/health/ready` ([`health`])
//! over a minimal HTTP/1.1 server: messages in [`http`], non-blocking connections with
//! deadlines in a bounded table in [`server`]. Nothing here runs on a hot thread; the hot side
//! (counters, hand-over) is `telemetry`.
//!
//! See `docs/monitoring.md` for every metric and `monitoring/` for the Prometheus and
//! Grafana assets.

pub mod health;
pub mod http;
pub mod render;
pub mod server;
pub mod thread;

pub use thread::{Exporter, Placement};

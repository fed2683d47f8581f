//! The matching appliance.
//!
//! The hot path runs gateway threads (FIX 4.4 and binary order entry over io_uring) that decode
//! client messages into fixed-size commands, hand them through lock-free SPSC rings to matching
//! engine threads pinned to isolated cores, and encode the engines' events back onto the wire.
//! Everything a hot thread touches is reserved at start-up; see `docs/architecture.md`.
//!
//! Module map:
//! - [`binary`]: the binary order-entry protocol (wire layouts and session rules), sans-IO.
//! - [`cli`]: the `appliance` command line. Cold path.
//! - [`config`]: the TOML configuration and its embedded default. Cold path.
//! - [`engine`]: the sans-IO matching core (commands in, events out). Hot path.
//! - [`exporter`]: the low-priority exporter thread serving `/metrics` and `/health/*`.
//!   Cold path.
//! - [`gateway`]: client connections, FIX and binary protocols over io_uring or epoll. Hot path.
//! - [`platform`]: what the appliance asks of the host at start-up: hugepage-backed memory,
//!   memory locking, pinning, scheduling class, readiness notification. Cold path.
//! - [`marketdata`]: the order-by-order feed (ITCH-class messages, MoldUDP64 over UDP) from
//!   the engines' events, on a thread of its own.
//! - [`journal`]: segment files of checksummed records and snapshot files: writer, recovery
//!   scan, replay, retention. The writer is the journal agent's (hot-ish); the rest is cold.
//! - [`rings`]: the primitives hot threads share: SPSC rings, wakers and wait strategies, TSC
//!   stamps. Hot path, leaf.
//! - [`runtime`]: agents and the threads that run them (dedicated or shared), start-up and
//!   shutdown.
//! - [`host`]: `appliance check-host`, the read-only report on how well the host is tuned.
//! - [`telemetry`]: what hot threads count and hand over to the exporter. Hot path.
//! - [`vocab`]: reject codes, disconnect causes and the other shared words, with their
//!   labels and texts. Leaf.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod admin;
pub mod binary;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exporter;
pub mod gateway;
pub mod host;
pub mod journal;
pub mod marketdata;
pub mod platform;
pub mod recovery;
pub mod rings;
pub mod runtime;
pub mod telemetry;
pub mod vocab;

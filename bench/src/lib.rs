//! The latency bench: matching-core replay, load generation against FIX 4.4 and binary venues,
//! and the reports (percentiles, `.hgrm`, JSON, plots) built from what it measures.
//!
//! Module map:
//! - [`workload`]: the standard workload file format, parsed into engine commands (cold).
//! - [`book`]: `bench book`, the single-thread replay of a workload through the engine.
//! - [`mass`]: `bench mass-cancel`, the stall one mass cancel causes on a large book.
//! - [`cli`]: `bench latency`, `bench floor`, `bench plot`: arguments and orchestration (cold).
//! - [`load`]: the load generator's driver loop (open, closed, pipelined).
//! - [`latency`]: open-loop schedule and recorder (coordinated-omission correction), pure.
//! - [`venue`]: one connection: binary, FIX 4.4 or echo; request/reply matching.
//! - [`orders`]: the order mix (workload proportions, or a workload file replayed).
//! - [`floor`]: the loopback TCP echo server for the floor and the generator's ceiling.
//! - [`report`]: JSON summary, `.hgrm` writer/parser, SVG plots.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod book;
pub mod cli;
pub mod floor;
pub mod latency;
pub mod load;
pub mod mass;
pub mod orders;
pub mod report;
pub mod venue;
pub mod workload;

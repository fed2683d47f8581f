//! The latency bench: matching-core replay, load generation against FIX 4.4 and binary venues,
//! and the reports (percentiles, `.hgrm`, JSON, plots) built from what it measures.
//!
//! Module map:
//! - [`workload`]: the standard workload file format, parsed into engine commands (cold).
//! - [`book`]: `bench book`, the single-thread replay of a workload through the engine.
//! - [`mass`]: `bench mass-cancel`, the stall one mass cancel causes on a large book.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod book;
pub mod mass;
pub mod workload;

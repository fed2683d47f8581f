//! The latency bench: matching-core replay, load generation against FIX 4.4 and binary venues,
//! and the reports (percentiles, `.hgrm`, JSON, plots) built from what it measures.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

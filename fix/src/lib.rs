//! FIX 4.4 tag=value, sans-IO.
//!
//! Bytes and time go in; decoded messages and session actions come out; outgoing messages are
//! written into buffers the caller owns. No sockets, threads or clocks live here, so the same
//! code serves the appliance's io_uring gateway, the epoll fallback, the bench's load generator
//! and tests that drive a session byte by byte.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

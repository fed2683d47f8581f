//! The binary order-entry protocol: fixed little-endian layouts for the fastest clients.
//!
//! [`wire`] holds the byte layouts (one type per message), [`session`] the login, sequence
//! and heartbeat rules. Both are sans-IO; the gateway drives them. The specification for
//! client developers is `docs/binary-protocol.md`.

pub mod session;
pub mod wire;

//! What crosses the rings: engine commands and events with the TSC stamps of their journey.

use crate::engine::{Command, Event, SessionId};

/// A command on its way from a gateway to an engine.
#[derive(Clone, Copy, Debug)]
pub struct ToEngine {
    /// The command.
    pub cmd: Command,
    /// TSC when the bytes that carried it completed their receive.
    pub t_recv: u64,
    /// TSC when the gateway pushed it.
    pub t_push: u64,
}

/// An event on its way from an engine to a gateway.
#[derive(Clone, Copy, Debug)]
pub struct FromEngine {
    /// The event.
    pub event: Event,
    /// `t_recv` of the command that caused it.
    pub t_recv: u64,
    /// TSC when the engine pushed it.
    pub t_done: u64,
}

/// Session ids carry their gateway: `(gateway + 1) << 16 | local index`. Session 0 stays the
/// venue's own (engine-issued actions such as day expiry), so routing an event is arithmetic,
/// not a lookup.
#[inline]
pub fn session_id(gateway: usize, local: u16) -> SessionId {
    (((gateway + 1) as u32) << 16) | local as u32
}

/// The gateway a session belongs to, or `None` for the venue's session 0.
#[inline]
pub fn gateway_of(session: SessionId) -> Option<usize> {
    (session >> 16).checked_sub(1).map(|g| g as usize)
}

/// The session's index within its gateway.
#[inline]
pub fn local_of(session: SessionId) -> u16 {
    session as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_route_to_their_gateway() {
        for g in [0usize, 1, 63] {
            for l in [0u16, 1, 65535] {
                let s = session_id(g, l);
                assert_ne!(s, 0);
                assert_eq!(gateway_of(s), Some(g));
                assert_eq!(local_of(s), l);
            }
        }
        assert_eq!(gateway_of(0), None);
    }

    /// Ring slots are copied by value on every hop: keep them within two cache lines.
    #[test]
    fn ring_message_sizes() {
        assert!(
            std::mem::size_of::<ToEngine>() <= 128,
            "{}",
            std::mem::size_of::<ToEngine>()
        );
        assert!(
            std::mem::size_of::<FromEngine>() <= 192,
            "{}",
            std::mem::size_of::<FromEngine>()
        );
    }
}

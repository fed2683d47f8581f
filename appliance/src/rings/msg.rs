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
    /// Where it came from: what the engine journals beside the command so that a replay can
    /// rebuild the gateway's order table and session sequence numbers too.
    pub origin: Origin,
}

/// Gateway index meaning "no gateway" (a command the venue issued itself).
pub const NO_GATEWAY: u8 = 0xFF;
/// Longest client order id an [`Origin`] carries.
pub const MAX_ID: usize = 40;

/// Where a command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Gateway index, or [`NO_GATEWAY`].
    pub gateway: u8,
    /// Local session index within the gateway.
    pub session: u16,
    /// Sequence number of the inbound message that produced it (0: none, e.g. a cancel on
    /// disconnect).
    pub in_seq: u64,
    /// Client order id length.
    pub id_len: u8,
    /// Client order id bytes: the new order's id, the cancel's or mass cancel's request id,
    /// the replace's new id.
    pub id: [u8; MAX_ID],
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            gateway: NO_GATEWAY,
            session: 0,
            in_seq: 0,
            id_len: 0,
            id: [0; MAX_ID],
        }
    }
}

impl Origin {
    /// An origin without a client order id.
    #[inline]
    pub fn new(gateway: u8, session: u16, in_seq: u64) -> Self {
        Self {
            gateway,
            session,
            in_seq,
            ..Self::default()
        }
    }

    /// The client order id.
    pub fn id(&self) -> &[u8] {
        &self.id[..self.id_len as usize]
    }

    /// Sets the client order id (truncated to [`MAX_ID`]: gateway ids are shorter).
    #[inline]
    pub fn set_id(&mut self, id: &[u8]) {
        let n = id.len().min(MAX_ID);
        self.id[..n].copy_from_slice(&id[..n]);
        self.id_len = n as u8;
    }
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

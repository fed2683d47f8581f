//! The audit trail's records as a gateway hands them to the logging thread: fixed-size,
//! `Copy`, pushed into an SPSC ring (no allocation, no lock, no formatting on the hot
//! thread). When the ring is full the record is dropped and counted
//! (`appliance_audit_records_dropped_total`): under a connection flood the log stays bounded.

use super::conn::ConnId;
use crate::vocab::{DisconnectCause, Protocol};

/// Ring slots between a gateway and the logging thread.
pub const AUDIT_SLOTS: usize = 4096;

/// Why a logon was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// No configured session by that CompID / username, or not a Logon addressed to us.
    UnknownSession,
    /// Wrong or missing username or password.
    BadCredentials,
    /// The session is logged on over another connection (the first one wins).
    AlreadyConnected,
}

impl RefuseReason {
    /// Log value.
    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::UnknownSession => "unknown_session",
            RefuseReason::BadCredentials => "bad_credentials",
            RefuseReason::AlreadyConnected => "already_connected",
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A TCP connection was accepted.
    Connected,
    /// A connection logged on as a session.
    LoggedOn,
    /// A logon was refused (the connection is closed).
    LogonRefused(RefuseReason),
    /// A logged-on session lost its connection.
    Disconnected(DisconnectCause),
    /// A connection that never logged on was closed.
    ClosedUnbound(DisconnectCause),
}

/// One audit record.
#[derive(Clone, Copy, Debug)]
pub struct AuditRecord {
    /// Wall clock, Unix ns.
    pub wall_ns: i64,
    /// What happened.
    pub event: AuditEvent,
    /// The connection.
    pub conn: ConnId,
    /// Its protocol.
    pub protocol: Protocol,
    /// The local session, when known.
    pub session: Option<u16>,
    /// The peer's address (IPv4 mapped into IPv6).
    pub peer: u128,
}

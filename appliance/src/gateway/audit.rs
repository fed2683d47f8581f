//! The audit trail's records as a gateway hands them to the logging thread: fixed-size,
//! `Copy`, pushed into an SPSC ring (no allocation, no lock, no formatting on the hot
//! thread). When the ring is full the record is dropped and counted
//! (`appliance_audit_records_dropped_total`): under a connection flood the log stays bounded.
//!
//! Events: connections (accepted, closed before logon), logons (and refused ones), disconnects;
//! session-level FIX events (Rejects 35=3 sent or received, ResendRequests either way,
//! SequenceResets either way, sequence numbers reset at logon); and order-level refusals
//! ([`RejectKind`]: ExecutionReport 150=8, OrderCancelReject 35=9, BusinessMessageReject
//! 35=j, the binary protocol's OrderRejected / CancelRejected), which carry the ClOrdID inline
//! ([`InlineId`], up to 40 bytes: no allocation), the reason code on the wire and a short
//! label, and the MsgSeqNum / binary sequence number of the message refused when known.
//! Order-level records are pushed only when `gateway.audit_order_events` is not `off`.

use super::conn::ConnId;
use crate::vocab::{DisconnectCause, Protocol};
pub use fix::session::InlineId;

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

/// Which refusal an order-level or session-level reject record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    /// FIX Reject (35=3) sent: `code` is SessionRejectReason (373).
    Session,
    /// FIX Reject (35=3) received from the counterparty (`code` 373; `seq` its RefSeqNum).
    SessionReceived,
    /// FIX BusinessMessageReject (35=j): `code` is BusinessRejectReason (380).
    Business,
    /// A new order refused: FIX ExecutionReport 150=8 (`code` OrdRejReason 103) or binary
    /// OrderRejected (`code` the binary reject code).
    Order,
    /// A cancel or replace refused: FIX OrderCancelReject 35=9 (`code` CxlRejReason 102) or
    /// binary CancelRejected (`code` the binary reject code).
    Cancel,
}

impl RejectKind {
    /// The `event` value logged.
    pub fn label(self) -> &'static str {
        match self {
            RejectKind::Session => "session_reject",
            RejectKind::SessionReceived => "session_reject_received",
            RejectKind::Business => "business_reject",
            RejectKind::Order => "order_reject",
            RejectKind::Cancel => "cancel_reject",
        }
    }

    /// Order-level (subject to `gateway.audit_order_events`) rather than session-level.
    pub fn is_order_level(self) -> bool {
        matches!(
            self,
            RejectKind::Business | RejectKind::Order | RejectKind::Cancel
        )
    }
}

/// A refusal, with what correlates it to the client's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectInfo {
    /// Which one.
    pub kind: RejectKind,
    /// The reason code on the wire (FIX 373 / 380 / 103 / 102 value, or the binary code).
    pub code: u32,
    /// A short label for the reason.
    pub reason: &'static str,
    /// The ClOrdID (binary: the order token in decimal); empty when none.
    pub cl_ord_id: InlineId,
    /// MsgSeqNum / binary sequence number of the message refused (0: not known).
    pub seq: u64,
    /// FIX RefTagID (371) / the tag at fault, 0 when none.
    pub ref_tag: u32,
}

impl RejectInfo {
    /// An order-level refusal of `cl_ord_id` (no tag at fault).
    #[inline]
    pub fn order(
        kind: RejectKind,
        code: u32,
        reason: &'static str,
        cl_ord_id: &[u8],
        seq: u64,
    ) -> Self {
        Self {
            kind,
            code,
            reason,
            cl_ord_id: InlineId::from_bytes(cl_ord_id),
            seq,
            ref_tag: 0,
        }
    }
}

/// Which way a session message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the counterparty.
    Received,
    /// From us.
    Sent,
}

impl Direction {
    /// Log value.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Received => "received",
            Direction::Sent => "sent",
        }
    }
}

/// How sequence numbers moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetVia {
    /// SequenceReset (35=4) in reset mode (123 absent or N).
    SequenceReset,
    /// SequenceReset-GapFill (123=Y).
    GapFill,
    /// A Logon with ResetSeqNumFlag (141=Y), or the session's reset on logon.
    Logon,
}

impl ResetVia {
    /// Log value.
    pub fn label(self) -> &'static str {
        match self {
            ResetVia::SequenceReset => "sequence_reset",
            ResetVia::GapFill => "gap_fill",
            ResetVia::Logon => "logon",
        }
    }
}

/// An order's life, as its ExecutionReports tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStep {
    /// Acknowledged (ExecType 0).
    Accepted,
    /// Refused by the engine (ExecType 8).
    Rejected,
    /// Traded (ExecType F).
    Fill,
    /// Cancelled (ExecType 4), for `reason`.
    Cancelled(crate::engine::CancelReason),
    /// Replaced (ExecType 5).
    Replaced,
}

impl OrderStep {
    /// The `event` value logged.
    pub fn label(self) -> &'static str {
        match self {
            OrderStep::Accepted => "order_accepted",
            OrderStep::Rejected => "order_rejected_by_engine",
            OrderStep::Fill => "order_fill",
            OrderStep::Cancelled(crate::engine::CancelReason::DayExpired) => "order_expired",
            OrderStep::Cancelled(_) => "order_cancelled",
            OrderStep::Replaced => "order_replaced",
        }
    }
}

/// One step of an order's life with its correlation fields
/// (`gateway.audit_order_lifecycle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderEvent {
    /// What happened.
    pub step: OrderStep,
    /// The order's ClOrdID (binary: its token in decimal).
    pub cl_ord_id: InlineId,
    /// OrderID (37): the engine's order id.
    pub order_id: u64,
    /// ExecID (17) of a fill (the trade's); 0 for the other steps.
    pub exec_id: u64,
    /// A fill's quantity, a cancel's quantity, else the order's quantity.
    pub qty: u64,
    /// A fill's price, else the order's limit price (price units).
    pub price: i64,
    /// Quantity still open after the step.
    pub leaves: u64,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A step of an order's life.
    Order(OrderEvent),
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
    /// A refusal (session-level or order-level).
    Reject(RejectInfo),
    /// A FIX ResendRequest (35=2): `begin..=end` (end 0: to the last).
    ResendRequest {
        /// Received from the counterparty or sent by us (an inbound gap).
        direction: Direction,
        /// BeginSeqNo (7).
        begin: u64,
        /// EndSeqNo (16).
        end: u64,
    },
    /// FIX sequence numbers moved: the next number of the direction concerned is `new_seq`
    /// (received: the counterparty's next MsgSeqNum; sent: ours).
    SequenceReset {
        /// Received from the counterparty or sent by us.
        direction: Direction,
        /// How.
        via: ResetVia,
        /// NewSeqNo (36); 1 for a reset at logon.
        new_seq: u64,
    },
}

/// One audit record.
#[derive(Clone, Copy, Debug)]
pub struct AuditRecord {
    /// Wall clock, Unix ns.
    pub wall_ns: i64,
    /// What happened.
    pub event: AuditEvent,
    /// The connection (`None`: the session was not connected, e.g. an engine reject rendered
    /// while it was away).
    pub conn: Option<ConnId>,
    /// Its protocol.
    pub protocol: Protocol,
    /// The local session, when known.
    pub session: Option<u16>,
    /// The peer's address (IPv4 mapped into IPv6).
    pub peer: u128,
}

//! Label values and the dense indexes the hot threads count under.
//!
//! Hot threads count into flat `u64` arrays indexed by small integers (protocol, side, reason
//! code); the exporter turns an index back into a label value with the tables here. Keeping
//! both directions in one file is what guarantees they agree.

use crate::engine::{CancelReason, OrdType, RejectReason, Side};
use crate::gateway::core::{GatewayReject, Protocol};

/// Protocol label values, by [`protocol_index`].
pub const PROTOCOLS: [&str; 2] = ["fix", "binary"];
/// Side label values, by [`side_index`].
pub const SIDES: [&str; 2] = ["buy", "sell"];
/// Order type label values, by [`ord_type_index`].
pub const ORD_TYPES: [&str; 2] = ["limit", "market"];

/// Dense index of a protocol.
#[inline]
pub const fn protocol_index(p: Protocol) -> usize {
    match p {
        Protocol::Fix => 0,
        Protocol::Binary => 1,
    }
}

/// Dense index of a side.
#[inline]
pub const fn side_index(s: Side) -> usize {
    match s {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Dense index of an order type.
#[inline]
pub const fn ord_type_index(t: OrdType) -> usize {
    match t {
        OrdType::Limit => 0,
        OrdType::Market => 1,
    }
}

/// Every reject code (engine codes below 100, gateway codes from 100) with its label value.
/// The position in this table is the counting index; [`REJECT_OTHER`] follows the table.
pub const REJECT_REASONS: [(u16, &str); 29] = [
    (RejectReason::UnknownInstrument as u16, "unknown_instrument"),
    (RejectReason::ZeroQuantity as u16, "zero_quantity"),
    (RejectReason::OffLot as u16, "off_lot"),
    (RejectReason::QuantityOverMax as u16, "quantity_over_max"),
    (RejectReason::OffTick as u16, "off_tick"),
    (RejectReason::OutsidePriceBand as u16, "outside_price_band"),
    (RejectReason::NotionalOverMax as u16, "notional_over_max"),
    (
        RejectReason::PostOnlyWouldTake as u16,
        "post_only_would_take",
    ),
    (
        RejectReason::PostOnlyNotResting as u16,
        "post_only_not_resting",
    ),
    (RejectReason::DuplicateOrderId as u16, "duplicate_order_id"),
    (RejectReason::InvalidPrice as u16, "invalid_price"),
    (
        RejectReason::OrderCapacityExhausted as u16,
        "engine_order_capacity",
    ),
    (
        RejectReason::LevelCapacityExhausted as u16,
        "engine_level_capacity",
    ),
    (RejectReason::UnknownOrder as u16, "unknown_order"),
    (RejectReason::NotOrderOwner as u16, "not_order_owner"),
    (GatewayReject::UnknownSymbol as u16, "unknown_symbol"),
    (
        GatewayReject::DuplicateClientId as u16,
        "duplicate_client_id",
    ),
    (GatewayReject::InvalidSide as u16, "invalid_side"),
    (GatewayReject::InvalidOrdType as u16, "invalid_ord_type"),
    (
        GatewayReject::InvalidTimeInForce as u16,
        "invalid_time_in_force",
    ),
    (GatewayReject::InvalidStp as u16, "invalid_stp"),
    (GatewayReject::InvalidFlags as u16, "invalid_flags"),
    (GatewayReject::Capacity as u16, "gateway_capacity"),
    (GatewayReject::UnknownOrder as u16, "unknown_client_order"),
    (GatewayReject::OrderNotLive as u16, "order_not_live"),
    (GatewayReject::RequestPending as u16, "request_pending"),
    (GatewayReject::InvalidPrice as u16, "invalid_price_format"),
    (GatewayReject::InvalidQuantity as u16, "invalid_quantity"),
    (GatewayReject::ClientIdTooLong as u16, "client_id_too_long"),
];

/// Index of codes the table does not know (a code added without a label).
pub const REJECT_OTHER: usize = REJECT_REASONS.len();
/// Slots a reject counter array needs.
pub const REJECT_SLOTS: usize = REJECT_REASONS.len() + 1;

/// Counting index of a reject code: engine codes are 1-11, 20-21, 30-31 and gateway codes
/// 100-113, so a 128-entry table answers in one load.
#[inline]
pub fn reject_index(code: u16) -> usize {
    const TABLE: [u8; 128] = {
        let mut t = [REJECT_OTHER as u8; 128];
        let mut i = 0;
        while i < REJECT_REASONS.len() {
            t[REJECT_REASONS[i].0 as usize] = i as u8;
            i += 1;
        }
        t
    };
    TABLE
        .get(code as usize)
        .map_or(REJECT_OTHER, |&i| i as usize)
}

/// Label value of a reject counting index.
pub fn reject_label(index: usize) -> &'static str {
    REJECT_REASONS.get(index).map_or("other", |r| r.1)
}

/// Cancel reason label values, by `reason as u8 - 1`.
pub const CANCEL_REASONS: [&str; 8] = [
    "user",
    "unfilled",
    "fok_unfillable",
    "self_trade",
    "mass_cancel",
    "disconnect",
    "day_expired",
    "replaced_below_filled",
];

/// Dense index of a cancel reason.
#[inline]
pub fn cancel_index(r: CancelReason) -> usize {
    (r as u8 as usize - 1).min(CANCEL_REASONS.len() - 1)
}

/// Why a logged-in session lost its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DisconnectCause {
    /// An orderly Logout exchange (either side started it).
    Logout = 0,
    /// The peer closed or reset the TCP connection without logging out.
    PeerClosed = 1,
    /// The peer went silent past the heartbeat deadline.
    HeartbeatTimeout = 2,
    /// A session-level violation: bad sequence number, garbled stream, unexpected Logon.
    ProtocolError = 3,
    /// The connection's output buffer overflowed (the client does not read).
    SlowConsumer = 4,
    /// The appliance is shutting down.
    Shutdown = 5,
}

/// Disconnect cause label values, by `cause as usize`.
pub const DISCONNECT_CAUSES: [&str; 6] = [
    "logout",
    "peer_closed",
    "heartbeat_timeout",
    "protocol_error",
    "slow_consumer",
    "shutdown",
];

impl DisconnectCause {
    /// The cause a FIX session layer gives for closing.
    pub fn from_fix(r: fix::session::DisconnectReason) -> Self {
        use fix::session::DisconnectReason as D;
        match r {
            D::Logout | D::LogoutTimeout => DisconnectCause::Logout,
            D::HeartbeatTimeout | D::LogonTimeout => DisconnectCause::HeartbeatTimeout,
            _ => DisconnectCause::ProtocolError,
        }
    }
}

/// Stage label values come from [`crate::runtime::stamp::Stage::name`]; quantiles exported
/// for each stage, with their label values.
pub const QUANTILES: [(f64, &str); 5] = [
    (0.5, "0.5"),
    (0.9, "0.9"),
    (0.99, "0.99"),
    (0.999, "0.999"),
    (0.9999, "0.9999"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reject_code_has_its_own_label() {
        for r in RejectReason::ALL {
            let i = reject_index(*r as u16);
            assert_ne!(i, REJECT_OTHER, "{r:?} has no label");
            assert_eq!(REJECT_REASONS[i].0, *r as u16);
        }
        for code in 100..=113u16 {
            assert_ne!(reject_index(code), REJECT_OTHER, "gateway code {code}");
        }
        assert_eq!(reject_index(99), REJECT_OTHER);
        assert_eq!(reject_index(5000), REJECT_OTHER);
        assert_eq!(reject_label(REJECT_OTHER), "other");
        let mut names: Vec<&str> = REJECT_REASONS.iter().map(|r| r.1).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REJECT_REASONS.len(), "label values are unique");
    }

    #[test]
    fn cancel_reasons_map_one_to_one() {
        let mut seen = [false; CANCEL_REASONS.len()];
        for r in CancelReason::ALL {
            let i = cancel_index(*r);
            assert!(!seen[i], "{r:?} shares a slot");
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(
            CANCEL_REASONS[cancel_index(CancelReason::Disconnect)],
            "disconnect"
        );
    }
}

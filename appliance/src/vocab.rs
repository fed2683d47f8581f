//! The words the gateways, telemetry and the documentation share: protocols, reject codes,
//! disconnect causes, cancel reasons, with their numbers, Prometheus label values and the text
//! a client reads.
//!
//! A leaf module (it depends on the engine's reason enums only): telemetry counts by these
//! types without knowing the gateway, and the gateway renders them without knowing telemetry.
//! Every property of a code is one exhaustive `match`, so adding a code without its label, its
//! text or its FIX mapping does not compile.

use crate::engine::{CancelReason, OrdType, RejectReason, Side};

/// Which protocol a listener (and its connections and sessions) speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// FIX 4.4 tag=value.
    Fix,
    /// The binary order-entry protocol.
    Binary,
}

impl Protocol {
    /// Every protocol, in counting-index order.
    pub const ALL: [Protocol; 2] = [Protocol::Fix, Protocol::Binary];

    /// Dense counting index.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            Protocol::Fix => 0,
            Protocol::Binary => 1,
        }
    }

    /// Prometheus label value.
    pub const fn label(self) -> &'static str {
        match self {
            Protocol::Fix => "fix",
            Protocol::Binary => "binary",
        }
    }
}

/// Gateway-level reject codes (below 100 are the engine's; see `docs/binary-protocol.md`).
/// Never renumber: clients and journals keep them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum GatewayReject {
    /// Symbol not configured.
    UnknownSymbol = 100,
    /// Client order id already used by the session.
    DuplicateClientId = 101,
    /// Side not recognised.
    InvalidSide = 102,
    /// Order type not recognised.
    InvalidOrdType = 103,
    /// Time in force not recognised.
    InvalidTimeInForce = 104,
    /// Self-trade-prevention value not recognised.
    InvalidStp = 105,
    /// Unknown flag bits.
    InvalidFlags = 106,
    /// The gateway's order table is full of live orders (or too many mass cancels pending).
    Capacity = 107,
    /// Cancel/replace names an order the session never entered.
    UnknownOrder = 108,
    /// Cancel/replace names a finished order.
    OrderNotLive = 109,
    /// A cancel or replace is already pending for the order.
    RequestPending = 110,
    /// Price missing or malformed for the instrument (FIX).
    InvalidPrice = 111,
    /// Quantity missing or malformed (FIX).
    InvalidQuantity = 112,
    /// Client order id longer than the gateway keeps (FIX ClOrdID over 36 characters: a UUID fits).
    ClientIdTooLong = 113,
    /// The journal cannot take new records (disk full or failing writes): state-changing
    /// input is refused until it can (see docs/operations.md).
    JournalUnavailable = 114,
    /// The operator engaged the kill switch of the session or its firm: new orders and
    /// replaces are refused (cancels are not) until it is lifted.
    KillSwitch = 115,
    /// The operator halted the instrument: new orders and replaces are refused (cancels are
    /// not) until it resumes.
    InstrumentHalted = 116,
    /// The session went past its throttle (`max_messages_per_sec` or `max_orders_per_sec`).
    Throttled = 117,
    /// The session has `max_open_orders` working orders already.
    OpenOrderQuota = 118,
    /// The order (or the replace's new terms) would take the session's gross open notional
    /// on the instrument past `max_open_notional`.
    NotionalQuota = 119,
    /// The firm's sessions have `firms[].max_open_orders` working orders already.
    FirmOpenOrderQuota = 120,
    /// The order (or the replace's new terms) would take the firm's gross open notional on
    /// the instrument past `firms[].max_open_notional`.
    FirmNotionalQuota = 121,
}

impl GatewayReject {
    /// Every gateway code, ascending.
    pub const ALL: [GatewayReject; 22] = [
        GatewayReject::UnknownSymbol,
        GatewayReject::DuplicateClientId,
        GatewayReject::InvalidSide,
        GatewayReject::InvalidOrdType,
        GatewayReject::InvalidTimeInForce,
        GatewayReject::InvalidStp,
        GatewayReject::InvalidFlags,
        GatewayReject::Capacity,
        GatewayReject::UnknownOrder,
        GatewayReject::OrderNotLive,
        GatewayReject::RequestPending,
        GatewayReject::InvalidPrice,
        GatewayReject::InvalidQuantity,
        GatewayReject::ClientIdTooLong,
        GatewayReject::JournalUnavailable,
        GatewayReject::KillSwitch,
        GatewayReject::InstrumentHalted,
        GatewayReject::Throttled,
        GatewayReject::OpenOrderQuota,
        GatewayReject::NotionalQuota,
        GatewayReject::FirmOpenOrderQuota,
        GatewayReject::FirmNotionalQuota,
    ];

    /// The numeric code on the wire.
    #[inline]
    pub const fn code(self) -> u16 {
        self as u16
    }
}

/// Any code a new order, cancel or replace can be refused with: the engine's or the
/// gateway's. The numeric code (engine 1-99, gateway 100+) is what the binary protocol sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// Refused by the matching engine.
    Engine(RejectReason),
    /// Refused by the gateway before reaching an engine.
    Gateway(GatewayReject),
}

impl From<RejectReason> for RejectCode {
    fn from(r: RejectReason) -> Self {
        RejectCode::Engine(r)
    }
}

impl From<GatewayReject> for RejectCode {
    fn from(r: GatewayReject) -> Self {
        RejectCode::Gateway(r)
    }
}

impl RejectCode {
    /// Number of codes (engine + gateway).
    pub const COUNT: usize = RejectReason::ALL.len() + GatewayReject::ALL.len();

    /// The code with this number, if any.
    pub fn from_code(code: u16) -> Option<RejectCode> {
        if let Some(g) = GatewayReject::ALL.iter().find(|g| g.code() == code) {
            return Some(RejectCode::Gateway(*g));
        }
        u8::try_from(code)
            .ok()
            .and_then(|c| RejectReason::ALL.iter().find(|r| **r as u8 == c))
            .map(|r| RejectCode::Engine(*r))
    }

    /// The numeric code.
    #[inline]
    pub const fn code(self) -> u16 {
        match self {
            RejectCode::Engine(r) => r as u8 as u16,
            RejectCode::Gateway(g) => g as u16,
        }
    }

    /// Prometheus label value of `reason=`.
    pub const fn label(self) -> &'static str {
        match self {
            RejectCode::Engine(r) => match r {
                RejectReason::UnknownInstrument => "unknown_instrument",
                RejectReason::ZeroQuantity => "zero_quantity",
                RejectReason::OffLot => "off_lot",
                RejectReason::QuantityOverMax => "quantity_over_max",
                RejectReason::OffTick => "off_tick",
                RejectReason::OutsidePriceBand => "outside_price_band",
                RejectReason::NotionalOverMax => "notional_over_max",
                RejectReason::PostOnlyWouldTake => "post_only_would_take",
                RejectReason::PostOnlyNotResting => "post_only_not_resting",
                RejectReason::DuplicateOrderId => "duplicate_order_id",
                RejectReason::InvalidPrice => "invalid_price",
                RejectReason::OrderCapacityExhausted => "engine_order_capacity",
                RejectReason::LevelCapacityExhausted => "engine_level_capacity",
                RejectReason::UnknownOrder => "unknown_order",
                RejectReason::NotOrderOwner => "not_order_owner",
            },
            RejectCode::Gateway(g) => match g {
                GatewayReject::UnknownSymbol => "unknown_symbol",
                GatewayReject::DuplicateClientId => "duplicate_client_id",
                GatewayReject::InvalidSide => "invalid_side",
                GatewayReject::InvalidOrdType => "invalid_ord_type",
                GatewayReject::InvalidTimeInForce => "invalid_time_in_force",
                GatewayReject::InvalidStp => "invalid_stp",
                GatewayReject::InvalidFlags => "invalid_flags",
                GatewayReject::Capacity => "gateway_capacity",
                GatewayReject::UnknownOrder => "unknown_client_order",
                GatewayReject::OrderNotLive => "order_not_live",
                GatewayReject::RequestPending => "request_pending",
                GatewayReject::InvalidPrice => "invalid_price_format",
                GatewayReject::InvalidQuantity => "invalid_quantity",
                GatewayReject::ClientIdTooLong => "client_id_too_long",
                GatewayReject::JournalUnavailable => "journal_unavailable",
                GatewayReject::KillSwitch => "kill_switch",
                GatewayReject::InstrumentHalted => "instrument_halted",
                GatewayReject::Throttled => "throttled",
                GatewayReject::OpenOrderQuota => "open_order_quota",
                GatewayReject::NotionalQuota => "notional_quota",
                GatewayReject::FirmOpenOrderQuota => "firm_open_order_quota",
                GatewayReject::FirmNotionalQuota => "firm_notional_quota",
            },
        }
    }

    /// The text a client reads (FIX Text, 58).
    pub const fn text(self) -> &'static [u8] {
        match self {
            RejectCode::Engine(r) => match r {
                RejectReason::UnknownInstrument => b"unknown instrument",
                RejectReason::ZeroQuantity => b"zero quantity",
                RejectReason::OffLot => b"quantity not a multiple of the lot size",
                RejectReason::QuantityOverMax => b"quantity above the maximum",
                RejectReason::OffTick => b"price not a multiple of the tick size",
                RejectReason::OutsidePriceBand => b"price outside the price band",
                RejectReason::NotionalOverMax => b"notional above the maximum",
                RejectReason::PostOnlyWouldTake => b"post-only order would take liquidity",
                RejectReason::PostOnlyNotResting => b"post-only order cannot rest",
                RejectReason::DuplicateOrderId => b"duplicate order id",
                RejectReason::InvalidPrice => b"price must be positive",
                RejectReason::OrderCapacityExhausted => b"engine order capacity exhausted",
                RejectReason::LevelCapacityExhausted => b"engine price-level capacity exhausted",
                RejectReason::UnknownOrder => b"unknown order",
                RejectReason::NotOrderOwner => b"order belongs to another session",
            },
            RejectCode::Gateway(g) => match g {
                GatewayReject::UnknownSymbol => b"unknown symbol",
                GatewayReject::DuplicateClientId => b"duplicate ClOrdID",
                GatewayReject::InvalidSide => b"invalid side",
                GatewayReject::InvalidOrdType => b"unsupported order type",
                GatewayReject::InvalidTimeInForce => b"unsupported time in force",
                GatewayReject::InvalidStp => b"invalid self-trade prevention",
                GatewayReject::InvalidFlags => b"invalid flags",
                GatewayReject::Capacity => b"gateway capacity exhausted",
                GatewayReject::UnknownOrder => b"unknown order",
                GatewayReject::OrderNotLive => b"too late: order no longer live",
                GatewayReject::RequestPending => b"a cancel or replace is already pending",
                GatewayReject::InvalidPrice => b"invalid price for the instrument",
                GatewayReject::InvalidQuantity => b"invalid quantity",
                GatewayReject::ClientIdTooLong => b"ClOrdID longer than 36 characters",
                GatewayReject::JournalUnavailable => {
                    b"journal unavailable: not accepted, send again later"
                }
                GatewayReject::KillSwitch => b"kill switch engaged",
                GatewayReject::InstrumentHalted => b"instrument halted",
                GatewayReject::Throttled => b"throttle exceeded",
                GatewayReject::OpenOrderQuota => b"open order quota reached",
                GatewayReject::NotionalQuota => b"open notional quota reached",
                GatewayReject::FirmOpenOrderQuota => b"firm open order quota reached",
                GatewayReject::FirmNotionalQuota => b"firm open notional quota reached",
            },
        }
    }

    /// FIX OrdRejReason (103) of a refused new order.
    pub const fn fix_ord_rej_reason(self) -> u32 {
        match self {
            RejectCode::Engine(r) => match r {
                RejectReason::UnknownInstrument => 1,
                RejectReason::OutsidePriceBand | RejectReason::NotionalOverMax => 3,
                RejectReason::ZeroQuantity
                | RejectReason::OffLot
                | RejectReason::QuantityOverMax => 13,
                RejectReason::DuplicateOrderId => 6,
                RejectReason::PostOnlyNotResting => 11,
                RejectReason::OffTick
                | RejectReason::PostOnlyWouldTake
                | RejectReason::InvalidPrice
                | RejectReason::OrderCapacityExhausted
                | RejectReason::LevelCapacityExhausted
                | RejectReason::UnknownOrder
                | RejectReason::NotOrderOwner => 99,
            },
            RejectCode::Gateway(g) => match g {
                GatewayReject::UnknownSymbol => 1,
                GatewayReject::InvalidQuantity => 13,
                GatewayReject::DuplicateClientId => 6,
                GatewayReject::InvalidOrdType | GatewayReject::InvalidTimeInForce => 11,
                GatewayReject::InvalidSide
                | GatewayReject::InvalidStp
                | GatewayReject::InvalidFlags
                | GatewayReject::Capacity
                | GatewayReject::UnknownOrder
                | GatewayReject::OrderNotLive
                | GatewayReject::RequestPending
                | GatewayReject::InvalidPrice
                | GatewayReject::ClientIdTooLong
                | GatewayReject::JournalUnavailable
                | GatewayReject::KillSwitch
                | GatewayReject::InstrumentHalted
                | GatewayReject::Throttled => 99,
                GatewayReject::OpenOrderQuota
                | GatewayReject::NotionalQuota
                | GatewayReject::FirmOpenOrderQuota
                | GatewayReject::FirmNotionalQuota => 3,
            },
        }
    }

    /// FIX CxlRejReason (102) of a refused cancel or replace.
    pub const fn fix_cxl_rej_reason(self) -> u32 {
        match self {
            RejectCode::Gateway(GatewayReject::OrderNotLive) => 0,
            RejectCode::Gateway(GatewayReject::UnknownOrder)
            | RejectCode::Engine(RejectReason::UnknownOrder) => 1,
            RejectCode::Gateway(GatewayReject::RequestPending) => 3,
            RejectCode::Gateway(GatewayReject::DuplicateClientId) => 6,
            _ => 99,
        }
    }

    /// Dense counting index: engine codes first, then gateway codes.
    pub const fn index(self) -> usize {
        match self {
            RejectCode::Engine(r) => {
                let mut i = 0;
                while i < RejectReason::ALL.len() {
                    if RejectReason::ALL[i] as u8 == r as u8 {
                        return i;
                    }
                    i += 1;
                }
                REJECT_OTHER
            }
            RejectCode::Gateway(g) => RejectReason::ALL.len() + (g as u16 - 100) as usize,
        }
    }
}

/// Index of codes no table knows (a code from a newer peer, counted rather than dropped).
pub const REJECT_OTHER: usize = RejectCode::COUNT;
/// Slots a reject counter array needs.
pub const REJECT_SLOTS: usize = RejectCode::COUNT + 1;

/// Counting index of a numeric reject code: one load from a table built at compile time.
#[inline]
pub fn reject_index(code: u16) -> usize {
    const TABLE: [u8; 128] = {
        let mut t = [REJECT_OTHER as u8; 128];
        let mut i = 0;
        while i < RejectReason::ALL.len() {
            let r = RejectReason::ALL[i];
            t[r as usize] = RejectCode::Engine(r).index() as u8;
            i += 1;
        }
        let mut j = 0;
        while j < GatewayReject::ALL.len() {
            let g = GatewayReject::ALL[j];
            t[g as usize] = RejectCode::Gateway(g).index() as u8;
            j += 1;
        }
        t
    };
    TABLE
        .get(code as usize)
        .map_or(REJECT_OTHER, |&i| i as usize)
}

/// Label value of a reject counting index.
pub fn reject_label(index: usize) -> &'static str {
    let engine = RejectReason::ALL.len();
    if index < engine {
        RejectCode::Engine(RejectReason::ALL[index]).label()
    } else if index < RejectCode::COUNT {
        RejectCode::Gateway(GatewayReject::ALL[index - engine]).label()
    } else {
        "other"
    }
}

/// Label value and client text of a cancel reason.
pub const fn cancel_label(r: CancelReason) -> &'static str {
    match r {
        CancelReason::User => "user",
        CancelReason::Unfilled => "unfilled",
        CancelReason::FokUnfillable => "fok_unfillable",
        CancelReason::SelfTrade => "self_trade",
        CancelReason::MassCancel => "mass_cancel",
        CancelReason::Disconnect => "disconnect",
        CancelReason::DayExpired => "day_expired",
        CancelReason::ReplacedBelowFilled => "replaced_below_filled",
        CancelReason::KillSwitch => "kill_switch",
        CancelReason::Operator => "operator",
    }
}

/// The text a client reads when an order is cancelled (FIX Text, 58).
pub const fn cancel_text(r: CancelReason) -> &'static [u8] {
    match r {
        CancelReason::User => b"cancelled by request",
        CancelReason::Unfilled => b"unfilled remainder of an immediate order",
        CancelReason::FokUnfillable => b"fill or kill could not be filled",
        CancelReason::SelfTrade => b"self-trade prevention",
        CancelReason::MassCancel => b"mass cancel",
        CancelReason::Disconnect => b"cancel on disconnect",
        CancelReason::DayExpired => b"day order expired",
        CancelReason::ReplacedBelowFilled => b"replaced below the filled quantity",
        CancelReason::KillSwitch => b"kill switch engaged",
        CancelReason::Operator => b"cancelled by the venue's operator",
    }
}

/// Slots a cancel-reason counter array needs.
pub const CANCEL_SLOTS: usize = CancelReason::ALL.len();

/// Dense counting index of a cancel reason.
#[inline]
pub fn cancel_index(r: CancelReason) -> usize {
    (r as u8 as usize - 1).min(CANCEL_SLOTS - 1)
}

/// Label value of a side.
pub const fn side_label(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// Dense counting index of a side.
#[inline]
pub const fn side_index(s: Side) -> usize {
    match s {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Label value of an order type.
pub const fn ord_type_label(t: OrdType) -> &'static str {
    match t {
        OrdType::Limit => "limit",
        OrdType::Market => "market",
    }
}

/// Dense counting index of an order type.
#[inline]
pub const fn ord_type_index(t: OrdType) -> usize {
    match t {
        OrdType::Limit => 0,
        OrdType::Market => 1,
    }
}

/// Why a logged-in session lost its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// Not logged on yet, and closed to make room for a newer connection (a connection
    /// budget was full). Never a logged-on session's cause.
    Evicted = 6,
    /// The venue's operator disconnected the session (`appliance admin disconnect`).
    Operator = 7,
    /// The session went past its throttle under the `disconnect` policy.
    Throttled = 8,
}

impl DisconnectCause {
    /// Every cause, in counting-index order.
    pub const ALL: [DisconnectCause; 9] = [
        DisconnectCause::Logout,
        DisconnectCause::PeerClosed,
        DisconnectCause::HeartbeatTimeout,
        DisconnectCause::ProtocolError,
        DisconnectCause::SlowConsumer,
        DisconnectCause::Shutdown,
        DisconnectCause::Evicted,
        DisconnectCause::Operator,
        DisconnectCause::Throttled,
    ];

    /// Prometheus label value of `cause=`.
    pub const fn label(self) -> &'static str {
        match self {
            DisconnectCause::Logout => "logout",
            DisconnectCause::PeerClosed => "peer_closed",
            DisconnectCause::HeartbeatTimeout => "heartbeat_timeout",
            DisconnectCause::ProtocolError => "protocol_error",
            DisconnectCause::SlowConsumer => "slow_consumer",
            DisconnectCause::Shutdown => "shutdown",
            DisconnectCause::Evicted => "evicted",
            DisconnectCause::Operator => "operator",
            DisconnectCause::Throttled => "throttled",
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reject_code_has_its_own_index_label_and_round_trips() {
        let mut seen = [false; REJECT_SLOTS];
        let all = RejectReason::ALL
            .iter()
            .map(|r| RejectCode::Engine(*r))
            .chain(GatewayReject::ALL.iter().map(|g| RejectCode::Gateway(*g)));
        for c in all {
            let i = reject_index(c.code());
            assert_eq!(i, c.index(), "{c:?}");
            assert_ne!(i, REJECT_OTHER, "{c:?} has no index");
            assert!(!seen[i], "{c:?} shares an index");
            seen[i] = true;
            assert_eq!(reject_label(i), c.label());
            assert_eq!(RejectCode::from_code(c.code()), Some(c));
            assert!(!c.text().is_empty());
        }
        assert!(seen[..RejectCode::COUNT].iter().all(|s| *s));
        assert_eq!(reject_index(99), REJECT_OTHER);
        assert_eq!(reject_index(5000), REJECT_OTHER);
        assert_eq!(reject_label(REJECT_OTHER), "other");
        assert_eq!(RejectCode::from_code(99), None);
        let mut labels: Vec<&str> = (0..RejectCode::COUNT).map(reject_label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), RejectCode::COUNT, "label values are unique");
    }

    #[test]
    fn gateway_codes_are_contiguous_from_100() {
        for (i, g) in GatewayReject::ALL.iter().enumerate() {
            assert_eq!(g.code(), 100 + i as u16);
        }
    }

    #[test]
    fn fix_mappings_match_the_rules_of_engagement() {
        let e = RejectCode::Engine;
        let g = RejectCode::Gateway;
        assert_eq!(e(RejectReason::UnknownInstrument).fix_ord_rej_reason(), 1);
        assert_eq!(g(GatewayReject::UnknownSymbol).fix_ord_rej_reason(), 1);
        assert_eq!(e(RejectReason::OutsidePriceBand).fix_ord_rej_reason(), 3);
        assert_eq!(e(RejectReason::OffLot).fix_ord_rej_reason(), 13);
        assert_eq!(g(GatewayReject::DuplicateClientId).fix_ord_rej_reason(), 6);
        assert_eq!(
            g(GatewayReject::InvalidTimeInForce).fix_ord_rej_reason(),
            11
        );
        assert_eq!(e(RejectReason::OffTick).fix_ord_rej_reason(), 99);
        assert_eq!(g(GatewayReject::OrderNotLive).fix_cxl_rej_reason(), 0);
        assert_eq!(e(RejectReason::UnknownOrder).fix_cxl_rej_reason(), 1);
        assert_eq!(g(GatewayReject::RequestPending).fix_cxl_rej_reason(), 3);
        assert_eq!(e(RejectReason::NotOrderOwner).fix_cxl_rej_reason(), 99);
    }

    #[test]
    fn cancel_reasons_map_one_to_one() {
        let mut seen = [false; CANCEL_SLOTS];
        for r in CancelReason::ALL {
            let i = cancel_index(*r);
            assert!(!seen[i], "{r:?} shares a slot");
            seen[i] = true;
            assert!(!cancel_text(*r).is_empty());
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(cancel_label(CancelReason::Disconnect), "disconnect");
    }
}

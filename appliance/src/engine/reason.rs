//! Reason codes carried by `Rejected`, `CancelRejected` and `Cancelled` events.
//!
//! Stable numeric values, partitioned by subsystem the way exchange-core partitions its result
//! codes: 1-19 order validation and risk, 20-29 capacity, 30-39 cancel/replace lookups. The
//! gateways map them onto FIX OrdRejReason/CxlRejReason and binary reject codes; the table with
//! every value lives in `docs/engine.md`. Never renumber a value: journals store them.

use super::types::{u8_enum, FromU8};

u8_enum! {
    /// Why a new order, a cancel, a replace or a mass cancel was refused.
    pub enum RejectReason {
        /// The instrument is not configured, or this engine does not own it.
        UnknownInstrument = 1,
        /// Quantity is zero.
        ZeroQuantity = 2,
        /// Quantity is not a multiple of the lot size.
        OffLot = 3,
        /// Quantity is above the instrument's maximum order quantity.
        QuantityOverMax = 4,
        /// Limit price is not a multiple of the tick size.
        OffTick = 5,
        /// Limit price is outside the instrument's price band.
        OutsidePriceBand = 6,
        /// Price x quantity is above the instrument's maximum notional.
        NotionalOverMax = 7,
        /// A post-only order would have taken liquidity.
        PostOnlyWouldTake = 8,
        /// Post-only was asked on a market, IOC or FOK order (it could never rest).
        PostOnlyNotResting = 9,
        /// The order id is already live in this engine.
        DuplicateOrderId = 10,
        /// Limit price is zero or negative (this engine trades positive prices only).
        InvalidPrice = 11,
        /// The order arena is full: no slot for an order that may rest.
        OrderCapacityExhausted = 20,
        /// The book side has no free price level for a new price.
        LevelCapacityExhausted = 21,
        /// Cancel/replace of an order that is not live (never existed, filled or cancelled).
        UnknownOrder = 30,
        /// Cancel/replace from a session that does not own the order.
        NotOrderOwner = 31,
    }
}

u8_enum! {
    /// Why a live order (or an accepted order's remainder) was cancelled.
    pub enum CancelReason {
        /// The owning session asked (Cancel command).
        User = 1,
        /// IOC or market order: the part that could not trade immediately.
        Unfilled = 2,
        /// FOK order that could not trade in full; the book was not touched.
        FokUnfillable = 3,
        /// Self-trade prevention.
        SelfTrade = 4,
        /// Mass cancel asked by a session.
        MassCancel = 5,
        /// Cancel on disconnect (mass cancel by session issued by the runtime).
        Disconnect = 6,
        /// Day order expired by the `ExpireDayOrders` command.
        DayExpired = 7,
        /// A replace asked for a total quantity at or below the quantity already filled.
        ReplacedBelowFilled = 8,
        /// The operator's kill switch (mass cancel by session issued by the gateway).
        KillSwitch = 9,
        /// The operator cancelled the session's orders from the console (mass cancel by
        /// session issued by the gateway; the session keeps trading).
        Operator = 10,
    }
}

u8_enum! {
    /// What happened to a price level.
    pub enum BookAction {
        /// A new price level appeared.
        Add = 1,
        /// An existing level changed quantity or order count.
        Update = 2,
        /// The level is gone (no orders left).
        Delete = 3,
    }
}

u8_enum! {
    /// Which orders a mass cancel selects.
    pub enum MassCancelScope {
        /// Every order of the owner (firm).
        ByOwner = 1,
        /// Every order entered by the session.
        BySession = 2,
    }
}

u8_enum! {
    /// Which request a `CancelRejected` answers (FIX CxlRejResponseTo).
    pub enum CancelKind {
        /// A Cancel command.
        Cancel = 1,
        /// A Replace command.
        Replace = 2,
    }
}

/// Decodes a reason-like enum from its stable value (used by the byte decoders).
#[inline]
pub(crate) fn decode<T: FromU8>(v: u8) -> Option<T> {
    T::from_u8(v)
}

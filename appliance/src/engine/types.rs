//! Identifiers and small enums shared by commands, events and the book.
//!
//! Every enum that crosses a ring or the journal is `#[repr(u8)]` with explicit, stable values:
//! the journal and the gateways depend on the numbers, so a value is never reused or renumbered.

/// Order id, assigned by the gateway and unique for the engine's lifetime. Layout: gateway
/// index in the top byte, the gateway's counter below ([`order_id`]). Any unique value works;
/// this layout is what keeps the id index compact and fast (see `index.rs`).
pub type OrderId = u64;

/// Bit where the gateway index starts in an [`OrderId`].
pub const GATEWAY_SHIFT: u32 = 56;
/// The counter part of an [`OrderId`].
pub const COUNTER_MASK: u64 = (1 << GATEWAY_SHIFT) - 1;

/// The order id a gateway assigns: `gateway << 56 | counter` (counter below 2^56).
#[inline]
pub const fn order_id(gateway: u8, counter: u64) -> OrderId {
    ((gateway as u64) << GATEWAY_SHIFT) | (counter & COUNTER_MASK)
}
/// Index into the configured instrument list, global across engines.
pub type InstrumentId = u32;
/// The client session (connection) that entered an order; events are routed by it.
/// Session 0 is reserved for the venue itself (operator and scheduled actions).
pub type SessionId = u32;
/// The firm / self-trade-prevention group an order belongs to.
pub type OwnerId = u32;
/// Price in the instrument's price units (finer than or equal to a tick).
pub type Price = i64;
/// Quantity in units (a multiple of the instrument's lot size).
pub type Qty = u64;
/// Sequence number the engine assigns to each inbound command, starting at 1.
pub type Seq = u64;
/// Execution id: `instrument << 40 | per-instrument trade counter` (see `docs/engine.md`).
pub type ExecId = u64;

/// Decodes a `#[repr(u8)]` enum from its stable numeric value.
pub(crate) trait FromU8: Sized {
    /// The value with this number, if any.
    fn from_u8(v: u8) -> Option<Self>;
}

macro_rules! u8_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $val:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        $vis enum $name { $($(#[$vmeta])* $variant = $val),+ }

        impl FromU8 for $name {
            #[inline]
            fn from_u8(v: u8) -> Option<Self> {
                match v { $($val => Some($name::$variant),)+ _ => None }
            }
        }

        impl $name {
            /// Every value, in numeric order (for tests and documentation tables).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }
    };
}
pub(crate) use u8_enum;

u8_enum! {
    /// Buy or sell.
    pub enum Side {
        /// Bid side.
        Buy = 1,
        /// Ask side.
        Sell = 2,
    }
}

impl Side {
    /// The other side: the side an order of this side trades against.
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

u8_enum! {
    /// Order type.
    pub enum OrdType {
        /// Trades at its limit price or better; may rest (Day/GTC).
        Limit = 1,
        /// Trades at any price; never rests (the remainder is cancelled).
        Market = 2,
    }
}

u8_enum! {
    /// Time in force.
    pub enum TimeInForce {
        /// Rests until cancelled or until the `ExpireDayOrders` command.
        Day = 0,
        /// Good till cancelled.
        Gtc = 1,
        /// Immediate or cancel: the unfilled remainder is cancelled.
        Ioc = 3,
        /// Fill or kill: trades in full immediately or is cancelled without touching the book.
        Fok = 4,
    }
}

impl TimeInForce {
    /// Whether an order with this time in force never rests on the book.
    #[inline]
    pub fn is_immediate(self) -> bool {
        matches!(self, TimeInForce::Ioc | TimeInForce::Fok)
    }
}

u8_enum! {
    /// Self-trade prevention mode, carried per order. The aggressor's mode decides.
    pub enum StpMode {
        /// Orders of the same owner trade with each other.
        None = 0,
        /// The resting order of the same owner is cancelled; the aggressor keeps matching.
        CancelResting = 1,
        /// The aggressor's remainder is cancelled; the resting order stays.
        CancelAggressing = 2,
        /// Both the resting order and the aggressor's remainder are cancelled.
        CancelBoth = 3,
    }
}

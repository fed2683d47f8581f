//! Commands: what the gateways (and the runtime) ask of the engine.
//!
//! Commands cross `rtrb` rings, so they are small `Copy` values with no heap and no lifetimes.
//! The journal stores them with [`Command::to_bytes`], a fixed-size little-endian record whose
//! layout is documented in `docs/engine.md`; [`Command::from_bytes`] validates every field and
//! returns an error instead of panicking on a corrupt record.

use super::reason::{decode, CancelReason, MassCancelScope};
use super::types::{
    InstrumentId, OrdType, OrderId, OwnerId, Price, Qty, SessionId, Side, StpMode, TimeInForce,
};

/// Size of one encoded command record.
pub const COMMAND_BYTES: usize = 48;

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Gateway-assigned id, unique for the engine's lifetime.
    pub order_id: OrderId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Session to route this order's events to.
    pub session: SessionId,
    /// Firm / STP group.
    pub owner: OwnerId,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Limit price in price units (ignored for market orders).
    pub price: Price,
    /// Quantity in units.
    pub qty: Qty,
    /// Reject instead of taking liquidity.
    pub post_only: bool,
    /// Self-trade prevention mode (filled by the gateway from the session's configuration).
    pub stp: StpMode,
}

/// Cancel one live order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    /// The order to cancel.
    pub order_id: OrderId,
    /// The session asking; must be the order's session.
    pub session: SessionId,
}

/// Cancel/replace one live order (FIX semantics: `qty` is the new total order quantity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replace {
    /// The order to change.
    pub order_id: OrderId,
    /// The session asking; must be the order's session.
    pub session: SessionId,
    /// New limit price, or `None` to keep the current one.
    pub price: Option<Price>,
    /// New total quantity (filled + leaves).
    pub qty: Qty,
}

/// Cancel every live order in a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassCancel {
    /// The session that asked (the completion event is routed to it).
    pub session: SessionId,
    /// The owner to cancel for (used by [`MassCancelScope::ByOwner`]).
    pub owner: OwnerId,
    /// Restrict to one instrument, or `None` for every instrument this engine owns.
    pub instrument: Option<InstrumentId>,
    /// By owner or by session.
    pub scope: MassCancelScope,
    /// Only orders of this side, or `None` for both.
    pub side: Option<Side>,
    /// [`CancelReason::MassCancel`] or [`CancelReason::Disconnect`].
    pub reason: CancelReason,
}

/// Cancel every resting Day order (end of the trading day, issued by the runtime's scheduler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpireDayOrders {
    /// Restrict to one instrument, or `None` for every instrument this engine owns.
    pub instrument: Option<InstrumentId>,
}

/// One inbound command. The engine gives each a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Enter an order.
    New(NewOrder),
    /// Cancel an order.
    Cancel(Cancel),
    /// Cancel/replace an order.
    Replace(Replace),
    /// Cancel many orders.
    MassCancel(MassCancel),
    /// Expire Day orders.
    ExpireDayOrders(ExpireDayOrders),
}

/// Why a command record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The first byte names no command.
    UnknownTag(u8),
    /// A field holds a value outside its enum (field offset in the record).
    BadField(u8),
}

const TAG_NEW: u8 = 1;
const TAG_CANCEL: u8 = 2;
const TAG_REPLACE: u8 = 3;
const TAG_MASS_CANCEL: u8 = 4;
const TAG_EXPIRE_DAY: u8 = 5;

#[inline]
fn put_u32(b: &mut [u8; COMMAND_BYTES], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
#[inline]
fn put_u64(b: &mut [u8; COMMAND_BYTES], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
#[inline]
fn get_u32(b: &[u8; COMMAND_BYTES], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn get_u64(b: &[u8; COMMAND_BYTES], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}
#[inline]
fn field<T: super::types::FromU8>(b: &[u8; COMMAND_BYTES], at: usize) -> Result<T, DecodeError> {
    decode(b[at]).ok_or(DecodeError::BadField(at as u8))
}
#[inline]
fn flag(b: &[u8; COMMAND_BYTES], at: usize) -> Result<bool, DecodeError> {
    match b[at] {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::BadField(at as u8)),
    }
}

impl Command {
    /// Encodes the command as a fixed 48-byte little-endian record (layout in `docs/engine.md`).
    /// Unused bytes are zero, so equal commands have equal bytes.
    pub fn to_bytes(&self) -> [u8; COMMAND_BYTES] {
        let mut b = [0u8; COMMAND_BYTES];
        match *self {
            Command::New(o) => {
                b[0] = TAG_NEW;
                b[1] = o.side as u8;
                b[2] = o.ord_type as u8;
                b[3] = o.tif as u8;
                b[4] = o.post_only as u8;
                b[5] = o.stp as u8;
                put_u64(&mut b, 8, o.order_id);
                put_u64(&mut b, 16, o.price as u64);
                put_u64(&mut b, 24, o.qty);
                put_u32(&mut b, 32, o.instrument);
                put_u32(&mut b, 36, o.session);
                put_u32(&mut b, 40, o.owner);
            }
            Command::Cancel(c) => {
                b[0] = TAG_CANCEL;
                put_u64(&mut b, 8, c.order_id);
                put_u32(&mut b, 36, c.session);
            }
            Command::Replace(r) => {
                b[0] = TAG_REPLACE;
                b[1] = r.price.is_some() as u8;
                put_u64(&mut b, 8, r.order_id);
                put_u64(&mut b, 16, r.price.unwrap_or(0) as u64);
                put_u64(&mut b, 24, r.qty);
                put_u32(&mut b, 36, r.session);
            }
            Command::MassCancel(m) => {
                b[0] = TAG_MASS_CANCEL;
                b[1] = m.instrument.is_some() as u8;
                b[2] = m.scope as u8;
                b[3] = m.reason as u8;
                // 0 = both sides: records written before the side existed read as both.
                b[4] = m.side.map_or(0, |s| s as u8);
                put_u32(&mut b, 32, m.instrument.unwrap_or(0));
                put_u32(&mut b, 36, m.session);
                put_u32(&mut b, 40, m.owner);
            }
            Command::ExpireDayOrders(e) => {
                b[0] = TAG_EXPIRE_DAY;
                b[1] = e.instrument.is_some() as u8;
                put_u32(&mut b, 32, e.instrument.unwrap_or(0));
            }
        }
        b
    }

    /// Decodes a record written by [`Command::to_bytes`], validating every enum and flag byte.
    pub fn from_bytes(b: &[u8; COMMAND_BYTES]) -> Result<Command, DecodeError> {
        Ok(match b[0] {
            TAG_NEW => Command::New(NewOrder {
                side: field(b, 1)?,
                ord_type: field(b, 2)?,
                tif: field(b, 3)?,
                post_only: flag(b, 4)?,
                stp: field(b, 5)?,
                order_id: get_u64(b, 8),
                price: get_u64(b, 16) as i64,
                qty: get_u64(b, 24),
                instrument: get_u32(b, 32),
                session: get_u32(b, 36),
                owner: get_u32(b, 40),
            }),
            TAG_CANCEL => Command::Cancel(Cancel {
                order_id: get_u64(b, 8),
                session: get_u32(b, 36),
            }),
            TAG_REPLACE => Command::Replace(Replace {
                order_id: get_u64(b, 8),
                price: flag(b, 1)?.then(|| get_u64(b, 16) as i64),
                qty: get_u64(b, 24),
                session: get_u32(b, 36),
            }),
            TAG_MASS_CANCEL => Command::MassCancel(MassCancel {
                instrument: flag(b, 1)?.then(|| get_u32(b, 32)),
                scope: field(b, 2)?,
                reason: field(b, 3)?,
                side: match b[4] {
                    0 => None,
                    _ => Some(field(b, 4)?),
                },
                session: get_u32(b, 36),
                owner: get_u32(b, 40),
            }),
            TAG_EXPIRE_DAY => Command::ExpireDayOrders(ExpireDayOrders {
                instrument: flag(b, 1)?.then(|| get_u32(b, 32)),
            }),
            t => return Err(DecodeError::UnknownTag(t)),
        })
    }
}

//! Typed, zero-copy views of the order messages a client sends. Each view is decoded in one
//! pass over the body of a message the session has already validated against the dictionary,
//! so what remains to check here is what this venue supports (sides, order types...).

use crate::codec::decode::Message;
use crate::codec::num::parse_qty;
use crate::session::BusinessRejectReason;
use crate::tags;

/// Why a valid FIX message cannot be turned into an order for this venue. Copy, tiny, no
/// text: the gateway maps it to an ExecutionReport reject or a BusinessMessageReject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppReject {
    /// A field this venue needs is missing (e.g. Price on a limit order).
    MissingField(u32),
    /// A value the dictionary allows but this venue does not support (e.g. OrdType=3).
    UnsupportedValue(u32),
    /// A value of the wrong form for this venue (e.g. a fractional or zero OrderQty).
    InvalidValue(u32),
    /// The message is not of the type the view decodes.
    WrongMsgType,
}

impl AppReject {
    /// The tag concerned (0 for `WrongMsgType`).
    pub fn tag(self) -> u32 {
        match self {
            AppReject::MissingField(t)
            | AppReject::UnsupportedValue(t)
            | AppReject::InvalidValue(t) => t,
            AppReject::WrongMsgType => 0,
        }
    }
    /// The BusinessRejectReason (380) to answer with when no ExecutionReport applies.
    pub fn business_reason(self) -> BusinessRejectReason {
        match self {
            AppReject::MissingField(_) => BusinessRejectReason::ConditionallyRequiredFieldMissing,
            AppReject::WrongMsgType => BusinessRejectReason::UnsupportedMessageType,
            _ => BusinessRejectReason::Other,
        }
    }
}

/// Side (54).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// 1
    Buy,
    /// 2
    Sell,
}

impl Side {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            Side::Buy => b'1',
            Side::Sell => b'2',
        }
    }
    fn parse(v: &[u8]) -> Result<Self, AppReject> {
        match v {
            b"1" => Ok(Side::Buy),
            b"2" => Ok(Side::Sell),
            _ => Err(AppReject::UnsupportedValue(tags::SIDE)),
        }
    }
}

/// OrdType (40).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdType {
    /// 1
    Market,
    /// 2
    Limit,
}

impl OrdType {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            OrdType::Market => b'1',
            OrdType::Limit => b'2',
        }
    }
    fn parse(v: &[u8]) -> Result<Self, AppReject> {
        match v {
            b"1" => Ok(OrdType::Market),
            b"2" => Ok(OrdType::Limit),
            _ => Err(AppReject::UnsupportedValue(tags::ORD_TYPE)),
        }
    }
}

/// TimeInForce (59).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInForce {
    /// 0 (the default when absent)
    Day,
    /// 1
    GoodTillCancel,
    /// 3
    ImmediateOrCancel,
    /// 4
    FillOrKill,
}

impl TimeInForce {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            TimeInForce::Day => b'0',
            TimeInForce::GoodTillCancel => b'1',
            TimeInForce::ImmediateOrCancel => b'3',
            TimeInForce::FillOrKill => b'4',
        }
    }
    fn parse(v: &[u8]) -> Result<Self, AppReject> {
        match v {
            b"0" => Ok(TimeInForce::Day),
            b"1" => Ok(TimeInForce::GoodTillCancel),
            b"3" => Ok(TimeInForce::ImmediateOrCancel),
            b"4" => Ok(TimeInForce::FillOrKill),
            _ => Err(AppReject::UnsupportedValue(tags::TIME_IN_FORCE)),
        }
    }
}

fn qty(v: &[u8], tag: u32) -> Result<u64, AppReject> {
    match parse_qty(v) {
        Ok(0) | Err(_) => Err(AppReject::InvalidValue(tag)),
        Ok(q) => Ok(q),
    }
}

fn need<T>(v: Option<T>, tag: u32) -> Result<T, AppReject> {
    v.ok_or(AppReject::MissingField(tag))
}

fn check_type(msg: &Message<'_>, t: &[u8]) -> Result<(), AppReject> {
    if msg.msg_type() == t {
        Ok(())
    } else {
        Err(AppReject::WrongMsgType)
    }
}

/// The order fields NewOrderSingle and OrderCancelReplaceRequest share, read in one pass over
/// the body; required ones stay `Option` so each view reports the first missing one in its
/// own field order.
struct OrderFields<'a> {
    orig_cl_ord_id: Option<&'a [u8]>,
    cl_ord_id: Option<&'a [u8]>,
    order_id: Option<&'a [u8]>,
    account: Option<&'a [u8]>,
    symbol: Option<&'a [u8]>,
    side: Option<Side>,
    order_qty: Option<u64>,
    ord_type: OrdType,
    price: Option<&'a [u8]>,
    time_in_force: Option<TimeInForce>,
    transact_time: Option<&'a [u8]>,
}

impl<'a> OrderFields<'a> {
    /// Reads the fields, checks OrdType is present and a limit order has a Price.
    fn scan(msg: &Message<'a>) -> Result<Self, AppReject> {
        let (mut orig, mut cl, mut oid, mut acct, mut sym, mut side) =
            (None, None, None, None, None, None);
        let (mut q, mut ot, mut px, mut tif, mut tt) = (None, None, None, None, None);
        for f in msg.body_fields() {
            let v = msg.value(f);
            match f.tag {
                tags::ORIG_CL_ORD_ID => orig = Some(v),
                tags::CL_ORD_ID => cl = Some(v),
                tags::ORDER_ID => oid = Some(v),
                tags::ACCOUNT => acct = Some(v),
                tags::SYMBOL => sym = Some(v),
                tags::SIDE => side = Some(Side::parse(v)?),
                tags::ORDER_QTY => q = Some(qty(v, tags::ORDER_QTY)?),
                tags::ORD_TYPE => ot = Some(OrdType::parse(v)?),
                tags::PRICE => px = Some(v),
                tags::TIME_IN_FORCE => tif = Some(TimeInForce::parse(v)?),
                tags::TRANSACT_TIME => tt = Some(v),
                _ => {}
            }
        }
        let ord_type = need(ot, tags::ORD_TYPE)?;
        if ord_type == OrdType::Limit && px.is_none() {
            return Err(AppReject::MissingField(tags::PRICE));
        }
        Ok(OrderFields {
            orig_cl_ord_id: orig,
            cl_ord_id: cl,
            order_id: oid,
            account: acct,
            symbol: sym,
            side,
            order_qty: q,
            ord_type,
            price: px,
            time_in_force: tif,
            transact_time: tt,
        })
    }
}

/// NewOrderSingle (35=D).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrderSingle<'a> {
    /// ClOrdID (11).
    pub cl_ord_id: &'a [u8],
    /// Account (1).
    pub account: Option<&'a [u8]>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// OrderQty (38), a whole positive number.
    pub order_qty: u64,
    /// OrdType (40).
    pub ord_type: OrdType,
    /// Price (44) as sent; present on every limit order. Convert with
    /// [`super::price::limit_price`] once the instrument's scale and tick are known.
    pub price: Option<&'a [u8]>,
    /// TimeInForce (59), Day when absent.
    pub time_in_force: TimeInForce,
    /// TransactTime (60) as sent.
    pub transact_time: &'a [u8],
}

impl<'a> NewOrderSingle<'a> {
    /// Decodes the view from a validated message.
    pub fn decode(msg: &Message<'a>) -> Result<Self, AppReject> {
        check_type(msg, b"D")?;
        let f = OrderFields::scan(msg)?;
        Ok(NewOrderSingle {
            cl_ord_id: need(f.cl_ord_id, tags::CL_ORD_ID)?,
            account: f.account,
            symbol: need(f.symbol, tags::SYMBOL)?,
            side: need(f.side, tags::SIDE)?,
            order_qty: need(f.order_qty, tags::ORDER_QTY)?,
            ord_type: f.ord_type,
            price: f.price,
            time_in_force: f.time_in_force.unwrap_or(TimeInForce::Day),
            transact_time: need(f.transact_time, tags::TRANSACT_TIME)?,
        })
    }
}

/// OrderCancelRequest (35=F).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCancelRequest<'a> {
    /// OrigClOrdID (41): the order to cancel.
    pub orig_cl_ord_id: &'a [u8],
    /// ClOrdID (11) of this request.
    pub cl_ord_id: &'a [u8],
    /// OrderID (37), if the client sent it.
    pub order_id: Option<&'a [u8]>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// TransactTime (60) as sent.
    pub transact_time: &'a [u8],
}

impl<'a> OrderCancelRequest<'a> {
    /// Decodes the view from a validated message.
    pub fn decode(msg: &Message<'a>) -> Result<Self, AppReject> {
        check_type(msg, b"F")?;
        let (mut orig, mut cl, mut oid, mut sym, mut side, mut tt) =
            (None, None, None, None, None, None);
        for f in msg.body_fields() {
            let v = msg.value(f);
            match f.tag {
                tags::ORIG_CL_ORD_ID => orig = Some(v),
                tags::CL_ORD_ID => cl = Some(v),
                tags::ORDER_ID => oid = Some(v),
                tags::SYMBOL => sym = Some(v),
                tags::SIDE => side = Some(Side::parse(v)?),
                tags::TRANSACT_TIME => tt = Some(v),
                _ => {}
            }
        }
        Ok(OrderCancelRequest {
            orig_cl_ord_id: need(orig, tags::ORIG_CL_ORD_ID)?,
            cl_ord_id: need(cl, tags::CL_ORD_ID)?,
            order_id: oid,
            symbol: need(sym, tags::SYMBOL)?,
            side: need(side, tags::SIDE)?,
            transact_time: need(tt, tags::TRANSACT_TIME)?,
        })
    }
}

/// OrderCancelReplaceRequest (35=G).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCancelReplaceRequest<'a> {
    /// OrigClOrdID (41): the order to replace.
    pub orig_cl_ord_id: &'a [u8],
    /// ClOrdID (11) of the replacement.
    pub cl_ord_id: &'a [u8],
    /// OrderID (37), if sent.
    pub order_id: Option<&'a [u8]>,
    /// Account (1).
    pub account: Option<&'a [u8]>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// New OrderQty (38).
    pub order_qty: u64,
    /// OrdType (40).
    pub ord_type: OrdType,
    /// New Price (44) as sent; present on limit orders.
    pub price: Option<&'a [u8]>,
    /// TimeInForce (59) if sent (absent: the order keeps its own).
    pub time_in_force: Option<TimeInForce>,
    /// TransactTime (60) as sent.
    pub transact_time: &'a [u8],
}

impl<'a> OrderCancelReplaceRequest<'a> {
    /// Decodes the view from a validated message.
    pub fn decode(msg: &Message<'a>) -> Result<Self, AppReject> {
        check_type(msg, b"G")?;
        let f = OrderFields::scan(msg)?;
        Ok(OrderCancelReplaceRequest {
            orig_cl_ord_id: need(f.orig_cl_ord_id, tags::ORIG_CL_ORD_ID)?,
            cl_ord_id: need(f.cl_ord_id, tags::CL_ORD_ID)?,
            order_id: f.order_id,
            account: f.account,
            symbol: need(f.symbol, tags::SYMBOL)?,
            side: need(f.side, tags::SIDE)?,
            order_qty: need(f.order_qty, tags::ORDER_QTY)?,
            ord_type: f.ord_type,
            price: f.price,
            time_in_force: f.time_in_force,
            transact_time: need(f.transact_time, tags::TRANSACT_TIME)?,
        })
    }
}

/// Which orders an OrderMassCancelRequest covers (MassCancelRequestType, 530).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MassCancelScope {
    /// 1: every order of the session in one Symbol.
    Security,
    /// 7: every order of the session.
    All,
}

impl MassCancelScope {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            MassCancelScope::Security => b'1',
            MassCancelScope::All => b'7',
        }
    }
}

/// OrderMassCancelRequest (35=q).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderMassCancelRequest<'a> {
    /// ClOrdID (11) of the request.
    pub cl_ord_id: &'a [u8],
    /// MassCancelRequestType (530).
    pub scope: MassCancelScope,
    /// Symbol (55), required for [`MassCancelScope::Security`].
    pub symbol: Option<&'a [u8]>,
    /// Side (54): only this side when present.
    pub side: Option<Side>,
    /// TransactTime (60) as sent.
    pub transact_time: &'a [u8],
}

impl<'a> OrderMassCancelRequest<'a> {
    /// Decodes the view from a validated message.
    pub fn decode(msg: &Message<'a>) -> Result<Self, AppReject> {
        check_type(msg, b"q")?;
        let (mut cl, mut scope, mut sym, mut side, mut tt) = (None, None, None, None, None);
        for f in msg.body_fields() {
            let v = msg.value(f);
            match f.tag {
                tags::CL_ORD_ID => cl = Some(v),
                tags::MASS_CANCEL_REQUEST_TYPE => {
                    scope = Some(match v {
                        b"1" => MassCancelScope::Security,
                        b"7" => MassCancelScope::All,
                        _ => {
                            return Err(AppReject::UnsupportedValue(tags::MASS_CANCEL_REQUEST_TYPE))
                        }
                    })
                }
                tags::SYMBOL => sym = Some(v),
                tags::SIDE => side = Some(Side::parse(v)?),
                tags::TRANSACT_TIME => tt = Some(v),
                _ => {}
            }
        }
        let scope = need(scope, tags::MASS_CANCEL_REQUEST_TYPE)?;
        if scope == MassCancelScope::Security && sym.is_none() {
            return Err(AppReject::MissingField(tags::SYMBOL));
        }
        Ok(OrderMassCancelRequest {
            cl_ord_id: need(cl, tags::CL_ORD_ID)?,
            scope,
            symbol: sym,
            side,
            transact_time: need(tt, tags::TRANSACT_TIME)?,
        })
    }
}

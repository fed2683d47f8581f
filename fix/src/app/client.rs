//! The client side of order entry, for initiators (the bench's load generator, test
//! clients): encoders of the order messages and a typed view of the ExecutionReport. Same
//! zero-allocation rules as the venue side, so a pipelining initiator costs what the acceptor
//! costs.

use super::inbound::{AppReject, OrdType, Side, TimeInForce};
use super::outbound::Id;
use crate::codec::decode::Message;
use crate::codec::encode::Encoder;
use crate::codec::num::parse_qty;
use crate::codec::time::TimePrecision;
use crate::session::OutboundMessage;
use crate::tags;

/// NewOrderSingle (35=D) to send.
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    /// ClOrdID (11).
    pub cl_ord_id: Id<'a>,
    /// Account (1).
    pub account: Option<&'a [u8]>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// OrderQty (38).
    pub order_qty: u64,
    /// OrdType (40).
    pub ord_type: OrdType,
    /// Price (44) in units at `price_scale` (limit orders).
    pub price: Option<i64>,
    /// Implied decimals of `price`.
    pub price_scale: u8,
    /// TimeInForce (59); omitted for Day.
    pub time_in_force: TimeInForce,
    /// TransactTime (60), UTC ns.
    pub transact_time: u64,
}

impl OutboundMessage for NewOrder<'_> {
    fn msg_type(&self) -> &[u8] {
        b"D"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        if let Some(a) = self.account {
            e.field(tags::ACCOUNT, a);
        }
        write_id(e, tags::CL_ORD_ID, self.cl_ord_id);
        e.field_char(21, b'1');
        e.field_u64(tags::ORDER_QTY, self.order_qty);
        e.field_char(tags::ORD_TYPE, self.ord_type.as_byte());
        if let Some(p) = self.price {
            e.field_price(tags::PRICE, p, self.price_scale);
        }
        e.field_char(tags::SIDE, self.side.as_byte());
        e.field(tags::SYMBOL, self.symbol);
        if self.time_in_force != TimeInForce::Day {
            e.field_char(tags::TIME_IN_FORCE, self.time_in_force.as_byte());
        }
        e.field_timestamp(
            tags::TRANSACT_TIME,
            self.transact_time,
            TimePrecision::Micros,
        );
    }
}

fn write_id(e: &mut Encoder<'_>, tag: u32, id: Id<'_>) {
    match id {
        Id::Num(n) => e.field_u64(tag, n),
        Id::Text(t) => e.field(tag, t),
    }
}

/// OrderCancelRequest (35=F) to send.
#[derive(Debug, Clone, Copy)]
pub struct CancelOrder<'a> {
    /// OrigClOrdID (41): the order to cancel.
    pub orig_cl_ord_id: Id<'a>,
    /// ClOrdID (11) of this request.
    pub cl_ord_id: Id<'a>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// TransactTime (60), UTC ns.
    pub transact_time: u64,
}

impl OutboundMessage for CancelOrder<'_> {
    fn msg_type(&self) -> &[u8] {
        b"F"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        write_id(e, tags::CL_ORD_ID, self.cl_ord_id);
        write_id(e, tags::ORIG_CL_ORD_ID, self.orig_cl_ord_id);
        e.field_char(tags::SIDE, self.side.as_byte());
        e.field(tags::SYMBOL, self.symbol);
        e.field_timestamp(
            tags::TRANSACT_TIME,
            self.transact_time,
            TimePrecision::Micros,
        );
    }
}

/// OrderCancelReplaceRequest (35=G) to send.
#[derive(Debug, Clone, Copy)]
pub struct ReplaceOrder<'a> {
    /// OrigClOrdID (41): the order to replace.
    pub orig_cl_ord_id: Id<'a>,
    /// ClOrdID (11) of the replacement.
    pub cl_ord_id: Id<'a>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// New OrderQty (38).
    pub order_qty: u64,
    /// OrdType (40).
    pub ord_type: OrdType,
    /// New Price (44) in units at `price_scale`.
    pub price: Option<i64>,
    /// Implied decimals of `price`.
    pub price_scale: u8,
    /// TransactTime (60), UTC ns.
    pub transact_time: u64,
}

impl OutboundMessage for ReplaceOrder<'_> {
    fn msg_type(&self) -> &[u8] {
        b"G"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        write_id(e, tags::CL_ORD_ID, self.cl_ord_id);
        e.field_char(21, b'1');
        e.field_u64(tags::ORDER_QTY, self.order_qty);
        e.field_char(tags::ORD_TYPE, self.ord_type.as_byte());
        write_id(e, tags::ORIG_CL_ORD_ID, self.orig_cl_ord_id);
        if let Some(p) = self.price {
            e.field_price(tags::PRICE, p, self.price_scale);
        }
        e.field_char(tags::SIDE, self.side.as_byte());
        e.field(tags::SYMBOL, self.symbol);
        e.field_timestamp(
            tags::TRANSACT_TIME,
            self.transact_time,
            TimePrecision::Micros,
        );
    }
}

/// OrderMassCancelRequest (35=q) to send: every order of the session (`symbol: None`) or in
/// one Symbol.
#[derive(Debug, Clone, Copy)]
pub struct MassCancel<'a> {
    /// ClOrdID (11).
    pub cl_ord_id: Id<'a>,
    /// Symbol (55): `Some` for MassCancelRequestType 1, `None` for 7.
    pub symbol: Option<&'a [u8]>,
    /// Side (54): only this side when `Some`.
    pub side: Option<Side>,
    /// TransactTime (60), UTC ns.
    pub transact_time: u64,
}

impl OutboundMessage for MassCancel<'_> {
    fn msg_type(&self) -> &[u8] {
        b"q"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        write_id(e, tags::CL_ORD_ID, self.cl_ord_id);
        match self.symbol {
            Some(s) => {
                e.field(tags::SYMBOL, s);
                e.field_char(tags::MASS_CANCEL_REQUEST_TYPE, b'1');
            }
            None => e.field_char(tags::MASS_CANCEL_REQUEST_TYPE, b'7'),
        }
        if let Some(side) = self.side {
            e.field_char(tags::SIDE, side.as_byte());
        }
        e.field_timestamp(
            tags::TRANSACT_TIME,
            self.transact_time,
            TimePrecision::Micros,
        );
    }
}

/// An ExecutionReport (35=8) as a client reads it. Prices stay text: convert with
/// [`super::price::to_units`] at the instrument's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionReportView<'a> {
    /// OrderID (37).
    pub order_id: &'a [u8],
    /// ClOrdID (11).
    pub cl_ord_id: &'a [u8],
    /// OrigClOrdID (41).
    pub orig_cl_ord_id: Option<&'a [u8]>,
    /// ExecID (17).
    pub exec_id: &'a [u8],
    /// ExecType (150), the raw byte.
    pub exec_type: u8,
    /// OrdStatus (39), the raw byte.
    pub ord_status: u8,
    /// Side (54).
    pub side: Side,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// LastQty (32).
    pub last_qty: Option<u64>,
    /// LastPx (31), as sent.
    pub last_px: Option<&'a [u8]>,
    /// LeavesQty (151).
    pub leaves_qty: u64,
    /// CumQty (14).
    pub cum_qty: u64,
    /// AvgPx (6), as sent.
    pub avg_px: &'a [u8],
    /// OrdRejReason (103), as sent.
    pub ord_rej_reason: Option<&'a [u8]>,
    /// Text (58).
    pub text: Option<&'a [u8]>,
}

impl<'a> ExecutionReportView<'a> {
    /// Decodes the view from a validated message.
    pub fn decode(msg: &Message<'a>) -> Result<Self, AppReject> {
        if msg.msg_type() != b"8" {
            return Err(AppReject::WrongMsgType);
        }
        let mut v = ExecutionReportView {
            order_id: b"",
            cl_ord_id: b"",
            orig_cl_ord_id: None,
            exec_id: b"",
            exec_type: 0,
            ord_status: 0,
            side: Side::Buy,
            symbol: b"",
            last_qty: None,
            last_px: None,
            leaves_qty: 0,
            cum_qty: 0,
            avg_px: b"",
            ord_rej_reason: None,
            text: None,
        };
        let mut seen = 0u16;
        let qty = |x: &[u8], tag| parse_qty(x).map_err(|_| AppReject::InvalidValue(tag));
        for f in msg.body_fields() {
            let x = msg.value(f);
            match f.tag {
                tags::ORDER_ID => (v.order_id, seen) = (x, seen | 1),
                tags::CL_ORD_ID => (v.cl_ord_id, seen) = (x, seen | 2),
                tags::EXEC_ID => (v.exec_id, seen) = (x, seen | 4),
                tags::EXEC_TYPE => (v.exec_type, seen) = (x[0], seen | 8),
                tags::ORD_STATUS => (v.ord_status, seen) = (x[0], seen | 16),
                tags::SIDE => {
                    v.side = match x {
                        b"1" => Side::Buy,
                        b"2" => Side::Sell,
                        _ => return Err(AppReject::UnsupportedValue(tags::SIDE)),
                    };
                    seen |= 32;
                }
                tags::SYMBOL => (v.symbol, seen) = (x, seen | 64),
                tags::LEAVES_QTY => (v.leaves_qty, seen) = (qty(x, tags::LEAVES_QTY)?, seen | 128),
                tags::CUM_QTY => (v.cum_qty, seen) = (qty(x, tags::CUM_QTY)?, seen | 256),
                tags::AVG_PX => (v.avg_px, seen) = (x, seen | 512),
                tags::ORIG_CL_ORD_ID => v.orig_cl_ord_id = Some(x),
                tags::LAST_QTY => v.last_qty = Some(qty(x, tags::LAST_QTY)?),
                tags::LAST_PX => v.last_px = Some(x),
                tags::ORD_REJ_REASON => v.ord_rej_reason = Some(x),
                tags::TEXT => v.text = Some(x),
                _ => {}
            }
        }
        const NEED: [(u16, u32); 10] = [
            (1, tags::ORDER_ID),
            (2, tags::CL_ORD_ID),
            (4, tags::EXEC_ID),
            (8, tags::EXEC_TYPE),
            (16, tags::ORD_STATUS),
            (32, tags::SIDE),
            (64, tags::SYMBOL),
            (128, tags::LEAVES_QTY),
            (256, tags::CUM_QTY),
            (512, tags::AVG_PX),
        ];
        for (bit, tag) in NEED {
            if seen & bit == 0 {
                return Err(AppReject::MissingField(tag));
            }
        }
        Ok(v)
    }
}

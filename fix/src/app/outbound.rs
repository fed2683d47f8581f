//! Encoders of the reports the venue sends. Each is a plain struct of borrowed fields and
//! integers implementing [`OutboundMessage`]; the session adds header and trailer. Field sets
//! follow what QuickFIX's FIX 4.4 dictionary requires, because validating clients reject a
//! report that lacks any of them (ExecutionReport: 37, 17, 150, 39, 54, 151, 14, 6, 55).

use super::inbound::{OrdType, Side, TimeInForce};
use crate::codec::encode::Encoder;
use crate::codec::time::TimePrecision;
use crate::session::{BusinessRejectReason, OutboundMessage};
use crate::tags;

/// An identifier the venue assigns (OrderID, ExecID): a number formatted without allocation,
/// or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    /// Written in decimal.
    Num(u64),
    /// Written as is.
    Text(&'a [u8]),
}

impl Id<'_> {
    #[inline]
    fn write(&self, e: &mut Encoder<'_>, tag: u32) {
        match *self {
            Id::Num(n) => e.field_u64(tag, n),
            Id::Text(t) => e.field(tag, t),
        }
    }
}

/// ExecType (150) for FIX 4.4. Fills are `Trade` (F): FIX 4.4 removed ExecType 1/2 and
/// QuickFIX rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecType {
    /// 0
    New,
    /// 4
    Canceled,
    /// 5
    Replaced,
    /// 8
    Rejected,
    /// C
    Expired,
    /// F
    Trade,
    /// I
    OrderStatus,
}

impl ExecType {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            ExecType::New => b'0',
            ExecType::Canceled => b'4',
            ExecType::Replaced => b'5',
            ExecType::Rejected => b'8',
            ExecType::Expired => b'C',
            ExecType::Trade => b'F',
            ExecType::OrderStatus => b'I',
        }
    }
}

/// OrdStatus (39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdStatus {
    /// 0
    New,
    /// 1
    PartiallyFilled,
    /// 2
    Filled,
    /// 4
    Canceled,
    /// 5
    Replaced,
    /// 8
    Rejected,
    /// C
    Expired,
}

impl OrdStatus {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            OrdStatus::New => b'0',
            OrdStatus::PartiallyFilled => b'1',
            OrdStatus::Filled => b'2',
            OrdStatus::Canceled => b'4',
            OrdStatus::Replaced => b'5',
            OrdStatus::Rejected => b'8',
            OrdStatus::Expired => b'C',
        }
    }
}

/// ExecutionReport (35=8): acks, fills (both sides of every trade), cancels, replaces, rejects.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionReport<'a> {
    /// OrderID (37); `Text(b"NONE")` for a rejected new order.
    pub order_id: Id<'a>,
    /// ClOrdID (11).
    pub cl_ord_id: &'a [u8],
    /// OrigClOrdID (41), on cancel and replace reports.
    pub orig_cl_ord_id: Option<&'a [u8]>,
    /// ExecID (17).
    pub exec_id: Id<'a>,
    /// ExecType (150).
    pub exec_type: ExecType,
    /// OrdStatus (39).
    pub ord_status: OrdStatus,
    /// OrdRejReason (103), on rejects (e.g. 99 Other; 103 is not a FIX value, see the rules of
    /// engagement for the venue's codes).
    pub ord_rej_reason: Option<u32>,
    /// Account (1).
    pub account: Option<&'a [u8]>,
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Side (54).
    pub side: Side,
    /// OrderQty (38).
    pub order_qty: Option<u64>,
    /// OrdType (40).
    pub ord_type: Option<OrdType>,
    /// Price (44) in units at `price_scale`.
    pub price: Option<i64>,
    /// TimeInForce (59).
    pub time_in_force: Option<TimeInForce>,
    /// LastQty (32), on trades.
    pub last_qty: Option<u64>,
    /// LastPx (31) in units at `price_scale`, on trades.
    pub last_px: Option<i64>,
    /// LeavesQty (151).
    pub leaves_qty: u64,
    /// CumQty (14).
    pub cum_qty: u64,
    /// AvgPx (6) as a fixed-point value with `avg_px_decimals` decimals (computed by the
    /// gateway, e.g. with extra precision; never a float).
    pub avg_px: i64,
    /// Decimals of `avg_px`, written exactly (AvgPx is always present).
    pub avg_px_decimals: u8,
    /// Implied decimals of `price` and `last_px`.
    pub price_scale: u8,
    /// TransactTime (60), UTC ns.
    pub transact_time: u64,
    /// Precision of TransactTime.
    pub time_precision: TimePrecision,
    /// Text (58), e.g. a reject reason.
    pub text: Option<&'a [u8]>,
    /// CopyMsgIndicator (797=Y): a drop copy of a report sent to another session.
    pub copy_msg_indicator: bool,
}

impl OutboundMessage for ExecutionReport<'_> {
    fn msg_type(&self) -> &[u8] {
        b"8"
    }
    #[inline]
    fn write_body(&self, e: &mut Encoder<'_>) {
        self.order_id.write(e, tags::ORDER_ID);
        e.field(tags::CL_ORD_ID, self.cl_ord_id);
        if let Some(v) = self.orig_cl_ord_id {
            e.field(tags::ORIG_CL_ORD_ID, v);
        }
        self.exec_id.write(e, tags::EXEC_ID);
        e.field_char(tags::EXEC_TYPE, self.exec_type.as_byte());
        e.field_char(tags::ORD_STATUS, self.ord_status.as_byte());
        if let Some(r) = self.ord_rej_reason {
            e.field_u64(tags::ORD_REJ_REASON, r as u64);
        }
        if let Some(a) = self.account {
            e.field(tags::ACCOUNT, a);
        }
        e.field(tags::SYMBOL, self.symbol);
        e.field_char(tags::SIDE, self.side.as_byte());
        if let Some(q) = self.order_qty {
            e.field_u64(tags::ORDER_QTY, q);
        }
        if let Some(t) = self.ord_type {
            e.field_char(tags::ORD_TYPE, t.as_byte());
        }
        if let Some(p) = self.price {
            e.field_price(tags::PRICE, p, self.price_scale);
        }
        if let Some(t) = self.time_in_force {
            e.field_char(tags::TIME_IN_FORCE, t.as_byte());
        }
        if let Some(q) = self.last_qty {
            e.field_u64(tags::LAST_QTY, q);
        }
        if let Some(p) = self.last_px {
            e.field_price(tags::LAST_PX, p, self.price_scale);
        }
        e.field_u64(tags::LEAVES_QTY, self.leaves_qty);
        e.field_u64(tags::CUM_QTY, self.cum_qty);
        e.field_fixed(tags::AVG_PX, self.avg_px, self.avg_px_decimals);
        e.field_timestamp(tags::TRANSACT_TIME, self.transact_time, self.time_precision);
        if let Some(t) = self.text {
            e.field(tags::TEXT, t);
        }
        if self.copy_msg_indicator {
            e.field_char(tags::COPY_MSG_INDICATOR, b'Y');
        }
    }
}

/// CxlRejResponseTo (434).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CxlRejResponseTo {
    /// 1: answering an OrderCancelRequest.
    Cancel,
    /// 2: answering an OrderCancelReplaceRequest.
    Replace,
}

/// OrderCancelReject (35=9).
#[derive(Debug, Clone, Copy)]
pub struct OrderCancelReject<'a> {
    /// OrderID (37); `Text(b"NONE")` when the order is unknown.
    pub order_id: Id<'a>,
    /// ClOrdID (11) of the rejected request.
    pub cl_ord_id: &'a [u8],
    /// OrigClOrdID (41) of the rejected request.
    pub orig_cl_ord_id: &'a [u8],
    /// OrdStatus (39) of the order (Rejected when unknown).
    pub ord_status: OrdStatus,
    /// CxlRejResponseTo (434).
    pub response_to: CxlRejResponseTo,
    /// CxlRejReason (102): 0 too late, 1 unknown order, 3 pending, 99 other.
    pub cxl_rej_reason: Option<u32>,
    /// TransactTime (60), UTC ns.
    pub transact_time: Option<u64>,
    /// Text (58).
    pub text: Option<&'a [u8]>,
}

impl OutboundMessage for OrderCancelReject<'_> {
    fn msg_type(&self) -> &[u8] {
        b"9"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        self.order_id.write(e, tags::ORDER_ID);
        e.field(tags::CL_ORD_ID, self.cl_ord_id);
        e.field(tags::ORIG_CL_ORD_ID, self.orig_cl_ord_id);
        e.field_char(tags::ORD_STATUS, self.ord_status.as_byte());
        e.field_char(
            tags::CXL_REJ_RESPONSE_TO,
            match self.response_to {
                CxlRejResponseTo::Cancel => b'1',
                CxlRejResponseTo::Replace => b'2',
            },
        );
        if let Some(r) = self.cxl_rej_reason {
            e.field_u64(tags::CXL_REJ_REASON, r as u64);
        }
        if let Some(t) = self.transact_time {
            e.field_timestamp(tags::TRANSACT_TIME, t, TimePrecision::Millis);
        }
        if let Some(t) = self.text {
            e.field(tags::TEXT, t);
        }
    }
}

/// OrderMassCancelReport (35=r).
#[derive(Debug, Clone, Copy)]
pub struct OrderMassCancelReport<'a> {
    /// ClOrdID (11) of the request.
    pub cl_ord_id: Option<&'a [u8]>,
    /// OrderID (37): an identifier of this mass cancel.
    pub order_id: Id<'a>,
    /// MassCancelRequestType (530) of the request, echoed.
    pub request_type: u8,
    /// MassCancelResponse (531): `b'0'` rejected, otherwise the scope that was cancelled.
    pub response: u8,
    /// MassCancelRejectReason (532) when rejected.
    pub reject_reason: Option<u32>,
    /// TotalAffectedOrders (533).
    pub total_affected_orders: Option<u64>,
    /// Symbol (55), for a by-security request.
    pub symbol: Option<&'a [u8]>,
    /// Side (54), when the request named one.
    pub side: Option<Side>,
    /// TransactTime (60), UTC ns.
    pub transact_time: Option<u64>,
    /// Text (58).
    pub text: Option<&'a [u8]>,
}

impl OutboundMessage for OrderMassCancelReport<'_> {
    fn msg_type(&self) -> &[u8] {
        b"r"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        if let Some(c) = self.cl_ord_id {
            e.field(tags::CL_ORD_ID, c);
        }
        self.order_id.write(e, tags::ORDER_ID);
        e.field_char(tags::MASS_CANCEL_REQUEST_TYPE, self.request_type);
        e.field_char(tags::MASS_CANCEL_RESPONSE, self.response);
        if let Some(r) = self.reject_reason {
            e.field_u64(tags::MASS_CANCEL_REJECT_REASON, r as u64);
        }
        if let Some(n) = self.total_affected_orders {
            e.field_u64(tags::TOTAL_AFFECTED_ORDERS, n);
        }
        if let Some(s) = self.symbol {
            e.field(tags::SYMBOL, s);
        }
        if let Some(s) = self.side {
            e.field_char(tags::SIDE, s.as_byte());
        }
        if let Some(t) = self.transact_time {
            e.field_timestamp(tags::TRANSACT_TIME, t, TimePrecision::Millis);
        }
        if let Some(t) = self.text {
            e.field(tags::TEXT, t);
        }
    }
}

/// BusinessMessageReject (35=j) for callers that build it themselves; most use
/// [`crate::Session::send_business_reject`].
#[derive(Debug, Clone, Copy)]
pub struct BusinessMessageReject<'a> {
    /// RefSeqNum (45).
    pub ref_seq_num: Option<u64>,
    /// RefMsgType (372).
    pub ref_msg_type: &'a [u8],
    /// BusinessRejectRefID (379), e.g. the ClOrdID.
    pub ref_id: Option<&'a [u8]>,
    /// BusinessRejectReason (380).
    pub reason: BusinessRejectReason,
    /// Text (58).
    pub text: Option<&'a [u8]>,
}

impl OutboundMessage for BusinessMessageReject<'_> {
    fn msg_type(&self) -> &[u8] {
        b"j"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        if let Some(s) = self.ref_seq_num {
            e.field_u64(tags::REF_SEQ_NUM, s);
        }
        if let Some(t) = self.text {
            e.field(tags::TEXT, t);
        }
        e.field(tags::REF_MSG_TYPE, self.ref_msg_type);
        if let Some(r) = self.ref_id {
            e.field(tags::BUSINESS_REJECT_REF_ID, r);
        }
        e.field_u64(tags::BUSINESS_REJECT_REASON, self.reason.code() as u64);
    }
}

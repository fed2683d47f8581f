//! FIX 4.4 on top of the gateway core, through the `fix` crate's session layer.
//!
//! A new connection is unbound until its first message: that must be a Logon whose CompIDs
//! name a configured session (our SenderCompID in its 56, theirs in 49); otherwise the
//! connection is dropped without an answer, as QuickFIX does. A Logon for a session that is
//! already connected is dropped the same way and leaves the first connection untouched.
//! Once bound, bytes go through [`fix::Session::on_input`], which answers every session-level
//! matter itself (heartbeats, test requests, gaps, resends, rejects, logout) and hands up
//! validated application messages: D, F, G and q become engine commands; other application
//! types get a BusinessMessageReject (380=3).
//!
//! Replies are sent through the session even while it is disconnected: they are numbered and
//! stored, and the client gets them with a ResendRequest after logging on again.

use super::core::{ConnId, ConnState, Gateway, GatewayReject, OrderRequest, Reply};
use super::orders::{ClientId, OrderInfo, OrderState};
use crate::config::{FixSection, FixSessionConfig};
use crate::engine::{CancelKind, CancelReason, OrdType, RejectReason, Side, TimeInForce};
use crate::telemetry::labels::DisconnectCause;
use fix::app::outbound::Id;
use fix::app::{
    self, price, CxlRejResponseTo, ExecType, ExecutionReport, MassCancelScope, NewOrderSingle,
    OrdStatus, OrderCancelReject, OrderCancelReplaceRequest, OrderCancelRequest,
    OrderMassCancelReport, OrderMassCancelRequest,
};
use fix::session::{BusinessRejectReason, Event, MemoryStore, Scratch, Session, SessionConfig};
use fix::{Message, TimePrecision};

/// Bytes of sent messages each FIX session keeps for resends.
pub const STORE_BYTES: usize = 16 << 20;
/// Messages each FIX session keeps for resends.
pub const STORE_MESSAGES: usize = 1 << 16;
/// ExecInst (18): not in the `fix` crate's tag list because only the gateway reads it.
const EXEC_INST: u32 = 18;
/// Extra decimals of AvgPx (6) beyond the instrument's price decimals.
pub const AVG_PX_EXTRA_DECIMALS: u8 = 2;

/// FIX settings shared by a gateway's sessions.
#[derive(Clone, Debug)]
pub struct FixSettings {
    /// The appliance's CompID.
    pub sender_comp_id: String,
    /// Reset sequence numbers on every Logon.
    pub reset_on_logon: bool,
    /// Largest message.
    pub max_message_size: usize,
    /// Accepted SendingTime skew, seconds.
    pub max_latency_secs: u32,
}

impl FixSettings {
    /// From the `[fix]` section.
    pub fn from_config(c: &FixSection) -> Self {
        Self {
            sender_comp_id: c.sender_comp_id.clone(),
            reset_on_logon: c.reset_on_logon,
            max_message_size: c.max_message_size,
            max_latency_secs: c.sending_time_window_secs as u32,
        }
    }
}

/// One configured FIX session's state machine (it outlives connections).
pub struct FixSession {
    /// The `fix` crate's session.
    pub session: Session<MemoryStore>,
}

impl FixSession {
    /// A session for `s` (cold path: reserves its store and buffers).
    pub fn new(settings: &FixSettings, s: &FixSessionConfig) -> Self {
        let mut cfg = SessionConfig::acceptor(&settings.sender_comp_id, &s.target_comp_id);
        cfg.reset_on_logon = settings.reset_on_logon;
        cfg.username = s.username.clone();
        cfg.password = s.password.clone();
        cfg.max_message_size = settings.max_message_size;
        cfg.max_latency_secs = settings.max_latency_secs;
        Self {
            session: Session::new(cfg, MemoryStore::with_capacity(STORE_BYTES, STORE_MESSAGES)),
        }
    }

    /// The connection dropped: keep sequence numbers and stored messages for the next one.
    pub fn on_disconnect(&mut self) {
        self.session.on_disconnected();
    }
}

/// Per-gateway FIX scratch: the decoder's field index and the session output buffer.
pub struct FixShared {
    scratch: Option<Scratch>,
    out: Vec<u8>,
    exec_counter: u64,
    max_message_size: usize,
}

impl FixShared {
    /// Reserved once per gateway.
    pub fn new(settings: &FixSettings) -> Self {
        Self {
            scratch: Some(Scratch::new(settings.max_message_size)),
            out: Vec::with_capacity(1 << 20),
            exec_counter: 0,
            max_message_size: settings.max_message_size,
        }
    }
}

/// FIX OrdRejReason (103) for an engine or gateway reject code.
pub fn ord_rej_reason(code: u16) -> u32 {
    match code {
        c if c == RejectReason::UnknownInstrument as u16 => 1,
        c if c == GatewayReject::UnknownSymbol as u16 => 1,
        c if c == RejectReason::OutsidePriceBand as u16
            || c == RejectReason::NotionalOverMax as u16 =>
        {
            3
        }
        c if c == RejectReason::ZeroQuantity as u16
            || c == RejectReason::OffLot as u16
            || c == RejectReason::QuantityOverMax as u16
            || c == GatewayReject::InvalidQuantity as u16 =>
        {
            13
        }
        c if c == GatewayReject::DuplicateClientId as u16
            || c == RejectReason::DuplicateOrderId as u16 =>
        {
            6
        }
        c if c == RejectReason::PostOnlyNotResting as u16
            || c == GatewayReject::InvalidOrdType as u16
            || c == GatewayReject::InvalidTimeInForce as u16 =>
        {
            11
        }
        _ => 99,
    }
}

/// FIX CxlRejReason (102) for a cancel/replace refusal code.
pub fn cxl_rej_reason(code: u16) -> u32 {
    match code {
        c if c == GatewayReject::OrderNotLive as u16 => 0,
        c if c == GatewayReject::UnknownOrder as u16 || c == RejectReason::UnknownOrder as u16 => 1,
        c if c == GatewayReject::RequestPending as u16 => 3,
        c if c == GatewayReject::DuplicateClientId as u16 => 6,
        _ => 99,
    }
}

/// Human text for a reject code (Text, 58).
pub fn reject_text(code: u16) -> &'static [u8] {
    let engine = RejectReason::ALL.iter().find(|r| **r as u16 == code);
    if let Some(r) = engine {
        return match r {
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
        };
    }
    match code {
        100 => b"unknown symbol",
        101 => b"duplicate ClOrdID",
        102 => b"invalid side",
        103 => b"unsupported order type",
        104 => b"unsupported time in force",
        105 => b"invalid self-trade prevention",
        106 => b"invalid flags",
        107 => b"gateway capacity exhausted",
        108 => b"unknown order",
        109 => b"too late: order no longer live",
        110 => b"a cancel or replace is already pending",
        111 => b"invalid price for the instrument",
        112 => b"invalid quantity",
        113 => b"ClOrdID longer than 24 characters",
        _ => b"rejected",
    }
}

fn fix_side(s: Side) -> app::Side {
    match s {
        Side::Buy => app::Side::Buy,
        Side::Sell => app::Side::Sell,
    }
}

fn fix_ord_type(t: OrdType) -> app::OrdType {
    match t {
        OrdType::Limit => app::OrdType::Limit,
        OrdType::Market => app::OrdType::Market,
    }
}

fn fix_tif(t: TimeInForce) -> app::TimeInForce {
    match t {
        TimeInForce::Day => app::TimeInForce::Day,
        TimeInForce::Gtc => app::TimeInForce::GoodTillCancel,
        TimeInForce::Ioc => app::TimeInForce::ImmediateOrCancel,
        TimeInForce::Fok => app::TimeInForce::FillOrKill,
    }
}

/// OrdStatus of an order as the gateway knows it.
fn status(o: &OrderInfo) -> OrdStatus {
    match o.state {
        OrderState::Done if o.cum_qty >= o.qty && o.qty > 0 => OrdStatus::Filled,
        OrderState::Done => OrdStatus::Canceled,
        _ if o.cum_qty > 0 && o.cum_qty >= o.qty => OrdStatus::Filled,
        _ if o.cum_qty > 0 => OrdStatus::PartiallyFilled,
        _ => OrdStatus::New,
    }
}

/// Average price in fixed point with `price_decimals + AVG_PX_EXTRA_DECIMALS` decimals.
fn avg_px(o: &OrderInfo) -> i64 {
    if o.cum_qty == 0 {
        return 0;
    }
    let scaled = o.cum_notional * 10i128.pow(AVG_PX_EXTRA_DECIMALS as u32);
    (scaled / o.cum_qty as i128) as i64
}

impl Gateway {
    /// A FIX connection was accepted: it stays unbound until its Logon.
    pub(super) fn fix_on_accept(&mut self, c: ConnId) {
        let now = self.now_ns;
        self.conns[c as usize].opened_ns = now;
    }

    #[inline]
    fn fix_now(&self) -> u64 {
        self.wall_ns as u64
    }

    /// Copies what the sessions wrote into `c`'s output.
    #[inline]
    fn fix_flush(&mut self, c: Option<ConnId>, out: &mut Vec<u8>) {
        if !out.is_empty() {
            if let Some(c) = c {
                self.send_bytes(c, out);
            }
            out.clear();
        }
    }

    /// Binds unbound connection `c` from its first message, if complete. Returns whether it
    /// is bound now.
    fn fix_bind(&mut self, c: ConnId) -> bool {
        let max = self.fix_shared.max_message_size;
        let input = self.conns[c as usize].input.data();
        let ident = match fix::session::acceptor::peek_logon(input, max) {
            Ok(None) => return false,
            Ok(Some(id)) => id,
            Err(_) => {
                self.on_closed(c);
                self.mark_dirty(c);
                return false;
            }
        };
        let ours = ident.begin_string == b"FIX.4.4"
            && ident.target_comp_id == self.fix_settings.sender_comp_id.as_bytes();
        let found = ours
            .then(|| {
                self.sessions.iter().position(|s| {
                    s.protocol == super::core::Protocol::Fix
                        && s.name.as_bytes() == ident.sender_comp_id
                })
            })
            .flatten();
        let Some(s) = found else {
            // Unknown counterparty: drop without an answer (QuickFIX behaviour).
            self.on_closed(c);
            self.mark_dirty(c);
            return false;
        };
        if self.sessions[s].conn.is_some() {
            // Already logged on elsewhere: this connection goes, the first one stays.
            self.on_closed(c);
            self.mark_dirty(c);
            return false;
        }
        let now = self.fix_now();
        self.bind(c, s as u16);
        if let Some(f) = self.sessions[s].fix.as_mut() {
            f.session.on_connected(now);
        }
        true
    }

    /// Handles everything buffered on FIX connection `c`.
    pub(super) fn fix_input(&mut self, c: ConnId) {
        if self.conns[c as usize].session.is_none() && !self.fix_bind(c) {
            return;
        }
        let Some(s) = self.conns[c as usize].session else {
            return;
        };
        let mut input = std::mem::replace(
            &mut self.conns[c as usize].input,
            super::conn::InBuf::new(0),
        );
        let mut scratch = self.fix_shared.scratch.take().expect("scratch is home");
        let mut out = std::mem::take(&mut self.fix_shared.out);
        let mut fs = self.sessions[s as usize]
            .fix
            .take()
            .expect("a FIX session slot");
        let t_recv = self.conns[c as usize].t_recv;
        let now = self.fix_now();
        let mut pos = 0;
        let mut close = false;
        loop {
            if self.conns[c as usize].state != ConnState::Open {
                break;
            }
            // Room for any command this message may produce, before the session consumes it.
            if !self.rings_ready() {
                self.pause(c);
                break;
            }
            let r = fs
                .session
                .on_input(&input.data()[pos..], &mut scratch, now, &mut out);
            pos += r.consumed;
            match r.event {
                Event::NeedMore => break,
                Event::App(msg) => {
                    self.count_in(super::core::Protocol::Fix);
                    self.fix_app(s, &mut fs.session, &msg, now, &mut out, t_recv);
                }
                Event::Disconnect(why) => {
                    close = true;
                    self.close_cause = Some(DisconnectCause::from_fix(why));
                    break;
                }
                _ => self.count_in(super::core::Protocol::Fix),
            }
            // Send as we go: a long resend must not wait for the whole input.
            if out.len() > 64 << 10 {
                self.fix_flush(Some(c), &mut out);
            }
        }
        input.consume(pos);
        self.conns[c as usize].input = input;
        self.sessions[s as usize].fix = Some(fs);
        self.fix_flush(Some(c), &mut out);
        self.fix_shared.out = out;
        self.fix_shared.scratch = Some(scratch);
        if close {
            self.close_after_flush(c);
        }
    }

    /// One validated application message from session `s`.
    fn fix_app(
        &mut self,
        s: u16,
        session: &mut Session<MemoryStore>,
        msg: &Message<'_>,
        now: u64,
        out: &mut Vec<u8>,
        t_recv: u64,
    ) {
        match msg.msg_type() {
            b"D" => match NewOrderSingle::decode(msg) {
                Ok(o) => self.fix_new_order(s, session, msg, &o, now, out, t_recv),
                Err(e) => self.fix_business_reject(session, msg, e, now, out),
            },
            b"F" => match OrderCancelRequest::decode(msg) {
                Ok(x) => {
                    let (Some(orig), Some(req)) = (
                        ClientId::from_bytes(x.orig_cl_ord_id),
                        ClientId::from_bytes(x.cl_ord_id),
                    ) else {
                        return self.fix_cancel_reject_now(
                            session,
                            x.cl_ord_id,
                            x.orig_cl_ord_id,
                            None,
                            CxlRejResponseTo::Cancel,
                            GatewayReject::UnknownOrder as u16,
                            now,
                            out,
                        );
                    };
                    if let Err((r, slot)) = self.cancel(s, &orig, req, t_recv) {
                        let st = slot.map(|k| status(self.orders.get(k)));
                        self.fix_cancel_reject_now(
                            session,
                            x.cl_ord_id,
                            x.orig_cl_ord_id,
                            st,
                            CxlRejResponseTo::Cancel,
                            r as u16,
                            now,
                            out,
                        );
                    }
                }
                Err(e) => self.fix_business_reject(session, msg, e, now, out),
            },
            b"G" => match OrderCancelReplaceRequest::decode(msg) {
                Ok(x) => self.fix_replace(s, session, &x, now, out, t_recv),
                Err(e) => self.fix_business_reject(session, msg, e, now, out),
            },
            b"q" => match OrderMassCancelRequest::decode(msg) {
                Ok(m) => self.fix_mass_cancel(s, session, &m, now, out, t_recv),
                Err(e) => self.fix_business_reject(session, msg, e, now, out),
            },
            _ => {
                let _ = session.send_business_reject(
                    msg,
                    BusinessRejectReason::UnsupportedMessageType,
                    None,
                    Some(b"Unsupported Message Type"),
                    now,
                    out,
                );
            }
        }
    }

    fn fix_business_reject(
        &mut self,
        session: &mut Session<MemoryStore>,
        msg: &Message<'_>,
        e: app::AppReject,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let tag = (e.tag() != 0).then_some(e.tag());
        let text: &[u8] = match e {
            app::AppReject::MissingField(_) => b"Conditionally required field missing",
            app::AppReject::UnsupportedValue(_) => b"Unsupported value",
            app::AppReject::InvalidValue(_) => b"Invalid value",
            app::AppReject::WrongMsgType => b"Unsupported Message Type",
        };
        let _ = session.send_business_reject(msg, e.business_reason(), tag, Some(text), now, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn fix_new_order(
        &mut self,
        s: u16,
        session: &mut Session<MemoryStore>,
        msg: &Message<'_>,
        o: &NewOrderSingle<'_>,
        now: u64,
        out: &mut Vec<u8>,
        t_recv: u64,
    ) {
        let side = match o.side {
            app::Side::Buy => Side::Buy,
            app::Side::Sell => Side::Sell,
        };
        let ord_type = match o.ord_type {
            app::OrdType::Limit => OrdType::Limit,
            app::OrdType::Market => OrdType::Market,
        };
        let tif = match o.time_in_force {
            app::TimeInForce::Day => TimeInForce::Day,
            app::TimeInForce::GoodTillCancel => TimeInForce::Gtc,
            app::TimeInForce::ImmediateOrCancel => TimeInForce::Ioc,
            app::TimeInForce::FillOrKill => TimeInForce::Fok,
        };
        let mut reject = |gw: &mut Self, session: &mut Session<MemoryStore>, code: u16| {
            gw.fix_order_reject_now(session, o, code, now, out);
        };
        let Some(client_id) = ClientId::from_bytes(o.cl_ord_id) else {
            return reject(self, session, GatewayReject::ClientIdTooLong as u16);
        };
        let Some(ins) = self.instruments.find(o.symbol) else {
            return reject(self, session, GatewayReject::UnknownSymbol as u16);
        };
        let (ins_id, decimals) = (ins.id, ins.price_decimals);
        let price = match (ord_type, o.price) {
            (OrdType::Market, _) => 0,
            (OrdType::Limit, Some(text)) => match price::to_units(text, decimals) {
                Ok(p) => p,
                Err(_) => return reject(self, session, GatewayReject::InvalidPrice as u16),
            },
            (OrdType::Limit, None) => {
                return reject(self, session, GatewayReject::InvalidPrice as u16)
            }
        };
        // ExecInst (18) containing '6' (participate, don't initiate) asks for post-only.
        let post_only = msg
            .get(EXEC_INST)
            .is_some_and(|v| v.split(|&b| b == b' ').any(|t| t == b"6"));
        let req = OrderRequest {
            client_id,
            instrument: ins_id,
            side,
            ord_type,
            tif,
            price,
            qty: o.order_qty,
            post_only,
            stp: None,
        };
        if let Err(r) = self.enter(s, &req, t_recv) {
            reject(self, session, r as u16);
        }
    }

    fn fix_replace(
        &mut self,
        s: u16,
        session: &mut Session<MemoryStore>,
        x: &OrderCancelReplaceRequest<'_>,
        now: u64,
        out: &mut Vec<u8>,
        t_recv: u64,
    ) {
        let to = CxlRejResponseTo::Replace;
        let (Some(orig), Some(new_id)) = (
            ClientId::from_bytes(x.orig_cl_ord_id),
            ClientId::from_bytes(x.cl_ord_id),
        ) else {
            return self.fix_cancel_reject_now(
                session,
                x.cl_ord_id,
                x.orig_cl_ord_id,
                None,
                to,
                GatewayReject::UnknownOrder as u16,
                now,
                out,
            );
        };
        let decimals = self
            .orders
            .find(s, &orig)
            .and_then(|k| self.instruments.get(self.orders.get(k).instrument))
            .map_or(0, |i| i.price_decimals);
        let price = match (x.ord_type, x.price) {
            (app::OrdType::Limit, Some(text)) => match price::to_units(text, decimals) {
                Ok(p) => Some(p),
                Err(_) => {
                    return self.fix_cancel_reject_now(
                        session,
                        x.cl_ord_id,
                        x.orig_cl_ord_id,
                        None,
                        to,
                        GatewayReject::InvalidPrice as u16,
                        now,
                        out,
                    )
                }
            },
            _ => None,
        };
        if let Err((r, slot)) = self.replace(s, &orig, new_id, price, x.order_qty, t_recv) {
            let st = slot.map(|k| status(self.orders.get(k)));
            self.fix_cancel_reject_now(
                session,
                x.cl_ord_id,
                x.orig_cl_ord_id,
                st,
                to,
                r as u16,
                now,
                out,
            );
        }
    }

    fn fix_mass_cancel(
        &mut self,
        s: u16,
        session: &mut Session<MemoryStore>,
        m: &OrderMassCancelRequest<'_>,
        now: u64,
        out: &mut Vec<u8>,
        t_recv: u64,
    ) {
        let instrument = match (m.scope, m.symbol) {
            (MassCancelScope::All, _) => Ok(None),
            (MassCancelScope::Security, Some(sym)) => {
                self.instruments.find(sym).map(|i| Some(i.id)).ok_or(1u32)
            }
            (MassCancelScope::Security, None) => Err(99),
        };
        let reject = |session: &mut Session<MemoryStore>, reason: u32, out: &mut Vec<u8>| {
            let r = OrderMassCancelReport {
                cl_ord_id: Some(m.cl_ord_id),
                order_id: Id::Text(b"NONE"),
                request_type: m.scope.as_byte(),
                response: b'0',
                reject_reason: Some(reason),
                total_affected_orders: Some(0),
                symbol: m.symbol,
                side: None,
                transact_time: Some(now),
                text: Some(b"mass cancel rejected"),
            };
            let _ = session.send(&r, now, out);
        };
        let (Ok(instrument), Some(req)) = (instrument, ClientId::from_bytes(m.cl_ord_id)) else {
            return reject(session, 1, out);
        };
        if self.mass_cancel(s, req, instrument, t_recv).is_err() {
            reject(session, 99, out);
        }
    }

    fn fix_order_reject_now(
        &mut self,
        session: &mut Session<MemoryStore>,
        o: &NewOrderSingle<'_>,
        code: u16,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        self.count_reject(code);
        let exec_id = self.next_exec_id();
        let er = ExecutionReport {
            order_id: Id::Text(b"NONE"),
            cl_ord_id: o.cl_ord_id,
            orig_cl_ord_id: None,
            exec_id: Id::Num(exec_id),
            exec_type: ExecType::Rejected,
            ord_status: OrdStatus::Rejected,
            ord_rej_reason: Some(ord_rej_reason(code)),
            account: o.account,
            symbol: o.symbol,
            side: o.side,
            order_qty: Some(o.order_qty),
            ord_type: Some(o.ord_type),
            price: None,
            time_in_force: Some(o.time_in_force),
            last_qty: None,
            last_px: None,
            leaves_qty: 0,
            cum_qty: 0,
            avg_px: 0,
            avg_px_decimals: 0,
            price_scale: 0,
            transact_time: now,
            time_precision: TimePrecision::Millis,
            text: Some(reject_text(code)),
        };
        let _ = session.send(&er, now, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn fix_cancel_reject_now(
        &mut self,
        session: &mut Session<MemoryStore>,
        cl_ord_id: &[u8],
        orig: &[u8],
        st: Option<OrdStatus>,
        to: CxlRejResponseTo,
        code: u16,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        self.count_cancel_reject(code);
        let r = OrderCancelReject {
            order_id: Id::Text(b"NONE"),
            cl_ord_id,
            orig_cl_ord_id: orig,
            ord_status: st.unwrap_or(OrdStatus::Rejected),
            response_to: to,
            cxl_rej_reason: Some(cxl_rej_reason(code)),
            transact_time: Some(now),
            text: Some(reject_text(code)),
        };
        let _ = session.send(&r, now, out);
    }

    /// Exec ids for reports that are not trades: the top bit set, so they never collide with
    /// the engine's trade ids (`instrument << 40 | n`, below 2^60).
    fn next_exec_id(&mut self) -> u64 {
        self.fix_shared.exec_counter += 1;
        (1 << 63) | ((self.id as u64) << 48) | self.fix_shared.exec_counter
    }

    /// Renders an engine reply for FIX session `s` (sequenced and stored even when the
    /// session is disconnected).
    pub(super) fn fix_reply(&mut self, s: u16, reply: &Reply) {
        let now = self.fix_now();
        let exec_id = match *reply {
            Reply::Fill { exec_id, .. } => exec_id,
            _ => self.next_exec_id(),
        };
        let mut out = std::mem::take(&mut self.fix_shared.out);
        let mut fs = self.sessions[s as usize]
            .fix
            .take()
            .expect("a FIX session slot");
        self.fix_render(&mut fs.session, reply, exec_id, now, &mut out);
        self.sessions[s as usize].fix = Some(fs);
        let conn = self.sessions[s as usize].conn;
        self.fix_flush(conn, &mut out);
        self.fix_shared.out = out;
    }

    fn fix_render(
        &mut self,
        session: &mut Session<MemoryStore>,
        reply: &Reply,
        exec_id: u64,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let order_er = |gw: &Gateway, slot: u32| -> (OrderInfo, u8, u64) {
            let o = *gw.orders.get(slot);
            let d = gw
                .instruments
                .get(o.instrument)
                .map_or(0, |i| i.price_decimals);
            (o, d, gw.orders.order_id(slot))
        };
        match *reply {
            Reply::CancelRejected {
                slot,
                request,
                orig,
                kind,
                reason,
            } => {
                let (st, oid) = match slot {
                    Some(k) => (status(self.orders.get(k)), self.orders.order_id(k)),
                    None => (OrdStatus::Rejected, 0),
                };
                let r = OrderCancelReject {
                    order_id: Id::Num(oid),
                    cl_ord_id: request.as_bytes(),
                    orig_cl_ord_id: orig.as_bytes(),
                    ord_status: st,
                    response_to: match kind {
                        CancelKind::Cancel => CxlRejResponseTo::Cancel,
                        CancelKind::Replace => CxlRejResponseTo::Replace,
                    },
                    cxl_rej_reason: Some(cxl_rej_reason(reason)),
                    transact_time: Some(now),
                    text: Some(reject_text(reason)),
                };
                let _ = session.send(&r, now, out);
            }
            Reply::MassCancelDone {
                request,
                count,
                instrument,
            } => {
                let symbol = instrument
                    .and_then(|i| self.instruments.get(i))
                    .map(|i| i.symbol());
                let scope = if instrument.is_some() {
                    MassCancelScope::Security
                } else {
                    MassCancelScope::All
                };
                let r = OrderMassCancelReport {
                    cl_ord_id: Some(request.as_bytes()),
                    order_id: Id::Num(exec_id),
                    request_type: scope.as_byte(),
                    response: scope.as_byte(),
                    reject_reason: None,
                    total_affected_orders: Some(count),
                    symbol,
                    side: None,
                    transact_time: Some(now),
                    text: None,
                };
                let _ = session.send(&r, now, out);
            }
            Reply::Accepted { slot }
            | Reply::Rejected { slot, .. }
            | Reply::Fill { slot, .. }
            | Reply::Cancelled { slot, .. }
            | Reply::Replaced { slot, .. } => {
                let (o, d, oid) = order_er(self, slot);
                let symbol = self
                    .instruments
                    .get(o.instrument)
                    .map_or(&b"?"[..], |i| i.symbol());
                let mut er = ExecutionReport {
                    order_id: Id::Num(oid),
                    cl_ord_id: o.client_id.as_bytes(),
                    orig_cl_ord_id: None,
                    exec_id: Id::Num(exec_id),
                    exec_type: ExecType::New,
                    ord_status: status(&o),
                    ord_rej_reason: None,
                    account: None,
                    symbol,
                    side: fix_side(o.side),
                    order_qty: Some(o.qty),
                    ord_type: Some(fix_ord_type(o.ord_type)),
                    price: (o.ord_type == OrdType::Limit).then_some(o.price),
                    time_in_force: Some(fix_tif(o.tif)),
                    last_qty: None,
                    last_px: None,
                    leaves_qty: 0,
                    cum_qty: o.cum_qty,
                    avg_px: avg_px(&o),
                    avg_px_decimals: d + AVG_PX_EXTRA_DECIMALS,
                    price_scale: d,
                    transact_time: now,
                    time_precision: TimePrecision::Millis,
                    text: None,
                };
                let mut req_id = ClientId::default();
                match *reply {
                    Reply::Accepted { .. } => {
                        er.leaves_qty = o.qty.saturating_sub(o.cum_qty);
                        er.ord_status = OrdStatus::New;
                    }
                    Reply::Rejected { reason, .. } => {
                        er.exec_type = ExecType::Rejected;
                        er.ord_status = OrdStatus::Rejected;
                        er.ord_rej_reason = Some(ord_rej_reason(reason));
                        er.text = Some(reject_text(reason));
                    }
                    Reply::Fill {
                        price, qty, leaves, ..
                    } => {
                        er.exec_type = ExecType::Trade;
                        er.ord_status = if leaves == 0 {
                            OrdStatus::Filled
                        } else {
                            OrdStatus::PartiallyFilled
                        };
                        er.last_qty = Some(qty);
                        er.last_px = Some(price);
                        er.leaves_qty = leaves;
                    }
                    Reply::Cancelled {
                        reason, request, ..
                    } => {
                        er.exec_type = if reason == CancelReason::DayExpired {
                            ExecType::Expired
                        } else {
                            ExecType::Canceled
                        };
                        er.ord_status = if reason == CancelReason::DayExpired {
                            OrdStatus::Expired
                        } else {
                            OrdStatus::Canceled
                        };
                        if let Some(r) = request {
                            // The cancel's own ClOrdID; the order's id becomes OrigClOrdID.
                            req_id = r;
                        }
                        er.text = Some(cancel_text(reason));
                    }
                    Reply::Replaced { leaves, .. } => {
                        er.exec_type = ExecType::Replaced;
                        er.leaves_qty = leaves;
                        er.ord_status = if o.cum_qty > 0 {
                            OrdStatus::PartiallyFilled
                        } else {
                            OrdStatus::New
                        };
                        er.orig_cl_ord_id = Some(o.orig_client_id.as_bytes());
                    }
                    _ => {}
                }
                if req_id.as_bytes() != b"" && req_id != o.client_id {
                    er.cl_ord_id = req_id.as_bytes();
                    er.orig_cl_ord_id = Some(o.client_id.as_bytes());
                }
                let _ = session.send(&er, now, out);
            }
        }
    }

    /// Timers of FIX connection `c`: the session's heartbeats and timeouts, or the logon
    /// timeout of a connection that never bound.
    pub(super) fn fix_timer(&mut self, c: ConnId) {
        let Some(s) = self.conns[c as usize].session else {
            let waited = self.now_ns.saturating_sub(self.conns[c as usize].opened_ns);
            if waited > 10_000_000_000 {
                self.on_closed(c);
                self.mark_dirty(c);
            }
            return;
        };
        let now = self.fix_now();
        let mut out = std::mem::take(&mut self.fix_shared.out);
        let disconnect = self.sessions[s as usize]
            .fix
            .as_mut()
            .and_then(|f| f.session.on_timer(now, &mut out));
        self.fix_flush(Some(c), &mut out);
        self.fix_shared.out = out;
        if let Some(why) = disconnect {
            self.close_cause = Some(DisconnectCause::from_fix(why));
            self.close_after_flush(c);
        }
    }

    /// Starts the Logout handshake on FIX connection `c` (shutdown); the connection closes
    /// when the counterparty answers or the logout timeout passes.
    pub(super) fn fix_shutdown(&mut self, c: ConnId) {
        let Some(s) = self.conns[c as usize].session else {
            self.close_after_flush(c);
            return;
        };
        let now = self.fix_now();
        let mut out = std::mem::take(&mut self.fix_shared.out);
        let ok = self.sessions[s as usize]
            .fix
            .as_mut()
            .map(|f| {
                f.session
                    .logout(Some(b"appliance shutting down"), now, &mut out)
                    .is_ok()
            })
            .unwrap_or(false);
        self.fix_flush(Some(c), &mut out);
        self.fix_shared.out = out;
        if !ok {
            self.close_cause = Some(DisconnectCause::Shutdown);
            self.close_after_flush(c);
        }
    }
}

fn cancel_text(r: CancelReason) -> &'static [u8] {
    match r {
        CancelReason::User => b"cancelled by request",
        CancelReason::Unfilled => b"unfilled remainder of an immediate order",
        CancelReason::FokUnfillable => b"fill or kill could not be filled",
        CancelReason::SelfTrade => b"self-trade prevention",
        CancelReason::MassCancel => b"mass cancel",
        CancelReason::Disconnect => b"cancel on disconnect",
        CancelReason::DayExpired => b"day order expired",
        CancelReason::ReplacedBelowFilled => b"replaced below the filled quantity",
    }
}

//! Engine events to replies: each event updates the order table and becomes a reply for the
//! session it belongs to, rendered in that session's protocol. Hot path.

use super::core::Reply;
use super::orders::{OrderState, Pending};
use super::session::SessionKind;
use super::Gateway;

/// Free output a connection needs for a market-data refresh to go out now (else it waits,
/// conflated, for the client to read).
pub const MD_OUTPUT_ROOM: usize = 256 << 10;
use crate::engine::{CancelReason, EventKind, RejectReason, SessionId};
use crate::recovery::records::Cause;
use crate::rings::msg::{local_of, session_id, FromEngine};
use crate::vocab::GatewayReject;

impl Gateway {
    /// The local index of an engine-wide session id, if it is one of this gateway's.
    #[inline]
    fn local_session(&self, global: SessionId) -> Option<u16> {
        let l = local_of(global);
        (session_id(self.core.id, l) == global && (l as usize) < self.sessions.len()).then_some(l)
    }

    pub(super) fn on_event(&mut self, engine: usize, msg: &FromEngine) {
        self.causes.begin(engine, msg.event.seq);
        self.apply_event(engine, msg);
        self.causes.end();
    }

    fn apply_event(&mut self, engine: usize, msg: &FromEngine) {
        let (t_recv, t_done) = (msg.t_recv, msg.t_done);
        let orders = &mut self.core.orders;
        match msg.event.kind {
            EventKind::Accepted(a) => {
                let Some(slot) = orders.slot_of(a.order_id) else {
                    return;
                };
                let o = orders.get_mut(slot);
                if o.state == OrderState::PendingNew {
                    o.state = OrderState::Live;
                }
                let s = o.session;
                self.reply(s, &Reply::Accepted { slot }, t_recv, t_done);
            }
            EventKind::Rejected(r) => {
                let Some(slot) = orders.slot_of(r.order_id) else {
                    return;
                };
                let s = orders.get(slot).session;
                let reason = r.reason as u8 as u16;
                self.core.on_behalf = Some(s);
                self.core.count_reject(reason);
                self.core.on_behalf = None;
                self.reply(s, &Reply::Rejected { slot, reason }, t_recv, t_done);
                self.core.orders.finish(slot);
            }
            EventKind::Trade(t) => {
                self.market_data_trade(&t);
                for (fill, maker) in [(t.maker, true), (t.taker, false)] {
                    let orders = &mut self.core.orders;
                    let Some(slot) = orders.slot_of(fill.order_id) else {
                        continue;
                    };
                    orders.unexpose(slot);
                    let o = orders.get_mut(slot);
                    o.cum_qty = fill.cum_qty;
                    o.cum_notional += t.price as i128 * t.qty as i128;
                    orders.expose(slot);
                    let o = orders.get(slot);
                    let s = o.session;
                    let reply = Reply::Fill {
                        slot,
                        exec_id: t.exec_id,
                        price: t.price,
                        qty: t.qty,
                        leaves: fill.leaves,
                        maker,
                    };
                    self.reply(s, &reply, t_recv, t_done);
                    // A fill that leaves nothing finishes the order unless a replace is
                    // pending (the engine will answer it; the order stays until then).
                    let orders = &mut self.core.orders;
                    if fill.leaves == 0 && orders.get(slot).pending == Pending::None {
                        orders.finish(slot);
                    }
                }
            }
            EventKind::Cancelled(c) => {
                let Some(slot) = orders.slot_of(c.order_id) else {
                    return;
                };
                let o = orders.get(slot);
                let s = o.session;
                let request = match (c.reason, o.pending) {
                    (CancelReason::User, Pending::Cancel(r)) => Some(r),
                    (CancelReason::ReplacedBelowFilled, Pending::Replace(r)) => Some(r),
                    _ => None,
                };
                if let Pending::Replace(new_id) = o.pending {
                    if c.reason == CancelReason::ReplacedBelowFilled {
                        // The replace ended the order: it takes the replace's id, like FIX.
                        let (cur, orig) = (o.client_id, o.orig_client_id);
                        if orig != cur {
                            orders.remove_alias(s, &orig, slot);
                        }
                        let o = orders.get_mut(slot);
                        o.orig_client_id = cur;
                        o.client_id = new_id;
                    }
                }
                let reply = Reply::Cancelled {
                    slot,
                    qty: c.cancelled_qty,
                    reason: c.reason,
                    request,
                };
                self.reply(s, &reply, t_recv, t_done);
                self.core.orders.finish(slot);
            }
            EventKind::Replaced(r) => {
                let Some(slot) = orders.slot_of(r.order_id) else {
                    return;
                };
                let o = *orders.get(slot);
                let s = o.session;
                if let Pending::Replace(new_id) = o.pending {
                    if o.orig_client_id != o.client_id && o.orig_client_id != new_id {
                        orders.remove_alias(s, &o.orig_client_id, slot);
                    }
                    let m = orders.get_mut(slot);
                    m.orig_client_id = o.client_id;
                    m.client_id = new_id;
                }
                orders.unexpose(slot);
                let m = orders.get_mut(slot);
                m.pending = Pending::None;
                m.price = r.price;
                m.qty = r.qty;
                m.cum_qty = r.cum_qty;
                orders.expose(slot);
                let reply = Reply::Replaced {
                    slot,
                    priority_kept: r.priority_kept,
                    leaves: r.leaves,
                };
                self.reply(s, &reply, t_recv, t_done);
                if r.leaves == 0 {
                    self.core.orders.finish(slot);
                }
            }
            EventKind::CancelRejected(cr) => {
                let Some(s) = self.local_session(cr.session) else {
                    return;
                };
                let orders = &mut self.core.orders;
                let Some(slot) = orders.slot_of(cr.order_id) else {
                    return;
                };
                let o = *orders.get(slot);
                let request = match o.pending {
                    Pending::Cancel(r) | Pending::Replace(r) => r,
                    Pending::None => o.client_id,
                };
                if let Pending::Replace(new_id) = o.pending {
                    if new_id != o.client_id {
                        orders.remove_alias(s, &new_id, slot);
                    }
                }
                orders.get_mut(slot).pending = Pending::None;
                // The engine no longer has an order the gateway knows: it filled (or was
                // cancelled) while the request was in flight. To the client that is "too
                // late", and the order is finished here too.
                let gone = cr.reason == RejectReason::UnknownOrder;
                let reason = if gone {
                    GatewayReject::OrderNotLive.code()
                } else {
                    cr.reason as u8 as u16
                };
                self.core.on_behalf = Some(s);
                self.core.count_cancel_reject(reason);
                self.core.on_behalf = None;
                let reply = Reply::CancelRejected {
                    slot: Some(slot),
                    request,
                    orig: o.client_id,
                    kind: cr.kind,
                    reason,
                };
                self.reply(s, &reply, t_recv, t_done);
                if gone {
                    self.core.orders.finish(slot);
                }
            }
            EventKind::MassCancelDone(m) => {
                if m.reason != CancelReason::MassCancel {
                    return;
                }
                let Some(s) = self.local_session(m.session) else {
                    return;
                };
                if let Some(done) = self.core.mass_answered(engine, s, m.count) {
                    let reply = Reply::MassCancelDone {
                        request: done.request,
                        count: done.count,
                        instrument: done.instrument,
                    };
                    self.reply(s, &reply, t_recv, t_done);
                }
            }
            EventKind::BookChange(b) => {
                if let Some(md) = self.fix.market_data() {
                    md.on_book_change(&b);
                }
            }
        }
    }

    /// A trade for the FIX market data (a full buffer of the pass's trades is published
    /// first: trades are never conflated away).
    #[inline]
    fn market_data_trade(&mut self, t: &crate::engine::Trade) {
        let Some(md) = self.fix.market_data() else {
            return;
        };
        if !md.on_trade(t.instrument, t.price, t.qty) {
            self.publish_fix_market_data();
            if let Some(md) = self.fix.market_data() {
                md.on_trade(t.instrument, t.price, t.qty);
            }
        }
    }

    /// Sends the FIX market-data subscribers what changed (after each pass over the engines'
    /// events: see `fix_md` on conflation). Refreshes are not stored: a session answering a
    /// ResendRequest gets them when it is done, and so does a client that reads slowly (its
    /// output buffer has less than [`MD_OUTPUT_ROOM`] free): conflation absorbs a slow
    /// subscriber instead of disconnecting it.
    pub(super) fn publish_fix_market_data(&mut self) {
        let now = self.core.wall_ns as u64;
        let (sessions, core, out) = (&mut self.sessions, &mut self.core, &mut self.md_out);
        let Some(md) = self.fix.market_data() else {
            return;
        };
        let mut touched = std::mem::take(&mut self.md_touched);
        md.publish(&mut |s, m, go_on| {
            let Some(slot) = sessions.get_mut(s as usize) else {
                return true;
            };
            let (SessionKind::Fix(f), Some(c)) = (&mut slot.kind, slot.info.conn) else {
                return true;
            };
            if !f.session.can_send_now() || (!go_on && core.output(c).room() < MD_OUTPUT_ROOM) {
                return false;
            }
            out.clear();
            if f.session.send_unstored(m, now, out).is_err() {
                return true;
            }
            core.send(c, out);
            if touched.last() != Some(&s) && touched.len() < touched.capacity() {
                touched.push(s);
            }
            true
        });
        for &s in &touched {
            self.journal_session(s, None);
        }
        touched.clear();
        self.md_touched = touched;
    }

    /// Renders a reply for session `s` in its protocol (sequenced and stored even when the
    /// session is disconnected, so it is replayed or resent after a reconnect), and a copy
    /// of an execution report for its firm's drop-copy session, if it has one.
    #[inline]
    fn reply(&mut self, s: u16, reply: &Reply, t_recv: u64, t_done: u64) {
        self.reply_to(s, reply, t_recv, t_done, false);
        if let Some(d) = self.drop_copy.get(s as usize).copied().flatten() {
            if reply.is_execution_report() {
                self.reply_to(d, reply, t_recv, t_done, true);
            }
        }
    }

    /// Renders `reply` for session `s`; a copy is not a latency sample.
    #[inline]
    fn reply_to(&mut self, s: u16, reply: &Reply, t_recv: u64, t_done: u64, copy: bool) {
        let cause = self.causes.next();
        if let Some(r) = self.replay.as_mut() {
            // Rebuilding from the journal: the reply was rendered before the restart if a
            // journaled `OUT` names its cause; until one does, it waits (with the order as
            // it is now) in case it never was.
            let order = reply.slot().map(|k| (k, *self.core.orders.get(k)));
            r.defer(cause, s, *reply, order);
            return;
        }
        let slot = &mut self.sessions[s as usize];
        match &mut slot.kind {
            SessionKind::Binary(u) => self.binary.render(&mut self.core, &slot.info, u, reply),
            SessionKind::Fix(f) => self.fix.render(&mut self.core, &slot.info, f, reply),
        }
        if slot.info.conn.is_some() && !copy {
            self.core.stamp_reply(t_recv, t_done);
        }
        if self.core.audit_order_lifecycle && !copy {
            self.audit_order_step(s, reply);
        }
        self.journal_session(s, cause);
    }

    /// Hands the step `reply` reports to the audit thread (`gateway.audit_order_lifecycle`).
    #[cold]
    fn audit_order_step(&mut self, s: u16, reply: &Reply) {
        use super::audit::{AuditEvent, InlineId, OrderEvent, OrderStep};
        let Some(slot) = reply.slot() else {
            return;
        };
        let o = *self.core.orders.get(slot);
        let (step, exec_id, qty, price, leaves) = match *reply {
            Reply::Accepted { .. } => (
                OrderStep::Accepted,
                0,
                o.qty,
                o.price,
                o.qty.saturating_sub(o.cum_qty),
            ),
            Reply::Rejected { .. } => (OrderStep::Rejected, 0, o.qty, o.price, 0),
            Reply::Fill {
                exec_id,
                price,
                qty,
                leaves,
                ..
            } => (OrderStep::Fill, exec_id, qty, price, leaves),
            Reply::Cancelled { qty, reason, .. } => {
                (OrderStep::Cancelled(reason), 0, qty, o.price, 0)
            }
            Reply::Replaced { leaves, .. } => (OrderStep::Replaced, 0, o.qty, o.price, leaves),
            _ => return,
        };
        let info = &self.sessions[s as usize].info;
        let cl_ord_id = match info.protocol {
            crate::vocab::Protocol::Binary => InlineId::from_u64(o.client_id.token()),
            crate::vocab::Protocol::Fix => InlineId::from_bytes(o.client_id.as_bytes()),
        };
        let ev = OrderEvent {
            step,
            cl_ord_id,
            order_id: self.core.orders.order_id(slot),
            exec_id,
            qty,
            price,
            leaves,
        };
        let (conn, protocol) = (info.conn, info.protocol);
        self.core
            .audit_session(s, conn, protocol, AuditEvent::Order(ev));
    }
}

/// Which engine event the replies being rendered answer: every reply gets a [`Cause`], the
/// event's engine and command sequence number and its ordinal among that command's replies
/// in this gateway. The journal records it with each message, and recovery matches it
/// against the events a replay produces (the same events, in the same order).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Causes {
    current: Option<(u8, u64)>,
    last: Option<(u8, u64)>,
    ordinal: u16,
}

impl Causes {
    /// Replies until [`Causes::end`] answer engine `engine`'s command `engine_seq`.
    #[inline]
    pub(super) fn begin(&mut self, engine: usize, engine_seq: u64) {
        self.current = Some((engine as u8, engine_seq));
    }

    /// The event is handled.
    #[inline]
    pub(super) fn end(&mut self) {
        self.current = None;
    }

    /// The cause of the reply about to be rendered (`None` outside an event).
    #[inline]
    pub(super) fn next(&mut self) -> Option<Cause> {
        let (engine, engine_seq) = self.current?;
        if self.last == Some((engine, engine_seq)) {
            self.ordinal += 1;
        } else {
            self.last = Some((engine, engine_seq));
            self.ordinal = 0;
        }
        Some(Cause {
            engine,
            engine_seq,
            ordinal: self.ordinal,
        })
    }

    /// The last cause given (for snapshots).
    pub(super) fn last(&self) -> Option<Cause> {
        self.last.map(|(engine, engine_seq)| Cause {
            engine,
            engine_seq,
            ordinal: self.ordinal,
        })
    }

    /// Continues after `last` (restored from a snapshot).
    pub(super) fn restore(&mut self, last: Option<Cause>) {
        self.last = last.map(|c| (c.engine, c.engine_seq));
        self.ordinal = last.map_or(0, |c| c.ordinal);
    }
}

//! The binary protocol on top of the gateway core: frames in, order requests out; engine
//! replies in, sequenced frames out.

use super::core::{ConnId, Gateway, GatewayReject, OrderRequest, Reply};
use super::orders::ClientId;
use crate::binary::session::{Inbound, TimerAction, Violation};
use crate::binary::wire::{
    self, credential_str, frame_len, symbol_str, CancelRejected, EnterOrder, LoginRejectReason,
    LoginRejected, Logout, LogoutReason, MassCancelAck, OrderAccepted, OrderCancelled,
    OrderExecuted, OrderRejected, OrderReplaced, ServerMessage,
};
use crate::engine::{OrdType, Side, StpMode, TimeInForce};
use crate::telemetry::labels::DisconnectCause;

impl Gateway {
    /// Frames and handles everything buffered on binary connection `c`.
    pub(super) fn binary_input(&mut self, c: ConnId) {
        // Take the buffer out of the connection so frames can be borrowed while the rest of
        // the gateway is updated; it goes back below (a pointer swap, no copy).
        let mut input = std::mem::replace(
            &mut self.conns[c as usize].input,
            super::conn::InBuf::new(0),
        );
        let mut pos = 0;
        let t_recv = self.conns[c as usize].t_recv;
        loop {
            if self.conns[c as usize].state != super::core::ConnState::Open {
                break;
            }
            let data = &input.data()[pos..];
            let n = match frame_len(data) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => {
                    // No trustworthy frame boundary: close without a reply.
                    self.close_cause = Some(DisconnectCause::ProtocolError);
                    self.on_closed(c);
                    self.mark_dirty(c);
                    break;
                }
            };
            if !self.rings_ready() {
                self.pause(c);
                break;
            }
            self.binary_frame(c, &data[..n], t_recv);
            pos += n;
        }
        input.consume(pos);
        self.conns[c as usize].input = input;
    }

    fn binary_frame(&mut self, c: ConnId, frame: &[u8], t_recv: u64) {
        self.count_in(super::core::Protocol::Binary);
        let now = self.now_ns;
        let sess = self.conns[c as usize].session;
        let result = {
            let user = sess.and_then(|s| self.sessions[s as usize].user.as_mut());
            let conn = &mut self.conns[c as usize].bin;
            conn.on_frame(now, frame, user)
        };
        let inbound = match result {
            Ok(i) => i,
            Err(v) => return self.binary_violation(c, v),
        };
        let Some(s) = sess else {
            if let Inbound::Login(l) = inbound {
                self.binary_login(c, &l);
            }
            return;
        };
        match inbound {
            Inbound::Enter(o) => self.binary_enter(s, &o, t_recv),
            Inbound::Cancel(x) => {
                let id = ClientId::from_token(x.token);
                if let Err((r, _)) = self.cancel(s, &id, id, t_recv) {
                    self.binary_cancel_reject(s, x.token, r as u16);
                }
            }
            Inbound::Replace(r) => {
                let orig = ClientId::from_token(r.orig_token);
                let new = ClientId::from_token(r.new_token);
                if let Err((e, _)) = self.replace(s, &orig, new, Some(r.price), r.qty, t_recv) {
                    self.binary_cancel_reject(s, r.orig_token, e as u16);
                }
            }
            Inbound::MassCancel(m) => {
                let instrument = if symbol_str(&m.symbol).is_empty() {
                    None
                } else {
                    match self.instruments.find(&m.symbol) {
                        Some(i) => Some(i.id),
                        None => {
                            return self.binary_mass_reject(s, m.token);
                        }
                    }
                };
                if self
                    .mass_cancel(s, ClientId::from_token(m.token), instrument, t_recv)
                    .is_err()
                {
                    self.binary_mass_reject(s, m.token);
                }
            }
            Inbound::Logout => {
                self.binary_send_unsequenced(
                    c,
                    &ServerMessage::Logout(Logout {
                        reason: LogoutReason::Requested as u8,
                        expected_seq: 0,
                    }),
                );
                self.close_cause = Some(DisconnectCause::Logout);
                self.close_after_flush(c);
            }
            Inbound::Nothing { .. } | Inbound::Login(_) => {}
        }
    }

    fn binary_login(&mut self, c: ConnId, login: &wire::Login) {
        let name = credential_str(&login.username);
        let password = credential_str(&login.password);
        let found = self
            .sessions
            .iter()
            .position(|s| s.protocol == super::core::Protocol::Binary && s.name.as_bytes() == name);
        let reject = |gw: &mut Self, reason: LoginRejectReason| {
            gw.binary_send_unsequenced(
                c,
                &ServerMessage::LoginRejected(LoginRejected {
                    reason: reason as u8,
                }),
            );
            gw.close_after_flush(c);
        };
        let Some(s) = found else {
            return reject(self, LoginRejectReason::NotAuthorized);
        };
        let slot = &self.sessions[s];
        let expected = slot.password.as_deref().unwrap_or("").as_bytes();
        if password != expected {
            return reject(self, LoginRejectReason::NotAuthorized);
        }
        if slot.conn.is_some() {
            return reject(self, LoginRejectReason::AlreadyLoggedIn);
        }
        let now = self.now_ns;
        let user = self.sessions[s]
            .user
            .as_ref()
            .expect("binary sessions have user state");
        let (next_out, oldest) = (user.next_out_seq, user.oldest_replayable());
        let accepted = match self.conns[c as usize].bin.accept_login(now, login, user) {
            Ok(a) => a,
            Err(reason) => return reject(self, reason),
        };
        self.bind(c, s as u16);
        self.binary_send_unsequenced(c, &ServerMessage::LoginAccepted(accepted));
        if login.next_server_seq > 0 && login.next_server_seq < next_out {
            // Replay from the requested number (or the oldest still kept). Frames are pumped
            // from the log as output space allows (`binary_pump_replay`); live replies wait
            // behind the replay so the client sees one ordered stream.
            let from = login.next_server_seq.max(oldest);
            self.conns[c as usize].replay_next = Some(from);
            self.replaying += 1;
            self.binary_pump_replay(c);
        }
    }

    /// Copies replayed frames into `c`'s output while they fit; ends the replay when caught up.
    pub(super) fn binary_pump_replay(&mut self, c: ConnId) {
        let conn = &mut self.conns[c as usize];
        let (Some(mut seq), Some(s)) = (conn.replay_next, conn.session) else {
            return;
        };
        let user = self.sessions[s as usize]
            .user
            .as_ref()
            .expect("binary user");
        while seq < user.next_out_seq {
            let Some(frame) = user.frame(seq) else {
                // Dropped from the log while waiting: resume at the oldest kept.
                seq = user.oldest_replayable().max(seq + 1);
                continue;
            };
            if !conn.output.append(frame) {
                break;
            }
            seq += 1;
        }
        if seq >= user.next_out_seq {
            conn.replay_next = None;
            self.replaying -= 1;
        } else {
            conn.replay_next = Some(seq);
        }
        self.mark_dirty(c);
    }

    fn binary_enter(&mut self, s: u16, o: &EnterOrder, t_recv: u64) {
        let req = match self.binary_order_request(o) {
            Ok(r) => r,
            Err(r) => return self.binary_order_reject(s, o.token, r as u16),
        };
        if let Err(r) = self.enter(s, &req, t_recv) {
            self.binary_order_reject(s, o.token, r as u16);
        }
    }

    #[inline]
    fn binary_order_request(&self, o: &EnterOrder) -> Result<OrderRequest, GatewayReject> {
        let side = match o.side {
            b'B' => Side::Buy,
            b'S' => Side::Sell,
            _ => return Err(GatewayReject::InvalidSide),
        };
        let ord_type = match o.ord_type {
            b'L' => OrdType::Limit,
            b'M' => OrdType::Market,
            _ => return Err(GatewayReject::InvalidOrdType),
        };
        let tif = match o.tif {
            b'0' => TimeInForce::Day,
            b'1' => TimeInForce::Gtc,
            b'3' => TimeInForce::Ioc,
            b'4' => TimeInForce::Fok,
            _ => return Err(GatewayReject::InvalidTimeInForce),
        };
        if o.flags & !1 != 0 {
            return Err(GatewayReject::InvalidFlags);
        }
        let stp = match o.stp {
            0 => None,
            1 => Some(StpMode::None),
            2 => Some(StpMode::CancelResting),
            3 => Some(StpMode::CancelAggressing),
            4 => Some(StpMode::CancelBoth),
            _ => return Err(GatewayReject::InvalidStp),
        };
        let ins = self
            .instruments
            .find(&o.symbol)
            .ok_or(GatewayReject::UnknownSymbol)?;
        Ok(OrderRequest {
            client_id: ClientId::from_token(o.token),
            instrument: ins.id,
            side,
            ord_type,
            tif,
            price: if ord_type == OrdType::Market {
                0
            } else {
                o.price
            },
            qty: o.qty,
            post_only: o.flags & 1 != 0,
            stp,
        })
    }

    fn binary_violation(&mut self, c: ConnId, v: Violation) {
        match v {
            Violation::LoginRequired => {
                self.binary_send_unsequenced(
                    c,
                    &ServerMessage::LoginRejected(LoginRejected {
                        reason: LoginRejectReason::LoginRequired as u8,
                    }),
                );
            }
            _ => {
                let expected_seq = match v {
                    Violation::SequenceGap { expected, .. } => expected,
                    _ => 0,
                };
                self.binary_send_unsequenced(
                    c,
                    &ServerMessage::Logout(Logout {
                        reason: v.logout_reason() as u8,
                        expected_seq,
                    }),
                );
            }
        }
        self.close_after_flush(c);
    }

    /// Sends an unsequenced message (login answers, logout, heartbeat).
    fn binary_send_unsequenced(&mut self, c: ConnId, m: &ServerMessage) {
        let mut buf = [0u8; wire::MAX_FRAME_LEN];
        let n = m.encode(0, &mut buf).expect("frames fit MAX_FRAME_LEN");
        self.send_bytes(c, &buf[..n]);
        let now = self.now_ns;
        self.conns[c as usize].bin.on_sent(now);
    }

    /// Sequences a reply for user `s`, stores it for replay, and sends it if connected.
    #[inline]
    fn binary_send(&mut self, s: u16, m: &ServerMessage) {
        let slot = &mut self.sessions[s as usize];
        let user = slot.user.as_mut().expect("binary sessions have user state");
        let frame = user.sequence(m);
        let mut buf = [0u8; wire::MAX_FRAME_LEN];
        let n = frame.len();
        buf[..n].copy_from_slice(frame);
        if let Some(c) = slot.conn {
            if self.conns[c as usize].replay_next.is_some() {
                // Stored in the log; the replay will deliver it in order.
                return;
            }
            self.send_bytes(c, &buf[..n]);
            let now = self.now_ns;
            self.conns[c as usize].bin.on_sent(now);
        }
    }

    fn ts(&self) -> u64 {
        self.wall_ns as u64
    }

    fn binary_order_reject(&mut self, s: u16, token: u64, reason: u16) {
        self.count_reject(reason);
        let m = ServerMessage::Rejected(OrderRejected {
            timestamp_ns: self.ts(),
            token,
            reason,
        });
        self.binary_send(s, &m);
    }

    fn binary_cancel_reject(&mut self, s: u16, token: u64, reason: u16) {
        self.count_cancel_reject(reason);
        let m = ServerMessage::CancelRejected(CancelRejected {
            timestamp_ns: self.ts(),
            token,
            reason,
        });
        self.binary_send(s, &m);
    }

    fn binary_mass_reject(&mut self, s: u16, token: u64) {
        // A mass cancel that could not be sent is acknowledged with nothing cancelled.
        let m = ServerMessage::MassCancelAck(MassCancelAck {
            timestamp_ns: self.ts(),
            token,
            count: 0,
        });
        self.binary_send(s, &m);
    }

    /// Renders an engine reply for binary user `s`.
    pub(super) fn binary_reply(&mut self, s: u16, reply: &Reply) {
        let ts = self.ts();
        let m = match *reply {
            Reply::Accepted { slot } => {
                let o = self.orders.get(slot);
                let ins = self
                    .instruments
                    .get(o.instrument)
                    .expect("known instrument");
                ServerMessage::Accepted(OrderAccepted {
                    timestamp_ns: ts,
                    token: o.client_id.token(),
                    order_id: self.orders.order_id(slot),
                    price: o.price,
                    qty: o.qty,
                    symbol: ins.symbol,
                    side: side_byte(o.side),
                    ord_type: if o.ord_type == OrdType::Market {
                        b'M'
                    } else {
                        b'L'
                    },
                    tif: tif_byte(o.tif),
                    flags: o.post_only as u8,
                })
            }
            Reply::Rejected { slot, reason } => ServerMessage::Rejected(OrderRejected {
                timestamp_ns: ts,
                token: self.orders.get(slot).client_id.token(),
                reason,
            }),
            Reply::Fill {
                slot,
                exec_id,
                price,
                qty,
                leaves,
                maker,
            } => {
                let o = self.orders.get(slot);
                ServerMessage::Executed(OrderExecuted {
                    timestamp_ns: ts,
                    token: o.client_id.token(),
                    exec_id,
                    price,
                    qty,
                    leaves,
                    cum_qty: o.cum_qty,
                    liquidity: if maker { b'A' } else { b'R' },
                })
            }
            Reply::Cancelled {
                slot, qty, reason, ..
            } => ServerMessage::Cancelled(OrderCancelled {
                timestamp_ns: ts,
                token: self.orders.get(slot).client_id.token(),
                cancelled_qty: qty,
                reason: reason as u8,
            }),
            Reply::Replaced {
                slot,
                priority_kept,
                leaves,
            } => {
                let o = self.orders.get(slot);
                ServerMessage::Replaced(OrderReplaced {
                    timestamp_ns: ts,
                    orig_token: o.orig_client_id.token(),
                    new_token: o.client_id.token(),
                    price: o.price,
                    qty: o.qty,
                    leaves,
                    priority_kept: priority_kept as u8,
                })
            }
            Reply::CancelRejected { orig, reason, .. } => {
                ServerMessage::CancelRejected(CancelRejected {
                    timestamp_ns: ts,
                    token: orig.token(),
                    reason,
                })
            }
            Reply::MassCancelDone { request, count, .. } => {
                ServerMessage::MassCancelAck(MassCancelAck {
                    timestamp_ns: ts,
                    token: request.token(),
                    count,
                })
            }
        };
        self.binary_send(s, &m);
    }

    /// Heartbeat and timeout handling for binary connection `c`.
    pub(super) fn binary_timer(&mut self, c: ConnId) {
        let now = self.now_ns;
        match self.conns[c as usize].bin.on_timer(now) {
            TimerAction::None => {}
            TimerAction::SendHeartbeat => {
                self.binary_send_unsequenced(c, &ServerMessage::Heartbeat(wire::Heartbeat {}));
            }
            TimerAction::TimedOut => {
                self.binary_send_unsequenced(
                    c,
                    &ServerMessage::Logout(Logout {
                        reason: LogoutReason::HeartbeatTimeout as u8,
                        expected_seq: 0,
                    }),
                );
                self.close_cause = Some(DisconnectCause::HeartbeatTimeout);
                self.close_after_flush(c);
            }
        }
    }

    /// Logs binary connection `c` out because the appliance is stopping.
    pub(super) fn binary_shutdown(&mut self, c: ConnId) {
        self.binary_send_unsequenced(
            c,
            &ServerMessage::Logout(Logout {
                reason: LogoutReason::Shutdown as u8,
                expected_seq: 0,
            }),
        );
        self.conns[c as usize].bin.close();
        self.close_cause = Some(DisconnectCause::Shutdown);
        self.close_after_flush(c);
    }
}

fn side_byte(s: Side) -> u8 {
    match s {
        Side::Buy => b'B',
        Side::Sell => b'S',
    }
}

fn tif_byte(t: TimeInForce) -> u8 {
    match t {
        TimeInForce::Day => b'0',
        TimeInForce::Gtc => b'1',
        TimeInForce::Ioc => b'3',
        TimeInForce::Fok => b'4',
    }
}

//! The binary protocol on top of the gateway core: frames in, order operations out; engine
//! replies in, sequenced frames out.
//!
//! Two pieces of state: a [`BinaryUser`] per configured user (sequence numbers and the replay
//! log, for the whole run) and, in the handler, one [`Connection`] per connection slot (login
//! state and heartbeat timers, plus the replay cursor while a reconnecting client catches up).

use super::audit::{AuditEvent, InlineId, RejectInfo, RejectKind};
use super::conn::{ConnId, ConnState};
use super::core::{Arrival, Core, GatewaySizing, OrderRequest, Reply};
use super::orders::ClientId;
use super::session::SessionInfo;
use crate::binary::session::{Connection, Inbound, TimerAction, UserState, Violation};
use crate::binary::wire::{
    self, frame_len, symbol_str, CancelRejected, EnterOrder, LoginRejectReason, LoginRejected,
    Logout, LogoutReason, MassCancelAck, OrderAccepted, OrderCancelled, OrderExecuted,
    OrderRejected, OrderReplaced, ServerMessage,
};
use crate::engine::{OrdType, Side, StpMode, TimeInForce};
use crate::vocab::{DisconnectCause, GatewayReject, Protocol, RejectCode};

/// A configured binary user's state for the whole run.
pub struct BinaryUser {
    /// Sequence numbers and the replay log.
    pub state: UserState,
}

impl BinaryUser {
    /// A user with its replay log reserved (cold path).
    pub fn new(sizing: &GatewaySizing) -> Self {
        Self {
            state: UserState::new(sizing.replay_log_bytes, sizing.replay_log_bytes / 32),
        }
    }
}

/// What the handler needs the gateway to do before it can go on with a connection's input.
#[derive(Clone, Copy, Debug)]
pub enum BinaryStep {
    /// Everything buffered was handled (or the connection stopped).
    Done,
    /// An unbound connection sent a Login (consumed): find the user, check the password,
    /// then call [`BinaryHandler::login`] or [`BinaryHandler::reject_login`], and call
    /// [`BinaryHandler::input`] again for the rest.
    Login(wire::Login),
}

struct ConnSlot {
    bin: Connection,
    /// Replay in progress: the next sequence number to copy from the user's log.
    replay_next: Option<u32>,
}

/// The binary protocol handler of one gateway.
pub struct BinaryHandler {
    conns: Vec<ConnSlot>,
    replaying: usize,
}

impl BinaryHandler {
    /// One connection state per slot (cold path).
    pub fn new(max_connections: usize) -> Self {
        Self {
            conns: (0..max_connections)
                .map(|_| ConnSlot {
                    bin: Connection::new(0),
                    replay_next: None,
                })
                .collect(),
            replaying: 0,
        }
    }

    /// A binary connection was accepted into slot `c`.
    pub fn on_accept(&mut self, c: ConnId, now_ns: u64) {
        let slot = &mut self.conns[c as usize];
        slot.bin = Connection::new(now_ns);
        if slot.replay_next.take().is_some() {
            self.replaying -= 1;
        }
    }

    /// Connection `c` left its session: any replay stops.
    pub fn on_detached(&mut self, c: ConnId) {
        if self.conns[c as usize].replay_next.take().is_some() {
            self.replaying -= 1;
        }
    }

    /// Whether any connection is replaying.
    #[inline]
    pub fn replaying(&self) -> bool {
        self.replaying > 0
    }

    /// Whether connection `c` is replaying.
    #[inline]
    pub fn is_replaying(&self, c: ConnId) -> bool {
        self.conns[c as usize].replay_next.is_some()
    }

    /// Frames and handles everything buffered on binary connection `c` (bound to `session`,
    /// or not yet logged in).
    pub fn input(
        &mut self,
        core: &mut Core,
        c: ConnId,
        mut session: Option<(&SessionInfo, &mut BinaryUser)>,
    ) -> BinaryStep {
        // Frames are borrowed from the buffer while the core is updated; it goes back below
        // (a pointer swap, no copy).
        let mut input = core.take_input(c);
        let mut pos = 0;
        let mut step = BinaryStep::Done;
        let t_recv = core.conn(c).t_recv;
        loop {
            if core.state(c) != ConnState::Open {
                break;
            }
            let data = &input.data()[pos..];
            let n = match frame_len(data) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(_) => {
                    // No trustworthy frame boundary: close without a reply.
                    core.close_now(c, DisconnectCause::ProtocolError);
                    break;
                }
            };
            if !core.input_ready(c) {
                core.pause(c);
                break;
            }
            pos += n;
            core.count_in(Protocol::Binary);
            let now = core.now_ns;
            let user = session.as_mut().map(|(_, u)| &mut u.state);
            let inbound = match self.conns[c as usize].bin.on_frame(now, &data[..n], user) {
                Ok(i) => i,
                Err(v) => {
                    self.violation(core, c, v);
                    break;
                }
            };
            let Some((info, user)) = session.as_mut() else {
                if let Inbound::Login(l) = inbound {
                    step = BinaryStep::Login(l);
                    break;
                }
                continue;
            };
            let seq = wire::read_header(&data[..n]).seq as u64;
            let at = Arrival {
                t_recv,
                seq,
                applied: core.already_applied(info.local, seq),
            };
            // A resend of a message applied before a restart is not applied again (a mass
            // cancel may still owe some engines).
            core.count_session_in(info.local);
            core.on_behalf = Some(info.local);
            if at.applied == 0 || matches!(inbound, Inbound::MassCancel(_)) {
                self.inbound(core, c, info, user, inbound, at);
            }
            core.on_behalf = None;
            if core.take_throttle_trip().is_some() {
                // Past its throttle under the `disconnect` policy: refused, then logged out.
                self.log_out(core, c, LogoutReason::Throttled, DisconnectCause::Throttled);
                break;
            }
        }
        input.consume(pos);
        core.put_input(c, input);
        step
    }

    fn inbound(
        &mut self,
        core: &mut Core,
        c: ConnId,
        info: &SessionInfo,
        user: &mut BinaryUser,
        inbound: Inbound,
        at: Arrival,
    ) {
        let who = info.who();
        match inbound {
            Inbound::Enter(o) => {
                let result = order_request(core, &o).and_then(|req| core.enter(&who, &req, at));
                if let Err(r) = result {
                    core.count_reject(r.code());
                    audit_reject(core, info, RejectKind::Order, r.code(), o.token, at.seq);
                    let m = ServerMessage::Rejected(OrderRejected {
                        timestamp_ns: core.wall_ns as u64,
                        token: o.token,
                        reason: r.code(),
                    });
                    self.send(core, info, user, &m);
                }
            }
            Inbound::Cancel(x) => {
                let id = ClientId::from_token(x.token);
                if let Err((r, _)) = core.cancel(&who, &id, id, at) {
                    audit_reject(core, info, RejectKind::Cancel, r.code(), x.token, at.seq);
                    self.cancel_reject(core, info, user, x.token, r.code());
                }
            }
            Inbound::Replace(r) => {
                let orig = ClientId::from_token(r.orig_token);
                let new = ClientId::from_token(r.new_token);
                if let Err((e, _)) = core.replace(&who, &orig, new, Some(r.price), r.qty, at) {
                    let (code, token) = (e.code(), r.orig_token);
                    audit_reject(core, info, RejectKind::Cancel, code, token, at.seq);
                    self.cancel_reject(core, info, user, r.orig_token, e.code());
                }
            }
            Inbound::MassCancel(m) => {
                let instrument = if symbol_str(&m.symbol).is_empty() {
                    Ok(None)
                } else {
                    core.instruments
                        .find(&m.symbol)
                        .map(|i| Some(i.id))
                        .ok_or(())
                };
                let sent = instrument.and_then(|i| {
                    core.mass_cancel(&who, ClientId::from_token(m.token), i, None, at)
                        .map_err(|_| ())
                });
                if sent.is_err() {
                    // A mass cancel that could not be sent is acknowledged with nothing
                    // cancelled.
                    let ack = ServerMessage::MassCancelAck(MassCancelAck {
                        timestamp_ns: core.wall_ns as u64,
                        token: m.token,
                        count: 0,
                    });
                    self.send(core, info, user, &ack);
                }
            }
            Inbound::Logout => {
                self.send_unsequenced(
                    core,
                    c,
                    &ServerMessage::Logout(Logout {
                        reason: LogoutReason::Requested as u8,
                        expected_seq: 0,
                    }),
                );
                core.close_after_flush(c, DisconnectCause::Logout);
            }
            Inbound::Nothing { .. } | Inbound::Login(_) => {}
        }
    }

    /// Accepts `login` on connection `c` for `user`, whose credentials the gateway checked:
    /// answers LoginAccepted and starts the replay the client asked for. The gateway binds
    /// the session when this returns `Ok`.
    pub fn login(
        &mut self,
        core: &mut Core,
        c: ConnId,
        user: &mut BinaryUser,
        login: &wire::Login,
    ) -> Result<(), LoginRejectReason> {
        let now = core.now_ns;
        let (next_out, oldest) = (user.state.next_out_seq, user.state.oldest_replayable());
        let accepted = self.conns[c as usize]
            .bin
            .accept_login(now, login, &user.state)?;
        self.send_unsequenced(core, c, &ServerMessage::LoginAccepted(accepted));
        if login.next_server_seq > 0 && login.next_server_seq < next_out {
            // Replay from the requested number (or the oldest still kept). Frames are pumped
            // from the log as output space allows (`pump_replay`); live replies wait behind
            // the replay so the client sees one ordered stream.
            self.conns[c as usize].replay_next = Some(login.next_server_seq.max(oldest));
            self.replaying += 1;
            self.pump_replay(core, c, user);
        }
        Ok(())
    }

    /// Refuses a login on connection `c` and closes it once the answer is sent.
    pub fn reject_login(&mut self, core: &mut Core, c: ConnId, reason: LoginRejectReason) {
        use super::audit::{AuditEvent, RefuseReason};
        let why = match reason {
            LoginRejectReason::AlreadyLoggedIn => RefuseReason::AlreadyConnected,
            LoginRejectReason::NotAuthorized => RefuseReason::BadCredentials,
            _ => RefuseReason::UnknownSession,
        };
        core.audit(c, None, AuditEvent::LogonRefused(why));
        self.send_unsequenced(
            core,
            c,
            &ServerMessage::LoginRejected(LoginRejected {
                reason: reason as u8,
            }),
        );
        core.close_after_flush(c, DisconnectCause::ProtocolError);
    }

    /// Copies replayed frames into `c`'s output while they fit; ends the replay when caught up.
    pub fn pump_replay(&mut self, core: &mut Core, c: ConnId, user: &BinaryUser) {
        let slot = &mut self.conns[c as usize];
        let Some(mut seq) = slot.replay_next else {
            return;
        };
        let log = &user.state;
        while seq < log.next_out_seq {
            let Some(frame) = log.frame(seq) else {
                // Dropped from the log while waiting: resume at the oldest kept.
                seq = log.oldest_replayable().max(seq + 1);
                continue;
            };
            if !core.output(c).append(frame) {
                break;
            }
            seq += 1;
        }
        if seq >= log.next_out_seq {
            slot.replay_next = None;
            self.replaying -= 1;
        } else {
            slot.replay_next = Some(seq);
        }
        core.mark_dirty(c);
    }

    fn violation(&mut self, core: &mut Core, c: ConnId, v: Violation) {
        match v {
            Violation::LoginRequired => {
                self.send_unsequenced(
                    core,
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
                self.send_unsequenced(
                    core,
                    c,
                    &ServerMessage::Logout(Logout {
                        reason: v.logout_reason() as u8,
                        expected_seq,
                    }),
                );
            }
        }
        core.close_after_flush(c, DisconnectCause::ProtocolError);
    }

    /// Sends an unsequenced message (login answers, logout, heartbeat).
    fn send_unsequenced(&mut self, core: &mut Core, c: ConnId, m: &ServerMessage) {
        let mut buf = [0u8; wire::MAX_FRAME_LEN];
        let n = m.encode(0, &mut buf).expect("frames fit MAX_FRAME_LEN");
        core.send(c, &buf[..n]);
        self.conns[c as usize].bin.on_sent(core.now_ns);
    }

    /// Sequences a reply for `user`, stores it for replay, and sends it if connected.
    #[inline]
    fn send(
        &mut self,
        core: &mut Core,
        info: &SessionInfo,
        user: &mut BinaryUser,
        m: &ServerMessage,
    ) {
        let frame = user.state.sequence(m);
        if let Some(c) = info.conn {
            if self.conns[c as usize].replay_next.is_some() {
                // Stored in the log; the replay will deliver it in order.
                return;
            }
            core.send(c, frame);
            self.conns[c as usize].bin.on_sent(core.now_ns);
        }
    }

    fn cancel_reject(
        &mut self,
        core: &mut Core,
        info: &SessionInfo,
        user: &mut BinaryUser,
        token: u64,
        reason: u16,
    ) {
        core.count_cancel_reject(reason);
        let m = ServerMessage::CancelRejected(CancelRejected {
            timestamp_ns: core.wall_ns as u64,
            token,
            reason,
        });
        self.send(core, info, user, &m);
    }

    /// Renders an engine reply for `user`.
    pub fn render(
        &mut self,
        core: &mut Core,
        info: &SessionInfo,
        user: &mut BinaryUser,
        reply: &Reply,
    ) {
        let ts = core.wall_ns as u64;
        match *reply {
            Reply::Rejected { slot, reason } => {
                let token = core.orders.get(slot).client_id.token();
                audit_reject(core, info, RejectKind::Order, reason, token, 0);
            }
            Reply::CancelRejected { orig, reason, .. } => {
                audit_reject(core, info, RejectKind::Cancel, reason, orig.token(), 0);
            }
            _ => {}
        }
        let orders = &core.orders;
        let m = match *reply {
            Reply::Accepted { slot } => {
                let o = orders.get(slot);
                let ins = core
                    .instruments
                    .get(o.instrument)
                    .expect("known instrument");
                ServerMessage::Accepted(OrderAccepted {
                    timestamp_ns: ts,
                    token: o.client_id.token(),
                    order_id: orders.order_id(slot),
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
                token: orders.get(slot).client_id.token(),
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
                let o = orders.get(slot);
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
                token: orders.get(slot).client_id.token(),
                cancelled_qty: qty,
                reason: reason as u8,
            }),
            Reply::Replaced {
                slot,
                priority_kept,
                leaves,
            } => {
                let o = orders.get(slot);
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
        self.send(core, info, user, &m);
    }

    /// Heartbeat and timeout handling for binary connection `c`.
    pub fn timer(&mut self, core: &mut Core, c: ConnId) {
        if core.conn(c).paused {
            // Its input waits on us (back-pressure): not silence.
            self.conns[c as usize].bin.note_alive(core.now_ns);
        }
        match self.conns[c as usize].bin.on_timer(core.now_ns) {
            TimerAction::None => {}
            TimerAction::SendHeartbeat => {
                self.send_unsequenced(core, c, &ServerMessage::Heartbeat(wire::Heartbeat {}));
            }
            TimerAction::TimedOut => {
                self.send_unsequenced(
                    core,
                    c,
                    &ServerMessage::Logout(Logout {
                        reason: LogoutReason::HeartbeatTimeout as u8,
                        expected_seq: 0,
                    }),
                );
                core.close_after_flush(c, DisconnectCause::HeartbeatTimeout);
            }
        }
    }

    /// Logs binary connection `c` out because the appliance is stopping.
    pub fn shutdown(&mut self, core: &mut Core, c: ConnId) {
        self.log_out(core, c, LogoutReason::Shutdown, DisconnectCause::Shutdown);
    }

    /// Sends Logout `reason` on connection `c` and closes it once flushed.
    pub fn log_out(
        &mut self,
        core: &mut Core,
        c: ConnId,
        reason: LogoutReason,
        cause: DisconnectCause,
    ) {
        self.send_unsequenced(
            core,
            c,
            &ServerMessage::Logout(Logout {
                reason: reason as u8,
                expected_seq: 0,
            }),
        );
        self.conns[c as usize].bin.close();
        core.close_after_flush(c, cause);
    }

    /// When connection `c` next needs its timer (monotonic ns), if it has a heartbeat running.
    pub fn next_deadline(&self, c: ConnId) -> Option<u64> {
        self.conns[c as usize].bin.next_deadline()
    }
}

/// Validates an EnterOrder's enumerations and symbol into an order request.
#[inline]
fn order_request(core: &Core, o: &EnterOrder) -> Result<OrderRequest, GatewayReject> {
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
    let ins = core
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

/// Hands a refusal of `token` (the message with sequence number `seq`, 0: an engine reply)
/// to the audit trail: `code` is the binary reject code.
#[cold]
fn audit_reject(
    core: &mut Core,
    info: &SessionInfo,
    kind: RejectKind,
    code: u16,
    token: u64,
    seq: u64,
) {
    let reason = RejectCode::from_code(code).map_or("other", |c| c.label());
    let r = RejectInfo {
        kind,
        code: code as u32,
        reason,
        cl_ord_id: InlineId::from_u64(token),
        seq,
        ref_tag: 0,
    };
    core.audit_session(
        info.local,
        info.conn,
        Protocol::Binary,
        AuditEvent::Reject(r),
    );
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

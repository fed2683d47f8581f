//! One client connection to a venue: login, encoding of [`Op`]s, and decoding of the replies
//! down to the *key* of the request each one answers.
//!
//! Three protocols share the same non-blocking socket handling:
//! - binary (`docs/binary-protocol.md`), through `appliance::binary::wire`;
//! - FIX 4.4, through the `fix` crate's initiator session (so any FIX 4.4 acceptor works);
//! - echo: fixed-size frames to the floor server (`crate::floor`), which answers each with a
//!   fixed-size frame carrying the request's first 8 bytes (the key) back.
//!
//! Request keys. A reply is matched to the request it answers, not to the connection's FIFO,
//! because venues also send unsolicited messages (passive fills, STP cancels):
//! - binary: a new order is keyed `token << 1` and answered by `OrderAccepted`/`OrderRejected`
//!   with that token; a cancel or replace is keyed `order_token << 1 | 1` and answered by
//!   `OrderCancelled`/`CancelRejected` (token) or `OrderReplaced` (orig token). A fill never
//!   matches a pending request (fills are not answers);
//! - FIX: every request has a fresh ClOrdID (11), which is the key; the first
//!   ExecutionReport (35=8) or OrderCancelReject (35=9) carrying it is the answer.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use fix::app::client::{CancelOrder, NewOrder, ReplaceOrder};
use fix::app::outbound::Id;
use fix::app::{OrdType as FixOrdType, Side as FixSide, TimeInForce as FixTif};
use fix::session::{Event, MemoryStore, Scratch, Session, SessionConfig};

use crate::orders::{Op, PriceGrid, Side, SymbolSpec, Tif};

/// Wire protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The appliance's binary protocol.
    Binary,
    /// FIX 4.4.
    Fix,
    /// Plain fixed-size ping-pong against the floor server.
    Echo {
        /// Bytes per request (at least 8).
        request: usize,
        /// Bytes per reply (at least 8).
        reply: usize,
    },
}

impl Protocol {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Binary => "binary",
            Protocol::Fix => "fix",
            Protocol::Echo { .. } => "tcp-floor",
        }
    }
}

/// Who the connection logs in as.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Binary username, or FIX SenderCompID.
    pub user: String,
    /// FIX TargetCompID (the venue's CompID).
    pub target: String,
    /// FIX Username (553), if the venue wants one.
    pub username: Option<String>,
    /// Password (binary password field / FIX 554).
    pub password: Option<String>,
    /// FIX: send ResetSeqNumFlag=Y on Logon (start both sides at 1).
    pub reset_seq: bool,
}

/// The reply key of a request (see the module docs).
#[inline]
pub fn request_key(proto: Protocol, op: &Op) -> u64 {
    match (proto, op) {
        (Protocol::Fix, Op::New { token, .. }) => *token,
        (Protocol::Fix, Op::Cancel { request_token, .. }) => *request_token,
        (Protocol::Fix, Op::Replace { new_token, .. }) => *new_token,
        (_, Op::New { token, .. }) => token << 1,
        (_, Op::Cancel { token, .. }) => (token << 1) | 1,
        (_, Op::Replace { orig, .. }) => (orig << 1) | 1,
    }
}

/// The key a binary reply answers, if it answers a request at all.
#[inline]
pub fn binary_reply_key(m: &ServerMessage) -> Option<u64> {
    match m {
        ServerMessage::Accepted(a) => Some(a.token << 1),
        ServerMessage::Rejected(r) => Some(r.token << 1),
        ServerMessage::Cancelled(c) => Some((c.token << 1) | 1),
        ServerMessage::CancelRejected(c) => Some((c.token << 1) | 1),
        ServerMessage::Replaced(r) => Some((r.orig_token << 1) | 1),
        _ => None,
    }
}

/// Parses a decimal ClOrdID (the bench writes them as numbers).
#[inline]
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    Some(n)
}

/// Wall-clock nanoseconds since the Unix epoch (FIX SendingTime, session timers).
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

enum State {
    Binary {
        next_seq: u32,
    },
    Fix {
        session: Box<Session<MemoryStore>>,
        scratch: Box<Scratch>,
    },
    Echo {
        request: usize,
        reply: usize,
    },
}

/// One non-blocking client connection.
pub struct Conn {
    stream: TcpStream,
    state: State,
    proto: Protocol,
    inbuf: Vec<u8>,
    in_len: usize,
    out: Vec<u8>,
    out_pos: usize,
    /// The peer closed or the session ended.
    pub closed: bool,
    /// Bytes written and read (payload), for the average message sizes.
    pub bytes_out: u64,
    /// See [`Conn::bytes_out`].
    pub bytes_in: u64,
    /// Messages received that answered no pending request (fills, STP cancels, heartbeats).
    pub unsolicited: u64,
    /// Why the connection closed, when the venue said.
    pub close_reason: Option<String>,
    last_timer: Instant,
}

const INBUF: usize = 1 << 20;

impl Conn {
    /// Connects and logs in (blocking, bounded by `timeout`), then switches the socket to
    /// non-blocking.
    pub fn open(
        addr: SocketAddr,
        proto: Protocol,
        id: &Identity,
        timeout: Duration,
    ) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let state = match proto {
            Protocol::Binary => State::Binary { next_seq: 1 },
            Protocol::Fix => {
                let mut cfg = SessionConfig::initiator(&id.user, &id.target);
                cfg.heart_bt_int = 30;
                cfg.reset_on_logon = id.reset_seq;
                cfg.username = id.username.clone();
                cfg.password = id.password.clone();
                cfg.validate = false;
                State::Fix {
                    session: Box::new(Session::new(
                        cfg,
                        MemoryStore::with_capacity(32 << 20, 1 << 18),
                    )),
                    scratch: Box::new(Scratch::new(8192)),
                }
            }
            Protocol::Echo { request, reply } => {
                assert!(
                    request >= 8 && reply >= 8,
                    "echo frames carry an 8-byte key"
                );
                State::Echo { request, reply }
            }
        };
        let mut c = Conn {
            stream,
            state,
            proto,
            inbuf: vec![0; INBUF],
            in_len: 0,
            out: Vec::with_capacity(1 << 20),
            out_pos: 0,
            closed: false,
            bytes_out: 0,
            bytes_in: 0,
            unsolicited: 0,
            close_reason: None,
            last_timer: Instant::now(),
        };
        c.stream.set_nonblocking(true)?;
        c.login(id, timeout)?;
        c.bytes_in = 0;
        c.bytes_out = 0;
        Ok(c)
    }

    fn login(&mut self, id: &Identity, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        match &mut self.state {
            State::Echo { .. } => return Ok(()),
            State::Binary { .. } => {
                let login = wire::Login {
                    username: wire::credential(&id.user).context("username longer than 16")?,
                    password: wire::credential(id.password.as_deref().unwrap_or(""))
                        .context("password longer than 16")?,
                    next_server_seq: 0,
                    heartbeat_ms: 30_000,
                };
                let mut buf = [0u8; 64];
                let n = ClientMessage::Login(login).encode(0, &mut buf).unwrap();
                self.out.extend_from_slice(&buf[..n]);
            }
            State::Fix { session, .. } => {
                let now = wall_ns();
                session.on_connected(now);
                session
                    .initiate_logon(now, &mut self.out)
                    .map_err(|e| anyhow::anyhow!("FIX logon: {e:?}"))?;
            }
        }
        self.flush()?;
        loop {
            if Instant::now() > deadline {
                bail!("{}: no login answer within {timeout:?}", id.user);
            }
            self.read_some()?;
            if self.closed {
                bail!(
                    "{}: the venue closed the connection at login{}",
                    id.user,
                    self.close_reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(" ({r})"))
                );
            }
            match &mut self.state {
                State::Binary { next_seq } => {
                    if let Ok(Some(n)) = wire::frame_len(&self.inbuf[..self.in_len]) {
                        let m = ServerMessage::decode(&self.inbuf[..n])
                            .map_err(|e| anyhow::anyhow!("login answer: {e:?}"))?;
                        self.inbuf.copy_within(n..self.in_len, 0);
                        self.in_len -= n;
                        match m {
                            ServerMessage::LoginAccepted(a) => {
                                *next_seq = a.next_client_seq;
                                return Ok(());
                            }
                            ServerMessage::LoginRejected(r) => {
                                bail!("{}: login rejected, reason {}", id.user, r.reason)
                            }
                            other => bail!("{}: unexpected login answer {other:?}", id.user),
                        }
                    }
                }
                State::Fix { .. } => {
                    self.poll_replies(|_| false);
                    if let State::Fix { session, .. } = &self.state {
                        if session.is_logged_on() {
                            return Ok(());
                        }
                    }
                }
                State::Echo { .. } => unreachable!(),
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The socket's file descriptor (for `ppoll`).
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Bytes waiting to be written.
    pub fn has_output(&self) -> bool {
        self.out_pos < self.out.len()
    }

    /// Encodes `op` into the output buffer (call [`Conn::flush`] to write) and returns its key.
    #[inline]
    pub fn encode(&mut self, op: &Op, symbols: &[SymbolSpec], grid: PriceGrid) -> u64 {
        let key = request_key(self.proto, op);
        match &mut self.state {
            State::Binary { next_seq } => {
                let m = binary_message(op, symbols);
                let mut buf = [0u8; 64];
                let n = m
                    .encode(*next_seq, &mut buf)
                    .expect("64 bytes hold any order");
                *next_seq += 1;
                self.out.extend_from_slice(&buf[..n]);
            }
            State::Fix { session, .. } => {
                let now = wall_ns();
                let r = fix_send(session, op, symbols, grid, now, &mut self.out);
                if let Err(e) = r {
                    self.closed = true;
                    self.close_reason = Some(format!("FIX send: {e}"));
                }
            }
            State::Echo { request, .. } => {
                let start = self.out.len();
                self.out.resize(start + *request, b'x');
                self.out[start..start + 8].copy_from_slice(&key.to_le_bytes());
            }
        }
        key
    }

    /// Writes as much pending output as the socket takes.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => {
                    self.out_pos += n;
                    self.bytes_out += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.closed = true;
                    self.close_reason = Some(e.to_string());
                    break;
                }
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// One non-blocking read into the input buffer; returns the bytes read.
    fn read_some(&mut self) -> anyhow::Result<usize> {
        if self.in_len == self.inbuf.len() {
            bail!("input buffer full: a message larger than {INBUF} bytes?");
        }
        match self.stream.read(&mut self.inbuf[self.in_len..]) {
            Ok(0) => {
                self.closed = true;
                Ok(0)
            }
            Ok(n) => {
                self.in_len += n;
                self.bytes_in += n as u64;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => Ok(0),
            Err(e) => {
                self.closed = true;
                self.close_reason = Some(e.to_string());
                Ok(0)
            }
        }
    }

    /// Reads what the socket has and hands the key of every reply to `on_key`, which says
    /// whether the key answered a pending request. Returns whether any bytes arrived.
    pub fn poll(&mut self, on_key: impl FnMut(u64) -> bool) -> anyhow::Result<bool> {
        let mut any = false;
        loop {
            let n = self.read_some()?;
            if n == 0 {
                break;
            }
            any = true;
            if self.in_len < self.inbuf.len() / 2 {
                break;
            }
        }
        if any || matches!(self.state, State::Fix { .. }) {
            self.poll_replies(on_key);
        }
        Ok(any)
    }

    fn poll_replies(&mut self, mut on_key: impl FnMut(u64) -> bool) {
        let mut pos = 0;
        match &mut self.state {
            State::Binary { .. } => loop {
                match wire::frame_len(&self.inbuf[pos..self.in_len]) {
                    Ok(Some(n)) => {
                        let frame = &self.inbuf[pos..pos + n];
                        pos += n;
                        match ServerMessage::decode(frame) {
                            Ok(m) => {
                                let matched = binary_reply_key(&m).is_some_and(&mut on_key);
                                if !matched {
                                    self.unsolicited += 1;
                                }
                                if let ServerMessage::Logout(l) = m {
                                    self.closed = true;
                                    self.close_reason = Some(format!(
                                        "binary Logout reason {} expected_seq {}",
                                        l.reason, l.expected_seq
                                    ));
                                }
                            }
                            Err(e) => {
                                self.closed = true;
                                self.close_reason = Some(format!("undecodable reply {e:?}"));
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.closed = true;
                        self.close_reason = Some(format!("bad framing from the venue {e:?}"));
                        pos = self.in_len;
                        break;
                    }
                }
            },
            State::Fix { session, scratch } => {
                let now = wall_ns();
                loop {
                    let r = session.on_input(
                        &self.inbuf[pos..self.in_len],
                        scratch,
                        now,
                        &mut self.out,
                    );
                    pos += r.consumed;
                    match r.event {
                        Event::NeedMore => break,
                        Event::App(m) => {
                            let t = m.msg_type();
                            let matched = (t == b"8" || t == b"9")
                                && m.get(11).and_then(parse_u64).is_some_and(&mut on_key);
                            if !matched {
                                self.unsolicited += 1;
                            }
                        }
                        Event::Disconnect(d) => {
                            self.closed = true;
                            self.close_reason = Some(format!("FIX session ended: {d:?}"));
                            break;
                        }
                        _ => {}
                    }
                }
                // The rest of an answer to the venue's ResendRequest, a batch per pass (our new
                // messages are held back until it is out).
                if session.resend_pending() && self.out.len() < 1 << 20 {
                    if let Err(d) = session.pump_resend(now, &mut self.out) {
                        self.closed = true;
                        self.close_reason = Some(format!("FIX resend: {d:?}"));
                    }
                }
                if self.last_timer.elapsed() > Duration::from_millis(200) {
                    self.last_timer = Instant::now();
                    if let Some(d) = session.on_timer(now, &mut self.out) {
                        self.closed = true;
                        self.close_reason = Some(format!("FIX session timer: {d:?}"));
                    }
                }
            }
            State::Echo { reply, .. } => {
                while self.in_len - pos >= *reply {
                    let mut k = [0u8; 8];
                    k.copy_from_slice(&self.inbuf[pos..pos + 8]);
                    pos += *reply;
                    if !on_key(u64::from_le_bytes(k)) {
                        self.unsolicited += 1;
                    }
                }
            }
        }
        if pos > 0 {
            self.inbuf.copy_within(pos..self.in_len, 0);
            self.in_len -= pos;
        }
        // Session answers (heartbeats, test request replies) written while decoding.
        let _ = self.flush();
    }

    /// Cancels every order the session left resting (a mass cancel with request id
    /// `request_token`, so the next run starts on an empty book; `None`: leave them), then
    /// logs out politely (bounded wait) and closes.
    pub fn logout(&mut self, request_token: Option<u64>, timeout: Duration) {
        match &mut self.state {
            State::Binary { next_seq } => {
                let mut buf = [0u8; 32];
                if let Some(token) = request_token {
                    let mc = ClientMessage::MassCancel(wire::MassCancel {
                        token,
                        symbol: [b' '; 8],
                    });
                    if let Some(n) = mc.encode(*next_seq, &mut buf) {
                        *next_seq += 1;
                        self.out.extend_from_slice(&buf[..n]);
                    }
                }
                if let Some(n) = ClientMessage::Logout(wire::LogoutRequest {}).encode(0, &mut buf) {
                    self.out.extend_from_slice(&buf[..n]);
                }
            }
            State::Fix { session, .. } => {
                let now = wall_ns();
                if let Some(token) = request_token {
                    let _ = session.send(
                        &fix::app::client::MassCancel {
                            side: None,
                            cl_ord_id: Id::Num(token),
                            symbol: None,
                            transact_time: now,
                        },
                        now,
                        &mut self.out,
                    );
                }
                let _ = session.logout(None, now, &mut self.out);
            }
            State::Echo { .. } => return,
        }
        let _ = self.flush();
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            let _ = self.poll(|_| false);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn binary_message(op: &Op, symbols: &[SymbolSpec]) -> ClientMessage {
    let sym = |i: u16| wire::symbol(&symbols[i as usize].name).unwrap_or([b' '; 8]);
    let side = |s: Side| match s {
        Side::Buy => b'B',
        Side::Sell => b'S',
    };
    match *op {
        Op::New {
            token,
            sym: s,
            side: sd,
            price,
            qty,
            tif,
        } => ClientMessage::EnterOrder(wire::EnterOrder {
            token,
            symbol: sym(s),
            price: price.unwrap_or(0),
            qty,
            side: side(sd),
            ord_type: if price.is_some() { b'L' } else { b'M' },
            tif: match tif {
                Tif::Day => b'0',
                Tif::Gtc => b'1',
                Tif::Ioc => b'3',
            },
            flags: 0,
            stp: 0,
        }),
        Op::Cancel { token, .. } => ClientMessage::CancelOrder(wire::CancelOrder { token }),
        Op::Replace {
            orig,
            new_token,
            price,
            qty,
            ..
        } => ClientMessage::ReplaceOrder(wire::ReplaceOrder {
            orig_token: orig,
            new_token,
            price,
            qty,
        }),
    }
}

fn fix_send(
    session: &mut Session<MemoryStore>,
    op: &Op,
    symbols: &[SymbolSpec],
    grid: PriceGrid,
    now: u64,
    out: &mut Vec<u8>,
) -> Result<u64, String> {
    let side = |s: Side| match s {
        Side::Buy => FixSide::Buy,
        Side::Sell => FixSide::Sell,
    };
    let r = match *op {
        Op::New {
            token,
            sym,
            side: sd,
            price,
            qty,
            tif,
        } => session.send(
            &NewOrder {
                cl_ord_id: Id::Num(token),
                account: None,
                symbol: symbols[sym as usize].name.as_bytes(),
                side: side(sd),
                order_qty: qty,
                ord_type: if price.is_some() {
                    FixOrdType::Limit
                } else {
                    FixOrdType::Market
                },
                price,
                price_scale: grid.decimals,
                time_in_force: match tif {
                    Tif::Day => FixTif::Day,
                    Tif::Gtc => FixTif::GoodTillCancel,
                    Tif::Ioc => FixTif::ImmediateOrCancel,
                },
                transact_time: now,
            },
            now,
            out,
        ),
        Op::Cancel {
            token,
            request_token,
            sym,
            side: sd,
        } => session.send(
            &CancelOrder {
                orig_cl_ord_id: Id::Num(token),
                cl_ord_id: Id::Num(request_token),
                symbol: symbols[sym as usize].name.as_bytes(),
                side: side(sd),
                transact_time: now,
            },
            now,
            out,
        ),
        Op::Replace {
            orig,
            new_token,
            sym,
            side: sd,
            price,
            qty,
        } => session.send(
            &ReplaceOrder {
                orig_cl_ord_id: Id::Num(orig),
                cl_ord_id: Id::Num(new_token),
                symbol: symbols[sym as usize].name.as_bytes(),
                side: side(sd),
                order_qty: qty,
                ord_type: FixOrdType::Limit,
                price: Some(price),
                price_scale: grid.decimals,
                transact_time: now,
            },
            now,
            out,
        ),
    };
    r.map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance::binary::wire::{OrderAccepted, OrderCancelled, OrderExecuted, OrderReplaced};

    #[test]
    fn binary_keys_pair_requests_with_their_answers_and_never_with_fills() {
        let new = Op::New {
            token: 42,
            sym: 0,
            side: Side::Buy,
            price: Some(1),
            qty: 1,
            tif: Tif::Gtc,
        };
        let cancel = Op::Cancel {
            token: 42,
            request_token: 43,
            sym: 0,
            side: Side::Buy,
        };
        let replace = Op::Replace {
            orig: 42,
            new_token: 44,
            sym: 0,
            side: Side::Buy,
            price: 1,
            qty: 1,
        };
        let kn = request_key(Protocol::Binary, &new);
        let kc = request_key(Protocol::Binary, &cancel);
        assert_ne!(
            kn, kc,
            "a cancel racing the ack of its order must not steal it"
        );
        assert_eq!(kc, request_key(Protocol::Binary, &replace));
        let acc = ServerMessage::Accepted(OrderAccepted {
            token: 42,
            ..Default::default()
        });
        let cxl = ServerMessage::Cancelled(OrderCancelled {
            token: 42,
            ..Default::default()
        });
        let rep = ServerMessage::Replaced(OrderReplaced {
            orig_token: 42,
            new_token: 44,
            ..Default::default()
        });
        let fill = ServerMessage::Executed(OrderExecuted {
            token: 42,
            ..Default::default()
        });
        assert_eq!(binary_reply_key(&acc), Some(kn));
        assert_eq!(binary_reply_key(&cxl), Some(kc));
        assert_eq!(binary_reply_key(&rep), Some(kc));
        assert_eq!(binary_reply_key(&fill), None);
        // FIX: the request's own ClOrdID.
        assert_eq!(request_key(Protocol::Fix, &cancel), 43);
        assert_eq!(request_key(Protocol::Fix, &replace), 44);
    }

    #[test]
    fn decimal_ids_parse_strictly() {
        assert_eq!(
            parse_u64(b"18446744073709551"),
            Some(18_446_744_073_709_551)
        );
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"12345678901234567890"), None);
    }
}

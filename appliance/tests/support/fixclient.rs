//! A blocking FIX 4.4 test client: a real `fix` crate initiator session over a TcpStream,
//! collecting the application messages it receives (every wait bounded).
#![allow(dead_code)]

use fix::app::client::{CancelOrder, MassCancel, NewOrder, ReplaceOrder};
use fix::app::outbound::Id;
use fix::app::{OrdType, Side, TimeInForce};
use fix::session::{Event, MemoryStore, Scratch, Session, SessionConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An application message, owned.
#[derive(Debug, Clone)]
pub struct FixMsg {
    pub msg_type: String,
    pub fields: Vec<(u32, String)>,
    /// PossDupFlag (43=Y): a resend of a message sent before.
    pub poss_dup: bool,
    /// MsgSeqNum (34).
    pub seq: u64,
}

impl FixMsg {
    pub fn get(&self, tag: u32) -> Option<&str> {
        self.fields
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_str())
    }
    pub fn req(&self, tag: u32) -> &str {
        self.get(tag)
            .unwrap_or_else(|| panic!("tag {tag} missing in {self:?}"))
    }
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub struct FixClient {
    pub stream: TcpStream,
    pub session: Session<MemoryStore>,
    scratch: Scratch,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    pub received: Vec<FixMsg>,
    pub closed: bool,
}

impl FixClient {
    pub fn connect(addr: SocketAddr, comp: &str) -> Self {
        let mut cfg = SessionConfig::initiator(comp, "APPLIANCE");
        cfg.heart_bt_int = 30;
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Self {
            stream,
            session: Session::new(cfg, MemoryStore::with_capacity(1 << 20, 4096)),
            scratch: Scratch::new(8192),
            inbuf: Vec::new(),
            out: Vec::new(),
            received: Vec::new(),
            closed: false,
        }
    }

    pub fn logon(addr: SocketAddr, comp: &str) -> Self {
        let mut c = Self::connect(addr, comp);
        let now = now_ns();
        c.session.on_connected(now);
        c.session.initiate_logon(now, &mut c.out).unwrap();
        c.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !c.session.is_logged_on() {
            assert!(
                Instant::now() < deadline,
                "no Logon answer from the appliance"
            );
            c.pump();
            assert!(!c.closed, "the appliance closed the connection at logon");
        }
        c
    }

    /// Logs on again over a new connection to `addr`, keeping the session's sequence numbers
    /// and stored messages (a client with a persistent store reconnecting: no reset). Returns
    /// whether the appliance answered the Logon.
    pub fn reconnect(&mut self, addr: SocketAddr) -> bool {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        self.stream = stream;
        self.inbuf.clear();
        self.out.clear();
        self.closed = false;
        self.session.on_disconnected();
        let now = now_ns();
        self.session.on_connected(now);
        self.session.initiate_logon(now, &mut self.out).unwrap();
        self.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.session.is_logged_on() && !self.closed && Instant::now() < deadline {
            self.pump();
        }
        self.session.is_logged_on()
    }

    /// Pumps for `d` (whatever arrives is collected).
    pub fn pump_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline && !self.closed {
            self.pump();
        }
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let _ = self.stream.write_all(&self.out);
            self.out.clear();
        }
    }

    /// Reads once (up to 50 ms) and runs the session over what arrived.
    pub fn pump(&mut self) {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => self.closed = true,
            Ok(n) => self.inbuf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => self.closed = true,
        }
        let now = now_ns();
        let mut pos = 0;
        loop {
            let r =
                self.session
                    .on_input(&self.inbuf[pos..], &mut self.scratch, now, &mut self.out);
            pos += r.consumed;
            match r.event {
                Event::NeedMore => break,
                Event::App(m) => self.received.push(FixMsg {
                    poss_dup: m.poss_dup(),
                    seq: m.seq_num().unwrap_or(0),
                    msg_type: String::from_utf8_lossy(m.msg_type()).into(),
                    fields: m
                        .body_fields()
                        .iter()
                        .map(|f| (f.tag, String::from_utf8_lossy(m.value(f)).into()))
                        .collect(),
                }),
                Event::Disconnect(_) => {
                    self.closed = true;
                    break;
                }
                _ => {}
            }
        }
        self.inbuf.drain(..pos);
        // The rest of an answer to the appliance's ResendRequest (the session writes a batch
        // at a time and holds our new messages back until it is out).
        while let Ok(true) = self.session.pump_resend(now, &mut self.out) {}
        let _ = self.session.on_timer(now, &mut self.out);
        self.flush();
    }

    /// The next application message (panics after 5 s).
    pub fn recv(&mut self) -> FixMsg {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.received.is_empty() {
            assert!(
                Instant::now() < deadline,
                "no application message within 5 s"
            );
            assert!(!self.closed, "connection closed while waiting");
            self.pump();
        }
        self.received.remove(0)
    }

    /// Waits up to `within` for an application message.
    pub fn try_recv(&mut self, within: Duration) -> Option<FixMsg> {
        let deadline = Instant::now() + within;
        while self.received.is_empty() && Instant::now() < deadline && !self.closed {
            self.pump();
        }
        (!self.received.is_empty()).then(|| self.received.remove(0))
    }

    /// Limit (price in units with 4 decimals) or market (price None).
    pub fn order(
        &mut self,
        cl: &str,
        sym: &str,
        side: Side,
        qty: u64,
        price: Option<i64>,
        tif: TimeInForce,
    ) {
        let now = now_ns();
        let m = NewOrder {
            cl_ord_id: Id::Text(cl.as_bytes()),
            account: None,
            symbol: sym.as_bytes(),
            side,
            order_qty: qty,
            ord_type: if price.is_some() {
                OrdType::Limit
            } else {
                OrdType::Market
            },
            price,
            price_scale: 4,
            time_in_force: tif,
            transact_time: now,
        };
        self.session.send(&m, now, &mut self.out).unwrap();
        self.flush();
    }

    /// The bytes of a limit GTC NewOrderSingle, sequenced and stored by the session but not
    /// sent (the caller writes them when it chooses).
    pub fn order_bytes(
        &mut self,
        cl: &str,
        sym: &str,
        side: Side,
        qty: u64,
        price: i64,
    ) -> Vec<u8> {
        let now = now_ns();
        let m = NewOrder {
            cl_ord_id: Id::Text(cl.as_bytes()),
            account: None,
            symbol: sym.as_bytes(),
            side,
            order_qty: qty,
            ord_type: OrdType::Limit,
            price: Some(price),
            price_scale: 4,
            time_in_force: TimeInForce::GoodTillCancel,
            transact_time: now,
        };
        let mut out = Vec::new();
        self.session.send(&m, now, &mut out).unwrap();
        out
    }

    /// Reads raw bytes (bypassing the session) until `needle` has been seen or the
    /// connection closes or `within` passes; returns everything read.
    pub fn read_raw_until(&mut self, needle: &[u8], within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut got = std::mem::take(&mut self.inbuf);
        while Instant::now() < deadline && !got.windows(needle.len()).any(|w| w == needle) {
            let mut tmp = [0u8; 65536];
            match self.stream.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        got
    }

    pub fn cancel(&mut self, cl: &str, orig: &str, sym: &str, side: Side) {
        let now = now_ns();
        let m = CancelOrder {
            orig_cl_ord_id: Id::Text(orig.as_bytes()),
            cl_ord_id: Id::Text(cl.as_bytes()),
            symbol: sym.as_bytes(),
            side,
            transact_time: now,
        };
        self.session.send(&m, now, &mut self.out).unwrap();
        self.flush();
    }

    pub fn replace(&mut self, cl: &str, orig: &str, sym: &str, side: Side, qty: u64, price: i64) {
        let now = now_ns();
        let m = ReplaceOrder {
            orig_cl_ord_id: Id::Text(orig.as_bytes()),
            cl_ord_id: Id::Text(cl.as_bytes()),
            symbol: sym.as_bytes(),
            side,
            order_qty: qty,
            ord_type: OrdType::Limit,
            price: Some(price),
            price_scale: 4,
            transact_time: now,
        };
        self.session.send(&m, now, &mut self.out).unwrap();
        self.flush();
    }

    pub fn mass_cancel(&mut self, cl: &str, sym: Option<&str>) {
        self.mass_cancel_side(cl, sym, None);
    }

    /// A mass cancel of one side only (Side 54).
    pub fn mass_cancel_side(&mut self, cl: &str, sym: Option<&str>, side: Option<Side>) {
        let now = now_ns();
        let m = MassCancel {
            side,
            cl_ord_id: Id::Text(cl.as_bytes()),
            symbol: sym.map(|s| s.as_bytes()),
            transact_time: now,
        };
        self.session.send(&m, now, &mut self.out).unwrap();
        self.flush();
    }

    /// Sends an application message of type `msg_type` whose body is `body` (`|` for SOH),
    /// sequenced and stored by the session.
    pub fn send_body(&mut self, msg_type: &str, body: &str) {
        let now = now_ns();
        let body = body.replace('|', "\x01");
        self.session
            .send_raw(
                msg_type.as_bytes(),
                &[],
                body.as_bytes(),
                now,
                &mut self.out,
            )
            .unwrap();
        self.flush();
    }

    pub fn logout(&mut self) {
        let now = now_ns();
        let _ = self.session.logout(None, now, &mut self.out);
        self.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.closed && Instant::now() < deadline {
            self.pump();
        }
    }
}

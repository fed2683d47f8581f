//! Helpers shared by the integration tests: build FIX messages from readable text and drive a
//! session without sockets.
#![allow(dead_code)]

use fix::codec::frame::checksum;
use fix::codec::time::{write_timestamp, TimePrecision, NANOS_PER_SEC};
use fix::session::{
    DisconnectReason, Event, Ignored, MessageStore, Scratch, Session, SessionRejectReason,
};

/// 2024-03-01 12:00:00 UTC, a fixed "now" so tests are deterministic.
pub const T0: u64 = 1_709_294_400 * NANOS_PER_SEC;

/// UTCTimestamp (seconds) of `ns`.
pub fn ts(ns: u64) -> String {
    let mut b = [0u8; 32];
    let n = write_timestamp(&mut b, ns, TimePrecision::Seconds).unwrap();
    String::from_utf8(b[..n].to_vec()).unwrap()
}

/// Builds a framed message from `35=...|34=...|` text ('|' is SOH), replacing `<T>` by `now`.
pub fn msg_at(body: &str, now: u64) -> Vec<u8> {
    msg_with_begin("FIX.4.4", body, now)
}

/// As [`msg_at`] with another BeginString.
pub fn msg_with_begin(begin: &str, body: &str, now: u64) -> Vec<u8> {
    let body = body.replace("<T>", &ts(now)).replace('|', "\x01");
    let mut m = format!("8={begin}\x019={}\x01{}", body.len(), body).into_bytes();
    let cs = checksum(&m);
    m.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
    m
}

/// Readable form of bytes: SOH shown as '|'.
pub fn vis(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\x01', "|")
}

/// Splits a byte stream of complete messages into readable messages.
pub fn split_msgs(out: &[u8]) -> Vec<String> {
    let s = vis(out);
    let mut v = Vec::new();
    let mut cur = String::new();
    for field in s.split_inclusive('|') {
        cur.push_str(field);
        if field.starts_with("10=") {
            v.push(std::mem::take(&mut cur));
        }
    }
    assert!(cur.is_empty(), "trailing partial message: {cur}");
    v
}

/// The value of `tag` in a readable message.
pub fn field(m: &str, tag: u32) -> Option<String> {
    let p = format!("{tag}=");
    m.split('|')
        .find(|f| f.starts_with(&p))
        .map(|f| f[p.len()..].to_string())
}

/// An owned copy of an [`Event`] (which borrows the input).
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Handled,
    LoggedOn,
    App(String),
    Ignored(Ignored),
    Rejected(SessionRejectReason),
    Disconnect(DisconnectReason),
}

/// A session driven by hand: input buffer, scratch, clock and output.
pub struct Drive<S: MessageStore> {
    pub s: Session<S>,
    pub scratch: Scratch,
    pub now: u64,
    pub out: Vec<u8>,
    pub inbuf: Vec<u8>,
}

impl<S: MessageStore> Drive<S> {
    pub fn new(mut s: Session<S>) -> Self {
        let max = s.config().max_message_size;
        s.on_connected(T0);
        Drive {
            s,
            scratch: Scratch::new(max),
            now: T0,
            out: Vec::with_capacity(1 << 16),
            inbuf: Vec::new(),
        }
    }

    /// Feeds raw bytes; returns every event until NeedMore.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Ev> {
        self.inbuf.extend_from_slice(bytes);
        let mut evs = Vec::new();
        loop {
            let r = self
                .s
                .on_input(&self.inbuf, &mut self.scratch, self.now, &mut self.out);
            let consumed = r.consumed;
            let ev = match r.event {
                Event::NeedMore => None,
                Event::Handled => Some(Ev::Handled),
                Event::LoggedOn => Some(Ev::LoggedOn),
                Event::App(m) => Some(Ev::App(vis(m.as_bytes()))),
                Event::Ignored(i) => Some(Ev::Ignored(i)),
                Event::Rejected(r) => Some(Ev::Rejected(r)),
                Event::Disconnect(d) => Some(Ev::Disconnect(d)),
            };
            self.inbuf.drain(..consumed);
            match ev {
                None => break,
                Some(e) => {
                    let stop = matches!(e, Ev::Disconnect(_));
                    evs.push(e);
                    if stop {
                        break;
                    }
                }
            }
        }
        evs
    }

    /// Feeds one message built from text at the current time.
    pub fn send(&mut self, body: &str) -> Vec<Ev> {
        let m = msg_at(body, self.now);
        self.feed(&m)
    }

    /// Everything written since the last call, as readable messages.
    pub fn take(&mut self) -> Vec<String> {
        let v = split_msgs(&self.out);
        self.out.clear();
        v
    }

    /// Advances the clock and runs the timer.
    pub fn advance(&mut self, secs_f: f64) -> Option<DisconnectReason> {
        self.now += (secs_f * NANOS_PER_SEC as f64) as u64;
        self.s.on_timer(self.now, &mut self.out)
    }

    /// Logs on as TW44 -> ISLD with HeartBtInt `hb` and checks the Logon reply.
    pub fn logon(&mut self, hb: u32) {
        let ev = self.send(&format!("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108={hb}|"));
        assert_eq!(ev, vec![Ev::LoggedOn]);
        let out = self.take();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(field(&out[0], 35).as_deref(), Some("A"));
    }
}

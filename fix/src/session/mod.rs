//! The FIX session layer: one state machine per counterparty, sans-IO.
//!
//! Bytes and `now` go in through [`Session::on_input`] and [`Session::on_timer`]; outgoing
//! bytes are appended to a caller-owned `Vec<u8>`; what the application must know comes back as
//! an [`Event`]. Behaviour follows QuickFIX's `Session` rule for rule (logon, heartbeats and
//! test requests, sequence gaps and their queue, resend with gap fill, sequence reset, reject,
//! logout), because counterparties are tested against QuickFIX and its acceptance scripts.
//!
//! Hot path: decoding, validation, the sequence check and handing an application message up
//! touch only memory reserved at construction ([`Scratch`], the encode buffer, the store);
//! nothing allocates as long as the caller's output `Vec` has capacity.

pub mod acceptor;
pub mod config;
pub mod file_store;
pub mod note;
pub mod queue;
pub mod reject;
pub mod store;

use crate::codec::decode::{decode, decode_with_shape, DecodeError, FieldIndex, Message};
use crate::codec::encode::{BufferTooSmall, Encoder};
use crate::codec::frame::{next_frame, FrameError, FrameStatus};
use crate::codec::num::parse_u64;
use crate::codec::shape::Shape;
use crate::codec::time::{parse_timestamp, NANOS_PER_SEC};
use crate::dict::{self, TagSet, Violation};
use crate::tags;

pub use config::{Role, SessionConfig};
pub use file_store::FileStore;
pub use note::{InlineId, Note};
pub use queue::InboundQueue;
pub use reject::{BusinessRejectReason, SessionRejectReason};
pub use store::{MemoryStore, MessageStore, StoreError};

/// Whether a Logon's Username (553) and Password (554) satisfy a session's configured ones.
/// Each configured credential is checked on its own (a session with a password and no
/// username still needs the password), and compared in constant time so that response timing
/// does not reveal how much of a guess was right (a length mismatch fails at once: lengths
/// are not secret enough to be worth padding). A credential that is not configured is not
/// checked.
pub fn credentials_match(
    want_username: Option<&str>,
    want_password: Option<&str>,
    got_username: Option<&[u8]>,
    got_password: Option<&[u8]>,
) -> bool {
    use subtle::ConstantTimeEq;
    let check = |want: Option<&str>, got: Option<&[u8]>| match want {
        None => true,
        Some(w) => got.is_some_and(|g| bool::from(g.ct_eq(w.as_bytes()))),
    };
    // `&`, not `&&`: both are compared whatever the first says.
    check(want_username, got_username) & check(want_password, got_password)
}

/// Per-thread decoding scratch: the field index and a buffer for replaying queued messages.
/// One `Scratch` serves every session a thread drives; an [`Event`] borrows it until dropped.
#[derive(Debug)]
pub struct Scratch {
    index: FieldIndex,
    replay: Box<[u8]>,
    seen: TagSet,
}

impl Scratch {
    /// Scratch for messages up to `max_message_size` bytes (use the largest of the sessions).
    pub fn new(max_message_size: usize) -> Self {
        Scratch {
            index: FieldIndex::for_message_size(max_message_size),
            replay: vec![0u8; max_message_size].into_boxed_slice(),
            seen: TagSet::EMPTY,
        }
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No connection, or a connection whose first message has not arrived (acceptor).
    AwaitingLogon,
    /// Initiator: Logon sent, waiting for the reply.
    LogonSent,
    /// Logged on.
    Active,
    /// We sent a Logout and wait for the reply (or the timeout).
    LogoutSent,
}

/// Why the driver must close the connection (after sending what is in the output buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The first message on the connection was not a Logon.
    FirstMessageNotLogon,
    /// A Logon that could not be accepted (malformed, bad CompID, bad SendingTime...).
    InvalidLogon,
    /// Username/Password did not match the configuration (a Logout was sent).
    BadCredentials,
    /// A Logon arrived on an established session without ResetSeqNumFlag.
    UnexpectedLogon,
    /// MsgSeqNum lower than expected without PossDupFlag (a Logout was sent).
    SeqNumTooLow,
    /// Logout handshake finished.
    Logout,
    /// No reply to our Logout within the logout timeout.
    LogoutTimeout,
    /// No Logon within the logon timeout.
    LogonTimeout,
    /// The counterparty stayed silent past the TestRequest deadline.
    HeartbeatTimeout,
    /// A frame that cannot be resynchronised (oversize).
    Frame(FrameError),
    /// A garbled frame before logon.
    GarbledBeforeLogon,
    /// The message store failed.
    Store(StoreError),
}

/// A dropped input frame that needs no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The framer rejected the bytes (bad length, checksum, garbage).
    Frame(FrameError),
    /// The frame's fields could not be decoded.
    Decode(DecodeError),
    /// A message with a MsgSeqNum already processed and PossDupFlag=Y.
    Duplicate,
    /// A message ahead of a sequence gap; queued (or dropped if the queue is full) until the
    /// gap is filled; a ResendRequest went out.
    Queued,
    /// An application message after we sent Logout: not for the application. Its sequence
    /// number is consumed and a BusinessMessageReject (380=4, application not available)
    /// answers it, so the counterparty knows it was not processed.
    AfterLogout,
}

/// What one call to [`Session::on_input`] produced.
#[derive(Debug)]
pub enum Event<'a> {
    /// The input holds no complete message: append more bytes and call again.
    NeedMore,
    /// A session message was processed (answers, if any, are in the output buffer).
    Handled,
    /// The session is now logged on.
    LoggedOn,
    /// A validated, in-sequence application message for the application.
    App(Message<'a>),
    /// Input dropped without an answer.
    Ignored(Ignored),
    /// A Reject (35=3) was sent for a malformed or invalid message.
    Rejected(SessionRejectReason),
    /// Send what is in the output buffer, then close the connection and call
    /// [`Session::on_disconnected`].
    Disconnect(DisconnectReason),
}

/// [`Event`] plus how many input bytes it consumed (drop them from the inbound buffer).
#[derive(Debug)]
pub struct Received<'a> {
    /// Bytes of input consumed (0 when a queued message was replayed).
    pub consumed: usize,
    /// What happened.
    pub event: Event<'a>,
}

/// Why an outgoing message could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The message does not fit the maximum message size.
    TooLarge,
    /// The store refused it.
    Store(StoreError),
}

impl From<BufferTooSmall> for SendError {
    fn from(_: BufferTooSmall) -> Self {
        SendError::TooLarge
    }
}

/// An application message the session can send: it supplies MsgType and the body; the session
/// writes the header (MsgSeqNum, CompIDs, SendingTime) and trailer.
pub trait OutboundMessage {
    /// MsgType (35).
    fn msg_type(&self) -> &[u8];
    /// Extra header fields (after the standard ones), such as PossResend or routing IDs.
    fn header_fields(&self) -> &[(u32, &[u8])] {
        &[]
    }
    /// Writes the body fields.
    fn write_body(&self, enc: &mut Encoder<'_>);
}

/// At most this many extra header fields are carried over when a message is resent.
const MAX_EXTRA_HEADER: usize = 16;

/// Writes a whole message into `buf` and returns its range.
#[allow(clippy::too_many_arguments)]
fn encode_message(
    buf: &mut [u8],
    cfg: &SessionConfig,
    msg_type: &[u8],
    seq: u64,
    poss_dup: bool,
    now: u64,
    orig_sending_time: Option<&[u8]>,
    extras: &[(u32, &[u8])],
    body: impl FnOnce(&mut Encoder<'_>),
) -> Result<core::ops::Range<usize>, BufferTooSmall> {
    let begin = cfg.begin_string.as_bytes();
    let mut enc = Encoder::new(buf, begin, msg_type);
    // Header in ascending tag order after 35, as QuickFIX writes it; `extras` are merged in.
    let mut x = 0;
    let mut flush = |enc: &mut Encoder<'_>, below: u32| {
        while x < extras.len() && extras[x].0 < below {
            enc.field(extras[x].0, extras[x].1);
            x += 1;
        }
    };
    flush(&mut enc, tags::MSG_SEQ_NUM);
    enc.field_u64(tags::MSG_SEQ_NUM, seq);
    if poss_dup {
        flush(&mut enc, tags::POSS_DUP_FLAG);
        enc.field_char(tags::POSS_DUP_FLAG, b'Y');
    }
    flush(&mut enc, tags::SENDER_COMP_ID);
    enc.field(tags::SENDER_COMP_ID, cfg.sender_comp_id.as_bytes());
    flush(&mut enc, tags::SENDING_TIME);
    enc.field_timestamp(tags::SENDING_TIME, now, cfg.timestamp_precision);
    flush(&mut enc, tags::TARGET_COMP_ID);
    enc.field(tags::TARGET_COMP_ID, cfg.target_comp_id.as_bytes());
    if let Some(orig) = orig_sending_time {
        flush(&mut enc, tags::ORIG_SENDING_TIME);
        enc.field(tags::ORIG_SENDING_TIME, orig);
    }
    flush(&mut enc, u32::MAX);
    body(&mut enc);
    enc.finish(begin)
}

/// One FIX session.
#[derive(Debug)]
pub struct Session<S: MessageStore> {
    cfg: SessionConfig,
    store: S,
    phase: Phase,
    enc: Box<[u8]>,
    resend_buf: Box<[u8]>,
    resend_index: FieldIndex,
    /// The layout of this peer's last valid message (`codec::shape`): kept per session
    /// because layouts belong to the peer's FIX engine, while the gateway thread's index is
    /// shared by every session it serves.
    shape: Box<Shape>,
    queue: InboundQueue,
    hb_ns: u64,
    last_sent: u64,
    last_recv: u64,
    phase_since: u64,
    test_requests: u32,
    resend_range: Option<(u64, u64)>,
    /// The peer's ResendRequest being answered (see [`Session::pump_resend`]).
    resend_cursor: Option<ResendCursor>,
    received_logon: bool,
    sent_logon: bool,
    sent_reset: bool,
    /// ResendRequests received and sent over the session's life (for metrics).
    resend_requests: (u64, u64),
    /// What the session did on its own, for the owner's audit trail ([`note`]).
    notes: note::Notes,
}

/// Where the answer to a ResendRequest stands: the next sequence number to look at and the
/// last one asked for; then the application messages sent while it ran, held back (stored,
/// not written) from `held_from` on, which follow the answer in order as new messages.
#[derive(Clone, Copy, Debug)]
struct ResendCursor {
    next: u64,
    /// The last number the peer asked for.
    requested_end: u64,
    /// The first number sent after the request arrived: from here on, messages were held
    /// back, not written.
    held_from: u64,
}

impl ResendCursor {
    /// The first held-back message not written yet.
    fn first_held(&self) -> u64 {
        if self.next > self.requested_end {
            self.next.max(self.held_from)
        } else {
            self.held_from
        }
    }
}

/// Outcome of the checks every inbound message goes through before it is acted on.
enum Verify {
    Ok,
    Stop(Outcome),
}

/// An event that borrows nothing (so it can be produced while the message is borrowed).
enum Outcome {
    Handled,
    Ignored(Ignored),
    Rejected(SessionRejectReason),
    Disconnect(DisconnectReason),
    LoggedOn,
}

impl Outcome {
    fn into_event<'a>(self) -> Event<'a> {
        match self {
            Outcome::Handled => Event::Handled,
            Outcome::Ignored(i) => Event::Ignored(i),
            Outcome::Rejected(r) => Event::Rejected(r),
            Outcome::Disconnect(d) => Event::Disconnect(d),
            Outcome::LoggedOn => Event::LoggedOn,
        }
    }
}

fn secs(s: u32) -> u64 {
    s as u64 * NANOS_PER_SEC
}

impl<S: MessageStore> Session<S> {
    /// A session in [`Phase::AwaitingLogon`] with `store` holding its sequence numbers. All
    /// buffers are reserved here.
    pub fn new(cfg: SessionConfig, store: S) -> Self {
        let max = cfg.max_message_size;
        Session {
            hb_ns: secs(cfg.heart_bt_int),
            queue: InboundQueue::new(cfg.inbound_queue_bytes),
            enc: vec![0u8; max + 64].into_boxed_slice(),
            resend_buf: vec![0u8; max + 64].into_boxed_slice(),
            resend_index: FieldIndex::for_message_size(max + 64),
            shape: Box::new(Shape::empty()),
            cfg,
            store,
            phase: Phase::AwaitingLogon,
            last_sent: 0,
            last_recv: 0,
            phase_since: 0,
            test_requests: 0,
            resend_range: None,
            resend_cursor: None,
            received_logon: false,
            sent_logon: false,
            sent_reset: false,
            resend_requests: (0, 0),
            notes: note::Notes::new(),
        }
    }

    /// The oldest note not taken yet (see [`note`]); the owner takes them after each call.
    #[inline]
    pub fn take_note(&mut self) -> Option<Note> {
        self.notes.pop()
    }

    /// Notes dropped because the owner did not take them in time (the buffer holds
    /// [`note::NOTE_SLOTS`]).
    pub fn notes_dropped(&self) -> u64 {
        self.notes.dropped()
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Exchanges the credentials a Logon must carry (acceptor) or sends (initiator) with
    /// `username` and `password`: the session takes the new ones, the caller gets the old
    /// ones back (to drop them off the session's thread). A logged-on session stays logged
    /// on; the next Logon is checked against the new credentials.
    pub fn swap_credentials(
        &mut self,
        username: &mut Option<String>,
        password: &mut Option<String>,
    ) {
        std::mem::swap(&mut self.cfg.username, username);
        std::mem::swap(&mut self.cfg.password, password);
    }
    /// The store (sequence numbers, sent messages).
    pub fn store(&self) -> &S {
        &self.store
    }
    /// The store, mutably (e.g. to set sequence numbers by operator command).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// True once Logons have been exchanged and until the connection ends.
    pub fn is_logged_on(&self) -> bool {
        self.received_logon
            && self.sent_logon
            && matches!(self.phase, Phase::Active | Phase::LogoutSent)
    }
    /// MsgSeqNum expected on the next incoming message.
    pub fn next_target_seq(&self) -> u64 {
        self.store.next_target_seq()
    }
    /// MsgSeqNum of the next outgoing message.
    pub fn next_sender_seq(&self) -> u64 {
        self.store.next_sender_seq()
    }
    /// Heartbeat interval in force, in seconds.
    pub fn heart_bt_int(&self) -> u32 {
        (self.hb_ns / NANOS_PER_SEC) as u32
    }
    /// ResendRequests the peer sent, over the session's life (counted once verified).
    pub fn resend_requests_received(&self) -> u64 {
        self.resend_requests.0
    }

    /// ResendRequests this side sent (sequence gaps it saw), over the session's life.
    pub fn resend_requests_sent(&self) -> u64 {
        self.resend_requests.1
    }

    /// Inbound messages dropped because the gap queue was full.
    pub fn queue_dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Call when a connection for this session is established (acceptor: when the driver
    /// binds a new connection; initiator: before [`initiate_logon`](Self::initiate_logon)).
    pub fn on_connected(&mut self, now: u64) {
        self.phase = Phase::AwaitingLogon;
        self.phase_since = now;
        self.last_recv = now;
        self.last_sent = now;
    }

    /// The peer is known to be alive at `now` though no message of it was read: the owner
    /// stopped reading the connection (its own back-pressure), so the peer's silence must not
    /// count towards a TestRequest or a heartbeat timeout.
    pub fn peer_alive(&mut self, now: u64) {
        self.last_recv = self.last_recv.max(now);
        self.test_requests = 0;
    }

    /// Call after the connection closed, whoever closed it. Sequence numbers and stored
    /// messages are kept (unless ResetOnLogout applied), so a reconnect continues them.
    pub fn on_disconnected(&mut self) {
        self.phase = Phase::AwaitingLogon;
        self.queue.clear();
        self.resend_range = None;
        self.resend_cursor = None;
        self.test_requests = 0;
        self.received_logon = false;
        self.sent_logon = false;
        self.sent_reset = false;
    }

    // ----------------------------------------------------------------------------------
    // Inbound
    // ----------------------------------------------------------------------------------

    /// Processes at most one message from the start of `input`. Call in a loop, dropping
    /// `consumed` bytes each time, until [`Event::NeedMore`]; a queued message may be replayed
    /// with `consumed == 0`.
    pub fn on_input<'a>(
        &mut self,
        input: &'a [u8],
        scratch: &'a mut Scratch,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Received<'a> {
        let Scratch {
            index,
            replay,
            seen,
        } = scratch;
        // A message that was waiting for a gap to close goes first.
        if self.is_logged_on() && !self.queue.is_empty() {
            let expected = self.store.next_target_seq();
            if let Some(n) = self.queue.take(expected, replay) {
                let bytes: &'a [u8] = &replay[..n];
                let event = match next_frame(bytes, bytes.len() + 1) {
                    FrameStatus::Complete(f) => {
                        match decode_with_shape(bytes, &f, index, &mut self.shape) {
                            Ok(msg) => {
                                if matches!(msg.msg_type(), b"A" | b"2") {
                                    // QuickFIX: a queued Logon or ResendRequest only advances.
                                    self.set_target(expected.saturating_add(1))
                                        .map_or_else(Event::Disconnect, |_| Event::Handled)
                                } else {
                                    self.process(msg, seen, now, out)
                                }
                            }
                            Err(e) => Event::Ignored(Ignored::Decode(e)),
                        }
                    }
                    _ => Event::Ignored(Ignored::Queued),
                };
                return Received { consumed: 0, event };
            }
        }
        match next_frame(input, self.cfg.max_message_size) {
            FrameStatus::Incomplete => Received {
                consumed: 0,
                event: Event::NeedMore,
            },
            FrameStatus::Garbled { skip, error } => {
                let event = if error.is_fatal() {
                    Event::Disconnect(DisconnectReason::Frame(error))
                } else if !self.is_logged_on() {
                    Event::Disconnect(DisconnectReason::GarbledBeforeLogon)
                } else {
                    Event::Ignored(Ignored::Frame(error))
                };
                Received {
                    consumed: skip,
                    event,
                }
            }
            FrameStatus::Complete(f) => {
                let event = match decode_with_shape(input, &f, index, &mut self.shape) {
                    Ok(msg) => self.process(msg, seen, now, out),
                    Err(e) if !self.is_logged_on() => {
                        let _ = e;
                        Event::Disconnect(DisconnectReason::InvalidLogon)
                    }
                    Err(e) => Event::Ignored(Ignored::Decode(e)),
                };
                Received {
                    consumed: f.len,
                    event,
                }
            }
        }
    }

    fn process<'a>(
        &mut self,
        msg: Message<'a>,
        seen: &mut TagSet,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Event<'a> {
        let mt = msg.msg_type();
        match self.phase {
            Phase::AwaitingLogon if mt != b"A" => {
                return Event::Disconnect(DisconnectReason::FirstMessageNotLogon)
            }
            Phase::LogonSent if mt != b"A" => {
                return Event::Disconnect(DisconnectReason::FirstMessageNotLogon)
            }
            _ => {}
        }
        // QuickFIX checks these two before anything else.
        for tag in [tags::SENDER_COMP_ID, tags::TARGET_COMP_ID] {
            let present = if tag == tags::SENDER_COMP_ID {
                msg.sender_comp_id().is_some()
            } else {
                msg.target_comp_id().is_some()
            };
            if !present {
                let v = Violation {
                    reason: SessionRejectReason::RequiredTagMissing,
                    tag: Some(tag as i64),
                };
                return self.reject_violation(&msg, v, now, out).into_event();
            }
        }
        let begin = &msg.as_bytes()[2..2 + msg.as_bytes()[2..]
            .iter()
            .position(|&b| b == 1)
            .unwrap_or(0)];
        if begin != self.cfg.begin_string.as_bytes() {
            if mt == b"5" {
                return self.on_logout(&msg, now, out).into_event();
            }
            if !self.is_logged_on() {
                return Event::Disconnect(DisconnectReason::InvalidLogon);
            }
            if let Err(d) = self.send_logout(Some(b"Incorrect BeginString"), now, out) {
                return Event::Disconnect(d);
            }
            return match self.incr_target() {
                Ok(()) => Event::Handled,
                Err(d) => Event::Disconnect(d),
            };
        }
        if self.cfg.validate {
            if let Err(v) = dict::validate(&msg, seen) {
                return self.reject_violation(&msg, v, now, out).into_event();
            }
        } else if msg.seq_num().is_none() {
            let v = Violation {
                reason: SessionRejectReason::RequiredTagMissing,
                tag: Some(tags::MSG_SEQ_NUM as i64),
            };
            return self.reject_violation(&msg, v, now, out).into_event();
        }
        let outcome = match mt {
            b"A" => self.on_logon(&msg, now, out),
            b"0" => self.on_heartbeat(&msg, now, out),
            b"1" => self.on_test_request(&msg, now, out),
            b"2" => self.on_resend_request(&msg, now, out),
            b"3" => self.on_reject(&msg, now, out),
            b"4" => self.on_sequence_reset(&msg, now, out),
            b"5" => self.on_logout(&msg, now, out),
            _ => match self.verify(&msg, true, true, now, out) {
                Verify::Ok => match self.incr_target() {
                    Ok(()) if self.phase == Phase::LogoutSent => {
                        self.refuse_after_logout(&msg, now, out)
                    }
                    Ok(()) => return Event::App(msg),
                    Err(d) => Outcome::Disconnect(d),
                },
                Verify::Stop(o) => o,
            },
        };
        outcome.into_event()
    }

    /// After our Logout the session is closing: an application message is not processed
    /// (an order accepted now would be acknowledged on a connection about to close, or not
    /// at all). The counterparty gets a BusinessMessageReject saying so.
    fn refuse_after_logout(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        match self.send_business_reject(
            msg,
            BusinessRejectReason::ApplicationNotAvailable,
            None,
            Some(b"Logout in progress: message not processed"),
            now,
            out,
        ) {
            Ok(_) => Outcome::Ignored(Ignored::AfterLogout),
            Err(SendError::Store(e)) => Outcome::Disconnect(DisconnectReason::Store(e)),
            Err(SendError::TooLarge) => Outcome::Ignored(Ignored::AfterLogout),
        }
    }

    fn set_target(&mut self, seq: u64) -> Result<(), DisconnectReason> {
        self.store
            .set_next_target_seq(seq)
            .map_err(DisconnectReason::Store)
    }

    fn incr_target(&mut self) -> Result<(), DisconnectReason> {
        // Saturating: a counterparty can push the expected number to u64::MAX with a
        // SequenceReset; that must not overflow.
        let n = self.store.next_target_seq().saturating_add(1);
        self.set_target(n)
    }

    fn reject_violation(
        &mut self,
        msg: &Message<'_>,
        v: Violation,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if !self.is_logged_on() {
            // QuickFIX cannot send a Reject before logon and drops the connection.
            return Outcome::Disconnect(DisconnectReason::InvalidLogon);
        }
        match self.generate_reject(msg, v.reason, v.tag, now, out) {
            Ok(()) => Outcome::Rejected(v.reason),
            Err(d) => Outcome::Disconnect(d),
        }
    }

    /// The checks QuickFIX's `Session::verify` makes: SendingTime, CompIDs, MsgSeqNum.
    fn verify(
        &mut self,
        msg: &Message<'_>,
        check_high: bool,
        check_low: bool,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Verify {
        // SendingTime within MaxLatency of our clock.
        if self.cfg.max_latency_secs > 0 {
            let good = msg
                .sending_time()
                .and_then(parse_timestamp)
                .is_some_and(|t| t.abs_diff(now) <= secs(self.cfg.max_latency_secs));
            if !good {
                return Verify::Stop(self.reject_and_logout(
                    msg,
                    SessionRejectReason::SendingTimeAccuracyProblem,
                    now,
                    out,
                ));
            }
        }
        let comp_ok = msg.sender_comp_id() == Some(self.cfg.target_comp_id.as_bytes())
            && msg.target_comp_id() == Some(self.cfg.sender_comp_id.as_bytes());
        if !comp_ok {
            return Verify::Stop(self.reject_and_logout(
                msg,
                SessionRejectReason::CompIdProblem,
                now,
                out,
            ));
        }
        let Some(seq) = msg.seq_num() else {
            return Verify::Stop(self.reject_violation(
                msg,
                Violation {
                    reason: SessionRejectReason::RequiredTagMissing,
                    tag: Some(tags::MSG_SEQ_NUM as i64),
                },
                now,
                out,
            ));
        };
        let expected = self.store.next_target_seq();
        if check_high && seq > expected {
            return Verify::Stop(self.target_too_high(msg, seq, now, out));
        } else if check_low && seq < expected {
            return Verify::Stop(self.target_too_low(msg, seq, expected, now, out));
        }
        if check_high || check_low {
            if let Some((_, end)) = self.resend_range {
                if seq >= end {
                    self.resend_range = None;
                }
            }
        }
        self.last_recv = now;
        self.test_requests = 0;
        Verify::Ok
    }

    fn reject_and_logout(
        &mut self,
        msg: &Message<'_>,
        reason: SessionRejectReason,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if !self.is_logged_on() {
            return Outcome::Disconnect(DisconnectReason::InvalidLogon);
        }
        if let Err(d) = self.generate_reject(msg, reason, None, now, out) {
            return Outcome::Disconnect(d);
        }
        match self.send_logout(None, now, out) {
            Ok(()) => Outcome::Rejected(reason),
            Err(d) => Outcome::Disconnect(d),
        }
    }

    fn target_too_high(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.queue.push(seq, msg.as_bytes());
        if let Some((begin, _)) = self.resend_range {
            if seq >= begin {
                // A ResendRequest for this gap is already out.
                return Outcome::Ignored(Ignored::Queued);
            }
        }
        let begin = self.store.next_target_seq();
        if let Err(d) = self.send_resend_request(begin, now, out) {
            return Outcome::Disconnect(d);
        }
        self.resend_range = Some((begin, seq - 1));
        Outcome::Ignored(Ignored::Queued)
    }

    fn target_too_low(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        expected: u64,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if !msg.poss_dup() {
            let mut text = [0u8; 96];
            let n = format_too_low(&mut text, expected, seq);
            if let Err(d) = self.send_logout(Some(&text[..n]), now, out) {
                return Outcome::Disconnect(d);
            }
            return Outcome::Disconnect(DisconnectReason::SeqNumTooLow);
        }
        // PossDup: answer only what is wrong with the duplicate; otherwise ignore it.
        if msg.msg_type() != b"4" {
            match msg.orig_sending_time() {
                None => {
                    let v = Violation {
                        reason: SessionRejectReason::RequiredTagMissing,
                        tag: Some(tags::ORIG_SENDING_TIME as i64),
                    };
                    return self.reject_violation(msg, v, now, out);
                }
                Some(orig) => {
                    let orig = parse_timestamp(orig);
                    let sent = msg.sending_time().and_then(parse_timestamp);
                    if let (Some(o), Some(s)) = (orig, sent) {
                        if o > s {
                            return self.reject_and_logout(
                                msg,
                                SessionRejectReason::SendingTimeAccuracyProblem,
                                now,
                                out,
                            );
                        }
                    }
                }
            }
        }
        Outcome::Ignored(Ignored::Duplicate)
    }

    fn on_logon(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        let reset_flag = msg.get(tags::RESET_SEQ_NUM_FLAG) == Some(b"Y");
        if self.is_logged_on() && !reset_flag {
            return Outcome::Disconnect(DisconnectReason::UnexpectedLogon);
        }
        if self.cfg.role == Role::Acceptor
            && !credentials_match(
                self.cfg.username.as_deref(),
                self.cfg.password.as_deref(),
                msg.get(tags::USERNAME),
                msg.get(tags::PASSWORD),
            )
        {
            if let Err(d) =
                self.send_logout(Some(b"Logon rejected: invalid Username/Password"), now, out)
            {
                return Outcome::Disconnect(d);
            }
            return Outcome::Disconnect(DisconnectReason::BadCredentials);
        }
        if self.cfg.role == Role::Acceptor {
            let hb = msg.get(tags::HEART_BT_INT).and_then(parse_u64);
            let range = &self.cfg.heart_bt_int_range;
            if !hb.is_some_and(|hb| hb >= *range.start() as u64 && hb <= *range.end() as u64) {
                let mut text = [0u8; 64];
                let n = {
                    use std::io::Write as _;
                    let mut w = &mut text[..];
                    let _ = write!(
                        w,
                        "HeartBtInt (108) must be {} to {} seconds",
                        range.start(),
                        range.end()
                    );
                    64 - w.len()
                };
                if let Err(d) = self.send_logout(Some(&text[..n]), now, out) {
                    return Outcome::Disconnect(d);
                }
                return Outcome::Disconnect(DisconnectReason::InvalidLogon);
            }
        }
        if (reset_flag && !self.sent_reset)
            || (self.cfg.role == Role::Acceptor && self.cfg.reset_on_logon)
        {
            if let Err(e) = self.store.reset() {
                return Outcome::Disconnect(DisconnectReason::Store(e));
            }
            self.queue.clear();
            self.resend_range = None;
            self.notes.push(Note::LogonReset {
                requested: reset_flag,
            });
        }
        if let Verify::Stop(o) = self.verify(msg, false, true, now, out) {
            return o;
        }
        self.received_logon = true;
        if self.cfg.role == Role::Acceptor || (reset_flag && !self.sent_reset) {
            let hb = msg
                .get(tags::HEART_BT_INT)
                .and_then(parse_u64)
                .unwrap_or(self.cfg.heart_bt_int as u64);
            self.hb_ns = hb.saturating_mul(NANOS_PER_SEC);
            let r = self.send_admin(b"A", now, out, |e| {
                e.field_u64(tags::ENCRYPT_METHOD, 0);
                e.field_u64(tags::HEART_BT_INT, hb);
                if reset_flag {
                    e.field_char(tags::RESET_SEQ_NUM_FLAG, b'Y');
                }
            });
            if let Err(d) = r {
                return Outcome::Disconnect(d);
            }
            self.sent_logon = true;
        }
        self.sent_reset = false;
        self.phase = Phase::Active;
        self.phase_since = now;
        let seq = msg.seq_num().unwrap_or(0);
        if seq > self.store.next_target_seq() && !reset_flag {
            let _ = self.target_too_high(msg, seq, now, out);
        } else if let Err(d) = self.incr_target() {
            return Outcome::Disconnect(d);
        }
        Outcome::LoggedOn
    }

    fn on_heartbeat(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        match self.verify(msg, true, true, now, out) {
            Verify::Ok => self
                .incr_target()
                .map_or_else(Outcome::Disconnect, |_| Outcome::Handled),
            Verify::Stop(o) => o,
        }
    }

    fn on_test_request(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        if let Verify::Stop(o) = self.verify(msg, true, true, now, out) {
            return o;
        }
        let id = msg.get(tags::TEST_REQ_ID).unwrap_or(b"");
        if let Err(d) = self.send_admin(b"0", now, out, |e| e.field(tags::TEST_REQ_ID, id)) {
            return Outcome::Disconnect(d);
        }
        self.incr_target()
            .map_or_else(Outcome::Disconnect, |_| Outcome::Handled)
    }

    fn on_reject(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        match self.verify(msg, false, true, now, out) {
            Verify::Ok => {
                self.notes.push(Note::RejectReceived {
                    ref_seq: msg.get(tags::REF_SEQ_NUM).and_then(parse_u64).unwrap_or(0),
                    reason: msg
                        .get(tags::SESSION_REJECT_REASON)
                        .and_then(parse_u64)
                        .map_or(u32::MAX, |r| r.min(u32::MAX as u64 - 1) as u32),
                });
                self.incr_target()
                    .map_or_else(Outcome::Disconnect, |_| Outcome::Handled)
            }
            Verify::Stop(o) => o,
        }
    }

    fn on_sequence_reset(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        let gap_fill = msg.get(tags::GAP_FILL_FLAG) == Some(b"Y");
        if let Verify::Stop(o) = self.verify(msg, gap_fill, gap_fill, now, out) {
            return o;
        }
        let Some(new_seq) = msg.get(tags::NEW_SEQ_NO).and_then(parse_u64) else {
            return Outcome::Handled;
        };
        let expected = self.store.next_target_seq();
        if new_seq > expected {
            if let Err(d) = self.set_target(new_seq) {
                return Outcome::Disconnect(d);
            }
            self.notes
                .push(Note::SequenceResetReceived { new_seq, gap_fill });
        } else if new_seq < expected {
            let r =
                self.generate_reject(msg, SessionRejectReason::ValueIsIncorrect, None, now, out);
            return match r {
                Ok(()) => Outcome::Rejected(SessionRejectReason::ValueIsIncorrect),
                Err(d) => Outcome::Disconnect(d),
            };
        }
        Outcome::Handled
    }

    fn on_logout(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        if let Verify::Stop(o) = self.verify(msg, false, false, now, out) {
            return o;
        }
        if self.phase != Phase::LogoutSent {
            if let Err(d) = self.send_logout(None, now, out) {
                return Outcome::Disconnect(d);
            }
        }
        if let Err(d) = self.incr_target() {
            return Outcome::Disconnect(d);
        }
        if self.cfg.reset_on_logout {
            if let Err(e) = self.store.reset() {
                return Outcome::Disconnect(DisconnectReason::Store(e));
            }
        }
        Outcome::Disconnect(DisconnectReason::Logout)
    }

    fn on_resend_request(&mut self, msg: &Message<'_>, now: u64, out: &mut Vec<u8>) -> Outcome {
        if let Verify::Stop(o) = self.verify(msg, false, false, now, out) {
            return o;
        }
        self.resend_requests.0 += 1;
        let begin = msg
            .get(tags::BEGIN_SEQ_NO)
            .and_then(parse_u64)
            .unwrap_or(1)
            .max(1);
        let mut end = msg.get(tags::END_SEQ_NO).and_then(parse_u64).unwrap_or(0);
        self.notes.push(Note::ResendRequestReceived { begin, end });
        let next = self.store.next_sender_seq();
        if end == 0 || end >= next {
            end = next.saturating_sub(1);
        }
        // A new request replaces one still being answered (the peer says where it stands);
        // messages still held back by the old one stay held and follow the new answer.
        let held_from = self.resend_cursor.map_or(next, |c| c.first_held());
        self.resend_cursor = (begin <= end || held_from < next).then_some(ResendCursor {
            next: begin,
            requested_end: end,
            held_from,
        });
        if let Err(d) = self.pump_resend(now, out) {
            return Outcome::Disconnect(d);
        }
        if msg.seq_num() == Some(self.store.next_target_seq()) {
            if let Err(d) = self.incr_target() {
                return Outcome::Disconnect(d);
            }
        }
        Outcome::Handled
    }

    /// Application messages held back behind the answer to a ResendRequest (numbered, stored,
    /// not written yet). The owner bounds it: a peer that stops reading in the middle of a
    /// resend must not make the store evict messages it has never been sent.
    pub fn held_back(&self) -> u64 {
        self.resend_cursor.map_or(0, |c| {
            let last = self.store.next_sender_seq().saturating_sub(1);
            (last + 1).saturating_sub(c.first_held())
        })
    }

    /// Whether a ResendRequest is still being answered ([`pump_resend`](Self::pump_resend)
    /// has more to write).
    pub fn resend_pending(&self) -> bool {
        self.resend_cursor.is_some()
    }

    /// Continues the answer to the peer's ResendRequest: writes about
    /// [`SessionConfig::resend_batch_bytes`] more of it into `out` (stored application
    /// messages with PossDupFlag=Y and OrigSendingTime, every run of numbers without one as
    /// one SequenceReset-GapFill) and returns whether more remains. The owner calls it again
    /// when the connection's output has room, so an answer of any length goes out at the
    /// pace the peer reads it, from buffers of a fixed size. Application messages sent
    /// meanwhile are held back and follow the answer, in order (session messages go out at
    /// once).
    pub fn pump_resend(&mut self, now: u64, out: &mut Vec<u8>) -> Result<bool, DisconnectReason> {
        let Some(mut cur) = self.resend_cursor.take() else {
            return Ok(false);
        };
        let stop_at = out.len() + self.cfg.resend_batch_bytes.max(1);
        // What was asked for: stored application messages as possible duplicates, every run
        // of numbers without one as one SequenceReset-GapFill.
        while cur.next <= cur.requested_end {
            if out.len() >= stop_at {
                self.resend_cursor = Some(cur);
                return Ok(true);
            }
            let (upto, found) = match self.store.first_in_range(cur.next, cur.requested_end) {
                Some((seq, bytes)) => {
                    let n = bytes.len().min(self.resend_buf.len());
                    self.resend_buf[..n].copy_from_slice(&bytes[..n]);
                    (seq, Some(n))
                }
                None => (cur.requested_end.saturating_add(1), None),
            };
            if upto > cur.next {
                self.send_gap_fill(cur.next, upto, now, out)?;
            }
            let Some(n) = found else {
                cur.next = upto;
                break;
            };
            self.resend_one(n, now, out, true)?;
            if upto == u64::MAX {
                return Ok(false);
            }
            cur.next = upto + 1;
        }
        // Then what was held back meanwhile, in order, as new messages (a fresh SendingTime:
        // they may have waited longer than the peer's latency check). Numbers without a
        // stored message were session messages, sent at once.
        let last = self.store.next_sender_seq().saturating_sub(1);
        cur.next = cur.next.max(cur.held_from);
        while cur.next <= last {
            if out.len() >= stop_at {
                self.resend_cursor = Some(cur);
                return Ok(true);
            }
            let Some((seq, bytes)) = self.store.first_in_range(cur.next, last) else {
                break;
            };
            let n = bytes.len().min(self.resend_buf.len());
            self.resend_buf[..n].copy_from_slice(&bytes[..n]);
            self.resend_one(n, now, out, false)?;
            if seq == u64::MAX {
                break;
            }
            cur.next = seq + 1;
        }
        Ok(false)
    }

    /// Re-encodes the stored message in `resend_buf[..n]` with a fresh SendingTime, keeping
    /// its MsgSeqNum and body: a resend (`poss_dup`) carries PossDupFlag=Y and the original
    /// SendingTime as OrigSendingTime; a message held back during a resend goes out as new.
    fn resend_one(
        &mut self,
        n: usize,
        now: u64,
        out: &mut Vec<u8>,
        poss_dup: bool,
    ) -> Result<(), DisconnectReason> {
        let bytes = &self.resend_buf[..n];
        let FrameStatus::Complete(f) = next_frame(bytes, bytes.len() + 1) else {
            return Ok(());
        };
        let Ok(msg) = decode(bytes, &f, &mut self.resend_index) else {
            return Ok(());
        };
        let Some(seq) = msg.seq_num() else {
            return Ok(());
        };
        let mut extras: [(u32, &[u8]); MAX_EXTRA_HEADER] = [(0, &[]); MAX_EXTRA_HEADER];
        let mut nx = 0;
        for fr in msg.header_fields() {
            match fr.tag {
                tags::BEGIN_STRING
                | tags::BODY_LENGTH
                | tags::MSG_TYPE
                | tags::MSG_SEQ_NUM
                | tags::POSS_DUP_FLAG
                | tags::SENDER_COMP_ID
                | tags::SENDING_TIME
                | tags::TARGET_COMP_ID
                | tags::ORIG_SENDING_TIME => {}
                t if nx < MAX_EXTRA_HEADER => {
                    extras[nx] = (t, msg.value(fr));
                    nx += 1;
                }
                _ => {}
            }
        }
        extras[..nx].sort_unstable_by_key(|e| e.0);
        let body_start = msg.body_fields().first().map_or(f.trailer_start, |b| {
            // value start minus "tag=" bytes
            let mut s = b.start as usize - 1;
            while s > 0 && bytes[s - 1] != 1 {
                s -= 1;
            }
            s
        });
        let body = &bytes[body_start..f.trailer_start];
        let r = encode_message(
            &mut self.enc,
            &self.cfg,
            msg.msg_type(),
            seq,
            poss_dup,
            now,
            if poss_dup { msg.sending_time() } else { None },
            &extras[..nx],
            |e| e.raw(body),
        )
        .map_err(|_| DisconnectReason::Frame(FrameError::TooLarge))?;
        out.extend_from_slice(&self.enc[r]);
        self.last_sent = now;
        Ok(())
    }

    fn send_gap_fill(
        &mut self,
        seq: u64,
        new_seq: u64,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        let mut ts = [0u8; 32];
        let n = crate::codec::time::write_timestamp(&mut ts, now, self.cfg.timestamp_precision)
            .unwrap_or(0);
        let r = encode_message(
            &mut self.enc,
            &self.cfg,
            b"4",
            seq,
            true,
            now,
            Some(&ts[..n]),
            &[],
            |e| {
                e.field_u64(tags::NEW_SEQ_NO, new_seq);
                e.field_char(tags::GAP_FILL_FLAG, b'Y');
            },
        )
        .map_err(|_| DisconnectReason::Frame(FrameError::TooLarge))?;
        out.extend_from_slice(&self.enc[r]);
        self.last_sent = now;
        self.notes.push(Note::SequenceResetSent { seq, new_seq });
        Ok(())
    }

    // ----------------------------------------------------------------------------------
    // Outbound
    // ----------------------------------------------------------------------------------

    /// Sends a session message with the next MsgSeqNum (not stored: admin messages are
    /// gap-filled on resend).
    fn send_admin(
        &mut self,
        msg_type: &[u8],
        now: u64,
        out: &mut Vec<u8>,
        body: impl FnOnce(&mut Encoder<'_>),
    ) -> Result<(), DisconnectReason> {
        self.send_with(msg_type, &[], false, now, out, body)
            .map(|_| ())
            .map_err(|e| match e {
                SendError::TooLarge => DisconnectReason::Frame(FrameError::TooLarge),
                SendError::Store(s) => DisconnectReason::Store(s),
            })
    }

    fn send_with(
        &mut self,
        msg_type: &[u8],
        extras: &[(u32, &[u8])],
        keep: bool,
        now: u64,
        out: &mut Vec<u8>,
        body: impl FnOnce(&mut Encoder<'_>),
    ) -> Result<u64, SendError> {
        let seq = self.store.next_sender_seq();
        let r = encode_message(
            &mut self.enc,
            &self.cfg,
            msg_type,
            seq,
            false,
            now,
            None,
            extras,
            body,
        )?;
        if keep {
            self.store
                .store(seq, &self.enc[r.clone()])
                .map_err(SendError::Store)?;
        }
        self.store
            .set_next_sender_seq(seq + 1)
            .map_err(SendError::Store)?;
        if keep && !self.is_logged_on() {
            // Kept for resend; the counterparty will ask for it after its next Logon.
            return Ok(seq);
        }
        if keep && self.resend_cursor.is_some() {
            // Held back until the answer to the peer's ResendRequest is out, so the peer
            // gets its messages in order (a message above its gap would wait in its queue,
            // and a bounded queue drops what does not fit).
            return Ok(seq);
        }
        out.extend_from_slice(&self.enc[r]);
        self.last_sent = now;
        Ok(seq)
    }

    /// Sends an application message: assigns MsgSeqNum, stamps SendingTime with `now`, keeps
    /// it in the store for resend and appends it to `out`. When the session is not logged on
    /// the message is stored but not written (a later ResendRequest delivers it).
    pub fn send<M: OutboundMessage + ?Sized>(
        &mut self,
        msg: &M,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<u64, SendError> {
        self.send_with(msg.msg_type(), msg.header_fields(), true, now, out, |e| {
            msg.write_body(e)
        })
    }

    /// Sends an application message that is not kept for resend: a ResendRequest over its
    /// number gets a SequenceReset-GapFill, as for session messages. For market data, which a
    /// resend would deliver stale (the subscriber asks for a new snapshot instead). The caller
    /// sends it only while [`Session::can_send_now`]: unlike [`Session::send`] it is never
    /// held back for later.
    pub fn send_unstored<M: OutboundMessage + ?Sized>(
        &mut self,
        msg: &M,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<u64, SendError> {
        self.send_with(msg.msg_type(), msg.header_fields(), false, now, out, |e| {
            msg.write_body(e)
        })
    }

    /// Whether a message sent now goes out now: logged on, and no answer to a ResendRequest
    /// in progress (application messages wait behind one).
    #[inline]
    pub fn can_send_now(&self) -> bool {
        self.is_logged_on() && self.resend_cursor.is_none()
    }

    /// Sends an application message whose body is already encoded (`tag=value<SOH>...`).
    pub fn send_raw(
        &mut self,
        msg_type: &[u8],
        header_fields: &[(u32, &[u8])],
        body: &[u8],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<u64, SendError> {
        self.send_with(msg_type, header_fields, true, now, out, |e| e.raw(body))
    }

    /// Sends a BusinessMessageReject (35=j) about `ref_msg`, e.g. for an unsupported MsgType
    /// (380=3) or a business rule. Text defaults to QuickFIX's wording for the reason, with
    /// `ref_tag` appended in parentheses.
    pub fn send_business_reject(
        &mut self,
        ref_msg: &Message<'_>,
        reason: BusinessRejectReason,
        ref_tag: Option<u32>,
        text: Option<&[u8]>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<u64, SendError> {
        let mut buf = [0u8; 96];
        let text: &[u8] = match (text, ref_tag) {
            (Some(t), _) => t,
            (None, None) => reason.text().as_bytes(),
            (None, Some(tag)) => {
                let n = format_with_tag(&mut buf, reason.text().as_bytes(), tag as i64);
                &buf[..n]
            }
        };
        let ref_seq = ref_msg.get(tags::MSG_SEQ_NUM).unwrap_or(b"");
        let ref_type = ref_msg.msg_type();
        self.notes.push(Note::BusinessRejectSent {
            ref_seq: ref_msg.seq_num().unwrap_or(0),
            reason,
            ref_tag: ref_tag.unwrap_or(0),
            cl_ord_id: InlineId::from_bytes(ref_msg.get(tags::CL_ORD_ID).unwrap_or(b"")),
        });
        self.send_with(b"j", &[], true, now, out, |e| {
            if !ref_seq.is_empty() {
                e.field(tags::REF_SEQ_NUM, ref_seq);
            }
            e.field(tags::TEXT, text);
            e.field(tags::REF_MSG_TYPE, ref_type);
            e.field_u64(tags::BUSINESS_REJECT_REASON, reason.code() as u64);
        })
    }

    /// Sends a session-level Reject (35=3) about `ref_msg` (for checks the application makes
    /// on top of the dictionary).
    pub fn send_reject(
        &mut self,
        ref_msg: &Message<'_>,
        reason: SessionRejectReason,
        ref_tag: Option<u32>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        self.generate_reject(ref_msg, reason, ref_tag.map(|t| t as i64), now, out)
    }

    /// QuickFIX's `generateReject`: RefSeqNum, Text, RefTagID, RefMsgType, SessionRejectReason,
    /// routing IDs reversed; advances the expected MsgSeqNum when the rejected message was the
    /// expected one (except Logon and SequenceReset).
    fn generate_reject(
        &mut self,
        msg: &Message<'_>,
        reason: SessionRejectReason,
        tag: Option<i64>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        let mt = msg.msg_type();
        let expected = self.store.next_target_seq();
        if mt != b"A" && mt != b"4" && msg.seq_num() == Some(expected) {
            self.incr_target()?;
        }
        // Reverse routing: OnBehalfOf* <-> DeliverTo*, empty values skipped.
        let mut extras: [(u32, &[u8]); 6] = [(0, &[]); 6];
        let mut nx = 0;
        for (from, to) in [
            (tags::ON_BEHALF_OF_COMP_ID, tags::DELIVER_TO_COMP_ID),
            (tags::ON_BEHALF_OF_SUB_ID, tags::DELIVER_TO_SUB_ID),
            (tags::ON_BEHALF_OF_LOCATION_ID, tags::DELIVER_TO_LOCATION_ID),
            (tags::DELIVER_TO_COMP_ID, tags::ON_BEHALF_OF_COMP_ID),
            (tags::DELIVER_TO_SUB_ID, tags::ON_BEHALF_OF_SUB_ID),
            (tags::DELIVER_TO_LOCATION_ID, tags::ON_BEHALF_OF_LOCATION_ID),
        ] {
            if let Some(v) = msg
                .header_fields()
                .iter()
                .find(|f| f.tag == from)
                .map(|f| msg.value(f))
            {
                if !v.is_empty() {
                    extras[nx] = (to, v);
                    nx += 1;
                }
            }
        }
        extras[..nx].sort_unstable_by_key(|e| e.0);
        let ref_seq = msg.get(tags::MSG_SEQ_NUM).unwrap_or(b"");
        let text = reason.text().as_bytes();
        let extras = &extras[..nx];
        self.notes.push(Note::RejectSent {
            ref_seq: msg.seq_num().unwrap_or(0),
            reason,
            ref_tag: tag.map_or(0, |t| u32::try_from(t).unwrap_or(0)),
            cl_ord_id: InlineId::from_bytes(msg.get(tags::CL_ORD_ID).unwrap_or(b"")),
        });
        self.send_with(b"3", extras, false, now, out, |e| {
            if !ref_seq.is_empty() {
                e.field(tags::REF_SEQ_NUM, ref_seq);
            }
            e.field(tags::TEXT, text);
            if let Some(t) = tag {
                e.field_i64(tags::REF_TAG_ID, t);
            }
            if !mt.is_empty() {
                e.field(tags::REF_MSG_TYPE, mt);
            }
            e.field_u64(tags::SESSION_REJECT_REASON, reason.code() as u64);
        })
        .map(|_| ())
        .map_err(|e| match e {
            SendError::TooLarge => DisconnectReason::Frame(FrameError::TooLarge),
            SendError::Store(s) => DisconnectReason::Store(s),
        })
    }

    fn send_resend_request(
        &mut self,
        begin: u64,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        self.resend_requests.1 += 1;
        self.notes.push(Note::ResendRequestSent { begin, end: 0 });
        self.send_admin(b"2", now, out, |e| {
            e.field_u64(tags::BEGIN_SEQ_NO, begin);
            e.field_u64(tags::END_SEQ_NO, 0);
        })
    }

    fn send_logout(
        &mut self,
        text: Option<&[u8]>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        self.send_admin(b"5", now, out, |e| {
            if let Some(t) = text {
                e.field(tags::TEXT, t);
            }
        })?;
        self.phase = Phase::LogoutSent;
        self.phase_since = now;
        Ok(())
    }

    /// Starts a graceful logout (we send Logout and wait for the reply or the logout timeout).
    pub fn logout(
        &mut self,
        text: Option<&[u8]>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        self.send_logout(text, now, out)
    }

    /// Initiator: sends the Logon (with ResetSeqNumFlag=Y when `reset_on_logon`, and the
    /// configured credentials). Call after [`on_connected`](Self::on_connected).
    pub fn initiate_logon(&mut self, now: u64, out: &mut Vec<u8>) -> Result<(), DisconnectReason> {
        if self.cfg.reset_on_logon {
            self.store.reset().map_err(DisconnectReason::Store)?;
            self.sent_reset = true;
        }
        self.hb_ns = secs(self.cfg.heart_bt_int);
        let hb = self.cfg.heart_bt_int as u64;
        let reset = self.sent_reset;
        let user = self.cfg.username.clone();
        let pass = self.cfg.password.clone();
        self.send_admin(b"A", now, out, |e| {
            e.field_u64(tags::ENCRYPT_METHOD, 0);
            e.field_u64(tags::HEART_BT_INT, hb);
            if reset {
                e.field_char(tags::RESET_SEQ_NUM_FLAG, b'Y');
            }
            if let Some(u) = &user {
                e.field(tags::USERNAME, u.as_bytes());
            }
            if let Some(p) = &pass {
                e.field(tags::PASSWORD, p.as_bytes());
            }
        })?;
        self.sent_logon = true;
        self.phase = Phase::LogonSent;
        self.phase_since = now;
        Ok(())
    }

    /// Sends a TestRequest with `id` (normally the session does this by itself on silence).
    pub fn send_test_request(
        &mut self,
        id: &[u8],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), DisconnectReason> {
        self.send_admin(b"1", now, out, |e| e.field(tags::TEST_REQ_ID, id))
    }

    // ----------------------------------------------------------------------------------
    // Timers
    // ----------------------------------------------------------------------------------

    /// Drives time-based behaviour: heartbeats when we have been quiet for HeartBtInt, a
    /// TestRequest when the counterparty has been silent for 1.2 x HeartBtInt, disconnect at
    /// 2.4 x HeartBtInt (QuickFIX's factors), and the logon and logout timeouts. Call at least
    /// every [`next_deadline`](Self::next_deadline). Returns `Some` when the driver must close
    /// the connection.
    pub fn on_timer(&mut self, now: u64, out: &mut Vec<u8>) -> Option<DisconnectReason> {
        match self.phase {
            Phase::AwaitingLogon | Phase::LogonSent => {
                if now.saturating_sub(self.phase_since) >= secs(self.cfg.logon_timeout_secs) {
                    return Some(DisconnectReason::LogonTimeout);
                }
                None
            }
            Phase::LogoutSent => {
                if now.saturating_sub(self.phase_since) >= secs(self.cfg.logout_timeout_secs) {
                    return Some(DisconnectReason::LogoutTimeout);
                }
                None
            }
            Phase::Active => {
                let hb = self.hb_ns;
                if hb == 0 {
                    return None;
                }
                let since_recv = now.saturating_sub(self.last_recv);
                let since_sent = now.saturating_sub(self.last_sent);
                if since_recv < hb && since_sent < hb {
                    return None;
                }
                if since_recv as u128 * 10 >= hb as u128 * 24 {
                    return Some(DisconnectReason::HeartbeatTimeout);
                }
                let tr_due = hb as u128 * 12 * (self.test_requests as u128 + 1);
                if since_recv as u128 * 10 >= tr_due {
                    if let Err(d) = self.send_test_request(b"TEST", now, out) {
                        return Some(d);
                    }
                    self.test_requests += 1;
                } else if since_sent >= hb && self.test_requests == 0 {
                    if let Err(d) = self.send_admin(b"0", now, out, |_| {}) {
                        return Some(d);
                    }
                }
                None
            }
        }
    }

    /// The next instant (UTC ns) at which [`on_timer`](Self::on_timer) may have work.
    pub fn next_deadline(&self) -> u64 {
        // Saturating throughout: HeartBtInt comes from the counterparty and may be absurd.
        let after = |base: u64, d: u128| base.saturating_add(d.min(u64::MAX as u128) as u64);
        match self.phase {
            Phase::AwaitingLogon | Phase::LogonSent => {
                after(self.phase_since, secs(self.cfg.logon_timeout_secs) as u128)
            }
            Phase::LogoutSent => {
                after(self.phase_since, secs(self.cfg.logout_timeout_secs) as u128)
            }
            Phase::Active => {
                if self.hb_ns == 0 {
                    return u64::MAX;
                }
                let hb = self.hb_ns as u128;
                let hb_due = after(self.last_sent, hb);
                let tr_due = after(
                    self.last_recv,
                    hb * 12 * (self.test_requests as u128 + 1) / 10,
                );
                let to_due = after(self.last_recv, hb * 24 / 10);
                hb_due
                    .min(tr_due)
                    .min(to_due)
                    .min(after(self.last_recv, hb))
            }
        }
    }
}

/// "MsgSeqNum too low, expecting X but received Y" without allocating.
fn format_too_low(out: &mut [u8; 96], expected: u64, got: u64) -> usize {
    use crate::codec::num::write_u64;
    let mut n = 0;
    let head = b"MsgSeqNum too low, expecting ";
    out[..head.len()].copy_from_slice(head);
    n += head.len();
    n += write_u64(&mut out[n..], expected).unwrap_or(0);
    let mid = b" but received ";
    out[n..n + mid.len()].copy_from_slice(mid);
    n += mid.len();
    n += write_u64(&mut out[n..], got).unwrap_or(0);
    n
}

/// "<text> (<tag>)" without allocating.
fn format_with_tag(out: &mut [u8; 96], text: &[u8], tag: i64) -> usize {
    let t = text.len().min(80);
    out[..t].copy_from_slice(&text[..t]);
    let mut n = t;
    out[n] = b' ';
    out[n + 1] = b'(';
    n += 2;
    n += crate::codec::num::write_i64(&mut out[n..], tag).unwrap_or(0);
    out[n] = b')';
    n + 1
}

#[cfg(test)]
mod tests;

//! The binary protocol's session rules, sans-IO: login gating, sequence numbers, heartbeats.
//!
//! Two pieces of state, because they live for different lengths of time:
//! - [`UserState`]: one per configured user, for the whole run: the next sequence number
//!   expected from the client, the next one the appliance will send, and the log of sequenced
//!   replies kept for replay after a reconnect.
//! - [`Connection`]: one per TCP connection: logged in or not, heartbeat timers.
//!
//! Time comes in as nanoseconds from any monotonic origin; nothing here reads a clock.

use super::wire::{
    self, ClientMessage, DecodeError, EnterOrder, FrameError, Heartbeat, Login, LogoutReason,
    ServerMessage,
};

/// Default heartbeat interval when the client asks for none.
pub const DEFAULT_HEARTBEAT_MS: u32 = 1_000;
/// Shortest heartbeat interval a client may ask for; shorter requests are raised to it.
pub const MIN_HEARTBEAT_MS: u32 = 100;
/// Longest heartbeat interval a client may ask for; longer requests are lowered to it.
pub const MAX_HEARTBEAT_MS: u32 = 60_000;
/// Missed intervals after which a silent client is disconnected.
pub const HEARTBEAT_TIMEOUT_INTERVALS: u64 = 3;

/// What a frame from the client asks the gateway to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A login on a connection that is not logged in yet: the gateway checks the credentials
    /// and answers with [`Connection::accept_login`] or a rejection.
    Login(Login),
    /// A new order (sequence already checked and consumed).
    Enter(EnterOrder),
    /// A cancel (sequence already checked and consumed).
    Cancel(wire::CancelOrder),
    /// A replace (sequence already checked and consumed).
    Replace(wire::ReplaceOrder),
    /// A mass cancel (sequence already checked and consumed).
    MassCancel(wire::MassCancel),
    /// The client asked to log out: answer with a Logout and close.
    Logout,
    /// Nothing to do: a heartbeat, or a sequenced message the appliance already processed
    /// (a client resending after a reconnect), counted by the caller.
    Nothing {
        /// True when the frame was a duplicate sequenced message.
        duplicate: bool,
    },
}

/// A client frame that ends the session. The gateway sends a [`wire::Logout`] (or, before
/// login, a [`wire::LoginRejected`]) with the matching reason and closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The byte stream cannot be split into frames any more.
    Framing(FrameError),
    /// A well-framed message that is not a valid client message.
    Decode(DecodeError),
    /// The first message was not a Login.
    LoginRequired,
    /// A second Login on a logged-in connection.
    UnexpectedLogin,
    /// A sequenced message skipped ahead.
    SequenceGap {
        /// The sequence number the appliance expected.
        expected: u32,
        /// The sequence number that arrived.
        received: u32,
    },
}

impl Violation {
    /// The reason code sent in the Logout for this violation.
    pub fn logout_reason(&self) -> LogoutReason {
        match self {
            Self::SequenceGap { .. } => LogoutReason::SequenceGap,
            _ => LogoutReason::ProtocolError,
        }
    }
}

/// What the timers ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Nothing due.
    None,
    /// The appliance has been quiet for an interval: send a heartbeat.
    SendHeartbeat,
    /// The client has been silent for [`HEARTBEAT_TIMEOUT_INTERVALS`] intervals: log it out.
    TimedOut,
}

/// Connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the Login.
    AwaitingLogin,
    /// Logged in as a user.
    Active,
    /// A Logout was sent or received; no more frames are processed.
    Closing,
}

/// Per-connection protocol state.
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    state: State,
    heartbeat_ns: u64,
    last_rx_ns: u64,
    last_tx_ns: u64,
}

impl Connection {
    /// A fresh connection accepted at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        Self {
            state: State::AwaitingLogin,
            heartbeat_ns: DEFAULT_HEARTBEAT_MS as u64 * 1_000_000,
            last_rx_ns: now_ns,
            last_tx_ns: now_ns,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Handles one complete frame. `user` is the logged-in user's state (`None` before login).
    #[inline]
    pub fn on_frame(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        user: Option<&mut UserState>,
    ) -> Result<Inbound, Violation> {
        self.last_rx_ns = now_ns;
        let msg = ClientMessage::decode(frame).map_err(Violation::Decode)?;
        match self.state {
            State::AwaitingLogin => match msg {
                ClientMessage::Login(login) => Ok(Inbound::Login(login)),
                _ => Err(Violation::LoginRequired),
            },
            State::Closing => Ok(Inbound::Nothing { duplicate: false }),
            State::Active => {
                let user = user.expect("an active connection has a user");
                if msg.is_sequenced() {
                    let seq = wire::read_header(frame).seq;
                    if seq < user.next_in_seq {
                        return Ok(Inbound::Nothing { duplicate: true });
                    }
                    if seq > user.next_in_seq {
                        return Err(Violation::SequenceGap {
                            expected: user.next_in_seq,
                            received: seq,
                        });
                    }
                    user.next_in_seq += 1;
                }
                Ok(match msg {
                    ClientMessage::EnterOrder(m) => Inbound::Enter(m),
                    ClientMessage::CancelOrder(m) => Inbound::Cancel(m),
                    ClientMessage::ReplaceOrder(m) => Inbound::Replace(m),
                    ClientMessage::MassCancel(m) => Inbound::MassCancel(m),
                    ClientMessage::Heartbeat(_) => Inbound::Nothing { duplicate: false },
                    ClientMessage::Logout(_) => {
                        self.state = State::Closing;
                        Inbound::Logout
                    }
                    ClientMessage::Login(_) => return Err(Violation::UnexpectedLogin),
                })
            }
        }
    }

    /// Accepts the login the gateway has checked: fixes the heartbeat interval and returns the
    /// LoginAccepted to send, followed by the replay of `user`'s log from the requested
    /// sequence number. `Err` when the client asks to resume beyond what was sent.
    pub fn accept_login(
        &mut self,
        now_ns: u64,
        login: &Login,
        user: &UserState,
    ) -> Result<wire::LoginAccepted, wire::LoginRejectReason> {
        if login.next_server_seq > user.next_out_seq {
            return Err(wire::LoginRejectReason::InvalidSequence);
        }
        let hb = match login.heartbeat_ms {
            0 => DEFAULT_HEARTBEAT_MS,
            ms => ms.clamp(MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS),
        };
        self.heartbeat_ns = hb as u64 * 1_000_000;
        self.state = State::Active;
        self.last_tx_ns = now_ns;
        Ok(wire::LoginAccepted {
            next_client_seq: user.next_in_seq,
            next_server_seq: user.next_out_seq,
            heartbeat_ms: hb,
        })
    }

    /// Marks the connection as ending (a Logout was sent).
    pub fn close(&mut self) {
        self.state = State::Closing;
    }

    /// Records that bytes were sent at `now_ns` (resets the heartbeat timer).
    #[inline]
    pub fn on_sent(&mut self, now_ns: u64) {
        self.last_tx_ns = now_ns;
    }

    /// The earliest time (same clock as `now_ns`) at which [`Connection::on_timer`] may have
    /// something to do, so an idle gateway can sleep until then; `None` once closing.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.state == State::Closing {
            return None;
        }
        let timeout = self
            .last_rx_ns
            .saturating_add(HEARTBEAT_TIMEOUT_INTERVALS * self.heartbeat_ns)
            .saturating_add(1);
        Some(match self.state {
            State::Active => timeout.min(self.last_tx_ns.saturating_add(self.heartbeat_ns)),
            _ => timeout,
        })
    }

    /// The peer is known to be alive at `now_ns` though nothing of it was read: the gateway
    /// stopped reading the connection (back-pressure), so its silence is the gateway's doing.
    pub fn note_alive(&mut self, now_ns: u64) {
        self.last_rx_ns = self.last_rx_ns.max(now_ns);
    }

    /// What the heartbeat timers ask for at `now_ns`. Before login the same timeout applies
    /// (with the default interval), so a connection that never logs in is closed.
    pub fn on_timer(&self, now_ns: u64) -> TimerAction {
        if self.state == State::Closing {
            return TimerAction::None;
        }
        if now_ns.saturating_sub(self.last_rx_ns) > HEARTBEAT_TIMEOUT_INTERVALS * self.heartbeat_ns
        {
            return TimerAction::TimedOut;
        }
        if self.state == State::Active
            && now_ns.saturating_sub(self.last_tx_ns) >= self.heartbeat_ns
        {
            return TimerAction::SendHeartbeat;
        }
        TimerAction::None
    }
}

/// A heartbeat frame, ready to send.
pub fn heartbeat_frame() -> [u8; Heartbeat::FRAME_LEN] {
    let mut buf = [0u8; <Heartbeat as wire::Message>::FRAME_LEN];
    wire::encode(&Heartbeat {}, 0, &mut buf);
    buf
}

use wire::Message as _;

/// State of one configured user that outlives its connections.
pub struct UserState {
    /// Sequence number expected on the client's next sequenced message.
    pub next_in_seq: u32,
    /// Sequence number of the appliance's next sequenced message.
    pub next_out_seq: u32,
    log: SequencedLog,
}

impl UserState {
    /// A user that has not traded yet, keeping up to `log_bytes` of replies for replay.
    pub fn new(log_bytes: usize, log_messages: usize) -> Self {
        Self {
            next_in_seq: 1,
            next_out_seq: 1,
            log: SequencedLog::with_capacity(log_bytes, log_messages),
        }
    }

    /// Encodes a sequenced reply with the next sequence number, keeps it for replay and
    /// returns the frame (to be copied to the connection's output, if connected).
    #[inline]
    pub fn sequence(&mut self, msg: &ServerMessage) -> &[u8] {
        debug_assert!(msg.is_sequenced());
        let seq = self.next_out_seq;
        self.next_out_seq += 1;
        self.log
            .append_with(seq, |buf| msg.encode(seq, buf).unwrap_or(0))
    }

    /// The stored frames from `from_seq` on (for replay after login), oldest first. Frames that
    /// no longer fit the log were dropped oldest-first; [`UserState::oldest_replayable`] says
    /// where replay can start.
    pub fn replay_from(&self, from_seq: u32) -> impl Iterator<Item = &[u8]> {
        self.log.from(from_seq)
    }

    /// Frames dropped from the replay log to make room so far (a client reconnecting from
    /// before the oldest held frame cannot get them).
    pub fn evicted(&self) -> u64 {
        self.log.evicted
    }

    /// The oldest sequence number still held for replay.
    pub fn oldest_replayable(&self) -> u32 {
        self.log.first_seq
    }

    /// Recovery: puts back a frame sent before a restart, as sequence number `seq` (the next
    /// one: frames come back in order). Cold path.
    pub fn restore_frame(&mut self, seq: u32, frame: &[u8]) {
        let n = frame.len().min(wire::MAX_FRAME_LEN);
        self.log.append_with(seq, |buf| {
            buf[..n].copy_from_slice(&frame[..n]);
            n
        });
        self.next_out_seq = seq + 1;
    }

    /// Every frame held, oldest first, with its sequence number (for snapshots). Cold path.
    pub fn frames(&self) -> impl Iterator<Item = (u32, &[u8])> {
        (self.log.first_seq..self.next_out_seq).filter_map(move |s| self.log.get(s).map(|f| (s, f)))
    }

    /// The stored frame with sequence number `seq`, if still held (O(1): the log holds a
    /// contiguous run of sequence numbers).
    #[inline]
    pub fn frame(&self, seq: u32) -> Option<&[u8]> {
        self.log.get(seq)
    }
}

/// Sequenced frames kept for replay in one pre-reserved byte arena, oldest dropped first
/// when full. The hot path appends without allocating: both vectors are sized at start-up
/// and only ever used within their capacity.
struct SequencedLog {
    bytes: Vec<u8>,
    /// (seq, offset, len) of each frame, a ring over `frames_cap` entries.
    frames: Vec<(u32, u32, u16)>,
    head: usize,
    len: usize,
    write_at: usize,
    first_seq: u32,
    /// Frames dropped to make room (never replayable).
    evicted: u64,
}

impl SequencedLog {
    fn with_capacity(bytes: usize, messages: usize) -> Self {
        Self {
            bytes: vec![0; bytes.max(wire::MAX_FRAME_LEN * 2)],
            frames: vec![(0, 0, 0); messages.max(2)],
            head: 0,
            len: 0,
            write_at: 0,
            first_seq: 1,
            evicted: 0,
        }
    }

    fn append_with(&mut self, seq: u32, write: impl FnOnce(&mut [u8]) -> usize) -> &[u8] {
        if self.write_at + wire::MAX_FRAME_LEN > self.bytes.len() {
            self.write_at = 0;
        }
        let start = self.write_at;
        let n = write(&mut self.bytes[start..start + wire::MAX_FRAME_LEN]);
        // Drop the oldest frames the new one overwrote, and make room in the index.
        while self.len > 0 {
            let (_, off, flen) = self.frames[self.head];
            let (off, end) = (off as usize, off as usize + flen as usize);
            let overlaps = off < start + n && start < end;
            if overlaps || self.len == self.frames.len() {
                self.head = (self.head + 1) % self.frames.len();
                self.len -= 1;
                self.evicted += 1;
            } else {
                break;
            }
        }
        self.first_seq = if self.len == 0 {
            seq
        } else {
            self.frames[self.head].0
        };
        let slot = (self.head + self.len) % self.frames.len();
        self.frames[slot] = (seq, start as u32, n as u16);
        self.len += 1;
        self.write_at = start + n;
        &self.bytes[start..start + n]
    }

    fn get(&self, seq: u32) -> Option<&[u8]> {
        if self.len == 0 || seq < self.first_seq {
            return None;
        }
        let k = (seq - self.first_seq) as usize;
        if k >= self.len {
            return None;
        }
        let (s, off, len) = self.frames[(self.head + k) % self.frames.len()];
        debug_assert_eq!(s, seq);
        Some(&self.bytes[off as usize..off as usize + len as usize])
    }

    fn from(&self, from_seq: u32) -> impl Iterator<Item = &[u8]> {
        (0..self.len)
            .map(move |i| self.frames[(self.head + i) % self.frames.len()])
            .filter(move |&(seq, _, _)| seq >= from_seq)
            .map(move |(_, off, len)| &self.bytes[off as usize..off as usize + len as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::wire::{credential, symbol, OrderRejected};

    fn frame(m: ClientMessage, seq: u32) -> Vec<u8> {
        let mut b = vec![0u8; wire::MAX_FRAME_LEN];
        let n = m.encode(seq, &mut b).unwrap();
        b.truncate(n);
        b
    }

    fn login(next_server_seq: u32) -> ClientMessage {
        ClientMessage::Login(Login {
            username: credential("CLIENT1").unwrap(),
            password: [b' '; 16],
            next_server_seq,
            heartbeat_ms: 500,
        })
    }

    fn order(token: u64) -> ClientMessage {
        ClientMessage::EnterOrder(EnterOrder {
            token,
            symbol: symbol("ACME").unwrap(),
            price: 100,
            qty: 1,
            side: b'B',
            ord_type: b'L',
            tif: b'0',
            flags: 0,
            stp: 0,
        })
    }

    fn logged_in(user: &UserState) -> Connection {
        let mut c = Connection::new(0);
        let Ok(Inbound::Login(l)) = c.on_frame(0, &frame(login(0), 0), None) else {
            panic!("login frame must surface as Inbound::Login")
        };
        c.accept_login(0, &l, user).unwrap();
        c
    }

    #[test]
    fn first_message_must_be_login() {
        let mut c = Connection::new(0);
        assert_eq!(
            c.on_frame(0, &frame(order(1), 1), None),
            Err(Violation::LoginRequired)
        );
    }

    #[test]
    fn sequenced_messages_in_order_duplicates_ignored_gaps_fatal() {
        let mut user = UserState::new(4096, 16);
        let mut c = logged_in(&user);
        assert!(
            matches!(c.on_frame(1, &frame(order(1), 1), Some(&mut user)), Ok(Inbound::Enter(o)) if o.token == 1)
        );
        assert!(
            matches!(c.on_frame(2, &frame(order(2), 2), Some(&mut user)), Ok(Inbound::Enter(o)) if o.token == 2)
        );
        // A resent message (seq 2 again) is recognised and skipped.
        assert_eq!(
            c.on_frame(3, &frame(order(2), 2), Some(&mut user)),
            Ok(Inbound::Nothing { duplicate: true })
        );
        // Heartbeats are unsequenced and do not move the counter.
        assert_eq!(
            c.on_frame(
                4,
                &frame(ClientMessage::Heartbeat(Heartbeat {}), 0),
                Some(&mut user)
            ),
            Ok(Inbound::Nothing { duplicate: false })
        );
        assert_eq!(
            c.on_frame(5, &frame(order(4), 4), Some(&mut user)),
            Err(Violation::SequenceGap {
                expected: 3,
                received: 4
            })
        );
        assert_eq!(user.next_in_seq, 3);
    }

    #[test]
    fn second_login_is_a_violation() {
        let mut user = UserState::new(4096, 16);
        let mut c = logged_in(&user);
        assert_eq!(
            c.on_frame(1, &frame(login(0), 0), Some(&mut user)),
            Err(Violation::UnexpectedLogin)
        );
    }

    #[test]
    fn heartbeat_timers() {
        let user = UserState::new(4096, 16);
        let c = logged_in(&user); // 500 ms interval
        let ms = 1_000_000;
        assert_eq!(c.on_timer(499 * ms), TimerAction::None);
        assert_eq!(c.on_timer(500 * ms), TimerAction::SendHeartbeat);
        assert_eq!(c.on_timer(1_501 * ms), TimerAction::TimedOut);
        // A connection that never logs in times out on the default interval.
        let fresh = Connection::new(0);
        assert_eq!(fresh.on_timer(2_999 * ms), TimerAction::None);
        assert_eq!(fresh.on_timer(3_001 * ms), TimerAction::TimedOut);
    }

    fn reject(token: u64) -> ServerMessage {
        ServerMessage::Rejected(OrderRejected {
            timestamp_ns: 0,
            token,
            reason: 1,
        })
    }

    #[test]
    fn replies_are_sequenced_logged_and_replayed() {
        let mut user = UserState::new(4096, 16);
        for t in 1..=5 {
            let f = user.sequence(&reject(t)).to_vec();
            assert_eq!(wire::read_header(&f).seq, t as u32);
        }
        let replayed: Vec<u32> = user
            .replay_from(3)
            .map(|f| wire::read_header(f).seq)
            .collect();
        assert_eq!(replayed, vec![3, 4, 5]);
        assert_eq!(user.frame(4).map(|f| wire::read_header(f).seq), Some(4));
        assert!(user.frame(6).is_none() && user.frame(0).is_none());
        // Resuming past what was sent is refused; resuming at the next one is fine.
        let mut c = Connection::new(0);
        let l = Login {
            next_server_seq: 7,
            ..Login::default()
        };
        assert_eq!(
            c.accept_login(0, &l, &user),
            Err(wire::LoginRejectReason::InvalidSequence)
        );
        let l = Login {
            next_server_seq: 6,
            ..Login::default()
        };
        let acc = c.accept_login(0, &l, &user).unwrap();
        assert_eq!(acc.next_server_seq, 6);
        assert_eq!(acc.next_client_seq, 1);
    }

    #[test]
    fn log_drops_oldest_when_full_and_says_so() {
        // 2 * MAX_FRAME_LEN bytes hold 16 reject frames (32 bytes each); an index of 4 holds 4.
        let mut user = UserState::new(0, 4);
        for t in 1..=10 {
            user.sequence(&reject(t));
        }
        assert_eq!(user.oldest_replayable(), 7);
        let seqs: Vec<u32> = user
            .replay_from(1)
            .map(|f| wire::read_header(f).seq)
            .collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        // Byte-bound wrap: a larger index, the arena wraps and overwritten frames are dropped.
        let mut user = UserState::new(0, 1000);
        for t in 1..=40 {
            user.sequence(&reject(t));
        }
        let seqs: Vec<u32> = user
            .replay_from(1)
            .map(|f| wire::read_header(f).seq)
            .collect();
        assert_eq!(*seqs.last().unwrap(), 40);
        assert_eq!(seqs[0], user.oldest_replayable());
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
        for seq in seqs {
            assert_eq!(wire::read_header(user.frame(seq).unwrap()).seq, seq);
        }
        assert!(user.frame(user.oldest_replayable() - 1).is_none());
        for f in user.replay_from(1) {
            assert!(matches!(
                ServerMessage::decode(f),
                Ok(ServerMessage::Rejected(_))
            ));
        }
    }
}

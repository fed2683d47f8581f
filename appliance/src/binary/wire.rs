//! Byte layouts of the binary order-entry protocol (`docs/binary-protocol.md` is the spec).
//!
//! One type per message, each with its type byte, its fixed body length and a pair of
//! `write_body` / `read_body` functions at fixed little-endian offsets: the decoder is a bounds
//! check and a handful of loads, with no allocation and no `unsafe` transmutes (a packed struct
//! cast would be as fast but would make alignment and endianness the reader's problem).
//!
//! Every frame is an 8-byte header followed by the body:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 2 | `length`: whole frame in bytes, header included (u16 LE) |
//! | 2 | 1 | `msg_type`: ASCII letter, upper case from the client, lower case for order replies |
//! | 3 | 1 | `version`: [`VERSION`] |
//! | 4 | 4 | `seq`: sender's sequence number for sequenced messages, 0 otherwise (u32 LE) |

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 8;
/// Protocol version carried in every header; a frame with another version is a framing error.
pub const VERSION: u8 = 1;
/// Largest frame either side may send. Every message defined here is far smaller; the bound
/// lets a receiver reject a corrupt length before buffering anything.
pub const MAX_FRAME_LEN: usize = 256;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Whole frame length in bytes, header included.
    pub length: u16,
    /// Message type byte.
    pub msg_type: u8,
    /// Sequence number (0 for unsequenced messages).
    pub seq: u32,
}

/// Why bytes could not be split into frames. Every variant means the stream can no longer be
/// trusted (the next frame boundary is unknown), so the receiver disconnects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// `length` is shorter than a header or longer than [`MAX_FRAME_LEN`].
    BadLength(u16),
    /// The version byte is not [`VERSION`].
    BadVersion(u8),
}

/// Why a complete frame could not be decoded into a message. The framing is intact, so the
/// receiver can answer and carry on (or log out, as the session decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The type byte names no message of this direction.
    UnknownType(u8),
    /// The frame's length does not match the type's fixed length.
    WrongLength {
        /// Type byte of the frame.
        msg_type: u8,
        /// Length the frame declared.
        length: u16,
    },
}

/// Looks at the start of `buf` and returns the length of the first complete frame, `Ok(None)`
/// when more bytes are needed, or the reason the stream is corrupt.
#[inline]
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = u16::from_le_bytes([buf[0], buf[1]]);
    if (length as usize) < HEADER_LEN || length as usize > MAX_FRAME_LEN {
        return Err(FrameError::BadLength(length));
    }
    if buf[3] != VERSION {
        return Err(FrameError::BadVersion(buf[3]));
    }
    if buf.len() < length as usize {
        return Ok(None);
    }
    Ok(Some(length as usize))
}

/// Reads the header of a frame that [`frame_len`] accepted.
#[inline]
pub fn read_header(frame: &[u8]) -> Header {
    Header {
        length: u16::from_le_bytes([frame[0], frame[1]]),
        msg_type: frame[2],
        seq: get_u32(frame, 4),
    }
}

/// A message with a fixed layout: the building block of both directions.
pub trait Message: Sized + Copy {
    /// Type byte in the header.
    const TYPE: u8;
    /// Body length in bytes (the frame is `HEADER_LEN + BODY_LEN`).
    const BODY_LEN: usize;
    /// Whole frame length.
    const FRAME_LEN: usize = HEADER_LEN + Self::BODY_LEN;
    /// Writes the body into `body`, which is exactly `BODY_LEN` bytes.
    fn write_body(&self, body: &mut [u8]);
    /// Reads the body from `body`, which is exactly `BODY_LEN` bytes.
    fn read_body(body: &[u8]) -> Self;
}

/// Writes `msg` as a whole frame with sequence number `seq` at the start of `buf` and returns
/// the frame length, or `None` (writing nothing) when `buf` is too short.
#[inline]
pub fn encode<M: Message>(msg: &M, seq: u32, buf: &mut [u8]) -> Option<usize> {
    let frame = buf.get_mut(..M::FRAME_LEN)?;
    frame[0..2].copy_from_slice(&(M::FRAME_LEN as u16).to_le_bytes());
    frame[2] = M::TYPE;
    frame[3] = VERSION;
    frame[4..8].copy_from_slice(&seq.to_le_bytes());
    msg.write_body(&mut frame[HEADER_LEN..]);
    Some(M::FRAME_LEN)
}

#[inline]
fn decode_as<M: Message>(frame: &[u8]) -> Result<M, DecodeError> {
    if frame.len() != M::FRAME_LEN {
        return Err(DecodeError::WrongLength {
            msg_type: M::TYPE,
            length: frame.len() as u16,
        });
    }
    Ok(M::read_body(&frame[HEADER_LEN..]))
}

/// Instrument symbol on the wire: ASCII, left-aligned, padded with spaces (or NULs).
pub type Symbol = [u8; 8];

/// Packs a textual symbol into its wire form; `None` when it is longer than 8 bytes.
pub fn symbol(s: &str) -> Option<Symbol> {
    let b = s.as_bytes();
    if b.len() > 8 {
        return None;
    }
    let mut out = [b' '; 8];
    out[..b.len()].copy_from_slice(b);
    Some(out)
}

/// The significant bytes of a wire symbol (padding removed).
pub fn symbol_str(s: &Symbol) -> &[u8] {
    let end = s.iter().position(|&c| c == b' ' || c == 0).unwrap_or(8);
    &s[..end]
}

/// Credentials field: ASCII, padded with spaces (or NULs), 16 bytes.
pub type Credential = [u8; 16];

/// Packs a username or password; `None` when longer than 16 bytes.
pub fn credential(s: &str) -> Option<Credential> {
    let b = s.as_bytes();
    if b.len() > 16 {
        return None;
    }
    let mut out = [b' '; 16];
    out[..b.len()].copy_from_slice(b);
    Some(out)
}

/// The significant bytes of a credential field (padding removed).
pub fn credential_str(s: &Credential) -> &[u8] {
    let end = s.iter().position(|&c| c == b' ' || c == 0).unwrap_or(16);
    &s[..end]
}

#[inline]
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[inline]
fn get_i64(b: &[u8], at: usize) -> i64 {
    get_u64(b, at) as i64
}

#[inline]
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline]
fn get_arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut x = [0u8; N];
    x.copy_from_slice(&b[at..at + N]);
    x
}

#[inline]
fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Declares a message type: the struct, its field offsets, and the `Message` impl. Every field
/// is a little-endian integer or a byte array; offsets are spelled out so the macro's output
/// reads like the table in `docs/binary-protocol.md`.
macro_rules! message {
    (
        $(#[$meta:meta])*
        $name:ident, type = $ty:expr, body = $len:expr,
        { $( $(#[$fmeta:meta])* $field:ident : $fty:tt @ $off:expr ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: message!(@ty $fty), )*
        }
        impl Message for $name {
            const TYPE: u8 = $ty;
            const BODY_LEN: usize = $len;
            #[inline]
            #[allow(unused_variables)]
            fn write_body(&self, body: &mut [u8]) {
                body.fill(0);
                $( message!(@put body, $off, self.$field, $fty); )*
            }
            #[inline]
            #[allow(unused_variables)]
            fn read_body(body: &[u8]) -> Self {
                Self { $( $field: message!(@get body, $off, $fty), )* }
            }
        }
    };
    (@ty u8) => { u8 };
    (@ty u16) => { u16 };
    (@ty u32) => { u32 };
    (@ty u64) => { u64 };
    (@ty i64) => { i64 };
    (@ty sym) => { Symbol };
    (@ty cred) => { Credential };
    (@put $b:ident, $off:expr, $v:expr, u8) => { $b[$off] = $v; };
    (@put $b:ident, $off:expr, $v:expr, sym) => { put($b, $off, &$v); };
    (@put $b:ident, $off:expr, $v:expr, cred) => { put($b, $off, &$v); };
    (@put $b:ident, $off:expr, $v:expr, $t:tt) => { put($b, $off, &$v.to_le_bytes()); };
    (@get $b:ident, $off:expr, u8) => { $b[$off] };
    (@get $b:ident, $off:expr, u16) => { get_u16($b, $off) };
    (@get $b:ident, $off:expr, u32) => { get_u32($b, $off) };
    (@get $b:ident, $off:expr, u64) => { get_u64($b, $off) };
    (@get $b:ident, $off:expr, i64) => { get_i64($b, $off) };
    (@get $b:ident, $off:expr, sym) => { get_arr::<8>($b, $off) };
    (@get $b:ident, $off:expr, cred) => { get_arr::<16>($b, $off) };
}

// ---------------------------------------------------------------------------------------------
// Client -> appliance
// ---------------------------------------------------------------------------------------------

message! {
    /// First message on a connection: who the client is and where its sequence streams resume.
    Login, type = b'L', body = 40, {
        /// Username (a configured binary user).
        username: cred @ 0,
        /// Password; spaces when the user has none configured.
        password: cred @ 16,
        /// Next appliance sequence number the client expects: sequenced messages from this
        /// number on are replayed before new ones; 0 means "no replay, continue from now".
        next_server_seq: u32 @ 32,
        /// Heartbeat interval the client asks for, in milliseconds; 0 takes the default.
        heartbeat_ms: u32 @ 36,
    }
}

message! {
    /// Ends the session; the appliance answers with its own [`Logout`] and closes.
    LogoutRequest, type = b'O', body = 0, {}
}

message! {
    /// Keeps an idle connection alive; either side sends one after an idle interval.
    Heartbeat, type = b'H', body = 0, {}
}

message! {
    /// A new order. `token` is the client's order identifier: unique within the session for
    /// the trading day; replies echo it.
    EnterOrder, type = b'E', body = 40, {
        /// Client order token.
        token: u64 @ 0,
        /// Instrument symbol.
        symbol: sym @ 8,
        /// Limit price in the instrument's price units (ignored for market orders: send 0).
        price: i64 @ 16,
        /// Quantity in units (a multiple of the instrument's lot size).
        qty: u64 @ 24,
        /// `B` buy, `S` sell.
        side: u8 @ 32,
        /// `L` limit, `M` market.
        ord_type: u8 @ 33,
        /// Time in force, FIX values: `0` Day, `1` GTC, `3` IOC, `4` FOK.
        tif: u8 @ 34,
        /// Bit 0: post-only.
        flags: u8 @ 35,
        /// Self-trade prevention: 0 session default, 1 none, 2 cancel resting,
        /// 3 cancel aggressing, 4 cancel both.
        stp: u8 @ 36,
    }
}

message! {
    /// Cancels the order entered with `token`.
    CancelOrder, type = b'X', body = 8, {
        /// Token of the order to cancel.
        token: u64 @ 0,
    }
}

message! {
    /// Replaces price and/or quantity of a live order; the order takes `new_token`.
    /// Reducing the quantity at the same price keeps time priority; anything else loses it.
    ReplaceOrder, type = b'U', body = 32, {
        /// Token of the live order.
        orig_token: u64 @ 0,
        /// Token the order carries after the replace.
        new_token: u64 @ 8,
        /// New limit price in price units.
        price: i64 @ 16,
        /// New total quantity (what has already filled counts toward it).
        qty: u64 @ 24,
    }
}

message! {
    /// Cancels every live order of this session, in one instrument or (all-space symbol) in all.
    MassCancel, type = b'M', body = 16, {
        /// Client's identifier for the request, echoed in the acknowledgement.
        token: u64 @ 0,
        /// Instrument, or eight spaces for every instrument.
        symbol: sym @ 8,
    }
}

/// Any message a client may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// [`Login`]
    Login(Login),
    /// [`LogoutRequest`]
    Logout(LogoutRequest),
    /// [`Heartbeat`]
    Heartbeat(Heartbeat),
    /// [`EnterOrder`]
    EnterOrder(EnterOrder),
    /// [`CancelOrder`]
    CancelOrder(CancelOrder),
    /// [`ReplaceOrder`]
    ReplaceOrder(ReplaceOrder),
    /// [`MassCancel`]
    MassCancel(MassCancel),
}

impl ClientMessage {
    /// Decodes one complete frame (as delimited by [`frame_len`]).
    #[inline]
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        Ok(match frame[2] {
            EnterOrder::TYPE => Self::EnterOrder(decode_as(frame)?),
            CancelOrder::TYPE => Self::CancelOrder(decode_as(frame)?),
            ReplaceOrder::TYPE => Self::ReplaceOrder(decode_as(frame)?),
            MassCancel::TYPE => Self::MassCancel(decode_as(frame)?),
            Heartbeat::TYPE => Self::Heartbeat(decode_as(frame)?),
            Login::TYPE => Self::Login(decode_as(frame)?),
            LogoutRequest::TYPE => Self::Logout(decode_as(frame)?),
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// Whether the message is sequenced (carries the client's sequence number).
    pub fn is_sequenced(&self) -> bool {
        matches!(
            self,
            Self::EnterOrder(_)
                | Self::CancelOrder(_)
                | Self::ReplaceOrder(_)
                | Self::MassCancel(_)
        )
    }

    /// Encodes the message as a frame with sequence number `seq`.
    pub fn encode(&self, seq: u32, buf: &mut [u8]) -> Option<usize> {
        match self {
            Self::Login(m) => encode(m, seq, buf),
            Self::Logout(m) => encode(m, seq, buf),
            Self::Heartbeat(m) => encode(m, seq, buf),
            Self::EnterOrder(m) => encode(m, seq, buf),
            Self::CancelOrder(m) => encode(m, seq, buf),
            Self::ReplaceOrder(m) => encode(m, seq, buf),
            Self::MassCancel(m) => encode(m, seq, buf),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Appliance -> client
// ---------------------------------------------------------------------------------------------

message! {
    /// The login succeeded. Replayed sequenced messages (if the client asked for them) follow.
    LoginAccepted, type = b'A', body = 16, {
        /// Sequence number the appliance expects on the client's next sequenced message.
        next_client_seq: u32 @ 0,
        /// Sequence number of the next new (not replayed) sequenced message from the appliance.
        next_server_seq: u32 @ 4,
        /// Heartbeat interval in effect, milliseconds.
        heartbeat_ms: u32 @ 8,
    }
}

message! {
    /// The login failed; the appliance closes the connection after sending it.
    LoginRejected, type = b'J', body = 8, {
        /// A [`LoginRejectReason`] code.
        reason: u8 @ 0,
    }
}

message! {
    /// The session ends; the appliance closes the connection after sending it.
    Logout, type = b'Z', body = 8, {
        /// A [`LogoutReason`] code.
        reason: u8 @ 0,
        /// For a sequence gap: the sequence number the appliance expected.
        expected_seq: u32 @ 4,
    }
}

message! {
    /// The order was accepted by the matching engine (it may trade in the same instant: the
    /// executions follow this message).
    OrderAccepted, type = b'a', body = 56, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Client token.
        token: u64 @ 8,
        /// Appliance order id (stable for the order's life, across replaces).
        order_id: u64 @ 16,
        /// Price in price units (0 for market orders).
        price: i64 @ 24,
        /// Order quantity.
        qty: u64 @ 32,
        /// Instrument symbol.
        symbol: sym @ 40,
        /// `B` or `S`.
        side: u8 @ 48,
        /// `L` or `M`.
        ord_type: u8 @ 49,
        /// Time in force, as entered.
        tif: u8 @ 50,
        /// Flags, as entered.
        flags: u8 @ 51,
    }
}

message! {
    /// The order was refused; nothing rests.
    OrderRejected, type = b'j', body = 24, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Client token.
        token: u64 @ 8,
        /// Reject reason code (`docs/binary-protocol.md`: engine codes below 100, gateway codes from 100).
        reason: u16 @ 16,
    }
}

message! {
    /// Part or all of the order traded.
    OrderExecuted, type = b'e', body = 64, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Client token (the order's current token).
        token: u64 @ 8,
        /// Execution id, unique per instrument engine, shared by both sides of the trade.
        exec_id: u64 @ 16,
        /// Trade price (the resting order's price).
        price: i64 @ 24,
        /// Quantity traded in this execution.
        qty: u64 @ 32,
        /// Quantity still open after this execution.
        leaves: u64 @ 40,
        /// Total quantity filled so far.
        cum_qty: u64 @ 48,
        /// `A` the order was resting (added liquidity), `R` it was aggressing (removed).
        liquidity: u8 @ 56,
    }
}

message! {
    /// The order (or its remainder) left the book.
    OrderCancelled, type = b'c', body = 32, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Client token.
        token: u64 @ 8,
        /// Quantity that was still open and is now cancelled.
        cancelled_qty: u64 @ 16,
        /// Cancel reason code (`docs/binary-protocol.md`).
        reason: u8 @ 24,
    }
}

message! {
    /// The order now has a new token, price and quantity.
    OrderReplaced, type = b'r', body = 56, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Token before the replace.
        orig_token: u64 @ 8,
        /// Token after the replace.
        new_token: u64 @ 16,
        /// Price in effect.
        price: i64 @ 24,
        /// Total order quantity in effect.
        qty: u64 @ 32,
        /// Open quantity in effect.
        leaves: u64 @ 40,
        /// 1 when the order kept its time priority, 0 when it went to the back of its level.
        priority_kept: u8 @ 48,
    }
}

message! {
    /// A cancel or replace was refused; the order is unchanged.
    CancelRejected, type = b'x', body = 24, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Token the request named.
        token: u64 @ 8,
        /// Reason code (`docs/binary-protocol.md`).
        reason: u16 @ 16,
    }
}

message! {
    /// A mass cancel completed (the individual `OrderCancelled` messages precede it).
    MassCancelAck, type = b'm', body = 24, {
        /// Appliance time, nanoseconds since the Unix epoch (UTC).
        timestamp_ns: u64 @ 0,
        /// Token of the request.
        token: u64 @ 8,
        /// Number of orders cancelled.
        count: u64 @ 16,
    }
}

/// Any message the appliance may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// [`LoginAccepted`]
    LoginAccepted(LoginAccepted),
    /// [`LoginRejected`]
    LoginRejected(LoginRejected),
    /// [`Logout`]
    Logout(Logout),
    /// [`Heartbeat`]
    Heartbeat(Heartbeat),
    /// [`OrderAccepted`]
    Accepted(OrderAccepted),
    /// [`OrderRejected`]
    Rejected(OrderRejected),
    /// [`OrderExecuted`]
    Executed(OrderExecuted),
    /// [`OrderCancelled`]
    Cancelled(OrderCancelled),
    /// [`OrderReplaced`]
    Replaced(OrderReplaced),
    /// [`CancelRejected`]
    CancelRejected(CancelRejected),
    /// [`MassCancelAck`]
    MassCancelAck(MassCancelAck),
}

impl ServerMessage {
    /// Decodes one complete frame (as delimited by [`frame_len`]).
    #[inline]
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        Ok(match frame[2] {
            OrderAccepted::TYPE => Self::Accepted(decode_as(frame)?),
            OrderExecuted::TYPE => Self::Executed(decode_as(frame)?),
            OrderCancelled::TYPE => Self::Cancelled(decode_as(frame)?),
            OrderReplaced::TYPE => Self::Replaced(decode_as(frame)?),
            OrderRejected::TYPE => Self::Rejected(decode_as(frame)?),
            CancelRejected::TYPE => Self::CancelRejected(decode_as(frame)?),
            MassCancelAck::TYPE => Self::MassCancelAck(decode_as(frame)?),
            Heartbeat::TYPE => Self::Heartbeat(decode_as(frame)?),
            LoginAccepted::TYPE => Self::LoginAccepted(decode_as(frame)?),
            LoginRejected::TYPE => Self::LoginRejected(decode_as(frame)?),
            Logout::TYPE => Self::Logout(decode_as(frame)?),
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// Whether the message is sequenced (stored for replay, carries a sequence number).
    pub fn is_sequenced(&self) -> bool {
        matches!(
            self,
            Self::Accepted(_)
                | Self::Rejected(_)
                | Self::Executed(_)
                | Self::Cancelled(_)
                | Self::Replaced(_)
                | Self::CancelRejected(_)
                | Self::MassCancelAck(_)
        )
    }

    /// Encodes the message as a frame with sequence number `seq`.
    pub fn encode(&self, seq: u32, buf: &mut [u8]) -> Option<usize> {
        match self {
            Self::LoginAccepted(m) => encode(m, seq, buf),
            Self::LoginRejected(m) => encode(m, seq, buf),
            Self::Logout(m) => encode(m, seq, buf),
            Self::Heartbeat(m) => encode(m, seq, buf),
            Self::Accepted(m) => encode(m, seq, buf),
            Self::Rejected(m) => encode(m, seq, buf),
            Self::Executed(m) => encode(m, seq, buf),
            Self::Cancelled(m) => encode(m, seq, buf),
            Self::Replaced(m) => encode(m, seq, buf),
            Self::CancelRejected(m) => encode(m, seq, buf),
            Self::MassCancelAck(m) => encode(m, seq, buf),
        }
    }
}

/// Why a login was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LoginRejectReason {
    /// Unknown username or wrong password.
    NotAuthorized = 1,
    /// The user is already logged in on another connection.
    AlreadyLoggedIn = 2,
    /// The first message was not a Login.
    LoginRequired = 3,
    /// `next_server_seq` is beyond what the appliance has sent.
    InvalidSequence = 4,
}

/// Why the appliance ended a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LogoutReason {
    /// The client asked to log out.
    Requested = 1,
    /// The appliance is shutting down.
    Shutdown = 2,
    /// A sequenced message skipped sequence numbers (`expected_seq` says which was due).
    SequenceGap = 3,
    /// The client sent nothing for three heartbeat intervals.
    HeartbeatTimeout = 4,
    /// The client sent a message that is not valid in this direction or state.
    ProtocolError = 5,
    /// The client did not read its replies fast enough and its output backlog overflowed.
    SlowConsumer = 6,
    /// The venue's operator disconnected the session (`appliance admin disconnect`).
    Operator = 7,
    /// The session went past its throttle under the `disconnect` policy.
    Throttled = 8,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_client(m: ClientMessage) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = m.encode(7, &mut buf).unwrap();
        assert_eq!(frame_len(&buf[..n]), Ok(Some(n)));
        let h = read_header(&buf[..n]);
        assert_eq!(h.seq, 7);
        assert_eq!(h.length as usize, n);
        assert_eq!(ClientMessage::decode(&buf[..n]), Ok(m));
        // Every strict prefix is incomplete, never an error or a different message.
        for k in 0..n {
            assert_eq!(frame_len(&buf[..k]), Ok(None), "prefix {k} of {n}");
        }
    }

    #[test]
    fn client_messages_roundtrip() {
        roundtrip_client(ClientMessage::Login(Login {
            username: credential("CLIENT1").unwrap(),
            password: credential("secret").unwrap(),
            next_server_seq: 12,
            heartbeat_ms: 1000,
        }));
        roundtrip_client(ClientMessage::EnterOrder(EnterOrder {
            token: u64::MAX - 3,
            symbol: symbol("ACME").unwrap(),
            price: -12_345,
            qty: 100,
            side: b'B',
            ord_type: b'L',
            tif: b'3',
            flags: 1,
            stp: 2,
        }));
        roundtrip_client(ClientMessage::CancelOrder(CancelOrder { token: 9 }));
        roundtrip_client(ClientMessage::ReplaceOrder(ReplaceOrder {
            orig_token: 1,
            new_token: 2,
            price: 3,
            qty: 4,
        }));
        roundtrip_client(ClientMessage::MassCancel(MassCancel {
            token: 5,
            symbol: [b' '; 8],
        }));
        roundtrip_client(ClientMessage::Heartbeat(Heartbeat {}));
        roundtrip_client(ClientMessage::Logout(LogoutRequest {}));
    }

    #[test]
    fn server_messages_roundtrip() {
        let msgs = [
            ServerMessage::LoginAccepted(LoginAccepted {
                next_client_seq: 4,
                next_server_seq: 9,
                heartbeat_ms: 1000,
            }),
            ServerMessage::LoginRejected(LoginRejected { reason: 1 }),
            ServerMessage::Logout(Logout {
                reason: 3,
                expected_seq: 17,
            }),
            ServerMessage::Accepted(OrderAccepted {
                timestamp_ns: 1,
                token: 2,
                order_id: 3,
                price: 4,
                qty: 5,
                symbol: symbol("BOLT").unwrap(),
                side: b'S',
                ord_type: b'L',
                tif: b'1',
                flags: 0,
            }),
            ServerMessage::Rejected(OrderRejected {
                timestamp_ns: 1,
                token: 2,
                reason: 103,
            }),
            ServerMessage::Executed(OrderExecuted {
                timestamp_ns: 1,
                token: 2,
                exec_id: 3,
                price: 4,
                qty: 5,
                leaves: 6,
                cum_qty: 7,
                liquidity: b'A',
            }),
            ServerMessage::Cancelled(OrderCancelled {
                timestamp_ns: 1,
                token: 2,
                cancelled_qty: 3,
                reason: 4,
            }),
            ServerMessage::Replaced(OrderReplaced {
                timestamp_ns: 1,
                orig_token: 2,
                new_token: 3,
                price: 4,
                qty: 5,
                leaves: 6,
                priority_kept: 1,
            }),
            ServerMessage::CancelRejected(CancelRejected {
                timestamp_ns: 1,
                token: 2,
                reason: 3,
            }),
            ServerMessage::MassCancelAck(MassCancelAck {
                timestamp_ns: 1,
                token: 2,
                count: 3,
            }),
            ServerMessage::Heartbeat(Heartbeat {}),
        ];
        for m in msgs {
            let mut buf = [0u8; MAX_FRAME_LEN];
            let n = m.encode(42, &mut buf).unwrap();
            assert_eq!(frame_len(&buf[..n]), Ok(Some(n)));
            assert_eq!(ServerMessage::decode(&buf[..n]), Ok(m));
        }
    }

    /// The layout table in docs/binary-protocol.md, checked: frame sizes are what the spec says
    /// and every body is a multiple of 8 bytes so fields stay naturally aligned in a buffer
    /// that starts aligned.
    #[test]
    fn frame_sizes_match_the_spec() {
        let sizes: [(u8, usize); 18] = [
            (Login::TYPE, Login::FRAME_LEN),
            (LogoutRequest::TYPE, LogoutRequest::FRAME_LEN),
            (Heartbeat::TYPE, Heartbeat::FRAME_LEN),
            (EnterOrder::TYPE, EnterOrder::FRAME_LEN),
            (CancelOrder::TYPE, CancelOrder::FRAME_LEN),
            (ReplaceOrder::TYPE, ReplaceOrder::FRAME_LEN),
            (MassCancel::TYPE, MassCancel::FRAME_LEN),
            (LoginAccepted::TYPE, LoginAccepted::FRAME_LEN),
            (LoginRejected::TYPE, LoginRejected::FRAME_LEN),
            (Logout::TYPE, Logout::FRAME_LEN),
            (OrderAccepted::TYPE, OrderAccepted::FRAME_LEN),
            (OrderRejected::TYPE, OrderRejected::FRAME_LEN),
            (OrderExecuted::TYPE, OrderExecuted::FRAME_LEN),
            (OrderCancelled::TYPE, OrderCancelled::FRAME_LEN),
            (OrderReplaced::TYPE, OrderReplaced::FRAME_LEN),
            (CancelRejected::TYPE, CancelRejected::FRAME_LEN),
            (MassCancelAck::TYPE, MassCancelAck::FRAME_LEN),
            (b'-', HEADER_LEN),
        ];
        let expected: [(u8, usize); 18] = [
            (b'L', 48),
            (b'O', 8),
            (b'H', 8),
            (b'E', 48),
            (b'X', 16),
            (b'U', 40),
            (b'M', 24),
            (b'A', 24),
            (b'J', 16),
            (b'Z', 16),
            (b'a', 64),
            (b'j', 32),
            (b'e', 72),
            (b'c', 40),
            (b'r', 64),
            (b'x', 32),
            (b'm', 32),
            (b'-', 8),
        ];
        assert_eq!(sizes, expected);
        for (_, len) in sizes {
            assert_eq!(len % 8, 0);
            assert!(len <= MAX_FRAME_LEN);
        }
    }

    /// One golden frame, byte for byte, so the spec's worked example cannot drift from the code.
    #[test]
    fn enter_order_golden_bytes() {
        let m = EnterOrder {
            token: 1,
            symbol: symbol("ACME").unwrap(),
            price: 1_000_000,
            qty: 100,
            side: b'B',
            ord_type: b'L',
            tif: b'0',
            flags: 0,
            stp: 0,
        };
        let mut buf = [0u8; 64];
        let n = encode(&m, 1, &mut buf).unwrap();
        let expected: [u8; 48] = [
            48, 0, b'E', 1, 1, 0, 0, 0, // header: length 48, 'E', version 1, seq 1
            1, 0, 0, 0, 0, 0, 0, 0, // token 1
            b'A', b'C', b'M', b'E', b' ', b' ', b' ', b' ', // symbol
            0x40, 0x42, 0x0f, 0, 0, 0, 0, 0, // price 1_000_000
            100, 0, 0, 0, 0, 0, 0, 0, // qty 100
            b'B', b'L', b'0', 0, 0, 0, 0, 0, // side, type, tif, flags, stp, reserved
        ];
        assert_eq!(&buf[..n], &expected[..]);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(frame_len(&[4, 0, b'H', 1]), Err(FrameError::BadLength(4)));
        // 256 is the largest legal frame: waiting for more bytes; 257 is corrupt.
        assert_eq!(frame_len(&[0, 1, b'H', 1]), Ok(None));
        assert_eq!(frame_len(&[1, 1, b'H', 1]), Err(FrameError::BadLength(257)));
        assert_eq!(
            frame_len(&[0xff, 0xff, b'H', 1]),
            Err(FrameError::BadLength(0xffff))
        );
        assert_eq!(frame_len(&[8, 0, b'H', 2]), Err(FrameError::BadVersion(2)));
        let mut buf = [0u8; 16];
        let n = encode(&CancelOrder { token: 1 }, 1, &mut buf).unwrap();
        buf[2] = b'?';
        assert_eq!(
            ClientMessage::decode(&buf[..n]),
            Err(DecodeError::UnknownType(b'?'))
        );
        // A heartbeat frame claiming 16 bytes is a well-framed but malformed message.
        let mut hb = [0u8; 16];
        hb[0] = 16;
        hb[2] = b'H';
        hb[3] = VERSION;
        assert_eq!(
            ClientMessage::decode(&hb),
            Err(DecodeError::WrongLength {
                msg_type: b'H',
                length: 16
            })
        );
        assert!(encode(&EnterOrder::default(), 1, &mut [0u8; 47]).is_none());
    }
}

//! The order-by-order feed's messages and MoldUDP64 packets: byte layouts, encoders and
//! decoders. Sans-IO. Big-endian throughout, as Nasdaq TotalView-ITCH and MoldUDP64 are;
//! `docs/market-data.md` is the specification, this module its implementation.
//!
//! Every message starts with its type (one ASCII byte) and a timestamp (`u64`, Unix
//! nanoseconds, the publisher's wall clock when it translated the event). Prices are the
//! instrument's integer price units (`price_decimals` implied decimals, from the instrument
//! directory), quantities integers. An order is named by its order reference: the engine's
//! order id, unique for the life of the appliance's journal.

/// Longest message.
pub const MAX_MESSAGE: usize = 41;

/// Message types.
pub mod msg_type {
    /// System event.
    pub const SYSTEM: u8 = b'S';
    /// Instrument directory.
    pub const DIRECTORY: u8 = b'R';
    /// Add order.
    pub const ADD: u8 = b'A';
    /// Order executed.
    pub const EXECUTED: u8 = b'E';
    /// Order cancel (part of the quantity).
    pub const CANCEL: u8 = b'X';
    /// Order delete.
    pub const DELETE: u8 = b'D';
    /// Order replace (new price and/or quantity; the order loses its place).
    pub const REPLACE: u8 = b'U';
    /// Instrument state (halted by the operator, trading again).
    pub const STATE: u8 = b'H';
}

/// Instrument states.
pub mod instrument_state {
    /// Halted by the venue's operator: new orders and replaces refused, cancels accepted.
    pub const HALTED: u8 = b'H';
    /// Trading.
    pub const TRADING: u8 = b'T';
}

/// System event codes.
pub mod system_event {
    /// Start of messages: first message of a session.
    pub const START: u8 = b'O';
    /// End of messages: last message of a session (the appliance stops).
    pub const END: u8 = b'C';
}

/// Side of an order on the wire.
#[inline]
pub fn side_byte(side: crate::engine::Side) -> u8 {
    match side {
        crate::engine::Side::Buy => b'B',
        crate::engine::Side::Sell => b'S',
    }
}

/// One feed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `S`: system event (`system_event::START` / `END`).
    System {
        /// Timestamp.
        ts: u64,
        /// Event code.
        code: u8,
    },
    /// `R`: an instrument the feed carries (sent after the start of messages).
    Directory {
        /// Timestamp.
        ts: u64,
        /// Instrument id (what every order message names).
        instrument: u32,
        /// Symbol, space-padded.
        symbol: [u8; 8],
        /// Implied decimals of a price.
        price_decimals: u8,
        /// Tick size in price units.
        tick: u64,
    },
    /// `H`: an instrument's trading state changed (or, at the start of a session and in a
    /// snapshot, is not trading).
    State {
        /// Timestamp.
        ts: u64,
        /// Instrument id.
        instrument: u32,
        /// `instrument_state::HALTED` or `TRADING`.
        state: u8,
    },
    /// `A`: an order rests in the book, at the back of its price level's queue.
    Add {
        /// Timestamp.
        ts: u64,
        /// Order reference.
        order: u64,
        /// Instrument id.
        instrument: u32,
        /// `B` or `S`.
        side: u8,
        /// Quantity resting.
        qty: u64,
        /// Price.
        price: i64,
    },
    /// `E`: a resting order traded (`qty` of it, at its price).
    Executed {
        /// Timestamp.
        ts: u64,
        /// Order reference.
        order: u64,
        /// Quantity executed (the order leaves the book when nothing is left).
        qty: u64,
        /// Match number: the trade's execution id (the same in the parties' ExecutionReports).
        match_id: u64,
        /// Trade price (the resting order's price).
        price: i64,
    },
    /// `X`: part of a resting order was cancelled; it keeps its place.
    Cancel {
        /// Timestamp.
        ts: u64,
        /// Order reference.
        order: u64,
        /// Quantity taken off.
        qty: u64,
    },
    /// `D`: a resting order left the book (cancelled, expired).
    Delete {
        /// Timestamp.
        ts: u64,
        /// Order reference.
        order: u64,
    },
    /// `U`: a resting order was replaced: it leaves its place and rests again at the back
    /// of the queue at `price` with `qty` (same order reference).
    Replace {
        /// Timestamp.
        ts: u64,
        /// Order reference.
        order: u64,
        /// Quantity resting now.
        qty: u64,
        /// Price now.
        price: i64,
    },
}

/// Why bytes do not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than its type's layout.
    #[error("message of type {0:?} is {1} bytes, its layout needs {2}")]
    Length(char, usize, usize),
    /// An unknown type.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// A packet shorter than its header or its blocks.
    #[error("packet truncated: {0}")]
    Truncated(&'static str),
}

struct Put<'a> {
    b: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    #[inline]
    fn u8(&mut self, v: u8) -> &mut Self {
        self.b[self.at] = v;
        self.at += 1;
        self
    }
    #[inline]
    fn u32(&mut self, v: u32) -> &mut Self {
        self.b[self.at..self.at + 4].copy_from_slice(&v.to_be_bytes());
        self.at += 4;
        self
    }
    #[inline]
    fn u64(&mut self, v: u64) -> &mut Self {
        self.b[self.at..self.at + 8].copy_from_slice(&v.to_be_bytes());
        self.at += 8;
        self
    }
    #[inline]
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.b[self.at..self.at + v.len()].copy_from_slice(v);
        self.at += v.len();
        self
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

impl Message {
    /// Encoded length.
    pub const fn len_of(t: u8) -> usize {
        match t {
            msg_type::SYSTEM => 10,
            msg_type::DIRECTORY => 30,
            msg_type::ADD => 38,
            msg_type::EXECUTED => 41,
            msg_type::CANCEL => 25,
            msg_type::DELETE => 17,
            msg_type::REPLACE => 33,
            msg_type::STATE => 14,
            _ => 0,
        }
    }

    /// The type byte.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::System { .. } => msg_type::SYSTEM,
            Message::Directory { .. } => msg_type::DIRECTORY,
            Message::Add { .. } => msg_type::ADD,
            Message::Executed { .. } => msg_type::EXECUTED,
            Message::Cancel { .. } => msg_type::CANCEL,
            Message::Delete { .. } => msg_type::DELETE,
            Message::Replace { .. } => msg_type::REPLACE,
            Message::State { .. } => msg_type::STATE,
        }
    }

    /// Encodes into `out` (at least [`MAX_MESSAGE`] bytes); returns the length.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let mut p = Put { b: out, at: 0 };
        match *self {
            Message::System { ts, code } => {
                p.u8(msg_type::SYSTEM).u64(ts).u8(code);
            }
            Message::Directory {
                ts,
                instrument,
                symbol,
                price_decimals,
                tick,
            } => {
                p.u8(msg_type::DIRECTORY)
                    .u64(ts)
                    .u32(instrument)
                    .bytes(&symbol)
                    .u8(price_decimals)
                    .u64(tick);
            }
            Message::Add {
                ts,
                order,
                instrument,
                side,
                qty,
                price,
            } => {
                p.u8(msg_type::ADD)
                    .u64(ts)
                    .u64(order)
                    .u32(instrument)
                    .u8(side)
                    .u64(qty)
                    .u64(price as u64);
            }
            Message::Executed {
                ts,
                order,
                qty,
                match_id,
                price,
            } => {
                p.u8(msg_type::EXECUTED)
                    .u64(ts)
                    .u64(order)
                    .u64(qty)
                    .u64(match_id)
                    .u64(price as u64);
            }
            Message::Cancel { ts, order, qty } => {
                p.u8(msg_type::CANCEL).u64(ts).u64(order).u64(qty);
            }
            Message::State {
                ts,
                instrument,
                state,
            } => {
                p.u8(msg_type::STATE).u64(ts).u32(instrument).u8(state);
            }
            Message::Delete { ts, order } => {
                p.u8(msg_type::DELETE).u64(ts).u64(order);
            }
            Message::Replace {
                ts,
                order,
                qty,
                price,
            } => {
                p.u8(msg_type::REPLACE)
                    .u64(ts)
                    .u64(order)
                    .u64(qty)
                    .u64(price as u64);
            }
        }
        debug_assert_eq!(p.at, Self::len_of(self.msg_type()));
        p.at
    }

    /// Decodes one message (exactly its layout's length).
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let t = *b.first().ok_or(WireError::Truncated("empty message"))?;
        let want = Self::len_of(t);
        if want == 0 {
            return Err(WireError::UnknownType(t));
        }
        if b.len() != want {
            return Err(WireError::Length(t as char, b.len(), want));
        }
        let ts = be_u64(b, 1);
        Ok(match t {
            msg_type::SYSTEM => Message::System { ts, code: b[9] },
            msg_type::DIRECTORY => {
                let mut symbol = [0u8; 8];
                symbol.copy_from_slice(&b[13..21]);
                Message::Directory {
                    ts,
                    instrument: be_u32(b, 9),
                    symbol,
                    price_decimals: b[21],
                    tick: be_u64(b, 22),
                }
            }
            msg_type::ADD => Message::Add {
                ts,
                order: be_u64(b, 9),
                instrument: be_u32(b, 17),
                side: b[21],
                qty: be_u64(b, 22),
                price: be_u64(b, 30) as i64,
            },
            msg_type::EXECUTED => Message::Executed {
                ts,
                order: be_u64(b, 9),
                qty: be_u64(b, 17),
                match_id: be_u64(b, 25),
                price: be_u64(b, 33) as i64,
            },
            msg_type::CANCEL => Message::Cancel {
                ts,
                order: be_u64(b, 9),
                qty: be_u64(b, 17),
            },
            msg_type::DELETE => Message::Delete {
                ts,
                order: be_u64(b, 9),
            },
            msg_type::STATE => Message::State {
                ts,
                instrument: be_u32(b, 9),
                state: b[13],
            },
            _ => Message::Replace {
                ts,
                order: be_u64(b, 9),
                qty: be_u64(b, 17),
                price: be_u64(b, 25) as i64,
            },
        })
    }
}

/// MoldUDP64 downstream packet header: session (10 ASCII bytes), sequence number of the
/// first message (`u64`), message count (`u16`; 0 = heartbeat, `0xFFFF` = end of session).
pub const HEADER: usize = 20;

/// Message count of an end-of-session packet.
pub const END_OF_SESSION: u16 = 0xFFFF;

/// A decoded packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    /// Session.
    pub session: [u8; 10],
    /// Sequence number of the first message (of the next one, for a heartbeat).
    pub seq: u64,
    /// Messages in the packet.
    pub count: u16,
}

/// Writes a header into `out[..HEADER]`.
pub fn encode_header(out: &mut [u8], h: &PacketHeader) {
    out[..10].copy_from_slice(&h.session);
    out[10..18].copy_from_slice(&h.seq.to_be_bytes());
    out[18..20].copy_from_slice(&h.count.to_be_bytes());
}

/// Splits a packet into its header and its message blocks.
pub fn decode_packet(b: &[u8]) -> Result<(PacketHeader, Vec<&[u8]>), WireError> {
    if b.len() < HEADER {
        return Err(WireError::Truncated("shorter than the header"));
    }
    let mut session = [0u8; 10];
    session.copy_from_slice(&b[..10]);
    let h = PacketHeader {
        session,
        seq: be_u64(b, 10),
        count: u16::from_be_bytes([b[18], b[19]]),
    };
    let mut blocks = Vec::new();
    let mut at = HEADER;
    let n = if h.count == END_OF_SESSION {
        0
    } else {
        h.count
    };
    for _ in 0..n {
        if at + 2 > b.len() {
            return Err(WireError::Truncated("message length"));
        }
        let len = u16::from_be_bytes([b[at], b[at + 1]]) as usize;
        at += 2;
        if at + len > b.len() {
            return Err(WireError::Truncated("message block"));
        }
        blocks.push(&b[at..at + len]);
        at += len;
    }
    Ok((h, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_at_its_documented_length() {
        let all = [
            Message::System {
                ts: 1,
                code: system_event::START,
            },
            Message::Directory {
                ts: 2,
                instrument: 7,
                symbol: *b"ACME    ",
                price_decimals: 4,
                tick: 100,
            },
            Message::Add {
                ts: 3,
                order: 0x0100_0000_0000_0002,
                instrument: 7,
                side: b'B',
                qty: 25,
                price: 1_000_100,
            },
            Message::Executed {
                ts: 4,
                order: 9,
                qty: 5,
                match_id: 77,
                price: -3,
            },
            Message::Cancel {
                ts: 5,
                order: 9,
                qty: 2,
            },
            Message::Delete { ts: 6, order: 9 },
            Message::State {
                ts: 8,
                instrument: 2,
                state: instrument_state::HALTED,
            },
            Message::Replace {
                ts: 7,
                order: 9,
                qty: 11,
                price: 990_000,
            },
        ];
        for m in all {
            let mut b = [0u8; MAX_MESSAGE];
            let n = m.encode(&mut b);
            assert_eq!(n, Message::len_of(m.msg_type()));
            assert_eq!(Message::decode(&b[..n]).unwrap(), m);
            assert!(Message::decode(&b[..n - 1]).is_err());
        }
        assert_eq!(Message::decode(b"Z"), Err(WireError::UnknownType(b'Z')));
    }

    #[test]
    fn packets_split_into_their_blocks() {
        let mut p = vec![0u8; HEADER];
        encode_header(
            &mut p,
            &PacketHeader {
                session: *b"2612061412",
                seq: 42,
                count: 2,
            },
        );
        for m in [
            Message::Delete { ts: 1, order: 5 },
            Message::Cancel {
                ts: 1,
                order: 5,
                qty: 1,
            },
        ] {
            let mut b = [0u8; MAX_MESSAGE];
            let n = m.encode(&mut b);
            p.extend_from_slice(&(n as u16).to_be_bytes());
            p.extend_from_slice(&b[..n]);
        }
        let (h, blocks) = decode_packet(&p).unwrap();
        assert_eq!((h.seq, h.count, blocks.len()), (42, 2, 2));
        assert_eq!(
            Message::decode(blocks[0]).unwrap(),
            Message::Delete { ts: 1, order: 5 }
        );
        assert!(decode_packet(&p[..p.len() - 1]).is_err());
    }
}

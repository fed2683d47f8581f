//! What the journal's records mean: their kinds and byte layouts (little-endian), encoded on
//! the hot threads into their record rings and decoded by recovery, the snapshotter and
//! `appliance journal`. The storage layer (`crate::journal`) frames and checksums them.
//!
//! | kind | name | written by | carries |
//! | --- | --- | --- | --- |
//! | 1 | `COMMAND` | an engine, before it processes the command | engine, engine sequence number, the 48-byte command, where it came from (gateway, session, inbound sequence number, client order id) |
//! | 2 | `OUT` | a gateway, when a sequenced message is sent (or stored for a disconnected session) | gateway, protocol, session, sequence number, the engine event it answers (engine, engine sequence number, ordinal), the exec-id counter, the message bytes |
//! | 3 | `SEQ` | a gateway, at the flush after a session's sequence numbers moved without an `OUT` (admin messages, inbound messages, resets) | gateway, protocol, session, next outbound and next inbound sequence numbers, reset flag |
//! | 4 | `START` | the journal agent, first record of every run | format version, configuration fingerprint, wall clock |
//! | 5 | `STOP` | the journal agent, last record of a clean shutdown | state hash of the stopped appliance |
//! | 6 | `CONTROL` | a gateway, when it carries out an operator's command | gateway, action (kill switch, halt, disconnect, operator cancel, reload), engage or lift, session or instrument, wall clock, the operator's uid |
//!
//! Why these and no more: the engines are a pure function of their sequenced input, so
//! `COMMAND` records rebuild every book exactly; the same records, with the client order ids
//! they carry, rebuild the gateways' order tables, because a gateway applies an engine's
//! events in the order the engine produced them. What a replay cannot produce are the bytes
//! sent to clients (they carry wall-clock times) and sequence numbers spent on messages that
//! are not replies to events (heartbeats, session rejects): `OUT` and `SEQ` carry those; and
//! the operator's decisions (a kill switch, a halt), which are gateway state no command
//! carries: `CONTROL` records them, so a restart keeps them and the journal says who did what
//! when.

use crate::engine::{Command, COMMAND_BYTES};

/// Record kinds.
pub mod kind {
    /// A command as an engine sequenced it.
    pub const COMMAND: u16 = 1;
    /// A sequenced outbound message.
    pub const OUT: u16 = 2;
    /// A session's sequence numbers.
    pub const SEQ: u16 = 3;
    /// The start of a run.
    pub const START: u16 = 4;
    /// A clean shutdown.
    pub const STOP: u16 = 5;
    /// An operator's command carried out by a gateway.
    pub const CONTROL: u16 = 6;
}

pub use crate::rings::msg::{Origin, MAX_ID, NO_GATEWAY};

/// Why something could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than its layout.
    #[error("record of kind {kind} is {len} bytes, shorter than its layout")]
    Short {
        /// Kind.
        kind: u16,
        /// Bytes present.
        len: usize,
    },
    /// A field holds a value the layout does not allow.
    #[error("record of kind {kind}: {what}")]
    Invalid {
        /// Kind.
        kind: u16,
        /// What is wrong.
        what: String,
    },
    /// An unknown kind.
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// `COMMAND`: layout.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | engine |
/// | 1 | 1 | origin gateway (`0xFF`: none) |
/// | 2 | 2 | origin session |
/// | 4 | 4 | reserved |
/// | 8 | 8 | engine sequence number |
/// | 16 | 8 | inbound sequence number (0: none) |
/// | 24 | 48 | command (`Command::to_bytes`) |
/// | 72 | 1 | client order id length (at most 40) |
/// | 73 | n | client order id |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// Engine that sequenced it.
    pub engine: u8,
    /// The sequence number the engine gave it.
    pub engine_seq: u64,
    /// The command.
    pub command: Command,
    /// Where it came from.
    pub origin: Origin,
}

impl CommandRecord {
    /// Encoded length.
    pub fn len(&self) -> usize {
        73 + self.origin.id_len as usize
    }

    /// Whether the encoding is empty (never).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encodes into `out` (exactly `len()` bytes).
    #[inline]
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.engine;
        out[1] = self.origin.gateway;
        out[2..4].copy_from_slice(&self.origin.session.to_le_bytes());
        out[4..8].fill(0);
        out[8..16].copy_from_slice(&self.engine_seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.origin.in_seq.to_le_bytes());
        out[24..72].copy_from_slice(&self.command.to_bytes());
        out[72] = self.origin.id_len;
        out[73..73 + self.origin.id_len as usize].copy_from_slice(self.origin.id());
    }

    /// Decodes a payload.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let k = kind::COMMAND;
        if b.len() < 73 {
            return Err(RecordError::Short {
                kind: k,
                len: b.len(),
            });
        }
        let id_len = b[72] as usize;
        if id_len > MAX_ID || b.len() != 73 + id_len {
            return Err(RecordError::Invalid {
                kind: k,
                what: format!("client id length {id_len} in a {}-byte record", b.len()),
            });
        }
        let mut cmd = [0u8; COMMAND_BYTES];
        cmd.copy_from_slice(&b[24..72]);
        let command = Command::from_bytes(&cmd).map_err(|e| RecordError::Invalid {
            kind: k,
            what: format!("command: {e:?}"),
        })?;
        let mut origin = Origin {
            gateway: b[1],
            session: u16_at(b, 2),
            in_seq: u64_at(b, 16),
            ..Origin::default()
        };
        origin.set_id(&b[73..73 + id_len]);
        Ok(Self {
            engine: b[0],
            engine_seq: u64_at(b, 8),
            command,
            origin,
        })
    }
}

/// Longest `COMMAND` record payload.
pub const COMMAND_RECORD_MAX: usize = 73 + MAX_ID;

/// The engine event a message answers: engine, the sequence number of the command that
/// caused the event, and the message's ordinal among that command's replies in the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cause {
    /// Engine.
    pub engine: u8,
    /// Engine sequence number of the command.
    pub engine_seq: u64,
    /// Ordinal of the reply among that command's replies in this gateway.
    pub ordinal: u16,
}

/// `OUT`: layout.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | gateway |
/// | 1 | 1 | protocol (0 FIX, 1 binary) |
/// | 2 | 2 | session |
/// | 4 | 1 | flags: bit 0 = has a cause |
/// | 5 | 1 | cause: engine |
/// | 6 | 2 | cause: ordinal |
/// | 8 | 8 | sequence number (FIX MsgSeqNum, binary sequence number) |
/// | 16 | 8 | cause: engine sequence number |
/// | 24 | 8 | the gateway's exec-id counter after this message |
/// | 32 | n | the message as sent |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutHeader {
    /// Gateway.
    pub gateway: u8,
    /// Protocol index (`Protocol::index`).
    pub protocol: u8,
    /// Session.
    pub session: u16,
    /// Sequence number.
    pub seq: u64,
    /// The event answered, if it is a reply to one.
    pub cause: Option<Cause>,
    /// Exec-id counter.
    pub exec_counter: u64,
}

/// Bytes before an `OUT` record's message.
pub const OUT_HEADER: usize = 32;

impl OutHeader {
    /// Encodes the header into `out[..OUT_HEADER]`.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.gateway;
        out[1] = self.protocol;
        out[2..4].copy_from_slice(&self.session.to_le_bytes());
        let c = self.cause.unwrap_or(Cause {
            engine: 0,
            engine_seq: 0,
            ordinal: 0,
        });
        out[4] = self.cause.is_some() as u8;
        out[5] = c.engine;
        out[6..8].copy_from_slice(&c.ordinal.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&c.engine_seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.exec_counter.to_le_bytes());
    }

    /// Decodes a payload into the header and the message bytes.
    pub fn decode(b: &[u8]) -> Result<(Self, &[u8]), RecordError> {
        if b.len() < OUT_HEADER {
            return Err(RecordError::Short {
                kind: kind::OUT,
                len: b.len(),
            });
        }
        if b[4] > 1 || b[1] > 1 {
            return Err(RecordError::Invalid {
                kind: kind::OUT,
                what: format!("flags {} protocol {}", b[4], b[1]),
            });
        }
        let cause = (b[4] == 1).then(|| Cause {
            engine: b[5],
            engine_seq: u64_at(b, 16),
            ordinal: u16_at(b, 6),
        });
        Ok((
            Self {
                gateway: b[0],
                protocol: b[1],
                session: u16_at(b, 2),
                seq: u64_at(b, 8),
                cause,
                exec_counter: u64_at(b, 24),
            },
            &b[OUT_HEADER..],
        ))
    }
}

/// `SEQ`: layout.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | gateway |
/// | 1 | 1 | protocol |
/// | 2 | 2 | session |
/// | 4 | 4 | flags: bit 0 = the session's store was reset (sequence numbers back to 1) |
/// | 8 | 8 | next outbound sequence number |
/// | 16 | 8 | next inbound sequence number expected |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRecord {
    /// Gateway.
    pub gateway: u8,
    /// Protocol index.
    pub protocol: u8,
    /// Session.
    pub session: u16,
    /// Whether the store was reset since the last record.
    pub reset: bool,
    /// Next outbound sequence number.
    pub next_out: u64,
    /// Next inbound sequence number expected.
    pub next_in: u64,
}

/// Length of a `SEQ` record.
pub const SEQ_LEN: usize = 24;

impl SeqRecord {
    /// Encodes into `out[..SEQ_LEN]`.
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.gateway;
        out[1] = self.protocol;
        out[2..4].copy_from_slice(&self.session.to_le_bytes());
        out[4..8].copy_from_slice(&(self.reset as u32).to_le_bytes());
        out[8..16].copy_from_slice(&self.next_out.to_le_bytes());
        out[16..24].copy_from_slice(&self.next_in.to_le_bytes());
    }

    /// Decodes a payload.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        if b.len() != SEQ_LEN {
            return Err(RecordError::Short {
                kind: kind::SEQ,
                len: b.len(),
            });
        }
        Ok(Self {
            gateway: b[0],
            protocol: b[1],
            session: u16_at(b, 2),
            reset: b[4] & 1 == 1,
            next_out: u64_at(b, 8),
            next_in: u64_at(b, 16),
        })
    }
}

/// `START`: layout: `u32` format version, `u32` reserved, `u64` configuration fingerprint,
/// `i64` wall clock (Unix ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub version: u32,
    /// Fingerprint of the configuration the records depend on (see
    /// `recovery::fingerprint`).
    pub fingerprint: u64,
    /// Wall clock at start.
    pub wall_ns: i64,
}

/// Version of the record layouts above.
pub const RECORD_VERSION: u32 = 1;

impl StartRecord {
    /// Encodes into 24 bytes.
    pub fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[8..16].copy_from_slice(&self.fingerprint.to_le_bytes());
        b[16..24].copy_from_slice(&self.wall_ns.to_le_bytes());
        b
    }

    /// Decodes a payload.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        if b.len() != 24 {
            return Err(RecordError::Short {
                kind: kind::START,
                len: b.len(),
            });
        }
        Ok(Self {
            version: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            fingerprint: u64_at(b, 8),
            wall_ns: u64_at(b, 16) as i64,
        })
    }
}

/// What an operator's command did (`CONTROL`'s action byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlAction {
    /// A session's kill switch engaged or lifted (target: the session).
    KillSwitch = 1,
    /// An instrument halted or resumed (target: the instrument id).
    Halt = 2,
    /// A session logged out by the operator (target: the session; replay changes nothing).
    Disconnect = 3,
    /// The operator cancelled a session's working orders (target: the session; the cancel
    /// itself is the `COMMAND` that follows, so replay changes nothing here).
    Cancel = 4,
    /// The session's credentials, throttles and quotas were reloaded from the configuration
    /// file (target: the session; the file is read again at a restart, so replay changes
    /// nothing; no credential is journaled).
    Reload = 5,
}

impl ControlAction {
    /// Name in logs and `appliance journal`.
    pub fn label(self) -> &'static str {
        match self {
            ControlAction::KillSwitch => "kill_switch",
            ControlAction::Halt => "halt",
            ControlAction::Disconnect => "disconnect",
            ControlAction::Cancel => "cancel",
            ControlAction::Reload => "reload",
        }
    }
}

/// `CONTROL`: layout.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | gateway |
/// | 1 | 1 | action (`ControlAction`) |
/// | 2 | 1 | flags: bit 0 = engage (kill switch) / halt; lift / resume when clear |
/// | 3 | 1 | reserved |
/// | 4 | 4 | target: the session (local index) or the instrument id |
/// | 8 | 8 | wall clock, Unix ns |
/// | 16 | 4 | the operator's uid (`SO_PEERCRED` of the console's client) |
/// | 20 | 4 | reserved |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRecord {
    /// Gateway.
    pub gateway: u8,
    /// What was done.
    pub action: ControlAction,
    /// Engage / halt (true) or lift / resume (false).
    pub on: bool,
    /// Session or instrument.
    pub target: u32,
    /// When, Unix ns.
    pub wall_ns: i64,
    /// Who.
    pub uid: u32,
}

/// Length of a `CONTROL` record.
pub const CONTROL_LEN: usize = 24;

impl ControlRecord {
    /// Encodes into `out[..CONTROL_LEN]`.
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.gateway;
        out[1] = self.action as u8;
        out[2] = self.on as u8;
        out[3] = 0;
        out[4..8].copy_from_slice(&self.target.to_le_bytes());
        out[8..16].copy_from_slice(&self.wall_ns.to_le_bytes());
        out[16..20].copy_from_slice(&self.uid.to_le_bytes());
        out[20..24].fill(0);
    }

    /// Decodes a payload.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let k = kind::CONTROL;
        if b.len() != CONTROL_LEN {
            return Err(RecordError::Short {
                kind: k,
                len: b.len(),
            });
        }
        let action = match b[1] {
            1 => ControlAction::KillSwitch,
            2 => ControlAction::Halt,
            3 => ControlAction::Disconnect,
            4 => ControlAction::Cancel,
            5 => ControlAction::Reload,
            a => {
                return Err(RecordError::Invalid {
                    kind: k,
                    what: format!("action {a}"),
                })
            }
        };
        if b[2] > 1 {
            return Err(RecordError::Invalid {
                kind: k,
                what: format!("flags {}", b[2]),
            });
        }
        Ok(Self {
            gateway: b[0],
            action,
            on: b[2] == 1,
            target: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            wall_ns: u64_at(b, 8) as i64,
            uid: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
        })
    }
}

/// `STOP`: the state hash (`u64`) of the appliance as it stopped.
pub fn decode_stop(b: &[u8]) -> Result<u64, RecordError> {
    if b.len() != 8 {
        return Err(RecordError::Short {
            kind: kind::STOP,
            len: b.len(),
        });
    }
    Ok(u64_at(b, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Cancel, NewOrder, OrdType, Side, StpMode, TimeInForce};

    #[test]
    fn records_round_trip() {
        let mut origin = Origin {
            gateway: 1,
            session: 7,
            in_seq: 99,
            ..Origin::default()
        };
        origin.set_id(b"ORDER-123");
        for command in [
            Command::New(NewOrder {
                order_id: 42,
                instrument: 2,
                session: 0x2_0007,
                owner: 3,
                side: Side::Sell,
                ord_type: OrdType::Limit,
                tif: TimeInForce::Gtc,
                price: 1_000_100,
                qty: 25,
                post_only: true,
                stp: StpMode::CancelBoth,
            }),
            Command::Cancel(Cancel {
                order_id: 42,
                session: 0x2_0007,
            }),
        ] {
            let r = CommandRecord {
                engine: 3,
                engine_seq: 1_000_001,
                command,
                origin,
            };
            let mut b = vec![0u8; r.len()];
            r.encode(&mut b);
            assert_eq!(CommandRecord::decode(&b).unwrap(), r);
            assert!(CommandRecord::decode(&b[..b.len() - 1]).is_err());
        }
        let h = OutHeader {
            gateway: 1,
            protocol: 0,
            session: 3,
            seq: 77,
            cause: Some(Cause {
                engine: 1,
                engine_seq: 5,
                ordinal: 2,
            }),
            exec_counter: 9,
        };
        let mut b = vec![0u8; OUT_HEADER + 5];
        h.encode(&mut b);
        b[OUT_HEADER..].copy_from_slice(b"8=FIX");
        let (d, msg) = OutHeader::decode(&b).unwrap();
        assert_eq!((d, msg), (h, &b"8=FIX"[..]));
        let s = SeqRecord {
            gateway: 0,
            protocol: 1,
            session: 2,
            reset: true,
            next_out: 10,
            next_in: 20,
        };
        let mut b = [0u8; SEQ_LEN];
        s.encode(&mut b);
        assert_eq!(SeqRecord::decode(&b).unwrap(), s);
        for (action, on) in [
            (ControlAction::KillSwitch, true),
            (ControlAction::Halt, false),
            (ControlAction::Disconnect, false),
            (ControlAction::Cancel, true),
            (ControlAction::Reload, true),
        ] {
            let c = ControlRecord {
                gateway: 1,
                action,
                on,
                target: 70_000,
                wall_ns: 1_700_000_000_123_456_789,
                uid: 1000,
            };
            let mut b = [0u8; CONTROL_LEN];
            c.encode(&mut b);
            assert_eq!(ControlRecord::decode(&b).unwrap(), c);
            assert!(ControlRecord::decode(&b[..CONTROL_LEN - 1]).is_err());
            b[1] = 9;
            assert!(ControlRecord::decode(&b).is_err(), "unknown action refused");
        }
        let st = StartRecord {
            version: RECORD_VERSION,
            fingerprint: 0xdead_beef,
            wall_ns: 123,
        };
        assert_eq!(StartRecord::decode(&st.encode()).unwrap(), st);
    }
}

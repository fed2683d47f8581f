//! Acceptor-side session registry: binds a new connection to a configured session by the
//! CompIDs of its first message, the way a QuickFIX acceptor does.
//!
//! A connection is unbound until its first complete message. [`Acceptor::identify`] peeks at
//! it (without consuming it) and answers: bind to session N, wait for more bytes, or drop the
//! connection without a word (not a Logon, unknown CompIDs, garbled, or a session that is
//! already connected: QuickFIX's "duplicate identity" rule, which leaves the first connection
//! untouched). After binding, the driver feeds the same bytes to that session's
//! [`Session::on_input`], which answers the Logon.
//!
//! Until a connection is bound no session is responsible for it, so the driver times out a
//! connection that never completes its first message (use the sessions' `logon_timeout_secs`),
//! and must call [`Acceptor::release`] when a bound connection closes, or the identity stays
//! "already connected".

use super::{MessageStore, Session};
use crate::codec::decode::{fields, DecodeError};
use crate::codec::frame::{next_frame, FrameError, FrameStatus};
use crate::tags;

/// Identity fields of a connection's first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogonIdentity<'a> {
    /// BeginString (8).
    pub begin_string: &'a [u8],
    /// MsgType (35).
    pub msg_type: &'a [u8],
    /// SenderCompID (49): the counterparty.
    pub sender_comp_id: &'a [u8],
    /// TargetCompID (56): us.
    pub target_comp_id: &'a [u8],
    /// Username (553), if sent.
    pub username: Option<&'a [u8]>,
    /// Password (554), if sent.
    pub password: Option<&'a [u8]>,
}

/// Why a new connection is dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyError {
    /// The first bytes are not a trustworthy frame.
    Garbled(FrameError),
    /// The first frame's fields cannot be decoded.
    Decode(DecodeError),
    /// The first message is not a Logon.
    NotLogon,
    /// SenderCompID/TargetCompID missing.
    MissingCompId,
    /// No session is configured for this BeginString and these CompIDs.
    UnknownSession,
    /// The session is already bound to another connection.
    AlreadyConnected,
}

/// Reads the identity of the first message in `input` without consuming it. `Ok(None)` means
/// more bytes are needed.
pub fn peek_logon(
    input: &[u8],
    max_message_size: usize,
) -> Result<Option<LogonIdentity<'_>>, IdentifyError> {
    let frame = match next_frame(input, max_message_size) {
        FrameStatus::Incomplete => return Ok(None),
        FrameStatus::Garbled { error, .. } => return Err(IdentifyError::Garbled(error)),
        FrameStatus::Complete(f) => f,
    };
    let mut id = LogonIdentity {
        begin_string: frame.begin_string(input),
        msg_type: b"",
        sender_comp_id: b"",
        target_comp_id: b"",
        username: None,
        password: None,
    };
    let (mut has_sender, mut has_target) = (false, false);
    for f in fields(&input[frame.body_start..frame.trailer_start]) {
        let (tag, value) = f.map_err(IdentifyError::Decode)?;
        match tag {
            tags::MSG_TYPE if id.msg_type.is_empty() => id.msg_type = value,
            tags::SENDER_COMP_ID if !has_sender => {
                id.sender_comp_id = value;
                has_sender = true;
            }
            tags::TARGET_COMP_ID if !has_target => {
                id.target_comp_id = value;
                has_target = true;
            }
            tags::USERNAME => id.username = Some(value),
            tags::PASSWORD => id.password = Some(value),
            _ => {}
        }
    }
    if id.msg_type != b"A" {
        return Err(IdentifyError::NotLogon);
    }
    if !has_sender || !has_target {
        return Err(IdentifyError::MissingCompId);
    }
    Ok(Some(id))
}

/// Index of a session in an [`Acceptor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub usize);

/// Result of [`Acceptor::identify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identify {
    /// Not enough bytes yet.
    NeedMore,
    /// The connection now belongs to this session; feed it the same bytes.
    Bind(SessionId),
    /// Close the connection without sending anything.
    Reject(IdentifyError),
}

#[derive(Debug)]
struct Slot<S: MessageStore> {
    session: Session<S>,
    connected: bool,
}

/// The sessions an acceptor serves, keyed by (BeginString, our CompID, their CompID).
#[derive(Debug)]
pub struct Acceptor<S: MessageStore> {
    slots: Vec<Slot<S>>,
    max_message_size: usize,
}

impl<S: MessageStore> Default for Acceptor<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: MessageStore> Acceptor<S> {
    /// An empty registry.
    pub fn new() -> Self {
        Acceptor {
            slots: Vec::new(),
            max_message_size: 0,
        }
    }

    /// Adds a configured session; returns its id.
    pub fn add(&mut self, session: Session<S>) -> SessionId {
        self.max_message_size = self.max_message_size.max(session.config().max_message_size);
        self.slots.push(Slot {
            session,
            connected: false,
        });
        SessionId(self.slots.len() - 1)
    }

    /// Largest maximum message size of the sessions (size [`super::Scratch`] with it).
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Decides what to do with a new connection from its first bytes. On `Bind` the session
    /// is marked connected (and [`Session::on_connected`] called with `now`).
    pub fn identify(&mut self, input: &[u8], now: u64) -> Identify {
        let id = match peek_logon(input, self.max_message_size.max(64)) {
            Ok(None) => return Identify::NeedMore,
            Ok(Some(id)) => id,
            Err(e) => return Identify::Reject(e),
        };
        let Some(i) = self.slots.iter().position(|s| {
            let c = s.session.config();
            c.begin_string.as_bytes() == id.begin_string
                && c.sender_comp_id.as_bytes() == id.target_comp_id
                && c.target_comp_id.as_bytes() == id.sender_comp_id
        }) else {
            return Identify::Reject(IdentifyError::UnknownSession);
        };
        let slot = &mut self.slots[i];
        if slot.connected {
            return Identify::Reject(IdentifyError::AlreadyConnected);
        }
        slot.connected = true;
        slot.session.on_connected(now);
        Identify::Bind(SessionId(i))
    }

    /// The session `id`.
    pub fn session(&mut self, id: SessionId) -> &mut Session<S> {
        &mut self.slots[id.0].session
    }

    /// True while `id` is bound to a connection.
    pub fn is_connected(&self, id: SessionId) -> bool {
        self.slots[id.0].connected
    }

    /// Unbinds `id` after its connection closed.
    pub fn release(&mut self, id: SessionId) {
        let slot = &mut self.slots[id.0];
        slot.connected = false;
        slot.session.on_disconnected();
    }

    /// Every session with its id (e.g. to drive timers of connected ones).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SessionId, &mut Session<S>, bool)> {
        self.slots
            .iter_mut()
            .enumerate()
            .map(|(i, s)| (SessionId(i), &mut s.session, s.connected))
    }
}

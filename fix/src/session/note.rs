//! Notes: what a session did on its own that its owner may want on record (an audit trail):
//! rejects it sent, ResendRequests and SequenceResets either way, sequence resets at logon.
//!
//! The session keeps them in a small fixed buffer (no allocation); the owner takes them with
//! [`super::Session::take_note`] after each call. When the owner does not take them, the
//! buffer fills and later notes are dropped and counted ([`super::Session::notes_dropped`]):
//! notes never hold up the session.

use super::reject::{BusinessRejectReason, SessionRejectReason};

/// Notes a session holds before it drops new ones.
pub const NOTE_SLOTS: usize = 16;

/// Bytes of an identifier carried inline ([`InlineId`]).
pub const INLINE_ID_BYTES: usize = 40;

/// A short identifier (a ClOrdID) carried by value: up to [`INLINE_ID_BYTES`] bytes, longer
/// ones truncated. `Copy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineId {
    bytes: [u8; INLINE_ID_BYTES],
    len: u8,
}

impl InlineId {
    /// No identifier.
    pub const EMPTY: InlineId = InlineId {
        bytes: [0; INLINE_ID_BYTES],
        len: 0,
    };

    /// The first [`INLINE_ID_BYTES`] bytes of `b`.
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Self {
        let n = b.len().min(INLINE_ID_BYTES);
        let mut id = Self::EMPTY;
        id.bytes[..n].copy_from_slice(&b[..n]);
        id.len = n as u8;
        id
    }

    /// `n` in decimal (a binary order token).
    #[inline]
    pub fn from_u64(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Self::from_bytes(&digits[i..])
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// True when there is no identifier.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for InlineId {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl std::fmt::Debug for InlineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// A Reject (35=3) was sent for the peer's message `ref_seq` (0: it had none).
    RejectSent {
        /// MsgSeqNum of the message refused.
        ref_seq: u64,
        /// SessionRejectReason (373).
        reason: SessionRejectReason,
        /// RefTagID (371), 0 when none.
        ref_tag: u32,
        /// The refused message's ClOrdID (11), if it had one.
        cl_ord_id: InlineId,
    },
    /// A BusinessMessageReject (35=j) was sent for the peer's message `ref_seq`.
    BusinessRejectSent {
        /// MsgSeqNum of the message refused.
        ref_seq: u64,
        /// BusinessRejectReason (380).
        reason: BusinessRejectReason,
        /// The tag at fault, 0 when none.
        ref_tag: u32,
        /// The refused message's ClOrdID (11), if it had one.
        cl_ord_id: InlineId,
    },
    /// The peer sent a Reject (35=3) of our message `ref_seq`.
    RejectReceived {
        /// RefSeqNum (45), 0 when absent.
        ref_seq: u64,
        /// SessionRejectReason (373), `u32::MAX` when absent.
        reason: u32,
    },
    /// The peer's ResendRequest (35=2) was accepted: `begin..=end` (0: to the end), as asked.
    ResendRequestReceived {
        /// BeginSeqNo (7).
        begin: u64,
        /// EndSeqNo (16).
        end: u64,
    },
    /// A ResendRequest was sent for an inbound gap: `begin..=end` (end 0: infinity).
    ResendRequestSent {
        /// BeginSeqNo (7).
        begin: u64,
        /// EndSeqNo (16).
        end: u64,
    },
    /// The peer's SequenceReset (35=4) was accepted: the next expected number is `new_seq`.
    SequenceResetReceived {
        /// NewSeqNo (36).
        new_seq: u64,
        /// GapFillFlag (123) = Y.
        gap_fill: bool,
    },
    /// A SequenceReset-GapFill was sent in an answer to a ResendRequest: `seq..new_seq`
    /// skipped.
    SequenceResetSent {
        /// Its MsgSeqNum.
        seq: u64,
        /// NewSeqNo (36).
        new_seq: u64,
    },
    /// Sequence numbers went back to 1 at a Logon: the peer's ResetSeqNumFlag (141=Y), or
    /// the session's reset-on-logon setting.
    LogonReset {
        /// The peer's Logon carried 141=Y.
        requested: bool,
    },
}

/// The fixed buffer of notes (a FIFO).
#[derive(Debug)]
pub(crate) struct Notes {
    slots: [Option<Note>; NOTE_SLOTS],
    head: usize,
    len: usize,
    dropped: u64,
}

impl Notes {
    pub(crate) fn new() -> Self {
        Self {
            slots: [None; NOTE_SLOTS],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, n: Note) {
        if self.len == NOTE_SLOTS {
            self.dropped += 1;
            return;
        }
        self.slots[(self.head + self.len) % NOTE_SLOTS] = Some(n);
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Note> {
        if self.len == 0 {
            return None;
        }
        let n = self.slots[self.head].take();
        self.head = (self.head + 1) % NOTE_SLOTS;
        self.len -= 1;
        n
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_ids_truncate_and_print_tokens() {
        assert_eq!(InlineId::from_bytes(b"ORD-1").as_bytes(), b"ORD-1");
        assert_eq!(InlineId::from_bytes(&[b'x'; 50]).as_bytes().len(), 40);
        assert_eq!(InlineId::from_u64(0).as_bytes(), b"0");
        assert_eq!(
            InlineId::from_u64(u64::MAX).as_bytes(),
            b"18446744073709551615"
        );
        assert!(InlineId::EMPTY.is_empty());
    }

    #[test]
    fn notes_are_fifo_and_bounded() {
        let mut n = Notes::new();
        for i in 0..NOTE_SLOTS as u64 + 3 {
            n.push(Note::ResendRequestSent { begin: i, end: 0 });
        }
        assert_eq!(n.dropped(), 3);
        assert_eq!(n.pop(), Some(Note::ResendRequestSent { begin: 0, end: 0 }));
        n.push(Note::LogonReset { requested: true });
        let mut last = None;
        while let Some(x) = n.pop() {
            last = Some(x);
        }
        assert_eq!(last, Some(Note::LogonReset { requested: true }));
    }
}

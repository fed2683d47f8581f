//! The field decoder: splits a trusted frame into `(tag, value)` ranges in a caller-owned
//! [`FieldIndex`] and exposes them as a zero-copy [`Message`] view.
//!
//! The index is reserved once (sized from the maximum message size) and reused for every
//! message, so decoding never allocates. It also records what the session layer needs without a
//! second pass: MsgSeqNum, CompIDs, SendingTime, PossDupFlag, and the first structural problem
//! (a header field after the body started, a tag that is not a number).

use super::frame::{Frame, SOH};
use super::num::parse_u64;
use super::scan::{field_at, field_fast, Scanned};
use super::shape::Shape;
use crate::dict::one_pass::{self, role, OnePass, BODY, HEADER, TRAILER};
use crate::tags;

/// One field of a decoded message: a tag and the byte range of its value in the frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldRef {
    /// Tag number.
    pub tag: u32,
    /// Offset of the value's first byte in the frame.
    pub start: u32,
    /// Offset one past the value's last byte.
    pub end: u32,
}

/// Why a frame's fields cannot be decoded. The frame is then not a message at all and is
/// ignored (or the connection dropped before logon), as QuickFIX does with `InvalidMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A field without `=` or with a tag that is not a number (e.g. `4garbled9=TW`).
    GarbledField,
    /// The first three fields are not BeginString, BodyLength, MsgType.
    FirstFieldsOutOfOrder,
    /// More fields than the index was sized for.
    TooManyFields,
}

/// Reusable storage for the fields of one message. One per gateway thread is enough: the
/// message view borrows it only until the caller is done with that message.
#[derive(Debug)]
pub struct FieldIndex {
    fields: Box<[FieldRef]>,
    /// The layout of the last message that passed the one-pass check (`shape.rs`).
    shape: Box<Shape>,
}

impl FieldIndex {
    /// An index able to hold messages of up to `max_message_size` bytes (a field takes at
    /// least 4 bytes: `1=x<SOH>`).
    pub fn for_message_size(max_message_size: usize) -> Self {
        let cap = max_message_size / 4 + 4;
        FieldIndex {
            fields: vec![FieldRef::default(); cap].into_boxed_slice(),
            shape: Box::new(Shape::empty()),
        }
    }
}

/// Positions of the header fields the session reads, filled while decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderInfo {
    pub(crate) msg_type: (u32, u32),
    /// Parsed MsgSeqNum; `None` when absent or not a number.
    pub seq_num: Option<u64>,
    /// True when a MsgSeqNum field is present at all.
    pub has_seq_num: bool,
    pub(crate) sender: Option<(u32, u32)>,
    pub(crate) target: Option<(u32, u32)>,
    pub(crate) sending_time: Option<(u32, u32)>,
    pub(crate) orig_sending_time: Option<(u32, u32)>,
    /// PossDupFlag (43) is `Y`.
    pub poss_dup: bool,
    /// PossResend (97) is `Y`.
    pub poss_resend: bool,
    /// Index in the field list of the first body field.
    pub body_first: u16,
    /// Index in the field list of the first trailer field.
    pub trailer_first: u16,
    /// First header field found after the body began, or body field after the trailer began.
    pub out_of_order_tag: Option<u32>,
    /// First negative tag (such as `-1=HI`), kept so it can be rejected by number.
    pub negative_tag: Option<i32>,
    /// The one-pass dictionary check accepted the message (`dict/one_pass.rs`).
    pub(crate) valid: bool,
}

/// A decoded message: the frame bytes plus the field index. Copy, borrow-only.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    fields: &'a [FieldRef],
    info: HeaderInfo,
}

#[inline]
fn range(r: (u32, u32)) -> core::ops::Range<usize> {
    r.0 as usize..r.1 as usize
}

impl<'a> Message<'a> {
    /// The whole frame.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// Every field in wire order (BeginString, BodyLength and CheckSum included).
    #[inline]
    pub fn fields(&self) -> &'a [FieldRef] {
        self.fields
    }
    /// Header facts gathered while decoding.
    #[inline]
    pub fn info(&self) -> &HeaderInfo {
        &self.info
    }
    /// The value bytes of a field reference.
    #[inline]
    pub fn value(&self, f: &FieldRef) -> &'a [u8] {
        &self.buf[f.start as usize..f.end as usize]
    }
    /// The first value of `tag`, if present.
    #[inline]
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.tag == tag)
            .map(|f| self.value(f))
    }
    /// MsgType (35).
    #[inline]
    pub fn msg_type(&self) -> &'a [u8] {
        &self.buf[range(self.info.msg_type)]
    }
    /// MsgSeqNum (34), when present and numeric.
    #[inline]
    pub fn seq_num(&self) -> Option<u64> {
        self.info.seq_num
    }
    /// SenderCompID (49).
    #[inline]
    pub fn sender_comp_id(&self) -> Option<&'a [u8]> {
        self.info.sender.map(|r| &self.buf[range(r)])
    }
    /// TargetCompID (56).
    #[inline]
    pub fn target_comp_id(&self) -> Option<&'a [u8]> {
        self.info.target.map(|r| &self.buf[range(r)])
    }
    /// SendingTime (52) as written.
    #[inline]
    pub fn sending_time(&self) -> Option<&'a [u8]> {
        self.info.sending_time.map(|r| &self.buf[range(r)])
    }
    /// OrigSendingTime (122) as written.
    #[inline]
    pub fn orig_sending_time(&self) -> Option<&'a [u8]> {
        self.info.orig_sending_time.map(|r| &self.buf[range(r)])
    }
    /// PossDupFlag (43) = Y.
    #[inline]
    pub fn poss_dup(&self) -> bool {
        self.info.poss_dup
    }
    /// PossResend (97) = Y: the application decides whether it has seen this message.
    #[inline]
    pub fn poss_resend(&self) -> bool {
        self.info.poss_resend
    }
    /// Header fields (BeginString and BodyLength included).
    #[inline]
    pub fn header_fields(&self) -> &'a [FieldRef] {
        &self.fields[..self.info.body_first as usize]
    }
    /// Body fields in wire order.
    #[inline]
    pub fn body_fields(&self) -> &'a [FieldRef] {
        &self.fields[self.info.body_first as usize..self.info.trailer_first as usize]
    }
    /// Trailer fields (CheckSum included).
    #[inline]
    pub fn trailer_fields(&self) -> &'a [FieldRef] {
        &self.fields[self.info.trailer_first as usize..]
    }
    /// True when decoding already proved the message valid against the dictionary, so that
    /// [`crate::dict::validate`] has nothing left to do. False does not mean invalid: the
    /// message needs the full table walk (a repeating group, or a problem to report).
    #[inline]
    pub fn passed_one_pass_check(&self) -> bool {
        self.info.valid
    }
    /// True for session-level (admin) message types: 0, 1, 2, 3, 4, 5, A.
    #[inline]
    pub fn is_admin(&self) -> bool {
        is_admin_msg_type(self.msg_type())
    }
}

/// True for session-level (admin) message types.
#[inline]
pub fn is_admin_msg_type(t: &[u8]) -> bool {
    matches!(t, b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A")
}

/// Decodes the fields of `buf[..frame.len]` into `index`. `buf` must start with the frame.
///
/// One pass does the splitting, the header facts the session reads, and the dictionary checks
/// of [`crate::dict::validate`] for the common case (`dict/one_pass.rs`): a message that
/// passes them is marked, and validating it later costs nothing.
pub fn decode<'a>(
    buf: &'a [u8],
    frame: &Frame,
    index: &'a mut FieldIndex,
) -> Result<Message<'a>, DecodeError> {
    let FieldIndex { fields, shape } = index;
    decode_in(&buf[..frame.len], fields, shape)
}

/// [`decode`] with the kept shape supplied by the caller instead of the index's own.
///
/// Why: a shape pays only while the messages it sees share one layout, and layouts belong to
/// the peer's FIX engine. A gateway thread decodes every session's messages with one index, so
/// a session keeps its own peer's shape and lends it here; clients whose engines order fields
/// differently then never take turns replacing each other's shape.
pub(crate) fn decode_with_shape<'a>(
    buf: &'a [u8],
    frame: &Frame,
    index: &'a mut FieldIndex,
    shape: &mut Shape,
) -> Result<Message<'a>, DecodeError> {
    decode_in(&buf[..frame.len], &mut index.fields, shape)
}

fn decode_in<'a>(
    buf: &'a [u8],
    fields: &'a mut [FieldRef],
    shape: &mut Shape,
) -> Result<Message<'a>, DecodeError> {
    if let Some((n, info)) = shape.decode(buf, fields) {
        return Ok(Message {
            buf,
            fields: &fields[..n],
            info,
        });
    }
    if let Some((n, info)) = decode_common(buf, fields) {
        if info.valid {
            shape.offer(buf, &fields[..n], &info);
        }
        return Ok(Message {
            buf,
            fields: &fields[..n],
            info,
        });
    }
    decode_general(buf, fields)
}

/// The usual message, decoded by three tight loops, one per section: header fields, then
/// body fields, then trailer fields, each `digits=value` with a tag of at most eight digits.
/// Returns `None` at the first thing it does not handle (a field out of its section, a
/// negative or long tag, a malformed field, a full index...) without having decided anything:
/// [`decode_general`] then decodes the frame from the start and gives the answer. When it
/// returns, its answer is the one [`decode_general`] would give (property-tested below);
/// it is only cheaper, because the loops keep no section state machine and only the header
/// loop looks for the header facts the session reads.
#[inline(always)]
fn decode_common(buf: &[u8], fields: &mut [FieldRef]) -> Option<(usize, HeaderInfo)> {
    let len = buf.len();
    if len == 0 || buf[len - 1] != SOH {
        return None;
    }
    let mut info = HeaderInfo::default();
    let mut check = OnePass::new();
    let mut n = 0usize;
    let mut p = 0usize;
    // BeginString, BodyLength, MsgType, in this order, then the rest of the header.
    let (mut tag, mut start, mut end, mut spec);
    loop {
        if p >= len {
            return None;
        }
        (tag, start, end) = field_fast(buf, p)?;
        p = end + 1;
        if n < 3 && tag != [tags::BEGIN_STRING, tags::BODY_LENGTH, tags::MSG_TYPE][n] {
            return None;
        }
        spec = one_pass::spec(tag);
        if spec.class != HEADER {
            break;
        }
        // A full index is left to the general decoder (one bounds check does both).
        *fields.get_mut(n)? = FieldRef {
            tag,
            start: start as u32,
            end: end as u32,
        };
        n += 1;
        check.seen(tag);
        let r = (start as u32, end as u32);
        let v = &buf[start..end];
        match spec.role {
            role::MSG_TYPE if info.msg_type == (0, 0) => info.msg_type = r,
            role::SEQ_NUM if !info.has_seq_num => {
                info.has_seq_num = true;
                info.seq_num = parse_u64(v);
            }
            role::SENDER if info.sender.is_none() => info.sender = Some(r),
            role::TARGET if info.target.is_none() => info.target = Some(r),
            role::SENDING_TIME if info.sending_time.is_none() => info.sending_time = Some(r),
            role::ORIG_SENDING_TIME if info.orig_sending_time.is_none() => {
                info.orig_sending_time = Some(r)
            }
            role::POSS_DUP => info.poss_dup = v == b"Y",
            role::POSS_RESEND => info.poss_resend = v == b"Y",
            _ => {}
        }
        if n > 3 {
            check.field(tag, spec, buf, start, end);
        } else if n == 3 {
            check.msg_type(v);
        }
    }
    if n < 3 {
        return None;
    }
    info.body_first = n as u16;
    // Body: `tag` is the first field after the header, not stored yet.
    while spec.class == BODY {
        *fields.get_mut(n)? = FieldRef {
            tag,
            start: start as u32,
            end: end as u32,
        };
        n += 1;
        check.seen(tag);
        check.field(tag, spec, buf, start, end);
        if p >= len {
            return None;
        }
        (tag, start, end) = field_fast(buf, p)?;
        p = end + 1;
        spec = one_pass::spec(tag);
    }
    if spec.class != TRAILER {
        return None; // a header field in the body
    }
    info.trailer_first = n as u16;
    loop {
        *fields.get_mut(n)? = FieldRef {
            tag,
            start: start as u32,
            end: end as u32,
        };
        n += 1;
        check.seen(tag);
        check.field(tag, spec, buf, start, end);
        if p >= len {
            break;
        }
        (tag, start, end) = field_fast(buf, p)?;
        p = end + 1;
        spec = one_pass::spec(tag);
        if spec.class != TRAILER {
            return None;
        }
    }
    info.valid = check.passed(true);
    Some((n, info))
}

/// Any frame, including malformed ones: the field-by-field decoder with a section state
/// machine, which records the first structural problem instead of giving up.
#[cold]
#[inline(never)]
fn decode_general<'a>(
    buf: &'a [u8],
    fields: &'a mut [FieldRef],
) -> Result<Message<'a>, DecodeError> {
    let cap = fields.len();
    let mut n = 0usize;
    let mut info = HeaderInfo::default();
    let mut section = HEADER;
    let mut body_first: Option<usize> = None;
    let mut trailer_first: Option<usize> = None;
    let mut check = OnePass::new();
    let len = buf.len();
    // The framer guarantees the frame ends with SOH, so every scan below stops inside it.
    if len == 0 || buf[len - 1] != SOH {
        return Err(DecodeError::GarbledField);
    }
    let mut p = 0usize;
    while p < len {
        let (tag, start, end) = match field_at(buf, p)? {
            Scanned::Field { tag, start, end } => (tag, start, end),
            Scanned::Negative { tag, end } => {
                if info.negative_tag.is_none() {
                    info.negative_tag = Some(tag);
                }
                p = end + 1;
                continue;
            }
        };
        p = end + 1;
        if n < 3 {
            let want = [tags::BEGIN_STRING, tags::BODY_LENGTH, tags::MSG_TYPE][n];
            if tag != want {
                return Err(DecodeError::FirstFieldsOutOfOrder);
            }
        }
        if n == cap {
            return Err(DecodeError::TooManyFields);
        }
        let spec = one_pass::spec(tag);
        let class = spec.class;
        if class != section {
            if class == BODY {
                if section == HEADER {
                    section = BODY;
                    body_first = Some(n);
                } else if info.out_of_order_tag.is_none() {
                    info.out_of_order_tag = Some(tag);
                }
            } else if class == HEADER {
                if info.out_of_order_tag.is_none() {
                    info.out_of_order_tag = Some(tag);
                }
            } else {
                section = TRAILER;
                trailer_first = Some(n);
                if body_first.is_none() {
                    body_first = Some(n);
                }
            }
        }
        fields[n] = FieldRef {
            tag,
            start: start as u32,
            end: end as u32,
        };
        n += 1;
        check.seen(tag);
        if spec.role != role::NONE {
            // Header facts, wherever the field stands (a misplaced one is also reported).
            let r = (start as u32, end as u32);
            let v = &buf[start..end];
            match spec.role {
                role::MSG_TYPE if info.msg_type == (0, 0) => info.msg_type = r,
                role::SEQ_NUM if !info.has_seq_num => {
                    info.has_seq_num = true;
                    info.seq_num = parse_u64(v);
                }
                role::SENDER if info.sender.is_none() => info.sender = Some(r),
                role::TARGET if info.target.is_none() => info.target = Some(r),
                role::SENDING_TIME if info.sending_time.is_none() => info.sending_time = Some(r),
                role::ORIG_SENDING_TIME if info.orig_sending_time.is_none() => {
                    info.orig_sending_time = Some(r)
                }
                role::POSS_DUP => info.poss_dup = v == b"Y",
                role::POSS_RESEND => info.poss_resend = v == b"Y",
                _ => {}
            }
        }
        if n > 3 {
            check.field(tag, spec, buf, start, end);
        } else if n == 3 {
            check.msg_type(&buf[start..end]);
        }
    }
    let body_first = body_first.unwrap_or(n);
    info.body_first = body_first as u16;
    info.trailer_first = trailer_first.unwrap_or(n).max(body_first) as u16;
    info.valid = check.passed(info.out_of_order_tag.is_none() && info.negative_tag.is_none());
    Ok(Message {
        buf,
        fields: &fields[..n],
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::frame::{next_frame, FrameStatus};
    use proptest::prelude::*;

    fn build(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let cs = crate::codec::frame::checksum(&m);
        m.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
        m
    }

    fn with_msg<R>(m: &[u8], f: impl FnOnce(Result<Message<'_>, DecodeError>) -> R) -> R {
        let FrameStatus::Complete(fr) = next_frame(m, 4096) else {
            panic!("frame")
        };
        let mut idx = FieldIndex::for_message_size(4096);
        f(decode(m, &fr, &mut idx))
    }

    /// The field decoder before validation was fused into it (commit cc28e5e), verbatim but
    /// for this module's paths: the property tests below hold the new decoder to its answers.
    mod reference {
        use super::super::*;

        /// High bit set in every byte of `w` equal to SOH (exact per byte, no false positives).
        #[inline(always)]
        fn soh_mask(w: u64) -> u64 {
            const ONES: u64 = 0x0101_0101_0101_0101;
            const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
            let x = w ^ ONES; // SOH bytes become zero
            let y = (x & LOW7).wrapping_add(LOW7);
            !(y | x | LOW7)
        }

        /// A `-N=value` field at `p`: the negative tag and the position of its closing SOH.
        #[cold]
        fn negative_tag(buf: &[u8], p: usize) -> Option<(i32, usize)> {
            if buf.get(p) != Some(&b'-') {
                return None;
            }
            let mut r = p + 1;
            let mut t: u32 = 0;
            while r < buf.len() && buf[r].is_ascii_digit() && r - p <= 9 {
                t = t * 10 + (buf[r] - b'0') as u32;
                r += 1;
            }
            if r == p + 1 || buf.get(r) != Some(&b'=') {
                return None;
            }
            let vend = r + 1 + buf[r + 1..].iter().position(|&b| b == SOH)?;
            Some((-(t.min(i32::MAX as u32) as i32), vend))
        }

        /// Tag classes for the decoder: one byte load tells header, body or trailer.
        const BODY: u8 = 0;
        const HEADER: u8 = 1;
        const TRAILER: u8 = 2;

        static TAG_CLASS: [u8; 960] = {
            let mut t = [BODY; 960];
            let mut tag = 0;
            while tag < 960 {
                let w = tag / 64;
                let bit = 1u64 << (tag % 64);
                if crate::dict::fix44::HEADER.0[w] & bit != 0 {
                    t[tag] = HEADER;
                } else if crate::dict::fix44::TRAILER.0[w] & bit != 0 {
                    t[tag] = TRAILER;
                }
                tag += 1;
            }
            t
        };

        /// The decoder as it was before the one-pass rewrite, kept as the oracle.
        pub(super) fn decode<'a>(
            buf: &'a [u8],
            frame: &Frame,
            index: &'a mut FieldIndex,
        ) -> Result<Message<'a>, DecodeError> {
            let buf = &buf[..frame.len];
            let fields = &mut index.fields[..];
            let cap = fields.len();
            let mut n = 0usize;
            let mut info = HeaderInfo::default();
            // 0 = header, 1 = body, 2 = trailer
            let mut section = HEADER;
            let mut body_first: Option<usize> = None;
            let mut trailer_first: Option<usize> = None;
            let len = buf.len();
            // The framer guarantees the frame ends with SOH, so every scan below stops inside it.
            if len == 0 || buf[len - 1] != SOH {
                return Err(DecodeError::GarbledField);
            }
            let mut p = 0usize;
            while p < len {
                // Tag: digits up to '='.
                let mut q = p;
                let mut tag: u32 = 0;
                let mut c = buf[q];
                while c.wrapping_sub(b'0') <= 9 {
                    tag = tag.wrapping_mul(10).wrapping_add((c - b'0') as u32);
                    q += 1;
                    c = buf[q];
                }
                if c != b'=' || q == p || q - p > 9 {
                    // Negative tags (`-1=x`) are kept aside so they can be rejected by number;
                    // anything else is not a field.
                    match negative_tag(buf, p) {
                        Some((t, vend)) => {
                            if info.negative_tag.is_none() {
                                info.negative_tag = Some(t);
                            }
                            p = vend + 1;
                            continue;
                        }
                        None => return Err(DecodeError::GarbledField),
                    }
                }
                let vstart = q + 1;
                // Value: up to the next SOH, eight bytes at a time.
                let mut e = vstart;
                let vend = loop {
                    match buf.get(e..e + 8) {
                        Some(b) => {
                            let m = soh_mask(u64::from_le_bytes([
                                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                            ]));
                            if m != 0 {
                                break e + (m.trailing_zeros() / 8) as usize;
                            }
                            e += 8;
                        }
                        None => match buf[e..].iter().position(|&b| b == SOH) {
                            Some(k) => break e + k,
                            None => return Err(DecodeError::GarbledField),
                        },
                    }
                };
                p = vend + 1;
                if n < 3 {
                    let want = [tags::BEGIN_STRING, tags::BODY_LENGTH, tags::MSG_TYPE][n];
                    if tag != want {
                        return Err(DecodeError::FirstFieldsOutOfOrder);
                    }
                }
                if n == cap {
                    return Err(DecodeError::TooManyFields);
                }
                let class = TAG_CLASS.get(tag as usize).copied().unwrap_or(BODY);
                if class != section {
                    if class == BODY {
                        if section == HEADER {
                            section = BODY;
                            body_first = Some(n);
                        } else if info.out_of_order_tag.is_none() {
                            info.out_of_order_tag = Some(tag);
                        }
                    } else if class == HEADER {
                        if info.out_of_order_tag.is_none() {
                            info.out_of_order_tag = Some(tag);
                        }
                    } else {
                        section = TRAILER;
                        trailer_first = Some(n);
                        if body_first.is_none() {
                            body_first = Some(n);
                        }
                    }
                }
                fields[n] = FieldRef {
                    tag,
                    start: vstart as u32,
                    end: vend as u32,
                };
                n += 1;
            }
            let field_start = len;
            if field_start != len {
                return Err(DecodeError::GarbledField);
            }
            let body_first = body_first.unwrap_or(n);
            // Second, short pass over the header for the fields the session reads (kept out of the
            // hot loop above to keep its register pressure low).
            for f in &fields[..n] {
                if TAG_CLASS.get(f.tag as usize).copied() != Some(HEADER) {
                    continue;
                }
                let r = (f.start, f.end);
                let v = &buf[f.start as usize..f.end as usize];
                match f.tag {
                    tags::MSG_TYPE if info.msg_type == (0, 0) => info.msg_type = r,
                    tags::MSG_SEQ_NUM if !info.has_seq_num => {
                        info.has_seq_num = true;
                        info.seq_num = parse_u64(v);
                    }
                    tags::SENDER_COMP_ID if info.sender.is_none() => info.sender = Some(r),
                    tags::TARGET_COMP_ID if info.target.is_none() => info.target = Some(r),
                    tags::SENDING_TIME if info.sending_time.is_none() => {
                        info.sending_time = Some(r)
                    }
                    tags::ORIG_SENDING_TIME if info.orig_sending_time.is_none() => {
                        info.orig_sending_time = Some(r)
                    }
                    tags::POSS_DUP_FLAG => info.poss_dup = v == b"Y",
                    tags::POSS_RESEND => info.poss_resend = v == b"Y",
                    _ => {}
                }
            }
            info.body_first = body_first as u16;
            info.trailer_first = trailer_first.unwrap_or(n).max(body_first) as u16;
            Ok(Message {
                buf,
                fields: &index.fields[..n],
                info,
            })
        }
    }

    #[test]
    fn decodes_header_and_body() {
        let m = build("35=D|34=7|49=TW|52=20240101-00:00:00.000|56=ISLD|43=Y|122=20240101-00:00:00|11=ID|55=X|");
        with_msg(&m, |r| {
            let msg = r.unwrap();
            assert_eq!(msg.msg_type(), b"D");
            assert_eq!(msg.seq_num(), Some(7));
            assert_eq!(msg.sender_comp_id(), Some(&b"TW"[..]));
            assert_eq!(msg.target_comp_id(), Some(&b"ISLD"[..]));
            assert!(msg.poss_dup());
            assert_eq!(msg.orig_sending_time(), Some(&b"20240101-00:00:00"[..]));
            assert_eq!(msg.get(11), Some(&b"ID"[..]));
            assert_eq!(msg.body_fields().len(), 2);
            assert_eq!(msg.trailer_fields().len(), 1);
            assert_eq!(msg.info().out_of_order_tag, None);
        });
    }

    #[test]
    fn structure_problems_are_recorded() {
        let m = build("35=D|11=id|34=2|49=TW|");
        with_msg(&m, |r| {
            assert_eq!(r.unwrap().info().out_of_order_tag, Some(34))
        });
        let m = build("35=0|34=2|-1=HI|");
        with_msg(&m, |r| assert_eq!(r.unwrap().info().negative_tag, Some(-1)));
        let m = build("35=0|4garbled9=TW|");
        with_msg(&m, |r| {
            assert_eq!(r.unwrap_err(), DecodeError::GarbledField)
        });
    }

    #[test]
    fn layouts() {
        // Twelve bytes per field: an 8 KiB message's worst-case index (2,052 fields) is 24 KiB,
        // reserved once per thread.
        assert_eq!(core::mem::size_of::<FieldRef>(), 12);
        assert_eq!(core::mem::align_of::<FieldRef>(), 4);
        assert_eq!(FieldIndex::for_message_size(8192).fields.len(), 2052);
        assert_eq!(core::mem::size_of::<crate::dict::TagSet>(), 120);
        assert!(
            core::mem::size_of::<Message<'_>>() <= 128,
            "Message is passed by value"
        );
        assert!(core::mem::size_of::<DecodeError>() == 1);
    }

    /// Everything a decoded message exposes except the one-pass mark.
    fn observable(m: &Message<'_>) -> String {
        let i = m.info();
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {} {} {:?} {:?}",
            m.fields(),
            m.msg_type(),
            (m.seq_num(), i.has_seq_num),
            m.sender_comp_id(),
            m.target_comp_id(),
            m.sending_time(),
            m.orig_sending_time(),
            m.as_bytes(),
            m.poss_dup(),
            m.poss_resend(),
            i.body_first,
            i.trailer_first,
            i.out_of_order_tag,
            i.negative_tag,
        )
    }

    /// A small deterministic generator (xorshift) for message shapes drawn from a seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
        fn pick<'s>(&mut self, v: &[&'s str]) -> &'s str {
            v[self.below(v.len())]
        }
    }

    /// A value the dictionary accepts for `tag`.
    fn valid_value(tag: u32, rng: &mut Rng) -> String {
        use crate::dict::{field_type, fix44, Enum, FieldType};
        match fix44::FIELD_ENUMS.get(tag as usize) {
            Some(Enum::Chars(mask)) => loop {
                let c = rng.below(128) as u8;
                if mask >> c & 1 == 1 {
                    return (c as char).to_string();
                }
            },
            Some(Enum::Values(v)) | Some(Enum::Multi(v)) => {
                String::from_utf8(v[rng.below(v.len())].to_vec()).unwrap()
            }
            _ => match field_type(tag) {
                FieldType::Int => rng.pick(&["1", "-7", "0042", "123456789012"]).into(),
                FieldType::NumInGroup => "0".into(),
                FieldType::Float => rng
                    .pick(&["1.5", "-0.25", "100", "7.", ".5", "123456789.123"])
                    .into(),
                FieldType::Char => "x".into(),
                FieldType::Boolean => rng.pick(&["Y", "N"]).into(),
                FieldType::UtcTimestamp => rng
                    .pick(&[
                        "20240301-12:00:00.000",
                        "20240301-12:00:00",
                        "20241231-23:59:60.123456",
                    ])
                    .into(),
                FieldType::UtcTimeOnly => "12:00:00".into(),
                FieldType::UtcDateOnly => "20240229".into(),
                _ => rng.pick(&["ABC", "ORD-000123456", "a=b", "X"]).into(),
            },
        }
    }

    /// Messages of real types, mostly valid, with the usual ways of being invalid mixed in at
    /// a low rate: bad values, missing or repeated tags, misplaced header fields, unknown or
    /// malformed tags, groups, unknown types.
    fn messages() -> impl Strategy<Value = Vec<u8>> {
        any::<u64>().prop_map(|seed| {
            use crate::dict::{fix44, message_def};
            let mut rng = Rng(seed | 1);
            let mt = rng.pick(&[
                "D", "D", "D", "F", "G", "8", "0", "A", "5", "q", "j", "1", "*",
            ]);
            let mut head: Vec<String> = Vec::new();
            for (t, v) in [
                (34, "2"),
                (49, "TW"),
                (52, "20240301-12:00:00.000"),
                (56, "ISLD"),
            ] {
                if rng.chance(97) {
                    head.push(format!("{t}={v}"));
                }
            }
            for f in ["43=Y", "97=N", "122=20240301-11:00:00", "115=ON", "43=N"] {
                if rng.chance(8) {
                    head.push(f.into());
                }
            }
            if rng.chance(20) {
                let i = rng.below(head.len() + 1);
                let j = rng.below(head.len() + 1);
                if i < head.len() && j < head.len() {
                    head.swap(i, j);
                }
            }
            let mut body: Vec<(String, String)> = Vec::new();
            if let Some(def) = message_def(mt.as_bytes()) {
                for &t in def.required {
                    if rng.chance(97) {
                        body.push((t.to_string(), valid_value(t, &mut rng)));
                    }
                }
                let allowed: Vec<u32> = (0..960).filter(|&t| def.fields.contains(t)).collect();
                for _ in 0..rng.below(8) {
                    let t = allowed[rng.below(allowed.len())];
                    if fix44::FIELD_TYPES[t as usize] != crate::dict::FieldType::NumInGroup
                        && !body.iter().any(|(bt, _)| *bt == t.to_string())
                    {
                        body.push((t.to_string(), valid_value(t, &mut rng)));
                    }
                }
            }
            for (t, v) in &mut body {
                if rng.chance(3) {
                    *v = rng
                        .pick(&[
                            "",
                            "1.2.3",
                            "20241301-12:00:00",
                            "1 2",
                            "-",
                            "+1",
                            "4",
                            "BOO",
                            "YY",
                        ])
                        .into();
                }
                if rng.chance(1) {
                    *t = rng
                        .pick(&["5000", "957", "1034", "-1", "0", "4x", "012"])
                        .into();
                }
            }
            if rng.chance(5) && !body.is_empty() {
                let dup = body[rng.below(body.len())].clone();
                body.push(dup);
            }
            if rng.chance(5) {
                body.push(("34".into(), "3".into()));
            }
            if rng.chance(8) {
                body.extend(
                    [("453", "1"), ("448", "P"), ("447", "D"), ("452", "3")]
                        .map(|(t, v)| (t.to_string(), v.to_string())),
                );
            }
            if rng.chance(5) {
                body.push(("58".into(), "x".repeat(rng.below(40))));
            }
            let mut s = format!("35={mt}|");
            for h in &head {
                s.push_str(h);
                s.push('|');
            }
            for (t, v) in &body {
                s.push_str(&format!("{t}={v}|"));
            }
            if rng.chance(5) {
                s.push_str("93=2|89=ab|");
            }
            build(&s)
        })
    }

    /// The one-pass decoder exposes exactly what the previous decoder exposed, and marks a
    /// message valid only when the full validation accepts it. The generated messages must
    /// exercise every outcome, or the agreement would prove little.
    #[test]
    fn one_pass_decoder_agrees_with_the_reference() {
        use std::cell::Cell;
        let (marked, walk_ok, walk_err) = (Cell::new(0), Cell::new(0), Cell::new(0));
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 6000,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let result = runner.run(&messages(), |m| {
            let FrameStatus::Complete(fr) = next_frame(&m, 8192) else {
                return Err(TestCaseError::fail("frame"));
            };
            let mut idx = FieldIndex::for_message_size(8192);
            let mut ref_idx = FieldIndex::for_message_size(8192);
            let new = decode(&m, &fr, &mut idx);
            let old = reference::decode(&m, &fr, &mut ref_idx);
            match (&new, &old) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(observable(a), observable(b));
                    let mut seen = crate::dict::TagSet::EMPTY;
                    let full = crate::dict::validate_table_walk(a, &mut seen);
                    if a.passed_one_pass_check() {
                        marked.set(marked.get() + 1);
                        prop_assert_eq!(
                            full,
                            Ok(()),
                            "marked valid: {}",
                            String::from_utf8_lossy(&m)
                        );
                    }
                    match full {
                        Ok(()) => walk_ok.set(walk_ok.get() + 1),
                        Err(_) => walk_err.set(walk_err.get() + 1),
                    }
                    prop_assert_eq!(crate::dict::validate(a, &mut seen), full);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "{:?} vs {:?}", new.map(|_| ()), old.map(|_| ())),
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let (marked, walk_ok, walk_err) = (marked.get(), walk_ok.get(), walk_err.get());
        eprintln!("marked {marked}, table walk ok {walk_ok}, rejected {walk_err}");
        assert!(
            marked >= 300 && walk_err >= 1000,
            "{marked} {walk_ok} {walk_err}"
        );
    }

    /// Typical messages and variants of them decoded one after another with one index, so
    /// that many match the kept shape: the same tags with other values (valid or not), and
    /// now and then a changed tag or MsgType, a field dropped or repeated. Each decodes as
    /// the reference decoder decodes it, and is marked valid only when the table walk
    /// accepts it; both outcomes must occur on shape matches.
    #[test]
    fn shape_matches_agree_with_the_reference() {
        let bases = [
            "35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|1=ACCT-7|11=ORD-000123456|21=1|38=1500|40=2|44=101.25|54=1|55=INTC|59=0|60=20240301-12:00:00.000|",
            "35=F|34=9|49=C|52=20240301-12:00:00|56=V|11=B|41=A|54=2|55=X|60=20240301-12:00:00|",
            "35=0|34=3|49=C|52=20240301-12:00:00|56=V|",
            "35=8|34=4|43=Y|49=V|52=20240301-12:00:00|56=C|122=20240301-11:00:00|6=0|14=0|17=E1|37=O1|39=0|54=1|55=X|150=0|151=10|",
        ];
        let bad = [
            "",
            "1.2.3",
            "X",
            "-",
            "20241301-12:00:00",
            "99",
            "Y",
            "ABC DEF",
            "0",
            "+1",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut idx = FieldIndex::for_message_size(8192);
        let mut scratch = FieldIndex::for_message_size(8192);
        let (mut hits, mut hits_valid, mut hits_invalid) = (0, 0, 0);
        for round in 0..20_000 {
            let base = bases[(round / 50) % bases.len()];
            let mut f: Vec<(String, String)> = base
                .split('|')
                .filter(|x| !x.is_empty())
                .map(|x| {
                    let (t, v) = x.split_once('=').unwrap();
                    (t.to_string(), v.to_string())
                })
                .collect();
            for _ in 0..rng.below(3) {
                let i = rng.below(f.len());
                let tag: u32 = f[i].0.parse().unwrap();
                f[i].1 = if rng.chance(60) {
                    valid_value(tag, &mut rng)
                } else {
                    rng.pick(&bad).to_string()
                };
            }
            match rng.below(40) {
                0 => {
                    let i = rng.below(f.len());
                    f[i].0 = rng
                        .pick(&["1", "11", "58", "34", "453", "5000", "10", "012"])
                        .into();
                }
                1 => {
                    f.remove(rng.below(f.len()));
                }
                2 => {
                    let i = rng.below(f.len());
                    let dup = f[i].clone();
                    f.insert(rng.below(f.len() + 1), dup);
                }
                3 => f[0].1 = rng.pick(&["D", "F", "8", "0", "G", "DD"]).into(),
                _ => {}
            }
            let body: String = f.iter().map(|(t, v)| format!("{t}={v}|")).collect();
            let m = build(&body);
            let FrameStatus::Complete(fr) = next_frame(&m, 8192) else {
                continue;
            };
            let hit = idx.shape.decode(&m, &mut scratch.fields).is_some();
            let mut ref_idx = FieldIndex::for_message_size(8192);
            let new = decode(&m, &fr, &mut idx);
            let old = reference::decode(&m, &fr, &mut ref_idx);
            let text = String::from_utf8_lossy(&m).replace('\x01', "|");
            match (&new, &old) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(observable(a), observable(b), "{text}");
                    let mut seen = crate::dict::TagSet::EMPTY;
                    let full = crate::dict::validate_table_walk(a, &mut seen);
                    if a.passed_one_pass_check() {
                        assert_eq!(full, Ok(()), "marked valid: {text}");
                    }
                    assert_eq!(crate::dict::validate(a, &mut seen), full, "{text}");
                    if hit {
                        hits += 1;
                        if full.is_ok() {
                            assert!(a.passed_one_pass_check(), "{text}");
                            hits_valid += 1;
                        } else {
                            hits_invalid += 1;
                        }
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
                _ => panic!("{text}: {:?} vs {:?}", new.map(|_| ()), old.map(|_| ())),
            }
        }
        eprintln!("shape matches {hits}: valid {hits_valid}, invalid {hits_invalid}");
        assert!(
            hits_valid >= 2_000 && hits_invalid >= 2_000,
            "{hits_valid} {hits_invalid}"
        );
    }

    /// The typical order passes the one-pass check (the benchmark's case is the fast case).
    #[test]
    fn typical_orders_pass_in_one_pass() {
        let m = build("35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|1=ACCT-7|11=ORD-000123456|21=1|38=1500|40=2|44=101.25|54=1|55=INTC|59=0|60=20240301-12:00:00.000|");
        with_msg(&m, |r| assert!(r.unwrap().passed_one_pass_check()));
        // ... through the three-loop path, not the general decoder.
        let mut idx = FieldIndex::for_message_size(4096);
        let (n, info) = decode_common(&m, &mut idx.fields).expect("common path");
        assert_eq!((n, info.body_first, info.trailer_first), (18, 7, 17));
        assert!(info.valid);
        // A group is left to the table walk, which accepts it.
        let m = build("35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|11=A|21=1|38=1|40=1|54=1|55=X|60=20240301-12:00:00|453=1|448=P|447=D|452=3|");
        with_msg(&m, |r| {
            let msg = r.unwrap();
            assert!(!msg.passed_one_pass_check());
            let mut seen = crate::dict::TagSet::EMPTY;
            assert_eq!(crate::dict::validate(&msg, &mut seen), Ok(()));
        });
        // A missing required field is not marked.
        let m = build("35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|21=1|38=1|40=1|54=1|55=X|60=20240301-12:00:00|");
        with_msg(&m, |r| assert!(!r.unwrap().passed_one_pass_check()));
    }

    #[test]
    fn first_three_fields_enforced() {
        // BodyLength computed, but 34 sits where 35 must be.
        let m = build("34=3|35=0|");
        with_msg(&m, |r| {
            assert_eq!(r.unwrap_err(), DecodeError::FirstFieldsOutOfOrder)
        });
    }
}

/// Iterates `(tag, value)` pairs of raw `tag=value<SOH>` bytes without an index: the field
/// decoder on its own, for callers that only need a few fields (such as identifying a Logon).
/// Stops at the first malformed field with an error.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

/// Iterator returned by [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            self.pos = self.buf.len();
            return Some(Err(DecodeError::GarbledField));
        };
        let Some(tag) = parse_u64(&rest[..eq]).filter(|&t| t <= u32::MAX as u64) else {
            self.pos = self.buf.len();
            return Some(Err(DecodeError::GarbledField));
        };
        let Some(soh) = rest[eq + 1..].iter().position(|&b| b == SOH) else {
            self.pos = self.buf.len();
            return Some(Err(DecodeError::GarbledField));
        };
        self.pos += eq + 1 + soh + 1;
        Some(Ok((tag as u32, &rest[eq + 1..eq + 1 + soh])))
    }
}

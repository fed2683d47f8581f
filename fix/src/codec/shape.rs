//! The last valid message's shape, so that the next message with the same shape is decoded
//! without redoing what depends only on the shape.
//!
//! Why: a FIX engine writes every message of a type with the same tags in the same order
//! (an order entry client's NewOrderSingles differ in values, not in layout). Everything the
//! dictionary check decides from the tags alone (sections and their order, tag numbers, tags
//! allowed for the message type, required tags present, no tag repeated) is the same for two
//! messages of the same MsgType with the same tag sequence. So once a message has passed the
//! one-pass check, its shape is kept; a message that matches it byte for byte in every
//! `tag=` prefix and in MsgType needs per field only: find the value's end, store the field,
//! check the value (format, enumeration), record the header facts. The tag is not parsed,
//! looked up, or entered in a seen-set.
//!
//! The rule that keeps behaviour unchanged: a message that does not match in every prefix,
//! in MsgType and in length is decoded by the normal path from the start, which may then
//! replace the shape. A match gives the same fields, header facts and validity as the normal
//! path (property-tested in `decode.rs`).

use super::decode::{FieldRef, HeaderInfo};
use super::num::parse_u64;
use super::scan::{chunk_masks, soh_from};
use crate::dict::one_pass::{self, role, FieldSpec};

/// Longest message (in fields) whose shape is kept.
const MAX_FIELDS: usize = 40;

/// Valid messages of another shape in a row (no match in between) after which the last one's
/// shape replaces the kept one. Recording a shape costs about a third of decoding the message;
/// waiting for a few misses keeps a stream where layouts take turns (several clients' engines
/// on one gateway thread) from paying it on every message, and keeps the dominant layout
/// when other messages (a heartbeat) come in between.
const ADOPT_AFTER: u32 = 4;

/// One field of a shape.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The bytes `tag=` as a little-endian word (at most five bytes: four digits and `=`).
    prefix: u64,
    /// Mask of the prefix's bytes.
    mask: u64,
    /// Length of the prefix: the value starts this many bytes after the field.
    value_at: u8,
    /// The tag.
    tag: u32,
    /// The tag's dictionary facts (value check, header role).
    spec: FieldSpec,
}

const NO_STEP: Step = Step {
    prefix: 0,
    mask: 0,
    value_at: 0,
    tag: 0,
    spec: one_pass::NO_SPEC,
};

/// The shape of the last message that passed the one-pass check (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Fields in the shape; 0 when there is none.
    len: usize,
    steps: [Step; MAX_FIELDS],
    msg_type: [u8; 8],
    msg_type_len: usize,
    body_first: u16,
    trailer_first: u16,
    /// Valid messages of another shape since the last match or adoption.
    misses: u32,
}

impl Shape {
    /// No shape yet.
    pub(crate) fn empty() -> Self {
        Shape {
            len: 0,
            steps: [NO_STEP; MAX_FIELDS],
            msg_type: [0; 8],
            msg_type_len: 0,
            body_first: 0,
            trailer_first: 0,
            misses: 0,
        }
    }

    /// Decodes `buf` (a frame ending with SOH) into `fields` when it has this shape; `None`
    /// otherwise, having decided nothing.
    #[inline(always)]
    pub(crate) fn decode(
        &mut self,
        buf: &[u8],
        fields: &mut [FieldRef],
    ) -> Option<(usize, HeaderInfo)> {
        let n = self.len;
        if n == 0 {
            return None;
        }
        let fields = fields.get_mut(..n)?;
        let len = buf.len();
        let mut info = HeaderInfo::default();
        let mut failed = false;
        let mut p = 0usize;
        for (i, (slot, st)) in fields.iter_mut().zip(&self.steps[..n]).enumerate() {
            if p >= len {
                return None;
            }
            let (soh, w) = soh_and_word(buf, p)?;
            if (w ^ st.prefix) & st.mask != 0 {
                return None;
            }
            // The prefix holds no SOH, so the chunk's first SOH closes this value.
            let start = p + st.value_at as usize;
            let end = if soh != 0 {
                p + soh.trailing_zeros() as usize
            } else {
                soh_from(buf, p + 16).ok()?
            };
            *slot = FieldRef {
                tag: st.tag,
                start: start as u32,
                end: end as u32,
            };
            if st.spec.role != role::NONE {
                let r = (start as u32, end as u32);
                let v = &buf[start..end];
                match st.spec.role {
                    role::MSG_TYPE => {
                        if *v != self.msg_type[..self.msg_type_len] {
                            return None;
                        }
                        info.msg_type = r;
                    }
                    role::SEQ_NUM => {
                        info.has_seq_num = true;
                        info.seq_num = parse_u64(v);
                    }
                    role::SENDER => info.sender = Some(r),
                    role::TARGET => info.target = Some(r),
                    role::SENDING_TIME => info.sending_time = Some(r),
                    role::ORIG_SENDING_TIME => info.orig_sending_time = Some(r),
                    role::POSS_DUP => info.poss_dup = v == b"Y",
                    role::POSS_RESEND => info.poss_resend = v == b"Y",
                    _ => {}
                }
            }
            // BeginString, BodyLength and MsgType are the framer's and the decoder's.
            if i >= 3 {
                failed |= !one_pass::value_ok(st.tag, st.spec, buf, start, end);
            }
            p = end + 1;
        }
        if p != len {
            return None;
        }
        info.body_first = self.body_first;
        info.trailer_first = self.trailer_first;
        info.valid = !failed;
        self.misses = 0;
        Some((n, info))
    }

    /// A message of another shape that the one-pass check accepted (`info`): its shape is
    /// kept when there is none yet, or after [`ADOPT_AFTER`] such messages in a row.
    #[inline(always)]
    pub(crate) fn offer(&mut self, buf: &[u8], fields: &[FieldRef], info: &HeaderInfo) {
        self.misses += 1;
        if self.len == 0 || self.misses >= ADOPT_AFTER {
            self.misses = 0;
            self.record(buf, fields, info);
        }
    }

    /// Keeps the shape of `fields`, a message of `buf` the one-pass check accepted (`info`),
    /// decoded as contiguous `tag=value<SOH>` fields with tags of at most four digits.
    #[cold]
    #[inline(never)]
    fn record(&mut self, buf: &[u8], fields: &[FieldRef], info: &HeaderInfo) {
        self.len = 0;
        if !info.valid || fields.len() > MAX_FIELDS || fields.len() < 3 {
            return;
        }
        let mt = info.msg_type;
        let mt = &buf[mt.0 as usize..mt.1 as usize];
        if mt.len() > self.msg_type.len() {
            return;
        }
        let mut p = 0usize;
        for (st, f) in self.steps.iter_mut().zip(fields) {
            let value_at = f.start as usize - p;
            if value_at > 5 {
                return;
            }
            // The prefix as one word load where eight bytes are readable (every field but
            // the last few of the frame); the mask keeps its bytes only.
            let word = match buf.get(p..p + 8) {
                Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
                None => {
                    let mut b = [0u8; 8];
                    b[..value_at].copy_from_slice(&buf[p..f.start as usize]);
                    u64::from_le_bytes(b)
                }
            };
            let mask = u64::MAX >> (64 - 8 * value_at);
            *st = Step {
                prefix: word & mask,
                mask,
                value_at: value_at as u8,
                tag: f.tag,
                spec: one_pass::spec(f.tag),
            };
            p = f.end as usize + 1;
        }
        self.msg_type[..mt.len()].copy_from_slice(mt);
        self.msg_type_len = mt.len();
        self.body_first = info.body_first;
        self.trailer_first = info.trailer_first;
        self.len = fields.len();
    }
}

/// The SOH mask of the 16 bytes from `p` (bit i for byte `p + i`) and the first eight of
/// them as a word; near the end of the frame, its last 16 bytes shifted so that bit 0 is `p`
/// (bytes past the end read as zero). `None` for a frame shorter than 16 bytes.
#[inline(always)]
fn soh_and_word(buf: &[u8], p: usize) -> Option<(u32, u64)> {
    match buf.get(p..p + 16) {
        Some(chunk) => {
            let chunk: &[u8; 16] = chunk.try_into().expect("16 bytes");
            let (_, soh) = chunk_masks(chunk);
            Some((
                soh,
                u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")),
            ))
        }
        None => {
            let chunk: &[u8; 16] = buf.get(buf.len().checked_sub(16)?..)?.try_into().ok()?;
            let (_, soh) = chunk_masks(chunk);
            let skip = p - (buf.len() - 16);
            Some((
                soh >> skip,
                (u128::from_le_bytes(*chunk) >> (8 * skip)) as u64,
            ))
        }
    }
}

//! Validation fused into decoding: what the decoder checks while it splits a message, so that
//! a valid message needs no second walk over its fields.
//!
//! The rule that keeps behaviour unchanged: this check may only *accept*. It marks a message
//! valid only when every condition under which [`super::validate`]'s table walk returns `Ok`
//! is met; anything it does not handle itself (repeating groups, a repeated tag anywhere,
//! fields out of order, a tag it does not know...) leaves the message unmarked, and
//! [`super::validate`] then runs the full walk, which finds the problem and the
//! QuickFIX-compatible Reject. The answer never changes; only the cost of the common case.
//!
//! What makes it cheap: one 4-byte [`FieldSpec`] per tag, built at compile time from the
//! generated dictionary, tells in one load the tag's section (header, body, trailer), the
//! check its value needs (most are a length test or a bitmask test), and which header fact it
//! carries; the message type's allowed tags and required tags are bitsets; repeated tags are
//! found with one bitset of every tag seen.

use super::fix44::{self, MAX_TAG};
use super::{field_problem, message_def, Enum, FieldType, MessageDef, TagSet};
use crate::codec::num::{is_decimal, is_int};
use crate::codec::scan::{bytes_equal, non_digits};
use crate::codec::time::is_timestamp;

/// Section of a tag: body.
pub(crate) const BODY: u8 = 0;
/// Section of a tag: standard header.
pub(crate) const HEADER: u8 = 1;
/// Section of a tag: standard trailer.
pub(crate) const TRAILER: u8 = 2;

/// Value checks (`FieldSpec::kind`). Each equals `field_problem(tag, v).is_none()` for the
/// tags that get it, except `UNKNOWN` and `GROUP`, which never pass here.
mod kind {
    /// Not in the dictionary.
    pub const UNKNOWN: u8 = 0;
    /// Any non-empty value (String, data, LocalMktDate, MultipleValueString without values).
    pub const STRING: u8 = 1;
    /// Exactly one byte.
    pub const CHAR: u8 = 2;
    /// One byte among the enumerated characters (`FieldSpec::chars`).
    pub const CHAR_ENUM: u8 = 3;
    /// `Y` or `N`.
    pub const BOOLEAN: u8 = 4;
    /// `[-]digits`.
    pub const INT: u8 = 5;
    /// `[-]digits[.digits]`.
    pub const FLOAT: u8 = 6;
    /// UTCTimestamp.
    pub const TIMESTAMP: u8 = 7;
    /// NumInGroup: groups are walked by the full validator.
    pub const GROUP: u8 = 8;
    /// Anything rarer (multi-character enumerations, time-only, date-only...): the table
    /// walk's own per-field check.
    pub const GENERIC: u8 = 9;
}

/// Header facts the decoder records (`FieldSpec::role`).
pub(crate) mod role {
    /// Nothing to record.
    pub const NONE: u8 = 0;
    /// MsgSeqNum (34).
    pub const SEQ_NUM: u8 = 1;
    /// SenderCompID (49).
    pub const SENDER: u8 = 2;
    /// TargetCompID (56).
    pub const TARGET: u8 = 3;
    /// SendingTime (52).
    pub const SENDING_TIME: u8 = 4;
    /// OrigSendingTime (122).
    pub const ORIG_SENDING_TIME: u8 = 5;
    /// PossDupFlag (43).
    pub const POSS_DUP: u8 = 6;
    /// PossResend (97).
    pub const POSS_RESEND: u8 = 7;
    /// MsgType (35).
    pub const MSG_TYPE: u8 = 8;
}

/// Everything the one-pass decoder needs to know about a tag, in one 4-byte load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(4))]
pub(crate) struct FieldSpec {
    /// Value check (`kind::*`).
    pub kind: u8,
    /// Section (`BODY`, `HEADER`, `TRAILER`).
    pub class: u8,
    /// Index into [`CHAR_SETS`] for `CHAR_ENUM`.
    pub chars: u8,
    /// Header fact carried (`role::*`).
    pub role: u8,
}

/// Tags covered by [`FIELD_SPECS`]; higher tags are unknown body tags.
const SPEC_TAGS: usize = 1024;
const _: () = assert!((MAX_TAG as usize) < SPEC_TAGS);

/// The spec of a tag the dictionary does not define (a placeholder where one is needed).
pub(crate) const NO_SPEC: FieldSpec = UNKNOWN;

const UNKNOWN: FieldSpec = FieldSpec {
    kind: kind::UNKNOWN,
    class: BODY,
    chars: 0,
    role: role::NONE,
};

/// Allowed single characters of each `CHAR_ENUM` tag (bit = byte value), and per tag the
/// index of its set in the first table.
static CHAR_TABLES: ([u128; 256], [u8; SPEC_TAGS]) = {
    let mut sets = [0u128; 256];
    let mut index = [0u8; SPEC_TAGS];
    let mut n = 0;
    let mut tag = 0;
    while tag <= MAX_TAG as usize {
        if let Enum::Chars(mask) = fix44::FIELD_ENUMS[tag] {
            assert!(
                n < 256,
                "more single-character enumerations than an index byte holds"
            );
            sets[n] = mask;
            index[tag] = n as u8;
            n += 1;
        }
        tag += 1;
    }
    (sets, index)
};

/// Bits of the bytes `0`..=`9`, `Y`, `N` in a character set.
const DIGIT_CHARS: u128 = 0x3ff << b'0';
const YN_CHARS: u128 = (1 << b'Y') | (1 << b'N');

const fn kind_of(ty: FieldType, e: &Enum) -> u8 {
    match (ty, e) {
        (FieldType::Undefined, _) => kind::UNKNOWN,
        (FieldType::NumInGroup, _) => kind::GROUP,
        (
            FieldType::String
            | FieldType::Data
            | FieldType::LocalMktDate
            | FieldType::MultipleValueString,
            Enum::None,
        ) => kind::STRING,
        (FieldType::Char, Enum::None) => kind::CHAR,
        (FieldType::Boolean, Enum::None) => kind::BOOLEAN,
        (FieldType::Int, Enum::None) => kind::INT,
        (FieldType::Float, Enum::None) => kind::FLOAT,
        (FieldType::UtcTimestamp, Enum::None) => kind::TIMESTAMP,
        // Formats any single byte of the set satisfies: the set test alone decides.
        (
            FieldType::String | FieldType::Data | FieldType::LocalMktDate | FieldType::Char,
            Enum::Chars(_),
        ) => kind::CHAR_ENUM,
        (FieldType::Boolean, Enum::Chars(m)) if *m & !YN_CHARS == 0 => kind::CHAR_ENUM,
        (FieldType::Int | FieldType::Float, Enum::Chars(m)) if *m & !DIGIT_CHARS == 0 => {
            kind::CHAR_ENUM
        }
        _ => kind::GENERIC,
    }
}

/// [`FieldSpec`] of every tag below 1024.
static FIELD_SPECS: [FieldSpec; SPEC_TAGS] = {
    let mut t = [UNKNOWN; SPEC_TAGS];
    let mut tag = 0;
    while tag <= MAX_TAG as usize {
        let w = tag / 64;
        let bit = 1u64 << (tag % 64);
        t[tag] = FieldSpec {
            kind: kind_of(fix44::FIELD_TYPES[tag], &fix44::FIELD_ENUMS[tag]),
            class: if fix44::HEADER.0[w] & bit != 0 {
                HEADER
            } else if fix44::TRAILER.0[w] & bit != 0 {
                TRAILER
            } else {
                BODY
            },
            chars: CHAR_TABLES.1[tag],
            role: match tag {
                34 => role::SEQ_NUM,
                35 => role::MSG_TYPE,
                49 => role::SENDER,
                56 => role::TARGET,
                52 => role::SENDING_TIME,
                122 => role::ORIG_SENDING_TIME,
                43 => role::POSS_DUP,
                97 => role::POSS_RESEND,
                _ => role::NONE,
            },
        };
        tag += 1;
    }
    t
};

/// The [`FieldSpec`] of `tag`.
#[inline(always)]
pub(crate) fn spec(tag: u32) -> FieldSpec {
    match FIELD_SPECS.get(tag as usize) {
        Some(s) => *s,
        None => UNKNOWN,
    }
}

/// True when the value `buf[start..end]` of `tag` passes its dictionary checks (present,
/// format, enumeration), as `field_problem` decides; false for `GROUP` and `UNKNOWN` tags.
/// `buf` is the whole frame, so short numbers are checked with one word load.
#[inline(always)]
pub(crate) fn value_ok(tag: u32, s: FieldSpec, buf: &[u8], start: usize, end: usize) -> bool {
    let v = &buf[start..end];
    if v.is_empty() {
        return false;
    }
    match s.kind {
        kind::STRING => true,
        kind::CHAR => v.len() == 1,
        kind::CHAR_ENUM => {
            v.len() == 1 && v[0] < 128 && (CHAR_TABLES.0[s.chars as usize] >> v[0]) & 1 != 0
        }
        kind::BOOLEAN => v == b"Y" || v == b"N",
        kind::INT => number_ok(buf, start, end, false),
        kind::FLOAT => number_ok(buf, start, end, true),
        kind::TIMESTAMP => is_timestamp(v),
        kind::GENERIC => field_problem(tag, v).is_none(),
        _ => false,
    }
}

/// `is_int` (or `is_decimal` when `dot`) of the non-empty `buf[start..end]`: for up to eight
/// bytes with eight readable, every byte is classified at once in one word.
#[inline(always)]
fn number_ok(buf: &[u8], start: usize, end: usize, dot: bool) -> bool {
    let n = end - start;
    match buf.get(start..start + 8) {
        Some(b) if n <= 8 => {
            let w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            let keep = 0x8080_8080_8080_8080u64 >> (64 - 8 * n);
            let minus = bytes_equal(w, b'-') & 0x80;
            let dots = if dot { bytes_equal(w, b'.') & keep } else { 0 };
            let non_digit = non_digits(w) & keep;
            non_digit & !minus & !dots == 0 && dots & dots.wrapping_sub(1) == 0 && non_digit != keep
        }
        _ => {
            let v = &buf[start..end];
            if dot {
                is_decimal(v)
            } else {
                is_int(v)
            }
        }
    }
}

static NO_TAGS: TagSet = TagSet::EMPTY;

/// State of the one-pass check over one message.
#[derive(Debug)]
pub(crate) struct OnePass {
    /// Every tag seen (below 1024; higher tags alias, which only ever adds a repeat).
    seen: [u64; SPEC_TAGS / 64],
    /// Non-zero when a tag was seen twice.
    repeated: u64,
    /// Set by any field that failed or was not handled.
    failed: bool,
    def: Option<&'static MessageDef>,
    allowed: &'static TagSet,
}

impl OnePass {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        OnePass {
            seen: [0; SPEC_TAGS / 64],
            repeated: 0,
            failed: false,
            def: None,
            allowed: &NO_TAGS,
        }
    }

    /// The message type (the third field) is known: its definition decides the allowed and
    /// required tags. An unknown type allows no body tag, so the message stays unmarked.
    #[inline(always)]
    pub(crate) fn msg_type(&mut self, value: &[u8]) {
        self.def = message_def(value);
        self.allowed = self.def.map_or(&NO_TAGS, |d| &d.fields);
    }

    /// Notes that `tag` appeared.
    #[inline(always)]
    pub(crate) fn seen(&mut self, tag: u32) {
        let t = (tag as usize) & (SPEC_TAGS - 1);
        let bit = 1u64 << (t % 64);
        let w = &mut self.seen[t / 64];
        self.repeated |= *w & bit;
        *w |= bit;
    }

    /// Checks a field after the first three (BeginString, BodyLength and MsgType are checked
    /// by the framer and the decoder).
    #[inline(always)]
    pub(crate) fn field(&mut self, tag: u32, s: FieldSpec, buf: &[u8], start: usize, end: usize) {
        let ok =
            value_ok(tag, s, buf, start, end) && (s.class != BODY || self.allowed.contains(tag));
        self.failed |= !ok;
    }

    /// True when the message is valid for sure; `clean_structure` says the decoder found no
    /// field out of order and no negative tag.
    #[inline(always)]
    pub(crate) fn passed(&self, clean_structure: bool) -> bool {
        let Some(def) = self.def else { return false };
        clean_structure
            && !self.failed
            && self.repeated == 0
            && def
                .required_bits
                .iter()
                .all(|&(w, bits)| self.seen[w as usize] & bits == bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for s in [
            "",
            "YY",
            "12",
            "-1",
            "-",
            "1-",
            "0.5",
            ".5",
            "5.",
            "-.5",
            "1.2.3",
            "--1",
            "+1",
            "12345678",
            "123456789",
            "1234567.",
            "-1234567",
            "1e5",
            "CS",
            "BOO",
            "1 2",
            "1 ?",
            "20240301-12:00:00.000",
            "20240301-12:00:00",
            "20241301-12:00:00",
            "12:30:00",
            "20240229",
            "FIX.4.4",
            "ABC DEF",
            "-0",
            "00",
            "9999999999999999999999",
        ] {
            v.push(s.as_bytes().to_vec());
        }
        v
    }

    /// The one-pass value check answers exactly as the table walk's per-field check, for
    /// every tag of the dictionary and values of every shape, whether or not more bytes
    /// follow the value (word loads) — except groups and unknown tags, which it leaves to
    /// the table walk.
    #[test]
    fn value_checks_agree_with_the_table_walk() {
        for tag in 0..1100u32 {
            let s = spec(tag);
            for v in samples() {
                for tail in [&b""[..], b"\x0110=000\x01"] {
                    let mut buf = v.clone();
                    buf.extend_from_slice(tail);
                    let fast = value_ok(tag, s, &buf, 0, v.len());
                    let full = field_problem(tag, &v).is_none();
                    if s.kind == kind::GROUP || s.kind == kind::UNKNOWN {
                        assert!(!fast, "tag {tag} {v:?}");
                    } else {
                        assert_eq!(fast, full, "tag {tag} kind {} value {v:?}", s.kind);
                    }
                }
            }
        }
    }

    #[test]
    fn specs_follow_the_dictionary() {
        assert_eq!(core::mem::size_of::<FieldSpec>(), 4);
        assert_eq!(spec(54).kind, kind::CHAR_ENUM);
        assert_eq!(spec(44).kind, kind::FLOAT);
        assert_eq!(spec(60).kind, kind::TIMESTAMP);
        assert_eq!(spec(453).kind, kind::GROUP);
        assert_eq!(spec(35).kind, kind::GENERIC);
        assert_eq!((spec(34).class, spec(34).role), (HEADER, role::SEQ_NUM));
        assert_eq!(spec(10).class, TRAILER);
        assert_eq!(spec(5000), UNKNOWN);
        for tag in 0..SPEC_TAGS as u32 {
            assert_eq!(spec(tag).class == HEADER, super::super::is_header_tag(tag));
            assert_eq!(
                spec(tag).class == TRAILER,
                super::super::is_trailer_tag(tag)
            );
        }
    }

    /// `required_bits` (generated) holds exactly the header's and the body's required tags.
    #[test]
    fn required_bits_match_the_required_lists() {
        for def in fix44::MESSAGES.iter() {
            let mut want = TagSet::EMPTY;
            for &t in fix44::HEADER_REQUIRED.iter().chain(def.required) {
                want.insert(t);
            }
            for &t in def.required {
                // One set of seen tags serves header and body only while they are disjoint.
                assert!(!super::super::is_header_tag(t) && !super::super::is_trailer_tag(t));
            }
            let mut got = TagSet::EMPTY;
            for &(w, bits) in def.required_bits {
                got.0[w as usize] |= bits;
            }
            assert_eq!(got, want, "{}", def.name);
        }
    }
}

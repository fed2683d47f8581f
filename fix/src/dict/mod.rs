//! The FIX 4.4 data dictionary and the validation QuickFIX performs with it.
//!
//! The tables in [`fix44`] are generated from QuickFIX's own `FIX44.xml` by
//! `fix/dict/gen_fix44.py` and committed, so this crate validates exactly what QuickFIX
//! counterparties validate: field types and formats, enumerations, required fields per message
//! type, tags allowed per message type, repeating groups and their counts. Lookups are array
//! indexing and bitset tests; nothing allocates.
//!
//! Order of checks (QuickFIX `DataDictionary::validate`): structure (header, body, trailer in
//! that order) -> MsgType known -> required fields -> per field: repeated, has a value, data
//! format, enumerated value, tag known, tag allowed for the message type, group count.
//! One difference: QuickFIX visits the fields of each section in ascending tag order, this
//! code in wire order, so when a message has several problems the one reported may differ;
//! a message with a single problem gets the same Reject.

#[allow(missing_docs)]
pub mod fix44;
pub(crate) mod one_pass;

use crate::codec::decode::{FieldRef, Message};
use crate::codec::num::{is_decimal, is_int};
use crate::codec::time::{is_date_only, is_time_only, is_timestamp};
use crate::session::reject::SessionRejectReason;
use crate::tags;

/// A field's FIX data type, reduced to what validation distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Tag not defined by the dictionary.
    Undefined,
    /// int, Length, SeqNum, DayOfMonth, TagNum.
    Int,
    /// NumInGroup: an int that counts group instances.
    NumInGroup,
    /// float, Qty, Price, PriceOffset, Amt, Percentage.
    Float,
    /// char: exactly one byte.
    Char,
    /// Boolean: Y or N.
    Boolean,
    /// UTCTimestamp.
    UtcTimestamp,
    /// UTCTimeOnly.
    UtcTimeOnly,
    /// UTCDateOnly.
    UtcDateOnly,
    /// LocalMktDate: not format-checked (as QuickFIX).
    LocalMktDate,
    /// String and friends: any bytes.
    String,
    /// MultipleValueString: space-separated enumerated values.
    MultipleValueString,
    /// data: raw bytes.
    Data,
}

/// Allowed values of an enumerated field.
#[derive(Debug, Clone, Copy)]
pub enum Enum {
    /// Not enumerated.
    None,
    /// Single ASCII characters, as a bitmask indexed by byte value.
    Chars(u128),
    /// Any of these values.
    Values(&'static [&'static [u8]]),
    /// Space-separated list, each element one of these values.
    Multi(&'static [&'static [u8]]),
}

/// A set of tags up to 959, as a bitset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSet(pub [u64; 15]);

impl TagSet {
    /// The empty set.
    pub const EMPTY: TagSet = TagSet([0; 15]);
    /// Membership; tags beyond the set's range are never members.
    #[inline]
    pub fn contains(&self, tag: u32) -> bool {
        let w = (tag / 64) as usize;
        w < 15 && self.0[w] & (1u64 << (tag % 64)) != 0
    }
    /// Inserts `tag`, returning false when it was already present (or out of range).
    #[inline]
    pub fn insert(&mut self, tag: u32) -> bool {
        let w = (tag / 64) as usize;
        if w >= 15 {
            return false;
        }
        let bit = 1u64 << (tag % 64);
        let fresh = self.0[w] & bit == 0;
        self.0[w] |= bit;
        fresh
    }
}

/// A repeating group as the dictionary defines it within one message type.
#[derive(Debug)]
pub struct GroupDef {
    /// NumInGroup tag that introduces the group.
    pub count_tag: u32,
    /// First field of every instance.
    pub delimiter: u32,
    /// Member tags (sorted), nested groups' count tags included.
    pub members: &'static [u32],
    /// Member tags every instance must carry (sorted).
    pub required: &'static [u32],
    /// Nested groups.
    pub groups: &'static [GroupDef],
}

impl GroupDef {
    #[inline]
    fn is_member(&self, tag: u32) -> bool {
        self.members.binary_search(&tag).is_ok()
    }
}

/// A message type as the dictionary defines it.
#[derive(Debug)]
pub struct MessageDef {
    /// MsgType value.
    pub msg_type: &'static [u8],
    /// Name (e.g. `NewOrderSingle`).
    pub name: &'static str,
    /// Session-level message.
    pub admin: bool,
    /// Tags allowed at the top level of the body.
    pub fields: TagSet,
    /// Top-level tags that must be present (sorted).
    pub required: &'static [u32],
    /// The standard header's required tags and [`required`](Self::required), as the non-zero
    /// words of a [`TagSet`] (`(word index, bits)`): the one-pass check tests them with a
    /// load and a mask per word instead of a walk over the list.
    pub required_bits: &'static [(u8, u64)],
    /// Top-level repeating groups.
    pub groups: &'static [GroupDef],
}

/// True for standard header tags (QuickFIX FIX44.xml `<header>`).
#[inline]
pub fn is_header_tag(tag: u32) -> bool {
    fix44::HEADER.contains(tag)
}

/// True for standard trailer tags.
#[inline]
pub fn is_trailer_tag(tag: u32) -> bool {
    fix44::TRAILER.contains(tag)
}

/// The dictionary's type of `tag`.
#[inline]
pub fn field_type(tag: u32) -> FieldType {
    fix44::FIELD_TYPES
        .get(tag as usize)
        .copied()
        .unwrap_or(FieldType::Undefined)
}

/// The dictionary's name of `tag`, when defined.
pub fn field_name(tag: u32) -> Option<&'static str> {
    fix44::FIELD_NAMES
        .get(tag as usize)
        .copied()
        .filter(|n| !n.is_empty())
}

/// The definition of a message type, when the dictionary has it.
#[inline]
pub fn message_def(msg_type: &[u8]) -> Option<&'static MessageDef> {
    fix44::message_index(msg_type).map(|i| &fix44::MESSAGES[i])
}

/// A dictionary violation: the SessionRejectReason and the tag it concerns (371).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// SessionRejectReason (373).
    pub reason: SessionRejectReason,
    /// RefTagID (371), when the problem concerns one tag. Negative for `-1=...` style tags.
    pub tag: Option<i64>,
}

impl Violation {
    #[inline]
    fn at(reason: SessionRejectReason, tag: u32) -> Self {
        Violation {
            reason,
            tag: Some(tag as i64),
        }
    }
}

/// True when `value` has the syntax of `ty`.
#[inline]
pub fn is_valid_format(ty: FieldType, value: &[u8]) -> bool {
    match ty {
        FieldType::Int | FieldType::NumInGroup => is_int(value),
        FieldType::Float => is_decimal(value),
        FieldType::Char => value.len() == 1,
        FieldType::Boolean => value == b"Y" || value == b"N",
        FieldType::UtcTimestamp => is_timestamp(value),
        FieldType::UtcTimeOnly => is_time_only(value),
        FieldType::UtcDateOnly => is_date_only(value),
        _ => true,
    }
}

/// True when `value` is one of the enumerated values of `tag` (or `tag` is not enumerated).
#[inline]
pub fn is_valid_value(tag: u32, value: &[u8]) -> bool {
    let Some(e) = fix44::FIELD_ENUMS.get(tag as usize) else {
        return true;
    };
    match *e {
        Enum::None => true,
        Enum::Chars(mask) => value.len() == 1 && value[0] < 128 && mask & (1u128 << value[0]) != 0,
        Enum::Values(vals) => vals.contains(&value),
        Enum::Multi(vals) => value.split(|&b| b == b' ').all(|v| vals.contains(&v)),
    }
}

/// Tags with enumerated values, so the enum table is read only for them.
static HAS_ENUM: [bool; fix44::FIELD_ENUMS.len()] = {
    let mut t = [false; fix44::FIELD_ENUMS.len()];
    let mut i = 0;
    while i < t.len() {
        t[i] = !matches!(fix44::FIELD_ENUMS[i], Enum::None);
        i += 1;
    }
    t
};

/// Per-field checks shared by header, body and group fields: value present, format, enum.
/// Returns only the reason (one byte); callers attach the tag.
#[inline(always)]
fn field_problem(tag: u32, value: &[u8]) -> Option<SessionRejectReason> {
    if value.is_empty() {
        return Some(SessionRejectReason::TagSpecifiedWithoutValue);
    }
    let ty = field_type(tag);
    let format_ok = match ty {
        // Plain text (CompIDs, ClOrdID, Symbol...): nothing more to check.
        FieldType::String | FieldType::Data | FieldType::LocalMktDate => true,
        FieldType::Char => value.len() == 1,
        FieldType::Undefined => return Some(SessionRejectReason::InvalidTagNumber),
        _ => is_valid_format(ty, value),
    };
    if !format_ok {
        return Some(SessionRejectReason::IncorrectDataFormat);
    }
    if HAS_ENUM.get(tag as usize).copied().unwrap_or(false) {
        // Single-character enumerations (Side, OrdType, ...) checked inline; lists out of line.
        let ok = match fix44::FIELD_ENUMS[tag as usize] {
            Enum::Chars(mask) => {
                value.len() == 1 && value[0] < 128 && mask & (1u128 << value[0]) != 0
            }
            _ => is_valid_value(tag, value),
        };
        if !ok {
            return Some(SessionRejectReason::ValueIsIncorrect);
        }
    }
    None
}

#[inline(always)]
fn check_field(tag: u32, value: &[u8]) -> Result<(), Violation> {
    match field_problem(tag, value) {
        None => Ok(()),
        Some(reason) => Err(Violation::at(reason, tag)),
    }
}

/// Validates a decoded message against the FIX 4.4 dictionary.
///
/// `seen` is scratch space for repeated-tag detection. Returns the first violation found,
/// which the session turns into a Reject (35=3). A message the decoder already proved valid
/// in its single pass ([`Message::passed_one_pass_check`]) costs nothing here; any other runs
/// the full table walk, which finds and ranks the problem as QuickFIX does.
#[inline]
pub fn validate(msg: &Message<'_>, seen: &mut TagSet) -> Result<(), Violation> {
    if msg.passed_one_pass_check() {
        return Ok(());
    }
    validate_table_walk(msg, seen)
}

/// The full, table-driven validation (`seen` is cleared here): groups, and the QuickFIX order
/// of checks that decides which problem a Reject names.
#[cold]
#[inline(never)]
pub(crate) fn validate_table_walk(msg: &Message<'_>, seen: &mut TagSet) -> Result<(), Violation> {
    let info = msg.info();
    if let Some(tag) = info.out_of_order_tag {
        return Err(Violation::at(
            SessionRejectReason::TagSpecifiedOutOfRequiredOrder,
            tag,
        ));
    }
    let Some(def) = message_def(msg.msg_type()) else {
        return Err(Violation {
            reason: SessionRejectReason::InvalidMsgType,
            tag: None,
        });
    };
    // Required header fields, in the dictionary's (ascending) order. BeginString, BodyLength
    // and MsgType are guaranteed by the decoder; the others were noted while decoding.
    for (tag, present) in [
        (tags::MSG_SEQ_NUM, info.has_seq_num),
        (tags::SENDER_COMP_ID, msg.sender_comp_id().is_some()),
        (tags::SENDING_TIME, msg.sending_time().is_some()),
        (tags::TARGET_COMP_ID, msg.target_comp_id().is_some()),
    ] {
        if !present {
            return Err(Violation::at(SessionRejectReason::RequiredTagMissing, tag));
        }
    }
    *seen = TagSet::EMPTY;
    // Body first, remembering the first problem, so that required fields can be checked
    // against the set of tags seen; QuickFIX reports a missing required field before any
    // per-field problem, and so do we.
    let body = msg.body_fields();
    let mut first: Option<Violation> = None;
    if let Some(t) = info.negative_tag {
        first = Some(Violation {
            reason: SessionRejectReason::InvalidTagNumber,
            tag: Some(t as i64),
        });
    }
    let mut i = 0;
    while i < body.len() {
        let f = &body[i];
        i += 1;
        let fresh = seen.insert(f.tag);
        if first.is_some() {
            continue;
        }
        let value = msg.value(f);
        if !fresh && f.tag < 960 {
            first = Some(Violation::at(
                SessionRejectReason::TagAppearsMoreThanOnce,
                f.tag,
            ));
            continue;
        }
        if let Err(v) = check_field(f.tag, value) {
            first = Some(v);
            continue;
        }
        if !def.fields.contains(f.tag) {
            first = Some(Violation::at(
                SessionRejectReason::TagNotDefinedForMessageType,
                f.tag,
            ));
            continue;
        }
        if field_type(f.tag) == FieldType::NumInGroup {
            if let Some(g) = def.groups.iter().find(|g| g.count_tag == f.tag) {
                match walk_group(msg, body, i, g, value) {
                    Ok(next) => {
                        for m in &body[i..next] {
                            seen.insert(m.tag);
                        }
                        i = next;
                    }
                    Err(v) => first = Some(v),
                }
            }
        }
    }
    for &req in def.required {
        if !seen.contains(req) {
            return Err(Violation::at(SessionRejectReason::RequiredTagMissing, req));
        }
    }
    // Header (the three leading fields were checked by the framer and decoder) and trailer
    // (CheckSum was checked by the framer).
    for f in &msg.header_fields()[3.min(msg.header_fields().len())..] {
        if !seen.insert(f.tag) && f.tag < 960 {
            return Err(Violation::at(
                SessionRejectReason::TagAppearsMoreThanOnce,
                f.tag,
            ));
        }
        check_field(f.tag, msg.value(f))?;
    }
    for f in msg.trailer_fields() {
        if f.tag != tags::CHECK_SUM {
            check_field(f.tag, msg.value(f))?;
        }
    }
    match first {
        Some(v) => Err(v),
        None => Ok(()),
    }
}

/// Consumes the instances of group `g` starting at `body[i]` (just after the count field),
/// checks each field and the instance count, and returns the index after the group. Instance
/// boundaries follow QuickFIX: a new instance starts at the delimiter, or at a member already
/// set in the current instance; a non-member ends the group.
fn walk_group(
    msg: &Message<'_>,
    body: &[FieldRef],
    mut i: usize,
    g: &GroupDef,
    count_value: &[u8],
) -> Result<usize, Violation> {
    let declared = crate::codec::num::parse_u64(count_value).unwrap_or(u64::MAX);
    let mut instances = 0u64;
    let mut inst_seen = TagSet::EMPTY;
    let mut inst_start = i;
    while i < body.len() {
        let f = &body[i];
        let member = g.is_member(f.tag);
        if f.tag == g.delimiter || (member && (instances == 0 || !inst_seen.insert(f.tag))) {
            if instances > 0 {
                check_required(body, inst_start, i, g)?;
            }
            instances += 1;
            inst_seen = TagSet::EMPTY;
            inst_seen.insert(f.tag);
            inst_start = i;
        } else if !member {
            break;
        }
        let value = msg.value(f);
        check_field(f.tag, value)?;
        i += 1;
        if let Some(sub) = g.groups.iter().find(|s| s.count_tag == f.tag) {
            i = walk_group(msg, body, i, sub, value)?;
        }
    }
    if instances > 0 {
        check_required(body, inst_start, i, g)?;
    }
    if instances != declared {
        return Err(Violation::at(
            SessionRejectReason::IncorrectNumInGroupCount,
            g.count_tag,
        ));
    }
    Ok(i)
}

fn check_required(
    body: &[FieldRef],
    start: usize,
    end: usize,
    g: &GroupDef,
) -> Result<(), Violation> {
    for &req in g.required {
        if !body[start..end].iter().any(|f| f.tag == req) {
            return Err(Violation::at(SessionRejectReason::RequiredTagMissing, req));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_agree_with_the_specification() {
        assert_eq!(field_type(44), FieldType::Float);
        assert_eq!(field_type(54), FieldType::Char);
        assert_eq!(field_type(60), FieldType::UtcTimestamp);
        assert_eq!(field_type(386), FieldType::NumInGroup);
        assert_eq!(field_type(5000), FieldType::Undefined);
        assert_eq!(field_name(35), Some("MsgType"));
        assert!(is_header_tag(49) && is_header_tag(122) && !is_header_tag(11));
        assert!(is_trailer_tag(10));
        let d = message_def(b"D").unwrap();
        assert_eq!(d.name, "NewOrderSingle");
        assert!(d.required.contains(&11) && d.required.contains(&40));
        assert!(d.fields.contains(167) && !d.fields.contains(112));
        assert!(message_def(b"*").is_none());
        assert!(is_valid_value(21, b"1") && !is_valid_value(21, b"4"));
        assert!(is_valid_value(167, b"CS") && !is_valid_value(167, b"BOO"));
        assert!(is_valid_value(18, b"1 2") && !is_valid_value(18, b"1 ?"));
    }
}

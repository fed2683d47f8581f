//! Market data over FIX 4.4: the MarketDataRequest (35=V) a client sends, and the
//! MarketDataSnapshotFullRefresh (W), MarketDataIncrementalRefresh (X) and
//! MarketDataRequestReject (Y) the venue answers with.
//!
//! The request view keeps the values this venue may not support as the client sent them
//! (SubscriptionRequestType, MDUpdateType, AggregatedBook, each MDEntryType): the answer to an
//! unsupported one is a MarketDataRequestReject with its MDReqRejReason, which only the venue
//! can choose, not a BusinessMessageReject. Entries are written in the order of QuickFIX's
//! FIX44 dictionary (a validating client reads a group's fields in that order): in W
//! `269 270 271 346`, in X `279 269 55 270 271 346`.

use super::inbound::AppReject;
use crate::codec::decode::Message;
use crate::codec::encode::Encoder;
use crate::session::OutboundMessage;
use crate::tags;

/// Most symbols one request may name (NoRelatedSym); a longer list is refused whole.
pub const MAX_REQUEST_SYMBOLS: usize = 16;

/// SubscriptionRequestType (263) values.
pub mod subscription {
    /// A snapshot only.
    pub const SNAPSHOT: u8 = b'0';
    /// A snapshot, then updates.
    pub const SUBSCRIBE: u8 = b'1';
    /// Ends the subscription of the same MDReqID.
    pub const UNSUBSCRIBE: u8 = b'2';
}

/// MDUpdateType (265) values.
pub mod update_type {
    /// Every update is a full refresh (W).
    pub const FULL: u8 = b'0';
    /// Updates are incremental refreshes (X).
    pub const INCREMENTAL: u8 = b'1';
}

/// MDReqRejReason (281) values (FIX 4.4).
pub mod reject_reason {
    /// 0: unknown symbol.
    pub const UNKNOWN_SYMBOL: u8 = b'0';
    /// 1: duplicate MDReqID.
    pub const DUPLICATE_MD_REQ_ID: u8 = b'1';
    /// 2: insufficient bandwidth (the session's subscriptions are all in use).
    pub const INSUFFICIENT_BANDWIDTH: u8 = b'2';
    /// 3: insufficient permissions.
    pub const INSUFFICIENT_PERMISSIONS: u8 = b'3';
    /// 4: unsupported SubscriptionRequestType.
    pub const UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE: u8 = b'4';
    /// 5: unsupported MarketDepth.
    pub const UNSUPPORTED_MARKET_DEPTH: u8 = b'5';
    /// 6: unsupported MDUpdateType.
    pub const UNSUPPORTED_MD_UPDATE_TYPE: u8 = b'6';
    /// 7: unsupported AggregatedBook.
    pub const UNSUPPORTED_AGGREGATED_BOOK: u8 = b'7';
    /// 8: unsupported MDEntryType.
    pub const UNSUPPORTED_MD_ENTRY_TYPE: u8 = b'8';
}

/// MDEntryType (269) this venue publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdEntryType {
    /// 0
    Bid,
    /// 1
    Offer,
    /// 2
    Trade,
}

impl MdEntryType {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            MdEntryType::Bid => b'0',
            MdEntryType::Offer => b'1',
            MdEntryType::Trade => b'2',
        }
    }

    /// The type for a FIX value, `None` for one this venue does not publish.
    pub fn parse(v: &[u8]) -> Option<Self> {
        match v {
            b"0" => Some(MdEntryType::Bid),
            b"1" => Some(MdEntryType::Offer),
            b"2" => Some(MdEntryType::Trade),
            _ => None,
        }
    }

    /// Bit of this type in [`MarketDataRequest::entry_types`].
    #[inline]
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// MarketDataRequest (35=V), as decoded from a message the session validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketDataRequest<'a> {
    /// MDReqID (262).
    pub md_req_id: &'a [u8],
    /// SubscriptionRequestType (263) as sent (see [`subscription`]).
    pub subscription_type: &'a [u8],
    /// MarketDepth (264); `None` when not a non-negative integer.
    pub market_depth: Option<u64>,
    /// MDUpdateType (265) as sent (see [`update_type`]).
    pub update_type: Option<&'a [u8]>,
    /// AggregatedBook (266): `Some(false)` for N.
    pub aggregated_book: Option<bool>,
    /// The MDEntryTypes (269) asked for, one bit per [`MdEntryType`].
    pub entry_types: u8,
    /// The first MDEntryType asked for that this venue does not publish.
    pub unsupported_entry_type: Option<&'a [u8]>,
    /// Symbols (55 of NoRelatedSym), the first [`MAX_REQUEST_SYMBOLS`].
    pub symbols: [&'a [u8]; MAX_REQUEST_SYMBOLS],
    /// Symbols the request named (may exceed [`MAX_REQUEST_SYMBOLS`]).
    pub symbol_count: usize,
}

impl<'a> MarketDataRequest<'a> {
    /// Decodes the view from a validated message (the session checked the required fields
    /// and the groups' counts against the dictionary).
    pub fn decode(msg: &Message<'a>) -> Result<Self, AppReject> {
        if msg.msg_type() != b"V" {
            return Err(AppReject::WrongMsgType);
        }
        let mut r = MarketDataRequest {
            md_req_id: b"",
            subscription_type: b"",
            market_depth: None,
            update_type: None,
            aggregated_book: None,
            entry_types: 0,
            unsupported_entry_type: None,
            symbols: [b""; MAX_REQUEST_SYMBOLS],
            symbol_count: 0,
        };
        let (mut id, mut sub, mut depth) = (None, None, None);
        for f in msg.body_fields() {
            let v = msg.value(f);
            match f.tag {
                tags::MD_REQ_ID => id = Some(v),
                tags::SUBSCRIPTION_REQUEST_TYPE => sub = Some(v),
                tags::MARKET_DEPTH => depth = Some(v),
                tags::MD_UPDATE_TYPE => r.update_type = Some(v),
                tags::AGGREGATED_BOOK => r.aggregated_book = Some(v == b"Y"),
                tags::MD_ENTRY_TYPE => match MdEntryType::parse(v) {
                    Some(t) => r.entry_types |= t.bit(),
                    None => {
                        r.unsupported_entry_type.get_or_insert(v);
                    }
                },
                tags::SYMBOL => {
                    if r.symbol_count < MAX_REQUEST_SYMBOLS {
                        r.symbols[r.symbol_count] = v;
                    }
                    r.symbol_count += 1;
                }
                _ => {}
            }
        }
        r.md_req_id = id.ok_or(AppReject::MissingField(tags::MD_REQ_ID))?;
        r.subscription_type =
            sub.ok_or(AppReject::MissingField(tags::SUBSCRIPTION_REQUEST_TYPE))?;
        let depth = depth.ok_or(AppReject::MissingField(tags::MARKET_DEPTH))?;
        r.market_depth = parse_u64(depth);
        Ok(r)
    }

    /// The symbols named, in order (at most [`MAX_REQUEST_SYMBOLS`]).
    pub fn symbols(&self) -> &[&'a [u8]] {
        &self.symbols[..self.symbol_count.min(MAX_REQUEST_SYMBOLS)]
    }
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 {
        return None;
    }
    v.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u64)
    })
}

/// One entry of a snapshot: a price level (bid or offer, aggregated) or a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdEntry {
    /// MDEntryType (269).
    pub entry_type: MdEntryType,
    /// MDEntryPx (270) in price units.
    pub price: i64,
    /// MDEntrySize (271); not written when 0.
    pub size: u64,
    /// NumberOfOrders (346); not written when 0 (trades).
    pub orders: u32,
}

/// MDUpdateAction (279).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdUpdateAction {
    /// 0
    New,
    /// 1
    Change,
    /// 2
    Delete,
}

impl MdUpdateAction {
    /// FIX value.
    pub fn as_byte(self) -> u8 {
        match self {
            MdUpdateAction::New => b'0',
            MdUpdateAction::Change => b'1',
            MdUpdateAction::Delete => b'2',
        }
    }
}

/// One entry of an incremental refresh. A level is keyed by its side and price: a delete
/// carries no size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdUpdate {
    /// MDUpdateAction (279).
    pub action: MdUpdateAction,
    /// The entry.
    pub entry: MdEntry,
}

/// MarketDataSnapshotFullRefresh (35=W) of one instrument.
#[derive(Debug, Clone, Copy)]
pub struct MarketDataSnapshot<'a> {
    /// MDReqID (262) of the request answered.
    pub md_req_id: &'a [u8],
    /// Symbol (55).
    pub symbol: &'a [u8],
    /// Implied decimals of the prices.
    pub price_scale: u8,
    /// The entries (NoMDEntries may be 0: an empty book).
    pub entries: &'a [MdEntry],
}

impl OutboundMessage for MarketDataSnapshot<'_> {
    fn msg_type(&self) -> &[u8] {
        b"W"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        e.field(tags::MD_REQ_ID, self.md_req_id);
        e.field(tags::SYMBOL, self.symbol);
        e.field_u64(tags::NO_MD_ENTRIES, self.entries.len() as u64);
        for m in self.entries {
            e.field_char(tags::MD_ENTRY_TYPE, m.entry_type.as_byte());
            e.field_price(tags::MD_ENTRY_PX, m.price, self.price_scale);
            if m.size > 0 {
                e.field_u64(tags::MD_ENTRY_SIZE, m.size);
            }
            if m.orders > 0 {
                e.field_u64(tags::NUMBER_OF_ORDERS, m.orders as u64);
            }
        }
    }
}

/// MarketDataIncrementalRefresh (35=X) of one instrument.
#[derive(Debug, Clone, Copy)]
pub struct MarketDataIncremental<'a> {
    /// MDReqID (262) of the subscription.
    pub md_req_id: &'a [u8],
    /// Symbol (55), written in every entry (FIX 4.4 puts the instrument in the group).
    pub symbol: &'a [u8],
    /// Implied decimals of the prices.
    pub price_scale: u8,
    /// The changes, in the order to apply them.
    pub entries: &'a [MdUpdate],
}

impl OutboundMessage for MarketDataIncremental<'_> {
    fn msg_type(&self) -> &[u8] {
        b"X"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        e.field(tags::MD_REQ_ID, self.md_req_id);
        e.field_u64(tags::NO_MD_ENTRIES, self.entries.len() as u64);
        for u in self.entries {
            e.field_char(tags::MD_UPDATE_ACTION, u.action.as_byte());
            e.field_char(tags::MD_ENTRY_TYPE, u.entry.entry_type.as_byte());
            e.field(tags::SYMBOL, self.symbol);
            e.field_price(tags::MD_ENTRY_PX, u.entry.price, self.price_scale);
            if u.action != MdUpdateAction::Delete {
                if u.entry.size > 0 {
                    e.field_u64(tags::MD_ENTRY_SIZE, u.entry.size);
                }
                if u.entry.orders > 0 {
                    e.field_u64(tags::NUMBER_OF_ORDERS, u.entry.orders as u64);
                }
            }
        }
    }
}

/// MarketDataRequestReject (35=Y).
#[derive(Debug, Clone, Copy)]
pub struct MarketDataRequestReject<'a> {
    /// MDReqID (262) of the request refused.
    pub md_req_id: &'a [u8],
    /// MDReqRejReason (281), see [`reject_reason`]; `None` when no code fits.
    pub reason: Option<u8>,
    /// Text (58).
    pub text: Option<&'a [u8]>,
}

impl OutboundMessage for MarketDataRequestReject<'_> {
    fn msg_type(&self) -> &[u8] {
        b"Y"
    }
    fn write_body(&self, e: &mut Encoder<'_>) {
        e.field(tags::MD_REQ_ID, self.md_req_id);
        if let Some(r) = self.reason {
            e.field_char(tags::MD_REQ_REJ_REASON, r);
        }
        if let Some(t) = self.text {
            e.field(tags::TEXT, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_in_the_dictionarys_order() {
        let mut buf = vec![0u8; 512];
        let mut e = Encoder::new(&mut buf, b"FIX.4.4", b"X");
        MarketDataIncremental {
            md_req_id: b"R1",
            symbol: b"ACME",
            price_scale: 4,
            entries: &[
                MdUpdate {
                    action: MdUpdateAction::Delete,
                    entry: MdEntry {
                        entry_type: MdEntryType::Bid,
                        price: 1_000_000,
                        size: 5,
                        orders: 1,
                    },
                },
                MdUpdate {
                    action: MdUpdateAction::New,
                    entry: MdEntry {
                        entry_type: MdEntryType::Offer,
                        price: 1_012_500,
                        size: 7,
                        orders: 2,
                    },
                },
            ],
        }
        .write_body(&mut e);
        let n = e.body_len();
        let text = String::from_utf8_lossy(&buf[..]).replace('\x01', "|");
        let body = &text[text.find("262=").unwrap()..];
        assert!(n > 0);
        assert!(
            body.starts_with(
                "262=R1|268=2|279=2|269=0|55=ACME|270=100|279=0|269=1|55=ACME|270=101.25|271=7|346=2|"
            ),
            "{body}"
        );
    }
}

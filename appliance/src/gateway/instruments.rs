//! Symbol lookup for the gateways: symbol bytes to instrument id, owning engine and the price
//! scale the protocols need.
//!
//! Symbols are at most 8 bytes, so each packs into a `u64` key; the table is sorted by key and
//! searched by bisection: a handful of comparisons for any realistic instrument count, no
//! hashing, no allocation.

use crate::config::ResolvedInstrument;
use crate::engine::InstrumentId;

/// What a gateway needs to know about one instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentRef {
    /// Instrument id (its index in the configuration).
    pub id: InstrumentId,
    /// Engine thread that owns it.
    pub engine: usize,
    /// Implied decimals of a price unit.
    pub price_decimals: u8,
    /// Tick size in price units.
    pub tick_units: i64,
    /// The symbol, space-padded as on the binary wire.
    pub symbol: [u8; 8],
    /// Length of the symbol without padding.
    pub symbol_len: u8,
}

impl InstrumentRef {
    /// The symbol's bytes.
    #[inline]
    pub fn symbol(&self) -> &[u8] {
        &self.symbol[..self.symbol_len as usize]
    }
}

/// The gateway's instrument table.
#[derive(Clone, Debug)]
pub struct Instruments {
    /// (packed symbol, index into `by_id`), sorted by key.
    keys: Vec<(u64, u32)>,
    by_id: Vec<InstrumentRef>,
    /// Halted by the operator, by id: new orders and replaces refused, cancels accepted.
    halted: Vec<bool>,
}

/// Packs up to 8 symbol bytes into a key; trailing spaces and NULs are padding.
#[inline]
fn key(symbol: &[u8]) -> Option<u64> {
    let end = symbol
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |p| p + 1);
    if end == 0 || end > 8 {
        return None;
    }
    let mut b = [0u8; 8];
    b[..end].copy_from_slice(&symbol[..end]);
    Some(u64::from_be_bytes(b))
}

impl Instruments {
    /// The table for the configured instruments.
    pub fn new(instruments: &[ResolvedInstrument]) -> Self {
        let by_id: Vec<InstrumentRef> = instruments
            .iter()
            .enumerate()
            .map(|(i, ins)| {
                let mut symbol = [b' '; 8];
                symbol[..ins.symbol.len()].copy_from_slice(ins.symbol.as_bytes());
                InstrumentRef {
                    id: i as InstrumentId,
                    engine: ins.engine,
                    price_decimals: ins.price_decimals,
                    tick_units: ins.tick_units,
                    symbol,
                    symbol_len: ins.symbol.len() as u8,
                }
            })
            .collect();
        let mut keys: Vec<(u64, u32)> = by_id
            .iter()
            .enumerate()
            .map(|(i, r)| (key(r.symbol()).expect("validated symbol"), i as u32))
            .collect();
        keys.sort_unstable();
        let halted = vec![false; by_id.len()];
        Self {
            keys,
            by_id,
            halted,
        }
    }

    /// Whether the operator halted instrument `id`.
    #[inline]
    pub fn is_halted(&self, id: InstrumentId) -> bool {
        self.halted.get(id as usize).copied().unwrap_or(false)
    }

    /// How many instruments are halted.
    pub fn halted_count(&self) -> usize {
        self.halted.iter().filter(|h| **h).count()
    }

    /// Halts or resumes instrument `id`; returns whether it exists.
    pub fn set_halted(&mut self, id: InstrumentId, halted: bool) -> bool {
        match self.halted.get_mut(id as usize) {
            Some(h) => {
                *h = halted;
                true
            }
            None => false,
        }
    }

    /// Looks a symbol up (FIX Symbol value or the binary 8-byte field).
    #[inline]
    pub fn find(&self, symbol: &[u8]) -> Option<&InstrumentRef> {
        let k = key(symbol)?;
        let i = self.keys.binary_search_by_key(&k, |&(k, _)| k).ok()?;
        Some(&self.by_id[self.keys[i].1 as usize])
    }

    /// The instrument with id `id`.
    #[inline]
    pub fn get(&self, id: InstrumentId) -> Option<&InstrumentRef> {
        self.by_id.get(id as usize)
    }

    /// Every instrument, by id.
    pub fn all(&self) -> &[InstrumentRef] {
        &self.by_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn finds_symbols_in_either_form() {
        let t = Instruments::new(&Config::default_config().resolved_instruments());
        assert_eq!(t.find(b"BOLT").unwrap().id, 1);
        assert_eq!(t.find(b"CRUX    ").unwrap().id, 2);
        assert_eq!(t.find(b"ACME\0\0\0\0").unwrap().symbol(), b"ACME");
        assert!(t.find(b"ACM").is_none());
        assert!(t.find(b"ACMEX").is_none());
        assert!(t.find(b"").is_none());
        assert!(t.find(b"TOOLONGSYMBOL").is_none());
        assert_eq!(t.get(0).unwrap().tick_units, 100);
    }
}

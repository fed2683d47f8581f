//! Engine snapshots: the whole matching state as bytes, and an engine rebuilt from them so that
//! it answers every future command exactly as the original would. Cold path.
//!
//! Why more than the books: the engine's output depends on placement, not only on the orders.
//! A mass cancel reports its `Cancelled` events in arena slot order, and a new order takes the
//! slot at the head of the arena's LIFO free list, so a restored engine must put every order in
//! the same slot and rebuild the same free list. Level ids, the level free stacks and the id
//! index's bucket layout are reproduced as well: they change no event, but keeping them makes
//! the restored engine identical (same memory layout, same performance) and a snapshot of it
//! byte-identical to the snapshot it came from.
//!
//! The format (version 1, little-endian, integers only) is described in `docs/engine.md`
//! (section "Snapshots"). In short: header (magic, version, total length), the configuration
//! the snapshot was taken with, the sequence number, the arena (high-water mark and the order
//! freed slots will be reused in), per book its counters and per side the level-id free stack
//! and the levels from worst to best with their orders in queue order (40 bytes each, with
//! their arena slot), then the id index's bucket order, and a checksum. Never-used memory is
//! not written: an empty engine's snapshot is a few hundred bytes whatever its capacity.
//!
//! Restoring checks everything it reads: a snapshot that passes the checksum but is still
//! inconsistent (a bug, or a deliberate edit) is refused with a [`SnapshotError`] rather than
//! turned into an engine that breaks its invariants. Nothing here panics on any input.

use super::book::Book;
use super::config::{Capacity, ConfigError, EngineConfig, InstrumentConfig, PriceBand};
use super::levels::{BookSide, Level};
use super::orders::{OrderSlot, NIL};
use super::process::Engine;
use super::reason::decode;
use super::storage::prefetch;
use super::types::{OrderId, Price, Qty, Side, StpMode, TimeInForce};

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"MXENGSNP";

/// Format version written by [`Engine::snapshot_into`] and the only one [`Engine::restore`]
/// reads. Bumped whenever the layout or the meaning of a field changes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Magic, version, reserved flags, total length.
const HEADER_BYTES: usize = 8 + 4 + 4 + 8;
/// Trailing checksum.
const CHECKSUM_BYTES: usize = 8;
/// One resting order: slot, session, owner, tif, stp, post-only, pad, id, leaves, filled.
const ORDER_BYTES: usize = 40;
/// Fixed part of an instrument record (the symbol's bytes follow it).
const INSTRUMENT_BYTES: usize = 4 + 8 + 8 + 9 + 9 + 17 + 4;
/// How many orders ahead snapshot and restore prefetch arena slots.
const PREFETCH_AHEAD: usize = 16;
/// Largest sequence number or trade counter a snapshot may carry: anything above cannot come
/// from a real run and would bring an overflow within reach of the next command.
const MAX_COUNTER: u64 = i64::MAX as u64;

/// Why bytes could not be restored into an engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The input is shorter than the snapshot it starts (or than a header).
    #[error("snapshot truncated: {expected} bytes expected, {got} present")]
    Truncated {
        /// Length the snapshot declares (or the header length).
        expected: u64,
        /// Bytes given.
        got: usize,
    },
    /// The input does not start with [`SNAPSHOT_MAGIC`].
    #[error("not an engine snapshot (bad magic)")]
    BadMagic,
    /// Written by a format version this build does not read.
    #[error("snapshot format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version in the snapshot.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The checksum does not match the content: the bytes were damaged.
    #[error("snapshot checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum {
        /// Checksum in the snapshot.
        stored: u64,
        /// Checksum of the bytes present.
        computed: u64,
    },
    /// The configuration given to restore is invalid by itself.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),
    /// The configuration differs from the one the snapshot was taken with.
    #[error("configuration differs from the snapshot's: {0}")]
    ConfigMismatch(String),
    /// A capacity of the configuration cannot hold what the snapshot has in use
    /// ([`Engine::restore_resized`]).
    #[error("capacity too small for the snapshot: {0}")]
    CapacityTooSmall(String),
    /// The bytes pass the checksum but do not describe a consistent engine.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
}

/// The snapshot checksum of `bytes` (a snapshot carries it over everything before it, as its
/// last 8 bytes, little-endian).
///
/// Public so that tools can verify or re-seal a snapshot. Four independent lanes of
/// xor-multiply over 64-bit words (a few ms for 50 MB, unlike a byte-at-a-time hash): each step
/// is a bijection of the lane for a fixed word and injective in the word for a fixed lane, so
/// any change confined to one 8-byte word, in particular any damaged byte, is always detected.
/// Not cryptographic: it detects damage, not tampering.
pub fn snapshot_checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes: [u64; 4] = [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let step = |lane: &mut u64, w: u64| *lane = ((*lane ^ w).wrapping_mul(K)).rotate_left(31);
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        for (k, lane) in lanes.iter_mut().enumerate() {
            step(lane, le_u64(&c[k * 8..k * 8 + 8]));
        }
    }
    let mut tail = [0u8; 32];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    for (k, lane) in lanes.iter_mut().enumerate() {
        step(lane, le_u64(&tail[k * 8..k * 8 + 8]));
    }
    let mut h = bytes.len() as u64;
    for lane in lanes {
        step(&mut h, lane);
    }
    h ^ (h >> 29)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// Appends little-endian fields to the output.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    #[inline]
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    #[inline]
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    #[inline]
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    #[inline]
    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(v.is_some() as u8);
        self.u64(v.unwrap_or(0));
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        self.u8(v.is_some() as u8);
        self.i64(v.unwrap_or(0));
    }
}

/// Reads little-endian fields; running past the end is a [`SnapshotError::Corrupt`] (the
/// total length was already checked, so a section that overruns it was mis-encoded).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SnapshotError> {
        if n > self.remaining() {
            return Err(corrupt(format!("{what} runs past the end of the snapshot")));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    fn flag(&mut self, what: &str) -> Result<bool, SnapshotError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(corrupt(format!("{what}: flag byte {v}"))),
        }
    }
    fn opt_u64(&mut self, what: &str) -> Result<Option<u64>, SnapshotError> {
        let some = self.flag(what)?;
        let v = self.u64(what)?;
        Ok(some.then_some(v))
    }
    fn opt_i64(&mut self, what: &str) -> Result<Option<i64>, SnapshotError> {
        let some = self.flag(what)?;
        let v = self.i64(what)?;
        Ok(some.then_some(v))
    }

    /// `n` u32 values, refusing counts the remaining bytes cannot hold before allocating.
    fn u32s(&mut self, n: u32, what: &str) -> Result<Vec<u32>, SnapshotError> {
        let b = self.take(n as usize * 4, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn corrupt(what: String) -> SnapshotError {
    SnapshotError::Corrupt(what)
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "bids",
        Side::Sell => "asks",
    }
}

/// The level-id free stack of a side split into the part history shaped and the rest: the
/// bottom of the stack holds the never-used ids `capacity - 1` down to some `high_water` in
/// the order `BookSide::new` put them (ids are handed out from the top, freed ids pushed on
/// top), so only `high_water` and the ids above them need recording.
fn level_free_split(s: &BookSide) -> (u32, &[u32]) {
    let cap = s.capacity();
    let stack = s.free_stack();
    let untouched = stack
        .iter()
        .enumerate()
        .take_while(|&(i, &id)| id as usize == cap as usize - 1 - i)
        .count();
    (cap - untouched as u32, &stack[untouched..])
}

fn band_fields(b: PriceBand) -> (u8, i64, i64) {
    match b {
        PriceBand::None => (0, 0, 0),
        PriceBand::Static { min, max } => (1, min, max),
        PriceBand::Percent {
            bps,
            reference_price,
        } => (2, bps as i64, reference_price),
    }
}

/// What differs between the snapshot's instrument and the configured one, if anything.
fn instrument_mismatch(snap: &InstrumentConfig, cfg: &InstrumentConfig) -> Option<String> {
    let field = |name: &str, s: String, c: String| {
        Some(format!(
            "instrument {} ({}): {name} is {s} in the snapshot, {c} in the config",
            snap.id, snap.symbol
        ))
    };
    if snap.symbol != cfg.symbol {
        return field(
            "symbol",
            format!("{:?}", snap.symbol),
            format!("{:?}", cfg.symbol),
        );
    }
    if snap.tick_size != cfg.tick_size {
        return field(
            "tick_size",
            snap.tick_size.to_string(),
            cfg.tick_size.to_string(),
        );
    }
    if snap.lot_size != cfg.lot_size {
        return field(
            "lot_size",
            snap.lot_size.to_string(),
            cfg.lot_size.to_string(),
        );
    }
    if snap.max_order_qty != cfg.max_order_qty {
        return field(
            "max_order_qty",
            format!("{:?}", snap.max_order_qty),
            format!("{:?}", cfg.max_order_qty),
        );
    }
    if snap.max_notional != cfg.max_notional {
        return field(
            "max_notional",
            format!("{:?}", snap.max_notional),
            format!("{:?}", cfg.max_notional),
        );
    }
    if snap.price_band != cfg.price_band {
        return field(
            "price_band",
            format!("{:?}", snap.price_band),
            format!("{:?}", cfg.price_band),
        );
    }
    None
}

/// Compares the snapshot's instruments (ascending id) with the configured ones (sorted the
/// same way) and names the first difference.
fn compare_instruments(
    snap: &[InstrumentConfig],
    cfg: &[&InstrumentConfig],
) -> Result<(), SnapshotError> {
    let (mut i, mut j) = (0, 0);
    loop {
        let only_in_snapshot = match (snap.get(i), cfg.get(j)) {
            (None, None) => return Ok(()),
            (Some(s), Some(c)) if s.id == c.id => {
                if let Some(m) = instrument_mismatch(s, c) {
                    return Err(SnapshotError::ConfigMismatch(m));
                }
                i += 1;
                j += 1;
                continue;
            }
            (Some(s), Some(c)) => s.id < c.id,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let (id, symbol, there, not_there) = if only_in_snapshot {
            (snap[i].id, &snap[i].symbol, "snapshot", "config")
        } else {
            (cfg[j].id, &cfg[j].symbol, "config", "snapshot")
        };
        return Err(SnapshotError::ConfigMismatch(format!(
            "instrument {id} ({symbol}) is in the {there} but not in the {not_there}"
        )));
    }
}

fn read_instrument(r: &mut Reader<'_>) -> Result<InstrumentConfig, SnapshotError> {
    let id = r.u32("instrument id")?;
    let tick_size = r.i64("tick size")?;
    let lot_size = r.u64("lot size")?;
    let max_order_qty = r.opt_u64("max order qty")?;
    let max_notional = r.opt_u64("max notional")?;
    let kind = r.u8("price band kind")?;
    let a = r.i64("price band")?;
    let b = r.i64("price band")?;
    let price_band = match kind {
        0 => PriceBand::None,
        1 => PriceBand::Static { min: a, max: b },
        2 => PriceBand::Percent {
            bps: u32::try_from(a).map_err(|_| corrupt(format!("price band bps {a}")))?,
            reference_price: b,
        },
        k => return Err(corrupt(format!("price band kind {k}"))),
    };
    let len = r.u32("symbol length")?;
    let symbol = std::str::from_utf8(r.take(len as usize, "symbol")?)
        .map_err(|_| corrupt(format!("symbol of instrument {id} is not UTF-8")))?
        .to_string();
    Ok(InstrumentConfig {
        id,
        symbol,
        tick_size,
        lot_size,
        max_order_qty,
        max_notional,
        price_band,
    })
}

impl Engine {
    /// Appends a snapshot of the whole engine to `out` (which is not cleared: a caller may put
    /// the snapshot after its own framing). Cold path: O(resting orders + id-index size),
    /// allocates scratch space proportional to the arena's high-water mark, reserves the exact
    /// output size up front.
    ///
    /// Meant to be taken between commands on an engine nobody else is driving (the journal's
    /// shadow copy), so the live engine never pauses. [`Engine::restore`] of the result gives
    /// an engine indistinguishable from this one for every future command, and a snapshot of
    /// that engine is byte-identical to this one.
    pub fn snapshot_into(&self, out: &mut Vec<u8>) {
        let reuse: Vec<u32> = self.orders.reuse_order().collect();
        let used = self.orders.used();
        let hw = self.orders.high_water();
        debug_assert_eq!(reuse.len() as u64 + used as u64, hw as u64);
        let mut cfgs: Vec<&InstrumentConfig> = self.config.instruments.iter().collect();
        cfgs.sort_by_key(|c| c.id);

        let mut size = HEADER_BYTES + 12 + 8 + 8 + 4 * reuse.len() + 4 + 4 * used as usize;
        size += ORDER_BYTES * used as usize + CHECKSUM_BYTES;
        size += cfgs
            .iter()
            .map(|c| INSTRUMENT_BYTES + c.symbol.len())
            .sum::<usize>();
        for book in self.books.iter() {
            size += 9 + 8;
            for s in [&book.bids, &book.asks] {
                size += 12 + 4 * level_free_split(s).1.len() + 16 * s.len();
            }
        }

        let start = out.len();
        out.reserve(size);
        let mut w = Writer(out);
        w.bytes(&SNAPSHOT_MAGIC);
        w.u32(SNAPSHOT_VERSION);
        w.u32(0); // reserved flags
        w.u64(size as u64);

        let cap = self.config.capacity;
        w.u32(cap.max_orders);
        w.u32(cap.max_levels_per_side);
        w.u32(cfgs.len() as u32);
        for c in &cfgs {
            w.u32(c.id);
            w.i64(c.tick_size);
            w.u64(c.lot_size);
            w.opt_u64(c.max_order_qty);
            w.opt_u64(c.max_notional);
            let (kind, a, b) = band_fields(c.price_band);
            w.u8(kind);
            w.i64(a);
            w.i64(b);
            w.u32(c.symbol.len() as u32);
            w.bytes(c.symbol.as_bytes());
        }

        w.u64(self.seq);
        w.u32(hw);
        w.u32(used);
        for &i in &reuse {
            w.u32(i);
        }

        // Position of each live order in the order stream, by slot, for the index section.
        let mut ordinal = vec![NIL; hw as usize];
        let queued = self.queue_order();
        debug_assert_eq!(queued.len(), used as usize);
        let mut next_ordinal = 0u32;
        let slots = &self.orders.slots;
        for book in self.books.iter() {
            w.opt_i64(book.last_trade);
            w.u64(book.trades);
            for s in [&book.bids, &book.asks] {
                let (level_hw, reused) = level_free_split(s);
                w.u32(level_hw);
                w.u32(reused.len() as u32);
                for &id in reused {
                    w.u32(id);
                }
                w.u32(s.len() as u32);
                for &lid in s.ids_in_order() {
                    let l = &s.levels[lid as usize];
                    w.u32(lid);
                    w.i64(l.price);
                    w.u32(l.count);
                    for _ in 0..l.count {
                        let k = next_ordinal as usize;
                        if let Some(&ahead) = queued.get(k + PREFETCH_AHEAD) {
                            prefetch(&slots[ahead as usize]);
                        }
                        let i = queued[k];
                        let o = &slots[i as usize];
                        let mut rec = [0u8; ORDER_BYTES];
                        rec[0..4].copy_from_slice(&i.to_le_bytes());
                        rec[4..8].copy_from_slice(&o.session.to_le_bytes());
                        rec[8..12].copy_from_slice(&o.owner.to_le_bytes());
                        rec[12] = o.tif as u8;
                        rec[13] = o.stp as u8;
                        rec[14] = o.post_only as u8;
                        rec[16..24].copy_from_slice(&o.id.to_le_bytes());
                        rec[24..32].copy_from_slice(&o.leaves.to_le_bytes());
                        rec[32..40].copy_from_slice(&o.filled.to_le_bytes());
                        w.bytes(&rec);
                        ordinal[i as usize] = next_ordinal;
                        next_ordinal += 1;
                    }
                }
            }
        }
        debug_assert_eq!(next_ordinal, used);

        w.u32(used);
        self.index.for_each_in_table_order(|slot| {
            w.u32(ordinal[slot as usize]);
        });

        let sum = snapshot_checksum(&out[start..]);
        out.extend_from_slice(&sum.to_le_bytes());
        debug_assert_eq!(out.len() - start, size, "snapshot size precomputed wrongly");
    }

    /// Every live order's slot in snapshot order: books ascending, bids then asks, levels from
    /// worst to best, each queue from head to tail.
    ///
    /// Why not simply follow each queue: the queues are linked lists through a 64-byte-per-slot
    /// arena, so that is one serial cache miss per order (~130-200 ms for 1,000,000 orders
    /// here). Each level's count says where its queue goes in the result, so `LANES` queues
    /// are followed in lockstep instead, and their misses overlap.
    fn queue_order(&self) -> Vec<u32> {
        const LANES: usize = 16;
        let mut starts: Vec<(u32, usize)> = Vec::new();
        let mut total = 0usize;
        for book in self.books.iter() {
            for s in [&book.bids, &book.asks] {
                for &lid in s.ids_in_order() {
                    let l = &s.levels[lid as usize];
                    starts.push((l.head, total));
                    total += l.count as usize;
                }
            }
        }
        let slots = &self.orders.slots;
        let mut out = vec![NIL; total];
        let mut lanes = [(NIL, 0usize); LANES];
        let mut pending = starts.into_iter();
        loop {
            let mut busy = false;
            for lane in lanes.iter_mut() {
                if lane.0 == NIL {
                    match pending.next() {
                        Some(start) => *lane = start,
                        None => continue,
                    }
                }
                busy = true;
                let (slot, at) = *lane;
                if let Some(o) = out.get_mut(at) {
                    *o = slot;
                }
                *lane = (slots[slot as usize].next, at + 1);
            }
            if !busy {
                return out;
            }
        }
    }

    /// Rebuilds an engine from a snapshot taken with the same configuration: same instruments
    /// (ids, symbols, tick and lot sizes, limits, price bands) and the same capacities. The
    /// result is indistinguishable from the engine the snapshot was taken of, for every future
    /// command: same sequence number, trade counters and last trades, same orders in the same
    /// queue positions **and arena slots**, same free-list order, level ids and id-index
    /// layout.
    ///
    /// The engine is allocated by [`Engine::new`] (the same reserved memory) and then filled.
    /// Any difference in configuration is a [`SnapshotError::ConfigMismatch`] naming it;
    /// damaged or inconsistent bytes are an error, never a panic or a broken engine.
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        restore(config, bytes, true)
    }

    /// Like [`Engine::restore`], but the configuration's capacities may differ from the
    /// snapshot's: larger, or smaller as long as what the snapshot uses still fits (the order
    /// arena must hold the snapshot's high-water mark of slots, since orders keep their slot
    /// numbers; each book side must hold its high-water mark of level ids; every resting order
    /// must be within the new quantity ceiling `u64::MAX / max_orders`), else
    /// [`SnapshotError::CapacityTooSmall`]. Instruments must still match exactly.
    ///
    /// Exact for every command that does not depend on the capacities themselves: slot
    /// assignment, free-list order and events are what an engine configured this way from the
    /// start would have produced, as long as that history never hit a capacity limit. What
    /// cannot carry over is what the capacities decide: when `OrderCapacityExhausted` and
    /// `LevelCapacityExhausted` start, and the `QuantityOverMax` ceiling. The id index gets the
    /// new size, so its layout (not its content) differs. For recovery, restore exactly and
    /// replay the journal first, then resize.
    pub fn restore_resized(config: EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        restore(config, bytes, false)
    }
}

/// Checks the header and checksum; returns the snapshot without its checksum.
fn check_frame(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let header_need = (HEADER_BYTES + CHECKSUM_BYTES) as u64;
    if bytes.len() < SNAPSHOT_MAGIC.len() || bytes[..8] != SNAPSHOT_MAGIC {
        return if bytes.len() < SNAPSHOT_MAGIC.len() && SNAPSHOT_MAGIC.starts_with(bytes) {
            Err(SnapshotError::Truncated {
                expected: header_need,
                got: bytes.len(),
            })
        } else {
            Err(SnapshotError::BadMagic)
        };
    }
    if bytes.len() < HEADER_BYTES {
        return Err(SnapshotError::Truncated {
            expected: header_need,
            got: bytes.len(),
        });
    }
    let mut r = Reader {
        buf: bytes,
        pos: SNAPSHOT_MAGIC.len(),
    };
    let version = r.u32("version")?;
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            found: version,
            supported: SNAPSHOT_VERSION,
        });
    }
    let flags = r.u32("flags")?;
    if flags != 0 {
        return Err(corrupt(format!("reserved flags {flags:#x} set")));
    }
    let total = r.u64("total length")?;
    if total < header_need {
        return Err(corrupt(format!(
            "declared length {total} is below a header"
        )));
    }
    if (bytes.len() as u64) < total {
        return Err(SnapshotError::Truncated {
            expected: total,
            got: bytes.len(),
        });
    }
    if bytes.len() as u64 > total {
        return Err(corrupt(format!(
            "{} bytes follow the snapshot's declared end ({total} bytes)",
            bytes.len() as u64 - total
        )));
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let stored = le_u64(sum);
    let computed = snapshot_checksum(body);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    Ok(body)
}

/// Per-id "seen" marks, for proving that recorded ids partition a range.
struct Marks(Vec<bool>);

impl Marks {
    /// Marks `id`; false if it is out of range or already marked.
    fn mark(&mut self, id: u32) -> bool {
        match self.0.get_mut(id as usize) {
            Some(m) if !*m => {
                *m = true;
                true
            }
            _ => false,
        }
    }
}

fn restore(config: EngineConfig, bytes: &[u8], exact: bool) -> Result<Engine, SnapshotError> {
    config.validate()?;
    let body = check_frame(bytes)?;
    let mut r = Reader {
        buf: body,
        pos: HEADER_BYTES,
    };

    // Configuration: checked before anything big is allocated.
    let snap_cap = Capacity {
        max_orders: r.u32("capacity")?,
        max_levels_per_side: r.u32("capacity")?,
    };
    if exact && snap_cap != config.capacity {
        return Err(SnapshotError::ConfigMismatch(format!(
            "capacity is max_orders = {}, max_levels_per_side = {} in the snapshot, \
             max_orders = {}, max_levels_per_side = {} in the config \
             (Engine::restore_resized accepts other capacities)",
            snap_cap.max_orders,
            snap_cap.max_levels_per_side,
            config.capacity.max_orders,
            config.capacity.max_levels_per_side
        )));
    }
    let n_instruments = r.u32("instrument count")?;
    if n_instruments as usize > r.remaining() / INSTRUMENT_BYTES {
        return Err(corrupt(format!("instrument count {n_instruments}")));
    }
    let mut snap_instruments = Vec::with_capacity(n_instruments as usize);
    for _ in 0..n_instruments {
        let i = read_instrument(&mut r)?;
        if snap_instruments
            .last()
            .is_some_and(|p: &InstrumentConfig| p.id >= i.id)
        {
            return Err(corrupt(format!("instrument {} out of order", i.id)));
        }
        snap_instruments.push(i);
    }
    let mut cfgs: Vec<&InstrumentConfig> = config.instruments.iter().collect();
    cfgs.sort_by_key(|c| c.id);
    compare_instruments(&snap_instruments, &cfgs)?;

    // Engine counters and the arena's placement state.
    let seq = r.u64("sequence number")?;
    if seq > MAX_COUNTER {
        return Err(corrupt(format!("sequence number {seq}")));
    }
    let hw = r.u32("arena high-water mark")?;
    let live = r.u32("live order count")?;
    if live > hw {
        return Err(corrupt(format!(
            "{live} live orders above high-water mark {hw}"
        )));
    }
    if hw > config.capacity.max_orders {
        return Err(SnapshotError::CapacityTooSmall(format!(
            "max_orders = {} is below the snapshot's {hw} order slots in use \
             (arena high-water mark; {live} live orders keep their slot numbers)",
            config.capacity.max_orders
        )));
    }
    let reuse = r.u32s(hw - live, "arena free list")?;

    let mut e = Engine::new(config)?;
    let mut slot_seen = Marks(vec![false; hw as usize]);
    for &i in &reuse {
        if !slot_seen.mark(i) {
            return Err(corrupt(format!("free slot {i} out of range or repeated")));
        }
    }
    let mut by_ordinal: Vec<(OrderId, u32)> = Vec::with_capacity(live as usize);
    let mut level_seen = Marks(Vec::new());
    let books = e.books.len();
    for b in 0..books {
        restore_book(
            &mut r,
            &mut e,
            b,
            live,
            &mut slot_seen,
            &mut level_seen,
            &mut by_ordinal,
        )?;
    }
    if by_ordinal.len() != live as usize {
        return Err(corrupt(format!(
            "{} resting orders, {live} declared",
            by_ordinal.len()
        )));
    }

    // The id index, inserted in the recorded bucket order to reproduce its layout.
    let n = r.u32("index entry count")?;
    if n != live {
        return Err(corrupt(format!("{n} index entries for {live} orders")));
    }
    let order = r.take(n as usize * 4, "index order")?;
    let ordinal_at = |j: usize| {
        order
            .get(j * 4..j * 4 + 4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    };
    for j in 0..n as usize {
        if let Some(ahead) = ordinal_at(j + PREFETCH_AHEAD).and_then(|k| by_ordinal.get(k as usize))
        {
            prefetch(ahead);
        }
        let k = ordinal_at(j).unwrap_or(NIL);
        let Some(&(id, slot)) = by_ordinal.get(k as usize) else {
            return Err(corrupt(format!("index entry names order #{k}")));
        };
        if !e.index.insert(id, slot) {
            return Err(corrupt(format!("order id {id} appears twice")));
        }
    }
    if r.remaining() != 0 {
        return Err(corrupt(format!(
            "{} unread bytes before the checksum",
            r.remaining()
        )));
    }
    e.orders.restore_free_list(hw, live, &reuse);
    e.seq = seq;
    Ok(e)
}

/// Reads book `b`: its counters, then bids and asks.
fn restore_book(
    r: &mut Reader<'_>,
    e: &mut Engine,
    b: usize,
    live: u32,
    slot_seen: &mut Marks,
    level_seen: &mut Marks,
    by_ordinal: &mut Vec<(OrderId, u32)>,
) -> Result<(), SnapshotError> {
    let book = &e.books[b];
    let (id, tick) = (book.id, book.tick);
    let last_trade = r.opt_i64("last trade")?;
    if let Some(p) = last_trade {
        if p <= 0 || p % tick != 0 {
            return Err(corrupt(format!(
                "instrument {id}: last trade price {p} is not a valid price"
            )));
        }
    }
    let trades = r.u64("trade counter")?;
    if trades > MAX_COUNTER {
        return Err(corrupt(format!("instrument {id}: trade counter {trades}")));
    }
    for side in [Side::Buy, Side::Sell] {
        restore_side(r, e, b, side, live, slot_seen, level_seen, by_ordinal)?;
    }
    let book: &mut Book = &mut e.books[b];
    book.last_trade = last_trade;
    book.trades = trades;
    Ok(())
}

/// Reads one book side: its level-id free stack, then its levels from worst to best, each with
/// its orders in queue order, written into their recorded arena slots and linked.
#[allow(clippy::too_many_arguments)]
fn restore_side(
    r: &mut Reader<'_>,
    e: &mut Engine,
    b: usize,
    side: Side,
    live: u32,
    slot_seen: &mut Marks,
    level_seen: &mut Marks,
    by_ordinal: &mut Vec<(OrderId, u32)>,
) -> Result<(), SnapshotError> {
    let Engine { books, orders, .. } = e;
    let book = &mut books[b];
    let (id, tick, lot, max_qty, max_notional) = (
        book.id,
        book.tick,
        book.lot,
        book.max_qty,
        book.max_notional,
    );
    let where_ = || format!("instrument {id} {}", side_name(side));
    let bs = book.side_mut(side);

    let level_hw = r.u32("level high-water mark")?;
    if level_hw > bs.capacity() {
        return Err(SnapshotError::CapacityTooSmall(format!(
            "{}: max_levels_per_side = {} is below the snapshot's {level_hw} level ids in use",
            where_(),
            bs.capacity()
        )));
    }
    let n_reused = r.u32("level free stack length")?;
    if n_reused > level_hw {
        return Err(corrupt(format!("{}: level free stack", where_())));
    }
    let reused = r.u32s(n_reused, "level free stack")?;
    level_seen.0.clear();
    level_seen.0.resize(level_hw as usize, false);
    for &l in &reused {
        if !level_seen.mark(l) {
            return Err(corrupt(format!(
                "{}: free level id {l} out of range or repeated",
                where_()
            )));
        }
    }
    let n_levels = r.u32("level count")?;
    if n_reused as u64 + n_levels as u64 != level_hw as u64 {
        return Err(corrupt(format!(
            "{}: {n_levels} levels and {n_reused} free ids do not make {level_hw}",
            where_()
        )));
    }

    let slots = &mut orders.slots;
    let hw = slot_seen.0.len() as u32;
    let mut prev_price: Option<Price> = None;
    for _ in 0..n_levels {
        let lid = r.u32("level id")?;
        let price = r.i64("level price")?;
        let count = r.u32("level order count")?;
        if !level_seen.mark(lid) {
            return Err(corrupt(format!(
                "{}: level id {lid} out of range or repeated",
                where_()
            )));
        }
        if price <= 0 || price % tick != 0 {
            return Err(corrupt(format!("{}: level price {price}", where_())));
        }
        let worse = |p: Price| match side {
            Side::Buy => p < price,
            Side::Sell => p > price,
        };
        if prev_price.is_some_and(|p| !worse(p)) {
            return Err(corrupt(format!(
                "{}: level {price} out of price order",
                where_()
            )));
        }
        prev_price = Some(price);
        if count == 0 || count as usize > live as usize - by_ordinal.len() {
            return Err(corrupt(format!(
                "{}: level {price} has {count} orders",
                where_()
            )));
        }
        let (mut head, mut tail, mut qty) = (NIL, NIL, 0 as Qty);
        let recs = r.take(count as usize * ORDER_BYTES, "orders")?;
        for (k, rec) in recs.chunks_exact(ORDER_BYTES).enumerate() {
            // Slots are scattered over the arena: start loading the one a few records ahead
            // so the cache misses overlap (a hint only; a bad slot number is caught below).
            let at = (k + PREFETCH_AHEAD) * ORDER_BYTES;
            if let Some(ahead) = recs.get(at..at + 4) {
                let s = u32::from_le_bytes([ahead[0], ahead[1], ahead[2], ahead[3]]);
                if s < hw {
                    prefetch(&slots[s as usize]);
                }
            }
            let u32_at =
                |at: usize| u32::from_le_bytes([rec[at], rec[at + 1], rec[at + 2], rec[at + 3]]);
            let u64_at = |at: usize| le_u64(&rec[at..at + 8]);
            let slot = u32_at(0);
            let order_id = u64_at(16);
            let bad =
                |what: &str| corrupt(format!("{}: order {order_id} at {price}: {what}", where_()));
            if slot >= hw || !slot_seen.mark(slot) {
                return Err(bad("slot out of range or repeated"));
            }
            let tif: TimeInForce = decode(rec[12]).ok_or_else(|| bad("time in force"))?;
            if tif.is_immediate() {
                return Err(bad("an IOC/FOK order cannot rest"));
            }
            let stp: StpMode = decode(rec[13]).ok_or_else(|| bad("STP mode"))?;
            let post_only = match rec[14] {
                0 => false,
                1 => true,
                _ => return Err(bad("post-only flag")),
            };
            if rec[15] != 0 {
                return Err(bad("padding byte"));
            }
            let (leaves, filled) = (u64_at(24), u64_at(32));
            // What validation guarantees of every resting order: open quantity, lots, the
            // total (filled + open: a new order's or a replace's qty) within the limits.
            let total = leaves.checked_add(filled);
            if leaves == 0
                || leaves % lot != 0
                || filled % lot != 0
                || total.is_none_or(|t| t > max_qty)
            {
                return Err(bad("quantities outside the instrument's limits"));
            }
            if (price as u128) * (total.unwrap_or(0) as u128) > max_notional {
                return Err(bad("notional above the instrument's maximum"));
            }
            qty = qty
                .checked_add(leaves)
                .ok_or_else(|| bad("level total overflows"))?;
            slots[slot as usize] = OrderSlot {
                id: order_id,
                price,
                leaves,
                filled,
                prev: tail,
                next: NIL,
                level: lid,
                book: b as u32,
                session: u32_at(4),
                owner: u32_at(8),
                side,
                tif,
                stp,
                post_only,
            };
            if tail == NIL {
                head = slot;
            } else {
                slots[tail as usize].next = slot;
            }
            tail = slot;
            by_ordinal.push((order_id, slot));
        }
        bs.restore_push_level(
            lid,
            Level {
                price,
                qty,
                count,
                head,
                tail,
                dirty: false,
            },
        );
        bs.orders += count;
    }
    bs.restore_free_stack(level_hw, &reused);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Command, Event, NewOrder, OrdType};

    #[test]
    fn checksum_sees_every_single_byte_change() {
        let base: Vec<u8> = (0..203u32).map(|i| (i * 7 + 3) as u8).collect();
        let h = snapshot_checksum(&base);
        for i in 0..base.len() {
            for bit in 0..8 {
                let mut b = base.clone();
                b[i] ^= 1 << bit;
                assert_ne!(snapshot_checksum(&b), h, "byte {i} bit {bit}");
            }
        }
        assert_ne!(snapshot_checksum(&base[..202]), h);
        let mut longer = base.clone();
        longer.push(0);
        assert_ne!(snapshot_checksum(&longer), h, "a zero byte appended");
    }

    fn config() -> EngineConfig {
        EngineConfig {
            instruments: vec![
                InstrumentConfig::plain(3, "B"),
                InstrumentConfig::plain(1, "A"),
            ],
            capacity: Capacity {
                max_orders: 64,
                max_levels_per_side: 16,
            },
        }
    }

    /// The internal placement of two engines: arena slots of live orders, free list, level ids
    /// and free stacks, index layout.
    fn placement(e: &Engine) -> impl PartialEq + std::fmt::Debug {
        let live: Vec<(u32, OrderId, u32, u32, u32)> = (0..e.orders.high_water())
            .filter(|&i| e.orders.is_resting(i))
            .map(|i| {
                let o = &e.orders.slots[i as usize];
                (i, o.id, o.prev, o.next, o.level)
            })
            .collect();
        let free: Vec<u32> = e.orders.reuse_order().collect();
        let sides: Vec<(Vec<u32>, Vec<u32>)> = e
            .books
            .iter()
            .flat_map(|b| [&b.bids, &b.asks])
            .map(|s| (s.ids_in_order().to_vec(), s.free_stack().to_vec()))
            .collect();
        (
            live,
            free,
            e.orders.high_water(),
            e.orders.used(),
            sides,
            e.index.entries_for_test(),
        )
    }

    #[test]
    fn restore_reproduces_internal_placement() {
        let mut e = Engine::new(config()).unwrap();
        let mut sink: Vec<Event> = Vec::new();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for n in 0..3_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cmd = if x % 3 == 0 && n > 10 {
                Command::Cancel(crate::engine::Cancel {
                    order_id: crate::engine::order_id((x >> 8) as u8 % 3, (x >> 16) % n),
                    session: 1,
                })
            } else {
                Command::New(NewOrder {
                    // Three gateways, so keys of different gateways share home buckets.
                    order_id: crate::engine::order_id((x >> 8) as u8 % 3, n),
                    instrument: if x & 16 == 0 { 1 } else { 3 },
                    session: 1,
                    owner: (x >> 20) as u32 % 4,
                    side: if x & 32 == 0 { Side::Buy } else { Side::Sell },
                    ord_type: OrdType::Limit,
                    tif: TimeInForce::Gtc,
                    price: 100 + ((x >> 24) % 20) as i64 - 10,
                    qty: 1 + (x >> 40) % 5,
                    post_only: false,
                    stp: StpMode::None,
                })
            };
            e.process(&cmd, &mut sink);
            if n % 97 == 0 {
                let mut snap = Vec::new();
                e.snapshot_into(&mut snap);
                let r = Engine::restore(config(), &snap).unwrap();
                assert_eq!(placement(&r), placement(&e), "after command {n}");
                let mut again = Vec::new();
                r.snapshot_into(&mut again);
                assert_eq!(again, snap);
            }
        }
    }
}

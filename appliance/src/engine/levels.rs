//! One side of a book: price levels kept sorted with the best price at the end.
//!
//! Why this shape (measured, see `docs/engine.md`): almost all activity is within a few ticks
//! of the top. With the best level at the end of a sorted array, taking liquidity pops from
//! the end, adding near the top shifts only the few levels above it, and finding a level starts
//! at the rank its distance from the best price predicts. Level records live in
//! a separate slab with stable ids, so an order stores its level id and a cancel reaches its
//! level in O(1) without searching; only a level that becomes empty is searched for (to take
//! it out of the sorted array). Searches start from a guess (distance from the best in ticks),
//! which is exact when the levels near the top are dense.
//! No price window is needed, so any price range works with a fixed, pre-sized memory budget.

use super::orders::NIL;
use super::storage::alloc_slice;
use super::types::{Price, Qty, Side};

/// One price level: aggregate quantity and an intrusive FIFO of order slots.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Level {
    pub price: Price,
    pub qty: Qty,
    pub count: u32,
    pub head: u32,
    pub tail: u32,
    /// Set by a mass cancel for the levels it changed, cleared when it reports them.
    pub dirty: bool,
}

/// Where a price is, or would go, in the sorted array.
pub(crate) enum Pos {
    Found(usize),
    Insert(usize),
}

/// How many keys `find` walks from its guess before switching to binary search.
const WALK: usize = 16;

/// One side of one book.
pub(crate) struct BookSide {
    pub side: Side,
    /// Tick size, for `find`'s guess.
    tick: Price,
    /// Level records by level id.
    pub levels: Box<[Level]>,
    /// Free level ids (a stack).
    free: Box<[u32]>,
    free_len: usize,
    /// Sort keys ascending: the best level is at `len - 1`. See [`BookSide::key`].
    keys: Box<[i64]>,
    /// Level id for each key.
    ids: Box<[u32]>,
    len: usize,
    /// Resting orders on this side.
    pub orders: u32,
}

impl BookSide {
    pub fn new(side: Side, tick: Price, capacity: u32) -> BookSide {
        let cap = capacity as usize;
        let mut free = alloc_slice(cap, 0u32);
        // Hand out low ids first (popped from the end).
        for (i, f) in free.iter_mut().enumerate() {
            *f = (cap - 1 - i) as u32;
        }
        BookSide {
            side,
            tick,
            levels: alloc_slice(
                cap,
                Level {
                    price: 0,
                    qty: 0,
                    count: 0,
                    head: NIL,
                    tail: NIL,
                    dirty: false,
                },
            ),
            free,
            free_len: cap,
            keys: alloc_slice(cap, 0i64),
            ids: alloc_slice(cap, NIL),
            len: 0,
            orders: 0,
        }
    }

    /// Sort key: ascending key order is worst-to-best. Bids sort by price; asks by `!price`,
    /// which reverses the order of every i64 without the overflow of negation.
    #[inline]
    fn key(&self, price: Price) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => !price,
        }
    }

    /// Number of price levels.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether a new level could be created.
    #[inline]
    pub fn has_free_level(&self) -> bool {
        self.free_len > 0
    }

    /// The best level id.
    #[inline]
    pub fn best(&self) -> Option<u32> {
        if self.len == 0 {
            None
        } else {
            Some(self.ids[self.len - 1])
        }
    }

    /// Level id at rank `r` from the best (0 = best).
    #[inline]
    pub fn level_at_rank(&self, r: usize) -> u32 {
        self.ids[self.len - 1 - r]
    }

    /// Finds `price` among the levels.
    ///
    /// Levels near the top are nearly one tick apart, so the distance from the best price in
    /// ticks is a lower bound on the rank that is usually exact: start there (positions only
    /// move towards the top when ticks are empty), walk up a few keys, and binary-search the
    /// rest when the book is sparse.
    #[inline]
    pub fn find(&self, price: Price) -> Pos {
        let n = self.len;
        if n == 0 {
            return Pos::Insert(0);
        }
        let k = self.key(price);
        let keys = &self.keys[..n];
        let top = keys[n - 1];
        if k >= top {
            return if k == top {
                Pos::Found(n - 1)
            } else {
                Pos::Insert(n)
            };
        }
        // top > k, so the difference fits in u64 even across the whole i64 range.
        let diff = top.wrapping_sub(k) as u64;
        let ticks = if self.tick == 1 {
            diff
        } else {
            diff / self.tick as u64
        };
        let mut i = (n as u64 - 1).saturating_sub(ticks) as usize;
        let end = (i + WALK).min(n - 1);
        while i < end && keys[i] < k {
            i += 1;
        }
        if keys[i] < k {
            return match keys[i + 1..].binary_search(&k) {
                Ok(p) => Pos::Found(i + 1 + p),
                Err(p) => Pos::Insert(i + 1 + p),
            };
        }
        if keys[i] == k {
            Pos::Found(i)
        } else {
            Pos::Insert(i)
        }
    }

    /// Level id at `price`, if the level exists.
    #[inline]
    pub fn level_id(&self, price: Price) -> Option<u32> {
        match self.find(price) {
            Pos::Found(p) => Some(self.ids[p]),
            Pos::Insert(_) => None,
        }
    }

    /// The level at `price`, created empty if missing. Returns (level id, created) or `None`
    /// when a level is needed and none is free.
    #[inline]
    pub fn get_or_insert(&mut self, price: Price) -> Option<(u32, bool)> {
        match self.find(price) {
            Pos::Found(p) => Some((self.ids[p], false)),
            Pos::Insert(p) => {
                if self.free_len == 0 {
                    return None;
                }
                self.free_len -= 1;
                let id = self.free[self.free_len];
                self.keys.copy_within(p..self.len, p + 1);
                self.ids.copy_within(p..self.len, p + 1);
                self.keys[p] = self.key(price);
                self.ids[p] = id;
                self.len += 1;
                self.levels[id as usize] = Level {
                    price,
                    qty: 0,
                    count: 0,
                    head: NIL,
                    tail: NIL,
                    dirty: false,
                };
                Some((id, true))
            }
        }
    }

    /// Removes the (empty) level at `price`.
    #[inline]
    pub fn remove_level(&mut self, price: Price) {
        let Pos::Found(p) = self.find(price) else {
            debug_assert!(false, "removing a missing level");
            return;
        };
        let id = self.ids[p];
        debug_assert_eq!(self.levels[id as usize].count, 0);
        self.keys.copy_within(p + 1..self.len, p);
        self.ids.copy_within(p + 1..self.len, p);
        self.len -= 1;
        self.free[self.free_len] = id;
        self.free_len += 1;
    }

    /// Level ids in sorted-array order (worst price first, best last). Cold (snapshots).
    pub fn ids_in_order(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    /// The free level-id stack, bottom first (the next id handed out is the last). Cold.
    pub fn free_stack(&self) -> &[u32] {
        &self.free[..self.free_len]
    }

    /// Level records reserved for this side.
    pub fn capacity(&self) -> u32 {
        self.levels.len() as u32
    }

    /// Appends a level better than every level present (restore from a snapshot, cold). The
    /// caller has checked the price order and that `id` is in range and not in use; `level`
    /// carries the totals and FIFO ends it computed.
    pub fn restore_push_level(&mut self, id: u32, level: Level) {
        debug_assert!(self.len == 0 || self.keys[self.len - 1] < self.key(level.price));
        self.keys[self.len] = self.key(level.price);
        self.ids[self.len] = id;
        self.levels[id as usize] = level;
        self.len += 1;
    }

    /// Sets the free level-id stack of a freshly made side (restore, cold): the ids never
    /// used, `capacity - 1` down to `high_water`, at the bottom as `new` left them, then `reused`
    /// (bottom first). The caller has checked that `reused` and the levels in use partition
    /// `0..high_water`.
    pub fn restore_free_stack(&mut self, high_water: u32, reused: &[u32]) {
        let untouched = (self.capacity() - high_water) as usize;
        debug_assert!((0..untouched).all(|i| self.free[i] as usize == self.free.len() - 1 - i));
        self.free[untouched..untouched + reused.len()].copy_from_slice(reused);
        self.free_len = untouched + reused.len();
    }

    /// Removes the best level (which must be empty): the common case after a sweep.
    #[inline]
    pub fn pop_best(&mut self) {
        debug_assert!(self.len > 0);
        self.len -= 1;
        self.free[self.free_len] = self.ids[self.len];
        self.free_len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Random inserts and removals, dense and sparse, both sides, against a BTreeSet.
    #[test]
    fn sorted_levels_match_a_btreeset() {
        for (side, tick, spread) in [
            (Side::Buy, 1, 40),
            (Side::Sell, 1, 40),
            (Side::Buy, 5, 3000),
            (Side::Sell, 100, 200_000),
        ] {
            let mut s = BookSide::new(side, tick, 512);
            let mut model = BTreeSet::new();
            let mut x: u64 = 0x9e37_79b9;
            for _ in 0..50_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let price = 1_000_000 + ((x >> 8) % spread) as i64 * tick;
                if (x & 3) != 0 && model.len() < 512 {
                    let created = s.get_or_insert(price).map(|(_, c)| c);
                    assert_eq!(created, Some(model.insert(price)));
                } else if model.remove(&price) {
                    s.remove_level(price);
                } else {
                    assert!(s.level_id(price).is_none());
                }
                assert_eq!(s.len(), model.len());
                let best = match side {
                    Side::Buy => model.iter().next_back(),
                    Side::Sell => model.iter().next(),
                };
                assert_eq!(s.best().map(|l| s.levels[l as usize].price), best.copied());
            }
            let ranks: Vec<Price> = (0..s.len())
                .map(|r| s.levels[s.level_at_rank(r) as usize].price)
                .collect();
            let mut want: Vec<Price> = model.iter().copied().collect();
            if side == Side::Buy {
                want.reverse();
            }
            assert_eq!(ranks, want);
            for &p in &model {
                assert_eq!(s.levels[s.level_id(p).unwrap() as usize].price, p);
            }
        }
    }

    #[test]
    fn extreme_prices_do_not_overflow_the_guess() {
        let mut s = BookSide::new(Side::Sell, 1, 8);
        for p in [i64::MAX, i64::MIN + 1, 0, -5, 7] {
            assert_eq!(s.get_or_insert(p).map(|(_, c)| c), Some(true));
        }
        assert_eq!(s.levels[s.best().unwrap() as usize].price, i64::MIN + 1);
        for p in [i64::MAX, i64::MIN + 1, 0, -5, 7] {
            assert!(s.level_id(p).is_some(), "{p}");
        }
        assert!(s.level_id(1).is_none());
    }
}

//! One side of a book: price levels kept sorted with the best price at the end.
//!
//! Why this shape (measured, see `docs/engine.md`): almost all activity is within a few ticks
//! of the top. With the best level at the end of a sorted array, taking liquidity pops from
//! the end, adding near the top shifts only the few levels above it, and finding a level scans
//! a handful of keys from the end before falling back to binary search. Level records live in
//! a separate slab with stable ids, so an order stores its level id and a cancel reaches its
//! level in O(1) without searching; only a level that becomes empty is searched for (to take
//! it out of the sorted array), and that search is short because most levels are near the top.
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
}

/// Where a price is, or would go, in the sorted array.
pub(crate) enum Pos {
    Found(usize),
    Insert(usize),
}

/// How many keys to compare linearly from the top before binary search.
const LINEAR_SCAN: usize = 8;

/// One side of one book.
pub(crate) struct BookSide {
    pub side: Side,
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
    pub fn new(side: Side, capacity: u32) -> BookSide {
        let cap = capacity as usize;
        let mut free = alloc_slice(cap, 0u32);
        // Hand out low ids first (popped from the end).
        for (i, f) in free.iter_mut().enumerate() {
            *f = (cap - 1 - i) as u32;
        }
        BookSide {
            side,
            levels: alloc_slice(
                cap,
                Level {
                    price: 0,
                    qty: 0,
                    count: 0,
                    head: NIL,
                    tail: NIL,
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
    #[inline]
    pub fn find(&self, price: Price) -> Pos {
        let k = self.key(price);
        let keys = &self.keys[..self.len];
        let mut i = keys.len();
        let stop = i.saturating_sub(LINEAR_SCAN);
        while i > stop {
            let cur = keys[i - 1];
            if cur == k {
                return Pos::Found(i - 1);
            }
            if cur < k {
                return Pos::Insert(i);
            }
            i -= 1;
        }
        match keys[..i].binary_search(&k) {
            Ok(p) => Pos::Found(p),
            Err(p) => Pos::Insert(p),
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

    /// Removes the best level (which must be empty): the common case after a sweep.
    #[inline]
    pub fn pop_best(&mut self) {
        debug_assert!(self.len > 0);
        self.len -= 1;
        self.free[self.free_len] = self.ids[self.len];
        self.free_len += 1;
    }
}

//! The order arena: fixed-size slots with intrusive FIFO links and an intrusive free list.
//!
//! One slot is one 64-byte cache line (asserted in tests): everything matching and cancelling
//! touch for an order is in that line. Slots are reused last-in first-out so the working set
//! stays small and warm.

use super::storage::alloc_slice;
use super::types::{OrderId, OwnerId, Price, Qty, SessionId, Side, StpMode, TimeInForce};

/// Null link.
pub(crate) const NIL: u32 = u32::MAX;

/// One resting order (or a free slot, then only `next` is meaningful).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct OrderSlot {
    pub id: OrderId,
    pub price: Price,
    pub leaves: Qty,
    pub filled: Qty,
    /// Previous order in the level's FIFO, or `NIL` at the head.
    pub prev: u32,
    /// Next order in the level's FIFO (or in the free list), `NIL` at the tail.
    pub next: u32,
    /// Level id within its book side.
    pub level: u32,
    /// Local book index.
    pub book: u32,
    pub session: SessionId,
    pub owner: OwnerId,
    pub side: Side,
    pub tif: TimeInForce,
    pub stp: StpMode,
    pub post_only: bool,
}

impl OrderSlot {
    const EMPTY: OrderSlot = OrderSlot {
        id: 0,
        price: 0,
        leaves: 0,
        filled: 0,
        prev: NIL,
        next: NIL,
        level: NIL,
        book: NIL,
        session: 0,
        owner: 0,
        side: Side::Buy,
        tif: TimeInForce::Gtc,
        stp: StpMode::None,
        post_only: false,
    };
}

/// Fixed pool of order slots.
pub(crate) struct Arena {
    pub slots: Box<[OrderSlot]>,
    free_head: u32,
    used: u32,
    /// One past the highest slot ever handed out. Fresh slots are taken only when no freed
    /// slot is waiting (the free list is LIFO), so this is the peak number of live orders, and
    /// every live order is below it: a scan of the arena stops here.
    high_water: u32,
}

impl Arena {
    pub fn new(capacity: u32) -> Arena {
        let mut slots = alloc_slice(capacity as usize, OrderSlot::EMPTY);
        for (i, s) in slots.iter_mut().enumerate() {
            s.next = if i + 1 < capacity as usize {
                i as u32 + 1
            } else {
                NIL
            };
        }
        Arena {
            slots,
            free_head: 0,
            used: 0,
            high_water: 0,
        }
    }

    /// Whether a slot can be taken.
    #[inline]
    pub fn has_free(&self) -> bool {
        self.free_head != NIL
    }

    /// Takes a free slot; `None` when the arena is full.
    #[inline]
    pub fn alloc(&mut self) -> Option<u32> {
        let i = self.free_head;
        if i == NIL {
            return None;
        }
        self.free_head = self.slots[i as usize].next;
        self.used += 1;
        self.high_water = self.high_water.max(i + 1);
        Some(i)
    }

    /// Returns a slot to the free list.
    #[inline]
    pub fn free(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        s.next = self.free_head;
        s.level = NIL;
        self.free_head = i;
        self.used -= 1;
    }

    /// One past the highest slot ever used.
    #[inline]
    pub fn high_water(&self) -> u32 {
        self.high_water
    }

    /// Whether slot `i` holds a resting order (free slots have no level).
    #[inline]
    pub fn is_resting(&self, i: u32) -> bool {
        self.slots[i as usize].level != NIL
    }

    /// Slots in use.
    #[inline]
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Total slots.
    #[inline]
    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The freed slots below the high-water mark, in the order `alloc` will hand them out.
    /// Cold (snapshots and the state hash).
    ///
    /// This is all of the free list that history shaped: the rest of it is always the
    /// never-used slots `high_water..capacity` in ascending order, because fresh slots are
    /// taken only once no freed one is waiting and freed slots are pushed in front of them.
    pub fn reuse_order(&self) -> impl Iterator<Item = u32> + '_ {
        let hw = self.high_water;
        let mut cur = self.free_head;
        std::iter::from_fn(move || {
            if cur == NIL || cur >= hw {
                return None;
            }
            let i = cur;
            cur = self.slots[i as usize].next;
            Some(i)
        })
    }

    /// Rebuilds the free list of a freshly made arena from a snapshot (cold): `reuse` first
    /// (as [`Arena::reuse_order`] gave it), then the never-used slots from `high_water` up.
    /// The caller has written the live slots and checked that `reuse` and the live slots
    /// partition `0..high_water` and that `high_water <= capacity`.
    pub fn restore_free_list(&mut self, high_water: u32, used: u32, reuse: &[u32]) {
        debug_assert!(high_water <= self.capacity());
        debug_assert_eq!(reuse.len() as u64 + used as u64, high_water as u64);
        let tail = if high_water < self.capacity() {
            high_water
        } else {
            NIL
        };
        for (k, &i) in reuse.iter().enumerate() {
            let s = &mut self.slots[i as usize];
            s.next = reuse.get(k + 1).copied().unwrap_or(tail);
            s.level = NIL;
        }
        self.free_head = reuse.first().copied().unwrap_or(tail);
        self.used = used;
        self.high_water = high_water;
    }
}

//! Order id -> arena slot: a pre-sized open-addressing hash table.
//!
//! Linear probing in Robin Hood order with backward-shift deletion, so there are no
//! tombstones and probe lengths do not degrade over a long session. The table has at least twice as many entries as the
//! arena has slots, so the load factor never exceeds 0.5 and an insert always finds room.
//! Order ids are gateway-assigned (gateway index in the high bits, counter in the low bits),
//! not client-chosen, so the hash does not need to resist adversarial keys; see `home`.

use super::orders::NIL;
use super::storage::alloc_slice;
use super::types::{OrderId, COUNTER_MASK, GATEWAY_SHIFT};

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    key: OrderId,
    /// Arena slot, or `NIL` when the entry is empty.
    slot: u32,
}

/// The id index.
pub(crate) struct OrderIndex {
    entries: Box<[Entry]>,
    mask: usize,
    /// Where each gateway's run of buckets starts (see `home`); 2 KiB, stays in L1.
    gateway_offset: Box<[u64; 256]>,
    len: usize,
}

impl OrderIndex {
    /// A table for up to `max_orders` live ids.
    pub fn new(max_orders: u32) -> OrderIndex {
        let size = (max_orders as usize * 2).next_power_of_two().max(16);
        OrderIndex {
            entries: alloc_slice(size, Entry { key: 0, slot: NIL }),
            mask: size - 1,
            gateway_offset: Box::new(std::array::from_fn(|g| {
                ((g as u8).reverse_bits() as u64 * size as u64) >> 8
            })),
            len: 0,
        }
    }

    /// Home bucket of a key: the gateway's counter, plus an offset that gives each gateway its
    /// own part of the table.
    ///
    /// Keeping the counter as is puts consecutive ids of one gateway in consecutive buckets:
    /// the live ids of a venue are a sliding window of recent counters, so their buckets form a
    /// compact, cache-resident run instead of being scattered over the whole table as a
    /// multiplicative (Fibonacci) hash of the whole key would scatter them (measured in
    /// `docs/engine.md`: twice the throughput on the standard workload). The gateway index
    /// (the top byte, see [`super::types::order_id`]) picks where its run starts: the
    /// bit-reversed index as a fraction of the table (0, 1/2, 1/4, 3/4, 1/8, ...), so any
    /// number of gateways get evenly spaced, non-overlapping regions.
    #[inline]
    fn home(&self, key: OrderId) -> usize {
        let offset = self.gateway_offset[(key >> GATEWAY_SHIFT) as usize];
        ((key & COUNTER_MASK).wrapping_add(offset) as usize) & self.mask
    }

    /// Starts loading the home bucket of `key` (see [`super::storage::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: OrderId) {
        super::storage::prefetch(&self.entries[self.home(key)]);
    }

    /// Number of live ids.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// How far the entry at bucket `i` sits from its home bucket.
    #[inline]
    fn displacement(&self, i: usize, key: OrderId) -> usize {
        i.wrapping_sub(self.home(key)) & self.mask
    }

    /// Bucket holding `key`, if present. Robin Hood order lets a miss stop as soon as it meets
    /// an entry closer to its home than the probe is to the key's home.
    #[inline]
    fn position(&self, key: OrderId) -> Option<usize> {
        let mut i = self.home(key);
        let mut dist = 0;
        loop {
            let e = self.entries[i];
            if e.slot == NIL {
                return None;
            }
            if e.key == key {
                return Some(i);
            }
            if self.displacement(i, e.key) < dist {
                return None;
            }
            i = (i + 1) & self.mask;
            dist += 1;
        }
    }

    /// The slot of `key`, if live.
    #[inline]
    pub fn get(&self, key: OrderId) -> Option<u32> {
        self.position(key).map(|i| self.entries[i].slot)
    }

    /// Inserts `key -> slot`. Returns false (and changes nothing) if `key` is already present.
    /// The caller guarantees room (at most `max_orders` live ids).
    ///
    /// Robin Hood insertion: an entry that is further from its home takes the bucket of one
    /// that is closer, so every probe run is sorted by home bucket. That is what lets lookups
    /// stop early and deletion stop at the first entry sitting at its home, which matters here:
    /// the live ids of a venue are mostly consecutive, so they fill long runs of consecutive
    /// buckets, and a plain backward-shift delete would walk to the end of such a run (it did:
    /// `remove` was 9% of the standard workload before this).
    #[inline]
    pub fn insert(&mut self, key: OrderId, slot: u32) -> bool {
        debug_assert!(slot != NIL);
        let mut cur = Entry { key, slot };
        let mut i = self.home(key);
        let mut dist = 0;
        // Until the first swap, the probe passes exactly where a lookup of `key` would look,
        // so a duplicate is found there; after a swap we carry an entry already in the table.
        let mut carrying_new = true;
        loop {
            let e = self.entries[i];
            if e.slot == NIL {
                self.entries[i] = cur;
                self.len += 1;
                return true;
            }
            if carrying_new && e.key == key {
                return false;
            }
            let d = self.displacement(i, e.key);
            if d < dist {
                debug_assert!(!carrying_new || self.position(key).is_none());
                self.entries[i] = cur;
                cur = e;
                dist = d;
                carrying_new = false;
            }
            i = (i + 1) & self.mask;
            dist += 1;
        }
    }

    /// Calls `f(slot)` for every entry, in table order starting just after an empty bucket.
    /// Cold (snapshots).
    ///
    /// Why this order: inserting the same keys into an empty table of the same size in this
    /// order reproduces this exact layout. Each run of buckets is sorted by home bucket, so a
    /// key inserted after everything before it in its run probes past those entries without
    /// displacing any and lands in its old bucket. The layout is otherwise not a function of
    /// the key set alone: keys sharing a home bucket sit in the order they arrived.
    pub fn for_each_in_table_order(&self, mut f: impl FnMut(u32)) {
        let Some(empty) = self.entries.iter().position(|e| e.slot == NIL) else {
            return; // unreachable: the load factor is at most 0.5
        };
        for k in 1..=self.entries.len() {
            let e = self.entries[(empty + k) & self.mask];
            if e.slot != NIL {
                f(e.slot);
            }
        }
    }

    /// Every bucket as (key, slot), empty ones as (0, NIL): the exact layout, for tests.
    #[cfg(test)]
    pub fn entries_for_test(&self) -> Vec<(OrderId, u32)> {
        self.entries
            .iter()
            .map(|e| {
                if e.slot == NIL {
                    (0, NIL)
                } else {
                    (e.key, e.slot)
                }
            })
            .collect()
    }

    /// Removes `key`, returning its slot.
    #[inline]
    pub fn remove(&mut self, key: OrderId) -> Option<u32> {
        let mut i = self.position(key)?;
        let slot = self.entries[i].slot;
        // Backward shift: pull the rest of the run back one bucket until an empty bucket or an
        // entry already at its home (Robin Hood order guarantees nothing after it belongs
        // earlier). No tombstones, so probe lengths never degrade over a long session.
        loop {
            let j = (i + 1) & self.mask;
            let e = self.entries[j];
            if e.slot == NIL || self.displacement(j, e.key) == 0 {
                break;
            }
            self.entries[i] = e;
            i = j;
        }
        self.entries[i].slot = NIL;
        self.len -= 1;
        Some(slot)
    }
}

/// Ids whose removal from the index is deferred to the end of a sweep.
///
/// A sweep fills makers one after another; each filled maker's id must leave the index, and
/// its bucket is a random cache line (old ids are cold). Removing them one by one serialises
/// those misses behind the queue walk. Collecting them here, prefetching each bucket the moment
/// the id is known, and removing them together at the end lets the misses overlap. Nothing
/// looks ids up during a sweep, so the index may lag behind the book until `flush`.
pub(crate) struct RemovalBatch {
    ids: [OrderId; REMOVAL_BATCH],
    len: usize,
}

const REMOVAL_BATCH: usize = 16;

impl RemovalBatch {
    #[inline]
    pub fn new() -> RemovalBatch {
        RemovalBatch {
            ids: [0; REMOVAL_BATCH],
            len: 0,
        }
    }

    /// Queues `id` for removal and starts loading its bucket.
    #[inline]
    pub fn push(&mut self, index: &mut OrderIndex, id: OrderId) {
        if self.len == REMOVAL_BATCH {
            self.flush(index);
        }
        index.prefetch(id);
        self.ids[self.len] = id;
        self.len += 1;
    }

    /// Removes every queued id.
    #[inline]
    pub fn flush(&mut self, index: &mut OrderIndex) {
        for &id in &self.ids[..self.len] {
            let removed = index.remove(id);
            debug_assert!(removed.is_some());
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn insert_get_remove_with_collisions_and_wraparound() {
        let mut ix = OrderIndex::new(8); // 16 buckets
                                         // Keys that share a home bucket and wrap around the end of the table.
        let keys: Vec<u64> = (0..8).map(|k| 15 + 16 * k).collect();
        for (n, &k) in keys.iter().enumerate() {
            assert!(ix.insert(k, n as u32));
        }
        assert!(!ix.insert(keys[3], 99), "duplicate key must be refused");
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(ix.get(k), Some(n as u32));
        }
        assert_eq!(ix.remove(keys[0]), Some(0));
        assert_eq!(ix.remove(keys[5]), Some(5));
        assert_eq!(ix.get(keys[0]), None);
        for (n, &k) in keys.iter().enumerate() {
            if n != 0 && n != 5 {
                assert_eq!(
                    ix.get(k),
                    Some(n as u32),
                    "key {k} lost after backward shift"
                );
            }
        }
        assert_eq!(ix.len(), 6);
        assert_eq!(ix.remove(12345), None);
    }

    /// Longest distance of any entry from its home bucket.
    fn max_displacement(ix: &OrderIndex) -> usize {
        (0..ix.entries.len())
            .filter(|&i| ix.entries[i].slot != NIL)
            .map(|i| ix.displacement(i, ix.entries[i].key))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn gateways_with_similar_counters_do_not_pile_up() {
        // 8 and 5 gateways, each with 1,000 consecutive live counters (the same counters):
        // every gateway's run has its own region, so nothing is displaced.
        for gateways in [8u8, 5] {
            let mut ix = OrderIndex::new(8_000); // 16,384 buckets
            let mut n = 0;
            for g in 0..gateways {
                for c in 5_000..6_000u64 {
                    assert!(ix.insert(crate::engine::order_id(g, c), n));
                    n += 1;
                }
            }
            assert_eq!(max_displacement(&ix), 0, "{gateways} gateways");
            for g in 0..gateways {
                assert!(ix.get(crate::engine::order_id(g, 5_500)).is_some());
            }
        }
    }

    #[test]
    fn reinserting_in_table_order_reproduces_the_layout() {
        // Many keys share home buckets (three gateways, counters folding over a small table),
        // runs wrap around the end, and removals shift entries back.
        let mut naive_differs = false;
        for seed in 1..40u64 {
            let mut ix = OrderIndex::new(64); // 128 buckets
            let mut live = Vec::new();
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for step in 0..2_000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if live.len() < 64 && x % 3 != 0 {
                    let key = crate::engine::order_id((x >> 8) as u8 % 3, (x >> 16) % 400);
                    if ix.insert(key, step) {
                        live.push(key);
                    }
                } else if !live.is_empty() {
                    let k = live.swap_remove((x >> 24) as usize % live.len());
                    assert!(ix.remove(k).is_some());
                }
            }
            let mut order = Vec::new();
            ix.for_each_in_table_order(|slot| order.push(slot));
            assert_eq!(order.len(), ix.len());
            let slot_key: HashMap<u32, u64> = ix
                .entries_for_test()
                .into_iter()
                .filter(|e| e.1 != NIL)
                .map(|(k, s)| (s, k))
                .collect();
            let mut again = OrderIndex::new(64);
            for s in &order {
                assert!(again.insert(slot_key[s], *s));
            }
            assert_eq!(
                again.entries_for_test(),
                ix.entries_for_test(),
                "seed {seed}"
            );
            // Inserting the same keys in another order need not give the same layout.
            let mut naive = OrderIndex::new(64);
            let mut by_key: Vec<(u64, u32)> = slot_key.iter().map(|(&s, &k)| (k, s)).collect();
            by_key.sort_unstable();
            for (k, s) in by_key {
                naive.insert(k, s);
            }
            naive_differs |= naive.entries_for_test() != ix.entries_for_test();
        }
        assert!(
            naive_differs,
            "the test never exercised order-dependent layouts"
        );
    }

    #[test]
    fn random_ops_match_std_hashmap() {
        let mut ix = OrderIndex::new(512);
        let mut model = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mix dense ids and ids with gateway bits set.
            let key = (x % 700) | ((x >> 60) << 40);
            if model.len() < 512 && (x >> 20) % 3 != 0 {
                let fresh = !model.contains_key(&key);
                assert_eq!(ix.insert(key, step), fresh);
                model.entry(key).or_insert(step);
            } else {
                assert_eq!(ix.remove(key), model.remove(&key));
            }
            assert_eq!(ix.len(), model.len());
        }
        for (&k, &v) in &model {
            assert_eq!(ix.get(k), Some(v));
        }
    }
}

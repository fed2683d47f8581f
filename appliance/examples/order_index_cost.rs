//! What the keyed ClOrdID index costs: a gateway's order book (`gateway::orders::OrderBook`,
//! SipHash-1-3 with a random key) against the same open-addressing layout driven by the
//! unkeyed FNV-1a it replaced, on the operations of an order's life (insert a new id, find it
//! twice as a cancel or replace would, finish; the baseline table does no slab or free-list
//! work, so the ratio overstates the keyed book's cost), and the two hash functions alone.
//! Medians of 15 runs of 200,000 orders each, same process, same machine.
//!
//! `cargo run --release -p appliance --example order_index_cost`

use appliance::gateway::orders::{ClientId, OrderBook};
use std::time::Instant;

const N: usize = 200_000;
const RUNS: usize = 15;

/// The old hash, for the baseline table below.
fn fnv(session: u16, id: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in session.to_le_bytes().iter().chain(id) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The unkeyed baseline: linear probing over the same entry count, FNV homes.
struct Fnv {
    keys: Vec<Option<(u16, ClientId)>>,
    mask: usize,
}

impl Fnv {
    fn new(capacity: usize) -> Self {
        let len = (capacity * 4).next_power_of_two();
        Self {
            keys: vec![None; len],
            mask: len - 1,
        }
    }
    fn insert(&mut self, s: u16, id: ClientId) {
        let mut i = fnv(s, id.as_bytes()) as usize & self.mask;
        while self.keys[i].is_some() {
            i = (i + 1) & self.mask;
        }
        self.keys[i] = Some((s, id));
    }
    fn find(&self, s: u16, id: &ClientId) -> bool {
        let mut i = fnv(s, id.as_bytes()) as usize & self.mask;
        while let Some((ks, kid)) = &self.keys[i] {
            if *ks == s && kid == id {
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let ids: Vec<ClientId> = (0..N)
        .map(|i| ClientId::from_bytes(format!("ORD-{i:010}").as_bytes()).unwrap())
        .collect();
    let mut keyed = Vec::new();
    let mut unkeyed = Vec::new();
    for _ in 0..RUNS {
        let mut book = OrderBook::new(0, N);
        let t = Instant::now();
        for id in &ids {
            let slot = book.insert(1, *id).unwrap();
            assert!(book.find(1, id).is_some());
            assert!(book.find(1, id).is_some());
            book.finish(slot);
        }
        keyed.push(t.elapsed().as_nanos() as f64 / N as f64);

        let mut base = Fnv::new(N);
        let t = Instant::now();
        for id in &ids {
            base.insert(1, *id);
            assert!(base.find(1, id));
            assert!(base.find(1, id));
        }
        unkeyed.push(t.elapsed().as_nanos() as f64 / N as f64);
    }
    // The hash functions alone, on the same ids.
    let rs = std::hash::RandomState::new();
    let (mut hk, mut hu) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        use std::hash::BuildHasher;
        let t = Instant::now();
        let mut x = 0u64;
        for id in &ids {
            x ^= rs.hash_one((1u16, id.as_bytes()));
        }
        std::hint::black_box(x);
        hk.push(t.elapsed().as_nanos() as f64 / N as f64);
        let t = Instant::now();
        let mut x = 0u64;
        for id in &ids {
            x ^= fnv(1, id.as_bytes());
        }
        std::hint::black_box(x);
        hu.push(t.elapsed().as_nanos() as f64 / N as f64);
    }
    let (hk, hu) = (median(hk), median(hu));
    println!("hash of a 14-byte ClOrdID, ns, median of {RUNS} x {N}:");
    println!("  SipHash-1-3 (keyed)  {hk:.1}");
    println!("  FNV-1a (unkeyed)     {hu:.1}");
    let (k, u) = (median(keyed), median(unkeyed));
    println!("order life (insert, find x2, finish), ns per order, median of {RUNS} x {N}:");
    println!("  keyed (SipHash-1-3, the order book)  {k:.1}");
    println!("  unkeyed FNV-1a (baseline layout)      {u:.1}");
    println!("  ratio keyed/unkeyed                   {:.2}", k / u);
}

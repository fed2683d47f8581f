//! What an engine snapshot costs with 1,000,000 resting orders: bytes, time to take one
//! (`Engine::snapshot_into`) and time to restore one (`Engine::restore`, which includes
//! `Engine::new` reserving the engine's memory). Restore is one part of a 1 s recovery budget.
//!
//! `cargo run --release -p appliance --example snapshot_cost`
//!
//! The book: four instruments (two gateways' ids, sessions 1-20, owners 1-100, 10% Day orders,
//! mixed STP modes), the default capacity (1,048,576 orders, 4,096 levels per side). Prices are
//! a geometric number of ticks behind the mid (mean ~40, capped at 2,000), so levels are dense
//! near the top and sparse behind it. 1,040,000 adds, 40,000 random cancels and a few thousand
//! crossing IOC orders (partial fills, emptied levels) are followed by adds until exactly
//! 1,000,000 orders rest, so the free list, slot reuse and fill state are not trivial.

use std::time::{Duration, Instant};

use appliance::engine::{
    order_id, Cancel, Capacity, Command, Engine, EngineConfig, Event, EventSink, InstrumentConfig,
    NewOrder, OrdType, Side, StpMode, TimeInForce,
};

const RESTING: u32 = 1_000_000;
const RUNS: usize = 7;

/// Discards events (only the state matters here).
struct Discard;

impl EventSink for Discard {
    fn event(&mut self, ev: &Event) {
        std::hint::black_box(ev);
    }
}

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config() -> EngineConfig {
    let mut instruments: Vec<InstrumentConfig> = ["AAA", "BBB", "CCC", "DDD"]
        .iter()
        .enumerate()
        .map(|(i, s)| InstrumentConfig::plain(i as u32, s))
        .collect();
    instruments[2].tick_size = 5;
    instruments[3].lot_size = 10;
    EngineConfig {
        instruments,
        capacity: Capacity::default(),
    }
}

const MIDS: [i64; 4] = [100_000, 25_000, 500_000, 8_000];

/// Builds the engine described in the module documentation.
fn build() -> Engine {
    let cfg = config();
    let mut e = Engine::new(cfg.clone()).expect("valid config");
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut sink = Discard;
    let mut counter = 0u64;
    let mut ids: Vec<(u64, u32)> = Vec::with_capacity(1_100_000);
    let mut passive = |e: &mut Engine, rng: &mut Rng, ids: &mut Vec<(u64, u32)>| {
        counter += 1;
        let inst = rng.below(4) as usize;
        let (tick, lot) = (
            cfg.instruments[inst].tick_size,
            cfg.instruments[inst].lot_size,
        );
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let mut depth = 1;
        while depth < 2_000 && rng.below(40) != 0 {
            depth += 1;
        }
        let price = match side {
            Side::Buy => MIDS[inst] - depth * tick,
            Side::Sell => MIDS[inst] + depth * tick,
        };
        let session = 1 + rng.below(20) as u32;
        let id = order_id((counter & 1) as u8, counter);
        e.process(
            &Command::New(NewOrder {
                order_id: id,
                instrument: inst as u32,
                session,
                owner: 1 + rng.below(100) as u32,
                side,
                ord_type: OrdType::Limit,
                tif: if rng.below(10) == 0 {
                    TimeInForce::Day
                } else {
                    TimeInForce::Gtc
                },
                price,
                qty: (1 + rng.below(100)) * lot,
                post_only: false,
                stp: StpMode::ALL[rng.below(4) as usize],
            }),
            &mut Discard,
        );
        ids.push((id, session));
    };
    for _ in 0..1_040_000 {
        passive(&mut e, &mut rng, &mut ids);
    }
    for _ in 0..40_000 {
        let k = rng.below(ids.len() as u64) as usize;
        let (order_id, session) = ids.swap_remove(k);
        e.process(&Command::Cancel(Cancel { order_id, session }), &mut sink);
    }
    for n in 0..4_000u64 {
        let inst = (n % 4) as usize;
        let (tick, lot) = (
            cfg.instruments[inst].tick_size,
            cfg.instruments[inst].lot_size,
        );
        let side = if n % 8 < 4 { Side::Buy } else { Side::Sell };
        let reach = (1 + rng.below(3) as i64) * tick;
        e.process(
            &Command::New(NewOrder {
                order_id: order_id(2, n),
                instrument: inst as u32,
                session: 21,
                owner: 101,
                side,
                ord_type: OrdType::Limit,
                tif: TimeInForce::Ioc,
                price: match side {
                    Side::Buy => MIDS[inst] + reach,
                    Side::Sell => MIDS[inst] - reach,
                },
                qty: (1 + rng.below(400)) * lot,
                post_only: false,
                stp: StpMode::None,
            }),
            &mut sink,
        );
    }
    while e.usage().orders < RESTING {
        passive(&mut e, &mut rng, &mut ids);
    }
    e
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn main() {
    let t = Instant::now();
    let e = build();
    let levels: usize = e
        .instruments()
        .map(|i| e.level_count(i, Side::Buy) + e.level_count(i, Side::Sell))
        .sum();
    println!(
        "book: {} resting orders, {} price levels, 4 instruments, max_orders {} (built in {:.1} s)",
        e.usage().orders,
        levels,
        e.usage().max_orders,
        t.elapsed().as_secs_f64()
    );

    let mut snap = Vec::new();
    let mut snap_times = Vec::new();
    for _ in 0..RUNS {
        let mut out = Vec::new();
        let t = Instant::now();
        e.snapshot_into(&mut out);
        snap_times.push(t.elapsed());
        snap = out;
    }

    let mut new_times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let fresh = Engine::new(config()).expect("valid config");
        new_times.push(t.elapsed());
        drop(std::hint::black_box(fresh));
    }

    let mut restore_times = Vec::new();
    let mut restored = None;
    for _ in 0..RUNS {
        drop(restored.take());
        let t = Instant::now();
        let r = Engine::restore(config(), &snap).expect("restore");
        restore_times.push(t.elapsed());
        restored = Some(r);
    }
    let r = restored.expect("restored at least once");
    assert_eq!(r.state_hash(), e.state_hash(), "restored state differs");
    let mut again = Vec::new();
    r.snapshot_into(&mut again);
    assert!(again == snap, "snapshot of the restored engine differs");
    r.check_invariants().expect("restored engine is consistent");

    let (snap_ms, restore_ms, new_ms) = (
        median(snap_times.clone()),
        median(restore_times.clone()),
        median(new_times),
    );
    println!(
        "snapshot: {} bytes ({:.1} MB, {:.1} bytes per resting order)",
        snap.len(),
        snap.len() as f64 / 1e6,
        snap.len() as f64 / e.usage().orders as f64
    );
    println!(
        "snapshot_into: median {} ms of {RUNS} (min {} max {})",
        ms(snap_ms),
        ms(*snap_times.iter().min().expect("runs")),
        ms(*snap_times.iter().max().expect("runs"))
    );
    println!(
        "restore:       median {} ms of {RUNS} (min {} max {}), of which Engine::new ~{} ms",
        ms(restore_ms),
        ms(*restore_times.iter().min().expect("runs")),
        ms(*restore_times.iter().max().expect("runs")),
        ms(new_ms)
    );
    println!("restored engine: state hash, snapshot bytes and invariants match the original");
}

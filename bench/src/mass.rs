//! `bench mass-cancel`: how long one mass cancel stalls an engine holding many resting orders.
//!
//! Mass cancels walk the order arena (they keep no per-owner lists, see `docs/engine.md`), so
//! their cost grows with the book. This fills one book with `orders` resting orders (owners
//! 1..=100, sessions 1..=10, prices within 500 ticks of the mid, seeded), then times three
//! commands one after another: cancel by an owner holding 1% of the orders, cancel on
//! disconnect of a session holding 10% of the orders, and a cancel that matches nothing.

use std::time::{Duration, Instant};

use appliance::engine::{
    CancelReason, Capacity, Command, Engine, EngineConfig, Event, EventSink, InstrumentConfig,
    MassCancel, MassCancelScope, NewOrder, OrdType, Side, StpMode, TimeInForce,
};
use serde::Serialize;

/// One timed mass cancel.
#[derive(Debug, Clone, Serialize)]
pub struct MassCancelTiming {
    /// What was cancelled.
    pub what: &'static str,
    /// Orders cancelled.
    pub cancelled: u64,
    /// Resting orders before the command.
    pub resting_before: u32,
    /// Time `Engine::process` took.
    pub micros: u128,
}

struct Count(u64);

impl EventSink for Count {
    fn event(&mut self, ev: &Event) {
        std::hint::black_box(ev);
        self.0 += 1;
    }
}

/// Fills a book with `orders` resting orders and times the three mass cancels.
pub fn run(orders: u32) -> anyhow::Result<Vec<MassCancelTiming>> {
    let cfg = EngineConfig {
        instruments: vec![InstrumentConfig::plain(0, "MASS")],
        capacity: Capacity {
            max_orders: orders.max(1),
            max_levels_per_side: 1024,
        },
    };
    let mut e = Engine::new(cfg)?;
    let mut sink = Count(0);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for id in 1..=orders as u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let side = if x & 1 == 0 { Side::Buy } else { Side::Sell };
        let depth = 1 + ((x >> 8) % 500) as i64;
        let price = match side {
            Side::Buy => 100_000 - depth,
            Side::Sell => 100_000 + depth,
        };
        let o = NewOrder {
            order_id: id,
            instrument: 0,
            session: 1 + (id % 10) as u32,
            owner: 1 + (id % 100) as u32,
            side,
            ord_type: OrdType::Limit,
            tif: TimeInForce::Gtc,
            price,
            qty: 10,
            post_only: false,
            stp: StpMode::None,
        };
        e.process(&Command::New(o), &mut sink);
    }
    let mass = |session, owner, scope, reason| {
        Command::MassCancel(MassCancel {
            side: None,
            session,
            owner,
            instrument: None,
            scope,
            reason,
        })
    };
    let cases = [
        (
            "owner with 1% of the orders",
            mass(1, 7, MassCancelScope::ByOwner, CancelReason::MassCancel),
        ),
        (
            "disconnect of a session with 10%",
            mass(3, 0, MassCancelScope::BySession, CancelReason::Disconnect),
        ),
        (
            "owner with no orders",
            mass(1, 999, MassCancelScope::ByOwner, CancelReason::MassCancel),
        ),
    ];
    let mut out = Vec::new();
    for (what, cmd) in cases {
        let resting_before = e.usage().orders;
        let t = Instant::now();
        e.process(&cmd, &mut sink);
        let took: Duration = t.elapsed();
        out.push(MassCancelTiming {
            what,
            cancelled: (resting_before - e.usage().orders) as u64,
            resting_before,
            micros: took.as_micros(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_what_each_mass_cancel_removed() {
        let t = super::run(10_000).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].resting_before, t[0].cancelled), (10_000, 100));
        assert_eq!((t[1].resting_before, t[1].cancelled), (9_900, 1_000));
        assert_eq!(t[2].cancelled, 0);
    }
}

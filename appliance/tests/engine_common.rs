//! Helpers shared by the engine test files (included with `#[path]`; this file has no tests).
#![allow(dead_code)]

use appliance::engine::*;

/// One instrument (id 0, "TEST"), tick 1, lot 1, no limits, roomy capacity.
pub fn plain_config() -> EngineConfig {
    EngineConfig {
        instruments: vec![InstrumentConfig::plain(0, "TEST")],
        capacity: Capacity {
            max_orders: 1024,
            max_levels_per_side: 256,
        },
    }
}

pub fn engine() -> Engine {
    Engine::new(plain_config()).expect("valid config")
}

/// A GTC limit order on instrument 0, session 1, owner 1, no STP.
pub fn limit(order_id: OrderId, side: Side, price: Price, qty: Qty) -> NewOrder {
    NewOrder {
        order_id,
        instrument: 0,
        session: 1,
        owner: 1,
        side,
        ord_type: OrdType::Limit,
        tif: TimeInForce::Gtc,
        price,
        qty,
        post_only: false,
        stp: StpMode::None,
    }
}

pub fn market(order_id: OrderId, side: Side, qty: Qty) -> NewOrder {
    NewOrder {
        ord_type: OrdType::Market,
        tif: TimeInForce::Ioc,
        price: 0,
        ..limit(order_id, side, 0, qty)
    }
}

/// Processes one command and returns its events.
pub fn run(e: &mut Engine, cmd: Command) -> Vec<Event> {
    let mut out = Vec::new();
    e.process(&cmd, &mut out);
    out
}

pub fn new(e: &mut Engine, o: NewOrder) -> Vec<Event> {
    run(e, Command::New(o))
}

pub fn kinds(evs: &[Event]) -> Vec<EventKind> {
    evs.iter().map(|e| e.kind).collect()
}

pub fn trades(evs: &[Event]) -> Vec<Trade> {
    evs.iter()
        .filter_map(|e| match e.kind {
            EventKind::Trade(t) => Some(t),
            _ => None,
        })
        .collect()
}

pub fn book_changes(evs: &[Event]) -> Vec<BookChange> {
    evs.iter()
        .filter_map(|e| match e.kind {
            EventKind::BookChange(b) => Some(b),
            _ => None,
        })
        .collect()
}

pub fn cancels(evs: &[Event]) -> Vec<Cancelled> {
    evs.iter()
        .filter_map(|e| match e.kind {
            EventKind::Cancelled(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The reject reason of a single-event answer, panicking with the events otherwise.
pub fn rejected(evs: &[Event]) -> RejectReason {
    match evs {
        [Event {
            kind: EventKind::Rejected(r),
            ..
        }] => r.reason,
        _ => panic!("expected one Rejected, got {evs:?}"),
    }
}

pub fn cancel_rejected(evs: &[Event]) -> RejectReason {
    match evs {
        [Event {
            kind: EventKind::CancelRejected(r),
            ..
        }] => r.reason,
        _ => panic!("expected one CancelRejected, got {evs:?}"),
    }
}

/// Tiny deterministic PRNG (xorshift64*), so tests need no extra dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
}

/// The workload generator's mix (see workloads/README.md), produced in-process: 55% passive
/// GTC adds near the mid, 25% cancels of a random earlier order (filled ones included), 5%
/// quantity-down replaces, 10% IOC limit orders 1-5 ticks through the mid, 5% market orders.
pub struct MixGen {
    rng: Rng,
    mid: i64,
    next_id: u64,
    live: Vec<(u64, u64)>,
}

impl MixGen {
    pub fn new(seed: u64) -> MixGen {
        MixGen {
            rng: Rng(seed | 1),
            mid: 100_000,
            next_id: 1,
            live: Vec::new(),
        }
    }

    pub fn passive(&mut self) -> Command {
        let id = self.next_id;
        self.next_id += 1;
        let side = if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        // Roughly geometric depth, mean ~8 ticks, capped at 500.
        let mut depth = 1;
        while depth < 500 && self.rng.below(8) != 0 {
            depth += 1;
        }
        let price = if side == Side::Buy {
            self.mid - depth
        } else {
            self.mid + depth
        };
        let qty = self.rng.range(1, 100);
        self.live.push((id, qty));
        let mut o = limit(id, side, price, qty);
        o.owner = self.rng.range(1, 100) as u32;
        Command::New(o)
    }

    pub fn next_command(&mut self) -> Command {
        if self.rng.below(100) == 0 {
            self.mid += if self.rng.below(2) == 0 { -1 } else { 1 };
        }
        let k = self.rng.below(100);
        if k < 55 || (k < 85 && self.live.is_empty()) {
            return self.passive();
        }
        if k < 80 {
            let i = self.rng.below(self.live.len() as u64) as usize;
            let (id, _) = self.live.swap_remove(i);
            return Command::Cancel(Cancel {
                order_id: id,
                session: 1,
            });
        }
        if k < 85 {
            let i = self.rng.below(self.live.len() as u64) as usize;
            let (id, qty) = self.live[i];
            let new_qty = (qty - self.rng.range(1, (qty / 2).max(1))).max(1);
            self.live[i].1 = new_qty;
            return Command::Replace(Replace {
                order_id: id,
                session: 1,
                price: None,
                qty: new_qty,
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let side = if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let qty = self.rng.range(1, 300);
        let mut o = if k < 95 {
            let reach = self.rng.range(1, 5) as i64;
            let price = if side == Side::Buy {
                self.mid + reach
            } else {
                self.mid - reach
            };
            NewOrder {
                tif: TimeInForce::Ioc,
                ..limit(id, side, price, qty)
            }
        } else {
            market(id, side, qty)
        };
        o.owner = self.rng.range(1, 100) as u32;
        Command::New(o)
    }
}

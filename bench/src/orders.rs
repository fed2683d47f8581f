//! What the load generator sends: order operations drawn from the standard workload mix
//! (`workloads/README.md`), either generated on the fly or replayed from a workload file,
//! mapped onto the venue's instruments and a run-unique token space.
//!
//! Operations are protocol-neutral ([`Op`]); the venue drivers (`crate::venue`) encode them
//! as binary frames or FIX messages.

use appliance::engine::{Command, OrdType, Side as EngineSide, TimeInForce};

/// An instrument the generator trades: its symbol and where its prices live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolSpec {
    /// Symbol as the venue knows it.
    pub name: String,
    /// Reference (mid) price in price units (e.g. 100.00 with 4 decimals = 1_000_000).
    pub reference_units: i64,
}

/// How prices are written: units per tick and implied decimals (4 and 100 for the demo
/// instruments: tick 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceGrid {
    /// Implied decimals of a price unit.
    pub decimals: u8,
    /// Price units per tick.
    pub tick_units: i64,
}

/// Parses `NAME:PRICE[,NAME:PRICE...]` (PRICE a decimal like `100.00`) into symbol specs.
pub fn parse_symbols(s: &str, grid: PriceGrid) -> Result<Vec<SymbolSpec>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (name, price) = part
            .split_once(':')
            .ok_or_else(|| format!("symbol {part:?}: expected NAME:PRICE"))?;
        out.push(SymbolSpec {
            name: name.to_string(),
            reference_units: decimal_to_units(price, grid.decimals)
                .ok_or_else(|| format!("symbol {part:?}: bad price {price:?}"))?,
        });
    }
    if out.is_empty() {
        return Err("no symbols".into());
    }
    Ok(out)
}

/// `"100.05"` with 4 decimals -> 1_000_500 (exact; more decimals than allowed is an error).
pub fn decimal_to_units(s: &str, decimals: u8) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > decimals as usize || int.is_empty() {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let mut units = int.checked_mul(10i64.checked_pow(decimals as u32)?)?;
    if !frac.is_empty() {
        let f: i64 = frac.parse().ok()?;
        units = units.checked_add(f * 10i64.pow((decimals as usize - frac.len()) as u32))?;
    }
    Some(units)
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// Time in force of a new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tif {
    /// Day.
    Day,
    /// Good till cancel.
    Gtc,
    /// Immediate or cancel.
    Ioc,
}

/// One request, protocol-neutral. Tokens are the client's order ids (binary `token`, FIX
/// `ClOrdID` written in decimal); `sym` indexes the generator's symbol list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new order; `price` is `None` for a market order.
    New {
        /// Token of the new order.
        token: u64,
        /// Symbol index.
        sym: u16,
        /// Side.
        side: Side,
        /// Limit price in price units, `None` for market.
        price: Option<i64>,
        /// Quantity.
        qty: u64,
        /// Time in force.
        tif: Tif,
    },
    /// Cancel the order with `token`; `request_token` is the request's own id (FIX ClOrdID).
    Cancel {
        /// Token of the order to cancel.
        token: u64,
        /// Fresh id of this request.
        request_token: u64,
        /// Symbol index.
        sym: u16,
        /// Side of the order.
        side: Side,
    },
    /// Replace the order `orig` (reduce quantity); it becomes `new_token`.
    Replace {
        /// Token of the live order.
        orig: u64,
        /// Token after the replace (fresh).
        new_token: u64,
        /// Symbol index.
        sym: u16,
        /// Side of the order.
        side: Side,
        /// Limit price (unchanged).
        price: i64,
        /// New total quantity.
        qty: u64,
    },
}

/// The operation mixes the generator can draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// The standard workload mix: 55% passive GTC adds, 25% cancels, 5% quantity-down
    /// replaces, 10% aggressive IOC limits, 5% market orders.
    Standard,
    /// Passive adds and cancels only (every request answered by exactly one acknowledgement,
    /// no trades): the cleanest round-trip figure.
    Passive,
    /// Half passive adds, half aggressive IOC orders that trade against them.
    Aggressive,
    /// Passive adds only, never cancelled (up to `--max-live` per connection): builds a deep
    /// book, e.g. the million resting orders of the recovery benchmark.
    Rest,
}

/// A small, fast deterministic PRNG (xorshift64*): the mix must be reproducible from a seed
/// and cost nothing next to a syscall.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced, xorshift must not start at 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
}

#[derive(Debug, Clone, Copy)]
struct Live {
    token: u64,
    sym: u16,
    side: Side,
    price: i64,
    qty: u64,
}

/// Generates one connection's stream of operations from a [`Mix`], tracking the orders it
/// believes rest (as `workloads/gen_workload.py` does: an order that filled meanwhile gets a
/// cancel reject, as on a real venue). The number of live orders is capped so long runs at
/// high rates do not exhaust the venue's order capacity: at the cap the next operation is a
/// cancel.
#[derive(Debug)]
pub struct MixGen {
    mix: Mix,
    rng: Rng,
    mids: Vec<i64>,
    refs: Vec<i64>,
    grid: PriceGrid,
    live: Vec<Live>,
    max_live: usize,
    next_token: u64,
    same_token_replace: bool,
}

impl MixGen {
    /// Replaces keep the order's token (the binary protocol allows `new_token == orig_token`).
    /// Every answer about the order then names the same token, so a binary reply can always be
    /// matched to its request; FIX needs a fresh ClOrdID per request and keeps this off.
    pub fn same_token_replace(mut self, yes: bool) -> Self {
        self.same_token_replace = yes;
        self
    }

    /// A generator whose tokens start at `first_token` (make it unique per connection and run).
    pub fn new(
        mix: Mix,
        seed: u64,
        symbols: &[SymbolSpec],
        grid: PriceGrid,
        first_token: u64,
        max_live: usize,
    ) -> Self {
        MixGen {
            mix,
            rng: Rng::new(seed),
            mids: symbols.iter().map(|s| s.reference_units).collect(),
            refs: symbols.iter().map(|s| s.reference_units).collect(),
            grid,
            live: Vec::with_capacity(max_live + 1),
            max_live: max_live.max(1),
            next_token: first_token,
            same_token_replace: false,
        }
    }

    fn token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    fn side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn passive(&mut self, sym: u16) -> Op {
        let side = self.side();
        // Ticks behind the mid: geometric-ish, mostly near the top (as gen_workload.py).
        let r = self.rng.below(1 << 20) + 1;
        // At most 5% of the reference price behind the mid (and the mid stays within 2% of
        // it): every price is inside a 10% band.
        let max_depth = (self.refs[sym as usize] / 20 / self.grid.tick_units).clamp(1, 200);
        let depth = ((-((r as f64) / (1u64 << 20) as f64).ln() * 8.0) as i64 + 1).min(max_depth);
        let mid = self.mids[sym as usize];
        let off = depth * self.grid.tick_units;
        let price = if side == Side::Buy {
            mid - off
        } else {
            mid + off
        };
        let qty = self.rng.below(100) + 1;
        let token = self.token();
        self.live.push(Live {
            token,
            sym,
            side,
            price,
            qty,
        });
        Op::New {
            token,
            sym,
            side,
            price: Some(price),
            qty,
            tif: Tif::Gtc,
        }
    }

    fn aggressive(&mut self, sym: u16, market: bool) -> Op {
        let side = self.side();
        let mid = self.mids[sym as usize];
        let reach = (self.rng.below(5) as i64 + 1) * self.grid.tick_units;
        let price = if market {
            None
        } else if side == Side::Buy {
            Some(mid + reach)
        } else {
            Some(mid - reach)
        };
        let qty = self.rng.below(300) + 1;
        let token = self.token();
        Op::New {
            token,
            sym,
            side,
            price,
            qty,
            tif: Tif::Ioc,
        }
    }

    fn cancel(&mut self) -> Op {
        let i = self.rng.below(self.live.len() as u64) as usize;
        let o = self.live.swap_remove(i);
        let request_token = self.token();
        Op::Cancel {
            token: o.token,
            request_token,
            sym: o.sym,
            side: o.side,
        }
    }

    fn replace(&mut self) -> Op {
        let i = self.rng.below(self.live.len() as u64) as usize;
        let o = self.live[i];
        let cut = self.rng.below((o.qty / 2).max(1)) + 1;
        let qty = o.qty.saturating_sub(cut).max(1);
        let new_token = if self.same_token_replace {
            o.token
        } else {
            self.token()
        };
        self.live[i].token = new_token;
        self.live[i].qty = qty;
        Op::Replace {
            orig: o.token,
            new_token,
            sym: o.sym,
            side: o.side,
            price: o.price,
            qty,
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let sym = self.rng.below(self.mids.len() as u64) as u16;
        // Slow random walk of the mid (1% of operations move it one tick), as the workload
        // files do. Not for the passive mix: a moving mid lets a new passive order cross an
        // older one, and that mix promises no trades.
        if !matches!(self.mix, Mix::Passive | Mix::Rest) && self.rng.below(100) == 0 {
            let step = if self.rng.below(2) == 0 { 1 } else { -1 } * self.grid.tick_units;
            let r = self.refs[sym as usize];
            let m = &mut self.mids[sym as usize];
            *m = (*m + step).clamp(r - r / 50, r + r / 50);
        }
        if self.live.len() >= self.max_live {
            return self.cancel();
        }
        let roll = self.rng.below(100);
        let have_live = !self.live.is_empty();
        match self.mix {
            Mix::Standard => match roll {
                0..=54 => self.passive(sym),
                55..=79 if have_live => self.cancel(),
                80..=84 if have_live => self.replace(),
                85..=94 => self.aggressive(sym, false),
                95..=99 => self.aggressive(sym, true),
                _ => self.passive(sym),
            },
            Mix::Passive => {
                if roll < 50 || !have_live {
                    self.passive(sym)
                } else {
                    self.cancel()
                }
            }
            Mix::Aggressive => {
                if roll < 50 {
                    self.passive(sym)
                } else {
                    self.aggressive(sym, false)
                }
            }
            Mix::Rest => self.passive(sym),
        }
    }
}

/// Replays one connection's share of a workload file (`workloads/`), cycling when it runs
/// out. Order ids map to tokens `token_base + cycle * id_span + id`, so every cycle uses fresh
/// tokens; instruments map to the configured symbols (instrument % symbols) and prices from
/// the file's ticks around 100000 to `reference + (ticks - 100000) * tick_units`.
#[derive(Debug)]
pub struct Replay {
    cmds: Vec<Command>,
    pos: usize,
    cycle: u64,
    id_span: u64,
    token_base: u64,
    refs: Vec<i64>,
    grid: PriceGrid,
    /// order id -> (sym, side, price, current token) for cancels and replaces (the file names
    /// ids only; a replace gives the order a fresh token, as FIX needs a new ClOrdID).
    orders: std::collections::HashMap<u64, (u16, Side, i64, u64)>,
    next_request: u64,
    same_token_replace: bool,
}

/// Splits a workload's commands over `connections` by order id, so an order's cancel and
/// replace go down the connection that entered it.
pub fn partition(cmds: &[Command], connections: usize) -> Vec<Vec<Command>> {
    let mut out = vec![Vec::new(); connections];
    for c in cmds {
        let id = match c {
            Command::New(o) => o.order_id,
            Command::Cancel(x) => x.order_id,
            Command::Replace(r) => r.order_id,
            _ => continue,
        };
        out[(id % connections as u64) as usize].push(*c);
    }
    out
}

impl Replay {
    /// A replay of `cmds` (one connection's partition).
    pub fn new(
        cmds: Vec<Command>,
        symbols: &[SymbolSpec],
        grid: PriceGrid,
        token_base: u64,
    ) -> Self {
        let max_id = cmds
            .iter()
            .map(|c| match c {
                Command::New(o) => o.order_id,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        Replay {
            cmds,
            pos: 0,
            cycle: 0,
            // Leave room above the ids for request ids of cancels/replaces.
            id_span: (max_id + 1) * 2,
            token_base,
            refs: symbols.iter().map(|s| s.reference_units).collect(),
            grid,
            orders: std::collections::HashMap::new(),
            next_request: 0,
            same_token_replace: false,
        }
    }

    /// As [`MixGen::same_token_replace`].
    pub fn same_token_replace(mut self, yes: bool) -> Self {
        self.same_token_replace = yes;
        self
    }

    fn tok(&self, id: u64) -> u64 {
        self.token_base + self.cycle * self.id_span + id
    }

    fn request_token(&mut self) -> u64 {
        self.next_request = (self.next_request + 1) % (self.id_span / 2);
        self.token_base + self.cycle * self.id_span + self.id_span / 2 + self.next_request
    }

    /// The next operation, or `None` when the partition is empty.
    pub fn next_op(&mut self) -> Option<Op> {
        if self.cmds.is_empty() {
            return None;
        }
        loop {
            if self.pos == self.cmds.len() {
                self.pos = 0;
                self.cycle += 1;
                self.orders.clear();
            }
            let c = self.cmds[self.pos];
            self.pos += 1;
            match c {
                Command::New(o) => {
                    let sym = (o.instrument as usize % self.refs.len()) as u16;
                    let side = match o.side {
                        EngineSide::Buy => Side::Buy,
                        EngineSide::Sell => Side::Sell,
                    };
                    let price = (o.ord_type == OrdType::Limit).then(|| {
                        self.refs[sym as usize] + (o.price - 100_000) * self.grid.tick_units
                    });
                    let tif = match o.tif {
                        TimeInForce::Ioc | TimeInForce::Fok => Tif::Ioc,
                        TimeInForce::Day => Tif::Day,
                        _ => Tif::Gtc,
                    };
                    let token = self.tok(o.order_id);
                    if let (Some(p), false) = (price, o.tif.is_immediate()) {
                        self.orders.insert(o.order_id, (sym, side, p, token));
                    }
                    return Some(Op::New {
                        token,
                        sym,
                        side,
                        price,
                        qty: o.qty,
                        tif,
                    });
                }
                Command::Cancel(x) => {
                    let Some((sym, side, _, token)) = self.orders.remove(&x.order_id) else {
                        continue; // its New was in the preload (not replayed): skip
                    };
                    let request_token = self.request_token();
                    return Some(Op::Cancel {
                        token,
                        request_token,
                        sym,
                        side,
                    });
                }
                Command::Replace(r) => {
                    let Some(&(sym, side, price, orig)) = self.orders.get(&r.order_id) else {
                        continue;
                    };
                    let new_token = if self.same_token_replace {
                        orig
                    } else {
                        self.request_token()
                    };
                    self.orders
                        .insert(r.order_id, (sym, side, price, new_token));
                    return Some(Op::Replace {
                        orig,
                        new_token,
                        sym,
                        side,
                        price,
                        qty: r.qty,
                    });
                }
                _ => continue,
            }
        }
    }
}

/// Either source of operations.
#[derive(Debug)]
pub enum Source {
    /// Generated from a mix.
    Mix(MixGen),
    /// Replayed from a workload file.
    Replay(Replay),
}

impl Source {
    /// The next operation (`None` only for an empty replay partition).
    pub fn next_op(&mut self) -> Option<Op> {
        match self {
            Source::Mix(m) => Some(m.next_op()),
            Source::Replay(r) => r.next_op(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: PriceGrid = PriceGrid {
        decimals: 4,
        tick_units: 100,
    };

    fn demo() -> Vec<SymbolSpec> {
        parse_symbols("ACME:100.00,BOLT:50.00,CRUX:25.00", GRID).unwrap()
    }

    #[test]
    fn symbols_and_decimals_parse_exactly() {
        let s = demo();
        assert_eq!(s[0].reference_units, 1_000_000);
        assert_eq!(s[2].name, "CRUX");
        assert_eq!(decimal_to_units("100.05", 4), Some(1_000_500));
        assert_eq!(decimal_to_units("7", 4), Some(70_000));
        assert_eq!(decimal_to_units("1.00001", 4), None);
        assert!(parse_symbols("ACME", GRID).is_err());
    }

    #[test]
    fn standard_mix_has_the_workload_proportions_and_stays_in_the_band() {
        let syms = demo();
        let mut g = MixGen::new(Mix::Standard, 7, &syms, GRID, 1_000, 1_000_000);
        let (mut new_passive, mut ioc, mut market, mut cancel, mut replace) = (0, 0, 0, 0, 0);
        let mut tokens = std::collections::HashSet::new();
        let n = 300_000;
        for _ in 0..n {
            match g.next_op() {
                Op::New {
                    token,
                    sym,
                    price,
                    tif,
                    qty,
                    ..
                } => {
                    assert!(tokens.insert(token), "token reused");
                    assert!(qty > 0);
                    match (price, tif) {
                        (Some(p), Tif::Gtc) => {
                            new_passive += 1;
                            let r = syms[sym as usize].reference_units;
                            assert!((p - r).abs() <= r / 10, "price {p} outside the band of {r}");
                            assert_eq!(p % 100, 0, "not on the tick");
                        }
                        (Some(_), Tif::Ioc) => ioc += 1,
                        (None, _) => market += 1,
                        _ => unreachable!(),
                    }
                }
                Op::Cancel { request_token, .. } => {
                    assert!(tokens.insert(request_token));
                    cancel += 1
                }
                Op::Replace { new_token, .. } => {
                    assert!(tokens.insert(new_token));
                    replace += 1
                }
            }
        }
        let pct = |x: i32| x as f64 * 100.0 / n as f64;
        assert!(
            (pct(new_passive) - 55.0).abs() < 1.5,
            "{}",
            pct(new_passive)
        );
        assert!((pct(cancel) - 25.0).abs() < 1.5, "{}", pct(cancel));
        assert!((pct(replace) - 5.0).abs() < 1.0);
        assert!((pct(ioc) - 10.0).abs() < 1.0);
        assert!((pct(market) - 5.0).abs() < 1.0);
    }

    #[test]
    fn the_live_cap_forces_cancels() {
        let mut g = MixGen::new(Mix::Passive, 1, &demo(), GRID, 0, 10);
        for _ in 0..1_000 {
            g.next_op();
            assert!(g.live.len() <= 10);
        }
    }

    #[test]
    fn replay_maps_ids_prices_and_partitions_by_order() {
        let w = crate::workload::parse(
            "N 1 0 B L G 99990 17 5\nN 2 1 S L G 100004 3 77\nX 1\nR 2 2\nN 3 0 S M I 0 120 9\n",
        )
        .unwrap();
        let parts = partition(&w.commands, 2);
        assert_eq!(parts[0].len(), 2); // order 2 and its replace
        assert_eq!(parts[1].len(), 3); // orders 1, 3 and the cancel of 1
        let mut r = Replay::new(parts[1].clone(), &demo(), GRID, 1_000_000);
        assert_eq!(
            r.next_op(),
            Some(Op::New {
                token: 1_000_001,
                sym: 0,
                side: Side::Buy,
                price: Some(1_000_000 - 10 * 100),
                qty: 17,
                tif: Tif::Gtc
            })
        );
        match r.next_op() {
            Some(Op::Cancel { token, sym, .. }) => assert_eq!((token, sym), (1_000_001, 0)),
            o => panic!("{o:?}"),
        }
        match r.next_op() {
            Some(Op::New {
                price: None, tif, ..
            }) => assert_eq!(tif, Tif::Ioc),
            o => panic!("{o:?}"),
        }
        // Second cycle: fresh tokens.
        match r.next_op() {
            Some(Op::New { token, .. }) => assert_eq!(token, 1_000_000 + 8 + 1),
            o => panic!("{o:?}"),
        }
    }
}

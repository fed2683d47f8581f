//! One instrument's book: its trading rules (hot copies of the configuration) and two sides.

use super::config::{Capacity, InstrumentConfig, PriceBand};
use super::levels::BookSide;
use super::types::{ExecId, InstrumentId, Price, Qty, Side};

/// Bits of an exec id left for the per-instrument trade counter.
pub const EXEC_COUNTER_BITS: u32 = 40;

/// Largest quantity one order may have in an engine with `max_orders` slots, whatever the
/// instrument allows: with every order at most this big, no level total (a `u64`) can
/// overflow even if the whole arena rests at one price.
pub fn qty_ceiling(max_orders: u32) -> Qty {
    Qty::MAX / max_orders.max(1) as Qty
}

/// A book and the rules checked against it.
pub(crate) struct Book {
    pub id: InstrumentId,
    pub tick: Price,
    pub lot: Qty,
    pub max_qty: Qty,
    pub max_notional: u128,
    pub band: PriceBand,
    /// Last trade price, the percentage band's reference once set.
    pub last_trade: Option<Price>,
    /// Trades so far (the low bits of the exec id).
    pub trades: u64,
    pub bids: BookSide,
    pub asks: BookSide,
}

impl Book {
    pub fn new(cfg: &InstrumentConfig, capacity: Capacity) -> Book {
        Book {
            id: cfg.id,
            tick: cfg.tick_size,
            lot: cfg.lot_size,
            max_qty: cfg
                .max_order_qty
                .unwrap_or(Qty::MAX)
                .min(qty_ceiling(capacity.max_orders)),
            max_notional: cfg.max_notional.map_or(u128::MAX, u128::from),
            band: cfg.price_band,
            last_trade: None,
            trades: 0,
            bids: BookSide::new(Side::Buy, cfg.tick_size, capacity.max_levels_per_side),
            asks: BookSide::new(Side::Sell, cfg.tick_size, capacity.max_levels_per_side),
        }
    }

    #[inline]
    pub fn side(&self, side: Side) -> &BookSide {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    pub fn side_mut(&mut self, side: Side) -> &mut BookSide {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Next exec id: the instrument id in the high bits makes it unique across engines and
    /// independent of how instruments are sharded, so a replay on another layout matches.
    #[inline]
    pub fn next_exec_id(&mut self) -> ExecId {
        self.trades += 1;
        ((self.id as u64) << EXEC_COUNTER_BITS) | (self.trades & ((1 << EXEC_COUNTER_BITS) - 1))
    }

    /// Whether a limit price is inside the band. The percentage band is computed in i128:
    /// `|price - ref| * 10_000 <= ref * bps`, exact and without overflow.
    #[inline]
    pub fn in_band(&self, price: Price) -> bool {
        match self.band {
            PriceBand::None => true,
            PriceBand::Static { min, max } => price >= min && price <= max,
            PriceBand::Percent {
                bps,
                reference_price,
            } => {
                let r = self.last_trade.unwrap_or(reference_price) as i128;
                let diff = (price as i128 - r).abs();
                diff * 10_000 <= r * bps as i128
            }
        }
    }

    /// Whether an incoming order on `side` at `price` would cross the opposite best.
    #[inline]
    pub fn crosses(&self, side: Side, price: Price) -> bool {
        let opp = self.side(side.opposite());
        match opp.best() {
            None => false,
            Some(l) => {
                let best = opp.levels[l as usize].price;
                match side {
                    Side::Buy => price >= best,
                    Side::Sell => price <= best,
                }
            }
        }
    }

    /// Whether a taker on `side` with `limit` (`None`: market) would trade with the opposite
    /// best level right now.
    #[inline]
    pub fn marketable_now(&self, side: Side, limit: Option<Price>) -> bool {
        self.opposite_best(side)
            .is_some_and(|best| super::matching::marketable(side, limit, best))
    }

    /// Opposite best price, if any.
    #[inline]
    pub fn opposite_best(&self, side: Side) -> Option<Price> {
        let opp = self.side(side.opposite());
        opp.best().map(|l| opp.levels[l as usize].price)
    }
}

//! Engine configuration: the instruments an engine owns and the capacities it reserves.
//! Cold path: read once at start-up, validated into [`ConfigError`]s.

use serde::{Deserialize, Serialize};

use super::types::{InstrumentId, Price, Qty};

/// Largest instrument id an engine accepts in its configuration. Instrument ids index a small
/// table, so they must be dense-ish; the appliance numbers its instruments from 0.
pub const MAX_INSTRUMENT_ID: InstrumentId = 1 << 20;

/// Largest order capacity: slots are indexed by `u32` with `u32::MAX` as the null link.
pub const MAX_ORDERS: u32 = 1 << 30;

/// Price band: limit prices outside it are rejected.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceBand {
    /// No band.
    #[default]
    None,
    /// Fixed inclusive bounds, in price units.
    Static {
        /// Lowest accepted limit price.
        min: Price,
        /// Highest accepted limit price.
        max: Price,
    },
    /// `reference +/- bps/10000 * reference`, inclusive. The reference is the instrument's last
    /// trade price in this engine, or `reference_price` before the first trade.
    Percent {
        /// Half-width of the band in basis points (100 = 1%).
        bps: u32,
        /// Reference before the first trade, in price units.
        reference_price: Price,
    },
}

/// One instrument.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InstrumentConfig {
    /// Global instrument id (index into the appliance's instrument list).
    pub id: InstrumentId,
    /// Symbol, for humans and the gateways.
    pub symbol: String,
    /// Price increment, in price units (> 0).
    pub tick_size: Price,
    /// Quantity increment (> 0).
    pub lot_size: Qty,
    /// Largest quantity of one order; `None` for no limit.
    #[serde(default)]
    pub max_order_qty: Option<Qty>,
    /// Largest price x quantity of one order, in price units x quantity; `None` for no limit.
    #[serde(default)]
    pub max_notional: Option<u64>,
    /// Price band.
    #[serde(default)]
    pub price_band: PriceBand,
}

impl InstrumentConfig {
    /// An instrument with tick 1, lot 1 and no limits (what the benchmark workloads assume).
    pub fn plain(id: InstrumentId, symbol: &str) -> InstrumentConfig {
        InstrumentConfig {
            id,
            symbol: symbol.to_string(),
            tick_size: 1,
            lot_size: 1,
            max_order_qty: None,
            max_notional: None,
            price_band: PriceBand::None,
        }
    }
}

/// Memory the engine reserves at start-up. Nothing grows after `Engine::new`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Resting orders across all of this engine's books (the order arena; the id index gets
    /// twice this many slots, rounded up to a power of two).
    pub max_orders: u32,
    /// Distinct price levels per book side.
    pub max_levels_per_side: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            max_orders: 1 << 20,
            max_levels_per_side: 4096,
        }
    }
}

/// Everything one engine needs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The instruments this engine owns; any other instrument id is `UnknownInstrument`.
    pub instruments: Vec<InstrumentConfig>,
    /// Reserved memory.
    #[serde(default)]
    pub capacity: Capacity,
}

/// Why a configuration cannot make an engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Two instruments share an id.
    #[error("instrument id {0} is configured twice")]
    DuplicateInstrument(InstrumentId),
    /// Instrument id too large for the lookup table.
    #[error("instrument id {0} is above the maximum {MAX_INSTRUMENT_ID}")]
    InstrumentIdTooLarge(InstrumentId),
    /// Tick size must be positive.
    #[error("instrument {symbol}: tick_size must be > 0, got {tick_size}")]
    BadTickSize {
        /// Symbol.
        symbol: String,
        /// Value given.
        tick_size: Price,
    },
    /// Lot size must be positive.
    #[error("instrument {0}: lot_size must be > 0")]
    BadLotSize(String),
    /// Band is empty, inverted or has a non-positive reference.
    #[error("instrument {0}: price band is invalid (static: 0 < min <= max; percent: reference_price > 0)")]
    BadPriceBand(String),
    /// A capacity is zero or too large.
    #[error("capacity {field} = {value} is out of range 1..={max}")]
    BadCapacity {
        /// Which field.
        field: &'static str,
        /// Value given.
        value: u32,
        /// Largest accepted.
        max: u32,
    },
}

impl EngineConfig {
    /// Checks every rule `Engine::new` relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut ids: Vec<InstrumentId> = Vec::with_capacity(self.instruments.len());
        for i in &self.instruments {
            if i.id > MAX_INSTRUMENT_ID {
                return Err(ConfigError::InstrumentIdTooLarge(i.id));
            }
            if ids.contains(&i.id) {
                return Err(ConfigError::DuplicateInstrument(i.id));
            }
            ids.push(i.id);
            if i.tick_size <= 0 {
                return Err(ConfigError::BadTickSize {
                    symbol: i.symbol.clone(),
                    tick_size: i.tick_size,
                });
            }
            if i.lot_size == 0 {
                return Err(ConfigError::BadLotSize(i.symbol.clone()));
            }
            let band_ok = match i.price_band {
                PriceBand::None => true,
                PriceBand::Static { min, max } => min > 0 && min <= max,
                PriceBand::Percent {
                    reference_price, ..
                } => reference_price > 0,
            };
            if !band_ok {
                return Err(ConfigError::BadPriceBand(i.symbol.clone()));
            }
        }
        let c = self.capacity;
        if c.max_orders == 0 || c.max_orders > MAX_ORDERS {
            return Err(ConfigError::BadCapacity {
                field: "max_orders",
                value: c.max_orders,
                max: MAX_ORDERS,
            });
        }
        if c.max_levels_per_side == 0 || c.max_levels_per_side > MAX_ORDERS {
            return Err(ConfigError::BadCapacity {
                field: "max_levels_per_side",
                value: c.max_levels_per_side,
                max: MAX_ORDERS,
            });
        }
        Ok(())
    }
}

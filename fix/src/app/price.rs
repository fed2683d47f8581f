//! Exact conversion between FIX decimal prices and integer price units.
//!
//! An instrument's prices are integers with `scale` implied decimals (scale 4: 1 unit =
//! 0.0001, so `101.25` is `1_012_500`). The minimum price increment (tick) is a number of
//! units (tick 100 = 0.01). A price with more significant decimals than the scale, or that is
//! not a whole number of ticks, is rejected: rounding a client's price is never correct.

pub use crate::codec::num::DecimalError;
use crate::codec::num::{parse_decimal, write_price};

/// Why a client's price cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceError {
    /// Not a decimal number.
    Format,
    /// More significant decimals than the instrument's scale.
    TooPrecise,
    /// Does not fit an `i64` at this scale.
    Overflow,
    /// Not a multiple of the tick.
    NotOnTick,
    /// Zero or negative where a positive price is required.
    NotPositive,
}

impl From<DecimalError> for PriceError {
    fn from(e: DecimalError) -> Self {
        match e {
            DecimalError::Format => PriceError::Format,
            DecimalError::TooPrecise => PriceError::TooPrecise,
            DecimalError::Overflow => PriceError::Overflow,
        }
    }
}

/// Decimal text -> integer units at `scale` implied decimals, exactly.
#[inline]
pub fn to_units(text: &[u8], scale: u8) -> Result<i64, PriceError> {
    Ok(parse_decimal(text, scale)?)
}

/// Checks that `units` is a whole number of ticks (`tick_units > 0`).
#[inline]
pub fn check_tick(units: i64, tick_units: i64) -> Result<i64, PriceError> {
    if tick_units > 0 && units % tick_units != 0 {
        return Err(PriceError::NotOnTick);
    }
    Ok(units)
}

/// Decimal text -> integer units, then the tick check and a positivity check: what a limit
/// order's Price must pass.
#[inline]
pub fn limit_price(text: &[u8], scale: u8, tick_units: i64) -> Result<i64, PriceError> {
    let units = check_tick(to_units(text, scale)?, tick_units)?;
    if units <= 0 {
        return Err(PriceError::NotPositive);
    }
    Ok(units)
}

/// Integer units -> decimal text (trailing zeros trimmed) into `out`; returns the length.
#[inline]
pub fn format_units(out: &mut [u8], units: i64, scale: u8) -> Option<usize> {
    write_price(out, units, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_with_tick() {
        assert_eq!(limit_price(b"101.25", 4, 100), Ok(1_012_500));
        assert_eq!(limit_price(b"101.255", 4, 100), Err(PriceError::NotOnTick));
        assert_eq!(
            limit_price(b"101.25501", 4, 100),
            Err(PriceError::TooPrecise)
        );
        assert_eq!(limit_price(b"0", 4, 100), Err(PriceError::NotPositive));
        assert_eq!(limit_price(b"abc", 4, 100), Err(PriceError::Format));
        let mut b = [0u8; 32];
        let n = format_units(&mut b, 1_012_500, 4).unwrap();
        assert_eq!(&b[..n], b"101.25");
    }
}

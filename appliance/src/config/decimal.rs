//! Exact decimal strings to integer price units, for configuration values.

/// Parses `s` ("12.34", "-0.5", "100") as a fixed-point number with `decimals` implied
/// decimals: "12.34" with 4 decimals is 123400. Refuses rather than rounds: more significant
/// decimals than `decimals`, overflow, or anything that is not a plain decimal.
pub fn parse_decimal(s: &str, decimals: u8) -> Result<i64, &'static str> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("is not a decimal number");
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err("is not a decimal number");
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > decimals as usize {
        return Err("has more decimals than price_decimals allows");
    }
    let mut v: i64 = 0;
    let digits = int
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', decimals as usize - frac.len()));
    for b in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((b - b'0') as i64))
            .ok_or("is too large")?;
    }
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::parse_decimal;

    #[test]
    fn exact_conversion() {
        assert_eq!(parse_decimal("0.01", 4), Ok(100));
        assert_eq!(parse_decimal("100", 4), Ok(1_000_000));
        assert_eq!(parse_decimal("100.", 2), Ok(10_000));
        assert_eq!(parse_decimal(".5", 1), Ok(5));
        assert_eq!(parse_decimal("-1.25", 2), Ok(-125));
        assert_eq!(parse_decimal("1.2500", 2), Ok(125));
        assert_eq!(parse_decimal("7", 0), Ok(7));
    }

    #[test]
    fn refuses_instead_of_rounding() {
        assert!(parse_decimal("0.001", 2).is_err());
        assert!(parse_decimal("1e3", 2).is_err());
        assert!(parse_decimal("", 2).is_err());
        assert!(parse_decimal(".", 2).is_err());
        assert!(parse_decimal("1.2.3", 2).is_err());
        assert!(parse_decimal(" 1", 2).is_err());
        assert!(parse_decimal("92233720368547758070", 0).is_err());
        assert!(parse_decimal("922337203685477.5808", 4).is_err());
    }
}

//! Integer and fixed-point decimal conversion between FIX text and machine integers.
//!
//! Prices travel as decimal strings but the engine works in integer price units with an
//! instrument-specific number of implied decimals; the conversion must be exact, so it is done
//! digit by digit with overflow checks and never through a float.

/// Why a decimal string could not be turned into integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not `[-]digits[.digits]` (a `+` sign, an exponent, no digit at all, stray bytes).
    Format,
    /// More significant decimals than the scale allows (e.g. `1.005` at scale 2).
    TooPrecise,
    /// The value does not fit an `i64` at this scale.
    Overflow,
}

/// Largest scale accepted: 10^18 still fits an `i64`.
pub const MAX_SCALE: u8 = 18;

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// `10^scale` for `scale <= MAX_SCALE`.
#[inline]
pub fn pow10(scale: u8) -> i64 {
    POW10[scale as usize]
}

/// Parses an unsigned decimal integer made of ASCII digits only (no sign, at least one digit).
#[inline]
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

/// Parses a FIX `int`: optional `-`, then digits. QuickFIX rejects a leading `+`, so do we.
#[inline]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        Some((b'-', rest)) => {
            let v = parse_u64(rest)?;
            if v > i64::MAX as u64 + 1 {
                None
            } else {
                Some((v as i64).wrapping_neg())
            }
        }
        _ => {
            let v = parse_u64(s)?;
            i64::try_from(v).ok()
        }
    }
}

/// True when `s` is a valid FIX `int` (any length of digits; value range is not checked).
#[inline]
pub fn is_int(s: &[u8]) -> bool {
    let digits = match s.split_first() {
        Some((b'-', rest)) => rest,
        _ => s,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// True when `s` is a valid FIX `float`/`Qty`/`Price`: `[-]digits[.digits]` with at least one
/// digit, as QuickFIX's DoubleConvertor accepts (no `+`, no exponent).
#[inline]
pub fn is_decimal(s: &[u8]) -> bool {
    let body = match s.split_first() {
        Some((b'-', rest)) => rest,
        _ => s,
    };
    let mut digits = 0usize;
    let mut dot = false;
    for &b in body {
        if b.is_ascii_digit() {
            digits += 1;
        } else if b == b'.' && !dot {
            dot = true;
        } else {
            return false;
        }
    }
    digits > 0
}

/// Converts a decimal string to integer units at `scale` implied decimals, exactly.
///
/// `"101.25"` at scale 4 is `1_012_500`. Decimals beyond the scale are accepted only when they
/// are zeros (`"1.50"` at scale 1 is 15); anything else is [`DecimalError::TooPrecise`], never
/// rounded.
pub fn parse_decimal(s: &[u8], scale: u8) -> Result<i64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::Overflow);
    }
    let (neg, body) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &body[..0]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DecimalError::Format);
    }
    // Accumulate as a negative number so i64::MIN is representable.
    let mut acc: i64 = 0;
    for &b in int_part {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(DecimalError::Format);
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(d as i64))
            .ok_or(DecimalError::Overflow)?;
    }
    let mut used = 0u8;
    for &b in frac_part {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(DecimalError::Format);
        }
        if used < scale {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_sub(d as i64))
                .ok_or(DecimalError::Overflow)?;
            used += 1;
        } else if d != 0 {
            return Err(DecimalError::TooPrecise);
        }
    }
    acc = acc
        .checked_mul(pow10(scale - used))
        .ok_or(DecimalError::Overflow)?;
    if neg {
        Ok(acc)
    } else {
        acc.checked_neg().ok_or(DecimalError::Overflow)
    }
}

/// Parses a FIX `Qty` that must be a whole number (`"2000"`, `"002000.00"`); a non-zero
/// fractional part or a negative value is an error.
pub fn parse_qty(s: &[u8]) -> Result<u64, DecimalError> {
    let v = parse_decimal(s, 0)?;
    u64::try_from(v).map_err(|_| DecimalError::Format)
}

/// Two-digit lookup table: formatting two digits per step halves the divisions.
pub(crate) const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Number of decimal digits of `v` (1 for 0).
#[inline(always)]
pub fn digits_u64(v: u64) -> usize {
    // floor(log10) from the bit length (1233/4096 ~ log10(2)), corrected by one comparison.
    const P: [u64; 20] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
        10_000_000_000,
        100_000_000_000,
        1_000_000_000_000,
        10_000_000_000_000,
        100_000_000_000_000,
        1_000_000_000_000_000,
        10_000_000_000_000_000,
        100_000_000_000_000_000,
        1_000_000_000_000_000_000,
        10_000_000_000_000_000_000,
    ];
    let bits = 64 - (v | 1).leading_zeros();
    let t = ((bits * 1233) >> 12) as usize;
    (t + 1 - (v < P[t]) as usize).max(1)
}

/// The eight decimal digits of `v < 10^8`, zero-padded, as ASCII in a little-endian `u64`
/// (byte 0 is the most significant digit). Branch-free: the halves, then the pairs, then the
/// single digits are split in parallel lanes of one 64-bit register with multiply-shift
/// divisions that are exact in these ranges.
#[inline(always)]
pub(crate) fn eight_digits(v: u32) -> u64 {
    let ab = (v / 10_000) as u64 | (((v % 10_000) as u64) << 32);
    // /100 per 32-bit lane: (x * 5243) >> 19 is exact for x < 43,699.
    let q = ((ab * 5243) >> 19) & 0x0000_007f_0000_007f;
    let r = ab - q * 100;
    let pairs = q | (r << 16);
    // /10 per 16-bit lane: (x * 103) >> 10 is exact for x < 179.
    let tens = ((pairs * 103) >> 10) & 0x000f_000f_000f_000f;
    let ones = pairs - tens * 10;
    (tens | (ones << 8)) | 0x3030_3030_3030_3030
}

/// The four decimal digits of `v < 10^4`, zero-padded, as ASCII in a little-endian `u32`:
/// [`eight_digits`] with one lane split less, for the many small numbers of a report
/// (quantities, price fractions and integer parts).
#[inline(always)]
pub(crate) fn four_digits(v: u32) -> u32 {
    // /100: (x * 5243) >> 19 is exact for x < 43,699.
    let q = (v * 5243) >> 19;
    let pairs = q | ((v - q * 100) << 16);
    // /10 per 16-bit lane: (x * 103) >> 10 is exact for x < 179.
    let tens = ((pairs * 103) >> 10) & 0x000f_000f;
    let ones = pairs - tens * 10;
    (tens | (ones << 8)) | 0x3030_3030
}

/// The `n` (1 to 8) decimal digits of `v < 10^n`, zero-padded, as ASCII in the low `n` bytes
/// of a little-endian `u64` (the rest zero).
#[inline(always)]
pub(crate) fn low_digits(v: u32, n: usize) -> u64 {
    if n <= 4 {
        (four_digits(v) as u64) >> (8 * (4 - n))
    } else {
        eight_digits(v) >> (8 * (8 - n))
    }
}

/// Writes `v` in decimal at the start of `out`, returns the number of bytes written, or
/// `None` when `out` is too short. With 24 bytes of room (the encoder's usual case) the
/// digits are produced eight at a time and stored with whole-word writes.
#[inline]
pub fn write_u64(out: &mut [u8], v: u64) -> Option<usize> {
    if let Some(dst) = out.get_mut(..24) {
        let n = digits_u64(v);
        if v < 100_000_000 {
            let w = low_digits(v as u32, n);
            dst[..8].copy_from_slice(&w.to_le_bytes());
        } else {
            let hi = v / 100_000_000;
            let lo = (v % 100_000_000) as u32;
            let h = n - 8;
            if hi < 100_000_000 {
                let w = low_digits(hi as u32, h);
                dst[..8].copy_from_slice(&w.to_le_bytes());
            } else {
                let top = (hi / 100_000_000) as u32; // at most 4 digits
                let t = h - 8;
                let w = eight_digits(top) >> (8 * (8 - t));
                dst[..8].copy_from_slice(&w.to_le_bytes());
                let mid = eight_digits((hi % 100_000_000) as u32);
                dst[t..t + 8].copy_from_slice(&mid.to_le_bytes());
            }
            dst[h..h + 8].copy_from_slice(&eight_digits(lo).to_le_bytes());
        }
        return Some(n);
    }
    write_u64_short(out, v)
}

/// [`write_u64`] for a buffer with less than 24 bytes of room.
#[cold]
fn write_u64_short(out: &mut [u8], v: u64) -> Option<usize> {
    let n = digits_u64(v);
    let dst = out.get_mut(..n)?;
    let mut i = n;
    let mut x = v;
    while x >= 10_000 {
        let r = (x % 10_000) as u32;
        x /= 10_000;
        let hi = (r / 100) as usize * 2;
        let lo = (r % 100) as usize * 2;
        i -= 4;
        dst[i] = DIGIT_PAIRS[hi];
        dst[i + 1] = DIGIT_PAIRS[hi + 1];
        dst[i + 2] = DIGIT_PAIRS[lo];
        dst[i + 3] = DIGIT_PAIRS[lo + 1];
    }
    let mut x = x as u32;
    if x >= 100 {
        let lo = (x % 100) as usize * 2;
        x /= 100;
        i -= 2;
        dst[i] = DIGIT_PAIRS[lo];
        dst[i + 1] = DIGIT_PAIRS[lo + 1];
    }
    if x >= 10 {
        let p = x as usize * 2;
        dst[i - 2] = DIGIT_PAIRS[p];
        dst[i - 1] = DIGIT_PAIRS[p + 1];
    } else {
        dst[i - 1] = b'0' + x as u8;
    }
    Some(n)
}

/// Writes `v` as exactly `width` digits, zero-padded (used by timestamps and fractions).
/// `v` must fit.
#[inline]
pub fn write_padded(out: &mut [u8], mut v: u64, width: usize) {
    let mut i = width;
    while i >= 2 {
        let p = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        out[i] = DIGIT_PAIRS[p];
        out[i + 1] = DIGIT_PAIRS[p + 1];
    }
    if i == 1 {
        out[0] = b'0' + (v % 10) as u8;
    }
}

/// Writes `v` in decimal, with a leading `-` when negative.
#[inline]
pub fn write_i64(out: &mut [u8], v: i64) -> Option<usize> {
    if v < 0 {
        *out.first_mut()? = b'-';
        Some(1 + write_u64(&mut out[1..], v.unsigned_abs())?)
    } else {
        write_u64(out, v as u64)
    }
}

/// Writes integer `units` with `scale` implied decimals as a decimal string, trimming trailing
/// zeros of the fraction (`1_012_500` at scale 4 is `101.25`, `1_000_000` is `100`).
pub fn write_price(out: &mut [u8], units: i64, scale: u8) -> Option<usize> {
    if scale <= 8 {
        if let Some(n) = write_decimal8(out, units, scale, true) {
            return Some(n);
        }
    }
    let mut scale = scale.min(MAX_SCALE);
    let mut mag = units.unsigned_abs();
    while scale > 0 && mag % 10 == 0 {
        mag /= 10;
        scale -= 1;
    }
    write_fixed_mag(out, units < 0, mag, scale)
}

/// Writes integer `value` with `decimals` implied decimals using exactly `decimals` digits after
/// the point (`12_345` with 3 decimals is `12.345`; with 0 decimals no point is written). For
/// values such as AvgPx where the gateway chooses the precision.
pub fn write_fixed(out: &mut [u8], value: i64, decimals: u8) -> Option<usize> {
    if decimals <= 8 {
        if let Some(n) = write_decimal8(out, value, decimals, false) {
            return Some(n);
        }
    }
    write_fixed_mag(
        out,
        value < 0,
        value.unsigned_abs(),
        decimals.min(MAX_SCALE),
    )
}

fn write_fixed_mag(out: &mut [u8], neg: bool, mag: u64, decimals: u8) -> Option<usize> {
    let mut pos = 0;
    if neg && mag != 0 {
        *out.first_mut()? = b'-';
        pos = 1;
    }
    if decimals == 0 {
        return Some(pos + write_u64(out.get_mut(pos..)?, mag)?);
    }
    let (int, frac) = divmod_pow10(mag, decimals);
    match out.get_mut(pos..pos + 8) {
        Some(dst) if int < 100_000_000 => {
            let n = digits_u64(int);
            dst.copy_from_slice(&low_digits(int as u32, n).to_le_bytes());
            pos += n;
        }
        _ => pos += write_u64(out.get_mut(pos..)?, int)?,
    }
    let d = decimals as usize;
    if d <= 8 {
        // Fraction digits eight at a time: the last `d` of the zero-padded eight.
        if let Some(dst) = out.get_mut(pos..pos + 9) {
            dst[0] = b'.';
            let w = low_digits(frac as u32, d);
            dst[1..9].copy_from_slice(&w.to_le_bytes());
            return Some(pos + 1 + d);
        }
    }
    let dst = out.get_mut(pos..pos + 1 + d)?;
    dst[0] = b'.';
    write_padded(&mut dst[1..], frac, d);
    Some(pos + 1 + d)
}

/// Fast path of [`write_price`] / [`write_fixed`] for up to eight decimals and an integer part
/// below 10^8, with 32 bytes of room: the fraction is formatted eight digits at a time and its
/// trailing zeros (when trimming) are counted from the digit word instead of divided away.
/// `None` means "use the general path".
#[inline]
fn write_decimal8(out: &mut [u8], value: i64, decimals: u8, trim: bool) -> Option<usize> {
    let out = out.get_mut(..32)?;
    let mag = value.unsigned_abs();
    let (int, frac) = divmod_pow10(mag, decimals);
    if int >= 100_000_000 {
        return None;
    }
    let mut pos = 0;
    if value < 0 {
        out[0] = b'-';
        pos = 1;
    }
    let n = digits_u64(int);
    out[pos..pos + 8].copy_from_slice(&low_digits(int as u32, n).to_le_bytes());
    pos += n;
    let d = decimals as usize;
    if d == 0 || (trim && frac == 0) {
        return Some(pos);
    }
    let w = low_digits(frac as u32, d);
    let keep = if trim {
        // Digit values (0 for '0') of the d digits; the highest non-zero byte is the last
        // digit to keep.
        let x = (w ^ 0x3030_3030_3030_3030) & (u64::MAX >> (8 * (8 - d)));
        8 - (x.leading_zeros() / 8) as usize
    } else {
        d
    };
    out[pos] = b'.';
    out[pos + 1..pos + 9].copy_from_slice(&w.to_le_bytes());
    Some(pos + 1 + keep)
}

/// `(v / 10^d, v % 10^d)` with a constant divisor per arm, so each is a multiply and shift
/// rather than a hardware division (tens of cycles).
#[inline(always)]
fn divmod_pow10(v: u64, d: u8) -> (u64, u64) {
    macro_rules! arms {
        ($($n:literal => $p:literal),*) => {
            match d {
                0 => (v, 0),
                $($n => (v / $p, v % $p),)*
                _ => (v / pow10(d) as u64, v % pow10(d) as u64),
            }
        };
    }
    arms!(1 => 10, 2 => 100, 3 => 1_000, 4 => 10_000, 5 => 100_000, 6 => 1_000_000,
        7 => 10_000_000, 8 => 100_000_000, 9 => 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value below 10^4 at every width that holds it, and samples of wider ones.
    #[test]
    fn low_digits_match_std_formatting() {
        for v in 0..10_000u32 {
            assert_eq!(four_digits(v).to_le_bytes(), *format!("{v:04}").as_bytes());
            for n in 1..=8usize {
                if (v as u64) < 10u64.pow(n as u32) {
                    let mut want = [0u8; 8];
                    want[..n].copy_from_slice(format!("{v:0n$}").as_bytes());
                    assert_eq!(low_digits(v, n).to_le_bytes(), want, "{v} {n}");
                }
            }
        }
        for v in [10_000u32, 12_345, 99_999, 100_000, 1_234_567, 99_999_999] {
            for n in 5..=8usize {
                if (v as u64) < 10u64.pow(n as u32) {
                    let mut want = [0u8; 8];
                    want[..n].copy_from_slice(format!("{v:0n$}").as_bytes());
                    assert_eq!(low_digits(v, n).to_le_bytes(), want, "{v} {n}");
                }
            }
        }
    }

    #[test]
    fn decimal_parse_is_exact() {
        assert_eq!(parse_decimal(b"101.25", 4), Ok(1_012_500));
        assert_eq!(parse_decimal(b"-0.01", 2), Ok(-1));
        assert_eq!(parse_decimal(b"002000.00", 0), Ok(2000));
        assert_eq!(parse_decimal(b".5", 1), Ok(5));
        assert_eq!(parse_decimal(b"5.", 1), Ok(50));
        assert_eq!(parse_decimal(b"1.005", 2), Err(DecimalError::TooPrecise));
        assert_eq!(parse_decimal(b"1.0050", 3), Ok(1005));
        assert_eq!(parse_decimal(b"+1", 0), Err(DecimalError::Format));
        assert_eq!(parse_decimal(b"1e5", 0), Err(DecimalError::Format));
        assert_eq!(parse_decimal(b"", 0), Err(DecimalError::Format));
        assert_eq!(parse_decimal(b".", 0), Err(DecimalError::Format));
        assert_eq!(parse_decimal(b"-", 0), Err(DecimalError::Format));
        assert_eq!(parse_decimal(b"1.2.3", 2), Err(DecimalError::Format));
        assert_eq!(parse_decimal(b"9223372036854775807", 0), Ok(i64::MAX));
        assert_eq!(parse_decimal(b"-9223372036854775808", 0), Ok(i64::MIN));
        assert_eq!(
            parse_decimal(b"9223372036854775808", 0),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            parse_decimal(b"922337203685477580.8", 1),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn qty_must_be_whole() {
        assert_eq!(parse_qty(b"100"), Ok(100));
        assert_eq!(parse_qty(b"100.000"), Ok(100));
        assert_eq!(parse_qty(b"100.5"), Err(DecimalError::TooPrecise));
        assert_eq!(parse_qty(b"-1"), Err(DecimalError::Format));
    }

    #[test]
    fn fast_and_short_paths_agree_with_std() {
        let mut wide = [0u8; 32];
        let mut narrow = [0u8; 20];
        let mut v = 1u64;
        let mut samples = vec![
            0u64,
            u64::MAX,
            99_999_999,
            100_000_000,
            9_999_999_999_999_999,
        ];
        for _ in 0..20 {
            samples.extend([v - 1, v, v + 1, v.wrapping_mul(7) / 3]);
            v = v.saturating_mul(10);
        }
        for &x in &samples {
            let n = write_u64(&mut wide, x).unwrap();
            assert_eq!(&wide[..n], x.to_string().as_bytes(), "{x}");
            let n = write_u64(&mut narrow, x).unwrap();
            assert_eq!(&narrow[..n], x.to_string().as_bytes(), "{x}");
        }
    }

    #[test]
    fn digit_count_matches_ilog10() {
        let mut v = 1u64;
        for _ in 0..20 {
            for x in [
                v.saturating_sub(1),
                v,
                v.saturating_add(1),
                v.saturating_mul(3),
            ] {
                assert_eq!(
                    digits_u64(x),
                    x.checked_ilog10().map_or(1, |l| l as usize + 1),
                    "{x}"
                );
            }
            v = v.saturating_mul(10);
        }
        assert_eq!(digits_u64(u64::MAX), 20);
        assert_eq!(digits_u64(0), 1);
    }

    #[test]
    fn integers_format_and_parse() {
        let mut b = [0u8; 24];
        for v in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let n = write_u64(&mut b, v).unwrap();
            assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), v.to_string());
            assert_eq!(parse_u64(&b[..n]), Some(v));
        }
        let n = write_i64(&mut b, i64::MIN).unwrap();
        assert_eq!(&b[..n], i64::MIN.to_string().as_bytes());
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"+42"), None);
        assert!(write_u64(&mut b[..2], 123).is_none());
    }

    #[test]
    fn prices_and_fixed_format() {
        let mut b = [0u8; 32];
        let n = write_price(&mut b, 1_012_500, 4).unwrap();
        assert_eq!(&b[..n], b"101.25");
        let n = write_price(&mut b, 1_000_000, 4).unwrap();
        assert_eq!(&b[..n], b"100");
        let n = write_price(&mut b, -5, 2).unwrap();
        assert_eq!(&b[..n], b"-0.05");
        let n = write_fixed(&mut b, 12_345, 3).unwrap();
        assert_eq!(&b[..n], b"12.345");
        let n = write_fixed(&mut b, 5, 4).unwrap();
        assert_eq!(&b[..n], b"0.0005");
        let n = write_fixed(&mut b, 0, 0).unwrap();
        assert_eq!(&b[..n], b"0");
    }
}

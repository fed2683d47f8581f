//! UTCTimestamp conversion between `YYYYMMDD-HH:MM:SS[.sss[sss[sss]]]` and nanoseconds since the
//! Unix epoch.
//!
//! The caller passes time in (`now` as UTC nanoseconds); there is no clock in this crate. The
//! calendar arithmetic is the days-from-civil algorithm (H. Hinnant), branch-light and exact for
//! the proleptic Gregorian calendar, so formatting costs a few multiplications and no syscalls.

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Precision of a formatted UTCTimestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimePrecision {
    /// `YYYYMMDD-HH:MM:SS`
    Seconds,
    /// `YYYYMMDD-HH:MM:SS.sss` (QuickFIX's default and what the acceptance scripts expect)
    #[default]
    Millis,
    /// `YYYYMMDD-HH:MM:SS.ssssss`
    Micros,
}

impl TimePrecision {
    /// Formatted length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(self) -> usize {
        match self {
            TimePrecision::Seconds => 17,
            TimePrecision::Millis => 21,
            TimePrecision::Micros => 24,
        }
    }
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u64;
    let m = m as u64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

/// Civil date of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

use std::cell::Cell;

use super::scan::non_digits;

thread_local! {
    /// The last second formatted on this thread and its `YYYYMMDD-HH:MM:SS` text. Const
    /// initialised: no allocation, no lazy init on the hot path.
    static LAST_SECOND: Cell<(u64, [u8; 17])> = const { Cell::new((u64::MAX, [0; 17])) };
}

#[inline(always)]
fn pair(out: &mut [u8], v: u64) {
    let i = (v as usize % 100) * 2;
    out[0] = super::num::DIGIT_PAIRS[i];
    out[1] = super::num::DIGIT_PAIRS[i + 1];
}

/// Writes `nanos` (UTC, since the epoch) as a UTCTimestamp. `out` must hold
/// `precision.len()` bytes; returns that length, or `None` if `out` is too short.
#[inline]
pub fn write_timestamp(out: &mut [u8], nanos: u64, precision: TimePrecision) -> Option<usize> {
    let n = precision.len();
    let out: &mut [u8; 24] = match out.get_mut(..24) {
        Some(o) => o.try_into().ok()?,
        None => return write_timestamp_short(out, nanos, precision),
    };
    let secs = nanos / NANOS_PER_SEC;
    let sub = nanos % NANOS_PER_SEC;
    // Consecutive timestamps almost always fall in the same second (SendingTime and
    // TransactTime of one message, every message of a busy second): reuse that second's text.
    let cached = LAST_SECOND.with(|c| c.get());
    if cached.0 == secs {
        out[..17].copy_from_slice(&cached.1);
    } else {
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let sod = secs % 86_400;
        let y = y.clamp(0, 9999) as u64;
        pair(&mut out[0..2], y / 100);
        pair(&mut out[2..4], y);
        pair(&mut out[4..6], m as u64);
        pair(&mut out[6..8], d as u64);
        out[8] = b'-';
        pair(&mut out[9..11], sod / 3600);
        out[11] = b':';
        pair(&mut out[12..14], (sod / 60) % 60);
        out[14] = b':';
        pair(&mut out[15..17], sod % 60);
        let mut text = [0u8; 17];
        text.copy_from_slice(&out[..17]);
        LAST_SECOND.with(|c| c.set((secs, text)));
    }
    match precision {
        TimePrecision::Seconds => {}
        TimePrecision::Millis => {
            let ms = sub / 1_000_000;
            out[17] = b'.';
            out[18] = b'0' + (ms / 100) as u8;
            pair(&mut out[19..21], ms);
        }
        TimePrecision::Micros => {
            let us = sub / 1_000;
            out[17] = b'.';
            pair(&mut out[18..20], us / 10_000);
            pair(&mut out[20..22], us / 100);
            pair(&mut out[22..24], us);
        }
    }
    Some(n)
}

#[cold]
fn write_timestamp_short(out: &mut [u8], nanos: u64, precision: TimePrecision) -> Option<usize> {
    let mut tmp = [0u8; 24];
    let n = write_timestamp(&mut tmp, nanos, precision)?;
    out.get_mut(..n)?.copy_from_slice(&tmp[..n]);
    Some(n)
}

fn digits(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

/// Parses a UTCTimestamp (`YYYYMMDD-HH:MM:SS` with an optional fraction of 1 to 9 digits) into
/// nanoseconds since the epoch; `None` for any other shape or an out-of-range component.
#[inline]
pub fn parse_timestamp(s: &[u8]) -> Option<u64> {
    let b: &[u8; 17] = s.get(..17)?.try_into().ok()?;
    if b[8] != b'-' || b[11] != b':' || b[14] != b':' {
        return None;
    }
    let d = |i: usize| b[i].wrapping_sub(b'0') as u64;
    let ds = [
        d(0),
        d(1),
        d(2),
        d(3),
        d(4),
        d(5),
        d(6),
        d(7),
        d(9),
        d(10),
        d(12),
        d(13),
        d(15),
        d(16),
    ];
    if ds.iter().any(|&x| x > 9) {
        return None;
    }
    let y = ds[0] * 1000 + ds[1] * 100 + ds[2] * 10 + ds[3];
    let mo = (ds[4] * 10 + ds[5]) as u32;
    let dd = (ds[6] * 10 + ds[7]) as u32;
    let h = ds[8] * 10 + ds[9];
    let mi = ds[10] * 10 + ds[11];
    let se = ds[12] * 10 + ds[13];
    if !(1..=12).contains(&mo) || !(1..=31).contains(&dd) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut frac_ns = 0u64;
    if s.len() > 17 {
        let frac = &s[18..];
        if s[17] != b'.' || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        frac_ns = digits(frac)? * super::num::pow10(9 - frac.len() as u8) as u64;
    }
    let days = days_from_civil(y as i64, mo, dd);
    if days < 0 {
        return None;
    }
    // Checked: years past 2554 do not fit u64 nanoseconds; such a time is refused, never wrapped.
    (days as u64)
        .checked_mul(86_400)?
        .checked_add(h * 3600 + mi * 60 + se)?
        .checked_mul(NANOS_PER_SEC)?
        .checked_add(frac_ns)
}

/// True when `s` is a valid UTCTimestamp (the checks of [`parse_timestamp`] without the
/// calendar arithmetic; used by validation, which needs only the syntax).
///
/// Branch-light word arithmetic: `YYYYMMDD` and `HH:MM:SS` are one word each; every digit
/// position is checked at once, and the two-digit components (month, day, hour, minute,
/// second) are formed in parallel byte lanes by one multiply-add per word, then range-checked.
/// The fraction's digits (1 to 9) are checked with one word load ending at the last byte.
#[inline]
pub fn is_timestamp(s: &[u8]) -> bool {
    let Some(b) = s.first_chunk::<17>() else {
        return false;
    };
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let (date, time) = (word(0), word(9));
    const TIME_DIGITS: u64 = 0xffff_00ff_ff00_ffff; // bytes 0,1,3,4,6,7 of "HH:MM:SS"
    let shape_ok = non_digits(date) == 0
        && non_digits(time) & TIME_DIGITS == 0
        && time & !TIME_DIGITS == 0x0000_3a00_003a_0000
        && b[8] == b'-';
    // Byte i of `pairs(w)` is 10 * digit(i) + digit(i + 1) (each at most 10 * 15 + 15, so no
    // carry between bytes).
    let pairs = |w: u64| {
        let x = w & 0x0f0f_0f0f_0f0f_0f0f;
        x.wrapping_mul(10).wrapping_add(x >> 8)
    };
    let (d, t) = (pairs(date), pairs(time));
    let lane = |w: u64, i: u32| (w >> (8 * i)) as u8;
    let (mo, dd) = (lane(d, 4), lane(d, 6));
    let (hh, mi, ss) = (lane(t, 0), lane(t, 3), lane(t, 6));
    let ranges_ok =
        mo.wrapping_sub(1) < 12 && dd.wrapping_sub(1) < 31 && hh <= 23 && mi <= 59 && ss <= 60;
    shape_ok && ranges_ok && (s.len() == 17 || fraction_ok(s))
}

/// `.` and 1 to 9 digits after the 17 bytes of a timestamp.
#[inline(always)]
fn fraction_ok(s: &[u8]) -> bool {
    let n = s.len().wrapping_sub(18);
    if s.get(17) != Some(&b'.') || n.wrapping_sub(1) >= 9 {
        return false;
    }
    // The last eight bytes of `s` (at or after byte 11): only the fraction's are checked.
    let tail = s.last_chunk::<8>().expect("19 bytes or more");
    let fraction = HIGH_BYTES << (8 * (8 - n.min(8)));
    non_digits(u64::from_le_bytes(*tail)) & fraction == 0 && (n < 9 || s[18].is_ascii_digit())
}

const HIGH_BYTES: u64 = 0x8080_8080_8080_8080;

/// True when `s` is a valid UTCTimeOnly (`HH:MM:SS[.fff...]`).
pub fn is_time_only(s: &[u8]) -> bool {
    if s.len() < 8 || s[2] != b':' || s[5] != b':' {
        return false;
    }
    let ok = matches!((digits(&s[0..2]), digits(&s[3..5]), digits(&s[6..8])),
        (Some(h), Some(m), Some(sec)) if h <= 23 && m <= 59 && sec <= 60);
    ok && (s.len() == 8
        || (s[8] == b'.' && s.len() > 9 && s.len() <= 18 && digits(&s[9..]).is_some()))
}

/// True when `s` is a valid UTCDateOnly (`YYYYMMDD`).
pub fn is_date_only(s: &[u8]) -> bool {
    s.len() == 8
        && matches!((digits(&s[0..4]), digits(&s[4..6]), digits(&s[6..8])),
            (Some(_), Some(m), Some(d)) if (1..=12).contains(&m) && (1..=31).contains(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_timestamp` before the lane arithmetic (commit 9b19373), as the oracle.
    fn is_timestamp_reference(s: &[u8]) -> bool {
        let Some(b) = s.get(..17) else { return false };
        let date = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let time = u64::from_le_bytes([b[9], b[10], b[11], b[12], b[13], b[14], b[15], b[16]]);
        const TIME_DIGITS: u64 = 0xffff_00ff_ff00_ffff;
        let digits = |w: u64, m: u64| {
            (w & 0xf0f0_f0f0_f0f0_f0f0 & m) == (0x3030_3030_3030_3030 & m)
                && ((w & 0x0f0f_0f0f_0f0f_0f0f & m) + (0x0606_0606_0606_0606 & m))
                    & 0xf0f0_f0f0_f0f0_f0f0
                    == 0
        };
        let seps = time & !TIME_DIGITS == 0x0000_3a00_003a_0000;
        if !digits(date, u64::MAX) || !digits(time, TIME_DIGITS) || !seps || b[8] != b'-' {
            return false;
        }
        let d = |i: usize| b[i] - b'0';
        let mo = d(4) * 10 + d(5);
        let dd = d(6) * 10 + d(7);
        let ok = (1..=12).contains(&mo)
            && (1..=31).contains(&dd)
            && d(9) * 10 + d(10) <= 23
            && d(12) * 10 + d(13) <= 59
            && d(15) * 10 + d(16) <= 60;
        ok && (s.len() == 17
            || (s[17] == b'.'
                && (19..=27).contains(&s.len())
                && s[18..].iter().all(u8::is_ascii_digit)))
    }

    /// Every single-byte change (to a digit, a separator, or a byte next to one) of valid
    /// timestamps of every length, and every two-digit value of each component, are judged
    /// as the reference judges them.
    #[test]
    fn syntax_check_agrees_with_the_reference() {
        let mut checked = 0;
        for base in [
            "20240301-12:00:00",
            "20241231-23:59:60.1",
            "19991130-09:09:09.12345678",
            "20240229-00:00:00.123456789",
            "20240229-00:00:00.1234567890",
        ] {
            let base = base.as_bytes();
            for len in 0..=base.len() + 1 {
                let mut v = base[..len.min(base.len())].to_vec();
                if len > base.len() {
                    v.push(b'5');
                }
                assert_eq!(is_timestamp(&v), is_timestamp_reference(&v), "{v:?}");
                for i in 0..v.len() {
                    for c in (b'0'..=b'9').chain(*b"-:./ \x00\x7f\xb0\xff") {
                        let mut w = v.clone();
                        w[i] = c;
                        assert_eq!(is_timestamp(&w), is_timestamp_reference(&w), "{w:?}");
                        checked += 1;
                    }
                }
            }
            for pos in [4, 6, 9, 12, 15] {
                for x in 0..100u8 {
                    let mut w = base.to_vec();
                    w[pos] = b'0' + x / 10;
                    w[pos + 1] = b'0' + x % 10;
                    assert_eq!(is_timestamp(&w), is_timestamp_reference(&w), "{w:?}");
                }
            }
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn formats_known_instants() {
        let mut b = [0u8; 32];
        // 2002-06-19 16:14:10.123456 UTC
        let t = 1_024_503_250_123_456_789u64;
        let n = write_timestamp(&mut b, t, TimePrecision::Millis).unwrap();
        assert_eq!(&b[..n], b"20020619-16:14:10.123");
        let n = write_timestamp(&mut b, t, TimePrecision::Micros).unwrap();
        assert_eq!(&b[..n], b"20020619-16:14:10.123456");
        let n = write_timestamp(&mut b, 0, TimePrecision::Seconds).unwrap();
        assert_eq!(&b[..n], b"19700101-00:00:00");
        // leap day
        let n =
            write_timestamp(&mut b, 951_782_400 * NANOS_PER_SEC, TimePrecision::Seconds).unwrap();
        assert_eq!(&b[..n], b"20000229-00:00:00");
    }

    #[test]
    fn parse_round_trips() {
        let mut b = [0u8; 32];
        for t in [0u64, 1_024_503_250_123_000_000, 4_102_444_799_999_000_000] {
            let n = write_timestamp(&mut b, t, TimePrecision::Millis).unwrap();
            assert_eq!(parse_timestamp(&b[..n]), Some(t));
        }
        assert_eq!(
            parse_timestamp(b"20020619-16:14:10.5"),
            Some(1_024_503_250_500_000_000)
        );
        assert_eq!(parse_timestamp(b"20040415"), None);
        assert_eq!(parse_timestamp(b"20041315-00:00:00"), None);
        assert_eq!(parse_timestamp(b"20040415-00:00:00."), None);
        assert_eq!(parse_timestamp(b"20040415 00:00:00"), None);
        // Beyond u64 nanoseconds (year > 2554): refused, not wrapped (and no debug panic).
        assert_eq!(parse_timestamp(b"99991231-23:59:59.999"), None);
        assert!(parse_timestamp(b"25540101-00:00:00").is_some());
        for ok in [
            &b"20040415-00:00:00"[..],
            b"20040415-23:59:60.123",
            b"20040415-00:00:00.123456789",
        ] {
            assert!(is_timestamp(ok) && parse_timestamp(ok).is_some());
        }
        for bad in [
            &b"20040415"[..],
            b"20041315-00:00:00",
            b"20040415-24:00:00",
            b"20040415-00:00:00.",
            b"20040415-00:00:00.1x",
        ] {
            assert!(
                !is_timestamp(bad) && parse_timestamp(bad).is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn time_and_date_only() {
        assert!(is_time_only(b"12:30:00"));
        assert!(is_time_only(b"12:30:00.123"));
        assert!(!is_time_only(b"24:00:00"));
        assert!(is_date_only(b"20240229"));
        assert!(!is_date_only(b"20241301"));
    }
}

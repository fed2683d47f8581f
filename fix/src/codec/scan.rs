//! Finding one field: its tag, where its value starts and where it ends.
//!
//! Why this shape: a field costs the decoder a tag parse and a search for the closing SOH, and
//! a byte loop pays a data-dependent branch per byte for both. Here one 16-byte load at the
//! start of the field answers both questions for most fields (`tag=value<SOH>` of up to 16
//! bytes): two SSE2 compares and `pmovmskb` give the positions of `=` and SOH as bit masks,
//! the tag digits (up to eight) are checked and converted from the same eight bytes as one
//! word with three multiplications, and the value's end is a `tzcnt` away. Longer values
//! continue sixteen bytes at a time. A field that is not plain `digits=value` (a negative or
//! over-long tag, a missing `=`) or that starts in the last 15 bytes of the frame goes through
//! [`field_slow`], the byte-wise reference, so every odd case keeps its exact old answer.

use super::decode::DecodeError;
use super::frame::SOH;

/// What was found at a field's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// `tag=value<SOH>`: the value is `start..end`, the SOH at `end`.
    Field {
        /// Tag number.
        tag: u32,
        /// First byte of the value.
        start: usize,
        /// The closing SOH.
        end: usize,
    },
    /// `-N=value<SOH>`: a negative tag, kept so it can be rejected by number.
    Negative {
        /// The tag (negative).
        tag: i32,
        /// The closing SOH.
        end: usize,
    },
}

const ZEROS: u64 = 0x3030_3030_3030_3030;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in every byte of `w` that is not an ASCII digit (exact per byte: the low
/// seven bits are added without carries between bytes).
#[inline(always)]
pub(crate) fn non_digits(w: u64) -> u64 {
    let x = w ^ ZEROS; // digits become 0..=9
    (((x & LOW7).wrapping_add(0x7676_7676_7676_7676)) | x) & HIGH
}

/// High bit set in every byte of `w` equal to `c` (exact per byte).
#[inline(always)]
pub(crate) fn bytes_equal(w: u64, c: u8) -> u64 {
    let x = w ^ (c as u64).wrapping_mul(0x0101_0101_0101_0101);
    !(((x & LOW7).wrapping_add(LOW7)) | x) & HIGH
}

/// The number written by the ASCII digits in the top `k` bytes of `w` (bytes below them zero),
/// the first digit the most significant: pairs, then quadruples, then the whole, each step one
/// multiply-add over every lane at once.
#[inline(always)]
pub(crate) fn eight_digits_value(w: u64) -> u32 {
    let x = w & 0x0f0f_0f0f_0f0f_0f0f;
    let x = (x.wrapping_mul(10).wrapping_add(x >> 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x.wrapping_mul(100).wrapping_add(x >> 16)) & 0x0000_ffff_0000_ffff;
    x.wrapping_mul(10_000).wrapping_add(x >> 32) as u32
}

/// [`non_digits`] of four bytes.
#[inline(always)]
fn non_digits32(w: u32) -> u32 {
    let x = w ^ 0x3030_3030;
    (((x & 0x7f7f_7f7f).wrapping_add(0x7676_7676)) | x) & 0x8080_8080
}

/// The number written by the ASCII digits in the top `k` bytes of `w` (bytes below them
/// zero), the first digit the most significant: pairs, then the whole.
#[inline(always)]
fn four_digits_value(w: u32) -> u32 {
    let x = w & 0x0f0f_0f0f;
    let x = (x.wrapping_mul(10).wrapping_add(x >> 8)) & 0x00ff_00ff;
    (x.wrapping_mul(100).wrapping_add(x >> 16)) & 0xffff
}

/// Bit masks of the `=` and SOH bytes of a 16-byte chunk (bit i for byte i).
#[inline(always)]
pub(crate) fn chunk_masks(chunk: &[u8; 16]) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        #[inline]
        #[target_feature(enable = "sse2")]
        fn sse2(chunk: &[u8; 16]) -> (u32, u32) {
            use core::arch::x86_64::*;
            // SAFETY: `chunk` is 16 readable bytes; `loadu` has no alignment requirement.
            let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
            let eq = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'=' as i8)));
            let soh = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(SOH as i8)));
            (eq as u32, soh as u32)
        }
        // SAFETY: SSE2 is part of the x86_64 baseline, so the feature `sse2` enables is present
        // on every CPU this code runs on; the function only reads `chunk`.
        unsafe { sse2(chunk) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        chunk_masks_scalar(chunk)
    }
}

/// Portable [`chunk_masks`] (the reference the SSE2 version is tested against).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn chunk_masks_scalar(chunk: &[u8; 16]) -> (u32, u32) {
    let (mut eq, mut soh) = (0u32, 0u32);
    for (i, &b) in chunk.iter().enumerate() {
        eq |= ((b == b'=') as u32) << i;
        soh |= ((b == SOH) as u32) << i;
    }
    (eq, soh)
}

/// The field starting at `p` (`p < buf.len()`, `buf` ending with SOH).
#[inline(always)]
pub(crate) fn field_at(buf: &[u8], p: usize) -> Result<Scanned, DecodeError> {
    if let Some(chunk) = buf.get(p..p + 16) {
        let chunk: &[u8; 16] = chunk.try_into().expect("16 bytes");
        let (eq, soh) = chunk_masks(chunk);
        let k = eq.trailing_zeros(); // tag length; 32 when no '=' in the chunk
        if k.wrapping_sub(1) < 8 {
            let w = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
            if non_digits(w) & (u64::MAX >> (64 - 8 * k)) == 0 {
                let tag = eight_digits_value(w << (64 - 8 * k));
                // The tag bytes are digits and byte k is '=', so the first SOH of the chunk,
                // if any, closes this field's value.
                let end = if soh != 0 {
                    p + soh.trailing_zeros() as usize
                } else {
                    soh_from(buf, p + 16)?
                };
                return Ok(Scanned::Field {
                    tag,
                    start: p + k as usize + 1,
                    end,
                });
            }
        }
    }
    field_slow(buf, p)
}

/// The field starting at `p` when it is plain `digits=value<SOH>` with a tag of one to four
/// digits, `None` otherwise (the caller then takes the general path, [`field_at`]). Unlike
/// [`field_at`] it also takes the fast path in the last 15 bytes of the frame (the trailer's
/// CheckSum), with the 16 bytes that end the frame shifted so that byte 0 is `p`.
/// `p < buf.len()`, `buf` ending with SOH.
#[inline(always)]
pub(crate) fn field_fast(buf: &[u8], p: usize) -> Option<(u32, usize, usize)> {
    let (eq, soh, w) = match buf.get(p..p + 16) {
        Some(chunk) => {
            let chunk: &[u8; 16] = chunk.try_into().expect("16 bytes");
            let (eq, soh) = chunk_masks(chunk);
            let w = u32::from_le_bytes(chunk[..4].try_into().expect("4 bytes"));
            (eq, soh, w)
        }
        None => {
            // Fewer than 16 bytes left: read the frame's last 16 and drop the bytes before
            // `p`; the bytes shifted in past the end are zero, which is neither `=`, SOH nor
            // a digit.
            let chunk: &[u8; 16] = buf.get(buf.len().checked_sub(16)?..)?.try_into().ok()?;
            let (eq, soh) = chunk_masks(chunk);
            let skip = p - (buf.len() - 16);
            let w = (u128::from_le_bytes(*chunk) >> (8 * skip)) as u32;
            (eq >> skip, soh >> skip, w)
        }
    };
    // Tags of one to four digits: every tag the dictionary defines (all below 1024), so a
    // longer one makes the message invalid anyway and may take the slower general path.
    // Four digits fit 32-bit lanes, whose constants are immediates.
    let k = eq.trailing_zeros(); // tag length; 32 when no '=' in the chunk
    if k.wrapping_sub(1) >= 4 || non_digits32(w) & (u32::MAX >> (32 - 8 * k)) != 0 {
        return None;
    }
    let tag = four_digits_value(w << (32 - 8 * k));
    // The tag bytes are digits and byte k is '=', so the first SOH of the chunk, if any,
    // closes this field's value.
    let end = if soh != 0 {
        p + soh.trailing_zeros() as usize
    } else {
        soh_from(buf, p + 16).ok()?
    };
    Some((tag, p + k as usize + 1, end))
}

/// Position of the first SOH at or after `from`.
#[inline]
pub(crate) fn soh_from(buf: &[u8], mut from: usize) -> Result<usize, DecodeError> {
    while let Some(chunk) = buf.get(from..from + 16) {
        let (_, soh) = chunk_masks(chunk.try_into().expect("16 bytes"));
        if soh != 0 {
            return Ok(from + soh.trailing_zeros() as usize);
        }
        from += 16;
    }
    match buf
        .get(from..)
        .and_then(|t| t.iter().position(|&b| b == SOH))
    {
        Some(k) => Ok(from + k),
        None => Err(DecodeError::GarbledField),
    }
}

/// The byte-wise field reader: tags of up to nine digits, negative tags, and the last bytes
/// of a frame, with the decoder's historical answers for malformed input.
#[cold]
#[inline(never)]
pub(crate) fn field_slow(buf: &[u8], p: usize) -> Result<Scanned, DecodeError> {
    let mut q = p;
    let mut tag: u32 = 0;
    let mut c = buf[q];
    while c.wrapping_sub(b'0') <= 9 {
        tag = tag.wrapping_mul(10).wrapping_add((c - b'0') as u32);
        q += 1;
        // The frame ends with SOH, so this stays inside it.
        c = buf[q];
    }
    if c != b'=' || q == p || q - p > 9 {
        return match negative_tag(buf, p) {
            Some((tag, end)) => Ok(Scanned::Negative { tag, end }),
            None => Err(DecodeError::GarbledField),
        };
    }
    let start = q + 1;
    match buf[start..].iter().position(|&b| b == SOH) {
        Some(k) => Ok(Scanned::Field {
            tag,
            start,
            end: start + k,
        }),
        None => Err(DecodeError::GarbledField),
    }
}

/// A `-N=value` field at `p`: the negative tag and the position of its closing SOH.
fn negative_tag(buf: &[u8], p: usize) -> Option<(i32, usize)> {
    if buf.get(p) != Some(&b'-') {
        return None;
    }
    let mut r = p + 1;
    let mut t: u32 = 0;
    while r < buf.len() && buf[r].is_ascii_digit() && r - p <= 9 {
        t = t * 10 + (buf[r] - b'0') as u32;
        r += 1;
    }
    if r == p + 1 || buf.get(r) != Some(&b'=') {
        return None;
    }
    let vend = r + 1 + buf[r + 1..].iter().position(|&b| b == SOH)?;
    Some((-(t.min(i32::MAX as u32) as i32), vend))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn word_helpers_are_exact_per_byte() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'5', 0xff, b'0', b'9', 0x80, b'/', b':']);
            let nd = non_digits(w);
            for (i, &x) in w.to_le_bytes().iter().enumerate() {
                assert_eq!(nd >> (8 * i + 7) & 1 == 1, !x.is_ascii_digit(), "{b} {i}");
                for c in [b'=', SOH, b'.', b'-', 0x80, 0xff] {
                    let eq = bytes_equal(w, c);
                    assert_eq!(eq >> (8 * i + 7) & 1 == 1, x == c, "{b} {c} {i}");
                }
            }
            assert_eq!(nd & !HIGH, 0);
        }
    }

    #[test]
    fn tag_words_convert_like_a_digit_loop() {
        for tag in [
            0u32, 1, 9, 10, 35, 99, 100, 453, 956, 1000, 9999, 12345, 99_999_999,
        ] {
            let s = tag.to_string();
            for pad in 0..=(8 - s.len()) {
                let digits = format!("{}{}", "0".repeat(pad), s);
                let k = digits.len();
                let mut b = [b'x'; 8];
                b[..k].copy_from_slice(digits.as_bytes());
                let w = u64::from_le_bytes(b);
                assert_eq!(eight_digits_value(w << (64 - 8 * k)), tag, "{digits}");
            }
        }
    }

    /// Every tag of up to four digits, with every zero padding, and every byte in every
    /// position of the digit check.
    #[test]
    fn four_digit_tags_convert_like_a_digit_loop() {
        for tag in 0..=9999u32 {
            let s = tag.to_string();
            for pad in 0..=(4 - s.len()) {
                let digits = format!("{}{}", "0".repeat(pad), s);
                let k = digits.len();
                let mut b = [b'='; 4];
                b[..k].copy_from_slice(digits.as_bytes());
                let w = u32::from_le_bytes(b);
                assert_eq!(four_digits_value(w << (32 - 8 * k)), tag, "{digits}");
                assert_eq!(non_digits32(w) & (u32::MAX >> (32 - 8 * k)), 0);
            }
        }
        for b in 0..=255u8 {
            for i in 0..4 {
                let mut bytes = *b"0123";
                bytes[i] = b;
                let nd = non_digits32(u32::from_le_bytes(bytes));
                for (j, &x) in bytes.iter().enumerate() {
                    assert_eq!(
                        nd >> (8 * j + 7) & 1 == 1,
                        !x.is_ascii_digit(),
                        "{b} {i} {j}"
                    );
                }
                assert_eq!(nd & !0x8080_8080, 0);
            }
        }
    }

    proptest! {
        #[test]
        fn sse2_masks_match_the_scalar_ones(chunk in proptest::array::uniform16(
            prop_oneof![Just(b'='), Just(SOH), any::<u8>()])) {
            prop_assert_eq!(chunk_masks(&chunk), chunk_masks_scalar(&chunk));
        }

        /// Every field, fast or slow path, reads exactly as the byte-wise reader reads it.
        #[test]
        fn fast_path_agrees_with_the_byte_wise_reader(
            fields in proptest::collection::vec(
                ("-?[0-9]{0,11}", "[=]?", "[ -~]{0,40}"), 1..6),
            garbage in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut buf = Vec::new();
            for (t, eq, v) in &fields {
                buf.extend_from_slice(t.as_bytes());
                buf.extend_from_slice(eq.as_bytes());
                buf.extend_from_slice(v.as_bytes());
                buf.push(SOH);
            }
            buf.extend_from_slice(&garbage);
            buf.push(SOH);
            let mut p = 0;
            while p < buf.len() {
                let fast = field_at(&buf, p);
                prop_assert_eq!(fast, field_slow(&buf, p));
                if let Some((tag, start, end)) = field_fast(&buf, p) {
                    prop_assert_eq!(fast, Ok(Scanned::Field { tag, start, end }));
                } else if buf.len() - p >= 16 {
                    // Where 16 bytes are readable, only tags of five digits or more and the
                    // odd cases (negative tags, garbled fields) leave the fast path.
                    if let Ok(Scanned::Field { start, .. }) = fast {
                        prop_assert!(start - 1 - p >= 5);
                    }
                }
                p = match fast {
                    Ok(Scanned::Field { end, .. }) | Ok(Scanned::Negative { end, .. }) => end + 1,
                    Err(_) => break,
                };
            }
        }
    }
}

//! The raw framer: finds where one FIX message ends in a byte stream and checks only what
//! decides whether the frame can be trusted (BeginString first, BodyLength second, CheckSum
//! last and correct). It keeps offsets, never copies, and knows nothing about fields beyond
//! those three, so it can run on a recv buffer before anything else looks at the bytes.
//!
//! Resynchronisation follows QuickFIX, because counterparties and the acceptance scripts expect
//! it: when BodyLength does not land on `10=`, the frame is taken to end at the first
//! `<SOH>10=...<SOH>` at or after the declared end, and the whole span is reported as garbled so
//! the session can ignore it (FIX: a garbled message is ignored and recovered by the gap it
//! leaves). A frame that cannot end within the configured maximum size is fatal: the stream
//! cannot be resynchronised safely.

use super::num::digits_u64;

/// Field separator.
pub const SOH: u8 = 0x01;

/// A complete frame at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Total length in bytes, trailer included.
    pub len: usize,
    /// Offset of the first byte after `9=N<SOH>` (the start of `35=`).
    pub body_start: usize,
    /// Offset of `10=` (one past the body's last SOH).
    pub trailer_start: usize,
}

impl Frame {
    /// The BeginString value (`FIX.4.4`) of this frame in `buf`.
    pub fn begin_string<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let end = buf[2..].iter().position(|&b| b == SOH).map_or(2, |p| p + 2);
        &buf[2..end]
    }
}

/// Why bytes at the start of the input are not a trustworthy frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The input does not start with `8=`: bytes before the next `8=` are garbage.
    BeginStringMissing,
    /// `9=` does not follow BeginString.
    BodyLengthMissing,
    /// BodyLength is not an unsigned integer.
    BodyLengthInvalid,
    /// BodyLength does not end where `10=` starts.
    BodyLengthMismatch,
    /// CheckSum is not 1-3 digits.
    CheckSumInvalid,
    /// CheckSum differs from the byte sum.
    CheckSumMismatch,
    /// The frame is (or would be) longer than the configured maximum message size.
    TooLarge,
}

impl FrameError {
    /// True when the stream cannot be resynchronised and the connection must be dropped.
    pub fn is_fatal(self) -> bool {
        matches!(self, FrameError::TooLarge)
    }
}

/// Outcome of looking for one frame at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// A complete, length- and checksum-correct frame.
    Complete(Frame),
    /// More bytes are needed.
    Incomplete,
    /// The first `skip` bytes are not a trustworthy frame and must be dropped. When the error
    /// is fatal, `skip` is the whole input.
    Garbled {
        /// Bytes to drop.
        skip: usize,
        /// What was wrong.
        error: FrameError,
    },
}

#[inline]
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Position of the next `8=` at the start of a field (offset 0 or after an SOH), from `from`.
fn next_begin(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'8' && buf[i + 1] == b'=' && (i == 0 || buf[i - 1] == SOH) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Byte sum modulo 256, the FIX CheckSum.
///
/// On x86_64 the sum uses SSE2's `psadbw` (sum of sixteen bytes in one instruction, SSE2
/// being part of the x86_64 baseline); elsewhere a plain fold that LLVM vectorises.
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "sse2")]
        fn sse2(bytes: &[u8]) -> u64 {
            use core::arch::x86_64::*;
            let zero = _mm_setzero_si128();
            let mut acc = _mm_setzero_si128();
            let mut chunks = bytes.chunks_exact(16);
            for c in &mut chunks {
                // SAFETY: `c` is exactly 16 readable bytes; `loadu` has no alignment need.
                let v = unsafe { _mm_loadu_si128(c.as_ptr().cast::<__m128i>()) };
                acc = _mm_add_epi64(acc, _mm_sad_epu8(v, zero));
            }
            let rest = chunks.remainder().len();
            let mut tail = 0u64;
            if rest != 0 {
                match bytes.len().checked_sub(16) {
                    // The remainder as the end of the last 16 bytes, the bytes already summed
                    // masked off: one load instead of a byte loop.
                    Some(from) => {
                        // SAFETY: `from + 16 == bytes.len()`: 16 readable bytes; the mask is
                        // 16 bytes of `TAIL_MASKS` (`rest < 16`, so `rest + 16 <= 32`).
                        let (v, m) = unsafe {
                            (
                                _mm_loadu_si128(bytes.as_ptr().add(from).cast::<__m128i>()),
                                _mm_loadu_si128(TAIL_MASKS.as_ptr().add(rest).cast::<__m128i>()),
                            )
                        };
                        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_and_si128(v, m), zero));
                    }
                    None => tail = chunks.remainder().iter().map(|&b| b as u64).sum(),
                }
            }
            let lo = _mm_cvtsi128_si64(acc) as u64;
            let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)) as u64;
            lo.wrapping_add(hi).wrapping_add(tail)
        }
        // SAFETY: SSE2 is part of the x86_64 baseline, so the target feature `sse2` enables
        // is present on every CPU this code runs on; the function only reads `bytes`.
        unsafe { sse2(bytes) as u8 }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut acc: u32 = 0;
        for chunk in bytes.chunks(4096) {
            acc = acc.wrapping_add(chunk.iter().map(|&b| b as u32).sum::<u32>());
        }
        acc as u8
    }
}

/// Sixteen zero bytes then sixteen 0xff: the 16 bytes at offset `r` keep the last `r` bytes of
/// a 16-byte load (the checksum's remainder).
#[cfg(target_arch = "x86_64")]
static TAIL_MASKS: [u8; 32] = {
    let mut m = [0u8; 32];
    let mut i = 16;
    while i < 32 {
        m[i] = 0xff;
        i += 1;
    }
    m
};

/// Looks for one frame at the start of `buf`; `max_len` bounds a frame's total size.
#[inline]
pub fn next_frame(buf: &[u8], max_len: usize) -> FrameStatus {
    match complete_frame(buf, max_len) {
        Some(frame) => FrameStatus::Complete(frame),
        None => next_frame_general(buf, max_len),
    }
}

/// The usual case, a whole and correct frame whose `8=...<SOH>9=N<SOH>` fits in the first 16
/// bytes (BodyLength of at most eight digits) and whose CheckSum has three digits: both
/// separators from one 16-byte load, BodyLength converted as one word. `None` for anything
/// else, without having decided anything: [`next_frame_general`] then looks at the input
/// from the start. When it answers, its answer is the one [`next_frame_general`] would give
/// (property-tested below): each condition here is one under which the general path takes
/// the same branch.
#[inline(always)]
fn complete_frame(buf: &[u8], max_len: usize) -> Option<Frame> {
    use super::scan::{chunk_masks, eight_digits_value, non_digits};
    let head: &[u8; 16] = buf.get(..16)?.try_into().ok()?;
    if head[..2] != *b"8=" {
        return None;
    }
    let (_, soh) = chunk_masks(head);
    // BeginString ends at the first SOH (bytes 0 and 1 are "8="), BodyLength at the second.
    let s1 = soh.trailing_zeros() as usize;
    let rest = soh & soh.wrapping_sub(1);
    let s2 = rest.trailing_zeros() as usize;
    // `rest == 0` makes `s2` 32: not below 16, so the `get` below fails.
    let v = s1 + 3; // BodyLength's first digit
    let k = s2.wrapping_sub(v);
    if s1 >= max_len || head.get(s1 + 1..v)? != b"9=" || k.wrapping_sub(1) >= 8 {
        return None;
    }
    let w = u64::from_le_bytes(buf.get(v..v + 8)?.try_into().ok()?);
    if non_digits(w) & (u64::MAX >> (64 - 8 * k)) != 0 {
        return None;
    }
    let declared = eight_digits_value(w << (64 - 8 * k)) as usize;
    let body_start = s2 + 1;
    let trailer = body_start + declared;
    let cs_start = trailer + 3;
    let end = cs_start + 4; // "NNN<SOH>" after "10="
    if declared == 0 || trailer + 5 > max_len || end > max_len {
        return None;
    }
    let t: &[u8; 8] = buf.get(trailer - 1..end)?.try_into().ok()?;
    if t[0] != SOH || t[1..4] != *b"10=" || t[7] != SOH {
        return None;
    }
    let (a, b, c) = (
        t[4].wrapping_sub(b'0'),
        t[5].wrapping_sub(b'0'),
        t[6].wrapping_sub(b'0'),
    );
    if a > 9 || b > 9 || c > 9 {
        return None;
    }
    let declared_cs = a as u32 * 100 + b as u32 * 10 + c as u32;
    if declared_cs != checksum(&buf[..trailer]) as u32 {
        return None;
    }
    Some(Frame {
        len: end,
        body_start,
        trailer_start: trailer,
    })
}

/// Any input, complete or not, correct or not: the field-by-field framer with QuickFIX's
/// resynchronisation rules.
#[cold]
#[inline(never)]
fn next_frame_general(buf: &[u8], max_len: usize) -> FrameStatus {
    if buf.len() < 2 {
        return FrameStatus::Incomplete;
    }
    if &buf[..2] != b"8=" {
        return match next_begin(buf, 1) {
            Some(p) => FrameStatus::Garbled {
                skip: p,
                error: FrameError::BeginStringMissing,
            },
            // Keep a trailing '8' in case "8=" is split across reads.
            None => FrameStatus::Garbled {
                skip: if buf[buf.len() - 1] == b'8' {
                    buf.len() - 1
                } else {
                    buf.len()
                },
                error: FrameError::BeginStringMissing,
            },
        };
    }
    let limit = buf.len().min(max_len);
    // BeginString value: short, bounded search.
    // (`max(2)`: a maximum size below 2 bytes must not make this range run backwards.)
    let Some(bs_end) = buf[2..limit.clamp(2, 34)]
        .iter()
        .position(|&b| b == SOH)
        .map(|p| p + 2)
    else {
        if buf.len() >= 34 || buf.len() >= max_len {
            return skip_to_next(buf, FrameError::BodyLengthMissing);
        }
        return FrameStatus::Incomplete;
    };
    let p = bs_end + 1;
    if buf.len() < p + 2 {
        return FrameStatus::Incomplete;
    }
    if &buf[p..p + 2] != b"9=" {
        return skip_to_next(buf, FrameError::BodyLengthMissing);
    }
    let v = p + 2;
    let mut declared: usize = 0;
    let mut i = v;
    loop {
        let Some(&b) = buf.get(i) else {
            return FrameStatus::Incomplete;
        };
        if b == SOH {
            break;
        }
        let d = b.wrapping_sub(b'0');
        if d > 9 || i - v >= 9 {
            return skip_to_next(buf, FrameError::BodyLengthInvalid);
        }
        declared = declared * 10 + d as usize;
        i += 1;
    }
    if i == v {
        return skip_to_next(buf, FrameError::BodyLengthInvalid);
    }
    let body_start = i + 1;
    let expected_trailer = body_start + declared;
    // "10=" + at least one digit + SOH.
    if expected_trailer + 5 > max_len {
        return FrameStatus::Garbled {
            skip: buf.len(),
            error: FrameError::TooLarge,
        };
    }
    if buf.len() < expected_trailer + 4 {
        return FrameStatus::Incomplete;
    }
    let exact = declared > 0
        && buf[expected_trailer - 1] == SOH
        && &buf[expected_trailer..expected_trailer + 3] == b"10=";
    let trailer_start = if exact {
        expected_trailer
    } else {
        // QuickFIX resynchronisation: the first "<SOH>10=" at or after the declared end.
        let from = expected_trailer
            .saturating_sub(1)
            .max(body_start.saturating_sub(1));
        match find(&buf[from..limit], b"\x0110=") {
            Some(off) => from + off + 1,
            None => {
                if buf.len() >= max_len {
                    return FrameStatus::Garbled {
                        skip: buf.len(),
                        error: FrameError::TooLarge,
                    };
                }
                return FrameStatus::Incomplete;
            }
        }
    };
    let cs_start = trailer_start + 3;
    let Some(cs_len) = buf[cs_start..limit].iter().position(|&b| b == SOH) else {
        if buf.len() >= max_len || buf.len() - cs_start > 8 {
            return FrameStatus::Garbled {
                skip: if buf.len() >= max_len {
                    buf.len()
                } else {
                    cs_start
                },
                error: if buf.len() >= max_len {
                    FrameError::TooLarge
                } else {
                    FrameError::CheckSumInvalid
                },
            };
        }
        return FrameStatus::Incomplete;
    };
    let len = cs_start + cs_len + 1;
    if !exact {
        return FrameStatus::Garbled {
            skip: len,
            error: FrameError::BodyLengthMismatch,
        };
    }
    let cs = &buf[cs_start..cs_start + cs_len];
    if cs.is_empty() || cs.len() > 3 || !cs.iter().all(u8::is_ascii_digit) {
        return FrameStatus::Garbled {
            skip: len,
            error: FrameError::CheckSumInvalid,
        };
    }
    let declared_cs = cs.iter().fold(0u32, |a, &b| a * 10 + (b - b'0') as u32);
    if declared_cs != checksum(&buf[..trailer_start]) as u32 {
        return FrameStatus::Garbled {
            skip: len,
            error: FrameError::CheckSumMismatch,
        };
    }
    FrameStatus::Complete(Frame {
        len,
        body_start,
        trailer_start,
    })
}

fn skip_to_next(buf: &[u8], error: FrameError) -> FrameStatus {
    FrameStatus::Garbled {
        skip: next_begin(buf, 1).unwrap_or(buf.len()),
        error,
    }
}

/// Bytes needed for a `9=N<SOH>` prefix of a body of `len` bytes (used by the encoder).
#[inline]
pub fn body_length_field_len(len: usize) -> usize {
    3 + digits_u64(len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The fast path answers exactly as the general framer, on correct frames and on
        /// frames with bytes changed (mostly to the bytes the framer looks for), cut short,
        /// followed by more bytes, or bounded by any maximum size.
        #[test]
        fn complete_frame_agrees_with_the_general_framer(
            body in "[0-9A-Z=|.]{0,60}",
            begin in prop_oneof![Just("FIX.4.4"), Just("FIXT.1.1"), Just(""), Just("FIX.4.4.ABCDEFGH")],
            declared_delta in prop_oneof![Just(0i64), Just(0), Just(0), -2i64..3],
            cs_width in prop_oneof![Just(3usize), Just(3), Just(1), Just(2)],
            edits in proptest::collection::vec(
                (0usize..120, prop_oneof![
                    Just(SOH), Just(b'='), Just(b'8'), Just(b'9'), Just(b'1'), Just(b'0'),
                    Just(b'5'), any::<u8>()
                ]),
                0..3,
            ),
            cut in prop_oneof![Just(usize::MAX), 0usize..120],
            tail in prop_oneof![Just(&b""[..]), Just(&b"8=FIX.4.4\x019=5\x01"[..])],
            max_len in prop_oneof![Just(4096usize), 0usize..140],
        ) {
            let body = body.replace('|', "\x01");
            let declared = (body.len() as i64 + declared_delta).max(0);
            let mut m = format!("8={begin}\x019={declared}\x01{body}").into_bytes();
            let cs = checksum(&m);
            let cs = match cs_width {
                3 => format!("{cs:03}"),
                _ => format!("{cs}"),
            };
            m.extend_from_slice(format!("10={cs}\x01").as_bytes());
            for &(i, b) in &edits {
                if i < m.len() {
                    m[i] = b;
                }
            }
            m.extend_from_slice(tail);
            m.truncate(cut);
            let fast = next_frame(&m, max_len);
            prop_assert_eq!(fast, next_frame_general(&m, max_len));
        }
    }

    /// The usual frame takes the fast path.
    #[test]
    fn usual_frames_take_the_fast_path() {
        let m = msg("35=0|34=2|49=A|52=20240101-00:00:00|56=B|");
        assert!(complete_frame(&m, 4096).is_some());
        assert_eq!(next_frame(&m, 4096), next_frame_general(&m, 4096));
    }

    fn msg(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
        let cs = checksum(&m);
        m.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
        m
    }

    #[test]
    fn complete_frame_and_split_reads() {
        let m = msg("35=0|34=2|49=A|52=20240101-00:00:00|56=B|");
        let FrameStatus::Complete(f) = next_frame(&m, 4096) else {
            panic!()
        };
        assert_eq!(f.len, m.len());
        assert_eq!(&m[f.body_start..f.body_start + 3], b"35=");
        assert_eq!(&m[f.trailer_start..f.trailer_start + 3], b"10=");
        assert_eq!(f.begin_string(&m), b"FIX.4.4");
        for cut in 0..m.len() {
            assert_eq!(
                next_frame(&m[..cut], 4096),
                FrameStatus::Incomplete,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn two_messages_in_one_read() {
        let mut m = msg("35=0|34=2|");
        let first = m.len();
        m.extend(msg("35=0|34=3|"));
        let FrameStatus::Complete(f) = next_frame(&m, 4096) else {
            panic!()
        };
        assert_eq!(f.len, first);
        assert!(matches!(
            next_frame(&m[first..], 4096),
            FrameStatus::Complete(_)
        ));
    }

    #[test]
    fn bad_checksum_is_garbled_and_skippable() {
        let mut m = msg("35=0|34=2|");
        let n = m.len();
        m[n - 2] = if m[n - 2] == b'9' { b'0' } else { m[n - 2] + 1 };
        assert_eq!(
            next_frame(&m, 4096),
            FrameStatus::Garbled {
                skip: n,
                error: FrameError::CheckSumMismatch
            }
        );
    }

    #[test]
    fn wrong_length_resyncs_like_quickfix() {
        let good = msg("35=0|34=2|49=A|");
        let mut bad = good.clone();
        // declare a shorter body
        let s = String::from_utf8(bad.clone())
            .unwrap()
            .replacen("9=15", "9=9", 1);
        bad = s.into_bytes();
        let n = bad.len();
        bad.extend_from_slice(&good);
        assert_eq!(
            next_frame(&bad, 4096),
            FrameStatus::Garbled {
                skip: n,
                error: FrameError::BodyLengthMismatch
            }
        );
        assert!(matches!(
            next_frame(&bad[n..], 4096),
            FrameStatus::Complete(_)
        ));
    }

    #[test]
    fn garbage_before_begin_string_is_skipped() {
        let mut m = b"35=0\x01".to_vec();
        m.extend(msg("35=0|"));
        assert_eq!(
            next_frame(&m, 4096),
            FrameStatus::Garbled {
                skip: 5,
                error: FrameError::BeginStringMissing
            }
        );
    }

    #[test]
    fn checksum_matches_a_plain_sum() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 251) as u8).collect();
        for len in (0..=100).chain([255, 1000]) {
            let want = data[..len].iter().map(|&b| b as u32).sum::<u32>() as u8;
            assert_eq!(checksum(&data[..len]), want, "len {len}");
        }
    }

    #[test]
    fn oversize_is_fatal() {
        let m = msg(&"58=x|".repeat(100));
        match next_frame(&m, 128) {
            FrameStatus::Garbled { error, .. } => assert!(error.is_fatal()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_body_length_is_garbled() {
        let m = b"8=FIX.4.4\x0135=0\x0110=000\x01".to_vec();
        assert!(matches!(
            next_frame(&m, 4096),
            FrameStatus::Garbled {
                error: FrameError::BodyLengthMissing,
                ..
            }
        ));
        let m = b"8=FIX.4.4\x019=1x\x0135=0\x0110=000\x01".to_vec();
        assert!(matches!(
            next_frame(&m, 4096),
            FrameStatus::Garbled {
                error: FrameError::BodyLengthInvalid,
                ..
            }
        ));
    }
}

//! The encoder: writes one message into a caller-provided buffer, then fills in BodyLength and
//! CheckSum. No allocation, no formatting machinery: integers, prices and timestamps are
//! written digit by digit straight into the buffer.
//!
//! BodyLength is not known until the body is written, and shifting the body afterwards would
//! cost a copy. So the encoder reserves room for the longest `8=...<SOH>9=NNNNNNN<SOH>` prefix in
//! front of the body and, at [`Encoder::finish`], writes the real prefix right-aligned against
//! the body. The finished message is the returned range of the buffer, usually starting a few
//! bytes in.

use super::frame::{checksum, SOH};
use super::num::{digits_u64, low_digits, write_fixed, write_i64, write_price, write_u64};
use super::time::{write_timestamp, TimePrecision};

/// Writes `tag=` for `tag < 1000` at the start of `w` (at least 4 bytes); returns its length.
#[inline(always)]
fn tag_into(w: &mut [u8], tag: u32) -> usize {
    let p = (tag as usize % 100) * 2;
    let pairs = crate::codec::num::DIGIT_PAIRS;
    if tag >= 100 {
        w[..4].copy_from_slice(&[b'0' + (tag / 100) as u8, pairs[p], pairs[p + 1], b'=']);
        4
    } else if tag >= 10 {
        w[..3].copy_from_slice(&[pairs[p], pairs[p + 1], b'=']);
        3
    } else {
        w[..2].copy_from_slice(&[b'0' + tag as u8, b'=']);
        2
    }
}

/// The buffer could not hold the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall;

/// Widest BodyLength the encoder writes (7 digits: bodies under 10 MB).
const MAX_LEN_DIGITS: usize = 7;

/// Writes one FIX message into a byte buffer.
#[derive(Debug)]
pub struct Encoder<'b> {
    buf: &'b mut [u8],
    gap: usize,
    pos: usize,
    overflow: bool,
}

impl<'b> Encoder<'b> {
    /// Starts a message of type `msg_type` whose BeginString will be `begin_string` (the same
    /// value must be given to [`finish`](Self::finish)). Writes `35=msg_type`.
    #[inline]
    pub fn new(buf: &'b mut [u8], begin_string: &[u8], msg_type: &[u8]) -> Self {
        let gap = 2 + begin_string.len() + 1 + 2 + MAX_LEN_DIGITS + 1;
        let overflow = gap > buf.len();
        let mut e = Encoder {
            buf,
            gap,
            pos: gap,
            overflow,
        };
        e.field(35, msg_type);
        e
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
            }
            None => self.overflow = true,
        }
    }

    #[inline]
    fn put_byte(&mut self, b: u8) {
        match self.buf.get_mut(self.pos) {
            Some(dst) => {
                *dst = b;
                self.pos += 1;
            }
            None => self.overflow = true,
        }
    }

    /// Runs a formatter on the unused tail of the buffer.
    #[inline]
    fn put_with(&mut self, f: impl FnOnce(&mut [u8]) -> Option<usize>) {
        let tail = self.buf.get_mut(self.pos..).unwrap_or_default();
        match f(tail) {
            Some(n) => self.pos += n,
            None => self.overflow = true,
        }
    }

    #[inline]
    fn tag(&mut self, tag: u32) {
        // Most tags have 1-3 digits: write them with the pair table and '=' in one go.
        if tag < 1000 {
            if let Some(dst) = self.buf.get_mut(self.pos..self.pos + 4) {
                let p = (tag as usize % 100) * 2;
                let pairs = crate::codec::num::DIGIT_PAIRS;
                let n = if tag >= 100 {
                    dst[0] = b'0' + (tag / 100) as u8;
                    dst[1] = pairs[p];
                    dst[2] = pairs[p + 1];
                    3
                } else if tag >= 10 {
                    dst[0] = pairs[p];
                    dst[1] = pairs[p + 1];
                    2
                } else {
                    dst[0] = b'0' + tag as u8;
                    1
                };
                dst[n] = b'=';
                self.pos += n + 1;
                return;
            }
        }
        self.put_with(|t| write_u64(t, tag as u64));
        self.put_byte(b'=');
    }

    /// Writes `tag=value<SOH>`.
    #[inline(always)]
    pub fn field(&mut self, tag: u32, value: &[u8]) {
        self.tag(tag);
        self.put(value);
        self.put_byte(SOH);
    }

    /// Writes a one-character field (Side, OrdStatus, ExecType...).
    #[inline(always)]
    pub fn field_char(&mut self, tag: u32, value: u8) {
        if tag < 1000 {
            if let Some(w) = self.buf.get_mut(self.pos..self.pos + 8) {
                let k = tag_into(w, tag);
                w[k] = value;
                w[k + 1] = SOH;
                self.pos += k + 2;
                return;
            }
        }
        self.tag(tag);
        self.put_byte(value);
        self.put_byte(SOH);
    }

    /// Writes a Boolean field (`Y`/`N`).
    #[inline]
    pub fn field_bool(&mut self, tag: u32, value: bool) {
        self.field_char(tag, if value { b'Y' } else { b'N' });
    }

    /// Writes an unsigned integer field.
    #[inline(always)]
    pub fn field_u64(&mut self, tag: u32, value: u64) {
        // Fast path for the usual case (tag < 1000, value < 10^8): one bounds check for the
        // whole field, digits produced eight at a time and stored as one word.
        if tag < 1000 && value < 100_000_000 {
            if let Some(w) = self.buf.get_mut(self.pos..self.pos + 16) {
                let k = tag_into(w, tag);
                let n = digits_u64(value);
                let d = low_digits(value as u32, n);
                w[k..k + 8].copy_from_slice(&d.to_le_bytes());
                w[k + n] = SOH;
                self.pos += k + n + 1;
                return;
            }
        }
        self.tag(tag);
        self.put_with(|t| write_u64(t, value));
        self.put_byte(SOH);
    }

    /// Writes a signed integer field.
    #[inline]
    pub fn field_i64(&mut self, tag: u32, value: i64) {
        self.tag(tag);
        self.put_with(|t| write_i64(t, value));
        self.put_byte(SOH);
    }

    /// Writes a price given in integer units with `scale` implied decimals, trailing zeros of
    /// the fraction trimmed (`1_012_500` at scale 4 is `101.25`).
    #[inline]
    pub fn field_price(&mut self, tag: u32, units: i64, scale: u8) {
        self.tag(tag);
        self.put_with(|t| write_price(t, units, scale));
        self.put_byte(SOH);
    }

    /// Writes a fixed-point value with exactly `decimals` digits after the point (for AvgPx
    /// and other computed decimals where the gateway picks the precision).
    #[inline]
    pub fn field_fixed(&mut self, tag: u32, value: i64, decimals: u8) {
        self.tag(tag);
        self.put_with(|t| write_fixed(t, value, decimals));
        self.put_byte(SOH);
    }

    /// Writes a UTCTimestamp of `nanos` since the epoch at the given precision.
    #[inline]
    pub fn field_timestamp(&mut self, tag: u32, nanos: u64, precision: TimePrecision) {
        self.tag(tag);
        self.put_with(|t| write_timestamp(t, nanos, precision));
        self.put_byte(SOH);
    }

    /// Appends already-encoded fields (`tag=value<SOH>...`) verbatim.
    #[inline]
    pub fn raw(&mut self, fields: &[u8]) {
        self.put(fields);
    }

    /// Bytes of body written so far (from `35=` on).
    #[inline]
    pub fn body_len(&self) -> usize {
        self.pos - self.gap
    }

    /// Writes BeginString and BodyLength in front of the body and CheckSum after it; returns
    /// the range of the buffer holding the complete message.
    pub fn finish(self, begin_string: &[u8]) -> Result<core::ops::Range<usize>, BufferTooSmall> {
        let Encoder {
            buf,
            gap,
            pos,
            overflow,
        } = self;
        if overflow || gap != 2 + begin_string.len() + 1 + 2 + MAX_LEN_DIGITS + 1 {
            return Err(BufferTooSmall);
        }
        let body_len = pos - gap;
        let mut digits = [0u8; 24];
        let nd = write_u64(&mut digits, body_len as u64).ok_or(BufferTooSmall)?;
        if nd > MAX_LEN_DIGITS {
            return Err(BufferTooSmall);
        }
        let prefix_len = 2 + begin_string.len() + 1 + 2 + nd + 1;
        let start = gap - prefix_len;
        {
            let p = &mut buf[start..gap];
            p[0] = b'8';
            p[1] = b'=';
            let mut i = 2;
            p[i..i + begin_string.len()].copy_from_slice(begin_string);
            i += begin_string.len();
            p[i] = SOH;
            p[i + 1] = b'9';
            p[i + 2] = b'=';
            i += 3;
            p[i..i + nd].copy_from_slice(&digits[..nd]);
            p[i + nd] = SOH;
        }
        let end = pos + 7;
        if end > buf.len() {
            return Err(BufferTooSmall);
        }
        let cs = checksum(&buf[start..pos]);
        let t = &mut buf[pos..end];
        t[0] = b'1';
        t[1] = b'0';
        t[2] = b'=';
        t[3] = b'0' + cs / 100;
        t[4] = b'0' + (cs / 10) % 10;
        t[5] = b'0' + cs % 10;
        t[6] = SOH;
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    /// Expected bytes cross-checked with the independent `simplefix` Python encoder.
    fn golden_heartbeat() {
        let mut buf = [0u8; 256];
        let mut e = Encoder::new(&mut buf, b"FIX.4.4", b"0");
        e.field_u64(34, 2);
        e.field(49, b"ISLD");
        e.field_timestamp(52, 1_024_503_250_123_456_789, TimePrecision::Millis);
        e.field(56, b"TW44");
        let r = e.finish(b"FIX.4.4").unwrap();
        let s = String::from_utf8(buf[r].to_vec())
            .unwrap()
            .replace('\x01', "|");
        assert_eq!(
            s,
            "8=FIX.4.4|9=51|35=0|34=2|49=ISLD|52=20020619-16:14:10.123|56=TW44|10=009|"
        );
    }

    #[test]
    fn overflow_is_reported_not_panicking() {
        let mut buf = [0u8; 40];
        let mut e = Encoder::new(&mut buf, b"FIX.4.4", b"0");
        e.field(58, &[b'x'; 64]);
        assert_eq!(e.finish(b"FIX.4.4"), Err(BufferTooSmall));
        let mut tiny = [0u8; 4];
        let e = Encoder::new(&mut tiny, b"FIX.4.4", b"0");
        assert_eq!(e.finish(b"FIX.4.4"), Err(BufferTooSmall));
    }
}

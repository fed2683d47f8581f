//! Little-endian byte encoding for snapshot payloads (cold path): a growable writer and a
//! bounds-checked reader whose every read can fail with a message saying what was being
//! read and where, so a damaged snapshot is refused with a reason instead of a panic.

/// Appends little-endian values to a buffer.
#[derive(Default)]
pub struct Put {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Put {
    /// A writer with `n` bytes reserved.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    /// A byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// A `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// An `i64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// An `i128`.
    pub fn i128(&mut self, v: i128) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Bytes prefixed by their `u32` length.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
    /// Raw bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// Reads little-endian values, failing with context instead of panicking.
pub struct Get<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

/// A read past the end, or a value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}: {problem}")]
pub struct CodecError {
    /// What was being read.
    pub what: &'static str,
    /// Offset.
    pub at: usize,
    /// What is wrong.
    pub problem: String,
}

impl<'a> Get<'a> {
    /// A reader over `b`, reading `what` (for error messages).
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Self { b, pos: 0, what }
    }
    /// Offset of the next read.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    /// An error at the current offset.
    pub fn err(&self, problem: impl Into<String>) -> CodecError {
        CodecError {
            what: self.what,
            at: self.pos,
            problem: problem.into(),
        }
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "needs {n} bytes, {} left (truncated)",
                self.remaining()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// A byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    /// A `u16`.
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// A `u32`.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let mut x = [0u8; 4];
        x.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(x))
    }
    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let mut x = [0u8; 8];
        x.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(x))
    }
    /// An `i64`.
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(self.u64()? as i64)
    }
    /// An `i128`.
    pub fn i128(&mut self) -> Result<i128, CodecError> {
        let mut x = [0u8; 16];
        x.copy_from_slice(self.take(16)?);
        Ok(i128::from_le_bytes(x))
    }
    /// Bytes prefixed by their `u32` length.
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A count that cannot exceed `max` (guards allocations sized from the input).
    pub fn count(&mut self, max: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(self.err(format!("count {n} above the limit {max}")));
        }
        Ok(n)
    }
    /// Fails unless everything was read.
    pub fn finish(&self) -> Result<(), CodecError> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} bytes left over", self.remaining())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_truncation_is_an_error() {
        let mut p = Put::default();
        p.u8(1);
        p.u16(2);
        p.u32(3);
        p.u64(4);
        p.i64(-5);
        p.i128(-6);
        p.bytes(b"seven");
        let mut g = Get::new(&p.buf, "test");
        assert_eq!(g.u8().unwrap(), 1);
        assert_eq!(g.u16().unwrap(), 2);
        assert_eq!(g.u32().unwrap(), 3);
        assert_eq!(g.u64().unwrap(), 4);
        assert_eq!(g.i64().unwrap(), -5);
        assert_eq!(g.i128().unwrap(), -6);
        assert_eq!(g.bytes().unwrap(), b"seven");
        g.finish().unwrap();
        let mut g = Get::new(&p.buf[..5], "test");
        g.u8().unwrap();
        g.u16().unwrap();
        let e = g.u32().unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}

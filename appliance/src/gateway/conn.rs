//! Connection slots and their buffers, reserved when the gateway starts.
//!
//! Input: bytes received but not yet framed (a message split across reads waits here).
//! Output: encoded replies not yet handed to the kernel. With io_uring a send reads the buffer
//! after submission, so the region of an in-flight send is locked: appends go after it and the
//! buffer is compacted only when no send is in flight.

use crate::vocab::{DisconnectCause, Protocol};

/// Connection handle: the index of the connection's slot.
pub type ConnId = u32;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Slot unused.
    Free,
    /// Reading and writing.
    Open,
    /// A goodbye is queued: close once the output is flushed, read nothing more.
    Closing,
    /// Close now (peer gone, stream corrupt, or output overflowed); the driver closes the
    /// socket and releases the slot once no operation is in flight.
    Dead,
}

/// One client connection's slot.
pub struct Conn {
    /// Life-cycle state.
    pub state: ConnState,
    /// Protocol of the listener it came from.
    pub protocol: Protocol,
    /// Bound session (local index), once logged in.
    pub session: Option<u16>,
    /// Received bytes not yet framed.
    pub input: InBuf,
    /// Replies not yet sent.
    pub output: OutBuf,
    /// Input processing stopped because an engine ring was full.
    pub paused: bool,
    /// TSC of the last receive completion (stamped on the commands it produced).
    pub t_recv: u64,
    /// When the connection was accepted (monotonic ns): unbound connections time out.
    pub opened_ns: u64,
    /// Why it left `Open` (read when its session is detached).
    pub cause: DisconnectCause,
    /// The peer's address (IPv4 mapped into IPv6), for the per-address budget.
    pub peer: u128,
    /// When it started closing (monotonic ns): a closing connection gets a deadline.
    pub closing_ns: u64,
    /// Queued for the driver's attention.
    pub(super) dirty: bool,
}

impl Conn {
    /// A free slot with its buffers reserved.
    pub fn new(input_bytes: usize, output_bytes: usize) -> Self {
        Self {
            state: ConnState::Free,
            protocol: Protocol::Binary,
            session: None,
            input: InBuf::new(input_bytes),
            output: OutBuf::new(output_bytes),
            paused: false,
            t_recv: 0,
            opened_ns: 0,
            peer: 0,
            closing_ns: 0,
            cause: DisconnectCause::PeerClosed,
            dirty: false,
        }
    }
}

/// Bytes received and not yet consumed.
pub struct InBuf {
    buf: Box<[u8]>,
    len: usize,
}

impl InBuf {
    /// A buffer of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            buf: vec![0; cap].into_boxed_slice(),
            len: 0,
        }
    }

    /// The unconsumed bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends received bytes; `false` (appending nothing) when they do not fit.
    #[inline]
    pub fn append(&mut self, data: &[u8]) -> bool {
        let Some(dst) = self.buf.get_mut(self.len..self.len + data.len()) else {
            return false;
        };
        dst.copy_from_slice(data);
        self.len += data.len();
        true
    }

    /// Free space.
    #[inline]
    pub fn space(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Drops the first `n` bytes (consumed messages), moving the rest to the front.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Forgets everything (connection reuse).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// A buffer with no capacity (no allocation): the placeholder left in a connection while
    /// its real buffer is borrowed out for framing.
    pub fn empty() -> Self {
        Self {
            buf: Box::default(),
            len: 0,
        }
    }
}

/// Encoded bytes waiting to be sent.
pub struct OutBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    in_flight: usize,
}

impl OutBuf {
    /// A buffer of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            buf: vec![0; cap].into_boxed_slice(),
            start: 0,
            end: 0,
            in_flight: 0,
        }
    }

    /// Size of the buffer.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes waiting (in flight or not).
    #[inline]
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Bytes an append is sure to find room for (compaction moves the pending bytes to the
    /// front only when no send is in flight).
    #[inline]
    pub fn room(&self) -> usize {
        if self.in_flight == 0 {
            self.buf.len() - self.pending()
        } else {
            self.buf.len() - self.end
        }
    }

    /// Whether a send is in flight.
    #[inline]
    pub fn in_flight(&self) -> bool {
        self.in_flight != 0
    }

    /// Appends `data`; `false` (appending nothing) when it does not fit even after compacting.
    #[inline]
    pub fn append(&mut self, data: &[u8]) -> bool {
        match self.reserve(data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                self.end += data.len();
                true
            }
            None => false,
        }
    }

    /// Space for up to `n` bytes at the end, for encoding in place; call [`OutBuf::commit`]
    /// with what was written. `None` when `n` bytes cannot fit.
    #[inline]
    pub fn reserve(&mut self, n: usize) -> Option<&mut [u8]> {
        if self.end + n > self.buf.len() && self.in_flight == 0 && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..self.end + n)
    }

    /// Commits `n` bytes written into the space [`OutBuf::reserve`] returned.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// Everything waiting, for a synchronous send (epoll); follow with [`OutBuf::sent`].
    #[inline]
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Locks everything waiting as one in-flight send and returns it (io_uring). `None` when a
    /// send is already in flight or nothing waits.
    ///
    /// The returned slice's memory stays valid and unmoved until [`OutBuf::sent`] is called:
    /// appends never move locked bytes, and the buffer itself is never reallocated.
    #[inline]
    pub fn begin_send(&mut self) -> Option<&[u8]> {
        if self.in_flight != 0 || self.start == self.end {
            return None;
        }
        self.in_flight = self.end - self.start;
        Some(&self.buf[self.start..self.end])
    }

    /// `n` bytes from the front were sent; releases the in-flight lock (a partial send leaves
    /// the rest waiting for the next `begin_send`).
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        self.in_flight = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start >= self.buf.len() / 2 {
            // What was appended while the send was in flight is past the middle: move it to
            // the front now that nothing is locked. Appends compact only when no send is in
            // flight, and a connection streaming steadily always has one: without this its
            // bytes would creep to the end of the buffer and overflow (a "slow consumer")
            // with little pending, however fast its client reads.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Forgets everything (connection reuse; only when no send is in flight).
    pub fn clear(&mut self) {
        debug_assert_eq!(self.in_flight, 0);
        self.start = 0;
        self.end = 0;
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_keeps_partial_messages() {
        let mut b = InBuf::new(8);
        assert!(b.append(b"abcde"));
        assert!(!b.append(b"fghi"), "does not fit: nothing appended");
        assert_eq!(b.data(), b"abcde");
        b.consume(3);
        assert_eq!(b.data(), b"de");
        assert!(b.append(b"fghi"));
        assert_eq!(b.data(), b"defghi");
        assert_eq!(b.space(), 2);
    }

    #[test]
    fn in_flight_bytes_never_move() {
        let mut b = OutBuf::new(16);
        assert!(b.append(b"0123456789"));
        let p = b.begin_send().unwrap().as_ptr();
        assert!(b.begin_send().is_none(), "one send in flight at a time");
        // Appending while in flight never compacts: only 6 bytes are left at the end.
        assert!(!b.append(b"abcdefg"));
        assert!(b.append(b"abcdef"));
        b.sent(4); // partial send
        assert_eq!(b.unsent(), b"456789abcdef");
        // The next send starts where the last one stopped, at the same memory.
        let again = b.begin_send().unwrap();
        // SAFETY: both pointers are into the same live allocation, 4 bytes apart.
        assert_eq!(again.as_ptr(), unsafe { p.add(4) });
        b.sent(12);
        assert_eq!(b.pending(), 0);
        // Idle and empty: everything fits again from the front.
        assert!(b.append(&[7u8; 16]));
    }

    #[test]
    fn a_steady_stream_with_a_send_always_in_flight_never_overflows() {
        // Each round: a send of what waits is in flight while the next 100 bytes are
        // appended, then it completes whole. Pending never exceeds 200 bytes of 1,024.
        let mut b = OutBuf::new(1024);
        assert!(b.append(&[1u8; 100]));
        for round in 0..1_000 {
            let n = b.begin_send().expect("something waits").len();
            assert!(
                b.append(&[2u8; 100]),
                "round {round}: overflow with {n} in flight"
            );
            b.sent(n);
            assert_eq!(b.pending(), 100);
        }
    }

    #[test]
    fn compacts_when_idle() {
        let mut b = OutBuf::new(8);
        assert!(b.append(b"abcdef"));
        b.begin_send();
        b.sent(4);
        assert!(b.append(b"ghij"), "compaction made room");
        assert_eq!(b.unsent(), b"efghij");
        let dst = b.reserve(2).unwrap();
        dst.copy_from_slice(b"kl");
        b.commit(2);
        assert_eq!(b.unsent(), b"efghijkl");
        assert!(b.reserve(1).is_none());
    }
}

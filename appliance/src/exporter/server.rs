//! The exporter's connections: non-blocking sockets in a bounded table, driven by `poll(2)`
//! on the exporter thread (cold path).
//!
//! Why this shape: the exporter must stay one `SCHED_IDLE` thread on a housekeeping core, yet
//! a client that is slow (drips its request a byte at a time), silent (connects and sends
//! nothing) or deaf (never reads the answer) must not keep a health check waiting. So no
//! socket ever blocks the thread:
//!
//! - each connection lives in one of [`MAX_CONNECTIONS`] slots with its own buffer (the
//!   request head, at most `http::MAX_HEAD` bytes, then the encoded answer);
//! - each has one wall-clock deadline for the whole exchange, [`REQUEST_DEADLINE`] from
//!   accept to the last byte of the answer, however the bytes trickle (a per-read timeout
//!   would let a client that sends a byte just before each timeout hold the slot forever);
//! - a new connection that finds the table full takes the slot of the oldest one (the one
//!   closest to its deadline: the slowest), so a burst of idle connections can delay a fresh
//!   health check by one wake-up, never block it;
//! - a well-behaved request (one short GET, already in the socket when the listener wakes the
//!   thread) is accepted, read, answered and closed in the same wake-up, without a slot.
//!
//! The table only adds work while connections are open: with none, one `poll(2)` per
//! collection interval is all the exporter does.

use super::http::{self, Request, Response, MAX_HEAD};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Connections served at once. Prometheus, a health checker and a few people with `curl`
/// need a handful; the rest is headroom so that slow clients rarely push anyone out.
pub const MAX_CONNECTIONS: usize = 32;
/// Longest a connection may take from accept to the end of the answer. Prometheus on a
/// management network needs milliseconds; the shipped scrape timeout (4 s) is longer, so a
/// scrape that fails here fails because of the client, not the exporter.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// How long to stop accepting after `accept(2)` fails for lack of resources (file
/// descriptors, memory): the listener stays readable, so polling it would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up, so that a connection flood cannot keep the open
/// connections from progressing.
const ACCEPTS_PER_TURN: usize = MAX_CONNECTIONS;

/// Connections the table closed before their answer went out, for
/// `appliance_exporter_connections_dropped_total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Closed at their [`REQUEST_DEADLINE`].
    pub dropped_deadline: u64,
    /// Closed because the table was full and a newer connection needed the slot.
    pub dropped_table_full: u64,
}

/// How requests are answered: the parsed request and the table's counters (for `/metrics`).
pub type Route<'a> = dyn FnMut(&Request, &ServerStats) -> Response + 'a;

enum Phase {
    /// Collecting the request head.
    Reading(Vec<u8>),
    /// Sending the encoded answer; `sent` bytes are out.
    Writing { out: Vec<u8>, sent: usize },
}

struct Conn {
    stream: TcpStream,
    deadline: Instant,
    phase: Phase,
}

/// What one attempt to progress a connection left it as.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the socket (more request bytes, or room to send).
    Open,
    /// Answered (or the client went away): close it.
    Finished,
}

enum HeadRead {
    /// The head ends at this offset (after the blank line).
    Complete(usize),
    /// Nothing more to read now.
    Pending,
    /// The client closed after sending part of a head (answered 400).
    Truncated,
    /// The head outgrew `MAX_HEAD` (answered 431).
    TooLarge,
    /// The client closed before sending anything, or the socket failed: nothing to answer.
    Gone,
}

/// The listener and its connection table.
pub struct Server {
    listener: TcpListener,
    slots: Vec<Option<Conn>>,
    accept_paused_until: Option<Instant>,
    accept_failing: bool,
    stats: ServerStats,
}

impl Server {
    /// A server on `listener` (which must be non-blocking: it is only accepted from when
    /// `poll(2)` says so, and a spurious wake-up must not block the thread).
    pub fn new(listener: TcpListener) -> Self {
        Self {
            listener,
            slots: (0..MAX_CONNECTIONS).map(|_| None).collect(),
            accept_paused_until: None,
            accept_failing: false,
            stats: ServerStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Connections in the table.
    pub fn open_connections(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// One wake-up: closes connections past their deadline, sleeps in `poll(2)` until the
    /// listener, a connection or `wake` (a descriptor that becomes readable to interrupt the
    /// sleep; -1 for none) is ready, the next deadline passes or `max_sleep` elapses, then
    /// progresses whatever is ready, answering complete requests with `route`.
    pub fn turn(&mut self, wake: RawFd, max_sleep: Duration, route: &mut Route<'_>) {
        let now = Instant::now();
        self.expire(now);
        let mut wake_at = now + max_sleep;
        let accepting = match self.accept_paused_until {
            Some(t) if t > now => {
                wake_at = wake_at.min(t);
                false
            }
            _ => {
                self.accept_paused_until = None;
                true
            }
        };
        const NONE: libc::pollfd = libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        };
        // 0: wake, 1: listener, 2..: slot i at 2 + i. poll(2) ignores negative descriptors,
        // so free slots cost nothing and no index map is needed.
        let mut fds = [NONE; 2 + MAX_CONNECTIONS];
        fds[0] = libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        };
        if accepting {
            fds[1] = libc::pollfd {
                fd: self.listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(c) = slot {
                wake_at = wake_at.min(c.deadline);
                let events = match c.phase {
                    Phase::Reading(_) => libc::POLLIN,
                    Phase::Writing { .. } => libc::POLLOUT,
                };
                fds[2 + i] = libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events,
                    revents: 0,
                };
            }
        }
        let timeout = ceil_millis(wake_at.saturating_duration_since(now));
        // SAFETY: `fds` is a live, initialised array of `fds.len()` pollfds that poll(2) only
        // writes `revents` of; every non-negative descriptor in it is owned by `self` (or is
        // the caller's `wake`) and stays open for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            // Timeout (deadlines are handled at the next turn) or EINTR.
            return;
        }
        let stats = self.stats;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if fds[2 + i].revents == 0 {
                continue;
            }
            if let Some(c) = slot {
                if advance(c, route, &stats) == Step::Finished {
                    *slot = None;
                }
            }
        }
        if fds[1].revents != 0 {
            self.accept_all(route);
        }
    }

    /// Closes every connection whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|c| c.deadline <= now) {
                *slot = None;
                self.stats.dropped_deadline += 1;
            }
        }
    }

    /// Accepts what the listener has (up to [`ACCEPTS_PER_TURN`]) and tries each request at
    /// once; only connections that must wait take a slot.
    fn accept_all(&mut self, route: &mut Route<'_>) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.accept_failing = false;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let mut conn = Conn {
                        stream,
                        deadline: Instant::now() + REQUEST_DEADLINE,
                        phase: Phase::Reading(Vec::new()),
                    };
                    if advance(&mut conn, route, &self.stats) == Step::Finished {
                        continue;
                    }
                    let i = self.free_slot();
                    self.slots[i] = Some(conn);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays queued;
                    // try again after a pause (one log line per run of failures).
                    if !self.accept_failing {
                        tracing::warn!(
                            "exporter: accept failed ({e}); pausing accepts for {ACCEPT_BACKOFF:?}"
                        );
                    }
                    self.accept_failing = true;
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// A free slot, closing the oldest connection when there is none.
    fn free_slot(&mut self) -> usize {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            return i;
        }
        // Every deadline is its accept time plus the same constant: the earliest is the oldest.
        let oldest = (0..self.slots.len())
            .min_by_key(|&i| self.slots[i].as_ref().map(|c| c.deadline))
            .expect("the table has slots");
        self.slots[oldest] = None;
        self.stats.dropped_table_full += 1;
        oldest
    }
}

/// Milliseconds for `poll(2)`, rounded up so that a deadline less than 1 ms away does not
/// become a busy loop of zero timeouts.
fn ceil_millis(d: Duration) -> i32 {
    d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
}

/// Moves a connection forward as far as its socket allows without blocking.
fn advance(c: &mut Conn, route: &mut Route<'_>, stats: &ServerStats) -> Step {
    if let Phase::Reading(head) = &mut c.phase {
        let (resp, head_only) = match read_head(&mut c.stream, head) {
            HeadRead::Pending => return Step::Open,
            HeadRead::Gone => return Step::Finished,
            HeadRead::Complete(end) => match http::parse(&head[..end]) {
                Ok(req) => (route(&req, stats), req.head_only),
                Err(code) => (http::Response::status(code), false),
            },
            HeadRead::Truncated => (Response::text(400, "incomplete request\n"), false),
            HeadRead::TooLarge => (http::Response::status(431), false),
        };
        c.phase = Phase::Writing {
            out: http::encode(&resp, head_only),
            sent: 0,
        };
    }
    let Phase::Writing { out, sent } = &mut c.phase else {
        unreachable!("a read head became an answer above");
    };
    while *sent < out.len() {
        match c.stream.write(&out[*sent..]) {
            Ok(0) => return Step::Finished,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Open,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Step::Finished,
        }
    }
    // FIN after the answer (`Connection: close`); the socket closes when the slot drops.
    let _ = c.stream.shutdown(Shutdown::Write);
    Step::Finished
}

/// Reads what the socket has into `head` (never past `MAX_HEAD + 1` bytes).
fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> HeadRead {
    let mut buf = [0u8; 1024];
    loop {
        let room = (MAX_HEAD + 1 - head.len()).min(buf.len());
        match stream.read(&mut buf[..room]) {
            Ok(0) if head.is_empty() => return HeadRead::Gone,
            Ok(0) => return HeadRead::Truncated,
            Ok(n) => {
                // The blank line may straddle the previous read.
                let from = head.len().saturating_sub(3);
                head.extend_from_slice(&buf[..n]);
                if let Some(p) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                    return HeadRead::Complete(from + p + 4);
                }
                if head.len() > MAX_HEAD {
                    return HeadRead::TooLarge;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return HeadRead::Pending,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return HeadRead::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Runs `server` on its own thread until `stop`; answers every path with 200 "ok".
    fn serve(
        server: Server,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<(Server, Vec<String>)> {
        std::thread::spawn(move || {
            let mut server = server;
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                server.turn(-1, Duration::from_millis(10), &mut |req, _| {
                    seen.push(req.path.clone());
                    Response::text(200, "ok\n")
                });
            }
            (server, seen)
        })
    }

    fn listener() -> (TcpListener, std::net::SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    /// Sends `req` and reads until the server closes (at most 5 s).
    fn exchange(addr: std::net::SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Whether the server closed `s` (EOF or reset) within `within`.
    fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
        s.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        }
    }

    #[test]
    fn a_full_table_gives_the_oldest_slot_to_the_newcomer() {
        let (l, addr) = listener();
        let stop = Arc::new(AtomicBool::new(false));
        let h = serve(Server::new(l), stop.clone());
        // Fill the table with silent connections, oldest first.
        let mut silent: Vec<TcpStream> = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            silent.push(TcpStream::connect(addr).unwrap());
            std::thread::sleep(Duration::from_millis(2));
        }
        // A request still gets answered (at accept, or in a slot taken from the oldest).
        let answer = exchange(addr, b"GET /a HTTP/1.1\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        // One more silent connection takes the oldest's slot.
        let newest = TcpStream::connect(addr).unwrap();
        assert!(
            closed_within(&mut silent[0], Duration::from_secs(1)),
            "the oldest connection is closed"
        );
        assert!(
            !closed_within(&mut silent[MAX_CONNECTIONS - 1], Duration::from_millis(50)),
            "a younger connection keeps its slot"
        );
        stop.store(true, Ordering::Relaxed);
        let (server, seen) = h.join().unwrap();
        assert_eq!(seen, vec!["/a".to_string()]);
        // One eviction either way: if the request took the oldest's slot, it freed it again
        // before the newcomer arrived.
        assert_eq!(server.stats().dropped_table_full, 1);
        assert_eq!(server.stats().dropped_deadline, 0);
        assert_eq!(server.open_connections(), MAX_CONNECTIONS);
        drop(newest);
    }

    #[test]
    fn heads_split_anywhere_are_reassembled_and_oversized_ones_refused() {
        let (l, addr) = listener();
        let stop = Arc::new(AtomicBool::new(false));
        let h = serve(Server::new(l), stop.clone());
        // The blank line split across writes (and reads).
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        for part in [&b"GET /split HTTP/1.1\r\nHost: x\r"[..], b"\n\r", b"\n"] {
            s.write_all(part).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        // A head larger than MAX_HEAD: 431 without routing.
        let mut big = b"GET /big HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(MAX_HEAD + 100, b'a');
        let answer = exchange(addr, &big);
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        // Closed half-way: 400; closed at once: nothing.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /half").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        let mut s = TcpStream::connect(addr).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(5)));
        stop.store(true, Ordering::Relaxed);
        let (server, seen) = h.join().unwrap();
        assert_eq!(seen, vec!["/split".to_string()]);
        assert_eq!(server.open_connections(), 0);
    }

    #[test]
    fn a_client_that_never_reads_is_dropped_at_the_deadline_and_holds_up_nobody() {
        let (l, addr) = listener();
        let stop = Arc::new(AtomicBool::new(false));
        let h = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut server = Server::new(l);
                while !stop.load(Ordering::Relaxed) {
                    server.turn(-1, Duration::from_millis(10), &mut |req, _| {
                        if req.path == "/big" {
                            // Far more than the socket buffers hold: the write must wait.
                            Response {
                                status: 200,
                                content_type: "application/octet-stream",
                                body: vec![b'x'; 16 << 20],
                            }
                        } else {
                            Response::text(200, "ok\n")
                        }
                    });
                }
                server
            })
        };
        let started = Instant::now();
        let mut deaf = TcpStream::connect(addr).unwrap();
        deaf.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..3 {
            let t = Instant::now();
            let answer = exchange(addr, b"GET /small HTTP/1.1\r\n\r\n");
            assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        }
        std::thread::sleep(
            (REQUEST_DEADLINE + Duration::from_millis(500)).saturating_sub(started.elapsed()),
        );
        stop.store(true, Ordering::Relaxed);
        let server = h.join().unwrap();
        assert_eq!(server.stats().dropped_deadline, 1, "the deaf client");
        assert_eq!(server.open_connections(), 0);
        drop(deaf);
    }

    #[test]
    fn poll_timeouts_round_up() {
        assert_eq!(ceil_millis(Duration::ZERO), 0);
        assert_eq!(ceil_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_millis(Duration::from_millis(500)), 500);
        assert_eq!(ceil_millis(Duration::from_secs(1 << 40)), i32::MAX);
    }
}

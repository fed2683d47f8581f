//! The gateway thread's loop, shared by the io_uring and epoll backends.
//!
//! One iteration: reap I/O (accepts, received bytes, send completions), drain the engines'
//! events into replies, run timers every few milliseconds, then submit sends and closes for
//! every connection that changed, and record egress latencies at that submission. When an
//! iteration finds nothing, the wait strategy decides between polling again and sleeping in
//! the backend (io_uring wait or epoll_wait) until I/O, an engine's wake-up, or a timeout.

use super::core::{ConnId, Gateway, Protocol};
use crate::config::WaitStrategy;
use crate::runtime::wait::{Idle, Idler, Waker, PARK_TIMEOUT};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A listening socket and the protocol its connections speak.
pub struct Listener {
    /// The socket (non-blocking).
    pub socket: TcpListener,
    /// Protocol.
    pub protocol: Protocol,
}

/// Counters of a backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackendStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because every slot was taken.
    pub refused_full: u64,
    /// Connections closed.
    pub closed: u64,
    /// Send operations submitted (io_uring) or system calls made (epoll).
    pub sends: u64,
    /// Multishot recvs that found the provided-buffer ring empty.
    pub enobufs: u64,
    /// Connections closed for sending past a paused input buffer.
    pub input_overflow: u64,
    /// Failed accepts.
    pub accept_errors: u64,
    /// Failed submissions.
    pub submit_errors: u64,
}

/// What the loop needs from an I/O backend.
pub trait Backend {
    /// Handles every I/O completion or readiness that is ready now, without blocking.
    fn poll_io(&mut self, gw: &mut Gateway) -> bool;
    /// Sends queued output, (re)arms or stops reads, closes connections that should close.
    /// Calls [`Gateway::sends_submitted`] at the moment the replies are handed to the kernel,
    /// before the submitting system call: the internal latency ends at submission, and the
    /// kernel's own send work (on loopback, the whole delivery to the peer) belongs to the
    /// round trip a client measures, not to the appliance's stages.
    fn flush(&mut self, gw: &mut Gateway, scratch: &mut Vec<ConnId>);
    /// Blocks until I/O, a wake-up on the gateway's eventfd, or `timeout`.
    fn wait(&mut self, gw: &mut Gateway, timeout: Duration);
    /// Stops accepting (graceful shutdown).
    fn close_listeners(&mut self);
    /// Counters.
    fn stats(&self) -> BackendStats;
    /// Backend name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Socket options for an accepted connection: no Nagle (replies must leave at once).
pub fn tune_socket(fd: i32) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// How often timers (heartbeats, timeouts) run.
pub const TIMER_INTERVAL_NS: u64 = 5_000_000;
/// How long a graceful shutdown waits for Logout replies and flushes.
pub const SHUTDOWN_GRACE_NS: u64 = 2_000_000_000;

/// Runs a gateway until `stop` is set and its connections have been logged out and closed
/// (or the grace period ends).
pub fn run(
    gw: &mut Gateway,
    backend: &mut dyn Backend,
    waker: &Waker,
    wait: WaitStrategy,
    stop: &AtomicBool,
) {
    let mut idler = Idler::new(wait);
    let mut scratch: Vec<ConnId> = Vec::with_capacity(1024);
    let mut last_timer = 0u64;
    let mut shutdown_at: Option<u64> = None;
    gw.stats.listening.store(true, Ordering::Release);
    loop {
        gw.tick_clock();
        let mut did = backend.poll_io(gw);
        did |= gw.poll();
        let now = gw.now_ns;
        if now.saturating_sub(last_timer) >= TIMER_INTERVAL_NS {
            last_timer = now;
            gw.on_timer();
        }
        backend.flush(gw, &mut scratch);
        gw.telemetry_tick();
        if shutdown_at.is_none() && stop.load(Ordering::Acquire) {
            backend.close_listeners();
            gw.stats.listening.store(false, Ordering::Release);
            gw.begin_shutdown();
            backend.flush(gw, &mut scratch);
            shutdown_at = Some(now);
        }
        if let Some(t) = shutdown_at {
            if !gw.has_connections() || now.saturating_sub(t) > SHUTDOWN_GRACE_NS {
                break;
            }
        }
        if did {
            idler.reset();
            continue;
        }
        if idler.idle() == Idle::Sleep {
            waker.prepare_sleep();
            if gw.engine_events_waiting() {
                waker.woke();
                continue;
            }
            let until_timer =
                TIMER_INTERVAL_NS.saturating_sub(gw.now_ns.saturating_sub(last_timer));
            backend.wait(
                gw,
                PARK_TIMEOUT.min(Duration::from_nanos(until_timer.max(100_000))),
            );
            waker.woke();
            waker.drain_eventfd();
        }
    }
}

/// Builds the backend the configuration asks for, falling back from io_uring to epoll when
/// `auto` and the host refuses io_uring. Returns the backend and, on fallback, why.
pub fn make_backend(
    io: crate::config::IoBackend,
    listeners: Vec<Listener>,
    max_connections: usize,
    waker: &Arc<Waker>,
    sqpoll: bool,
) -> std::io::Result<(Box<dyn Backend + Send>, Option<String>)> {
    use crate::config::IoBackend;
    let wake_fd = waker.eventfd().expect("gateway wakers are eventfd-backed");
    for l in &listeners {
        l.socket.set_nonblocking(true)?;
    }
    let uring_refusal = match io {
        IoBackend::Epoll => {
            Some("configuration asks for epoll (gateway.io = \"epoll\")".to_string())
        }
        _ => crate::platform::uring::probe().err().map(|e| e.to_string()),
    };
    match (io, uring_refusal) {
        (IoBackend::IoUring, Some(why)) => Err(std::io::Error::other(format!(
            "gateway.io = \"io-uring\" but io_uring is unavailable: {why}"
        ))),
        (_, None) => {
            let b = super::uring::UringBackend::new(
                listeners,
                max_connections,
                wake_fd,
                sqpoll,
                crate::platform::memory::MemoryPolicy::default(),
            )?;
            Ok((Box::new(b), None))
        }
        (_, Some(why)) => {
            let b = super::epoll::EpollBackend::new(listeners, max_connections, wake_fd)?;
            Ok((Box::new(b), Some(why)))
        }
    }
}

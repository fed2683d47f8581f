//! What the gateway's loop needs from an I/O backend ([`Backend`]), shared by io_uring and
//! epoll, and the choice between them ([`make_backend`]). The loop itself is the runtime's
//! gateway agent (`runtime::gateway_agent`): reap I/O, drain the engines' events into
//! replies, run timers, then submit sends and closes for every connection that changed.

use super::conn::ConnId;
use super::Gateway;
use crate::rings::wait::Waker;
use crate::vocab::Protocol;
use std::net::TcpListener;
use std::os::fd::RawFd;
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
    /// Connections closed for sending past a paused input buffer (no longer expected: both
    /// backends read at most the room there is).
    pub input_overflow: u64,
    /// io_uring: receive completions held back, whole or in part, until the connection's
    /// input buffer had room.
    pub recv_held: u64,
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
    /// Makes this backend's I/O wake a thread that sleeps in another backend's wait (shared
    /// threading with several gateways): either the backend signals `wake_fd` itself on
    /// every completion (io_uring: a registered eventfd; returns `None`), or it returns an fd
    /// that becomes readable when it has I/O (epoll: its epoll fd), for the sleeping backend
    /// to [`Backend::watch`].
    fn wake_source(&mut self, wake_fd: RawFd) -> std::io::Result<Option<RawFd>>;
    /// Adds `fd` to what this backend's [`Backend::wait`] returns on (its readiness only
    /// wakes the thread; the fd's owner handles it).
    fn watch(&mut self, fd: RawFd) -> std::io::Result<()>;
    /// Counters.
    fn stats(&self) -> BackendStats;
    /// Backend name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Socket options for an accepted connection: no Nagle (replies must leave at once); a user
/// timeout and keepalive probes, so the kernel notices a peer that vanished (powered off,
/// cable pulled) even when the session's own heartbeats are long or the peer stopped reading
/// mid-send.
pub fn tune_socket(fd: i32, limits: &super::core::ConnLimits) {
    let set = |level: libc::c_int, opt: libc::c_int, v: libc::c_int| {
        // SAFETY: setsockopt with a valid fd and a pointer to a c_int of the given size; a
        // failure leaves the option at the kernel's default.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    };
    set(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    if limits.tcp_user_timeout_ms > 0 {
        let ms = limits.tcp_user_timeout_ms.min(i32::MAX as u32) as libc::c_int;
        set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms);
    }
    if limits.tcp_keepalive_secs > 0 {
        let idle = limits.tcp_keepalive_secs.min(32_767) as libc::c_int;
        set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (idle / 3).max(1));
        set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    }
}

/// The peer address of an accepted socket as an IPv6 address number (IPv4 mapped), for the
/// per-address connection budget; 0 when unknown.
pub fn peer_of(fd: i32) -> u128 {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getpeername writes at most `len` bytes into `ss`, which is that large.
    let r = unsafe {
        libc::getpeername(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return 0;
    }
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let v4 = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            u128::from(v4.to_ipv6_mapped())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a =
                unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            u128::from_be_bytes(a.sin6_addr.s6_addr)
        }
        _ => 0,
    }
}

/// How long a graceful shutdown waits for Logout replies and flushes.
pub const SHUTDOWN_GRACE_NS: u64 = 2_000_000_000;

/// Builds the backend the configuration asks for, falling back from io_uring to epoll when
/// `auto` and the host refuses io_uring. Returns the backend and, on fallback, why.
pub fn make_backend(
    io: crate::config::IoBackend,
    listeners: Vec<Listener>,
    max_connections: usize,
    waker: &Arc<Waker>,
    sqpoll: bool,
) -> std::io::Result<(Box<dyn Backend>, Option<String>)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn get(fd: i32, level: libc::c_int, opt: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt into a c_int of the given size on a valid fd.
        let r = unsafe {
            libc::getsockopt(
                fd,
                level,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "getsockopt {level}/{opt}");
        v
    }

    /// An accepted socket, and its peer's address number.
    fn accepted() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (server, client)
    }

    #[test]
    fn accepted_sockets_get_no_delay_a_user_timeout_and_keepalive() {
        let (server, _client) = accepted();
        let fd = server.as_raw_fd();
        let limits = super::super::core::ConnLimits {
            tcp_user_timeout_ms: 12_000,
            tcp_keepalive_secs: 9,
            ..super::super::core::ConnLimits::for_slots(8)
        };
        tune_socket(fd, &limits);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), 12_000);
        assert_eq!(get(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 9);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 3);
        assert_eq!(get(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        // 0 leaves both off.
        let (server, _client) = accepted();
        let off = super::super::core::ConnLimits {
            tcp_user_timeout_ms: 0,
            tcp_keepalive_secs: 0,
            ..limits
        };
        tune_socket(server.as_raw_fd(), &off);
        assert_eq!(
            get(server.as_raw_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            0
        );
        assert_eq!(
            get(
                server.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT
            ),
            0
        );
    }

    #[test]
    fn the_peer_address_is_the_clients_ipv4_mapped() {
        let (server, client) = accepted();
        let want = match client.local_addr().unwrap().ip() {
            std::net::IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            std::net::IpAddr::V6(a) => u128::from(a),
        };
        assert_eq!(peer_of(server.as_raw_fd()), want);
        assert_eq!(peer_of(-1), 0, "unknown: 0");
    }
}

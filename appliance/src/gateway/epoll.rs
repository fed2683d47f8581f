//! The epoll backend: the portable fallback when the host refuses io_uring (old kernel,
//! `kernel.io_uring_disabled`, a seccomp profile). Same gateway core, same session logic;
//! only the system calls differ: non-blocking sockets, `read`/`write` on readiness, and
//! `epoll_wait` (with the gateway's eventfd in the set) when idle.

use super::conn::ConnId;
use super::driver::{Backend, BackendStats, Listener};
use super::Gateway;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

const TAG_LISTENER: u64 = 1 << 62;
const TAG_WAKE: u64 = 1 << 61;

/// The epoll backend of one gateway thread.
pub struct EpollBackend {
    epfd: OwnedFd,
    listeners: Vec<Listener>,
    fds: Vec<RawFd>,
    /// Whether EPOLLOUT is armed (a write hit EAGAIN) per connection.
    want_out: Vec<bool>,
    events: Vec<libc::epoll_event>,
    read_buf: Box<[u8]>,
    stats: BackendStats,
    /// Accepting paused (out of descriptors): the listeners are out of the epoll set.
    listeners_paused: bool,
}

fn ctl(epfd: RawFd, op: i32, fd: RawFd, events: u32, data: u64) -> std::io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: a valid epoll fd, a valid fd and a pointer to a live epoll_event.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl EpollBackend {
    /// Creates the epoll set with the listeners and the wake-up eventfd (cold path).
    pub fn new(
        listeners: Vec<Listener>,
        max_connections: usize,
        wake_fd: RawFd,
    ) -> std::io::Result<Self> {
        // SAFETY: epoll_create1 has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nobody else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        for (i, l) in listeners.iter().enumerate() {
            ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                l.socket.as_raw_fd(),
                libc::EPOLLIN as u32,
                TAG_LISTENER | i as u64,
            )?;
        }
        ctl(
            epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            wake_fd,
            libc::EPOLLIN as u32,
            TAG_WAKE,
        )?;
        Ok(Self {
            epfd,
            listeners,
            fds: vec![-1; max_connections],
            want_out: vec![false; max_connections],
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            read_buf: vec![0; 64 << 10].into_boxed_slice(),
            stats: BackendStats::default(),
            listeners_paused: false,
        })
    }

    fn accept_all(&mut self, gw: &mut Gateway, i: usize) {
        loop {
            let lfd = self.listeners[i].socket.as_raw_fd();
            // SAFETY: accept4 on a valid listening fd with null address pointers.
            let fd = unsafe {
                libc::accept4(
                    lfd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    self.stats.accept_errors += 1;
                    if gw.accept_failed(e.raw_os_error().unwrap_or(0)) {
                        self.pause_listeners();
                    }
                }
                return;
            }
            super::driver::tune_socket(fd, &gw.core.limits);
            let peer = super::driver::peer_of(fd);
            match gw.accept(self.listeners[i].protocol, peer) {
                Some(c) => {
                    self.fds[c as usize] = fd;
                    self.want_out[c as usize] = false;
                    let ok = ctl(
                        self.epfd.as_raw_fd(),
                        libc::EPOLL_CTL_ADD,
                        fd,
                        (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
                        c as u64,
                    );
                    if ok.is_err() {
                        gw.on_closed(c);
                    }
                    self.stats.accepted += 1;
                }
                None => {
                    self.stats.refused_full += 1;
                    // SAFETY: a freshly accepted fd we own.
                    unsafe { libc::close(fd) };
                }
            }
        }
    }

    fn read_all(&mut self, gw: &mut Gateway, c: ConnId) {
        let fd = self.fds[c as usize];
        while gw.wants_input(c) {
            let t_recv = gw.core.tsc.now();
            // No more than the input buffer can take (`wants_input` says it can take some):
            // what stays in the socket is TCP back-pressure on the client.
            let want = self.read_buf.len().min(gw.input_space(c));
            // SAFETY: reads into our own buffer, at most its length.
            let n = unsafe { libc::read(fd, self.read_buf.as_mut_ptr().cast(), want) };
            if n > 0 {
                if !gw.on_recv(c, &self.read_buf[..n as usize], t_recv) {
                    self.stats.input_overflow += 1;
                    gw.on_closed(c);
                    return;
                }
            } else if n == 0 {
                gw.on_closed(c);
                return;
            } else {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::Interrupted
                {
                    gw.on_closed(c);
                }
                return;
            }
        }
    }

    fn write_out(&mut self, gw: &mut Gateway, c: ConnId) {
        let fd = self.fds[c as usize];
        loop {
            let out = gw.output(c);
            let data = out.unsent();
            if data.is_empty() {
                break;
            }
            // SAFETY: sends from a live slice of the given length; MSG_NOSIGNAL avoids SIGPIPE.
            let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
            self.stats.sends += 1;
            if n >= 0 {
                out.sent(n as usize);
            } else {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    break;
                }
                gw.on_closed(c);
                return;
            }
        }
        let pending = gw.output(c).pending() > 0;
        if pending != self.want_out[c as usize] {
            self.want_out[c as usize] = pending;
            let ev = libc::EPOLLIN | libc::EPOLLRDHUP | if pending { libc::EPOLLOUT } else { 0 };
            let _ = ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_MOD,
                fd,
                ev as u32,
                c as u64,
            );
        }
    }

    /// Takes the listeners out of the epoll set (accepting paused: a listener with pending
    /// connections stays readable and would wake the loop at once, for ever).
    #[cold]
    fn pause_listeners(&mut self) {
        if self.listeners_paused {
            return;
        }
        self.listeners_paused = true;
        for l in &self.listeners {
            let _ = ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                l.socket.as_raw_fd(),
                0,
                0,
            );
        }
    }

    /// Puts the listeners back once the gateway says the pause is over.
    fn resume_listeners(&mut self, gw: &mut Gateway) {
        if !self.listeners_paused || !gw.accept_resume_due() {
            return;
        }
        self.listeners_paused = false;
        for (i, l) in self.listeners.iter().enumerate() {
            let _ = ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                l.socket.as_raw_fd(),
                libc::EPOLLIN as u32,
                TAG_LISTENER | i as u64,
            );
        }
    }

    fn wait_events(&mut self, gw: &mut Gateway, timeout_ms: i32) -> bool {
        if self.listeners_paused {
            self.resume_listeners(gw);
        }
        // SAFETY: the events buffer is live and its length is passed.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        if n <= 0 {
            return false;
        }
        for i in 0..n as usize {
            let ev = self.events[i];
            let (data, bits) = (ev.u64, ev.events);
            if data & TAG_WAKE != 0 {
                continue; // the loop drains the eventfd
            }
            if data & TAG_LISTENER != 0 {
                let l = (data & !TAG_LISTENER) as usize;
                if l < self.listeners.len() {
                    self.accept_all(gw, l);
                }
                continue;
            }
            let c = data as ConnId;
            if self.fds[c as usize] < 0 {
                continue;
            }
            if bits & libc::EPOLLIN as u32 != 0 {
                self.read_all(gw, c);
            }
            if bits & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                gw.on_closed(c);
            }
            if bits & libc::EPOLLOUT as u32 != 0 {
                self.write_out(gw, c);
            }
        }
        true
    }
}

impl Backend for EpollBackend {
    fn poll_io(&mut self, gw: &mut Gateway) -> bool {
        self.wait_events(gw, 0)
    }

    fn flush(&mut self, gw: &mut Gateway, dirty: &mut Vec<ConnId>) {
        gw.take_dirty(dirty);
        // The writes below are the submission.
        gw.sends_submitted();
        for &c in dirty.iter() {
            if self.fds[c as usize] < 0 {
                continue;
            }
            if gw.state(c) != super::conn::ConnState::Dead {
                self.write_out(gw, c);
                if gw.wants_input(c) {
                    // Resumed after back-pressure: bytes may be waiting in the kernel.
                    self.read_all(gw, c);
                }
            }
            if gw.should_close(c) {
                let fd = self.fds[c as usize];
                // SAFETY: we own `fd`; closing removes it from the epoll set.
                unsafe { libc::close(fd) };
                self.fds[c as usize] = -1;
                gw.release(c);
                self.stats.closed += 1;
            }
        }
        dirty.clear();
    }

    fn wait(&mut self, gw: &mut Gateway, timeout: Duration) {
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        self.wait_events(gw, ms);
    }

    fn close_listeners(&mut self) {
        self.listeners.clear();
    }

    fn wake_source(&mut self, _wake_fd: RawFd) -> std::io::Result<Option<RawFd>> {
        // An epoll fd is readable while its set has events: the sleeping backend watches it.
        Ok(Some(self.epfd.as_raw_fd()))
    }

    fn watch(&mut self, fd: RawFd) -> std::io::Result<()> {
        ctl(
            self.epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            libc::EPOLLIN as u32,
            TAG_WAKE,
        )
    }

    fn stats(&self) -> BackendStats {
        self.stats
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}

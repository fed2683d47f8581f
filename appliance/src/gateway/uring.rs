//! The io_uring backend: one ring per gateway thread.
//!
//! - Listeners: one multishot accept each.
//! - Connections: one multishot recv each, drawing from a provided-buffer ring shared by the
//!   gateway's connections (`-ENOBUFS` when the ring runs dry: counted, and the recv re-armed
//!   once buffers are back).
//! - Sends: one in flight per connection, straight from the connection's output buffer, whose
//!   in-flight region never moves (see `conn::OutBuf::begin_send`).
//! - Wake-ups: a multishot poll on the gateway's eventfd, written by engines when the gateway
//!   announced it is going to sleep.
//!
//! Set-up flags follow what this machine measured best on 2 cores: SINGLE_ISSUER +
//! DEFER_TASKRUN + TASKRUN_FLAG, with the gateway thread reaping completions itself, so a spin
//! iteration with nothing pending costs a load of the SQ flags and no syscall. SQPOLL is an
//! option (`gateway.sqpoll`): its kernel thread takes a whole core.

use super::conn::ConnId;
use super::driver::{Backend, BackendStats, Listener};
use super::Gateway;
use crate::platform::memory::{HugeSlice, MemoryPolicy};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

const KIND_ACCEPT: u64 = 1;
const KIND_RECV: u64 = 2;
const KIND_SEND: u64 = 3;
const KIND_CANCEL: u64 = 4;
const KIND_WAKE: u64 = 5;

/// Provided buffers: count and size. 1024 x 4 KiB = 4 MiB per gateway thread.
pub const RECV_BUFFERS: u16 = 1024;
/// Size of one provided receive buffer.
pub const RECV_BUFFER_SIZE: usize = 4096;
const BGID: u16 = 7;

#[inline]
fn user_data(kind: u64, id: u32, gen: u32) -> u64 {
    (kind << 56) | ((id as u64 & 0xff_ffff) << 32) | gen as u64
}

#[inline]
fn split(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, ((ud >> 32) & 0xff_ffff) as u32, ud as u32)
}

/// What is in flight for one connection slot.
#[derive(Clone, Copy, Default)]
struct ConnOps {
    fd: RawFd,
    gen: u32,
    recv_armed: bool,
    send_in_flight: bool,
    cancel_in_flight: bool,
    open: bool,
}

/// The provided-buffer ring: the ring of entries the kernel reads and the buffers themselves.
struct BufRing {
    entries: HugeSlice<u8>,
    buffers: HugeSlice<u8>,
    tail: u16,
}

impl BufRing {
    fn new(policy: MemoryPolicy) -> std::io::Result<Self> {
        let entries = HugeSlice::<u8>::zeroed(RECV_BUFFERS as usize * 16, policy)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let buffers = HugeSlice::<u8>::zeroed(RECV_BUFFERS as usize * RECV_BUFFER_SIZE, policy)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut r = Self {
            entries,
            buffers,
            tail: 0,
        };
        for bid in 0..RECV_BUFFERS {
            r.push(bid);
        }
        r.publish();
        Ok(r)
    }

    fn base(&self) -> *mut types::BufRingEntry {
        self.entries.as_ptr() as *mut types::BufRingEntry
    }

    /// Writes buffer `bid` into the next ring entry (not yet visible to the kernel).
    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (RECV_BUFFERS - 1)) as usize;
        let addr = self.buffers.as_ptr() as u64 + bid as u64 * RECV_BUFFER_SIZE as u64;
        // SAFETY: `idx < RECV_BUFFERS` and the entries region holds RECV_BUFFERS entries of
        // 16 bytes, page-aligned; the kernel only reads entries between its head and our
        // published tail, and this entry is past the published tail.
        let e = unsafe { &mut *self.base().add(idx) };
        e.set_addr(addr);
        e.set_len(RECV_BUFFER_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the pushed entries visible to the kernel.
    fn publish(&mut self) {
        // SAFETY: the tail field lives inside the first entry of our mapped region; the
        // Release store orders the entry writes above before the kernel can observe the
        // new tail (pairs with the kernel's acquire of the tail when it picks a buffer).
        unsafe {
            let tail =
                types::BufRingEntry::tail(self.base()) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * RECV_BUFFER_SIZE;
        &self.buffers[start..start + len.min(RECV_BUFFER_SIZE)]
    }
}

/// Receive buffers a connection could not take yet (its input buffer was full: the
/// connection is paused, and completions the kernel had already posted keep coming), kept in
/// arrival order per connection until there is room. A list threaded through arrays indexed
/// by buffer id: no allocation, bounded by the buffer pool. Holding a buffer keeps it from the
/// kernel, so the connection's recv stays disarmed while it holds any.
struct Held {
    /// Per connection: first and last held buffer, `NONE` when it holds none.
    head: Vec<u16>,
    tail: Vec<u16>,
    /// Per buffer: the next held buffer of the same connection, and the unread range.
    next: Vec<u16>,
    off: Vec<u16>,
    len: Vec<u16>,
    /// Connections holding buffers (each once), for the drain on every pass.
    holding: Vec<ConnId>,
}

const NONE: u16 = u16::MAX;

impl Held {
    fn new(max_connections: usize) -> Self {
        let n = RECV_BUFFERS as usize;
        Self {
            head: vec![NONE; max_connections],
            tail: vec![NONE; max_connections],
            next: vec![NONE; n],
            off: vec![0; n],
            len: vec![0; n],
            holding: Vec::with_capacity(max_connections),
        }
    }

    #[inline]
    fn any(&self, c: ConnId) -> bool {
        self.head[c as usize] != NONE
    }

    fn push(&mut self, c: ConnId, bid: u16, off: usize, len: usize) {
        let (b, c) = (bid as usize, c as usize);
        self.next[b] = NONE;
        self.off[b] = off as u16;
        self.len[b] = len as u16;
        if self.head[c] == NONE {
            self.head[c] = bid;
            self.holding.push(c as ConnId);
        } else {
            self.next[self.tail[c] as usize] = bid;
        }
        self.tail[c] = bid;
    }

    /// Puts buffer `bid` back at the front of `c`'s list with its unread range (what a
    /// partial delivery left of the buffer [`Held::pop`] returned).
    fn push_front(&mut self, c: ConnId, bid: u16, off: usize, len: usize) {
        let (b, c) = (bid as usize, c as usize);
        self.next[b] = self.head[c];
        self.off[b] = off as u16;
        self.len[b] = len as u16;
        if self.head[c] == NONE {
            self.tail[c] = bid;
        }
        self.head[c] = bid;
    }

    /// Removes the first held buffer of `c`.
    fn pop(&mut self, c: ConnId) -> Option<u16> {
        let c = c as usize;
        let b = self.head[c];
        if b == NONE {
            return None;
        }
        self.head[c] = self.next[b as usize];
        if self.head[c] == NONE {
            self.tail[c] = NONE;
        }
        Some(b)
    }
}

/// The io_uring backend of one gateway thread.
pub struct UringBackend {
    ring: IoUring,
    listeners: Vec<Listener>,
    ops: Vec<ConnOps>,
    bufs: BufRing,
    wake_fd: RawFd,
    dirty: Vec<ConnId>,
    stats: BackendStats,
    sqpoll: bool,
    /// Other fds whose readiness wakes this ring's wait (shared threading), re-armed like the
    /// wake-up poll.
    watched: Vec<RawFd>,
    /// Whether a connection is in `dirty` already (the list stays bounded by the slots even
    /// when flushes wait for the journal).
    marked: Vec<bool>,
    /// Receive buffers waiting for room in their connection's input buffer.
    held: Held,
    /// Per listener: accepting paused for want of descriptors (not re-armed until the
    /// gateway's pause is over), and how many are.
    accept_paused: Vec<bool>,
    paused_accepts: usize,
}

impl UringBackend {
    /// Sets up the ring, the buffer ring, the accepts and the wake-up poll (cold path).
    pub fn new(
        listeners: Vec<Listener>,
        max_connections: usize,
        wake_fd: RawFd,
        sqpoll: bool,
        policy: MemoryPolicy,
    ) -> std::io::Result<Self> {
        let mut b = IoUring::builder();
        if sqpoll {
            b.setup_sqpoll(2_000);
        } else {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag();
        }
        b.setup_cqsize(8192);
        let ring = b.build(1024)?;
        let bufs = BufRing::new(policy)?;
        // SAFETY: the entries region is page-aligned, RECV_BUFFERS entries long, and lives in
        // `self.bufs` for as long as the ring (both dropped together; the ring is dropped first
        // because it is declared first).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries.as_ptr() as u64,
                RECV_BUFFERS,
                BGID,
                0,
            )?;
        }
        let n_listeners = listeners.len();
        let mut me = Self {
            ring,
            listeners,
            ops: vec![ConnOps::default(); max_connections],
            bufs,
            wake_fd,
            dirty: Vec::with_capacity(max_connections),
            stats: BackendStats::default(),
            sqpoll,
            watched: Vec::new(),
            marked: vec![false; max_connections],
            held: Held::new(max_connections),
            accept_paused: vec![false; n_listeners],
            paused_accepts: 0,
        };
        for i in 0..me.listeners.len() {
            me.arm_accept(i);
        }
        me.arm_wake(0);
        me.ring.submit()?;
        Ok(me)
    }

    fn push(&mut self, sqe: squeue::Entry) {
        // SAFETY (for every caller): each SQE built in this file points only at memory that
        // outlives the operation: connection output buffers (never moved or freed while a send
        // is in flight, see `OutBuf::begin_send`), and fds we keep open until every operation
        // on them has completed.
        loop {
            // SAFETY: see above.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return;
            }
            // Queue full: hand what we have to the kernel and try again.
            let _ = self.ring.submit();
        }
    }

    /// Re-arms the accepts paused for want of descriptors.
    #[cold]
    fn resume_accepts(&mut self) {
        for i in 0..self.accept_paused.len() {
            if std::mem::take(&mut self.accept_paused[i]) && i < self.listeners.len() {
                self.arm_accept(i);
            }
        }
        self.paused_accepts = 0;
    }

    fn arm_accept(&mut self, i: usize) {
        let fd = self.listeners[i].socket.as_raw_fd();
        let sqe = opcode::AcceptMulti::new(types::Fd(fd))
            .build()
            .user_data(user_data(KIND_ACCEPT, i as u32, 0));
        self.push(sqe);
    }

    /// Arms the multishot poll of wake-up source `i`: 0 is the gateway's own eventfd, `i > 0`
    /// the watched fd `i - 1`.
    fn arm_wake(&mut self, i: u32) {
        let fd = match i {
            0 => self.wake_fd,
            _ => self.watched[i as usize - 1],
        };
        let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(user_data(KIND_WAKE, i, 0));
        self.push(sqe);
    }

    /// Enters the kernel only when there is something to submit or reap: with
    /// DEFER_TASKRUN + TASKRUN_FLAG the kernel raises a flag when completions are waiting to
    /// be posted, so an idle pass costs two loads and no system call.
    #[inline]
    fn submit_if_needed(&mut self) {
        let needed = {
            let sq = self.ring.submission();
            !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
        };
        if (needed || self.sqpoll) && self.ring.submit().is_err() {
            self.stats.submit_errors += 1;
        }
    }

    fn arm_recv(&mut self, c: ConnId) {
        let o = self.ops[c as usize];
        let sqe = opcode::RecvMulti::new(types::Fd(o.fd), BGID)
            .build()
            .user_data(user_data(KIND_RECV, c, o.gen));
        self.ops[c as usize].recv_armed = true;
        self.push(sqe);
    }

    fn on_accept(&mut self, gw: &mut Gateway, listener: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if res < 0 && res != -libc::ECANCELED {
            self.stats.accept_errors += 1;
            if gw.accept_failed(-res) && listener < self.accept_paused.len() {
                // Out of descriptors: stop accepting until the gateway says the pause is
                // over (re-arming at once would fail at once: a spin).
                if !self.accept_paused[listener] {
                    self.accept_paused[listener] = true;
                    self.paused_accepts += 1;
                }
                if more {
                    let sqe = opcode::AsyncCancel::new(user_data(KIND_ACCEPT, listener as u32, 0))
                        .build()
                        .user_data(user_data(KIND_CANCEL, 0xff_ffff, 0));
                    self.push(sqe);
                }
            }
        }
        let paused = self.accept_paused.get(listener).copied().unwrap_or(false);
        if !more && !paused {
            // The multishot accept ended (error or listener closed): re-arm unless shutting down.
            if !self.listeners.is_empty() && listener < self.listeners.len() {
                self.arm_accept(listener);
            }
        }
        if res < 0 {
            return;
        }
        let fd = res;
        // A connection accepted just before shutdown closed the listeners (its completion
        // arrives after `close_listeners` emptied the list): close it, there is no protocol
        // to give it any more.
        let Some(protocol) = self.listeners.get(listener).map(|l| l.protocol) else {
            // SAFETY: `fd` was just returned by accept and is owned by nobody else.
            unsafe { libc::close(fd) };
            return;
        };
        super::driver::tune_socket(fd, &gw.core.limits);
        let peer = super::driver::peer_of(fd);
        match gw.accept(protocol, peer) {
            Some(c) => {
                let o = &mut self.ops[c as usize];
                o.fd = fd;
                o.gen = o.gen.wrapping_add(1);
                o.open = true;
                o.recv_armed = false;
                o.send_in_flight = false;
                o.cancel_in_flight = false;
                self.arm_recv(c);
                self.stats.accepted += 1;
            }
            None => {
                self.stats.refused_full += 1;
                // SAFETY: `fd` was just returned by accept and is owned by nobody else.
                unsafe { libc::close(fd) };
            }
        }
    }

    fn on_recv(&mut self, gw: &mut Gateway, c: ConnId, res: i32, flags: u32, t_recv: u64) {
        let more = cqueue::more(flags);
        if !more {
            self.ops[c as usize].recv_armed = false;
        }
        if res > 0 {
            let bid = cqueue::buffer_select(flags).expect("provided-buffer recv names its buffer");
            let len = (res as usize).min(RECV_BUFFER_SIZE);
            if self.held.any(c) {
                // Behind buffers already waiting: keep the order.
                self.held.push(c, bid, 0, len);
            } else {
                let taken = self.deliver(gw, c, bid, 0, len, t_recv);
                if taken < len {
                    self.held.push(c, bid, taken, len - taken);
                    self.stats.recv_held += 1;
                } else {
                    self.bufs.push(bid);
                    self.bufs.publish();
                }
            }
        } else if res == 0 {
            gw.on_closed(c);
        } else if res == -libc::ENOBUFS {
            // Every provided buffer was in use: count it; the recv is re-armed in `flush`.
            self.stats.enobufs += 1;
        } else if res != -libc::ECANCELED {
            gw.on_closed(c);
        }
        self.mark(c);
    }

    /// Hands bytes `off..off + len` of buffer `bid` to the gateway, as much as `c`'s input
    /// buffer takes (processing frees room as it goes); returns how many it took.
    fn deliver(
        &mut self,
        gw: &mut Gateway,
        c: ConnId,
        bid: u16,
        off: usize,
        len: usize,
        t_recv: u64,
    ) -> usize {
        let mut taken = 0;
        while taken < len {
            let room = gw.input_space(c);
            if room == 0 || !gw.is_open(c) {
                break;
            }
            let n = room.min(len - taken);
            let start = off + taken;
            let data = &self.bufs.buffer(bid, start + n)[start..];
            if !gw.on_recv(c, data, t_recv) {
                // Cannot happen (at most the room is appended); closed if it ever does.
                self.stats.input_overflow += 1;
                gw.on_closed(c);
                break;
            }
            taken += n;
        }
        taken
    }

    /// Gives held buffers to connections that have room again, in order; returns whether
    /// any bytes moved.
    fn drain_held(&mut self, gw: &mut Gateway) -> bool {
        let mut moved = false;
        let mut i = 0;
        while i < self.held.holding.len() {
            let c = self.held.holding[i];
            let t_recv = gw.core.tsc.now();
            while let Some(bid) = self.held.pop(c) {
                let (off, len) = (
                    self.held.off[bid as usize] as usize,
                    self.held.len[bid as usize] as usize,
                );
                let taken = if gw.is_open(c) {
                    self.deliver(gw, c, bid, off, len, t_recv)
                } else {
                    len // closed: nothing to deliver, the buffer goes back
                };
                moved |= taken > 0;
                if taken < len {
                    // Still no room: the rest waits at the front.
                    self.held.push_front(c, bid, off + taken, len - taken);
                    break;
                }
                self.bufs.push(bid);
            }
            if self.held.any(c) {
                i += 1;
            } else {
                self.held.holding.swap_remove(i);
                self.mark(c);
            }
        }
        if moved {
            self.bufs.publish();
        }
        moved
    }

    fn on_send(&mut self, gw: &mut Gateway, c: ConnId, res: i32) {
        self.ops[c as usize].send_in_flight = false;
        if res >= 0 {
            gw.output(c).sent(res as usize);
        } else {
            gw.output(c).sent(0);
            gw.on_closed(c);
        }
        self.mark(c);
    }

    fn mark(&mut self, c: ConnId) {
        if !self.marked[c as usize] {
            self.marked[c as usize] = true;
            self.dirty.push(c);
        }
    }

    /// Moves one connection along: close, (re)arm or cancel its recv, start its next send.
    fn service(&mut self, gw: &mut Gateway, c: ConnId) {
        let o = self.ops[c as usize];
        if !o.open {
            return;
        }
        if gw.should_close(c) {
            // Held buffers go back to the pool (nothing of them will be read).
            if self.held.any(c) {
                while let Some(bid) = self.held.pop(c) {
                    self.bufs.push(bid);
                }
                self.bufs.publish();
                if let Some(i) = self.held.holding.iter().position(|&h| h == c) {
                    self.held.holding.swap_remove(i);
                }
            }
            if o.recv_armed && !o.cancel_in_flight {
                let sqe = opcode::AsyncCancel::new(user_data(KIND_RECV, c, o.gen))
                    .build()
                    .user_data(user_data(KIND_CANCEL, c, o.gen));
                self.ops[c as usize].cancel_in_flight = true;
                self.push(sqe);
            }
            let o = self.ops[c as usize];
            if !o.recv_armed && !o.send_in_flight && !o.cancel_in_flight {
                // Nothing in flight references the fd or the buffers any more.
                // SAFETY: we own `fd`; no operation on it is pending.
                unsafe { libc::close(o.fd) };
                self.ops[c as usize].open = false;
                gw.release(c);
                self.stats.closed += 1;
            }
            return;
        }
        // While it holds buffers a connection reads nothing more (they go first).
        let wants = gw.wants_input(c) && !self.held.any(c);
        if wants && !o.recv_armed {
            self.arm_recv(c);
        } else if !wants && o.recv_armed && !o.cancel_in_flight {
            // Back-pressure: stop reading so TCP pushes back on the client.
            let sqe = opcode::AsyncCancel::new(user_data(KIND_RECV, c, o.gen))
                .build()
                .user_data(user_data(KIND_CANCEL, c, o.gen));
            self.ops[c as usize].cancel_in_flight = true;
            self.push(sqe);
        }
        if !self.ops[c as usize].send_in_flight {
            if let Some(bytes) = gw.output(c).begin_send() {
                let sqe = opcode::Send::new(types::Fd(o.fd), bytes.as_ptr(), bytes.len() as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(KIND_SEND, c, o.gen));
                self.ops[c as usize].send_in_flight = true;
                self.push(sqe);
                self.stats.sends += 1;
            }
        }
    }
}

impl Backend for UringBackend {
    fn poll_io(&mut self, gw: &mut Gateway) -> bool {
        if self.paused_accepts > 0 && gw.accept_resume_due() {
            self.resume_accepts();
        }
        self.submit_if_needed();
        let mut did = !self.held.holding.is_empty() && self.drain_held(gw);
        let tsc = gw.core.tsc.clone();
        // Reap everything that is ready; each CQE is copied out before it is handled, so the
        // handlers may push new SQEs.
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            let t_recv = tsc.now();
            let (kind, id, gen) = split(cqe.user_data());
            // A wake-up is not work: the loop drains the eventfd after sleeping.
            did |= kind != KIND_WAKE;
            let (res, flags) = (cqe.result(), cqe.flags());
            match kind {
                KIND_ACCEPT => self.on_accept(gw, id as usize, res, flags),
                // A multishot wake-up poll ended: re-arm it.
                KIND_WAKE if !cqueue::more(flags) => self.arm_wake(id),
                KIND_WAKE => {}
                KIND_RECV | KIND_SEND | KIND_CANCEL => {
                    let Some(&o) = self.ops.get(id as usize) else {
                        continue; // the listeners' accept cancellations
                    };
                    if !o.open || o.gen != gen {
                        continue;
                    }
                    match kind {
                        KIND_RECV => self.on_recv(gw, id, res, flags, t_recv),
                        KIND_SEND => self.on_send(gw, id, res),
                        _ => {
                            self.ops[id as usize].cancel_in_flight = false;
                            self.mark(id);
                        }
                    }
                }
                _ => {}
            }
        }
        did
    }

    fn flush(&mut self, gw: &mut Gateway, dirty: &mut Vec<ConnId>) {
        gw.take_dirty(dirty);
        for &c in &self.dirty {
            self.marked[c as usize] = false;
        }
        dirty.append(&mut self.dirty);
        for &c in dirty.iter() {
            self.service(gw, c);
        }
        dirty.clear();
        // The sends are in the submission queue: this is their submission.
        gw.sends_submitted();
        // Connections the loop above left waiting on a cancel are picked up when it completes.
        let pending = !self.ring.submission().is_empty();
        if (pending || self.sqpoll) && self.ring.submit().is_err() {
            self.stats.submit_errors += 1;
        }
    }

    fn wait(&mut self, _gw: &mut Gateway, timeout: Duration) {
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        // ETIME (timeout) and EINTR are the expected ways out; anything is fine here.
        let _ = self.ring.submitter().submit_with_args(1, &args);
    }

    fn close_listeners(&mut self) {
        // Closing a socket does not end an io_uring request that holds it: cancel each
        // multishot accept explicitly, then drop the sockets. The cancelled accepts complete
        // with an error and are not re-armed because the list is empty.
        for i in 0..self.listeners.len() {
            let sqe = opcode::AsyncCancel::new(user_data(KIND_ACCEPT, i as u32, 0))
                .build()
                .user_data(user_data(KIND_CANCEL, 0xff_ffff, 0));
            self.push(sqe);
        }
        let _ = self.ring.submit();
        self.listeners.clear();
    }

    fn wake_source(&mut self, wake_fd: RawFd) -> std::io::Result<Option<RawFd>> {
        self.ring.submitter().register_eventfd(wake_fd)?;
        Ok(None)
    }

    fn watch(&mut self, fd: RawFd) -> std::io::Result<()> {
        self.watched.push(fd);
        self.arm_wake(self.watched.len() as u32);
        self.ring.submit()?;
        Ok(())
    }

    fn stats(&self) -> BackendStats {
        self.stats
    }

    fn name(&self) -> &'static str {
        if self.sqpoll {
            "io_uring (sqpoll)"
        } else {
            "io_uring"
        }
    }
}

//! How hot threads wait, and how the other side wakes them.
//!
//! Two strategies, after LMAX Disruptor's `BusySpinWaitStrategy` and its sleeping/blocking
//! family:
//! - **busy-spin**: poll forever with `spin_loop` hints. Lowest latency; owns the core. Only for
//!   isolated cores.
//! - **spin-then-park** (the shared-host default): spin for up to [`SPIN_TIME`] (less when
//!   recent gaps were longer than that: [`SpinThenPark::reset`]), then announce "I am going to
//!   sleep" and sleep until a producer wakes it (or a short timeout passes). The first
//!   message after a quiet spell pays the wake-up (a futex or eventfd write and a context
//!   switch, several microseconds); a stream faster than one message per [`SPIN_TIME`] never
//!   sleeps. There is deliberately no `yield_now` phase between spinning and sleeping: a
//!   yielding thread is not marked sleeping, so nobody wakes it, and with a CPU-bound
//!   neighbour on its core one yield can hand the core over for the neighbour's whole time
//!   slice (measured: ~0.6 ms hops, `docs/benchmarks.md`).
//!
//! The sleep protocol is the classic Dekker pairing, and each side needs a full fence:
//! - sleeper: `sleeping = true` (SeqCst) -> re-check its queues -> sleep if still empty;
//! - producer: publish (ring push, Release) -> fence(SeqCst) -> `if sleeping { wake }`.
//!
//! Without the producer's StoreLoad fence, x86 may let the load of `sleeping` pass the store
//! that published the item: the producer sees "awake", the sleeper sees "empty", and the item
//! waits for the sleeper's timeout. The timeout (see [`MAX_PARK`]) bounds the cost of any
//! such mistake, but with the fences there is none. Producers fence once per batch, not per
//! item ([`Waker::wake_after_publish`]).

use crate::config::WaitStrategy;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long an idle spin-then-park thread keeps polling before it sleeps. Longer than the gap
/// between two orders of a client sending 5,000 orders/s or more, so such a stream never pays
/// a wake-up; short enough that an idle appliance costs nothing measurable.
pub const SPIN_TIME: Duration = Duration::from_micros(200);
/// Idle iterations between two clock reads while spinning (an iteration is one poll of the
/// thread's queues, 20-100 ns; a clock read is ~20 ns through the vDSO).
const CLOCK_EVERY: u32 = 64;
/// Longest sleep before a sleeper looks at its queues again by itself. Producers wake
/// sleepers explicitly (the fences below make that exact) and runners sleep only until the
/// next timer an agent asked for, so this is a safety net, long enough that an idle
/// appliance makes a few system calls a second.
pub const MAX_PARK: Duration = Duration::from_secs(1);

/// What an idle loop iteration should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Keep polling (after a `spin_loop` hint, already done).
    Poll,
    /// Announce sleep, re-check the queues, then sleep: see [`Waker::prepare_sleep`].
    Sleep,
}

/// How a runner's duty cycle waits when a pass found no work (Disruptor's `WaitStrategy`,
/// Agrona's `IdleStrategy`). The strategy decides *when* to sleep; *how* to sleep (a futex,
/// or the I/O wait of the agent that owns the thread's wake-up fd) is the runner's.
pub trait IdleStrategy: Send {
    /// A pass found nothing: poll again, or sleep.
    fn idle(&mut self) -> Idle;
    /// A pass found work: the next idle spell starts from the top.
    fn reset(&mut self);
    /// Name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// The strategy for `w` (cold path).
pub fn idle_strategy(w: WaitStrategy) -> Box<dyn IdleStrategy> {
    match w {
        WaitStrategy::BusySpin => Box::new(BusySpin),
        WaitStrategy::SpinThenPark => Box::new(SpinThenPark::new()),
    }
}

/// Polls forever with `spin_loop` hints: lowest latency, owns the core. Isolated cores only.
#[derive(Debug, Default)]
pub struct BusySpin;

impl IdleStrategy for BusySpin {
    #[inline]
    fn idle(&mut self) -> Idle {
        std::hint::spin_loop();
        Idle::Poll
    }
    #[inline]
    fn reset(&mut self) {}
    fn name(&self) -> &'static str {
        "busy-spin"
    }
}

/// Spins for up to [`SPIN_TIME`] (adapting to the gaps seen), then sleeps until woken.
#[derive(Debug)]
pub struct SpinThenPark {
    idle_iterations: u32,
    /// When the current idle spell began (read on its first iteration).
    idle_since: Instant,
    /// The spell has spun for its budget: sleep at once until work is found.
    spun: bool,
    /// How long this spell may spin: [`SPIN_TIME`] after a short gap, halved after each
    /// gap longer than that (see [`SpinThenPark::reset`]).
    budget: Duration,
}

impl Default for SpinThenPark {
    fn default() -> Self {
        Self::new()
    }
}

impl SpinThenPark {
    /// A strategy with the full spin budget.
    pub fn new() -> Self {
        Self {
            idle_iterations: 0,
            idle_since: Instant::now(),
            spun: false,
            budget: SPIN_TIME,
        }
    }

    /// The spin budget the next idle spell starts with.
    pub fn spin_budget(&self) -> Duration {
        self.budget
    }

    fn end_spell(&mut self, now: Instant) {
        self.budget = if now.saturating_duration_since(self.idle_since) <= SPIN_TIME {
            SPIN_TIME
        } else {
            self.budget / 2
        };
    }
}

impl IdleStrategy for SpinThenPark {
    /// Work was found: start the next idle spell from the top (spinning).
    ///
    /// The spin budget adapts to the gaps this thread sees. Spinning pays only when work
    /// comes back within [`SPIN_TIME`]; when it does not, the spin was pure cost, and on a
    /// shared host it is worse than that: with nothing pinned, a peer thread woken onto this
    /// CPU waits behind the spin (measured: every reply ~210 µs late at 1,000 orders/s, the
    /// engine spinning on the gateway's CPU; `docs/benchmarks.md`). So a gap longer than
    /// [`SPIN_TIME`] halves the next spell's budget (a thread fed every millisecond soon
    /// parks almost at once), and a gap within it restores the full budget (a stream of
    /// 5,000 orders/s or more keeps every thread spinning, never paying a wake-up).
    #[inline]
    fn reset(&mut self) {
        if self.idle_iterations != 0 || self.spun {
            self.end_spell(Instant::now());
        }
        self.idle_iterations = 0;
        self.spun = false;
    }

    #[inline]
    fn idle(&mut self) -> Idle {
        if self.spun {
            return Idle::Sleep;
        }
        if self.idle_iterations == 0 {
            self.idle_since = Instant::now();
        }
        self.idle_iterations = self.idle_iterations.wrapping_add(1);
        if self.idle_iterations % CLOCK_EVERY == 0 && self.idle_since.elapsed() >= self.budget {
            self.spun = true;
            return Idle::Sleep;
        }
        std::hint::spin_loop();
        Idle::Poll
    }

    fn name(&self) -> &'static str {
        "spin-then-park"
    }
}

/// How a sleeping thread is woken.
#[derive(Debug)]
enum Wake {
    /// `Thread::unpark` (futex): for threads that sleep in `park_timeout` (engine threads).
    Thread(Thread),
    /// A write to an eventfd the sleeper waits on in io_uring or epoll (gateway threads).
    EventFd(OwnedFd),
}

/// The sleeping side's flag and the means to wake it, shared by every producer that feeds
/// the thread.
#[derive(Debug)]
pub struct Waker {
    sleeping: crossbeam_utils::CachePadded<AtomicBool>,
    wake: Wake,
}

impl Waker {
    /// A waker for the calling thread, which will sleep with [`Waker::park`].
    pub fn for_current_thread() -> Arc<Self> {
        Arc::new(Self {
            sleeping: Default::default(),
            wake: Wake::Thread(std::thread::current()),
        })
    }

    /// A waker for `thread`, which will sleep with [`Waker::park`] (lets the launcher hand
    /// producers the waker of a thread it has just spawned).
    pub fn for_thread(thread: Thread) -> Arc<Self> {
        Arc::new(Self {
            sleeping: Default::default(),
            wake: Wake::Thread(thread),
        })
    }

    /// A waker backed by a new non-blocking eventfd, for a thread that sleeps in io_uring or
    /// epoll with the fd armed for reading (see [`Waker::eventfd`]).
    pub fn with_eventfd() -> std::io::Result<Arc<Self>> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Arc::new(Self {
            sleeping: Default::default(),
            // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
            wake: Wake::EventFd(unsafe { OwnedFd::from_raw_fd(fd) }),
        }))
    }

    /// The eventfd to arm for reading, for an eventfd waker.
    pub fn eventfd(&self) -> Option<i32> {
        match &self.wake {
            Wake::EventFd(fd) => Some(fd.as_raw_fd()),
            Wake::Thread(_) => None,
        }
    }

    /// Sleeper, step 1: announce the sleep. The caller must then re-check every queue it
    /// consumes and only sleep if they are all still empty (else call [`Waker::woke`]).
    #[inline]
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        // StoreLoad: the re-check of the queues that follows must not be satisfied before
        // the flag is visible to producers (pairs with the fence in `wake_after_publish`).
        fence(Ordering::SeqCst);
    }

    /// Sleeper, step 2 for thread wakers: sleep until woken or `timeout`.
    pub fn park(&self, timeout: Duration) {
        std::thread::park_timeout(timeout.min(MAX_PARK));
        self.woke();
    }

    /// Wakes the thread whether or not it announced a sleep (a stop request, or anything
    /// that is not a ring publication); the thread re-checks its flags on waking.
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        self.wake_now();
    }

    /// Sleeper: the sleep is over (or was abandoned because work turned up).
    #[inline]
    pub fn woke(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Sleeper with an eventfd: consume the counter after waking so the next wait blocks.
    pub fn drain_eventfd(&self) {
        if let Wake::EventFd(fd) = &self.wake {
            let mut v = 0u64;
            // SAFETY: reads 8 bytes into a valid u64 from a non-blocking eventfd we own;
            // EAGAIN (nothing to drain) is fine and ignored.
            unsafe {
                libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
            }
        }
    }

    /// Producer: call after publishing one or more items (once per batch). Wakes the consumer
    /// if it announced a sleep; costs one fence and one shared load otherwise.
    #[inline]
    pub fn wake_after_publish(&self) {
        // StoreLoad: the ring publication above must be visible before we read the flag,
        // or the sleeper may miss it (see the module docs).
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake_now();
        }
    }

    #[cold]
    fn wake_now(&self) {
        match &self.wake {
            Wake::Thread(t) => t.unpark(),
            Wake::EventFd(fd) => {
                let one = 1u64;
                // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own; a full counter
                // (EAGAIN) already means "wake up", so the result is not needed.
                unsafe {
                    libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn busy_spin_never_sleeps() {
        let mut i = BusySpin;
        assert!((0..100_000).all(|_| i.idle() == Idle::Poll));
    }

    #[test]
    fn spin_then_park_spins_for_the_spin_time_then_sleeps_until_reset() {
        let mut i = SpinThenPark::new();
        let start = Instant::now();
        let mut polls = 0u64;
        while i.idle() == Idle::Poll {
            polls += 1;
        }
        assert!(
            start.elapsed() >= SPIN_TIME,
            "slept before spinning SPIN_TIME"
        );
        assert!(polls >= u64::from(CLOCK_EVERY) - 1, "{polls} polls");
        // Without work found, every later idle iteration sleeps at once (no second spin).
        assert!((0..1_000).all(|_| i.idle() == Idle::Sleep));
        i.reset();
        assert_eq!(i.idle(), Idle::Poll);
    }

    /// Gaps longer than SPIN_TIME halve the next spell's spin; a short gap restores it.
    #[test]
    fn spin_budget_shrinks_after_long_gaps_and_recovers_after_a_short_one() {
        let mut i = SpinThenPark::new();
        assert_eq!(i.spin_budget(), SPIN_TIME);
        for halvings in 1..=3u32 {
            while i.idle() == Idle::Poll {}
            let since = i.idle_since;
            i.end_spell(since + SPIN_TIME * 5);
            i.idle_iterations = 0;
            i.spun = false;
            assert_eq!(i.spin_budget(), SPIN_TIME / 2u32.pow(halvings));
        }
        // A shorter budget is honoured: the spell sleeps sooner than SPIN_TIME allows.
        let start = Instant::now();
        while i.idle() == Idle::Poll {}
        assert!(start.elapsed() >= SPIN_TIME / 8);
        let since = i.idle_since;
        i.end_spell(since + SPIN_TIME / 10);
        assert_eq!(i.spin_budget(), SPIN_TIME);
    }

    /// A parked consumer is woken by a producer's publish long before the park timeout would
    /// expire on its own: every one of many hand-offs arrives (none lost), and the consumer
    /// spends most of its time asleep rather than spinning.
    #[test]
    fn thread_waker_hands_off_without_losing_wakeups() {
        const N: u64 = 200;
        let published = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = published.clone();
        let consumer = std::thread::spawn(move || {
            let waker = Waker::for_current_thread();
            tx.send(waker.clone()).unwrap();
            let mut seen = 0;
            let mut sleeps = 0;
            while seen < N {
                let now = p2.load(Ordering::Acquire);
                if now > seen {
                    seen = now;
                    continue;
                }
                waker.prepare_sleep();
                if p2.load(Ordering::Acquire) > seen {
                    waker.woke();
                    continue;
                }
                sleeps += 1;
                waker.park(MAX_PARK);
            }
            sleeps
        });
        let waker = rx.recv().unwrap();
        let start = Instant::now();
        for k in 1..=N {
            std::thread::sleep(Duration::from_micros(200));
            published.store(k, Ordering::Release);
            waker.wake_after_publish();
        }
        let sleeps = consumer.join().unwrap();
        assert!(
            sleeps > 0,
            "the consumer should have slept between hand-offs"
        );
        // 200 hand-offs 200 µs apart finish in about 40 ms of producer time; the bound only
        // proves the run terminated (a lost wake-up would still finish via the timeout).
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn eventfd_waker_signals_the_fd_only_when_sleeping() {
        let w = Waker::with_eventfd().unwrap();
        let fd = w.eventfd().unwrap();
        let readable = |fd: i32| {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: polls one valid pollfd for 0 ms.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        };
        w.wake_after_publish();
        assert!(!readable(fd), "an awake consumer is not signalled");
        w.prepare_sleep();
        w.wake_after_publish();
        assert!(readable(fd), "a sleeping consumer is signalled");
        w.drain_eventfd();
        w.woke();
        assert!(!readable(fd), "draining resets the eventfd");
    }
}

//! The load generator's driver: one thread runs every connection over non-blocking sockets,
//! sends on the schedule of the chosen mode and matches replies to requests.
//!
//! Modes:
//! - open loop: requests leave at a fixed total rate whatever the replies do; latency from
//!   the intended send time (coordinated-omission corrected, `crate::latency`);
//! - closed loop: one outstanding request per connection, the next sent as soon as the reply
//!   arrives: the round-trip floor of the venue;
//! - pipelined: up to `window` outstanding per connection: the throughput ceiling.
//!
//! Waiting: `spin` polls the sockets continuously (lowest latency, burns a core: on a 2-core
//! machine it competes with the venue); `block` sleeps in `ppoll` until a socket is readable or
//! the next send is due (timer slack set to 1 ns so the wake-up is not 50 us late).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::latency::{rate_per_sec, Pacer, Percentiles, Recorder, Stamps};
use crate::orders::{PriceGrid, Source, SymbolSpec};
use crate::venue::{Conn, Identity, Protocol};

/// How requests are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fixed total rate (requests per second over all connections).
    Open {
        /// Requests per second.
        rate: u64,
    },
    /// One outstanding request per connection.
    Closed,
    /// Up to `window` outstanding requests per connection.
    Pipelined {
        /// Outstanding requests per connection.
        window: usize,
    },
}

impl Mode {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Open { .. } => "open",
            Mode::Closed => "closed",
            Mode::Pipelined { .. } => "pipelined",
        }
    }
}

/// How the driver waits for sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Wait {
    /// Busy-poll the sockets.
    Spin,
    /// Sleep in `ppoll` until readable or a send is due.
    Block,
}

/// Everything a run needs.
pub struct RunSpec {
    /// Venue address.
    pub addr: SocketAddr,
    /// Protocol.
    pub proto: Protocol,
    /// One identity per connection.
    pub identities: Vec<Identity>,
    /// Scheduling mode.
    pub mode: Mode,
    /// Warm-up: requests intended before this are not recorded.
    pub warmup: Duration,
    /// Measured phase length (after the warm-up).
    pub duration: Duration,
    /// Stop after this many measured requests instead (if set, whichever comes first).
    pub orders: Option<u64>,
    /// Waiting strategy.
    pub wait: Wait,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Instruments.
    pub symbols: Vec<SymbolSpec>,
    /// Price grid.
    pub grid: PriceGrid,
    /// One source of operations per connection.
    pub sources: Vec<Source>,
    /// Pin the driver thread to this core.
    pub core: Option<usize>,
    /// How long to wait for the last replies after the measured phase.
    pub drain: Duration,
    /// Request ids of the closing mass cancels (one per connection, `+ index`): must not
    /// collide with the sources' tokens. `None`: no closing mass cancel, the orders stay
    /// resting (the `rest` mix builds a book to keep).
    pub mass_cancel_token: Option<u64>,
}

/// What a run measured.
pub struct RunResult {
    /// The recorder (histograms).
    pub recorder: Recorder,
    /// Requests sent during the measured phase.
    pub sent_measured: u64,
    /// Requests sent in total (warm-up included).
    pub sent_total: u64,
    /// Measured phase length actually run (first to last measured send), ns.
    pub measured_ns: u64,
    /// Requests never answered within the drain time.
    pub unanswered: u64,
    /// Messages that answered no request (fills, heartbeats...).
    pub unsolicited: u64,
    /// Average request and reply sizes on the wire, bytes (0 when nothing was sent).
    pub avg_request_bytes: u64,
    /// See [`RunResult::avg_request_bytes`]; counts every inbound byte, fills included.
    pub avg_reply_bytes: u64,
    /// Why a connection closed early, if one did.
    pub errors: Vec<String>,
}

impl RunResult {
    /// Rate of measured sends (the achieved rate next to the requested one).
    pub fn achieved_rate(&self) -> f64 {
        rate_per_sec(self.sent_measured, self.measured_ns)
    }
    /// Rate of recorded replies over their own span.
    pub fn reply_rate(&self) -> f64 {
        let r = &self.recorder;
        if r.recorded < 2 {
            return 0.0;
        }
        rate_per_sec(r.recorded, r.last_reply_ns - r.first_reply_ns)
    }
    /// Percentiles from the intended send time.
    pub fn corrected(&self) -> Percentiles {
        Percentiles::of(&self.recorder.corrected)
    }
}

/// Sets this thread's timer slack to 1 ns so `ppoll` timeouts fire on time (the default
/// 50 us slack would show up as generator lateness in every open-loop figure).
fn tight_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and only affects this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn ppoll(fds: &mut [libc::pollfd], timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs and
    // `ts` lives across the call; a null sigmask leaves the signal mask unchanged.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        );
    }
}

/// Connects every identity, runs the schedule, drains, logs out.
pub fn run(mut spec: RunSpec) -> anyhow::Result<RunResult> {
    if let Some(c) = spec.core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    tight_timer_slack();
    let n = spec.identities.len();
    if n == 0 || spec.sources.len() != n {
        bail!("one identity and one order source per connection");
    }
    let mut conns = Vec::with_capacity(n);
    for id in &spec.identities {
        conns.push(Conn::open(
            spec.addr,
            spec.proto,
            id,
            Duration::from_secs(5),
        )?);
    }
    let clock = quanta::Clock::new();
    let t0 = clock.raw();
    let now = || clock.delta_as_nanos(t0, clock.raw());

    let warmup_end = spec.warmup.as_nanos() as u64;
    let send_end = warmup_end + spec.duration.as_nanos() as u64;
    let mut recorder = Recorder::new(warmup_end);
    // Requests awaiting their answer, by reply key. Two requests can share a key (a binary
    // cancel sent while the same order's replace is unanswered): the later ones wait in
    // `queued`, and answers pair with requests in send order, as the venue processes them.
    let mut pending: HashMap<u64, (Stamps, usize)> = HashMap::with_capacity(1 << 16);
    let mut queued: HashMap<u64, std::collections::VecDeque<(Stamps, usize)>> = HashMap::new();
    let mut outstanding = vec![0usize; n];
    let mut pacer = match spec.mode {
        Mode::Open { rate } => Some(Pacer::new(0, rate)),
        _ => None,
    };
    let mut pollfds: Vec<libc::pollfd> = conns
        .iter()
        .map(|c| libc::pollfd {
            fd: c.fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();

    let bar = if spec.progress {
        let b = ProgressBar::with_draw_target(
            Some(send_end / 1_000_000),
            ProgressDrawTarget::stderr_with_hz(4),
        );
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos:>6}/{len} ms  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut last_bar = 0u64;
    let mut last_bar_replies = 0u64;

    let mut sent_total = 0u64;
    let mut sent_measured = 0u64;
    let mut first_measured_send = u64::MAX;
    let mut last_measured_send = 0u64;
    let mut sending = true;
    let mut drain_deadline = u64::MAX;
    let mut replies_total = 0u64;
    let mut errors = Vec::new();

    loop {
        let t = now();
        // ---- send ----
        if sending {
            let limit_hit = spec.orders.is_some_and(|o| sent_measured >= o);
            if t >= send_end || limit_hit {
                sending = false;
                drain_deadline = t + spec.drain.as_nanos() as u64;
            }
        }
        if sending {
            let mut send_one = |c: usize,
                                intended: u64,
                                at: u64,
                                conns: &mut Vec<Conn>,
                                outstanding: &mut [usize]|
             -> bool {
                let Some(op) = spec.sources[c].next_op() else {
                    return false;
                };
                let key = conns[c].encode(&op, &spec.symbols, spec.grid);
                let s = Stamps { intended, sent: at };
                match pending.entry(key) {
                    Entry::Occupied(_) => queued.entry(key).or_default().push_back((s, c)),
                    Entry::Vacant(v) => {
                        v.insert((s, c));
                    }
                }
                outstanding[c] += 1;
                sent_total += 1;
                if intended >= warmup_end {
                    sent_measured += 1;
                    first_measured_send = first_measured_send.min(at);
                    last_measured_send = at;
                }
                true
            };
            match spec.mode {
                Mode::Open { .. } => {
                    let p = pacer.as_mut().expect("open loop has a pacer");
                    while let Some((k, intended)) = p.due(t) {
                        if intended >= send_end {
                            break;
                        }
                        let c = (k % n as u64) as usize;
                        send_one(c, intended, t, &mut conns, &mut outstanding);
                    }
                }
                Mode::Closed | Mode::Pipelined { .. } => {
                    let window = match spec.mode {
                        Mode::Pipelined { window } => window,
                        _ => 1,
                    };
                    for c in 0..n {
                        while outstanding[c] < window && !conns[c].closed {
                            if !send_one(c, t, t, &mut conns, &mut outstanding) {
                                break;
                            }
                        }
                    }
                }
            }
            for c in conns.iter_mut() {
                if c.has_output() {
                    c.flush()?;
                }
            }
        }
        // ---- receive ----
        let mut any = false;
        for (ci, c) in conns.iter_mut().enumerate() {
            if c.closed {
                continue;
            }
            let mut recv_t = 0;
            let got = c.poll(|key| match pending.remove(&key) {
                Some((s, owner)) => {
                    if let Some(q) = queued.get_mut(&key) {
                        if let Some(next) = q.pop_front() {
                            pending.insert(key, next);
                        }
                        if q.is_empty() {
                            queued.remove(&key);
                        }
                    }
                    if recv_t == 0 {
                        recv_t = now();
                    }
                    recorder.on_reply(s, recv_t);
                    outstanding[owner] -= 1;
                    replies_total += 1;
                    true
                }
                None => false,
            })?;
            any |= got;
            if c.closed {
                errors.push(format!(
                    "connection {} ({}) closed: {}",
                    ci,
                    spec.identities[ci].user,
                    c.close_reason.as_deref().unwrap_or("by the venue")
                ));
            }
        }
        if conns.iter().all(|c| c.closed) {
            break;
        }
        // ---- progress ----
        if t >= last_bar + 250_000_000 {
            let dt = (t - last_bar).max(1);
            let live = rate_per_sec(replies_total - last_bar_replies, dt);
            bar.set_position(t.min(send_end) / 1_000_000);
            bar.set_message(format!(
                "{:>9.0} replies/s  {} outstanding{}",
                live,
                pending.len() + queued.len(),
                if t < warmup_end { "  (warm-up)" } else { "" }
            ));
            last_bar = t;
            last_bar_replies = replies_total;
        }
        // ---- end ----
        if !sending && (pending.is_empty() || t >= drain_deadline) {
            break;
        }
        // ---- wait ----
        if spec.wait == Wait::Block && !any {
            let until = match (&pacer, sending) {
                (Some(p), true) => p.next_due().saturating_sub(now()),
                _ => 10_000_000,
            };
            if until > 2_000 {
                for p in pollfds.iter_mut() {
                    p.revents = 0;
                }
                ppoll(&mut pollfds, until.min(10_000_000));
            }
        } else if !any {
            std::hint::spin_loop();
        }
    }
    bar.finish_and_clear();

    // BENCH_DEBUG=1 names the requests left unanswered (to find a reply-matching gap).
    if std::env::var_os("BENCH_DEBUG").is_some() {
        for (k, (st, c)) in pending.iter().take(20) {
            eprintln!(
                "unanswered: conn {c} key {k:#x} (token {} {}) intended {}",
                k >> 1,
                if k & 1 == 1 { "amend" } else { "new" },
                st.intended
            );
        }
    }
    let (mut bytes_out, mut bytes_in, mut unsolicited) = (0, 0, 0);
    for (i, c) in conns.iter_mut().enumerate() {
        bytes_out += c.bytes_out;
        bytes_in += c.bytes_in;
        unsolicited += c.unsolicited;
        if !c.closed {
            c.logout(
                spec.mass_cancel_token.map(|t| t + i as u64),
                Duration::from_secs(2),
            );
        }
    }
    let replies = replies_total.max(1);
    Ok(RunResult {
        measured_ns: last_measured_send.saturating_sub(first_measured_send.min(last_measured_send)),
        recorder,
        sent_measured,
        sent_total,
        unanswered: (pending.len() + queued.values().map(|q| q.len()).sum::<usize>()) as u64,
        unsolicited,
        avg_request_bytes: bytes_out / sent_total.max(1),
        avg_reply_bytes: bytes_in / replies,
        errors,
    })
}

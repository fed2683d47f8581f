//! The publisher thread: drains every engine's market-data ring, translates the events into
//! feed messages, packs them into MoldUDP64 packets (flushed when full and at the end of each
//! pass, so a message waits for no timer) and sends each packet to every destination.
//! Idle, it sends a heartbeat every `market_data.heartbeat_ms`; at shutdown, after the
//! engines have stopped, the end-of-messages event and an end-of-session packet.
//!
//! It sleeps on a waker the engines wake once per batch, so it costs nothing when the
//! market is quiet and needs no core of its own.

use super::recovery::{answer_jobs, Job, Mirror, Server, Store};
use super::translate::Translator;
use super::wire::{encode_header, system_event, Message, PacketHeader, END_OF_SESSION, HEADER};
use super::MdItem;
use crate::engine::BookDump;
use crate::rings::ring::Receiver;
use crate::rings::stamp::Tsc;
use crate::rings::wait::Waker;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The publisher's counters, read by the exporter.
#[derive(Debug, Default)]
pub struct MdStats {
    /// Packets sent (data, heartbeats and the end of session), per destination counted once.
    pub packets: AtomicU64,
    /// Messages published.
    pub messages: AtomicU64,
    /// Heartbeat packets.
    pub heartbeats: AtomicU64,
    /// Sends that failed (per destination).
    pub send_errors: AtomicU64,
    /// Sum of the lags from an engine's event to its packet handed to the kernel, ns.
    pub lag_ns_sum: AtomicU64,
    /// Events those lags cover.
    pub lag_count: AtomicU64,
    /// The median of that lag over the last second, ns.
    pub lag_p50_ns: AtomicU64,
    /// The 99th percentile of that lag over the last second, ns.
    pub lag_p99_ns: AtomicU64,
    /// Orders resting as the feed shows them.
    pub resting: AtomicU64,
    /// The next message's sequence number.
    pub next_seq: AtomicU64,
}

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// Destinations (unicast addresses or multicast groups).
    pub destinations: Vec<SocketAddr>,
    /// The MoldUDP64 session name (10 ASCII bytes).
    pub session: [u8; 10],
    /// Idle time before a heartbeat.
    pub heartbeat: Duration,
    /// Largest packet (header included).
    pub max_packet: usize,
    /// The instruments: (id, symbol, price decimals, tick units).
    pub instruments: Vec<(u32, String, u8, i64)>,
    /// Messages kept for retransmission.
    pub retransmit_messages: usize,
    /// Where the recovery service listens (`None`: no service).
    pub recovery_listen: Option<SocketAddr>,
    /// Instruments halted at start (restored from the journal).
    pub halted: Vec<u32>,
}

/// A session name from the wall clock: `YYMMDDHHMM` (UTC) of the start.
pub fn session_name(wall_ns: i64) -> [u8; 10] {
    let ts =
        jiff::Timestamp::from_nanosecond(wall_ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let s = ts.strftime("%y%m%d%H%M").to_string();
    let mut b = [b' '; 10];
    for (d, c) in b.iter_mut().zip(s.bytes()) {
        *d = c;
    }
    b
}

/// Packs messages into one packet at a time and sends it.
struct Packer {
    socket: UdpSocket,
    destinations: Vec<SocketAddr>,
    session: [u8; 10],
    max_packet: usize,
    buf: Vec<u8>,
    count: u16,
    /// Sequence number of the packet's first message.
    first: u64,
    /// Sequence number of the next message.
    next: u64,
    last_send: Instant,
    stats: Arc<MdStats>,
    /// What retransmission answers from.
    store: Store,
    /// What snapshots answer from.
    mirror: Mirror,
}

impl Packer {
    fn push(&mut self, m: Message) {
        self.mirror.apply(&m);
        let len = Message::len_of(m.msg_type());
        if self.buf.len() + 2 + len > self.max_packet || self.count == END_OF_SESSION - 1 {
            self.flush();
        }
        if self.count == 0 {
            self.first = self.next;
        }
        let at = self.buf.len();
        self.buf.resize(at + 2 + len, 0);
        self.buf[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        m.encode(&mut self.buf[at + 2..]);
        // Retained as encoded for retransmission (one encoding per message).
        self.store.push_encoded(&self.buf[at + 2..at + 2 + len]);
        self.count += 1;
        self.next += 1;
    }

    /// Sends what is packed, if anything.
    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        let h = PacketHeader {
            session: self.session,
            seq: self.first,
            count: self.count,
        };
        encode_header(&mut self.buf[..HEADER], &h);
        self.send();
        self.stats
            .messages
            .fetch_add(self.count as u64, Ordering::Relaxed);
        self.stats.next_seq.store(self.next, Ordering::Relaxed);
        self.count = 0;
        self.buf.truncate(HEADER);
    }

    /// A header-only packet: a heartbeat (count 0) or the end of the session.
    fn header_only(&mut self, count: u16) {
        debug_assert_eq!(self.count, 0);
        let h = PacketHeader {
            session: self.session,
            seq: self.next,
            count,
        };
        encode_header(&mut self.buf[..HEADER], &h);
        self.send();
    }

    fn send(&mut self) {
        for d in &self.destinations {
            if self.socket.send_to(&self.buf, d).is_err() {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        self.last_send = Instant::now();
    }
}

/// The running publisher.
pub struct Publisher {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    handle: Option<JoinHandle<()>>,
    server: Option<Server>,
    states: std::sync::mpsc::Sender<(u32, bool)>,
    /// Its counters.
    pub stats: Arc<MdStats>,
}

impl Publisher {
    /// Binds a UDP socket and starts the thread, which publishes the start of messages, the
    /// instrument directory and the books in `seed` (recovered from the journal) before
    /// anything from `rings`. Returns the publisher and the waker the engines wake.
    pub fn start(
        cfg: PublisherConfig,
        rings: Vec<Receiver<MdItem>>,
        seed: Vec<BookDump>,
        orders_hint: usize,
        stats: Arc<MdStats>,
    ) -> std::io::Result<Self> {
        let bind: SocketAddr = match cfg.destinations.first() {
            Some(SocketAddr::V6(_)) => "[::]:0".parse().expect("literal address"),
            _ => "0.0.0.0:0".parse().expect("literal address"),
        };
        let socket = UdpSocket::bind(bind)?;
        // Multicast on loopback for a local subscriber; hops kept within the site.
        let _ = socket.set_multicast_loop_v4(true);
        let _ = socket.set_multicast_ttl_v4(8);
        let stop = Arc::new(AtomicBool::new(false));
        let (waker_tx, waker_rx) = std::sync::mpsc::channel();
        let (st, flag) = (stats.clone(), stop.clone());
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
        let (states, states_rx) = std::sync::mpsc::channel::<(u32, bool)>();
        let (listen, session) = (cfg.recovery_listen, cfg.session);
        let handle = std::thread::Builder::new()
            .name("market-data".into())
            .spawn(move || {
                let waker = Waker::for_current_thread();
                let _ = waker_tx.send(waker.clone());
                let inbox = Inbox {
                    jobs: jobs_rx,
                    states: states_rx,
                };
                run(
                    cfg,
                    socket,
                    rings,
                    seed,
                    orders_hint,
                    st,
                    &flag,
                    &waker,
                    &inbox,
                );
            })?;
        let waker = waker_rx
            .recv()
            .map_err(|_| std::io::Error::other("the market-data thread ended at start"))?;
        // The feed runs without its recovery service rather than not at all.
        let server =
            listen.and_then(
                |addr| match Server::start(addr, session, jobs_tx, waker.clone()) {
                    Ok(s) => {
                        tracing::info!("market data: recovery service on {}", s.addr);
                        Some(s)
                    }
                    Err(e) => {
                        tracing::warn!(
                            "market data: recovery service on {addr}: {e}; running without it"
                        );
                        None
                    }
                },
            );
        Ok(Self {
            stop,
            waker,
            handle: Some(handle),
            server,
            states,
            stats,
        })
    }

    /// The waker the engines wake after a batch that pushed market data.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Publishes what is left, ends the session and joins (call after the engines stopped).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Where the operator's halts and resumes go: `(instrument, halted)`, published as
    /// instrument state messages.
    pub fn state_sender(&self) -> StateSender {
        StateSender {
            tx: self.states.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Where the recovery service listens, if it runs.
    pub fn recovery_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Hands the publisher an instrument's new trading state (the console's halt and resume).
#[derive(Clone)]
pub struct StateSender {
    tx: std::sync::mpsc::Sender<(u32, bool)>,
    waker: Arc<Waker>,
}

impl StateSender {
    /// Instrument `instrument` is halted (`true`) or trading again.
    pub fn send(&self, instrument: u32, halted: bool) {
        if self.tx.send((instrument, halted)).is_ok() {
            self.waker.wake();
        }
    }
}

/// What reaches the publisher besides the engines' rings.
struct Inbox {
    jobs: std::sync::mpsc::Receiver<Job>,
    states: std::sync::mpsc::Receiver<(u32, bool)>,
}

fn state(ts: u64, instrument: u32, halted: bool) -> Message {
    use super::wire::instrument_state::{HALTED, TRADING};
    Message::State {
        ts,
        instrument,
        state: if halted { HALTED } else { TRADING },
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    cfg: PublisherConfig,
    socket: UdpSocket,
    mut rings: Vec<Receiver<MdItem>>,
    seed: Vec<BookDump>,
    orders_hint: usize,
    stats: Arc<MdStats>,
    stop: &AtomicBool,
    waker: &Waker,
    inbox: &Inbox,
) {
    let mut packer = Packer {
        socket,
        destinations: cfg.destinations.clone(),
        session: cfg.session,
        max_packet: cfg.max_packet.max(HEADER + 2 + super::wire::MAX_MESSAGE),
        buf: Vec::with_capacity(cfg.max_packet),
        count: 0,
        first: 1,
        next: 1,
        last_send: Instant::now(),
        stats: stats.clone(),
        store: Store::new(cfg.retransmit_messages),
        mirror: Mirror::default(),
    };
    packer.buf.resize(HEADER, 0);
    let mut tr = Translator::with_capacity(orders_hint);
    let wall = crate::gateway::core::wall_clock_ns;
    let ts = wall() as u64;
    packer.push(Message::System {
        ts,
        code: system_event::START,
    });
    for (id, symbol, decimals, tick) in &cfg.instruments {
        let mut sym = [b' '; 8];
        for (d, c) in sym.iter_mut().zip(symbol.bytes()) {
            *d = c;
        }
        packer.push(Message::Directory {
            ts,
            instrument: *id,
            symbol: sym,
            price_decimals: *decimals,
            tick: *tick as u64,
        });
    }
    for &id in &cfg.halted {
        packer.push(state(ts, id, true));
    }
    for book in &seed {
        for level in book.bids.iter().chain(&book.asks) {
            for o in &level.orders {
                tr.seed(o, ts, &mut |m| packer.push(m));
            }
        }
    }
    drop(seed);
    packer.flush();
    stats.resting.store(tr.resting() as u64, Ordering::Relaxed);

    let tsc = Tsc::new();
    let mut lags = hdrhistogram::Histogram::<u64>::new(3).expect("valid precision");
    // The whole run's, logged at the end (benchmarks read it).
    let mut run_lags = hdrhistogram::Histogram::<u64>::new(3).expect("valid precision");
    let mut pending_lags: Vec<u64> = Vec::with_capacity(4096);
    let mut next_p99 = Instant::now() + Duration::from_secs(1);
    loop {
        // Read the flag first: after it is set (the engines have stopped), one more full
        // pass publishes what is left.
        let stopping = stop.load(Ordering::Acquire);
        let mut did = false;
        let now_ts = wall() as u64;
        for ring in rings.iter_mut() {
            while let Some(item) = ring.pop() {
                did = true;
                match item {
                    MdItem::Event { event, t } => {
                        tr.event(&event, now_ts, &mut |m| packer.push(m));
                        pending_lags.push(t);
                    }
                    MdItem::End => tr.end_of_command(now_ts, &mut |m| packer.push(m)),
                }
            }
        }
        if did {
            packer.flush();
            let sent = tsc.now();
            let (mut sum, n) = (0u64, pending_lags.len() as u64);
            for &t in &pending_lags {
                let lag = tsc.ns_between(t, sent);
                sum += lag;
                let _ = lags.record(lag.max(1));
                let _ = run_lags.record(lag.max(1));
            }
            pending_lags.clear();
            stats.lag_ns_sum.fetch_add(sum, Ordering::Relaxed);
            stats.lag_count.fetch_add(n, Ordering::Relaxed);
            stats.resting.store(tr.resting() as u64, Ordering::Relaxed);
        }
        while let Ok((instrument, halted)) = inbox.states.try_recv() {
            packer.push(state(now_ts, instrument, halted));
            packer.flush();
            did = true;
        }
        // Recovery requests, between two drains: an answer is consistent with one number.
        did |= answer_jobs(
            &inbox.jobs,
            &packer.store,
            &packer.mirror,
            cfg.session,
            packer.max_packet,
            now_ts,
        );
        if Instant::now() >= next_p99 {
            if !lags.is_empty() {
                stats
                    .lag_p50_ns
                    .store(lags.value_at_quantile(0.5), Ordering::Relaxed);
                stats
                    .lag_p99_ns
                    .store(lags.value_at_quantile(0.99), Ordering::Relaxed);
            }
            lags.reset();
            next_p99 = Instant::now() + Duration::from_secs(1);
        }
        if stopping {
            packer.push(Message::System {
                ts: wall() as u64,
                code: system_event::END,
            });
            packer.flush();
            packer.header_only(END_OF_SESSION);
            let q = |p: f64| run_lags.value_at_quantile(p) as f64 / 1e3;
            tracing::info!(
                "market data: session {} ended: {} messages in {} packets; publish lag (engine \
                 event to packet handed to the kernel) p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} \
                 us, max {:.1} us over {} events",
                String::from_utf8_lossy(&cfg.session),
                packer.next - 1,
                stats.packets.load(Ordering::Relaxed),
                q(0.5),
                q(0.99),
                q(0.999),
                run_lags.max() as f64 / 1e3,
                run_lags.len()
            );
            return;
        }
        if did {
            continue;
        }
        let idle = packer.last_send.elapsed();
        if idle >= cfg.heartbeat {
            packer.header_only(0);
            stats.heartbeats.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        waker.prepare_sleep();
        if rings.iter().all(|r| r.is_empty()) && !stop.load(Ordering::Acquire) {
            waker.park((cfg.heartbeat - idle).min(Duration::from_millis(200)));
        } else {
            waker.woke();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_ten_bytes_of_the_start_time() {
        // 2026-12-06 14:12 UTC.
        let ns = 1_796_566_320_000_000_000i64;
        assert_eq!(&session_name(ns), b"2612061412");
    }
}

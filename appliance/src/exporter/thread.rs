//! The exporter thread (cold path): lowest scheduling priority, on a housekeeping core.
//!
//! It never touches a hot thread's memory except the published atomics and the hand-over
//! rings. Its loop: take every histogram set the hot threads handed over (merge into the
//! since-start totals and the since-last-scrape window, reset, return), then sleep in
//! `poll(2)` until a client connects, an open connection is ready or reaches its deadline,
//! the stop eventfd is written, or [`COLLECT_EVERY`] passes (an idle exporter costs one
//! system call per interval). Connections are non-blocking and served concurrently from a
//! bounded table ([`super::server`]), so a slow client delays nobody. Nothing a hot thread
//! does waits on it: if it is starved (it is `SCHED_IDLE`), the hot threads skip hand-overs
//! and count them.

use super::health;
use super::http::{Request, Response};
use super::render::{self, Sources};
use super::server::{Server, ServerStats};
use crate::rings::stamp::StageHistograms;
use crate::telemetry::handover::HandoverRx;
use anyhow::Context;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest sleep between two collections of the hand-over rings (each hot thread hands over
/// once per telemetry interval and keeps two spares, so this may be as long as the interval).
pub const COLLECT_EVERY: Duration = Duration::from_millis(500);

/// Where the exporter runs.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// The housekeeping core to pin to (`None`: unpinned).
    pub core: Option<usize>,
}

/// A running exporter.
pub struct Exporter {
    stop: Arc<AtomicBool>,
    stop_fd: Arc<OwnedFd>,
    handle: JoinHandle<StageHistograms>,
    /// The bound address (port resolved when 0 was asked).
    pub addr: SocketAddr,
}

/// The housekeeping core: the first online core no engine or gateway is pinned to. With no
/// pinning configured there is nothing to keep away from: `None` (unpinned, SCHED_IDLE).
pub fn housekeeping_core(pinned: &[usize]) -> Option<usize> {
    if pinned.is_empty() {
        return None;
    }
    let online = core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect::<Vec<_>>())
        .unwrap_or_default();
    online.into_iter().find(|c| !pinned.contains(c))
}

struct State {
    sources: Sources,
    rings: Vec<HandoverRx>,
    total: StageHistograms,
    window: StageHistograms,
    process: Option<prometheus::process_collector::ProcessCollector>,
    started: Instant,
}

impl State {
    fn collect(&mut self) {
        for r in &mut self.rings {
            r.collect(&mut self.total, &mut self.window);
        }
    }

    fn route(&mut self, req: &Request, conns: &ServerStats) -> Response {
        match req.path.as_str() {
            "/metrics" => {
                self.collect();
                let page = render::render(
                    &self.sources,
                    &self.total,
                    &self.window,
                    conns,
                    self.process.as_ref(),
                );
                // The quantile gauges cover the samples since the previous scrape.
                self.window.reset();
                Response {
                    status: 200,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body: page.into_bytes(),
                }
            }
            "/health" => {
                let dead = self.sources.dead_threads();
                let code = if dead.is_empty() { 200 } else { 503 };
                let ready = self.sources.readiness().ready;
                Response::json(code, health::health_body(ready, !dead.is_empty()))
            }
            "/health/live" => {
                let dead = self.sources.dead_threads();
                let uptime = self.started.elapsed().as_secs_f64();
                let (code, body) = health::live_body(uptime, render::VERSION, &dead);
                Response::json(code, body)
            }
            "/health/ready" => {
                let (code, body) = self.sources.readiness().ready_body();
                Response::json(code, body)
            }
            "/" => Response::text(
                200,
                "appliance exporter: /metrics /health /health/live /health/ready\n",
            ),
            _ => Response::text(404, "not found\n"),
        }
    }
}

impl Exporter {
    /// Binds `listen` (so a port conflict fails start-up) and starts the thread.
    pub fn start(
        listen: SocketAddr,
        sources: Sources,
        rings: Vec<HandoverRx>,
        placement: Placement,
    ) -> anyhow::Result<Exporter> {
        let listener = TcpListener::bind(listen)
            .with_context(|| format!("exporter.listen: cannot listen on {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let stop_fd = Arc::new(eventfd().context("exporter stop eventfd")?);
        let stop_fd2 = stop_fd.clone();
        let handle = std::thread::Builder::new()
            .name("exporter".into())
            .spawn(move || {
                if let Some(core) = placement.core {
                    if let Err(e) = crate::platform::pin_current_thread(core) {
                        tracing::warn!("exporter: cannot pin to core {core}: {e}");
                    }
                }
                if let Err(e) = crate::platform::set_lowest_priority() {
                    tracing::warn!("exporter: cannot lower its priority: {e}");
                }
                let mut st = State {
                    sources,
                    rings,
                    total: StageHistograms::new(),
                    window: StageHistograms::new(),
                    process: Some(prometheus::process_collector::ProcessCollector::for_self()),
                    started: Instant::now(),
                };
                run(&mut Server::new(listener), &mut st, &stop2, &stop_fd2);
                st.total
            })
            .context("spawning the exporter thread")?;
        Ok(Exporter {
            stop,
            stop_fd,
            handle,
            addr,
        })
    }

    /// Stops the thread (after the hot threads ended) and returns every latency sample it
    /// received, for the shutdown summary.
    pub fn stop(self) -> StageHistograms {
        // Release: pairs with the loop's Acquire load; nothing else is published by it.
        self.stop.store(true, Ordering::Release);
        signal(&self.stop_fd);
        self.handle.join().unwrap_or_default()
    }
}

/// A non-blocking eventfd: written to wake the exporter's `poll(2)` at stop.
fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `fd` (an eventfd) readable.
fn signal(fd: &OwnedFd) {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. It cannot fail short of
    // the counter overflowing (2^64 - 2 stops), which would leave it readable anyway.
    unsafe {
        libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
    }
}

fn run(server: &mut Server, st: &mut State, stop: &AtomicBool, stop_fd: &OwnedFd) {
    loop {
        st.collect();
        if stop.load(Ordering::Acquire) {
            // The hot threads have ended: this takes their last hand-overs.
            st.collect();
            return;
        }
        // Sleeps until a client or the stop eventfd needs it, a connection's deadline
        // passes, or it is time to collect again.
        server.turn(stop_fd.as_raw_fd(), COLLECT_EVERY, &mut |req, conns| {
            st.route(req, conns)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// (voluntary context switches, user + system CPU in clock ticks) of thread `tid`.
    fn thread_cost(tid: i32) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let cpu = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
        (switches, cpu)
    }

    /// The exporter loop with no hot threads behind it: an idle exporter sleeps in `poll(2)`
    /// and wakes once per [`COLLECT_EVERY`] (each sleep is one voluntary context switch), and
    /// still answers afterwards.
    #[test]
    fn an_idle_exporter_wakes_once_per_collection_interval() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut st = State {
            sources: Sources {
                engines: vec![],
                gateways: vec![],
                rings: vec![],
                instruments: vec![],
                threading: render::ThreadingLabel {
                    mode: "shared",
                    reason: "test".into(),
                },
                recovery: Arc::new(crate::recovery::RecoveryStatus::not_needed()),
                journal: None,
                snapshots: None,
                admin: Default::default(),
                market_data: None,
            },
            rings: vec![],
            total: StageHistograms::new(),
            window: StageHistograms::new(),
            process: None,
            started: Instant::now(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stop_fd = Arc::new(eventfd().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let h = {
            let (stop, stop_fd) = (stop.clone(), stop_fd.clone());
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                run(&mut Server::new(listener), &mut st, &stop, &stop_fd);
            })
        };
        let tid = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let idle = Duration::from_secs(3);
        let (s0, c0) = thread_cost(tid);
        std::thread::sleep(idle);
        let (s1, c1) = thread_cost(tid);
        let wakes = s1 - s0;
        let expected = (idle.as_millis() / COLLECT_EVERY.as_millis()) as u64;
        assert!(
            wakes <= expected + 2,
            "{wakes} sleeps in {idle:?}: more than one per {COLLECT_EVERY:?}"
        );
        assert!(c1 - c0 <= 5, "{} ticks of CPU while idle", c1 - c0);
        // Alive and answering after the idle spell.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.ends_with(r#"{"status":"live","ready":true}"#),
            "{answer}"
        );
        stop.store(true, Ordering::Release);
        signal(&stop_fd);
        h.join().unwrap();
    }

    #[test]
    fn housekeeping_core_avoids_pinned_cores() {
        assert_eq!(housekeeping_core(&[]), None);
        let online: Vec<usize> = core_affinity::get_core_ids()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let pinned = vec![online[0]];
        let hk = housekeeping_core(&pinned);
        if online.len() > 1 {
            let hk = hk.expect("a free core exists");
            assert!(!pinned.contains(&hk) && online.contains(&hk));
        } else {
            assert_eq!(hk, None);
        }
        assert_eq!(housekeeping_core(&online), None, "every core is taken");
    }
}

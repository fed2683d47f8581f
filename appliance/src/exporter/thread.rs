//! The exporter thread (cold path): lowest scheduling priority, on a housekeeping core.
//!
//! It never touches a hot thread's memory except the published atomics and the hand-over
//! rings. Its loop: take every histogram set the hot threads handed over (merge into the
//! since-start totals and the since-last-scrape window, reset, return), then sleep in
//! `poll(2)` until a client connects, the stop eventfd is written, or [`COLLECT_EVERY`]
//! passes (an idle exporter costs one system call per interval). Nothing a hot thread does
//! waits on it: if it is starved (it is `SCHED_IDLE`), the hot threads skip hand-overs and
//! count them.

use super::health;
use super::http::{self, Request, Response};
use super::render::{self, Sources};
use crate::rings::stamp::StageHistograms;
use crate::telemetry::handover::HandoverRx;
use anyhow::Context;
use std::net::{SocketAddr, TcpListener};
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
    stop_fd: Arc<std::os::fd::OwnedFd>,
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

    fn route(&mut self, req: &Request) -> Response {
        match req.path.as_str() {
            "/metrics" => {
                self.collect();
                let page = render::render(
                    &self.sources,
                    &self.total,
                    &self.window,
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
            "/health/live" => Response::json(
                200,
                health::live_body(self.started.elapsed().as_secs_f64(), render::VERSION),
            ),
            "/health/ready" => {
                let (code, body) = self.sources.readiness().ready_body();
                Response::json(code, body)
            }
            "/" => Response::text(
                200,
                "appliance exporter: /metrics /health/live /health/ready\n",
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
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("exporter stop eventfd");
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let stop_fd =
            Arc::new(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
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
                run(&listener, &mut st, &stop2, &stop_fd2);
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
        let one = 1u64;
        // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own (wakes the poll).
        unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&*self.stop_fd),
                (&one as *const u64).cast(),
                8,
            );
        }
        self.handle.join().unwrap_or_default()
    }
}

fn run(listener: &TcpListener, st: &mut State, stop: &AtomicBool, stop_fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    loop {
        st.collect();
        if stop.load(Ordering::Acquire) {
            // The hot threads have ended: this takes their last hand-overs.
            st.collect();
            return;
        }
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop_fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polls two valid pollfds in a live array of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, COLLECT_EVERY.as_millis() as i32) };
        if n <= 0 || fds[0].revents == 0 {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => http::serve(stream, |req| st.route(req)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::warn!("exporter: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Latency arithmetic of the load generator: the open-loop schedule and the recorder that
//! turns (intended send, actual send, reply) timestamps into histograms.
//!
//! Everything here is pure: times are nanoseconds since the run's start, handed in by the
//! driver (which reads the TSC through `quanta`). That is what lets the unit tests replay
//! synthetic timelines, stalls included, and check the coordinated-omission correction exactly.
//!
//! Coordinated omission: a load generator that waits for a slow reply before sending the next
//! request stops measuring exactly while the system is slow, so the stall shows up as one bad
//! sample instead of the hundreds of requests a real client population would have sent into it.
//! In open-loop mode every request has an *intended* send time fixed in advance by the rate
//! (`start + k / rate`), and latency is measured from that time, not from when the generator got
//! around to sending it: a stall of the system (or of the generator) counts for every request
//! scheduled during it.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency the histograms hold (60 s); longer values are clamped to it.
pub const MAX_TRACKABLE_NS: u64 = 60_000_000_000;
/// Significant digits of every histogram (0.1% value resolution).
pub const SIGFIG: u8 = 3;

/// A histogram with the bench's bounds (1 ns .. 60 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, SIGFIG).expect("static histogram bounds")
}

/// The open-loop schedule: request `k` is due at `start_ns + k * 1e9 / rate`.
///
/// Times are computed from `k` (not accumulated), so rounding never drifts over a long run.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start_ns: u64,
    rate: u64,
    next: u64,
}

impl Pacer {
    /// A schedule of `rate` requests per second starting at `start_ns`. `rate` must be > 0.
    pub fn new(start_ns: u64, rate: u64) -> Self {
        assert!(rate > 0, "an open-loop rate must be positive");
        Pacer {
            start_ns,
            rate,
            next: 0,
        }
    }

    /// Intended send time of request `k`.
    #[inline]
    pub fn intended(&self, k: u64) -> u64 {
        self.start_ns + ((k as u128 * 1_000_000_000) / self.rate as u128) as u64
    }

    /// Index of the next request not yet handed out.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Intended time of the next request not yet handed out.
    #[inline]
    pub fn next_due(&self) -> u64 {
        self.intended(self.next)
    }

    /// If the next request is due at `now_ns`, hands out its (index, intended time). Call in
    /// a loop: after a stall every overdue request comes out at once, each with its own
    /// intended time, which is what the correction needs.
    #[inline]
    pub fn due(&mut self, now_ns: u64) -> Option<(u64, u64)> {
        let t = self.next_due();
        if t <= now_ns {
            let k = self.next;
            self.next += 1;
            Some((k, t))
        } else {
            None
        }
    }
}

/// Timestamps of one request, in ns since the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamps {
    /// When the schedule wanted it sent (equal to `sent` in closed and pipelined modes).
    pub intended: u64,
    /// When the generator wrote it to the socket.
    pub sent: u64,
}

/// Collects round trips into two histograms: from the intended send time (coordinated-omission
/// corrected; the figure the reports quote) and from the actual send time (what a naive
/// generator would report; kept to show how much the correction matters).
///
/// Requests whose intended time falls before `warmup_end_ns` are answered but not recorded.
pub struct Recorder {
    warmup_end_ns: u64,
    /// Round trips from the intended send time.
    pub corrected: Histogram<u64>,
    /// Round trips from the actual send time.
    pub uncorrected: Histogram<u64>,
    /// Replies recorded after the warm-up.
    pub recorded: u64,
    /// Replies that arrived during the warm-up (not recorded).
    pub warmup_replies: u64,
    /// First and last reply time among recorded replies (for the achieved rate).
    pub first_reply_ns: u64,
    /// See [`Recorder::first_reply_ns`].
    pub last_reply_ns: u64,
}

impl Recorder {
    /// A recorder that ignores requests intended before `warmup_end_ns`.
    pub fn new(warmup_end_ns: u64) -> Self {
        Recorder {
            warmup_end_ns,
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            recorded: 0,
            warmup_replies: 0,
            first_reply_ns: u64::MAX,
            last_reply_ns: 0,
        }
    }

    /// End of the warm-up phase.
    pub fn warmup_end_ns(&self) -> u64 {
        self.warmup_end_ns
    }

    /// Records the reply to a request stamped `s`, received at `recv_ns`.
    #[inline]
    pub fn on_reply(&mut self, s: Stamps, recv_ns: u64) {
        if s.intended < self.warmup_end_ns {
            self.warmup_replies += 1;
            return;
        }
        let corrected = recv_ns
            .saturating_sub(s.intended)
            .clamp(1, MAX_TRACKABLE_NS);
        let uncorrected = recv_ns.saturating_sub(s.sent).clamp(1, MAX_TRACKABLE_NS);
        // In range by the clamp: recording cannot fail.
        let _ = self.corrected.record(corrected);
        let _ = self.uncorrected.record(uncorrected);
        self.recorded += 1;
        self.first_reply_ns = self.first_reply_ns.min(recv_ns);
        self.last_reply_ns = self.last_reply_ns.max(recv_ns);
    }
}

/// The percentiles every report carries, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// 99.99th percentile.
    pub p9999_ns: u64,
    /// Largest sample (to histogram resolution).
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl Percentiles {
    /// Reads the standard percentiles off `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            p9999_ns: h.value_at_quantile(0.9999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }
}

/// Requests per second over `count` events spread across `span_ns`.
pub fn rate_per_sec(count: u64, span_ns: u64) -> f64 {
    if span_ns == 0 {
        0.0
    } else {
        count as f64 * 1e9 / span_ns as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the histogram's 0.1% resolution.
    fn close(got: u64, want: u64) -> bool {
        let tol = (want / 500).max(1);
        got.abs_diff(want) <= tol
    }

    #[test]
    fn pacer_spaces_requests_by_the_rate_without_drift() {
        let p = Pacer::new(1_000, 3);
        assert_eq!(p.intended(0), 1_000);
        assert_eq!(p.intended(1), 1_000 + 333_333_333);
        assert_eq!(p.intended(2), 1_000 + 666_666_666);
        // Computed from k, not accumulated: exactly one second after 3 requests.
        assert_eq!(p.intended(3), 1_000 + 1_000_000_000);
        // A million seconds in: still exact.
        assert_eq!(p.intended(3_000_000), 1_000 + 1_000_000 * 1_000_000_000);
    }

    #[test]
    fn pacer_hands_out_every_overdue_request_after_a_stall() {
        let mut p = Pacer::new(0, 1_000); // one per millisecond
        assert_eq!(p.due(0), Some((0, 0)));
        assert_eq!(p.due(999_999), None);
        // The generator was descheduled for 5 ms: requests 1..=5 are all due now, each with
        // its own intended time.
        let now = 5_000_000;
        let mut got = Vec::new();
        while let Some(x) = p.due(now) {
            got.push(x);
        }
        assert_eq!(
            got,
            vec![
                (1, 1_000_000),
                (2, 2_000_000),
                (3, 3_000_000),
                (4, 4_000_000),
                (5, 5_000_000)
            ]
        );
        assert_eq!(p.next_due(), 6_000_000);
    }

    #[test]
    fn steady_service_gives_equal_corrected_and_uncorrected_figures() {
        let mut r = Recorder::new(0);
        for k in 0..1_000u64 {
            let t = k * 1_000_000;
            r.on_reply(
                Stamps {
                    intended: t,
                    sent: t,
                },
                t + 20_000,
            );
        }
        let c = Percentiles::of(&r.corrected);
        let u = Percentiles::of(&r.uncorrected);
        assert_eq!(c.count, 1_000);
        assert!(close(c.p50_ns, 20_000) && close(c.max_ns, 20_000), "{c:?}");
        assert_eq!(c.p50_ns, u.p50_ns);
        assert_eq!(c.max_ns, u.max_ns);
    }

    /// The textbook case: 1 request per ms, 20 us service, and one 100 ms stall of the server.
    /// A closed-loop view (from the actual send) sees one 100 ms sample among ~1000 of 20 us;
    /// the corrected view sees the 100 requests scheduled during the stall waiting 100 ms down
    /// to 1 ms, so its p90 moves to about 1/10 of the stall... exactly as a client population
    /// would experience it.
    #[test]
    fn a_server_stall_counts_for_every_request_scheduled_during_it() {
        let rate = 1_000; // per second: 1 ms apart
        let service = 20_000; // 20 us
        let stall_at = 500_000_000; // the server stalls for 100 ms at t = 500 ms
        let stall = 100_000_000;
        let mut pacer = Pacer::new(0, rate);
        let mut r = Recorder::new(0);
        // Simulate a generator that can only send when the previous reply came back (the
        // connection is blocked by the stall) but keeps its schedule.
        let mut now = 0u64;
        let mut stalled_replies = 0;
        for _ in 0..1_000 {
            let (_, intended) = loop {
                if let Some(x) = pacer.due(now) {
                    break x;
                }
                now = pacer.next_due();
            };
            let sent = now.max(intended);
            let recv = if sent >= stall_at && sent < stall_at + service {
                stalled_replies += 1;
                stall_at + stall + service
            } else {
                sent + service
            };
            r.on_reply(Stamps { intended, sent }, recv);
            now = recv;
        }
        assert_eq!(stalled_replies, 1);
        let u = Percentiles::of(&r.uncorrected);
        let c = Percentiles::of(&r.corrected);
        assert_eq!(u.count, 1_000);
        // Uncorrected: one sample of ~100 ms, everything else 20 us; p99 sees nothing.
        assert!(close(u.p99_ns, service), "{u:?}");
        assert!(close(u.max_ns, stall + service), "{u:?}");
        // Corrected: the ~100 requests intended during the stall wait from 100 ms down to
        // ~1 ms; that is 10% of the run, so p90 is far above the service time and p95 is
        // near half the stall.
        assert!(close(c.max_ns, stall + service), "{c:?}");
        assert!(c.p90_ns > 10 * service, "{c:?}");
        let p95 = r.corrected.value_at_quantile(0.95);
        assert!((45_000_000..=55_000_000).contains(&p95), "p95 {p95}");
        assert!(close(c.p50_ns, service), "{c:?}");
    }

    #[test]
    fn warm_up_requests_are_answered_but_not_recorded() {
        let mut r = Recorder::new(1_000_000);
        r.on_reply(
            Stamps {
                intended: 999_999,
                sent: 999_999,
            },
            5_000_000,
        );
        r.on_reply(
            Stamps {
                intended: 1_000_000,
                sent: 1_200_000,
            },
            1_500_000,
        );
        assert_eq!((r.warmup_replies, r.recorded), (1, 1));
        assert!(close(r.corrected.max(), 500_000));
        assert!(close(r.uncorrected.max(), 300_000));
        assert_eq!((r.first_reply_ns, r.last_reply_ns), (1_500_000, 1_500_000));
    }

    #[test]
    fn out_of_range_values_are_clamped_not_dropped() {
        let mut r = Recorder::new(0);
        // A reply stamped before its send (clock skew) and one beyond 60 s.
        r.on_reply(
            Stamps {
                intended: 10,
                sent: 10,
            },
            5,
        );
        r.on_reply(
            Stamps {
                intended: 0,
                sent: 0,
            },
            MAX_TRACKABLE_NS * 2,
        );
        assert_eq!(r.recorded, 2);
        assert_eq!(r.corrected.len(), 2);
        assert!(r.corrected.min() <= 1);
        assert!(close(r.corrected.max(), MAX_TRACKABLE_NS));
    }

    #[test]
    fn rates_and_empty_histograms() {
        assert_eq!(rate_per_sec(500, 1_000_000_000), 500.0);
        assert_eq!(rate_per_sec(5, 0), 0.0);
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }
}

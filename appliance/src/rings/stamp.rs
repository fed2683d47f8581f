//! TSC stamps at every hop and the per-stage latency histograms they feed.
//!
//! Hot threads read the TSC (`quanta::Clock::raw`, an `rdtsc`, ~12 ns here) at each hop and
//! carry the raw counts beside the command or event through the rings; converting to
//! nanoseconds happens only when a stage latency is recorded. Each hot thread records into its
//! own HdrHistograms (no sharing, no atomics); the exporter collects them (see the telemetry
//! module), and at shutdown they are printed as a summary.
//!
//! Stages (all measured inside the appliance):
//!
//! | stage | from | to | recorded by |
//! | --- | --- | --- | --- |
//! | `ingress` | receive completion | ring push | gateway |
//! | `ring` | ring push | engine dequeue | engine |
//! | `engine` | engine dequeue | event pushed to the out ring | engine |
//! | `egress` | event pushed | send submission of its encoded reply | gateway |
//! | `wire_to_wire` | receive completion | send submission of the reply | gateway |

use hdrhistogram::Histogram;

/// A latency stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Stage {
    /// Receive completion to ring push (decode, validation, id mapping).
    Ingress = 0,
    /// Ring push to engine dequeue (the inbound hop).
    Ring = 1,
    /// Engine dequeue to the event's push onto the outbound ring.
    Engine = 2,
    /// Outbound push to send submission (outbound hop, encode, send).
    Egress = 3,
    /// Receive completion to send submission of the reply.
    WireToWire = 4,
}

impl Stage {
    /// Every stage, in path order.
    pub const ALL: [Stage; 5] = [
        Stage::Ingress,
        Stage::Ring,
        Stage::Engine,
        Stage::Egress,
        Stage::WireToWire,
    ];

    /// The label value used in metrics and reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingress => "ingress",
            Stage::Ring => "ring",
            Stage::Engine => "engine",
            Stage::Egress => "egress",
            Stage::WireToWire => "wire_to_wire",
        }
    }
}

/// Highest latency a histogram tracks (60 s); longer values are clamped, not lost.
pub const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// One histogram per stage, owned by one thread.
#[derive(Clone, Debug)]
pub struct StageHistograms {
    hist: [Histogram<u64>; 5],
}

impl Default for StageHistograms {
    fn default() -> Self {
        Self::new()
    }
}

impl StageHistograms {
    /// Empty histograms with 3 significant digits from 1 ns to 60 s (allocated here, at
    /// start-up; recording never allocates).
    pub fn new() -> Self {
        let h =
            || Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static bounds are valid");
        Self {
            hist: [h(), h(), h(), h(), h()],
        }
    }

    /// Records one latency in nanoseconds (clamped to the tracked range).
    #[inline]
    pub fn record(&mut self, stage: Stage, ns: u64) {
        self.hist[stage as usize].saturating_record(ns.max(1));
    }

    /// The histogram of a stage.
    pub fn get(&self, stage: Stage) -> &Histogram<u64> {
        &self.hist[stage as usize]
    }

    /// Adds another thread's histograms into these.
    pub fn merge(&mut self, other: &StageHistograms) {
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
            a.add(b).expect("same bounds");
        }
    }

    /// Empties every histogram (keeps the allocation).
    pub fn reset(&mut self) {
        for h in &mut self.hist {
            h.reset();
        }
    }

    /// A one-line-per-stage text summary (what `appliance run` prints at shutdown).
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::from(
            "stage          count        p50        p90        p99      p99.9     p99.99        max   (ns)\n",
        );
        for stage in Stage::ALL {
            let h = self.get(stage);
            let q = |q: f64| h.value_at_quantile(q);
            let _ = writeln!(
                s,
                "{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                stage.name(),
                h.len(),
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999),
                q(0.9999),
                h.max()
            );
        }
        s
    }
}

/// Converts TSC deltas to nanoseconds (a clone of the calibrated `quanta` clock per thread).
#[derive(Clone, Debug)]
pub struct Tsc {
    clock: quanta::Clock,
}

impl Tsc {
    /// Calibrates (about 1 ms the first time in a process); call at start-up.
    pub fn new() -> Self {
        Self {
            clock: quanta::Clock::new(),
        }
    }

    /// A raw TSC reading.
    #[inline]
    pub fn now(&self) -> u64 {
        self.clock.raw()
    }

    /// Nanoseconds between two raw readings (0 if `end` precedes `start`, as can happen
    /// between cores whose TSCs are a few cycles apart).
    #[inline]
    pub fn ns_between(&self, start: u64, end: u64) -> u64 {
        if end <= start {
            return 0;
        }
        self.clock.delta_as_nanos(start, end)
    }
}

impl Default for Tsc {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merges_and_summarises() {
        let mut a = StageHistograms::new();
        let mut b = StageHistograms::new();
        for ns in 1..=1000 {
            a.record(Stage::Engine, ns);
        }
        b.record(Stage::Engine, 1_000_000);
        b.record(Stage::WireToWire, u64::MAX);
        a.merge(&b);
        let h = a.get(Stage::Engine);
        assert_eq!(h.len(), 1001);
        assert!((499..=501).contains(&h.value_at_quantile(0.5)));
        assert!(h.max() >= 1_000_000 && h.max() < 1_001_000);
        // Out-of-range values are clamped into the top bucket, not dropped.
        assert_eq!(a.get(Stage::WireToWire).len(), 1);
        let s = a.summary();
        assert_eq!(s.lines().count(), 6);
        assert!(s.contains("engine          1001"), "{s}");
        a.reset();
        assert_eq!(a.get(Stage::Engine).len(), 0);
    }

    #[test]
    fn tsc_deltas_are_monotone_and_in_nanoseconds() {
        let t = Tsc::new();
        let s = t.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let e = t.now();
        let ns = t.ns_between(s, e);
        assert!((5_000_000..1_000_000_000).contains(&ns), "{ns}");
        assert_eq!(t.ns_between(e, s), 0);
    }
}

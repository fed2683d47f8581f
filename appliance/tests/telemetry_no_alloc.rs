//! Proof that telemetry keeps the hot path allocation-free: the histogram hand-over (with
//! an exporter collecting on another thread at the same time), and a gateway with telemetry
//! attached publishing on every loop iteration while orders flow through it.
//!
//! This binary installs its own global allocator; counting is per thread (only the watching
//! thread's allocations count), so the exporter side may allocate freely.

mod support;

use appliance::rings::stamp::{Stage, StageHistograms};
use appliance::telemetry::counters::GatewayMetrics;
use appliance::telemetry::handover;
use appliance::telemetry::GatewayTelemetry;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::{enter, Rig};

struct Counting;

thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if WATCH.try_with(|w| w.get()).unwrap_or(false) {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    }
}

fn allocs() -> u64 {
    ALLOCS.with(|a| a.get())
}

// SAFETY: delegates every operation to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hand_over_with_a_concurrent_exporter_allocates_nothing() {
    let (mut tx, mut rx) = handover::pair(1);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let exporter = std::thread::spawn(move || {
        let (mut total, mut window) = (StageHistograms::new(), StageHistograms::new());
        while !stop2.load(Ordering::Acquire) {
            rx.collect(&mut total, &mut window);
            std::thread::yield_now();
        }
        rx.collect(&mut total, &mut window);
        total
    });
    let mut cur = Box::new(StageHistograms::new());
    WATCH.with(|w| w.set(true));
    for i in 0..200_000u64 {
        cur.record(Stage::WireToWire, 1 + i % 5_000);
        if tx.due(i) {
            tx.hand_over(&mut cur, i);
        }
    }
    WATCH.with(|w| w.set(false));
    assert_eq!(allocs(), 0, "allocations in record/hand-over");
    stop.store(true, Ordering::Release);
    let total = exporter.join().unwrap();
    // Nothing lost: what the exporter got plus what the thread still holds is everything.
    assert_eq!(
        total.get(Stage::WireToWire).len() + cur.get(Stage::WireToWire).len(),
        200_000
    );
    assert!(tx.handovers > 0, "some hand-overs happened");
}

#[test]
fn gateway_with_telemetry_publishing_every_iteration_allocates_nothing() {
    let mut rig = Rig::new();
    let (tx, mut rx) = handover::pair(1);
    let metrics = Arc::new(GatewayMetrics::default());
    // Interval of 1 ns: every telemetry_tick hands over and publishes.
    rig.gw.attach_telemetry(GatewayTelemetry {
        handover: Some(tx),
        metrics: metrics.clone(),
        sessions: Arc::default(),
        interval_ns: 1,
    });
    let (a, _) = rig.bin_login("CLIENT1", 0);
    let (b, _) = rig.bin_login("CLIENT2", 0);
    let mut buf = [0u8; appliance::binary::wire::MAX_FRAME_LEN];
    let (mut total, mut window) = (StageHistograms::new(), StageHistograms::new());
    let round = |rig: &mut Rig, i: u64, buf: &mut [u8]| {
        for (c, side) in [(a, b'B'), (b, b'S')] {
            let m = enter(1_000 + i, "ACME", side, 1_000_000, 10, b'0');
            let n = m.encode(i as u32 + 1, buf).unwrap();
            rig.gw.tick_clock();
            assert!(rig.gw.on_recv(c, &buf[..n], 0));
            rig.pump();
            rig.gw.sends_submitted();
            rig.gw.telemetry_tick();
            for c in [a, b] {
                let out = rig.gw.output(c);
                let n = out.pending();
                out.sent(n);
            }
        }
    };
    // Warm-up, collecting as the exporter would between rounds.
    for i in 0..200 {
        round(&mut rig, i, &mut buf);
        rx.collect(&mut total, &mut window);
    }
    WATCH.with(|w| w.set(true));
    for i in 200..400 {
        round(&mut rig, i, &mut buf);
        if i % 2 == 0 {
            // The exporter runs between some iterations; its work is not the hot thread's,
            // so it is done unwatched.
            WATCH.with(|w| w.set(false));
            rx.collect(&mut total, &mut window);
            WATCH.with(|w| w.set(true));
        }
    }
    WATCH.with(|w| w.set(false));
    assert_eq!(allocs(), 0, "allocations with telemetry publishing");
    rx.collect(&mut total, &mut window);
    assert!(
        !total.get(Stage::Ingress).is_empty(),
        "histograms were handed over"
    );
    use appliance::telemetry::counters::gw;
    assert!(
        metrics.orders(1, 0, 0) >= 400,
        "binary limit buys published"
    );
    assert!(metrics.get(gw::HANDOVERS) > 100);
}

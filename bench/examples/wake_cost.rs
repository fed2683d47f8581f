//! How long a hot thread of the appliance takes to see a message after an idle gap, with the
//! appliance's idle strategy (`appliance::rings::wait`: spin for `SPIN_TIME`, then park)
//! against the strategy it replaced (1,000 spins, then `yield_now` x 100, then park), with and
//! without CPU-bound neighbours on the cores.
//!
//! A producer publishes a TSC timestamp into a one-slot mailbox every `--gap-us` and wakes the
//! consumer the way the appliance's producers do (`Waker::wake_after_publish`); the consumer
//! records now - timestamp. Neighbours are plain busy loops, one per core.
//!
//! `cargo run --release -p bench --example wake_cost -- [--gap-us 600] [--seconds 3]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance::rings::wait::{Idle, IdleStrategy, SpinThenPark, Waker, MAX_PARK};

/// The replaced strategy: spin iterations, then yields, then park.
const OLD_SPINS: u32 = 1_000;
const OLD_YIELDS: u32 = 100;
use bench::latency::{new_histogram, Percentiles};

fn run(yield_phase: bool, hogs: usize, gap: Duration, secs: f64) -> Percentiles {
    let stop = Arc::new(AtomicBool::new(false));
    let hog_threads: Vec<_> = (0..hogs)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    let clock = quanta::Clock::new();
    let mailbox = Arc::new(AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let consumer = {
        let mailbox = mailbox.clone();
        let stop = stop.clone();
        let clock = clock.clone();
        std::thread::spawn(move || {
            let waker = Waker::for_current_thread();
            tx.send(waker.clone()).unwrap();
            let mut idler = SpinThenPark::new();
            let mut spins = 0u32;
            let mut last = 0u64;
            let mut h = new_histogram();
            while !stop.load(Ordering::Relaxed) {
                // Acquire: pairs with the producer's Release store of the timestamp.
                let v = mailbox.load(Ordering::Acquire);
                if v != last {
                    last = v;
                    let _ = h.record(clock.delta_as_nanos(v, clock.raw()).max(1));
                    idler.reset();
                    spins = 0;
                    continue;
                }
                let sleep = if yield_phase {
                    spins += 1;
                    if spins <= OLD_SPINS {
                        std::hint::spin_loop();
                        false
                    } else if spins <= OLD_SPINS + OLD_YIELDS {
                        std::thread::yield_now();
                        false
                    } else {
                        true
                    }
                } else {
                    idler.idle() == Idle::Sleep
                };
                if sleep {
                    waker.prepare_sleep();
                    // Acquire: the re-check after announcing the sleep (see wait.rs).
                    if mailbox.load(Ordering::Acquire) != last {
                        waker.woke();
                        continue;
                    }
                    waker.park(MAX_PARK);
                }
            }
            h
        })
    };
    let waker: Arc<Waker> = rx.recv().unwrap();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        std::thread::sleep(gap);
        // Release: the consumer's Acquire load sees the timestamp once it sees the store.
        mailbox.store(clock.raw(), Ordering::Release);
        waker.wake_after_publish();
    }
    stop.store(true, Ordering::Relaxed);
    let h = consumer.join().unwrap();
    for t in hog_threads {
        t.join().unwrap();
    }
    Percentiles::of(&h)
}

fn main() {
    let mut gap_us = 600u64;
    let mut secs = 3.0;
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--gap-us" => gap_us = w[1].parse().expect("--gap-us N"),
            "--seconds" => secs = w[1].parse().expect("--seconds S"),
            _ => {}
        }
    }
    let gap = Duration::from_micros(gap_us);
    println!("gap {gap_us} us, {secs} s per case; hop latency in us");
    for hogs in [0, 2] {
        for yield_phase in [true, false] {
            let p = run(yield_phase, hogs, gap, secs);
            println!(
                "{:<34} {} CPU-bound neighbours: n {:>6}  p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  max {:>8.1}",
                if yield_phase {
                    "spin, yield x100, park (replaced)"
                } else {
                    "spin 200 us, park (appliance)"
                },
                hogs,
                p.count,
                p.p50_ns as f64 / 1e3,
                p.p90_ns as f64 / 1e3,
                p.p99_ns as f64 / 1e3,
                p.max_ns as f64 / 1e3
            );
        }
    }
}

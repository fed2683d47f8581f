//! Proof that the running appliance's hot threads allocate nothing after warm-up: the real
//! runtime (agents, runners, the io_uring backend, the engine agent's ring sink, the journal's
//! record rings and, in shared mode, the journal agent, telemetry publication) serves real
//! TCP clients, binary and FIX, and a FIX market-data subscriber, while a counting global
//! allocator watches every hot thread, in both threading modes.
//!
//! The hot threads are marked through `StartOptions::on_hot_thread_start`; the client threads
//! and the exporter are not watched (they may allocate).

#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;
mod support;

use appliance::binary::wire::ServerMessage;
use appliance::config::{IoBackend, Threading};
use appliance::runtime::launch::{self, StartOptions};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use net::BinClient;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use support::enter;

struct Counting;

thread_local! {
    static HOT: Cell<bool> = const { Cell::new(false) };
}
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static HOT_THREADS: AtomicU64 = AtomicU64::new(0);
/// The tests share the global counters: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn count() {
    if COUNTING.load(Ordering::Relaxed) && HOT.try_with(|h| h.get()).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

fn mark_hot(_role: &str) {
    HOT.with(|h| h.set(true));
    HOT_THREADS.fetch_add(1, Ordering::Relaxed);
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

const PX: i64 = 1_000_000;

/// `pairs` rounds of: the buyer rests 10 at PX (GTC), the seller crosses it with an IOC of 10;
/// in pipelined batches of 64 (the buyer's batch acknowledged before the seller's is sent),
/// every reply read back.
fn binary_flow(buyer: &mut BinClient, seller: &mut BinClient, first: u64, pairs: u64) {
    let mut token = first;
    let mut left = pairs;
    while left > 0 {
        let n = left.min(64);
        for k in 0..n {
            buyer.send(enter(token + 2 * k, "ACME", b'B', PX, 10, b'1'));
        }
        for _ in 0..n {
            assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
        }
        for k in 0..n {
            seller.send(enter(token + 2 * k + 1, "ACME", b'S', PX, 10, b'3'));
        }
        for _ in 0..n {
            assert!(matches!(seller.recv(), ServerMessage::Accepted(_)));
            assert!(matches!(seller.recv(), ServerMessage::Executed(e) if e.leaves == 0));
            assert!(matches!(buyer.recv(), ServerMessage::Executed(e) if e.leaves == 0));
        }
        token += 2 * n;
        left -= n;
    }
}

/// FIX: a resting order, a cancel of it, and a replace of another, `rounds` times.
fn fix_flow(c: &mut FixClient, first: u64, rounds: u64) {
    for i in first..first + rounds {
        let (a, b) = (format!("A{i}"), format!("B{i}"));
        c.order(&a, "BOLT", Side::Buy, 5, Some(490_000), TimeInForce::Day);
        assert_eq!(c.recv().req(150), "0");
        c.cancel(&format!("C{i}"), &a, "BOLT", Side::Buy);
        assert_eq!(c.recv().req(150), "4");
        c.order(&b, "BOLT", Side::Buy, 5, Some(490_000), TimeInForce::Day);
        assert_eq!(c.recv().req(150), "0");
        c.replace(&format!("R{i}"), &b, "BOLT", Side::Buy, 3, 489_900);
        assert_eq!(c.recv().req(150), "5");
        c.cancel(&format!("X{i}"), &format!("R{i}"), "BOLT", Side::Buy);
        assert_eq!(c.recv().req(150), "4");
    }
}

fn runtime_allocates_nothing(mode: Threading) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    HOT_THREADS.store(0, Ordering::Relaxed);
    // Journaled: the engines' and gateways' record pushes are on the hot path too.
    let (cfg, _journal) = net::journaled_config();
    let app = launch::start(
        &cfg,
        &StartOptions {
            io: Some(IoBackend::IoUring),
            threading: Some(mode),
            on_hot_thread_start: Some(mark_hot),
            ..Default::default()
        },
    )
    .expect("appliance starts");
    // Shared: one thread. Dedicated: the gateway, the engine and the journal agent.
    let expected_hot = match mode {
        Threading::Shared => 1,
        _ => 3,
    };
    // Each thread marks itself as it starts, which may be just after `start` returned.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while HOT_THREADS.load(Ordering::Relaxed) < expected_hot && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(HOT_THREADS.load(Ordering::Relaxed), expected_hot);
    // Silent while the FIX flow runs (seconds on a loaded machine): long heartbeats, or the
    // appliance rightly logs them out for silence.
    let mut buyer = BinClient::login_with_heartbeat(app.binary_addr, "CLIENT1", 60_000);
    let mut seller = BinClient::login_with_heartbeat(app.binary_addr, "CLIENT2", 60_000);
    let mut fix = FixClient::logon(app.fix_addr, "CLIENT2");
    // A FIX market-data subscriber (incremental, trades included, both instruments), read on
    // a client thread: every book change and trade also goes through the gateway's copy of
    // the books and out as refreshes.
    let mut md = FixClient::logon(app.fix_addr, "CLIENT1");
    md.send_body(
        "V",
        "262=HOT|263=1|264=10|265=1|267=3|269=0|269=1|269=2|146=2|55=ACME|55=BOLT|",
    );
    let md_stop = std::sync::Arc::new(AtomicBool::new(false));
    let md_reader = {
        let stop = md_stop.clone();
        std::thread::spawn(move || {
            let mut refreshes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                md.pump();
                refreshes += md.received.iter().filter(|m| m.msg_type == "X").count() as u64;
                md.received.clear();
            }
            refreshes
        })
    };
    // Warm-up: every path once, and long enough for a few telemetry publications.
    binary_flow(&mut buyer, &mut seller, 1, 2_000);
    fix_flow(&mut fix, 0, 200);
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    binary_flow(&mut buyer, &mut seller, 10_001, 500);

    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    binary_flow(&mut buyer, &mut seller, 100_001, 20_000);
    fix_flow(&mut fix, 1_000, 1_000);
    std::thread::sleep(std::time::Duration::from_millis(1_100)); // a publication, counted
    binary_flow(&mut buyer, &mut seller, 200_001, 2_000);
    COUNTING.store(false, Ordering::SeqCst);
    let counted = ALLOCS.load(Ordering::Relaxed);
    md_stop.store(true, Ordering::Relaxed);
    let refreshes = md_reader.join().expect("the market-data reader");
    assert!(
        refreshes > 100,
        "{refreshes} refreshes reached the subscriber"
    );

    app.stop();
    assert_eq!(
        counted,
        0,
        "allocations on the hot threads ({}) after warm-up",
        mode_name(mode)
    );
}

fn mode_name(m: Threading) -> &'static str {
    match m {
        Threading::Shared => "shared",
        Threading::Dedicated => "dedicated",
        Threading::Auto => "auto",
    }
}

#[test]
fn shared_runtime_on_io_uring_allocates_nothing_after_warm_up() {
    runtime_allocates_nothing(Threading::Shared);
}

#[test]
fn dedicated_runtime_on_io_uring_allocates_nothing_after_warm_up() {
    runtime_allocates_nothing(Threading::Dedicated);
}

/// Control: the hook does mark the runner threads, and the counter counts on them.
#[test]
fn the_counter_sees_allocations_on_marked_threads() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    std::thread::spawn(|| {
        mark_hot("probe");
        drop(std::hint::black_box(vec![1u8; 16]));
    })
    .join()
    .unwrap();
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCS.load(Ordering::Relaxed) >= 2);
}

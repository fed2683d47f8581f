//! Proof that processing allocates nothing after warm-up: a counting global allocator (this
//! file is its own test binary, so the allocator is installed only here) watches 1,000,000+
//! mixed commands and must see zero allocations, reallocations and deallocations.

#[path = "engine_common.rs"]
mod common;

use appliance::engine::*;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static DEALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only the thread under test counts: the test harness's own threads may allocate.
    // A const-initialised Cell needs no allocation and no destructor, so it is safe to touch
    // from inside the allocator.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.with(|c| c.get())
}

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged;
// the counters are plain atomics (Relaxed: they are read only after the measured loop ends on
// the same thread, so no ordering with other memory is needed).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract; we pass it on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            DEALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from this allocator (which is System underneath) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            REALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr`/`layout` came from this allocator; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A sink that looks at every event without storing it (the runtime's sink writes into a
/// pre-sized ring; a growing Vec would be the sink allocating, not the engine).
#[derive(Default)]
struct Tally {
    events: u64,
    trades: u64,
    cancels: u64,
    cancel_rejects: u64,
    replaced: u64,
    rejects: u64,
}

impl EventSink for Tally {
    fn event(&mut self, ev: &Event) {
        self.events += 1;
        match ev.kind {
            EventKind::Trade(_) => self.trades += 1,
            EventKind::Cancelled(_) => self.cancels += 1,
            EventKind::CancelRejected(_) => self.cancel_rejects += 1,
            EventKind::Replaced(_) => self.replaced += 1,
            EventKind::Rejected(_) => self.rejects += 1,
            _ => {}
        }
    }
}

#[test]
fn processing_a_million_mixed_commands_allocates_nothing() {
    const WARMUP: usize = 100_000;
    const MEASURED: usize = 1_200_000;
    let mut cfg = plain_config();
    cfg.capacity = Capacity {
        max_orders: 1 << 20,
        max_levels_per_side: 4096,
    };
    let mut e = Engine::new(cfg).unwrap();
    // Generate everything before counting: the generator allocates, the engine must not.
    let mut mix = MixGen::new(2024);
    let mut cmds: Vec<Command> = (0..10_000).map(|_| mix.passive()).collect();
    cmds.extend((0..WARMUP + MEASURED).map(|_| mix.next_command()));
    // A few rarer commands so every handler runs in the measured part.
    let mut rare = Vec::new();
    for owner in 1..=5 {
        rare.push(Command::MassCancel(MassCancel {
            side: None,
            session: 1,
            owner,
            instrument: Some(0),
            scope: MassCancelScope::ByOwner,
            reason: CancelReason::MassCancel,
        }));
    }
    rare.push(Command::ExpireDayOrders(ExpireDayOrders {
        instrument: None,
    }));
    rare.push(Command::New(NewOrder {
        tif: TimeInForce::Fok,
        ..limit(u64::MAX - 1, Side::Buy, 100_010, 1_000_000)
    }));
    rare.push(Command::New(NewOrder {
        stp: StpMode::CancelBoth,
        ..limit(u64::MAX - 2, Side::Sell, 99_990, 500)
    }));
    rare.push(Command::New(NewOrder {
        instrument: 9,
        ..limit(u64::MAX - 3, Side::Sell, 99_990, 500)
    }));
    let (warm, measured) = cmds.split_at(10_000 + WARMUP);
    let mut sink = Tally::default();
    for c in warm {
        e.process(c, &mut sink);
    }
    let mut sink = Tally::default();
    COUNTING.with(|c| c.set(true));
    for (i, c) in measured.iter().enumerate() {
        e.process(c, &mut sink);
        if i % 200_000 == 0 {
            for r in &rare {
                e.process(r, &mut sink);
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let (a, d, r) = (
        ALLOCS.load(Ordering::Relaxed),
        DEALLOCS.load(Ordering::Relaxed),
        REALLOCS.load(Ordering::Relaxed),
    );
    assert_eq!(
        (a, d, r),
        (0, 0, 0),
        "allocations, deallocations, reallocations while processing"
    );
    // The mix really exercised the engine.
    assert!(measured.len() >= 1_000_000);
    assert!(sink.trades > 100_000, "trades {}", sink.trades);
    assert!(sink.cancels > 100_000, "cancels {}", sink.cancels);
    assert!(
        sink.cancel_rejects > 10_000,
        "cancel rejects {}",
        sink.cancel_rejects
    );
    assert!(sink.replaced > 10_000, "replaced {}", sink.replaced);
    assert!(sink.rejects >= 6, "rejects {}", sink.rejects);
    e.check_invariants().unwrap();
}

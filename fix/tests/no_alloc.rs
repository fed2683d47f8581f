//! Proves the steady-state path allocates nothing: parse -> session -> typed view -> encode
//! ExecutionReport -> store -> output, plus the session's own answers (heartbeat to a
//! TestRequest, timers, a ResendRequest served from the memory store).
//!
//! A counting global allocator (this file is its own test binary) counts allocations made by
//! the current thread while a flag is set, so the test harness's own threads do not interfere.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use fix::app::outbound::{ExecType, ExecutionReport, Id, OrdStatus};
use fix::app::{price, NewOrderSingle};
use fix::session::{Event, MemoryStore, Scratch};
use fix::{Session, SessionConfig, TimePrecision};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// thread-local Cell that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn measure<R>(f: impl FnOnce() -> R) -> (R, u64) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, COUNT.with(|c| c.get()))
}

#[test]
fn counting_allocator_sees_allocations() {
    let (_, n) = measure(|| vec![1u8; 10]);
    assert!(n >= 1, "the counter must detect a Vec allocation");
}

#[test]
fn order_to_execution_report_path_does_not_allocate() {
    const ORDERS: u64 = 2_000;
    let mut session = Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        MemoryStore::with_capacity(1 << 22, 8 * ORDERS as usize),
    );
    let mut scratch = Scratch::new(8192);
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    session.on_connected(T0);
    let logon = msg_at("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|", T0);
    assert!(matches!(
        session.on_input(&logon, &mut scratch, T0, &mut out).event,
        Event::LoggedOn
    ));
    out.clear();
    // Pre-build the inbound stream: orders, a TestRequest in the middle, then a ResendRequest.
    let mut input = Vec::new();
    for seq in 2..2 + ORDERS {
        input.extend(msg_at(
            &format!("35=D|34={seq}|49=TW44|52=<T>|56=ISLD|11=ORD{seq}|21=1|38=100|40=2|44=101.25|54=1|55=INTC|59=0|60=<T>|"),
            T0,
        ));
    }
    let seq_tr = 2 + ORDERS;
    input.extend(msg_at(
        &format!("35=1|34={seq_tr}|49=TW44|52=<T>|56=ISLD|112=PING|"),
        T0,
    ));
    input.extend(msg_at(
        &format!("35=2|34={}|49=TW44|52=<T>|56=ISLD|7=2|16=50|", seq_tr + 1),
        T0,
    ));

    let (reports, allocs) = measure(|| {
        let mut pos = 0;
        let mut reports = 0u64;
        let mut now = T0 + 1_000;
        let mut exec_id = 0u64;
        loop {
            let r = session.on_input(&input[pos..], &mut scratch, now, &mut out);
            pos += r.consumed;
            match r.event {
                Event::NeedMore => break,
                Event::App(msg) => {
                    let order = NewOrderSingle::decode(&msg).expect("valid order");
                    let px = price::limit_price(order.price.unwrap(), 4, 100).expect("on tick");
                    exec_id += 1;
                    let er = ExecutionReport {
                        order_id: Id::Num(exec_id),
                        cl_ord_id: order.cl_ord_id,
                        orig_cl_ord_id: None,
                        exec_id: Id::Num(exec_id),
                        exec_type: ExecType::New,
                        ord_status: OrdStatus::New,
                        ord_rej_reason: None,
                        account: order.account,
                        symbol: order.symbol,
                        side: order.side,
                        order_qty: Some(order.order_qty),
                        ord_type: Some(order.ord_type),
                        price: Some(px),
                        time_in_force: Some(order.time_in_force),
                        last_qty: None,
                        last_px: None,
                        leaves_qty: order.order_qty,
                        cum_qty: 0,
                        avg_px: 0,
                        avg_px_decimals: 4,
                        price_scale: 4,
                        transact_time: now,
                        time_precision: TimePrecision::Micros,
                        text: None,
                        copy_msg_indicator: false,
                    };
                    session.send(&er, now, &mut out).expect("send");
                    reports += 1;
                }
                Event::Handled => {}
                other => panic!("unexpected {other:?}"),
            }
            if out.len() > (1 << 19) {
                out.clear();
            }
            now += 1_000;
            assert!(session.on_timer(now, &mut out).is_none());
        }
        reports
    });
    assert_eq!(reports, ORDERS);
    assert_eq!(allocs, 0, "the steady-state path allocated {allocs} times");
    assert_eq!(session.next_target_seq(), seq_tr + 2);
    assert_eq!(session.next_sender_seq(), 2 + ORDERS + 1);
    // The answers really were produced: the last output holds the resent reports.
    let tail = split_msgs(&out);
    assert!(tail
        .iter()
        .any(|m| field(m, 112).as_deref() == Some("PING")));
    assert_eq!(
        tail.iter()
            .filter(|m| field(m, 43).as_deref() == Some("Y"))
            .count(),
        49
    );
}

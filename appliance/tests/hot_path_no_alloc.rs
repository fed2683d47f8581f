//! Proof that the whole hot path allocates nothing after warm-up: client bytes are decoded by
//! the gateway, pushed through the ring, matched by the engine, and the replies encoded into
//! the connection's output buffer, with a counting global allocator watching.
//!
//! This binary installs its own global allocator; counting is per thread, so the tests here
//! may run in parallel without seeing each other's allocations.

mod support;

use appliance::binary::wire::{self, ClientMessage};
use appliance::gateway::conn::ConnId;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use support::{enter, Rig};

struct Counting;

thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// Counts when the calling thread is watching (`try_with`: the allocator may run while the
/// thread-locals are being torn down).
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

const PX: i64 = 1_000_000;

/// A deterministic mixed flow for two users: passive adds on both sides, crossing orders,
/// IOCs, market orders, cancels (some of filled orders), replaces, mass cancels.
fn flow(n: usize) -> (Vec<u8>, Vec<u8>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut seq_a, mut seq_b) = (0u32, 0u32);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; wire::MAX_FRAME_LEN];
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let token = i as u64 + 1;
        let (out, seq) = if x & 1 == 0 {
            (&mut a, &mut seq_a)
        } else {
            (&mut b, &mut seq_b)
        };
        *seq += 1;
        let side = if (x >> 1) & 1 == 0 { b'B' } else { b'S' };
        let off = ((x >> 8) % 8) as i64 * 100;
        let px = if side == b'B' {
            PX - off
        } else {
            PX + off - 300
        };
        let m = match (x >> 16) % 20 {
            0..=9 => enter(token, "ACME", side, px, 1 + (x >> 24) % 50, b'1'),
            10..=11 => enter(token, "ACME", side, px, 1 + (x >> 24) % 50, b'3'),
            12 => enter(token, "ACME", side, 0, 1 + (x >> 24) % 20, b'3'),
            13..=16 => ClientMessage::CancelOrder(wire::CancelOrder {
                token: token.saturating_sub(1 + (x >> 30) % 20),
            }),
            17..=18 => ClientMessage::ReplaceOrder(wire::ReplaceOrder {
                orig_token: token.saturating_sub(1 + (x >> 30) % 20),
                new_token: token,
                price: PX - 500,
                qty: 5,
            }),
            _ => ClientMessage::MassCancel(wire::MassCancel {
                token,
                symbol: wire::symbol("ACME").unwrap(),
            }),
        };
        let k = m.encode(*seq, &mut buf).unwrap();
        out.extend_from_slice(&buf[..k]);
    }
    (a, b)
}

fn drain(rig: &mut Rig, c: ConnId) -> usize {
    let out = rig.gw.output(c);
    let n = out.pending();
    out.sent(n);
    n
}

fn run_chunks(rig: &mut Rig, conns: [ConnId; 2], flows: [&[u8]; 2], chunk: usize) -> usize {
    let mut pos = [0usize; 2];
    let mut sent = 0;
    while pos[0] < flows[0].len() || pos[1] < flows[1].len() {
        for k in 0..2 {
            let f = flows[k];
            if pos[k] >= f.len() {
                continue;
            }
            // Cut at a frame boundary every `chunk` frames (a read carrying several messages).
            let mut end = pos[k];
            for _ in 0..chunk {
                if end >= f.len() {
                    break;
                }
                end += wire::frame_len(&f[end..]).unwrap().unwrap();
            }
            rig.gw.tick_clock();
            assert!(rig.gw.on_recv(conns[k], &f[pos[k]..end], 0));
            pos[k] = end;
            rig.pump();
            rig.gw.sends_submitted();
            sent += drain(rig, conns[0]) + drain(rig, conns[1]);
        }
    }
    sent
}

#[test]
fn decode_ring_match_encode_allocates_nothing_after_warm_up() {
    let mut rig = Rig::new();
    let (a, _) = rig.bin_login("CLIENT1", 0);
    let (b, _) = rig.bin_login("CLIENT2", 0);
    let (fa, fb) = flow(220_000);
    // Warm-up: the first tenth of the flow (touches every code path once).
    let split_a = cut(&fa, 11_000);
    let split_b = cut(&fb, 11_000);
    run_chunks(&mut rig, [a, b], [&fa[..split_a], &fb[..split_b]], 8);
    WATCH.with(|w| w.set(true));
    let bytes_out = run_chunks(&mut rig, [a, b], [&fa[split_a..], &fb[split_b..]], 8);
    WATCH.with(|w| w.set(false));
    let counted = allocs();
    assert!(
        bytes_out > 10_000_000,
        "the flow produced replies ({bytes_out} bytes)"
    );
    assert_eq!(counted, 0, "allocations on the hot path after warm-up");
    // Control: the counter does see an allocation made while watching.
    WATCH.with(|w| w.set(true));
    let v = std::hint::black_box(vec![1u8; 16]);
    drop(v);
    WATCH.with(|w| w.set(false));
    assert_eq!(allocs(), 2, "the counting allocator counts");
}

/// The FIX path: a real initiator session logs on through the gateway, then a pre-encoded
/// flow of NewOrderSingle, cancel and replace messages goes through session validation,
/// decoding, the ring, the engine, and ExecutionReport encoding into the session's store and
/// the connection's output.
#[test]
fn fix_decode_ring_match_encode_allocates_nothing_after_warm_up() {
    use appliance::vocab::Protocol;
    use fix::app::client::{CancelOrder, NewOrder, ReplaceOrder};
    use fix::app::outbound::Id;
    use fix::app::{OrdType, Side, TimeInForce};
    use fix::session::{MemoryStore, Scratch, Session, SessionConfig};

    let mut rig = Rig::new();
    let mut clients = Vec::new();
    let now = appliance::gateway::core::wall_clock_ns() as u64;
    for comp in ["CLIENT1", "CLIENT2"] {
        let c = rig.connect(Protocol::Fix);
        let mut cfg = SessionConfig::initiator(comp, "APPLIANCE");
        cfg.max_latency_secs = 0;
        let mut session = Session::new(cfg, MemoryStore::with_capacity(64 << 20, 1 << 20));
        let mut scratch = Scratch::new(8192);
        let mut out = Vec::new();
        session.on_connected(now);
        session.initiate_logon(now, &mut out).unwrap();
        rig.send(c, &out);
        out.clear();
        let reply = rig.take_bytes(c);
        let r = session.on_input(&reply, &mut scratch, now, &mut out);
        assert!(session.is_logged_on(), "logon answered: {:?}", r.event);
        clients.push((c, session));
    }
    // Pre-encode the flow (allocation here is outside the counted region).
    let mut flows: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut ids: Vec<Vec<u8>> = Vec::new();
    for i in 0..100_000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x & 1) as usize;
        let (_, session) = &mut clients[k];
        let side = if (x >> 1) & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let off = ((x >> 8) % 8) as i64 * 100;
        let px = if side == Side::Buy {
            PX - off
        } else {
            PX + off - 300
        };
        let cl = format!("{k}-{i}");
        let mut out = Vec::new();
        match (x >> 16) % 10 {
            0..=5 => {
                let m = NewOrder {
                    cl_ord_id: Id::Text(cl.as_bytes()),
                    account: None,
                    symbol: b"ACME",
                    side,
                    order_qty: 1 + (x >> 24) % 50,
                    ord_type: OrdType::Limit,
                    price: Some(px),
                    price_scale: 4,
                    time_in_force: if (x >> 40) % 4 == 0 {
                        TimeInForce::ImmediateOrCancel
                    } else {
                        TimeInForce::GoodTillCancel
                    },
                    transact_time: now,
                };
                session.send(&m, now, &mut out).unwrap();
            }
            6..=7 => {
                let orig = format!("{k}-{}", i.saturating_sub(1 + (x >> 30) as usize % 40));
                let m = CancelOrder {
                    orig_cl_ord_id: Id::Text(orig.as_bytes()),
                    cl_ord_id: Id::Text(cl.as_bytes()),
                    symbol: b"ACME",
                    side,
                    transact_time: now,
                };
                session.send(&m, now, &mut out).unwrap();
            }
            _ => {
                let orig = format!("{k}-{}", i.saturating_sub(1 + (x >> 30) as usize % 40));
                let m = ReplaceOrder {
                    orig_cl_ord_id: Id::Text(orig.as_bytes()),
                    cl_ord_id: Id::Text(cl.as_bytes()),
                    symbol: b"ACME",
                    side,
                    order_qty: 5,
                    ord_type: OrdType::Limit,
                    price: Some(PX - 500),
                    price_scale: 4,
                    transact_time: now,
                };
                session.send(&m, now, &mut out).unwrap();
            }
        }
        ids.push(cl.into_bytes());
        flows[k].push(out);
    }
    let conns = [clients[0].0, clients[1].0];
    let run = |rig: &mut Rig, range: std::ops::Range<usize>| -> usize {
        let mut sent = 0;
        for i in range {
            for k in 0..2 {
                if let Some(m) = flows[k].get(i) {
                    rig.gw.tick_clock();
                    assert!(rig.gw.on_recv(conns[k], m, 0));
                }
            }
            rig.pump();
            rig.gw.sends_submitted();
            sent += drain(rig, conns[0]) + drain(rig, conns[1]);
        }
        sent
    };
    let longest = flows[0].len().max(flows[1].len());
    run(&mut rig, 0..5_000);
    WATCH.with(|w| w.set(true));
    let bytes_out = run(&mut rig, 5_000..longest);
    WATCH.with(|w| w.set(false));
    assert!(
        bytes_out > 10_000_000,
        "the flow produced replies ({bytes_out} bytes)"
    );
    assert_eq!(allocs(), 0, "allocations on the FIX hot path after warm-up");
    assert_eq!(
        rig.gw.state(conns[0]),
        appliance::gateway::conn::ConnState::Open,
        "no session-level trouble"
    );
}

fn cut(f: &[u8], frames: usize) -> usize {
    let mut p = 0;
    for _ in 0..frames {
        p += wire::frame_len(&f[p..]).unwrap().unwrap();
    }
    p
}

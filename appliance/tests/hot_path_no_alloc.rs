//! Proof that the whole hot path allocates nothing after warm-up: client bytes are decoded by
//! the gateway, pushed through the ring, matched by the engine, and the replies encoded into
//! the connection's output buffer, with a counting global allocator watching.
//!
//! This binary installs its own global allocator, so it holds only this test.

mod support;

use appliance::binary::wire::{self, ClientMessage};
use appliance::gateway::core::ConnId;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use support::{enter, Rig};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
}

fn watching() -> bool {
    WATCH.try_with(|w| w.get()).unwrap_or(false)
}

// SAFETY: delegates every operation to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if watching() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if watching() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if watching() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
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
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert!(
        bytes_out > 10_000_000,
        "the flow produced replies ({bytes_out} bytes)"
    );
    assert_eq!(allocs, 0, "allocations on the hot path after warm-up");
    // Control: the counter does see an allocation made while watching.
    WATCH.with(|w| w.set(true));
    let v = std::hint::black_box(vec![1u8; 16]);
    drop(v);
    WATCH.with(|w| w.set(false));
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        2,
        "the counting allocator counts"
    );
}

fn cut(f: &[u8], frames: usize) -> usize {
    let mut p = 0;
    for _ in 0..frames {
        p += wire::frame_len(&f[p..]).unwrap().unwrap();
    }
    p
}

//! Determinism: the engine's output is a pure function of its sequenced input.

#[path = "engine_common.rs"]
mod common;

use appliance::engine::*;
use common::*;

/// A stream with every kind of command: the workload mix, plus STP, FOK, post-only, price
/// changes, mass cancels and day expiry sprinkled in deterministically.
fn stream(n: usize) -> Vec<Command> {
    let mut mix = MixGen::new(99);
    let mut rng = Rng(12345);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut cmd = if i < 1_000 {
            mix.passive()
        } else {
            mix.next_command()
        };
        if let Command::New(o) = &mut cmd {
            o.stp = StpMode::ALL[rng.below(4) as usize];
            o.session = 1 + rng.below(3) as u32;
            if o.ord_type == OrdType::Limit && rng.below(20) == 0 {
                o.tif = if rng.below(2) == 0 {
                    TimeInForce::Fok
                } else {
                    TimeInForce::Day
                };
            }
            o.post_only = o.tif == TimeInForce::Gtc && rng.below(10) == 0;
        }
        out.push(cmd);
        if rng.below(2_000) == 0 {
            out.push(Command::MassCancel(MassCancel {
                side: None,
                session: 1 + rng.below(3) as u32,
                owner: 1 + rng.below(100) as u32,
                instrument: None,
                scope: if rng.below(2) == 0 {
                    MassCancelScope::ByOwner
                } else {
                    MassCancelScope::BySession
                },
                reason: CancelReason::MassCancel,
            }));
        }
        if rng.below(10_000) == 0 {
            out.push(Command::ExpireDayOrders(ExpireDayOrders {
                instrument: Some(0),
            }));
        }
        if rng.below(50) == 0 {
            let id = 1 + rng.below(i as u64 + 1);
            out.push(Command::Replace(Replace {
                order_id: id,
                session: 1 + rng.below(3) as u32,
                price: Some(100_000 + rng.below(21) as i64 - 10),
                qty: 1 + rng.below(150),
            }));
        }
    }
    out
}

/// Runs a stream and returns every event's bytes, concatenated, and the final state hash.
fn replay(cmds: &[Command]) -> (Vec<u8>, u64, Engine) {
    let mut cfg = plain_config();
    cfg.capacity = Capacity {
        max_orders: 1 << 16,
        max_levels_per_side: 2048,
    };
    let mut e = Engine::new(cfg).unwrap();
    let mut evs = Vec::new();
    let mut bytes = Vec::new();
    for c in cmds {
        evs.clear();
        e.process(c, &mut evs);
        for ev in &evs {
            bytes.extend_from_slice(&ev.to_bytes());
        }
    }
    let h = e.state_hash();
    (bytes, h, e)
}

#[test]
fn same_stream_twice_gives_identical_event_bytes() {
    let cmds = stream(200_000);
    let (a, ha, ea) = replay(&cmds);
    let (b, hb, eb) = replay(&cmds);
    assert!(
        a.len() > cmds.len() * EVENT_BYTES,
        "the stream produced too few events to mean anything"
    );
    assert_eq!(a.len(), b.len());
    if let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) {
        panic!("event streams differ first in event #{}", i / EVENT_BYTES);
    }
    assert_eq!(ha, hb);
    assert_eq!(ea.dump(), eb.dump());
    ea.check_invariants().unwrap();
}

#[test]
fn prefetch_hints_change_nothing() {
    let cmds = stream(30_000);
    let (plain, h_plain, _) = replay(&cmds);
    let mut cfg = plain_config();
    cfg.capacity = Capacity {
        max_orders: 1 << 16,
        max_levels_per_side: 2048,
    };
    let mut e = Engine::new(cfg).unwrap();
    let mut evs = Vec::new();
    let mut bytes = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        // Hint at commands ahead, behind and the current one: none of it may matter.
        for j in [i + 1, i + 2, i.saturating_sub(3), i] {
            if let Some(n) = cmds.get(j) {
                e.prefetch(n);
            }
        }
        evs.clear();
        e.process(c, &mut evs);
        bytes.extend(evs.iter().flat_map(|ev| ev.to_bytes()));
    }
    assert_eq!(bytes, plain);
    assert_eq!(e.state_hash(), h_plain);
}

#[test]
fn journal_replay_reproduces_the_live_run() {
    // The journal stores the encoded commands; decoding and replaying them must reproduce the
    // live run's events and state hash exactly.
    let cmds = stream(50_000);
    let journal: Vec<[u8; COMMAND_BYTES]> = cmds.iter().map(|c| c.to_bytes()).collect();
    let decoded: Vec<Command> = journal
        .iter()
        .map(|b| Command::from_bytes(b).unwrap())
        .collect();
    assert_eq!(decoded, cmds);
    let (live, h_live, _) = replay(&cmds);
    let (again, h_again, _) = replay(&decoded);
    assert_eq!(live, again);
    assert_eq!(h_live, h_again);
}

#[test]
fn state_hash_changes_with_the_state() {
    let mut e = engine();
    let h0 = e.state_hash();
    let mut sink = Vec::new();
    e.process(&Command::New(limit(1, Side::Buy, 100, 1)), &mut sink);
    let h1 = e.state_hash();
    e.process(
        &Command::Replace(Replace {
            order_id: 1,
            session: 1,
            price: None,
            qty: 1,
        }),
        &mut sink,
    );
    let h2 = e.state_hash();
    assert_ne!(h0, h1);
    assert_ne!(h1, h2, "the sequence number is part of the state");
}

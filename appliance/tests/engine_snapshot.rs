//! Engine snapshots: a restored engine continues exactly like the original (byte-identical
//! events, equal state hash, equal snapshot), snapshots are idempotent, and bad input or a
//! different configuration is an error, never a panic or a broken engine.

#[path = "engine_common.rs"]
mod common;

use appliance::engine::*;
use common::*;
use proptest::prelude::*;

fn snapshot(e: &Engine) -> Vec<u8> {
    let mut out = Vec::new();
    e.snapshot_into(&mut out);
    out
}

/// Processes one command and returns its events' encoded bytes.
fn event_bytes(e: &mut Engine, cmd: &Command) -> Vec<u8> {
    let mut evs: Vec<Event> = Vec::new();
    e.process(cmd, &mut evs);
    evs.iter().flat_map(|ev| ev.to_bytes()).collect()
}

/// Two instruments with different rules (one with tick, lot, limits and a percentage band),
/// capacities small enough that the arena and the level arrays fill up and slots are reused.
fn small_config(max_orders: u32, max_levels_per_side: u32) -> EngineConfig {
    EngineConfig {
        instruments: vec![
            InstrumentConfig {
                id: 4,
                symbol: "BBB".to_string(),
                tick_size: 5,
                lot_size: 10,
                max_order_qty: Some(400),
                max_notional: Some(2_000_000),
                price_band: PriceBand::Percent {
                    bps: 300,
                    reference_price: 1_000,
                },
            },
            InstrumentConfig::plain(0, "AAA"),
        ],
        capacity: Capacity {
            max_orders,
            max_levels_per_side,
        },
    }
}

/// Builds a command from raw numbers: every command kind, every time in force and STP mode,
/// post-only, two owned instruments and an unknown one, two gateways, cancels and replaces of
/// recent ids (live, filled or never seen), mass cancels by owner and by session with and
/// without an instrument, day expiry. `n` numbers the command (fresh order ids).
fn command(kind: u8, a: u32, b: u32, n: u64) -> Command {
    let instrument = match a % 11 {
        0..=5 => 0,
        6..=9 => 4,
        _ => 9, // not owned
    };
    let (tick, lot) = if instrument == 4 { (5, 10) } else { (1, 1) };
    let side = if b & 1 == 0 { Side::Buy } else { Side::Sell };
    let ticks = ((a >> 4) % 9) as i64 - 4; // around the mid, both sides, crossing sometimes
    let price = 1_000 + ticks * tick;
    let qty = (1 + (b >> 1) as u64 % 6) * lot;
    let session = 1 + (b >> 4) % 4;
    let owner = 1 + (b >> 6) % 4;
    let recent = |x: u32| order_id((x % 2) as u8, n.saturating_sub(1 + (x >> 1) as u64 % 24));
    let new = |ord_type, tif, post_only, stp| {
        Command::New(NewOrder {
            order_id: order_id((a % 2) as u8, n),
            instrument,
            session,
            owner,
            side,
            ord_type,
            tif,
            price,
            qty,
            post_only,
            stp,
        })
    };
    let stp = StpMode::ALL[(b >> 8) as usize % 4];
    match kind % 100 {
        0..=49 => {
            let tif = [TimeInForce::Gtc, TimeInForce::Day][(b >> 10) as usize % 2];
            new(OrdType::Limit, tif, (b >> 11) % 8 == 0, stp)
        }
        50..=54 => new(OrdType::Limit, TimeInForce::Ioc, false, stp),
        55..=58 => new(OrdType::Limit, TimeInForce::Fok, (b >> 11) % 8 == 0, stp),
        59..=61 => new(OrdType::Market, TimeInForce::Ioc, false, stp),
        62..=77 => Command::Cancel(Cancel {
            order_id: recent(a),
            session,
        }),
        78..=90 => Command::Replace(Replace {
            order_id: recent(a),
            session,
            price: ((b >> 12) % 2 == 0).then_some(price),
            qty: ((b >> 13) as u64 % 7) * lot,
        }),
        91..=93 => Command::MassCancel(MassCancel {
            session,
            owner,
            instrument: [None, Some(0), Some(4), Some(9)][(b >> 14) as usize % 4],
            scope: [MassCancelScope::ByOwner, MassCancelScope::BySession][(b >> 16) as usize % 2],
            side: [None, Some(Side::Buy), Some(Side::Sell)][(b >> 18) as usize % 3],
            reason: [CancelReason::MassCancel, CancelReason::Disconnect][(b >> 17) as usize % 2],
        }),
        94..=95 => Command::ExpireDayOrders(ExpireDayOrders {
            instrument: [None, Some(0), Some(4), Some(9)][(b >> 14) as usize % 4],
        }),
        _ => new(OrdType::Limit, TimeInForce::Gtc, false, StpMode::None),
    }
}

fn commands(raw: &[(u8, u32, u32)], first: u64) -> Vec<Command> {
    raw.iter()
        .enumerate()
        .map(|(i, &(k, a, b))| command(k, a, b, first + i as u64))
        .collect()
}

/// A deterministic stream of `n` commands from `seed`.
fn seeded(seed: u64, n: usize) -> Vec<Command> {
    let mut rng = Rng(seed | 1);
    (0..n)
        .map(|i| {
            let x = rng.next_u64();
            command(
                (x % 100) as u8,
                (x >> 8) as u32,
                rng.next_u64() as u32,
                1 + i as u64,
            )
        })
        .collect()
}

/// Engine A processes `xs` then `ys`; after `xs` it is snapshotted and restored into C, which
/// processes `ys`. (Taking a snapshot borrows A immutably, so A also plays the part of the
/// engine that is snapshotted.) C's events must be byte-identical to A's, command by command,
/// and at the end the state hashes, the books and the snapshots themselves must be equal.
fn assert_exact_continuation(cfg: &EngineConfig, xs: &[Command], ys: &[Command]) {
    let mut a = Engine::new(cfg.clone()).unwrap();
    let mut sink: Vec<Event> = Vec::new();
    for x in xs {
        a.process(x, &mut sink);
    }
    let snap = snapshot(&a);
    let mut c = Engine::restore(cfg.clone(), &snap).unwrap();
    c.check_invariants().unwrap();
    assert_eq!(c.state_hash(), a.state_hash());
    assert_eq!(c.seq(), a.seq());
    assert_eq!(
        snapshot(&c),
        snap,
        "snapshot of the restored engine differs"
    );
    for (i, y) in ys.iter().enumerate() {
        let ea = event_bytes(&mut a, y);
        let ec = event_bytes(&mut c, y);
        assert_eq!(
            ec, ea,
            "events differ at command {} after the snapshot: {y:?}",
            i
        );
    }
    c.check_invariants().unwrap();
    assert_eq!(c.state_hash(), a.state_hash());
    assert_eq!(c.dump(), a.dump());
    assert_eq!(snapshot(&c), snapshot(&a), "final placement differs");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn restored_engine_continues_exactly(
        xs in prop::collection::vec((any::<u8>(), any::<u32>(), any::<u32>()), 0..300),
        ys in prop::collection::vec((any::<u8>(), any::<u32>(), any::<u32>()), 1..300),
        max_orders in 2u32..40,
        max_levels in 1u32..8,
    ) {
        let cfg = small_config(max_orders, max_levels);
        let xs_cmds = commands(&xs, 1);
        let ys_cmds = commands(&ys, 1 + xs.len() as u64);
        assert_exact_continuation(&cfg, &xs_cmds, &ys_cmds);
    }
}

#[test]
fn restore_at_every_point_of_a_tiny_arena_run() {
    // 16 order slots and 3 levels per side: the arena is full or nearly so most of the time,
    // slots are reused constantly, and capacity rejects happen. Snapshot after every command,
    // restore, and replay the next 40 commands against the original's events.
    let cfg = small_config(16, 3);
    let cmds = seeded(7, 4_000);
    let mut a = Engine::new(cfg.clone()).unwrap();
    let mut per_cmd = Vec::with_capacity(cmds.len());
    let mut snaps = Vec::with_capacity(cmds.len());
    let mut rejected_full = 0;
    for c in &cmds {
        snaps.push(snapshot(&a));
        let mut evs: Vec<Event> = Vec::new();
        a.process(c, &mut evs);
        rejected_full += evs
            .iter()
            .filter(|e| {
                matches!(e.kind, EventKind::Rejected(r)
                    if r.reason == RejectReason::OrderCapacityExhausted)
            })
            .count();
        per_cmd.push(evs.iter().flat_map(|e| e.to_bytes()).collect::<Vec<u8>>());
    }
    assert!(
        rejected_full > 50,
        "the arena was not full often enough ({rejected_full})"
    );
    for (i, snap) in snaps.iter().enumerate() {
        let mut c = Engine::restore(cfg.clone(), snap).unwrap();
        for (j, cmd) in cmds.iter().enumerate().skip(i).take(40) {
            assert_eq!(
                event_bytes(&mut c, cmd),
                per_cmd[j],
                "restored after command {i}, differs at command {j}"
            );
        }
        c.check_invariants().unwrap();
    }
}

/// The standard workload (`workloads/README.md`: 10,000 resting orders preloaded, then
/// 1,000,000 commands of the benchmark mix), with STP modes, sessions, Day/FOK/post-only
/// orders, price-changing replaces, mass cancels and day expiry sprinkled in as in
/// `engine_determinism.rs`.
fn standard_stream() -> Vec<Command> {
    let mut mix = MixGen::new(42);
    let mut rng = Rng(4242);
    let mut out = Vec::with_capacity(1_020_000);
    for i in 0..1_010_000usize {
        let mut cmd = if i < 10_000 {
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
        if rng.below(5_000) == 0 {
            out.push(Command::MassCancel(MassCancel {
                side: None,
                session: 1 + rng.below(3) as u32,
                owner: 1 + rng.below(100) as u32,
                instrument: if rng.below(2) == 0 { None } else { Some(0) },
                scope: if rng.below(2) == 0 {
                    MassCancelScope::ByOwner
                } else {
                    MassCancelScope::BySession
                },
                reason: CancelReason::MassCancel,
            }));
        }
        if rng.below(20_000) == 0 {
            out.push(Command::ExpireDayOrders(ExpireDayOrders {
                instrument: Some(0),
            }));
        }
        if rng.below(50) == 0 {
            out.push(Command::Replace(Replace {
                order_id: 1 + rng.below(i as u64 + 1),
                session: 1 + rng.below(3) as u32,
                price: Some(100_000 + rng.below(21) as i64 - 10),
                qty: 1 + rng.below(150),
            }));
        }
    }
    out
}

#[test]
fn standard_workload_survives_repeated_restores() {
    // A runs the whole stream; B runs it too but is replaced by a restore of its own snapshot
    // every 100,003 commands. Every command's events must be byte-identical.
    let cmds = standard_stream();
    let mut cfg = plain_config();
    cfg.capacity = Capacity {
        max_orders: 1 << 17,
        max_levels_per_side: 2048,
    };
    let mut a = Engine::new(cfg.clone()).unwrap();
    let mut b = Engine::new(cfg.clone()).unwrap();
    let (mut ea, mut eb): (Vec<Event>, Vec<Event>) = (Vec::new(), Vec::new());
    let (mut restores, mut mass_cancelled) = (0, 0usize);
    for (i, cmd) in cmds.iter().enumerate() {
        if i % 100_003 == 50_000 {
            let snap = snapshot(&b);
            b = Engine::restore(cfg.clone(), &snap).unwrap();
            assert_eq!(b.state_hash(), a.state_hash());
            restores += 1;
        }
        ea.clear();
        eb.clear();
        a.process(cmd, &mut ea);
        b.process(cmd, &mut eb);
        if ea.len() != eb.len()
            || ea
                .iter()
                .zip(&eb)
                .any(|(x, y)| x.to_bytes() != y.to_bytes())
        {
            panic!("command {i} ({cmd:?}): events differ\n{ea:?}\n{eb:?}");
        }
        if matches!(cmd, Command::MassCancel(_) | Command::ExpireDayOrders(_)) {
            mass_cancelled += cancels(&ea).len();
        }
    }
    assert_eq!(restores, 10);
    assert!(
        mass_cancelled > 500,
        "mass cancels cancelled too little ({mass_cancelled})"
    );
    assert!(a.usage().orders > 1_000);
    b.check_invariants().unwrap();
    assert_eq!(b.state_hash(), a.state_hash());
    assert_eq!(snapshot(&b), snapshot(&a));
}

fn big_empty_config() -> EngineConfig {
    EngineConfig {
        instruments: vec![
            InstrumentConfig::plain(0, "AAA"),
            InstrumentConfig::plain(1, "BBB"),
            InstrumentConfig::plain(2, "CCC"),
        ],
        capacity: Capacity {
            max_orders: 1 << 20,
            max_levels_per_side: 4096,
        },
    }
}

#[test]
fn empty_engine_snapshot_is_small_and_restores() {
    let cfg = big_empty_config();
    let a = Engine::new(cfg.clone()).unwrap();
    let snap = snapshot(&a);
    assert!(
        snap.len() < 512,
        "an empty engine's snapshot is {} bytes",
        snap.len()
    );
    assert_eq!(&snap[..8], &SNAPSHOT_MAGIC);
    let c = Engine::restore(cfg.clone(), &snap).unwrap();
    c.check_invariants().unwrap();
    assert_eq!(c.seq(), 0);
    assert_eq!(c.usage(), a.usage());
    assert_eq!(c.state_hash(), a.state_hash());
    assert_eq!(snapshot(&c), snap);
    let stream = seeded(3, 2_000)
        .into_iter()
        .map(|mut c| {
            // seeded() targets instruments 0, 4 and 9; move 4 to 1 so both books see orders.
            if let Command::New(o) = &mut c {
                if o.instrument == 4 {
                    o.instrument = 1;
                }
            }
            c
        })
        .collect::<Vec<_>>();
    assert_exact_continuation(&cfg, &[], &stream);
}

#[test]
fn snapshot_of_a_restored_engine_is_byte_identical() {
    let cfg = small_config(64, 8);
    let mut e = Engine::new(cfg.clone()).unwrap();
    let mut sink: Vec<Event> = Vec::new();
    for c in seeded(11, 3_000) {
        e.process(&c, &mut sink);
    }
    assert!(e.usage().orders > 0);
    let first = snapshot(&e);
    let r1 = Engine::restore(cfg.clone(), &first).unwrap();
    let second = snapshot(&r1);
    assert_eq!(second, first);
    let r2 = Engine::restore(cfg, &second).unwrap();
    assert_eq!(snapshot(&r2), first);
    // Appending to a non-empty buffer writes the same bytes after what was there.
    let mut framed = b"frame".to_vec();
    r2.snapshot_into(&mut framed);
    assert_eq!(&framed[5..], &first[..]);
}

#[test]
fn state_hash_covers_arena_placement() {
    // Same book, same sequence number, different slots: A has order 2 in slot 1 with slot 0
    // free, B has it in slot 0 with slot 1 free. The next order then takes a different slot,
    // so a mass cancel reports the two orders in a different order: placement is output.
    let mut a = engine();
    new(&mut a, limit(1, Side::Buy, 100, 5));
    new(&mut a, limit(2, Side::Buy, 100, 5));
    run(
        &mut a,
        Command::Cancel(Cancel {
            order_id: 1,
            session: 1,
        }),
    );
    let mut b = engine();
    new(&mut b, limit(2, Side::Buy, 100, 5));
    new(&mut b, limit(1, Side::Buy, 101, 5));
    run(
        &mut b,
        Command::Cancel(Cancel {
            order_id: 1,
            session: 1,
        }),
    );
    assert_eq!(a.dump(), b.dump());
    assert_eq!(a.seq(), b.seq());
    assert_ne!(a.state_hash(), b.state_hash());
    let mass = Command::MassCancel(MassCancel {
        side: None,
        session: 1,
        owner: 1,
        instrument: None,
        scope: MassCancelScope::ByOwner,
        reason: CancelReason::MassCancel,
    });
    for e in [&mut a, &mut b] {
        new(e, limit(3, Side::Buy, 99, 5));
    }
    let order = |e: &mut Engine| -> Vec<OrderId> {
        cancels(&run(e, mass)).iter().map(|c| c.order_id).collect()
    };
    assert_eq!(order(&mut a), vec![3, 2]);
    assert_eq!(order(&mut b), vec![2, 3]);
}

/// A busy engine and its snapshot, for the error tests.
fn busy() -> (EngineConfig, Engine, Vec<u8>) {
    let cfg = small_config(48, 6);
    let mut e = Engine::new(cfg.clone()).unwrap();
    let mut sink: Vec<Event> = Vec::new();
    for c in seeded(5, 1_500) {
        e.process(&c, &mut sink);
    }
    assert!(e.usage().orders > 10);
    let snap = snapshot(&e);
    (cfg, e, snap)
}

fn mismatch(cfg: EngineConfig, snap: &[u8]) -> String {
    match Engine::restore(cfg, snap) {
        Err(SnapshotError::ConfigMismatch(m)) => m,
        Err(e) => panic!("expected a config mismatch, got {e}"),
        Ok(_) => panic!("expected a config mismatch, got an engine"),
    }
}

#[test]
fn config_mismatch_names_what_differs() {
    let (cfg, _, snap) = busy();
    let with = |f: &dyn Fn(&mut EngineConfig)| {
        let mut c = cfg.clone();
        f(&mut c);
        c
    };
    fn bbb(c: &mut EngineConfig) -> &mut InstrumentConfig {
        c.instruments.iter_mut().find(|i| i.id == 4).unwrap()
    }
    let cases: Vec<(EngineConfig, &str)> = vec![
        (with(&|c| bbb(c).tick_size = 1), "tick_size"),
        (with(&|c| bbb(c).lot_size = 1), "lot_size"),
        (with(&|c| bbb(c).symbol = "XYZ".into()), "symbol"),
        (with(&|c| bbb(c).max_order_qty = None), "max_order_qty"),
        (with(&|c| bbb(c).max_notional = Some(1)), "max_notional"),
        (with(&|c| bbb(c).price_band = PriceBand::None), "price_band"),
        (
            with(&|c| c.instruments.retain(|i| i.id != 0)),
            "instrument 0 (AAA) is in the snapshot but not in the config",
        ),
        (
            with(&|c| c.instruments.push(InstrumentConfig::plain(2, "NEW"))),
            "instrument 2 (NEW) is in the config but not in the snapshot",
        ),
        (with(&|c| c.capacity.max_orders += 1), "max_orders"),
        (
            with(&|c| c.capacity.max_levels_per_side -= 1),
            "max_levels_per_side",
        ),
    ];
    for (c, want) in cases {
        let m = mismatch(c, &snap);
        assert!(m.contains(want), "{m:?} should name {want:?}");
    }
    // Instrument order in the config does not matter.
    let reversed = with(&|c| c.instruments.reverse());
    Engine::restore(reversed, &snap).unwrap();
    // An invalid configuration is refused as such.
    let bad = with(&|c| bbb(c).tick_size = 0);
    assert!(matches!(
        Engine::restore(bad, &snap),
        Err(SnapshotError::InvalidConfig(_))
    ));
}

/// Whether any event is a capacity reject.
fn hit_a_limit(evs: &[Event]) -> bool {
    evs.iter().any(|e| {
        matches!(e.kind, EventKind::Rejected(r) if matches!(r.reason,
            RejectReason::OrderCapacityExhausted | RejectReason::LevelCapacityExhausted))
    })
}

#[test]
fn resized_restore_continues_exactly_within_the_limits() {
    // A runs with 2,048 slots and 32 levels per side; its snapshot is restored into 4,096 / 64
    // (C). D runs the same stream with 4,096 / 64 from the start. Neither capacity is reached,
    // so A, C and D must agree on every event.
    let small = small_config(2_048, 32);
    let big = small_config(4_096, 64);
    let (xs, ys) = (seeded(21, 3_000), seeded(22, 3_000));
    let mut a = Engine::new(small.clone()).unwrap();
    let mut d = Engine::new(big.clone()).unwrap();
    for x in &xs {
        let (ea, ed) = (event_bytes(&mut a, x), event_bytes(&mut d, x));
        assert_eq!(ea, ed);
    }
    let snap = snapshot(&a);
    assert!(matches!(
        Engine::restore(big.clone(), &snap),
        Err(SnapshotError::ConfigMismatch(_))
    ));
    let mut c = Engine::restore_resized(big.clone(), &snap).unwrap();
    c.check_invariants().unwrap();
    assert_eq!(c.state_hash(), d.state_hash());
    let mut evs: Vec<Event> = Vec::new();
    for y in &ys {
        evs.clear();
        a.process(y, &mut evs);
        assert!(!hit_a_limit(&evs), "the stream reached a capacity limit");
        let ea: Vec<u8> = evs.iter().flat_map(|e| e.to_bytes()).collect();
        assert_eq!(event_bytes(&mut c, y), ea);
        assert_eq!(event_bytes(&mut d, y), ea);
    }
    assert_eq!(c.state_hash(), d.state_hash());
    // With the same capacities, restore_resized is an exact restore.
    let same = Engine::restore_resized(small, &snap).unwrap();
    assert_eq!(snapshot(&same), snap);
}

#[test]
fn resized_restore_refuses_capacities_below_what_is_in_use() {
    // Ten orders take slots 0..10 (high-water mark 10) on two price levels per side; three are
    // cancelled. Orders keep their slot numbers, so 10 slots are in use even though 7 orders
    // live; three level ids are in use on the bid side (one of them freed again).
    let cfg = small_config(64, 8);
    let mut e = Engine::new(cfg.clone()).unwrap();
    let mut sink: Vec<Event> = Vec::new();
    for id in 1..=10u64 {
        let side = if id <= 6 { Side::Buy } else { Side::Sell };
        let price = if side == Side::Buy {
            990 + (id % 3) as i64
        } else {
            1_010
        };
        e.process(
            &Command::New(NewOrder {
                instrument: 0,
                ..limit(id, side, price, 5)
            }),
            &mut sink,
        );
    }
    for id in [2u64, 5, 8] {
        e.process(
            &Command::Cancel(Cancel {
                order_id: id,
                session: 1,
            }),
            &mut sink,
        );
    }
    assert_eq!(e.usage().orders, 7);
    let snap = snapshot(&e);
    let resized = |orders: u32, levels: u32| {
        let mut c = cfg.clone();
        c.capacity = Capacity {
            max_orders: orders,
            max_levels_per_side: levels,
        };
        Engine::restore_resized(c, &snap)
    };
    match resized(9, 8) {
        Err(SnapshotError::CapacityTooSmall(m)) => {
            assert!(
                m.contains("max_orders = 9") && m.contains("10 order slots"),
                "{m}"
            )
        }
        other => panic!("expected CapacityTooSmall, got {:?}", other.err()),
    }
    match resized(64, 2) {
        Err(SnapshotError::CapacityTooSmall(m)) => {
            assert!(
                m.contains("max_levels_per_side = 2") && m.contains("bids"),
                "{m}"
            )
        }
        other => panic!("expected CapacityTooSmall, got {:?}", other.err()),
    }
    // Exactly what is in use: accepted, and it continues like the original until full.
    let mut tight = resized(10, 3).unwrap();
    tight.check_invariants().unwrap();
    let mass = Command::MassCancel(MassCancel {
        side: None,
        session: 1,
        owner: 1,
        instrument: None,
        scope: MassCancelScope::BySession,
        reason: CancelReason::Disconnect,
    });
    let next = [
        Command::New(NewOrder {
            instrument: 0,
            ..limit(11, Side::Buy, 991, 5)
        }),
        Command::New(NewOrder {
            instrument: 0,
            ..limit(12, Side::Sell, 1_010, 5)
        }),
        Command::New(NewOrder {
            instrument: 0,
            ..limit(13, Side::Buy, 990, 5)
        }),
        mass,
    ];
    for cmd in &next {
        assert_eq!(
            event_bytes(&mut tight, cmd),
            event_bytes(&mut e, cmd),
            "{cmd:?}"
        );
    }
    tight.check_invariants().unwrap();
}

#[test]
fn truncated_or_foreign_bytes_are_errors() {
    let (cfg, _, snap) = busy();
    assert!(matches!(
        Engine::restore(cfg.clone(), &[]),
        Err(SnapshotError::Truncated { .. })
    ));
    assert!(matches!(
        Engine::restore(cfg.clone(), &snap[..snap.len() - 1]),
        Err(SnapshotError::Truncated { .. })
    ));
    assert!(matches!(
        Engine::restore(cfg.clone(), b"not a snapshot at all, just some text"),
        Err(SnapshotError::BadMagic)
    ));
    let mut v2 = snap.clone();
    v2[8] = 2;
    assert_eq!(
        Engine::restore(cfg.clone(), &v2).err(),
        Some(SnapshotError::UnsupportedVersion {
            found: 2,
            supported: SNAPSHOT_VERSION
        })
    );
    let mut longer = snap.clone();
    longer.push(0);
    assert!(matches!(
        Engine::restore(cfg.clone(), &longer),
        Err(SnapshotError::Corrupt(_))
    ));
    let mut flipped = snap.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    assert!(matches!(
        Engine::restore(cfg, &flipped),
        Err(SnapshotError::Checksum { .. })
    ));
}

/// Recomputes the trailing checksum, so a deliberately edited snapshot reaches the structural
/// checks.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let sum = snapshot_checksum(&bytes[..n - 8]);
    bytes[n - 8..].copy_from_slice(&sum.to_le_bytes());
}

/// An engine restored from edited bytes must be sound: invariants hold, and it keeps working
/// (commands of every kind, invariants after each).
fn assert_sound(mut e: Engine) {
    e.check_invariants().unwrap();
    let mut sink: Vec<Event> = Vec::new();
    for (i, c) in seeded(9, 300).iter().enumerate() {
        e.process(c, &mut sink);
        if i % 30 == 0 {
            e.check_invariants().unwrap();
        }
    }
    e.check_invariants().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn damaged_snapshots_are_errors_never_panics(
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        seed in 0u64..4,
    ) {
        let cfg = small_config(24, 4);
        let mut e = Engine::new(cfg.clone()).unwrap();
        let mut sink: Vec<Event> = Vec::new();
        for c in seeded(100 + seed, 400) {
            e.process(&c, &mut sink);
        }
        let snap = snapshot(&e);

        // Any strict prefix is an error.
        let cut = cut.index(snap.len());
        prop_assert!(Engine::restore(cfg.clone(), &snap[..cut]).is_err());

        // Damage without resealing: always caught (checksum or header).
        let mut damaged = snap.clone();
        for (at, x) in &flips {
            damaged[at.index(snap.len())] ^= x;
        }
        if damaged != snap {
            prop_assert!(Engine::restore(cfg.clone(), &damaged).is_err());
        }

        // Damage resealed, so the structural checks see it: an error, or a sound engine.
        reseal(&mut damaged);
        if let Ok(r) = Engine::restore(cfg.clone(), &damaged) {
            assert_sound(r);
        }
        if let Ok(r) = Engine::restore_resized(cfg.clone(), &damaged) {
            assert_sound(r);
        }
    }
}

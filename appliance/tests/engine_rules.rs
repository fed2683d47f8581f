//! One test (or a few) per rule of the matching core: configuration, risk checks, matching,
//! time in force, cancel/replace, mass cancel, self-trade prevention, capacity and event order.

#[path = "engine_common.rs"]
mod common;

use appliance::engine::*;
use common::*;

// ---------------------------------------------------------------- configuration

#[test]
fn instruments_load_from_toml_with_both_band_kinds() {
    let text = r#"
        [capacity]
        max_orders = 64
        max_levels_per_side = 16

        [[instruments]]
        id = 0
        symbol = "ABC"
        tick_size = 100
        lot_size = 10
        max_order_qty = 1000
        max_notional = 5000000
        price_band = { kind = "static", min = 100, max = 100000 }

        [[instruments]]
        id = 3
        symbol = "XYZ"
        tick_size = 1
        lot_size = 1
        price_band = { kind = "percent", bps = 500, reference_price = 10000 }
    "#;
    let cfg: EngineConfig = toml::from_str(text).expect("parses");
    assert_eq!(
        cfg.instruments[0].price_band,
        PriceBand::Static {
            min: 100,
            max: 100_000
        }
    );
    assert_eq!(
        cfg.instruments[1].price_band,
        PriceBand::Percent {
            bps: 500,
            reference_price: 10_000
        }
    );
    assert_eq!(cfg.instruments[1].max_order_qty, None);
    let e = Engine::new(cfg.clone()).expect("valid");
    assert_eq!(e.instruments().collect::<Vec<_>>(), vec![0, 3]);
    // Round trip through TOML keeps every field.
    let again: EngineConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn invalid_configurations_are_refused() {
    let mut c = plain_config();
    c.instruments.push(InstrumentConfig::plain(0, "DUP"));
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::DuplicateInstrument(0))
    ));

    let mut c = plain_config();
    c.instruments[0].tick_size = 0;
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::BadTickSize { .. })
    ));

    let mut c = plain_config();
    c.instruments[0].lot_size = 0;
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::BadLotSize(_))
    ));

    let mut c = plain_config();
    c.instruments[0].price_band = PriceBand::Static { min: 10, max: 5 };
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::BadPriceBand(_))
    ));

    let mut c = plain_config();
    c.instruments[0].price_band = PriceBand::Percent {
        bps: 100,
        reference_price: 0,
    };
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::BadPriceBand(_))
    ));

    let mut c = plain_config();
    c.capacity.max_orders = 0;
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::BadCapacity {
            field: "max_orders",
            ..
        })
    ));

    let mut c = plain_config();
    c.instruments[0].id = MAX_INSTRUMENT_ID + 1;
    assert!(matches!(
        Engine::new(c).err(),
        Some(ConfigError::InstrumentIdTooLarge(_))
    ));
}

// ---------------------------------------------------------------- risk checks

fn risky_config() -> EngineConfig {
    EngineConfig {
        instruments: vec![InstrumentConfig {
            id: 0,
            symbol: "RISK".into(),
            tick_size: 100,
            lot_size: 10,
            max_order_qty: Some(1_000),
            max_notional: Some(5_000_000),
            price_band: PriceBand::Static {
                min: 1_000,
                max: 100_000,
            },
        }],
        capacity: Capacity {
            max_orders: 16,
            max_levels_per_side: 8,
        },
    }
}

#[test]
fn each_risk_check_rejects_with_its_own_reason() {
    let mut e = Engine::new(risky_config()).unwrap();
    let ok = limit(1, Side::Buy, 5_000, 100);
    let cases: Vec<(NewOrder, RejectReason)> = vec![
        (
            NewOrder {
                instrument: 7,
                ..ok
            },
            RejectReason::UnknownInstrument,
        ),
        (NewOrder { qty: 0, ..ok }, RejectReason::ZeroQuantity),
        (NewOrder { qty: 105, ..ok }, RejectReason::OffLot),
        (NewOrder { qty: 1_010, ..ok }, RejectReason::QuantityOverMax),
        (NewOrder { price: 0, ..ok }, RejectReason::InvalidPrice),
        (NewOrder { price: -100, ..ok }, RejectReason::InvalidPrice),
        (NewOrder { price: 5_050, ..ok }, RejectReason::OffTick),
        (
            NewOrder { price: 900, ..ok },
            RejectReason::OutsidePriceBand,
        ),
        (
            NewOrder {
                price: 100_100,
                ..ok
            },
            RejectReason::OutsidePriceBand,
        ),
        (
            NewOrder {
                price: 6_000,
                qty: 1_000,
                ..ok
            },
            RejectReason::NotionalOverMax,
        ),
        (
            NewOrder {
                post_only: true,
                tif: TimeInForce::Ioc,
                ..ok
            },
            RejectReason::PostOnlyNotResting,
        ),
    ];
    for (order, want) in cases {
        let evs = new(&mut e, order);
        assert_eq!(rejected(&evs), want, "order {order:?}");
        match evs[0].kind {
            EventKind::Rejected(r) => {
                assert_eq!(
                    (r.order_id, r.session, r.price, r.qty),
                    (1, 1, order.price, order.qty)
                )
            }
            _ => unreachable!(),
        }
    }
    // Nothing reached the book, and the limits themselves are inclusive.
    assert_eq!(e.resting_orders(0, Side::Buy), 0);
    assert!(matches!(
        new(
            &mut e,
            NewOrder {
                price: 5_000,
                qty: 1_000,
                ..ok
            }
        )[0]
        .kind,
        EventKind::Accepted(_)
    ));
    assert!(matches!(
        new(
            &mut e,
            NewOrder {
                order_id: 2,
                price: 100_000,
                qty: 50,
                ..ok
            }
        )[0]
        .kind,
        EventKind::Accepted(_)
    ));
}

#[test]
fn reject_codes_are_distinct_and_stable() {
    let all: Vec<u8> = RejectReason::ALL.iter().map(|r| *r as u8).collect();
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), all.len(), "reject codes collide");
    // The numbers are part of the journal and gateway contract (docs/engine.md).
    assert_eq!(RejectReason::UnknownInstrument as u8, 1);
    assert_eq!(RejectReason::OffTick as u8, 5);
    assert_eq!(RejectReason::OrderCapacityExhausted as u8, 20);
    assert_eq!(RejectReason::UnknownOrder as u8, 30);
    let cancels: Vec<u8> = CancelReason::ALL.iter().map(|r| *r as u8).collect();
    assert_eq!(
        cancels,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "9: the kill switch, 10: the operator's cancel"
    );
}

#[test]
fn duplicate_live_order_id_is_rejected() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 100, 10));
    assert_eq!(
        rejected(&new(&mut e, limit(1, Side::Sell, 200, 10))),
        RejectReason::DuplicateOrderId
    );
    assert_eq!(e.order(1).unwrap().side, Side::Buy);
}

#[test]
fn percent_band_uses_configured_reference_then_last_trade() {
    let mut c = plain_config();
    c.instruments[0].price_band = PriceBand::Percent {
        bps: 1_000,
        reference_price: 1_000,
    };
    let mut e = Engine::new(c).unwrap();
    // 10% around 1000: 900..=1100.
    assert_eq!(
        rejected(&new(&mut e, limit(1, Side::Buy, 899, 1))),
        RejectReason::OutsidePriceBand
    );
    assert_eq!(
        rejected(&new(&mut e, limit(2, Side::Sell, 1_101, 1))),
        RejectReason::OutsidePriceBand
    );
    new(&mut e, limit(3, Side::Sell, 1_100, 1));
    new(&mut e, limit(4, Side::Buy, 1_100, 1)); // trades at 1100: the reference moves.
    assert_eq!(e.last_trade(0), Some(1_100));
    // Now 990..=1210.
    assert!(matches!(
        new(&mut e, limit(5, Side::Sell, 1_210, 1))[0].kind,
        EventKind::Accepted(_)
    ));
    assert_eq!(
        rejected(&new(&mut e, limit(6, Side::Buy, 989, 1))),
        RejectReason::OutsidePriceBand
    );
}

#[test]
fn market_order_notional_is_valued_at_the_opposite_best() {
    let mut c = plain_config();
    c.instruments[0].max_notional = Some(10_000);
    let mut e = Engine::new(c).unwrap();
    assert!(matches!(
        new(&mut e, limit(1, Side::Sell, 100, 100))[0].kind,
        EventKind::Accepted(_)
    ));
    assert_eq!(
        rejected(&new(&mut e, market(2, Side::Buy, 101))),
        RejectReason::NotionalOverMax
    );
    assert_eq!(trades(&new(&mut e, market(3, Side::Buy, 100))).len(), 1);
}

#[test]
fn notional_is_computed_without_overflow() {
    let mut c = plain_config();
    c.instruments[0].max_notional = Some(u64::MAX);
    let mut e = Engine::new(c).unwrap();
    let evs = new(&mut e, limit(1, Side::Buy, i64::MAX, 1 << 50));
    assert_eq!(rejected(&evs), RejectReason::NotionalOverMax);
}

#[test]
fn quantity_is_capped_so_level_totals_cannot_overflow() {
    // 1024 slots: an order may hold at most u64::MAX / 1024, even with no configured maximum.
    let mut e = engine();
    let cap = qty_ceiling(1024);
    assert_eq!(cap, u64::MAX / 1024);
    assert_eq!(
        rejected(&new(&mut e, limit(1, Side::Buy, 1, cap + 1))),
        RejectReason::QuantityOverMax
    );
    for id in 2..6 {
        assert!(matches!(
            new(&mut e, limit(id, Side::Buy, 1, cap))[0].kind,
            EventKind::Accepted(_)
        ));
    }
    assert_eq!(e.best_bid(0).unwrap().qty, cap * 4);
    let t = trades(&new(&mut e, market(9, Side::Sell, cap)));
    assert_eq!(t[0].qty, cap);
}

// ---------------------------------------------------------------- matching

#[test]
fn price_time_priority_and_trades_at_resting_price() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 101, 10));
    new(&mut e, limit(2, Side::Sell, 100, 10)); // better price, later
    new(&mut e, limit(3, Side::Sell, 100, 10)); // same price, later still
    let evs = new(&mut e, limit(4, Side::Buy, 105, 25));
    let t = trades(&evs);
    assert_eq!(
        t.iter()
            .map(|t| (t.maker.order_id, t.price, t.qty))
            .collect::<Vec<_>>(),
        vec![(2, 100, 10), (3, 100, 10), (1, 101, 5)]
    );
    // Both sides' leaves and cumulative quantity.
    assert_eq!(
        (
            t[0].maker.leaves,
            t[0].maker.cum_qty,
            t[0].taker.leaves,
            t[0].taker.cum_qty
        ),
        (0, 10, 15, 10)
    );
    assert_eq!(
        (
            t[2].maker.leaves,
            t[2].maker.cum_qty,
            t[2].taker.leaves,
            t[2].taker.cum_qty
        ),
        (5, 5, 0, 25)
    );
    assert!(t
        .iter()
        .all(|t| t.aggressor_side == Side::Buy && t.taker.order_id == 4));
    assert_eq!(e.order(1).map(|o| (o.leaves, o.filled)), Some((5, 5)));
    assert_eq!(e.order(4), None, "a filled order does not rest");
    assert_eq!(
        e.best_ask(0),
        Some(LevelInfo {
            price: 101,
            qty: 5,
            count: 1
        })
    );
}

#[test]
fn partial_fill_of_the_taker_rests_the_remainder() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 100, 10));
    let evs = new(&mut e, limit(2, Side::Sell, 99, 25));
    assert_eq!(trades(&evs)[0].price, 100);
    assert_eq!(
        e.order(2).map(|o| (o.price, o.leaves, o.filled)),
        Some((99, 15, 10))
    );
    assert_eq!(
        e.best_ask(0),
        Some(LevelInfo {
            price: 99,
            qty: 15,
            count: 1
        })
    );
    assert_eq!(e.best_bid(0), None);
}

#[test]
fn event_order_for_a_sweeping_order() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 5));
    new(&mut e, limit(2, Side::Sell, 101, 5));
    new(&mut e, limit(3, Side::Sell, 101, 5));
    let evs = new(&mut e, limit(4, Side::Buy, 101, 12));
    let seq = evs[0].seq;
    assert!(
        evs.iter().all(|ev| ev.seq == seq),
        "every event carries the command's seq"
    );
    let shape: Vec<&str> = evs
        .iter()
        .map(|ev| match ev.kind {
            EventKind::Accepted(_) => "acc",
            EventKind::Trade(_) => "trade",
            EventKind::BookChange(b) => match b.action {
                BookAction::Add => "add",
                BookAction::Update => "upd",
                BookAction::Delete => "del",
            },
            _ => "other",
        })
        .collect();
    assert_eq!(shape, vec!["acc", "trade", "del", "trade", "trade", "upd"]);
    let bc = book_changes(&evs);
    assert_eq!(
        (bc[1].price, bc[1].qty, bc[1].count, bc[1].side),
        (101, 3, 1, Side::Sell)
    );
    // The remainder of a resting order: Add when its level is new, Update otherwise.
    let evs = new(&mut e, limit(5, Side::Buy, 99, 1));
    assert_eq!(book_changes(&evs)[0].action, BookAction::Add);
    let evs = new(&mut e, limit(6, Side::Buy, 99, 2));
    assert_eq!(
        book_changes(&evs)[0],
        BookChange {
            instrument: 0,
            side: Side::Buy,
            action: BookAction::Update,
            price: 99,
            qty: 3,
            count: 2
        }
    );
}

#[test]
fn sequence_numbers_increase_by_one_per_command_even_for_rejects() {
    let mut e = engine();
    let mut out = Vec::new();
    assert_eq!(
        e.process(&Command::New(limit(1, Side::Buy, 100, 1)), &mut out),
        1
    );
    assert_eq!(
        e.process(&Command::New(limit(1, Side::Buy, 100, 1)), &mut out),
        2
    );
    assert_eq!(
        e.process(
            &Command::Cancel(Cancel {
                order_id: 9,
                session: 1
            }),
            &mut out
        ),
        3
    );
    assert_eq!(e.seq(), 3);
    assert_eq!(
        out.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 1, 2, 3]
    );
}

#[test]
fn exec_ids_are_deterministic_and_carry_the_instrument() {
    let mut c = plain_config();
    c.instruments = vec![InstrumentConfig::plain(5, "FIVE")];
    let mut e = Engine::new(c).unwrap();
    new(
        &mut e,
        NewOrder {
            instrument: 5,
            ..limit(1, Side::Sell, 100, 2)
        },
    );
    let t1 = trades(&new(
        &mut e,
        NewOrder {
            instrument: 5,
            ..limit(2, Side::Buy, 100, 1)
        },
    ));
    let t2 = trades(&new(
        &mut e,
        NewOrder {
            instrument: 5,
            ..limit(3, Side::Buy, 100, 1)
        },
    ));
    assert_eq!(t1[0].exec_id, (5 << EXEC_COUNTER_BITS) | 1);
    assert_eq!(t2[0].exec_id, (5 << EXEC_COUNTER_BITS) | 2);
}

// ---------------------------------------------------------------- order types and time in force

#[test]
fn market_orders_never_rest() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 5));
    new(&mut e, limit(2, Side::Sell, 150, 5));
    let evs = new(
        &mut e,
        NewOrder {
            tif: TimeInForce::Day,
            ..market(3, Side::Buy, 20)
        },
    );
    assert_eq!(
        trades(&evs).iter().map(|t| t.price).collect::<Vec<_>>(),
        vec![100, 150]
    );
    let c = cancels(&evs);
    assert_eq!(
        (c[0].order_id, c[0].reason, c[0].cancelled_qty, c[0].cum_qty),
        (3, CancelReason::Unfilled, 10, 10)
    );
    assert_eq!(e.order(3), None);
    assert_eq!(e.resting_orders(0, Side::Buy), 0);
}

#[test]
fn market_order_against_an_empty_book_is_accepted_then_cancelled() {
    let mut e = engine();
    let evs = new(&mut e, market(1, Side::Sell, 7));
    assert!(
        matches!(evs[0].kind, EventKind::Accepted(a) if a.price == 0 && a.ord_type == OrdType::Market)
    );
    let c = cancels(&evs);
    assert_eq!(evs.len(), 2);
    assert_eq!(
        (c[0].reason, c[0].cancelled_qty, c[0].cum_qty),
        (CancelReason::Unfilled, 7, 0)
    );
}

#[test]
fn ioc_remainder_is_cancelled() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 100, 4));
    let evs = new(
        &mut e,
        NewOrder {
            tif: TimeInForce::Ioc,
            ..limit(2, Side::Sell, 100, 10)
        },
    );
    assert_eq!(trades(&evs)[0].qty, 4);
    let c = cancels(&evs);
    assert_eq!(
        (c[0].reason, c[0].cancelled_qty, c[0].cum_qty),
        (CancelReason::Unfilled, 6, 4)
    );
    assert!(
        matches!(evs.last().unwrap().kind, EventKind::Cancelled(_)),
        "remainder's fate comes last"
    );
    assert_eq!(e.resting_orders(0, Side::Sell), 0);
}

#[test]
fn fok_fills_in_full_or_is_cancelled_without_touching_the_book() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 5));
    new(&mut e, limit(2, Side::Sell, 101, 5));
    new(&mut e, limit(3, Side::Sell, 103, 50));
    let before = e.dump_book(0).unwrap();
    let fok = |id, price, qty| NewOrder {
        tif: TimeInForce::Fok,
        ..limit(id, Side::Buy, price, qty)
    };
    let evs = new(&mut e, fok(4, 102, 11));
    assert_eq!(evs.len(), 2);
    assert!(matches!(evs[0].kind, EventKind::Accepted(_)));
    assert_eq!(cancels(&evs)[0].reason, CancelReason::FokUnfillable);
    assert_eq!(
        e.dump_book(0).unwrap(),
        before,
        "an unfillable FOK leaves the book untouched"
    );
    let evs = new(&mut e, fok(5, 102, 10));
    assert_eq!(trades(&evs).iter().map(|t| t.qty).sum::<u64>(), 10);
    assert!(cancels(&evs).is_empty());
    assert_eq!(e.best_ask(0).unwrap().price, 103);
    // A market FOK is bounded only by liquidity.
    assert_eq!(
        cancels(&new(
            &mut e,
            NewOrder {
                ord_type: OrdType::Market,
                price: 0,
                ..fok(6, 0, 51)
            }
        ))[0]
            .reason,
        CancelReason::FokUnfillable
    );
}

#[test]
fn day_and_gtc_orders_rest_and_day_orders_expire() {
    let mut e = engine();
    new(
        &mut e,
        NewOrder {
            tif: TimeInForce::Day,
            ..limit(1, Side::Buy, 100, 1)
        },
    );
    new(&mut e, limit(2, Side::Buy, 100, 1));
    new(
        &mut e,
        NewOrder {
            tif: TimeInForce::Day,
            ..limit(3, Side::Sell, 105, 1)
        },
    );
    let evs = run(
        &mut e,
        Command::ExpireDayOrders(ExpireDayOrders { instrument: None }),
    );
    let c = cancels(&evs);
    assert_eq!(
        c.iter().map(|c| (c.order_id, c.reason)).collect::<Vec<_>>(),
        vec![(1, CancelReason::DayExpired), (3, CancelReason::DayExpired)]
    );
    assert!(
        matches!(evs.last().unwrap().kind, EventKind::MassCancelDone(d) if d.count == 2 && d.reason == CancelReason::DayExpired)
    );
    assert_eq!(e.order(2).map(|o| o.tif), Some(TimeInForce::Gtc));
    assert_eq!(e.resting_orders(0, Side::Sell), 0);
}

#[test]
fn post_only_is_rejected_when_it_would_take() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 5));
    let po = |id, price| NewOrder {
        post_only: true,
        ..limit(id, Side::Buy, price, 1)
    };
    assert_eq!(
        rejected(&new(&mut e, po(2, 100))),
        RejectReason::PostOnlyWouldTake
    );
    assert_eq!(
        rejected(&new(&mut e, po(3, 101))),
        RejectReason::PostOnlyWouldTake
    );
    let evs = new(&mut e, po(4, 99));
    assert!(matches!(evs[0].kind, EventKind::Accepted(a) if a.post_only));
    assert_eq!(e.order(4).unwrap().leaves, 1);
    assert_eq!(
        e.order(1).unwrap().leaves,
        5,
        "the resting order was not touched"
    );
}

// ---------------------------------------------------------------- cancel

#[test]
fn cancel_by_id_and_its_rejections() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 100, 5));
    new(&mut e, limit(2, Side::Buy, 100, 7));
    assert_eq!(
        cancel_rejected(&run(
            &mut e,
            Command::Cancel(Cancel {
                order_id: 1,
                session: 2
            })
        )),
        RejectReason::NotOrderOwner
    );
    let evs = run(
        &mut e,
        Command::Cancel(Cancel {
            order_id: 1,
            session: 1,
        }),
    );
    let c = cancels(&evs);
    assert_eq!(
        (c[0].order_id, c[0].reason, c[0].cancelled_qty),
        (1, CancelReason::User, 5)
    );
    assert_eq!(
        book_changes(&evs)[0],
        BookChange {
            instrument: 0,
            side: Side::Buy,
            action: BookAction::Update,
            price: 100,
            qty: 7,
            count: 1
        }
    );
    assert_eq!(
        cancel_rejected(&run(
            &mut e,
            Command::Cancel(Cancel {
                order_id: 1,
                session: 1
            })
        )),
        RejectReason::UnknownOrder
    );
    let evs = run(
        &mut e,
        Command::Cancel(Cancel {
            order_id: 2,
            session: 1,
        }),
    );
    assert_eq!(book_changes(&evs)[0].action, BookAction::Delete);
    assert_eq!(e.best_bid(0), None);
    match run(
        &mut e,
        Command::Cancel(Cancel {
            order_id: 77,
            session: 1,
        }),
    )[0]
    .kind
    {
        EventKind::CancelRejected(r) => assert_eq!(
            (r.kind, r.reason, r.order_id),
            (CancelKind::Cancel, RejectReason::UnknownOrder, 77)
        ),
        k => panic!("{k:?}"),
    }
}

#[test]
fn cancel_of_a_filled_order_is_a_cancel_reject() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 100, 5));
    new(&mut e, limit(2, Side::Sell, 100, 5));
    assert_eq!(
        cancel_rejected(&run(
            &mut e,
            Command::Cancel(Cancel {
                order_id: 1,
                session: 1
            })
        )),
        RejectReason::UnknownOrder
    );
}

#[test]
fn cancel_in_the_middle_of_a_deep_queue_keeps_the_fifo() {
    let mut e = engine();
    for id in 1..=100 {
        new(&mut e, limit(id, Side::Sell, 100, 1));
    }
    for id in (2..=100).step_by(2) {
        run(
            &mut e,
            Command::Cancel(Cancel {
                order_id: id,
                session: 1,
            }),
        );
    }
    e.check_invariants().unwrap();
    let t = trades(&new(&mut e, limit(500, Side::Buy, 100, 50)));
    assert_eq!(
        t.iter().map(|t| t.maker.order_id).collect::<Vec<_>>(),
        (1..=100).step_by(2).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------- replace

fn replace(order_id: OrderId, price: Option<Price>, qty: Qty) -> Command {
    Command::Replace(Replace {
        order_id,
        session: 1,
        price,
        qty,
    })
}

#[test]
fn quantity_down_at_the_same_price_keeps_priority() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 10));
    new(&mut e, limit(2, Side::Sell, 100, 10));
    let evs = run(&mut e, replace(1, None, 4));
    match evs[0].kind {
        EventKind::Replaced(r) => assert_eq!(
            (r.priority_kept, r.price, r.qty, r.leaves, r.cum_qty),
            (true, 100, 4, 4, 0)
        ),
        k => panic!("{k:?}"),
    }
    assert_eq!(book_changes(&evs)[0].qty, 14);
    let t = trades(&new(&mut e, limit(3, Side::Buy, 100, 5)));
    assert_eq!(
        t.iter()
            .map(|t| (t.maker.order_id, t.qty))
            .collect::<Vec<_>>(),
        vec![(1, 4), (2, 1)]
    );
}

#[test]
fn quantity_up_loses_priority() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 10));
    new(&mut e, limit(2, Side::Sell, 100, 10));
    let evs = run(&mut e, replace(1, Some(100), 12));
    assert!(matches!(evs[0].kind, EventKind::Replaced(r) if !r.priority_kept && r.leaves == 12));
    assert_eq!(book_changes(&evs)[0].qty, 22);
    let t = trades(&new(&mut e, limit(3, Side::Buy, 100, 11)));
    assert_eq!(
        t.iter()
            .map(|t| (t.maker.order_id, t.qty))
            .collect::<Vec<_>>(),
        vec![(2, 10), (1, 1)]
    );
    e.check_invariants().unwrap();
}

#[test]
fn price_change_loses_priority_and_may_trade() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 99, 10));
    new(&mut e, limit(2, Side::Buy, 100, 10));
    new(&mut e, limit(3, Side::Sell, 102, 6));
    // Move 1 to 100: it queues behind 2.
    run(&mut e, replace(1, Some(100), 10));
    assert_eq!(
        e.best_bid(0),
        Some(LevelInfo {
            price: 100,
            qty: 20,
            count: 2
        })
    );
    assert_eq!(e.depth_at(0, Side::Buy, 99), None);
    // Move 3 down through the bids: it trades as an aggressor at the bids' price.
    let evs = run(&mut e, replace(3, Some(100), 6));
    assert!(matches!(evs[0].kind, EventKind::Replaced(r) if !r.priority_kept));
    let t = trades(&evs);
    assert_eq!(
        (
            t[0].maker.order_id,
            t[0].price,
            t[0].qty,
            t[0].taker.order_id,
            t[0].aggressor_side
        ),
        (2, 100, 6, 3, Side::Sell)
    );
    assert_eq!(e.order(3), None);
    assert_eq!(e.best_ask(0), None);
    e.check_invariants().unwrap();
}

#[test]
fn replace_keeps_filled_quantity_in_the_total() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 10));
    new(&mut e, limit(2, Side::Buy, 100, 4));
    // New total 8 with 4 filled: 4 leaves.
    let evs = run(&mut e, replace(1, None, 8));
    assert!(
        matches!(evs[0].kind, EventKind::Replaced(r) if r.qty == 8 && r.leaves == 4 && r.cum_qty == 4 && r.priority_kept)
    );
    assert_eq!(e.order(1).map(|o| (o.leaves, o.filled)), Some((4, 4)));
}

#[test]
fn replace_at_or_below_filled_cancels_the_rest() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 100, 10));
    new(&mut e, limit(2, Side::Buy, 100, 4));
    let evs = run(&mut e, replace(1, None, 4));
    let c = cancels(&evs);
    assert_eq!(
        (c[0].reason, c[0].cancelled_qty, c[0].cum_qty),
        (CancelReason::ReplacedBelowFilled, 6, 4)
    );
    assert_eq!(book_changes(&evs)[0].action, BookAction::Delete);
    assert_eq!(e.order(1), None);
}

#[test]
fn replace_is_validated_like_a_new_order() {
    let mut e = Engine::new(risky_config()).unwrap();
    new(&mut e, limit(1, Side::Buy, 5_000, 100));
    new(&mut e, limit(2, Side::Sell, 7_000, 100));
    let cases = [
        (replace(1, None, 0), RejectReason::ZeroQuantity),
        (replace(1, None, 55), RejectReason::OffLot),
        (replace(1, None, 2_000), RejectReason::QuantityOverMax),
        (replace(1, Some(5_010), 100), RejectReason::OffTick),
        (replace(1, Some(-100), 100), RejectReason::InvalidPrice),
        (replace(1, Some(200), 100), RejectReason::OutsidePriceBand),
        (
            replace(1, Some(6_000), 1_000),
            RejectReason::NotionalOverMax,
        ),
        (replace(9, None, 10), RejectReason::UnknownOrder),
        (
            Command::Replace(Replace {
                order_id: 1,
                session: 5,
                price: None,
                qty: 10,
            }),
            RejectReason::NotOrderOwner,
        ),
    ];
    for (cmd, want) in cases {
        let evs = run(&mut e, cmd);
        assert_eq!(cancel_rejected(&evs), want, "{cmd:?}");
        assert!(
            matches!(evs[0].kind, EventKind::CancelRejected(r) if r.kind == CancelKind::Replace)
        );
    }
    assert_eq!(e.order(1).map(|o| (o.price, o.leaves)), Some((5_000, 100)));
}

#[test]
fn post_only_replace_that_would_cross_is_rejected() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Sell, 105, 5));
    new(
        &mut e,
        NewOrder {
            post_only: true,
            ..limit(2, Side::Buy, 100, 5)
        },
    );
    assert_eq!(
        cancel_rejected(&run(&mut e, replace(2, Some(105), 5))),
        RejectReason::PostOnlyWouldTake
    );
    assert!(matches!(
        run(&mut e, replace(2, Some(104), 5))[0].kind,
        EventKind::Replaced(_)
    ));
    assert_eq!(e.order(2).unwrap().price, 104);
}

// ---------------------------------------------------------------- mass cancel

fn owned(
    id: OrderId,
    side: Side,
    price: Price,
    session: SessionId,
    owner: OwnerId,
    instrument: InstrumentId,
) -> NewOrder {
    NewOrder {
        session,
        owner,
        instrument,
        ..limit(id, side, price, 1)
    }
}

fn two_instrument_engine() -> Engine {
    let mut c = plain_config();
    c.instruments.push(InstrumentConfig::plain(1, "OTHER"));
    let mut e = Engine::new(c).unwrap();
    new(&mut e, owned(1, Side::Buy, 100, 1, 10, 0));
    new(&mut e, owned(2, Side::Buy, 101, 2, 10, 0));
    new(&mut e, owned(3, Side::Sell, 110, 1, 20, 0));
    new(&mut e, owned(4, Side::Buy, 100, 3, 10, 1));
    new(&mut e, owned(5, Side::Sell, 111, 1, 10, 0));
    e
}

fn mass(
    session: SessionId,
    owner: OwnerId,
    instrument: Option<InstrumentId>,
    scope: MassCancelScope,
    reason: CancelReason,
) -> Command {
    Command::MassCancel(MassCancel {
        session,
        owner,
        instrument,
        scope,
        side: None,
        reason,
    })
}

#[test]
fn mass_cancel_by_owner_across_instruments() {
    let mut e = two_instrument_engine();
    let evs = run(
        &mut e,
        mass(
            9,
            10,
            None,
            MassCancelScope::ByOwner,
            CancelReason::MassCancel,
        ),
    );
    let mut ids: Vec<OrderId> = cancels(&evs).iter().map(|c| c.order_id).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 4, 5]);
    // All Cancelled first, then one change per level in book order: instrument 0 bids (101,
    // then 100), instrument 0 asks (111), instrument 1 bids (100); then the completion.
    let n = cancels(&evs).len();
    assert!(evs[..n]
        .iter()
        .all(|e| matches!(e.kind, EventKind::Cancelled(_))));
    let bc: Vec<(InstrumentId, Side, Price)> = book_changes(&evs)
        .iter()
        .map(|b| (b.instrument, b.side, b.price))
        .collect();
    assert_eq!(
        bc,
        vec![
            (0, Side::Buy, 101),
            (0, Side::Buy, 100),
            (0, Side::Sell, 111),
            (1, Side::Buy, 100)
        ]
    );
    assert!(cancels(&evs)
        .iter()
        .all(|c| c.reason == CancelReason::MassCancel));
    match evs.last().unwrap().kind {
        EventKind::MassCancelDone(d) => assert_eq!((d.count, d.session, d.rejected), (4, 9, None)),
        k => panic!("{k:?}"),
    }
    assert_eq!(e.order(3).map(|o| o.owner), Some(20));
    e.check_invariants().unwrap();
}

#[test]
fn mass_cancel_by_owner_and_symbol() {
    let mut e = two_instrument_engine();
    let evs = run(
        &mut e,
        mass(
            9,
            10,
            Some(1),
            MassCancelScope::ByOwner,
            CancelReason::MassCancel,
        ),
    );
    assert_eq!(
        cancels(&evs).iter().map(|c| c.order_id).collect::<Vec<_>>(),
        vec![4]
    );
    assert!(e.order(1).is_some() && e.order(2).is_some() && e.order(5).is_some());
    let evs = run(
        &mut e,
        mass(
            9,
            10,
            Some(42),
            MassCancelScope::ByOwner,
            CancelReason::MassCancel,
        ),
    );
    assert!(
        matches!(evs[..], [Event { kind: EventKind::MassCancelDone(d), .. }] if d.rejected == Some(RejectReason::UnknownInstrument) && d.count == 0)
    );
}

#[test]
fn cancel_on_disconnect_cancels_the_sessions_orders() {
    let mut e = two_instrument_engine();
    let evs = run(
        &mut e,
        mass(
            1,
            0,
            None,
            MassCancelScope::BySession,
            CancelReason::Disconnect,
        ),
    );
    assert_eq!(
        cancels(&evs)
            .iter()
            .map(|c| (c.order_id, c.reason))
            .collect::<Vec<_>>(),
        vec![
            (1, CancelReason::Disconnect),
            (3, CancelReason::Disconnect),
            (5, CancelReason::Disconnect)
        ]
    );
    assert!(matches!(evs.last().unwrap().kind, EventKind::MassCancelDone(d) if d.count == 3));
    // Level deletions are reported for market data.
    assert_eq!(
        book_changes(&evs)
            .iter()
            .filter(|b| b.action == BookAction::Delete)
            .count(),
        3
    );
    assert_eq!(e.resting_orders(0, Side::Sell), 0);
    assert_eq!(e.resting_orders(0, Side::Buy), 1);
    e.check_invariants().unwrap();
}

// ---------------------------------------------------------------- self-trade prevention

fn stp_book() -> Engine {
    let mut e = engine();
    new(
        &mut e,
        NewOrder {
            owner: 7,
            ..limit(1, Side::Sell, 100, 5)
        },
    );
    new(
        &mut e,
        NewOrder {
            owner: 8,
            ..limit(2, Side::Sell, 100, 5)
        },
    );
    e
}

fn aggressor(stp: StpMode) -> NewOrder {
    NewOrder {
        owner: 7,
        stp,
        ..limit(3, Side::Buy, 100, 8)
    }
}

#[test]
fn stp_cancel_resting() {
    let mut e = stp_book();
    let evs = new(&mut e, aggressor(StpMode::CancelResting));
    let c = cancels(&evs);
    assert_eq!(
        (c[0].order_id, c[0].reason, c[0].cancelled_qty),
        (1, CancelReason::SelfTrade, 5)
    );
    assert_eq!(
        trades(&evs)
            .iter()
            .map(|t| (t.maker.order_id, t.qty))
            .collect::<Vec<_>>(),
        vec![(2, 5)]
    );
    assert_eq!(
        e.order(3).map(|o| o.leaves),
        Some(3),
        "the aggressor keeps going and rests"
    );
}

#[test]
fn stp_cancel_aggressing() {
    let mut e = stp_book();
    let evs = new(&mut e, aggressor(StpMode::CancelAggressing));
    assert!(trades(&evs).is_empty());
    let c = cancels(&evs);
    assert_eq!(
        c.iter()
            .map(|c| (c.order_id, c.reason, c.cancelled_qty))
            .collect::<Vec<_>>(),
        vec![(3, CancelReason::SelfTrade, 8)]
    );
    assert_eq!(e.order(1).map(|o| o.leaves), Some(5));
    assert!(book_changes(&evs).is_empty(), "nothing on the book changed");
}

#[test]
fn stp_cancel_both() {
    let mut e = stp_book();
    let evs = new(&mut e, aggressor(StpMode::CancelBoth));
    assert!(trades(&evs).is_empty());
    assert_eq!(
        cancels(&evs).iter().map(|c| c.order_id).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(e.order(1), None);
    assert_eq!(
        e.best_ask(0),
        Some(LevelInfo {
            price: 100,
            qty: 5,
            count: 1
        })
    );
}

#[test]
fn stp_stops_only_at_the_same_owner() {
    let mut e = engine();
    new(
        &mut e,
        NewOrder {
            owner: 8,
            ..limit(1, Side::Sell, 100, 5)
        },
    );
    new(
        &mut e,
        NewOrder {
            owner: 7,
            ..limit(2, Side::Sell, 100, 5)
        },
    );
    let evs = new(&mut e, aggressor(StpMode::CancelAggressing));
    assert_eq!(
        trades(&evs)
            .iter()
            .map(|t| t.maker.order_id)
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        cancels(&evs)
            .iter()
            .map(|c| (c.order_id, c.cancelled_qty, c.cum_qty))
            .collect::<Vec<_>>(),
        vec![(3, 3, 5)]
    );
}

#[test]
fn the_aggressors_mode_decides() {
    let mut e = engine();
    new(
        &mut e,
        NewOrder {
            owner: 7,
            stp: StpMode::CancelBoth,
            ..limit(1, Side::Sell, 100, 5)
        },
    );
    let evs = new(&mut e, aggressor(StpMode::None));
    assert_eq!(
        trades(&evs).len(),
        1,
        "no STP on the aggressor: same-owner orders trade"
    );
}

#[test]
fn fok_respects_stp() {
    let mut e = stp_book();
    // 10 on the book, 5 of them the aggressor's own: under CancelResting only 5 are fillable.
    let fok = NewOrder {
        tif: TimeInForce::Fok,
        qty: 6,
        ..aggressor(StpMode::CancelResting)
    };
    assert_eq!(
        cancels(&new(&mut e, fok))[0].reason,
        CancelReason::FokUnfillable
    );
    let fok = NewOrder {
        order_id: 4,
        tif: TimeInForce::Fok,
        qty: 5,
        ..aggressor(StpMode::CancelResting)
    };
    let evs = new(&mut e, fok);
    assert_eq!(trades(&evs).len(), 1);
    assert_eq!(cancels(&evs)[0].order_id, 1);
}

#[test]
fn stp_applies_to_a_replace_that_trades() {
    let mut e = engine();
    new(
        &mut e,
        NewOrder {
            owner: 7,
            ..limit(1, Side::Sell, 101, 5)
        },
    );
    new(
        &mut e,
        NewOrder {
            owner: 7,
            stp: StpMode::CancelAggressing,
            ..limit(2, Side::Buy, 99, 5)
        },
    );
    let evs = run(&mut e, replace(2, Some(101), 5));
    assert_eq!(
        cancels(&evs)
            .iter()
            .map(|c| (c.order_id, c.reason))
            .collect::<Vec<_>>(),
        vec![(2, CancelReason::SelfTrade)]
    );
    assert_eq!(e.order(2), None);
    e.check_invariants().unwrap();
}

// ---------------------------------------------------------------- capacity

#[test]
fn full_arena_rejects_cleanly_and_recovers() {
    let mut c = plain_config();
    c.capacity = Capacity {
        max_orders: 4,
        max_levels_per_side: 64,
    };
    let mut e = Engine::new(c).unwrap();
    for id in 1..=4 {
        new(&mut e, limit(id, Side::Buy, 100 - id as i64, 1));
    }
    assert_eq!(
        rejected(&new(&mut e, limit(5, Side::Buy, 90, 1))),
        RejectReason::OrderCapacityExhausted
    );
    // Orders that never rest need no slot.
    assert_eq!(
        trades(&new(
            &mut e,
            NewOrder {
                tif: TimeInForce::Ioc,
                ..limit(6, Side::Sell, 99, 1)
            }
        ))
        .len(),
        1
    );
    // The IOC freed a slot.
    assert!(matches!(
        new(&mut e, limit(7, Side::Buy, 90, 1))[0].kind,
        EventKind::Accepted(_)
    ));
    assert_eq!(
        e.usage(),
        Usage {
            orders: 4,
            max_orders: 4
        }
    );
    e.check_invariants().unwrap();
}

#[test]
fn full_level_table_rejects_new_prices_only() {
    let mut c = plain_config();
    c.capacity = Capacity {
        max_orders: 64,
        max_levels_per_side: 2,
    };
    let mut e = Engine::new(c).unwrap();
    new(&mut e, limit(1, Side::Buy, 100, 1));
    new(&mut e, limit(2, Side::Buy, 99, 1));
    assert_eq!(
        rejected(&new(&mut e, limit(3, Side::Buy, 98, 1))),
        RejectReason::LevelCapacityExhausted
    );
    assert!(matches!(
        new(&mut e, limit(4, Side::Buy, 99, 1))[0].kind,
        EventKind::Accepted(_)
    ));
    assert_eq!(
        cancel_rejected(&run(&mut e, replace(4, Some(97), 1))),
        RejectReason::LevelCapacityExhausted
    );
    // The other side has its own levels.
    assert!(matches!(
        new(&mut e, limit(5, Side::Sell, 101, 1))[0].kind,
        EventKind::Accepted(_)
    ));
}

// ---------------------------------------------------------------- queries

#[test]
fn queries_report_the_book() {
    let mut e = engine();
    new(&mut e, limit(1, Side::Buy, 100, 3));
    new(
        &mut e,
        NewOrder {
            session: 4,
            owner: 9,
            ..limit(2, Side::Buy, 100, 4)
        },
    );
    new(&mut e, limit(3, Side::Buy, 98, 5));
    new(&mut e, limit(4, Side::Sell, 103, 6));
    assert_eq!(
        e.best_bid(0),
        Some(LevelInfo {
            price: 100,
            qty: 7,
            count: 2
        })
    );
    assert_eq!(
        e.best_ask(0),
        Some(LevelInfo {
            price: 103,
            qty: 6,
            count: 1
        })
    );
    assert_eq!(e.depth_at(0, Side::Buy, 98).map(|l| l.qty), Some(5));
    assert_eq!(e.depth_at(0, Side::Buy, 99), None);
    assert_eq!(e.resting_orders(0, Side::Buy), 3);
    assert_eq!(e.level_count(0, Side::Buy), 2);
    let o = e.order(2).unwrap();
    assert_eq!(
        (o.session, o.owner, o.price, o.leaves, o.filled),
        (4, 9, 100, 4, 0)
    );
    let d = e.dump_book(0).unwrap();
    assert_eq!(
        d.bids.iter().map(|l| l.info.price).collect::<Vec<_>>(),
        vec![100, 98]
    );
    assert_eq!(
        d.bids[0]
            .orders
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(e.dump_book(5), None);
    assert_eq!(e.best_bid(5), None);
}

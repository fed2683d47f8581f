//! The gateway over the binary protocol, driven without sockets: every order path a client
//! sees, from login to replay after a reconnect.

mod support;

use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use appliance::gateway::conn::ConnState;
use support::{enter, Rig};

const PX: i64 = 1_000_000; // 100.00 with 4 implied decimals

fn kinds(v: &[(u32, ServerMessage)]) -> Vec<char> {
    v.iter()
        .map(|(_, m)| {
            let mut b = [0u8; 256];
            let n = m.encode(0, &mut b).unwrap();
            b[..n][2] as char
        })
        .collect()
}

#[test]
fn login_is_checked_and_answered() {
    let mut rig = Rig::new();
    let (c1, out) = rig.bin_login("CLIENT1", 0);
    assert_eq!(
        out,
        vec![(
            0,
            ServerMessage::LoginAccepted(wire::LoginAccepted {
                next_client_seq: 1,
                next_server_seq: 1,
                heartbeat_ms: 1000,
            })
        )]
    );
    assert_eq!(rig.gw.state(c1), ConnState::Open);

    let (bad, out) = rig.bin_login("NOBODY", 0);
    assert_eq!(
        out,
        vec![(
            0,
            ServerMessage::LoginRejected(wire::LoginRejected { reason: 1 })
        )]
    );
    assert_eq!(rig.gw.state(bad), ConnState::Closing);

    let (dup, out) = rig.bin_login("CLIENT1", 0);
    assert_eq!(
        out,
        vec![(
            0,
            ServerMessage::LoginRejected(wire::LoginRejected { reason: 2 })
        )]
    );
    assert_eq!(rig.gw.state(dup), ConnState::Closing);
    assert_eq!(
        rig.gw.state(c1),
        ConnState::Open,
        "the first login is untouched"
    );

    // Anything before a login is refused.
    let c = rig.connect(appliance::vocab::Protocol::Binary);
    rig.bin_send(c, enter(1, "ACME", b'B', PX, 1, b'0'), 1);
    assert_eq!(
        rig.bin_take(c),
        vec![(
            0,
            ServerMessage::LoginRejected(wire::LoginRejected { reason: 3 })
        )]
    );
}

#[test]
fn crossing_orders_fill_both_sides_at_the_resting_price() {
    let mut rig = Rig::new();
    let (buyer, _) = rig.bin_login("CLIENT1", 0);
    let (seller, _) = rig.bin_login("CLIENT2", 0);
    rig.bin_send(buyer, enter(11, "ACME", b'B', PX, 100, b'0'), 1);
    let b1 = rig.bin_take(buyer);
    let ServerMessage::Accepted(acc) = b1[0].1 else {
        panic!("{b1:?}")
    };
    assert_eq!((b1[0].0, acc.token, acc.qty, acc.price), (1, 11, 100, PX));

    // The seller's limit is below the bid: it trades at the bid (the resting price).
    rig.bin_send(seller, enter(21, "ACME", b'S', PX - 200, 40, b'0'), 1);
    let s = rig.bin_take(seller);
    assert_eq!(kinds(&s), vec!['a', 'e']);
    let ServerMessage::Executed(se) = s[1].1 else {
        panic!()
    };
    assert_eq!(
        (
            se.token,
            se.price,
            se.qty,
            se.leaves,
            se.cum_qty,
            se.liquidity
        ),
        (21, PX, 40, 0, 40, b'R')
    );
    let b = rig.bin_take(buyer);
    let ServerMessage::Executed(be) = b[0].1 else {
        panic!("{b:?}")
    };
    assert_eq!(
        (
            be.token,
            be.price,
            be.qty,
            be.leaves,
            be.cum_qty,
            be.liquidity
        ),
        (11, PX, 40, 60, 40, b'A')
    );
    assert_eq!(
        be.exec_id, se.exec_id,
        "both sides carry the same execution id"
    );
    assert_eq!(b[0].0, 2, "the buyer's replies are numbered 1, 2, ...");
}

#[test]
fn cancel_replace_and_their_refusals() {
    let mut rig = Rig::new();
    let (c, _) = rig.bin_login("CLIENT1", 0);
    rig.bin_send(c, enter(1, "ACME", b'B', PX, 100, b'1'), 1);
    rig.bin_take(c);
    // Quantity down at the same price keeps priority.
    rig.bin_send(
        c,
        ClientMessage::ReplaceOrder(wire::ReplaceOrder {
            orig_token: 1,
            new_token: 2,
            price: PX,
            qty: 60,
        }),
        2,
    );
    let r = rig.bin_take(c);
    let ServerMessage::Replaced(rep) = r[0].1 else {
        panic!("{r:?}")
    };
    assert_eq!(
        (
            rep.orig_token,
            rep.new_token,
            rep.qty,
            rep.leaves,
            rep.priority_kept
        ),
        (1, 2, 60, 60, 1)
    );
    // A price change loses it.
    rig.bin_send(
        c,
        ClientMessage::ReplaceOrder(wire::ReplaceOrder {
            orig_token: 2,
            new_token: 3,
            price: PX - 100,
            qty: 60,
        }),
        3,
    );
    let ServerMessage::Replaced(rep) = rig.bin_take(c)[0].1 else {
        panic!()
    };
    assert_eq!(
        (rep.new_token, rep.price, rep.priority_kept),
        (3, PX - 100, 0)
    );
    // The old tokens no longer name a live order to the client... but the order is live
    // under its new token: cancel it.
    rig.bin_send(
        c,
        ClientMessage::CancelOrder(wire::CancelOrder { token: 3 }),
        4,
    );
    let ServerMessage::Cancelled(x) = rig.bin_take(c)[0].1 else {
        panic!()
    };
    assert_eq!((x.token, x.cancelled_qty, x.reason), (3, 60, 1));
    // Cancelling it again is too late; a token never used is unknown.
    rig.bin_send(
        c,
        ClientMessage::CancelOrder(wire::CancelOrder { token: 3 }),
        5,
    );
    rig.bin_send(
        c,
        ClientMessage::CancelOrder(wire::CancelOrder { token: 99 }),
        6,
    );
    let out = rig.bin_take(c);
    let reasons: Vec<u16> = out
        .iter()
        .map(|(_, m)| match m {
            ServerMessage::CancelRejected(r) => r.reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons, vec![109, 108]);
}

#[test]
fn gateway_and_engine_rejects_carry_distinct_codes() {
    let mut rig = Rig::new();
    let (c, _) = rig.bin_login("CLIENT1", 0);
    let orders = [
        (enter(1, "NOPE", b'B', PX, 1, b'0'), 100), // unknown symbol
        (enter(2, "ACME", b'X', PX, 1, b'0'), 102), // bad side
        (enter(3, "ACME", b'B', PX + 50, 1, b'0'), 5), // off tick (engine)
        (enter(4, "ACME", b'B', PX * 2, 1, b'0'), 6), // outside the 10% band (engine)
        (enter(5, "ACME", b'B', PX, 0, b'0'), 2),   // zero quantity (engine)
        (enter(6, "ACME", b'B', PX, 1, b'9'), 104), // bad time in force
        (enter(7, "ACME", b'B', PX, 1, b'0'), 0),   // fine
        (enter(7, "ACME", b'B', PX, 1, b'0'), 101), // duplicate token
    ];
    for (seq, (m, _)) in orders.iter().enumerate() {
        rig.bin_send(c, *m, seq as u32 + 1);
    }
    let out = rig.bin_take(c);
    let got: Vec<u16> = out
        .iter()
        .map(|(_, m)| match m {
            ServerMessage::Rejected(r) => r.reason,
            ServerMessage::Accepted(_) => 0,
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<u16> = orders.iter().map(|(_, r)| *r).collect();
    assert_eq!(got, want);
    let seqs: Vec<u32> = out.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<u32>>(),
        "every reply is sequenced, rejects included"
    );
}

#[test]
fn immediate_orders_never_rest() {
    let mut rig = Rig::new();
    let (c, _) = rig.bin_login("CLIENT1", 0);
    rig.bin_send(c, enter(1, "ACME", b'B', 0, 10, b'3'), 1); // market into an empty book
    rig.bin_send(c, enter(2, "ACME", b'B', PX, 10, b'4'), 2); // FOK, nothing to fill it
    let out = rig.bin_take(c);
    assert_eq!(kinds(&out), vec!['a', 'c', 'a', 'c']);
    let reasons: Vec<u8> = out
        .iter()
        .filter_map(|(_, m)| match m {
            ServerMessage::Cancelled(x) => Some(x.reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec![2, 3]);
}

#[test]
fn mass_cancel_reports_the_count() {
    let mut rig = Rig::new();
    let (c, _) = rig.bin_login("CLIENT1", 0);
    for (i, sym) in ["ACME", "BOLT", "ACME"].iter().enumerate() {
        let px = if *sym == "BOLT" { PX / 2 } else { PX };
        rig.bin_send(c, enter(i as u64 + 1, sym, b'B', px, 5, b'1'), i as u32 + 1);
    }
    rig.bin_take(c);
    rig.bin_send(
        c,
        ClientMessage::MassCancel(wire::MassCancel {
            token: 77,
            symbol: wire::symbol("ACME").unwrap(),
        }),
        4,
    );
    let out = rig.bin_take(c);
    assert_eq!(kinds(&out), vec!['c', 'c', 'm']);
    let ServerMessage::MassCancelAck(ack) = out[2].1 else {
        panic!()
    };
    assert_eq!((ack.token, ack.count), (77, 2));
    rig.bin_send(
        c,
        ClientMessage::MassCancel(wire::MassCancel {
            token: 78,
            symbol: [b' '; 8],
        }),
        5,
    );
    let out = rig.bin_take(c);
    let ServerMessage::MassCancelAck(ack) = out.last().unwrap().1 else {
        panic!()
    };
    assert_eq!((ack.token, ack.count), (78, 1), "the BOLT order was left");
}

#[test]
fn disconnect_cancels_and_replay_delivers_what_was_missed() {
    let mut rig = Rig::new();
    let (c, _) = rig.bin_login("CLIENT1", 0);
    rig.bin_send(c, enter(1, "ACME", b'B', PX, 10, b'1'), 1);
    rig.bin_send(c, enter(2, "ACME", b'B', PX, 10, b'1'), 2);
    assert_eq!(rig.bin_take(c).len(), 2);
    rig.gw.on_closed(c);
    rig.pump();
    rig.gw.release(c);
    // Reconnect asking for everything from seq 3: the two cancel-on-disconnect reports.
    let (c2, out) = rig.bin_login("CLIENT1", 3);
    let ServerMessage::LoginAccepted(acc) = out[0].1 else {
        panic!("{out:?}")
    };
    assert_eq!((acc.next_client_seq, acc.next_server_seq), (3, 5));
    let replayed: Vec<(u32, u8)> = out[1..]
        .iter()
        .map(|(s, m)| match m {
            ServerMessage::Cancelled(x) => (*s, x.reason),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(replayed, vec![(3, 6), (4, 6)]);
    // A full replay from 1 gives the same bytes as the first time.
    rig.gw.on_closed(c2);
    rig.gw.release(c2);
    let (_, out) = rig.bin_login("CLIENT1", 1);
    assert_eq!(
        out.iter().skip(1).map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

#[test]
fn sequence_gap_logs_out_and_duplicates_are_ignored() {
    let mut rig = Rig::new();
    let (c, _) = rig.bin_login("CLIENT1", 0);
    rig.bin_send(c, enter(1, "ACME", b'B', PX, 1, b'1'), 1);
    rig.bin_send(c, enter(1, "ACME", b'B', PX, 1, b'1'), 1); // resent: ignored, no reply
    assert_eq!(rig.bin_take(c).len(), 1);
    rig.bin_send(c, enter(2, "ACME", b'B', PX, 1, b'1'), 5);
    let out = rig.bin_take(c);
    assert_eq!(
        out,
        vec![(
            0,
            ServerMessage::Logout(wire::Logout {
                reason: 3,
                expected_seq: 2
            })
        )]
    );
    assert_eq!(rig.gw.state(c), ConnState::Closing);
}

#[test]
fn full_engine_ring_pauses_the_connection_and_loses_nothing() {
    let mut rig = Rig::with_config(appliance::config::Config::default_config(), 16);
    let (c, _) = rig.bin_login("CLIENT1", 0);
    let mut bytes = Vec::new();
    for i in 0..100u32 {
        let mut b = [0u8; 64];
        let n = enter(
            i as u64 + 1,
            "ACME",
            b'B',
            PX - 100 * (i as i64 % 5),
            1,
            b'1',
        )
        .encode(i + 1, &mut b)
        .unwrap();
        bytes.extend_from_slice(&b[..n]);
    }
    // One read carrying 100 orders into a 16-slot ring: the gateway must stop and resume.
    rig.gw.tick_clock();
    assert!(rig.gw.on_recv(c, &bytes, 0));
    assert!(!rig.gw.wants_input(c), "paused by back-pressure");
    rig.pump();
    assert!(rig.gw.wants_input(c));
    let out = rig.bin_take(c);
    let tokens: Vec<u64> = out
        .iter()
        .map(|(_, m)| match m {
            ServerMessage::Accepted(a) => a.token,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(tokens, (1..=100).collect::<Vec<u64>>());
    assert!(
        rig.gw
            .counters()
            .get(appliance::telemetry::counters::gw::BACKPRESSURE)
            > 0
    );
}

/// A connection paused by back-pressure (its orders wait in the input buffer for room in a
/// full engine ring) is not the client's silence: a stall longer than three heartbeat
/// intervals does not log it out, and every order goes through once the engine drains.
/// Before, the heartbeat timer counted only processed frames and logged such a client out.
#[test]
fn a_paused_connection_is_not_timed_out_for_silence() {
    let mut rig = Rig::with_config(appliance::config::Config::default_config(), 16);
    let c = rig.connect(appliance::vocab::Protocol::Binary);
    rig.bin_send(
        c,
        ClientMessage::Login(wire::Login {
            username: wire::credential("CLIENT1").unwrap(),
            password: [b' '; 16],
            next_server_seq: 0,
            heartbeat_ms: 100,
        }),
        0,
    );
    rig.bin_take(c);
    let mut bytes = Vec::new();
    for i in 0..100u32 {
        let mut b = [0u8; 64];
        let n = enter(
            i as u64 + 1,
            "ACME",
            b'B',
            PX - 100 * (i as i64 % 5),
            1,
            b'1',
        )
        .encode(i + 1, &mut b)
        .unwrap();
        bytes.extend_from_slice(&b[..n]);
    }
    rig.gw.tick_clock();
    assert!(rig.gw.on_recv(c, &bytes, 0));
    assert!(!rig.gw.wants_input(c), "paused by back-pressure");
    // The engine stalls for 500 ms (five intervals) while the gateway's timers run.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
        rig.gw.tick_clock();
        rig.gw.on_timer();
        assert_eq!(rig.gw.state(c), ConnState::Open, "logged out while paused");
    }
    rig.pump();
    let accepted = rig
        .bin_take(c)
        .iter()
        .filter(|(_, m)| matches!(m, ServerMessage::Accepted(_)))
        .count();
    assert_eq!(accepted, 100);
    assert_eq!(rig.gw.state(c), ConnState::Open);
}

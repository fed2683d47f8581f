//! Drop copy against the real binary: a FIX session configured with `drop_copy_for = "CLIENT1"`
//! receives a copy of every ExecutionReport of the firm's sessions (FIX CLIENT1 and binary
//! CLIENT1), once and in order, with CopyMsgIndicator 797=Y and Account (1) naming the
//! originating session; another firm's reports are not copied; the copies have the drop
//! copy's own sequence numbers and are resent after it reconnects; orders from it are refused.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;
mod support;

use app::{config_file, App};
use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use fix::app::{Side, TimeInForce};
use fixclient::{FixClient, FixMsg};
use net::BinClient;
use std::time::{Duration, Instant};

/// Reads `n` application messages (or fails after 10 s).
fn take(c: &mut FixClient, n: usize) -> Vec<FixMsg> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages: {got:#?}",
            got.len()
        );
        if let Some(m) = c.try_recv(Duration::from_millis(100)) {
            got.push(m);
        }
    }
    got
}

/// Reads binary messages until `want` execution-type messages arrived.
fn bin_reports(b: &mut BinClient, want: usize) -> Vec<ServerMessage> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < want {
        assert!(Instant::now() < deadline, "binary: {got:?}");
        if let Some(m) = b.try_recv(Duration::from_millis(100)) {
            if !matches!(m, ServerMessage::Heartbeat(_)) {
                got.push(m);
            }
        }
    }
    got
}

#[test]
fn the_drop_copy_gets_every_report_of_the_firm_once_in_order_and_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "written",
        &[(
            "[binary]",
            "[[fix.sessions]]\ntarget_comp_id = \"DROPCOPY\"\ndrop_copy_for = \"CLIENT1\"\n\n[binary]",
        )],
    );
    let mut app = App::start(&cfg);
    let mut dc = FixClient::logon(app.fix, "DROPCOPY");
    let mut a = FixClient::logon(app.fix, "CLIENT1");
    let mut other = FixClient::logon(app.fix, "CLIENT2");
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000);

    // Another firm's resting sell (not copied), then CLIENT1 (FIX) rests, cancels, and
    // takes 2 of the sell.
    other.order(
        "S1",
        "ACME",
        Side::Sell,
        5,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(other.recv().req(150), "0");
    a.order(
        "A1",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    a.cancel("A1C", "A1", "ACME", Side::Buy);
    a.order(
        "A2",
        "ACME",
        Side::Buy,
        2,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let mut originals = take(&mut a, 4);
    // CLIENT1 (binary) takes 3 more and rests a buy it then replaces.
    b.send(support::enter(7, "ACME", b'B', 1_000_000, 3, b'1'));
    b.send(support::enter(8, "ACME", b'B', 980_000, 1, b'1'));
    b.send(ClientMessage::ReplaceOrder(wire::ReplaceOrder {
        orig_token: 8,
        new_token: 9,
        price: 985_000,
        qty: 2,
    }));
    let binary = bin_reports(&mut b, 4);
    assert!(
        matches!(
            binary[..],
            [
                ServerMessage::Accepted(_),
                ServerMessage::Executed(_),
                ServerMessage::Accepted(_),
                ServerMessage::Replaced(_)
            ]
        ),
        "{binary:?}"
    );

    // The copies: 4 of the FIX session's reports, then 4 of the binary user's, in order.
    let copies = take(&mut dc, 8);
    for c in &copies {
        assert_eq!((c.msg_type.as_str(), c.req(797)), ("8", "Y"), "{c:?}");
    }
    for (o, c) in originals.iter().zip(&copies[..4]) {
        assert_eq!(c.req(1), "fix:CLIENT1", "{c:?}");
        for tag in [11, 37, 39, 150, 14, 151, 55, 54] {
            assert_eq!(o.get(tag), c.get(tag), "tag {tag}: {o:?} / {c:?}");
        }
        if o.req(150) == "F" {
            assert_eq!(
                o.req(17),
                c.req(17),
                "a fill's copy carries the trade's ExecID"
            );
        }
    }
    let bin: Vec<(&str, &str, &str)> = copies[4..]
        .iter()
        .map(|c| {
            assert_eq!(c.req(1), "binary:CLIENT1", "{c:?}");
            (c.req(11), c.req(150), c.req(39))
        })
        .collect();
    assert_eq!(
        bin,
        [
            ("7", "0", "0"),
            ("7", "F", "2"),
            ("8", "0", "0"),
            ("9", "5", "0")
        ],
        "binary tokens as ClOrdIDs, in order"
    );
    assert!(
        dc.try_recv(Duration::from_millis(500)).is_none(),
        "nothing else: CLIENT2's reports are not copied"
    );

    // Read-only: an order from the drop copy is refused (35=j, 380=6).
    dc.order(
        "X1",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    let m = dc.recv();
    assert_eq!((m.msg_type.as_str(), m.req(380)), ("j", "6"), "{m:?}");

    // Away and back: the copies made meanwhile are resent (its own sequence numbers).
    dc.logout();
    a.order(
        "A3",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    originals.extend(take(&mut a, 1));
    assert!(dc.reconnect(app.fix), "the drop copy logs on again");
    let resent = take(&mut dc, 1);
    assert_eq!(
        (resent[0].req(11), resent[0].req(150), resent[0].req(797)),
        ("A3", "0", "Y"),
        "{resent:?}"
    );
    assert!(
        resent[0].seq > copies.last().unwrap().seq,
        "its own sequence"
    );

    // The copies are journaled like any report: the journal's replica (replaying it beside
    // the live run) ends with the live state, and after a restart the drop copy goes on
    // from its sequence numbers.
    let next = resent[0].seq;
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("the journal's replica agrees"), "{log}");
    let app = App::start(&cfg);
    assert!(
        dc.reconnect(app.fix),
        "the drop copy logs on after the restart"
    );
    a.reconnect(app.fix);
    a.order(
        "A4",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    // First what it missed during the shutdown (the firm's sessions' cancels on
    // disconnect), then the new report.
    let m = loop {
        let m = take(&mut dc, 1).remove(0);
        assert_eq!(m.req(797), "Y", "{m:?}");
        if m.req(11) == "A4" {
            break m;
        }
        assert_eq!(
            (m.req(150), m.req(58)),
            ("4", "cancel on disconnect"),
            "missed while away: {m:?}"
        );
    };
    assert!(m.seq > next, "sequence numbers continue across the restart");
}

//! End to end over loopback TCP: FIX 4.4 clients (real `fix` crate initiator sessions)
//! through gateway, rings and engine; and FIX against binary on the same book.

#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;
mod support;

use appliance::binary::wire::ServerMessage;
use appliance::config::{IoBackend, Threading};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use net::{journaled_config, start_mode, test_config, BinClient};
use std::time::Duration;

const PX: i64 = 1_000_000; // 100.0000

/// Every ExecutionReport carries what QuickFIX's validating client requires.
fn check_er(m: &fixclient::FixMsg) {
    assert_eq!(m.msg_type, "8", "{m:?}");
    for tag in [37, 17, 150, 39, 54, 151, 14, 6, 55, 11] {
        assert!(m.get(tag).is_some(), "tag {tag} missing in {m:?}");
    }
}

fn two_fix_clients_cross_cancel_replace_and_get_rejects(mode: Threading) {
    let (cfg, _journal) = journaled_config();
    let app = start_mode(&cfg, IoBackend::Auto, mode);
    let mut buyer = FixClient::logon(app.fix_addr, "CLIENT1");
    let mut seller = FixClient::logon(app.fix_addr, "CLIENT2");

    buyer.order("B1", "ACME", Side::Buy, 100, Some(PX), TimeInForce::Day);
    let ack = buyer.recv();
    check_er(&ack);
    assert_eq!(
        (ack.req(150), ack.req(39), ack.req(11), ack.req(151)),
        ("0", "0", "B1", "100")
    );
    assert_eq!(ack.req(44), "100");

    seller.order(
        "S1",
        "ACME",
        Side::Sell,
        30,
        Some(PX - 100),
        TimeInForce::ImmediateOrCancel,
    );
    let sack = seller.recv();
    assert_eq!(sack.req(150), "0");
    let sfill = seller.recv();
    check_er(&sfill);
    assert_eq!(
        (
            sfill.req(150),
            sfill.req(39),
            sfill.req(32),
            sfill.req(31),
            sfill.req(151),
            sfill.req(14)
        ),
        ("F", "2", "30", "100", "0", "30")
    );
    assert_eq!(
        sfill.req(6).trim_end_matches('0').trim_end_matches('.'),
        "100",
        "average price of one fill at 100"
    );
    let bfill = buyer.recv();
    check_er(&bfill);
    assert_eq!(
        (
            bfill.req(150),
            bfill.req(39),
            bfill.req(32),
            bfill.req(151),
            bfill.req(14)
        ),
        ("F", "1", "30", "70", "30")
    );
    assert_eq!(bfill.req(17), sfill.req(17), "same ExecID on both sides");

    // Replace: quantity down keeps the order (status stays partially filled).
    buyer.replace("B2", "B1", "ACME", Side::Buy, 80, PX);
    let rep = buyer.recv();
    check_er(&rep);
    assert_eq!(
        (
            rep.req(150),
            rep.req(39),
            rep.req(11),
            rep.req(41),
            rep.req(151),
            rep.req(38)
        ),
        ("5", "1", "B2", "B1", "50", "80")
    );
    // Cancel by the new id.
    buyer.cancel("B3", "B2", "ACME", Side::Buy);
    let can = buyer.recv();
    check_er(&can);
    assert_eq!(
        (can.req(150), can.req(39), can.req(11), can.req(41)),
        ("4", "4", "B3", "B2")
    );
    // Cancelling again: too late; unknown ClOrdID: unknown order.
    buyer.cancel("B4", "B2", "ACME", Side::Buy);
    let rej = buyer.recv();
    assert_eq!(
        (rej.msg_type.as_str(), rej.req(102), rej.req(434)),
        ("9", "0", "1")
    );
    buyer.cancel("B5", "NOPE", "ACME", Side::Buy);
    let rej = buyer.recv();
    assert_eq!((rej.msg_type.as_str(), rej.req(102)), ("9", "1"));

    // FOK that cannot fill; a market order into an empty book; off-tick; unknown symbol;
    // duplicate ClOrdID.
    buyer.order(
        "B6",
        "ACME",
        Side::Buy,
        10,
        Some(PX),
        TimeInForce::FillOrKill,
    );
    assert_eq!(buyer.recv().req(150), "0");
    let fok = buyer.recv();
    assert_eq!((fok.req(150), fok.req(39)), ("4", "4"));
    buyer.order(
        "B7",
        "BOLT",
        Side::Sell,
        10,
        None,
        TimeInForce::ImmediateOrCancel,
    );
    assert_eq!(buyer.recv().req(150), "0");
    assert_eq!(buyer.recv().req(150), "4");
    buyer.order("B8", "ACME", Side::Buy, 10, Some(PX + 1), TimeInForce::Day);
    let r = buyer.recv();
    assert_eq!((r.req(150), r.req(39), r.req(103)), ("8", "8", "99"));
    assert!(r.req(58).contains("tick"));
    buyer.order("B9", "NOPE", Side::Buy, 10, Some(PX), TimeInForce::Day);
    let r = buyer.recv();
    assert_eq!((r.req(150), r.req(103)), ("8", "1"));
    buyer.order("B6", "ACME", Side::Buy, 10, Some(PX), TimeInForce::Day);
    let r = buyer.recv();
    assert_eq!((r.req(150), r.req(103)), ("8", "6"));

    // Mass cancel: two resting orders, report with TotalAffectedOrders.
    buyer.order(
        "M1",
        "ACME",
        Side::Buy,
        5,
        Some(PX - 500),
        TimeInForce::GoodTillCancel,
    );
    buyer.order(
        "M2",
        "CRUX",
        Side::Buy,
        5,
        Some(240_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(buyer.recv().req(150), "0");
    assert_eq!(buyer.recv().req(150), "0");
    buyer.mass_cancel("MC", None);
    let a = buyer.recv();
    let b = buyer.recv();
    assert_eq!((a.req(150), b.req(150)), ("4", "4"));
    let rep = buyer.recv();
    assert_eq!(
        (rep.msg_type.as_str(), rep.req(531), rep.req(533)),
        ("r", "7", "2")
    );

    buyer.logout();
    assert!(buyer.closed, "the appliance answered the Logout and closed");
    seller.logout();
    app.stop();
}

fn fix_buyer_trades_against_binary_seller(mode: Threading) {
    let app = start_mode(&test_config(), IoBackend::Auto, mode);
    let mut buyer = FixClient::logon(app.fix_addr, "CLIENT1");
    let mut seller = BinClient::login(app.binary_addr, "CLIENT2");
    buyer.order("X1", "BOLT", Side::Buy, 40, Some(500_000), TimeInForce::Day);
    assert_eq!(buyer.recv().req(150), "0");
    seller.send(support::enter(7, "BOLT", b'S', 499_900, 25, b'3'));
    assert!(matches!(seller.recv(), ServerMessage::Accepted(_)));
    let ServerMessage::Executed(e) = seller.recv() else {
        panic!()
    };
    assert_eq!(
        (e.price, e.qty, e.leaves, e.liquidity),
        (500_000, 25, 0, b'R')
    );
    let f = buyer.recv();
    check_er(&f);
    assert_eq!(
        (f.req(150), f.req(31), f.req(32), f.req(151)),
        ("F", "50", "25", "15")
    );
    assert_eq!(
        f.req(17),
        e.exec_id.to_string(),
        "one trade, one ExecID, both protocols"
    );
    app.stop();
}

fn unknown_comp_id_and_duplicate_logon_are_dropped(mode: Threading) {
    let app = start_mode(&test_config(), IoBackend::Auto, mode);
    let mut stranger = FixClient::connect(app.fix_addr, "MALLORY");
    let now = fixclient::now_ns();
    stranger.session.on_connected(now);
    let mut out = Vec::new();
    stranger.session.initiate_logon(now, &mut out).unwrap();
    use std::io::Write;
    stranger.stream.write_all(&out).unwrap();
    for _ in 0..40 {
        stranger.pump();
        if stranger.closed {
            break;
        }
    }
    assert!(stranger.closed && !stranger.session.is_logged_on());

    let mut first = FixClient::logon(app.fix_addr, "CLIENT1");
    let mut second = FixClient::connect(app.fix_addr, "CLIENT1");
    second.session.on_connected(now);
    let mut out = Vec::new();
    second
        .session
        .initiate_logon(fixclient::now_ns(), &mut out)
        .unwrap();
    second.stream.write_all(&out).unwrap();
    for _ in 0..40 {
        second.pump();
        if second.closed {
            break;
        }
    }
    assert!(second.closed, "the second logon is disconnected");
    // The first session still trades.
    first.order("F1", "ACME", Side::Buy, 1, Some(PX), TimeInForce::Day);
    assert_eq!(first.recv().req(150), "0");
    let _ = Duration::ZERO;
    app.stop();
}
/// UUIDs (36 characters) are accepted as ClOrdID, cancelled and replaced by it; 37 characters
/// are refused with the reason in the text.
fn uuid_client_order_ids_are_accepted(mode: Threading) {
    let app = start_mode(&test_config(), IoBackend::Auto, mode);
    let mut c = FixClient::logon(app.fix_addr, "CLIENT1");
    let a = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a1b";
    let b = "7a1c9e2f-4b6d-4e8a-9c1f-3d5e7f9a1b2c";
    assert_eq!(a.len(), 36);
    c.order(a, "BOLT", Side::Buy, 10, Some(500_000), TimeInForce::Day);
    let m = c.recv();
    assert_eq!((m.req(150), m.req(11)), ("0", a), "{m:?}");
    c.replace(b, a, "BOLT", Side::Buy, 5, 499_900);
    let m = c.recv();
    assert_eq!((m.req(150), m.req(11), m.req(41)), ("5", b, a), "{m:?}");
    c.cancel("cancel-7a1c9e2f-4b6d-4e8a-9c1f-3d5e7", b, "BOLT", Side::Buy);
    let m = c.recv();
    assert_eq!((m.req(150), m.req(41)), ("4", b), "{m:?}");
    let long = format!("{a}X");
    c.order(
        &long,
        "BOLT",
        Side::Buy,
        10,
        Some(500_000),
        TimeInForce::Day,
    );
    let m = c.recv();
    assert_eq!(m.req(150), "8", "{m:?}");
    assert_eq!(m.req(58), "ClOrdID longer than 36 characters");
    app.stop();
}

/// OrderMassCancelRequest cancels the session's own orders (530=7), of one side when Side
/// (54) is given, as the rules of engagement say: another session of the same firm keeps its
/// orders (before, the scope was the whole firm and Side was ignored).
fn mass_cancel_is_the_sessions_and_honours_side(mode: Threading) {
    let mut cfg = test_config();
    for s in cfg.fix.sessions.iter_mut() {
        s.owner = Some("FIRM-A".to_string());
    }
    let app = start_mode(&cfg, IoBackend::Auto, mode);
    let mut a = FixClient::logon(app.fix_addr, "CLIENT1");
    let mut b = FixClient::logon(app.fix_addr, "CLIENT2");
    for (cl, side, px) in [
        ("AB1", Side::Buy, 490_000),
        ("AB2", Side::Buy, 489_000),
        ("AS1", Side::Sell, 510_000),
    ] {
        a.order(cl, "BOLT", side, 5, Some(px), TimeInForce::Day);
        assert_eq!(a.recv().req(150), "0");
    }
    b.order("BB1", "BOLT", Side::Buy, 5, Some(490_000), TimeInForce::Day);
    assert_eq!(b.recv().req(150), "0");
    // CLIENT1 cancels its buys.
    a.mass_cancel_side("MC1", None, Some(Side::Buy));
    let mut cancelled = Vec::new();
    let report = loop {
        let m = a.recv();
        match m.msg_type.as_str() {
            "8" => {
                assert_eq!(m.req(150), "4", "{m:?}");
                cancelled.push(m.req(11).to_string());
            }
            "r" => break m,
            other => panic!("unexpected {other}: {m:?}"),
        }
    };
    cancelled.sort();
    assert_eq!(cancelled, vec!["AB1", "AB2"], "the session's buys only");
    assert_eq!((report.req(531), report.req(533)), ("7", "2"), "{report:?}");
    // Its sell and the other session's buy are still working.
    a.cancel("C1", "AS1", "BOLT", Side::Sell);
    assert_eq!(a.recv().req(150), "4", "AS1 was live");
    b.cancel("C2", "BB1", "BOLT", Side::Buy);
    assert_eq!(b.recv().req(150), "4", "CLIENT2's order was live");
    app.stop();
}

both_modes!(mass_cancel_is_the_sessions_and_honours_side => mass_cancel_is_the_sessions_and_honours_side_shared, mass_cancel_is_the_sessions_and_honours_side_dedicated);
both_modes!(uuid_client_order_ids_are_accepted => uuid_client_order_ids_are_accepted_shared, uuid_client_order_ids_are_accepted_dedicated);
both_modes!(two_fix_clients_cross_cancel_replace_and_get_rejects => two_fix_clients_cross_cancel_replace_and_get_rejects_shared, two_fix_clients_cross_cancel_replace_and_get_rejects_dedicated);
both_modes!(fix_buyer_trades_against_binary_seller => fix_buyer_trades_against_binary_seller_shared, fix_buyer_trades_against_binary_seller_dedicated);
both_modes!(unknown_comp_id_and_duplicate_logon_are_dropped => unknown_comp_id_and_duplicate_logon_are_dropped_shared, unknown_comp_id_and_duplicate_logon_are_dropped_dedicated);

/// A replace (35=G) that would change the order's TimeInForce (59) is refused with an
/// OrderCancelReject naming the order's status (before, the new 59 was silently ignored and
/// the order kept its old one); one that repeats it, or leaves 59 out, goes through.
#[test]
fn a_replace_cannot_change_the_time_in_force() {
    let app = start_mode(&test_config(), IoBackend::Auto, Threading::Shared);
    let mut c = FixClient::logon(app.fix_addr, "CLIENT1");
    c.order(
        "G1",
        "ACME",
        Side::Buy,
        10,
        Some(PX - 500),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(c.recv().req(150), "0");
    let g = |cl: &str, orig: &str, tif: &str| {
        format!("11={cl}|41={orig}|38=8|40=2|44=99.95|54=1|55=ACME|{tif}60=20260101-00:00:00|")
    };
    c.send_body("G", &g("G2", "G1", "59=0|"));
    let r = c.recv();
    assert_eq!(
        (
            r.msg_type.as_str(),
            r.req(11),
            r.req(41),
            r.req(39),
            r.req(434)
        ),
        ("9", "G2", "G1", "0", "2"),
        "{r:?}"
    );
    assert_eq!((r.req(102), r.req(58)), ("99", "unsupported time in force"));
    c.send_body("G", &g("G3", "G1", "59=1|"));
    let r = c.recv();
    assert_eq!(
        (r.req(150), r.req(11), r.req(59)),
        ("5", "G3", "1"),
        "{r:?}"
    );
    c.send_body("G", &g("G4", "G3", ""));
    let r = c.recv();
    assert_eq!(
        (r.req(150), r.req(11), r.req(59)),
        ("5", "G4", "1"),
        "{r:?}"
    );
    app.stop();
}

//! Per-session throttles against the real binary: a FIX session limited to 5 new orders per
//! second gets its sixth and later orders of a burst refused (`throttle exceeded`, 103=99),
//! its cancels never refused, and orders accepted again once the bucket refills; a binary
//! user limited to 3 messages per second under the `disconnect` policy is refused (117) and
//! logged out (reason 8) at its fourth.

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
use fixclient::FixClient;
use net::BinClient;
use std::io::Write;
use std::time::Duration;

#[test]
fn throttles_refuse_past_the_rate_and_the_disconnect_policy_logs_out() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "off",
        &[
            (
                "target_comp_id = \"CLIENT1\"\ncancel_on_disconnect = true",
                "target_comp_id = \"CLIENT1\"\ncancel_on_disconnect = true\nmax_orders_per_sec = 5",
            ),
            (
                "username = \"CLIENT2\"\ncancel_on_disconnect = true",
                "username = \"CLIENT2\"\ncancel_on_disconnect = true\nmax_messages_per_sec = 3\nthrottle_policy = \"disconnect\"",
            ),
        ],
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("max_orders_per_sec = 5") && text.contains("max_messages_per_sec = 3"));
    let mut app = App::start(&cfg);

    // FIX: ten orders in one write.
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    let mut burst = Vec::new();
    for i in 0..10 {
        burst.extend(c.order_bytes(&format!("T{i}"), "ACME", Side::Buy, 1, 1_000_000));
    }
    c.stream.write_all(&burst).unwrap();
    let (mut accepted, mut throttled) = (Vec::new(), 0);
    for _ in 0..10 {
        let m = c.recv();
        match m.req(150) {
            "0" => accepted.push(m.req(11).to_string()),
            "8" => {
                assert_eq!(m.req(58), "throttle exceeded", "{m:?}");
                throttled += 1;
            }
            other => panic!("ExecType {other}: {m:?}"),
        }
    }
    // A second's burst of 5 (a sixth if a fifth of a second passed meanwhile).
    assert!(
        (5..=6).contains(&accepted.len()) && accepted.len() + throttled == 10,
        "{} accepted, {throttled} throttled",
        accepted.len()
    );
    // The session's own series say so (counters reach the exporter every interval).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let series = |app: &App, name: &str| {
        let page = app.http_get("/metrics");
        let key = format!("{name}{{session=\"fix:CLIENT1\"}} ");
        page.lines()
            .find_map(|l| {
                l.strip_prefix(key.as_str())
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("{key} in /metrics"))
    };
    while series(&app, "appliance_session_throttled_total") < throttled as f64 {
        assert!(
            std::time::Instant::now() < deadline,
            "throttled count not published"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        series(&app, "appliance_session_throttled_total"),
        throttled as f64
    );
    assert_eq!(
        series(&app, "appliance_session_rejects_total"),
        throttled as f64
    );
    assert_eq!(
        series(&app, "appliance_session_messages_received_total"),
        10.0
    );
    assert_eq!(series(&app, "appliance_session_connected"), 1.0);
    // Cancels are never refused, however many.
    for (i, cl) in accepted.iter().enumerate() {
        c.cancel(&format!("C{i}"), cl, "ACME", Side::Buy);
    }
    for _ in 0..accepted.len() {
        assert_eq!(c.recv().req(150), "4");
    }
    // The bucket refills: after a second, orders go again.
    std::thread::sleep(Duration::from_millis(1_100));
    c.order(
        "LATER",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(c.recv().req(150), "0", "accepted after the refill");

    // Binary, 3 messages per second, disconnect policy: two cancels and an order use the
    // bucket, the next order is refused and the user logged out.
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    for token in [901, 902] {
        b.send(ClientMessage::CancelOrder(wire::CancelOrder { token }));
    }
    b.send(support::enter(1, "ACME", b'S', 1_010_000, 1, b'1'));
    b.send(support::enter(2, "ACME", b'S', 1_010_000, 1, b'1'));
    let mut seen = Vec::new();
    let logout = loop {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Logout(l)) => break l,
            Some(m) => seen.push(m),
            None => panic!("no Logout after the throttle: {seen:?}"),
        }
    };
    assert_eq!(logout.reason, wire::LogoutReason::Throttled as u8);
    // The third message went through (its Accepted may come after the Logout: the engine
    // answers asynchronously, and a closing connection sends nothing more).
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMessage::Rejected(r) if r.token == 1)),
        "the third message was not refused: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|m| matches!(m, ServerMessage::Rejected(r) if r.token == 2 && r.reason == 117)),
        "the fourth refused with 117: {seen:?}"
    );
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// An open-order quota (`max_open_orders`): past it new orders are refused (103=3, `open
/// order quota reached`); a cancel makes room again; other sessions are not limited.
#[test]
fn the_open_order_quota_refuses_past_it_and_frees_with_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "off",
        &[(
            "target_comp_id = \"CLIENT2\"\ncancel_on_disconnect = true",
            "target_comp_id = \"CLIENT2\"\ncancel_on_disconnect = true\nmax_open_orders = 3",
        )],
    );
    let mut app = App::start(&cfg);
    let mut c = FixClient::logon(app.fix, "CLIENT2");
    for i in 0..3 {
        c.order(
            &format!("Q{i}"),
            "ACME",
            Side::Buy,
            1,
            Some(990_000),
            TimeInForce::GoodTillCancel,
        );
        assert_eq!(c.recv().req(150), "0");
    }
    c.order(
        "Q3",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    let m = c.recv();
    assert_eq!(
        (m.req(150), m.req(103), m.req(58)),
        ("8", "3", "open order quota reached"),
        "{m:?}"
    );
    c.cancel("QC", "Q0", "ACME", Side::Buy);
    assert_eq!(c.recv().req(150), "4");
    c.order(
        "Q4",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(c.recv().req(150), "0", "room again after the cancel");
    // Another session is not limited by CLIENT2's quota.
    let mut other = FixClient::logon(app.fix, "CLIENT1");
    for i in 0..5 {
        other.order(
            &format!("O{i}"),
            "ACME",
            Side::Buy,
            1,
            Some(990_000),
            TimeInForce::GoodTillCancel,
        );
        assert_eq!(other.recv().req(150), "0");
    }
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// A gross open notional quota (`max_open_notional`, per instrument, whole currency units):
/// a new order or a replace that would pass it is refused (FIX 103=3 / 35=9, `open notional
/// quota reached`; binary 119); fills, cancels and replaces down make room; another
/// instrument has its own room; the books after a restart count the same.
#[test]
fn the_notional_quota_counts_working_orders_per_instrument_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "written",
        &[
            (
                "target_comp_id = \"CLIENT2\"\ncancel_on_disconnect = true",
                "target_comp_id = \"CLIENT2\"\ncancel_on_disconnect = false\nmax_open_notional = 1000",
            ),
            (
                "username = \"CLIENT1\"\ncancel_on_disconnect = true",
                "username = \"CLIENT1\"\ncancel_on_disconnect = true\nmax_open_notional = 150",
            ),
        ],
    );
    let mut app = App::start(&cfg);
    let mut c = FixClient::logon(app.fix, "CLIENT2");
    let buy = |c: &mut FixClient, cl: &str, sym: &str, qty: u64, px: i64| {
        c.order(
            cl,
            sym,
            Side::Buy,
            qty,
            Some(px),
            TimeInForce::GoodTillCancel,
        );
        c.recv()
    };
    let refused = |m: &fixclient::FixMsg| {
        (m.req(150), m.req(103), m.req(58)) == ("8", "3", "open notional quota reached")
    };
    // 6 x 99.00 + 4 x 100.00 = 994 of 1000 on ACME.
    assert_eq!(buy(&mut c, "N1", "ACME", 6, 990_000).req(150), "0");
    assert_eq!(buy(&mut c, "N2", "ACME", 4, 1_000_000).req(150), "0");
    let m = buy(&mut c, "N3", "ACME", 1, 990_000);
    assert!(refused(&m), "994 + 99 > 1000: {m:?}");
    // BOLT has its own room: 19 x 50.00 = 950.
    assert_eq!(buy(&mut c, "B1", "BOLT", 19, 500_000).req(150), "0");

    // A fill makes room: CLIENT1 sells 3 at 100.00 against N2 (994 - 300 = 694).
    let mut s = FixClient::logon(app.fix, "CLIENT1");
    s.order(
        "S1",
        "ACME",
        Side::Sell,
        3,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(s.recv().req(150), "0");
    let m = c.recv();
    assert_eq!(
        (m.req(150), m.req(39)),
        ("F", "1"),
        "N2 partly filled: {m:?}"
    );
    assert_eq!(
        buy(&mut c, "N4", "ACME", 3, 990_000).req(150),
        "0",
        "694 + 297 = 991"
    );

    // A replace up past the quota is refused; down, accepted.
    c.replace("N1U", "N1", "ACME", Side::Buy, 7, 990_000);
    let m = c.recv();
    assert_eq!(
        (m.msg_type.as_str(), m.req(58)),
        ("9", "open notional quota reached"),
        "991 + 99 > 1000: {m:?}"
    );
    c.replace("N1D", "N1", "ACME", Side::Buy, 2, 990_000);
    assert_eq!(c.recv().req(150), "5", "replaced down: 991 - 396 = 595");
    assert_eq!(
        buy(&mut c, "N5", "ACME", 4, 990_000).req(150),
        "0",
        "595 + 396 = 991"
    );
    let m = buy(&mut c, "N6", "ACME", 1, 990_000);
    assert!(refused(&m), "991 + 99 > 1000: {m:?}");

    // A restart rebuilds the same sums from the journal.
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let app = App::start(&cfg);
    assert!(c.reconnect(app.fix), "CLIENT2 logs on again");
    let m = buy(&mut c, "N7", "ACME", 1, 990_000);
    assert!(refused(&m), "after the restart, still 991: {m:?}");
    c.cancel("NC", "N5", "ACME", Side::Buy);
    assert_eq!(c.recv().req(150), "4");
    assert_eq!(
        buy(&mut c, "N8", "ACME", 4, 990_000).req(150),
        "0",
        "the cancel made room"
    );

    // Binary: CLIENT1 may have 150 open; 2 x 100.00 is refused with 119.
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000);
    b.send(support::enter(1, "ACME", b'B', 1_000_000, 2, b'1'));
    let r = loop {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Rejected(r)) => break r,
            Some(_) => continue,
            None => panic!("no answer to the binary order"),
        }
    };
    assert_eq!(r.reason, 119, "the notional quota's reject code");
    b.send(support::enter(2, "ACME", b'B', 1_000_000, 1, b'1'));
    let accepted = loop {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Accepted(_)) => break true,
            Some(ServerMessage::Rejected(r)) => panic!("refused: {r:?}"),
            Some(_) => continue,
            None => break false,
        }
    };
    assert!(accepted, "1 x 100.00 fits in 150");
}

/// Firm-wide limits (`[[firms]]`) over the firm's FIX and binary sessions together: open
/// orders (reject 120) and open notional per instrument (reject 121, replaces too); another
/// firm is not limited.
#[test]
fn firm_limits_count_every_session_of_the_firm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "off", &[]);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\n[[firms]]\nname = \"CLIENT1\"\nmax_open_orders = 3\nmax_open_notional = 500\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let mut app = App::start(&cfg);
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000);
    let buy = |c: &mut FixClient, cl: &str, qty: u64| {
        c.order(
            cl,
            "ACME",
            Side::Buy,
            qty,
            Some(990_000),
            TimeInForce::GoodTillCancel,
        );
        c.recv()
    };
    let bin_answer = |b: &mut BinClient| loop {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Accepted(_)) => break None,
            Some(ServerMessage::Rejected(r)) => break Some(r.reason),
            Some(_) => continue,
            None => panic!("no answer to the binary order"),
        }
    };
    // Open orders: 2 on FIX, 1 on binary = the firm's 3.
    assert_eq!(buy(&mut c, "R1", 1).req(150), "0");
    assert_eq!(buy(&mut c, "R2", 1).req(150), "0");
    b.send(support::enter(1, "ACME", b'B', 990_000, 1, b'1'));
    assert_eq!(bin_answer(&mut b), None);
    b.send(support::enter(2, "ACME", b'B', 990_000, 1, b'1'));
    assert_eq!(bin_answer(&mut b), Some(120), "the firm's fourth order");
    let m = buy(&mut c, "R3", 1);
    assert_eq!(
        (m.req(150), m.req(103), m.req(58)),
        ("8", "3", "firm open order quota reached"),
        "{m:?}"
    );
    c.cancel("R1C", "R1", "ACME", Side::Buy);
    assert_eq!(c.recv().req(150), "4");
    assert_eq!(buy(&mut c, "R4", 1).req(150), "0", "room after the cancel");

    // Notional: R2, token 1, R4 = 3 x 99 = 297 of 500. A replace to 3 lots fits (495); one
    // more lot on R2 does not.
    c.replace("R4U", "R4", "ACME", Side::Buy, 3, 990_000);
    assert_eq!(c.recv().req(150), "5");
    c.replace("R2U", "R2", "ACME", Side::Buy, 2, 990_000);
    let m = c.recv();
    assert_eq!(
        (m.msg_type.as_str(), m.req(58)),
        ("9", "firm open notional quota reached"),
        "495 + 99 > 500: {m:?}"
    );
    // Binary token 1 cancelled (396 left, 2 orders): a new 2-lot order passes the order
    // quota but not the notional one.
    b.send(ClientMessage::CancelOrder(wire::CancelOrder { token: 1 }));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !matches!(
        b.try_recv(Duration::from_millis(100)),
        Some(ServerMessage::Cancelled(_))
    ) {
        assert!(std::time::Instant::now() < deadline, "no cancel");
    }
    let m = buy(&mut c, "R5", 2);
    assert_eq!(
        (m.req(150), m.req(58)),
        ("8", "firm open notional quota reached"),
        "396 + 198 > 500: {m:?}"
    );
    // Another firm is not limited.
    let mut other = FixClient::logon(app.fix, "CLIENT2");
    for i in 0..5 {
        assert_eq!(buy(&mut other, &format!("O{i}"), 2).req(150), "0");
    }
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

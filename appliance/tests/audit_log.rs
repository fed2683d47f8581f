//! The audit trail against the real binary, in JSON lines (`APPLIANCE_LOG_FORMAT=json`):
//! every connection, logon (and refused logon, with the reason), and disconnect (with the
//! cause) is a record with target `audit`, written by a cold thread from what the gateways
//! hand it over their rings. The log is plain JSON, one object per line, no colour codes.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;

use app::{config_file, App};
use fixclient::FixClient;
use net::BinClient;
use std::time::{Duration, Instant};

/// The audit records logged so far: (event, fields).
fn audit(app: &App) -> Vec<serde_json::Value> {
    app.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .map(|v| v["fields"].clone())
        .collect()
}

fn find<'a>(
    recs: &'a [serde_json::Value],
    event: &str,
    session: &str,
) -> Option<&'a serde_json::Value> {
    recs.iter()
        .find(|f| f["event"] == event && f["session"] == session)
}

#[test]
fn connections_logons_and_disconnects_are_audited_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "off", &[]);
    let mut app = App::start_with_env(&cfg, &[("APPLIANCE_LOG_FORMAT", "json")]);

    let mut c = FixClient::logon(app.fix, "CLIENT1");
    let refused = FixClient::connect(app.fix, "NOBODY");
    let mut refused = refused;
    {
        use std::io::Write;
        let now = fixclient::now_ns();
        let mut out = Vec::new();
        refused.session.on_connected(now);
        refused.session.initiate_logon(now, &mut out).unwrap();
        refused.stream.write_all(&out).unwrap();
    }
    let b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    c.logout();
    drop(b); // closed without a Logout

    let deadline = Instant::now() + Duration::from_secs(10);
    let recs = loop {
        let recs = audit(&app);
        let done = find(&recs, "disconnect", "fix:CLIENT1").is_some()
            && find(&recs, "disconnect", "binary:CLIENT2").is_some()
            && recs.iter().any(|f| f["event"] == "logon_refused");
        if done {
            break recs;
        }
        assert!(
            Instant::now() < deadline,
            "audit records missing after 10 s: {recs:#?}\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let logon = find(&recs, "logon", "fix:CLIENT1").expect("CLIENT1's logon");
    assert_eq!(logon["protocol"], "fix");
    assert_eq!(logon["peer"], "127.0.0.1");
    assert!(logon["ts_ns"].as_i64().unwrap() > 1_700_000_000_000_000_000);
    assert_eq!(
        find(&recs, "disconnect", "fix:CLIENT1").unwrap()["cause"],
        "logout"
    );
    assert_eq!(
        find(&recs, "disconnect", "binary:CLIENT2").unwrap()["cause"],
        "peer_closed"
    );
    assert!(find(&recs, "logon", "binary:CLIENT2").is_some());
    let r = recs.iter().find(|f| f["event"] == "logon_refused").unwrap();
    assert_eq!(r["reason"], "unknown_session", "{r}");
    assert!(
        recs.iter().filter(|f| f["event"] == "connected").count() >= 3,
        "every accepted connection: {recs:#?}"
    );
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    // Log lines are JSON objects (the shutdown's latency table, printed after the last log
    // line, is not a log line).
    let lines: Vec<&str> = log
        .lines()
        .take_while(|l| !l.starts_with("latency"))
        .collect();
    assert!(lines.len() > 5);
    for line in lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line:?}"
        );
    }
}

/// Waits until `pred` holds over the audit records (10 s at most).
fn wait_for(
    app: &App,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let recs = audit(app);
        if pred(&recs) {
            return recs;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: audit records missing after 10 s: {recs:#?}\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find_by<'a>(
    recs: &'a [serde_json::Value],
    event: &str,
    cl_ord_id: &str,
) -> Option<&'a serde_json::Value> {
    recs.iter()
        .find(|f| f["event"] == event && f["cl_ord_id"] == cl_ord_id)
}

/// Writes a FIX message of type `msg_type` with `body` (tag=value SOH ...) through the
/// client's session (numbered, stored), bypassing the typed builders; returns its MsgSeqNum.
fn send_raw(c: &mut FixClient, msg_type: &[u8], body: &str) -> u64 {
    use std::io::Write;
    let mut out = Vec::new();
    let body = body.replace('|', "\x01");
    let seq = c
        .session
        .send_raw(
            msg_type,
            &[],
            body.as_bytes(),
            fixclient::now_ns(),
            &mut out,
        )
        .unwrap();
    c.stream.write_all(&out).unwrap();
    seq
}

/// Order-level and session-level refusals, resend requests and sequence resets are audit
/// records too, with the fields that tie them to the client's message: the session, the
/// ClOrdID (binary: the order token), the reason code on the wire and its label, and the
/// sequence number of the message refused.
#[test]
fn rejects_resends_and_sequence_resets_are_audited_with_their_correlation_fields() {
    use appliance::binary::wire::{self, ClientMessage, ServerMessage};
    use fix::app::{Side, TimeInForce};
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "off", &[]);
    let mut app = App::start_with_env(&cfg, &[("APPLIANCE_LOG_FORMAT", "json")]);

    let mut c = FixClient::logon(app.fix, "CLIENT1");
    // Outside ACME's band (reference 100.00, 10%): refused by the engine (150=8, 103=3).
    c.order(
        "BAND-1",
        "ACME",
        Side::Buy,
        10,
        Some(1_500_000),
        TimeInForce::Day,
    );
    // Unknown symbol: refused by the gateway (103=1).
    c.order(
        "NOSYM-1",
        "ZZZZ",
        Side::Buy,
        10,
        Some(1_000_000),
        TimeInForce::Day,
    );
    // A NewOrderSingle without Side (54, required by the FIX 4.4 dictionary): session-level
    // Reject (373=1, 371=54).
    let bad_seq = send_raw(
        &mut c,
        b"D",
        "11=NO54-1|55=ACME|60=20240101-00:00:00.000|38=10|40=2|44=100|",
    );
    // One without Symbol (55, which the application needs): BusinessMessageReject (380=5).
    let bmr_seq = send_raw(
        &mut c,
        b"D",
        "11=NO55-1|54=1|60=20240101-00:00:00.000|38=10|40=2|44=100|",
    );
    // A ResendRequest from the client: 7=1, 16=0 (everything).
    send_raw(&mut c, b"2", "7=1|16=0|");
    // A cancel of an order never entered: OrderCancelReject (102=1, unknown order).
    c.cancel("CXL-1", "NEVER-1", "ACME", Side::Buy);
    c.pump_for(Duration::from_millis(300));

    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    b.send(ClientMessage::EnterOrder(wire::EnterOrder {
        token: 4242,
        symbol: wire::symbol("ZZZZ").unwrap(),
        price: 1_000_000,
        qty: 5,
        side: b'B',
        ord_type: b'L',
        tif: b'1',
        flags: 0,
        stp: 0,
    }));
    assert!(
        matches!(b.recv(), ServerMessage::Rejected(r) if r.reason == 100),
        "unknown symbol"
    );

    let recs = wait_for(&app, "rejects", |recs| {
        find_by(recs, "order_reject", "BAND-1").is_some()
            && find_by(recs, "order_reject", "NOSYM-1").is_some()
            && find_by(recs, "session_reject", "NO54-1").is_some()
            && find_by(recs, "business_reject", "NO55-1").is_some()
            && find_by(recs, "cancel_reject", "CXL-1").is_some()
            && find_by(recs, "order_reject", "4242").is_some()
            && recs
                .iter()
                .any(|f| f["event"] == "resend_request" && f["direction"] == "received")
    });

    let band = find_by(&recs, "order_reject", "BAND-1").unwrap();
    assert_eq!(band["session"], "fix:CLIENT1", "{band}");
    assert_eq!(band["code"], 3, "OrdRejReason 3: {band}");
    assert_eq!(band["reason"], "outside_price_band", "{band}");
    assert_eq!(band["protocol"], "fix", "{band}");
    assert_eq!(band["peer"], "127.0.0.1", "{band}");

    let nosym = find_by(&recs, "order_reject", "NOSYM-1").unwrap();
    assert_eq!(nosym["session"], "fix:CLIENT1", "{nosym}");
    assert_eq!(nosym["code"], 1, "OrdRejReason 1, unknown symbol: {nosym}");
    assert_eq!(nosym["reason"], "unknown_symbol", "{nosym}");
    assert!(nosym["seq"].as_u64().unwrap() > 1, "its MsgSeqNum: {nosym}");

    let sess = find_by(&recs, "session_reject", "NO54-1").unwrap();
    assert_eq!(sess["session"], "fix:CLIENT1", "{sess}");
    assert_eq!(sess["code"], 1, "SessionRejectReason 1: {sess}");
    assert_eq!(sess["reason"], "Required tag missing", "{sess}");
    assert_eq!(sess["ref_tag"], 54, "{sess}");
    assert_eq!(sess["seq"], bad_seq, "{sess}");

    let bmr = find_by(&recs, "business_reject", "NO55-1").unwrap();
    assert_eq!(bmr["session"], "fix:CLIENT1", "{bmr}");
    assert_eq!(bmr["code"], 5, "BusinessRejectReason 5: {bmr}");
    assert_eq!(bmr["ref_tag"], 55, "{bmr}");
    assert_eq!(bmr["seq"], bmr_seq, "{bmr}");

    let cxl = find_by(&recs, "cancel_reject", "CXL-1").unwrap();
    assert_eq!(cxl["session"], "fix:CLIENT1", "{cxl}");
    assert_eq!(cxl["code"], 1, "CxlRejReason 1, unknown order: {cxl}");

    let rr = recs
        .iter()
        .find(|f| f["event"] == "resend_request" && f["direction"] == "received")
        .unwrap();
    assert_eq!(rr["session"], "fix:CLIENT1", "{rr}");
    assert_eq!(
        (rr["begin"].as_u64(), rr["end"].as_u64()),
        (Some(1), Some(0)),
        "{rr}"
    );
    // The answer starts with a gap fill over the Logon.
    assert!(
        recs.iter().any(|f| f["event"] == "sequence_reset"
            && f["direction"] == "sent"
            && f["via"] == "gap_fill"
            && f["session"] == "fix:CLIENT1"),
        "{recs:#?}"
    );

    let bin = find_by(&recs, "order_reject", "4242").unwrap();
    assert_eq!(bin["session"], "binary:CLIENT2", "{bin}");
    assert_eq!(bin["code"], 100, "binary UnknownSymbol: {bin}");
    assert_eq!(bin["reason"], "unknown_symbol", "{bin}");
    assert_eq!(bin["protocol"], "binary", "{bin}");
    assert_eq!(bin["seq"], 1, "its sequence number: {bin}");

    c.logout();
    drop(b);
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// `gateway.audit_order_events = "off"`: order-level refusals are not recorded; session-level
/// ones still are.
#[test]
fn order_events_off_records_no_order_rejects() {
    use fix::app::{Side, TimeInForce};
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "off",
        &[(
            "audit_order_events = \"info\"",
            "audit_order_events = \"off\"",
        )],
    );
    let mut app = App::start_with_env(&cfg, &[("APPLIANCE_LOG_FORMAT", "json")]);
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    c.order(
        "NOSYM-2",
        "ZZZZ",
        Side::Buy,
        10,
        Some(1_000_000),
        TimeInForce::Day,
    );
    let refused = c.recv();
    assert_eq!(refused.req(150), "8");
    send_raw(
        &mut c,
        b"D",
        "11=NO55-2|54=1|60=20240101-00:00:00.000|38=10|40=2|44=100|",
    );
    send_raw(
        &mut c,
        b"D",
        "11=NO54-2|55=ACME|60=20240101-00:00:00.000|38=10|40=2|44=100|",
    );
    let recs = wait_for(&app, "session reject", |recs| {
        find_by(recs, "session_reject", "NO54-2").is_some()
    });
    assert!(
        !recs
            .iter()
            .any(|f| f["event"] == "order_reject" || f["event"] == "business_reject"),
        "{recs:#?}"
    );
    c.logout();
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// `gateway.audit_records_per_sec`: a flood of bad orders writes at most the rate (a
/// one-second burst plus the refill), the rest is counted as rate-limited, and the session is
/// answered for every order all the same.
#[test]
fn a_flood_of_rejects_is_rate_limited_and_counted() {
    use fix::app::{Side, TimeInForce};
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "off",
        &[("audit_records_per_sec = 2000", "audit_records_per_sec = 5")],
    );
    let app = App::start_with_env(&cfg, &[("APPLIANCE_LOG_FORMAT", "json")]);
    let started = Instant::now();
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    const FLOOD: usize = 60;
    for i in 0..FLOOD {
        c.order(
            &format!("FLOOD-{i}"),
            "ZZZZ",
            Side::Buy,
            1,
            Some(1_000_000),
            TimeInForce::Day,
        );
        assert_eq!(c.recv().req(150), "8", "every order is answered");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut limited = 0.0;
    while Instant::now() < deadline {
        limited = app.metric_sum("appliance_audit_records_rate_limited_total");
        if limited > 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give the writer a moment, then count what reached the log.
    std::thread::sleep(Duration::from_millis(300));
    let written = audit(&app)
        .iter()
        .filter(|f| f["event"] == "order_reject")
        .count();
    // Five per second with a five-record burst, over the flood's duration (plus the logon's
    // records, which took from the same bucket).
    let allowed = 5.0 + 5.0 * (elapsed + 1.0);
    assert!(
        written >= 1 && (written as f64) <= allowed,
        "{written} order rejects written in {elapsed:.2} s (at most {allowed})"
    );
    assert!(
        limited >= (FLOOD - written) as f64,
        "{limited} rate-limited, {written} written of {FLOOD}"
    );
}

/// `APPLIANCE_LOG_FILE`: the log (audit trail included) goes to the file as well as stderr,
/// without colour codes.
#[test]
fn the_log_goes_to_a_file_as_well() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "off", &[]);
    let file = dir.path().join("appliance.log");
    let file_s = file.display().to_string();
    let mut app = App::start_with_env(
        &cfg,
        &[
            ("APPLIANCE_LOG_FORMAT", "json"),
            ("APPLIANCE_LOG_FILE", &file_s),
        ],
    );
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    c.logout();
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let text = std::fs::read_to_string(&file).unwrap();
    let logons: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "audit" && v["fields"]["event"] == "logon")
        .collect();
    assert_eq!(logons.len(), 1, "{text}");
    assert_eq!(logons[0]["fields"]["session"], "fix:CLIENT1");
    assert!(!text.contains('\u{1b}'), "no escape codes in the file");
    assert!(
        log.contains("\"event\":\"logon\""),
        "stderr still gets it: {log}"
    );
}

/// `gateway.audit_order_lifecycle = "info"`: every step of an order's life is a record with
/// the ClOrdID, the OrderID and (fills) the ExecID its ExecutionReports carry.
#[test]
fn order_lifecycle_records_carry_the_reports_ids() {
    use fix::app::{Side, TimeInForce};
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "off",
        &[(
            "audit_order_lifecycle = \"off\"",
            "audit_order_lifecycle = \"info\"",
        )],
    );
    let mut app = App::start_with_env(&cfg, &[("APPLIANCE_LOG_FORMAT", "json")]);
    let mut a = FixClient::logon(app.fix, "CLIENT1");
    let mut b = FixClient::logon(app.fix, "CLIENT2");
    a.order(
        "LC-1",
        "ACME",
        Side::Buy,
        5,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let ack = a.recv();
    b.order(
        "LC-2",
        "ACME",
        Side::Sell,
        2,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let _ = b.recv();
    let fill = a.recv();
    assert_eq!(fill.req(150), "F");
    a.cancel("LC-1C", "LC-1", "ACME", Side::Buy);
    let cancel = a.recv();
    assert_eq!(cancel.req(150), "4");
    let recs = wait_for(&app, "the cancel's record", |recs| {
        find_by(recs, "order_cancelled", "LC-1").is_some()
    });
    let accepted = find_by(&recs, "order_accepted", "LC-1").expect("accepted");
    assert_eq!(accepted["order_id"].to_string(), ack.req(37), "{accepted}");
    assert_eq!(
        (&accepted["qty"], &accepted["leaves"]),
        (&5.into(), &5.into())
    );
    let f = recs
        .iter()
        .find(|r| r["event"] == "order_fill" && r["cl_ord_id"] == "LC-1")
        .expect("the fill");
    assert_eq!(f["exec_id"].to_string(), fill.req(17), "{f}");
    assert_eq!(
        (&f["qty"], &f["leaves"], &f["price"]),
        (&2.into(), &3.into(), &1_000_000.into())
    );
    assert_eq!(f["session"], "fix:CLIENT1");
    let c = find_by(&recs, "order_cancelled", "LC-1").unwrap();
    assert_eq!(
        (&c["qty"], &c["cancel_reason"]),
        (&3.into(), &"user".into()),
        "{c}"
    );
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

//! Day orders expire at their instrument's session end (`session_end` in its `time_zone`),
//! against the real binary: a Day order gets ExecutionReport ExecType C (Expired) at the
//! session end, a GTC order on the same instrument keeps working, and a restart (journal
//! replay) keeps the Day order expired. Before, nothing issued `ExpireDayOrders`, so the
//! ExecType C the rules of engagement promise could never happen.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use std::time::{Duration, Instant};

#[test]
fn day_orders_expire_at_the_session_end_and_stay_expired_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The session ends five seconds from now (UTC wall clock, HH:MM:SS).
    let end = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
    let hhmmss = end.strftime("%H:%M:%S").to_string();
    let line = format!("symbol = \"ACME\"\nsession_end = \"{hhmmss}\"\ntime_zone = \"UTC\"");
    // CLIENT1's orders outlive its connection (no cancel-on-disconnect at the restart).
    let cfg = config_file(
        dir.path(),
        "written",
        &[
            ("symbol = \"ACME\"", &line),
            (
                "target_comp_id = \"CLIENT1\"\ncancel_on_disconnect = true",
                "target_comp_id = \"CLIENT1\"\ncancel_on_disconnect = false",
            ),
        ],
    );
    assert!(std::fs::read_to_string(&cfg).unwrap().contains(&hhmmss));
    let mut app = App::start(&cfg);
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    c.order(
        "D1",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::Day,
    );
    assert_eq!(c.recv().req(150), "0");
    c.order(
        "G1",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(c.recv().req(150), "0");
    c.order("B1", "BOLT", Side::Buy, 1, Some(500_000), TimeInForce::Day);
    assert_eq!(c.recv().req(150), "0");

    // At the session end: D1 expires (ExecType C, OrdStatus C), nothing else does.
    let deadline = Instant::now() + Duration::from_secs(20);
    let expired = loop {
        assert!(
            Instant::now() < deadline,
            "no expiry 15 s after the session end"
        );
        if let Some(m) = c.try_recv(Duration::from_millis(200)) {
            break m;
        }
    };
    assert_eq!(
        (expired.req(150), expired.req(39), expired.req(11)),
        ("C", "C", "D1"),
        "{expired:?}"
    );
    assert!(
        c.try_recv(Duration::from_millis(500)).is_none(),
        "only ACME's Day order expires"
    );
    assert!(app.log().contains("session end of ACME"), "{}", app.log());

    // A restart replays the journal: D1 stays expired, G1 and B1 are working.
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let mut app = App::start(&cfg);
    assert!(c.reconnect(app.fix), "logged on again");
    c.cancel("X1", "G1", "ACME", Side::Buy);
    c.cancel("X2", "B1", "BOLT", Side::Buy);
    c.cancel("X3", "D1", "ACME", Side::Buy);
    let mut answers = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers.len() < 3 && Instant::now() < deadline {
        if let Some(m) = c.try_recv(Duration::from_millis(200)) {
            if let Some(orig) = m.get(41) {
                answers.insert(
                    orig.to_string(),
                    (m.msg_type.clone(), m.get(150).map(str::to_string)),
                );
            }
        }
    }
    assert_eq!(
        answers["G1"],
        ("8".to_string(), Some("4".to_string())),
        "G1 was working"
    );
    assert_eq!(
        answers["B1"],
        ("8".to_string(), Some("4".to_string())),
        "B1 was working"
    );
    assert_eq!(
        answers["D1"].0, "9",
        "D1 is no longer live: a cancel reject"
    );
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

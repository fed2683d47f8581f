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

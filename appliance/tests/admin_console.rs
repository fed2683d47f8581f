//! The operator's console against the real binary: `appliance admin` lists the sessions and
//! engages and lifts the kill switch of a session and of a firm. Engaged, the session's
//! working orders are cancelled (an ExecutionReport each, "kill switch engaged") and its new
//! orders are refused with that reason (FIX ER reject, binary reject 115), while other
//! sessions trade on; lifted, it trades again. Unknown commands are refused (exit 1).

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;
mod support;

use app::{config_file, App};
use appliance::binary::wire::ServerMessage;
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use net::BinClient;
use std::path::Path;
use std::time::Duration;

/// `appliance admin --socket SOCKET words...`: exit code and the parsed JSON answer.
fn admin(socket: &Path, words: &[&str]) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("admin")
        .arg("--socket")
        .arg(socket)
        .args(words)
        .output()
        .expect("appliance admin runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "admin {words:?}: not JSON ({e}): {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn session<'a>(v: &'a serde_json::Value, protocol: &str, name: &str) -> &'a serde_json::Value {
    v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["protocol"] == protocol && s["name"] == name)
        .unwrap_or_else(|| panic!("{protocol}:{name} in {v}"))
}

fn metric(app: &App, name: &str) -> f64 {
    app.metric_sum(name)
}

#[test]
fn the_kill_switch_of_a_session_and_of_a_firm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "written", &[]);
    let mut app = App::start(&cfg);
    let socket = dir.path().join("admin.sock");

    let mut a = FixClient::logon(app.fix, "CLIENT1");
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    let (code, v) = admin(&socket, &["sessions"]);
    assert_eq!((code, &v["ok"]), (0, &serde_json::json!(true)), "{v}");
    assert_eq!(v["sessions"].as_array().unwrap().len(), 4, "{v}");
    let s = session(&v, "fix", "CLIENT1");
    assert_eq!(
        (&s["connected"], &s["killed"]),
        (&true.into(), &false.into()),
        "{s}"
    );
    assert_eq!(session(&v, "fix", "CLIENT2")["connected"], false);

    // Two working orders on CLIENT1 (FIX), one on CLIENT2 (binary).
    for cl in ["K1", "K2"] {
        a.order(
            cl,
            "ACME",
            Side::Buy,
            1,
            Some(1_000_000),
            TimeInForce::GoodTillCancel,
        );
        assert_eq!(a.recv().req(150), "0");
    }
    b.send(support::enter(1, "ACME", b'S', 1_010_000, 1, b'1'));
    assert!(matches!(b.recv(), ServerMessage::Accepted(_)));

    // Kill CLIENT1's FIX session: its orders are cancelled, its new orders refused.
    let (code, v) = admin(&socket, &["kill", "session", "fix:CLIENT1"]);
    assert_eq!((code, &v["affected"]), (0, &serde_json::json!(1)), "{v}");
    let mut cancelled = Vec::new();
    for _ in 0..2 {
        let m = a.recv();
        assert_eq!(
            (m.req(150), m.req(58)),
            ("4", "kill switch engaged"),
            "{m:?}"
        );
        cancelled.push(m.req(11).to_string());
    }
    cancelled.sort();
    assert_eq!(cancelled, ["K1", "K2"]);
    a.order(
        "K3",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let m = a.recv();
    assert_eq!(
        (m.req(150), m.req(58)),
        ("8", "kill switch engaged"),
        "{m:?}"
    );
    a.replace("K1R", "K1", "ACME", Side::Buy, 2, 1_000_000);
    let m = a.recv();
    assert_eq!(
        (m.msg_type.as_str(), m.req(58)),
        ("9", "kill switch engaged"),
        "{m:?}"
    );
    // CLIENT2 is untouched: its order still works (a buy from it trades against nothing of
    // CLIENT1's, and its own sell stays).
    let (_, v) = admin(&socket, &["sessions"]);
    assert_eq!(session(&v, "fix", "CLIENT1")["killed"], true, "{v}");
    assert_eq!(session(&v, "binary", "CLIENT2")["killed"], false, "{v}");

    // Lifted: CLIENT1 trades again (its buy takes CLIENT2's sell).
    let (code, _) = admin(&socket, &["unkill", "session", "fix:CLIENT1"]);
    assert_eq!(code, 0);
    a.order(
        "K4",
        "ACME",
        Side::Buy,
        1,
        Some(1_010_000),
        TimeInForce::GoodTillCancel,
    );
    let m = a.recv();
    assert_eq!(m.req(150), "0", "{m:?}");
    let m = a.recv();
    assert_eq!(m.req(150), "F", "traded with CLIENT2's sell: {m:?}");

    // Kill the firm CLIENT2 (its FIX and binary sessions): the binary order is refused.
    b.send(support::enter(2, "ACME", b'S', 1_020_000, 1, b'1'));
    let mut accepted = false;
    for _ in 0..3 {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Accepted(_)) => accepted = true,
            Some(_) => {}
            None => break,
        }
        if accepted {
            break;
        }
    }
    assert!(accepted, "CLIENT2's second sell accepted before the kill");
    let (code, v) = admin(&socket, &["kill", "firm", "CLIENT2"]);
    assert_eq!((code, &v["affected"]), (0, &serde_json::json!(2)), "{v}");
    let mut saw_cancel = false;
    while let Some(m) = b.try_recv(Duration::from_secs(2)) {
        if let ServerMessage::Cancelled(_) = m {
            saw_cancel = true;
            break;
        }
    }
    assert!(
        saw_cancel,
        "CLIENT2's working sell cancelled by the kill switch"
    );
    b.send(support::enter(3, "ACME", b'S', 1_030_000, 1, b'1'));
    let refused = loop {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Rejected(r)) => break r,
            Some(_) => continue,
            None => panic!("no answer to CLIENT2's order while killed"),
        }
    };
    assert_eq!(refused.reason, 115, "the kill switch's reject code");
    // (Counters reach the exporter every publish interval.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut kills = 0.0;
    while kills < 3.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        kills = metric(&app, "appliance_kill_switches_engaged_total");
    }
    assert_eq!(kills, 3.0, "three sessions' kill switches engaged");
    assert_eq!(
        metric(&app, "appliance_sessions_killed"),
        2.0,
        "CLIENT2's two sessions killed now (CLIENT1's lifted)"
    );

    // Halt ACME: new orders refused with the reason, cancels go on; resumed, accepted.
    a.order(
        "H1",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(a.recv().req(150), "0");
    let (code, v) = admin(&socket, &["halt", "ACME"]);
    assert_eq!((code, &v["halted"]), (0, &serde_json::json!(true)), "{v}");
    let (_, v) = admin(&socket, &["instruments"]);
    assert!(
        v["instruments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["symbol"] == "ACME" && i["halted"] == true),
        "{v}"
    );
    a.order(
        "H2",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    let m = a.recv();
    assert_eq!((m.req(150), m.req(58)), ("8", "instrument halted"), "{m:?}");
    a.order(
        "H3",
        "BOLT",
        Side::Buy,
        1,
        Some(500_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(a.recv().req(150), "0", "another instrument trades on");
    a.replace("H1R", "H1", "ACME", Side::Buy, 2, 990_000);
    let m = a.recv();
    assert_eq!(
        (m.msg_type.as_str(), m.req(58)),
        ("9", "instrument halted"),
        "{m:?}"
    );
    a.cancel("HC1", "H1", "ACME", Side::Buy);
    assert_eq!(a.recv().req(150), "4", "cancels go on while halted");
    let (code, _) = admin(&socket, &["resume", "ACME"]);
    assert_eq!(code, 0);
    a.order(
        "H4",
        "ACME",
        Side::Buy,
        1,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(a.recv().req(150), "0", "accepted after resume");

    // Disconnect CLIENT1's FIX session: it gets a Logout saying why.
    let (code, v) = admin(&socket, &["disconnect", "fix:CLIENT1"]);
    assert_eq!((code, &v["affected"]), (0, &serde_json::json!(1)), "{v}");
    let raw = a.read_raw_until(b"35=5\x01", Duration::from_secs(5));
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("35=5\x01") && text.contains("disconnected by the venue's operator"),
        "{text:?}"
    );

    // Refusals: an unknown command, an unknown session.
    let (code, v) = admin(&socket, &["reboot"]);
    assert_eq!((code, &v["ok"]), (1, &serde_json::json!(false)), "{v}");
    let (code, v) = admin(&socket, &["kill", "session", "NOBODY"]);
    assert_eq!(code, 1, "{v}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("kill switch engaged for fix:CLIENT1"), "{log}");
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

/// `appliance journal inspect --kind control` of the journal `cfg` names.
fn control_records(cfg: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(["journal", "inspect", "--kind", "control", "--config"])
        .arg(cfg)
        .output()
        .expect("appliance journal inspect runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn halted(v: &serde_json::Value, symbol: &str) -> bool {
    v["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["symbol"] == symbol)
        .unwrap_or_else(|| panic!("{symbol} in {v}"))["halted"]
        == true
}

/// Polls the exporter until `name` sums to `want` (counters reach it every publish interval).
fn wait_metric(app: &App, name: &str, want: f64) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric(app, name);
        if got == want || std::time::Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_switches_and_halts_survive_a_restart_and_the_journal_names_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "written", &[]);
    let socket = dir.path().join("admin.sock");
    let mut app = App::start(&cfg);
    let mut a = FixClient::logon(app.fix, "CLIENT1");
    a.order(
        "R1",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(a.recv().req(150), "0");
    let (code, v) = admin(&socket, &["kill", "session", "fix:CLIENT1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(a.recv().req(150), "4", "the kill switch cancels R1");
    let (code, v) = admin(&socket, &["halt", "BOLT"]);
    assert_eq!(code, 0, "{v}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");

    // The journal says what the operator did, and who (this test's uid).
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let records = control_records(&cfg);
    assert!(
        records.contains("kill switch engaged for session 0")
            && records.contains(&format!("halted instrument 1 by uid {uid}")),
        "{records}"
    );

    // A clean restart keeps both: the console shows them, the metrics count them, and the
    // session's orders and the instrument's orders are refused with their reasons.
    let mut app = App::start(&cfg);
    let (_, v) = admin(&socket, &["sessions"]);
    assert_eq!(session(&v, "fix", "CLIENT1")["killed"], true, "{v}");
    assert_eq!(session(&v, "fix", "CLIENT2")["killed"], false, "{v}");
    let (_, v) = admin(&socket, &["instruments"]);
    assert!(halted(&v, "BOLT") && !halted(&v, "ACME"), "{v}");
    assert_eq!(wait_metric(&app, "appliance_sessions_killed", 1.0), 1.0);
    assert_eq!(wait_metric(&app, "appliance_instruments_halted", 1.0), 1.0);
    assert!(a.reconnect(app.fix), "CLIENT1 logs on again");
    a.order(
        "R2",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let m = a.recv();
    assert_eq!(
        (m.req(150), m.req(58)),
        ("8", "kill switch engaged"),
        "{m:?}"
    );
    let mut b = FixClient::logon(app.fix, "CLIENT2");
    b.order(
        "B1",
        "BOLT",
        Side::Buy,
        1,
        Some(500_000),
        TimeInForce::GoodTillCancel,
    );
    let m = b.recv();
    assert_eq!((m.req(150), m.req(58)), ("8", "instrument halted"), "{m:?}");

    // Lifted, then a crash (kill -9): the restart finds them lifted.
    assert_eq!(admin(&socket, &["unkill", "session", "fix:CLIENT1"]).0, 0);
    assert_eq!(admin(&socket, &["resume", "BOLT"]).0, 0);
    app.kill9();
    let app = App::start(&cfg);
    let (_, v) = admin(&socket, &["sessions"]);
    assert_eq!(session(&v, "fix", "CLIENT1")["killed"], false, "{v}");
    let (_, v) = admin(&socket, &["instruments"]);
    assert!(!halted(&v, "BOLT"), "{v}");
    assert!(b.reconnect(app.fix), "CLIENT2 logs on again");
    b.order(
        "B2",
        "BOLT",
        Side::Buy,
        1,
        Some(500_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(b.recv().req(150), "0", "BOLT trades again");
    let records = control_records(&cfg);
    assert!(
        records.contains("kill switch lifted for session 0")
            && records.contains("resumed instrument 1"),
        "{records}"
    );
}

#[test]
fn the_operator_cancels_a_sessions_orders_and_the_session_trades_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "written", &[]);
    let socket = dir.path().join("admin.sock");
    let app = App::start(&cfg);
    let mut a = FixClient::logon(app.fix, "CLIENT1");
    for (cl, sym, px) in [
        ("C1", "ACME", 1_000_000),
        ("C2", "ACME", 990_000),
        ("C3", "BOLT", 500_000),
    ] {
        a.order(cl, sym, Side::Buy, 1, Some(px), TimeInForce::GoodTillCancel);
        assert_eq!(a.recv().req(150), "0");
    }
    let (_, v) = admin(&socket, &["sessions"]);
    assert_eq!(session(&v, "fix", "CLIENT1")["open_orders"], 3, "{v}");

    // ACME only: C1 and C2 go, each with its report and the reason.
    let (code, v) = admin(&socket, &["cancel", "session", "fix:CLIENT1", "ACME"]);
    assert_eq!((code, &v["affected"]), (0, &serde_json::json!(1)), "{v}");
    let mut gone = Vec::new();
    for _ in 0..2 {
        let m = a.recv();
        assert_eq!(
            (m.req(150), m.req(58)),
            ("4", "cancelled by the venue's operator"),
            "{m:?}"
        );
        gone.push(m.req(11).to_string());
    }
    gone.sort();
    assert_eq!(gone, ["C1", "C2"]);
    assert!(
        a.try_recv(Duration::from_millis(500)).is_none(),
        "C3 (BOLT) stays working"
    );
    let (_, v) = admin(&socket, &["sessions"]);
    let s = session(&v, "fix", "CLIENT1");
    assert_eq!(
        (&s["open_orders"], &s["killed"]),
        (&1.into(), &false.into()),
        "{s}"
    );

    // The firm, every instrument: C3 goes; the session is not killed and trades on.
    let (code, v) = admin(&socket, &["cancel", "firm", "CLIENT1"]);
    assert_eq!(code, 0, "{v}");
    let m = a.recv();
    assert_eq!((m.req(11), m.req(150)), ("C3", "4"), "{m:?}");
    a.order(
        "C4",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(
        a.recv().req(150),
        "0",
        "new orders are accepted after the cancel"
    );

    // Refusals: an unknown instrument, an unknown firm.
    let (code, v) = admin(&socket, &["cancel", "session", "CLIENT1", "NOPE"]);
    assert_eq!(code, 1, "{v}");
    let (code, v) = admin(&socket, &["cancel", "firm", "NOBODY"]);
    assert_eq!(code, 1, "{v}");
    let records = control_records(&cfg);
    assert!(
        records.contains("cancelled the working orders of session 0"),
        "{records}"
    );
}

#[test]
fn reload_changes_credentials_throttles_and_quotas_live_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let block = "target_comp_id = \"CLIENT2\"\ncancel_on_disconnect = true";
    let with =
        |extra: &str| format!("target_comp_id = \"CLIENT2\"\ncancel_on_disconnect = true\n{extra}");
    let cfg = config_file(
        dir.path(),
        "written",
        &[(block, &with("password = \"old-pw\"\nmax_open_orders = 1"))],
    );
    let socket = dir.path().join("admin.sock");
    let app = App::start(&cfg);
    let original = std::fs::read_to_string(&cfg).unwrap();

    // CLIENT2 logs on with the old password; its quota is one working order.
    let mut c = FixClient::connect(app.fix, "CLIENT2");
    let (mut user, mut pw) = (None, Some("old-pw".to_string()));
    c.session.swap_credentials(&mut user, &mut pw);
    assert!(
        c.reconnect(app.fix),
        "CLIENT2 logs on with the old password"
    );
    let order = |c: &mut FixClient, cl: &str| {
        c.order(
            cl,
            "ACME",
            Side::Buy,
            1,
            Some(990_000),
            TimeInForce::GoodTillCancel,
        );
        c.recv()
    };
    assert_eq!(order(&mut c, "L1").req(150), "0");
    assert_eq!(order(&mut c, "L2").req(103), "3", "quota 1");

    // A change that needs a restart refuses the whole reload: nothing applied.
    let bad = original
        .replace("max_open_orders = 1", "max_open_orders = 5")
        .replace("max_unauthenticated = 32", "max_unauthenticated = 33");
    assert_ne!(
        bad,
        original.replace("max_open_orders = 1", "max_open_orders = 5")
    );
    std::fs::write(&cfg, &bad).unwrap();
    let (code, v) = admin(&socket, &["reload"]);
    assert_eq!(code, 1, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("[gateway]") && err.contains("nothing reloaded"),
        "{err}"
    );
    assert_eq!(order(&mut c, "L3").req(103), "3", "still quota 1");

    // A configuration that does not load is refused the same way.
    std::fs::write(&cfg, "this is not toml").unwrap();
    let (code, v) = admin(&socket, &["reload"]);
    assert_eq!(code, 1, "{v}");

    // New password, quota 2, a notional quota: applied live; CLIENT2 stays logged on.
    let good = original.replace(
        "password = \"old-pw\"\nmax_open_orders = 1",
        "password = \"new-pw\"\nmax_open_orders = 2\nmax_open_notional = 500\nmax_orders_per_sec = 50",
    );
    std::fs::write(&cfg, &good).unwrap();
    let (code, v) = admin(&socket, &["reload"]);
    assert_eq!(
        (code, &v["reloaded"]),
        (0, &serde_json::json!(["fix:CLIENT2"])),
        "{v}"
    );
    assert_eq!(
        order(&mut c, "L4").req(150),
        "0",
        "quota 2 now, same connection"
    );
    assert_eq!(order(&mut c, "L5").req(103), "3", "and no more");
    let (_, v) = admin(&socket, &["sessions"]);
    let s = session(&v, "fix", "CLIENT2");
    assert_eq!(
        (
            &s["connected"],
            &s["max_open_orders"],
            &s["max_open_notional"]
        ),
        (&true.into(), &2.into(), &500.into()),
        "{s}"
    );

    // The next logon is checked against the new password.
    c.logout();
    assert!(
        !c.reconnect(app.fix),
        "the old password is refused after the reload"
    );
    let (mut user, mut pw) = (None, Some("new-pw".to_string()));
    c.session.swap_credentials(&mut user, &mut pw);
    assert!(c.reconnect(app.fix), "the new password logs on");

    // Counted by command and result (the exporter reads the console's counters at scrape).
    let counted = |app: &App, command: &str, result: &str| -> f64 {
        let key =
            format!("appliance_admin_commands_total{{command=\"{command}\",result=\"{result}\"}}");
        let page = app.http_get("/metrics");
        page.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} in {page}"))
    };
    assert_eq!(counted(&app, "reload", "refused"), 2.0);
    assert_eq!(counted(&app, "reload", "ok"), 1.0);

    // The journal names the reload (and no password).
    let records = control_records(&cfg);
    assert!(
        records.contains("reloaded the configuration of session 1") && !records.contains("pw"),
        "{records}"
    );
}

/// The controls on a binary user: a halt refuses its order with 116, the operator's cancel
/// reaches its working order (Cancelled, reason 10).
#[test]
fn halts_and_the_operators_cancel_reach_binary_users() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "written", &[]);
    let socket = dir.path().join("admin.sock");
    let app = App::start(&cfg);
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    let answer = |b: &mut BinClient| loop {
        match b.try_recv(Duration::from_secs(5)) {
            Some(ServerMessage::Heartbeat(_)) => continue,
            Some(m) => break m,
            None => panic!("no answer"),
        }
    };
    b.send(support::enter(1, "ACME", b'B', 990_000, 3, b'1'));
    assert!(matches!(answer(&mut b), ServerMessage::Accepted(_)));
    assert_eq!(admin(&socket, &["halt", "BOLT"]).0, 0);
    b.send(support::enter(2, "BOLT", b'B', 500_000, 1, b'1'));
    match answer(&mut b) {
        ServerMessage::Rejected(r) => assert_eq!(r.reason, 116, "instrument halted"),
        m => panic!("{m:?}"),
    }
    let (code, v) = admin(&socket, &["cancel", "session", "binary:CLIENT2"]);
    assert_eq!((code, &v["affected"]), (0, &serde_json::json!(1)), "{v}");
    match answer(&mut b) {
        ServerMessage::Cancelled(c) => {
            assert_eq!(
                (c.reason, c.cancelled_qty),
                (10, 3),
                "the operator's cancel"
            )
        }
        m => panic!("{m:?}"),
    }
}

//! FIX logon credentials against the real appliance binary:
//! - a session configured with a password and no username refuses a Logon with a wrong or
//!   missing password (it used to accept any password unless a username was configured);
//! - a refused Logon is closed without an answer and never touches the session: the right
//!   Logon afterwards starts from sequence number 1 on both sides (nothing was consumed), and
//!   a refused Logon while the real client is connected leaves that client trading.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fix::session::{MemoryStore, Session, SessionConfig};
use fixclient::FixClient;
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A FIX client for CLIENT1 whose Logon carries `password` (553 absent).
fn client_with_password(addr: SocketAddr, password: Option<&str>) -> FixClient {
    let mut c = FixClient::connect(addr, "CLIENT1");
    let mut cfg = SessionConfig::initiator("CLIENT1", "APPLIANCE");
    cfg.heart_bt_int = 30;
    cfg.password = password.map(str::to_string);
    c.session = Session::new(cfg, MemoryStore::with_capacity(1 << 20, 4096));
    c
}

/// Writes the client's Logon on its connection.
fn send_logon(c: &mut FixClient) {
    use std::io::Write;
    let now = fixclient::now_ns();
    c.session.on_connected(now);
    let mut out = Vec::new();
    c.session.initiate_logon(now, &mut out).unwrap();
    c.stream.write_all(&out).unwrap();
}

/// Sends the client's Logon and returns whatever the appliance sent before closing (it
/// must close within 5 s).
fn logon_is_refused(c: &mut FixClient) -> Vec<u8> {
    send_logon(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            Instant::now() < deadline,
            "the appliance kept a connection with bad credentials open; it sent: {}",
            String::from_utf8_lossy(&got)
        );
        match c.stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return got, // reset
        }
    }
}

/// Logs `c` on (asserting the appliance answers).
fn logon_is_accepted(c: &mut FixClient) {
    send_logon(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.session.is_logged_on() {
        assert!(Instant::now() < deadline, "no Logon answer");
        c.pump();
        assert!(!c.closed, "the appliance closed the right Logon");
    }
}

#[test]
fn a_password_without_a_username_is_checked_and_a_refused_logon_consumes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "written",
        &[(
            "target_comp_id = \"CLIENT1\"",
            "target_comp_id = \"CLIENT1\"\npassword = \"s3cret\"",
        )],
    );
    let app = App::start(&cfg);

    for bad in [Some("wrong"), None, Some("s3cre"), Some("s3cret!")] {
        let mut c = client_with_password(app.fix, bad);
        let got = logon_is_refused(&mut c);
        assert!(
            got.is_empty(),
            "password {bad:?}: refused without an answer, got {}",
            String::from_utf8_lossy(&got)
        );
    }

    // The right password: the appliance's Logon is its message 1 and it expects our 2 next,
    // so none of the refused attempts consumed a number on either side.
    let mut good = client_with_password(app.fix, Some("s3cret"));
    logon_is_accepted(&mut good);
    assert_eq!(
        good.session.next_target_seq(),
        2,
        "the appliance's Logon was its message 1"
    );

    // A refused Logon while the real client is connected does not disturb it.
    let mut intruder = client_with_password(app.fix, Some("guess"));
    assert!(logon_is_refused(&mut intruder).is_empty());
    good.order(
        "AUTH-1",
        "ACME",
        Side::Buy,
        5,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    let ack = good.recv();
    assert_eq!(ack.msg_type, "8");
    assert_eq!(ack.get(150), Some("0"), "the live session still trades");
    assert_eq!(
        ack.seq, 2,
        "the intruder consumed no number of the live session"
    );
}

#[test]
fn a_logon_with_heart_bt_int_0_or_too_long_is_answered_with_a_logout_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(&config_file(dir.path(), "written", &[]));
    for hb in [0u32, 301, 86_400] {
        let mut c = FixClient::connect(app.fix, "CLIENT1");
        let mut cfg = SessionConfig::initiator("CLIENT1", "APPLIANCE");
        cfg.heart_bt_int = hb;
        c.session = Session::new(cfg, MemoryStore::with_capacity(1 << 20, 4096));
        let got = String::from_utf8_lossy(&logon_is_refused(&mut c)).into_owned();
        assert!(
            got.contains("\u{1}35=5\u{1}"),
            "108={hb}: a Logout, got {got:?}"
        );
        assert!(
            got.contains("HeartBtInt (108) must be 1 to 300 seconds"),
            "108={hb}: {got:?}"
        );
    }
    // The session is usable at once with a sensible interval.
    let c = FixClient::logon(app.fix, "CLIENT1");
    assert!(c.session.is_logged_on());
}

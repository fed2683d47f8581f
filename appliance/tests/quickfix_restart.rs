//! A QuickFIX initiator (PyPI `quickfix-ssl`) with a persistent FileStore reconnects after the
//! appliance was killed with SIGKILL and restarted, without a sequence reset: it gets the
//! fill report it missed while away by ResendRequest (PossDupFlag=Y), and trades on against
//! the order it rested before the crash. The Python side is `tests/quickfix/restart.py`,
//! driven over stdin/stdout.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, free_port, App};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

struct Script {
    child: Child,
    lines: Receiver<String>,
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Script {
    /// The next JSON object the script prints (up to `within`).
    fn next(&mut self, within: Duration, what: &str) -> Value {
        let line = self.lines.recv_timeout(within).unwrap_or_else(|_| {
            let status = self.child.try_wait();
            let _ = self.child.kill();
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("no {what} from the QuickFIX script (exit: {status:?}); stderr: {err}")
        });
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON from the QuickFIX script ({e}): {line}"));
        assert!(
            v.get("error").is_none(),
            "QuickFIX script failed in {what}: {} (install QuickFIX with `pip install \
             quickfix-ssl` if it is missing)\n{v:#}",
            v["error"]
        );
        v
    }
}

#[test]
fn quickfix_file_store_session_continues_across_a_kill_9_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let fix_addr = format!("127.0.0.1:{port}");
    // CLIENT1 keeps its GTC order while logged out (no cancel-on-disconnect).
    let cfg = config_file(
        dir.path(),
        "written",
        &[
            ("127.0.0.1:9878", &fix_addr),
            (
                "target_comp_id = \"CLIENT1\"\ncancel_on_disconnect = true",
                "target_comp_id = \"CLIENT1\"\ncancel_on_disconnect = false",
            ),
        ],
    );
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains("\"CLIENT1\"\ncancel_on_disconnect = false"),
        "the default configuration's CLIENT1 session changed shape"
    );
    let mut app = App::start(&cfg);
    assert_eq!(app.fix.port(), port);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/quickfix/restart.py");
    let mut child = Command::new("python3")
        .args(["-X", "faulthandler"])
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path().join("qf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut script = Script { child, lines };

    // Phase 1: BUY-R rests, CLIENT1 logs out.
    let p1 = script.next(Duration::from_secs(60), "phase 1");
    let sender_before = p1["sender_after_phase1"].as_u64().unwrap();
    let target_before = p1["target_after_phase1"].as_u64().unwrap();

    // While CLIENT1 is away another firm's session sells 4 into BUY-R: CLIENT1's fill report
    // is stored for it. Once CLIENT2 has its own fill, CLIENT1's report is journaled too
    // (output leaves only after everything journaled before it).
    let mut other = FixClient::logon(app.fix, "CLIENT2");
    other.order(
        "HIT-1",
        "ACME",
        Side::Sell,
        4,
        Some(1_000_000),
        TimeInForce::ImmediateOrCancel,
    );
    let mut filled = false;
    for _ in 0..4 {
        let m = other.recv();
        if m.get(150) == Some("F") {
            assert_eq!(m.get(32), Some("4"), "{m:?}");
            filled = true;
            break;
        }
    }
    assert!(filled, "CLIENT2's sell traded with BUY-R");

    // Crash; the initiator starts reconnecting; the appliance comes back on the same port.
    app.kill9();
    script
        .child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    script.child.stdin.as_mut().unwrap().flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let app = App::start(&cfg);
    assert_eq!(app.fix.port(), port);

    let p2 = script.next(Duration::from_secs(90), "phase 2");
    let log = app.log();
    assert!(log.contains("recovered from"), "{log}");
    // No reset. QuickFIX's first Logon after the restart continues its numbering (each
    // attempt while the appliance was down consumed a number too: QuickFIX writes the Logon
    // before it learns the connect was refused; the appliance asks for those by
    // ResendRequest and QuickFIX gap-fills). The appliance's Logon continues its own: one
    // message (the fill) since the logout.
    let seq_out: Vec<u64> = serde_json::from_value(p2["logon_seq_out"].clone()).unwrap();
    let seq_in: Vec<u64> = serde_json::from_value(p2["logon_seq_in"].clone()).unwrap();
    assert_eq!(seq_out.get(1), Some(&sender_before), "{p2:#}");
    assert!(
        seq_out[1..].windows(2).all(|w| w[1] == w[0] + 1),
        "{seq_out:?}"
    );
    assert_eq!(
        seq_in.last(),
        Some(&(target_before + 1)),
        "the appliance's Logon after the restart continues its numbering: {seq_in:?} vs \
         {target_before} before"
    );
    // QuickFIX asked for what it missed, starting where it had stopped.
    let asked: Vec<(u64, u64)> = serde_json::from_value(p2["resend_requests_out"].clone()).unwrap();
    assert!(
        asked.iter().any(|&(begin, _)| begin == target_before),
        "a ResendRequest from {target_before}: {asked:?}"
    );
    type Report = (String, String, String, String, String, u64);
    let reports: Vec<Report> = serde_json::from_value(p2["reports"].clone()).unwrap();
    let fills: Vec<&Report> = reports
        .iter()
        .filter(|r| r.0 == "BUY-R" && r.1 == "F")
        .collect();
    assert_eq!(fills.len(), 2, "{reports:?}");
    assert_eq!(
        (fills[0].3.as_str(), fills[0].4.as_str()),
        ("4", "Y"),
        "the missed fill, resent with PossDupFlag=Y: {reports:?}"
    );
    assert_eq!(fills[0].5, target_before, "{reports:?}");
    assert_eq!(
        (fills[1].3.as_str(), fills[1].4.as_str()),
        ("2", "N"),
        "trading on: {reports:?}"
    );
    assert!(
        reports.iter().any(|r| r.0 == "CXL-R" && r.1 == "4"),
        "the rest of BUY-R, acknowledged before the crash, is live: {reports:?}"
    );
    assert_eq!(p2["rejects_sent_by_quickfix"], 0, "{p2:#}");
    assert_eq!(p2["rejects_received"], 0, "{p2:#}");
    assert!(script.child.wait().unwrap().success());
}

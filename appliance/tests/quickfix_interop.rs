//! Interoperability with an independent FIX engine against the real `appliance` binary: a
//! QuickFIX initiator (PyPI `quickfix-ssl`) logs on, exchanges heartbeats and a test request,
//! trades, is rejected, cancels, replaces, mass-cancels (every report validated by QuickFIX
//! against its own FIX44.xml), goes through a resend each way, logs out and reconnects with
//! sequence numbers continuing. The Python side is `tests/quickfix/initiator.py`.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Appliance(Child);

impl Drop for Appliance {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

/// Starts the appliance binary on ephemeral ports and returns it with its FIX port.
fn start_appliance(dir: &std::path::Path) -> (Appliance, u16) {
    let cfg = appliance::config::DEFAULT_TOML
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("127.0.0.1:9201", "127.0.0.1:0")
        .replace("max_orders = 1_000_000", "max_orders = 65_536")
        .replace("segment_mib = 64", "segment_mib = 4")
        .replace(
            "dir = \"appliance-data\"",
            &format!("dir = {:?}", dir.join("journal").display().to_string()),
        );
    let path = dir.join("appliance.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(["run", "--config"])
        .arg(&path)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let app = Appliance(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the appliance did not become ready"
        );
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if let Some(rest) = line.split("FIX on ").nth(1) {
            let addr = rest.split(',').next().unwrap();
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            // Keep draining stderr so the appliance never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (app, port);
        }
    }
}

#[test]
fn quickfix_initiator_against_the_appliance_binary() {
    let dir = std::env::temp_dir().join(format!("appliance-qf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_app, port) = start_appliance(&dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/quickfix/initiator.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.join("qf"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON from the initiator ({e}); stdout: {stdout}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        r.get("error").is_none(),
        "initiator failed: {} (install QuickFIX with `pip install quickfix-ssl` if it is missing)\n{r:#}",
        r["error"]
    );
    assert!(out.status.success());
    assert_eq!(r["logons"], 2);
    assert_eq!(r["logouts"], 2);
    assert!(r["heartbeats_received"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["test_request_answered"], true);
    // Nothing the appliance sent failed QuickFIX's validation, and it rejected nothing of ours.
    assert_eq!(r["rejects_sent_by_quickfix"], 0, "{r:#}");
    assert_eq!(r["rejects_received"], 0, "{r:#}");
    let reports: Vec<(String, String, String, String, String)> =
        serde_json::from_value(r["reports"].clone()).unwrap();
    let has = |kind: &str, cl: &str, what: &str| {
        reports
            .iter()
            .any(|x| x.0 == kind && x.1 == cl && x.2 == what)
    };
    for (kind, cl, what) in [
        ("8", "BUY-1", "0"),
        ("8", "BUY-1", "F"),
        ("8", "SELL-1", "0"),
        ("8", "SELL-1", "F"),
        ("8", "BAD-TICK", "8"),
        ("8", "BUY-2", "5"),
        ("8", "BUY-3", "4"),
        ("9", "BUY-4", "0"),
        ("8", "REST-1", "4"),
        ("8", "REST-2", "4"),
        ("r", "MASS-1", "7"),
        ("8", "PROBE-1", "4"),
        ("8", "AFTER-GAP", "4"),
        ("8", "AGAIN", "4"),
    ] {
        assert!(
            has(kind, cl, what),
            "missing {kind} {cl} {what} in {reports:?}"
        );
    }
    // Resends both ways: QuickFIX asked and got PossDup copies; the appliance asked and got
    // QuickFIX's gap fill (AFTER-GAP then went through).
    assert!(!r["resend_requests_out"].as_array().unwrap().is_empty());
    assert!(
        reports.iter().any(|x| x.4 == "Y"),
        "resent reports carry PossDupFlag=Y"
    );
    assert!(!r["resend_requests_in"].as_array().unwrap().is_empty());
    // The second Logon continues both sequences.
    let seq_out: Vec<u64> = serde_json::from_value(r["logon_seq_out"].clone()).unwrap();
    let seq_in: Vec<u64> = serde_json::from_value(r["logon_seq_in"].clone()).unwrap();
    assert_eq!(seq_out.len(), 2);
    assert!(
        seq_out[1] > 1 && seq_in[1] > 1,
        "sequence numbers continue: {seq_out:?} {seq_in:?}"
    );
    assert_eq!(
        seq_out[1],
        r["first_connection"]["sender"].as_u64().unwrap() + 1
    );
}

/// QuickFIX subscribes to FIX market data: its own FIX44 classes build the MarketDataRequest
/// (35=V) and read the W, X and Y the appliance sends, each validated by QuickFIX against its
/// FIX44.xml first. The Python side is `tests/quickfix/md_subscriber.py`.
#[test]
fn quickfix_subscribes_to_market_data_and_reads_snapshots_refreshes_and_rejects() {
    let dir = std::env::temp_dir().join(format!("appliance-qf-md-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_app, port) = start_appliance(&dir);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/quickfix/md_subscriber.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.join("qf"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON from the subscriber ({e}); stdout: {stdout}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        r.get("error").is_none(),
        "subscriber failed: {} (install QuickFIX with `pip install quickfix-ssl` if it is missing)\n{r:#}",
        r["error"]
    );
    assert!(out.status.success());
    // Nothing the appliance sent failed QuickFIX's validation; nothing of ours was refused.
    assert_eq!(r["rejects_sent_by_quickfix"], 0, "{r:#}");
    assert_eq!(r["rejects_received"], 0, "{r:#}");
    assert_eq!(r["business_rejects"], 0, "{r:#}");
    // The snapshot: the resting offer, no bid, no trade yet.
    assert_eq!(
        r["snapshots"],
        serde_json::json!([["MD1", "ACME", [["1", "101", "7", "1"]]]]),
        "{r:#}"
    );
    // The refreshes: the trade, the offer shrinking to 5, the new bid (in whatever passes
    // they fell), each entry naming ACME.
    let mut entries: Vec<Vec<String>> = Vec::new();
    for x in r["incrementals"].as_array().unwrap() {
        assert_eq!(x[0], "MD1");
        for e in x[1].as_array().unwrap() {
            entries.push(serde_json::from_value(e.clone()).unwrap());
        }
    }
    let e = |v: [&str; 6]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        entries,
        [
            e(["0", "2", "ACME", "101", "2", ""]),
            e(["1", "1", "ACME", "101", "5", "1"]),
            e(["0", "0", "ACME", "99", "5", "1"]),
        ],
        "{r:#}"
    );
    assert_eq!(
        r["md_rejects"],
        serde_json::json!([["BAD", "0", "unknown symbol"]]),
        "{r:#}"
    );
    assert_eq!(r["refreshes_after_unsubscribe"], 0, "{r:#}");
}

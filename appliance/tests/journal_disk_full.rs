//! A full disk under the real binary: the journal lives on a 10 MiB tmpfs of which a ballast
//! file takes 4 MiB, so the first segment (4 MiB) fits and the next one cannot be prepared.
//! The appliance keeps running; new orders and cancels are refused with reject 114
//! (`journal_unavailable`, FIX OrdRejReason 99 and its Text), `appliance_journal_refusing`
//! is 1, the log says so once; when the ballast is deleted the next segment is prepared, the
//! gate opens by itself and orders are accepted again; at shutdown the journal's replica
//! agrees with the live state.
//!
//! Needs root (it mounts a tmpfs); as root it always runs.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs to fill a real disk and needs root (CI runs as \
             root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn metric(app: &App, name: &str) -> f64 {
    let text = app.http_get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn wait_metric(app: &App, name: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(app, name) != want {
        assert!(
            Instant::now() < deadline,
            "{name} never became {want}:\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_disk_refuses_orders_with_114_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let _fs = Tmpfs::mount(&disk, "10m");
    let ballast = disk.join("ballast");
    std::fs::write(&ballast, vec![1u8; 4 << 20]).unwrap();
    // The exporter publishes every 100 ms so the gauges follow quickly.
    let cfg = config_file(
        &disk,
        "written",
        &[("interval_ms = 1000", "interval_ms = 100")],
    );
    let mut app = App::start(&cfg);
    wait_metric(&app, "appliance_journal_refusing", 1.0);
    assert!(metric(&app, "appliance_journal_segment_prepare_errors_total") >= 1.0);
    assert!(
        app.log().contains("journal unavailable"),
        "logged once: {}",
        app.log()
    );

    let mut c = FixClient::logon(app.fix, "CLIENT1");
    c.order(
        "FULL-1",
        "ACME",
        Side::Buy,
        5,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    let r = c.recv();
    assert_eq!(
        (r.get(150), r.get(103)),
        (Some("8"), Some("99")),
        "refused: {r:?}"
    );
    assert!(
        r.get(58).is_some_and(|t| t.contains("journal unavailable")),
        "{r:?}"
    );
    c.cancel("X-1", "NOPE", "ACME", Side::Buy);
    let r = c.recv();
    assert_eq!(r.msg_type, "9", "a cancel is refused too: {r:?}");
    assert!(
        r.get(58).is_some_and(|t| t.contains("journal unavailable")),
        "{r:?}"
    );

    // Room again: the next segment is prepared and the gate opens without intervention.
    std::fs::remove_file(&ballast).unwrap();
    wait_metric(&app, "appliance_journal_refusing", 0.0);
    c.order(
        "FULL-2",
        "ACME",
        Side::Buy,
        5,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    let r = c.recv();
    assert_eq!(r.get(150), Some("0"), "accepted again: {r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.log().contains("journal writing again") {
        assert!(Instant::now() < deadline, "{}", app.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("the journal's replica agrees"), "{log}");
}

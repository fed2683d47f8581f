//! A hot thread that dies is visible and safe, against the real binary: the test hook
//! `APPLIANCE_INJECT_PANIC=<thread>` makes one thread panic about a second after it starts.
//! Then `/health/live` and `/health/ready` answer 503 naming the dead thread, and the process
//! exits by itself with status 70 (systemd's `Restart=on-failure` restarts it). Before, nothing
//! noticed: readiness stayed 200 and the engine spun for ever on the dead gateway's ring.
//! Checked for a gateway and an engine (dedicated threads) and for the one shared thread.

#[path = "support/app.rs"]
mod app;

use app::{config_file, App};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `GET path`: status code and body, or `None` when the exporter does not answer.
fn get(app: &App, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&app.exporter, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn dies(thread: &str, threading: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "written",
        &[(
            "threading = \"auto\"",
            &format!("threading = \"{threading}\""),
        )],
    );
    assert!(
        std::fs::read_to_string(&cfg)
            .unwrap()
            .contains(&format!("threading = \"{threading}\"")),
        "the configuration asks for {threading}"
    );
    let mut app = App::start_with_env(&cfg, &[("APPLIANCE_INJECT_PANIC", thread)]);
    assert_eq!(
        get(&app, "/health/live").map(|r| r.0),
        Some(200),
        "alive at first"
    );
    // Within a few seconds liveness fails, naming the thread, and readiness with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let live = loop {
        assert!(
            Instant::now() < deadline,
            "/health/live still 200 10 s after the panic:\n{}",
            app.log()
        );
        match get(&app, "/health/live") {
            Some((503, body)) => break body,
            Some((200, _)) => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("/health/live: {other:?} before it said 503:\n{}", app.log()),
        }
    };
    let v: serde_json::Value = serde_json::from_str(&live).unwrap();
    assert_eq!(v["status"], "failed", "{live}");
    let named = v["dead_threads"].as_array().unwrap();
    let expect = if thread == "shared" {
        "gateway-0"
    } else {
        thread
    };
    assert!(
        named.iter().any(|n| n == expect),
        "{expect} named dead: {live}"
    );
    if let Some((code, body)) = get(&app, "/health/ready") {
        assert_eq!(code, 503, "not ready with a dead thread: {body}");
    }
    // And the process exits by itself, non-zero, for its supervisor to restart it.
    let code = app.wait_exit(Duration::from_secs(10));
    let log = app.log();
    assert_eq!(code, Some(70), "exit status 70:\n{log}");
    assert!(
        log.contains("injected panic"),
        "the panic is in the log:\n{log}"
    );
    assert!(log.contains("died"), "the exit says why:\n{log}");
}

#[test]
fn a_dead_gateway_thread_fails_liveness_and_exits_70() {
    dies("gateway-0", "dedicated");
}

#[test]
fn a_dead_engine_thread_fails_liveness_and_exits_70() {
    dies("engine-0", "dedicated");
}

#[test]
fn a_dead_shared_thread_fails_liveness_and_exits_70() {
    dies("shared", "shared");
}

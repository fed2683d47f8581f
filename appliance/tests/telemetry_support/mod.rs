//! Helpers shared by the telemetry tests: an appliance with telemetry on, a little load,
//! an HTTP GET with timeouts, and a reader for the Prometheus text format.
#![allow(dead_code)]

use crate::net::{start, test_config, BinClient};
use appliance::binary::wire::ServerMessage;
use appliance::config::{Config, IoBackend};
use appliance::runtime::launch::Running;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const PX: i64 = 1_000_000;

/// The test configuration with a short hand-over interval (so tests need not wait a second).
pub fn telemetry_config(interval_ms: u64) -> Config {
    let mut cfg = test_config();
    cfg.exporter.enabled = true;
    cfg.exporter.interval_ms = interval_ms;
    cfg
}

/// Starts the appliance with telemetry and the journal on (as the default configuration
/// runs), journaling into a temporary directory that lives as long as the guard.
pub fn start_journaled_with_telemetry(interval_ms: u64) -> (Running, tempfile::TempDir) {
    let (mut cfg, dir) = crate::net::journaled_config();
    cfg.exporter.enabled = true;
    cfg.exporter.interval_ms = interval_ms;
    let app = start(&cfg, IoBackend::Auto);
    assert!(app.exporter_addr.is_some(), "exporter enabled");
    (app, dir)
}

/// Starts the appliance with telemetry on (epoll: works on every host).
pub fn start_with_telemetry(interval_ms: u64) -> Running {
    let app = start(&telemetry_config(interval_ms), IoBackend::Auto);
    assert!(app.exporter_addr.is_some(), "exporter enabled");
    app
}

/// `GET path` on `addr`: (status, body). Bounded by timeouts.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).expect("connect")
}

/// `GET path` on `addr`, or `None` when nothing listens there (yet).
pub fn try_http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read the answer");
    let text = String::from_utf8(buf).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    Some((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// Decodes a chunked body (Prometheus's own server may answer that way).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Metric names an expression refers to: every `appliance_*` and `process_*` identifier
/// (our metrics and the process collector's; `up` and functions are Prometheus's own).
pub fn referenced_names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\b(?:appliance|process)_[a-zA-Z0-9_]+\b").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// The repository's `monitoring/` directory.
pub fn monitoring_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring")
}

/// Runs a tool, failing with how to install it when it is missing.
pub fn run_tool(cmd: &str, args: &[&str], install: &str) -> std::process::Output {
    match std::process::Command::new(cmd).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {cmd} ({e}): install it with `{install}`"),
    }
}

/// Crossing orders from two binary users: `n` rounds of a resting buy hit by a sell, plus
/// one order rejected for an unknown symbol. Returns once every reply arrived, with the two
/// clients (dropping them disconnects, which cancels their resting orders).
pub fn trade_load(app: &Running, n: u64) -> (BinClient, BinClient) {
    let addr = app.binary_addr;
    let mut buyer = BinClient::login(addr, "CLIENT1");
    let mut seller = BinClient::login(addr, "CLIENT2");
    for i in 0..n {
        buyer.send(crate::support::enter(2 * i + 1, "ACME", b'B', PX, 10, b'0'));
        assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
        seller.send(crate::support::enter(2 * i + 2, "ACME", b'S', PX, 10, b'0'));
        assert!(matches!(seller.recv(), ServerMessage::Accepted(_)));
        assert!(matches!(seller.recv(), ServerMessage::Executed(_)));
        assert!(matches!(buyer.recv(), ServerMessage::Executed(_)));
    }
    // One resting order on each side so book gauges have values.
    buyer.send(crate::support::enter(
        10_001,
        "ACME",
        b'B',
        PX - 100,
        5,
        b'0',
    ));
    assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
    seller.send(crate::support::enter(
        10_002,
        "ACME",
        b'S',
        PX + 100,
        5,
        b'0',
    ));
    assert!(matches!(seller.recv(), ServerMessage::Accepted(_)));
    buyer.send(crate::support::enter(10_003, "NOPE", b'B', PX, 5, b'0'));
    assert!(matches!(buyer.recv(), ServerMessage::Rejected(_)));
    (buyer, seller)
}

/// Scrapes `/metrics` until `ok(page)` holds or `within` passes; returns the last page.
pub fn scrape_until(addr: SocketAddr, within: Duration, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (code, page) = http_get(addr, "/metrics");
        assert_eq!(code, 200);
        if ok(&page) || Instant::now() > deadline {
            return page;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the sample `name{labels}` (labels written exactly as exposed, in the order
/// the exporter gives them; `""` for none).
pub fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

/// Every metric name the page exposes: sample names and the names of HELP/TYPE lines.
pub fn exposed_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for l in page.lines() {
        let name = if let Some(rest) = l.strip_prefix("# HELP ").or(l.strip_prefix("# TYPE ")) {
            rest.split(' ').next()
        } else if l.starts_with('#') || l.is_empty() {
            None
        } else {
            l.split(['{', ' ']).next()
        };
        if let Some(n) = name {
            names.insert(n.to_string());
        }
    }
    names
}

//! The exporter against a running appliance: `/metrics` in the Prometheus text format with
//! the latency histograms and business, session, ring and engine metrics moving under load;
//! the health endpoints; the shutdown summary still covering every sample; health checks
//! answered promptly while slow, silent and deaf clients hold connections open.

#[path = "support/net.rs"]
mod net;
mod support;
mod telemetry_support;

use appliance::exporter::server::{MAX_CONNECTIONS, REQUEST_DEADLINE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use telemetry_support::*;

#[test]
fn metrics_follow_the_load_and_health_reports_readiness() {
    let app = start_with_telemetry(50);
    let addr = app.exporter_addr.unwrap();
    assert!(addr.ip().is_loopback());

    let (code, body) = http_get(addr, "/health/live");
    assert_eq!(code, 200);
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(live["status"], "live");
    let (code, body) = http_get(addr, "/health/ready");
    assert_eq!(code, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["recovery_complete"], true);
    assert_eq!(ready["engines_running"], ready["engines"]);
    let (code, body) = http_get(addr, "/health");
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "live");
    assert_eq!(health["ready"], true);
    assert!(body.len() < 64, "a short body: {body}");
    assert_eq!(http_get(addr, "/nope").0, 404);

    let _clients = trade_load(&app, 20);
    // Counters are published once per interval: wait for the last ones of the load.
    let page = scrape_until(addr, Duration::from_secs(10), |p| {
        sample(p, "appliance_trades_total", r#"symbol="ACME""#) == Some(20.0)
            && sample(
                p,
                "appliance_resting_orders",
                r#"symbol="ACME",side="sell""#,
            ) == Some(1.0)
            && sample(
                p,
                "appliance_order_rejects_total",
                r#"reason="unknown_symbol""#,
            ) == Some(1.0)
            && sample(
                p,
                "appliance_latency_seconds_count",
                r#"stage="wire_to_wire""#,
            )
            .is_some_and(|n| n >= 43.0)
    });
    // 20 buys + 20 sells + 2 resting orders entered; one refused before the engine.
    let buys = sample(
        &page,
        "appliance_orders_received_total",
        r#"protocol="binary",side="buy",type="limit""#,
    );
    assert_eq!(buys, Some(21.0), "{page}");
    assert_eq!(
        sample(
            &page,
            "appliance_order_rejects_total",
            r#"reason="unknown_symbol""#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "appliance_traded_volume_total", r#"symbol="ACME""#),
        Some(200.0)
    );
    assert_eq!(
        sample(
            &page,
            "appliance_resting_orders",
            r#"symbol="ACME",side="buy""#
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "appliance_best_bid_price", r#"symbol="ACME""#),
        Some(99.99)
    );
    assert_eq!(
        sample(&page, "appliance_best_ask_price", r#"symbol="ACME""#),
        Some(100.01)
    );
    assert_eq!(
        sample(&page, "appliance_last_trade_price", r#"symbol="ACME""#),
        Some(100.0)
    );
    assert_eq!(
        sample(
            &page,
            "appliance_sessions_connected",
            r#"protocol="binary""#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &page,
            "appliance_session_logons_total",
            r#"protocol="binary""#
        ),
        Some(2.0)
    );
    assert!(sample(
        &page,
        "appliance_messages_received_total",
        r#"protocol="binary""#
    )
    .is_some_and(|n| n >= 45.0));
    // Every stage saw samples; buckets are cumulative and end at the count.
    for stage in ["ingress", "ring", "engine", "egress", "wire_to_wire"] {
        let l = format!(r#"stage="{stage}""#);
        let n = sample(&page, "appliance_latency_seconds_count", &l).unwrap();
        assert!(n > 0.0, "{stage}: no samples");
        let inf = sample(
            &page,
            "appliance_latency_seconds_bucket",
            &format!(r#"stage="{stage}",le="+Inf""#),
        );
        assert_eq!(inf, Some(n));
        assert!(sample(&page, "appliance_latency_seconds_sum", &l).unwrap() > 0.0);
    }
    assert!(page.contains(r#"appliance_latency_seconds_bucket{stage="engine",le="0.0000001"}"#));
    // Quantile gauges cover the samples since the previous scrape: present for every stage,
    // labelled `q` (Prometheus keeps `quantile` for summaries).
    for stage in ["ingress", "ring", "engine", "egress", "wire_to_wire"] {
        for q in ["0.5", "0.9", "0.99", "0.999", "0.9999", "1"] {
            let l = format!(r#"stage="{stage}",q="{q}""#);
            assert!(
                sample(&page, "appliance_latency_window_quantile_seconds", &l).is_some(),
                "{l} missing"
            );
        }
    }
    assert!(page.contains("# TYPE appliance_latency_window_quantile_seconds gauge"));
    assert!(
        !page.contains("quantile=\""),
        "no quantile label outside a summary"
    );
    assert!(sample(&page, "appliance_ring_capacity_slots", r#"ring="g0->e0""#).is_some());
    assert!(
        sample(&page, "appliance_engine_commands_total", r#"engine="0""#)
            .is_some_and(|n| n >= 42.0)
    );
    assert!(sample(
        &page,
        "appliance_telemetry_handovers_total",
        r#"thread="engine-0""#
    )
    .is_some_and(|n| n >= 1.0));
    assert_eq!(sample(&page, "appliance_ready", ""), Some(1.0));
    assert!(page.contains(&format!(
        r#"appliance_build_info{{version="{}",git_hash=""#,
        env!("CARGO_PKG_VERSION")
    )));
    assert!(sample(&page, "process_resident_memory_bytes", "").is_some_and(|b| b > 0.0));
    assert!(page.contains(r#"appliance_memory_bytes{backing="normal"}"#));

    // The shutdown summary still holds every sample: handed over or not.
    let total = sample(
        &page,
        "appliance_latency_seconds_count",
        r#"stage="wire_to_wire""#,
    )
    .unwrap() as u64;
    let stopped = app.stop();
    let w2w = stopped
        .histograms
        .get(appliance::rings::stamp::Stage::WireToWire)
        .len();
    assert!(w2w >= total && w2w >= 43, "summary {w2w}, exported {total}");
}

#[test]
fn disabled_exporter_serves_nothing_and_keeps_the_summary() {
    let mut cfg = telemetry_config(50);
    cfg.exporter.enabled = false;
    let app = net::start(&cfg, appliance::config::IoBackend::Auto);
    assert!(app.exporter_addr.is_none());
    let _clients = trade_load(&app, 3);
    let stopped = app.stop();
    assert!(
        stopped
            .histograms
            .get(appliance::rings::stamp::Stage::WireToWire)
            .len()
            >= 7
    );
}

#[test]
fn disconnect_reasons_are_counted() {
    let app = start_with_telemetry(20);
    let addr = app.exporter_addr.unwrap();
    {
        let c = net::BinClient::login(app.binary_addr, "CLIENT1");
        drop(c); // closes the socket without logging out
    }
    let page = scrape_until(addr, Duration::from_secs(10), |p| {
        sample(
            p,
            "appliance_session_disconnects_total",
            r#"protocol="binary",reason="peer_closed""#,
        ) == Some(1.0)
    });
    assert_eq!(
        sample(
            &page,
            "appliance_session_disconnects_total",
            r#"protocol="binary",reason="peer_closed""#,
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "appliance_sessions_connected",
            r#"protocol="binary""#
        ),
        Some(0.0)
    );
    app.stop();
}

/// `GET path` that must be answered in full within `limit` (connect included).
fn get_within(addr: SocketAddr, path: &str, limit: Duration) -> Result<(u16, String), String> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(limit)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!("no complete answer within {limit:?}"));
        }
        s.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 16 << 10];
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("after {:?}: {e}", start.elapsed())),
        }
    }
    let text = String::from_utf8(buf).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no head")?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((code, body.to_string()))
}

/// Whether the peer closed `s` (EOF or reset), waiting at most `within`.
fn closed(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 256];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Badly behaved clients, one thread each, reconnecting whenever the exporter closes them,
/// until stopped. Each records how long the exporter let its connections live.
struct Attack {
    stop: Arc<AtomicBool>,
    lifetimes: Arc<Mutex<Vec<(&'static str, Duration)>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Sends a never-ending request head, one byte every `period`.
    Dripper { period: Duration },
    /// Connects and sends nothing.
    Silent,
    /// Sends a complete `GET /metrics` and never reads the answer.
    Deaf,
}

impl Attack {
    fn new() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            lifetimes: Arc::default(),
            threads: Vec::new(),
        }
    }

    fn spawn(&mut self, addr: SocketAddr, kind: Kind, n: usize) {
        for _ in 0..n {
            let stop = self.stop.clone();
            let lifetimes = self.lifetimes.clone();
            self.threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    let opened = Instant::now();
                    let (name, was_closed) = match kind {
                        Kind::Dripper { period } => {
                            let mut ok = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").is_ok();
                            let mut was_closed = false;
                            while ok && !stop.load(Ordering::Relaxed) {
                                // Waits one period, or less if the exporter closes.
                                if closed(&mut s, period) {
                                    was_closed = true;
                                    break;
                                }
                                ok = s.write_all(b"a").is_ok();
                            }
                            ("dripper", was_closed || !ok)
                        }
                        Kind::Silent => {
                            let mut was_closed = false;
                            while !stop.load(Ordering::Relaxed) {
                                if closed(&mut s, Duration::from_millis(100)) {
                                    was_closed = true;
                                    break;
                                }
                            }
                            ("silent", was_closed)
                        }
                        Kind::Deaf => {
                            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
                            let hold = Instant::now() + Duration::from_secs(3);
                            while !stop.load(Ordering::Relaxed) && Instant::now() < hold {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            ("deaf", false)
                        }
                    };
                    if was_closed {
                        lifetimes.lock().unwrap().push((name, opened.elapsed()));
                        // An evicted client comes back, but not in a tight loop.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }));
        }
    }

    /// Stops every client; returns the lifetimes of the connections the exporter closed.
    fn stop(self) -> Vec<(&'static str, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.lifetimes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// Slow clients (a byte every 1.5 s, under the old 2 s per-read timeout), silent clients
/// and clients that never read their answer, first fewer than the connection table holds
/// (so the request deadline is what closes them), then with enough silent clients to keep
/// the table full (so the oldest connections give up their slots). Throughout,
/// `/health/live` answers 200 within 1 s every time, `/health` too, and well-behaved scrapes
/// of `/metrics` get their page. Every connection the exporter closes lived no longer than
/// the request deadline (plus scheduling slack), and both kinds of drop show on `/metrics`.
#[test]
fn health_answers_within_a_second_while_slow_clients_hold_connections() {
    let app = start_with_telemetry(50);
    let addr = app.exporter_addr.unwrap();
    let mut attack = Attack::new();
    attack.spawn(
        addr,
        Kind::Dripper {
            period: Duration::from_millis(1500),
        },
        4,
    );
    attack.spawn(addr, Kind::Silent, 8);
    attack.spawn(addr, Kind::Deaf, 2);
    // Let the attack settle in: drippers mid-request.
    std::thread::sleep(Duration::from_millis(300));

    let phase = Duration::from_secs(4);
    let started = Instant::now();
    let (mut checks, mut scrapes, mut slowest, mut table_full) = (0, 0, Duration::ZERO, false);
    while started.elapsed() < 2 * phase {
        if !table_full && started.elapsed() >= phase {
            // More silent clients than slots.
            attack.spawn(addr, Kind::Silent, MAX_CONNECTIONS);
            table_full = true;
        }
        let t = Instant::now();
        let (code, body) = get_within(addr, "/health/live", Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("health check {checks} during the attack: {e}"));
        slowest = slowest.max(t.elapsed());
        assert_eq!(code, 200, "{body}");
        let live: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(live["status"], "live");
        checks += 1;
        if checks % 5 == 0 {
            let (code, body) = get_within(addr, "/health", Duration::from_secs(1))
                .unwrap_or_else(|e| panic!("/health during the attack: {e}"));
            assert_eq!(code, 200, "{body}");
            let (code, page) = get_within(addr, "/metrics", Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("scrape during the attack: {e}"));
            assert_eq!(code, 200);
            assert!(
                sample(&page, "appliance_ready", "") == Some(1.0),
                "a whole page: {page}"
            );
            scrapes += 1;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let page = scrape_until(addr, Duration::from_secs(1), |_| true);
    let lifetimes = attack.stop();
    assert!(
        checks >= 20 && scrapes >= 4,
        "{checks} checks, {scrapes} scrapes"
    );
    eprintln!("{checks} health checks, slowest {slowest:?}; {scrapes} scrapes");

    let bound = REQUEST_DEADLINE + Duration::from_secs(1);
    for (kind, lived) in &lifetimes {
        assert!(*lived < bound, "a {kind} connection lived {lived:?}");
    }
    let count = |kind: &str| lifetimes.iter().filter(|(k, _)| *k == kind).count();
    assert!(
        count("dripper") >= 4 && count("silent") >= MAX_CONNECTIONS,
        "{} dripping and {} silent connections closed",
        count("dripper"),
        count("silent")
    );
    let dropped = |reason: &str| {
        sample(
            &page,
            "appliance_exporter_connections_dropped_total",
            &format!(r#"reason="{reason}""#),
        )
        .unwrap_or_else(|| panic!("no {reason} drops on the page"))
    };
    assert!(
        dropped("deadline") >= 10.0 && dropped("table_full") >= 1.0,
        "deadline {}, table_full {}",
        dropped("deadline"),
        dropped("table_full")
    );
    app.stop();
}

/// A client that keeps sending (a byte every 200 ms, far inside any per-read timeout) but
/// never finishes its request is cut off at the request deadline, counted from accept.
#[test]
fn a_request_that_trickles_in_is_cut_off_at_the_deadline() {
    let app = start_with_telemetry(50);
    let addr = app.exporter_addr.unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let opened = Instant::now();
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").unwrap();
    let limit = REQUEST_DEADLINE + Duration::from_secs(1);
    let lived = loop {
        if closed(&mut s, Duration::from_millis(200)) || s.write_all(b"a").is_err() {
            break opened.elapsed();
        }
        assert!(
            opened.elapsed() < limit,
            "still open after {:?}",
            opened.elapsed()
        );
    };
    assert!(
        lived + Duration::from_millis(50) >= REQUEST_DEADLINE,
        "closed after {lived:?}, before its deadline"
    );
    let page = scrape_until(addr, Duration::from_secs(1), |_| true);
    assert_eq!(
        sample(
            &page,
            "appliance_exporter_connections_dropped_total",
            r#"reason="deadline""#
        ),
        Some(1.0)
    );
    app.stop();
}

//! The monitoring assets against the real tools and a running appliance: `promtool` checks
//! and rule unit tests, `promtool check metrics` finds nothing to lint on a live `/metrics`,
//! every metric name used by an alert or a dashboard exists there, and a real Prometheus
//! server scrapes the appliance under load.
//!
//! Needs `promtool` and `prometheus` (Debian package `prometheus`; `scripts/ci/30-test.sh`
//! and `scripts/ci/50-monitoring.sh` install it).

#[path = "support/net.rs"]
mod net;
mod support;
mod telemetry_support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use telemetry_support::*;

const INSTALL: &str = "apt-get install prometheus";

fn promtool(args: &[&str]) {
    let dir = monitoring_dir();
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): install it with `{INSTALL}`"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_config_and_rules_and_the_rule_tests_pass() {
    promtool(&["check", "config", "prometheus.yml"]);
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "tests/alerts_test.yml"]);
}

/// `promtool check metrics` reads a page on stdin and lists what breaks Prometheus's naming
/// and labelling conventions (a `quantile` label outside a summary, a counter without
/// `_total`, ...), exiting non-zero; a page from an appliance under load must give nothing.
#[test]
fn promtool_finds_nothing_to_lint_on_a_live_metrics_page() {
    let (app, _journal) = start_journaled_with_telemetry(50);
    let addr = app.exporter_addr.unwrap();
    let _clients = trade_load(&app, 5);
    // A page with every family moved by the load.
    let page = scrape_until(addr, Duration::from_secs(10), |p| {
        sample(p, "appliance_trades_total", r#"symbol="ACME""#) == Some(5.0)
    });
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): install it with `{INSTALL}`"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(page.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics ({}):\n{report}",
        out.status
    );
    // The latency quantiles are there, as gauges labelled `q`.
    assert!(
        page.contains("appliance_latency_window_quantile_seconds{"),
        "{page}"
    );
    app.stop();
}

/// Every expression in `alerts.yml` and every `expr`/`query` in the dashboards.
fn monitoring_expressions() -> Vec<(String, String)> {
    let dir = monitoring_dir();
    let mut exprs = Vec::new();
    let alerts = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    exprs.push(("alerts.yml".to_string(), alerts));
    let dashboards = dir.join("grafana/dashboards");
    let mut n = 0;
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        n += 1;
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, x) in m {
                        if (k == "expr" || k == "query") && x.is_string() {
                            out.push(x.as_str().unwrap().to_string());
                        } else {
                            walk(x, out);
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(&v, &mut found);
        assert!(!found.is_empty(), "{} has no queries", path.display());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        exprs.extend(found.into_iter().map(|e| (name.clone(), e)));
    }
    assert!(
        n >= 4,
        "latency, business, sessions/rings, host/process dashboards"
    );
    exprs
}

#[test]
fn every_metric_in_alerts_and_dashboards_exists_on_a_live_exporter() {
    // Journaling, as the default configuration runs: its metrics are exposed.
    let (app, _journal) = start_journaled_with_telemetry(50);
    let addr = app.exporter_addr.unwrap();
    let _clients = trade_load(&app, 5);
    let page = scrape_until(addr, Duration::from_secs(10), |p| {
        sample(p, "appliance_trades_total", r#"symbol="ACME""#) == Some(5.0)
    });
    let exposed = exposed_names(&page);
    let mut missing = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for (file, expr) in monitoring_expressions() {
        for name in referenced_names(&expr) {
            checked.insert(name.clone());
            if !exposed.contains(&name) {
                missing.insert(format!("{name} (in {file})"));
            }
        }
    }
    assert!(missing.is_empty(), "not on /metrics: {missing:?}");
    assert!(checked.len() >= 30, "only {} names checked", checked.len());
    // The latency dashboard has the heatmap the issue asks for.
    let lat =
        std::fs::read_to_string(monitoring_dir().join("grafana/dashboards/latency.json")).unwrap();
    assert!(lat.contains(r#""type": "heatmap""#));
    app.stop();
}

/// A Prometheus server in a temporary directory, killed when dropped.
struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("appliance-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let alerts = monitoring_dir().join("alerts.yml").canonicalize().unwrap();
    // The shipped configuration with the test's target and a 1 s scrape interval.
    let shipped = std::fs::read_to_string(monitoring_dir().join("prometheus.yml")).unwrap();
    let cfg = shipped
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("evaluation_interval: 5s", "evaluation_interval: 1s")
        .replace("scrape_timeout: 4s", "scrape_timeout: 1s")
        .replace("127.0.0.1:9100", &target.to_string())
        .replace("  - alerts.yml", &format!("  - {}", alerts.display()));
    assert!(cfg.contains(&target.to_string()));
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let addr = free_port();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run prometheus ({e}): install it with `{INSTALL}`"));
    Prometheus { child, dir, addr }
}

/// Runs an instant query; returns the first result's value.
fn query(prom: SocketAddr, q: &str) -> Option<f64> {
    let (code, body) = try_http_get(prom, &format!("/api/v1/query?query={}", url_encode(q)))?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_scrapes_the_appliance_under_load() {
    let app = start_with_telemetry(100);
    let target = app.exporter_addr.unwrap();
    let prom = start_prometheus(target);
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_http_get(prom.addr, "/-/ready").is_none_or(|(code, _)| code != 200) {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A short load while Prometheus scrapes every second.
    let clients = trade_load(&app, 50);
    let (up, w2w) = loop {
        let up = query(prom.addr, r#"up{job="appliance"}"#);
        let w2w = query(
            prom.addr,
            r#"appliance_latency_seconds_count{job="appliance",stage="wire_to_wire"}"#,
        );
        if (up == Some(1.0) && w2w.is_some_and(|n| n >= 100.0)) || Instant::now() > deadline {
            break (up, w2w);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(up, Some(1.0), "the appliance target is up in Prometheus");
    assert!(
        w2w.is_some_and(|n| n > 0.0),
        "latency histogram samples: {w2w:?}"
    );
    let buckets = query(
        prom.addr,
        r#"count(appliance_latency_seconds_bucket{job="appliance",stage="wire_to_wire"})"#,
    );
    assert!(buckets.is_some_and(|n| n >= 30.0), "buckets: {buckets:?}");
    // The shipped rules loaded and evaluate without errors.
    let (code, body) = http_get(prom.addr, "/api/v1/rules");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let groups = v["data"]["groups"].as_array().unwrap();
    let rules: Vec<&serde_json::Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(rules.len() >= 7, "{body}");
    for r in &rules {
        assert_ne!(
            r["health"], "err",
            "rule {} failed: {}",
            r["name"], r["lastError"]
        );
    }
    drop(prom);
    drop(clients);
    app.stop();
}

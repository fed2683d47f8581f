//! The exporter against a running appliance: `/metrics` in the Prometheus text format with
//! the latency histograms and business, session, ring and engine metrics moving under load;
//! the health endpoints; the shutdown summary still covering every sample.

#[path = "support/net.rs"]
mod net;
mod support;
mod telemetry_support;

use std::time::Duration;
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
    // Quantile gauges cover the samples since the previous scrape: present for every stage.
    for q in ["0.5", "0.9", "0.99", "0.999", "0.9999", "1"] {
        let l = format!(r#"stage="wire_to_wire",quantile="{q}""#);
        assert!(
            sample(&page, "appliance_latency_quantile_seconds", &l).is_some(),
            "{l} missing"
        );
    }
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

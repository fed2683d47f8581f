//! The load generator against a real appliance started in-process on ephemeral ports: every
//! mode on both protocols gets every order answered, replies are matched to their requests
//! (nothing left pending, no session error), and the CLI's `--json` line has the required
//! keys. Correctness only: the durations are a second or less and no figure is asserted.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use appliance::config::{Config, IoBackend};
use appliance::runtime::launch::{self, Running, StartOptions};
use bench::load::{self, Mode, RunSpec, Wait};
use bench::orders::{parse_symbols, Mix, MixGen, PriceGrid, Source};
use bench::report::REQUIRED_KEYS;
use bench::venue::{Identity, Protocol};

fn start() -> Running {
    let text = appliance::config::DEFAULT_TOML
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("max_orders = 1_000_000", "max_orders = 65_536")
        // Load generator tests: durability is not what they check.
        .replace("ack = \"written\"", "ack = \"off\"");
    let cfg = Config::from_toml(&text).expect("test configuration");
    launch::start(
        &cfg,
        &StartOptions {
            io: Some(IoBackend::Auto),
            ..Default::default()
        },
    )
    .expect("appliance starts")
}

const GRID: PriceGrid = PriceGrid {
    decimals: 4,
    tick_units: 100,
};

fn spec(addr: SocketAddr, proto: Protocol, mode: Mode, mix: Mix, conns: usize) -> RunSpec {
    let symbols = parse_symbols("ACME:100.00,BOLT:50.00,CRUX:25.00", GRID).unwrap();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        & ((1 << 50) - 1);
    RunSpec {
        addr,
        proto,
        identities: (1..=conns)
            .map(|i| Identity {
                user: format!("CLIENT{i}"),
                target: "APPLIANCE".into(),
                username: None,
                password: None,
                reset_seq: true,
            })
            .collect(),
        mode,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(700),
        orders: None,
        wait: Wait::Block,
        progress: false,
        sources: (0..conns)
            .map(|i| {
                Source::Mix(
                    MixGen::new(
                        mix,
                        i as u64 + 3,
                        &symbols,
                        GRID,
                        base + ((i as u64) << 26),
                        500,
                    )
                    // As `bench latency` does: binary replies then always name the order's token.
                    .same_token_replace(proto == Protocol::Binary),
                )
            })
            .collect(),
        symbols,
        grid: GRID,
        core: None,
        drain: Duration::from_secs(3),
        mass_cancel_token: Some(base + (1 << 40)),
    }
}

fn check(name: &str, r: &load::RunResult) {
    assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
    assert_eq!(r.unanswered, 0, "{name}: requests left unanswered");
    assert!(
        r.recorder.recorded > 50,
        "{name}: {} recorded",
        r.recorder.recorded
    );
    assert!(r.recorder.warmup_replies > 0, "{name}: no warm-up replies");
    assert_eq!(
        r.recorder.recorded + r.recorder.warmup_replies,
        r.sent_total,
        "{name}: every request answered exactly once"
    );
    let p = r.corrected();
    assert!(p.p50_ns > 0 && p.p50_ns <= p.max_ns, "{name}: {p:?}");
}

#[test]
fn every_mode_on_both_protocols_gets_every_order_answered() {
    let app = start();
    for (proto, addr) in [
        (Protocol::Binary, app.binary_addr),
        (Protocol::Fix, app.fix_addr),
    ] {
        let name = proto.name();
        let r = load::run(spec(
            addr,
            proto,
            Mode::Open { rate: 2_000 },
            Mix::Standard,
            2,
        ))
        .unwrap();
        check(&format!("{name} open"), &r);
        // Open loop keeps its schedule: ~2000/s requested.
        assert!(
            (1_500.0..2_500.0).contains(&r.achieved_rate()),
            "{name}: achieved {}",
            r.achieved_rate()
        );
        let r = load::run(spec(addr, proto, Mode::Closed, Mix::Passive, 1)).unwrap();
        check(&format!("{name} closed"), &r);
        let r = load::run(spec(
            addr,
            proto,
            Mode::Pipelined { window: 16 },
            Mix::Standard,
            2,
        ))
        .unwrap();
        check(&format!("{name} pipelined"), &r);
        // Passive mix: one acknowledgement per request, no fills; the average reply size is
        // the acknowledgement's size.
        let r = load::run(spec(addr, proto, Mode::Closed, Mix::Passive, 1)).unwrap();
        if proto == Protocol::Binary {
            // 48 B orders and 16 B cancels, about half each.
            assert!(
                (28..=40).contains(&r.avg_request_bytes),
                "binary request bytes {}",
                r.avg_request_bytes
            );
        }
        assert_eq!(
            r.unsolicited, 0,
            "{name}: passive flow produced unsolicited messages"
        );
    }
    drop(app.stop());
}

#[test]
fn cli_json_line_has_the_required_keys_and_a_floor_ratio() {
    let app = start();
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["latency", "--protocol", "binary", "--port"])
        .arg(app.binary_addr.port().to_string())
        .args([
            "--rate",
            "1000",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
            "--json",
            "--floor",
        ])
        .output()
        .unwrap();
    drop(app.stop());
    assert!(
        out.status.success(),
        "bench latency failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for k in REQUIRED_KEYS {
        assert!(v.get(k).is_some(), "missing {k} in {stdout}");
    }
    assert_eq!(v["protocol"], "binary");
    assert_eq!(v["requested_rate"], 1000);
    assert!(v["orders"].as_u64().unwrap() > 100);
    assert!(v["floor"]["p50_ns"].as_u64().unwrap() > 0);
    assert!(v["p50_floor_ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn floor_json_line_has_the_required_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "floor",
            "--mode",
            "closed",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    for k in REQUIRED_KEYS {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["protocol"], "tcp-floor");
    assert_eq!(
        (v["request_bytes"].as_u64(), v["reply_bytes"].as_u64()),
        (Some(48), Some(64))
    );
}

#[test]
fn a_workload_file_replays_over_both_protocols_with_every_order_answered() {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../workloads/gen_workload.py"
        ))
        .arg("smoke")
        .output()
        .expect(
            "python3 is needed to generate workloads: install it with `apt-get install python3`",
        );
    assert!(out.status.success());
    let path = std::env::temp_dir().join(format!("bench-e2e-workload-{}.txt", std::process::id()));
    std::fs::write(&path, &out.stdout).unwrap();
    let app = start();
    for (proto, port) in [
        ("binary", app.binary_addr.port()),
        ("fix", app.fix_addr.port()),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(["latency", "--protocol", proto, "--port", &port.to_string()])
            .args(["--workload"])
            .arg(&path)
            .args([
                "--connections",
                "2",
                "--mode",
                "pipelined",
                "--window",
                "8",
                "--duration",
                "0.5",
                "--warmup",
                "0.1",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{proto}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        assert!(v["orders"].as_u64().unwrap() > 100, "{proto}: {v}");
        assert_eq!(v["unanswered"], 0, "{proto}: {v}");
        assert!(v.get("errors").is_none(), "{proto}: {v}");
    }
    drop(app.stop());
    let _ = std::fs::remove_file(&path);
}

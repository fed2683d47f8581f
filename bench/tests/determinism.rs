//! Determinism through the real runtime: the `standard` workload (workloads/gen_workload.py)
//! goes through an in-process appliance with the journal on, over two binary connections,
//! pipelined. At shutdown the appliance's state hash (books, order tables, sessions) must equal
//! the hash of that state rebuilt offline from a snapshot taken in the middle of the run plus
//! the journal after it, and from the newest snapshot, and the snapshotter's own replica's.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use appliance::config::{Config, IoBackend};
use appliance::recovery::recover::{recover_with, RecoverOptions, SnapshotChoice};
use appliance::runtime::launch::{self, StartOptions};
use bench::load::{self, Mode, RunSpec, Wait};
use bench::orders::{parse_symbols, partition, PriceGrid, Replay, Source};
use bench::venue::{Identity, Protocol};
use bench::workload::Workload;

const GRID: PriceGrid = PriceGrid {
    decimals: 4,
    tick_units: 100,
};

fn config(journal: &Path, threading: &str) -> Config {
    let text = appliance::config::DEFAULT_TOML
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("snapshot_interval_secs = 60", "snapshot_interval_secs = 1")
        .replace("keep_snapshots = 2", "keep_snapshots = 100")
        .replace(
            "dir = \"appliance-data\"",
            &format!("dir = {:?}", journal.display().to_string()),
        );
    assert!(text.contains("snapshot_interval_secs = 1"));
    let text = text.replace(
        "threading = \"auto\"",
        &format!("threading = \"{threading}\""),
    );
    assert!(text.contains(&format!("threading = \"{threading}\"")));
    Config::from_toml(&text).expect("test configuration")
}

fn standard_workload(dir: &Path) -> Workload {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../workloads/gen_workload.py");
    let out = Command::new("python3")
        .args([script, "standard"])
        .output()
        .expect("python3 runs workloads/gen_workload.py");
    assert!(
        out.status.success(),
        "gen_workload.py standard: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("standard.txt");
    std::fs::write(&path, &out.stdout).unwrap();
    let w = bench::workload::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(w.name, "standard");
    assert_eq!(w.commands.len(), 1_000_000);
    w
}

/// Sends `cmds` over two binary connections, pipelined, every request answered.
fn send(addr: SocketAddr, cmds: &[appliance::engine::Command], token_base: u64) {
    let symbols = parse_symbols("ACME:100.00", GRID).unwrap();
    let parts = partition(cmds, 2);
    let total = parts.iter().map(|p| p.len() as u64).sum::<u64>();
    let spec = RunSpec {
        addr,
        proto: Protocol::Binary,
        identities: (1..=2)
            .map(|i| Identity {
                user: format!("CLIENT{i}"),
                target: "APPLIANCE".into(),
                username: None,
                password: None,
                reset_seq: false,
            })
            .collect(),
        mode: Mode::Pipelined { window: 64 },
        warmup: Duration::ZERO,
        duration: Duration::from_secs(300),
        orders: Some(total),
        wait: Wait::Block,
        progress: false,
        sources: parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                Source::Replay(
                    Replay::new(p, &symbols, GRID, token_base + ((i as u64) << 32))
                        .same_token_replace(true),
                )
            })
            .collect(),
        symbols,
        grid: GRID,
        core: None,
        drain: Duration::from_secs(10),
        mass_cancel_token: Some(token_base + (1 << 40)),
    };
    let r = load::run(spec).expect("the load generator runs");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.unanswered, 0, "every request answered");
}

fn snapshots(journal: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(journal.join("snapshots"))
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".snap")?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn rebuilt_hash(cfg: &Config, journal: &Path, snapshot: SnapshotChoice) -> (u64, u64) {
    let r = recover_with(
        cfg,
        journal,
        &RecoverOptions {
            full_gateways: false,
            repair: false,
            snapshot,
        },
    )
    .unwrap_or_else(|e| panic!("replay from {snapshot:?}: {e:#}"));
    (r.report.state_hash, r.report.records)
}

#[test]
fn live_state_hash_equals_snapshot_plus_replay_on_the_standard_workload_shared() {
    determinism("shared");
}

#[test]
fn live_state_hash_equals_snapshot_plus_replay_on_the_standard_workload_dedicated() {
    determinism("dedicated");
}

fn determinism(threading: &str) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let w = standard_workload(dir.path());
    let cfg = config(&journal, threading);
    let app = launch::start(
        &cfg,
        &StartOptions {
            io: Some(IoBackend::Auto),
            ..Default::default()
        },
    )
    .expect("appliance starts");

    // The preload and the first 300,000 commands; then a periodic snapshot; then the rest.
    let mut first: Vec<_> = w.preload.clone();
    first.extend_from_slice(&w.commands[..300_000]);
    send(app.binary_addr, &first, 1 << 44);
    let deadline = Instant::now() + Duration::from_secs(60);
    while snapshots(&journal).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no periodic snapshot within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let middle = snapshots(&journal)[0];
    send(app.binary_addr, &w.commands[300_000..], 1 << 45);
    let stopped = app.stop();
    assert_eq!(stopped.journal_error, None);
    let live = stopped.state_hash;
    eprintln!(
        "{threading}: live state hash {live:016x} (engines {:x?}, gateways {:x?})",
        stopped.engine_hashes, stopped.gateway_hashes
    );
    assert_eq!(
        stopped.replica_hash,
        Some(live),
        "the snapshotter's replica, fed from the journal as it was written"
    );

    let all = snapshots(&journal);
    assert!(
        all.len() >= 2,
        "a snapshot in the middle and one at shutdown: {all:?}"
    );
    let (from_middle, replayed) = rebuilt_hash(&cfg, &journal, SnapshotChoice::At(middle));
    assert!(
        replayed > 500_000,
        "the replay after the middle snapshot covers the second part ({replayed} records)"
    );
    assert_eq!(
        from_middle, live,
        "snapshot {middle} + {replayed} journal records rebuild the live state"
    );
    let (from_latest, _) = rebuilt_hash(&cfg, &journal, SnapshotChoice::Latest);
    assert_eq!(
        from_latest, live,
        "the shutdown snapshot holds the live state"
    );
}

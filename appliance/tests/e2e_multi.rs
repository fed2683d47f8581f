//! Two gateways and two engines, end to end over loopback TCP, in both threading modes: FIX
//! on gateway 0, binary on gateway 1, instruments sharded over the engines (ACME and CRUX on
//! engine 0, BOLT on engine 1). Trades across gateways, mass cancels answered once with the
//! engines' counts added up, and cancel-on-disconnect reaching every engine.

#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;
mod support;

use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use appliance::config::{Config, IoBackend, Threading};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use net::{start_mode, BinClient};
use std::time::Duration;
use support::enter;

const ACME: i64 = 1_000_000;
const BOLT: i64 = 500_000;

fn two_by_two() -> (Config, tempfile::TempDir) {
    let (cfg, dir) = net::journaled_config();
    let text = cfg.to_toml().replace("threads = 1", "threads = 2").replace(
        "[binary]\nlisten = \"127.0.0.1:0\"\ngateway = 0",
        "[binary]\nlisten = \"127.0.0.1:0\"\ngateway = 1",
    );
    let cfg = Config::from_toml(&text).expect("2x2 configuration");
    assert_eq!((cfg.engine.threads, cfg.gateway.threads), (2, 2));
    assert_eq!((cfg.fix.gateway, cfg.binary.gateway), (0, 1));
    let engines: Vec<usize> = cfg
        .resolved_instruments()
        .iter()
        .map(|i| i.engine)
        .collect();
    assert_eq!(
        engines,
        vec![0, 1, 0],
        "ACME, BOLT, CRUX sharded over two engines"
    );
    (cfg, dir)
}

fn scenario(io: IoBackend, mode: Threading) {
    let (cfg, _journal) = two_by_two();
    let app = start_mode(&cfg, io, mode);
    assert_eq!(app.backends.len(), 2);
    let mut fix = FixClient::logon(app.fix_addr, "CLIENT1");
    let mut bin = BinClient::login(app.binary_addr, "CLIENT2");

    // A FIX buy on each engine; binary sells cross both: each trade reaches both gateways.
    fix.order("A1", "ACME", Side::Buy, 10, Some(ACME), TimeInForce::Day);
    assert_eq!(fix.recv().req(150), "0");
    fix.order("B1", "BOLT", Side::Buy, 10, Some(BOLT), TimeInForce::Day);
    assert_eq!(fix.recv().req(150), "0");
    bin.send(enter(1, "ACME", b'S', ACME, 4, b'3'));
    assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
    assert!(matches!(bin.recv(), ServerMessage::Executed(e) if e.qty == 4 && e.price == ACME));
    bin.send(enter(2, "BOLT", b'S', BOLT, 6, b'3'));
    assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
    assert!(matches!(bin.recv(), ServerMessage::Executed(e) if e.qty == 6 && e.price == BOLT));
    let f1 = fix.recv();
    assert_eq!((f1.req(150), f1.req(11), f1.req(32)), ("F", "A1", "4"));
    let f2 = fix.recv();
    assert_eq!((f2.req(150), f2.req(11), f2.req(32)), ("F", "B1", "6"));

    // A binary mass cancel over every instrument: one answer, both engines' orders counted.
    bin.send(enter(3, "ACME", b'S', ACME + 100, 5, b'1'));
    assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
    bin.send(enter(4, "BOLT", b'S', BOLT + 100, 5, b'1'));
    assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
    bin.send(enter(5, "CRUX", b'S', 251_000, 5, b'1'));
    assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
    bin.send(ClientMessage::MassCancel(wire::MassCancel {
        token: 6,
        symbol: [b' '; 8],
    }));
    let mut cancelled = 0;
    let count = loop {
        match bin.recv() {
            ServerMessage::Cancelled(c) => {
                assert_eq!(c.reason, 5, "mass cancel");
                cancelled += 1;
            }
            ServerMessage::MassCancelAck(a) => {
                assert_eq!(a.token, 6);
                break a.count;
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((count, cancelled), (3, 3), "three orders on two engines");

    // The FIX session's mass cancel (q, all securities) across both engines.
    fix.mass_cancel("M1", None);
    let mut reports = Vec::new();
    let report = loop {
        let m = fix.recv();
        if m.msg_type == "r" {
            break m;
        }
        reports.push(m);
    };
    assert_eq!(report.req(533), "2", "A1 and B1 remainders on two engines");
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|m| m.req(150) == "4"));

    // Cancel on disconnect reaches every engine: the FIX client rests on both and drops.
    fix.order(
        "A2",
        "ACME",
        Side::Buy,
        10,
        Some(ACME),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(fix.recv().req(150), "0");
    fix.order(
        "B2",
        "BOLT",
        Side::Buy,
        10,
        Some(BOLT),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(fix.recv().req(150), "0");
    drop(fix);
    std::thread::sleep(Duration::from_millis(300));
    for (token, sym, px) in [(7, "ACME", ACME), (8, "BOLT", BOLT)] {
        bin.send(enter(token, sym, b'S', px, 10, b'3'));
        assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
        assert!(
            matches!(bin.recv(), ServerMessage::Cancelled(c) if c.reason == 2),
            "{sym}: the disconnected session's order is gone"
        );
    }

    let stopped = app.stop();
    assert_eq!(stopped.gateways.len(), 2);
    assert!(
        matches!(bin.try_recv(Duration::from_secs(3)), Some(ServerMessage::Logout(l)) if l.reason == 2)
    );
}

fn on_io_uring(mode: Threading) {
    scenario(IoBackend::IoUring, mode);
}
both_modes!(on_io_uring => two_gateways_two_engines_io_uring_shared, two_gateways_two_engines_io_uring_dedicated);

/// Two epoll backends on one thread: the second one's readiness must wake the first one's
/// wait (its epoll fd is watched).
fn on_epoll(mode: Threading) {
    scenario(IoBackend::Epoll, mode);
}
both_modes!(on_epoll => two_gateways_two_engines_epoll_shared, two_gateways_two_engines_epoll_dedicated);

/// The shared thread sleeps in the first gateway's wait; a request to the second gateway
/// must wake it at once, not at the next timeout. Each request below comes after an idle
/// spell long enough for the thread to be asleep; with telemetry publication set to once a
/// minute, the only other way out of the sleep is the 1 s safety timeout, so an answer within
/// half of that proves the wake-up path (a lost wake-up costs the whole second).
fn second_gateway_wakes(io: IoBackend) {
    let (cfg, _journal) = two_by_two();
    let text = cfg
        .to_toml()
        .replace("interval_ms = 1000", "interval_ms = 60000");
    let cfg = Config::from_toml(&text).unwrap();
    let app = start_mode(&cfg, io, Threading::Shared);
    let mut bin = BinClient::login(app.binary_addr, "CLIENT2");
    for token in 1..=8u64 {
        std::thread::sleep(Duration::from_millis(50));
        let t = std::time::Instant::now();
        bin.send(enter(token, "ACME", b'S', ACME + 100, 1, b'3'));
        assert!(matches!(bin.recv(), ServerMessage::Accepted(_)));
        let waited = t.elapsed();
        assert!(matches!(bin.recv(), ServerMessage::Cancelled(c) if c.reason == 2));
        assert!(
            waited < Duration::from_millis(500),
            "request {token} answered after {waited:?}: the second gateway did not wake the thread"
        );
    }
    app.stop();
}

#[test]
fn second_gateway_wakes_the_shared_thread_io_uring() {
    second_gateway_wakes(IoBackend::IoUring);
}

#[test]
fn second_gateway_wakes_the_shared_thread_epoll() {
    second_gateway_wakes(IoBackend::Epoll);
}

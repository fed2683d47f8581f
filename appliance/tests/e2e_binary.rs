//! End to end over loopback TCP with real sockets and threads: the binary protocol through
//! gateway, rings and engine, on io_uring and on the epoll fallback.

#[path = "support/net.rs"]
mod net;
mod support;

use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use appliance::config::IoBackend;
use appliance::config::Threading;
use net::{journaled_config, start_mode, test_config, BinClient};
use std::time::Duration;
use support::enter;

const PX: i64 = 1_000_000;

fn scenario(io: IoBackend, mode: Threading) {
    // Journaled: the scenario runs with every acknowledgement waiting for the journal.
    let (cfg, _journal) = journaled_config();
    let app = start_mode(&cfg, io, mode);
    let expected = match io {
        IoBackend::Epoll => "epoll",
        _ => "io_uring",
    };
    assert_eq!(app.backends[0].0, expected);
    let addr = app.binary_addr;
    let mut buyer = BinClient::login(addr, "CLIENT1");
    let mut seller = BinClient::login(addr, "CLIENT2");

    // Rest a buy, cross it with a larger sell: partial fill on both sides, remainder rests.
    buyer.send(enter(1, "ACME", b'B', PX, 100, b'0'));
    assert!(matches!(buyer.recv(), ServerMessage::Accepted(a) if a.token == 1));
    seller.send(enter(2, "ACME", b'S', PX, 150, b'0'));
    assert!(matches!(seller.recv(), ServerMessage::Accepted(a) if a.token == 2));
    let ServerMessage::Executed(s) = seller.recv() else {
        panic!()
    };
    let ServerMessage::Executed(b) = buyer.recv() else {
        panic!()
    };
    assert_eq!(
        (b.qty, b.leaves, b.cum_qty, b.liquidity),
        (100, 0, 100, b'A')
    );
    assert_eq!(
        (s.qty, s.leaves, s.cum_qty, s.liquidity),
        (100, 50, 100, b'R')
    );
    assert_eq!(b.exec_id, s.exec_id);

    // Replace the resting remainder's price; IOC against it; then cancel what is left.
    seller.send(ClientMessage::ReplaceOrder(wire::ReplaceOrder {
        orig_token: 2,
        new_token: 3,
        price: PX + 100,
        qty: 150,
    }));
    let ServerMessage::Replaced(r) = seller.recv() else {
        panic!()
    };
    assert_eq!((r.new_token, r.leaves, r.priority_kept), (3, 50, 0));
    buyer.send(enter(4, "ACME", b'B', PX + 100, 20, b'3'));
    assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
    assert!(matches!(buyer.recv(), ServerMessage::Executed(e) if e.qty == 20 && e.leaves == 0));
    assert!(matches!(seller.recv(), ServerMessage::Executed(e) if e.qty == 20 && e.leaves == 30));
    seller.send(ClientMessage::CancelOrder(wire::CancelOrder { token: 3 }));
    assert!(
        matches!(seller.recv(), ServerMessage::Cancelled(c) if c.cancelled_qty == 30 && c.reason == 1)
    );

    // FOK that cannot fill, market into an empty side, a reject.
    buyer.send(enter(5, "ACME", b'B', PX, 10, b'4'));
    assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
    assert!(matches!(buyer.recv(), ServerMessage::Cancelled(c) if c.reason == 3));
    buyer.send(enter(6, "BOLT", b'B', 0, 10, b'3'));
    assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
    assert!(matches!(buyer.recv(), ServerMessage::Cancelled(c) if c.reason == 2));
    buyer.send(enter(7, "ACME", b'B', PX + 1, 10, b'0'));
    assert!(matches!(buyer.recv(), ServerMessage::Rejected(r) if r.reason == 5));

    // Cancel on disconnect: the buyer rests an order and drops the connection; the seller's
    // aggressive order then finds nothing to trade with.
    buyer.send(enter(8, "CRUX", b'B', 250_000, 10, b'1'));
    assert!(matches!(buyer.recv(), ServerMessage::Accepted(_)));
    drop(buyer);
    std::thread::sleep(Duration::from_millis(200));
    seller.send(enter(9, "CRUX", b'S', 250_000, 10, b'3'));
    assert!(matches!(seller.recv(), ServerMessage::Accepted(_)));
    assert!(
        matches!(seller.recv(), ServerMessage::Cancelled(c) if c.reason == 2),
        "no resting buyer left"
    );

    // Graceful shutdown logs the remaining session out.
    let stopped = app.stop();
    assert!(
        matches!(seller.try_recv(Duration::from_secs(3)), Some(ServerMessage::Logout(l)) if l.reason == 2)
    );
    assert!(
        stopped
            .histograms
            .get(appliance::rings::stamp::Stage::WireToWire)
            .len()
            > 10
    );
}

fn on_io_uring(mode: Threading) {
    scenario(IoBackend::IoUring, mode);
}
both_modes!(on_io_uring => binary_end_to_end_on_io_uring_shared, binary_end_to_end_on_io_uring_dedicated);

/// Forces the epoll fallback: the same scenario must behave identically.
fn on_epoll(mode: Threading) {
    scenario(IoBackend::Epoll, mode);
}
both_modes!(on_epoll => binary_end_to_end_on_epoll_fallback_shared, binary_end_to_end_on_epoll_fallback_dedicated);

fn unknown_user(mode: Threading) {
    let app = start_mode(&test_config(), IoBackend::Auto, mode);
    let mut c = BinClient::connect(app.binary_addr);
    c.send_raw(
        ClientMessage::Login(wire::Login {
            username: wire::credential("MALLORY").unwrap(),
            password: [b' '; 16],
            next_server_seq: 0,
            heartbeat_ms: 0,
        }),
        0,
    );
    assert!(matches!(c.recv(), ServerMessage::LoginRejected(r) if r.reason == 1));
    assert!(c.closed_within(Duration::from_secs(3)));
    app.stop();
}
both_modes!(unknown_user => unknown_user_is_refused_and_disconnected_shared, unknown_user_is_refused_and_disconnected_dedicated);

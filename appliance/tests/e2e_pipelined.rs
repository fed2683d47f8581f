//! A client that pipelines hard breaks no rule: 5,000 orders (about 200 KB) written in one go
//! before reading a single reply, through command rings of 16 slots so the connection is
//! paused again and again, on both I/O backends. Every order is accepted and the connection
//! stays up: the gateway reads at most what its 64 KiB input buffer can take (epoll) and
//! holds receive completions it cannot take yet until there is room (io_uring), instead of
//! closing the connection as an input overflow.

#[path = "support/net.rs"]
mod net;
mod support;

use appliance::binary::wire::{self, ServerMessage};
use appliance::config::{IoBackend, Threading};
use net::{start_mode, test_config, BinClient};
use std::time::Duration;

const N: u64 = 5_000;

fn pipelined(io: IoBackend, mode: Threading) {
    let mut cfg = test_config();
    cfg.gateway.ring_capacity = 16;
    let app = start_mode(&cfg, io, mode);
    let mut c = BinClient::login(app.binary_addr, "CLIENT1");
    let mut bytes = Vec::with_capacity(N as usize * wire::MAX_FRAME_LEN);
    let mut frame = [0u8; wire::MAX_FRAME_LEN];
    for i in 0..N {
        let m = support::enter(
            i + 1,
            "ACME",
            b'B',
            900_000 + (i as i64 % 50) * 100,
            1,
            b'1',
        );
        let n = m.encode(i as u32 + 1, &mut frame).unwrap();
        bytes.extend_from_slice(&frame[..n]);
    }
    assert!(
        bytes.len() > 64 << 10,
        "more than the input buffer in flight"
    );
    // The replies (about 5,000 x 60 bytes) fit the socket buffers and the gateway's output
    // buffer, so the write completes before anything is read.
    c.write_raw(&bytes);
    for i in 0..N {
        match c.try_recv(Duration::from_secs(20)) {
            Some(ServerMessage::Accepted(a)) => assert_eq!(a.token, i + 1, "{io:?} {mode:?}"),
            other => panic!("{io:?} {mode:?}: order {}: {other:?}", i + 1),
        }
    }
    drop(c);
    app.stop();
}

#[test]
fn pipelined_past_the_input_buffer_on_epoll_loses_nothing() {
    pipelined(IoBackend::Epoll, Threading::Shared);
}

#[test]
fn pipelined_past_the_input_buffer_on_io_uring_loses_nothing() {
    pipelined(IoBackend::IoUring, Threading::Shared);
}

#[test]
fn pipelined_past_the_input_buffer_on_io_uring_dedicated_loses_nothing() {
    pipelined(IoBackend::IoUring, Threading::Dedicated);
}

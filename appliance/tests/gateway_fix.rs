//! The FIX side of the gateway core, driven without sockets (the `Rig`): session state across
//! connection losses the gateway itself decides.

mod support;

use appliance::gateway::core::GatewaySizing;
use appliance::gateway::session::SessionKind;
use appliance::vocab::Protocol;
use fix::app::client::NewOrder;
use fix::app::outbound::Id;
use fix::app::{OrdType, Side, TimeInForce};
use fix::session::{Event, MemoryStore, Scratch, Session, SessionConfig};
use support::Rig;

const PX: i64 = 1_000_000;

fn now() -> u64 {
    appliance::gateway::core::wall_clock_ns() as u64
}

/// A FIX initiator driven by hand against the rig.
struct Client {
    session: Session<MemoryStore>,
    scratch: Scratch,
    out: Vec<u8>,
}

impl Client {
    fn new(comp: &str) -> Self {
        let mut cfg = SessionConfig::initiator(comp, "APPLIANCE");
        cfg.max_latency_secs = 0;
        Self {
            session: Session::new(cfg, MemoryStore::with_capacity(16 << 20, 1 << 16)),
            scratch: Scratch::new(8192),
            out: Vec::new(),
        }
    }

    /// Logs on over a new connection; returns the connection and whether the appliance
    /// answered the Logon.
    fn logon(&mut self, rig: &mut Rig) -> (u32, bool) {
        let c = rig.connect(Protocol::Fix);
        self.session.on_connected(now());
        self.out.clear();
        self.session.initiate_logon(now(), &mut self.out).unwrap();
        let bytes = std::mem::take(&mut self.out);
        rig.send(c, &bytes);
        let reply = rig.take_bytes(c);
        let mut pos = 0;
        while pos < reply.len() {
            let r = self
                .session
                .on_input(&reply[pos..], &mut self.scratch, now(), &mut self.out);
            pos += r.consumed;
            if matches!(r.event, Event::NeedMore) {
                break;
            }
        }
        (c, self.session.is_logged_on())
    }
}

/// `(MsgSeqNum, PossDupFlag=Y)` of every message in `bytes`.
fn numbers(bytes: &[u8]) -> Vec<(u64, bool)> {
    let text = String::from_utf8_lossy(bytes);
    text.split("8=FIX.4.4\x01")
        .filter(|m| !m.is_empty())
        .map(|m| {
            let field = |tag: &str| {
                m.split('\x01')
                    .find_map(|f| f.strip_prefix(tag).map(str::to_string))
            };
            let seq = field("34=").expect("MsgSeqNum").parse().unwrap();
            (seq, field("43=").as_deref() == Some("Y"))
        })
        .collect()
}

/// A ResendRequest for more than the connection's output buffer holds is answered a batch
/// at a time as the client reads (before, the whole answer was encoded at once and the
/// session was closed as a slow consumer, and again on every retry). A client that then
/// stops reading while new messages keep coming is still closed as a slow consumer, and the
/// session comes out of it disconnected, its resend forgotten, ready for the next logon.
#[test]
fn a_resend_larger_than_the_output_buffer_is_paced_to_the_reader() {
    let sizing = GatewaySizing {
        max_connections: 8,
        max_orders: 1 << 16,
        input_bytes: 64 << 10,
        output_bytes: 256 << 10,
        replay_log_bytes: 1 << 20,
        ..GatewaySizing::default()
    };
    let mut rig = Rig::with_sizing(appliance::config::Config::default_config(), 1 << 12, sizing);
    let mut client = Client::new("CLIENT1");
    let (c, ok) = client.logon(&mut rig);
    assert!(ok, "first logon answered");
    let order = |client: &mut Client, i: u32| {
        let cl = format!("O{i}");
        let m = NewOrder {
            cl_ord_id: Id::Text(cl.as_bytes()),
            account: None,
            symbol: b"ACME",
            side: Side::Buy,
            order_qty: 1,
            ord_type: OrdType::Limit,
            price: Some(PX - 100 * (i as i64 % 50)),
            price_scale: 4,
            time_in_force: TimeInForce::GoodTillCancel,
            transact_time: now(),
        };
        client.out.clear();
        client.session.send(&m, now(), &mut client.out).unwrap();
        std::mem::take(&mut client.out)
    };
    // 3,000 acknowledged orders: about 750 KB of ExecutionReports in the session's store.
    for i in 0..3_000u32 {
        let bytes = order(&mut client, i);
        rig.send(c, &bytes);
        rig.take_bytes(c);
    }
    let resend_request = |client: &mut Client| {
        client.out.clear();
        client
            .session
            .send_raw(b"2", &[], b"7=1\x0116=0\x01", now(), &mut client.out)
            .unwrap();
        std::mem::take(&mut client.out)
    };
    // ResendRequest for everything, and the client reads nothing for now.
    let bytes = resend_request(&mut client);
    rig.send(c, &bytes);
    let open = appliance::gateway::conn::ConnState::Open;
    assert_eq!(rig.gw.state(c), open, "not a slow consumer");
    let slow = || appliance::telemetry::counters::gw::SLOW_CONSUMERS;
    assert_eq!(rig.gw.counters().get(slow()), 0);
    // As the client reads, the rest follows: every number once, in order, as possible
    // duplicates (the Logon as a gap fill), then nothing more.
    let mut got = Vec::new();
    let mut reads = 0;
    loop {
        let bytes = rig.take_bytes(c);
        if bytes.is_empty() {
            break;
        }
        assert!(bytes.len() <= 256 << 10);
        got.extend(numbers(&bytes));
        reads += 1;
        rig.pump();
    }
    assert!(reads > 3, "answered over {reads} reads");
    let want: Vec<(u64, bool)> = (1..=3_001).map(|n| (n, true)).collect();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "first difference at {:?}",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert_eq!(rig.gw.state(c), open);

    // Again, and this time the client stops reading while its new orders' reports pile up
    // behind the resend (held back, so they follow the answer in order): past
    // MAX_HELD_BACK of them, a slow consumer after all.
    let bytes = resend_request(&mut client);
    rig.send(c, &bytes);
    let mut i = 3_000;
    while rig.gw.state(c) == open {
        let bytes = order(&mut client, i);
        rig.send(c, &bytes);
        i += 1;
        assert!(i < 12_000, "never closed as a slow consumer");
    }
    assert_eq!(
        rig.gw.state(c),
        appliance::gateway::conn::ConnState::Dead,
        "closed as a slow consumer"
    );
    assert_eq!(rig.gw.counters().get(slow()), 1);
    let slot = &rig.gw.sessions()[0];
    assert!(slot.info.conn.is_none(), "the session has no connection");
    let SessionKind::Fix(f) = &slot.kind else {
        panic!("session 0 is FIX");
    };
    assert!(
        !f.session.is_logged_on(),
        "the session saw the disconnect (on_disconnect ran)"
    );
    assert!(
        !f.session.resend_pending(),
        "its resend ended with the connection"
    );
    rig.gw.release(c);

    // The client logs on again and is answered.
    client.session.on_disconnected();
    let (_, ok) = client.logon(&mut rig);
    assert!(ok, "the next logon is answered");
}

/// A connection closing after a Logout whose peer does not take its last messages is closed
/// hard at `gateway.closing_timeout_ms` (before, it stayed Closing for ever, holding its slot
/// and its output buffer).
#[test]
fn a_closing_connection_that_cannot_flush_is_closed_at_the_deadline() {
    let mut rig = Rig::new();
    rig.gw.core.limits.closing_timeout_ns = 50_000_000;
    let mut client = Client::new("CLIENT1");
    let (c, ok) = client.logon(&mut rig);
    assert!(ok, "logon answered");
    // The client logs out and reads nothing: the appliance's Logout stays in the output.
    client.out.clear();
    client.session.logout(None, now(), &mut client.out).unwrap();
    let bytes = std::mem::take(&mut client.out);
    rig.send(c, &bytes);
    let closing = appliance::gateway::conn::ConnState::Closing;
    assert_eq!(rig.gw.state(c), closing, "closing, with its Logout unsent");
    let timeouts = appliance::telemetry::counters::gw::CLOSING_TIMEOUTS;
    rig.gw.tick_clock();
    rig.gw.on_timer();
    assert_eq!(rig.gw.state(c), closing, "not before the deadline");
    std::thread::sleep(std::time::Duration::from_millis(60));
    rig.gw.tick_clock();
    rig.gw.on_timer();
    assert_eq!(
        rig.gw.state(c),
        appliance::gateway::conn::ConnState::Dead,
        "closed hard at the deadline"
    );
    assert_eq!(rig.gw.counters().get(timeouts), 1);
    assert!(rig.gw.should_close(c), "the driver closes the socket");
}

/// A cancel-on-disconnect owed while the engine ring is full waits for room instead of
/// panicking (`Gateway::push` used to panic: the disconnect pushed a mass cancel on a ring the
/// gateway had not checked), and goes through once the engine drains: every resting order of
/// the session is cancelled.
#[test]
fn a_cancel_on_disconnect_owed_while_the_engine_ring_is_full_waits_and_goes_through() {
    // Without the disconnect all 40 rest (the orders themselves are good).
    assert_eq!(owed_cancel(false), 40);
    assert_eq!(
        owed_cancel(true),
        0,
        "every resting order of the session cancelled"
    );
}

/// Runs the scenario, disconnecting or not; the orders resting at the end.
fn owed_cancel(disconnect: bool) -> u32 {
    let mut rig = Rig::with_config(appliance::config::Config::default_config(), 16);
    let mut client = Client::new("CLIENT1"); // cancel_on_disconnect = true by default
    let (c, ok) = client.logon(&mut rig);
    assert!(ok, "logon answered");
    let resting = |rig: &Rig| -> u32 {
        rig.engine
            .instruments()
            .map(|i| rig.engine.resting_orders(i, appliance::engine::Side::Buy))
            .sum()
    };
    // 40 orders written while the engine takes nothing: the 16-slot ring fills and the
    // connection is paused with the rest of its input buffered.
    for i in 0..40u32 {
        let cl = format!("P{i}");
        let m = NewOrder {
            cl_ord_id: Id::Text(cl.as_bytes()),
            account: None,
            symbol: b"ACME",
            side: Side::Buy,
            order_qty: 1,
            ord_type: OrdType::Limit,
            price: Some(PX - 100 * (i as i64 % 50)),
            price_scale: 4,
            time_in_force: TimeInForce::GoodTillCancel,
            transact_time: now(),
        };
        client.out.clear();
        client.session.send(&m, now(), &mut client.out).unwrap();
        let bytes = std::mem::take(&mut client.out);
        rig.gw.tick_clock();
        assert!(rig.gw.on_recv(c, &bytes, 0));
        rig.gw.poll();
    }
    assert_eq!(rig.engine_in.len(), 16, "the engine ring is full");
    if disconnect {
        // The client vanishes now: its cancel-on-disconnect cannot be pushed yet.
        rig.gw.on_closed(c);
        rig.gw.poll();
        rig.gw.release(c);
        rig.gw.poll();
    }
    // The engine drains; an owed mass cancel follows the 16 orders it had.
    rig.pump();
    assert!(rig.engine_in.is_empty());
    resting(&rig)
}

/// A session that sends more than its resend store holds evicts the oldest messages, and the
/// gateway counts them for `appliance_store_evicted_total{protocol}`: FIX message store and
/// binary replay log alike. A ResendRequest over the evicted numbers then gets a gap fill.
#[test]
fn resend_store_evictions_are_counted_per_protocol() {
    use appliance::telemetry::counters::gw::STORE_EVICTED;
    let sizing = GatewaySizing {
        max_connections: 8,
        max_orders: 1 << 16,
        input_bytes: 64 << 10,
        output_bytes: 1 << 20,
        // The binary log's floor is two frames of the largest size; 64 bytes = 2 frames'
        // index slots.
        replay_log_bytes: 64,
        fix_store_bytes: 1 << 20,
        fix_store_messages: 4,
    };
    let mut rig = Rig::with_sizing(appliance::config::Config::default_config(), 1 << 12, sizing);
    let fix_evicted = |rig: &mut Rig| {
        rig.gw.sum_sessions();
        rig.gw.counters().get(STORE_EVICTED + Protocol::Fix.index())
    };
    let bin_evicted = |rig: &mut Rig| {
        rig.gw.sum_sessions();
        rig.gw
            .counters()
            .get(STORE_EVICTED + Protocol::Binary.index())
    };
    let mut client = Client::new("CLIENT1");
    let (c, ok) = client.logon(&mut rig);
    assert!(ok, "logon answered");
    assert_eq!(fix_evicted(&mut rig), 0);
    // Ten orders, ten acknowledgements (application messages, stored): six evicted.
    for i in 0..10u32 {
        let cl = format!("E{i}");
        let m = NewOrder {
            cl_ord_id: Id::Text(cl.as_bytes()),
            account: None,
            symbol: b"ACME",
            side: Side::Buy,
            order_qty: 1,
            ord_type: OrdType::Limit,
            price: Some(PX - 100 * i as i64),
            price_scale: 4,
            time_in_force: TimeInForce::GoodTillCancel,
            transact_time: now(),
        };
        client.out.clear();
        client.session.send(&m, now(), &mut client.out).unwrap();
        let bytes = std::mem::take(&mut client.out);
        rig.send(c, &bytes);
        rig.take_bytes(c);
    }
    assert_eq!(fix_evicted(&mut rig), 6);
    // Asking for everything: the Logon and the six evicted reports come as a gap fill.
    client.out.clear();
    client
        .session
        .send_raw(b"2", &[], b"7=1\x0116=0\x01", now(), &mut client.out)
        .unwrap();
    let bytes = std::mem::take(&mut client.out);
    rig.send(c, &bytes);
    let answer = String::from_utf8_lossy(&rig.take_bytes(c)).to_string();
    assert!(
        answer.contains("\x0135=4\x01") && answer.contains("\x0136=8\x01"),
        "gap fill 1..8: {answer:?}"
    );

    let (b, _) = rig.bin_login("CLIENT1", 0);
    assert_eq!(bin_evicted(&mut rig), 0);
    for token in 1..=10u64 {
        rig.bin_send(
            b,
            support::enter(token, "ACME", b'B', PX, 1, b'1'),
            token as u32,
        );
        rig.pump();
    }
    rig.bin_take(b);
    assert!(bin_evicted(&mut rig) >= 8, "{}", bin_evicted(&mut rig));
    assert_eq!(fix_evicted(&mut rig), 6, "per protocol");
}

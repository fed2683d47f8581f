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

/// A resend too large for the connection's output buffer closes the connection as a slow
/// consumer while the FIX handler is working through the ResendRequest. The session must
/// come out of it disconnected (so the client can log on again and get its messages), not
/// left looking logged on with no connection.
#[test]
fn slow_consumer_during_a_resend_leaves_the_session_ready_for_the_next_logon() {
    let sizing = GatewaySizing {
        max_connections: 8,
        max_orders: 1 << 16,
        input_bytes: 64 << 10,
        output_bytes: 256 << 10,
        replay_log_bytes: 1 << 20,
    };
    let mut rig = Rig::with_sizing(appliance::config::Config::default_config(), 1 << 12, sizing);
    let mut client = Client::new("CLIENT1");
    let (c, ok) = client.logon(&mut rig);
    assert!(ok, "first logon answered");
    // 3,000 acknowledged orders: about 750 KB of ExecutionReports in the session's store.
    for i in 0..3_000u32 {
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
        let bytes = std::mem::take(&mut client.out);
        rig.send(c, &bytes);
        rig.take_bytes(c);
    }
    // ResendRequest for everything, and the client reads nothing.
    client.out.clear();
    client
        .session
        .send_raw(b"2", &[], b"7=1\x0116=0\x01", now(), &mut client.out)
        .unwrap();
    let bytes = std::mem::take(&mut client.out);
    rig.gw.tick_clock();
    assert!(rig.gw.on_recv(c, &bytes, 0));
    rig.pump();
    assert_eq!(
        rig.gw.state(c),
        appliance::gateway::conn::ConnState::Dead,
        "closed as a slow consumer"
    );
    assert_eq!(
        rig.gw
            .counters()
            .get(appliance::telemetry::counters::gw::SLOW_CONSUMERS),
        1
    );
    let slot = &rig.gw.sessions()[0];
    assert!(slot.info.conn.is_none(), "the session has no connection");
    let SessionKind::Fix(f) = &slot.kind else {
        panic!("session 0 is FIX");
    };
    assert!(
        !f.session.is_logged_on(),
        "the session saw the disconnect (on_disconnect ran)"
    );
    rig.gw.release(c);

    // The client logs on again and is answered.
    client.session.on_disconnected();
    let (_, ok) = client.logon(&mut rig);
    assert!(ok, "the next logon is answered");
}

//! A gateway and an engine wired together in one thread, without sockets: tests feed client
//! bytes in, run the engine by hand, and read what the gateway queued for each connection.
#![allow(dead_code)]

use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use appliance::config::Config;
use appliance::engine::{Engine, Event, EventSink};
use appliance::gateway::conn::ConnId;
use appliance::gateway::core::{GatewayRings, GatewaySizing};
use appliance::gateway::fix::FixSettings;
use appliance::gateway::instruments::Instruments;
use appliance::gateway::session::build_sessions;
use appliance::gateway::Gateway;
use appliance::rings::msg::{gateway_of, FromEngine, ToEngine};
use appliance::rings::ring::{channel, Receiver, Sender};
use appliance::rings::wait::Waker;
use appliance::runtime::launch::engine_config;
use appliance::vocab::Protocol;

/// One gateway (id 0) and one engine over the default configuration.
pub struct Rig {
    pub gw: Gateway,
    pub engine: Engine,
    pub engine_in: Receiver<ToEngine>,
    pub engine_out: Sender<FromEngine>,
    pub dirty: Vec<ConnId>,
}

struct Sink<'a>(&'a mut Sender<FromEngine>, u64);

impl EventSink for Sink<'_> {
    fn event(&mut self, ev: &Event) {
        let [a, b] = ev.sessions();
        if a.and_then(gateway_of).is_none() && b.and_then(gateway_of).is_none() {
            return;
        }
        let msg = FromEngine {
            event: *ev,
            t_recv: self.1,
            t_done: self.1,
        };
        assert!(self.0.push(msg).is_ok(), "test ring too small");
    }
}

impl Rig {
    pub fn new() -> Self {
        Self::with_config(Config::default_config(), 1 << 12)
    }

    pub fn with_config(cfg: Config, ring: usize) -> Self {
        Self::with_sizing(
            cfg,
            ring,
            GatewaySizing {
                max_connections: 8,
                max_orders: 1 << 16,
                input_bytes: 64 << 10,
                output_bytes: 1 << 20,
                replay_log_bytes: 1 << 20,
                ..GatewaySizing::default()
            },
        )
    }

    pub fn with_sizing(cfg: Config, ring: usize, sizing: GatewaySizing) -> Self {
        let settings = FixSettings::from_config(&cfg.fix);
        let sessions = build_sessions(&cfg, 0, &sizing);
        let (to_tx, to_rx, _) = channel::<ToEngine>(ring);
        let (from_tx, from_rx, _) = channel::<FromEngine>(1 << 16);
        let rings = GatewayRings {
            to_engines: vec![to_tx],
            engine_wakers: vec![Waker::for_current_thread()],
            from_engines: vec![from_rx],
        };
        let mut gw = Gateway::new(
            0,
            sessions,
            Instruments::new(&cfg.resolved_instruments()),
            rings,
            sizing,
            settings,
        );
        gw.tick_clock();
        Self {
            gw,
            engine: Engine::new(engine_config(&cfg, 0)).unwrap(),
            engine_in: to_rx,
            engine_out: from_tx,
            dirty: Vec::with_capacity(64),
        }
    }

    /// Runs the engine over everything queued, then lets the gateway turn events into replies.
    pub fn pump(&mut self) {
        loop {
            let mut did = false;
            while let Some(m) = self.engine_in.pop() {
                did = true;
                let mut sink = Sink(&mut self.engine_out, m.t_recv);
                self.engine.process(&m.cmd, &mut sink);
            }
            did |= self.gw.poll();
            if !did {
                break;
            }
        }
    }

    pub fn connect(&mut self, p: Protocol) -> ConnId {
        self.gw.accept(p, 0).expect("a free connection slot")
    }

    pub fn send(&mut self, c: ConnId, bytes: &[u8]) {
        self.gw.tick_clock();
        assert!(self.gw.on_recv(c, bytes, 0));
        self.pump();
    }

    /// Takes everything queued for `c` (as if sent) and returns the raw bytes.
    pub fn take_bytes(&mut self, c: ConnId) -> Vec<u8> {
        self.gw.take_dirty(&mut self.dirty);
        let out = self.gw.output(c);
        let v = out.unsent().to_vec();
        let n = v.len();
        out.sent(n);
        v
    }

    // ----- binary helpers -----

    pub fn bin_send(&mut self, c: ConnId, m: ClientMessage, seq: u32) {
        let mut b = [0u8; wire::MAX_FRAME_LEN];
        let n = m.encode(seq, &mut b).unwrap();
        self.send(c, &b[..n]);
    }

    pub fn bin_take(&mut self, c: ConnId) -> Vec<(u32, ServerMessage)> {
        let bytes = self.take_bytes(c);
        let mut v = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let n = wire::frame_len(&bytes[pos..])
                .unwrap()
                .expect("whole frames only");
            let f = &bytes[pos..pos + n];
            v.push((wire::read_header(f).seq, ServerMessage::decode(f).unwrap()));
            pos += n;
        }
        v
    }

    pub fn bin_login(
        &mut self,
        user: &str,
        next_server_seq: u32,
    ) -> (ConnId, Vec<(u32, ServerMessage)>) {
        let c = self.connect(Protocol::Binary);
        self.bin_send(
            c,
            ClientMessage::Login(wire::Login {
                username: wire::credential(user).unwrap(),
                password: [b' '; 16],
                next_server_seq,
                heartbeat_ms: 0,
            }),
            0,
        );
        let out = self.bin_take(c);
        (c, out)
    }
}

/// A binary EnterOrder.
pub fn enter(token: u64, sym: &str, side: u8, price: i64, qty: u64, tif: u8) -> ClientMessage {
    ClientMessage::EnterOrder(wire::EnterOrder {
        token,
        symbol: wire::symbol(sym).unwrap(),
        price,
        qty,
        side,
        ord_type: if price == 0 { b'M' } else { b'L' },
        tif,
        flags: 0,
        stp: 0,
    })
}

//! Real-socket helpers: an in-process appliance on ephemeral loopback ports and a blocking
//! binary-protocol client with timeouts (every wait is bounded).
#![allow(dead_code)]

use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use appliance::config::{Config, IoBackend, Threading};
use appliance::runtime::launch::{self, Running, StartOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The default configuration text on ephemeral ports with smaller capacities (quick to
/// start), journaling into `journal` (`None`: journaling off).
pub fn ephemeral_toml(journal: Option<&std::path::Path>) -> String {
    // A console socket of its own (tests run side by side).
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket =
        std::env::temp_dir().join(format!("appliance-admin-{}-{n}.sock", std::process::id()));
    let text = appliance::config::DEFAULT_TOML
        .replace(
            "socket = \"appliance-admin.sock\"",
            &format!("socket = {:?}", socket.display().to_string()),
        )
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace("127.0.0.1:9100", "127.0.0.1:0")
        .replace("127.0.0.1:9201", "127.0.0.1:0")
        .replace("max_orders = 1_000_000", "max_orders = 65_536")
        .replace("segment_mib = 64", "segment_mib = 4");
    match journal {
        Some(dir) => text.replace(
            "dir = \"appliance-data\"",
            &format!("dir = {:?}", dir.display().to_string()),
        ),
        None => text.replace("ack = \"written\"", "ack = \"off\""),
    }
}

/// The ephemeral configuration without a journal.
pub fn test_config() -> Config {
    Config::from_toml(&ephemeral_toml(None)).expect("test configuration")
}

/// The ephemeral configuration journaling into a fresh directory (removed when the guard
/// drops).
pub fn journaled_config() -> (Config, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("appliance-journal-")
        .tempdir()
        .expect("a temporary journal directory");
    let cfg = Config::from_toml(&ephemeral_toml(Some(dir.path()))).expect("test configuration");
    (cfg, dir)
}

/// Starts the appliance in-process (threading as the configuration says: `auto`).
pub fn start(cfg: &Config, io: IoBackend) -> Running {
    start_mode(cfg, io, cfg.runtime.threading)
}

/// Starts the appliance in-process in threading mode `threading`.
pub fn start_mode(cfg: &Config, io: IoBackend, threading: Threading) -> Running {
    launch::start(
        cfg,
        &StartOptions {
            io: Some(io),
            threading: Some(threading),
            ..Default::default()
        },
    )
    .expect("appliance starts")
}

/// Defines two tests calling `BODY(Threading)`, one per threading mode: every end-to-end
/// scenario runs both ways, whatever this host's `auto` picks.
#[macro_export]
macro_rules! both_modes {
    ($body:path => $shared:ident, $dedicated:ident) => {
        #[test]
        fn $shared() {
            $body(appliance::config::Threading::Shared)
        }
        #[test]
        fn $dedicated() {
            $body(appliance::config::Threading::Dedicated)
        }
    };
}

/// A blocking binary-protocol client.
pub struct BinClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pub seq: u32,
}

impl BinClient {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            stream,
            buf: Vec::new(),
            seq: 0,
        }
    }

    pub fn login(addr: SocketAddr, user: &str) -> Self {
        Self::login_with_heartbeat(addr, user, 0)
    }

    /// Logs in asking for heartbeats every `heartbeat_ms` (0: the appliance's default,
    /// 1 s). This client sends no heartbeats of its own: a test that leaves it silent for
    /// longer than three intervals (while it drives another client, on a loaded machine)
    /// asks for a long one.
    pub fn login_with_heartbeat(addr: SocketAddr, user: &str, heartbeat_ms: u32) -> Self {
        let mut c = Self::connect(addr);
        c.send_raw(
            ClientMessage::Login(wire::Login {
                username: wire::credential(user).unwrap(),
                password: [b' '; 16],
                next_server_seq: 0,
                heartbeat_ms,
            }),
            0,
        );
        match c.recv() {
            ServerMessage::LoginAccepted(a) => c.seq = a.next_client_seq - 1,
            other => panic!("login refused: {other:?}"),
        }
        c
    }

    /// The connection and the last sequence number used, for a test that drives the
    /// protocol itself (a writer and a reader thread).
    pub fn into_parts(self) -> (TcpStream, u32) {
        assert!(self.buf.is_empty(), "nothing left unread");
        (self.stream, self.seq)
    }

    pub fn send_raw(&mut self, m: ClientMessage, seq: u32) {
        let mut b = [0u8; wire::MAX_FRAME_LEN];
        let n = m.encode(seq, &mut b).unwrap();
        self.stream.write_all(&b[..n]).unwrap();
    }

    /// Writes bytes as they are (several frames in one write).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a sequenced message with the next sequence number.
    pub fn send(&mut self, m: ClientMessage) {
        self.seq += 1;
        self.send_raw(m, self.seq);
    }

    /// The next message (panics after 5 s).
    pub fn recv(&mut self) -> ServerMessage {
        self.try_recv(Duration::from_secs(5))
            .expect("a message within 5 s")
    }

    pub fn try_recv(&mut self, within: Duration) -> Option<ServerMessage> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(n)) = wire::frame_len(&self.buf) {
                let m = ServerMessage::decode(&self.buf[..n]).unwrap();
                self.buf.drain(..n);
                if matches!(m, ServerMessage::Heartbeat(_)) {
                    continue;
                }
                return Some(m);
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Whether the appliance closed the connection within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

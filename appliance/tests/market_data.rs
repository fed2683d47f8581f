//! The order-by-order feed against the real binary, read by a reference consumer written from
//! docs/market-data.md: it joins the feed (UDP on loopback), checks the MoldUDP64 sequence
//! (contiguous from 1, no gap, heartbeats carry the next number, the session ends), rebuilds
//! every book order by order, and compares it with the books the engines hold, as rebuilt
//! offline from the journal after the run: every level, every order, in queue order.
//! A restart publishes the recovered books first.

#[path = "support/app.rs"]
mod app;
#[path = "support/net.rs"]
mod net;
mod support;

use app::{config_file, App};
use appliance::binary::wire::{self, ClientMessage};
use appliance::marketdata::wire::{decode_packet, system_event, Message, END_OF_SESSION};
use net::BinClient;
use std::collections::{BTreeMap, HashMap};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the consumer received: packets in arrival order.
struct Capture {
    packets: Vec<Vec<u8>>,
}

/// Packets received so far, shared with the reading thread.
type Shared = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// Reads packets until an end-of-session packet (or `within`).
fn capture(socket: UdpSocket, within: Duration) -> std::thread::JoinHandle<Capture> {
    capture_shared(socket, within, Shared::default())
}

/// [`capture`], appending to `shared` as packets arrive.
fn capture_shared(
    socket: UdpSocket,
    within: Duration,
    shared: Shared,
) -> std::thread::JoinHandle<Capture> {
    std::thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                let p = buf[..n].to_vec();
                let end = decode_packet(&p).map(|(h, _)| h.count == END_OF_SESSION);
                shared.lock().unwrap().push(p);
                if end == Ok(true) {
                    break;
                }
            }
        }
        let packets = shared.lock().unwrap().clone();
        Capture { packets }
    })
}

/// One side of one book as the consumer rebuilt it: price -> orders in queue order.
type Side = BTreeMap<i64, Vec<(u64, u64)>>;

/// A price level: symbol, side byte, price, (order, quantity) in queue order.
type Row = (String, u8, i64, Vec<(u64, u64)>);

/// The reference consumer's state.
#[derive(Default)]
struct Books {
    /// order -> (instrument, side byte, price, qty).
    orders: HashMap<u64, (u32, u8, i64, u64)>,
    /// (instrument, side byte) -> levels.
    sides: BTreeMap<(u32, u8), Side>,
    symbols: BTreeMap<u32, String>,
    /// Instrument -> its last state byte (`H` halted, `T` trading).
    states: BTreeMap<u32, u8>,
    messages: u64,
    /// Messages by type.
    by_type: BTreeMap<u8, u64>,
    heartbeats: u64,
    started: bool,
    ended: bool,
}

impl Books {
    fn level(&mut self, instrument: u32, side: u8, price: i64) -> &mut Vec<(u64, u64)> {
        self.sides
            .entry((instrument, side))
            .or_default()
            .entry(price)
            .or_default()
    }

    fn remove(&mut self, order: u64) -> (u32, u8, i64, u64) {
        let o = self
            .orders
            .remove(&order)
            .unwrap_or_else(|| panic!("order {order:#x} is not in the book"));
        let level = self.level(o.0, o.1, o.2);
        level.retain(|(id, _)| *id != order);
        if level.is_empty() {
            self.sides.get_mut(&(o.0, o.1)).unwrap().remove(&o.2);
        }
        o
    }

    fn reduce(&mut self, order: u64, by: u64) {
        let o = *self
            .orders
            .get(&order)
            .unwrap_or_else(|| panic!("order {order:#x} is not in the book"));
        assert!(by <= o.3, "order {order:#x}: {by} off {}", o.3);
        if by == o.3 {
            self.remove(order);
            return;
        }
        self.orders.get_mut(&order).unwrap().3 -= by;
        let level = self.level(o.0, o.1, o.2);
        let e = level.iter_mut().find(|(id, _)| *id == order).unwrap();
        e.1 -= by;
    }

    fn add(&mut self, order: u64, instrument: u32, side: u8, price: i64, qty: u64) {
        assert!(qty > 0, "an order rests with a quantity");
        assert!(
            self.orders
                .insert(order, (instrument, side, price, qty))
                .is_none(),
            "order {order:#x} added twice"
        );
        self.level(instrument, side, price).push((order, qty));
    }

    fn apply(&mut self, m: Message) {
        match m {
            Message::System { code, .. } => match code {
                system_event::START => self.started = true,
                system_event::END => self.ended = true,
                other => panic!("unknown system event {other}"),
            },
            Message::Directory {
                instrument, symbol, ..
            } => {
                let s = String::from_utf8_lossy(&symbol).trim_end().to_string();
                self.symbols.insert(instrument, s);
            }
            Message::Add {
                order,
                instrument,
                side,
                qty,
                price,
                ..
            } => {
                assert!(self.symbols.contains_key(&instrument), "unknown instrument");
                self.add(order, instrument, side, price, qty);
            }
            Message::Executed {
                order, qty, price, ..
            } => {
                let o = self.orders[&order];
                assert_eq!(o.2, price, "an execution is at the resting order's price");
                self.reduce(order, qty);
            }
            Message::Cancel { order, qty, .. } => self.reduce(order, qty),
            Message::State {
                instrument, state, ..
            } => {
                assert!(self.symbols.contains_key(&instrument), "unknown instrument");
                self.states.insert(instrument, state);
            }
            Message::Delete { order, .. } => {
                self.remove(order);
            }
            Message::Replace {
                order, qty, price, ..
            } => {
                let (instrument, side, _, _) = self.remove(order);
                self.add(order, instrument, side, price, qty);
            }
        }
    }

    /// Applies every packet, checking the sequence, up to the end of the session.
    fn consume(&mut self, c: &Capture) {
        self.consume_packets(&c.packets);
        let last = c.packets.last().map(|p| decode_packet(p).unwrap().0.count);
        assert_eq!(last, Some(END_OF_SESSION), "the session ends");
        assert!(self.started && self.ended, "start and end of messages");
    }

    /// Applies `packets` from the session's first, checking the sequence; returns the next
    /// sequence number.
    fn consume_packets(&mut self, packets: &[Vec<u8>]) -> u64 {
        let mut next = 1u64;
        let mut session = None;
        for p in packets {
            let (h, blocks) = decode_packet(p).expect("a well-formed packet");
            assert_eq!(*session.get_or_insert(h.session), h.session, "one session");
            match h.count {
                0 => {
                    assert_eq!(h.seq, next, "a heartbeat carries the next sequence number");
                    self.heartbeats += 1;
                }
                END_OF_SESSION => assert_eq!(h.seq, next, "end of session at the next number"),
                n => {
                    assert_eq!(h.seq, next, "packets are contiguous (no gap, no repeat)");
                    assert_eq!(blocks.len(), n as usize);
                    for b in blocks {
                        let m = Message::decode(b).expect("a known message");
                        *self.by_type.entry(m.msg_type()).or_default() += 1;
                        self.apply(m);
                        self.messages += 1;
                    }
                    next += n as u64;
                }
            }
        }
        next
    }

    /// The books as (symbol, side, price, [(order, qty)]) rows.
    fn rows(&self) -> Vec<Row> {
        let mut v = Vec::new();
        for ((instrument, side), levels) in &self.sides {
            for (price, orders) in levels {
                v.push((
                    self.symbols[instrument].clone(),
                    *side,
                    *price,
                    orders.clone(),
                ));
            }
        }
        v
    }
}

/// The engines' books as the journal rebuilds them, in the same rows.
fn engine_rows(cfg: &Path) -> Vec<Row> {
    let config = appliance::config::Config::load(cfg).unwrap();
    let opts = appliance::recovery::recover::RecoverOptions {
        full_gateways: false,
        repair: false,
        snapshot: appliance::recovery::recover::SnapshotChoice::Latest,
    };
    let r = appliance::recovery::recover::recover_with(&config, &config.journal.dir, &opts)
        .expect("the journal replays");
    let symbols = config.resolved_instruments();
    let mut v = Vec::new();
    for e in &r.replica.engines {
        for book in e.dump() {
            let symbol = symbols[book.instrument as usize].symbol.clone();
            for (side, levels) in [(b'B', &book.bids), (b'S', &book.asks)] {
                for l in levels {
                    let orders = l.orders.iter().map(|o| (o.order_id, o.leaves)).collect();
                    v.push((symbol.clone(), side, l.info.price, orders));
                }
            }
        }
    }
    v.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    v
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A mixed flow from two firms: resting and crossing limit orders on two instruments, IOCs,
/// market orders, cancels and replaces (price moves and quantity cuts).
fn flow(a: &mut BinClient, b: &mut BinClient, seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let mut live: Vec<(usize, u64, i64)> = Vec::new();
    let mut token = 1_000u64;
    let mut clients = [a, b];
    for _ in 0..n {
        let who = rng.below(2) as usize;
        token += 1;
        let (sym, mid, tick) = if rng.below(3) == 0 {
            ("BOLT", 500_000i64, 100i64)
        } else {
            ("ACME", 1_000_000i64, 100i64)
        };
        let side = if rng.below(2) == 0 { b'B' } else { b'S' };
        let off = (rng.below(21) as i64 - 10) * tick;
        let qty = 1 + rng.below(20);
        let m = match rng.below(10) {
            0..=4 => {
                live.push((who, token, mid + off));
                support::enter(token, sym, side, mid + off, qty, b'1')
            }
            5 => support::enter(token, sym, side, mid + off, qty, b'3'),
            6 => support::enter(token, sym, side, 0, qty, b'3'),
            7 if !live.is_empty() => {
                let (w, t, _) = live.swap_remove(rng.below(live.len() as u64) as usize);
                let m = ClientMessage::CancelOrder(wire::CancelOrder { token: t });
                clients[w].send(m);
                continue;
            }
            _ if !live.is_empty() => {
                let i = rng.below(live.len() as u64) as usize;
                let (w, t, px) = live[i];
                // Half keep the price (a cut keeps the order's place), half move it.
                let price = if rng.below(2) == 0 { px } else { mid + off };
                live[i] = (w, token, price);
                let m = ClientMessage::ReplaceOrder(wire::ReplaceOrder {
                    orig_token: t,
                    new_token: token,
                    price,
                    qty: 1 + rng.below(20),
                });
                clients[w].send(m);
                continue;
            }
            _ => support::enter(token, sym, side, mid + off, qty, b'1'),
        };
        clients[who].send(m);
        // Keep both connections drained (their answers are not what this test checks).
        for c in clients.iter_mut() {
            while c.try_recv(Duration::ZERO).is_some() {}
        }
    }
    let quiet = Instant::now() + Duration::from_secs(1);
    while Instant::now() < quiet {
        for c in clients.iter_mut() {
            while c.try_recv(Duration::from_millis(10)).is_some() {}
        }
    }
}

fn feed_config(dir: &Path, port: u16, threading: &str) -> std::path::PathBuf {
    // Orders stay when the sessions log out at shutdown, so the books are worth comparing.
    config_file(
        dir,
        "written",
        &[
            (
                "threading = \"auto\"",
                &format!("threading = \"{threading}\""),
            ),
            (
                "destinations = [\"127.0.0.1:9200\"]",
                &format!("destinations = [\"127.0.0.1:{port}\"]"),
            ),
            (
                "username = \"CLIENT1\"\ncancel_on_disconnect = true",
                "username = \"CLIENT1\"\ncancel_on_disconnect = false",
            ),
            (
                "username = \"CLIENT2\"\ncancel_on_disconnect = true",
                "username = \"CLIENT2\"\ncancel_on_disconnect = false",
            ),
        ],
    )
}

#[test]
fn a_reference_consumer_rebuilds_every_book_exactly_shared() {
    consumer_rebuilds_and_restart_republishes("shared");
}

#[test]
fn a_reference_consumer_rebuilds_every_book_exactly_dedicated() {
    consumer_rebuilds_and_restart_republishes("dedicated");
}

fn consumer_rebuilds_and_restart_republishes(threading: &str) {
    let dir = tempfile::tempdir().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let cfg = feed_config(dir.path(), port, threading);
    let reader = capture(socket.try_clone().unwrap(), Duration::from_secs(120));
    let mut app = App::start(&cfg);
    let mut a = BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000);
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    flow(&mut a, &mut b, 0x5eed_1234_abcd_0001, 1_500);
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let got = reader.join().unwrap();

    let mut books = Books::default();
    books.consume(&got);
    let mut rows = books.rows();
    rows.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    let want = engine_rows(&cfg);
    let resting: usize = want.iter().map(|r| r.3.len()).sum();
    // How many rest depends on how the two connections interleave (about 40-90 seen).
    assert!(resting >= 20, "the flow leaves resting orders: {resting}");
    for t in [b'A', b'E', b'X', b'D', b'U'] {
        assert!(
            books.by_type.get(&t).copied().unwrap_or(0) > 0,
            "the flow exercises message {:?}: {:?}",
            t as char,
            books.by_type
        );
    }
    assert!(
        books.messages > 1_000,
        "{} messages for 1,500 operations",
        books.messages
    );
    assert_eq!(rows, want, "the feed's books are the engines' books");

    // A restart: the feed's new session opens with the recovered books, and the consumer
    // that joins it rebuilds the same state without having seen the first session.
    let reader = capture(socket, Duration::from_secs(60));
    let app = App::start(&cfg);
    std::thread::sleep(Duration::from_millis(1_500));
    let mut app = app;
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let got = reader.join().unwrap();
    let mut late = Books::default();
    late.consume(&got);
    let mut rows = late.rows();
    rows.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    assert_eq!(rows, want, "the recovered books open the new session");
    assert!(late.heartbeats >= 1, "an idle feed sends heartbeats");
}

/// The recovery service's address, from the appliance's log.
fn recovery_addr(app: &App) -> std::net::SocketAddr {
    let log = app.log();
    let line = log
        .lines()
        .find(|l| l.contains("recovery service on "))
        .unwrap_or_else(|| panic!("no recovery service in the log:\n{log}"));
    let at = line.find("recovery service on ").unwrap() + "recovery service on ".len();
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

/// Sends one request to the recovery service and reads its answer: the messages with their
/// sequence numbers (0 in a snapshot) and the terminating packet's number.
fn ask(stream: &mut std::net::TcpStream, request: &[u8]) -> (Vec<(u64, Message)>, u64) {
    use std::io::{Read, Write};
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut p = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut p).unwrap();
        let (h, blocks) = decode_packet(&p).unwrap();
        assert_ne!(h.count, END_OF_SESSION, "the service refused the session");
        if h.count == 0 {
            return (out, h.seq);
        }
        for (i, b) in blocks.iter().enumerate() {
            let seq = if h.seq == 0 { 0 } else { h.seq + i as u64 };
            out.push((seq, Message::decode(b).unwrap()));
        }
    }
}

fn retransmit_request(session: &[u8; 10], seq: u64, count: u16) -> Vec<u8> {
    let mut r = vec![b'R'];
    r.extend_from_slice(session);
    r.extend_from_slice(&seq.to_be_bytes());
    r.extend_from_slice(&count.to_be_bytes());
    r
}

/// A consumer that loses every third data packet recovers them by retransmission; a
/// consumer that joins in the middle of the flow recovers by snapshot; both end with the
/// engines' books.
#[test]
fn lost_packets_are_retransmitted_and_a_late_joiner_starts_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let cfg = feed_config(dir.path(), port, "auto");
    let shared = Shared::default();
    let reader = capture_shared(socket, Duration::from_secs(120), shared.clone());
    let mut app = App::start(&cfg);
    let service = recovery_addr(&app);
    let mut a = BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000);
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);
    flow(&mut a, &mut b, 0x1a7e_0000_0000_0001, 700);

    // The late joiner: buffers from now on, then asks for a snapshot.
    let joined_at = shared.lock().unwrap().len();
    let session: [u8; 10] = shared.lock().unwrap()[0][..10].try_into().unwrap();
    let mut conn = std::net::TcpStream::connect(service).unwrap();
    let mut req = vec![b'S'];
    req.extend_from_slice(&session);
    let (snapshot, as_of) = ask(&mut conn, &req);
    assert!(as_of > 1, "the snapshot is as of a sequence number");
    assert!(
        snapshot.iter().all(|(s, _)| *s == 0),
        "snapshot messages are not numbered"
    );
    flow(&mut a, &mut b, 0x1a7e_0000_0000_0002, 700);

    // The lossy consumer, while the service still runs: every third data packet lost.
    let seen: Vec<Vec<u8>> = shared.lock().unwrap().clone();
    let mut full = Books::default();
    let end = full.consume_packets(&seen);
    let mut lossy = Books::default();
    let (mut next, mut lost, mut requests) = (1u64, 0, 0);
    let mut fill =
        |lossy: &mut Books, next: &mut u64, upto: u64, conn: &mut std::net::TcpStream| {
            while *next < upto {
                let want = (upto - *next).min(10_000) as u16;
                let (msgs, stop) = ask(conn, &retransmit_request(&session, *next, want));
                requests += 1;
                assert!(!msgs.is_empty(), "retained messages are retransmitted");
                for (seq, m) in msgs {
                    assert_eq!(seq, *next, "retransmitted in order");
                    lossy.apply(m);
                    *next += 1;
                }
                assert_eq!(stop, *next, "the answer ends where it stopped");
            }
        };
    let mut data = 0;
    for p in &seen {
        let (h, blocks) = decode_packet(p).unwrap();
        if h.count == 0 || h.count == END_OF_SESSION {
            continue;
        }
        data += 1;
        if data % 3 == 2 {
            lost += 1;
            continue;
        }
        if h.seq > next {
            fill(&mut lossy, &mut next, h.seq, &mut conn);
        }
        for (i, b) in blocks.iter().enumerate() {
            let seq = h.seq + i as u64;
            if seq >= next {
                lossy.apply(Message::decode(b).unwrap());
                next = seq + 1;
            }
        }
    }
    fill(&mut lossy, &mut next, end, &mut conn);
    assert!(
        lost > 10 && requests > 10,
        "{lost} packets lost, {requests} requests"
    );
    assert_eq!(
        lossy.rows(),
        full.rows(),
        "the lossy consumer caught up exactly"
    );

    // A request for another session is refused.
    let mut other = std::net::TcpStream::connect(service).unwrap();
    {
        use std::io::{Read, Write};
        other
            .write_all(&retransmit_request(b"0000000000", 1, 1))
            .unwrap();
        let mut b = [0u8; 22];
        other.read_exact(&mut b).unwrap();
        assert_eq!(u16::from_be_bytes([b[20], b[21]]), END_OF_SESSION);
    }

    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let got = reader.join().unwrap();
    let want = engine_rows(&cfg);

    // The late joiner: the snapshot, then the buffered live messages from `as_of` on.
    let mut late = Books::default();
    for (_, m) in snapshot {
        late.apply(m);
    }
    for p in &got.packets[joined_at..] {
        let (h, blocks) = decode_packet(p).unwrap();
        if h.count == 0 || h.count == END_OF_SESSION {
            continue;
        }
        for (i, b) in blocks.iter().enumerate() {
            if h.seq + i as u64 >= as_of {
                late.apply(Message::decode(b).unwrap());
            }
        }
    }
    assert!(late.ended, "the late joiner saw the end of messages");
    let mut rows = late.rows();
    rows.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    assert!(!want.is_empty());
    assert_eq!(rows, want, "the late joiner's books are the engines' books");
}

/// `appliance admin --socket SOCKET words...`: its JSON answer.
fn admin(socket: &Path, words: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_appliance"))
        .arg("admin")
        .arg("--socket")
        .arg(socket)
        .args(words)
        .output()
        .expect("appliance admin runs");
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

/// The operator's halts reach the feed: an `H` message on halt, `T` on resume; a snapshot
/// carries the halted instruments; a restart opens the new session with them.
#[test]
fn halts_and_resumes_are_instrument_state_messages() {
    let dir = tempfile::tempdir().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let cfg = feed_config(dir.path(), port, "auto");
    let admin_socket = dir.path().join("admin.sock");
    let shared = Shared::default();
    let reader = capture_shared(socket, Duration::from_secs(60), shared.clone());
    let mut app = App::start(&cfg);
    assert_eq!(admin(&admin_socket, &["halt", "BOLT"])["ok"], true);
    // A snapshot taken now names BOLT halted.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no packet from the feed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let session: [u8; 10] = shared.lock().unwrap()[0][..10].try_into().unwrap();
    let mut conn = std::net::TcpStream::connect(recovery_addr(&app)).unwrap();
    let mut req = vec![b'S'];
    req.extend_from_slice(&session);
    let (snapshot, _) = ask(&mut conn, &req);
    let halted: Vec<u32> = snapshot
        .iter()
        .filter_map(|(_, m)| match m {
            Message::State {
                instrument,
                state: b'H',
                ..
            } => Some(*instrument),
            _ => None,
        })
        .collect();
    assert_eq!(
        halted,
        [1],
        "BOLT (instrument 1) halted in the snapshot: {snapshot:?}"
    );
    assert_eq!(admin(&admin_socket, &["resume", "BOLT"])["ok"], true);
    assert_eq!(admin(&admin_socket, &["halt", "ACME"])["ok"], true);
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let got = reader.join().unwrap();
    let mut books = Books::default();
    books.consume(&got);
    let mut states = Vec::new();
    for p in &got.packets {
        let (h, blocks) = decode_packet(p).unwrap();
        if h.count == END_OF_SESSION {
            continue;
        }
        for b in blocks {
            if let Message::State {
                instrument, state, ..
            } = Message::decode(b).unwrap()
            {
                states.push((books.symbols[&instrument].clone(), state));
            }
        }
    }
    assert_eq!(
        states,
        [
            ("BOLT".to_string(), b'H'),
            ("BOLT".to_string(), b'T'),
            ("ACME".to_string(), b'H')
        ],
        "halt, resume, halt, in order"
    );

    // ACME is still halted (journaled): the restarted feed's session opens with it.
    let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let reader = capture(socket, Duration::from_secs(60));
    let mut app = App::start(&cfg);
    std::thread::sleep(Duration::from_millis(300));
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    let got = reader.join().unwrap();
    let mut late = Books::default();
    late.consume(&got);
    let acme = late
        .symbols
        .iter()
        .find(|(_, s)| s.as_str() == "ACME")
        .map(|(i, _)| *i)
        .unwrap();
    assert_eq!(
        late.states.get(&acme),
        Some(&b'H'),
        "the session opens with ACME halted"
    );
    assert_eq!(late.states.len(), 1, "only ACME: {:?}", late.states);
}

/// Asks the kernel for a large receive buffer (as root beyond `rmem_max`), so a consumer on a
/// busy 2-core machine loses as few packets as possible; the rest are retransmitted.
fn large_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let bytes: libc::c_int = 256 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt(2) on a socket we own, with a pointer to a live c_int and its size.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return;
        }
    }
}

/// The `standard` workload (workloads/gen_workload.py: 10,000 resting orders, then a million
/// adds, cancels, quantity-down replaces, IOCs and market orders) replayed through the
/// appliance over the binary protocol as fast as TCP takes it (no window: the appliance paces
/// the client, and before it did, closed it as a slow consumer within a second); the reference
/// consumer, repairing any packet the kernel dropped by retransmission, ends with the engine's
/// book: every level, every order, in queue order.
#[test]
fn a_reference_consumer_rebuilds_the_book_of_the_standard_workload() {
    use std::io::{BufRead, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("standard.txt");
    let gen = concat!(env!("CARGO_MANIFEST_DIR"), "/../workloads/gen_workload.py");
    let out = std::process::Command::new("python3")
        .arg(gen)
        .arg("standard")
        .stdout(std::fs::File::create(&workload).unwrap())
        .status()
        .expect("python3 runs the workload generator");
    assert!(out.success());

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    large_receive_buffer(&socket);
    let port = socket.local_addr().unwrap().port();
    // The workload's instrument: tick 1, prices in ticks around 100,000 (ACME, redefined);
    // every message kept for retransmission; room for every order.
    let cfg = config_file(
        dir.path(),
        "written",
        &[
            (
                "destinations = [\"127.0.0.1:9200\"]",
                &format!("destinations = [\"127.0.0.1:{port}\"]"),
            ),
            ("retransmit_messages = 262_144", "retransmit_messages = 4_000_000"),
            // Pipelined cancels of orders still being replaced are refused (110): not logged.
            (
                "audit_order_events = \"info\"",
                "audit_order_events = \"off\"",
            ),
            ("max_orders = 1_000_000", "max_orders = 1_200_000"),
            ("max_orders = 262_144", "max_orders = 1_200_000"),
            (
                "symbol = \"ACME\"\nprice_decimals = 4\ntick_size = \"0.01\"\nlot_size = 1\nreference_price = \"100.00\"",
                "symbol = \"ACME\"\nprice_decimals = 0\ntick_size = \"1\"\nlot_size = 1\nreference_price = \"100000\"",
            ),
            (
                "username = \"CLIENT1\"\ncancel_on_disconnect = true",
                "username = \"CLIENT1\"\ncancel_on_disconnect = false",
            ),
        ],
    );
    let shared = Shared::default();
    let reader = capture_shared(socket, Duration::from_secs(600), shared.clone());
    let mut app = App::start(&cfg);
    let service = recovery_addr(&app);
    let (stream, mut seq) =
        BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000).into_parts();

    // A reader thread drains the answers and stops at the marker's acknowledgement, which
    // follows every earlier answer. The writer does not wait for answers: it sends as fast as
    // TCP takes the bytes, and the appliance must pace it (its input waits while its answers
    // are held for the journal) rather than close it as a slow consumer.
    const MARKER: u64 = u64::MAX - 1;
    let mut rx = stream.try_clone().unwrap();
    let answers = std::thread::spawn(move || {
        let (mut buf, mut n) = (Vec::new(), 0u64);
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut tmp = vec![0u8; 1 << 16];
        while Instant::now() < deadline {
            let mut at = 0;
            while let Ok(Some(len)) = wire::frame_len(&buf[at..]) {
                let m = wire::ServerMessage::decode(&buf[at..at + len]).unwrap();
                at += len;
                n += 1;
                match m {
                    wire::ServerMessage::Accepted(a) if a.token == MARKER => return n,
                    wire::ServerMessage::Logout(l) => panic!("logged out: {l:?}"),
                    _ => {}
                }
            }
            buf.drain(..at);
            match rx.read(&mut tmp) {
                Ok(0) => panic!("the appliance closed the connection"),
                Ok(k) => buf.extend_from_slice(&tmp[..k]),
                Err(_) => {}
            }
        }
        panic!("no marker acknowledgement within 600 s");
    });

    // The writer: the workload's commands, many to a write. Tokens are the workload's ids; a
    // replace gets a new token and later commands name the order by it.
    let mut tx = stream;
    // Workload id -> (token, price) of the order as it is now.
    let mut token_of: HashMap<u64, (u64, i64)> = HashMap::new();
    let mut next_token = 10_000_000u64;
    let (mut batch, mut frame) = (Vec::with_capacity(1 << 16), [0u8; wire::MAX_FRAME_LEN]);
    let mut commands = 0u64;
    let mut push = |m: ClientMessage, batch: &mut Vec<u8>, seq: &mut u32| {
        *seq += 1;
        let n = m.encode(*seq, &mut frame).unwrap();
        batch.extend_from_slice(&frame[..n]);
    };
    for line in std::io::BufReader::new(std::fs::File::open(&workload).unwrap()).lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split(' ').collect();
        let m = match f[0] {
            "N" => {
                let id: u64 = f[1].parse().unwrap();
                let side = f[3].as_bytes()[0];
                let tif = if f[5] == "G" { b'1' } else { b'3' };
                let price: i64 = if f[4] == "M" {
                    0
                } else {
                    f[6].parse().unwrap()
                };
                token_of.insert(id, (id, price));
                support::enter(id, "ACME", side, price, f[7].parse().unwrap(), tif)
            }
            "X" => {
                let id: u64 = f[1].parse().unwrap();
                ClientMessage::CancelOrder(wire::CancelOrder {
                    token: token_of.remove(&id).map_or(id, |t| t.0),
                })
            }
            "R" => {
                let id: u64 = f[1].parse().unwrap();
                let (orig, price) = token_of[&id];
                next_token += 1;
                token_of.insert(id, (next_token, price));
                // The same price, a smaller quantity: the order keeps its place.
                ClientMessage::ReplaceOrder(wire::ReplaceOrder {
                    orig_token: orig,
                    new_token: next_token,
                    price,
                    qty: f[2].parse().unwrap(),
                })
            }
            _ => continue,
        };
        push(m, &mut batch, &mut seq);
        commands += 1;
        if batch.len() < 60_000 {
            continue;
        }
        if let Err(e) = tx.write_all(&batch) {
            panic!("writing the workload: {e}\n{}", app.log());
        }
        batch.clear();
    }
    push(
        support::enter(MARKER, "ACME", b'B', 95_000, 1, b'3'),
        &mut batch,
        &mut seq,
    );
    tx.write_all(&batch).unwrap();
    assert_eq!(commands, 1_010_000, "the whole workload was sent");
    let answered = answers.join().expect("every command answered");
    assert!(answered > commands, "{answered} answers");

    // Every event is published once the feed's heartbeat names the next number; rebuild,
    // repairing gaps by retransmission while the service runs.
    std::thread::sleep(Duration::from_millis(2_500));
    let seen: Vec<Vec<u8>> = shared.lock().unwrap().clone();
    let session: [u8; 10] = seen[0][..10].try_into().unwrap();
    let mut conn = std::net::TcpStream::connect(service).unwrap();
    let mut books = Books::default();
    let (mut next, mut repaired) = (1u64, 0u64);
    let mut fill = |books: &mut Books, next: &mut u64, upto: u64| {
        while *next < upto {
            let want = (upto - *next).min(10_000) as u16;
            let (msgs, _) = ask(&mut conn, &retransmit_request(&session, *next, want));
            assert!(!msgs.is_empty(), "retained messages are retransmitted");
            for (s, m) in msgs {
                assert_eq!(s, *next, "retransmitted in order");
                *books.by_type.entry(m.msg_type()).or_default() += 1;
                books.messages += 1;
                books.apply(m);
                *next += 1;
                repaired += 1;
            }
        }
    };
    for p in &seen {
        let (h, blocks) = decode_packet(p).unwrap();
        if h.count == END_OF_SESSION {
            continue;
        }
        if h.seq > next {
            fill(&mut books, &mut next, h.seq);
        }
        for (i, b) in blocks.iter().enumerate() {
            if h.seq + i as u64 == next {
                let m = Message::decode(b).unwrap();
                *books.by_type.entry(m.msg_type()).or_default() += 1;
                books.messages += 1;
                books.apply(m);
                next += 1;
            }
        }
    }
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    drop(reader);
    let mut rows = books.rows();
    rows.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    let want = engine_rows(&cfg);
    let resting: usize = want.iter().map(|r| r.3.len()).sum();
    assert!(resting > 10_000, "{resting} orders rest after the workload");
    for t in [b'A', b'E', b'X', b'D'] {
        assert!(
            books.by_type.get(&t).copied().unwrap_or(0) > 1_000,
            "the workload exercises message {:?}: {:?}",
            t as char,
            books.by_type
        );
    }
    eprintln!(
        "standard workload: {commands} commands, {} feed messages ({repaired} retransmitted), {resting} resting orders",
        books.messages
    );
    assert_eq!(rows, want, "the feed's book is the engine's book");
}

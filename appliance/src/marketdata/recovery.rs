//! Recovery for feed consumers: a retransmission service (messages by sequence range, bounded
//! per request) and a snapshot service (every resting order, in queue order, as of a sequence
//! number), over TCP on `market_data.recovery_listen`. `docs/market-data.md` specifies the
//! requests and the answers.
//!
//! The publisher keeps the last `market_data.retransmit_messages` messages ([`Store`]) and a
//! mirror of the books as the feed shows them ([`Mirror`]); both change only on its thread.
//! A cold server thread accepts one connection at a time, reads requests, hands each to the
//! publisher over a channel and writes back the answer the publisher builds between two
//! drains of the engines' rings (so an answer is consistent with one sequence number).

use super::wire::{encode_header, Message, PacketHeader, HEADER, MAX_MESSAGE};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Most messages one retransmission request is answered with.
pub const MAX_PER_REQUEST: u16 = 10_000;

/// Request types (the first byte of a request).
pub mod request_type {
    /// Retransmission: session (10), first sequence number (`u64`), count (`u16`).
    pub const RETRANSMIT: u8 = b'R';
    /// Snapshot: session (10).
    pub const SNAPSHOT: u8 = b'S';
}

/// A consumer's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Messages `seq ..` (at most `count`, at most [`MAX_PER_REQUEST`]).
    Retransmit {
        /// First sequence number wanted.
        seq: u64,
        /// How many.
        count: u16,
    },
    /// Every resting order.
    Snapshot,
}

/// The messages retained for retransmission: the last `capacity`, by sequence number.
pub struct Store {
    msgs: VecDeque<([u8; MAX_MESSAGE], u8)>,
    /// Sequence number of `msgs[0]`.
    first: u64,
    capacity: usize,
}

impl Store {
    /// A store for `capacity` messages (reserved now), starting at sequence number 1.
    pub fn new(capacity: usize) -> Self {
        Self {
            msgs: VecDeque::with_capacity(capacity.max(1)),
            first: 1,
            capacity: capacity.max(1),
        }
    }

    /// Keeps message `m` (the next sequence number).
    #[inline]
    pub fn push(&mut self, m: &Message) {
        let mut b = [0u8; MAX_MESSAGE];
        let n = m.encode(&mut b);
        self.push_encoded(&b[..n]);
    }

    /// Keeps a message already encoded (the next sequence number).
    #[inline]
    pub fn push_encoded(&mut self, encoded: &[u8]) {
        if self.msgs.len() == self.capacity {
            self.msgs.pop_front();
            self.first += 1;
        }
        let mut b = [0u8; MAX_MESSAGE];
        b[..encoded.len()].copy_from_slice(encoded);
        self.msgs.push_back((b, encoded.len() as u8));
    }

    /// The first sequence number still retained.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The next sequence number (one past the last retained).
    pub fn next(&self) -> u64 {
        self.first + self.msgs.len() as u64
    }

    /// The encoded message `seq`, if retained.
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = seq.checked_sub(self.first)? as usize;
        self.msgs.get(i).map(|(b, n)| &b[..*n as usize])
    }
}

/// A price level's key: instrument, side byte, price.
type Level = (u32, u8, i64);

/// The books as the feed shows them: every resting order in queue order.
#[derive(Default)]
pub struct Mirror {
    /// order -> (instrument, side, price, qty).
    orders: HashMap<u64, (u32, u8, i64, u64)>,
    /// (instrument, side, price) -> queue.
    levels: BTreeMap<Level, VecDeque<u64>>,
    /// Directory messages, as sent.
    directory: Vec<Message>,
    /// Instruments not trading (their last state message).
    halted: std::collections::BTreeSet<u32>,
}

impl Mirror {
    /// Applies a message the feed published.
    pub fn apply(&mut self, m: &Message) {
        match *m {
            Message::Directory { .. } => self.directory.push(*m),
            Message::Add {
                order,
                instrument,
                side,
                qty,
                price,
                ..
            } => {
                self.orders.insert(order, (instrument, side, price, qty));
                self.levels
                    .entry((instrument, side, price))
                    .or_default()
                    .push_back(order);
            }
            Message::Executed { order, qty, .. } | Message::Cancel { order, qty, .. } => {
                let left = match self.orders.get_mut(&order) {
                    Some(o) => {
                        o.3 = o.3.saturating_sub(qty);
                        o.3
                    }
                    None => return,
                };
                if left == 0 {
                    self.remove(order);
                }
            }
            Message::Delete { order, .. } => {
                self.remove(order);
            }
            Message::Replace {
                order, qty, price, ..
            } => {
                if let Some((instrument, side, _, _)) = self.remove(order) {
                    self.apply(&Message::Add {
                        ts: 0,
                        order,
                        instrument,
                        side,
                        qty,
                        price,
                    });
                }
            }
            Message::State {
                instrument, state, ..
            } => {
                if state == super::wire::instrument_state::TRADING {
                    self.halted.remove(&instrument);
                } else {
                    self.halted.insert(instrument);
                }
            }
            Message::System { .. } => {}
        }
    }

    fn remove(&mut self, order: u64) -> Option<(u32, u8, i64, u64)> {
        let o = self.orders.remove(&order)?;
        let key = (o.0, o.1, o.2);
        if let Some(q) = self.levels.get_mut(&key) {
            if let Some(i) = q.iter().position(|&x| x == order) {
                q.remove(i);
            }
            if q.is_empty() {
                self.levels.remove(&key);
            }
        }
        Some(o)
    }

    /// The snapshot's messages: the directory, an `H` for each instrument not trading, then
    /// an `A` for every resting order, each
    /// instrument's bids best (highest) first, then its asks best (lowest) first, each
    /// level in queue order.
    pub fn snapshot(&self, ts: u64) -> Vec<Message> {
        let mut out = self.directory.clone();
        out.extend(self.halted.iter().map(|&instrument| Message::State {
            ts,
            instrument,
            state: super::wire::instrument_state::HALTED,
        }));
        let mut by_instrument: BTreeMap<u32, (Vec<&Level>, Vec<&Level>)> = BTreeMap::new();
        for k in self.levels.keys() {
            let e = by_instrument.entry(k.0).or_default();
            if k.1 == b'B' {
                e.0.push(k);
            } else {
                e.1.push(k);
            }
        }
        for (_, (mut bids, asks)) in by_instrument {
            bids.reverse();
            for k in bids.into_iter().chain(asks) {
                for &order in &self.levels[k] {
                    let o = self.orders[&order];
                    out.push(Message::Add {
                        ts,
                        order,
                        instrument: o.0,
                        side: o.1,
                        qty: o.3,
                        price: o.2,
                    });
                }
            }
        }
        out
    }
}

/// Packs `msgs` (numbered from `seq`, or all 0 for a snapshot) into length-prefixed packets of
/// at most `max_packet` bytes, then the terminating header-only packet carrying `end_seq`.
pub fn frames(
    session: [u8; 10],
    msgs: impl IntoIterator<Item = Vec<u8>>,
    seq: Option<u64>,
    end_seq: u64,
    max_packet: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut packet = vec![0u8; HEADER];
    let mut count = 0u16;
    let mut first = seq.unwrap_or(0);
    let mut next = first;
    let close = |packet: &mut Vec<u8>, count: &mut u16, first: u64, out: &mut Vec<u8>| {
        if *count == 0 {
            return;
        }
        encode_header(
            &mut packet[..HEADER],
            &PacketHeader {
                session,
                seq: first,
                count: *count,
            },
        );
        out.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        out.extend_from_slice(packet);
        packet.truncate(HEADER);
        *count = 0;
    };
    for m in msgs {
        if packet.len() + 2 + m.len() > max_packet || count == u16::MAX - 1 {
            close(&mut packet, &mut count, first, &mut out);
            first = next;
        }
        packet.extend_from_slice(&(m.len() as u16).to_be_bytes());
        packet.extend_from_slice(&m);
        count += 1;
        if seq.is_some() {
            next += 1;
        }
    }
    close(&mut packet, &mut count, first, &mut out);
    let mut end = [0u8; HEADER];
    encode_header(
        &mut end,
        &PacketHeader {
            session,
            seq: end_seq,
            count: 0,
        },
    );
    out.extend_from_slice(&(HEADER as u16).to_be_bytes());
    out.extend_from_slice(&end);
    out
}

/// A request and where its answer goes.
pub type Job = (Request, Sender<Vec<u8>>);

/// The running recovery server.
pub struct Server {
    thread: crate::runtime::cold_thread::ColdThread,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
}

impl Server {
    /// Listens on `listen` and serves requests for session `session`, handing each to the
    /// publisher through `jobs` and waking it with `wake`.
    pub fn start(
        listen: std::net::SocketAddr,
        session: [u8; 10],
        jobs: Sender<Job>,
        wake: Arc<crate::rings::wait::Waker>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let thread = crate::runtime::cold_thread::ColdThread::spawn("md-recovery", move |stop| {
            serve(listener, session, &jobs, &wake, stop)
        })?;
        Ok(Self { thread, addr })
    }

    /// Stops the thread.
    pub fn stop(mut self) {
        self.thread.join();
    }
}

fn serve(
    listener: TcpListener,
    session: [u8; 10],
    jobs: &Sender<Job>,
    wake: &crate::rings::wait::Waker,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = serve_connection(stream, session, jobs, wake, stop);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Serves requests on one connection until it closes, stays silent 5 s, or sends a request
/// for another session (answered with an end-of-session packet, then closed).
fn serve_connection(
    mut stream: TcpStream,
    session: [u8; 10],
    jobs: &Sender<Job>,
    wake: &crate::rings::wait::Waker,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let _ = stream.set_nodelay(true);
    while !stop.load(Ordering::Acquire) {
        let mut t = [0u8; 1];
        stream.read_exact(&mut t)?;
        let mut s = [0u8; 10];
        let req = match t[0] {
            request_type::RETRANSMIT => {
                let mut b = [0u8; 20];
                stream.read_exact(&mut b)?;
                s.copy_from_slice(&b[..10]);
                let seq = u64::from_be_bytes(b[10..18].try_into().expect("8 bytes"));
                let count = u16::from_be_bytes([b[18], b[19]]);
                Request::Retransmit { seq, count }
            }
            request_type::SNAPSHOT => {
                stream.read_exact(&mut s)?;
                Request::Snapshot
            }
            _ => return Ok(()),
        };
        if s != session {
            let mut end = [0u8; HEADER];
            encode_header(
                &mut end,
                &PacketHeader {
                    session,
                    seq: 0,
                    count: super::wire::END_OF_SESSION,
                },
            );
            stream.write_all(&(HEADER as u16).to_be_bytes())?;
            stream.write_all(&end)?;
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        if jobs.send((req, tx)).is_err() {
            return Ok(());
        }
        wake.wake();
        let answer: Vec<u8> = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(a) => a,
            Err(_) => return Ok(()),
        };
        stream.write_all(&answer)?;
    }
    Ok(())
}

/// The publisher's side: answers every waiting request from its store and mirror.
pub fn answer_jobs(
    jobs: &Receiver<Job>,
    store: &Store,
    mirror: &Mirror,
    session: [u8; 10],
    max_packet: usize,
    ts: u64,
) -> bool {
    let mut did = false;
    while let Ok((req, reply)) = jobs.try_recv() {
        did = true;
        let answer = match req {
            Request::Retransmit { seq, count } => {
                if seq < store.first() {
                    // No longer retained: only the terminating packet, with the first
                    // number still retained (a consumer this far behind takes a snapshot).
                    frames(session, std::iter::empty(), None, store.first(), max_packet)
                } else {
                    let n = count.min(MAX_PER_REQUEST) as u64;
                    let end = (seq + n).min(store.next()).max(seq);
                    let msgs = (seq..end).filter_map(|s| store.get(s).map(<[u8]>::to_vec));
                    frames(session, msgs, Some(seq), end, max_packet)
                }
            }
            Request::Snapshot => {
                let msgs = mirror.snapshot(ts).into_iter().map(|m| {
                    let mut b = [0u8; MAX_MESSAGE];
                    let n = m.encode(&mut b);
                    b[..n].to_vec()
                });
                frames(session, msgs, None, store.next(), max_packet)
            }
        };
        let _ = reply.send(answer);
    }
    did
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_the_last_messages_by_sequence_number() {
        let mut s = Store::new(3);
        for order in 1..=5u64 {
            s.push(&Message::Delete { ts: 0, order });
        }
        assert_eq!((s.first(), s.next()), (3, 6));
        assert!(s.get(2).is_none());
        assert_eq!(
            Message::decode(s.get(5).unwrap()).unwrap(),
            Message::Delete { ts: 0, order: 5 }
        );
    }

    #[test]
    fn the_mirror_keeps_queue_order_through_replaces_and_executions() {
        let mut m = Mirror::default();
        let add = |order, side, price, qty| Message::Add {
            ts: 0,
            order,
            instrument: 0,
            side,
            qty,
            price,
        };
        for msg in [
            add(1, b'B', 100, 5),
            add(2, b'B', 100, 5),
            add(3, b'B', 101, 5),
            add(4, b'S', 105, 5),
            Message::Replace {
                ts: 0,
                order: 1,
                qty: 7,
                price: 100,
            },
            Message::Executed {
                ts: 0,
                order: 3,
                qty: 5,
                match_id: 1,
                price: 101,
            },
        ] {
            m.apply(&msg);
        }
        let orders: Vec<u64> = m
            .snapshot(0)
            .iter()
            .filter_map(|x| match x {
                Message::Add { order, .. } => Some(*order),
                _ => None,
            })
            .collect();
        assert_eq!(
            orders,
            [2, 1, 4],
            "bids best first in queue order, then asks"
        );
    }
}

//! Crash tests against the real binary: a FIX client with a persistent store sends orders
//! while the appliance is killed with SIGKILL at random moments, five times per
//! acknowledgement policy. After each restart the client logs on again without resetting its
//! sequence numbers and recovers what it missed by ResendRequest. At the end:
//! - every order the client sent was acknowledged exactly once (no order lost, none applied
//!   twice: a resend of an order the appliance had processed would be refused as a duplicate
//!   ClOrdID, and show up as a second answer);
//! - every acknowledged order that is still resting is live: a cancel of it succeeds;
//! - no execution is reported twice (each ExecID once per order, outside of PossDup resends);
//! - the session's sequence numbers continued through every restart (a reset would make the
//!   client's session refuse the appliance's messages as too low, and log out).

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fixclient::{FixClient, FixMsg};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const BID: i64 = 990_000; // 99.00
const ASK: i64 = 1_010_000; // 101.00

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the client sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// GTC buy at BID or sell at ASK: rests until cancelled (unless an IOC takes it).
    Resting,
    /// IOC sell at BID: trades with resting buys (self-trade is allowed by default).
    Ioc,
}

fn crash_cycles(ack: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), ack, &[]);
    let mut app = App::start(&cfg);
    let mut client = FixClient::logon(app.fix, "CLIENT1");
    let mut rng = Rng(seed);
    let mut sent: BTreeMap<String, (Kind, Side)> = BTreeMap::new();
    let mut msgs: Vec<FixMsg> = Vec::new();
    let mut n = 0u64;
    let mut applied_ahead = 0u64;
    for round in 0..5 {
        // Order flow for a random time, then a burst, then a crash in the middle of the
        // burst (0-2 ms after it was sent): some orders not read yet, some processed and not
        // acknowledged, some acknowledged and not read by the client.
        let burst_at = Instant::now() + Duration::from_millis(100 + rng.next() % 300);
        let mut send = |client: &mut FixClient, rng: &mut Rng, count: usize, n: &mut u64| {
            for _ in 0..count {
                *n += 1;
                let id = format!("R{round}-{n}");
                let r = rng.next();
                let (kind, side, px, tif) = match r % 10 {
                    0 => (Kind::Ioc, Side::Sell, BID, TimeInForce::ImmediateOrCancel),
                    1..=5 => (Kind::Resting, Side::Buy, BID, TimeInForce::GoodTillCancel),
                    _ => (Kind::Resting, Side::Sell, ASK, TimeInForce::GoodTillCancel),
                };
                client.order(&id, "ACME", side, 1 + r % 5, Some(px), tif);
                sent.insert(id, (kind, side));
            }
        };
        while Instant::now() < burst_at {
            send(&mut client, &mut rng, 20, &mut n);
            client.pump_for(Duration::from_millis(10));
        }
        send(&mut client, &mut rng, 200, &mut n);
        std::thread::sleep(Duration::from_micros(rng.next() % 500));
        app.kill9();
        client.pump_for(Duration::from_millis(100));
        msgs.append(&mut client.received);
        // Restart on the same journal; the client logs on without a reset.
        app = App::start(&cfg);
        let log = app.log();
        let summary = log
            .lines()
            .find(|l| l.contains("recovered from"))
            .unwrap_or_else(|| panic!("round {round}: recovery ran:\n{log}"));
        applied_ahead += number_before(summary, " inbound messages applied ahead");
        assert!(
            client.reconnect(app.fix),
            "round {round}: the appliance did not answer the logon after a restart \
             (sequence numbers lost?):\n{}",
            app.log()
        );
        // Gaps both ways are filled by ResendRequests (the client's session and the
        // appliance's answer them); let them settle.
        settle(&mut client, &sent, &mut msgs);
    }

    let resent = msgs.iter().filter(|m| m.poss_dup).count();
    eprintln!(
        "{ack}: {} orders sent, {} messages received ({resent} as PossDup resends after a \
         restart), {} ResendRequests from the appliance (orders it had not journaled), \
         {applied_ahead} messages recovered as applied ahead of their sequence record",
        sent.len(),
        msgs.len(),
        client.session.resend_requests_received()
    );
    // Every order sent was answered exactly once.
    let mut acks: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rejects = Vec::new();
    for m in msgs.iter().filter(|m| m.msg_type == "8") {
        match m.req(150) {
            "0" => *acks.entry(m.req(11)).or_default() += 1,
            "8" => rejects.push(m.clone()),
            _ => {}
        }
    }
    assert!(
        rejects.is_empty(),
        "{} orders rejected, first: {:?}",
        rejects.len(),
        rejects.first()
    );
    for id in sent.keys() {
        assert_eq!(
            acks.get(id.as_str()).copied().unwrap_or(0),
            1,
            "order {id}: acknowledgements received (0: lost, 2: applied twice)"
        );
    }
    // No execution reported twice.
    let mut execs = BTreeSet::new();
    let mut filled: BTreeMap<&str, u64> = BTreeMap::new();
    for m in msgs
        .iter()
        .filter(|m| m.msg_type == "8" && m.req(150) == "F")
    {
        assert!(
            execs.insert((m.req(17).to_string(), m.req(11).to_string())),
            "execution {} of order {} reported twice",
            m.req(17),
            m.req(11)
        );
        *filled.entry(m.req(11)).or_default() += m.req(32).parse::<u64>().unwrap();
    }
    assert!(!execs.is_empty(), "the flow traded");
    // Every acknowledged order that should still rest is live: its cancel succeeds.
    let ended: BTreeSet<&str> = msgs
        .iter()
        .filter(|m| m.msg_type == "8" && (m.req(39) == "2" || m.req(39) == "4"))
        .map(|m| m.req(11))
        .collect();
    let resting: Vec<(String, Side)> = sent
        .iter()
        .filter(|(id, (k, _))| *k == Kind::Resting && !ended.contains(id.as_str()))
        .map(|(id, (_, side))| (id.clone(), *side))
        .collect();
    assert!(resting.len() > 100, "{} resting orders", resting.len());
    for (i, (id, side)) in resting.iter().enumerate() {
        client.cancel(&format!("X{i}"), id, "ACME", *side);
    }
    let mut answers = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers.len() < resting.len() && Instant::now() < deadline {
        client.pump();
        for m in client.received.drain(..) {
            if let Some(orig) = m.get(41) {
                answers.insert(orig.to_string(), m.clone());
            }
        }
    }
    for (id, _) in &resting {
        let a = answers
            .get(id)
            .unwrap_or_else(|| panic!("no answer to the cancel of acknowledged order {id}"));
        assert_eq!(
            (a.msg_type.as_str(), a.get(150)),
            ("8", Some("4")),
            "the cancel of acknowledged order {id} did not succeed: {a:?}"
        );
    }
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("the journal's replica agrees"),
        "the final snapshot's hash matches the live state:\n{log}"
    );
}

/// The number just before `key` in `line`.
fn number_before(line: &str, key: &str) -> u64 {
    let head = &line[..line
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} in {line}"))];
    let digits = head.rsplit(' ').next().unwrap_or("");
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number before {key:?} in {line}"))
}

/// Pumps until every order sent has an answer (or 20 s pass).
fn settle(client: &mut FixClient, sent: &BTreeMap<String, (Kind, Side)>, msgs: &mut Vec<FixMsg>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        client.pump();
        msgs.append(&mut client.received);
        let answered: BTreeSet<&str> = msgs
            .iter()
            .filter(|m| m.msg_type == "8" && (m.req(150) == "0" || m.req(150) == "8"))
            .map(|m| m.req(11))
            .collect();
        if sent.keys().all(|id| answered.contains(id.as_str())) {
            return;
        }
        assert!(
            !client.closed,
            "the appliance closed the session while it caught up"
        );
        if Instant::now() > deadline {
            let missing: Vec<&String> = sent
                .keys()
                .filter(|id| !answered.contains(id.as_str()))
                .take(10)
                .collect();
            panic!(
                "orders never answered after the restart: {missing:?} ({} of {}); client: \
                 next in {}, next out {}, resend requests received {} sent {}, store evicted \
                 {}, queue dropped {}",
                sent.len() - answered.len(),
                sent.len(),
                client.session.next_target_seq(),
                client.session.next_sender_seq(),
                client.session.resend_requests_received(),
                client.session.resend_requests_sent(),
                client.session.store().evicted(),
                client.session.queue_dropped(),
            );
        }
    }
}

#[test]
fn kill_9_under_flow_loses_no_acknowledged_order_with_ack_written() {
    crash_cycles("written", 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn kill_9_under_flow_loses_no_acknowledged_order_with_ack_fsync() {
    crash_cycles("fsync", 0x2545_f491_4f6c_dd1d);
}

//! A ResendRequest for more than a connection's output buffer holds, against the real
//! appliance binary (tried as a new user would): 12,000 orders answered, then
//! `ResendRequest 7=1 16=0`. Before, the whole answer was encoded at once into the 2 MiB
//! output buffer and the session was closed as a slow consumer before the first resent
//! message arrived, and again on every retry. Now the answer is paced by a cursor as the
//! client reads: every message comes back once, in order, with PossDupFlag=Y, and the session
//! trades on afterwards.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const ORDERS: u64 = 12_000;

#[test]
fn resend_of_twelve_thousand_reports_reaches_the_client_and_the_session_survives() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "written", &[]);
    let mut app = App::start(&cfg);
    let mut c = FixClient::logon(app.fix, "CLIENT1");

    // 12,000 resting orders, pipelined in windows of 500.
    let mut sent = 0;
    let mut acked = 0;
    while sent < ORDERS {
        let mut bytes = Vec::new();
        for _ in 0..500 {
            let px = 1_000_000 - (sent as i64 % 100) * 100;
            bytes.extend(c.order_bytes(&format!("R{sent}"), "ACME", Side::Buy, 1, px));
            sent += 1;
        }
        c.stream.write_all(&bytes).unwrap();
        while acked < sent {
            let m = c.recv();
            assert_eq!(m.msg_type, "8", "an ExecutionReport: {m:?}");
            assert_eq!(m.req(39), "0", "accepted: {m:?}");
            acked += 1;
        }
    }
    let last_sent = c.session.next_target_seq() - 1;
    assert_eq!(last_sent, ORDERS + 1, "the Logon and one report per order");
    assert!(
        last_sent * 200 > 2 << 20,
        "the answer is larger than the 2 MiB output buffer"
    );

    // ResendRequest 7=1 16=0, read raw: every number from 1 comes back once, in order.
    let mut out = Vec::new();
    c.session
        .send_raw(b"2", &[], b"7=1\x0116=0\x01", fixclient::now_ns(), &mut out)
        .unwrap();
    c.stream.write_all(&out).unwrap();
    c.stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut raw = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while seen.last() != Some(&last_sent) {
        assert!(
            Instant::now() < deadline,
            "resend incomplete after 60 s: {} messages, last {:?}",
            seen.len(),
            seen.last()
        );
        match c.stream.read(&mut buf) {
            Ok(0) => panic!(
                "the appliance closed the session after {} resent messages",
                seen.len()
            ),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => panic!("read: {e}"),
        }
        // Whole messages only (a message ends with the checksum field "10=nnn<SOH>").
        while let Some(end) = find(&raw, b"\x0110=").map(|p| p + 8) {
            if raw.len() < end {
                break;
            }
            let m = String::from_utf8_lossy(&raw[..end]).into_owned();
            raw.drain(..end);
            let field = |tag: &str| {
                m.split('\x01')
                    .find_map(|f| f.strip_prefix(tag).map(str::to_string))
            };
            assert_eq!(
                field("43=").as_deref(),
                Some("Y"),
                "a possible duplicate: {m}"
            );
            seen.push(field("34=").unwrap().parse().unwrap());
        }
    }
    let want: Vec<u64> = (1..=last_sent).collect();
    assert!(
        seen == want,
        "every number once, in order; first difference at {:?}",
        seen.iter().zip(&want).position(|(a, b)| a != b)
    );

    // The session goes on: a new order is answered with the next number.
    c.stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    c.order(
        "AFTER",
        "ACME",
        Side::Buy,
        1,
        Some(1_000_000),
        TimeInForce::GoodTillCancel,
    );
    let m = c.recv();
    assert_eq!(m.req(11), "AFTER");
    assert_eq!(m.seq, last_sent + 1);
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("slow_consumer"), "{log}");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

//! Unit tests that need the session's private state.

use super::*;
use crate::codec::decode::FieldRef;
use crate::codec::frame::checksum;
use crate::codec::time::{write_timestamp, TimePrecision};

/// 2024-03-01 12:00:00 UTC.
const T0: u64 = 1_709_294_400 * NANOS_PER_SEC;

/// A framed message from `35=...|` text ('|' is SOH, `<T>` the SendingTime).
fn msg(body: &str) -> Vec<u8> {
    let mut t = [0u8; 32];
    let n = write_timestamp(&mut t, T0, TimePrecision::Seconds).unwrap();
    let ts = std::str::from_utf8(&t[..n]).unwrap();
    let body = body.replace("<T>", ts).replace('|', "\x01");
    let mut m = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let cs = checksum(&m);
    m.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
    m
}

fn logged_on(target: &str, scratch: &mut Scratch, out: &mut Vec<u8>) -> Session<MemoryStore> {
    let mut s = Session::new(
        SessionConfig::acceptor("ISLD", target),
        MemoryStore::with_capacity(1 << 16, 1024),
    );
    s.on_connected(T0);
    let logon = msg(&format!(
        "35=A|34=1|49={target}|52=<T>|56=ISLD|98=0|108=30|"
    ));
    let r = s.on_input(&logon, scratch, T0, out);
    assert!(matches!(r.event, Event::LoggedOn), "logon of {target}");
    s
}

/// Two peers whose engines lay NewOrderSingle out differently, served by one gateway thread
/// (one `Scratch`), with their messages taking turns: each session keeps its own peer's
/// layout, so neither evicts the other's (a shape shared by the thread would keep only one).
#[test]
fn each_session_keeps_its_own_peers_layout() {
    let mut scratch = Scratch::new(4096);
    let mut out = Vec::new();
    let mut a = logged_on("TW44", &mut scratch, &mut out);
    let mut b = logged_on("TW45", &mut scratch, &mut out);
    let layout_a = |seq: u64| {
        msg(&format!(
            "35=D|34={seq}|49=TW44|52=<T>|56=ISLD|11=A{seq}|21=1|38=100|40=2|44=10.5|54=1|55=INTC|60=<T>|"
        ))
    };
    let layout_b = |seq: u64| {
        msg(&format!(
            "35=D|34={seq}|49=TW45|52=<T>|56=ISLD|55=MSFT|54=2|11=B{seq}|38=7|44=3.25|40=2|21=1|60=<T>|"
        ))
    };
    for seq in 2..12 {
        let m = layout_a(seq);
        let r = a.on_input(&m, &mut scratch, T0, &mut out);
        assert!(matches!(r.event, Event::App(_)), "A's order {seq}");
        let m = layout_b(seq);
        let r = b.on_input(&m, &mut scratch, T0, &mut out);
        assert!(matches!(r.event, Event::App(_)), "B's order {seq}");
    }
    let mut fields = vec![FieldRef::default(); 64];
    assert!(a.shape.decode(&layout_a(12), &mut fields).is_some());
    assert!(a.shape.decode(&layout_b(12), &mut fields).is_none());
    assert!(b.shape.decode(&layout_b(12), &mut fields).is_some());
    assert!(b.shape.decode(&layout_a(12), &mut fields).is_none());
}

//! Codec and session hot-path benchmarks (criterion, release profile).
//!
//! `cargo bench -p fix --bench codec`
//!
//! - `parse_validate/new_order_single`: framer (BodyLength, CheckSum) + field decoder + full
//!   FIX 4.4 dictionary validation of a typical NewOrderSingle (target < 150 ns);
//! - `parse_validate/new_order_single_layout_changes`: the same order in five field orders
//!   in turn, so that no message matches the kept layout (the fast path of `codec/shape.rs`
//!   never applies and the kept shape is replaced every fourth message: its worst case);
//! - `parse_validate_view/new_order_single`: the same plus the typed view and exact price
//!   conversion;
//! - `encode/execution_report`: header, body and trailer of a typical fill into a buffer
//!   (target < 150 ns);
//! - `session/inbound_new_order_single` and `session/send_execution_report`: the full session
//!   paths (sequence check, SendingTime check, store, output copy).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fix::app::outbound::{ExecType, ExecutionReport, Id, OrdStatus};
use fix::app::{price, NewOrderSingle, OrdType, Side, TimeInForce};
use fix::codec::decode::{decode, FieldIndex};
use fix::codec::encode::Encoder;
use fix::codec::frame::{checksum, next_frame, FrameStatus};
use fix::dict::{validate, TagSet};
use fix::session::{Event, MemoryStore, OutboundMessage, Scratch};
use fix::{tags, Session, SessionConfig, TimePrecision};

const T0: u64 = 1_709_294_400_000_000_000;

fn frame(body: &str) -> Vec<u8> {
    let body = body.replace('|', "\x01");
    let mut m = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let cs = checksum(&m);
    m.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
    m
}

fn nos(seq: u64) -> Vec<u8> {
    frame(&format!(
        "35=D|34={seq}|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|1=ACCT-7|11=ORD-000123456|21=1|38=1500|40=2|44=101.25|54=1|55=INTC|59=0|60=20240301-12:00:00.000|"
    ))
}

/// The typical NewOrderSingle in five layouts: its body fields rotated by 0 to 4 places.
fn layouts() -> Vec<Vec<u8>> {
    let body = [
        "1=ACCT-7",
        "11=ORD-000123456",
        "21=1",
        "38=1500",
        "40=2",
        "44=101.25",
        "54=1",
        "55=INTC",
        "59=0",
        "60=20240301-12:00:00.000",
    ];
    (0..5)
        .map(|r| {
            let mut b = body.to_vec();
            b.rotate_left(r);
            frame(&format!(
                "35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|{}|",
                b.join("|")
            ))
        })
        .collect()
}

fn fill() -> ExecutionReport<'static> {
    ExecutionReport {
        order_id: Id::Num(9_876_543),
        cl_ord_id: b"ORD-000123456",
        orig_cl_ord_id: None,
        exec_id: Id::Num(123_456_789),
        exec_type: ExecType::Trade,
        ord_status: OrdStatus::PartiallyFilled,
        ord_rej_reason: None,
        account: Some(b"ACCT-7"),
        symbol: b"INTC",
        side: Side::Buy,
        order_qty: Some(1500),
        ord_type: Some(OrdType::Limit),
        price: Some(1_012_500),
        time_in_force: Some(TimeInForce::Day),
        last_qty: Some(500),
        last_px: Some(1_012_400),
        leaves_qty: 1000,
        cum_qty: 500,
        avg_px: 1_012_400,
        avg_px_decimals: 4,
        price_scale: 4,
        transact_time: T0 + 123_456_000,
        time_precision: TimePrecision::Micros,
        text: None,
        copy_msg_indicator: false,
    }
}

fn parse_validate(c: &mut Criterion) {
    let msg = nos(2);
    let mut idx = FieldIndex::for_message_size(8192);
    let mut seen = TagSet::EMPTY;
    c.bench_function("parse_validate/new_order_single", |b| {
        b.iter(|| {
            let input = black_box(&msg[..]);
            let FrameStatus::Complete(f) = next_frame(input, 8192) else {
                unreachable!()
            };
            let m = decode(input, &f, &mut idx).unwrap();
            black_box(validate(&m, &mut seen)).unwrap();
            black_box(m.seq_num())
        })
    });
    // The same order in five layouts (its body fields rotated), in turn: every message
    // misses the kept shape (`codec/shape.rs`), which is replaced every fourth message, the
    // worst case for it.
    let layouts = layouts();
    let mut k = 0usize;
    c.bench_function("parse_validate/new_order_single_layout_changes", |b| {
        b.iter(|| {
            k = if k == layouts.len() - 1 { 0 } else { k + 1 };
            let input = black_box(&layouts[k][..]);
            let FrameStatus::Complete(f) = next_frame(input, 8192) else {
                unreachable!()
            };
            let m = decode(input, &f, &mut idx).unwrap();
            black_box(validate(&m, &mut seen)).unwrap();
            black_box(m.seq_num())
        })
    });
    c.bench_function("parse_validate_view/new_order_single", |b| {
        b.iter(|| {
            let input = black_box(&msg[..]);
            let FrameStatus::Complete(f) = next_frame(input, 8192) else {
                unreachable!()
            };
            let m = decode(input, &f, &mut idx).unwrap();
            validate(&m, &mut seen).unwrap();
            let o = NewOrderSingle::decode(&m).unwrap();
            let px = price::limit_price(o.price.unwrap(), 4, 100).unwrap();
            black_box((o.order_qty, px))
        })
    });
}

fn encode(c: &mut Criterion) {
    let er = fill();
    let mut buf = vec![0u8; 8192];
    c.bench_function("encode/execution_report", |b| {
        b.iter(|| {
            let er = black_box(&er);
            let mut e = Encoder::new(&mut buf, b"FIX.4.4", b"8");
            e.field_u64(tags::MSG_SEQ_NUM, black_box(123_457));
            e.field(tags::SENDER_COMP_ID, b"VENUE");
            e.field_timestamp(
                tags::SENDING_TIME,
                black_box(T0 + 123_456_789),
                TimePrecision::Millis,
            );
            e.field(tags::TARGET_COMP_ID, b"CLIENT01");
            er.write_body(&mut e);
            black_box(e.finish(b"FIX.4.4").unwrap())
        })
    });
}

fn session(c: &mut Criterion) {
    const N: u64 = 100_000;
    let msgs: Vec<Vec<u8>> = (2..2 + N).map(nos).collect();
    let mut s = Session::new(
        SessionConfig::acceptor("VENUE", "CLIENT01"),
        MemoryStore::with_capacity(64 << 20, 1 << 20),
    );
    let mut scratch = Scratch::new(8192);
    let mut out = Vec::with_capacity(1 << 20);
    s.on_connected(T0);
    let logon = frame("35=A|34=1|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|98=0|108=30|");
    assert!(matches!(
        s.on_input(&logon, &mut scratch, T0, &mut out).event,
        Event::LoggedOn
    ));
    let mut i = 0usize;
    c.bench_function("session/inbound_new_order_single", |b| {
        b.iter(|| {
            if i == msgs.len() {
                i = 0;
                s.store_mut().set_next_target_seq_for_bench(2);
            }
            let r = s.on_input(black_box(&msgs[i]), &mut scratch, T0 + 1_000, &mut out);
            i += 1;
            black_box(matches!(r.event, Event::App(_)))
        })
    });
    let er = fill();
    c.bench_function("session/send_execution_report", |b| {
        b.iter(|| {
            out.clear();
            black_box(s.send(black_box(&er), T0 + 2_000, &mut out).unwrap())
        })
    });
}

trait BenchReset {
    fn set_next_target_seq_for_bench(&mut self, seq: u64);
}

impl BenchReset for MemoryStore {
    fn set_next_target_seq_for_bench(&mut self, seq: u64) {
        use fix::session::MessageStore;
        self.set_next_target_seq(seq).unwrap();
    }
}

criterion_group!(benches, parse_validate, encode, session);
criterion_main!(benches);

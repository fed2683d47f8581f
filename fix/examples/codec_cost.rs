//! Cost of the codec hot path per operation, in a form that also works under callgrind
//! (instruction counts are repeatable on a shared, noisy machine where times are not):
//!
//! ```text
//! cargo build --release -p fix --example codec_cost
//! target/release/examples/codec_cost                 # ns/op, best of 7 runs
//! valgrind --tool=callgrind target/release/examples/codec_cost --op parse --iters 100000
//! valgrind --tool=callgrind target/release/examples/codec_cost --op encode --iters 100000
//! ```
//! Under callgrind, divide the program's total instructions (minus a run with `--iters 0`)
//! by the iterations. `--op` is `parse` (frame + decode + validate), `parse-layouts` (the
//! same order in five field layouts in turn, so that the kept shape never matches), `encode`, or one
//! stage:
//! `frame`, `decode` (frame + decode), `validate` (validation of an already decoded message).

use std::hint::black_box;
use std::time::Instant;

use fix::app::outbound::{ExecType, ExecutionReport, Id, OrdStatus};
use fix::app::{OrdType, Side, TimeInForce};
use fix::codec::decode::{decode, FieldIndex};
use fix::codec::encode::Encoder;
use fix::codec::frame::{checksum, next_frame, FrameStatus};
use fix::dict::{validate, TagSet};
use fix::session::OutboundMessage;
use fix::{tags, TimePrecision};

const T0: u64 = 1_709_294_400_000_000_000;

fn frame(body: &str) -> Vec<u8> {
    let body = body.replace('|', "\x01");
    let mut m = format!("8=FIX.4.4\x019={}\x01{}", body.len(), body).into_bytes();
    let cs = checksum(&m);
    m.extend_from_slice(format!("10={cs:03}\x01").as_bytes());
    m
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

fn main() {
    let mut op = String::from("all");
    let mut iters: u64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--op" => op = args.next().unwrap_or(op),
            "--iters" => iters = args.next().and_then(|v| v.parse().ok()).unwrap_or(iters),
            _ => {}
        }
    }
    let msg = frame(
        "35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|1=ACCT-7|11=ORD-000123456|21=1|38=1500|40=2|44=101.25|54=1|55=INTC|59=0|60=20240301-12:00:00.000|",
    );
    let mut idx = FieldIndex::for_message_size(8192);
    let mut seen = TagSet::EMPTY;
    let er = fill();
    let mut buf = vec![0u8; 8192];
    let runs = if iters >= 100_000 && op == "all" {
        7
    } else {
        1
    };
    if op == "all" || op == "parse" {
        let mut best = f64::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            for _ in 0..iters {
                let input = black_box(&msg[..]);
                let FrameStatus::Complete(f) = next_frame(input, 8192) else {
                    unreachable!()
                };
                let m = decode(input, &f, &mut idx).unwrap();
                black_box(validate(&m, &mut seen)).unwrap();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / iters.max(1) as f64);
        }
        println!(
            "parse+validate NewOrderSingle ({} bytes): {best:.1} ns/op",
            msg.len()
        );
    }
    if op == "all" || op == "parse-layouts" {
        // The same order in five layouts (body fields rotated), in turn: every message misses
        // the kept shape (`codec/shape.rs`), which is replaced every fourth message.
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
        let layouts: Vec<Vec<u8>> = (0..5)
            .map(|r| {
                let mut b = body.to_vec();
                b.rotate_left(r);
                frame(&format!(
                    "35=D|34=2|49=CLIENT01|52=20240301-12:00:00.000|56=VENUE|{}|",
                    b.join("|")
                ))
            })
            .collect();
        let mut best = f64::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            for i in 0..iters {
                let input = black_box(&layouts[(i % 5) as usize][..]);
                let FrameStatus::Complete(f) = next_frame(input, 8192) else {
                    unreachable!()
                };
                let m = decode(input, &f, &mut idx).unwrap();
                black_box(validate(&m, &mut seen)).unwrap();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / iters.max(1) as f64);
        }
        println!("parse+validate NewOrderSingle, five layouts in turn: {best:.1} ns/op");
    }
    if op == "validate" {
        let FrameStatus::Complete(f) = next_frame(&msg, 8192) else {
            unreachable!()
        };
        let m = decode(&msg, &f, &mut idx).unwrap();
        for _ in 0..iters {
            black_box(validate(black_box(&m), &mut seen)).unwrap();
        }
    }
    if op == "frame" || op == "decode" {
        let t = Instant::now();
        for _ in 0..iters {
            let input = black_box(&msg[..]);
            let FrameStatus::Complete(f) = next_frame(input, 8192) else {
                unreachable!()
            };
            if op == "decode" {
                black_box(decode(input, &f, &mut idx).unwrap().seq_num());
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / iters.max(1) as f64;
        println!("{op} NewOrderSingle: {ns:.1} ns/op");
    }
    if op == "all" || op == "encode" {
        let mut best = f64::MAX;
        let mut len = 0;
        for _ in 0..runs {
            let t = Instant::now();
            for _ in 0..iters {
                let mut e = Encoder::new(&mut buf, b"FIX.4.4", b"8");
                e.field_u64(tags::MSG_SEQ_NUM, black_box(123_457));
                e.field(tags::SENDER_COMP_ID, b"VENUE");
                e.field_timestamp(
                    tags::SENDING_TIME,
                    black_box(T0 + 123_456_789),
                    TimePrecision::Millis,
                );
                e.field(tags::TARGET_COMP_ID, b"CLIENT01");
                black_box(&er).write_body(&mut e);
                len = black_box(e.finish(b"FIX.4.4").unwrap()).len();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / iters.max(1) as f64);
        }
        println!("encode ExecutionReport ({len} bytes): {best:.1} ns/op");
    }
}

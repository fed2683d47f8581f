//! Golden byte-for-byte tests of the encoders, through the session (header, MsgSeqNum,
//! SendingTime, BodyLength, CheckSum). The expected strings were produced independently with
//! the `simplefix` Python library (pip install simplefix) from the same field lists.

mod common;

use common::*;
use fix::app::outbound::{
    BusinessMessageReject, CxlRejResponseTo, ExecType, ExecutionReport, Id, OrdStatus,
    OrderCancelReject, OrderMassCancelReport,
};
use fix::app::{OrdType, Side, TimeInForce};
use fix::session::{BusinessRejectReason, MemoryStore, OutboundMessage};
use fix::{Session, SessionConfig, TimePrecision};

fn logged_on() -> Drive<MemoryStore> {
    let mut d = Drive::new(Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        MemoryStore::with_capacity(1 << 16, 64),
    ));
    d.logon(30);
    d
}

fn sent(d: &mut Drive<MemoryStore>, m: &dyn OutboundMessage) -> String {
    d.s.send(m, T0, &mut d.out).unwrap();
    let v = d.take();
    assert_eq!(v.len(), 1);
    v[0].clone()
}

#[test]
fn golden_reports() {
    let mut d = logged_on();
    let base = ExecutionReport {
        order_id: Id::Num(1),
        cl_ord_id: b"A",
        orig_cl_ord_id: None,
        exec_id: Id::Num(1),
        exec_type: ExecType::New,
        ord_status: OrdStatus::New,
        ord_rej_reason: None,
        account: None,
        symbol: b"INTC",
        side: Side::Buy,
        order_qty: Some(100),
        ord_type: None,
        price: Some(1_012_500),
        time_in_force: None,
        last_qty: None,
        last_px: None,
        leaves_qty: 100,
        cum_qty: 0,
        avg_px: 0,
        avg_px_decimals: 2,
        price_scale: 4,
        transact_time: T0,
        time_precision: TimePrecision::Millis,
        text: None,
        copy_msg_indicator: false,
    };
    assert_eq!(
        sent(&mut d, &base),
        "8=FIX.4.4|9=152|35=8|34=2|49=ISLD|52=20240301-12:00:00.000|56=TW44|37=1|11=A|17=1|150=0|39=0|55=INTC|54=1|38=100|44=101.25|151=100|14=0|6=0.00|60=20240301-12:00:00.000|10=108|"
    );
    let fill = ExecutionReport {
        order_id: Id::Num(77),
        cl_ord_id: b"B",
        exec_id: Id::Text(b"E-9"),
        exec_type: ExecType::Trade,
        ord_status: OrdStatus::PartiallyFilled,
        account: Some(b"ACC"),
        symbol: b"MSFT",
        side: Side::Sell,
        order_qty: Some(300),
        ord_type: Some(OrdType::Limit),
        price: Some(995_000),
        time_in_force: Some(TimeInForce::ImmediateOrCancel),
        last_qty: Some(100),
        last_px: Some(994_900),
        leaves_qty: 200,
        cum_qty: 100,
        avg_px: 99_490_000,
        avg_px_decimals: 6,
        transact_time: T0 + 123_456_789,
        time_precision: TimePrecision::Micros,
        ..base
    };
    assert_eq!(
        sent(&mut d, &fill),
        "8=FIX.4.4|9=195|35=8|34=3|49=ISLD|52=20240301-12:00:00.000|56=TW44|37=77|11=B|17=E-9|150=F|39=1|1=ACC|55=MSFT|54=2|38=300|40=2|44=99.5|59=3|32=100|31=99.49|151=200|14=100|6=99.490000|60=20240301-12:00:00.123456|10=226|"
    );
    let reject = ExecutionReport {
        order_id: Id::Text(b"NONE"),
        cl_ord_id: b"C",
        exec_id: Id::Num(5),
        exec_type: ExecType::Rejected,
        ord_status: OrdStatus::Rejected,
        ord_rej_reason: Some(99),
        order_qty: None,
        price: None,
        leaves_qty: 0,
        avg_px_decimals: 0,
        text: Some(b"price not on tick"),
        copy_msg_indicator: false,
        ..base
    };
    assert_eq!(
        sent(&mut d, &reject),
        "8=FIX.4.4|9=161|35=8|34=4|49=ISLD|52=20240301-12:00:00.000|56=TW44|37=NONE|11=C|17=5|150=8|39=8|103=99|55=INTC|54=1|151=0|14=0|6=0|60=20240301-12:00:00.000|58=price not on tick|10=200|"
    );
    let cxl_rej = OrderCancelReject {
        order_id: Id::Text(b"NONE"),
        cl_ord_id: b"X2",
        orig_cl_ord_id: b"X1",
        ord_status: OrdStatus::Rejected,
        response_to: CxlRejResponseTo::Cancel,
        cxl_rej_reason: Some(1),
        transact_time: Some(T0),
        text: Some(b"unknown order"),
    };
    assert_eq!(
        sent(&mut d, &cxl_rej),
        "8=FIX.4.4|9=130|35=9|34=5|49=ISLD|52=20240301-12:00:00.000|56=TW44|37=NONE|11=X2|41=X1|39=8|434=1|102=1|60=20240301-12:00:00.000|58=unknown order|10=240|"
    );
    let mass = OrderMassCancelReport {
        cl_ord_id: Some(b"M1"),
        order_id: Id::Num(42),
        request_type: b'7',
        response: b'7',
        reject_reason: None,
        total_affected_orders: Some(12),
        symbol: None,
        side: None,
        transact_time: Some(T0),
        text: None,
    };
    assert_eq!(
        sent(&mut d, &mass),
        "8=FIX.4.4|9=107|35=r|34=6|49=ISLD|52=20240301-12:00:00.000|56=TW44|11=M1|37=42|530=7|531=7|533=12|60=20240301-12:00:00.000|10=158|"
    );
    let bmr = BusinessMessageReject {
        ref_seq_num: Some(9),
        ref_msg_type: b"AE",
        ref_id: None,
        reason: BusinessRejectReason::UnsupportedMessageType,
        text: Some(b"Unsupported Message Type"),
    };
    assert_eq!(
        sent(&mut d, &bmr),
        "8=FIX.4.4|9=97|35=j|34=7|49=ISLD|52=20240301-12:00:00.000|56=TW44|45=9|58=Unsupported Message Type|372=AE|380=3|10=129|"
    );
}

#[test]
fn every_golden_report_passes_our_own_dictionary_validation() {
    // What we send must be what we would accept: decode + validate each report.
    use fix::codec::decode::{decode, FieldIndex};
    use fix::codec::frame::{next_frame, FrameStatus};
    use fix::dict::{validate, TagSet};
    let mut d = logged_on();
    let er = ExecutionReport {
        order_id: Id::Num(1),
        cl_ord_id: b"A",
        orig_cl_ord_id: Some(b"Z"),
        exec_id: Id::Num(1),
        exec_type: ExecType::Replaced,
        ord_status: OrdStatus::New,
        ord_rej_reason: None,
        account: Some(b"ACC"),
        symbol: b"INTC",
        side: Side::Buy,
        order_qty: Some(100),
        ord_type: Some(OrdType::Limit),
        price: Some(1_012_500),
        time_in_force: Some(TimeInForce::Day),
        last_qty: None,
        last_px: None,
        leaves_qty: 100,
        cum_qty: 0,
        avg_px: 0,
        avg_px_decimals: 2,
        price_scale: 4,
        transact_time: T0,
        time_precision: TimePrecision::Micros,
        text: Some(b"replaced"),
        copy_msg_indicator: false,
    };
    d.s.send(&er, T0, &mut d.out).unwrap();
    let bytes = d.out.clone();
    let FrameStatus::Complete(f) = next_frame(&bytes, 8192) else {
        panic!()
    };
    let mut idx = FieldIndex::for_message_size(8192);
    let msg = decode(&bytes, &f, &mut idx).unwrap();
    let mut seen = TagSet::EMPTY;
    assert_eq!(validate(&msg, &mut seen), Ok(()));
}

/// Live cross-check of framing (BodyLength, CheckSum) against the independent `simplefix`
/// encoder on many generated messages: simplefix re-encodes the field list of each of our
/// messages and must produce the same bytes.
#[test]
fn framing_matches_simplefix() {
    use fix::codec::decode::fields;
    use fix::codec::encode::Encoder;
    let probe = std::process::Command::new("python3")
        .args(["-c", "import simplefix"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        panic!("simplefix is not installed: run `pip install simplefix` (scripts/ci/lib.sh does)");
    }
    let mut ours = Vec::new();
    let mut lists = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..200u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut e = Encoder::new(&mut buf, b"FIX.4.4", b"8");
        e.field_u64(34, i + 1);
        e.field(49, b"ISLD");
        e.field_timestamp(52, T0 + x % 1_000_000_000_000, TimePrecision::Micros);
        e.field(56, b"TW44");
        e.field_u64(37, x % 100_000);
        e.field(11, format!("CL{}", x % 977).as_bytes());
        e.field_price(44, (x % 10_000_000) as i64 - 5_000_000, (x % 7) as u8);
        e.field_fixed(6, (x % 123_456_789) as i64, (x % 9) as u8);
        e.field(58, "x".repeat((x % 300) as usize).as_bytes());
        let r = e.finish(b"FIX.4.4").unwrap();
        let bytes = buf[r].to_vec();
        let list: Vec<String> = fields(&bytes)
            .map(|f| f.unwrap())
            .filter(|(t, _)| *t != 9 && *t != 10)
            .map(|(t, v)| format!("[{t},\"{}\"]", String::from_utf8_lossy(v)))
            .collect();
        lists.push(format!("[{}]", list.join(",")));
        ours.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let script = "import json,sys,simplefix\nfor l in json.load(sys.stdin):\n m=simplefix.FixMessage()\n for t,v in l: m.append_pair(t,v)\n print(m.encode().decode().replace('\\x01','|'))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("[{}]", lists.join(",")).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let theirs: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(&vis(a.as_bytes()), b);
    }
}

//! Typed views of the inbound order messages: what they decode, and what they refuse with
//! which code.

mod common;

use common::*;
use fix::app::inbound::MassCancelScope;
use fix::app::market_data::{MarketDataRequest, MdEntryType};
use fix::app::{
    price, AppReject, NewOrderSingle, OrdType, OrderCancelReplaceRequest, OrderCancelRequest,
    OrderMassCancelRequest, Side, TimeInForce,
};
use fix::codec::decode::{decode, FieldIndex};
use fix::codec::frame::{next_frame, FrameStatus};
use fix::session::BusinessRejectReason;
use fix::{tags, Message};

/// Decodes `body` (a full message body, `35=...` first) and runs `f` on the view.
fn with<R>(body: &str, f: impl FnOnce(&Message<'_>) -> R) -> R {
    let bytes = msg_at(body, T0);
    let FrameStatus::Complete(fr) = next_frame(&bytes, 8192) else {
        panic!("frame")
    };
    let mut idx = FieldIndex::for_message_size(8192);
    let m = decode(&bytes, &fr, &mut idx).expect("decode");
    f(&m)
}

const HDR: &str = "34=2|49=TW44|52=<T>|56=ISLD|";

#[test]
fn new_order_single_limit() {
    with(
        &format!(
            "35=D|{HDR}1=ACC|11=C1|21=1|38=002000.00|40=2|44=101.25|54=2|55=INTC|59=3|60=<T>|"
        ),
        |m| {
            let o = NewOrderSingle::decode(m).unwrap();
            assert_eq!(o.cl_ord_id, b"C1");
            assert_eq!(o.account, Some(&b"ACC"[..]));
            assert_eq!(o.symbol, b"INTC");
            assert_eq!(o.side, Side::Sell);
            assert_eq!(o.order_qty, 2000);
            assert_eq!(o.ord_type, OrdType::Limit);
            assert_eq!(o.time_in_force, TimeInForce::ImmediateOrCancel);
            assert_eq!(price::limit_price(o.price.unwrap(), 4, 100), Ok(1_012_500));
            assert_eq!(o.transact_time, ts(T0).as_bytes());
        },
    );
}

#[test]
fn new_order_single_defaults_and_market() {
    with(
        &format!("35=D|{HDR}11=C2|38=5|40=1|54=1|55=X|60=<T>|"),
        |m| {
            let o = NewOrderSingle::decode(m).unwrap();
            assert_eq!(o.ord_type, OrdType::Market);
            assert_eq!(o.time_in_force, TimeInForce::Day);
            assert_eq!(o.price, None);
            assert_eq!(o.account, None);
        },
    );
}

#[test]
fn new_order_single_refusals() {
    let cases: &[(&str, AppReject)] = &[
        (
            "11=A|38=5|40=2|54=1|55=X|60=<T>|",
            AppReject::MissingField(tags::PRICE),
        ),
        (
            "11=A|38=5.5|40=2|44=1|54=1|55=X|60=<T>|",
            AppReject::InvalidValue(tags::ORDER_QTY),
        ),
        (
            "11=A|38=0|40=2|44=1|54=1|55=X|60=<T>|",
            AppReject::InvalidValue(tags::ORDER_QTY),
        ),
        (
            "11=A|38=5|40=3|44=1|54=1|55=X|60=<T>|",
            AppReject::UnsupportedValue(tags::ORD_TYPE),
        ),
        (
            "11=A|38=5|40=2|44=1|54=5|55=X|60=<T>|",
            AppReject::UnsupportedValue(tags::SIDE),
        ),
        (
            "11=A|38=5|40=2|44=1|54=1|55=X|59=6|60=<T>|",
            AppReject::UnsupportedValue(tags::TIME_IN_FORCE),
        ),
        (
            "11=A|38=5|40=2|44=1|54=1|60=<T>|",
            AppReject::MissingField(tags::SYMBOL),
        ),
    ];
    for (body, want) in cases {
        with(&format!("35=D|{HDR}{body}"), |m| {
            assert_eq!(NewOrderSingle::decode(m), Err(*want), "{body}");
        });
    }
    assert_eq!(
        AppReject::MissingField(44).business_reason(),
        BusinessRejectReason::ConditionallyRequiredFieldMissing
    );
    with(&format!("35=F|{HDR}11=A|41=B|54=1|55=X|60=<T>|"), |m| {
        assert_eq!(NewOrderSingle::decode(m), Err(AppReject::WrongMsgType));
    });
}

#[test]
fn price_is_rejected_not_rounded() {
    assert_eq!(
        price::limit_price(b"101.255", 4, 100),
        Err(price::PriceError::NotOnTick)
    );
    assert_eq!(
        price::limit_price(b"101.25001", 4, 1),
        Err(price::PriceError::TooPrecise)
    );
    assert_eq!(
        price::limit_price(b"99999999999999999", 4, 1),
        Err(price::PriceError::Overflow)
    );
    assert_eq!(price::to_units(b"-3.5", 1), Ok(-35));
}

#[test]
fn cancel_request() {
    with(
        &format!("35=F|{HDR}11=C3|37=77|41=C1|54=1|55=INTC|60=<T>|"),
        |m| {
            let c = OrderCancelRequest::decode(m).unwrap();
            assert_eq!((c.cl_ord_id, c.orig_cl_ord_id), (&b"C3"[..], &b"C1"[..]));
            assert_eq!(c.order_id, Some(&b"77"[..]));
            assert_eq!(c.side, Side::Buy);
        },
    );
    with(&format!("35=F|{HDR}11=C3|54=1|55=INTC|60=<T>|"), |m| {
        assert_eq!(
            OrderCancelRequest::decode(m),
            Err(AppReject::MissingField(tags::ORIG_CL_ORD_ID))
        );
    });
}

#[test]
fn cancel_replace_request() {
    with(
        &format!("35=G|{HDR}11=C4|41=C1|38=300|40=2|44=101.3|54=1|55=INTC|59=1|60=<T>|"),
        |m| {
            let r = OrderCancelReplaceRequest::decode(m).unwrap();
            assert_eq!(r.orig_cl_ord_id, b"C1");
            assert_eq!(r.order_qty, 300);
            assert_eq!(r.time_in_force, Some(TimeInForce::GoodTillCancel));
            assert_eq!(price::limit_price(r.price.unwrap(), 2, 1), Ok(10_130));
        },
    );
    // Without 59 the replace says nothing about the time in force (the order keeps its own).
    with(
        &format!("35=G|{HDR}11=C5|41=C4|38=200|40=2|44=101.3|54=1|55=INTC|60=<T>|"),
        |m| {
            let r = OrderCancelReplaceRequest::decode(m).unwrap();
            assert_eq!(r.time_in_force, None);
        },
    );
    with(
        &format!("35=G|{HDR}11=C4|41=C1|38=300|40=2|54=1|55=INTC|60=<T>|"),
        |m| {
            assert_eq!(
                OrderCancelReplaceRequest::decode(m),
                Err(AppReject::MissingField(tags::PRICE))
            );
        },
    );
}

#[test]
fn mass_cancel_request() {
    with(&format!("35=q|{HDR}11=M1|530=7|60=<T>|"), |m| {
        let q = OrderMassCancelRequest::decode(m).unwrap();
        assert_eq!(q.scope, MassCancelScope::All);
        assert_eq!(q.symbol, None);
    });
    with(
        &format!("35=q|{HDR}11=M2|530=1|55=INTC|54=2|60=<T>|"),
        |m| {
            let q = OrderMassCancelRequest::decode(m).unwrap();
            assert_eq!(q.scope, MassCancelScope::Security);
            assert_eq!(q.symbol, Some(&b"INTC"[..]));
            assert_eq!(q.side, Some(Side::Sell));
        },
    );
    with(&format!("35=q|{HDR}11=M3|530=1|60=<T>|"), |m| {
        assert_eq!(
            OrderMassCancelRequest::decode(m),
            Err(AppReject::MissingField(tags::SYMBOL))
        );
    });
    with(&format!("35=q|{HDR}11=M4|530=4|60=<T>|"), |m| {
        assert_eq!(
            OrderMassCancelRequest::decode(m),
            Err(AppReject::UnsupportedValue(tags::MASS_CANCEL_REQUEST_TYPE))
        );
    });
}

/// The client side: orders encoded by an initiator are what the venue-side views decode, and
/// the venue's ExecutionReport reads back field for field.
#[test]
fn client_side_round_trip_through_sessions() {
    use fix::app::client::{CancelOrder, ExecutionReportView, MassCancel, NewOrder, ReplaceOrder};
    use fix::app::outbound::{ExecType, ExecutionReport, Id, OrdStatus};
    use fix::session::{MemoryStore, Session, SessionConfig};
    use fix::TimePrecision;
    let mut acc = Drive::new(Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        MemoryStore::with_capacity(1 << 16, 64),
    ));
    let mut ini = Drive::new(Session::new(
        SessionConfig::initiator("TW44", "ISLD"),
        MemoryStore::with_capacity(1 << 16, 64),
    ));
    ini.s.initiate_logon(ini.now, &mut ini.out).unwrap();
    let b = std::mem::take(&mut ini.out);
    assert_eq!(acc.feed(&b), vec![Ev::LoggedOn]);
    let b = std::mem::take(&mut acc.out);
    assert_eq!(ini.feed(&b), vec![Ev::LoggedOn]);
    let now = ini.now;
    let order = NewOrder {
        cl_ord_id: Id::Num(42),
        account: Some(b"ACC"),
        symbol: b"INTC",
        side: Side::Buy,
        order_qty: 300,
        ord_type: OrdType::Limit,
        price: Some(1_012_500),
        price_scale: 4,
        time_in_force: TimeInForce::ImmediateOrCancel,
        transact_time: now,
    };
    ini.s.send(&order, now, &mut ini.out).unwrap();
    ini.s
        .send(
            &CancelOrder {
                orig_cl_ord_id: Id::Num(42),
                cl_ord_id: Id::Num(43),
                symbol: b"INTC",
                side: Side::Buy,
                transact_time: now,
            },
            now,
            &mut ini.out,
        )
        .unwrap();
    ini.s
        .send(
            &ReplaceOrder {
                orig_cl_ord_id: Id::Num(42),
                cl_ord_id: Id::Text(b"R1"),
                symbol: b"INTC",
                side: Side::Buy,
                order_qty: 200,
                ord_type: OrdType::Limit,
                price: Some(1_012_600),
                price_scale: 4,
                transact_time: now,
            },
            now,
            &mut ini.out,
        )
        .unwrap();
    ini.s
        .send(
            &MassCancel {
                cl_ord_id: Id::Num(44),
                symbol: None,
                side: Some(Side::Sell),
                transact_time: now,
            },
            now,
            &mut ini.out,
        )
        .unwrap();
    let b = std::mem::take(&mut ini.out);
    let evs = acc.feed(&b);
    let msgs: Vec<&String> = evs
        .iter()
        .map(|e| {
            if let Ev::App(m) = e {
                m
            } else {
                panic!("{e:?}")
            }
        })
        .collect();
    assert_eq!(msgs.len(), 4);
    // Each decodes with the venue-side view (the session already validated it against FIX44).
    let raw = msgs[0].replace('|', "\x01").into_bytes();
    let FrameStatus::Complete(fr) = next_frame(&raw, 8192) else {
        panic!("frame")
    };
    let mut idx = FieldIndex::for_message_size(8192);
    let m = decode(&raw, &fr, &mut idx).unwrap();
    let o = NewOrderSingle::decode(&m).unwrap();
    assert_eq!(
        (o.cl_ord_id, o.order_qty, o.time_in_force),
        (&b"42"[..], 300, TimeInForce::ImmediateOrCancel)
    );
    assert_eq!(price::limit_price(o.price.unwrap(), 4, 100), Ok(1_012_500));
    assert!(msgs[1].contains("|35=F|") && msgs[1].contains("|41=42|"));
    assert!(msgs[2].contains("|35=G|") && msgs[2].contains("|44=101.26|"));
    assert!(msgs[3].contains("|35=q|") && msgs[3].contains("|530=7|"));
    assert!(msgs[3].contains("|54=2|"), "the side: {}", msgs[3]);
    // The venue answers; the client reads the report.
    let er = ExecutionReport {
        order_id: Id::Num(7),
        cl_ord_id: b"42",
        orig_cl_ord_id: None,
        exec_id: Id::Num(70),
        exec_type: ExecType::Trade,
        ord_status: OrdStatus::PartiallyFilled,
        ord_rej_reason: None,
        account: Some(b"ACC"),
        symbol: b"INTC",
        side: Side::Buy,
        order_qty: Some(300),
        ord_type: Some(OrdType::Limit),
        price: Some(1_012_500),
        time_in_force: None,
        last_qty: Some(100),
        last_px: Some(1_012_500),
        leaves_qty: 200,
        cum_qty: 100,
        avg_px: 1_012_500,
        avg_px_decimals: 4,
        price_scale: 4,
        transact_time: acc.now,
        time_precision: TimePrecision::Micros,
        text: None,
        copy_msg_indicator: false,
    };
    acc.s.send(&er, acc.now, &mut acc.out).unwrap();
    let b = std::mem::take(&mut acc.out);
    let mut scratch = fix::session::Scratch::new(8192);
    let mut out = Vec::new();
    let r = ini.s.on_input(&b, &mut scratch, ini.now, &mut out);
    let fix::session::Event::App(m) = r.event else {
        panic!("{:?}", r.event)
    };
    let v = ExecutionReportView::decode(&m).unwrap();
    assert_eq!((v.exec_type, v.ord_status), (b'F', b'1'));
    assert_eq!((v.last_qty, v.leaves_qty, v.cum_qty), (Some(100), 200, 100));
    assert_eq!(price::to_units(v.last_px.unwrap(), 4), Ok(1_012_500));
    assert_eq!(price::to_units(v.avg_px, 4), Ok(1_012_500));
    assert_eq!(v.cl_ord_id, b"42");
}

#[test]
fn a_market_data_request_for_two_symbols_and_three_entry_types_decodes_whole() {
    with(
        &format!(
            "35=V|{HDR}262=R1|263=1|264=5|265=1|267=3|269=0|269=1|269=2|146=2|55=ACME|55=BOLT|"
        ),
        |m| {
            let r = MarketDataRequest::decode(m).unwrap();
            assert_eq!(r.md_req_id, b"R1");
            assert_eq!(r.subscription_type, b"1");
            assert_eq!(r.market_depth, Some(5));
            assert_eq!(r.update_type, Some(&b"1"[..]));
            assert_eq!(r.entry_types, 0b111);
            assert_eq!(r.unsupported_entry_type, None);
            assert_eq!(r.symbols(), &[&b"ACME"[..], &b"BOLT"[..]]);
        },
    );
}

#[test]
fn a_market_data_request_keeps_what_the_venue_must_refuse_with_a_reject() {
    with(
        &format!("35=V|{HDR}262=R2|263=0|264=x|266=N|267=2|269=0|269=7|146=1|55=ACME|"),
        |m| {
            let r = MarketDataRequest::decode(m).unwrap();
            assert_eq!(r.entry_types, MdEntryType::Bid.bit());
            assert_eq!(r.unsupported_entry_type, Some(&b"7"[..]));
            assert_eq!(r.market_depth, None, "264=x is not a depth");
            assert_eq!(r.aggregated_book, Some(false));
        },
    );
    with(&format!("35=D|{HDR}11=C1|"), |m| {
        assert_eq!(MarketDataRequest::decode(m), Err(AppReject::WrongMsgType));
    });
}

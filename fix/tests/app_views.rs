//! Typed views of the inbound order messages: what they decode, and what they refuse with
//! which code.

mod common;

use common::*;
use fix::app::inbound::MassCancelScope;
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
            assert_eq!(r.time_in_force, TimeInForce::GoodTillCancel);
            assert_eq!(price::limit_price(r.price.unwrap(), 2, 1), Ok(10_130));
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

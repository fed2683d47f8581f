//! Layouts that the rings, the journal and the cache budget rely on, and the byte encodings.

#[path = "engine_common.rs"]
mod common;

use appliance::engine::*;
use common::*;
use std::mem::{align_of, size_of};

fn assert_copy<T: Copy + Send + 'static>() {}

#[test]
fn commands_and_events_are_small_copy_values() {
    assert_copy::<Command>();
    assert_copy::<Event>();
    assert!(
        size_of::<Command>() <= 64,
        "Command is {} bytes",
        size_of::<Command>()
    );
    assert!(
        size_of::<Event>() <= 128,
        "Event is {} bytes",
        size_of::<Event>()
    );
    // Measured values, so a change that grows them is noticed here first.
    assert_eq!(size_of::<Command>(), 48);
    assert_eq!(size_of::<Event>(), 104);
    assert_eq!(align_of::<Command>(), 8);
    assert_eq!(align_of::<Event>(), 8);
}

#[test]
fn an_engine_can_move_to_its_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Engine>();
    assert_send::<Command>();
    assert_send::<Event>();
}

#[test]
fn an_order_slot_is_one_cache_line() {
    assert_eq!(ORDER_SLOT_BYTES, 64);
    assert_eq!(ORDER_SLOT_ALIGN, 64);
}

#[test]
fn reason_enums_are_one_byte() {
    assert_eq!(size_of::<RejectReason>(), 1);
    assert_eq!(size_of::<CancelReason>(), 1);
    assert_eq!(size_of::<Option<RejectReason>>(), 1);
    assert_eq!(size_of::<Side>(), 1);
}

fn every_command() -> Vec<Command> {
    let mut v = Vec::new();
    for &side in Side::ALL {
        for &ord_type in OrdType::ALL {
            for &tif in TimeInForce::ALL {
                for &stp in StpMode::ALL {
                    v.push(Command::New(NewOrder {
                        order_id: u64::MAX - 3,
                        instrument: 0xDEAD_BEEF,
                        session: 7,
                        owner: u32::MAX,
                        side,
                        ord_type,
                        tif,
                        price: -123_456_789,
                        qty: 1 << 60,
                        post_only: stp == StpMode::CancelBoth,
                        stp,
                    }));
                }
            }
        }
    }
    v.push(Command::Cancel(Cancel {
        order_id: 42,
        session: 3,
    }));
    v.push(Command::Replace(Replace {
        order_id: 42,
        session: 3,
        price: None,
        qty: 9,
    }));
    v.push(Command::Replace(Replace {
        order_id: 42,
        session: 3,
        price: Some(i64::MIN),
        qty: 9,
    }));
    for &scope in MassCancelScope::ALL {
        for &reason in CancelReason::ALL {
            for (instrument, side) in [
                (None, None),
                (Some(0), Some(Side::Buy)),
                (Some(u32::MAX), Some(Side::Sell)),
            ] {
                v.push(Command::MassCancel(MassCancel {
                    side,
                    session: 1,
                    owner: 2,
                    instrument,
                    scope,
                    reason,
                }));
            }
        }
    }
    v.push(Command::ExpireDayOrders(ExpireDayOrders {
        instrument: None,
    }));
    v.push(Command::ExpireDayOrders(ExpireDayOrders {
        instrument: Some(3),
    }));
    v
}

#[test]
fn command_bytes_round_trip() {
    for cmd in every_command() {
        let b = cmd.to_bytes();
        assert_eq!(b.len(), COMMAND_BYTES);
        assert_eq!(Command::from_bytes(&b), Ok(cmd), "{cmd:?}");
    }
}

#[test]
fn command_encoding_is_little_endian_at_documented_offsets() {
    let b = Command::New(NewOrder {
        price: 0x0102,
        ..limit(0x1122_3344_5566_7788, Side::Sell, 0, 5)
    })
    .to_bytes();
    assert_eq!(b[0], 1, "tag New");
    assert_eq!(b[1], Side::Sell as u8);
    assert_eq!(&b[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&b[16..24], &0x0102u64.to_le_bytes());
    assert_eq!(&b[24..32], &5u64.to_le_bytes());
}

#[test]
fn corrupt_command_records_are_errors_not_panics() {
    let mut b = Command::New(limit(1, Side::Buy, 100, 1)).to_bytes();
    b[1] = 9;
    assert_eq!(Command::from_bytes(&b), Err(DecodeError::BadField(1)));
    b[1] = 1;
    b[4] = 2; // post_only must be 0 or 1
    assert_eq!(Command::from_bytes(&b), Err(DecodeError::BadField(4)));
    b[0] = 0;
    assert_eq!(Command::from_bytes(&b), Err(DecodeError::UnknownTag(0)));
    // Every single-byte corruption of every header byte either decodes or errs; never panics.
    for cmd in every_command().into_iter().step_by(7) {
        let base = cmd.to_bytes();
        for at in 0..8 {
            for v in 0..=255u8 {
                let mut c = base;
                c[at] = v;
                let _ = Command::from_bytes(&c);
            }
        }
    }
}

#[test]
fn event_encoding_distinguishes_every_field() {
    let mut e = engine();
    let mut evs = Vec::new();
    e.process(&Command::New(limit(1, Side::Sell, 100, 5)), &mut evs);
    e.process(&Command::New(limit(2, Side::Buy, 100, 3)), &mut evs);
    e.process(&Command::New(limit(3, Side::Buy, 100, 3)), &mut evs);
    let bytes: Vec<[u8; EVENT_BYTES]> = evs.iter().map(|e| e.to_bytes()).collect();
    for (i, a) in bytes.iter().enumerate() {
        for b in &bytes[i + 1..] {
            assert_ne!(a, b, "two different events encode the same");
        }
    }
    // A trade's encoding carries both sides.
    let t = evs
        .iter()
        .find(|e| matches!(e.kind, EventKind::Trade(_)))
        .unwrap();
    let b = t.to_bytes();
    assert_eq!(b[0], 3);
    assert_eq!(&b[8..16], &t.seq.to_le_bytes());
    assert_eq!(&b[40..48], &1u64.to_le_bytes(), "maker order id");
    assert_eq!(&b[64..72], &2u64.to_le_bytes(), "taker order id");
    assert_eq!(t.sessions(), [Some(1), Some(1)]);
}

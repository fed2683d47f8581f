//! Property tests of the codec: encode -> frame -> decode round trips for arbitrary field
//! lists, streaming over arbitrary read boundaries, and exact numeric conversions.

use fix::codec::decode::{decode, FieldIndex};
use fix::codec::encode::Encoder;
use fix::codec::frame::{next_frame, FrameStatus};
use fix::codec::num::{parse_decimal, write_fixed, write_price};
use fix::codec::time::{parse_timestamp, write_timestamp, TimePrecision};
use proptest::prelude::*;

/// Body fields: tags that are not header/trailer tags, values without SOH.
fn body_fields() -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
    let tag = (1u32..6000).prop_filter("body tag", |t| {
        !fix::dict::is_header_tag(*t) && !fix::dict::is_trailer_tag(*t)
    });
    let value = proptest::collection::vec(prop_oneof![0x20u8..=0x7e, 0x80u8..=0xff], 1..24);
    proptest::collection::vec((tag, value), 0..30)
}

fn encode(msg_type: &[u8], fields: &[(u32, Vec<u8>)], buf: &mut [u8]) -> core::ops::Range<usize> {
    let mut e = Encoder::new(buf, b"FIX.4.4", msg_type);
    e.field_u64(34, 7);
    e.field(49, b"S");
    e.field(56, b"T");
    for (t, v) in fields {
        e.field(*t, v);
    }
    e.finish(b"FIX.4.4").expect("fits")
}

proptest! {
    #[test]
    fn encode_decode_round_trip(fields in body_fields(), mt in "[0-9A-Za-z]{1,2}") {
        let mut buf = vec![0u8; 16384];
        let r = encode(mt.as_bytes(), &fields, &mut buf);
        let bytes = &buf[r];
        let FrameStatus::Complete(f) = next_frame(bytes, 16384) else { panic!("not a frame") };
        prop_assert_eq!(f.len, bytes.len());
        let mut idx = FieldIndex::for_message_size(16384);
        let msg = decode(bytes, &f, &mut idx).expect("decodes");
        prop_assert_eq!(msg.msg_type(), mt.as_bytes());
        prop_assert_eq!(msg.seq_num(), Some(7));
        let got: Vec<(u32, Vec<u8>)> = msg.body_fields().iter().map(|f| (f.tag, msg.value(f).to_vec())).collect();
        prop_assert_eq!(got, fields);
    }

    #[test]
    fn streaming_over_any_read_boundaries(
        msgs in proptest::collection::vec(body_fields(), 1..6),
        cuts in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let mut stream = Vec::new();
        let mut buf = vec![0u8; 16384];
        for m in &msgs {
            let r = encode(b"D", m, &mut buf);
            stream.extend_from_slice(&buf[r]);
        }
        // Deliver in chunks; parse whatever is complete after each chunk.
        let mut inbuf: Vec<u8> = Vec::new();
        let mut decoded = Vec::new();
        let mut pos = 0;
        let mut ci = 0;
        let mut idx = FieldIndex::for_message_size(16384);
        while pos < stream.len() {
            let n = cuts[ci % cuts.len()].min(stream.len() - pos);
            ci += 1;
            inbuf.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            loop {
                match next_frame(&inbuf, 16384) {
                    FrameStatus::Complete(f) => {
                        let msg = decode(&inbuf, &f, &mut idx).expect("decodes");
                        decoded.push(msg.body_fields().iter().map(|f| (f.tag, msg.value(f).to_vec())).collect::<Vec<_>>());
                        inbuf.drain(..f.len);
                    }
                    FrameStatus::Incomplete => break,
                    other => panic!("{other:?}"),
                }
            }
        }
        prop_assert!(inbuf.is_empty());
        prop_assert_eq!(decoded, msgs);
    }

    #[test]
    fn price_text_round_trips_exactly(units in any::<i64>(), scale in 0u8..=9) {
        let mut b = [0u8; 40];
        let n = write_price(&mut b, units, scale).unwrap();
        prop_assert_eq!(parse_decimal(&b[..n], scale), Ok(units));
        let n = write_fixed(&mut b, units, scale).unwrap();
        prop_assert_eq!(parse_decimal(&b[..n], scale), Ok(units));
    }

    #[test]
    fn price_formatting_matches_a_reference(units in any::<i64>(), scale in 0u8..=12) {
        // Reference: std formatting of the exact rational, trailing zeros trimmed.
        let mag = units.unsigned_abs() as u128;
        let p = 10u128.pow(scale as u32);
        let (int, frac) = (mag / p, mag % p);
        let sign = if units < 0 { "-" } else { "" };
        let mut want = format!("{sign}{int}");
        let mut fixed = want.clone();
        if scale > 0 {
            let f = format!("{:0width$}", frac, width = scale as usize);
            fixed = format!("{fixed}.{f}");
            let t = f.trim_end_matches('0');
            if !t.is_empty() {
                want = format!("{want}.{t}");
            }
        }
        let mut b = [0u8; 48];
        let n = write_price(&mut b, units, scale).unwrap();
        prop_assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), want.as_str());
        let n = write_fixed(&mut b, units, scale).unwrap();
        prop_assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), fixed.as_str());
    }

    #[test]
    fn extra_precision_is_rejected_not_rounded(units in -1_000_000_000i64..1_000_000_000, scale in 0u8..=6, digit in 1u8..=9) {
        let mut b = [0u8; 48];
        let n = write_fixed(&mut b, units, scale + 1).unwrap();
        // force a non-zero last decimal beyond `scale`
        b[n - 1] = b'0' + digit;
        prop_assert!(parse_decimal(&b[..n], scale).is_err());
    }

    #[test]
    fn integers_format_like_std(v in any::<u64>(), room in 0usize..32) {
        let mut b = vec![0u8; room];
        let want = v.to_string();
        match fix::codec::num::write_u64(&mut b, v) {
            Some(n) => prop_assert_eq!(&b[..n], want.as_bytes()),
            None => prop_assert!(room < want.len()),
        }
    }

    #[test]
    fn timestamps_round_trip(ns in 0u64..4_102_444_800_000_000_000) {
        let mut b = [0u8; 32];
        let n = write_timestamp(&mut b, ns, TimePrecision::Millis).unwrap();
        prop_assert_eq!(parse_timestamp(&b[..n]), Some(ns / 1_000_000 * 1_000_000));
        let n = write_timestamp(&mut b, ns, TimePrecision::Micros).unwrap();
        prop_assert_eq!(parse_timestamp(&b[..n]), Some(ns / 1_000 * 1_000));
    }
}

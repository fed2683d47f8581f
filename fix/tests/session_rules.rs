//! Every session rule of the issue, driven without sockets: bytes and time in, bytes and
//! events out.

mod common;

use common::*;
use fix::app::outbound::{ExecType, ExecutionReport, Id, OrdStatus};
use fix::app::Side;
use fix::session::{DisconnectReason, Ignored, MemoryStore, Phase, SessionRejectReason};
use fix::{Acceptor, FileStore, Identify, IdentifyError, Session, SessionConfig, TimePrecision};

fn acceptor() -> Drive<MemoryStore> {
    Drive::new(Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        MemoryStore::with_capacity(1 << 16, 1024),
    ))
}

fn er(cl: &str, exec_id: u64) -> ExecutionReport<'_> {
    ExecutionReport {
        order_id: Id::Num(1),
        cl_ord_id: cl.as_bytes(),
        orig_cl_ord_id: None,
        exec_id: Id::Num(exec_id),
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
    }
}

const NOS: &str =
    "35=D|34={seq}|49=TW44|52=<T>|56=ISLD|11=ID{seq}|21=1|38=100|40=2|44=10.5|54=1|55=INTC|60=<T>|";

fn nos(seq: u64) -> String {
    NOS.replace("{seq}", &seq.to_string())
}

// ---------------------------------------------------------------- logon

#[test]
fn first_message_must_be_logon() {
    let mut d = acceptor();
    let ev = d.send("35=0|34=1|49=TW44|52=<T>|56=ISLD|");
    assert_eq!(
        ev,
        vec![Ev::Disconnect(DisconnectReason::FirstMessageNotLogon)]
    );
    assert!(d.take().is_empty(), "nothing may be sent before a Logon");
}

#[test]
fn logon_is_answered_with_heartbeat_interval_and_seq_1() {
    let mut d = acceptor();
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=17|");
    assert_eq!(ev, vec![Ev::LoggedOn]);
    let out = d.take();
    assert_eq!(out.len(), 1);
    let m = &out[0];
    assert!(m.starts_with("8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52="), "{m}");
    assert_eq!(field(m, 98).as_deref(), Some("0"));
    assert_eq!(field(m, 108).as_deref(), Some("17"));
    assert_eq!(d.s.heart_bt_int(), 17);
    assert!(d.s.is_logged_on());
    assert_eq!(d.s.next_target_seq(), 2);
}

#[test]
fn logon_with_bad_comp_id_or_time_disconnects_silently() {
    let mut d = acceptor();
    let ev = d.send("35=A|34=1|49=XX|52=<T>|56=ISLD|98=0|108=30|");
    assert_eq!(ev, vec![Ev::Disconnect(DisconnectReason::InvalidLogon)]);
    assert!(d.take().is_empty());
    let mut d = acceptor();
    let old = msg_at(
        "35=A|34=1|49=TW44|52=20010101-00:00:00|56=ISLD|98=0|108=30|",
        T0,
    );
    assert_eq!(
        d.feed(&old),
        vec![Ev::Disconnect(DisconnectReason::InvalidLogon)]
    );
    assert!(d.take().is_empty());
}

#[test]
fn registry_binds_by_comp_ids_and_refuses_unknown_and_duplicates() {
    let mut reg: Acceptor<MemoryStore> = Acceptor::new();
    let a = reg.add(Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        MemoryStore::with_capacity(4096, 16),
    ));
    let b = reg.add(Session::new(
        SessionConfig::acceptor("ISLD", "OTHER"),
        MemoryStore::with_capacity(4096, 16),
    ));
    let logon = |from: &str| {
        msg_at(
            &format!("35=A|34=1|49={from}|52=<T>|56=ISLD|98=0|108=30|"),
            T0,
        )
    };
    let l = logon("TW44");
    assert_eq!(reg.identify(&l[..l.len() - 3], T0), Identify::NeedMore);
    assert_eq!(reg.identify(&l, T0), Identify::Bind(a));
    assert_eq!(reg.identify(&logon("OTHER"), T0), Identify::Bind(b));
    // A second connection as TW44 is refused; the first stays bound.
    assert_eq!(
        reg.identify(&l, T0),
        Identify::Reject(IdentifyError::AlreadyConnected)
    );
    assert!(reg.is_connected(a));
    assert_eq!(
        reg.identify(&logon("NOBODY"), T0),
        Identify::Reject(IdentifyError::UnknownSession)
    );
    let hb = msg_at("35=0|34=1|49=TW44|52=<T>|56=ISLD|", T0);
    assert_eq!(
        reg.identify(&hb, T0),
        Identify::Reject(IdentifyError::NotLogon)
    );
    let wrong_begin = msg_with_begin(
        "FIX.4.2",
        "35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|",
        T0,
    );
    assert_eq!(
        reg.identify(&wrong_begin, T0),
        Identify::Reject(IdentifyError::UnknownSession)
    );
    // After release the identity can connect again.
    reg.release(a);
    assert_eq!(reg.identify(&l, T0), Identify::Bind(a));
}

#[test]
fn credentials_are_checked() {
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.username = Some("alice".into());
    cfg.password = Some("s3cret".into());
    let mut d = Drive::new(Session::new(
        cfg.clone(),
        MemoryStore::with_capacity(4096, 16),
    ));
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|553=alice|554=wrong|");
    assert_eq!(ev, vec![Ev::Disconnect(DisconnectReason::BadCredentials)]);
    let out = d.take();
    assert_eq!(field(&out[0], 35).as_deref(), Some("5"));
    assert!(field(&out[0], 58).unwrap().contains("Username/Password"));
    let mut d = Drive::new(Session::new(cfg, MemoryStore::with_capacity(4096, 16)));
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|553=alice|554=s3cret|");
    assert_eq!(ev, vec![Ev::LoggedOn]);
}

#[test]
fn a_password_without_a_username_is_still_checked() {
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.password = Some("s3cret".into());
    for logon in [
        "35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|554=wrong|",
        "35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|",
        "35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|553=anyone|554=s3cre|",
    ] {
        let mut d = Drive::new(Session::new(
            cfg.clone(),
            MemoryStore::with_capacity(4096, 16),
        ));
        let ev = d.send(logon);
        assert_eq!(
            ev,
            vec![Ev::Disconnect(DisconnectReason::BadCredentials)],
            "{logon}"
        );
    }
    let mut d = Drive::new(Session::new(cfg, MemoryStore::with_capacity(4096, 16)));
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|554=s3cret|");
    assert_eq!(ev, vec![Ev::LoggedOn]);
}

#[test]
fn heart_bt_int_outside_the_accepted_range_is_refused_with_a_logout() {
    // Without HeartBtInt (a required field) the Logon is invalid too.
    let mut d = acceptor();
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|");
    assert!(matches!(ev[..], [Ev::Disconnect(_)]), "{ev:?}");
    assert!(!d.s.is_logged_on());
    for hb in ["0", "301", "99999999999"] {
        let mut d = acceptor();
        let logon = format!("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108={hb}|");
        let ev = d.send(&logon);
        assert_eq!(
            ev,
            vec![Ev::Disconnect(DisconnectReason::InvalidLogon)],
            "108={hb}"
        );
        let out = d.take();
        assert_eq!(field(&out[0], 35).as_deref(), Some("5"), "108={hb}");
        assert!(
            field(&out[0], 58).unwrap().contains("1 to 300"),
            "108={hb}: {:?}",
            field(&out[0], 58)
        );
        assert!(!d.s.is_logged_on());
    }
    for hb in [1, 300] {
        let mut d = acceptor();
        d.logon(hb);
        assert!(d.s.is_logged_on(), "108={hb}");
    }
}

#[test]
fn credentials_match_checks_each_configured_credential_on_its_own() {
    use fix::session::credentials_match as m;
    assert!(m(None, None, None, None));
    assert!(m(None, None, Some(b"x"), Some(b"y")));
    assert!(m(Some("u"), None, Some(b"u"), None));
    assert!(!m(Some("u"), None, Some(b"v"), None));
    assert!(!m(Some("u"), None, None, None));
    assert!(m(None, Some("p"), None, Some(b"p")));
    assert!(!m(None, Some("p"), None, Some(b"q")));
    assert!(!m(None, Some("p"), None, Some(b"pp")));
    assert!(!m(None, Some("p"), None, None));
    assert!(!m(Some("u"), Some("p"), Some(b"u"), Some(b"q")));
    assert!(!m(Some("u"), Some("p"), Some(b"v"), Some(b"p")));
    assert!(m(Some("u"), Some("p"), Some(b"u"), Some(b"p")));
}

#[test]
fn reset_seq_num_flag_resets_both_sides() {
    let mut d = acceptor();
    d.logon(30);
    for seq in 2..6 {
        assert_eq!(
            d.send(&format!("35=0|34={seq}|49=TW44|52=<T>|56=ISLD|")),
            vec![Ev::Handled]
        );
    }
    d.s.send(&er("A", 1), d.now, &mut d.out).unwrap();
    d.take();
    assert_eq!(d.s.next_sender_seq(), 3);
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|141=Y|");
    assert_eq!(ev, vec![Ev::LoggedOn]);
    let out = d.take();
    assert_eq!(field(&out[0], 34).as_deref(), Some("1"));
    assert_eq!(field(&out[0], 141).as_deref(), Some("Y"));
    assert_eq!((d.s.next_sender_seq(), d.s.next_target_seq()), (2, 2));
}

#[test]
fn logon_while_logged_on_without_reset_disconnects() {
    let mut d = acceptor();
    d.logon(30);
    let ev = d.send("35=A|34=2|49=TW44|52=<T>|56=ISLD|98=0|108=30|");
    assert_eq!(ev, vec![Ev::Disconnect(DisconnectReason::UnexpectedLogon)]);
}

// ---------------------------------------------------------------- heartbeats

#[test]
fn heartbeat_when_idle_then_test_request_then_disconnect() {
    let mut d = acceptor();
    d.logon(10);
    assert_eq!(d.advance(9.9), None);
    assert!(d.take().is_empty(), "nothing before HeartBtInt");
    assert_eq!(d.advance(0.1), None);
    let out = d.take();
    assert_eq!(out.len(), 1);
    assert_eq!(field(&out[0], 35).as_deref(), Some("0"));
    // Counterparty silent: TestRequest at 1.2 x HeartBtInt after its last message.
    assert_eq!(d.advance(1.9), None);
    assert!(d.take().is_empty());
    assert_eq!(d.advance(0.1), None);
    let out = d.take();
    assert_eq!(field(&out[0], 35).as_deref(), Some("1"));
    assert_eq!(field(&out[0], 112).as_deref(), Some("TEST"));
    // Still silent: disconnect at 2.4 x HeartBtInt.
    assert_eq!(d.advance(11.9), None);
    assert_eq!(d.advance(0.1), Some(DisconnectReason::HeartbeatTimeout));
}

#[test]
fn a_peer_known_alive_is_not_tested_or_timed_out() {
    // The owner stopped reading the connection (its back-pressure) and says so each timer
    // tick: the peer's unread silence never leads to a TestRequest or a disconnect.
    let mut d = acceptor();
    d.logon(10);
    for _ in 0..30 {
        let now = d.now;
        d.s.peer_alive(now);
        assert_eq!(d.advance(1.0), None);
    }
    let out = d.take();
    assert!(
        out.iter().all(|m| field(m, 35).as_deref() == Some("0")),
        "heartbeats only: {out:?}"
    );
    assert!(d.s.is_logged_on());
    // Once it stops saying so, the usual rules: TestRequest at 1.2 x, out at 2.4 x.
    assert_eq!(d.advance(12.0), None);
    assert!(d
        .take()
        .iter()
        .any(|m| field(m, 35).as_deref() == Some("1")));
    assert_eq!(d.advance(12.0), Some(DisconnectReason::HeartbeatTimeout));
}

#[test]
fn answered_test_request_keeps_session_up() {
    let mut d = acceptor();
    d.logon(10);
    d.advance(12.0);
    let out = d.take();
    assert!(
        out.iter().any(|m| field(m, 35).as_deref() == Some("1")),
        "{out:?}"
    );
    assert_eq!(
        d.send("35=0|34=2|49=TW44|52=<T>|56=ISLD|112=TEST|"),
        vec![Ev::Handled]
    );
    assert_eq!(d.advance(20.0), None);
    assert!(d.s.is_logged_on());
}

#[test]
fn test_request_is_answered_with_its_id() {
    let mut d = acceptor();
    d.logon(30);
    assert_eq!(
        d.send("35=1|34=2|49=TW44|52=<T>|56=ISLD|112=PING-7|"),
        vec![Ev::Handled]
    );
    let out = d.take();
    assert_eq!(field(&out[0], 35).as_deref(), Some("0"));
    assert_eq!(field(&out[0], 112).as_deref(), Some("PING-7"));
}

// ---------------------------------------------------------------- sequence numbers

#[test]
fn too_high_sends_resend_request_and_queues_until_gap_filled() {
    let mut d = acceptor();
    d.logon(30);
    // 2 and 3 are lost; 4 arrives.
    let ev = d.send(&nos(4));
    assert_eq!(ev, vec![Ev::Ignored(Ignored::Queued)]);
    let out = d.take();
    assert_eq!(out.len(), 1);
    assert!(out[0].contains("|35=2|"), "{out:?}");
    assert_eq!(field(&out[0], 7).as_deref(), Some("2"));
    assert_eq!(field(&out[0], 16).as_deref(), Some("0"));
    // Another early message does not trigger a second ResendRequest.
    assert_eq!(d.send(&nos(5)), vec![Ev::Ignored(Ignored::Queued)]);
    assert!(d.take().is_empty());
    // Counterparty resends 2 and 3; the queued 4 and 5 follow in order.
    let mut evs = d.send(&nos(2));
    evs.extend(d.send(&nos(3)));
    let apps: Vec<String> = evs
        .iter()
        .filter_map(|e| {
            if let Ev::App(m) = e {
                field(m, 34)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(apps, vec!["2", "3", "4", "5"]);
    assert_eq!(d.s.next_target_seq(), 6);
}

#[test]
fn too_low_without_poss_dup_logs_out_with_reason() {
    let mut d = acceptor();
    d.logon(30);
    d.send("35=0|34=2|49=TW44|52=<T>|56=ISLD|");
    d.send("35=0|34=3|49=TW44|52=<T>|56=ISLD|");
    let ev = d.send("35=0|34=2|49=TW44|52=<T>|56=ISLD|");
    assert_eq!(ev, vec![Ev::Disconnect(DisconnectReason::SeqNumTooLow)]);
    let out = d.take();
    assert_eq!(field(&out[0], 35).as_deref(), Some("5"));
    assert_eq!(
        field(&out[0], 58).as_deref(),
        Some("MsgSeqNum too low, expecting 4 but received 2")
    );
}

#[test]
fn poss_dup_duplicates_are_ignored_and_checked() {
    let mut d = acceptor();
    d.logon(30);
    assert!(matches!(d.send(&nos(2))[0], Ev::App(_)));
    let t = ts(d.now);
    let dup = format!("35=D|34=2|43=Y|49=TW44|52=<T>|56=ISLD|122={t}|11=ID2|21=1|38=100|40=2|44=10.5|54=1|55=INTC|60=<T>|");
    assert_eq!(d.send(&dup), vec![Ev::Ignored(Ignored::Duplicate)]);
    assert!(d.take().is_empty());
    // Without OrigSendingTime: Reject 373=1 371=122, expected MsgSeqNum unchanged.
    let no_orig = "35=D|34=2|43=Y|49=TW44|52=<T>|56=ISLD|11=ID2|21=1|38=100|40=2|44=10.5|54=1|55=INTC|60=<T>|";
    assert_eq!(
        d.send(no_orig),
        vec![Ev::Rejected(SessionRejectReason::RequiredTagMissing)]
    );
    let out = d.take();
    assert_eq!(field(&out[0], 371).as_deref(), Some("122"));
    assert_eq!(d.s.next_target_seq(), 3);
    // A PossDup message not seen yet is processed normally.
    let fresh = format!("35=0|34=3|43=Y|49=TW44|52=<T>|56=ISLD|122={t}|");
    assert_eq!(d.send(&fresh), vec![Ev::Handled]);
    assert_eq!(d.s.next_target_seq(), 4);
}

// ---------------------------------------------------------------- resend

#[test]
fn resend_request_resends_app_messages_and_gap_fills_admin() {
    let mut d = acceptor();
    d.logon(30); // our seq 1: Logon
    d.s.send(&er("A", 1), d.now, &mut d.out).unwrap(); // 2
    d.send("35=1|34=2|49=TW44|52=<T>|56=ISLD|112=X|"); // our 3: Heartbeat
    d.s.send(&er("B", 2), d.now, &mut d.out).unwrap(); // 4
    d.take();
    d.now += 5_000_000_000;
    assert_eq!(
        d.send("35=2|34=3|49=TW44|52=<T>|56=ISLD|7=1|16=0|"),
        vec![Ev::Handled]
    );
    let out = d.take();
    let kinds: Vec<(String, String)> = out
        .iter()
        .map(|m| (field(m, 35).unwrap(), field(m, 34).unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("4".into(), "1".into()),
            ("8".into(), "2".into()),
            ("4".into(), "3".into()),
            ("8".into(), "4".into())
        ]
    );
    assert_eq!(field(&out[0], 36).as_deref(), Some("2"));
    assert_eq!(field(&out[0], 123).as_deref(), Some("Y"));
    assert_eq!(field(&out[2], 36).as_deref(), Some("4"));
    for m in &out {
        assert_eq!(field(m, 43).as_deref(), Some("Y"), "{m}");
        assert!(field(m, 122).is_some(), "{m}");
    }
    // The resent ExecutionReport keeps its body and original SendingTime as OrigSendingTime.
    assert_eq!(field(&out[1], 11).as_deref(), Some("A"));
    assert!(field(&out[1], 122).unwrap().starts_with(&ts(T0)));
    assert!(field(&out[1], 52)
        .unwrap()
        .starts_with(&ts(T0 + 5_000_000_000)));
    assert!(
        out[1].contains("|43=Y|49=ISLD|"),
        "header order as QuickFIX: {}",
        out[1]
    );
    // Sequence numbers continue after the resend.
    assert_eq!(d.s.next_sender_seq(), 5);
    assert_eq!(d.s.next_target_seq(), 4);
}

#[test]
fn messages_sent_unstored_go_out_at_once_and_are_gap_filled_on_resend() {
    let mut d = acceptor();
    d.logon(30); // our seq 1: Logon
    assert!(d.s.can_send_now());
    d.s.send(&er("A", 1), d.now, &mut d.out).unwrap(); // 2
    d.s.send_unstored(&er("MD", 2), d.now, &mut d.out).unwrap(); // 3, not stored
    d.s.send(&er("B", 3), d.now, &mut d.out).unwrap(); // 4
    let sent: Vec<String> = d.take().iter().map(|m| field(m, 11).unwrap()).collect();
    assert_eq!(
        sent,
        ["A", "MD", "B"],
        "the unstored message went out in its place"
    );
    d.now += 5_000_000_000;
    d.send("35=2|34=2|49=TW44|52=<T>|56=ISLD|7=2|16=0|");
    let out = d.take();
    let kinds: Vec<(String, String)> = out
        .iter()
        .map(|m| (field(m, 35).unwrap(), field(m, 34).unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("8".into(), "2".into()),
            ("4".into(), "3".into()),
            ("8".into(), "4".into())
        ],
        "resent A, a gap fill over the unstored message, resent B"
    );
    assert_eq!(field(&out[1], 36).as_deref(), Some("4"));
    assert_eq!(field(&out[1], 123).as_deref(), Some("Y"));
    assert_eq!(d.s.next_sender_seq(), 5);
}

#[test]
fn a_long_resend_is_answered_in_batches_by_a_cursor() {
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.resend_batch_bytes = 2048;
    let mut d = Drive::new(Session::new(cfg, MemoryStore::with_capacity(1 << 20, 4096)));
    d.logon(30); // our seq 1: Logon
    for i in 0..500u64 {
        d.s.send(&er(&format!("C{i}"), i + 1), d.now, &mut d.out)
            .unwrap(); // 2..=501
    }
    d.take();
    assert_eq!(
        d.send("35=2|34=2|49=TW44|52=<T>|56=ISLD|7=1|16=0|"),
        vec![Ev::Handled]
    );
    // The request is answered a batch at a time: the first call wrote about one batch.
    let first = d.out.len();
    assert!(
        (2048..2048 + 1024).contains(&first),
        "first batch {first} bytes"
    );
    assert!(d.s.resend_pending());
    // A message sent meanwhile is held back: numbered after the range, it follows the answer.
    let before = d.out.len();
    d.s.send(&er("NEW", 9999), d.now, &mut d.out).unwrap();
    assert_eq!(d.out.len(), before, "held back, not written");
    let mut calls = 1;
    while d.s.pump_resend(d.now, &mut d.out).unwrap() {
        calls += 1;
        assert!(calls < 1000, "the cursor makes progress");
    }
    assert!(!d.s.resend_pending());
    assert!(calls > 10, "answered in {calls} batches");
    let out = d.take();
    let resent: Vec<u64> = out
        .iter()
        .filter(|m| field(m, 43).as_deref() == Some("Y"))
        .map(|m| field(m, 34).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        resent,
        (1..=501).collect::<Vec<u64>>(),
        "every number once, in order"
    );
    assert_eq!(
        field(&out[0], 35).as_deref(),
        Some("4"),
        "the Logon is gap-filled"
    );
    let new: Vec<&String> = out
        .iter()
        .filter(|m| field(m, 11).as_deref() == Some("NEW"))
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(field(new[0], 34).as_deref(), Some("502"));
    assert_eq!(
        field(new[0], 43),
        None,
        "a new message is not a possible duplicate"
    );
    assert_eq!(
        field(out.last().unwrap(), 11).as_deref(),
        Some("NEW"),
        "after the answer"
    );
    // Sequence numbers continue after the answer.
    assert_eq!(d.s.next_sender_seq(), 503);
}

#[test]
fn a_resend_of_part_of_what_was_sent_stops_at_its_end() {
    // QuickFIX acceptance 8: 9 sent, ResendRequest 2..4 answers 2..4 only (nothing was
    // held back: the later messages went out before the request).
    let mut d = acceptor();
    d.logon(30); // 1
    for i in 0..8u64 {
        d.s.send(&er(&format!("P{i}"), i + 1), d.now, &mut d.out)
            .unwrap(); // 2..=9
    }
    d.take();
    d.send("35=2|34=2|49=TW44|52=<T>|56=ISLD|7=2|16=4|");
    assert!(!d.s.resend_pending());
    let got: Vec<(String, String)> = d
        .take()
        .iter()
        .map(|m| (field(m, 35).unwrap(), field(m, 34).unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("8".to_string(), "2".to_string()),
            ("8".to_string(), "3".to_string()),
            ("8".to_string(), "4".to_string())
        ]
    );
}

#[test]
fn a_new_resend_request_replaces_the_one_being_answered_and_a_disconnect_ends_it() {
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.resend_batch_bytes = 1024;
    let mut d = Drive::new(Session::new(cfg, MemoryStore::with_capacity(1 << 20, 4096)));
    d.logon(30);
    for i in 0..100u64 {
        d.s.send(&er(&format!("C{i}"), i + 1), d.now, &mut d.out)
            .unwrap(); // 2..=101
    }
    d.take();
    d.send("35=2|34=2|49=TW44|52=<T>|56=ISLD|7=1|16=0|");
    assert!(d.s.resend_pending());
    d.take();
    // The peer asks again for the last two only: the first answer stops there.
    d.send("35=2|34=3|49=TW44|52=<T>|56=ISLD|7=100|16=101|");
    while d.s.pump_resend(d.now, &mut d.out).unwrap() {}
    let seqs: Vec<String> = d.take().iter().map(|m| field(m, 34).unwrap()).collect();
    assert_eq!(seqs, vec!["100", "101"]);
    // Messages held back behind an answer are still owed when a new request replaces it.
    d.send("35=2|34=4|49=TW44|52=<T>|56=ISLD|7=1|16=0|");
    d.take();
    d.s.send(&er("H1", 501), d.now, &mut d.out).unwrap(); // 102, held back
    d.s.send(&er("H2", 502), d.now, &mut d.out).unwrap(); // 103, held back
    assert!(d.out.is_empty());
    d.send("35=2|34=5|49=TW44|52=<T>|56=ISLD|7=101|16=101|");
    while d.s.pump_resend(d.now, &mut d.out).unwrap() {}
    let got: Vec<(String, Option<String>)> = d
        .take()
        .iter()
        .map(|m| (field(m, 34).unwrap(), field(m, 43)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("101".to_string(), Some("Y".to_string())),
            ("102".to_string(), None),
            ("103".to_string(), None)
        ]
    );
    d.send("35=2|34=6|49=TW44|52=<T>|56=ISLD|7=1|16=0|");
    assert!(d.s.resend_pending());
    d.s.on_disconnected();
    assert!(!d.s.resend_pending());
    d.take();
    assert!(!d.s.pump_resend(d.now, &mut d.out).unwrap());
    assert!(d.out.is_empty(), "nothing more after the connection ended");
}

#[test]
fn evicted_messages_are_gap_filled() {
    let mut d = Drive::new(Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        MemoryStore::with_capacity(1 << 16, 2),
    ));
    d.logon(30);
    for i in 0..4 {
        d.s.send(&er("X", i), d.now, &mut d.out).unwrap(); // 2..=5, only 4 and 5 kept
    }
    d.take();
    d.send("35=2|34=2|49=TW44|52=<T>|56=ISLD|7=2|16=0|");
    let out = d.take();
    let kinds: Vec<(String, String)> = out
        .iter()
        .map(|m| (field(m, 35).unwrap(), field(m, 34).unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("4".into(), "2".into()),
            ("8".into(), "4".into()),
            ("8".into(), "5".into())
        ]
    );
    assert_eq!(field(&out[0], 36).as_deref(), Some("4"));
    assert_eq!(d.s.store().evicted(), 2);
}

#[test]
fn sequence_reset_gap_fill_and_reset_modes() {
    let mut d = acceptor();
    d.logon(30);
    // Gap fill at the expected number moves the expectation forward.
    assert_eq!(
        d.send("35=4|34=2|49=TW44|52=<T>|56=ISLD|123=Y|36=10|"),
        vec![Ev::Handled]
    );
    assert_eq!(d.s.next_target_seq(), 10);
    // Reset mode ignores MsgSeqNum.
    assert_eq!(
        d.send("35=4|34=1|49=TW44|52=<T>|56=ISLD|36=20|"),
        vec![Ev::Handled]
    );
    assert_eq!(d.s.next_target_seq(), 20);
    // Going backwards is rejected with 373=5 and no RefTagID.
    assert_eq!(
        d.send("35=4|34=1|49=TW44|52=<T>|56=ISLD|36=5|"),
        vec![Ev::Rejected(SessionRejectReason::ValueIsIncorrect)]
    );
    let out = d.take();
    assert_eq!(field(&out[0], 373).as_deref(), Some("5"));
    assert_eq!(field(&out[0], 371), None);
    assert_eq!(d.s.next_target_seq(), 20);
}

#[test]
fn extreme_sequence_numbers_do_not_overflow() {
    let mut d = acceptor();
    d.logon(30);
    let max = u64::MAX;
    assert_eq!(
        d.send(&format!("35=4|34=1|49=TW44|52=<T>|56=ISLD|36={max}|")),
        vec![Ev::Handled]
    );
    assert_eq!(d.s.next_target_seq(), max);
    assert_eq!(
        d.send(&format!("35=0|34={max}|49=TW44|52=<T>|56=ISLD|")),
        vec![Ev::Handled]
    );
    assert_eq!(d.s.next_target_seq(), max);
    // A ResendRequest for everything, and one far beyond what we sent.
    d.send(&format!("35=2|34={max}|49=TW44|52=<T>|56=ISLD|7=1|16=0|"));
    d.send(&format!(
        "35=2|34={max}|49=TW44|52=<T>|56=ISLD|7={max}|16={max}|"
    ));
    assert!(d.s.is_logged_on());
}

#[test]
fn absurd_heartbeat_interval_does_not_overflow() {
    // The default range refuses it (heart_bt_int_outside_the_accepted_range_...); an acceptor
    // configured to take any interval must still not overflow its deadlines.
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.heart_bt_int_range = 0..=u32::MAX;
    let mut d = Drive::new(Session::new(cfg, MemoryStore::with_capacity(4096, 16)));
    let ev = d.send("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=4294967295|");
    assert_eq!(ev, vec![Ev::LoggedOn]);
    assert!(d.s.next_deadline() > d.now);
    assert_eq!(d.advance(3600.0), None);
    assert!(d.s.is_logged_on());
}

// ---------------------------------------------------------------- rejects

#[test]
fn malformed_messages_get_session_rejects() {
    let mut d = acceptor();
    d.logon(30);
    let cases: &[(&str, SessionRejectReason, Option<&str>)] = &[
        (
            "35=0|34=2|49=TW44|52=<T>|56=ISLD|999=HI|",
            SessionRejectReason::InvalidTagNumber,
            Some("999"),
        ),
        (
            "35=D|34=3|49=TW44|52=<T>|56=ISLD|21=1|38=1|40=1|54=1|55=X|60=<T>|",
            SessionRejectReason::RequiredTagMissing,
            Some("11"),
        ),
        (
            "35=0|34=4|49=TW44|52=<T>|56=ISLD|55=X|",
            SessionRejectReason::TagNotDefinedForMessageType,
            Some("55"),
        ),
        (
            "35=D|34=5|49=TW44|52=<T>|56=ISLD|11=A|21=9|38=1|40=1|54=1|55=X|60=<T>|",
            SessionRejectReason::ValueIsIncorrect,
            Some("21"),
        ),
        (
            "35=D|34=6|49=TW44|52=<T>|56=ISLD|11=A|21=1|38=+1|40=1|54=1|55=X|60=<T>|",
            SessionRejectReason::IncorrectDataFormat,
            Some("38"),
        ),
        (
            "35=D|34=7|49=TW44|52=<T>|56=ISLD|11=A|11=B|21=1|38=1|40=1|54=1|55=X|60=<T>|",
            SessionRejectReason::TagAppearsMoreThanOnce,
            Some("11"),
        ),
        (
            "35=*|34=8|49=TW44|52=<T>|56=ISLD|",
            SessionRejectReason::InvalidMsgType,
            None,
        ),
    ];
    for (i, (body, reason, tag)) in cases.iter().enumerate() {
        assert_eq!(d.send(body), vec![Ev::Rejected(*reason)], "{body}");
        let out = d.take();
        assert_eq!(field(&out[0], 35).as_deref(), Some("3"));
        assert_eq!(field(&out[0], 45), Some((i + 2).to_string()));
        assert_eq!(field(&out[0], 373), Some(reason.code().to_string()));
        assert_eq!(field(&out[0], 371).as_deref(), *tag);
        assert_eq!(field(&out[0], 58).as_deref(), Some(reason.text()));
    }
    // Rejected messages still consume their sequence number.
    assert_eq!(d.s.next_target_seq(), 9);
}

#[test]
fn garbled_frames_are_ignored_when_logged_on() {
    let mut d = acceptor();
    d.logon(30);
    let mut bad = msg_at("35=0|34=2|49=TW44|52=<T>|56=ISLD|", d.now);
    let n = bad.len();
    bad[n - 2] = b'9' - (bad[n - 2] - b'0' + 1) % 10; // wrong checksum digit
    assert!(matches!(d.feed(&bad)[0], Ev::Ignored(Ignored::Frame(_))));
    assert!(d.take().is_empty());
    assert_eq!(d.s.next_target_seq(), 2);
    assert!(matches!(
        d.feed(b"8=FIX.4.4\x019=12\x0135=0\x014garbled=x\x0110=000\x01")[0],
        Ev::Ignored(_)
    ));
}

#[test]
fn oversize_frame_disconnects() {
    let mut cfg = SessionConfig::acceptor("ISLD", "TW44");
    cfg.max_message_size = 256;
    let mut d = Drive::new(Session::new(cfg, MemoryStore::with_capacity(4096, 16)));
    d.logon(30);
    let big = format!("35=0|34=2|49=TW44|52=<T>|56=ISLD|112={}|", "x".repeat(400));
    assert!(matches!(
        d.send(&big)[..],
        [Ev::Disconnect(DisconnectReason::Frame(_))]
    ));
}

#[test]
fn sending_time_out_of_window_rejects_and_logs_out() {
    let mut d = acceptor();
    d.logon(30);
    let late = msg_at(
        &format!(
            "35=0|34=2|49=TW44|52={}|56=ISLD|",
            ts(d.now - 121_000_000_000)
        ),
        d.now,
    );
    assert_eq!(
        d.feed(&late),
        vec![Ev::Rejected(
            SessionRejectReason::SendingTimeAccuracyProblem
        )]
    );
    let out = d.take();
    assert_eq!(field(&out[0], 373).as_deref(), Some("10"));
    assert_eq!(field(&out[1], 35).as_deref(), Some("5"));
    assert_eq!(d.s.phase(), Phase::LogoutSent);
}

#[test]
fn wrong_comp_id_after_logon_rejects_and_logs_out() {
    let mut d = acceptor();
    d.logon(30);
    assert_eq!(
        d.send("35=0|34=2|49=EVIL|52=<T>|56=ISLD|"),
        vec![Ev::Rejected(SessionRejectReason::CompIdProblem)]
    );
    let out = d.take();
    assert_eq!(field(&out[0], 373).as_deref(), Some("9"));
    assert_eq!(field(&out[1], 35).as_deref(), Some("5"));
}

#[test]
fn wrong_begin_string_after_logon_logs_out() {
    let mut d = acceptor();
    d.logon(30);
    let m = msg_with_begin("FIX.4.1", "35=0|34=2|49=TW44|52=<T>|56=ISLD|", d.now);
    assert_eq!(d.feed(&m), vec![Ev::Handled]);
    let out = d.take();
    assert_eq!(field(&out[0], 58).as_deref(), Some("Incorrect BeginString"));
    assert_eq!(d.advance(2.0), Some(DisconnectReason::LogoutTimeout));
}

// ---------------------------------------------------------------- logout

#[test]
fn logout_from_counterparty_is_answered_then_disconnect() {
    let mut d = acceptor();
    d.logon(30);
    assert_eq!(
        d.send("35=5|34=2|49=TW44|52=<T>|56=ISLD|"),
        vec![Ev::Disconnect(DisconnectReason::Logout)]
    );
    let out = d.take();
    assert_eq!(field(&out[0], 35).as_deref(), Some("5"));
}

#[test]
fn our_logout_waits_for_reply_or_times_out() {
    let mut d = acceptor();
    d.logon(30);
    d.s.logout(Some(b"end of day"), d.now, &mut d.out).unwrap();
    assert_eq!(field(&d.take()[0], 58).as_deref(), Some("end of day"));
    assert_eq!(
        d.send("35=5|34=2|49=TW44|52=<T>|56=ISLD|"),
        vec![Ev::Disconnect(DisconnectReason::Logout)]
    );
    assert!(d.take().is_empty(), "no second Logout");
    let mut d = acceptor();
    d.logon(30);
    d.s.logout(None, d.now, &mut d.out).unwrap();
    assert_eq!(d.advance(1.9), None);
    assert_eq!(d.advance(0.1), Some(DisconnectReason::LogoutTimeout));
}

#[test]
fn application_message_after_our_logout_is_refused_with_a_business_reject() {
    let mut d = acceptor();
    d.logon(30);
    d.s.logout(None, d.now, &mut d.out).unwrap();
    d.take();
    assert_eq!(d.send(&nos(2)), vec![Ev::Ignored(Ignored::AfterLogout)]);
    let out = d.take();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(field(&out[0], 35).as_deref(), Some("j"));
    assert_eq!(field(&out[0], 380).as_deref(), Some("4"));
    assert_eq!(field(&out[0], 45).as_deref(), Some("2"));
    assert_eq!(field(&out[0], 372).as_deref(), Some("D"));
    // Its number is consumed; the Logout reply still ends the session.
    assert_eq!(d.s.next_target_seq(), 3);
    assert_eq!(
        d.send("35=5|34=3|49=TW44|52=<T>|56=ISLD|"),
        vec![Ev::Disconnect(DisconnectReason::Logout)]
    );
}

// ---------------------------------------------------------------- stores

#[test]
fn file_store_survives_restart() {
    let dir = std::env::temp_dir().join(format!("fix-session-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let mut d = Drive::new(Session::new(
            SessionConfig::acceptor("ISLD", "TW44"),
            FileStore::open(&dir, "ISLD-TW44").unwrap(),
        ));
        d.logon(30);
        d.s.send(&er("KEEP", 1), d.now, &mut d.out).unwrap();
        assert_eq!(
            d.send("35=0|34=2|49=TW44|52=<T>|56=ISLD|"),
            vec![Ev::Handled]
        );
    }
    // Restart: new process, same files.
    let mut d = Drive::new(Session::new(
        SessionConfig::acceptor("ISLD", "TW44"),
        FileStore::open(&dir, "ISLD-TW44").unwrap(),
    ));
    assert_eq!((d.s.next_sender_seq(), d.s.next_target_seq()), (3, 3));
    let ev = d.send("35=A|34=3|49=TW44|52=<T>|56=ISLD|98=0|108=30|");
    assert_eq!(ev, vec![Ev::LoggedOn]);
    assert_eq!(field(&d.take()[0], 34).as_deref(), Some("3"));
    d.send("35=2|34=4|49=TW44|52=<T>|56=ISLD|7=2|16=2|");
    let out = d.take();
    assert_eq!(out.len(), 1);
    assert_eq!(field(&out[0], 11).as_deref(), Some("KEEP"));
    assert_eq!(field(&out[0], 43).as_deref(), Some("Y"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn messages_sent_while_disconnected_are_stored_for_resend() {
    let mut d = acceptor();
    d.logon(30);
    d.s.on_disconnected();
    let seq = d.s.send(&er("LATE", 9), d.now, &mut d.out).unwrap();
    assert_eq!(seq, 2);
    assert!(d.out.is_empty(), "not written while disconnected");
    d.s.on_connected(d.now);
    d.send("35=A|34=2|49=TW44|52=<T>|56=ISLD|98=0|108=30|");
    d.take();
    d.send("35=2|34=3|49=TW44|52=<T>|56=ISLD|7=2|16=0|");
    let out = d.take();
    assert_eq!(field(&out[0], 11).as_deref(), Some("LATE"));
}

// ---------------------------------------------------------------- streaming

#[test]
fn split_reads_and_batched_reads() {
    let mut d = acceptor();
    let logon = msg_at("35=A|34=1|49=TW44|52=<T>|56=ISLD|98=0|108=30|", d.now);
    for b in &logon[..logon.len() - 1] {
        assert!(d.feed(std::slice::from_ref(b)).is_empty());
    }
    assert_eq!(d.feed(&logon[logon.len() - 1..]), vec![Ev::LoggedOn]);
    let mut batch = Vec::new();
    for seq in 2..12 {
        batch.extend(msg_at(&nos(seq), d.now));
    }
    let evs = d.feed(&batch);
    assert_eq!(evs.len(), 10);
    assert!(evs.iter().all(|e| matches!(e, Ev::App(_))));
}

// ---------------------------------------------------------------- initiator <-> acceptor

#[test]
fn initiator_and_acceptor_talk_to_each_other() {
    let mut acc = acceptor();
    let mut icfg = SessionConfig::initiator("TW44", "ISLD");
    icfg.heart_bt_int = 5;
    let mut ini = Drive::new(Session::new(
        icfg,
        MemoryStore::with_capacity(1 << 16, 1024),
    ));
    ini.s.initiate_logon(ini.now, &mut ini.out).unwrap();
    assert_eq!(ini.s.phase(), Phase::LogonSent);
    let to_acc = std::mem::take(&mut ini.out);
    assert_eq!(acc.feed(&to_acc), vec![Ev::LoggedOn]);
    let to_ini = std::mem::take(&mut acc.out);
    assert_eq!(ini.feed(&to_ini), vec![Ev::LoggedOn]);
    assert_eq!(acc.s.heart_bt_int(), 5);
    // Orders one way, reports the other.
    for i in 0..3 {
        let body = format!(
            "11=C{i}|21=1|38=100|40=2|44=10.5|54=1|55=INTC|60={}|",
            ts(ini.now)
        );
        ini.s
            .send_raw(
                b"D",
                &[],
                body.replace('|', "\x01").as_bytes(),
                ini.now,
                &mut ini.out,
            )
            .unwrap();
    }
    let to_acc = std::mem::take(&mut ini.out);
    let evs = acc.feed(&to_acc);
    assert_eq!(evs.len(), 3);
    for (i, e) in evs.iter().enumerate() {
        let Ev::App(m) = e else { panic!("{e:?}") };
        assert_eq!(field(m, 11), Some(format!("C{i}")));
        let cl = format!("C{i}");
        acc.s
            .send(&er(&cl, i as u64), acc.now, &mut acc.out)
            .unwrap();
    }
    let to_ini = std::mem::take(&mut acc.out);
    let evs = ini.feed(&to_ini);
    assert_eq!(evs.iter().filter(|e| matches!(e, Ev::App(_))).count(), 3);
    // Heartbeats flow both ways when idle.
    ini.advance(5.0);
    let hb = std::mem::take(&mut ini.out);
    assert_eq!(acc.feed(&hb), vec![Ev::Handled]);
    // Logout handshake initiated by the initiator.
    ini.s.logout(None, ini.now, &mut ini.out).unwrap();
    let lo = std::mem::take(&mut ini.out);
    assert_eq!(
        acc.feed(&lo),
        vec![Ev::Disconnect(DisconnectReason::Logout)]
    );
    let reply = std::mem::take(&mut acc.out);
    assert_eq!(
        ini.feed(&reply),
        vec![Ev::Disconnect(DisconnectReason::Logout)]
    );
}

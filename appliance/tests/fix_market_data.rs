//! FIX market data against the real binary: a MarketDataRequest (35=V) gets a snapshot (W),
//! then incremental refreshes (X) that rebuild the book the subscriber would get from a fresh
//! snapshot; trades arrive as entries of their own; refusals are MarketDataRequestRejects (Y)
//! with the FIX 4.4 reason; an unsubscribe stops the refreshes; a random flow from two firms
//! (FIX and binary) leaves an incremental subscriber's book, a full-refresh subscriber's last
//! snapshot and a fresh snapshot all equal.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;
mod support;

use app::{config_file, App};
use fix::app::{Side, TimeInForce};
use fixclient::{FixClient, FixMsg};
use net::BinClient;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A level as the subscriber sees it: (side 269, price 270) -> (size 271, orders 346).
type Levels = BTreeMap<(String, String), (String, String)>;

/// The entries of a W as (269, 270, 271, 346), in message order.
fn snapshot_entries(w: &FixMsg) -> Vec<(String, String, String, String)> {
    let mut out: Vec<(String, String, String, String)> = Vec::new();
    for (tag, v) in &w.fields {
        match tag {
            269 => out.push((v.clone(), String::new(), String::new(), String::new())),
            270 => out.last_mut().expect("270 after 269").1 = v.clone(),
            271 => out.last_mut().expect("271 after 269").2 = v.clone(),
            346 => out.last_mut().expect("346 after 269").3 = v.clone(),
            _ => {}
        }
    }
    let count: usize = w.req(268).parse().unwrap();
    assert_eq!(count, out.len(), "NoMDEntries counts the entries: {w:?}");
    out
}

/// The levels of a W (trades left out).
fn snapshot_levels(w: &FixMsg) -> Levels {
    snapshot_entries(w)
        .into_iter()
        .filter(|e| e.0 != "2")
        .map(|(t, px, sz, n)| ((t, px), (sz, n)))
        .collect()
}

/// Applies an X to `book`; returns its trades (price, size). Checks each entry's symbol.
fn apply(book: &mut Levels, x: &FixMsg, symbol: &str) -> Vec<(String, String)> {
    #[derive(Default)]
    struct E {
        action: String,
        kind: String,
        sym: String,
        px: String,
        size: String,
        orders: String,
    }
    let mut entries: Vec<E> = Vec::new();
    for (tag, v) in &x.fields {
        match tag {
            279 => entries.push(E {
                action: v.clone(),
                ..E::default()
            }),
            269 => entries.last_mut().expect("269 after 279").kind = v.clone(),
            55 => entries.last_mut().expect("55 after 279").sym = v.clone(),
            270 => entries.last_mut().expect("270 after 279").px = v.clone(),
            271 => entries.last_mut().expect("271 after 279").size = v.clone(),
            346 => entries.last_mut().expect("346 after 279").orders = v.clone(),
            _ => {}
        }
    }
    let count: usize = x.req(268).parse().unwrap();
    assert_eq!(
        count,
        entries.len(),
        "NoMDEntries counts the entries: {x:?}"
    );
    let mut trades = Vec::new();
    for e in entries {
        assert_eq!(e.sym, symbol, "every entry names the instrument");
        if e.kind == "2" {
            assert_eq!(e.action, "0", "a trade is a new entry");
            trades.push((e.px, e.size));
            continue;
        }
        let key = (e.kind.clone(), e.px.clone());
        match e.action.as_str() {
            "0" => {
                assert!(!book.contains_key(&key), "new level {key:?} already there");
                book.insert(key, (e.size, e.orders));
            }
            "1" => {
                assert!(book.contains_key(&key), "changed level {key:?} unknown");
                book.insert(key, (e.size, e.orders));
            }
            "2" => {
                assert!(book.remove(&key).is_some(), "deleted level {key:?} unknown");
            }
            a => panic!("MDUpdateAction {a}"),
        }
    }
    trades
}

/// The next message of type `t` (others kept aside in `skipped`), within 10 s.
fn next_of(c: &mut FixClient, t: &str, skipped: &mut Vec<FixMsg>) -> FixMsg {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < deadline,
            "no {t} within 10 s; got {skipped:#?}"
        );
        if let Some(m) = c.try_recv(Duration::from_millis(100)) {
            if m.msg_type == t {
                return m;
            }
            skipped.push(m);
        }
    }
}

fn px(units: i64) -> Option<i64> {
    Some(units)
}

#[test]
fn a_subscriber_gets_a_snapshot_then_refreshes_that_rebuild_the_book_and_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), "written", &[]);
    let mut app = App::start(&cfg);
    let mut a = FixClient::logon(app.fix, "CLIENT1");
    let mut sub = FixClient::logon(app.fix, "CLIENT2");
    let gtc = TimeInForce::GoodTillCancel;
    // Resting before the subscription: two bids and an offer.
    a.order("B1", "ACME", Side::Buy, 10, px(990_000), gtc);
    a.order("B2", "ACME", Side::Buy, 5, px(995_000), gtc);
    a.order("S1", "ACME", Side::Sell, 7, px(1_010_000), gtc);
    for _ in 0..3 {
        assert_eq!(a.recv().req(150), "0");
    }

    sub.send_body(
        "V",
        "262=MD1|263=1|264=5|265=1|267=3|269=0|269=1|269=2|146=1|55=ACME|",
    );
    let mut other = Vec::new();
    let w = next_of(&mut sub, "W", &mut other);
    assert_eq!(w.req(262), "MD1");
    assert_eq!(w.req(55), "ACME");
    let s = |v: &str| v.to_string();
    assert_eq!(
        snapshot_entries(&w),
        [
            (s("0"), s("99.5"), s("5"), s("1")),
            (s("0"), s("99"), s("10"), s("1")),
            (s("1"), s("101"), s("7"), s("1")),
        ],
        "best first per side, no trade yet"
    );
    let mut book = snapshot_levels(&w);

    // A trade (the subscriber sells into B2), a cancel that empties a level, a new best bid.
    sub.order(
        "X1",
        "ACME",
        Side::Sell,
        3,
        px(995_000),
        TimeInForce::ImmediateOrCancel,
    );
    a.cancel("B1C", "B1", "ACME", Side::Buy);
    a.order("B3", "ACME", Side::Buy, 4, px(1_000_000), gtc);
    let want: Levels = [
        (("0", "100"), ("4", "1")),
        (("0", "99.5"), ("2", "1")),
        (("1", "101"), ("7", "1")),
    ]
    .into_iter()
    .map(|((t, p), (z, n))| ((s(t), s(p)), (s(z), s(n))))
    .collect();
    let mut trades = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while book != want {
        assert!(
            Instant::now() < deadline,
            "the refreshes did not rebuild the book: {book:?}, trades {trades:?}"
        );
        let x = next_of(&mut sub, "X", &mut other);
        assert_eq!(x.req(262), "MD1");
        trades.extend(apply(&mut book, &x, "ACME"));
    }
    assert_eq!(trades, [(s("99.5"), s("3"))], "the trade, once");
    // A fresh snapshot agrees with the book the refreshes built.
    sub.send_body("V", "262=MD2|263=0|264=5|267=2|269=0|269=1|146=1|55=ACME|");
    let w2 = next_of(&mut sub, "W", &mut other);
    assert_eq!(w2.req(262), "MD2");
    assert_eq!(snapshot_levels(&w2), book);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric_sum("appliance_fix_md_subscriptions") != 1.0 {
        assert!(Instant::now() < deadline, "one subscription is exported");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Refusals, each with its MDReqRejReason (an MDUpdateType other than 0 or 1 is outside
    // the dictionary's values: the session rejects it, 35=3, before it reaches here).
    for (body, reason) in [
        ("262=R0|263=1|264=5|267=1|269=0|146=1|55=NOPE|", "0"),
        ("262=MD1|263=1|264=5|267=1|269=0|146=1|55=ACME|", "1"),
        ("262=R5|263=1|264=0|267=1|269=0|146=1|55=ACME|", "5"),
        ("262=R7|263=1|264=1|266=N|267=1|269=0|146=1|55=ACME|", "7"),
        ("262=R8|263=1|264=1|267=2|269=0|269=7|146=1|55=ACME|", "8"),
    ] {
        sub.send_body("V", body);
        let y = next_of(&mut sub, "Y", &mut other);
        assert_eq!(y.req(281), reason, "{body}: {y:?}");
        assert_eq!(y.req(262), body[4..].split('|').next().unwrap());
        assert!(y.get(58).is_some(), "a text says why: {y:?}");
    }

    // Unsubscribed: no more refreshes; a second unsubscribe is refused.
    sub.send_body("V", "262=MD1|263=2|264=5|267=1|269=0|146=1|55=ACME|");
    std::thread::sleep(Duration::from_millis(200));
    a.order("B4", "ACME", Side::Buy, 1, px(980_000), gtc);
    while a.recv().get(11) != Some("B4") {}
    let quiet = Instant::now() + Duration::from_millis(500);
    while Instant::now() < quiet {
        if let Some(m) = sub.try_recv(Duration::from_millis(50)) {
            assert_ne!(m.msg_type, "X", "a refresh after the unsubscribe: {m:?}");
            other.push(m);
        }
    }
    sub.send_body("V", "262=MD1|263=2|264=5|267=1|269=0|146=1|55=ACME|");
    let y = next_of(&mut sub, "Y", &mut other);
    assert!(y.get(281).is_none(), "no reason code fits: {y:?}");
    assert!(y.req(58).contains("no subscription"), "{y:?}");
    // Nothing else came: no BusinessMessageReject, only the subscriber's own reports.
    assert!(
        other.iter().all(|m| m.msg_type == "8"),
        "unexpected messages: {other:#?}"
    );
    app.stop();
}

/// Reads every message waiting on `c` for `d`, applying X to the book of its MDReqID.
fn drain(c: &mut FixClient, d: Duration, seen: &mut Vec<FixMsg>) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if let Some(m) = c.try_recv(Duration::from_millis(20)) {
            seen.push(m);
        }
    }
}

#[test]
fn after_a_random_flow_incremental_and_full_refreshes_agree_with_a_fresh_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        dir.path(),
        "written",
        &[(
            "[binary]",
            "[[fix.sessions]]\ntarget_comp_id = \"WATCHER\"\n\n[binary]",
        )],
    );
    let mut app = App::start(&cfg);
    let mut a = FixClient::logon(app.fix, "CLIENT1");
    let mut inc = FixClient::logon(app.fix, "CLIENT2");
    let mut full = FixClient::logon(app.fix, "WATCHER");
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);

    // Depth 3: levels keep entering and leaving the top.
    inc.send_body(
        "V",
        "262=INC|263=1|264=3|265=1|267=3|269=0|269=1|269=2|146=2|55=ACME|55=BOLT|",
    );
    full.send_body(
        "V",
        "262=FULL|263=1|264=3|265=0|267=2|269=0|269=1|146=1|55=ACME|",
    );
    let mut seen_inc = Vec::new();
    let mut seen_full = Vec::new();
    let mut books: BTreeMap<String, Levels> = BTreeMap::new();
    for _ in 0..2 {
        let w = next_of(&mut inc, "W", &mut seen_inc);
        books.insert(w.req(55).to_string(), snapshot_levels(&w));
    }
    let mut last_full = next_of(&mut full, "W", &mut seen_full);

    // A deterministic pseudo-random flow: FIX CLIENT1 and binary CLIENT2 (two firms: they
    // trade with each other) enter limit orders around each reference price; CLIENT1 also
    // cancels some of its own.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut live: Vec<(String, &str, Side)> = Vec::new();
    let (mut fix_orders, mut bin_orders) = (0usize, 0usize);
    for i in 0..400 {
        let (sym, base, tick) = if next() % 3 == 0 {
            ("BOLT", 500_000i64, 100i64)
        } else {
            ("ACME", 1_000_000i64, 100i64)
        };
        let side_buy = next() % 2 == 0;
        let off = (next() % 9) as i64 * tick * 25;
        let price = if side_buy {
            base - off
        } else {
            base + off - 2 * tick * 25
        };
        let qty = 1 + next() % 9;
        match next() % 5 {
            0 if !live.is_empty() => {
                let k = (next() as usize) % live.len();
                let (orig, s, sd) = live.swap_remove(k);
                a.cancel(&format!("C{i}"), &orig, s, sd);
            }
            1 | 2 => {
                let side = if side_buy { b'B' } else { b'S' };
                b.send(support::enter(i as u64 + 1, sym, side, price, qty, b'1'));
                bin_orders += 1;
            }
            _ => {
                let cl = format!("O{i}");
                let side = if side_buy { Side::Buy } else { Side::Sell };
                a.order(&cl, sym, side, qty, px(price), TimeInForce::GoodTillCancel);
                live.push((cl, sym, side));
                fix_orders += 1;
            }
        }
        if i % 10 == 0 {
            // Keep everyone's socket drained (and let the gateway make passes: the
            // refreshes are conflated per pass).
            drain(&mut inc, Duration::from_millis(5), &mut seen_inc);
            drain(&mut full, Duration::from_millis(5), &mut seen_full);
            a.pump();
            while b.try_recv(Duration::from_millis(1)).is_some() {}
        }
    }
    assert!(fix_orders > 100 && bin_orders > 100);
    // Everything processed: CLIENT1's last message answered.
    a.order(
        "LAST",
        "ACME",
        Side::Buy,
        1,
        px(900_000),
        TimeInForce::GoodTillCancel,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "CLIENT1's LAST not acknowledged");
        if let Some(m) = a.try_recv(Duration::from_millis(50)) {
            if m.get(11) == Some("LAST") {
                break;
            }
        }
    }
    while b.try_recv(Duration::from_millis(50)).is_some() {}
    inc.send_body(
        "V",
        "262=END|263=0|264=3|267=2|269=0|269=1|146=2|55=ACME|55=BOLT|",
    );
    full.send_body("V", "262=END|263=0|264=3|267=2|269=0|269=1|146=1|55=ACME|");
    // Every refresh sent before the answer to END describes the book END describes.
    let mut fresh: BTreeMap<String, Levels> = BTreeMap::new();
    let (mut xs, mut trades) = (0usize, 0usize);
    let mut pending: std::collections::VecDeque<FixMsg> = seen_inc.drain(..).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fresh.len() < 2 {
        assert!(Instant::now() < deadline, "no END snapshots");
        let m = match pending.pop_front() {
            Some(m) => m,
            None => match inc.try_recv(Duration::from_millis(100)) {
                Some(m) => m,
                None => continue,
            },
        };
        match (m.msg_type.as_str(), m.get(262)) {
            ("X", Some("INC")) => {
                let sym = m.req(55).to_string();
                let book = books.get_mut(&sym).expect("a subscribed symbol");
                trades += apply(book, &m, &sym).len();
                xs += 1;
            }
            ("W", Some("END")) => {
                fresh.insert(m.req(55).to_string(), snapshot_levels(&m));
            }
            ("8", _) => {}
            _ => panic!("unexpected on the incremental subscriber: {m:?}"),
        }
    }
    assert!(xs > 50, "{xs} incremental refreshes");
    assert!(trades > 0, "the two firms traded");
    for sym in ["ACME", "BOLT"] {
        assert_eq!(
            books[sym], fresh[sym],
            "{sym}: refreshes vs a fresh snapshot"
        );
        let sides = |t: &str| books[sym].keys().filter(|k| k.0 == t).count();
        assert!(
            sides("0") <= 3 && sides("1") <= 3,
            "{sym}: at most 3 levels a side"
        );
    }
    assert!(!fresh["ACME"].is_empty() && !fresh["BOLT"].is_empty());

    // The full-refresh subscriber's last W is the book as END shows it.
    let mut pending: std::collections::VecDeque<FixMsg> = seen_full.drain(..).collect();
    let mut fulls = 0;
    let end = loop {
        assert!(Instant::now() < deadline, "no END snapshot for WATCHER");
        let m = match pending.pop_front() {
            Some(m) => m,
            None => match full.try_recv(Duration::from_millis(100)) {
                Some(m) => m,
                None => continue,
            },
        };
        match (m.msg_type.as_str(), m.get(262)) {
            ("W", Some("FULL")) => {
                last_full = m;
                fulls += 1;
            }
            ("W", Some("END")) => break m,
            _ => panic!("unexpected on the full-refresh subscriber: {m:?}"),
        }
    };
    assert!(fulls > 10, "{fulls} full refreshes");
    assert_eq!(snapshot_levels(&last_full), snapshot_levels(&end));
    assert_eq!(snapshot_levels(&end), fresh["ACME"]);
    app.stop();
}

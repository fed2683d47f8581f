//! A session that has sent or received Logout accepts no further application messages:
//! - FIX: at shutdown the appliance sends Logout; an order the client sends before answering
//!   it gets a BusinessMessageReject (380=4, application not available), is not applied and
//!   not journaled, and the reject is (it comes back on a ResendRequest);
//! - binary: an order right behind the client's own Logout, in the same write, is not applied
//!   and its sequence number is not consumed (the next login asks for it again).

#[path = "support/fixclient.rs"]
mod fixclient;
#[path = "support/net.rs"]
mod net;

use appliance::binary::wire::{self, ClientMessage, ServerMessage};
use appliance::config::IoBackend;
use appliance::journal::{self, JournalReader};
use appliance::recovery::records::{kind, CommandRecord};
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use net::{journaled_config, start, BinClient};
use std::io::Write;
use std::time::Duration;

/// Client order ids of every COMMAND in the journal.
fn journaled_ids(dir: &std::path::Path) -> Vec<String> {
    let report = journal::scan(dir).unwrap();
    let mut r = JournalReader::new(&report, report.first_seq().unwrap()).unwrap();
    let mut ids = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        if rec.kind == kind::COMMAND {
            let c = CommandRecord::decode(rec.payload).unwrap();
            ids.push(String::from_utf8_lossy(c.origin.id()).into_owned());
        }
    }
    ids
}

fn field<'a>(msg: &'a str, tag: &str) -> Option<&'a str> {
    msg.split('\u{1}')
        .find_map(|f| f.strip_prefix(tag).and_then(|v| v.strip_prefix('=')))
}

#[test]
fn fix_order_after_the_appliances_logout_is_refused_not_applied() {
    let (cfg, journal_dir) = journaled_config();
    let app = start(&cfg, IoBackend::Auto);
    let mut c = FixClient::logon(app.fix_addr, "CLIENT1");
    c.order(
        "EARLY",
        "ACME",
        Side::Buy,
        5,
        Some(990_000),
        TimeInForce::GoodTillCancel,
    );
    assert_eq!(c.recv().req(150), "0");
    let late = c.order_bytes("LATE", "ACME", Side::Buy, 5, 990_000);
    let late_seq = field(std::str::from_utf8(&late).unwrap(), "34")
        .unwrap()
        .to_string();

    // Shutdown: the appliance logs the session out; the client sends an order before it
    // answers the Logout.
    app.request_stop();
    let got = c.read_raw_until(b"\x0135=5\x01", Duration::from_secs(10));
    assert!(
        got.windows(6).any(|w| w == b"\x0135=5\x01"),
        "the appliance's Logout: {}",
        String::from_utf8_lossy(&got)
    );
    c.stream.write_all(&late).unwrap();
    let got = c.read_raw_until(b"\x0135=j\x01", Duration::from_secs(10));
    let text = String::from_utf8_lossy(&got).into_owned();
    let bmr = text
        .split("8=FIX.4.4")
        .find(|m| field(m, "35") == Some("j"))
        .unwrap_or_else(|| panic!("a BusinessMessageReject for the late order: {text}"));
    assert_eq!(
        field(bmr, "380"),
        Some("4"),
        "application not available: {bmr}"
    );
    assert_eq!(field(bmr, "45"), Some(late_seq.as_str()), "{bmr}");
    assert_eq!(field(bmr, "372"), Some("D"), "{bmr}");
    assert!(
        !text
            .split("8=FIX.4.4")
            .any(|m| field(m, "35") == Some("8") && field(m, "11") == Some("LATE")),
        "no ExecutionReport for the late order: {text}"
    );
    let stopped = app.stop();
    assert_eq!(stopped.journal_error, None);
    assert_eq!(stopped.replica_hash, Some(stopped.state_hash));

    let ids = journaled_ids(journal_dir.path());
    assert!(ids.iter().any(|i| i == "EARLY"), "{ids:?}");
    assert!(
        !ids.iter().any(|i| i == "LATE"),
        "the late order was not applied: {ids:?}"
    );
}

#[test]
fn binary_order_behind_the_clients_logout_is_not_applied() {
    let (cfg, _journal_dir) = journaled_config();
    let app = start(&cfg, IoBackend::Auto);
    let mut c = BinClient::login(app.binary_addr, "CLIENT1");
    let order = |token| {
        ClientMessage::EnterOrder(wire::EnterOrder {
            token,
            symbol: wire::symbol("ACME").unwrap(),
            price: 990_000,
            qty: 5,
            side: b'B',
            ord_type: b'L',
            tif: b'1',
            flags: 0,
            stp: 0,
        })
    };
    c.send(order(1));
    assert!(matches!(c.recv(), ServerMessage::Accepted(_)));
    // Logout, then an order, in one write.
    let mut b = [0u8; 2 * wire::MAX_FRAME_LEN];
    let n = ClientMessage::Logout(wire::LogoutRequest {})
        .encode(0, &mut b)
        .unwrap();
    let late_seq = c.seq + 1;
    let m = order(2).encode(late_seq, &mut b[n..]).unwrap();
    c.write_raw(&b[..n + m]);
    let mut saw_logout = false;
    while let Some(msg) = c.try_recv(Duration::from_secs(3)) {
        match msg {
            ServerMessage::Logout(_) => saw_logout = true,
            other => panic!("nothing but the Logout answer after a Logout: {other:?}"),
        }
    }
    assert!(saw_logout);
    // The next login expects the late order's number again: it was not consumed.
    let again = BinClient::login(app.binary_addr, "CLIENT1");
    assert_eq!(again.seq + 1, late_seq, "next_client_seq");
    let stopped = app.stop();
    assert_eq!(stopped.replica_hash, Some(stopped.state_hash));
}

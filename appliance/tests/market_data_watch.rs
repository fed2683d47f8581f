//! `appliance watch --once` against the real binary: orders entered before it starts reach it
//! by snapshot (it joins late), orders and a trade while it runs by the live feed; the text it
//! prints shows each book's ladder with the instrument's decimals, sizes and order counts, the
//! last trade and the feed's state.

#[path = "support/app.rs"]
mod app;
#[path = "support/net.rs"]
mod net;
mod support;

use app::{config_file, App};
use appliance::binary::wire::ServerMessage;
use net::BinClient;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The recovery service's address, from the appliance's log.
fn recovery_addr(app: &App) -> std::net::SocketAddr {
    let log = app.log();
    let key = "recovery service on ";
    let line = log
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no recovery service in the log:\n{log}"));
    let at = line.find(key).unwrap() + key.len();
    line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap()
}

fn accepted(c: &mut BinClient, token: u64) {
    match c.recv() {
        ServerMessage::Accepted(a) if a.token == token => {}
        other => panic!("order {token}: {other:?}"),
    }
}

/// The words of the first line of `text` holding `needle`.
fn words<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
        .split_whitespace()
        .collect()
}

/// The words around `w` in `words`: `before` words before it, `after` words after it.
fn around<'a>(words: &[&'a str], w: &str, before: usize, after: usize) -> Vec<&'a str> {
    let at = words
        .iter()
        .position(|x| *x == w)
        .unwrap_or_else(|| panic!("no {w} in {words:?}"));
    words[at - before..=at + after].to_vec()
}

#[test]
fn watch_once_shows_the_books_joined_by_snapshot_and_followed_live() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let cfg = config_file(
        dir.path(),
        "written",
        &[(
            "destinations = [\"127.0.0.1:9200\"]",
            &format!("destinations = [\"127.0.0.1:{port}\"]"),
        )],
    );
    let mut app = App::start(&cfg);
    let recovery = recovery_addr(&app);
    let mut a = BinClient::login_with_heartbeat(app.binary, "CLIENT1", 60_000);
    let mut b = BinClient::login_with_heartbeat(app.binary, "CLIENT2", 60_000);

    // Before `watch` starts: only a snapshot can tell it about these.
    a.send(support::enter(1, "ACME", b'B', 990_000, 10, b'1'));
    accepted(&mut a, 1);
    a.send(support::enter(2, "ACME", b'B', 985_000, 6, b'1'));
    accepted(&mut a, 2);
    b.send(support::enter(3, "ACME", b'S', 1_010_000, 4, b'1'));
    accepted(&mut b, 3);
    b.send(support::enter(4, "ACME", b'S', 1_010_000, 5, b'1'));
    accepted(&mut b, 4);

    let watch = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(["watch", "--once", "--for", "3", "--levels", "3", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--recovery")
        .arg(recovery.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("appliance watch starts");

    // While it watches: a new order on another book, and a trade (CLIENT1 buys 2 of the
    // first ask at 101.0000).
    std::thread::sleep(Duration::from_millis(1_200));
    a.send(support::enter(5, "BOLT", b'B', 490_000, 3, b'1'));
    accepted(&mut a, 5);
    a.send(support::enter(6, "ACME", b'B', 1_010_000, 2, b'1'));
    while a.try_recv(Duration::from_millis(300)).is_some() {}

    let out = watch.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    println!("{stdout}");

    // ACME's ladder: the best bid 99.0000 (one order, 10) beside the best ask 101.0000 (two
    // orders, 4 - 2 + 5 = 7), then 98.5000 (6) with no second ask level.
    let acme = stdout.find("ACME").expect("ACME's book");
    let acme_text = &stdout[acme..];
    assert!(words(acme_text, "ACME").join(" ").contains("4 decimals"));
    let best = words(acme_text, "99.0000");
    assert_eq!(
        around(&best, "99.0000", 2, 3),
        ["1", "10", "99.0000", "101.0000", "7", "2"],
        "{stdout}"
    );
    let second = words(acme_text, "98.5000");
    assert_eq!(around(&second, "98.5000", 2, 0), ["1", "6", "98.5000"]);
    // The trade seen live: 2 at 101.0000, the aggressor a buyer.
    let trade = words(acme_text, " buy");
    assert_eq!(
        &around(&trade, "buy", 3, 0)[..2],
        ["101.0000", "2"],
        "{stdout}"
    );
    // BOLT's order, entered while watching.
    let bolt = words(
        &stdout[stdout.find("BOLT").expect("BOLT's book")..],
        "49.0000",
    );
    assert_eq!(around(&bolt, "49.0000", 2, 0), ["1", "3", "49.0000"]);
    // The feed's state: joined by snapshot (the four orders before it started).
    let snap = words(&stdout, "snapshot:").join(" ");
    assert!(
        snap.contains("used") && snap.contains("(4 orders)"),
        "{stdout}"
    );
    assert!(words(&stdout, "gaps").join(" ").contains("0 unrepaired"));
    assert!(stdout.contains("live"), "{stdout}");

    // Nothing on a port where nothing is published: exit 1, and a message.
    let quiet = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let out = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(["watch", "--once", "--for", "0.5", "--listen"])
        .arg(format!("127.0.0.1:{quiet}"))
        .arg("--recovery")
        .arg(recovery.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no packet arrived"));

    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

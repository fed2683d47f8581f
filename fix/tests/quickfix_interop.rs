//! Interoperability with an independent engine: a QuickFIX initiator (PyPI `quickfix-ssl`,
//! `import quickfix`) against an acceptor built on this crate, over loopback TCP.
//!
//! The Python side (`quickfix_initiator.py`) logs on, idles for heartbeats, sends a
//! TestRequest, sends orders and receives ExecutionReports that QuickFIX validates against its
//! own FIX44.xml (it calls the application only for valid messages and sends a Reject for
//! invalid ones), goes through a ResendRequest in each direction, logs out, reconnects with
//! sequence numbers continuing and logs out again; this test asserts every outcome.

#[path = "../examples/support/tcp_acceptor.rs"]
mod tcp_acceptor;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fix::app::outbound::{ExecType, ExecutionReport, Id, OrdStatus};
use fix::app::{price, NewOrderSingle};
use fix::session::{BusinessRejectReason, FileStore, Session, SessionConfig};
use fix::{Acceptor, Message, TimePrecision};
use serde_json::Value;
use tcp_acceptor::App;

/// A tiny venue: acks and fully fills every valid limit order at its price; rejects a price
/// that is not on the 0.01 tick with an ExecutionReport; "loses" the ack of orders whose
/// ClOrdID starts with LOSE so the counterparty has to ask for a resend.
struct Venue {
    next_id: u64,
    events: Arc<Mutex<Vec<String>>>,
}

impl Venue {
    fn report<'a>(&mut self, o: &NewOrderSingle<'a>, now: u64) -> ExecutionReport<'a> {
        self.next_id += 1;
        ExecutionReport {
            order_id: Id::Num(self.next_id),
            cl_ord_id: o.cl_ord_id,
            orig_cl_ord_id: None,
            exec_id: Id::Num(self.next_id),
            exec_type: ExecType::New,
            ord_status: OrdStatus::New,
            ord_rej_reason: None,
            account: o.account,
            symbol: o.symbol,
            side: o.side,
            order_qty: Some(o.order_qty),
            ord_type: Some(o.ord_type),
            price: None,
            time_in_force: Some(o.time_in_force),
            last_qty: None,
            last_px: None,
            leaves_qty: o.order_qty,
            cum_qty: 0,
            avg_px: 0,
            avg_px_decimals: 4,
            price_scale: 4,
            transact_time: now,
            time_precision: TimePrecision::Micros,
            text: None,
            copy_msg_indicator: false,
        }
    }
}

impl App<FileStore> for Venue {
    fn on_message(
        &mut self,
        session: &mut Session<FileStore>,
        msg: &Message<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        if msg.msg_type() != b"D" {
            let _ = session.send_business_reject(
                msg,
                BusinessRejectReason::UnsupportedMessageType,
                None,
                None,
                now,
                out,
            );
            return;
        }
        let order = match NewOrderSingle::decode(msg) {
            Ok(o) => o,
            Err(r) => {
                let _ = session.send_business_reject(
                    msg,
                    r.business_reason(),
                    Some(r.tag()),
                    None,
                    now,
                    out,
                );
                return;
            }
        };
        match price::limit_price(order.price.unwrap_or(b""), 4, 100) {
            Err(e) => {
                let mut er = self.report(&order, now);
                er.order_id = Id::Text(b"NONE");
                er.exec_type = ExecType::Rejected;
                er.ord_status = OrdStatus::Rejected;
                er.ord_rej_reason = Some(99);
                er.leaves_qty = 0;
                er.text = Some(b"price not on tick");
                session.send(&er, now, out).expect("send reject");
                self.on_event(&format!(
                    "rejected {:?}: {e:?}",
                    String::from_utf8_lossy(order.cl_ord_id)
                ));
            }
            Ok(px) => {
                let mut ack = self.report(&order, now);
                ack.price = Some(px);
                let mut lost = Vec::new();
                let dest = if order.cl_ord_id.starts_with(b"LOSE") {
                    &mut lost
                } else {
                    &mut *out
                };
                session.send(&ack, now, dest).expect("send ack");
                let mut fill = self.report(&order, now);
                fill.order_id = ack.order_id;
                fill.price = Some(px);
                fill.exec_type = ExecType::Trade;
                fill.ord_status = OrdStatus::Filled;
                fill.last_qty = Some(order.order_qty);
                fill.last_px = Some(px);
                fill.leaves_qty = 0;
                fill.cum_qty = order.order_qty;
                fill.avg_px = px;
                session.send(&fill, now, out).expect("send fill");
            }
        }
    }
    fn on_event(&mut self, what: &str) {
        if let Ok(mut e) = self.events.lock() {
            e.push(what.to_string());
        }
    }
}

fn reports_for<'a>(v: &'a Value, cl: &str) -> Vec<&'a Vec<Value>> {
    v["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r.as_array())
        .filter(|r| r[0] == cl)
        .collect()
}

fn kinds(rs: &[&Vec<Value>]) -> Vec<(String, String, String)> {
    rs.iter()
        .map(|r| {
            (
                r[1].as_str().unwrap().to_string(),
                r[2].as_str().unwrap().to_string(),
                r[3].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn quickfix_initiator_against_our_acceptor() {
    let probe = Command::new("python3")
        .args(["-c", "import quickfix"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!("QuickFIX for Python is not installed: run `pip install quickfix-ssl` (scripts/ci/lib.sh does)"),
    }
    let work = std::env::temp_dir().join(format!("fix-qf-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let cfg = SessionConfig::acceptor("ISLD", "QFCLIENT");
    let store = FileStore::open(&work.join("acceptor"), "ISLD-QFCLIENT").unwrap();
    let mut acceptor = Acceptor::new();
    acceptor.add(Session::new(cfg, store));
    let events = Arc::new(Mutex::new(Vec::new()));
    let server = tcp_acceptor::spawn(
        acceptor,
        Venue {
            next_id: 0,
            events: events.clone(),
        },
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/quickfix_initiator.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(server.addr.port().to_string())
        .arg(work.join("initiator"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    // Bounded: the script finishes in ~15 s; kill it after 120 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("QuickFIX initiator did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    server.stop();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or("");
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("no JSON from the initiator ({e}); stdout: {stdout}; stderr: {stderr}")
    });
    let ev = events.lock().unwrap().clone();
    eprintln!("QuickFIX initiator observed: {v}");
    assert!(
        v.get("error").is_none(),
        "initiator failed: {v}\nacceptor events: {ev:?}\nstderr: {stderr}"
    );
    assert!(output.status.success(), "{v}");

    // Logon, heartbeats, test request.
    assert_eq!(v["logons"], 2, "{v}");
    assert!(
        v["heartbeats_received"].as_u64().unwrap() >= 2,
        "idle heartbeats: {v}"
    );
    assert_eq!(v["test_request_answered"], true);
    // Every report passed QuickFIX's FIX44 validation: it sent no Reject and got none.
    assert_eq!(v["rejects_sent_by_quickfix"], 0, "{v}");
    assert_eq!(v["rejects_received"], 0, "{v}");
    for i in 0..5 {
        let cl = format!("ORD-{i}");
        let k = kinds(&reports_for(&v, &cl));
        assert_eq!(
            k,
            vec![
                ("0".into(), "0".into(), "N".into()),
                ("F".into(), "2".into(), "N".into())
            ],
            "{cl}: {v}"
        );
    }
    assert_eq!(
        kinds(&reports_for(&v, "BAD-TICK")),
        vec![("8".into(), "8".into(), "N".into())]
    );
    // Resend served by us: QuickFIX asked, got the lost ack as PossDup, then the fill.
    assert!(
        !v["resend_requests_out"].as_array().unwrap().is_empty(),
        "{v}"
    );
    assert_eq!(
        kinds(&reports_for(&v, "LOSE-1")),
        vec![
            ("0".into(), "0".into(), "Y".into()),
            ("F".into(), "2".into(), "N".into())
        ],
        "{v}"
    );
    // Resend served by QuickFIX: we asked after it skipped sequence numbers, and carried on.
    assert!(
        !v["resend_requests_in"].as_array().unwrap().is_empty(),
        "{v}"
    );
    assert_eq!(kinds(&reports_for(&v, "AFTER-GAP")).len(), 2, "{v}");
    // Logout, reconnect: both sides continue their sequence numbers.
    assert_eq!(v["logouts"], 2, "{v}");
    let seq_out: Vec<u64> = v["logon_seq_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let seq_in: Vec<u64> = v["logon_seq_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(seq_out.len(), 2, "{v}");
    assert_eq!(seq_in.len(), 2, "{v}");
    assert_eq!(seq_out[0], 1);
    assert_eq!(seq_in[0], 1);
    // The Logon of the second connection carries the number right after the Logout that
    // ended the first one, on both sides: nothing was reset or skipped.
    let nums = |k: &str| -> Vec<u64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    let (lo_out, lo_in) = (nums("logout_seq_out"), nums("logout_seq_in"));
    assert!(!lo_out.is_empty() && !lo_in.is_empty(), "{v}");
    assert_eq!(seq_out[1], lo_out[0] + 1, "initiator continues: {v}");
    assert_eq!(seq_in[1], lo_in[0] + 1, "acceptor continues: {v}");
    assert!(
        seq_in[1] > v["first_connection"]["target"].as_u64().unwrap(),
        "{v}"
    );
    assert_eq!(kinds(&reports_for(&v, "AGAIN")).len(), 2, "{v}");
    let _ = std::fs::remove_dir_all(&work);
}

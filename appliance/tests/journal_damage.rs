//! Torn and damaged journals of the real appliance, and what each gives (the outcomes
//! docs/durability.md documents):
//! - the last record cut at every byte (a crash in the middle of a write: the bytes after the
//!   cut are zeros in a preallocated segment), or its payload damaged: a torn tail. `journal
//!   verify` exits 1; a start cuts it at the record's first byte, logs it, exports
//!   `appliance_journal_torn_tail_cut_bytes`, and the state is the one before that record;
//! - a byte flipped in a record followed by good records: damage. `journal verify` exits 2
//!   naming the file and byte offset; a start refuses, naming them too.

#[path = "support/app.rs"]
mod app;
#[path = "support/fixclient.rs"]
mod fixclient;

use app::{config_file, App};
use appliance::config::Config;
use appliance::journal::{self, JournalReader};
use appliance::recovery::recover::recover;
use appliance::recovery::tool;
use fix::app::{Side, TimeInForce};
use fixclient::FixClient;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A journal written by the real appliance (orders acknowledged, then SIGKILL): its
/// configuration file, the journal directory and the client (its session state kept).
fn crashed_journal(dir: &Path) -> (PathBuf, PathBuf, FixClient) {
    let cfg = config_file(
        dir,
        "written",
        &[("max_orders = 262_144", "max_orders = 16_384")],
    );
    let mut app = App::start(&cfg);
    let mut c = FixClient::logon(app.fix, "CLIENT1");
    for i in 0..20 {
        c.order(
            &format!("O{i}"),
            "ACME",
            Side::Buy,
            1 + i,
            Some(990_000 - 100 * i as i64),
            TimeInForce::GoodTillCancel,
        );
        assert_eq!(c.recv().req(150), "0");
    }
    app.kill9();
    (cfg, dir.join("journal"), c)
}

/// (segment, frame offset, frame length incl. padding, seq) of every record.
fn frames(journal: &Path) -> Vec<(PathBuf, u64, u64, u64)> {
    let report = journal::scan(journal).unwrap();
    let mut r = JournalReader::new(&report, report.first_seq().unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        let len = journal::format::frame_len(rec.payload.len()) as u64;
        out.push((rec.segment.to_path_buf(), rec.offset, len, rec.seq));
    }
    out
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
    f.sync_all().unwrap();
}

fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let f = OpenOptions::new().read(true).open(path).unwrap();
    let mut b = vec![0u8; len as usize];
    f.read_exact_at(&mut b, offset).unwrap();
    b
}

fn verify(journal: &Path) -> (i32, String) {
    let mut out = Vec::new();
    let code = tool::verify(journal, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

fn appliance(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_appliance"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_last_record_cut_at_every_byte_is_a_torn_tail_cut_at_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg_path, journal, _) = crashed_journal(dir.path());
    let cfg = Config::load(&cfg_path).unwrap();
    let all = frames(&journal);
    let n = all.len() as u64;
    assert!(n > 40, "{n} records");
    let (seg, start, len, last_seq) = all.last().cloned().unwrap();
    let original = read_at(&seg, start, len);
    assert_eq!(verify(&journal).0, 0, "{}", verify(&journal).1);
    let full = recover(&cfg, &journal, false).unwrap().report;
    assert_eq!((full.records, full.torn_tail.is_none()), (n, true));

    // The state without the last record: the record entirely absent (zeros).
    write_at(&seg, start, &vec![0u8; len as usize]);
    let (code, text) = verify(&journal);
    assert_eq!(
        code, 0,
        "a journal that simply ends earlier is intact: {text}"
    );
    let before = recover(&cfg, &journal, false).unwrap().report;
    assert_eq!(before.records, n - 1);

    // Only the first k bytes of the last frame were written, for every k.
    for k in 1..len {
        let mut partial = original.clone();
        partial[k as usize..].iter_mut().for_each(|b| *b = 0);
        write_at(&seg, start, &partial);
        if partial == original {
            // The rest of the frame is zeros anyway (padding): the record is whole.
            write_at(&seg, start, &original);
            continue;
        }
        let (code, text) = verify(&journal);
        assert_eq!(code, 1, "cut at byte {k} of {len}: {text}");
        assert!(
            text.contains(&format!("byte {start}")),
            "cut at {k}: names the record's offset: {text}"
        );
        let r = recover(&cfg, &journal, false).unwrap().report;
        let cut = r
            .torn_tail
            .as_ref()
            .unwrap_or_else(|| panic!("cut at {k}: a torn tail was cut"));
        assert_eq!(
            (cut.offset, cut.last_good_seq),
            (start, last_seq - 1),
            "cut at {k}"
        );
        assert_eq!(r.records, n - 1, "cut at {k}");
        assert_eq!(
            r.state_hash, before.state_hash,
            "cut at {k}: the state before the torn record"
        );
        assert_eq!(verify(&journal).0, 0, "cut at {k}: clean after the cut");
        // Put the record back for the next cut.
        write_at(&seg, start, &original);
    }
    assert_eq!(verify(&journal).0, 0);
    assert_eq!(
        recover(&cfg, &journal, false).unwrap().report.state_hash,
        full.state_hash
    );
}

#[test]
fn the_real_binary_cuts_a_torn_tail_logs_and_exports_it_and_keeps_the_orders() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg_path, journal, mut c) = crashed_journal(dir.path());
    let (seg, start, len, _) = frames(&journal).last().cloned().unwrap();
    // Half of the last frame written, then garbage that is not a frame.
    let mut torn = read_at(&seg, start, len);
    let half = (len / 2) as usize;
    torn[half..].iter_mut().for_each(|b| *b = 0xa5);
    write_at(&seg, start, &torn);
    let dir_arg = journal.display().to_string();
    let (code, out, err) = appliance(&["journal", "verify", "--dir", &dir_arg]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("TORN TAIL") && out.contains(&seg.display().to_string()),
        "{out}"
    );

    let mut app = App::start(&cfg_path);
    let log = app.log();
    assert!(
        log.contains("torn tail cut") && log.contains(&format!("offset {start}")),
        "{log}"
    );
    let metrics = app.http_get("/metrics");
    let cut: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("appliance_journal_torn_tail_cut_bytes "))
        .unwrap_or_else(|| panic!("metric exported:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(cut > 0.0, "{cut}");
    // The acknowledged orders are live: cancel one.
    assert!(
        c.reconnect(app.fix),
        "logon after the restart:\n{}",
        app.log()
    );
    c.pump_for(Duration::from_millis(300));
    c.received.clear();
    c.cancel("X0", "O0", "ACME", Side::Buy);
    let m = c.recv();
    assert_eq!((m.msg_type.as_str(), m.get(150)), ("8", Some("4")), "{m:?}");
    let (code, log) = app.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_flipped_byte_before_good_records_stops_the_start_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg_path, journal, _) = crashed_journal(dir.path());
    let all = frames(&journal);
    let (seg, start, _, _) = all[all.len() / 2].clone();
    // A byte of the payload (after the 24-byte frame header).
    let at = start + 24 + 1;
    let b = read_at(&seg, at, 1)[0];
    write_at(&seg, at, &[b ^ 0x40]);

    let dir_arg = journal.display().to_string();
    let (code, out, err) = appliance(&["journal", "verify", "--dir", &dir_arg]);
    assert_eq!(code, Some(2), "{out}{err}");
    let names =
        |s: &str| s.contains(&seg.display().to_string()) && s.contains(&format!("byte {start}"));
    assert!(
        names(&out),
        "verify names the file and the record's offset: {out}"
    );

    let cfg_arg = cfg_path.display().to_string();
    let (code, out, err) = appliance(&["run", "--config", &cfg_arg, "--run-for", "5"]);
    assert!(
        code.is_some_and(|c| c != 0),
        "the appliance refuses to start on a damaged journal: {code:?}\n{out}{err}"
    );
    assert!(names(&err), "the error names the file and offset:\n{err}");
    // Nothing was changed: the damage is still there for an operator to look at.
    assert_eq!(read_at(&seg, at, 1)[0], b ^ 0x40);
}

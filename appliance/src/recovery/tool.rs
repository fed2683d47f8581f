//! `appliance journal verify|inspect|replay`: the journal, offline (cold path). None of them
//! changes the journal: a torn tail is reported, not cut (the next start cuts it).
//!
//! Exit codes (scripts rely on them):
//! - `verify`: 0 every record and snapshot is intact; 1 the last segment ends in a torn
//!   record (a crash during a write: the next start cuts it, nothing acknowledged is lost);
//!   2 damage the appliance refuses to start on (the message names the file and byte offset),
//!   or a record that does not decode.
//! - `inspect`, `replay`: 0, or 2 with the reason.

use super::records::{
    decode_stop, kind, CommandRecord, ControlAction, ControlRecord, OutHeader, SeqRecord,
    StartRecord, RECORD_VERSION,
};
use super::recover::{recover_with, RecoverOptions, SnapshotChoice};
use crate::config::Config;
use crate::journal::{self, JournalReader, ScanReport};
use crate::vocab::Protocol;
use std::io::Write;
use std::path::Path;

/// Name of a record kind.
pub fn kind_name(k: u16) -> &'static str {
    match k {
        kind::COMMAND => "COMMAND",
        kind::OUT => "OUT",
        kind::SEQ => "SEQ",
        kind::START => "START",
        kind::STOP => "STOP",
        kind::CONTROL => "CONTROL",
        _ => "UNKNOWN",
    }
}

/// Decodes a record's payload into one readable line (errors say what does not decode).
pub fn describe(k: u16, payload: &[u8]) -> Result<String, String> {
    match k {
        kind::COMMAND => {
            let r = CommandRecord::decode(payload).map_err(|e| e.to_string())?;
            let origin = if r.origin.gateway == crate::rings::msg::NO_GATEWAY {
                "origin none".to_string()
            } else {
                format!(
                    "origin gateway {} session {} in_seq {} id {:?}",
                    r.origin.gateway,
                    r.origin.session,
                    r.origin.in_seq,
                    String::from_utf8_lossy(r.origin.id())
                )
            };
            Ok(format!(
                "engine {} engine_seq {} {origin} {:?}",
                r.engine, r.engine_seq, r.command
            ))
        }
        kind::OUT => {
            let (h, msg) = OutHeader::decode(payload).map_err(|e| e.to_string())?;
            let cause = match h.cause {
                Some(c) => format!(
                    "cause engine {} engine_seq {} reply {}",
                    c.engine, c.engine_seq, c.ordinal
                ),
                None => "cause none".into(),
            };
            let text = if h.protocol as usize == Protocol::Fix.index() {
                String::from_utf8_lossy(msg).replace('\u{1}', "|")
            } else {
                let t = msg.get(2).map_or('?', |&b| b as char);
                format!("binary type '{t}' {} bytes {}", msg.len(), hex(msg, 24))
            };
            Ok(format!(
                "gateway {} session {} seq {} {cause} exec_counter {}: {text}",
                h.gateway, h.session, h.seq, h.exec_counter
            ))
        }
        kind::SEQ => {
            let r = SeqRecord::decode(payload).map_err(|e| e.to_string())?;
            Ok(format!(
                "gateway {} session {} next_out {} next_in {}{}",
                r.gateway,
                r.session,
                r.next_out,
                r.next_in,
                if r.reset { " reset" } else { "" }
            ))
        }
        kind::START => {
            let r = StartRecord::decode(payload).map_err(|e| e.to_string())?;
            if r.version != RECORD_VERSION {
                return Err(format!(
                    "record format version {}, this build reads {RECORD_VERSION}",
                    r.version
                ));
            }
            Ok(format!(
                "version {} config fingerprint {:016x} wall_ns {}",
                r.version, r.fingerprint, r.wall_ns
            ))
        }
        kind::STOP => {
            let h = decode_stop(payload).map_err(|e| e.to_string())?;
            Ok(format!("state hash {h:016x}"))
        }
        kind::CONTROL => {
            let r = ControlRecord::decode(payload).map_err(|e| e.to_string())?;
            let what = match (r.action, r.on) {
                (ControlAction::KillSwitch, true) => "kill switch engaged for session",
                (ControlAction::KillSwitch, false) => "kill switch lifted for session",
                (ControlAction::Halt, true) => "halted instrument",
                (ControlAction::Halt, false) => "resumed instrument",
                (ControlAction::Disconnect, _) => "disconnected session",
                (ControlAction::Cancel, _) => "cancelled the working orders of session",
                (ControlAction::Reload, _) => "reloaded the configuration of session",
            };
            Ok(format!(
                "gateway {} {} {what} {} by uid {} wall_ns {}",
                r.gateway,
                r.action.label(),
                r.target,
                r.uid,
                r.wall_ns
            ))
        }
        other => Err(format!("unknown record kind {other}")),
    }
}

fn hex(b: &[u8], max: usize) -> String {
    let mut s: String = b.iter().take(max).map(|x| format!("{x:02x}")).collect();
    if b.len() > max {
        s.push_str("..");
    }
    s
}

fn scan(dir: &Path) -> anyhow::Result<ScanReport> {
    if !dir.exists() {
        anyhow::bail!("no journal at {} (directory missing)", dir.display());
    }
    Ok(journal::scan(dir)?)
}

/// `journal verify`: every segment frame (CRC, sequence, layout), every record's payload,
/// every snapshot file, and whether the snapshots and segments cover the history.
pub fn verify(dir: &Path, out: &mut dyn Write) -> anyhow::Result<i32> {
    let report = match scan(dir) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "DAMAGED: {e:#}")?;
            return Ok(2);
        }
    };
    let mut counts = [0u64; 7];
    let mut bad = 0u64;
    if let (Some(first), Some(_)) = (report.first_seq(), report.last_seq()) {
        let mut reader = JournalReader::new(&report, first)?;
        while let Some(r) = reader.next_record()? {
            counts[(r.kind as usize).min(6)] += 1;
            if let Err(e) = describe(r.kind, r.payload) {
                bad += 1;
                if bad <= 10 {
                    writeln!(
                        out,
                        "DAMAGED: {} byte {}: record {} ({}): {e}",
                        r.segment.display(),
                        r.offset,
                        r.seq,
                        kind_name(r.kind)
                    )?;
                }
            }
        }
    }
    writeln!(
        out,
        "segments: {} in {}",
        report.segments.len(),
        journal::layout::segments_dir(dir).display()
    )?;
    for s in &report.segments {
        writeln!(
            out,
            "  {}: records {}..{} ({} records, {} of {} bytes used)",
            s.path.display(),
            s.first_seq,
            s.next_seq(),
            s.records,
            s.data_end,
            s.file_len
        )?;
    }
    writeln!(
        out,
        "records: {} (COMMAND {}, OUT {}, SEQ {}, START {}, STOP {}, CONTROL {})",
        report.records(),
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        counts[6]
    )?;
    let mut snapshot_ok = Vec::new();
    let mut snapshot_bad = 0;
    let snaps = journal::layout::snapshots_dir(dir);
    if snaps.exists() {
        let mut names: Vec<_> = std::fs::read_dir(&snaps)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "snap"))
            .collect();
        names.sort();
        for p in names {
            match journal::verify_snapshot(&p) {
                Ok(info) => {
                    writeln!(
                        out,
                        "snapshot {}: covers records up to {}, {} bytes, intact",
                        p.display(),
                        info.seq,
                        info.payload_len
                    )?;
                    snapshot_ok.push(info.seq);
                }
                Err(e) => {
                    snapshot_bad += 1;
                    writeln!(out, "DAMAGED snapshot (start-up skips it): {e}")?;
                }
            }
        }
    }
    // The history is complete if the journal starts at 1, or a valid snapshot covers what
    // came before its first record.
    if let Some(first) = report.first_seq() {
        let covered = first == 1 || snapshot_ok.iter().any(|&s| s + 1 >= first);
        if !covered {
            writeln!(
                out,
                "DAMAGED: records 1..{first} are neither in a segment nor covered by a valid \
                 snapshot"
            )?;
            return Ok(2);
        }
    }
    if bad > 0 {
        writeln!(out, "{bad} records do not decode")?;
        return Ok(2);
    }
    if let Some(t) = &report.torn_tail {
        writeln!(
            out,
            "TORN TAIL: {} byte {}: {:?} after record {}; the next start cuts it there",
            t.segment.display(),
            t.offset,
            t.reason,
            t.last_good_seq
        )?;
        return Ok(1);
    }
    writeln!(
        out,
        "OK: {} records intact{}",
        report.records(),
        if snapshot_bad > 0 {
            format!(", {snapshot_bad} damaged snapshots (skipped by start-up)")
        } else {
            String::new()
        }
    )?;
    Ok(0)
}

/// `journal inspect`: records from `from` (default: the first), at most `count`, optionally
/// only one kind, one line each.
pub fn inspect(
    dir: &Path,
    from: Option<u64>,
    count: Option<u64>,
    only: Option<u16>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let report = scan(dir)?;
    let Some(first) = report.first_seq() else {
        writeln!(out, "(no records)")?;
        return Ok(0);
    };
    if report.last_seq().is_none() {
        writeln!(out, "(no records)")?;
        return Ok(0);
    }
    let mut reader = JournalReader::new(&report, from.unwrap_or(first).max(first))?;
    let mut shown = 0u64;
    while let Some(r) = reader.next_record()? {
        if count.is_some_and(|c| shown >= c) {
            break;
        }
        if only.is_some_and(|k| k != r.kind) {
            continue;
        }
        let text = describe(r.kind, r.payload).unwrap_or_else(|e| format!("UNDECODABLE: {e}"));
        writeln!(out, "{} {} {text}", r.seq, kind_name(r.kind))?;
        shown += 1;
    }
    if let Some(t) = &report.torn_tail {
        writeln!(
            out,
            "(torn tail at {} byte {} after record {})",
            t.segment.display(),
            t.offset,
            t.last_good_seq
        )?;
    }
    Ok(0)
}

/// `journal replay`: rebuilds the state offline from a snapshot (the newest valid one, a
/// given one, or none) and the journal after it, and prints its hash: the same number the
/// appliance logs at shutdown and exports as `appliance_state_hash_info`.
pub fn replay(
    cfg: &Config,
    dir: &Path,
    snapshot: SnapshotChoice,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    if !dir.exists() {
        anyhow::bail!("no journal at {} (directory missing)", dir.display());
    }
    let r = recover_with(
        cfg,
        dir,
        &RecoverOptions {
            full_gateways: false,
            repair: false,
            snapshot,
        },
    )?;
    let rep = &r.report;
    writeln!(
        out,
        "from: {}",
        match rep.snapshot_seq {
            Some(s) => format!("snapshot covering records up to {s}"),
            None => "the first record (no snapshot)".into(),
        }
    )?;
    for (p, why) in &rep.snapshots_skipped {
        writeln!(out, "skipped snapshot {}: {why}", p.display())?;
    }
    writeln!(
        out,
        "records replayed: {} (journal ends at record {})",
        rep.records, r.replica.last_seq
    )?;
    writeln!(out, "resting orders: {}", rep.resting_orders)?;
    for (g, gw) in r.replica.gateways.iter().enumerate() {
        for (name, protocol, next_out, next_in) in gw.session_summaries() {
            writeln!(
                out,
                "gateway {g} {} session {name}: next outbound {next_out}, next inbound \
                 {next_in}",
                protocol.label()
            )?;
        }
    }
    if let Some(h) = rep.stop_hash {
        writeln!(out, "clean shutdown recorded with state hash {h:016x}")?;
    }
    writeln!(out, "state hash {:016x}", rep.state_hash)?;
    Ok(0)
}

/// Parses a record kind name for `inspect --kind`.
pub fn parse_kind(s: &str) -> Option<u16> {
    match s.to_ascii_uppercase().as_str() {
        "COMMAND" => Some(kind::COMMAND),
        "OUT" => Some(kind::OUT),
        "SEQ" => Some(kind::SEQ),
        "START" => Some(kind::START),
        "STOP" => Some(kind::STOP),
        "CONTROL" => Some(kind::CONTROL),
        _ => None,
    }
}

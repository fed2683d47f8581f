//! Start-up recovery (cold path): the newest valid snapshot, then the journal's tail.
//!
//! 1. Scan the journal: every segment header and record checked. A torn tail (a crash in the
//!    middle of a write: damage at the end of the last segment with nothing valid after it)
//!    is cut at the last whole record, with a log line and a metric. Damage anywhere else
//!    stops the start with an error naming the file and the byte offset.
//! 2. Load the newest snapshot that verifies (older ones are tried if it does not).
//! 3. Replay every record after the snapshot into a [`Replica`] with full-size gateways.
//! 4. Its engines and gateways become the live ones; the writer continues the journal.

use super::replica::{replica_sizing, Replica};
use crate::config::Config;
use crate::journal::{self, TailCut};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What recovery did, for the start-up log, `/metrics` and `/health/ready`.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// The journal directory.
    pub dir: PathBuf,
    /// The snapshot loaded (the journal sequence number it covers), if any.
    pub snapshot_seq: Option<u64>,
    /// Snapshots skipped because they did not verify (path and reason).
    pub snapshots_skipped: Vec<(PathBuf, String)>,
    /// Records replayed after the snapshot.
    pub records: u64,
    /// The torn tail cut, if there was one.
    pub torn_tail: Option<TailCut>,
    /// The state hash after recovery.
    pub state_hash: u64,
    /// The hash the journal's last record (a clean shutdown's `STOP`) carries, if it ended so.
    pub stop_hash: Option<u64>,
    /// Replies the replay produced that were never rendered before the restart.
    pub backlog: usize,
    /// Inbound messages whose commands the journal holds past their session's recorded next
    /// inbound number: a resend of one is skipped (see `gateway::inflight`).
    pub applied_ahead: usize,
    /// Resting orders, all engines.
    pub resting_orders: u64,
    /// How long recovery took.
    pub elapsed: Duration,
    /// Its phases: scanning the segments (and cutting a torn tail), finding and reading the
    /// snapshot file, building the state (allocating the engines' and gateways' memory and
    /// decoding the snapshot into it), replaying the records after it.
    pub phases: RecoveryPhases,
    /// The sequence number the journal continues at.
    pub next_seq: u64,
}

/// Where recovery's time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecoveryPhases {
    /// Verifying every segment.
    pub scan: Duration,
    /// Finding, reading and checking the snapshot file.
    pub snapshot_read: Duration,
    /// Allocating the state (engines' arenas, gateways' tables and buffers: pre-faulted,
    /// so this is most of an empty start) and decoding the snapshot into it.
    pub build: Duration,
    /// Replaying the journal after the snapshot.
    pub replay: Duration,
    /// Computing the state hash (when records were replayed; otherwise the snapshot's,
    /// verified when it was decoded).
    pub hash: Duration,
}

impl RecoveryReport {
    /// One line for the log.
    pub fn summary(&self) -> String {
        let snap = match self.snapshot_seq {
            Some(s) => format!("snapshot at record {s}"),
            None => "no snapshot".into(),
        };
        let stop = match self.stop_hash {
            Some(h) if h == self.state_hash => ", equal to the clean shutdown's".to_string(),
            Some(h) => format!(", DIFFERENT from the clean shutdown's {h:016x}"),
            None => String::new(),
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p = &self.phases;
        format!(
            "recovered from {} in {:.0} ms (scan {:.0}, snapshot read {:.0}, state built {:.0}, \
             replay {:.0}, hash {:.0} ms): {snap}, {} records replayed, {} resting orders, \
             {} replies to render, {} inbound messages applied ahead of their session's \
             sequence record, state hash {:016x}{stop}",
            self.dir.display(),
            self.elapsed.as_secs_f64() * 1e3,
            ms(p.scan),
            ms(p.snapshot_read),
            ms(p.build),
            ms(p.replay),
            ms(p.hash),
            self.records,
            self.resting_orders,
            self.backlog,
            self.applied_ahead,
            self.state_hash
        )
    }
}

/// The rebuilt state and where the journal goes on.
pub struct Recovered {
    /// Engines and gateways (gateways with full sizing, ready to go live).
    pub replica: Replica,
    /// What happened.
    pub report: RecoveryReport,
}

/// Which snapshot a recovery starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotChoice {
    /// The newest one that verifies (start-up).
    #[default]
    Latest,
    /// None: replay the journal from its first record (which must be record 1).
    None,
    /// The snapshot covering records up to this sequence number.
    At(u64),
}

/// How to recover.
#[derive(Clone, Copy, Debug)]
pub struct RecoverOptions {
    /// Size the gateways for live use (start-up) rather than as a replica (tools).
    pub full_gateways: bool,
    /// Cut a torn tail (start-up); offline tools read up to it and change nothing.
    pub repair: bool,
    /// Where to start.
    pub snapshot: SnapshotChoice,
}

/// Recovers the appliance described by `cfg` from journal `dir` (created if missing) for
/// start-up: the newest valid snapshot, a torn tail cut.
/// `full_gateways`: size the gateways for live use (start-up) or as a replica (tools).
pub fn recover(cfg: &Config, dir: &Path, full_gateways: bool) -> anyhow::Result<Recovered> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("journal directory {}: {e}", dir.display()))?;
    recover_with(
        cfg,
        dir,
        &RecoverOptions {
            full_gateways,
            repair: true,
            snapshot: SnapshotChoice::Latest,
        },
    )
}

/// Recovers as `opts` say (offline tools: no repair, any snapshot).
pub fn recover_with(cfg: &Config, dir: &Path, opts: &RecoverOptions) -> anyhow::Result<Recovered> {
    let started = Instant::now();
    let mut phases = RecoveryPhases::default();
    let full_gateways = opts.full_gateways;
    let mut report = journal::scan(dir)?;
    let mut torn = None;
    if report.torn_tail.is_some() && opts.repair {
        torn = journal::repair_tail(&report)?;
        report = journal::scan(dir)?;
    }
    phases.scan = started.elapsed();
    let t = Instant::now();
    let search = match opts.snapshot {
        SnapshotChoice::Latest => journal::latest_valid_snapshot(dir)?,
        SnapshotChoice::None => journal::SnapshotSearch::default(),
        SnapshotChoice::At(seq) => {
            let path =
                journal::layout::snapshots_dir(dir).join(journal::layout::snapshot_file_name(seq));
            journal::SnapshotSearch {
                latest: Some(journal::read_snapshot(&path)?),
                skipped: Vec::new(),
            }
        }
    };
    let mut out = RecoveryReport {
        dir: dir.to_path_buf(),
        torn_tail: torn,
        snapshots_skipped: search
            .skipped
            .iter()
            .map(|s| (s.path.clone(), s.error.to_string()))
            .collect(),
        ..Default::default()
    };
    phases.snapshot_read = t.elapsed();
    let t = Instant::now();
    let sizing = replica_sizing(cfg, full_gateways);
    let mut replica = match &search.latest {
        Some(snap) => {
            out.snapshot_seq = Some(snap.seq);
            Replica::from_snapshot(cfg, sizing, &snap.payload)
                .map_err(|e| anyhow::anyhow!("snapshot {}: {e}", snap.path.display()))?
        }
        None => Replica::new(cfg, sizing)?,
    };
    phases.build = t.elapsed();
    let t = Instant::now();
    let from = replica.last_seq + 1;
    if let Some(first) = report.first_seq() {
        if first > from {
            anyhow::bail!(
                "the journal in {} starts at record {first}, but the newest valid snapshot \
                 covers records up to {} only: records {from}..{first} are missing",
                dir.display(),
                from - 1
            );
        }
    }
    if let Some(last) = report.last_seq() {
        if last >= from {
            let mut reader = journal::JournalReader::new(&report, from)?;
            while let Some(r) = reader.next_record()? {
                replica.apply(r.seq, r.kind, r.payload).map_err(|e| {
                    anyhow::anyhow!(
                        "replaying {} at offset {} (record {}): {e}",
                        r.segment.display(),
                        r.offset,
                        r.seq
                    )
                })?;
                out.records += 1;
            }
        }
    }
    out.stop_hash = replica.stop_hash;
    replica.finish();
    phases.replay = t.elapsed();
    let t = Instant::now();
    out.state_hash = replica.state_hash();
    phases.hash = t.elapsed();
    out.backlog = replica.backlog();
    out.applied_ahead = replica.applied_ahead();
    out.resting_orders = replica
        .engines
        .iter()
        .map(|e| e.usage().orders as u64)
        .sum();
    out.next_seq = report
        .next_seq()
        .unwrap_or(replica.last_seq + 1)
        .max(replica.last_seq + 1);
    out.elapsed = started.elapsed();
    out.phases = phases;
    Ok(Recovered {
        replica,
        report: out,
    })
}

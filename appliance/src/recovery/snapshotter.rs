//! The snapshotter (cold path): a replica of the appliance that follows the journal on a
//! low-priority thread and writes snapshots from it, so the live engines never stop for one.
//!
//! It starts from the newest valid snapshot and the journal's tail (as recovery did, in the
//! background), then reads each record as soon as the journal agent publishes it written.
//! Every `interval` it writes a snapshot of its state (covering every record it applied),
//! keeps the newest `keep`, and deletes the journal segments the oldest kept snapshot covers
//! entirely. At shutdown it catches up with the last record (the clean shutdown's `STOP`,
//! which carries the live appliance's state hash), checks its own hash against it, and writes
//! the final snapshot, from which the next start recovers without replaying anything.

use super::replica::{replica_sizing, Replica};
use super::tail::Tail;
use crate::config::Config;
use crate::journal;
use crate::runtime::journal_agent::JournalStats;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters and outcomes the snapshotter publishes.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Snapshots written.
    pub written: AtomicU64,
    /// The journal sequence number the newest snapshot covers.
    pub last_seq: AtomicU64,
    /// Duration of the last snapshot (serialise + write + sync), microseconds.
    pub last_micros: AtomicU64,
    /// Bytes of the last snapshot's payload.
    pub last_bytes: AtomicU64,
    /// Segments removed by retention.
    pub segments_removed: AtomicU64,
    /// Records the replica has applied (how far behind the journal it is: compare with the
    /// journal's written sequence number).
    pub applied_seq: AtomicU64,
    /// Failures (reading, applying, writing); the snapshotter stops at the first.
    pub errors: AtomicU64,
    /// 1 when the final hash matched the live appliance's, 0 when it did not, 2 unknown.
    pub final_hash_match: AtomicU64,
}

/// A running snapshotter.
pub struct Snapshotter {
    stop: Arc<AtomicBool>,
    final_seq: Arc<AtomicU64>,
    handle: JoinHandle<anyhow::Result<Option<u64>>>,
    /// What it publishes.
    pub stats: Arc<SnapshotStats>,
}

/// How snapshots are taken.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    /// Between two periodic snapshots (`None`: only at shutdown).
    pub interval: Option<Duration>,
    /// Snapshots kept (at least 2).
    pub keep: usize,
}

impl Snapshotter {
    /// Starts the thread following journal `dir`, whose writer publishes its written
    /// sequence number in `written`.
    pub fn start(
        cfg: Config,
        dir: PathBuf,
        journal: Arc<JournalStats>,
        policy: SnapshotPolicy,
        stats: Arc<SnapshotStats>,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let final_seq = Arc::new(AtomicU64::new(0));
        stats.final_hash_match.store(2, Ordering::Relaxed);
        let (stop2, final2, stats2) = (stop.clone(), final_seq.clone(), stats.clone());
        let handle = std::thread::Builder::new()
            .name("snapshotter".into())
            .spawn(move || {
                let _ = crate::platform::set_lowest_priority();
                let r = run(
                    &cfg,
                    &dir,
                    &journal.written_seq,
                    &policy,
                    &stop2,
                    &final2,
                    &stats2,
                );
                if r.is_err() {
                    stats2.errors.fetch_add(1, Ordering::Relaxed);
                }
                r
            })?;
        Ok(Self {
            stop,
            final_seq,
            handle,
            stats,
        })
    }

    /// Catches up with record `last_seq` (the journal's last), writes the final snapshot,
    /// and returns the replica's state hash there.
    pub fn finish(self, last_seq: u64) -> anyhow::Result<Option<u64>> {
        self.final_seq.store(last_seq, Ordering::Release);
        self.stop.store(true, Ordering::Release);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the snapshotter thread panicked"))?
    }
}

/// How often the replica catches up with the journal.
const FOLLOW_PERIOD: Duration = Duration::from_millis(100);

fn run(
    cfg: &Config,
    dir: &std::path::Path,
    written: &AtomicU64,
    policy: &SnapshotPolicy,
    stop: &AtomicBool,
    final_seq: &AtomicU64,
    stats: &SnapshotStats,
) -> anyhow::Result<Option<u64>> {
    let search = journal::latest_valid_snapshot(dir)?;
    let sizing = replica_sizing(cfg, false);
    let mut replica = match &search.latest {
        Some(s) => Replica::from_snapshot(cfg, sizing, &s.payload)?,
        None => Replica::new(cfg, sizing)?,
    };
    let mut tail = Tail::new(dir, replica.last_seq + 1);
    let mut last_snapshot = Instant::now();
    let mut snapshot_seq = replica.last_seq;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let limit = if stopping {
            final_seq.load(Ordering::Acquire)
        } else {
            written.load(Ordering::Acquire)
        };
        let mut applied = 0u64;
        while let Some(r) = tail.next_record(limit)? {
            replica
                .apply(r.seq, r.kind, r.payload)
                .map_err(|e| anyhow::anyhow!("snapshotter: {e}"))?;
            applied += 1;
            if applied % 4096 == 0 {
                stats.applied_seq.store(replica.last_seq, Ordering::Relaxed);
            }
        }
        stats.applied_seq.store(replica.last_seq, Ordering::Relaxed);
        if stopping {
            let hash = replica.state_hash();
            if let Some(stop_hash) = replica.stop_hash {
                stats
                    .final_hash_match
                    .store((stop_hash == hash) as u64, Ordering::Relaxed);
            }
            if replica.last_seq > snapshot_seq {
                take(dir, &replica, policy, stats)?;
            }
            return Ok(Some(hash));
        }
        let due = policy
            .interval
            .is_some_and(|i| last_snapshot.elapsed() >= i);
        if due && replica.last_seq > snapshot_seq {
            take(dir, &replica, policy, stats)?;
            snapshot_seq = replica.last_seq;
            last_snapshot = Instant::now();
        }
        // Follows in batches, ten times a second: on a small host every wake-up of this
        // thread competes with the hot ones for a CPU, and a snapshot due every minute needs
        // no fresher replica.
        std::thread::sleep(FOLLOW_PERIOD);
    }
}

/// Writes a snapshot of `replica`, then applies the retention rule.
fn take(
    dir: &std::path::Path,
    replica: &Replica,
    policy: &SnapshotPolicy,
    stats: &SnapshotStats,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let payload = replica.snapshot();
    journal::write_snapshot(dir, replica.last_seq, &payload)?;
    stats.written.fetch_add(1, Ordering::Relaxed);
    stats.last_seq.store(replica.last_seq, Ordering::Relaxed);
    stats
        .last_micros
        .store(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    stats
        .last_bytes
        .store(payload.len() as u64, Ordering::Relaxed);
    // Keep the newest `keep`; the journal from the oldest kept one on stays, so recovery can
    // fall back to it if the newest turns out damaged.
    let keep = policy.keep.max(2);
    let (latest, _) = journal::latest_valid_snapshot_info(dir)?;
    journal::remove_snapshots_before(dir, latest.map_or(0, |s| s.seq), keep)?;
    let mut seqs: Vec<u64> = std::fs::read_dir(journal::layout::snapshots_dir(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".snap"))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    seqs.sort_unstable();
    if seqs.len() >= keep {
        let oldest = seqs[seqs.len() - keep];
        let removed = journal::remove_segments_before(dir, oldest + 1)?;
        stats
            .segments_removed
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

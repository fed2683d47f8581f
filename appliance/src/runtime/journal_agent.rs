//! The journal agent: takes the records the engines and gateways push into their record
//! rings, writes them to the journal's segment files, and publishes, ring by ring, how many
//! are durable under the acknowledgement policy. Gateways release output only when their own
//! records are durable; the order in which this agent writes makes that enough.
//!
//! **Why a gateway's own records are enough.** A gateway's `OUT` record for a reply is pushed
//! after the gateway received the engine's event, which the engine produced after pushing the
//! command's `COMMAND` record. Each pass therefore first notes how many bytes wait in every
//! gateway ring, then drains every engine ring completely, then the gateway rings up to the
//! noted amounts: any `COMMAND` a noted gateway record depends on was pushed before it, so it
//! lands earlier in the file. Writes go out in file order and a crash only loses a suffix
//! (a torn tail is cut at the last whole record), so a durable `OUT` implies a durable
//! `COMMAND`.
//!
//! **Policies** (`journal.ack`): `written` publishes after `pwrite` returned (the records are
//! in the kernel: they survive the process dying, not the machine); `fsync` publishes after
//! `fdatasync` (group commit: everything taken in a pass shares one). A write that fails keeps
//! the records in the writer's buffer and is retried on the next pass; nothing is published
//! meanwhile, so nothing that depends on those records leaves the appliance.

use super::agent::{phase, Agent, Reports};
use crate::journal::JournalWriter;
use crate::rings::records::{JournalGate, RecordRx};
use crate::rings::wait::Waker;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// When a record counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckPolicy {
    /// Handed to the kernel (`pwrite` returned).
    Written,
    /// On disk (`fdatasync` returned).
    Fsync,
}

/// Counters the journal agent publishes (single writer).
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Records written.
    pub records: AtomicU64,
    /// Write passes (`pwrite` batches).
    pub writes: AtomicU64,
    /// `fdatasync` calls.
    pub syncs: AtomicU64,
    /// Failed writes or syncs.
    pub errors: AtomicU64,
    /// Set while the last write failed (cleared by the next successful one).
    pub failing: AtomicBool,
    /// The last journal sequence number written.
    pub written_seq: AtomicU64,
    /// The last journal sequence number synced (policy `fsync`).
    pub synced_seq: AtomicU64,
    /// The first error of a failing spell, for the cold side to log (taken when logged).
    pub last_error: Mutex<Option<String>>,
    /// Failed attempts to prepare the next segment (a full disk, usually).
    pub prep_errors: AtomicU64,
    /// Set while the next segment cannot be prepared.
    pub prep_failing: AtomicBool,
    /// Write passes that stopped at the end of a segment because the helper had not prepared
    /// the next one yet (the rest waited for it).
    pub segment_waits: AtomicU64,
    /// What the gateways read: whether state-changing input is refused.
    pub gate: Arc<JournalGate>,
}

/// How soon a failed segment preparation is tried again.
const PREP_RETRY: Duration = Duration::from_millis(250);

/// Where the writer goes when the agent closes (the runtime appends the shutdown record).
pub type WriterHandoff = Arc<Mutex<Option<JournalWriter>>>;

/// The journal agent's cold helper: prepares the next segment (writes a whole segment of
/// zeros and syncs it, tens of milliseconds) on its own low-priority thread, so a rotation on
/// the agent's thread is a header, a sync and a rename, and drops the path buffers rotations
/// no longer need (so the agent frees nothing).
pub struct SegmentPrep {
    requested: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    ready: rtrb::Consumer<crate::journal::PreparedSegment>,
    spent: rtrb::Producer<std::path::PathBuf>,
    spent_maps: rtrb::Producer<crate::journal::mapping::SegmentMap>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SegmentPrep {
    /// Starts the helper for journal `dir` (cold path; after the writer is open), counting
    /// its failures in `stats`.
    pub fn start(
        dir: std::path::PathBuf,
        segment_bytes: u64,
        stats: Arc<JournalStats>,
        agent: Arc<std::sync::OnceLock<Arc<Waker>>>,
    ) -> std::io::Result<Self> {
        let requested = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (mut ready_tx, ready) = rtrb::RingBuffer::new(2);
        let (spent, mut spent_rx) = rtrb::RingBuffer::<std::path::PathBuf>::new(16);
        let (spent_maps, mut spent_maps_rx) =
            rtrb::RingBuffer::<crate::journal::mapping::SegmentMap>::new(4);
        // The first segment to come is asked for at once.
        requested.store(true, Ordering::Release);
        let (r2, s2) = (requested.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("journal-prep".into())
            .spawn(move || {
                // Normal priority on purpose: at SCHED_IDLE a busy host could starve it, and
                // the rotation would then prepare the segment on the journal's thread.
                while !s2.load(Ordering::Acquire) {
                    while spent_rx.pop().is_ok() {}
                    // Unmapped here, not on the journal's thread.
                    while spent_maps_rx.pop().is_ok() {}
                    let mut wait = Duration::from_millis(200);
                    if r2.load(Ordering::Acquire) && !ready_tx.is_full() {
                        match crate::journal::PreparedSegment::create(&dir, segment_bytes) {
                            Ok(p) => {
                                let _ = ready_tx.push(p);
                                r2.store(false, Ordering::Release);
                                if stats.prep_failing.swap(false, Ordering::AcqRel) {
                                    // The agent lets input in again.
                                    if let Some(w) = agent.get() {
                                        w.wake();
                                    }
                                }
                            }
                            Err(e) => {
                                // A full disk: the journal agent refuses new input meanwhile
                                // (the current segment still takes the refusals); retried
                                // until space comes back.
                                stats.prep_errors.fetch_add(1, Ordering::Relaxed);
                                if !stats.prep_failing.swap(true, Ordering::AcqRel) {
                                    // The agent shuts the gate.
                                    if let Some(w) = agent.get() {
                                        w.wake();
                                    }
                                }
                                if let Ok(mut l) = stats.last_error.lock() {
                                    if l.is_none() {
                                        *l = Some(format!("preparing the next segment: {e}"));
                                    }
                                }
                                wait = PREP_RETRY;
                            }
                        }
                    }
                    if !r2.load(Ordering::Acquire) || wait == PREP_RETRY {
                        std::thread::park_timeout(wait);
                    }
                }
            })?;
        Ok(Self {
            requested,
            stop,
            ready,
            spent,
            spent_maps,
            thread: Some(thread),
        })
    }

    /// Keeps a segment prepared ahead of `writer` and returns its spent buffers.
    #[inline]
    fn tend(&mut self, writer: &mut JournalWriter) {
        while let Some(p) = writer.take_spent() {
            if self.spent.push(p).is_err() {
                break;
            }
        }
        let mut unmap = false;
        while let Some(m) = writer.take_spent_map() {
            if let Err(rtrb::PushError::Full(_m)) = self.spent_maps.push(m) {
                // The helper is behind: this one is unmapped here (rare; a cold moment).
                break;
            }
            unmap = true;
        }
        if unmap {
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
        if writer.has_prepared() {
            return;
        }
        if let Ok(p) = self.ready.pop() {
            let _ = writer.install_prepared(p);
            return;
        }
        // Always one segment prepared ahead: asked for as soon as the last one is in use.
        if !self.requested.swap(true, Ordering::AcqRel) {
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }
}

impl Drop for SegmentPrep {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The journal agent.
pub struct JournalAgent {
    writer: Option<JournalWriter>,
    engines: Vec<RecordRx>,
    gateways: Vec<RecordRx>,
    gateway_wakers: Vec<Arc<Waker>>,
    policy: AckPolicy,
    /// Bytes waiting in each gateway ring at the start of a pass.
    noted: Vec<usize>,
    /// Records taken from each ring so far (engines, then gateways).
    taken: Vec<u64>,
    /// Taken but not yet durable, per ring.
    pending: bool,
    stats: Arc<JournalStats>,
    handoff: WriterHandoff,
    stopping: bool,
    prep: Option<SegmentPrep>,
}

impl JournalAgent {
    /// An agent writing through `writer` (opened by recovery, so it continues the journal).
    pub fn new(
        writer: JournalWriter,
        engines: Vec<RecordRx>,
        gateways: Vec<RecordRx>,
        gateway_wakers: Vec<Arc<Waker>>,
        policy: AckPolicy,
        stats: Arc<JournalStats>,
        handoff: WriterHandoff,
    ) -> Self {
        let rings = engines.len() + gateways.len();
        Self {
            writer: Some(writer),
            noted: vec![0; gateways.len()],
            taken: vec![0; rings],
            engines,
            gateways,
            gateway_wakers,
            policy,
            pending: false,
            stats,
            handoff,
            stopping: false,
            prep: None,
        }
    }

    /// Prepares segments ahead with `prep` (cold path, before the loop starts).
    pub fn with_prep(mut self, prep: SegmentPrep) -> Self {
        self.prep = Some(prep);
        // The helper prepares segments; a rotation that finds none ready waits for it rather
        // than preparing one on this (hot) thread.
        if let Some(w) = self.writer.as_mut() {
            w.set_inline_prepare(false);
        }
        self
    }

    /// Whether any ring has records waiting.
    pub fn has_input(&self) -> bool {
        self.engines
            .iter()
            .chain(&self.gateways)
            .any(|r| r.available() > 0)
    }

    /// One pass: note the gateway rings, drain the engine rings, take the noted gateway
    /// records, write (and sync), publish. Returns the records taken.
    #[inline]
    pub fn work(&mut self) -> usize {
        let Some(writer) = self.writer.as_mut() else {
            return 0;
        };
        for (n, g) in self.noted.iter_mut().zip(&self.gateways) {
            *n = g.available();
        }
        let full = std::cell::Cell::new(false);
        let mut append = |kind: u16, payload: &[u8]| match writer.append(kind, payload) {
            Ok(_) => true,
            Err(_) => {
                // The writer's buffer is full (a write is failing, or one pass brought more
                // than it holds): the record stays in its ring for a later pass.
                full.set(true);
                false
            }
        };
        let mut took = 0u64;
        let e = self.engines.len();
        for (i, rx) in self.engines.iter_mut().enumerate() {
            let n = rx.take(usize::MAX, &mut append);
            self.taken[i] += n;
            took += n;
        }
        // Gateway records only once every engine ring is drained (see the module docs).
        if !full.get() {
            for (i, rx) in self.gateways.iter_mut().enumerate() {
                let n = rx.take(self.noted[i], &mut append);
                self.taken[e + i] += n;
                took += n;
            }
        }
        if took > 0 {
            self.pending = true;
        }
        if self.pending {
            self.flush();
        }
        let trouble = self.stats.gate.refusing()
            || self.stats.failing.load(Ordering::Relaxed)
            || self.stats.prep_failing.load(Ordering::Relaxed);
        // While a write waits for the next segment (`pending` with nothing taken), tending
        // installs it as soon as the helper has it.
        if took > 0 || trouble || self.pending {
            if let (Some(prep), Some(w)) = (self.prep.as_mut(), self.writer.as_mut()) {
                prep.tend(w);
            }
            self.update_gate();
        }
        took as usize
    }

    /// Refuses new input while writes fail, or while the next segment cannot be prepared
    /// and none is ready (the current one then still has room for the refusals and the
    /// replies to what is in flight); lets it in again once both are fine.
    fn update_gate(&self) {
        let no_next = self.prep.is_some()
            && self.stats.prep_failing.load(Ordering::Relaxed)
            && !self.writer.as_ref().is_some_and(|w| w.has_prepared());
        let refusing = self.stats.failing.load(Ordering::Relaxed) || no_next;
        self.stats.gate.set_refusing(refusing);
    }

    /// Writes (and syncs) what was taken, then publishes it durable.
    fn flush(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let before = writer.written_seq();
        let mut result = writer.write();
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        if result.is_ok() && self.policy == AckPolicy::Fsync {
            result = writer.sync();
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(()) => {
                let written = writer.written_seq();
                self.stats
                    .records
                    .fetch_add(written - before, Ordering::Relaxed);
                self.stats.written_seq.store(written, Ordering::Relaxed);
                self.stats
                    .synced_seq
                    .store(writer.synced_seq(), Ordering::Relaxed);
                self.stats.failing.store(false, Ordering::Relaxed);
                self.pending = false;
                for (i, rx) in self.engines.iter().chain(&self.gateways).enumerate() {
                    rx.publish_durable(self.taken[i]);
                }
                for w in &self.gateway_wakers {
                    w.wake_after_publish();
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                // The segment after this one is not prepared yet (the helper is behind, or
                // starved of CPU): nothing failed; the rest is written once it is installed,
                // and only then is anything of this pass published.
                self.stats.segment_waits.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                // Counted and flagged; the cold side logs it (no logging on this thread).
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(true, Ordering::Relaxed);
                if let Ok(mut e) = self.stats.last_error.lock() {
                    if e.is_none() {
                        *e = Some(err.to_string());
                    }
                }
            }
        }
    }

    /// The agent's counters.
    pub fn stats(&self) -> &Arc<JournalStats> {
        &self.stats
    }
}

impl Agent for JournalAgent {
    fn role(&self) -> &str {
        "journal"
    }

    #[inline]
    fn do_work(&mut self) -> usize {
        self.work()
    }

    fn has_work(&self) -> bool {
        self.pending || self.has_input()
    }

    fn idle_timeout(&self) -> Option<Duration> {
        // A failing write is retried every few milliseconds; a refusing gate is looked at
        // again soon (the disk may have room again).
        if self.pending {
            Some(Duration::from_millis(5))
        } else if self.stats.gate.refusing() {
            Some(Duration::from_millis(50))
        } else {
            None
        }
    }

    fn first_phase(&self) -> u8 {
        phase::AFTER_ENGINES
    }

    fn on_stop(&mut self, p: u8) {
        if p == phase::AFTER_ENGINES {
            self.stopping = true;
        }
    }

    fn phase_done(&self, p: u8) -> bool {
        p != phase::AFTER_ENGINES || (self.stopping && !self.pending && !self.has_input())
    }

    fn on_close(&mut self) {
        // Whatever is left (a failing disk at shutdown) gets one last try, then the writer
        // goes to the runtime, which appends the shutdown record.
        self.work();
        if let Ok(mut h) = self.handoff.lock() {
            *h = self.writer.take();
        }
    }

    fn report(&self, _into: &mut Reports) {}
}

//! Durability: what the journal's records mean, and rebuilding the appliance from a snapshot
//! and the journal's tail.

pub mod codec;
pub mod records;
pub mod recover;
pub mod replica;
pub mod snapshotter;
pub mod tail;
pub mod tool;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Whether start-up recovery is done, and what it did, for readiness and `/metrics`.
#[derive(Debug, Default)]
pub struct RecoveryStatus {
    complete: AtomicBool,
    report: Mutex<Option<recover::RecoveryReport>>,
}

impl RecoveryStatus {
    /// Recovery has not run yet.
    pub fn pending() -> Self {
        Self::default()
    }

    /// Nothing to recover (journaling off).
    pub fn not_needed() -> Self {
        let s = Self::default();
        s.complete.store(true, Ordering::Release);
        s
    }

    /// Recovery finished with `report`.
    pub fn done(&self, report: recover::RecoveryReport) {
        if let Ok(mut r) = self.report.lock() {
            *r = Some(report);
        }
        self.complete.store(true, Ordering::Release);
    }

    /// Whether recovery is complete.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// What recovery did, if it ran.
    pub fn report(&self) -> Option<recover::RecoveryReport> {
        self.report.lock().ok().and_then(|r| r.clone())
    }
}

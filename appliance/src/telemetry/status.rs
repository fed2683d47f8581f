//! Each hot thread's life-cycle state, published for readiness and liveness.
//!
//! Written by the thread itself (and by its drop guard when it unwinds), read by the launcher
//! and the exporter. One byte per thread, `Release`/`Acquire`: a reader that sees `Running`
//! also sees everything the thread set up before it said so.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where a hot thread is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ThreadState {
    /// Spawned, still setting up.
    Starting = 0,
    /// In its loop: an engine taking commands, a gateway listening.
    Running = 1,
    /// Left its loop normally (shutdown).
    Stopped = 2,
    /// Ended by a panic.
    Died = 3,
}

/// A hot thread's published state.
#[derive(Debug, Default)]
pub struct ThreadStatus {
    state: AtomicU8,
}

impl ThreadStatus {
    /// Publishes `s`.
    pub fn set(&self, s: ThreadState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// The last published state.
    pub fn get(&self) -> ThreadState {
        match self.state.load(Ordering::Acquire) {
            0 => ThreadState::Starting,
            1 => ThreadState::Running,
            2 => ThreadState::Stopped,
            _ => ThreadState::Died,
        }
    }

    /// Whether the thread is in its loop.
    pub fn running(&self) -> bool {
        self.get() == ThreadState::Running
    }
}

/// Marks the thread `Died` if it unwinds before [`DeathGuard::disarm`]: a panicking hot
/// thread is visible to readiness and liveness instead of silently gone.
pub struct DeathGuard<'a> {
    status: &'a ThreadStatus,
    armed: bool,
}

impl<'a> DeathGuard<'a> {
    /// Guards `status` until disarmed.
    pub fn new(status: &'a ThreadStatus) -> Self {
        Self {
            status,
            armed: true,
        }
    }

    /// The thread is leaving normally.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for DeathGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.status.set(ThreadState::Died);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_thread_is_marked_died_and_a_normal_exit_is_not() {
        let st = std::sync::Arc::new(ThreadStatus::default());
        assert_eq!(st.get(), ThreadState::Starting);
        let s2 = st.clone();
        let r = std::thread::spawn(move || {
            let _g = DeathGuard::new(&s2);
            s2.set(ThreadState::Running);
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(st.get(), ThreadState::Died);
        let st = ThreadStatus::default();
        let g = DeathGuard::new(&st);
        st.set(ThreadState::Stopped);
        g.disarm();
        assert_eq!(st.get(), ThreadState::Stopped);
    }
}

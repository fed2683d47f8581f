//! Fault injection for the writer's system calls, so tests (here and in the layers above) can
//! show what happens on ENOSPC, EIO or a short write without filling a real disk.
//!
//! A hook is a closure consulted before each system call that changes a journal file. With no
//! hook installed the cost is one branch on an `Option` per call.

use std::io;

/// A system call the writer is about to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// `pwrite` of record frames or a segment header into a segment file.
    Write {
        /// File offset.
        offset: u64,
        /// Bytes to write.
        len: usize,
    },
    /// `fallocate` of a new segment file.
    Fallocate {
        /// Bytes to reserve.
        len: u64,
    },
    /// `pwrite` of zeros while preallocating a new segment file.
    Preallocate {
        /// File offset.
        offset: u64,
        /// Bytes to write.
        len: usize,
    },
    /// `fdatasync`/`fsync` of a segment file.
    Sync,
    /// `rename` of a prepared segment to its final name.
    Rename,
    /// `fsync` of the segments directory.
    DirSync,
}

/// What a hook makes the system call do instead of running normally.
#[derive(Debug)]
pub enum Fault {
    /// Fail with this error before touching the file.
    Error(io::Error),
    /// For writes: write only this many bytes (clamped to the request) and report that, as a
    /// kernel short write would. Treated as no fault for other calls.
    Short(usize),
}

/// A fault-injection hook: `None` lets the call run normally.
pub type FaultHook = Box<dyn FnMut(IoOp) -> Option<Fault> + Send>;

/// The writer's optional hook.
#[derive(Default)]
pub(crate) struct Faults(Option<FaultHook>);

impl Faults {
    pub(crate) fn set(&mut self, hook: Option<FaultHook>) {
        self.0 = hook;
    }

    #[inline]
    pub(crate) fn check(&mut self, op: IoOp) -> Option<Fault> {
        match &mut self.0 {
            None => None,
            Some(h) => h(op),
        }
    }

    /// Fails with the injected error, if any (a `Short` means nothing for non-writes).
    #[inline]
    pub(crate) fn fail(&mut self, op: IoOp) -> io::Result<()> {
        match self.check(op) {
            Some(Fault::Error(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

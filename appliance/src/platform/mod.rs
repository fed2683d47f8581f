//! What the appliance asks of the host at start-up: hugepage-backed memory, memory locking,
//! pinning, scheduling class, readiness notification, and whether io_uring works.
//!
//! Cold path only. The runtime calls these once, before the hot threads enter their loops:
//!
//! 1. map the arena, price levels, rings and I/O buffers with [`memory::HugeSlice`]
//!    (explicit hugepages, else THP, else normal pages) and log the [`memory::Backing`] once;
//! 2. [`lock_memory`] (mlockall) once everything large is mapped;
//! 3. in each engine thread: [`pin_current_thread`], and [`set_realtime`] only if configured
//!    (refused on a core the kernel does not isolate);
//! 4. in the exporter thread: [`set_lowest_priority`];
//! 5. [`notify_ready`] once recovery is complete; [`notify_stopping`] at shutdown.
//!
//! Host facts are read through [`sysfs::HostFs`], whose root tests can point at a fake tree;
//! `check-host` (`crate::host`) reads the same facts through the same functions.

pub mod cpuset;
pub mod isolation;
pub mod lock;
pub mod memory;
pub mod notify;
pub mod sched;
pub mod sysfs;
pub mod uring;

pub use cpuset::CpuSet;
pub use isolation::{isolated_cores, Isolation};
pub use lock::{lock_memory, MemoryLock};
pub use memory::{Backing, HugeSlice, MemoryPolicy};
pub use notify::{notify_ready, notify_status, notify_stopping};
pub use sched::{pin_current_thread, set_lowest_priority, set_realtime, LowPriority, SchedError};

//! Thread placement and scheduling class: pinning, SCHED_FIFO for engines, the lowest class
//! for the exporter.
//!
//! Called once per thread at start-up, before the thread enters its loop. Nothing here runs on
//! the hot path.

use super::cpuset::CpuSet;
use super::isolation::Isolation;
use super::sysfs::HostFs;

/// Why a scheduling request was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// SCHED_FIFO was asked for a core the scheduler still places other tasks on.
    #[error(
        "refusing SCHED_FIFO on core {core}: it is not isolated (isolated cores: [{isolated}]); \
         a busy-polling real-time thread there would starve kernel threads and other tasks. \
         Isolate it (isolcpus= or a cpuset partition, see docs/tuning.md) or run without realtime"
    )]
    NotIsolated {
        /// The requested core.
        core: usize,
        /// The cores that are isolated.
        isolated: CpuSet,
    },
    /// The priority is outside what the kernel accepts for SCHED_FIFO.
    #[error("SCHED_FIFO priority {priority} outside {min}..={max}")]
    InvalidPriority {
        /// The requested priority.
        priority: i32,
        /// The kernel's minimum.
        min: i32,
        /// The kernel's maximum.
        max: i32,
    },
    /// `sched_setaffinity` refused the core (offline, absent, or outside the cgroup's cpuset).
    #[error("cannot pin thread to core {core}: {reason}")]
    Pin {
        /// The requested core.
        core: usize,
        /// The OS error text.
        reason: String,
    },
    /// A scheduling syscall failed.
    #[error("{call} failed: {reason} (needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance)")]
    Os {
        /// The syscall.
        call: &'static str,
        /// The OS error text.
        reason: String,
    },
}

fn last_os_error() -> String {
    std::io::Error::last_os_error().to_string()
}

/// Pins the calling thread to `core` (and only `core`).
pub fn pin_current_thread(core: usize) -> Result<(), SchedError> {
    // core_affinity (through libc's CPU_SET) panics past the cpu_set_t size; refuse instead.
    if core >= libc::CPU_SETSIZE as usize {
        return Err(SchedError::Pin {
            core,
            reason: format!("beyond the {} CPUs a cpu_set_t can name", libc::CPU_SETSIZE),
        });
    }
    // core_affinity reports only success or failure; the errno is still the one it left.
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(SchedError::Pin {
            core,
            reason: last_os_error(),
        })
    }
}

/// The CPUs the calling thread may run on.
pub fn current_affinity() -> CpuSet {
    // SAFETY: cpu_set_t is a plain bitmask for which all-zero is the valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is a valid, writable cpu_set_t of the size
    // passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return CpuSet::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `set` is initialised and every index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `core` and switches it to SCHED_FIFO at `priority`, refusing
/// unless the host isolates `core` (see [`set_realtime_on`]).
pub fn set_realtime(priority: i32, core: usize) -> Result<(), SchedError> {
    let isolated = Isolation::read(&HostFs::real()).scheduler_isolated();
    set_realtime_on(priority, core, &isolated)
}

/// [`set_realtime`] against an explicit set of isolated cores (tests, or a caller that has
/// already read [`Isolation`]).
///
/// The thread is pinned first: a FIFO thread allowed to wander could land on a housekeeping
/// core and starve it.
pub fn set_realtime_on(priority: i32, core: usize, isolated: &CpuSet) -> Result<(), SchedError> {
    if !isolated.contains(core) {
        return Err(SchedError::NotIsolated {
            core,
            isolated: isolated.clone(),
        });
    }
    // SAFETY: pure queries of constants, no pointers.
    let (min, max) = unsafe {
        (
            libc::sched_get_priority_min(libc::SCHED_FIFO),
            libc::sched_get_priority_max(libc::SCHED_FIFO),
        )
    };
    if priority < min || priority > max {
        return Err(SchedError::InvalidPriority { priority, min, max });
    }
    pin_current_thread(core)?;
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread on Linux; `param` is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(SchedError::Os {
            call: "sched_setscheduler(SCHED_FIFO)",
            reason: last_os_error(),
        });
    }
    Ok(())
}

/// Which low-priority class [`set_lowest_priority`] obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowPriority {
    /// SCHED_IDLE: runs only when nothing else on the CPU wants to.
    SchedIdle,
    /// SCHED_OTHER at nice 19, when SCHED_IDLE is refused.
    Nice19,
}

/// Moves the calling thread to the lowest scheduling class (SCHED_IDLE, else nice 19), for the
/// metrics exporter and other housekeeping threads that must never delay a hot thread.
pub fn set_lowest_priority() -> Result<LowPriority, SchedError> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param (priority 0 is the
    // only valid value for SCHED_IDLE).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return Ok(LowPriority::SchedIdle);
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value.
    // SAFETY: plain syscall on the calling thread's id.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) } == 0 {
        return Ok(LowPriority::Nice19);
    }
    Err(SchedError::Os {
        call: "setpriority",
        reason: last_os_error(),
    })
}

/// The calling thread's scheduling policy (`libc::SCHED_*`), for tests and diagnostics.
pub fn current_policy() -> i32 {
    // SAFETY: pid 0 is the calling thread; no pointers.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_refused_on_a_core_that_is_not_isolated() {
        let err = set_realtime_on(10, 0, &CpuSet::from_cpus([1])).unwrap_err();
        assert!(matches!(err, SchedError::NotIsolated { core: 0, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("not isolated") && msg.contains("isolated cores: [1]"),
            "{msg}"
        );
        // Refused before anything changed.
        assert_ne!(current_policy(), libc::SCHED_FIFO);
    }

    #[test]
    fn fifo_priority_is_range_checked() {
        let err = set_realtime_on(1000, 0, &CpuSet::from_cpus([0])).unwrap_err();
        assert!(matches!(
            err,
            SchedError::InvalidPriority { priority: 1000, .. }
        ));
    }
}

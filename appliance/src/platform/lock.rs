//! `mlockall`: keep every page of the process resident, so no hot-path access ever waits for
//! swap-in or a reclaim of a clean page.

use std::fmt;

/// What [`lock_memory`] achieved. Not an error type: a host that refuses locking still runs the
/// appliance, and the runtime reports the outcome once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryLock {
    /// All current and future pages are locked (`MCL_CURRENT | MCL_FUTURE`).
    Locked,
    /// The kernel refused; pages may be reclaimed or swapped under memory pressure.
    Refused {
        /// errno from `mlockall` (EPERM or ENOMEM in practice).
        errno: i32,
        /// The soft RLIMIT_MEMLOCK in bytes at the time (`None` = unlimited).
        memlock_limit: Option<u64>,
    },
}

impl MemoryLock {
    /// Whether memory is locked.
    pub fn is_locked(&self) -> bool {
        matches!(self, MemoryLock::Locked)
    }
}

impl fmt::Display for MemoryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryLock::Locked => f.write_str("memory locked (mlockall current+future)"),
            MemoryLock::Refused {
                errno,
                memlock_limit,
            } => {
                let limit = match memlock_limit {
                    Some(b) => format!("{b} bytes"),
                    None => "unlimited".to_owned(),
                };
                write!(
                    f,
                    "mlockall refused ({}; RLIMIT_MEMLOCK {limit}): pages may be reclaimed under \
                     memory pressure. Fix: LimitMEMLOCK=infinity in the unit (systemd/appliance.service \
                     sets it) or grant CAP_IPC_LOCK",
                    std::io::Error::from_raw_os_error(*errno)
                )
            }
        }
    }
}

/// The soft RLIMIT_MEMLOCK of this process in bytes (`None` = unlimited).
pub fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Some(0);
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Locks all current and future pages of the process (`mlockall(MCL_CURRENT | MCL_FUTURE)`),
/// reporting rather than failing when the host does not permit it.
///
/// Call it after the large arrays are mapped (they are pre-faulted anyway) and before the hot
/// threads start. Future mappings are locked and populated as they are made.
pub fn lock_memory() -> MemoryLock {
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        MemoryLock::Locked
    } else {
        MemoryLock::Refused {
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            memlock_limit: memlock_limit(),
        }
    }
}

/// Undoes [`lock_memory`] (tests, and an orderly shutdown that wants to release memory fast).
pub fn unlock_memory() {
    // SAFETY: no arguments; always safe to call.
    unsafe { libc::munlockall() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_message_names_the_fix() {
        let m = MemoryLock::Refused {
            errno: libc::EPERM,
            memlock_limit: Some(8 << 20),
        };
        let s = m.to_string();
        assert!(
            s.contains("LimitMEMLOCK=infinity") && s.contains("8388608 bytes"),
            "{s}"
        );
        assert!(!m.is_locked());
    }
}

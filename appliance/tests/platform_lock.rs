//! `lock_memory` on the real kernel (its own binary: mlockall applies to the whole process).

use appliance::platform::lock::{memlock_limit, unlock_memory};
use appliance::platform::memory::{Backing, HugeSlice, MemoryPolicy, HUGE_PAGE_2M};
use appliance::platform::{lock_memory, MemoryLock};

fn locked_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn mlockall_locks_or_reports_why_not() {
    // SAFETY: geteuid has no preconditions.
    let can_lock = unsafe { libc::geteuid() } == 0 || memlock_limit().is_none();
    let outcome = lock_memory();
    if can_lock {
        assert_eq!(outcome, MemoryLock::Locked, "{outcome}");
        assert!(locked_kib() > 0, "VmLck stays 0 after mlockall");
        // MCL_FUTURE: a new allocation is locked as it is made.
        let before = locked_kib();
        let v = vec![1u8; 8 << 20];
        assert!(
            locked_kib() >= before + 8 * 1024 - 4,
            "future pages are locked"
        );
        drop(v);
        // Order-independence: arenas mapped after mlockall(MCL_FUTURE) still get transparent
        // hugepages (the mapping is advised before it becomes accessible) and are locked.
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !thp.contains("[never]") {
            let s = HugeSlice::<u64>::zeroed(
                (4 * HUGE_PAGE_2M) / 8,
                MemoryPolicy::only(Backing::TransparentHuge),
            )
            .unwrap();
            let r = s.residency().unwrap();
            assert_eq!(r.locked_bytes, s.mapped_bytes(), "{r:?}");
            assert!(r.anon_huge_bytes > 0, "THP lost under MCL_FUTURE: {r:?}");
        }
        unlock_memory();
        assert_eq!(locked_kib(), 0);
    } else {
        match outcome {
            MemoryLock::Refused { .. } => assert!(outcome.to_string().contains("LimitMEMLOCK")),
            MemoryLock::Locked => unlock_memory(),
        }
    }
}

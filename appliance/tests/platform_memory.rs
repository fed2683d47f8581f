//! `platform::memory`: every rung of the hugepage ladder, forced and by fallback; alignment,
//! zeroing, pre-faulting and unmapping on drop.
//!
//! The explicit-hugepage test changes `/proc/sys/vm/nr_hugepages` (root only) and restores it.
//! All tests in this binary take one lock so that an address freed by one test cannot be
//! reused by another before the first has checked it is gone.

use std::sync::Mutex;

use appliance::platform::memory::{AllocError, Backing, HugeSlice, MemoryPolicy, HUGE_PAGE_2M};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone, Copy, bytemuck::Zeroable, Debug, PartialEq)]
#[repr(C, align(64))]
struct Order {
    id: u64,
    price: i64,
    qty: u64,
    next: u32,
    side: u8,
}

/// Whether any mapping of this process contains `addr` (from /proc/self/maps).
fn is_mapped(addr: usize) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .split_once('-')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        })
        .any(|(a, b)| {
            let (a, b) = (
                usize::from_str_radix(&a, 16).unwrap(),
                usize::from_str_radix(&b, 16).unwrap(),
            );
            a <= addr && addr < b
        })
}

fn check_usable(mut s: HugeSlice<Order>, len: usize) -> usize {
    assert_eq!(s.len(), len);
    assert_eq!(s.as_ptr() as usize % 64, 0, "element alignment honoured");
    assert!(
        s.iter().all(|o| *o
            == Order {
                id: 0,
                price: 0,
                qty: 0,
                next: 0,
                side: 0
            }),
        "zeroed"
    );
    s[len - 1].id = 7;
    s[0].price = -3;
    assert_eq!((s[len - 1].id, s[0].price), (7, -3));
    let addr = s.as_ptr() as usize;
    assert!(is_mapped(addr));
    drop(s);
    assert!(!is_mapped(addr), "drop unmaps the region");
    addr
}

#[test]
fn normal_pages_when_forced() {
    let _g = serial();
    let s = HugeSlice::<Order>::zeroed(10_000, MemoryPolicy::only(Backing::Normal)).unwrap();
    assert_eq!(s.backing(), Backing::Normal);
    assert_eq!(s.mapped_bytes(), (10_000 * 64usize).div_ceil(4096) * 4096);
    let r = s.residency().expect("smaps entry");
    assert_eq!(r.kernel_page_size, 4096);
    assert_eq!(
        r.anon_huge_bytes, 0,
        "MADV_NOHUGEPAGE keeps normal pages normal"
    );
    assert_eq!(r.rss_bytes, s.mapped_bytes(), "every page pre-faulted");
    check_usable(s, 10_000);
}

#[test]
fn transparent_hugepages_when_forced() {
    let _g = serial();
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let len = (8 * HUGE_PAGE_2M) / 64;
    let res = HugeSlice::<Order>::zeroed(len, MemoryPolicy::only(Backing::TransparentHuge));
    if thp.contains("[never]") {
        assert!(matches!(
            res,
            Err(AllocError::Map {
                backing: Backing::TransparentHuge,
                ..
            })
        ));
        return;
    }
    let s = res.unwrap();
    assert_eq!(s.backing(), Backing::TransparentHuge);
    assert_eq!(
        s.as_ptr() as usize % HUGE_PAGE_2M,
        0,
        "THP needs a 2 MiB-aligned start"
    );
    assert_eq!(s.mapped_bytes(), 8 * HUGE_PAGE_2M);
    let r = s.residency().expect("smaps entry");
    assert_eq!(r.rss_bytes, 8 * HUGE_PAGE_2M, "every page pre-faulted");
    // With `madvise` mode and `defrag` including madvise, a fault in an advised, aligned range
    // compacts for a huge page; on the project's machines (24 GiB, mostly free) it gets one.
    assert!(
        r.anon_huge_bytes > 0,
        "no transparent hugepage backs the advised region: {r:?} (THP: {thp})"
    );
    check_usable(s, len);
}

#[test]
fn huge_slices_move_and_share_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<HugeSlice<Order>>();
    let _g = serial();
    let mut s = HugeSlice::<u64>::zeroed(1 << 16, MemoryPolicy::BEST).unwrap();
    s[5] = 42;
    let s = std::thread::spawn(move || {
        assert_eq!(s[5], 42);
        s
    })
    .join()
    .unwrap();
    assert_eq!(s.iter().sum::<u64>(), 42);
}

#[test]
fn empty_and_zero_sized_arrays_map_nothing() {
    let _g = serial();
    let s = HugeSlice::<Order>::zeroed(0, MemoryPolicy::BEST).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.mapped_bytes(), 0);
    assert!(s.residency().is_none());
    let z = HugeSlice::<()>::zeroed(1_000, MemoryPolicy::BEST).unwrap();
    assert_eq!((z.len(), z.mapped_bytes()), (1_000, 0));
    assert!(matches!(
        HugeSlice::<u64>::zeroed(usize::MAX, MemoryPolicy::BEST),
        Err(AllocError::TooLarge { .. })
    ));
}

/// Restores `/proc/sys/vm/nr_hugepages` on drop, panic or not.
struct NrHugepages(u64);

const NR: &str = "/proc/sys/vm/nr_hugepages";

impl NrHugepages {
    fn save() -> Self {
        let v = std::fs::read_to_string(NR).unwrap().trim().parse().unwrap();
        Self(v)
    }
    fn set(&self, n: u64) -> u64 {
        std::fs::write(NR, n.to_string()).unwrap_or_else(|e| {
            panic!("cannot write {NR} ({e}): this test needs root (CI runs as root; run `sudo cargo test`)")
        });
        std::fs::read_to_string(NR).unwrap().trim().parse().unwrap()
    }
}

impl Drop for NrHugepages {
    fn drop(&mut self) {
        let _ = std::fs::write(NR, self.0.to_string());
    }
}

fn free_2m() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// One test walks the whole explicit-hugepage story so the pool is changed in one place:
/// none reserved -> MAP_HUGETLB is refused (ENOMEM) and BEST falls back to THP; pages
/// reserved -> the allocation really is on 2 MiB pages; original pool restored.
#[test]
fn explicit_hugepages_when_reserved_and_fallback_when_not() {
    let _g = serial();
    let saved = NrHugepages::save();
    let len = (2 * HUGE_PAGE_2M) / 64;

    // Pages in use by other processes stay allocated as surplus; what matters is that none
    // are free.
    saved.set(0);
    if free_2m() == 0 {
        match HugeSlice::<Order>::zeroed(len, MemoryPolicy::only(Backing::HugeTlb2M)) {
            Err(AllocError::Map {
                backing: Backing::HugeTlb2M,
                errno,
                reason,
                ..
            }) => {
                assert_eq!(errno, libc::ENOMEM, "{reason}");
                assert!(reason.contains("tuning/hugepages.sh"), "{reason}");
            }
            other => panic!("MAP_HUGETLB with no free hugepages: expected ENOMEM, got {other:?}"),
        }
        let fell = HugeSlice::<Order>::zeroed(len, MemoryPolicy::BEST).unwrap();
        assert!(
            fell.backing() < Backing::HugeTlb2M,
            "BEST steps down the ladder"
        );
        check_usable(fell, len);
    }

    // Reserve a margin above what we map, so a concurrent user of the pool cannot make this
    // allocation fail.
    let want = saved.0 + 8;
    let got = saved.set(want);
    assert!(
        got >= 2,
        "kernel granted only {got} of {want} hugepages (memory too fragmented?)"
    );
    let s = HugeSlice::<Order>::zeroed(len, MemoryPolicy::only(Backing::HugeTlb2M)).unwrap();
    assert_eq!(s.backing(), Backing::HugeTlb2M);
    assert_eq!(s.mapped_bytes(), 2 * HUGE_PAGE_2M);
    assert_eq!(s.as_ptr() as usize % HUGE_PAGE_2M, 0);
    let r = s.residency().expect("smaps entry");
    assert_eq!(r.kernel_page_size, HUGE_PAGE_2M, "mapped with 2 MiB pages");
    let best = HugeSlice::<Order>::zeroed(len, MemoryPolicy::BEST).unwrap();
    assert_eq!(
        best.backing(),
        Backing::HugeTlb2M,
        "BEST takes reserved pages first"
    );
    drop(best);
    check_usable(s, len);
    drop(saved);
}

#[test]
fn filled_arrays_hold_a_sentinel_in_every_slot() {
    let _g = serial();
    // Not Zeroable-friendly: an empty slot is u32::MAX.
    let len = (3 * HUGE_PAGE_2M) / 8 + 5;
    for policy in [
        MemoryPolicy::only(Backing::Normal),
        MemoryPolicy::only(Backing::TransparentHuge),
        MemoryPolicy::BEST,
    ] {
        let s = HugeSlice::filled(len, (u32::MAX, 7u32), policy).unwrap();
        assert_eq!(s.len(), len);
        assert!(s.iter().all(|&e| e == (u32::MAX, 7)), "{policy:?}");
        let r = s.residency().unwrap();
        assert_eq!(r.rss_bytes, s.mapped_bytes(), "every page faulted in");
    }
    let z = HugeSlice::filled(10, (), MemoryPolicy::BEST).unwrap();
    assert_eq!((z.len(), z.mapped_bytes()), (10, 0));
}

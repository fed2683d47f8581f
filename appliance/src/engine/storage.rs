//! Where the engine's big arrays come from.
//!
//! Every array the engine reserves at start-up (order arena, id index, price levels) is made
//! here, so the book code never cares what backs it. Cold path: called only from `Engine::new`.
//!
//! Arrays of 2 MiB or more ask the kernel for transparent hugepages before their pages are first
//! touched. The engine's accesses (cancels by id, fills down a queue) land on random slots of
//! multi-megabyte arrays; with 4 KiB pages most of them also miss the TLB. On this project's
//! VM (THP in `madvise` mode) this cut the standard workload's time per command measurably (see
//! `docs/engine.md`). When THP is unavailable the advice is ignored and the arrays stay on
//! normal pages; nothing else changes. Explicitly reserved hugepages (`MAP_HUGETLB`) need
//! zero-valid element types; `platform::memory::HugeSlice` offers those to types that are.

const HUGE_PAGE: usize = 2 << 20;

/// Allocates `len` copies of `fill` and writes every element now.
///
/// Writing (rather than a lazily zeroed `calloc`) faults every page in at start-up, so the
/// first touch of a slot on the hot path costs a cache miss, never a page fault.
pub(crate) fn alloc_slice<T: Copy>(len: usize, fill: T) -> Box<[T]> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge(v.as_mut_ptr().cast(), len * std::mem::size_of::<T>());
    v.resize(len, fill);
    v.into_boxed_slice()
}

/// Starts loading the cache line holding `r` into L1 without waiting for it.
///
/// Hot path: used where the engine knows its next random access a little early (the id-index
/// bucket of the next command, the next order in a queue being swept) so that cache misses
/// overlap with useful work instead of following it.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults and has no architectural effect; the
    // pointer comes from a live reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Asks for transparent hugepages on the 2 MiB-aligned interior of `[ptr, ptr + bytes)`.
fn advise_huge(ptr: *mut u8, bytes: usize) {
    let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
    let end = (ptr as usize + bytes) & !(HUGE_PAGE - 1);
    if end <= start {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: [start, end) lies inside the allocation `ptr..ptr + bytes` that the caller owns
    // and has not handed out; MADV_HUGEPAGE only changes how the kernel backs those pages (it
    // neither unmaps nor changes contents), and a failure (THP off) leaves them as they were.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_filled_whatever_their_size() {
        for len in [0usize, 1, 1000, 3 << 20] {
            let s = alloc_slice(len, 0xA5u8);
            assert_eq!(s.len(), len);
            assert!(s.iter().all(|&b| b == 0xA5));
        }
        let s = alloc_slice(300_000, (7u64, u32::MAX));
        assert!(s.iter().all(|&e| e == (7, u32::MAX)));
    }
}

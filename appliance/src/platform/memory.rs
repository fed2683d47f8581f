//! Hugepage-backed, pre-faulted, zero-initialised arrays for the order arena, price levels,
//! rings and I/O buffers.
//!
//! Why: a hot thread that walks a few hundred MiB of orders through 4 KiB pages misses the TLB
//! constantly; 2 MiB pages cut the page-walk cost by 512x in entries. And every page is touched
//! here, at start-up, so the hot path never takes a page fault.
//!
//! The ladder, best first (see [`Backing`]):
//! 1. explicit 2 MiB hugepages (`mmap(MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE)`): guaranteed
//!    huge, but only if the operator reserved them (`vm.nr_hugepages`, `tuning/hugepages.sh`);
//!    otherwise the kernel answers ENOMEM at `mmap` time;
//! 2. transparent hugepages: a 2 MiB-aligned anonymous mapping with `madvise(MADV_HUGEPAGE)`;
//!    huge when the kernel finds free 2 MiB frames, which is usual but not promised;
//! 3. normal 4 KiB pages.
//!
//! The caller logs [`Backing`] once and exports [`Backing::metric_value`] as a gauge; the
//! allocation itself never logs (it runs before the logger may exist).

use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use bytemuck::Zeroable;

use super::sysfs::{bracketed_choice, HostFs};

/// 2 MiB: the x86-64 / arm64 (4 KiB granule) PMD page size.
pub const HUGE_PAGE_2M: usize = 2 << 20;
const SMALL_PAGE: usize = 4096;

/// What backs an allocation, ordered from worst to best.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Backing {
    /// Normal 4 KiB pages.
    #[serde(rename = "normal")]
    Normal,
    /// Transparent hugepages requested with `madvise(MADV_HUGEPAGE)`.
    #[serde(rename = "thp")]
    TransparentHuge,
    /// Explicitly reserved 2 MiB hugepages (`MAP_HUGETLB`).
    #[serde(rename = "hugetlb-2m")]
    HugeTlb2M,
}

impl Backing {
    /// Short stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Backing::Normal => "normal",
            Backing::TransparentHuge => "thp",
            Backing::HugeTlb2M => "hugetlb-2m",
        }
    }

    /// Gauge value: 0 normal, 1 transparent hugepages, 2 explicit hugepages (higher is better).
    pub fn metric_value(self) -> i64 {
        self as i64
    }

    /// The next rung down the ladder.
    fn fallback(self) -> Option<Backing> {
        match self {
            Backing::HugeTlb2M => Some(Backing::TransparentHuge),
            Backing::TransparentHuge => Some(Backing::Normal),
            Backing::Normal => None,
        }
    }
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to start on the ladder and whether to step down it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPolicy {
    /// The first backing tried.
    pub prefer: Backing,
    /// Whether to try worse backings when the preferred one cannot be had.
    pub fallback: bool,
}

impl MemoryPolicy {
    /// Best available: explicit hugepages, then THP, then normal pages. The production choice.
    pub const BEST: MemoryPolicy = MemoryPolicy {
        prefer: Backing::HugeTlb2M,
        fallback: true,
    };

    /// Exactly `backing`, or an error (tests, and operators who want start-up to fail rather
    /// than run on small pages).
    pub fn only(backing: Backing) -> Self {
        Self {
            prefer: backing,
            fallback: false,
        }
    }

    /// Start at `backing` and step down when needed.
    pub fn prefer(backing: Backing) -> Self {
        Self {
            prefer: backing,
            fallback: true,
        }
    }
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        Self::BEST
    }
}

/// Why an allocation failed (cold path, start-up only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// `len * size_of::<T>()` overflows.
    #[error("array of {len} elements of {elem_size} bytes overflows the address space")]
    TooLarge {
        /// Requested element count.
        len: usize,
        /// Element size.
        elem_size: usize,
    },
    /// The element type needs more than page alignment.
    #[error("element alignment {align} exceeds the 4 KiB page alignment mmap guarantees")]
    AlignTooLarge {
        /// `align_of::<T>()`.
        align: usize,
    },
    /// The backing could not be mapped (the last one tried when falling back).
    #[error("{backing} mapping of {bytes} bytes failed: {reason}")]
    Map {
        /// The backing that failed.
        backing: Backing,
        /// Bytes requested from the kernel.
        bytes: usize,
        /// errno (0 when the refusal was not a syscall error).
        errno: i32,
        /// Human-readable cause.
        reason: String,
    },
}

impl AllocError {
    fn os(backing: Backing, bytes: usize) -> Self {
        let e = std::io::Error::last_os_error();
        let errno = e.raw_os_error().unwrap_or(0);
        let hint = match (backing, errno) {
            (Backing::HugeTlb2M, libc::ENOMEM) => {
                " (not enough free 2 MiB hugepages reserved: see tuning/hugepages.sh)"
            }
            _ => "",
        };
        AllocError::Map {
            backing,
            bytes,
            errno,
            reason: format!("{e}{hint}"),
        }
    }
}

/// How a mapping is actually resident, from `/proc/self/smaps` (diagnostics and tests: THP is
/// best-effort, so the runtime can log how much of an arena really landed on huge pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residency {
    /// `KernelPageSize` of the VMA in bytes (2 MiB for hugetlb mappings).
    pub kernel_page_size: usize,
    /// Bytes of the VMA mapped by transparent hugepages (`AnonHugePages`).
    pub anon_huge_bytes: usize,
    /// Resident bytes (`Rss`).
    pub rss_bytes: usize,
    /// Locked bytes (`Locked`).
    pub locked_bytes: usize,
}

/// A fixed-length, initialised, pre-faulted array of plain data in memory of the best
/// available [`Backing`]; unmapped on drop.
///
/// Build it with [`HugeSlice::zeroed`] when all-zero bytes are a valid `T` (`T: Zeroable`,
/// derive it with `#[derive(bytemuck::Zeroable)]`), or with [`HugeSlice::filled`] for any
/// `T: Copy` (e.g. slots whose "empty" value is a sentinel such as `u32::MAX`). `T: Copy`
/// means no element needs dropping.
pub struct HugeSlice<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped (0 when nothing was mapped: empty array or zero-sized `T`).
    mapped: usize,
    backing: Backing,
    _owns: PhantomData<T>,
}

// SAFETY: HugeSlice owns its mapping exclusively, like Box<[T]>; moving it to another thread
// moves ownership of plain `T` values, sound when `T: Send`.
unsafe impl<T: Copy + Send> Send for HugeSlice<T> {}
// SAFETY: shared access only hands out `&[T]`, sound to share across threads when `T: Sync`.
unsafe impl<T: Copy + Sync> Sync for HugeSlice<T> {}

impl<T: Copy + Zeroable> HugeSlice<T> {
    /// Maps `len` zeroed elements following `policy`, touching every page now so the hot path
    /// never faults. Fresh anonymous memory is already zero, so nothing else is written.
    pub fn zeroed(len: usize, policy: MemoryPolicy) -> Result<Self, AllocError> {
        // SAFETY: fresh anonymous mappings read as zero bytes, and `T: Zeroable` promises
        // all-zero bytes are a valid `T`, so every element is initialised.
        unsafe { Self::map_uninit(len, policy) }
    }
}

impl<T: Copy> HugeSlice<T> {
    /// Maps `len` copies of `value` following `policy`; every element (so every page) is
    /// written now.
    pub fn filled(len: usize, value: T, policy: MemoryPolicy) -> Result<Self, AllocError> {
        // SAFETY: every element is written below before the slice is handed out or read.
        let s = unsafe { Self::map_uninit(len, policy)? };
        for i in 0..len {
            // SAFETY: i < len, inside the mapping (or a zero-sized write when size_of::<T>()
            // is 0, valid on the dangling pointer); `write` never reads the old bytes.
            unsafe { s.ptr.as_ptr().add(i).write(value) };
        }
        Ok(s)
    }

    /// Maps room for `len` elements.
    ///
    /// # Safety
    ///
    /// The elements are zero bytes, which need not be a valid `T`: the caller must make every
    /// element valid before the slice is read (or rely on `T: Zeroable`).
    unsafe fn map_uninit(len: usize, policy: MemoryPolicy) -> Result<Self, AllocError> {
        if align_of::<T>() > SMALL_PAGE {
            return Err(AllocError::AlignTooLarge {
                align: align_of::<T>(),
            });
        }
        let elem_size = size_of::<T>();
        let bytes = len
            .checked_mul(elem_size)
            .ok_or(AllocError::TooLarge { len, elem_size })?;
        if bytes == 0 {
            return Ok(Self {
                ptr: NonNull::dangling(),
                len,
                mapped: 0,
                backing: Backing::Normal,
                _owns: PhantomData,
            });
        }
        let mut backing = policy.prefer;
        loop {
            match map(bytes, backing) {
                Ok((ptr, mapped)) => {
                    return Ok(Self {
                        ptr: ptr.cast(),
                        len,
                        mapped,
                        backing,
                        _owns: PhantomData,
                    })
                }
                Err(e) => match backing.fallback() {
                    Some(next) if policy.fallback => backing = next,
                    _ => return Err(e),
                },
            }
        }
    }

    /// What backs this array.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Bytes mapped from the kernel (the array rounded up to whole pages of its backing).
    pub fn mapped_bytes(&self) -> usize {
        self.mapped
    }

    /// How the mapping is resident now, from `/proc/self/smaps`; `None` when nothing is mapped
    /// or smaps is unreadable.
    pub fn residency(&self) -> Option<Residency> {
        if self.mapped == 0 {
            return None;
        }
        residency_of(self.ptr.as_ptr() as usize)
    }
}

impl<T: Copy> Deref for HugeSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised elements (zeroed with `T: Zeroable`, or
        // written by `filled`) inside a mapping this value owns (or is dangling with `len * size_of::<T>() == 0`, valid for
        // an empty or zero-sized slice); the borrow of `self` bounds the lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        if self.mapped != 0 {
            // SAFETY: exactly the range `map` returned, unmapped once; `T: Copy` so no element
            // needs dropping first.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
        }
    }
}

impl<T: Copy> fmt::Debug for HugeSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HugeSlice")
            .field("len", &self.len)
            .field("mapped_bytes", &self.mapped)
            .field("backing", &self.backing)
            .finish()
    }
}

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|v| v & !(to - 1))
}

/// Maps `bytes` (non-zero) with exactly `backing`; returns the start and the mapped length.
fn map(bytes: usize, backing: Backing) -> Result<(NonNull<u8>, usize), AllocError> {
    let too_large = || AllocError::TooLarge {
        len: bytes,
        elem_size: 1,
    };
    match backing {
        Backing::HugeTlb2M => {
            let len = round_up(bytes, HUGE_PAGE_2M).ok_or_else(too_large)?;
            let flags = libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_HUGETLB
                | libc::MAP_HUGE_2MB
                | libc::MAP_POPULATE;
            // MAP_POPULATE faults every huge page in now; the reservation is checked at mmap
            // time, so a shortage is ENOMEM here rather than SIGBUS later.
            let p = mmap_anon(len, flags).ok_or_else(|| AllocError::os(backing, len))?;
            Ok((p, len))
        }
        Backing::TransparentHuge => {
            let thp = HostFs::real().read("/sys/kernel/mm/transparent_hugepage/enabled");
            if let Some(mode) = thp.as_deref().and_then(bracketed_choice) {
                if mode == "never" {
                    return Err(AllocError::Map {
                        backing,
                        bytes,
                        errno: 0,
                        reason: "transparent hugepages are disabled (mode `never`); \
                                 see tuning/thp.sh"
                            .into(),
                    });
                }
            }
            let len = round_up(bytes, HUGE_PAGE_2M).ok_or_else(too_large)?;
            let p = map_aligned_2m(len).ok_or_else(|| AllocError::os(backing, len))?;
            prefault(p, len);
            Ok((p, len))
        }
        Backing::Normal => {
            let len = round_up(bytes, SMALL_PAGE).ok_or_else(too_large)?;
            let p = mmap_anon(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS)
                .ok_or_else(|| AllocError::os(backing, len))?;
            // Ask for small pages explicitly so "normal" means normal even when THP is
            // `always`; failure (kernel without THP) changes nothing, so it is ignored.
            // SAFETY: [p, p+len) is our own fresh mapping.
            unsafe { libc::madvise(p.as_ptr().cast(), len, libc::MADV_NOHUGEPAGE) };
            prefault(p, len);
            Ok((p, len))
        }
    }
}

fn mmap_anon(len: usize, flags: libc::c_int) -> Option<NonNull<u8>> {
    // SAFETY: anonymous mapping at a kernel-chosen address; no fd, no existing memory touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// An anonymous mapping of `len` bytes (a multiple of 2 MiB) starting on a 2 MiB boundary,
/// advised for THP, readable and writable, not yet faulted in.
///
/// THP can only back 2 MiB-aligned ranges and mmap only promises 4 KiB alignment, so map 2 MiB
/// extra and trim both ends. The range is mapped `PROT_NONE` until the advice is in place: if
/// `mlockall(MCL_FUTURE)` is already in force, an accessible mapping would be populated with
/// small pages at once, before `MADV_HUGEPAGE` could apply; `mprotect` populates it after.
fn map_aligned_2m(len: usize) -> Option<NonNull<u8>> {
    let total = len.checked_add(HUGE_PAGE_2M)?;
    // SAFETY: anonymous PROT_NONE mapping at a kernel-chosen address; touches nothing.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    let start = raw as usize;
    let aligned = round_up(start, HUGE_PAGE_2M)?;
    let head = aligned - start;
    let tail = total - head - len;
    let p = aligned as *mut libc::c_void;
    // SAFETY: both trimmed ranges lie inside the mapping created above and are never used;
    // [p, p+len) is the rest of that mapping, ours alone.
    let ok = unsafe {
        if head != 0 {
            libc::munmap(raw, head);
        }
        if tail != 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
        libc::madvise(p, len, libc::MADV_HUGEPAGE) == 0
            && libc::mprotect(p, len, libc::PROT_READ | libc::PROT_WRITE) == 0
    };
    if !ok {
        // Keep errno from the failed call for the caller's error before unmapping.
        let err = std::io::Error::last_os_error();
        // SAFETY: our own mapping, never handed out.
        unsafe { libc::munmap(p, len) };
        // Restore errno for AllocError::os.
        if let Some(code) = err.raw_os_error() {
            // SAFETY: __errno_location returns the calling thread's errno slot.
            unsafe { *libc::__errno_location() = code };
        }
        return None;
    }
    NonNull::new(aligned as *mut u8)
}

/// Writes one byte per 4 KiB page so every page (or the huge page containing it) is allocated
/// now rather than on the hot path. The memory is already zero; writing zero keeps it so.
fn prefault(p: NonNull<u8>, len: usize) {
    let mut off = 0;
    while off < len {
        // SAFETY: off < len and [p, p+len) is our own writable mapping. Volatile so the
        // compiler cannot drop a store of the value the page already holds.
        unsafe { std::ptr::write_volatile(p.as_ptr().add(off), 0) };
        off += SMALL_PAGE;
    }
}

/// Parses the smaps entry of the mapping containing `addr`.
fn residency_of(addr: usize) -> Option<Residency> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    parse_smaps(&smaps, addr)
}

fn parse_smaps(smaps: &str, addr: usize) -> Option<Residency> {
    let mut inside = false;
    let mut r = Residency {
        kernel_page_size: 0,
        anon_huge_bytes: 0,
        rss_bytes: 0,
        locked_bytes: 0,
    };
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                if inside {
                    return Some(r);
                }
                inside = lo <= addr && addr < hi;
                continue;
            }
        }
        if !inside {
            continue;
        }
        let kb = |l: &str| -> usize {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
                * 1024
        };
        match first {
            "KernelPageSize:" => r.kernel_page_size = kb(line),
            "AnonHugePages:" => r.anon_huge_bytes = kb(line),
            "Rss:" => r.rss_bytes = kb(line),
            "Locked:" => r.locked_bytes = kb(line),
            _ => {}
        }
    }
    inside.then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_entry_is_found_by_address() {
        let smaps = "\
7f0000000000-7f0000200000 rw-p 00000000 00:00 0 
Size:               2048 kB
KernelPageSize:        4 kB
Rss:                2048 kB
AnonHugePages:      2048 kB
Locked:                0 kB
7f0000400000-7f0000800000 rw-p 00000000 00:00 0   /anon_hugepage (deleted)
Size:               4096 kB
KernelPageSize:     2048 kB
Rss:                4096 kB
AnonHugePages:         0 kB
Locked:             4096 kB
VmFlags: rd wr mr mw me ht
";
        let r = parse_smaps(smaps, 0x7f00_0040_1000).unwrap();
        assert_eq!(r.kernel_page_size, 2 << 20);
        assert_eq!(r.locked_bytes, 4 << 20);
        let r = parse_smaps(smaps, 0x7f00_0000_0000).unwrap();
        assert_eq!(r.anon_huge_bytes, 2 << 20);
        assert_eq!(r.kernel_page_size, 4096);
        assert!(parse_smaps(smaps, 0x7f00_0030_0000).is_none());
    }

    #[test]
    fn backings_are_ordered_and_named() {
        assert!(Backing::HugeTlb2M > Backing::TransparentHuge);
        assert!(Backing::TransparentHuge > Backing::Normal);
        assert_eq!(Backing::HugeTlb2M.metric_value(), 2);
        assert_eq!(Backing::Normal.to_string(), "normal");
        assert_eq!(
            serde_json::to_string(&Backing::TransparentHuge).unwrap(),
            "\"thp\""
        );
        assert_eq!(round_up(1, HUGE_PAGE_2M), Some(HUGE_PAGE_2M));
        assert_eq!(round_up(HUGE_PAGE_2M, HUGE_PAGE_2M), Some(HUGE_PAGE_2M));
    }
}

// ---------------------------------------------------------------------------------------------
// The process-wide allocator for large allocations
// ---------------------------------------------------------------------------------------------

/// Allocations this large or larger go to [`HugePageAllocator`]'s hugepage mappings.
pub const LARGE_ALLOCATION: usize = HUGE_PAGE_2M;

static LARGE_BYTES: [std::sync::atomic::AtomicUsize; 3] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];
/// Cleared after the first refusal of explicit hugepages: a host with none reserved does not
/// pay a failing mmap for every large allocation.
static TRY_HUGETLB: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Bytes currently held by large allocations, by backing (what the appliance logs once at
/// start-up and exports as a gauge).
pub fn large_allocation_bytes() -> [(Backing, usize); 3] {
    use std::sync::atomic::Ordering::Relaxed;
    [
        (Backing::HugeTlb2M, LARGE_BYTES[2].load(Relaxed)),
        (Backing::TransparentHuge, LARGE_BYTES[1].load(Relaxed)),
        (Backing::Normal, LARGE_BYTES[0].load(Relaxed)),
    ]
}

/// A global allocator that puts every allocation of [`LARGE_ALLOCATION`] bytes or more (order
/// arenas, id indexes, price levels, the `rtrb` rings' slot arrays, connection buffers, FIX
/// message stores) on the best pages the host offers, pre-faulted, and leaves everything
/// smaller to the system allocator.
///
/// Why a global allocator: the rings come from `rtrb`, which allocates its slots itself, and
/// the FIX stores from the `fix` crate; routing by size covers them all without threading a
/// custom allocator through crates that do not know about hugepages. Large allocations happen
/// at start-up; none happens on the hot path (the counting-allocator tests prove it).
///
/// Every large allocation is mapped in whole 2 MiB units whatever its backing, so `dealloc`
/// knows the mapping's length from the layout alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct HugePageAllocator;

impl HugePageAllocator {
    fn is_large(layout: std::alloc::Layout) -> bool {
        layout.size() >= LARGE_ALLOCATION && layout.align() <= HUGE_PAGE_2M
    }

    fn map_large(size: usize, align: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(len) = round_up(size, HUGE_PAGE_2M) else {
            return std::ptr::null_mut();
        };
        if TRY_HUGETLB.load(Relaxed) {
            let flags = libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_HUGETLB
                | libc::MAP_HUGE_2MB
                | libc::MAP_POPULATE;
            match mmap_anon(len, flags) {
                Some(p) => {
                    LARGE_BYTES[2].fetch_add(len, Relaxed);
                    return p.as_ptr();
                }
                None => TRY_HUGETLB.store(false, Relaxed),
            }
        }
        // map_aligned_2m maps PROT_NONE first and advises THP before any page exists, so
        // this works under mlockall(MCL_FUTURE) too. The kernel may still hand out small
        // pages when it has no free 2 MiB frame; the mapping is counted as THP-advised.
        if let Some(p) = map_aligned_2m(len) {
            prefault(p, len);
            LARGE_BYTES[1].fetch_add(len, Relaxed);
            return p.as_ptr();
        }
        // The last resort is only page aligned: refuse (null) what needs more.
        if align > 4096 {
            return std::ptr::null_mut();
        }
        match mmap_anon(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) {
            Some(p) => {
                prefault(p, len);
                LARGE_BYTES[0].fetch_add(len, Relaxed);
                p.as_ptr()
            }
            None => std::ptr::null_mut(),
        }
    }
}

// SAFETY: small layouts are forwarded unchanged to the system allocator. Large layouts get a
// fresh private anonymous mapping of at least `size` bytes, zero-filled by the kernel, 2 MiB
// aligned (hugetlb or the trimmed THP mapping: any `align <= 2 MiB`) or, as a last resort,
// page aligned only when `align <= 4 KiB` (else null, an allocation failure); `dealloc` unmaps exactly the length
// `map_large` mapped for the same layout (size rounded up to 2 MiB). `realloc` between the two
// classes copies `min(old, new)` bytes into a new block and frees the old one.
unsafe impl std::alloc::GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if Self::is_large(layout) {
            Self::map_large(layout.size(), layout.align())
        } else {
            // SAFETY: the caller's contract is the system allocator's contract.
            unsafe { std::alloc::System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if Self::is_large(layout) {
            // Fresh anonymous mappings are zero (prefault writes zeros).
            Self::map_large(layout.size(), layout.align())
        } else {
            // SAFETY: as for `alloc`.
            unsafe { std::alloc::System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if Self::is_large(layout) {
            let len = round_up(layout.size(), HUGE_PAGE_2M).unwrap_or(0);
            // SAFETY: `ptr` came from `map_large` for this layout, which mapped `len` bytes.
            unsafe { libc::munmap(ptr.cast(), len) };
            // The backing is not recorded per block: the gauges report what was mapped,
            // which is what start-up logs; large blocks are not freed while running.
        } else {
            // SAFETY: as for `alloc`.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout =
            unsafe { std::alloc::Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !Self::is_large(layout) && !Self::is_large(new_layout) {
            // SAFETY: as for `alloc`.
            return unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: a valid layout, see above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least min(old, new) bytes and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod large_allocation_tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout};

    #[test]
    fn large_blocks_are_mapped_aligned_zeroed_and_survive_realloc() {
        let a = HugePageAllocator;
        let before: usize = large_allocation_bytes().iter().map(|(_, b)| b).sum();
        let layout = Layout::from_size_align(3 << 20, 64).unwrap();
        // SAFETY: a valid non-zero layout; the block is freed below with the same layout.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % HUGE_PAGE_2M, 0, "2 MiB aligned");
            assert!((0..layout.size()).step_by(4096).all(|i| *p.add(i) == 0));
            *p.add(12345) = 7;
            let after: usize = large_allocation_bytes().iter().map(|(_, b)| b).sum();
            assert!(after >= before + (4 << 20), "counted in whole 2 MiB units");
            // Shrink across the threshold: contents kept, the small block is the system's.
            let q = a.realloc(p, layout, 16_000);
            assert_eq!(*q.add(12345), 7);
            // Grow back across the threshold.
            let small = Layout::from_size_align(16_000, 64).unwrap();
            let r = a.realloc(q, small, 5 << 20);
            assert_eq!(*r.add(12345), 7);
            a.dealloc(r, Layout::from_size_align(5 << 20, 64).unwrap());
            // Small allocations are the system allocator's.
            let s = a.alloc(Layout::from_size_align(100, 8).unwrap());
            assert!(!s.is_null());
            a.dealloc(s, Layout::from_size_align(100, 8).unwrap());
        }
    }
}

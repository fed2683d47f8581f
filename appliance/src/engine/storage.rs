//! Where the engine's big arrays come from.
//!
//! Every array the engine reserves at start-up (order arena, id index, price levels) is made
//! here, so that a later change can back them with hugepages (`platform` owns that) without
//! touching the book code. Cold path: called only from `Engine::new`.

/// Allocates `len` copies of `fill` and writes every element now.
///
/// Writing (rather than a lazily zeroed `calloc`) faults every page in at start-up, so the
/// first touch of a slot on the hot path costs a cache miss, never a page fault.
pub(crate) fn alloc_slice<T: Copy>(len: usize, fill: T) -> Box<[T]> {
    let mut v = Vec::with_capacity(len);
    v.resize(len, fill);
    v.into_boxed_slice()
}

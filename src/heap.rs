//! Keeping the C heap from holding on to memory the relay no longer uses.
//!
//! With glibc (the Raspberry Pi and desktop builds; the static musl builds are not affected),
//! freed memory often stays in the process:
//! - each thread that contends for the heap gets an arena of its own, up to eight per core, and
//!   memory freed in one arena is not reused by another: with a thread per viewer that costs a
//!   couple of megabytes of fragmented heap. The relay allocates little per frame, so one arena
//!   is plenty.
//! - blocks above the mmap threshold go back to the system when freed, but glibc raises that
//!   threshold to the size of every such block freed, so after a few large requests (a client
//!   sending a 1 MB header line, which tiny_http buffers whole) later ones stay in the heap. A
//!   fixed threshold keeps large blocks mapped and returned.
//! - the top of the heap is returned only when it is free; memory freed below something still in
//!   use is kept. `malloc_trim` returns free pages from anywhere in the heap; housekeeping calls
//!   [`give_back`] every few seconds.

/// Blocks this large or larger are mapped on their own and returned to the system when freed.
/// Phone frames (30–500 KB) stay below it, so a push does not map and unmap its buffer; a
/// megabyte header line, which tiny_http buffers whole, goes above it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1024 * 1024;

/// Tunes the allocator. Call before any other thread exists.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; called while the process has one thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

/// Returns free heap pages to the system.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases pages the allocator does not use.
    unsafe {
        libc::malloc_trim(0);
    }
}

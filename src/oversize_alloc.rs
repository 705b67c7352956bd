//! A global allocator that keeps absurd allocations from aborting the process.
//!
//! tiny_http 0.12 discards the unread part of a request body when the request is dropped, and
//! does it by allocating a zeroed buffer of the *whole remaining declared length* at once
//! (`EqualReader::drop`). A client that sends `Content-Length: 100000000000` and hangs up
//! therefore makes the process ask for 100 GB, which the kernel refuses, and Rust aborts on a
//! failed allocation. The relay never reads such a body (it answers 413 first), but it cannot
//! stop tiny_http from running that drop, and tiny_http must not be copied or patched here.
//!
//! So allocations of [`THRESHOLD`] bytes or more are served by `mmap` with `MAP_NORESERVE`:
//! the kernel hands out address space without committing memory, pages become real only when
//! written, and the discard loop writes no more than what the client actually sent. Everything
//! smaller goes to the system allocator untouched. The relay's own buffers are far below the
//! threshold (a frame is at most `--max-frame-bytes`, 4 MiB by default).
//!
//! Declared lengths too large to map even so are never dropped: see `absurd_bodies`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations at least this big bypass the system allocator.
pub const THRESHOLD: usize = 16 * 1024 * 1024;

/// Page size assumed for alignment: 4 KiB on every target the relay ships for.
const PAGE: usize = 4096;

pub struct OversizeAlloc;

fn is_oversize(layout: &Layout) -> bool {
    layout.size() >= THRESHOLD && layout.align() <= PAGE
}

/// Maps `size` bytes of zeroed, uncommitted memory; null on failure, as `GlobalAlloc` wants.
fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let address = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        address.cast()
    }
}

// SAFETY: every block is returned to the allocator that made it, decided by the same size test
// on the same layout, as `GlobalAlloc` guarantees dealloc is called with the alloc layout.
unsafe impl GlobalAlloc for OversizeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_oversize(&layout) {
            map(layout.size())
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_oversize(&layout) {
            // Anonymous mappings are zero-filled by the kernel.
            map(layout.size())
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if is_oversize(&layout) {
            libc::munmap(block.cast(), layout.size());
        } else {
            System.dealloc(block, layout);
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if !is_oversize(&layout) && !is_oversize(&new_layout) {
            return System.realloc(block, layout, new_size);
        }
        // Crossing the threshold (or resizing a mapping): move by hand so each block stays
        // with the allocator that made it.
        let moved = self.alloc(new_layout);
        if !moved.is_null() {
            ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
            self.dealloc(block, layout);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_zeroed_blocks_are_reserved_lazily_and_usable() {
        let allocator = OversizeAlloc;
        // Far more than a router's memory (and on 64-bit, than this machine's): only address
        // space is taken.
        let layout = Layout::from_size_align(crate::absurd_bodies::DISCARD_LIMIT / 4, 1).unwrap();
        unsafe {
            let block = allocator.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert_eq!(*block.add(12345), 0);
            *block.add(12345) = 7;
            allocator.dealloc(block, layout);
        }
    }

    #[test]
    fn growing_across_the_threshold_keeps_the_contents() {
        let allocator = OversizeAlloc;
        let small = Layout::from_size_align(1024, 8).unwrap();
        unsafe {
            let block = allocator.alloc(small);
            *block = 42;
            let grown = allocator.realloc(block, small, THRESHOLD * 2);
            assert_eq!(*grown, 42);
            let big = Layout::from_size_align(THRESHOLD * 2, 8).unwrap();
            let shrunk = allocator.realloc(grown, big, 100);
            assert_eq!(*shrunk, 42);
            allocator.dealloc(shrunk, Layout::from_size_align(100, 8).unwrap());
        }
    }
}

//! The isolate allocator. It enforces the run's memory limit itself (QuickJS's
//! own limit is left off) so that it knows when the limit was hit: QuickJS
//! turns a refused allocation into a catchable error, or drops a promise job
//! it could not queue, and either would hide the limit from the run's
//! outcome. The run checks [`MemoryStats::limit_hit`] and ends as
//! `memory_limit`. It also records the peak so every run can report it.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::{Allocator, RustAllocator};

#[derive(Debug)]
pub(crate) struct MemoryStats {
    current: Cell<usize>,
    peak: Cell<usize>,
    limit: Cell<usize>,
    /// An allocation was refused at the limit since the limit was last set.
    limit_hit: Cell<bool>,
}

impl Default for MemoryStats {
    fn default() -> Self {
        MemoryStats {
            current: Cell::new(0),
            peak: Cell::new(0),
            limit: Cell::new(usize::MAX),
            limit_hit: Cell::new(false),
        }
    }
}

impl MemoryStats {
    pub(crate) fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Sets the heap limit and forgets earlier refusals.
    pub(crate) fn set_limit(&self, bytes: usize) {
        self.limit.set(bytes);
        self.limit_hit.set(false);
    }

    pub(crate) fn limit_hit(&self) -> bool {
        self.limit_hit.get()
    }

    /// Whether `grow` more bytes fit; records a refusal.
    fn admits(&self, grow: usize) -> bool {
        let fits = self
            .current
            .get()
            .checked_add(grow)
            .is_some_and(|total| total <= self.limit.get());
        if !fits {
            self.limit_hit.set(true);
        }
        fits
    }

    fn add(&self, n: usize) {
        let c = self.current.get() + n;
        self.current.set(c);
        if c > self.peak.get() {
            self.peak.set(c);
        }
    }

    fn sub(&self, n: usize) {
        self.current.set(self.current.get().saturating_sub(n));
    }
}

pub(crate) struct TrackingAllocator {
    pub(crate) stats: Rc<MemoryStats>,
}

// SAFETY: every method delegates to `RustAllocator`, which upholds the
// trait's contract, or returns null (an allocation failure, which callers
// handle); the bookkeeping only reads sizes of live allocations.
unsafe impl Allocator for TrackingAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.stats.admits(size) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.alloc(size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by `RustAllocator`.
            self.stats.add(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        if !self.stats.admits(count.saturating_mul(size)) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.calloc(count, size);
        if !ptr.is_null() {
            // SAFETY: as above.
            self.stats.add(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if !ptr.is_null() {
            // SAFETY: the caller passes a live allocation of this allocator.
            self.stats.sub(unsafe { RustAllocator::usable_size(ptr) });
        }
        // SAFETY: forwarded contract.
        unsafe { RustAllocator.dealloc(ptr) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // `RustAllocator::realloc` does not accept null.
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        // SAFETY: the caller passes a live allocation of this allocator.
        let old = unsafe { RustAllocator::usable_size(ptr) };
        if !self.stats.admits(new_size.saturating_sub(old)) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded contract.
        let new = unsafe { RustAllocator.realloc(ptr, new_size) };
        if !new.is_null() {
            self.stats.sub(old);
            // SAFETY: `new` was just returned by `RustAllocator`.
            self.stats.add(unsafe { RustAllocator::usable_size(new) });
        }
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: forwarded contract.
        unsafe { RustAllocator::usable_size(ptr) }
    }
}

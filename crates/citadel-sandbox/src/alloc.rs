//! The isolate allocator: QuickJS enforces the memory limit itself; this
//! wrapper only records the peak so every run can report it.

use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::{Allocator, RustAllocator};

#[derive(Debug, Default)]
pub(crate) struct MemoryStats {
    current: Cell<usize>,
    peak: Cell<usize>,
}

impl MemoryStats {
    pub(crate) fn peak(&self) -> usize {
        self.peak.get()
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
// trait's contract; the bookkeeping only reads sizes of live allocations.
unsafe impl Allocator for TrackingAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let ptr = RustAllocator.alloc(size);
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by `RustAllocator`.
            self.stats.add(unsafe { RustAllocator::usable_size(ptr) });
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
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

//! The isolate allocator. It enforces the run's memory limit itself (QuickJS's
//! own limit is left off) so that it knows when the limit was hit: QuickJS
//! turns a refused allocation into a catchable error, or drops a promise job
//! it could not queue, and either would hide the limit from the run's
//! outcome. The run checks [`MemoryStats::limit_hit`] and ends as
//! `memory_limit`. It also records the peak so every run can report it.
//!
//! A runtime serves many runs one after another, so the accounting is per
//! run, not per runtime: every block carries, in its header, the epoch it was
//! allocated in. A run's context is made in a new epoch (before the run, or
//! ahead of it while the thread is idle) and the run continues it, so the
//! run is charged exactly for the blocks of its epoch that are live: its
//! context, the prelude and everything it allocates. Blocks of earlier
//! epochs (what earlier runs left for the garbage collector, the runtime's
//! own tables) are never charged to it, and freeing them — whenever the
//! collector gets to it, even during the run — never gives it room.

use std::alloc::Layout;
use std::cell::Cell;
use std::rc::Rc;

use rquickjs::allocator::Allocator;

/// Every block starts with its header; 8 bytes keep what follows aligned
/// for any value QuickJS stores (at most 8-byte aligned).
const HEADER: usize = 8;
const ALIGN: usize = 8;

#[derive(Clone, Copy)]
#[repr(C)]
struct Header {
    /// Bytes of the block after its header (the request rounded up to 8).
    size: u32,
    /// The epoch the block was allocated (or last grown) in.
    epoch: u32,
}

#[derive(Debug)]
pub(crate) struct MemoryStats {
    /// The epoch new blocks are tagged with.
    epoch: Cell<u32>,
    /// Bytes live in blocks of the current epoch.
    current: Cell<usize>,
    peak: Cell<usize>,
    limit: Cell<usize>,
    /// An allocation was refused at the limit since the limit was last set.
    limit_hit: Cell<bool>,
    /// Bytes live in blocks of earlier epochs.
    older: Cell<usize>,
}

impl Default for MemoryStats {
    fn default() -> Self {
        MemoryStats {
            epoch: Cell::new(0),
            current: Cell::new(0),
            peak: Cell::new(0),
            limit: Cell::new(usize::MAX),
            limit_hit: Cell::new(false),
            older: Cell::new(0),
        }
    }
}

impl MemoryStats {
    pub(crate) fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Bytes live in blocks of the current epoch.
    #[cfg(test)]
    pub(crate) fn current(&self) -> usize {
        self.current.get()
    }

    /// Bytes live in blocks of earlier epochs: what the collector may still
    /// free, and the runtime's own tables.
    pub(crate) fn older(&self) -> usize {
        self.older.get()
    }

    /// Epochs begun so far.
    pub(crate) fn epochs(&self) -> u32 {
        self.epoch.get()
    }

    /// Starts a new epoch under `limit`: from now on new blocks belong to it,
    /// and the blocks of the epoch before count as older.
    pub(crate) fn new_epoch(&self, limit: usize) {
        self.older.set(self.older.get() + self.current.get());
        self.current.set(0);
        self.epoch.set(self.epoch.get().wrapping_add(1));
        self.begin(limit);
    }

    /// Sets the limit for what the current epoch holds and forgets earlier
    /// refusals; the peak starts again from what it holds now.
    pub(crate) fn begin(&self, limit: usize) {
        self.limit.set(limit);
        self.limit_hit.set(false);
        self.peak.set(self.current.get());
    }

    pub(crate) fn limit_hit(&self) -> bool {
        self.limit_hit.get()
    }

    /// Whether `grow` more bytes fit; records a refusal.
    #[inline]
    fn admits(&self, grow: usize) -> bool {
        let fits = grow <= self.limit.get().saturating_sub(self.current.get());
        if !fits {
            self.limit_hit.set(true);
        }
        fits
    }

    #[inline]
    fn add(&self, n: usize) {
        let c = self.current.get() + n;
        self.current.set(c);
        if c > self.peak.get() {
            self.peak.set(c);
        }
    }

    #[inline]
    fn sub(&self, epoch: u32, n: usize) {
        let bucket = if epoch == self.epoch.get() {
            &self.current
        } else {
            &self.older
        };
        bucket.set(bucket.get().saturating_sub(n));
    }
}

pub(crate) struct TrackingAllocator {
    pub(crate) stats: Rc<MemoryStats>,
}

/// The size a request is kept as, or `None` when it cannot be represented in
/// a header (over 4 GiB: refused as over the limit).
#[inline]
fn rounded(size: usize) -> Option<usize> {
    let size = size.checked_add(ALIGN - 1)? & !(ALIGN - 1);
    (size <= u32::MAX as usize).then_some(size)
}

#[inline]
fn layout(size: usize) -> Layout {
    // SAFETY: `size + HEADER` does not overflow (size ≤ u32::MAX) and ALIGN
    // is a power of two.
    unsafe { Layout::from_size_align_unchecked(size + HEADER, ALIGN) }
}

impl TrackingAllocator {
    /// # Safety
    /// `ptr` must be a live block of this allocator.
    #[inline]
    unsafe fn header(ptr: *mut u8) -> (*mut u8, Header) {
        // SAFETY: every block handed out is preceded by its header.
        unsafe {
            let base = ptr.sub(HEADER);
            (base, base.cast::<Header>().read())
        }
    }

    /// Writes the header of a block just allocated and returns what QuickJS
    /// uses.
    ///
    /// # Safety
    /// `base` must be a fresh allocation of `layout(size)`.
    #[inline]
    unsafe fn finish(&self, base: *mut u8, size: usize) -> *mut u8 {
        self.stats.add(size);
        let header = Header {
            size: size as u32,
            epoch: self.stats.epoch.get(),
        };
        // SAFETY: `base` holds at least HEADER bytes, aligned to 8.
        unsafe {
            base.cast::<Header>().write(header);
            base.add(HEADER)
        }
    }

    fn allocate(&mut self, size: usize, zeroed: bool) -> *mut u8 {
        let Some(size) = rounded(size) else {
            self.stats.limit_hit.set(true);
            return std::ptr::null_mut();
        };
        if !self.stats.admits(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: the layout has a non-zero size (the header).
        let base = unsafe {
            if zeroed {
                std::alloc::alloc_zeroed(layout(size))
            } else {
                std::alloc::alloc(layout(size))
            }
        };
        if base.is_null() {
            return base;
        }
        // SAFETY: just allocated with `layout(size)`.
        unsafe { self.finish(base, size) }
    }
}

// SAFETY: blocks come from the global allocator with the layout recorded in
// their header and go back to it with the same layout; null is returned on
// any failure (which QuickJS handles). The bookkeeping only reads headers of
// live blocks.
unsafe impl Allocator for TrackingAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        self.allocate(size, false)
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        match count.checked_mul(size) {
            Some(total) => self.allocate(total, true),
            None => {
                self.stats.limit_hit.set(true);
                std::ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: the caller passes a live block of this allocator.
        unsafe {
            let (base, header) = Self::header(ptr);
            let size = header.size as usize;
            self.stats.sub(header.epoch, size);
            std::alloc::dealloc(base, layout(size));
        }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let Some(new_size) = rounded(new_size) else {
            self.stats.limit_hit.set(true);
            return std::ptr::null_mut();
        };
        // SAFETY: the caller passes a live block of this allocator.
        let (base, header) = unsafe { Self::header(ptr) };
        let old = header.size as usize;
        // The grown block belongs to this epoch: charge all of it unless it
        // already did.
        let ours = header.epoch == self.stats.epoch.get();
        let grow = if ours {
            new_size.saturating_sub(old)
        } else {
            new_size
        };
        if !self.stats.admits(grow) {
            return std::ptr::null_mut();
        }
        // SAFETY: `base` was allocated with `layout(old)`; the new size is
        // non-zero and does not overflow.
        let new = unsafe { std::alloc::realloc(base, layout(old), new_size + HEADER) };
        if new.is_null() {
            return new;
        }
        self.stats.sub(header.epoch, old);
        // SAFETY: `new` is a live allocation of `layout(new_size)`.
        unsafe { self.finish(new, new_size) }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller passes a live block of this allocator.
        unsafe { Self::header(ptr).1.size as usize }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_earlier_epochs_are_neither_charged_nor_credited() {
        let stats = Rc::new(MemoryStats::default());
        let mut a = TrackingAllocator {
            stats: Rc::clone(&stats),
        };
        stats.new_epoch(1000);
        let old = a.alloc(600);
        assert_eq!((stats.current(), stats.older()), (600, 0));
        stats.new_epoch(1000);
        assert_eq!((stats.current(), stats.older()), (0, 600));
        let mine = a.alloc(1000);
        assert!(!mine.is_null());
        // Full: freeing the older block gives no room.
        // SAFETY: both are live blocks of `a`.
        unsafe { a.dealloc(old) };
        assert_eq!((stats.current(), stats.older()), (1000, 0));
        assert!(a.alloc(8).is_null());
        assert!(stats.limit_hit());
        // SAFETY: live block of `a`.
        unsafe { a.dealloc(mine) };
        assert_eq!(stats.current(), 0);
        assert_eq!(stats.peak(), 1000);
    }

    #[test]
    fn growing_an_older_block_charges_all_of_it() {
        let stats = Rc::new(MemoryStats::default());
        let mut a = TrackingAllocator {
            stats: Rc::clone(&stats),
        };
        stats.new_epoch(usize::MAX);
        let table = a.alloc(64);
        stats.new_epoch(100);
        // SAFETY: `table` is a live block of `a`.
        let refused = unsafe { a.realloc(table, 128) };
        assert!(refused.is_null());
        stats.begin(1000);
        // SAFETY: as above; the failed realloc left it live.
        let table = unsafe { a.realloc(table, 128) };
        assert!(!table.is_null());
        assert_eq!((stats.current(), stats.older()), (128, 0));
        // SAFETY: live block of `a`.
        assert_eq!(unsafe { TrackingAllocator::usable_size(table) }, 128);
        // SAFETY: live block of `a`.
        unsafe { a.dealloc(table) };
        assert_eq!(stats.current(), 0);
    }
}

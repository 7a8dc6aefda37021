//! [`DeviceArena`]: serves any [`Allocator`] from `memplan-core` out of real backend memory.
//!
//! The allocator decides offsets in its own simulated address space; the arena reserves one
//! virtual range of `window` bytes (an [`ExpandableSegment`]) and translates
//! `addr -> segment.base() + (addr - sim_base)`, mapping physical pages on demand: an
//! allocation maps every page it touches that is not mapped yet, and a page stays mapped
//! (cached) after its last allocation goes until [`DeviceArena::trim`]. So the addresses
//! handed out are real device pointers, physical memory follows the allocator's live
//! footprint in whole pages, and any allocator works unchanged (online, plan-guided, the
//! PyTorch models).
//!
//! ```text
//!  allocator space:  sim_base ....... addr ........ sim_base + window
//!  device VA:        seg.base ....... ptr  ........ seg.base + window
//!  pages:            [mapped][mapped][ -- ][mapped][ -- ] ...   refs[i] = live allocations on page i
//! ```
//!
//! **Cross-stream reuse.** [`DeviceArena::free`] gives the block back at once: correct when
//! every later user of the memory runs on the stream that last used it, or after a
//! synchronization. [`DeviceArena::free_on_stream`] is the safe form for multi-stream callers:
//! it records an event on the freeing stream and returns the block to the allocator only once
//! that event has completed (checked at each allocation; on out-of-memory the arena waits for
//! pending frees and retries once).
//!
//! Invariants: `live` holds every allocation handed out and not freed (deferred frees stay in
//! `live` until reclaimed); `refs[i]` is the number of `live` entries touching page `i`; a
//! page with `refs[i] > 0` is mapped.

use std::collections::{BTreeMap, VecDeque};

use memplan_core::allocator::{Addr, Allocator};

use crate::backend::{Backend, DevPtr, EventHandle, StreamHandle};
use crate::error::{Error, Result, invalid};
use crate::vmm::{ExpandableSegment, page_table};

/// One live allocation.
#[derive(Debug, Clone, Copy)]
struct Live {
    /// Bytes requested.
    size: u64,
    /// Allocator address.
    addr: Addr,
}

/// Counters of a [`DeviceArena`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Allocations served.
    pub allocs: u64,
    /// Frees completed (given back to the allocator).
    pub frees: u64,
    /// Frees waiting for their stream's event.
    pub pending_frees: u64,
    /// Bytes of physical memory mapped now.
    pub mapped: u64,
    /// Largest `mapped` seen.
    pub peak_mapped: u64,
    /// Times an allocation waited for pending frees after running out of memory.
    pub oom_retries: u64,
}

/// Real device memory served by a core allocator. See the [module docs](self).
///
/// # Examples
/// ```
/// use memplan_core::allocator::{Allocator, OnlineAllocator};
/// use memplan_core::allocator::online::DEFAULT_BASE;
/// use memplan_cuda::{Backend, DeviceArena, HostBackend, StreamHandle};
/// let backend = HostBackend::default();
/// let alloc = OnlineAllocator::with_capacity(64 << 20);
/// let mut arena = DeviceArena::new(backend, alloc, DEFAULT_BASE, 64 << 20)?;
/// let p = arena.alloc(1000, StreamHandle::DEFAULT)?;
/// let data = [42u8; 1000];
/// // SAFETY: `data` outlives the copy (the Host backend copies at once).
/// unsafe { arena.backend_mut().copy_h2d(p, data.as_ptr(), 1000, StreamHandle::DEFAULT)? };
/// arena.free(p)?;
/// # Ok::<(), memplan_cuda::Error>(())
/// ```
#[derive(Debug)]
pub struct DeviceArena<A: Allocator, B: Backend> {
    backend: B,
    alloc: A,
    sim_base: Addr,
    segment: Option<ExpandableSegment>,
    live: BTreeMap<DevPtr, Live>,
    refs: Vec<u32>,
    /// Deferred frees: (pointer, event recorded on the freeing stream), oldest first.
    pending: VecDeque<(DevPtr, EventHandle)>,
    /// Events ready for reuse.
    spare_events: Vec<EventHandle>,
    stats: ArenaStats,
}

impl<A: Allocator, B: Backend> DeviceArena<A, B> {
    /// An arena over `backend` serving `alloc`, whose addresses must fall in
    /// `[sim_base, sim_base + window)`. Reserves `window` bytes (rounded up to pages) of
    /// virtual address space; maps nothing yet.
    ///
    /// # Errors
    /// `window == 0`; a window whose page tables host memory cannot hold; backend errors.
    pub fn new(mut backend: B, alloc: A, sim_base: Addr, window: u64) -> Result<Self> {
        let segment = ExpandableSegment::new(&mut backend, window)?;
        let refs = usize::try_from(segment.va_size() / segment.page_size())
            .map_err(|_| Error::Overflow)
            .and_then(|pages| page_table(pages, segment.va_size()));
        let refs = match refs {
            Ok(r) => r,
            Err(e) => {
                let _ = segment.release(&mut backend);
                return Err(e);
            }
        };
        Ok(DeviceArena {
            backend,
            alloc,
            sim_base,
            segment: Some(segment),
            live: BTreeMap::new(),
            refs,
            pending: VecDeque::new(),
            spare_events: Vec::new(),
            stats: ArenaStats::default(),
        })
    }

    fn seg(&self) -> &ExpandableSegment {
        // `segment` is `Some` from `new` until `drop`.
        self.segment.as_ref().expect("segment present until drop")
    }

    /// The allocator (for its stats and name).
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// The backend, for copies and events on the arena's memory.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The virtual range: `(base, bytes)`.
    pub fn window(&self) -> (DevPtr, u64) {
        (self.seg().base(), self.seg().va_size())
    }

    /// Counters.
    pub fn stats(&self) -> ArenaStats {
        let mut s = self.stats;
        s.mapped = self.seg().mapped_bytes();
        s.pending_frees = self.pending.len() as u64;
        s
    }

    /// Bytes requested of the live allocation at `ptr`, if it is one (pending frees count as
    /// live until reclaimed).
    pub fn size_of(&self, ptr: DevPtr) -> Option<u64> {
        self.live.get(&ptr).map(|l| l.size)
    }

    /// Pages touched by `size` bytes at window offset `off`.
    fn pages_of(&self, off: u64, size: u64) -> core::ops::Range<usize> {
        let page = self.seg().page_size();
        let end = off + size.max(1);
        (off / page) as usize..end.div_ceil(page) as usize
    }

    /// Allocates `size` bytes (0 allowed) for use on `stream`; returns a device pointer.
    /// Completed deferred frees are reclaimed first; on out-of-memory the arena waits for the
    /// pending ones and tries once more.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] (allocator capacity or device memory);
    /// [`Error::OutsideWindow`] when the allocator's address does not fit the window; backend
    /// errors.
    pub fn alloc(&mut self, size: u64, stream: StreamHandle) -> Result<DevPtr> {
        self.reclaim()?;
        match self.try_alloc(size, stream) {
            Err(Error::OutOfMemory { .. }) if !self.pending.is_empty() => {
                self.stats.oom_retries += 1;
                self.reclaim_all()?;
                self.try_alloc(size, stream)
            }
            r => r,
        }
    }

    fn try_alloc(&mut self, size: u64, stream: StreamHandle) -> Result<DevPtr> {
        // Core allocators take a u32 stream id; fold the 64-bit handle deterministically.
        let sid = (stream.0 ^ (stream.0 >> 32)) as u32;
        // Size 0 is always accepted: an allocator that refuses it serves 1 byte instead.
        let addr = match self.alloc.alloc(size, sid) {
            Err(memplan_core::allocator::AllocError::ZeroSize) => self.alloc.alloc(1, sid)?,
            r => r?,
        };
        let span = size.max(1);
        let off = addr.checked_sub(self.sim_base).filter(|&o| {
            o.checked_add(span)
                .is_some_and(|e| e <= self.seg().va_size())
        });
        let Some(off) = off else {
            let _ = self.alloc.free(addr);
            return Err(Error::OutsideWindow {
                addr,
                size,
                window: self.seg().va_size(),
            });
        };
        let mut seg = self.segment.take().expect("segment present until drop");
        let mapped = seg.map_range(&mut self.backend, off, span);
        self.segment = Some(seg);
        if let Err(e) = mapped {
            let _ = self.alloc.free(addr);
            return Err(e);
        }
        for i in self.pages_of(off, size) {
            self.refs[i] += 1;
        }
        let ptr = self.seg().base() + off;
        self.live.insert(ptr, Live { size, addr });
        self.stats.allocs += 1;
        self.stats.peak_mapped = self.stats.peak_mapped.max(self.seg().mapped_bytes());
        Ok(ptr)
    }

    /// Frees the allocation at `ptr` at once (see the module docs on streams).
    ///
    /// # Errors
    /// `ptr` is not a live allocation (or already has a deferred free pending).
    pub fn free(&mut self, ptr: DevPtr) -> Result<()> {
        if self.pending.iter().any(|&(p, _)| p == ptr) {
            return Err(invalid(format!(
                "free of {ptr:#x}, already freed (pending)"
            )));
        }
        self.release(ptr)
    }

    fn release(&mut self, ptr: DevPtr) -> Result<()> {
        let live = *self
            .live
            .get(&ptr)
            .ok_or_else(|| invalid(format!("free of {ptr:#x}, not a live allocation")))?;
        self.alloc.free(live.addr)?;
        self.live.remove(&ptr);
        let off = ptr - self.seg().base();
        for i in self.pages_of(off, live.size) {
            self.refs[i] -= 1;
        }
        self.stats.frees += 1;
        Ok(())
    }

    /// Frees the allocation at `ptr` once the work queued on `stream` so far has completed:
    /// records an event there and defers. See the module docs.
    ///
    /// # Errors
    /// `ptr` is not a live allocation or already freed; backend errors.
    pub fn free_on_stream(&mut self, ptr: DevPtr, stream: StreamHandle) -> Result<()> {
        if !self.live.contains_key(&ptr) || self.pending.iter().any(|&(p, _)| p == ptr) {
            return Err(invalid(format!("free of {ptr:#x}, not a live allocation")));
        }
        let ev = match self.spare_events.pop() {
            Some(e) => e,
            None => self.backend.event_create()?,
        };
        if let Err(e) = self.backend.event_record(ev, stream) {
            self.spare_events.push(ev);
            return Err(e);
        }
        self.pending.push_back((ptr, ev));
        Ok(())
    }

    /// Gives back to the allocator every deferred free whose event has completed; returns how
    /// many.
    ///
    /// # Errors
    /// Backend errors.
    pub fn reclaim(&mut self) -> Result<u64> {
        let mut n = 0;
        let mut i = 0;
        while i < self.pending.len() {
            let (ptr, ev) = self.pending[i];
            if self.backend.event_query(ev)? {
                self.pending.remove(i);
                self.spare_events.push(ev);
                self.release(ptr)?;
                n += 1;
            } else {
                i += 1;
            }
        }
        Ok(n)
    }

    /// Waits for every deferred free's event, then reclaims them all.
    ///
    /// # Errors
    /// Backend errors.
    pub fn reclaim_all(&mut self) -> Result<u64> {
        for &(_, ev) in &self.pending {
            self.backend.event_synchronize(ev)?;
        }
        self.reclaim()
    }

    /// Unmaps and releases every mapped page no live allocation touches; returns the bytes
    /// given back. Synchronizes nothing: call it when no queued work uses freed memory.
    ///
    /// # Errors
    /// Backend errors.
    pub fn trim(&mut self) -> Result<u64> {
        let page = self.seg().page_size();
        let mut seg = self.segment.take().expect("segment present until drop");
        let mut n = 0;
        let mut r = Ok(());
        for (i, &refs) in self.refs.iter().enumerate() {
            if refs == 0 && seg.is_mapped(i as u64) {
                match seg.unmap_range(&mut self.backend, i as u64 * page, page) {
                    Ok(b) => n += b,
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
        }
        self.segment = Some(seg);
        r.map(|()| n)
    }
}

impl<A: Allocator, B: Backend> Drop for DeviceArena<A, B> {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; the device memory is then leaked, not misused.
        let _ = self.reclaim_all();
        for (_, ev) in self.pending.drain(..) {
            let _ = self.backend.event_destroy(ev);
        }
        for ev in self.spare_events.drain(..) {
            let _ = self.backend.event_destroy(ev);
        }
        if let Some(seg) = self.segment.take() {
            let _ = seg.release(&mut self.backend);
        }
    }
}

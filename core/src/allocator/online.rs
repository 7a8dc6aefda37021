//! memplan's own online allocator for device memory (allocator name `"online"`).
//!
//! # Design
//!
//! Exact best fit over ordered maps, with immediate coalescing, on top of one contiguous
//! virtual range that grows and shrinks at its end in whole pages, the way PyTorch's
//! expandable segments do (`cuMemAddressReserve` once, then `cuMemMap` page by page).
//!
//! - Every request is rounded up to a multiple of [`ALIGN`] (512 bytes). A zero-size request
//!   is allowed and takes 512 bytes (it still gets a distinct address); it adds 0 to
//!   `allocated`.
//! - `alloc` takes the *smallest* free block that fits, the lowest address among equal sizes,
//!   and splits it: the allocation takes the front, the rest stays free.
//! - When no free block fits, the range grows: just enough new pages are mapped at its end to
//!   hold the request, extending the free block at the end when there is one. Each growth is
//!   one map call, counted in [`AllocStats::reservations`]. With a capacity, growth beyond it
//!   fails with [`AllocError::OutOfMemory`] (nothing is released first: the range is
//!   contiguous, so freeing pages could not make room anywhere but at the end, which growth
//!   already reuses).
//! - `free` merges the block with a free neighbour on either side at once, so no two free
//!   blocks ever touch.
//! - [`OnlineAllocator::trim`] unmaps the whole free pages at the end of the range. Free
//!   pages in holes inside the range are *not* given back: this model keeps no page map, and
//!   a hole cannot be unmapped without splitting the one range into several.
//! - **Streams:** memory freed on one stream is reusable by any stream. The `stream` argument
//!   is accepted and ignored; making cross-stream reuse safe on a real device (events, or
//!   waiting on the freeing stream) is the executor's job, not this model's.
//! - [`AllocStats::segments`] is 1 while any page is mapped, 0 otherwise: there is only ever
//!   one virtual range.
//!
//! # Layout
//!
//! ```text
//!  base                                                       base + mapped   (unmapped VA)
//!   |<------------- page ------------>|<------------- page ------------>|.................
//!   +---------+--------+-------------+--------------------+-------------+
//!   | used A  |  free  |   used B    |      used C        |    free     |
//!   +---------+--------+-------------+--------------------+-------------+
//!   ^ blocks: one entry per block, keyed by address; they tile [base, base + mapped)
//!     free_by_size: {(size of free, addr), (size of free tail, addr)}
//!   growth maps pages after base + mapped; trim unmaps the whole free pages of the tail.
//! ```
//!
//! # Representation invariants
//!
//! Checked by `check_invariants` at the end of every mutating method in debug builds:
//!
//! 1. `mapped` is a multiple of the page size and, with a capacity, at most the capacity.
//! 2. The blocks tile `[base, base + mapped)` exactly: in address order, each block starts
//!    where the previous one ends, the first at `base`, the last ends at `base + mapped`.
//! 3. Every block has a nonzero size that is a multiple of [`ALIGN`], so every address is
//!    512-aligned. A used block's size is its requested size rounded up (512 for zero).
//! 4. No two free blocks are adjacent (they are coalesced on free).
//! 5. `free_by_size` holds exactly `(size, addr)` of each free block, nothing else.
//! 6. The stats match a recount: `allocated` is the sum of requested sizes of used blocks,
//!    `reserved == mapped`, `segments == (mapped > 0)`, and the peaks are at least the
//!    current values.

use alloc::collections::{BTreeMap, BTreeSet};
use core::ops::Range;

use super::interface::{Addr, AllocError, AllocStats, Allocator};
use super::layout::rounded as rounded_size;
pub use super::layout::{ALIGN, DEFAULT_BASE, DEFAULT_PAGE_SIZE};
use super::setup::{SetupError, check_page_layout};
use crate::units::round_up;

/// How an [`OnlineAllocator`] reserves memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlineConfig {
    /// Start of the virtual range. Must be a multiple of `page_size`
    /// ([`OnlineAllocator::new`] refuses it otherwise).
    pub base: Addr,
    /// Granule of mapping and unmapping. Must be a power of two and at least [`ALIGN`].
    pub page_size: u64,
    /// Most bytes that may be mapped at once; `None` for no limit. A capacity that is not a
    /// multiple of `page_size` cannot be used beyond its last whole page.
    pub capacity: Option<u64>,
}

impl Default for OnlineConfig {
    /// [`DEFAULT_BASE`], [`DEFAULT_PAGE_SIZE`], no capacity.
    fn default() -> Self {
        OnlineConfig {
            base: DEFAULT_BASE,
            page_size: DEFAULT_PAGE_SIZE,
            capacity: None,
        }
    }
}

/// One block of the mapped range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    /// Bytes in the block: nonzero, a multiple of [`ALIGN`].
    size: u64,
    /// `Some(n)` iff the block is a live allocation of `n` requested bytes (then
    /// `size == round(n)`); `None` iff it is free.
    requested: Option<u64>,
}

/// memplan's online allocator: exact best fit with immediate coalescing over one virtual
/// range grown in pages. See the [module docs](self) for the design and invariants.
///
/// # Examples
///
/// ```
/// use memplan_core::allocator::Allocator;
/// use memplan_core::allocator::online::{OnlineAllocator, DEFAULT_BASE};
///
/// let mut a = OnlineAllocator::default();
/// let x = a.alloc(1000, 0)?; // rounded to 1024; maps one 2 MiB page
/// assert_eq!(x, DEFAULT_BASE);
/// assert_eq!(a.stats().reserved, 2 << 20);
/// a.free(x)?;
/// assert_eq!(a.trim(), 2 << 20); // the page goes back
/// assert_eq!(a.stats().reserved, 0);
/// # Ok::<(), memplan_core::allocator::AllocError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OnlineAllocator {
    /// The configuration, validated by [`OnlineAllocator::new`].
    config: OnlineConfig,
    /// Every block, used and free, by start address; they tile `[base, base + mapped)`.
    blocks: BTreeMap<Addr, Block>,
    /// `(size, addr)` of each free block in `blocks`, and nothing else.
    free_by_size: BTreeSet<(u64, Addr)>,
    /// Bytes mapped from `base`: a multiple of the page size, at most the capacity.
    mapped: u64,
    /// Counters; `reserved == mapped`, `allocated` = sum of requested sizes of used blocks.
    stats: AllocStats,
}

impl Default for OnlineAllocator {
    /// An allocator with [`OnlineConfig::default`].
    fn default() -> Self {
        OnlineAllocator::with_capacity_opt(None)
    }
}

impl OnlineAllocator {
    /// An empty allocator: nothing mapped yet.
    ///
    /// # Errors
    /// [`SetupError::BadPageSize`] when `config.page_size` is not a power of two at least
    /// [`ALIGN`], or `config.base` is not a multiple of it.
    pub fn new(config: OnlineConfig) -> Result<Self, SetupError> {
        check_page_layout(config.base, config.page_size)?;
        Ok(OnlineAllocator::new_unchecked(config))
    }

    /// An allocator with the default base and page size (a valid layout, so this cannot
    /// fail) and the given capacity in bytes.
    pub fn with_capacity(capacity: u64) -> Self {
        OnlineAllocator::with_capacity_opt(Some(capacity))
    }

    /// [`OnlineConfig::default`] with `capacity`.
    fn with_capacity_opt(capacity: Option<u64>) -> Self {
        OnlineAllocator::new_unchecked(OnlineConfig {
            capacity,
            ..OnlineConfig::default()
        })
    }

    /// An empty allocator for a `config` whose page layout is valid.
    fn new_unchecked(config: OnlineConfig) -> Self {
        debug_assert_eq!(check_page_layout(config.base, config.page_size), Ok(()));
        OnlineAllocator {
            config,
            blocks: BTreeMap::new(),
            free_by_size: BTreeSet::new(),
            mapped: 0,
            stats: AllocStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OnlineConfig {
        &self.config
    }

    /// The mapped part of the virtual range, `base..base + reserved`.
    pub fn mapped_range(&self) -> Range<Addr> {
        self.config.base..self.config.base + self.mapped
    }

    /// The free blocks, in address order. Never two adjacent ones.
    ///
    /// # Complexity
    /// O(n) to iterate, n = number of blocks.
    pub fn free_blocks(&self) -> impl Iterator<Item = Range<Addr>> + '_ {
        self.blocks
            .iter()
            .filter(|(_, b)| b.requested.is_none())
            .map(|(&a, b)| a..a + b.size)
    }

    /// Size of the largest free block (0 if none): the largest request served without
    /// growing.
    ///
    /// # Complexity
    /// O(log n).
    pub fn largest_free_block(&self) -> u64 {
        self.free_by_size.last().map_or(0, |&(size, _)| size)
    }

    /// Unmaps the whole free pages at the end of the range and returns the bytes released
    /// (0 if the end of the range holds no whole free page). Free pages in holes are kept
    /// (see the module docs). Releasing does not count as a reservation.
    ///
    /// # Complexity
    /// O(log n).
    pub fn trim(&mut self) -> u64 {
        let released = self.trim_tail();
        self.check_invariants();
        released
    }

    fn trim_tail(&mut self) -> u64 {
        let Some((&addr, &block)) = self.blocks.last_key_value() else {
            return 0;
        };
        if block.requested.is_some() {
            return 0;
        }
        let base = self.config.base;
        // `addr - base < mapped`, a multiple of the page size, so this cannot overflow past it.
        let keep = round_up(addr - base, self.config.page_size).unwrap_or(self.mapped);
        if keep >= self.mapped {
            return 0;
        }
        let released = self.mapped - keep;
        self.free_by_size.remove(&(block.size, addr));
        let new_size = base + keep - addr;
        if new_size == 0 {
            self.blocks.remove(&addr);
        } else {
            self.blocks.insert(
                addr,
                Block {
                    size: new_size,
                    requested: None,
                },
            );
            self.free_by_size.insert((new_size, addr));
        }
        self.set_mapped(keep);
        released
    }

    /// Sets `mapped` and the stats that follow from it.
    fn set_mapped(&mut self, mapped: u64) {
        self.mapped = mapped;
        self.stats.reserved = mapped;
        self.stats.peak_reserved = self.stats.peak_reserved.max(mapped);
        self.stats.segments = u64::from(mapped > 0);
    }

    /// Maps just enough pages at the end for a free block of `rounded` bytes there, and
    /// returns that block's `(size, addr)` (left in `free_by_size`). Changes nothing on error.
    fn grow(&mut self, rounded: u64, requested: u64) -> Result<(u64, Addr), AllocError> {
        let oom = AllocError::OutOfMemory {
            size: requested,
            reserved: self.mapped,
        };
        let tail = match self.blocks.last_key_value() {
            Some((&a, b)) if b.requested.is_none() => Some((b.size, a)),
            _ => None,
        };
        let have = tail.map_or(0, |(size, _)| size);
        // No free block fits, so in particular the tail is smaller than `rounded`.
        let need = round_up(rounded - have, self.config.page_size).ok_or(oom.clone())?;
        let new_mapped = self.mapped.checked_add(need).ok_or(oom.clone())?;
        let end = self
            .config
            .base
            .checked_add(new_mapped)
            .ok_or(oom.clone())?;
        if self.config.capacity.is_some_and(|cap| new_mapped > cap) {
            return Err(oom);
        }
        let old_end = end - need;
        let (addr, size) = match tail {
            Some((size, addr)) => {
                self.free_by_size.remove(&(size, addr));
                (addr, size + need)
            }
            None => (old_end, need),
        };
        self.blocks.insert(
            addr,
            Block {
                size,
                requested: None,
            },
        );
        self.free_by_size.insert((size, addr));
        self.set_mapped(new_mapped);
        self.stats.reservations += 1;
        Ok((size, addr))
    }

    /// Checks the representation invariants of the module docs; a no-op in release builds.
    ///
    /// # Panics
    /// If an invariant is broken (a bug in this module).
    ///
    /// # Complexity
    /// O(n log n) in debug builds.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let c = &self.config;
        assert!(self.mapped % c.page_size == 0, "mapped not page-aligned");
        if let Some(cap) = c.capacity {
            assert!(
                self.mapped <= cap,
                "mapped {} > capacity {cap}",
                self.mapped
            );
        }
        let mut cursor = c.base;
        let mut prev_free = false;
        let mut free_count = 0;
        let mut allocated = 0u64;
        for (&addr, b) in &self.blocks {
            assert_eq!(addr, cursor, "blocks do not tile the range at {addr:#x}");
            assert!(
                b.size > 0 && b.size % ALIGN == 0,
                "bad size {} at {addr:#x}",
                b.size
            );
            match b.requested {
                Some(n) => {
                    assert_eq!(
                        rounded_size(n),
                        Some(b.size),
                        "used block size at {addr:#x}"
                    );
                    allocated += n;
                    prev_free = false;
                }
                None => {
                    assert!(!prev_free, "adjacent free blocks at {addr:#x}");
                    assert!(
                        self.free_by_size.contains(&(b.size, addr)),
                        "free block {addr:#x} missing from the size index"
                    );
                    free_count += 1;
                    prev_free = true;
                }
            }
            cursor = addr + b.size;
        }
        assert_eq!(
            cursor,
            c.base + self.mapped,
            "blocks do not end at the mapped end"
        );
        assert_eq!(
            free_count,
            self.free_by_size.len(),
            "stale size index entries"
        );
        let s = &self.stats;
        assert_eq!(s.allocated, allocated, "allocated != recount");
        assert_eq!(s.reserved, self.mapped, "reserved != mapped");
        assert_eq!(s.segments, u64::from(self.mapped > 0), "segments");
        assert!(s.peak_allocated >= s.allocated && s.peak_reserved >= s.reserved);
    }

    /// The bytes a request of `size` takes (its block): `size` rounded up to [`ALIGN`],
    /// [`ALIGN`] for 0; `None` when that overflows `u64`.
    pub fn block_size(&self, size: u64) -> Option<u64> {
        rounded_size(size)
    }

    /// The live allocations in address order: each one's block (`addr..addr + block_size`)
    /// and its requested size.
    ///
    /// # Complexity
    /// O(n) to iterate, n = number of blocks.
    pub fn allocations(&self) -> impl Iterator<Item = (Range<Addr>, u64)> + '_ {
        self.blocks
            .iter()
            .filter_map(|(&a, b)| b.requested.map(|n| (a..a + b.size, n)))
    }

    /// The largest range this allocator can ever map: from `base`, as many whole pages as
    /// the capacity (without one, the address space) allows. [`Self::mapped_range`] is
    /// always a prefix of it, so every block lies inside it.
    pub fn mappable_range(&self) -> Range<Addr> {
        let c = &self.config;
        let room = c.capacity.unwrap_or(u64::MAX).min(u64::MAX - c.base);
        c.base..c.base + room / c.page_size * c.page_size
    }
}

impl Allocator for OnlineAllocator {
    /// Best fit, growing the mapped range when nothing fits. `stream` is ignored (see the
    /// module docs). A zero `size` takes [`ALIGN`] bytes.
    ///
    /// # Errors
    /// [`AllocError::OutOfMemory`] when the growth needed would exceed the capacity or the
    /// address space; the allocator is unchanged then.
    ///
    /// # Complexity
    /// O(log n), n = number of blocks.
    fn alloc(&mut self, size: u64, _stream: u32) -> Result<Addr, AllocError> {
        let oom = || AllocError::OutOfMemory {
            size,
            reserved: self.mapped,
        };
        let rounded = rounded_size(size).ok_or_else(oom)?;
        let (bsize, addr) = match self.free_by_size.range((rounded, 0)..).next() {
            Some(&fit) => fit,
            None => self.grow(rounded, size)?,
        };
        self.free_by_size.remove(&(bsize, addr));
        if bsize > rounded {
            let rest = Block {
                size: bsize - rounded,
                requested: None,
            };
            self.blocks.insert(addr + rounded, rest);
            self.free_by_size.insert((rest.size, addr + rounded));
        }
        self.blocks.insert(
            addr,
            Block {
                size: rounded,
                requested: Some(size),
            },
        );
        self.stats.allocated += size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
        self.check_invariants();
        Ok(addr)
    }

    /// Frees the allocation at `addr` and merges it with free neighbours.
    ///
    /// # Errors
    /// [`AllocError::UnknownAddress`] if `addr` is not the address of a live allocation
    /// (never allocated, already freed, or inside a block); the allocator is unchanged then.
    ///
    /// # Complexity
    /// O(log n).
    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        let (size, requested) = match self.blocks.get(&addr) {
            Some(&Block {
                size,
                requested: Some(n),
            }) => (size, n),
            _ => return Err(AllocError::UnknownAddress { addr }),
        };
        self.stats.allocated -= requested;
        let mut start = addr;
        let mut end = addr + size;
        if let Some(&next) = self.blocks.get(&end) {
            if next.requested.is_none() {
                self.blocks.remove(&end);
                self.free_by_size.remove(&(next.size, end));
                end += next.size;
            }
        }
        if let Some((&prev_addr, &prev)) = self.blocks.range(..addr).next_back() {
            if prev.requested.is_none() {
                self.blocks.remove(&addr);
                self.free_by_size.remove(&(prev.size, prev_addr));
                start = prev_addr;
            }
        }
        self.blocks.insert(
            start,
            Block {
                size: end - start,
                requested: None,
            },
        );
        self.free_by_size.insert((end - start, start));
        self.check_invariants();
        Ok(())
    }

    /// The counters; see the module docs for `segments`.
    ///
    /// # Complexity
    /// O(1).
    fn stats(&self) -> AllocStats {
        self.stats
    }

    /// `"online"`.
    fn name(&self) -> &'static str {
        "online"
    }

    /// [`OnlineAllocator::trim`].
    fn trim(&mut self) -> u64 {
        OnlineAllocator::trim(self)
    }
}

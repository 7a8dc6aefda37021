//! A model of PyTorch's caching allocator with `expandable_segments:True`, following the
//! "Expandable segments" section of `shared/docs/pytorch-allocator.md` and PyTorch's
//! `ExpandableSegment`, `find_expandable_block`, `try_allocate_expandable_block`,
//! `map_block` and `unmap_block`.
//!
//! # What is modelled
//!
//! * Rounding, the small/large pool choice and the `max_split_size` oversize rules are the
//!   [`torch`](super::torch) model's ([`TorchConfig`]).
//! * One growable segment per (stream, pool): a virtual range of `1.125 ×` the device memory
//!   ([`TorchExpandableAllocator::with_device_memory`]), rounded up to whole pages, mapped in pages
//!   of [`SMALL_PAGE`] (small pool) or [`LARGE_PAGE`] (large pool). A second segment is
//!   created only when no unmapped range of the stream's segments has room.
//! * Unmapped virtual memory is represented by *unmapped* blocks, kept in a per-pool `unmapped`
//!   set ordered by `(stream, addr)`; free mapped blocks are in the pool's `blocks` set ordered
//!   by `(stream, size, addr)`.
//! * Best fit (`get_free_block`): the first free block `≥ (stream, size, 0)`; then, while the
//!   next block of the same stream has a smaller *expandable size* (its size plus the unmapped
//!   block right after it, if any), move to it — PyTorch prefers blocks that do not border
//!   unmapped space.
//! * No block fits: the lowest-address unmapped block of the stream (starting at the free
//!   block just before it, if any) with enough contiguous free + unmapped bytes is grown by
//!   mapping just enough pages (each `map_block` is one reservation); mapped pages merge into
//!   the adjacent free block.
//! * Split: any block splits when `remaining ≥ 512` (both pools, as PyTorch does with the option
//!   on); the allocated piece is the low-address one.
//! * Free merges with free neighbours; mapped and unmapped blocks never merge.
//! * Out of memory under [`TorchConfig::capacity`] (a map that would push mapped bytes above
//!   it fails): `release_cached_blocks` unmaps every page fully covered by a free block
//!   (destroying a segment whose range becomes entirely unmapped), and the map is retried.
//!   `release_available_cached_blocks` is not modelled: PyTorch's skips expandable blocks, so
//!   with every block expandable it never releases anything.
//!
//! Not modelled: cross-stream events, private pools, GC, callbacks (as in the `torch` model).
//!
//! # Stats
//!
//! `reserved` is the mapped bytes, `reservations` the successful map calls (one per
//! `map_block`, however many pages it maps), `segments` the live virtual ranges.
//!
//! # Invariants
//!
//! Checked by `check_invariants` in debug builds after every mutation:
//! * the blocks of each segment tile it exactly, in address order;
//! * a block is free iff it is in its pool's `blocks` set, unmapped iff it is in its pool's
//!   `unmapped` set, and every block has its segment's stream;
//! * unmapped blocks start and end on page boundaries (relative to the segment base), so every
//!   page is either wholly mapped or wholly unmapped;
//! * no two adjacent blocks of a segment are both free or both unmapped;
//! * `reserved` equals the sum of the mapped (free or allocated) block sizes, and the other
//!   counters equal their sums over blocks and segments.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::allocator::interface::{Addr, AllocError, AllocStats, Allocator};
use crate::allocator::torch::{
    LARGE_BUFFER, MIN_BLOCK_SIZE, SIMULATED_BASE, SMALL_BUFFER, SMALL_SIZE, TorchConfig,
};

/// Page size of the small pool's segments (`kSmallBuffer`, 2 MiB).
pub const SMALL_PAGE: u64 = SMALL_BUFFER;
/// Page size of the large pool's segments (`kLargeBuffer`, 20 MiB).
pub const LARGE_PAGE: u64 = LARGE_BUFFER;
/// Device memory assumed for sizing virtual ranges when neither
/// [`TorchExpandableAllocator::with_device_memory`] nor a capacity is given (80 GiB).
pub const DEFAULT_DEVICE_MEMORY: u64 = 80 << 30;
/// Alignment of simulated virtual ranges.
const VA_ALIGN: u64 = 2 << 20;

/// Which pool a segment serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Small,
    Large,
}

impl Pool {
    fn page(self) -> u64 {
        match self {
            Pool::Small => SMALL_PAGE,
            Pool::Large => LARGE_PAGE,
        }
    }
}

/// One expandable segment: a reserved virtual range.
#[derive(Debug, Clone, Copy)]
struct Segment {
    size: u64,
    pool: Pool,
    stream: u32,
}

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Allocated, with the requested (unrounded) size.
    Allocated(u64),
    /// Mapped and free (in the pool's `blocks` set).
    Free,
    /// Not mapped (in the pool's `unmapped` set).
    Unmapped,
}

/// A piece of one segment.
#[derive(Debug, Clone, Copy)]
struct Block {
    size: u64,
    /// Base address of the segment holding the block.
    segment: Addr,
    state: State,
}

/// The free-block sets of one pool.
#[derive(Debug, Clone, Default)]
struct PoolSets {
    /// Free mapped blocks as `(stream, size, addr)` (`BlockComparatorSize`).
    blocks: BTreeSet<(u32, u64, Addr)>,
    /// Unmapped blocks as `(stream, addr)` (`BlockComparatorAddress`).
    unmapped: BTreeSet<(u32, Addr)>,
}

/// PyTorch's caching allocator with expandable segments, simulated. See the
/// [module docs](self).
///
/// # Examples
/// ```
/// use memplan_core::allocator::Allocator;
/// use memplan_core::allocator::torch::TorchConfig;
/// use memplan_core::allocator::torch_expandable::TorchExpandableAllocator;
/// let mut m = TorchExpandableAllocator::new(TorchConfig::default());
/// let a = m.alloc(3 << 20, 0).unwrap(); // large pool: one 20 MiB page mapped
/// let b = m.alloc(3 << 20, 0).unwrap(); // carved from the same page
/// assert_eq!(b, a + (3 << 20));
/// assert_eq!((m.stats().reserved, m.stats().reservations), (20 << 20, 1));
/// ```
#[derive(Debug, Clone)]
pub struct TorchExpandableAllocator {
    config: TorchConfig,
    /// Device memory used to size each segment's virtual range.
    device_memory: u64,
    /// Every block of every live segment, keyed by address.
    blocks: BTreeMap<Addr, Block>,
    /// Live segments by base address.
    segments: BTreeMap<Addr, Segment>,
    small: PoolSets,
    large: PoolSets,
    /// Highest segment end so far (at least [`SIMULATED_BASE`]).
    high_water: Addr,
    /// Sum of the rounded sizes of allocated blocks (PyTorch's `allocated_bytes`).
    allocated_rounded: u64,
    stats: AllocStats,
}

impl TorchExpandableAllocator {
    /// An empty allocator with the given settings. Virtual ranges are sized from the capacity
    /// when one is set, else from [`DEFAULT_DEVICE_MEMORY`]. Every [`TorchConfig`] is valid,
    /// so this cannot fail.
    pub fn new(config: TorchConfig) -> Self {
        let device_memory = config.capacity.unwrap_or(DEFAULT_DEVICE_MEMORY);
        TorchExpandableAllocator {
            config,
            device_memory,
            blocks: BTreeMap::new(),
            segments: BTreeMap::new(),
            small: PoolSets::default(),
            large: PoolSets::default(),
            high_water: SIMULATED_BASE,
            allocated_rounded: 0,
            stats: AllocStats::default(),
        }
    }

    /// Sizes each new segment's virtual range as `1.125 × bytes` (PyTorch uses the device's
    /// total memory), rounded up to whole pages.
    pub fn with_device_memory(mut self, bytes: u64) -> Self {
        self.device_memory = bytes;
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &TorchConfig {
        &self.config
    }

    /// PyTorch's `allocated_bytes`: the rounded sizes of the live allocations.
    pub fn allocated_rounded(&self) -> u64 {
        self.allocated_rounded
    }

    /// The live segments (virtual ranges) as `(base, size)`, in address order.
    pub fn segments(&self) -> impl Iterator<Item = (Addr, u64)> + '_ {
        self.segments.iter().map(|(&a, s)| (a, s.size))
    }

    /// The mapped address ranges as `(addr, size)`, in address order, adjacent mapped blocks
    /// of one segment joined.
    pub fn mapped_ranges(&self) -> impl Iterator<Item = (Addr, u64)> + '_ {
        let mut out: Vec<(Addr, u64, Addr)> = Vec::new();
        for (&a, b) in &self.blocks {
            if b.state == State::Unmapped {
                continue;
            }
            match out.last_mut() {
                Some((s, len, seg)) if *seg == b.segment && *s + *len == a => *len += b.size,
                _ => out.push((a, b.size, b.segment)),
            }
        }
        out.into_iter().map(|(a, len, _)| (a, len))
    }

    /// `empty_cache()`: unmaps every page fully covered by a free block, and destroys the
    /// segments left entirely unmapped.
    pub fn empty_cache(&mut self) {
        self.release_cached_blocks();
        self.check_invariants();
    }

    fn sets(&mut self, pool: Pool) -> &mut PoolSets {
        match pool {
            Pool::Small => &mut self.small,
            Pool::Large => &mut self.large,
        }
    }

    fn seg(&self, block: &Block) -> Segment {
        self.segments[&block.segment]
    }

    /// Inserts a block into the map and, by state, into its pool's sets.
    fn insert_block(&mut self, addr: Addr, block: Block) {
        let seg = self.seg(&block);
        match block.state {
            State::Free => {
                self.sets(seg.pool)
                    .blocks
                    .insert((seg.stream, block.size, addr));
            }
            State::Unmapped => {
                self.sets(seg.pool).unmapped.insert((seg.stream, addr));
            }
            State::Allocated(_) => {}
        }
        self.blocks.insert(addr, block);
    }

    /// Removes the block at `addr` from the map and from its pool's sets.
    fn remove_block(&mut self, addr: Addr) -> Block {
        let block = self.blocks.remove(&addr).expect("block exists");
        let seg = self.seg(&block);
        match block.state {
            State::Free => {
                self.sets(seg.pool)
                    .blocks
                    .remove(&(seg.stream, block.size, addr));
            }
            State::Unmapped => {
                self.sets(seg.pool).unmapped.remove(&(seg.stream, addr));
            }
            State::Allocated(_) => {}
        }
        block
    }

    /// The block before `addr` in the same segment.
    fn prev_of(&self, addr: Addr, block: &Block) -> Option<(Addr, Block)> {
        self.blocks
            .range(..addr)
            .next_back()
            .map(|(&p, &pb)| (p, pb))
            .filter(|(_, pb)| pb.segment == block.segment)
    }

    /// The block after the one at `addr` in the same segment.
    fn next_of(&self, addr: Addr, block: &Block) -> Option<(Addr, Block)> {
        let next = addr + block.size;
        self.blocks
            .get(&next)
            .copied()
            .filter(|nb| nb.segment == block.segment)
            .map(|nb| (next, nb))
    }

    /// Inserts a free or unmapped block and merges it with the neighbours in the same state
    /// (`try_merge_blocks` with prev, then next). Returns the merged block's address.
    fn insert_merged(&mut self, addr: Addr, block: Block) -> Addr {
        debug_assert!(!matches!(block.state, State::Allocated(_)));
        let (mut start, mut size) = (addr, block.size);
        if let Some((p, pb)) = self
            .prev_of(addr, &block)
            .filter(|(_, pb)| pb.state == block.state)
        {
            self.remove_block(p);
            start = p;
            size += pb.size;
        }
        if let Some((n, nb)) = self
            .next_of(addr, &block)
            .filter(|(_, nb)| nb.state == block.state)
        {
            self.remove_block(n);
            size += nb.size;
        }
        self.insert_block(start, Block { size, ..block });
        start
    }

    /// The best-fit size of a free block: its size plus the unmapped block after it.
    fn expandable_size(&self, addr: Addr, size: u64) -> u64 {
        let block = self.blocks[&addr];
        size + self
            .next_of(addr, &block)
            .filter(|(_, nb)| nb.state == State::Unmapped)
            .map_or(0, |(_, nb)| nb.size)
    }

    /// `get_free_block` with expandable segments on. Removes the block from its pool.
    fn get_free_block(&mut self, pool: Pool, stream: u32, size: u64) -> Option<Addr> {
        let max_split = self.config.max_split_size.unwrap_or(u64::MAX);
        let set = match pool {
            Pool::Small => &self.small.blocks,
            Pool::Large => &self.large.blocks,
        };
        let mut it = set.range((stream, size, 0)..);
        let mut cur = *it.next()?;
        if cur.0 != stream {
            return None;
        }
        for &next in it {
            if next.0 != stream
                || self.expandable_size(next.2, next.1) >= self.expandable_size(cur.2, cur.1)
            {
                break;
            }
            cur = next;
        }
        let (_, bsize, addr) = cur;
        if size < max_split && bsize >= max_split {
            return None;
        }
        if size >= max_split && bsize >= size.saturating_add(LARGE_BUFFER) {
            return None;
        }
        self.sets(pool).blocks.remove(&cur);
        Some(addr)
    }

    /// `find_expandable_block`: the lowest-address unmapped block of the stream (or the free
    /// block just before it) followed by at least `size` free or unmapped bytes; else a new
    /// segment, entirely unmapped. `None` only when the address space is exhausted.
    fn find_expandable_block(&mut self, pool: Pool, stream: u32, size: u64) -> Option<Addr> {
        let sets = match pool {
            Pool::Small => &self.small,
            Pool::Large => &self.large,
        };
        for &(s, a) in sets.unmapped.range((stream, 0)..) {
            if s != stream {
                break;
            }
            let block = self.blocks[&a];
            let start = match self.prev_of(a, &block) {
                Some((p, pb)) if pb.state == State::Free => p,
                _ => a,
            };
            if self.has_available_space(start, size) {
                return Some(start);
            }
        }
        // A new segment: 1.125 × device memory of address space, in whole pages.
        let page = pool.page();
        let want = self.device_memory.saturating_add(self.device_memory / 8);
        let va = want.div_ceil(page).max(1).checked_mul(page)?;
        let base = self.high_water.checked_add(VA_ALIGN - 1)? / VA_ALIGN * VA_ALIGN;
        self.high_water = base.checked_add(va)?;
        self.segments.insert(
            base,
            Segment {
                size: va,
                pool,
                stream,
            },
        );
        self.stats.segments += 1;
        self.insert_block(
            base,
            Block {
                size: va,
                segment: base,
                state: State::Unmapped,
            },
        );
        Some(base)
    }

    /// Whether the blocks from `addr` on hold `size` contiguous free or unmapped bytes.
    fn has_available_space(&self, mut addr: Addr, size: u64) -> bool {
        let mut bytes = 0u64;
        let mut block = self.blocks[&addr];
        while bytes < size && !matches!(block.state, State::Allocated(_)) {
            bytes += block.size;
            match self.next_of(addr, &block) {
                Some((n, nb)) => (addr, block) = (n, nb),
                None => break,
            }
        }
        bytes >= size
    }

    /// `map_block`: maps the pages covering the first `size` bytes of the unmapped block at
    /// `addr` and merges them into the free neighbours. Returns the merged free block's
    /// address, or `None` when the capacity does not allow it.
    fn map_block(&mut self, addr: Addr, size: u64) -> Option<Addr> {
        let block = self.blocks[&addr];
        debug_assert!(block.state == State::Unmapped && size <= block.size);
        let page = self.seg(&block).pool.page();
        let mapped = size.div_ceil(page).checked_mul(page)?.min(block.size);
        let reserved = self.stats.reserved.checked_add(mapped)?;
        if self.config.capacity.is_some_and(|cap| reserved > cap) {
            return None;
        }
        self.remove_block(addr);
        if mapped < block.size {
            self.insert_block(
                addr + mapped,
                Block {
                    size: block.size - mapped,
                    ..block
                },
            );
        }
        let start = self.insert_merged(
            addr,
            Block {
                size: mapped,
                segment: block.segment,
                state: State::Free,
            },
        );
        self.stats.reserved = reserved;
        self.stats.peak_reserved = self.stats.peak_reserved.max(reserved);
        self.stats.reservations += 1;
        Some(start)
    }

    /// `try_allocate_expandable_block`: maps just enough pages for a free block of `size`.
    /// Removes the block from its pool.
    fn try_allocate_expandable_block(
        &mut self,
        pool: Pool,
        stream: u32,
        size: u64,
    ) -> Option<Addr> {
        let mut c = self.find_expandable_block(pool, stream, size)?;
        let first = self.blocks[&c];
        if first.state == State::Unmapped {
            c = self.map_block(c, first.size.min(size))?;
        }
        loop {
            let block = self.blocks[&c];
            if block.size >= size {
                break;
            }
            // Invariant: free → unmapped → …; map what is still missing.
            let (n, nb) = self
                .next_of(c, &block)
                .filter(|(_, nb)| nb.state == State::Unmapped)?;
            c = self.map_block(n, (size - block.size).min(nb.size))?;
        }
        let block = self.blocks[&c];
        let key = (self.seg(&block).stream, block.size, c);
        self.sets(pool).blocks.remove(&key);
        Some(c)
    }

    /// `unmap_block`: unmaps the pages fully inside the free block at `addr`; the partial
    /// pages at either end stay mapped as free blocks. Returns the merged unmapped block's
    /// address, or `None` when no whole page was covered.
    fn unmap_block(&mut self, addr: Addr) -> Option<Addr> {
        let block = self.blocks[&addr];
        let page = self.seg(&block).pool.page();
        let rel = addr - block.segment;
        let begin = block.segment + rel.div_ceil(page) * page;
        let end = block.segment + (rel + block.size) / page * page;
        if begin >= end {
            return None;
        }
        self.remove_block(addr);
        if begin > addr {
            self.insert_block(
                addr,
                Block {
                    size: begin - addr,
                    ..block
                },
            );
        }
        if end < addr + block.size {
            self.insert_block(
                end,
                Block {
                    size: addr + block.size - end,
                    ..block
                },
            );
        }
        let start = self.insert_merged(
            begin,
            Block {
                size: end - begin,
                segment: block.segment,
                state: State::Unmapped,
            },
        );
        self.stats.reserved -= end - begin;
        Some(start)
    }

    /// `release_cached_blocks`: unmaps the free pages of both pools and destroys segments
    /// left entirely unmapped.
    fn release_cached_blocks(&mut self) {
        let to_unmap: Vec<Addr> = self
            .large
            .blocks
            .iter()
            .chain(self.small.blocks.iter())
            .map(|&(_, _, a)| a)
            .collect();
        for addr in to_unmap {
            let Some(start) = self.unmap_block(addr) else {
                continue;
            };
            let block = self.blocks[&start];
            if start == block.segment && block.size == self.seg(&block).size {
                // release_expandable_segment
                self.remove_block(start);
                self.segments.remove(&start);
                self.stats.segments -= 1;
            }
        }
    }
}

impl Allocator for TorchExpandableAllocator {
    /// PyTorch's `malloc` with expandable segments: best fit among mapped free blocks, else
    /// map pages, else unmap every free page and map again. A zero-size request is
    /// [`AllocError::ZeroSize`].
    fn alloc(&mut self, orig_size: u64, stream: u32) -> Result<Addr, AllocError> {
        let oom = |m: &Self| AllocError::OutOfMemory {
            size: orig_size,
            reserved: m.stats.reserved,
        };
        if orig_size == 0 {
            return Err(AllocError::ZeroSize);
        }
        let size = self.config.round_size(orig_size).ok_or_else(|| oom(self))?;
        let pool = if size <= SMALL_SIZE {
            Pool::Small
        } else {
            Pool::Large
        };
        let found = match self.get_free_block(pool, stream, size) {
            Some(a) => Some(a),
            None => self
                .try_allocate_expandable_block(pool, stream, size)
                .or_else(|| {
                    self.release_cached_blocks();
                    self.try_allocate_expandable_block(pool, stream, size)
                }),
        };
        let Some(addr) = found else {
            self.check_invariants();
            return Err(oom(self));
        };
        // alloc_found_block: with expandable segments any block splits if remaining ≥ 512.
        // The remainder borders an allocated or unmapped block, so it needs no merge.
        let block = self.blocks[&addr];
        let taken = if block.size - size >= MIN_BLOCK_SIZE {
            self.insert_block(
                addr + size,
                Block {
                    size: block.size - size,
                    segment: block.segment,
                    state: State::Free,
                },
            );
            size
        } else {
            block.size
        };
        self.blocks.insert(
            addr,
            Block {
                size: taken,
                segment: block.segment,
                state: State::Allocated(orig_size),
            },
        );
        self.allocated_rounded += taken;
        self.stats.allocated += orig_size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
        self.check_invariants();
        Ok(addr)
    }

    /// PyTorch's `free` → `free_block`: merges with the free (mapped) neighbours.
    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        let Some(block) = self.blocks.get(&addr).copied() else {
            return Err(AllocError::UnknownAddress { addr });
        };
        let State::Allocated(requested) = block.state else {
            return Err(AllocError::UnknownAddress { addr });
        };
        self.stats.allocated -= requested;
        self.allocated_rounded -= block.size;
        self.blocks.remove(&addr);
        self.insert_merged(
            addr,
            Block {
                state: State::Free,
                ..block
            },
        );
        self.check_invariants();
        Ok(())
    }

    fn stats(&self) -> AllocStats {
        self.stats
    }

    fn name(&self) -> &'static str {
        "torch-expandable"
    }

    /// [`empty_cache`](Self::empty_cache); returns the bytes it gave back.
    fn trim(&mut self) -> u64 {
        let before = self.stats.reserved;
        self.empty_cache();
        before - self.stats.reserved
    }
}

mod invariants;
#[cfg(test)]
mod tests;

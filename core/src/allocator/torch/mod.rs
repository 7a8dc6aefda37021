//! A model of PyTorch's `CUDACachingAllocator` (native backend, one device), following
//! `shared/docs/pytorch-allocator.md` rule by rule.
//!
//! # What is modelled
//!
//! * `round_size`: `< 512 → 512`, else the `roundup_power2_divisions` step of the size's bucket
//!   when that is `> 1` and the size is above `512 · d`, else a multiple of 512.
//! * Two free pools, *small* (rounded size `≤ 1 MiB`) and *large*, each ordered by
//!   `(stream, size, addr)` like PyTorch's `BlockComparatorSize`.
//! * `get_allocation_size`: a new segment is 2 MiB (small), 20 MiB (large, `< 10 MiB`), or
//!   the size rounded up to 2 MiB.
//! * Best fit: the first pool entry `≥ (stream, size, 0)`, on the same stream only, with the
//!   oversize rules of `max_split_size`.
//! * Split: small pool when `remaining ≥ 512`; large pool when `size < max_split_size` and
//!   `remaining > 1 MiB`. The allocated piece is the low-address one.
//! * Free merges the block with its free neighbours *of the same segment* only.
//! * Out of memory under a [`TorchConfig::capacity`]: `release_available_cached_blocks`
//!   (only with `max_split_size`), then `release_cached_blocks` (every unsplit cached segment
//!   is returned), retrying the reservation after each.
//!
//! Not modelled: cross-stream `recordStream` events (frees complete at once), CUDA-graph and
//! `MemPool` private pools, the garbage-collection threshold, free-memory callbacks, and
//! expandable segments.
//!
//! # Addresses
//!
//! `cudaMalloc`'s choice of address is outside the model. By default segments live in a
//! deterministic simulated address space: the first at [`SIMULATED_BASE`], each next one at the
//! highest segment end seen so far rounded up to 2 MiB (addresses are never reused). To replay
//! a recorded trace, [`TorchAllocator::with_segment_addresses`] injects the addresses PyTorch got;
//! each reservation consumes the next one.
//!
//! # Representation
//!
//! ```text
//!  segment (one cudaMalloc)           blocks, keyed by address, tiling the segment
//!  base                                                                    base+size
//!  |  alloc'd (512)  | free (1536) |      alloc'd (1 MiB)      |     free ...      |
//!        ^ never two free blocks side by side within one segment
//! ```
//!
//! Invariants (checked by `check_invariants` in debug builds after every mutation):
//! * the blocks of each segment tile it exactly, in address order, and no block spans two
//!   segments;
//! * a block is in exactly one free pool iff it is free, and that pool is its segment's pool;
//! * no two adjacent blocks of one segment are both free;
//! * the counters equal the sums over blocks and segments.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::allocator::interface::{Addr, AllocError, AllocStats, Allocator};
use crate::units::round_up;

/// `kMinBlockSize`: every block size is a multiple of it.
pub const MIN_BLOCK_SIZE: u64 = 512;
/// `kSmallSize`: requests up to this (rounded) size use the small pool.
pub const SMALL_SIZE: u64 = 1 << 20;
/// `kSmallBuffer`: the segment size of the small pool.
pub const SMALL_BUFFER: u64 = 2 << 20;
/// `kMinLargeAlloc`: large requests below this get a [`LARGE_BUFFER`] segment.
pub const MIN_LARGE_ALLOC: u64 = 10 << 20;
/// `kLargeBuffer`: the segment size for large requests below [`MIN_LARGE_ALLOC`].
pub const LARGE_BUFFER: u64 = 20 << 20;
/// `kRoundLarge`: larger segments are rounded up to a multiple of this.
pub const ROUND_LARGE: u64 = 2 << 20;
/// Where the simulated address space starts.
pub const SIMULATED_BASE: Addr = 0x7f00_0000_0000;
/// Number of `roundup_power2_divisions` buckets (1 MiB, 2 MiB, …, ≥ 32 GiB).
pub const ROUNDUP_BUCKETS: usize = 16;

/// The allocator settings the model honours (`PYTORCH_CUDA_ALLOC_CONF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchConfig {
    /// `max_split_size_mb` in bytes; `None` is PyTorch's default (unlimited). Blocks at least
    /// this large are never split, and requests below it never take them.
    pub max_split_size: Option<u64>,
    /// `roundup_power2_divisions`, one entry per bucket `floor(log2(size)) − 20` clamped to
    /// `0..16` (sizes below 1 MiB use bucket 0). `0` or `1` means plain 512-byte rounding.
    /// PyTorch's list syntax `[256:1,512:2,>:8]` expands to this table.
    pub roundup_power2_divisions: [u64; ROUNDUP_BUCKETS],
    /// Device memory available to the allocator (like a per-process memory fraction); a
    /// reservation that would push reserved bytes above it fails. `None`: unlimited.
    pub capacity: Option<u64>,
}

impl Default for TorchConfig {
    fn default() -> Self {
        TorchConfig {
            max_split_size: None,
            roundup_power2_divisions: [0; ROUNDUP_BUCKETS],
            capacity: None,
        }
    }
}

impl TorchConfig {
    /// The setting `roundup_power2_divisions:d` (the same division count for every bucket).
    pub fn uniform_divisions(d: u64) -> [u64; ROUNDUP_BUCKETS] {
        [d; ROUNDUP_BUCKETS]
    }

    /// `round_size`: the block size PyTorch uses for a request of `size` bytes.
    ///
    /// Returns `None` only when the rounded size would overflow `u64`.
    ///
    /// # Examples
    /// ```
    /// use memplan_core::allocator::torch::TorchConfig;
    /// let c = TorchConfig::default();
    /// assert_eq!(c.round_size(1), Some(512));
    /// assert_eq!(c.round_size(513), Some(1024));
    /// ```
    pub fn round_size(&self, size: u64) -> Option<u64> {
        if size < MIN_BLOCK_SIZE {
            return Some(MIN_BLOCK_SIZE);
        }
        let d = self.roundup_power2_divisions[roundup_bucket(size)];
        if d > 1 && size > MIN_BLOCK_SIZE.saturating_mul(d) {
            roundup_power2_next_division(size, d)
        } else {
            round_up(size, MIN_BLOCK_SIZE)
        }
    }

    fn max_split(&self) -> u64 {
        self.max_split_size.unwrap_or(u64::MAX)
    }
}

/// `get_allocation_size`: the segment size reserved for a block of (rounded) `size`.
pub fn allocation_size(size: u64) -> Option<u64> {
    if size <= SMALL_SIZE {
        Some(SMALL_BUFFER)
    } else if size < MIN_LARGE_ALLOC {
        Some(LARGE_BUFFER)
    } else {
        round_up(size, ROUND_LARGE)
    }
}

/// The divisions bucket of `size`: `floor(log2(size)) − 20`, clamped to `0..16`.
fn roundup_bucket(size: u64) -> usize {
    let log = 63 - size.max(1).leading_zeros() as usize;
    log.saturating_sub(20).min(ROUNDUP_BUCKETS - 1)
}

/// `roundup_power2_next_division`: `size` rounded up to the next of `divisions` equal steps
/// between the powers of two around it (the step is `2^k / prev_pow2(divisions)`).
fn roundup_power2_next_division(size: u64, divisions: u64) -> Option<u64> {
    if size.is_power_of_two() {
        return Some(size);
    }
    let floor = 1u64 << (63 - size.leading_zeros());
    let step = floor >> (63 - divisions.leading_zeros());
    if step == 0 {
        return floor.checked_mul(2);
    }
    let down = size & !(step - 1);
    if down == size {
        Some(size)
    } else {
        down.checked_add(step)
    }
}

/// Which free pool a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Small,
    Large,
}

/// One `cudaMalloc`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    size: u64,
    pool: Pool,
}

/// A block: a piece of one segment. `requested` is `Some(orig_size)` iff it is allocated.
#[derive(Debug, Clone, Copy)]
struct Block {
    size: u64,
    stream: u32,
    /// Base address of the segment holding the block.
    segment: Addr,
    requested: Option<u64>,
}

/// PyTorch's caching allocator, simulated. See the [module docs](self).
///
/// # Examples
/// ```
/// use memplan_core::allocator::Allocator;
/// use memplan_core::allocator::torch::{TorchConfig, TorchAllocator};
/// let mut m = TorchAllocator::new(TorchConfig::default());
/// let a = m.alloc(1000, 0).unwrap(); // small pool: one 2 MiB segment
/// let b = m.alloc(1000, 0).unwrap(); // split from the same segment
/// assert_eq!(b, a + 1024);
/// assert_eq!(m.stats().reserved, 2 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct TorchAllocator {
    config: TorchConfig,
    /// Every block of every live segment, keyed by address.
    blocks: BTreeMap<Addr, Block>,
    /// Live segments by base address.
    segments: BTreeMap<Addr, Segment>,
    /// Free small-pool blocks as `(stream, size, addr)`.
    small: BTreeSet<(u32, u64, Addr)>,
    /// Free large-pool blocks as `(stream, size, addr)`.
    large: BTreeSet<(u32, u64, Addr)>,
    /// Addresses to give the next reservations, in order.
    injected: VecDeque<Addr>,
    /// Highest segment end so far (at least [`SIMULATED_BASE`]).
    high_water: Addr,
    /// Sum of the rounded sizes of allocated blocks (PyTorch's `allocated_bytes`).
    allocated_rounded: u64,
    stats: AllocStats,
}

impl TorchAllocator {
    /// An empty allocator with the given settings. Every [`TorchConfig`] is valid (any
    /// `max_split_size`, division count or capacity), so this cannot fail.
    pub fn new(config: TorchConfig) -> Self {
        TorchAllocator {
            config,
            blocks: BTreeMap::new(),
            segments: BTreeMap::new(),
            small: BTreeSet::new(),
            large: BTreeSet::new(),
            injected: VecDeque::new(),
            high_water: SIMULATED_BASE,
            allocated_rounded: 0,
            stats: AllocStats::default(),
        }
    }

    /// Gives the next reservations (`cudaMalloc` calls) these base addresses, in order; once
    /// they run out, the simulated address space is used. An injected address that overlaps a
    /// live segment is skipped in favour of a simulated one (cudaMalloc could not return it).
    pub fn with_segment_addresses(mut self, addrs: impl IntoIterator<Item = Addr>) -> Self {
        self.injected.extend(addrs);
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

    /// The live segments as `(base, size)`, in address order.
    pub fn segments(&self) -> impl Iterator<Item = (Addr, u64)> + '_ {
        self.segments.iter().map(|(&a, s)| (a, s.size))
    }

    /// `empty_cache()`: returns every unsplit cached segment to the device.
    pub fn empty_cache(&mut self) {
        self.release_cached_blocks();
        self.check_invariants();
    }

    fn pool_set(&mut self, pool: Pool) -> &mut BTreeSet<(u32, u64, Addr)> {
        match pool {
            Pool::Small => &mut self.small,
            Pool::Large => &mut self.large,
        }
    }

    /// `get_free_block`: best fit on the same stream, with the oversize rules. Removes the
    /// block from its pool.
    fn get_free_block(&mut self, pool: Pool, stream: u32, size: u64) -> Option<Addr> {
        let max_split = self.config.max_split();
        let set = self.pool_set(pool);
        let &(s, bsize, addr) = set.range((stream, size, 0)..).next()?;
        if s != stream {
            return None;
        }
        // A request below max_split_size may not take an oversize block.
        if size < max_split && bsize >= max_split {
            return None;
        }
        // An oversize request may round up into an oversize block only by < kLargeBuffer.
        if size >= max_split && bsize >= size.saturating_add(LARGE_BUFFER) {
            return None;
        }
        set.remove(&(s, bsize, addr));
        Some(addr)
    }

    /// `alloc_block`: one `cudaMalloc` of `alloc_size`, failing above the capacity. The new
    /// segment's single block is free and not in any pool.
    fn alloc_block(&mut self, pool: Pool, stream: u32, alloc_size: u64) -> Option<Addr> {
        let reserved = self.stats.reserved.checked_add(alloc_size)?;
        if self.config.capacity.is_some_and(|cap| reserved > cap) {
            return None;
        }
        let base = self.next_segment_base(alloc_size)?;
        self.segments.insert(
            base,
            Segment {
                size: alloc_size,
                pool,
            },
        );
        self.blocks.insert(
            base,
            Block {
                size: alloc_size,
                stream,
                segment: base,
                requested: None,
            },
        );
        self.high_water = self.high_water.max(base + alloc_size);
        self.stats.reserved = reserved;
        self.stats.peak_reserved = self.stats.peak_reserved.max(reserved);
        self.stats.segments += 1;
        self.stats.reservations += 1;
        Some(base)
    }

    fn next_segment_base(&mut self, size: u64) -> Option<Addr> {
        while let Some(a) = self.injected.pop_front() {
            let Some(end) = a.checked_add(size) else {
                continue;
            };
            let overlaps = self
                .segments
                .range(..end)
                .next_back()
                .is_some_and(|(&b, s)| b + s.size > a);
            if !overlaps {
                return Some(a);
            }
        }
        let base = round_up(self.high_water, ROUND_LARGE)?;
        base.checked_add(size)?;
        Some(base)
    }

    /// Returns the unsplit free block at `addr` (a whole segment) to the device.
    fn release_block(&mut self, addr: Addr) {
        let block = self.blocks.remove(&addr).expect("released block exists");
        let seg = self
            .segments
            .remove(&addr)
            .expect("released block is a segment");
        debug_assert_eq!(seg.size, block.size, "only unsplit blocks are released");
        self.pool_set(seg.pool)
            .remove(&(block.stream, block.size, addr));
        self.stats.reserved -= seg.size;
        self.stats.segments -= 1;
    }

    fn is_unsplit(&self, addr: Addr, size: u64) -> bool {
        self.segments.get(&addr).is_some_and(|s| s.size == size)
    }

    /// `release_available_cached_blocks`: with `max_split_size` set, frees one cached oversize
    /// block at least as large as the request, or else the largest oversize blocks of the
    /// stream until they add up to it.
    fn release_available_cached_blocks(&mut self, pool: Pool, stream: u32, size: u64) -> bool {
        let Some(max_split) = self.config.max_split_size else {
            return false;
        };
        let key = size.max(max_split);
        let set = match pool {
            Pool::Small => &self.small,
            Pool::Large => &self.large,
        };
        // (No let chains: the MSRV is 1.85.)
        let single = set
            .range((stream, key, 0)..)
            .next()
            .filter(|&&(s, _, _)| s == stream)
            .map(|&(_, _, addr)| addr);
        if let Some(addr) = single {
            self.release_block(addr);
            return true;
        }
        // Walk down from the largest block below the key on this stream.
        let candidates: alloc::vec::Vec<(u32, u64, Addr)> = set
            .range(..(stream, key, 0))
            .rev()
            .take_while(|&&(s, bsize, _)| s == stream && bsize >= max_split)
            .copied()
            .collect();
        let mut released = 0u64;
        for (_, bsize, addr) in candidates {
            if released >= key {
                break;
            }
            if self.is_unsplit(addr, bsize) {
                self.release_block(addr);
                released += bsize;
            }
        }
        released >= key
    }

    /// `release_cached_blocks`: frees every unsplit cached block of both pools. Returns
    /// `true` (PyTorch's does unless a `cudaFree` fails).
    fn release_cached_blocks(&mut self) -> bool {
        let unsplit: alloc::vec::Vec<Addr> = self
            .large
            .iter()
            .chain(self.small.iter())
            .filter(|&&(_, size, addr)| self.is_unsplit(addr, size))
            .map(|&(_, _, addr)| addr)
            .collect();
        for addr in unsplit {
            self.release_block(addr);
        }
        true
    }

    /// Whether a block of `block_size` serving `size` is split (`should_split`).
    fn should_split(&self, pool: Pool, block_size: u64, size: u64) -> bool {
        let remaining = block_size - size;
        match pool {
            Pool::Small => remaining >= MIN_BLOCK_SIZE,
            Pool::Large => size < self.config.max_split() && remaining > SMALL_SIZE,
        }
    }

    /// Checks the representation invariants (module docs); debug builds only.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let mut allocated = 0;
        let mut rounded = 0;
        let mut reserved = 0;
        let mut free = 0;
        for (&base, seg) in &self.segments {
            reserved += seg.size;
            let mut at = base;
            let mut prev_free = false;
            for (&addr, b) in self.blocks.range(base..base + seg.size) {
                assert_eq!(addr, at, "blocks tile segment {base:#x}");
                assert_eq!(b.segment, base);
                at += b.size;
                let in_pool = match seg.pool {
                    Pool::Small => self.small.contains(&(b.stream, b.size, addr)),
                    Pool::Large => self.large.contains(&(b.stream, b.size, addr)),
                };
                match b.requested {
                    Some(r) => {
                        assert!(!in_pool, "allocated block {addr:#x} is in a pool");
                        allocated += r;
                        rounded += b.size;
                        prev_free = false;
                    }
                    None => {
                        assert!(in_pool, "free block {addr:#x} is not in its pool");
                        assert!(!prev_free, "free blocks at {addr:#x} not merged");
                        free += 1;
                        prev_free = true;
                    }
                }
            }
            assert_eq!(at, base + seg.size, "blocks tile segment {base:#x}");
        }
        assert_eq!(free, self.small.len() + self.large.len());
        assert_eq!(allocated, self.stats.allocated);
        assert_eq!(rounded, self.allocated_rounded);
        assert_eq!(reserved, self.stats.reserved);
        assert_eq!(self.segments.len() as u64, self.stats.segments);
    }
}

impl Allocator for TorchAllocator {
    /// PyTorch's `malloc`. A zero-size request is [`AllocError::ZeroSize`]: PyTorch answers it
    /// with a null pointer without touching the allocator.
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
        let alloc_size = allocation_size(size).ok_or_else(|| oom(self))?;
        let found = match self.get_free_block(pool, stream, size) {
            Some(a) => Some(a),
            None => self
                .alloc_block(pool, stream, alloc_size)
                .or_else(|| {
                    self.release_available_cached_blocks(pool, stream, size)
                        .then(|| self.alloc_block(pool, stream, alloc_size))
                        .flatten()
                })
                .or_else(|| {
                    self.release_cached_blocks()
                        .then(|| self.alloc_block(pool, stream, alloc_size))
                        .flatten()
                }),
        };
        let Some(addr) = found else {
            return Err(oom(self));
        };

        // alloc_found_block: the low piece is allocated, the remainder goes back to the pool.
        let block = self.blocks[&addr];
        let block_size = block.size;
        let taken = if self.should_split(pool, block_size, size) {
            let rest = Block {
                size: block_size - size,
                stream,
                segment: block.segment,
                requested: None,
            };
            self.blocks.insert(addr + size, rest);
            self.pool_set(pool).insert((stream, rest.size, addr + size));
            size
        } else {
            block_size
        };
        self.blocks.insert(
            addr,
            Block {
                size: taken,
                stream,
                segment: block.segment,
                requested: Some(orig_size),
            },
        );
        self.allocated_rounded += taken;
        self.stats.allocated += orig_size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
        self.check_invariants();
        Ok(addr)
    }

    /// PyTorch's `free` → `free_block`: merges with the free neighbours in the same segment.
    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        let Some(block) = self.blocks.get(&addr).copied() else {
            return Err(AllocError::UnknownAddress { addr });
        };
        let Some(requested) = block.requested else {
            return Err(AllocError::UnknownAddress { addr });
        };
        let pool = self.segments[&block.segment].pool;
        self.stats.allocated -= requested;
        self.allocated_rounded -= block.size;

        let mut start = addr;
        let mut size = block.size;
        // Merge with prev (same segment, free).
        let prev = self
            .blocks
            .range(..addr)
            .next_back()
            .map(|(&p, &pb)| (p, pb))
            .filter(|(_, pb)| pb.segment == block.segment && pb.requested.is_none());
        if let Some((p, pb)) = prev {
            self.pool_set(pool).remove(&(pb.stream, pb.size, p));
            self.blocks.remove(&addr);
            start = p;
            size += pb.size;
        }
        // Merge with next (same segment, free).
        let next = addr + block.size;
        let next_block = self
            .blocks
            .get(&next)
            .copied()
            .filter(|nb| nb.segment == block.segment && nb.requested.is_none());
        if let Some(nb) = next_block {
            self.pool_set(pool).remove(&(nb.stream, nb.size, next));
            self.blocks.remove(&next);
            size += nb.size;
        }
        self.blocks.insert(
            start,
            Block {
                size,
                stream: block.stream,
                segment: block.segment,
                requested: None,
            },
        );
        self.pool_set(pool).insert((block.stream, size, start));
        self.check_invariants();
        Ok(())
    }

    fn stats(&self) -> AllocStats {
        self.stats
    }

    fn name(&self) -> &'static str {
        "torch"
    }

    /// [`empty_cache`](Self::empty_cache); returns the bytes it gave back.
    fn trim(&mut self) -> u64 {
        let before = self.stats.reserved;
        self.empty_cache();
        before - self.stats.reserved
    }
}

#[cfg(test)]
mod tests;

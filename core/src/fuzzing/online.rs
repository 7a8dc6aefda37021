//! The `online` fuzz case: bytes → a configuration and a sequence of alloc/free/trim calls on
//! [`OnlineAllocator`] → checks against [`Shadow`], an independent model of the allocator.
//!
//! [`Shadow`] is the one shadow model of the online allocator: the fuzz [`check`] drives it
//! from bytes, and core's property test (`core/tests/online_shadow.rs`) drives it from
//! `proptest` strategies. It uses only the allocator's public API and documented policy, never
//! its internals (its 512-byte rounding is written here on purpose, not taken from the
//! allocator or `crate::units`, so that a wrong rounding there cannot hide itself).
//!
//! # What is checked, after every call
//! - The shadow keeps its own map of live `[addr, addr + rounded)` ranges: every address the
//!   allocator returns is 512-aligned, inside the mapped range, and overlaps no live range.
//! - From the live ranges alone the shadow derives the free gaps and, with them, what the
//!   documented policy must do: the address a request gets (the smallest gap that fits, the
//!   lowest address among equals), the pages a growth maps, when the capacity (or the address
//!   space) refuses with `OutOfMemory`, and what `trim` releases.
//! - Stats are exact (allocated, peaks, reserved, segments, reservations); the allocator's
//!   free blocks equal the shadow's maximal gaps (so every free block is coalesced).
//! - Frees of live addresses succeed; any other address gives `UnknownAddress` and changes
//!   nothing.
//!
//! # Encoding (every byte string is valid; missing bytes read as 0)
//! ```text
//! byte 0: page size (bits 0-1: 512, 4 KiB, 64 KiB, 2 MiB), base (bit 2: 0 or the default)
//! byte 1: capacity (0: none; else (b - 1) % 48 pages, plus half a page when b is even)
//! ops until the bytes run out or MAX_OPS were read, one byte each (op % 8) + arguments:
//!   0-3  alloc        mode byte (mode % 8: 0, tiny, < 4 KiB, < 64 KiB, < 4 MiB, a multiple
//!                     of 512, a whole number of pages, near u64::MAX), u32 for the size
//!   4-5  free live    u16 index into the live allocations (in address order)
//!   6    free bogus   mode byte: interior, 1 past a start, already freed, mapped end,
//!                     0 / u64::MAX
//!   7    trim
//! ```
//! At the end everything still live is freed and a trim must unmap every page.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

use crate::allocator::online::{DEFAULT_BASE, OnlineAllocator, OnlineConfig};
use crate::allocator::{Addr, AllocError, AllocStats, Allocator};
use crate::fuzzing::reader::Reader;

/// Most ops decoded from one input.
pub const MAX_OPS: usize = 256;

/// Rounding granule of every block, as documented (not read from the allocator).
const GRANULE: u64 = 512;

/// The decoded configuration: page sizes from 512 bytes to 2 MiB, base 0 or the default,
/// capacity none or up to 48 pages (sometimes not a whole number of pages).
pub fn config(r: &mut Reader<'_>) -> OnlineConfig {
    let b = r.byte();
    let page_size = [512, 4 << 10, 64 << 10, 2 << 20][usize::from(b & 3)];
    let base = if b & 4 == 0 { DEFAULT_BASE } else { 0 };
    let c = r.byte();
    let capacity = (c != 0).then(|| {
        let pages = u64::from((c - 1) % 48);
        pages * page_size + if c % 2 == 0 { page_size / 2 } else { 0 }
    });
    OnlineConfig {
        base,
        page_size,
        capacity,
    }
}

/// Bytes a request takes (a whole number of granules, at least one), or `None` when rounding
/// overflows.
fn rounded(size: u64) -> Option<u64> {
    Some(size.max(1).checked_add(GRANULE - 1)? / GRANULE * GRANULE)
}

/// The online allocator as it must be, kept without looking at its internals.
///
/// Drive an [`OnlineAllocator`] through [`Shadow::alloc`], [`Shadow::free`] and
/// [`Shadow::trim`]: each makes the call, checks its result against the prediction, updates
/// the model and then [`Shadow::compare`]s everything observable; [`Shadow::finish`] frees
/// what is left and checks that every page goes back. Every check panics on a mismatch.
///
/// Invariants: the live ranges are disjoint, 512-aligned and inside
/// `[base, base + mapped)`; `stats` is exactly what the allocator must report.
#[derive(Debug, Clone)]
pub struct Shadow {
    /// The allocator's configuration (base, page size, capacity).
    config: OnlineConfig,
    /// Live blocks: start → (end of the rounded range, requested bytes).
    live: BTreeMap<Addr, (Addr, u64)>,
    /// Bytes mapped from the base.
    mapped: u64,
    /// What `stats()` must return.
    stats: AllocStats,
    /// Addresses freed at some point (possibly live again since).
    freed: Vec<Addr>,
}

impl Shadow {
    /// The model of a new allocator with `config`: nothing mapped, nothing live.
    pub fn new(config: OnlineConfig) -> Self {
        Shadow {
            config,
            live: BTreeMap::new(),
            mapped: 0,
            stats: AllocStats::default(),
            freed: Vec::new(),
        }
    }

    /// Start of the mapped range (the configured base).
    pub fn base(&self) -> Addr {
        self.config.base
    }

    /// Bytes mapped from the base.
    pub fn mapped(&self) -> u64 {
        self.mapped
    }

    /// End of the mapped range.
    pub fn end(&self) -> Addr {
        self.config.base + self.mapped
    }

    /// The live allocations' rounded ranges, in address order.
    pub fn live(&self) -> impl ExactSizeIterator<Item = Range<Addr>> + '_ {
        self.live.iter().map(|(&start, &(end, _))| start..end)
    }

    /// Addresses freed at some point, in free order (possibly live again since).
    pub fn freed(&self) -> &[Addr] {
        &self.freed
    }

    /// The maximal free gaps of the mapped range, in address order.
    pub fn gaps(&self) -> Vec<Range<Addr>> {
        let mut gaps = Vec::new();
        let mut at = self.config.base;
        for (&start, &(end, _)) in &self.live {
            if start > at {
                gaps.push(at..start);
            }
            at = end;
        }
        if at < self.end() {
            gaps.push(at..self.end());
        }
        gaps
    }

    fn set_mapped(&mut self, mapped: u64) {
        self.mapped = mapped;
        self.stats.reserved = mapped;
        self.stats.peak_reserved = self.stats.peak_reserved.max(mapped);
        self.stats.segments = u64::from(mapped > 0);
    }

    /// Where a request of `size` must go and the mapped bytes after it; `None` for
    /// `OutOfMemory` (over the capacity, or past the end of the address space).
    pub fn predict(&self, size: u64) -> Option<(Addr, u64)> {
        let need = rounded(size)?;
        let gaps = self.gaps();
        let best = gaps
            .iter()
            .filter(|g| g.end - g.start >= need)
            .min_by_key(|g| (g.end - g.start, g.start));
        if let Some(g) = best {
            return Some((g.start, self.mapped));
        }
        let (start, have) = match gaps.last() {
            Some(g) if g.end == self.end() => (g.start, g.end - g.start),
            _ => (self.end(), 0),
        };
        let page = self.config.page_size;
        let grow = (need - have).checked_add(page - 1)? / page * page;
        let mapped = self.mapped.checked_add(grow)?;
        self.config.base.checked_add(mapped)?;
        if self.config.capacity.is_some_and(|c| mapped > c) {
            return None;
        }
        Some((start, mapped))
    }

    /// Compares everything observable with the allocator: stats, mapped range, and free
    /// blocks (which must equal the maximal gaps, so they are coalesced and tile the gaps).
    pub fn compare(&self, a: &OnlineAllocator) {
        assert_eq!(a.stats(), self.stats, "stats");
        assert_eq!(
            a.mapped_range(),
            self.config.base..self.end(),
            "mapped range"
        );
        assert_eq!(
            a.free_blocks().collect::<Vec<_>>(),
            self.gaps(),
            "free blocks (coalesced, tiling the gaps)"
        );
    }

    /// Records a live allocation, panicking if it is misaligned, leaves the mapped range or
    /// overlaps a live one.
    fn insert(&mut self, addr: Addr, size: u64) {
        let end = addr + rounded(size).expect("predicted");
        assert_eq!(addr % GRANULE, 0, "{addr:#x} is not 512-aligned");
        assert!(
            addr >= self.config.base && end <= self.end(),
            "{addr:#x}..{end:#x} outside the mapped range"
        );
        if let Some((&s, &(e, _))) = self.live.range(..end).next_back() {
            assert!(
                e <= addr,
                "{addr:#x}..{end:#x} overlaps live {s:#x}..{e:#x}"
            );
        }
        if let Some((&s, _)) = self.live.range(addr..).next() {
            assert!(end <= s, "{addr:#x}..{end:#x} overlaps live {s:#x}");
        }
        self.live.insert(addr, (end, size));
        self.stats.allocated += size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
    }

    /// `a.alloc(size, stream)`: the address must be the predicted one (or `OutOfMemory`
    /// with the bytes mapped when the model predicts no fit); then compares.
    pub fn alloc(&mut self, a: &mut OnlineAllocator, size: u64, stream: u32) {
        let got = a.alloc(size, stream);
        match self.predict(size) {
            None => assert_eq!(
                got,
                Err(AllocError::OutOfMemory {
                    size,
                    reserved: self.mapped
                }),
                "alloc({size}) must not fit (capacity {:?})",
                self.config.capacity
            ),
            Some((addr, mapped)) => {
                assert_eq!(got, Ok(addr), "alloc({size})");
                if mapped != self.mapped {
                    self.stats.reservations += 1;
                    self.set_mapped(mapped);
                }
                self.insert(addr, size);
            }
        }
        self.compare(a);
    }

    /// `a.free(addr)`: live addresses succeed, any other is refused with `UnknownAddress`
    /// and changes nothing; then compares.
    pub fn free(&mut self, a: &mut OnlineAllocator, addr: Addr) {
        let got = a.free(addr);
        match self.live.remove(&addr) {
            Some((_, size)) => {
                assert_eq!(got, Ok(()), "free({addr:#x})");
                self.stats.allocated -= size;
                self.freed.push(addr);
            }
            None => assert_eq!(got, Err(AllocError::UnknownAddress { addr })),
        }
        self.compare(a);
    }

    /// `a.trim()`: releases exactly the whole pages of the free tail; then compares.
    pub fn trim(&mut self, a: &mut OnlineAllocator) {
        let released = a.trim();
        let page = self.config.page_size;
        let keep = match self.gaps().last() {
            Some(g) if g.end == self.end() => (g.start - self.config.base).div_ceil(page) * page,
            _ => self.mapped,
        };
        assert_eq!(released, self.mapped - keep, "trim");
        self.set_mapped(keep);
        self.compare(a);
    }

    /// Frees everything still live (in address order), checks that the free space coalesced
    /// into at most one block, trims, and checks that nothing is left mapped.
    pub fn finish(&mut self, a: &mut OnlineAllocator) {
        let live: Vec<Addr> = self.live.keys().copied().collect();
        for addr in live {
            self.free(a, addr);
        }
        assert!(
            a.free_blocks().count() <= 1,
            "all free must coalesce into one block"
        );
        self.trim(a);
        assert_eq!(a.stats().reserved, 0, "everything freed and trimmed");
        assert_eq!(a.stats().segments, 0);
        assert_eq!(a.free_blocks().count(), 0);
    }
}

/// A request size from a mode byte and 4 random bytes.
fn size(mode: u8, x: u32, page: u64) -> u64 {
    let x = u64::from(x);
    match mode % 8 {
        0 => 0,
        1 => 1 + x % 64,
        2 => 1 + x % (4 << 10),
        3 => 1 + x % (64 << 10),
        4 => 1 + x % (4 << 20),
        5 => (1 + x % 64) * GRANULE,
        6 => (1 + x % 4) * page,
        _ => u64::MAX - x,
    }
}

/// Decodes `data` and runs it against the [`Shadow`]; panics on any mismatch.
pub fn check(data: &[u8]) {
    let mut r = Reader(data);
    let config = config(&mut r);
    let mut a = OnlineAllocator::new(config).expect("config() makes valid page layouts");
    let mut s = Shadow::new(config);
    s.compare(&a);
    for _ in 0..MAX_OPS {
        if r.0.is_empty() {
            break;
        }
        match r.byte() % 8 {
            0..=3 => {
                let mode = r.byte();
                let x = r.u32();
                s.alloc(
                    &mut a,
                    size(mode, x, config.page_size),
                    u32::from(mode >> 4),
                );
            }
            4 | 5 => {
                let i = usize::from(r.u16()) % s.live().len().max(1);
                let addr = s.live().nth(i).map_or(config.base, |l| l.start);
                s.free(&mut a, addr);
            }
            6 => {
                let mode = r.byte();
                let first = s.live().next();
                let addr = match mode % 6 {
                    0 => first.map_or(config.base, |l| l.start + (l.end - l.start) / 2 / 512 * 512),
                    1 => first.map_or(config.base + 1, |l| l.start + 1),
                    2 if !s.freed().is_empty() => s.freed()[usize::from(mode) % s.freed().len()],
                    3 => s.end(),
                    4 => 0,
                    _ => u64::MAX,
                };
                s.free(&mut a, addr);
            }
            _ => s.trim(&mut a),
        }
    }
    s.finish(&mut a);
}

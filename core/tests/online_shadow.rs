//! The `memplan` online allocator against an independent shadow model.
//!
//! The shadow keeps its own map of live `[addr, addr + rounded)` ranges (panicking on any
//! overlap), its own byte accounting, and its own idea of the mapped range. From those alone it
//! derives the free gaps, and with them what the documented policy must do: which address a
//! request gets (smallest gap that fits, lowest address among equals), how many pages a growth
//! maps, when a capacity refuses, and what `trim` gives back. After every operation the
//! allocator's stats, mapped range and free blocks must equal the shadow's; since the shadow's
//! gaps are maximal, that also proves every free block is coalesced.
//!
//! Operations are decoded bytecode-style (`op % 8`): allocations of sizes from 0 bytes to
//! 32 MiB, frees of live addresses, frees of bogus ones (never allocated, interior, already
//! freed, out of range), and trims. Unit tests below cover coalescing orders, growth, trim and
//! capacity by hand.

use std::collections::BTreeMap;
use std::ops::Range;

use memplan_core::allocator::online::{ALIGN, DEFAULT_BASE, OnlineAllocator, OnlineConfig};
use memplan_core::allocator::{Addr, AllocError, AllocStats, Allocator};
use proptest::prelude::*;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Shadow model

/// What the allocator should be, written without looking at its internals.
struct Shadow {
    base: Addr,
    page: u64,
    capacity: Option<u64>,
    /// Live allocations: start -> (end of the rounded range, requested bytes).
    live: BTreeMap<Addr, (Addr, u64)>,
    /// Bytes mapped from `base`.
    mapped: u64,
    /// The stats the allocator must report.
    stats: AllocStats,
    /// Addresses freed at some point (possibly live again since).
    freed: Vec<Addr>,
}

/// Bytes a request takes: a whole number of 512-byte granules, at least one.
fn granules(size: u64) -> u64 {
    size.div_ceil(512).max(1) * 512
}

impl Shadow {
    fn new(c: &OnlineConfig) -> Self {
        Shadow {
            base: c.base,
            page: c.page_size,
            capacity: c.capacity,
            live: BTreeMap::new(),
            mapped: 0,
            stats: AllocStats::default(),
            freed: Vec::new(),
        }
    }

    fn end(&self) -> Addr {
        self.base + self.mapped
    }

    /// Maximal free gaps of the mapped range, in address order.
    fn gaps(&self) -> Vec<Range<Addr>> {
        let mut out = Vec::new();
        let mut cursor = self.base;
        for (&a, &(e, _)) in &self.live {
            if a > cursor {
                out.push(cursor..a);
            }
            cursor = e;
        }
        if cursor < self.end() {
            out.push(cursor..self.end());
        }
        out
    }

    /// Where a request of `size` must go and the mapped size after it, or `None` for OOM.
    fn predict_alloc(&self, size: u64) -> Option<(Addr, u64)> {
        let r = granules(size);
        let gaps = self.gaps();
        if let Some(g) = gaps
            .iter()
            .filter(|g| g.end - g.start >= r)
            .min_by_key(|g| (g.end - g.start, g.start))
        {
            return Some((g.start, self.mapped));
        }
        let (start, have) = match gaps.last() {
            Some(g) if g.end == self.end() => (g.start, g.end - g.start),
            _ => (self.end(), 0),
        };
        let grown = self.mapped + (r - have).div_ceil(self.page) * self.page;
        if self.capacity.is_some_and(|c| grown > c) {
            return None;
        }
        Some((start, grown))
    }

    /// Records a live allocation, panicking if it overlaps one or leaves the mapped range.
    fn insert(&mut self, addr: Addr, size: u64) {
        let end = addr + granules(size);
        assert!(addr % 512 == 0, "{addr:#x} is not 512-aligned");
        assert!(
            addr >= self.base && end <= self.end(),
            "{addr:#x}..{end:#x} outside the mapped range"
        );
        if let Some((&pa, &(pe, _))) = self.live.range(..=addr).next_back() {
            assert!(pe <= addr, "{addr:#x} overlaps live {pa:#x}..{pe:#x}");
        }
        if let Some((&na, _)) = self.live.range(addr..).next() {
            assert!(end <= na, "{addr:#x}..{end:#x} overlaps live {na:#x}");
        }
        self.live.insert(addr, (end, size));
        self.stats.allocated += size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
    }

    fn set_mapped(&mut self, mapped: u64) {
        self.mapped = mapped;
        self.stats.reserved = mapped;
        self.stats.peak_reserved = self.stats.peak_reserved.max(mapped);
        self.stats.segments = u64::from(mapped > 0);
    }

    /// Checks the allocator against the shadow.
    fn check(&self, a: &OnlineAllocator) {
        assert_eq!(a.stats(), self.stats, "stats");
        assert_eq!(a.mapped_range(), self.base..self.end(), "mapped range");
        assert_eq!(
            a.free_blocks().collect::<Vec<_>>(),
            self.gaps(),
            "free blocks"
        );
    }
}

/// Allocates through both and compares.
fn do_alloc(a: &mut OnlineAllocator, s: &mut Shadow, size: u64, stream: u32) {
    let got = a.alloc(size, stream);
    match s.predict_alloc(size) {
        Some((addr, mapped)) => {
            assert_eq!(got, Ok(addr), "alloc({size})");
            if mapped != s.mapped {
                s.stats.reservations += 1;
                s.set_mapped(mapped);
            }
            s.insert(addr, size);
        }
        None => assert_eq!(
            got,
            Err(AllocError::OutOfMemory {
                size,
                reserved: s.mapped
            }),
            "alloc({size}) should not fit capacity {:?}",
            s.capacity
        ),
    }
    s.check(a);
}

/// Frees through both: live addresses succeed, anything else is refused with no change.
fn do_free(a: &mut OnlineAllocator, s: &mut Shadow, addr: Addr) {
    let got = a.free(addr);
    match s.live.remove(&addr) {
        Some((_, size)) => {
            assert_eq!(got, Ok(()), "free({addr:#x})");
            s.stats.allocated -= size;
            s.freed.push(addr);
        }
        None => assert_eq!(got, Err(AllocError::UnknownAddress { addr })),
    }
    s.check(a);
}

/// Trims through both.
fn do_trim(a: &mut OnlineAllocator, s: &mut Shadow) {
    let released = a.trim();
    let keep = match s.gaps().last() {
        Some(g) if g.end == s.end() => (g.start - s.base).div_ceil(s.page) * s.page,
        _ => s.mapped,
    };
    assert_eq!(released, s.mapped - keep, "trim");
    s.set_mapped(keep);
    s.check(a);
}

// ---------------------------------------------------------------------------------------------
// Property test

fn run(config: OnlineConfig, ops: &[(u8, u64, u64)]) {
    let mut a = OnlineAllocator::new(config);
    let mut s = Shadow::new(&config);
    s.check(&a);
    for &(op, x, y) in ops {
        match op % 8 {
            0..=3 => {
                let size = match x % 6 {
                    0 => 0,
                    1 => 1 + y % KIB,
                    2 => 1 + y % (64 * KIB),
                    3 => 1 + y % (4 * MIB),
                    4 => 1 + y % (32 * MIB),
                    _ => (1 + y % 64) * ALIGN,
                };
                do_alloc(&mut a, &mut s, size, ((x >> 8) % 4) as u32);
            }
            4 | 5 => {
                let i = (y % (s.live.len() as u64).max(1)) as usize;
                let addr = s.live.keys().nth(i).copied().unwrap_or(s.base);
                do_free(&mut a, &mut s, addr);
            }
            6 => {
                let addr = match y % 5 {
                    // Anywhere near the range, aligned or not.
                    0 => (s.base + x % (s.mapped + 2 * MIB)).saturating_sub(MIB),
                    // Inside a live block (its second granule, or its start + 1).
                    1 => s.live.iter().next().map_or(s.base + 1, |(&a, &(e, _))| {
                        if e - a > ALIGN { a + ALIGN } else { a + 1 }
                    }),
                    // Freed before (a double free unless it was reused).
                    2 if !s.freed.is_empty() => s.freed[(x % s.freed.len() as u64) as usize],
                    3 => s.end(),
                    _ => [0, u64::MAX, 1][(x % 3) as usize],
                };
                do_free(&mut a, &mut s, addr);
            }
            _ => do_trim(&mut a, &mut s),
        }
    }
    // Free everything, trim, and nothing is left.
    let live: Vec<Addr> = s.live.keys().copied().collect();
    for addr in live {
        do_free(&mut a, &mut s, addr);
    }
    assert!(
        a.free_blocks().count() <= 1,
        "all free must coalesce into one block"
    );
    do_trim(&mut a, &mut s);
    assert_eq!(a.stats().reserved, 0);
    assert_eq!(a.stats().segments, 0);
}

fn config_strategy() -> impl Strategy<Value = OnlineConfig> {
    (
        prop_oneof![Just(4 * KIB), Just(64 * KIB), Just(2 * MIB)],
        prop_oneof![Just(None), (0..96 * MIB).prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(|(page_size, capacity, zero_base)| OnlineConfig {
            base: if zero_base { 0 } else { DEFAULT_BASE },
            page_size,
            capacity,
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 1024 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_shadow_model(
        config in config_strategy(),
        ops in prop::collection::vec((any::<u8>(), any::<u64>(), any::<u64>()), 0..400),
    ) {
        run(config, &ops);
    }
}

// ---------------------------------------------------------------------------------------------
// Unit tests

fn config(page_size: u64, capacity: Option<u64>) -> OnlineConfig {
    OnlineConfig {
        base: DEFAULT_BASE,
        page_size,
        capacity,
    }
}

/// The free blocks as `(start, end)` pairs.
fn free_blocks(a: &OnlineAllocator) -> Vec<(Addr, Addr)> {
    a.free_blocks().map(|r| (r.start, r.end)).collect()
}

#[test]
fn coalesces_in_every_free_order() {
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        // A, B, C fill one 4 KiB page exactly, D lives on, so the tail stays out of the way.
        let mut a = OnlineAllocator::new(config(4 * KIB, None));
        let abc = [
            a.alloc(1000, 0).unwrap(),
            a.alloc(512, 1).unwrap(),
            a.alloc(2560, 0).unwrap(),
        ];
        let d = a.alloc(4 * KIB, 0).unwrap();
        assert_eq!(a.free_blocks().count(), 0);
        for i in order {
            a.free(abc[i]).unwrap();
        }
        assert_eq!(
            free_blocks(&a),
            [(DEFAULT_BASE, DEFAULT_BASE + 4 * KIB)],
            "order {order:?}"
        );
        a.free(d).unwrap();
        assert_eq!(free_blocks(&a), [(DEFAULT_BASE, DEFAULT_BASE + 8 * KIB)]);
        assert_eq!(a.stats().allocated, 0);
    }
}

#[test]
fn best_fit_takes_the_smallest_hole() {
    let mut a = OnlineAllocator::new(config(64 * KIB, None));
    let x: Vec<Addr> = [4 * KIB, 512, 2 * KIB, 512, 8 * KIB, 512]
        .iter()
        .map(|&n| a.alloc(n, 0).unwrap())
        .collect();
    a.free(x[0]).unwrap(); // 4 KiB hole
    a.free(x[2]).unwrap(); // 2 KiB hole
    a.free(x[4]).unwrap(); // 8 KiB hole
    assert_eq!(a.alloc(1500, 0), Ok(x[2]));
    assert_eq!(a.alloc(3 * KIB, 0), Ok(x[0]));
    assert_eq!(a.alloc(5 * KIB, 0), Ok(x[4]));
}

#[test]
fn grows_by_whole_pages_and_counts_reservations() {
    let mut a = OnlineAllocator::default();
    assert_eq!(a.stats(), AllocStats::default());
    let x = a.alloc(3 * MIB, 0).unwrap();
    assert_eq!((a.stats().reserved, a.stats().reservations), (4 * MIB, 1));
    assert_eq!(a.stats().segments, 1);
    // Fits in the free tail: no new mapping.
    let y = a.alloc(MIB, 0).unwrap();
    assert_eq!(y, x + 3 * MIB);
    assert_eq!((a.stats().reserved, a.stats().reservations), (4 * MIB, 1));
    // Nothing free: maps one more page.
    a.alloc(1, 0).unwrap();
    assert_eq!((a.stats().reserved, a.stats().reservations), (6 * MIB, 2));
    // The free tail (2 MiB - 512) is extended, not skipped: 5 MiB needs two more pages.
    let z = a.alloc(5 * MIB, 1).unwrap();
    assert_eq!(z, x + 4 * MIB + 512);
    assert_eq!((a.stats().reserved, a.stats().reservations), (10 * MIB, 3));
    assert_eq!(a.stats().segments, 1);
    assert_eq!(a.stats().allocated, 9 * MIB + 1);
    assert_eq!(a.stats().peak_reserved, 10 * MIB);
}

#[test]
fn zero_size_takes_one_granule() {
    let mut a = OnlineAllocator::default();
    let x = a.alloc(0, 0).unwrap();
    let y = a.alloc(0, 0).unwrap();
    assert_eq!(y, x + ALIGN);
    assert_eq!(a.stats().allocated, 0);
    a.free(x).unwrap();
    assert_eq!(
        a.free(x),
        Err(AllocError::UnknownAddress { addr: x }),
        "double free"
    );
}

#[test]
fn trim_gives_back_only_the_free_tail() {
    let mut a = OnlineAllocator::default();
    let x = a.alloc(MIB, 0).unwrap();
    let y = a.alloc(3 * MIB, 0).unwrap();
    let z = a.alloc(2 * MIB, 0).unwrap();
    assert_eq!(a.stats().reserved, 6 * MIB);
    assert_eq!(a.trim(), 0, "tail in use");
    a.free(y).unwrap();
    assert_eq!(a.trim(), 0, "a hole is not given back");
    a.free(z).unwrap();
    // Free from 1 MiB to 6 MiB: pages 2..6 MiB go, 1..2 MiB stays (page shared with x).
    assert_eq!(a.trim(), 4 * MIB);
    assert_eq!(a.stats().reserved, 2 * MIB);
    assert_eq!(a.stats().peak_reserved, 6 * MIB);
    assert_eq!(a.trim(), 0, "idempotent");
    a.free(x).unwrap();
    assert_eq!(a.trim(), 2 * MIB);
    assert_eq!(a.stats().reserved, 0);
    assert_eq!(a.stats().segments, 0);
    assert_eq!(a.free_blocks().count(), 0);
    // Grows again from the base.
    assert_eq!(a.alloc(1, 0), Ok(DEFAULT_BASE));
    assert_eq!(a.stats().reservations, 4);
}

#[test]
fn capacity_refuses_without_changing_anything() {
    let mut a = OnlineAllocator::with_capacity(5 * MIB); // only 4 MiB usable: whole pages
    let x = a.alloc(3 * MIB, 0).unwrap();
    let before = a.stats();
    assert_eq!(
        a.alloc(2 * MIB, 0),
        Err(AllocError::OutOfMemory {
            size: 2 * MIB,
            reserved: 4 * MIB
        })
    );
    assert_eq!(a.stats(), before);
    assert_eq!(a.alloc(MIB, 0).map(|y| y - x), Ok(3 * MIB));
    a.free(x).unwrap();
    assert_eq!(a.alloc(2 * MIB, 0), Ok(x));
    assert!(matches!(
        a.alloc(u64::MAX, 0),
        Err(AllocError::OutOfMemory { .. })
    ));
    let mut unlimited = OnlineAllocator::default();
    assert!(matches!(
        unlimited.alloc(u64::MAX - 100, 0),
        Err(AllocError::OutOfMemory { .. })
    ));
    assert_eq!(unlimited.stats(), AllocStats::default());
}

#[test]
fn bogus_frees_are_refused() {
    let mut a = OnlineAllocator::default();
    let x = a.alloc(4 * KIB, 0).unwrap();
    let before = a.stats();
    for addr in [
        0,
        x + 512,
        x + 1,
        x + 4 * KIB,
        DEFAULT_BASE + 4 * MIB,
        u64::MAX,
    ] {
        assert_eq!(a.free(addr), Err(AllocError::UnknownAddress { addr }));
        assert_eq!(a.stats(), before);
    }
    assert_eq!(a.name(), "memplan");
}

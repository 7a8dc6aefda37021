//! The `online` allocator against the independent shadow model
//! [`memplan_core::fuzzing::online::Shadow`] (the one the `online` fuzz target drives too).
//!
//! The shadow keeps its own map of live `[addr, addr + rounded)` ranges (panicking on any
//! overlap), its own byte accounting, and its own idea of the mapped range. From those alone it
//! derives the free gaps, and with them what the documented policy must do: which address a
//! request gets (smallest gap that fits, lowest address among equals), how many pages a growth
//! maps, when a capacity refuses, and what `trim` gives back. After every operation the
//! allocator's stats, mapped range and free blocks must equal the shadow's; since the shadow's
//! gaps are maximal, that also proves every free block is coalesced.
//!
//! The property test decodes operations bytecode-style (`op % 8`): allocations of sizes from
//! 0 bytes to 32 MiB, frees of live addresses, frees of bogus ones (never allocated, interior,
//! already freed, out of range), and trims. Unit tests below cover coalescing orders, growth,
//! trim and capacity by hand.

use memplan_core::allocator::online::{ALIGN, DEFAULT_BASE, OnlineAllocator, OnlineConfig};
use memplan_core::allocator::{Addr, AllocError, AllocStats, Allocator, SetupError};
use memplan_core::fuzzing::online::Shadow;
use proptest::prelude::*;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Property test

fn run(config: OnlineConfig, ops: &[(u8, u64, u64)]) {
    let mut a = OnlineAllocator::new(config).unwrap();
    let mut s = Shadow::new(config);
    s.compare(&a);
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
                s.alloc(&mut a, size, ((x >> 8) % 4) as u32);
            }
            4 | 5 => {
                let i = (y % (s.live().len() as u64).max(1)) as usize;
                let addr = s.live().nth(i).map_or(s.base(), |l| l.start);
                s.free(&mut a, addr);
            }
            6 => {
                let addr = match y % 5 {
                    // Anywhere near the range, aligned or not.
                    0 => (s.base() + x % (s.mapped() + 2 * MIB)).saturating_sub(MIB),
                    // Inside a live block (its second granule, or its start + 1).
                    1 => s.live().next().map_or(s.base() + 1, |l| {
                        if l.end - l.start > ALIGN {
                            l.start + ALIGN
                        } else {
                            l.start + 1
                        }
                    }),
                    // Freed before (a double free unless it was reused).
                    2 if !s.freed().is_empty() => s.freed()[(x % s.freed().len() as u64) as usize],
                    3 => s.end(),
                    _ => [0, u64::MAX, 1][(x % 3) as usize],
                };
                s.free(&mut a, addr);
            }
            _ => s.trim(&mut a),
        }
    }
    // Free everything, trim, and nothing is left.
    s.finish(&mut a);
}

/// Like [`run`], with sizes from a few values only: many free blocks of equal size, and
/// several in one size class, so ties (lowest address wins) and the search inside a class are
/// exercised, not just the search across classes.
fn run_ties(config: OnlineConfig, ops: &[(u8, u64)]) {
    const SIZES: [u64; 8] = [
        1,
        ALIGN,
        2 * ALIGN,
        3 * ALIGN,
        16 * KIB,
        16 * KIB + ALIGN,
        17 * KIB,
        2 * MIB - ALIGN,
    ];
    let mut a = OnlineAllocator::new(config).unwrap();
    let mut s = Shadow::new(config);
    for &(op, x) in ops {
        match op % 16 {
            0..=7 => s.alloc(&mut a, SIZES[(x % 8) as usize], 0),
            8..=14 => {
                let i = (x % (s.live().len() as u64).max(1)) as usize;
                let addr = s.live().nth(i).map_or(s.base(), |l| l.start);
                s.free(&mut a, addr);
            }
            _ => s.trim(&mut a),
        }
    }
    s.finish(&mut a);
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

    #[test]
    fn matches_shadow_model_with_many_ties(
        config in config_strategy(),
        ops in prop::collection::vec((any::<u8>(), any::<u64>()), 0..600),
    ) {
        run_ties(config, &ops);
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
        let mut a = OnlineAllocator::new(config(4 * KIB, None)).unwrap();
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
    let mut a = OnlineAllocator::new(config(64 * KIB, None)).unwrap();
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
    assert_eq!(a.name(), "online");
}

#[test]
fn new_refuses_bad_page_layouts_without_panicking() {
    let bad = |base: Addr, page_size: u64| {
        let c = OnlineConfig {
            base,
            page_size,
            capacity: None,
        };
        assert_eq!(
            OnlineAllocator::new(c).err(),
            Some(SetupError::BadPageSize { base, page_size }),
            "base {base:#x}, page size {page_size}"
        );
    };
    for page in [0, 1, 256, 511, 513, 3000, 1 << 41, 1 << 63, u64::MAX] {
        bad(DEFAULT_BASE, page);
    }
    bad(DEFAULT_BASE + 4 * KIB, 64 * KIB);
    bad(1, ALIGN);
    for page in [ALIGN, 4 * KIB, 2 * MIB, 1 << 40] {
        let c = config(page, None);
        assert_eq!(OnlineAllocator::new(c).map(|a| *a.config()), Ok(c));
    }
    let message = OnlineAllocator::new(config(3000, None))
        .unwrap_err()
        .to_string();
    assert!(message.contains("power of two"), "{message}");
}

//! Unit tests of the expandable-segments model.

use super::*;
use alloc::vec;

const MIB: u64 = 1 << 20;

fn model() -> TorchExpandableAllocator {
    TorchExpandableAllocator::new(TorchConfig::default())
}

#[test]
fn pages_mapped_only_as_needed() {
    let mut m = model();
    let a = m.alloc(512, 0).unwrap(); // small pool: one 2 MiB page
    assert_eq!((m.stats().reserved, m.stats().reservations), (2 * MIB, 1));
    let b = m.alloc(MIB, 0).unwrap(); // fits in the page's remainder
    assert_eq!(b, a + 512);
    assert_eq!(m.stats().reservations, 1);
    // 1 MiB more does not fit in the 1 MiB − 512 left: one more page, merged with the tail.
    let c = m.alloc(MIB, 0).unwrap();
    assert_eq!(c, b + MIB, "grown in place");
    assert_eq!((m.stats().reserved, m.stats().reservations), (4 * MIB, 2));
    assert_eq!(m.stats().segments, 1);
    // Large pool: its own range, 20 MiB pages; 45 MiB maps 3 pages in one call.
    let d = m.alloc(45 * MIB, 0).unwrap();
    assert_eq!(m.stats().reserved, 4 * MIB + 60 * MIB);
    assert_eq!((m.stats().reservations, m.stats().segments), (3, 2));
    // The 15 MiB left is used by the next large request.
    let e = m.alloc(15 * MIB, 0).unwrap();
    assert_eq!(e, d + 45 * MIB);
    assert_eq!(m.stats().reservations, 3);
    // Another stream gets its own range.
    m.alloc(512, 1).unwrap();
    assert_eq!(m.stats().segments, 3);
    assert_eq!(m.name(), "torch-expandable");
}

#[test]
fn merge_on_free_and_grow_across_free_tail() {
    let mut m = model();
    let a = m.alloc(5 * MIB, 0).unwrap();
    let b = m.alloc(5 * MIB, 0).unwrap();
    let c = m.alloc(5 * MIB, 0).unwrap();
    m.free(a).unwrap();
    m.free(c).unwrap(); // merges with the free 5 MiB tail of the page
    m.free(b).unwrap(); // merges with both: the page is one free block
    assert_eq!(m.large.blocks.len(), 1);
    assert!(m.large.blocks.contains(&(0, 20 * MIB, a)));
    // 30 MiB: the free page plus one more page, mapped and merged in place.
    let d = m.alloc(30 * MIB, 0).unwrap();
    assert_eq!(d, a);
    assert_eq!((m.stats().reserved, m.stats().reservations), (40 * MIB, 2));
}

#[test]
fn best_fit_prefers_blocks_not_bordering_unmapped_space() {
    let mut m = model();
    let a = m.alloc(5 * MIB, 0).unwrap();
    let b = m.alloc(11 * MIB, 0).unwrap();
    m.free(a).unwrap(); // a 5 MiB hole, and a 4 MiB tail bordering unmapped space
    // Plain best fit would take the 4 MiB tail; its expandable size is larger than the
    // hole's, so PyTorch moves on to the hole.
    assert_eq!(m.alloc(3 * MIB, 0).unwrap(), a);
    assert_eq!(m.alloc(4 * MIB, 0).unwrap(), b + 11 * MIB);
}

#[test]
fn release_unmaps_whole_free_pages_only() {
    let mut m = model();
    let a = m.alloc(512, 0).unwrap();
    let b = m.alloc(MIB, 0).unwrap();
    let c = m.alloc(MIB, 0).unwrap(); // small pool: grows to 2 pages, 4 MiB mapped
    assert_eq!(m.stats().reserved, 4 * MIB);
    m.free(a).unwrap();
    // Free: [0, 512) and the tail [2 MiB + 512, 4 MiB): neither covers a whole page.
    m.empty_cache();
    assert_eq!(m.stats().reserved, 4 * MIB);
    m.free(b).unwrap();
    m.free(c).unwrap();
    m.empty_cache();
    assert_eq!((m.stats().reserved, m.stats().segments), (0, 0));
    // A free block covering a whole page in the middle is unmapped; its partial pages stay.
    let mut m = model();
    let x = m.alloc(15 * MIB, 0).unwrap(); // page 0
    let y = m.alloc(30 * MIB, 0).unwrap(); // pages 1 and 2: y is [15, 45) MiB
    let _z = m.alloc(25 * MIB, 0).unwrap(); // page 3: z is [45, 70) MiB
    assert_eq!(m.stats().reserved, 80 * MIB);
    m.free(y).unwrap();
    m.empty_cache();
    // Only page [20, 40) lies wholly inside y; [15, 20) and [40, 45) stay mapped, and so
    // does the free tail [70, 80), which is part of z's page.
    assert_eq!(m.stats().reserved, 60 * MIB);
    assert!(m.large.unmapped.contains(&(0, x + 20 * MIB)));
    // The hole is found again and remapped.
    let w = m.alloc(30 * MIB, 0).unwrap();
    assert_eq!(w, y);
    assert_eq!(m.stats().reserved, 80 * MIB);
}

#[test]
fn oom_after_unmapping_free_pages() {
    let cfg = TorchConfig {
        capacity: Some(60 * MIB),
        ..TorchConfig::default()
    };
    let mut m = TorchExpandableAllocator::new(cfg);
    let s = m.alloc(512, 0).unwrap(); // 2 MiB small page
    let a = m.alloc(35 * MIB, 0).unwrap(); // 40 MiB of large pages
    m.free(a).unwrap();
    m.free(s).unwrap();
    assert_eq!(m.stats().reserved, 42 * MIB);
    // 41 MiB needs 60 MiB of large pages: 40 + 20 = 60 (+ 2 small) > 60, so the free
    // pages are unmapped (the small range is destroyed) and the map retried.
    let b = m.alloc(41 * MIB, 0).unwrap();
    let st = m.stats();
    assert_eq!((st.reserved, st.segments), (60 * MIB, 1));
    assert!(
        b > a,
        "both ranges were destroyed; a new one is reserved above"
    );
    // Nothing more fits: a small request fails after the retry, reserved unchanged.
    assert_eq!(
        m.alloc(30 * MIB, 0),
        Err(AllocError::OutOfMemory {
            size: 30 * MIB,
            reserved: 60 * MIB
        })
    );
    m.free(b).unwrap();
    // 60 + 2 > 60: the retry unmaps the 60 free large MiB (destroying that range).
    let c = m.alloc(MIB, 0).unwrap();
    assert_eq!((m.stats().reserved, m.stats().segments), (2 * MIB, 1));
    m.free(c).unwrap();
}

#[test]
fn unknown_and_double_free() {
    let mut m = model();
    assert_eq!(m.free(0x10), Err(AllocError::UnknownAddress { addr: 0x10 }));
    let a = m.alloc(4096, 0).unwrap();
    assert_eq!(
        m.free(a + 4096),
        Err(AllocError::UnknownAddress { addr: a + 4096 })
    );
    m.free(a).unwrap();
    assert_eq!(m.free(a), Err(AllocError::UnknownAddress { addr: a }));
    assert_eq!(m.alloc(0, 0), Err(AllocError::ZeroSize));
}

/// Bytes of whole pages touched by allocated blocks, per segment.
fn pages_touched_by_live(m: &TorchExpandableAllocator) -> u64 {
    let mut total = 0;
    for (&base, seg) in &m.segments {
        let page = seg.pool.page();
        let mut pages = BTreeSet::new();
        for (&a, b) in m.blocks.range(base..base + seg.size) {
            if let State::Allocated(_) = b.state {
                let first = (a - base) / page;
                let last = (a - base + b.size - 1) / page;
                pages.extend(first..=last);
            }
        }
        total += pages.len() as u64 * page;
    }
    total
}

proptest::proptest! {
    /// Random alloc/free sequences: no overlap, every allocation lies in a mapped range,
    /// reserved equals live rounded bytes plus free mapped bytes, after `empty_cache()`
    /// reserved is exactly the pages live blocks touch, the same ops give the same
    /// addresses, and freeing everything returns every byte.
    #[test]
    fn random_ops_keep_invariants(
        ops in proptest::collection::vec((0u8..4, 1u64..(50 << 20), 0u32..2, 0usize..64), 1..120),
        max_split in proptest::option::of(20u64..64),
        divisions in 0u64..9,
        capacity in proptest::option::of(40u64..400),
    ) {
        let cfg = TorchConfig {
            max_split_size: max_split.map(|m| m << 20),
            roundup_power2_divisions: TorchConfig::uniform_divisions(divisions),
            capacity: capacity.map(|c| c << 20),
        };
        let run = || {
            let mut m = TorchExpandableAllocator::new(cfg.clone());
            let mut live: Vec<(Addr, u64)> = Vec::new();
            let mut trace = Vec::new();
            for (i, &(op, size, stream, pick)) in ops.iter().enumerate() {
                if op == 0 && !live.is_empty() {
                    let (a, _) = live.swap_remove(pick % live.len());
                    m.free(a).unwrap();
                } else {
                    let size = if op == 1 { size } else { size % 4096 + 1 };
                    match m.alloc(size, stream) {
                        Ok(a) => {
                            for &(b, bs) in &live {
                                assert!(a + size <= b || b + bs <= a, "overlap");
                            }
                            assert!(m.mapped_ranges().any(|(s, ss)| s <= a && a + size <= s + ss));
                            live.push((a, size));
                            trace.push(a);
                        }
                        Err(AllocError::OutOfMemory { reserved, .. }) => {
                            assert!(cfg.capacity.is_some(), "OOM without a capacity");
                            assert_eq!(reserved, m.stats().reserved);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                let free_mapped: u64 = m.blocks.values().filter(|b| b.state == State::Free).map(|b| b.size).sum();
                assert_eq!(m.stats().reserved, m.allocated_rounded() + free_mapped);
                if let Some(c) = cfg.capacity {
                    assert!(m.stats().reserved <= c);
                }
                if i % 7 == 6 {
                    m.empty_cache();
                    assert_eq!(m.stats().reserved, pages_touched_by_live(&m));
                }
            }
            for (a, _) in live {
                m.free(a).unwrap();
            }
            assert_eq!(m.stats().allocated, 0);
            m.empty_cache();
            assert_eq!(m.stats().reserved, 0);
            assert_eq!(m.mapped_ranges().count(), 0);
            // A range whose first map failed stays reserved (never mapped), as in PyTorch.
            if cfg.capacity.is_none() {
                assert_eq!(m.stats().segments, 0);
            }
            trace
        };
        proptest::prop_assert_eq!(run(), run());
    }
}

#[test]
fn mapped_ranges_join_adjacent_blocks() {
    let mut m = model();
    let a = m.alloc(512, 0).unwrap();
    m.alloc(512, 0).unwrap();
    assert_eq!(m.mapped_ranges().collect::<Vec<_>>(), vec![(a, 2 * MIB)]);
}

#[test]
fn trim_is_empty_cache_and_returns_the_bytes_released() {
    let mut m = model();
    let a = m.alloc(5 * MIB, 0).unwrap(); // one 20 MiB large page
    let b = m.alloc(30 * MIB, 0).unwrap(); // [5, 35) MiB: one more page, 40 MiB mapped
    assert_eq!(m.stats().reserved, 40 * MIB);
    m.free(b).unwrap();
    // Only the page wholly free ([20, 40) MiB) is unmapped: the first one holds `a`.
    assert_eq!(Allocator::trim(&mut m), 20 * MIB);
    assert_eq!(m.stats().reserved, 20 * MIB);
    assert_eq!(Allocator::trim(&mut m), 0);
    m.free(a).unwrap();
    assert_eq!(Allocator::trim(&mut m), 20 * MIB);
    assert_eq!(m.stats().reserved, 0);
}

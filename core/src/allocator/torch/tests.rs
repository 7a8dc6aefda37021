//! Unit tests of the PyTorch caching allocator model.

use super::*;
use alloc::vec::Vec;

const MIB: u64 = 1 << 20;

fn model() -> TorchAllocator {
    TorchAllocator::new(TorchConfig::default())
}

#[test]
fn round_size_table() {
    let c = TorchConfig::default();
    for (req, want) in [
        (1, 512),
        (511, 512),
        (512, 512),
        (513, 1024),
        (MIB + 1, MIB + 512),
        (3 * MIB + 100, 3 * MIB + 512),
    ] {
        assert_eq!(c.round_size(req), Some(want), "round_size({req})");
    }
    assert_eq!(c.round_size(u64::MAX), None);
}

#[test]
fn round_size_power2_divisions() {
    let c = TorchConfig {
        roundup_power2_divisions: TorchConfig::uniform_divisions(4),
        ..TorchConfig::default()
    };
    // 1 MiB..2 MiB in 4 steps of 256 KiB.
    assert_eq!(c.round_size(MIB + 1), Some(MIB + 256 * 1024));
    assert_eq!(c.round_size(MIB + 256 * 1024), Some(MIB + 256 * 1024));
    // Powers of two are unchanged.
    assert_eq!(c.round_size(8 * MIB), Some(8 * MIB));
    // 5 MiB + 1 lies in 4..8 MiB, steps of 1 MiB.
    assert_eq!(c.round_size(5 * MIB + 1), Some(6 * MIB));
    // Below 512·d (2048) plain rounding applies.
    assert_eq!(c.round_size(1500), Some(1536));
    // Above 512·d in bucket 0: 3000 lies in 2048..4096, steps of 512.
    assert_eq!(c.round_size(3000), Some(3072));
    // Per-bucket table: only the 2..4 MiB bucket divides (in 2 steps).
    let mut t = [0; ROUNDUP_BUCKETS];
    t[1] = 2;
    let c = TorchConfig {
        roundup_power2_divisions: t,
        ..TorchConfig::default()
    };
    assert_eq!(c.round_size(2 * MIB + 1), Some(3 * MIB));
    assert_eq!(c.round_size(MIB + 1), Some(MIB + 512));
    assert_eq!(c.round_size(4 * MIB + 1), Some(4 * MIB + 512));
    // Non-power-of-two division counts use the power of two below (3 → 2 steps).
    t[1] = 3;
    let c = TorchConfig {
        roundup_power2_divisions: t,
        ..TorchConfig::default()
    };
    assert_eq!(c.round_size(2 * MIB + 1), Some(3 * MIB));
}

#[test]
fn buckets_and_allocation_size() {
    assert_eq!(roundup_bucket(1), 0);
    assert_eq!(roundup_bucket(MIB - 1), 0);
    assert_eq!(roundup_bucket(2 * MIB), 1);
    assert_eq!(roundup_bucket(u64::MAX), 15);
    assert_eq!(allocation_size(512), Some(2 * MIB));
    assert_eq!(allocation_size(MIB), Some(2 * MIB));
    assert_eq!(allocation_size(MIB + 512), Some(20 * MIB));
    assert_eq!(allocation_size(10 * MIB - 512), Some(20 * MIB));
    assert_eq!(allocation_size(10 * MIB), Some(10 * MIB));
    assert_eq!(allocation_size(10 * MIB + 512), Some(12 * MIB));
}

#[test]
fn pools_and_segments() {
    let mut m = model();
    let a = m.alloc(MIB, 0).unwrap(); // small: 2 MiB segment
    let b = m.alloc(MIB + 1, 0).unwrap(); // large: 20 MiB segment
    let c = m.alloc(21 * MIB + 1, 0).unwrap(); // large: 22 MiB segment (b's is too small)
    let segs: Vec<_> = m.segments().collect();
    assert_eq!(
        segs,
        [(a, 2 * MIB), (b, 20 * MIB), (c, 22 * MIB)],
        "segment sizes"
    );
    assert_eq!(a, SIMULATED_BASE);
    assert_eq!(b, SIMULATED_BASE + 2 * MIB);
    let s = m.stats();
    assert_eq!(s.reserved, 44 * MIB);
    assert_eq!(s.reservations, 3);
    assert_eq!(s.allocated, 23 * MIB + 2);
    // c's 1 MiB − 512 remainder is not > 1 MiB: not split, the block stays 22 MiB.
    assert_eq!(m.allocated_rounded(), MIB + (MIB + 512) + 22 * MIB);
    // A large request fits in the remainder of b's segment.
    assert_eq!(m.alloc(10 * MIB, 0).unwrap(), b + MIB + 512);
    // The small request stays in the small pool even though the large segment has room.
    let d = m.alloc(512, 0).unwrap();
    assert_eq!(d, a + MIB);
}

#[test]
fn split_thresholds() {
    // Small pool: splits when remaining >= 512.
    let mut m = model();
    let a = m.alloc(MIB, 0).unwrap();
    let b = m.alloc(MIB - 512, 0).unwrap(); // remaining 512 → split
    let c = m.alloc(512, 0).unwrap();
    assert_eq!((b, c), (a + MIB, a + 2 * MIB - 512));
    assert_eq!(m.stats().segments, 1);

    // Large pool: 20 MiB segment, 19 MiB request leaves exactly 1 MiB → no split.
    let mut m = model();
    let x = m.alloc(19 * MIB, 0).unwrap();
    assert_eq!(m.allocated_rounded(), 20 * MIB);
    m.free(x).unwrap();
    // 19 MiB − 512 leaves 1 MiB + 512 → split.
    let y = m.alloc(19 * MIB - 512, 0).unwrap();
    assert_eq!(y, x);
    assert_eq!(m.allocated_rounded(), 19 * MIB - 512);
    let z = m.alloc(MIB + 512, 0).unwrap();
    assert_eq!(z, x + 19 * MIB - 512, "remainder is the high piece");
    assert_eq!(m.stats().segments, 1);
}

#[test]
fn max_split_size_rules() {
    let cfg = TorchConfig {
        max_split_size: Some(40 * MIB),
        ..TorchConfig::default()
    };
    let mut m = TorchAllocator::new(cfg);
    let big = m.alloc(60 * MIB, 0).unwrap();
    m.free(big).unwrap();
    // A small-ish large request may not take the oversize cached block.
    let a = m.alloc(2 * MIB, 0).unwrap();
    assert_ne!(a, big);
    assert_eq!(m.stats().segments, 2);
    // An oversize request takes it only if it wastes < 20 MiB.
    let b = m.alloc(40 * MIB, 0).unwrap();
    assert_eq!(m.stats().segments, 3, "60 ≥ 40 + 20: not reused");
    assert_ne!(b, big);
    let c = m.alloc(50 * MIB, 0).unwrap();
    assert_eq!(c, big);
    assert_eq!(
        m.allocated_rounded(),
        2 * MIB + 40 * MIB + 60 * MIB,
        "oversize: no split"
    );
}

#[test]
fn merge_on_free_within_segment_only() {
    let mut m = model();
    let a = m.alloc(512, 0).unwrap();
    let b = m.alloc(512, 0).unwrap();
    let c = m.alloc(512, 0).unwrap();
    m.free(a).unwrap();
    m.free(c).unwrap();
    m.free(b).unwrap(); // merges with both neighbours: the whole segment is free again
    assert_eq!(m.small.len(), 1);
    assert!(m.small.contains(&(0, 2 * MIB, a)));
    // Two adjacent segments never merge.
    let mut m = model().with_segment_addresses([0x1000_0000, 0x1000_0000 + 2 * MIB]);
    let x = m.alloc(MIB, 0).unwrap();
    let y = m.alloc(MIB, 0).unwrap();
    let z = m.alloc(MIB, 0).unwrap(); // second segment, adjacent to the first
    assert_eq!(
        (x, y, z),
        (0x1000_0000, 0x1000_0000 + MIB, 0x1000_0000 + 2 * MIB)
    );
    m.free(y).unwrap();
    m.free(z).unwrap();
    assert_eq!(m.small.len(), 2, "free blocks of two segments stay apart");
}

#[test]
fn best_fit_by_stream_size_addr() {
    let mut m = model();
    let v: Vec<_> = (0..6).map(|_| m.alloc(100 * 1024, 0).unwrap()).collect();
    // Two equal 100 KiB holes, plus the free tail of the segment.
    m.free(v[3]).unwrap();
    m.free(v[1]).unwrap();
    // Equal sizes: the lowest address wins.
    assert_eq!(m.alloc(90 * 1024, 0).unwrap(), v[1]);
    // Other stream never takes stream 0's blocks: it gets a new segment.
    let o = m.alloc(1024, 7).unwrap();
    assert_eq!(m.stats().segments, 2);
    assert!(o >= SIMULATED_BASE + 2 * MIB);
    // Smallest fitting block: the 100 KiB hole at v[3] rather than the large tail.
    assert_eq!(m.alloc(100 * 1024, 0).unwrap(), v[3]);
    // On stream 7 the remainder of its own segment is used.
    assert_eq!(m.alloc(1024, 7).unwrap(), o + 1024);
}

#[test]
fn oom_release_and_retry_under_capacity() {
    let cfg = TorchConfig {
        capacity: Some(24 * MIB),
        ..TorchConfig::default()
    };
    let mut m = TorchAllocator::new(cfg);
    let s = m.alloc(512, 0).unwrap(); // 2 MiB small segment
    let a = m.alloc(5 * MIB, 0).unwrap(); // 20 MiB segment, split 5 + 15
    m.free(a).unwrap(); // merged back: unsplit again
    m.free(s).unwrap();
    assert_eq!(m.stats().reserved, 22 * MIB);
    // Needs a 22 MiB segment: 22 + 22 > 24, so both cached unsplit segments go, then it fits.
    let b = m.alloc(21 * MIB, 0).unwrap();
    let st = m.stats();
    assert_eq!(
        (st.reserved, st.segments, st.reservations),
        (22 * MIB, 1, 3)
    );
    assert_eq!(st.peak_reserved, 22 * MIB);
    // Split segments are not released: c keeps its small segment split.
    let c = m.alloc(512, 0).unwrap(); // small segment: 24 MiB reserved
    assert_eq!(m.stats().reserved, 24 * MIB);
    m.free(b).unwrap();
    let err = m.alloc(30 * MIB, 0).unwrap_err();
    assert_eq!(
        err,
        AllocError::OutOfMemory {
            size: 30 * MIB,
            reserved: 2 * MIB
        }
    );
    // The failed attempt released the unsplit 22 MiB segment but kept c's small one.
    m.free(c).unwrap();
    assert_eq!(m.stats().segments, 1);
}

#[test]
fn release_available_oversize_blocks() {
    let cfg = TorchConfig {
        max_split_size: Some(40 * MIB),
        capacity: Some(130 * MIB),
        ..TorchConfig::default()
    };
    let mut m = TorchAllocator::new(cfg);
    let small = m.alloc(512, 0).unwrap();
    let a = m.alloc(50 * MIB, 0).unwrap();
    let b = m.alloc(60 * MIB, 0).unwrap();
    m.free(a).unwrap();
    m.free(b).unwrap();
    // 100 MiB: no single cached block is large enough; the largest oversize blocks (60,
    // then 50) are released until they sum to ≥ 100 MiB. The small segment stays.
    m.alloc(100 * MIB, 0).unwrap();
    let s = m.stats();
    assert_eq!((s.segments, s.reserved), (2, 102 * MIB));
    m.free(small).unwrap();
}

#[test]
fn unknown_and_double_free() {
    let mut m = model();
    assert_eq!(m.free(0x10), Err(AllocError::UnknownAddress { addr: 0x10 }));
    let a = m.alloc(4096, 0).unwrap();
    // A free block's address is not a live allocation.
    assert_eq!(
        m.free(a + 4096),
        Err(AllocError::UnknownAddress { addr: a + 4096 })
    );
    m.free(a).unwrap();
    assert_eq!(m.free(a), Err(AllocError::UnknownAddress { addr: a }));
    assert_eq!(m.alloc(0, 0), Err(AllocError::ZeroSize));
    assert_eq!(m.name(), "torch");
}

#[test]
fn injected_addresses_then_simulated() {
    let mut m = model().with_segment_addresses([0x4000_0000]);
    assert_eq!(m.alloc(MIB + 1, 0).unwrap(), 0x4000_0000);
    // Exhausted: back to the simulated space, above the highest end so far.
    assert_eq!(m.alloc(MIB + 1, 1).unwrap(), SIMULATED_BASE);
    // An overlapping injected address is skipped.
    let mut m = model().with_segment_addresses([0x4000_0000, 0x4000_0000 + MIB]);
    m.alloc(MIB, 0).unwrap();
    assert_eq!(m.alloc(MIB, 1).unwrap(), SIMULATED_BASE);
}

proptest::proptest! {
    /// Random alloc/free sequences: live allocations never overlap and lie inside
    /// segments, the invariants hold after each step (checked in debug builds), the same
    /// ops give the same addresses, and freeing everything then `empty_cache()` returns
    /// every byte.
    #[test]
    fn random_ops_keep_invariants(
        ops in proptest::collection::vec((0u8..4, 1u64..(30 << 20), 0u32..2, 0usize..64), 1..120),
        max_split in proptest::option::of(20u64..64),
        divisions in 0u64..9,
    ) {
        let cfg = TorchConfig {
            max_split_size: max_split.map(|m| m << 20),
            roundup_power2_divisions: TorchConfig::uniform_divisions(divisions),
            capacity: Some(256 << 20),
        };
        let run = || {
            let mut m = TorchAllocator::new(cfg.clone());
            let mut live: Vec<(Addr, u64)> = Vec::new();
            let mut trace = Vec::new();
            for &(op, size, stream, pick) in &ops {
                if op == 0 && !live.is_empty() {
                    let (a, _) = live.swap_remove(pick % live.len());
                    m.free(a).unwrap();
                } else {
                    // Mostly small sizes, some large ones.
                    let size = if op == 1 { size } else { size % 4096 + 1 };
                    match m.alloc(size, stream) {
                        Ok(a) => {
                            for &(b, bs) in &live {
                                assert!(a + size <= b || b + bs <= a, "overlap");
                            }
                            assert!(m.segments().any(|(s, ss)| s <= a && a + size <= s + ss));
                            live.push((a, size));
                            trace.push(a);
                        }
                        Err(AllocError::OutOfMemory { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            for (a, _) in live {
                m.free(a).unwrap();
            }
            assert_eq!(m.stats().allocated, 0);
            m.empty_cache();
            assert_eq!((m.stats().reserved, m.stats().segments), (0, 0));
            trace
        };
        proptest::prop_assert_eq!(run(), run());
    }
}

#[test]
fn trim_is_empty_cache_and_returns_the_bytes_released() {
    let mut m = model();
    let a = m.alloc(MIB, 0).unwrap(); // a 2 MiB small segment
    let b = m.alloc(15 * MIB, 0).unwrap(); // a 16 MiB large segment
    m.free(b).unwrap();
    assert_eq!(Allocator::trim(&mut m), 16 * MIB);
    assert_eq!(m.stats().reserved, 2 * MIB);
    assert_eq!(Allocator::trim(&mut m), 0, "the small segment is in use");
    m.free(a).unwrap();
    assert_eq!(Allocator::trim(&mut m), 2 * MIB);
    assert_eq!(m.stats().reserved, 0);
}

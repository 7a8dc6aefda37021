//! Unit tests of the guided allocator's internals: `check_invariants` catches each kind of
//! broken state, and the gap searches place as documented.

use alloc::vec;

use super::gaps::{best_gap, high_gap, merged};
use super::state::{GuidedAllocator, GuidedConfig, Kind, List, Live};
use crate::allocator::interface::Allocator;
use crate::plan::{Plan, Slot};

fn slot(size: u64, offset: u64, start: u32, end: u32) -> Slot {
    Slot {
        size,
        stream: 0,
        offset,
        start,
        end,
    }
}

/// One persistent 1 KiB slot, then an iteration of two slots alive together.
fn plan() -> Plan {
    Plan {
        arena_size: 4096,
        prologue: vec![slot(1024, 0, 0, u32::MAX)],
        iteration: vec![slot(1024, 1024, 0, 2), slot(2048, 2048, 1, 3)],
    }
}

/// An allocator that served the prologue and the first slot of a lap (both hits), then an
/// unforeseen request (an in-arena miss).
fn served() -> GuidedAllocator {
    let mut a = GuidedAllocator::new(plan(), GuidedConfig::default()).unwrap();
    a.alloc(1000, 0).unwrap();
    a.alloc(1024, 0).unwrap();
    a.alloc(100_000, 7).unwrap();
    let c = a.counters();
    assert_eq!((c.hits, c.misses), (2, 1), "{c:?}");
    a.check_invariants();
    a
}

#[test]
fn a_served_allocator_keeps_its_invariants() {
    let mut a = served();
    let x = a.alloc(2048, 0).unwrap();
    a.free(x).unwrap();
    assert!(a.free(x).is_err());
    a.check_invariants();
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "check_invariants is a no-op in release"
)]
#[should_panic(expected = "allocated != sum of live requests")]
fn catches_a_wrong_allocated_count() {
    let mut a = served();
    a.allocated += 1;
    a.check_invariants();
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "check_invariants is a no-op in release"
)]
#[should_panic(expected = "live allocations overlap")]
fn catches_overlapping_live_allocations() {
    let mut a = served();
    // A second in-arena block on top of the persistent slot's bytes.
    let (off, end) = (512, 1024);
    a.outside.insert(off, end);
    a.index_valid = false;
    a.live.insert(
        a.config.base + off,
        Live {
            kind: Kind::InArena,
            requested: 512,
            off,
            end,
        },
    );
    a.allocated += 512;
    a.check_invariants();
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "check_invariants is a no-op in release"
)]
#[should_panic(expected = "occupied count")]
fn catches_a_lane_whose_occupied_list_is_out_of_step() {
    let mut a = served();
    let k = a.iteration.occupied[0];
    a.iteration.occupied.clear();
    a.iteration.occupied_at[k] = usize::MAX;
    a.index_valid = false;
    a.check_invariants();
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "check_invariants is a no-op in release"
)]
#[should_panic(expected = "is not a live allocation")]
fn catches_a_stale_unprotected_range() {
    let mut a = served();
    a.outside.insert(3584, 4096);
    a.index_valid = false;
    a.check_invariants();
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "check_invariants is a no-op in release"
)]
#[should_panic(expected = "growths > misses")]
fn catches_inconsistent_counters() {
    let mut a = served();
    a.counters.growths = a.counters.misses + 1;
    a.arena_maps = 1 + a.counters.growths;
    a.check_invariants();
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "check_invariants is a no-op in release"
)]
#[should_panic(expected = "lap slot used in the prologue")]
fn catches_a_lap_slot_used_during_the_prologue() {
    let mut a = served();
    a.list = List::Prologue;
    a.cursor = 0;
    a.index_valid = false;
    a.check_invariants();
}

#[test]
fn best_gap_takes_the_smallest_gap_then_the_lowest() {
    let busy = [(0, 1024), (2048, 2560), (4096, 8192), (9216, 9728)];
    // Gaps: [1024, 2048) 1024 B, [2560, 4096) 1536 B, [8192, 9216) 1024 B, [9728, 12288).
    assert_eq!(best_gap(busy, 1024, 12288), (Some(1024), 9728));
    assert_eq!(best_gap(busy, 1536, 12288), (Some(2560), 9728));
    assert_eq!(best_gap(busy, 2048, 12288), (Some(9728), 9728));
    assert_eq!(best_gap(busy, 4096, 12288), (None, 9728));
    // Repeated ranges change nothing.
    let twice = [(0, 1024), (0, 1024), (2048, 2560)];
    assert_eq!(best_gap(twice, 1024, 2560), (Some(1024), 2560));
}

#[test]
fn high_gap_takes_the_top_of_the_highest_gap_that_holds_it() {
    let busy = [(0, 1024), (2048, 2560), (4096, 8192)];
    assert_eq!(high_gap(busy, 512, 8704), Some(8192));
    assert_eq!(high_gap(busy, 1024, 8704), Some(3072));
    assert_eq!(high_gap(busy, 1536, 8704), Some(2560));
    assert_eq!(high_gap(busy, 2048, 8704), None);
}

#[test]
fn merged_interleaves_two_sorted_sequences() {
    let a = [(0, 1), (4, 5), (8, 9)];
    let b = [(2, 3), (4, 4), (10, 11)];
    let m: alloc::vec::Vec<_> = merged(a.into_iter(), &b).collect();
    assert_eq!(m, [(0, 1), (2, 3), (4, 4), (4, 5), (8, 9), (10, 11)]);
}

//! The plan-guided allocator: exact repeats are all hits, unforeseen requests go to the
//! fallback, and no interleaving of requests ever overlaps live memory.

use std::collections::BTreeMap;

use memplan_core::allocator::{
    Addr, AllocStats, Allocator, GuidedAllocator, GuidedConfig, GuidedCounters,
};
use memplan_core::plan::{Plan, PlanOptions};
use memplan_core::trace::{Marker, TraceBuilder};
use proptest::prelude::*;

const BASE: Addr = 0x1000_0000_0000;
const SIZES: [u64; 6] = [4096, 1000, 1 << 20, 512, 70_000, 3];

/// One persistent allocation, then `k` iterations of SIZES (with overlapping lifetimes).
fn plan_and_trace(k: u64) -> (Plan, memplan_core::trace::Trace) {
    let mut b = TraceBuilder::new();
    b.alloc(1, 12_345, 0).unwrap();
    for it in 0..k {
        b.marker(Marker::IterationStart);
        let id = |i: usize| 100 + it * 100 + i as u64;
        for (i, &s) in SIZES.iter().enumerate() {
            b.alloc(id(i), s, (i % 2) as u32).unwrap();
            if i >= 2 {
                b.free(id(i - 2)).unwrap();
            }
        }
        b.free(id(SIZES.len() - 2)).unwrap();
        b.free(id(SIZES.len() - 1)).unwrap();
    }
    let t = b.finish();
    let options = PlanOptions {
        profile_iterations: 1,
        profile_events: None,
        max_nodes: 1000,
    };
    let built = Plan::from_trace(&t, &options).unwrap();
    assert_eq!(built.profiled_iterations, 1);
    assert_eq!(built.analysis.iterations(), k as usize);
    let plan = built.plan;
    plan.validate().unwrap();
    (plan, t)
}

fn allocator(plan: Plan) -> GuidedAllocator {
    GuidedAllocator::new(
        plan,
        GuidedConfig {
            base: BASE,
            ..GuidedConfig::default()
        },
    )
    .unwrap()
}

/// Serves one iteration of SIZES, each size scaled by `scale`.
fn serve_iteration(a: &mut GuidedAllocator, scale: u64) {
    serve_iteration_scaled(a, scale, 1);
}

/// Serves one iteration of SIZES, each size scaled by `num / den`.
fn serve_iteration_scaled(a: &mut GuidedAllocator, num: u64, den: u64) {
    let mut addrs = Vec::new();
    for (i, &s) in SIZES.iter().enumerate() {
        addrs.push(a.alloc(s * num / den, (i % 2) as u32).unwrap());
        if i >= 2 {
            a.free(addrs[i - 2]).unwrap();
        }
    }
    a.free(addrs[SIZES.len() - 2]).unwrap();
    a.free(addrs[SIZES.len() - 1]).unwrap();
}

#[test]
fn repeated_iterations_all_hit() {
    let (plan, _) = plan_and_trace(3);
    assert_eq!(plan.prologue.len(), 1 + SIZES.len());
    assert_eq!(
        plan.prologue.iter().filter(|s| s.is_persistent()).count(),
        1
    );
    assert_eq!(plan.iteration.len(), SIZES.len());
    let arena = plan.arena_size;
    let mut a = allocator(plan);
    assert_eq!(a.name(), "guided");
    assert_eq!(a.guided_counters(), Some(a.counters()));
    let p = a.alloc(12_345, 0).unwrap();
    assert!(p >= BASE && p < BASE + arena);
    for _ in 0..3 {
        serve_iteration(&mut a, 1);
    }
    assert_eq!(a.misses(), 0);
    assert_eq!(a.hits(), 1 + 3 * SIZES.len() as u64);
    let s = a.stats();
    let pages = arena.div_ceil(2 << 20) * (2 << 20);
    assert_eq!((s.reserved, s.peak_reserved), (pages, pages));
    assert_eq!(s.allocated, 12_345);
}

#[test]
fn larger_than_slot_misses_and_grows_the_arena() {
    let (plan, _) = plan_and_trace(2);
    let arena = plan.arena_size;
    let mut a = allocator(plan);
    a.alloc(12_345, 0).unwrap();
    serve_iteration(&mut a, 1);
    let x = a.alloc(1 << 30, 0).unwrap();
    assert_eq!(a.misses(), 1);
    assert_eq!(a.counters().growths, 1);
    assert!(x >= BASE && x + (1 << 30) <= BASE + a.plan().arena_size);
    let s = a.stats();
    assert_eq!(s.allocated, 12_345 + (1 << 30));
    assert!(s.reserved >= arena + (1 << 30) - (2 << 20));
    assert_eq!(s.reservations, 2);
    a.free(x).unwrap();
    // The next expected slot is still served from the plan.
    let y = a.alloc(SIZES[0], 0).unwrap();
    assert!(y < BASE + arena);
    assert_eq!(a.hits(), 2 + SIZES.len() as u64);
}

#[test]
fn grown_iterations_are_replanned_within_the_grown_arena() {
    let (plan, _) = plan_and_trace(2);
    let mut a = allocator(plan);
    a.alloc(12_345, 0).unwrap();
    serve_iteration(&mut a, 1);
    assert_eq!(a.misses(), 0);
    // Every request is now 3x larger: the misses grow the arena during the first such lap;
    // re-planned into it, the next laps are all hits.
    for _ in 0..4 {
        serve_iteration(&mut a, 3);
    }
    let before: GuidedCounters = a.counters();
    assert!(before.misses > 0 && before.growths > 0, "{before:?}");
    assert!(before.replans >= 1, "{before:?}");
    let reserved = a.stats().reserved;
    serve_iteration(&mut a, 3);
    let after = a.counters();
    assert_eq!(after.misses, before.misses, "{after:?}");
    assert_eq!(a.stats().reserved, reserved);
    a.plan().validate().unwrap();
}

#[test]
fn zero_profile_iterations_is_an_error() {
    let (_, t) = plan_and_trace(1);
    let options = PlanOptions {
        profile_iterations: 0,
        profile_events: None,
        max_nodes: 10,
    };
    assert!(Plan::from_trace(&t, &options).is_err());
}

#[derive(Debug, Clone)]
enum Op {
    /// Allocate the planned size of this position (mod the iteration), maybe resized.
    Planned(usize, u64),
    /// Allocate an arbitrary size on an arbitrary stream.
    Extra(u64, u32),
    /// Free the `n`-th live allocation (mod the count).
    Free(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..12, prop_oneof![3 => Just(0u64), 1 => 1u64..5000, 1 => 5000u64..3_000_000]).prop_map(|(i, d)| Op::Planned(i, d)),
        1 => (0u64..200_000, 0u32..3).prop_map(|(s, st)| Op::Extra(s, st)),
        4 => any::<usize>().prop_map(Op::Free),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn never_overlaps_live_memory(ops in prop::collection::vec(op(), 0..300)) {
        let (plan, _) = plan_and_trace(2);
        let mut a = allocator(plan);
        // start -> (end, requested); the persistent allocation stays live throughout.
        let mut shadow: BTreeMap<Addr, (Addr, u64)> = BTreeMap::new();
        let p = a.alloc(12_345, 0).unwrap();
        shadow.insert(p, (p + 12_345, 12_345));
        let mut order: Vec<Addr> = Vec::new();
        let (mut peak, mut cursor, mut allocs) = (12_345u64, 0usize, 1u64);
        for o in ops {
            match o {
                Op::Free(n) => {
                    if order.is_empty() { continue; }
                    let addr = order.remove(n % order.len());
                    shadow.remove(&addr).unwrap();
                    a.free(addr).unwrap();
                }
                Op::Planned(..) | Op::Extra(..) => {
                    let (size, stream) = match o {
                        Op::Planned(skip, d) => {
                            // Mostly the next planned request, sometimes a skipped one.
                            let i = if skip < 9 { cursor } else { cursor + skip - 8 };
                            cursor = (i + 1) % SIZES.len();
                            let i = i % SIZES.len();
                            (SIZES[i] + d, (i % 2) as u32)
                        }
                        Op::Extra(s, st) => (s, st),
                        Op::Free(_) => unreachable!(),
                    };
                    let addr = a.alloc(size, stream).unwrap();
                    allocs += 1;
                    let end = addr + size.max(1);
                    if let Some((_, &(e, _))) = shadow.range(..=addr).next_back() {
                        prop_assert!(e <= addr, "overlap below {addr:#x}");
                    }
                    if let Some((&s, _)) = shadow.range(addr..).next() {
                        prop_assert!(s >= end, "overlap above {addr:#x}");
                    }
                    shadow.insert(addr, (end, size));
                    order.push(addr);
                }
            }
            let allocated: u64 = shadow.values().map(|&(_, r)| r).sum();
            peak = peak.max(allocated);
            let s: AllocStats = a.stats();
            prop_assert_eq!(s.allocated, allocated);
            prop_assert_eq!(s.peak_allocated, peak);
            prop_assert!(s.reserved <= s.peak_reserved);
        }
        prop_assert_eq!(a.hits() + a.misses(), allocs);
        prop_assert!(a.free(1).is_err());
    }
}

#[test]
fn drifting_laps_are_guided_and_matching_laps_return_to_hits() {
    let (plan, _) = plan_and_trace(2);
    let mut a = allocator(plan);
    a.alloc(12_345, 0).unwrap();
    serve_iteration(&mut a, 1); // the prologue's iteration
    serve_iteration(&mut a, 1); // an exact lap
    let exact = a.counters();
    assert_eq!((exact.misses, exact.guided_laps), (0, 0), "{exact:?}");
    // A lap whose sizes all differ from the plan (a third: they fit, leaving most of each
    // slot empty)...
    serve_iteration_scaled(&mut a, 1, 3);
    // ...makes the next lap guided: no hits, even for exact sizes.
    let hits = a.hits();
    serve_iteration(&mut a, 1);
    let c = a.counters();
    assert!(c.guided_laps >= 1, "{c:?}");
    assert_eq!(a.hits(), hits, "{c:?}");
    // That lap matched the plan exactly, so the one after is served from it again.
    serve_iteration(&mut a, 1);
    assert_eq!(a.hits(), hits + SIZES.len() as u64, "{:?}", a.counters());
}

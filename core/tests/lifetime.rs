//! Lifetime analysis on synthetic traces: periods are found after a warm-up prefix, markers
//! win over detection, and classes follow the documented rules.

use memplan_core::lifetime::{Boundaries, Class, analyze, detect_period};
use memplan_core::trace::{Marker, Trace, TraceBuilder};
use proptest::prelude::*;

/// One iteration: allocate `sizes` (ids `base..`), carry the first allocation over to the
/// next iteration, free the rest at the end of the iteration.
fn iteration(b: &mut TraceBuilder, base: u64, sizes: &[u64], carried: &mut Option<u64>) {
    for (i, &s) in sizes.iter().enumerate() {
        b.alloc(base + i as u64, s, (i % 2) as u32).unwrap();
    }
    if let Some(id) = carried.take() {
        b.free(id).unwrap();
    }
    for i in 1..sizes.len() {
        b.free(base + i as u64).unwrap();
    }
    *carried = Some(base);
}

/// A warm-up of `warm` distinct allocations (one of them never freed), then `k` iterations.
fn trace(warm: usize, k: usize, sizes: &[u64], markers: bool) -> Trace {
    let mut b = TraceBuilder::new();
    for w in 0..warm as u64 {
        b.alloc(1_000_000 + w, 7_777 + w, 3).unwrap();
    }
    for w in 1..warm as u64 {
        b.free(1_000_000 + w).unwrap();
    }
    let mut carried = None;
    for it in 0..k as u64 {
        if markers {
            b.marker(Marker::IterationStart);
        }
        iteration(&mut b, it * 1000, sizes, &mut carried);
    }
    b.finish()
}

const SIZES: [u64; 5] = [4096, 512, 4096, 256, 1 << 20];

#[test]
fn period_found_after_warm_up() {
    let a = analyze(&trace(3, 4, &SIZES, false));
    let Boundaries::Detected(p) = a.boundaries else {
        panic!("no period: {:?}", a.boundaries)
    };
    assert_eq!((p.period, p.offset, p.iterations), (5, 3, 4));
    assert_eq!(p.match_fraction, 1.0);
    assert_eq!(a.iterations(), 4);
    // Warm-up: the first is never freed, the others lie outside every iteration.
    assert_eq!(a.lifetimes[0].class, Class::Persistent);
    assert!(
        a.lifetimes[1..3]
            .iter()
            .all(|l| l.class == Class::Dynamic && l.iteration.is_none())
    );
    for (i, l) in a.lifetimes[3..].iter().enumerate() {
        assert_eq!(l.alloc_index, i + 3);
        assert_eq!(l.iteration, Some(i / 5));
        let want = match (i % 5, i / 5) {
            (0, 3) => Class::Persistent, // carried out of the last iteration, never freed
            (0, _) => Class::CrossIteration,
            _ => Class::PerIteration,
        };
        assert_eq!(l.class, want, "allocation {}", i + 3);
    }
}

#[test]
fn markers_are_respected() {
    // With markers the boundaries are the markers, even where detection would differ: two
    // iterations of the same four sizes twice over would be detected as period 4.
    let doubled: Vec<u64> = [SIZES[..4].to_vec(), SIZES[..4].to_vec()].concat();
    let a = analyze(&trace(0, 3, &doubled, true));
    assert_eq!(a.boundaries, Boundaries::Markers);
    assert_eq!(a.iterations(), 3);
    assert!(
        a.lifetimes
            .iter()
            .all(|l| l.iteration == Some(l.alloc_index / 8))
    );
    assert_eq!(a.count(Class::CrossIteration), 2);
    assert_eq!(a.count(Class::Persistent), 1);
    assert_eq!(a.count(Class::PerIteration), 21);
    assert_eq!(a.count(Class::Dynamic), 0);
    let d = analyze(&trace(0, 3, &doubled, false));
    assert!(matches!(d.boundaries, Boundaries::Detected(p) if p.period == 4));
}

#[test]
fn perturbed_allocation_is_dynamic() {
    let mut b = TraceBuilder::new();
    let mut carried = None;
    for it in 0..5u64 {
        let mut sizes = SIZES;
        if it == 2 {
            sizes[3] = 12_345;
        }
        iteration(&mut b, it * 1000, &sizes, &mut carried);
    }
    let a = analyze(&b.finish());
    let Boundaries::Detected(p) = a.boundaries else {
        panic!("no period")
    };
    assert_eq!((p.period, p.offset, p.iterations), (5, 0, 5));
    assert!(p.match_fraction < 1.0 && p.match_fraction >= 0.9, "{p:?}");
    let dynamic: Vec<usize> = a
        .lifetimes
        .iter()
        .filter(|l| l.class == Class::Dynamic)
        .map(|l| l.alloc_index)
        .collect();
    assert_eq!(dynamic, [13]);
}

#[test]
fn never_freed_is_persistent_and_no_period_is_one_iteration() {
    let mut b = TraceBuilder::new();
    b.alloc(1, 100, 0).unwrap();
    b.alloc(2, 200, 0).unwrap();
    b.alloc(3, 300, 1).unwrap();
    b.free(2).unwrap();
    let a = analyze(&b.finish());
    assert_eq!(a.boundaries, Boundaries::None);
    assert_eq!(a.iteration_starts, [0]);
    let classes: Vec<Class> = a.lifetimes.iter().map(|l| l.class).collect();
    assert_eq!(
        classes,
        [Class::Persistent, Class::PerIteration, Class::Persistent]
    );
    assert_eq!(a.lifetimes[1].free_event, Some(3));
    assert_eq!(a.lifetimes[2].free_event, None);
}

#[test]
fn empty_and_tiny_sequences() {
    assert_eq!(detect_period::<u32>(&[]), None);
    assert_eq!(detect_period(&[1]), None);
    assert_eq!(detect_period(&[1, 2, 3]), None);
    assert_eq!(analyze(&Trace::default()).lifetimes, []);
}

#[test]
fn long_runs_do_not_fake_a_short_period() {
    // Period 1 matches 98 % of positions here, but 100 repeats exactly.
    let iter: Vec<u32> = core::iter::repeat_n(0, 99).chain([1]).collect();
    let keys: Vec<u32> = iter.iter().cycle().take(300).copied().collect();
    let p = detect_period(&keys).unwrap();
    assert_eq!(
        (p.period, p.offset, p.iterations, p.match_fraction),
        (100, 0, 3, 1.0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 1024 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn repeated_iteration_is_found(
        iter in prop::collection::vec((0u64..4, 0u32..2), 1..40),
        n in 3usize..6,
        warm in prop::collection::vec((100u64..104, 0u32..2), 0..5),
    ) {
        let keys: Vec<(u64, u32)> = iter.iter().cycle().take(iter.len() * n).copied().collect();
        let p = detect_period(&keys).expect("a period");
        prop_assert!(p.period <= iter.len(), "{p:?}");
        prop_assert_eq!(iter.len() % p.period, 0);
        prop_assert_eq!(p.match_fraction, 1.0);
        prop_assert_eq!(p.offset, 0);
        // Through a trace, with a warm-up of keys that never occur in the iteration. The
        // detector wants the repeated region to hold at least half of the allocations.
        prop_assume!(keys.len() >= warm.len());
        let build = || {
            let mut b = TraceBuilder::new();
            for (i, &(s, st)) in warm.iter().chain(&keys).enumerate() {
                b.alloc(i as u64, s * 64 + 64, st).unwrap();
                b.free(i as u64).unwrap();
            }
            b.finish()
        };
        let a = analyze(&build());
        let Boundaries::Detected(q) = a.boundaries else { panic!("no period") };
        prop_assert!(q.period <= iter.len() && q.match_fraction == 1.0, "{q:?}");
        prop_assert_eq!(q.offset, warm.len());
        prop_assert!(a.lifetimes[warm.len()..].iter().all(|l| l.class == Class::PerIteration));
        // Determinism.
        prop_assert_eq!(&a, &analyze(&build()));
    }
}

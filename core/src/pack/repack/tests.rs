//! Properties of the improvement search: every plan it returns is valid and never worse than
//! its input, and a node budget makes it deterministic.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::repack;
use crate::pack::budget::{Budget, Control};
use crate::pack::problem::Item;

/// Random items: lifetimes within `0..40`, sizes `1..=64`, alignments 1, 2, 4 or 8.
fn items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec((0u64..40, 1u64..12, 1u64..=64, 0u32..4), 1..60).prop_map(|v| {
        v.into_iter()
            .map(|(lower, len, size, a)| Item {
                lower,
                upper: lower + len,
                size,
                align: 1 << a,
            })
            .collect()
    })
}

/// A valid but poor plan: every item stacked on the previous ones (aligned), above `base`.
fn stacked(items: &[Item], base: u64) -> Vec<u64> {
    let mut top = base;
    items
        .iter()
        .map(|it| {
            let o = top.next_multiple_of(it.align);
            top = o + it.size;
            o
        })
        .collect()
}

/// Panics unless `offsets` is a valid plan above `base`; returns its peak.
fn check(items: &[Item], base: u64, offsets: &[u64]) -> u64 {
    let mut peak = base;
    for (i, a) in items.iter().enumerate() {
        let oa = offsets[i];
        assert!(oa >= base && oa % a.align == 0, "item {i} at {oa}");
        peak = peak.max(oa + a.size);
        for (j, b) in items.iter().enumerate().skip(i + 1) {
            let ob = offsets[j];
            if a.overlaps(b) {
                assert!(
                    oa + a.size <= ob || ob + b.size <= oa,
                    "items {i} and {j} share bytes"
                );
            }
        }
    }
    peak
}

fn run(items: &[Item], base: u64, start: &[u64], max_nodes: u64) -> (Vec<u64>, u64) {
    let mut ctrl = Control::new(Budget {
        max_nodes: Some(max_nodes),
        stop: None,
    });
    let mut offsets = start.to_vec();
    let peak = repack(items, base, &mut offsets, base, &mut ctrl);
    (offsets, peak)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 0, ..ProptestConfig::default() })]

    /// Valid, never worse than the input plan, and the peak it reports is its plan's.
    #[test]
    fn valid_and_never_worse(items in items(), base in 0u64..3, nodes in 0u64..3000) {
        let base = base * 8;
        let start = stacked(&items, base);
        let before = check(&items, base, &start);
        let (offsets, peak) = run(&items, base, &start, nodes);
        let after = check(&items, base, &offsets);
        prop_assert_eq!(peak, after);
        prop_assert!(after <= before);
    }

    /// Same input and node budget: same offsets.
    #[test]
    fn deterministic_under_a_node_budget(items in items(), nodes in 0u64..3000) {
        let start = stacked(&items, 0);
        prop_assert_eq!(run(&items, 0, &start, nodes), run(&items, 0, &start, nodes));
    }

    /// More nodes never give a worse plan than fewer from the same start (the search only
    /// keeps moves that do not raise the peak, and a budget cut undoes the move in flight).
    #[test]
    fn more_nodes_never_worse(items in items(), nodes in 1u64..1000) {
        let start = stacked(&items, 0);
        let (_, a) = run(&items, 0, &start, nodes);
        let (_, b) = run(&items, 0, &start, nodes * 4);
        prop_assert!(b <= a);
    }
}

/// On a stacked plan of disjoint-in-time buffers the search reaches the max load.
#[test]
fn unstacks_disjoint_buffers() {
    let items: Vec<Item> = (0..20)
        .map(|k| Item {
            lower: k,
            upper: k + 1,
            size: 10,
            align: 1,
        })
        .collect();
    let start = stacked(&items, 0);
    let (offsets, peak) = run(&items, 0, &start, 100_000);
    assert_eq!(check(&items, 0, &offsets), peak);
    assert_eq!(peak, 10);
}

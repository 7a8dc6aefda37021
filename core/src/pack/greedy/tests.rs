//! Properties of the peak-first passes: the busiest moment is found, and its buffers, placed
//! first, stack exactly to the max load.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::{busiest, greedy};
use crate::pack::problem::{Item, max_load_of};

/// Random items: lifetimes within `0..40`, sizes `1..=64`, no alignment constraint.
fn items() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec((0u64..40, 1u64..12, 1u64..=64), 1..60).prop_map(|v| {
        v.into_iter()
            .map(|(lower, len, size)| Item {
                lower,
                upper: lower + len,
                size,
                align: 1,
            })
            .collect()
    })
}

proptest! {
    /// The buffers marked hot are alive together and their sizes sum to the max load.
    #[test]
    fn busiest_moment_carries_the_max_load(items in items()) {
        let hot = busiest(&items);
        let load: u64 = items.iter().zip(&hot).filter(|(_, h)| **h).map(|(it, _)| it.size).sum();
        prop_assert_eq!(load, max_load_of(items.iter().map(|it| (it.lower, it.upper, it.size))));
        let hot_items: Vec<&Item> = items.iter().zip(&hot).filter(|(_, h)| **h).map(|(it, _)| it).collect();
        for a in &hot_items {
            for b in &hot_items {
                prop_assert!(a.overlaps(b));
            }
        }
    }

    /// First fit over the hot buffers first stacks them without a gap: the hot buffers' tops
    /// reach exactly base + max load.
    #[test]
    fn hot_buffers_first_stack_to_the_max_load(items in items(), base in 0u64..100) {
        let hot = busiest(&items);
        let mut order: Vec<u32> = (0..items.len() as u32).collect();
        order.sort_by_key(|&i| (!hot[i as usize], core::cmp::Reverse(items[i as usize].size), i));
        let (offs, _) = greedy(&items, &order, base, false);
        let hot_top = items
            .iter()
            .zip(&offs)
            .zip(&hot)
            .filter(|(_, h)| **h)
            .map(|((it, o), _)| o + it.size)
            .max()
            .unwrap();
        let ml = max_load_of(items.iter().map(|it| (it.lower, it.upper, it.size)));
        prop_assert_eq!(hot_top, base + ml);
    }
}

//! Splitting a problem into independent *leaves*, and what a leaf is.
//!
//! Buffers that never live at the same time as each other can be planned independently: the
//! buffers are split into time-connected components. Inside a component, the buffers alive
//! over its whole time span go to its bottom, stacked (any plan can be rearranged so; this
//! keeps offsets aligned only when such a buffer's size is a multiple of every alignment in
//! the component, so only those are peeled). The rest of the component is split again above
//! that stack. What remains are the leaves, each planned above its own base offset.
//!
//! Invariants of a [`Leaf`]: `items` is non-empty and sorted by (lower, index); `base` is a
//! multiple of every alignment among its items; `lb = base + max load of its items` and no
//! plan of the leaf peaks lower; once planned, `offsets` is parallel to `items`, every offset
//! is at or above `base`, and `peak` is their largest `offset + size` (`u64::MAX` before the
//! first plan, with `offsets` empty).

use alloc::vec;
use alloc::vec::Vec;

use super::problem::{Item, max_load_of};

/// A group of buffers planned together above `base`.
pub(super) struct Leaf {
    /// Global indices of the leaf's buffers.
    pub(super) items: Vec<u32>,
    /// Lowest offset any of them may take.
    pub(super) base: u64,
    /// `base` + the leaf's max load: no plan of the leaf peaks lower.
    pub(super) lb: u64,
    /// Best offsets found, parallel to `items`.
    pub(super) offsets: Vec<u64>,
    /// Peak of `offsets`.
    pub(super) peak: u64,
    /// True when the leaf is small enough for the exact search (see [`EXACT_PAIRS`] and
    /// [`EXACT_ITEMS`]).
    pub(super) searchable: bool,
}

/// Leaves with more pairs of buffers alive together than this get heuristics only: the
/// search keeps an adjacency list per buffer, and its nodes cost time linear in the leaf.
const EXACT_PAIRS: u64 = 4_000_000;

/// Leaves with more buffers than this get heuristics only: the search recurses once per
/// buffer it places, so this bounds its stack depth. Measured without optimisation (the
/// worst case, a dependent's debug build): 3,000 levels fit a 2 MiB thread stack and 4,000
/// do not (`core/tests/deep_search.rs`), so 2,000 leaves room.
const EXACT_ITEMS: usize = 2000;

/// Number of pairs of `ids` whose lifetimes intersect.
///
/// # Complexity
/// O(n log n).
fn overlapping_pairs(items: &[Item], ids: &[u32]) -> u64 {
    let mut starts: Vec<u64> = ids.iter().map(|&i| items[i as usize].lower).collect();
    let mut ends: Vec<u64> = ids.iter().map(|&i| items[i as usize].upper).collect();
    starts.sort_unstable();
    ends.sort_unstable();
    let mut twice = 0u64;
    for &i in ids {
        let it = &items[i as usize];
        // Items starting before this one ends, less those ending before it starts, less itself.
        let a = starts.partition_point(|&t| t < it.upper) as u64;
        let b = ends.partition_point(|&t| t <= it.lower) as u64;
        twice += a - b - 1;
    }
    twice / 2
}

/// Splits the buffers into independent leaves; buffers that span their whole group are
/// stacked at the group's bottom and get their offsets here.
pub(super) fn decompose(items: &[Item], offsets: &mut [u64]) -> (Vec<Leaf>, u64) {
    let mut peeled_peak = 0u64;
    let mut leaves = Vec::new();
    let mut all: Vec<u32> = (0..items.len() as u32).collect();
    all.sort_by_key(|&i| (items[i as usize].lower, i));
    let mut work: Vec<(Vec<u32>, u64)> = vec![(all, 0)];
    while let Some((group, base)) = work.pop() {
        // `group` is sorted by lower. Split into time-connected components.
        let mut start = 0;
        let mut end_time = 0;
        let mut comps: Vec<(usize, usize)> = Vec::new();
        for (k, &i) in group.iter().enumerate() {
            let it = &items[i as usize];
            if k > start && it.lower >= end_time {
                comps.push((start, k));
                start = k;
            }
            end_time = if k == start {
                it.upper
            } else {
                end_time.max(it.upper)
            };
        }
        if !group.is_empty() {
            comps.push((start, group.len()));
        }
        for (s, e) in comps {
            let comp = &group[s..e];
            let t0 = items[comp[0] as usize].lower;
            let t1 = comp
                .iter()
                .map(|&i| items[i as usize].upper)
                .max()
                .unwrap_or(t0);
            // A buffer alive over the whole component can go to its bottom: move it there and
            // shift what was below it up by its size. That keeps every offset aligned only if
            // its size is a multiple of every alignment in the component.
            let align = comp
                .iter()
                .map(|&i| items[i as usize].align)
                .max()
                .unwrap_or(1);
            let mut spanning: Vec<u32> = Vec::new();
            let mut rest: Vec<u32> = Vec::new();
            for &i in comp {
                let it = &items[i as usize];
                if it.lower == t0 && it.upper == t1 && it.size % align == 0 {
                    spanning.push(i);
                } else {
                    rest.push(i);
                }
            }
            if spanning.is_empty() {
                leaves.push(new_leaf(items, comp.to_vec(), base));
                continue;
            }
            // `base` is a multiple of every alignment here (it is a sum of sizes that were
            // multiples of a larger component's alignments), and so is every size stacked.
            let mut top = base;
            for i in spanning {
                offsets[i as usize] = top;
                top += items[i as usize].size;
            }
            peeled_peak = peeled_peak.max(top);
            if !rest.is_empty() {
                work.push((rest, top));
            }
        }
    }
    // Deterministic order of leaves, independent of the work-list order.
    leaves.sort_by_key(|l| l.items[0]);
    (leaves, peeled_peak)
}

fn new_leaf(items: &[Item], ids: Vec<u32>, base: u64) -> Leaf {
    let load = load_of(items, &ids);
    let searchable = ids.len() <= EXACT_ITEMS && overlapping_pairs(items, &ids) <= EXACT_PAIRS;
    Leaf {
        searchable,
        items: ids,
        base,
        lb: base + load,
        offsets: Vec::new(),
        peak: u64::MAX,
    }
}

/// Max load of a subset of the items.
fn load_of(items: &[Item], ids: &[u32]) -> u64 {
    max_load_of(ids.iter().map(|&i| {
        let it = &items[i as usize];
        (it.lower, it.upper, it.size)
    }))
}

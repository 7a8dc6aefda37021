//! The packer: decomposition, greedy heuristics and branch-and-bound.
//!
//! See `doc/PLANNER.md` for the design. In short:
//! 1. **Decompose.** Split the buffers into groups that never live at the same time
//!    (independent), and inside each group put the buffers that live through the whole group
//!    at its bottom (always optimal when alignments are 1: any plan can be rearranged so). What
//!    is left are *leaves*, each with a base offset.
//! 2. **Heuristics.** Each leaf gets the best of several greedy first-fit / best-fit passes.
//! 3. **Search.** The leaf with the highest peak is improved by an exact branch-and-bound over
//!    canonical plans (buffers placed in non-decreasing offset order, each as low as the
//!    buffers already placed allow), pruned with per-moment load bounds; repeat while the
//!    budget lasts.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::interval::{Problem, Solution, SolveOptions};

/// A buffer as the packer sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) lower: u64,
    pub(crate) upper: u64,
    pub(crate) size: u64,
    pub(crate) align: u64,
}

impl Item {
    fn overlaps(&self, o: &Item) -> bool {
        self.lower < o.upper && o.lower < self.upper
    }
}

/// Rounds `x` up to a multiple of the power of two `a`. Saturates instead of overflowing; a
/// validated [`Problem`] keeps every offset far below that.
pub(crate) fn align_up(x: u64, a: u64) -> u64 {
    x.saturating_add(a - 1) & !(a - 1)
}

/// Counts nodes and asks the caller's stop function now and then.
pub(crate) struct Control<'a> {
    nodes: u64,
    max_nodes: Option<u64>,
    stop: Option<&'a mut dyn FnMut() -> bool>,
    pub(crate) stopped: bool,
    /// Candidates tried (see [`Control::poll`]).
    work: u64,
}

impl Control<'_> {
    /// Counts one node; true when the search must stop.
    pub(crate) fn tick(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        if self.max_nodes.is_some_and(|m| self.nodes >= m) {
            self.stopped = true;
            return true;
        }
        self.nodes += 1;
        if self.nodes % 256 == 0 {
            if let Some(f) = self.stop.as_mut() {
                if f() {
                    self.stopped = true;
                }
            }
        }
        self.stopped
    }

    /// Counts one unit of work inside a node (a candidate tried), polling the caller's stop
    /// function now and then, so that expensive nodes do not overrun a deadline. Does not
    /// count towards the node budget. True when the search must stop.
    pub(crate) fn poll(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.work = self.work.wrapping_add(1);
        if self.work % 64 == 0 {
            if let Some(f) = self.stop.as_mut() {
                if f() {
                    self.stopped = true;
                }
            }
        }
        self.stopped
    }

    fn out_of_budget(&mut self) -> bool {
        if self.stopped || self.max_nodes.is_some_and(|m| self.nodes >= m) {
            return true;
        }
        if let Some(f) = self.stop.as_mut() {
            if f() {
                self.stopped = true;
            }
        }
        self.stopped
    }
}

/// A group of buffers planned together above `base`.
struct Leaf {
    /// Global indices of the leaf's buffers.
    items: Vec<u32>,
    /// Lowest offset any of them may take.
    base: u64,
    /// `base` + the leaf's max load: no plan of the leaf peaks lower.
    lb: u64,
    /// Best offsets found, parallel to `items`.
    offsets: Vec<u64>,
    /// Peak of `offsets`.
    peak: u64,
    /// True when the leaf is small enough for the exact search (see [`EXACT_PAIRS`] and
    /// [`EXACT_ITEMS`]).
    searchable: bool,
}

/// The problem's buffers as the packer sees them, in the same order.
fn items_of(problem: &Problem) -> Vec<Item> {
    problem
        .buffers()
        .iter()
        .map(|b| Item {
            lower: b.lower,
            upper: b.upper,
            size: b.size,
            align: b.alignment,
        })
        .collect()
}

/// [`crate::pack`]: see the module docs.
pub(crate) fn solve(problem: &Problem, options: SolveOptions<'_>) -> Result<Solution> {
    let items = items_of(problem);
    let max_load = problem.max_load();
    let mut ctrl = Control {
        nodes: 0,
        max_nodes: options.budget.max_nodes,
        stop: options.budget.stop,
        stopped: false,
        work: 0,
    };
    let mut offsets = vec![0u64; items.len()];
    let (mut leaves, peeled_peak) = decompose(&items, &mut offsets);
    // Heuristics: every leaf gets at least its first greedy pass, whatever the budget.
    for leaf in &mut leaves {
        heuristics(&items, leaf, &mut ctrl);
    }
    let capacity = options.capacity;
    // Search: improve the worst leaf while the budget lasts.
    while let Some(worst) =
        (0..leaves.len()).max_by_key(|&l| (leaves[l].peak, core::cmp::Reverse(l)))
    {
        // No plan peaks below the peeled stacks or any leaf's lower bound.
        let floor = leaves
            .iter()
            .map(|leaf| leaf.lb)
            .max()
            .unwrap_or(0)
            .max(peeled_peak);
        let leaf = &mut leaves[worst];
        let done = leaf.peak <= floor // the peak cannot go lower
            || capacity.is_some_and(|c| leaf.peak <= c || leaf.lb > c) // fits, or never will
            || ctrl.out_of_budget();
        if done {
            break;
        }
        if !leaf.searchable {
            break; // too large for the exact search: the heuristics' plan stands
        }
        let target = capacity.unwrap_or(floor);
        let before = (leaf.peak, leaf.lb);
        search(&items, leaf, capacity, target, &mut ctrl);
        if (leaf.peak, leaf.lb) == before {
            break; // the budget ran out without progress
        }
    }
    let mut peak = peeled_peak;
    let mut lb = max_load;
    for leaf in &leaves {
        for (k, &i) in leaf.items.iter().enumerate() {
            offsets[i as usize] = leaf.offsets[k];
        }
        peak = peak.max(leaf.peak);
        lb = lb.max(leaf.lb);
    }
    // The plain greedy-by-size plan is cheap insurance (one more greedy pass): never return
    // worse than it.
    if peak > lb {
        let g = greedy_by_size(problem);
        if g.peak < peak {
            peak = g.peak;
            offsets = g.offsets;
        }
    }
    let optimal = peak <= lb;
    if let Some(cap) = capacity {
        if peak > cap {
            return Err(Error::CapacityExceeded {
                capacity: cap,
                best_peak: peak,
                max_load,
                proven: lb > cap,
            });
        }
    }
    Ok(Solution {
        offsets,
        peak,
        max_load,
        optimal,
        nodes: ctrl.nodes,
    })
}

/// Largest leaf that gets the (slower) best-fit passes.
const BEST_FIT_LIMIT: usize = 5000;

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
fn decompose(items: &[Item], offsets: &mut [u64]) -> (Vec<Leaf>, u64) {
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
    crate::interval::max_load_of(ids.iter().map(|&i| {
        let it = &items[i as usize];
        (it.lower, it.upper, it.size)
    }))
}

/// Runs the greedy passes on a leaf and keeps the best plan.
fn heuristics(items: &[Item], leaf: &mut Leaf, ctrl: &mut Control<'_>) {
    let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
    let n = local.len();
    let len = |it: &Item| it.upper - it.lower;
    // (key, best fit?) pairs; keys sort ascending, ties by index. Measured on the shared
    // traces: decreasing size with earlier start first is by far the strongest single pass
    // on large inputs (S_1: 1.0167 × max load, against 1.0293 with longer-lived first).
    type Key = (u64, u64, u64);
    let keys: [(&dyn Fn(usize) -> Key, bool); 7] = [
        (&|i| (!local[i].size, local[i].lower, 0), false),
        (&|i| (!local[i].size, local[i].lower, 0), true),
        (
            &|i| (!local[i].size, !len(&local[i]), local[i].lower),
            false,
        ),
        (&|i| (!local[i].size, !len(&local[i]), local[i].lower), true),
        (
            &|i| (!len(&local[i]), !local[i].size, local[i].lower),
            false,
        ),
        (
            &|i| {
                (
                    !local[i].size.saturating_mul(len(&local[i])),
                    !local[i].size,
                    0,
                )
            },
            false,
        ),
        (
            &|i| (local[i].lower, !local[i].upper, !local[i].size),
            false,
        ),
    ];
    for (key, best_fit) in &keys {
        // Best fit scans every placed buffer per placement: only worth it on small leaves.
        if *best_fit && n > BEST_FIT_LIMIT {
            continue;
        }
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&i| (key(i as usize), i));
        let (offs, peak) = greedy(&local, &order, leaf.base, *best_fit);
        if leaf.offsets.is_empty() || peak < leaf.peak {
            leaf.peak = peak;
            leaf.offsets = offs;
        }
        if leaf.peak <= leaf.lb || ctrl.out_of_budget() {
            return;
        }
    }
}

/// Places items in `order`, each at the lowest (first fit) or tightest (best fit) gap among the
/// items already placed that are alive at the same time.
///
/// # Complexity
/// O(n²) in the worst case.
fn greedy(local: &[Item], order: &[u32], base: u64, best_fit: bool) -> (Vec<u64>, u64) {
    let mut offs = vec![0u64; local.len()];
    // Placed items sorted by offset.
    let mut placed: Vec<(u64, u32)> = Vec::with_capacity(local.len());
    let mut peak = base;
    for &i in order {
        let it = &local[i as usize];
        let mut cand = align_up(base, it.align);
        let mut best: Option<(u64, u64)> = None; // (gap, offset)
        for &(o, j) in &placed {
            let other = &local[j as usize];
            if !it.overlaps(other) {
                continue;
            }
            if o >= cand + it.size {
                let gap = o - cand;
                if !best_fit {
                    best = Some((gap, cand));
                    break;
                }
                if best.is_none_or(|(g, _)| gap < g) {
                    best = Some((gap, cand));
                }
            }
            cand = cand.max(align_up(o + other.size, it.align));
        }
        let o = match best {
            Some((_, o)) => o,
            None => cand,
        };
        offs[i as usize] = o;
        peak = peak.max(o + it.size);
        let pos = placed.partition_point(|&(po, pj)| (po, pj) < (o, i));
        placed.insert(pos, (o, i));
    }
    (offs, peak)
}

/// The plain greedy-by-size baseline (TFLite / XLA style): buffers by decreasing size, each
/// at the lowest offset where it fits. No decomposition, no search.
pub(crate) fn greedy_by_size(problem: &Problem) -> Solution {
    let local = items_of(problem);
    let mut order: Vec<u32> = (0..local.len() as u32).collect();
    order.sort_by_key(|&i| (core::cmp::Reverse(local[i as usize].size), i));
    let (offsets, peak) = greedy(&local, &order, 0, false);
    let max_load = problem.max_load();
    Solution {
        offsets,
        peak,
        max_load,
        optimal: peak <= max_load,
        nodes: 0,
    }
}

/// Branch-and-bound on one leaf: with a capacity, looks for a plan within it; without,
/// minimises the peak down to `target`. Updates the leaf's plan and lower bound.
fn search(
    items: &[Item],
    leaf: &mut Leaf,
    capacity: Option<u64>,
    target: u64,
    ctrl: &mut Control<'_>,
) {
    let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
    let out = super::search::improve(
        &local, leaf.base, leaf.peak, leaf.lb, capacity, target, ctrl,
    );
    if let Some(offs) = out.offsets {
        leaf.offsets = offs;
        leaf.peak = out.peak;
    }
    leaf.lb = leaf.lb.max(out.proven_lb);
}

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
}

impl Control<'_> {
    /// Counts one node; true when the search must stop.
    pub(crate) fn tick(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.nodes += 1;
        if self.max_nodes.is_some_and(|m| self.nodes > m) {
            self.stopped = true;
        } else if self.nodes % 256 == 0 {
            if let Some(f) = self.stop.as_mut() {
                if f() {
                    self.stopped = true;
                }
            }
        }
        self.stopped
    }

    fn out_of_budget(&mut self) -> bool {
        if self.stopped || self.max_nodes == Some(0) {
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
    /// True when `peak` is proven minimal for this leaf.
    optimal: bool,
}

pub(crate) fn solve(problem: &Problem, options: SolveOptions<'_>) -> Result<Solution> {
    let items: Vec<Item> = problem
        .buffers()
        .iter()
        .map(|b| Item {
            lower: b.lower,
            upper: b.upper,
            size: b.size,
            align: b.alignment,
        })
        .collect();
    let max_load = problem.max_load();
    let mut ctrl = Control {
        nodes: 0,
        max_nodes: options.budget.max_nodes,
        stop: options.budget.stop,
        stopped: false,
    };
    let exact_decomposition = items.iter().all(|it| it.align == 1);
    let mut offsets = vec![0u64; items.len()];
    let mut leaves = decompose(&items, &mut offsets);
    let mut peak = offsets
        .iter()
        .zip(&items)
        .map(|(o, it)| o + it.size)
        .max()
        .unwrap_or(0);
    for leaf in &mut leaves {
        heuristics(&items, leaf);
    }
    let capacity = options.capacity;
    // Improve the worst leaf while the budget lasts.
    let mut proven = true;
    loop {
        let Some(worst) = (0..leaves.len()).max_by_key(|&l| (leaves[l].peak, core::cmp::Reverse(l)))
        else {
            break;
        };
        let second = leaves
            .iter()
            .enumerate()
            .filter(|&(l, _)| l != worst)
            .map(|(_, leaf)| leaf.peak)
            .max()
            .unwrap_or(0)
            .max(peak);
        let leaf = &mut leaves[worst];
        if leaf.optimal || leaf.peak <= leaf.lb {
            leaf.optimal = true;
            break;
        }
        if capacity.is_some_and(|c| leaf.peak <= c) {
            proven = false; // fits: no need to search further
            break;
        }
        if ctrl.out_of_budget() {
            proven = false;
            break;
        }
        // Good enough for this round: no worse than the others, or than the capacity.
        let target = match capacity {
            Some(c) => c,
            None => second.max(leaf.lb),
        };
        let before = leaf.peak;
        // With a capacity, look for a plan within it directly; otherwise for any improvement.
        let cap = match capacity {
            Some(c) => c.min(leaf.peak - 1),
            None => leaf.peak - 1,
        };
        let exhausted = search(&items, leaf, cap, target, &mut ctrl);
        if exhausted {
            leaf.optimal = true;
        } else if leaf.peak == before {
            proven = false;
            break; // budget ran out without progress
        }
    }
    for leaf in &leaves {
        for (k, &i) in leaf.items.iter().enumerate() {
            offsets[i as usize] = leaf.offsets[k];
        }
        peak = peak.max(leaf.peak);
    }
    let worst_optimal = leaves
        .iter()
        .filter(|l| l.peak == peak)
        .any(|l| l.optimal && exact_decomposition);
    let optimal = peak <= max_load || worst_optimal;
    if let Some(cap) = capacity {
        if peak > cap {
            return Err(Error::CapacityExceeded {
                capacity: cap,
                best_peak: peak,
                max_load,
                proven: max_load > cap || (optimal && proven),
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

/// Splits the buffers into independent leaves; buffers that span their whole group are
/// stacked at the group's bottom and get their offsets here.
fn decompose(items: &[Item], offsets: &mut [u64]) -> Vec<Leaf> {
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
            let t1 = comp.iter().map(|&i| items[i as usize].upper).max().unwrap_or(t0);
            let mut spanning: Vec<u32> = Vec::new();
            let mut rest: Vec<u32> = Vec::new();
            for &i in comp {
                let it = &items[i as usize];
                if it.lower == t0 && it.upper == t1 {
                    spanning.push(i);
                } else {
                    rest.push(i);
                }
            }
            if spanning.is_empty() {
                leaves.push(new_leaf(items, comp.to_vec(), base));
                continue;
            }
            // Largest alignment first keeps the padding small.
            spanning.sort_by_key(|&i| (core::cmp::Reverse(items[i as usize].align), i));
            let mut top = base;
            for i in spanning {
                let it = &items[i as usize];
                let o = align_up(top, it.align);
                offsets[i as usize] = o;
                top = o + it.size;
            }
            if !rest.is_empty() {
                work.push((rest, top));
            }
        }
    }
    // Deterministic order of leaves, independent of the work-list order.
    leaves.sort_by_key(|l| l.items[0]);
    leaves
}

fn new_leaf(items: &[Item], ids: Vec<u32>, base: u64) -> Leaf {
    let load = load_of(items, &ids);
    Leaf {
        items: ids,
        base,
        lb: base + load,
        offsets: Vec::new(),
        peak: u64::MAX,
        optimal: false,
    }
}

/// Max load of a subset of the items.
fn load_of(items: &[Item], ids: &[u32]) -> u64 {
    let mut ev: Vec<(u64, bool, u64)> = Vec::with_capacity(ids.len() * 2);
    for &i in ids {
        let it = &items[i as usize];
        ev.push((it.lower, true, it.size));
        ev.push((it.upper, false, it.size));
    }
    ev.sort_unstable();
    let (mut live, mut best) = (0u64, 0u64);
    for (_, start, s) in ev {
        if start {
            live += s;
            best = best.max(live);
        } else {
            live -= s;
        }
    }
    best
}

/// Runs the greedy passes on a leaf and keeps the best plan.
fn heuristics(items: &[Item], leaf: &mut Leaf) {
    let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
    let n = local.len();
    let orders: [fn(&Item) -> (u64, u64, u64); 4] = [
        |it| (u64::MAX - it.size, u64::MAX - (it.upper - it.lower), it.lower),
        |it| (u64::MAX - (it.upper - it.lower), u64::MAX - it.size, it.lower),
        |it| {
            (
                u64::MAX - it.size.saturating_mul(it.upper - it.lower),
                u64::MAX - it.size,
                it.lower,
            )
        },
        |it| (it.lower, u64::MAX - it.upper, u64::MAX - it.size),
    ];
    for (k, key) in orders.iter().enumerate() {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&i| (key(&local[i as usize]), i));
        for best_fit in [false, true] {
            if k >= 2 && best_fit {
                continue;
            }
            let (offs, peak) = greedy(&local, &order, leaf.base, best_fit);
            if peak < leaf.peak {
                leaf.peak = peak;
                leaf.offsets = offs;
            }
            if leaf.peak <= leaf.lb {
                leaf.optimal = true;
                return;
            }
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
    let local: Vec<Item> = problem
        .buffers()
        .iter()
        .map(|b| Item {
            lower: b.lower,
            upper: b.upper,
            size: b.size,
            align: b.alignment,
        })
        .collect();
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

/// Branch-and-bound on one leaf: searches for a plan with a peak at most `cap`, stopping
/// once one at or below `target` is found. Returns true when the search finished (so
/// `leaf.peak` is then optimal for the leaf).
fn search(items: &[Item], leaf: &mut Leaf, cap: u64, target: u64, ctrl: &mut Control<'_>) -> bool {
    let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
    let out = super::search::improve(&local, leaf.base, leaf.peak, cap, target, ctrl);
    if let Some(offs) = out.offsets {
        leaf.offsets = offs;
        leaf.peak = out.peak;
    }
    out.exhausted
}

//! The greedy heuristics: first-fit and best-fit passes over the buffers in several orders,
//! and [`greedy_by_size`], the common baseline.
//!
//! A pass places the buffers one at a time in its order, each at the lowest (first fit) or
//! the tightest (best fit) aligned gap left by the buffers already placed that are alive with
//! it. Every pass yields a valid plan, so the packer always has one, whatever its budget.
//! The *peak-first* passes place the buffers alive at the leaf's busiest moment before all
//! others: those all overlap, so first fit stacks them with no gap, to exactly the max load.
//! While a pass runs, `placed` holds the buffers placed so far sorted by (offset, index), and
//! `peak` is at least the base and every placed `offset + size`.

use alloc::vec;
use alloc::vec::Vec;

use super::budget::Control;
use super::decompose::Leaf;
use super::problem::{Item, Problem};
use super::solution::{Solution, Unproven};
use crate::units::align_up_saturating as align_up;

/// Largest leaf that gets the (slower) best-fit passes.
const BEST_FIT_LIMIT: usize = 5000;

/// Runs the greedy passes on a leaf and keeps the best plan.
pub(super) fn heuristics(items: &[Item], leaf: &mut Leaf, ctrl: &mut Control<'_>) {
    let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
    let n = local.len();
    let len = |it: &Item| it.upper - it.lower;
    // (key, best fit?) pairs; keys sort ascending, ties by index. Measured on the shared
    // traces: decreasing size with earlier start first is by far the strongest single pass
    // on large inputs (S_1: 1.0167 × max load, against 1.0293 with longer-lived first).
    // The next three are *peak-first*: the buffers alive at the busiest moment go first (in
    // three orders), so first fit stacks them with no gap to exactly the max load, and the
    // rest by decreasing size fill in around them. On S_1, whose peak the size orders set
    // with small long-lived buffers stacked on top, the first of them reaches the max load;
    // they come second so that a short time limit still reaches them (a pass on S_1 takes
    // about 0.6 s).
    type Key = (u64, u64, u64);
    let hot = busiest(&local);
    let keys: [(&dyn Fn(usize) -> Key, bool); 10] = [
        (&|i| (!local[i].size, local[i].lower, 0), false),
        (
            &|i| {
                if hot[i] {
                    (0, !len(&local[i]), !local[i].size)
                } else {
                    (1, !local[i].size, local[i].lower)
                }
            },
            false,
        ),
        (
            &|i| {
                if hot[i] {
                    (0, !local[i].size, local[i].lower)
                } else {
                    (1, !local[i].size, local[i].lower)
                }
            },
            false,
        ),
        (
            &|i| {
                if hot[i] {
                    (0, local[i].lower, !local[i].upper)
                } else {
                    (1, !local[i].size, local[i].lower)
                }
            },
            false,
        ),
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

/// Marks the items alive at the leaf's busiest moment (the earliest one on ties).
fn busiest(local: &[Item]) -> Vec<bool> {
    let mut events: Vec<(u64, bool, u64)> = Vec::with_capacity(2 * local.len());
    for it in local {
        events.push((it.lower, true, it.size));
        events.push((it.upper, false, it.size));
    }
    // Ends before starts at the same moment: lifetimes are half-open.
    events.sort_unstable();
    let (mut live, mut best, mut at) = (0u64, 0u64, 0u64);
    for &(t, start, size) in &events {
        if start {
            live += size;
            if live > best {
                (best, at) = (live, t);
            }
        } else {
            live -= size;
        }
    }
    local
        .iter()
        .map(|it| it.lower <= at && at < it.upper)
        .collect()
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

/// The common baseline heuristic, greedy by size (as in TFLite and XLA): buffers in decreasing
/// size order, each at the lowest offset where it fits among those already placed. Provided
/// for comparisons; [`pack`](super::pack) is never worse than it on problems without alignment
/// constraints. No decomposition, no search.
///
/// # Complexity
/// O(n²) in the worst case.
pub fn greedy_by_size(problem: &Problem) -> Solution {
    let local = problem.items();
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
        unproven: (peak > max_load).then_some(Unproven::HeuristicOnly),
    }
}

#[cfg(test)]
mod tests;

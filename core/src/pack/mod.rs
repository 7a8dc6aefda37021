//! The offline packer: buffers with lifetimes in, one offset per buffer out.
//!
//! A [`Problem`] is a list of [`Buffer`]s, each alive over the half-open interval
//! `[lower, upper)` and needing `size` bytes at an offset that is a multiple of its
//! `alignment`. A plan ([`Solution`]) gives every buffer an offset so that two buffers whose
//! lifetimes intersect never share a byte. Its *peak* is the largest `offset + size`; no plan
//! can beat the *max load*, the largest total size of buffers alive at one moment.
//!
//! # The algorithm
//!
//! [`pack`] = decompose → greedy heuristics per leaf → exact search on the worst leaf →
//! insurance (design notes and measurements: `doc/PACKER.md`):
//! 1. **Decompose** (`decompose.rs`). Split the buffers into groups that never live at the
//!    same time (independent), and inside each group stack the buffers that live through the
//!    whole group at its bottom (any plan can be rearranged so). What is left are *leaves*,
//!    each with a base offset and a lower bound.
//! 2. **Heuristics** (`greedy.rs`). Each leaf gets the best of several greedy first-fit /
//!    best-fit passes; the first always runs, so [`pack`] always has a plan.
//! 3. **Exact search** (`search.rs`, `canonical.rs`, `sections.rs`). The leaf with the
//!    highest peak is improved by a branch-and-bound over canonical plans (buffers placed in
//!    non-decreasing offset order, each as low as the buffers already placed allow), pruned
//!    with per-section load bounds; repeated while that leaf is the worst, improves, and the
//!    [`Budget`] lasts (`budget.rs`).
//!    A leaf too large for the exact search (not `searchable`) gets the improvement search
//!    instead (`repack.rs`): window repacking, a local search that re-places the buffers
//!    around the peak among the fixed rest, for as long as the budget lasts.
//! 4. **Insurance.** The plain [`greedy_by_size`] plan replaces the result when it is better.
//!
//! The [`Solution`] says why it is not proven optimal ([`Unproven`]).
//!
//! # Invariants
//!
//! A [`Problem`] holds only valid buffers (`size > 0`, `lower < upper`, power-of-two
//! alignment, unique ids) whose sizes plus alignment slack sum within `u64`, so no offset the
//! packer computes overflows. Every [`Solution`] [`pack`] returns is valid (complete, aligned,
//! no two buffers alive together share a byte) — `crate::check::verify` confirms that
//! independently — with `max_load <= peak`, and `optimal` only when proven. With a node budget
//! and no stop condition the result is deterministic: every order is a sort with index
//! tie-breaks, and no decision depends on hash order.
//!
//! # Files
//!
//! Each file is one concept, and they import each other only downwards (no file imports this
//! one): `problem` (input, max load) ← `solution` (output); `budget` (limits, the node counter)
//! ← `deadline` (feature `std`); `decompose` (leaves) ← `greedy` (heuristics), `repack`
//! (improvement search on large leaves);
//! `sections` (compressed time) ← `canonical` (one branch-and-bound run) ← `search` (restarts,
//! bisection); this file drives them.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};

mod budget;
mod canonical;
// Compiled in test builds too, so that `cargo test -p memplan-core` runs its unit tests.
#[cfg(any(test, feature = "std"))]
mod deadline;
mod decompose;
mod floors;
mod greedy;
mod problem;
mod repack;
mod search;
mod sections;
mod solution;

pub use budget::{Budget, PackOptions, Stop};
#[cfg(any(test, feature = "std"))]
pub use deadline::Deadline;
pub use greedy::greedy_by_size;
pub use problem::{Buffer, Problem, max_load};
pub use solution::{PlacedBuffer, Solution, Unproven};

use budget::{Control, Exhausted};
use decompose::{Leaf, decompose};
use greedy::heuristics;
use problem::Item;

/// Plans `problem`: assigns every buffer an offset, minimising the peak.
///
/// Always returns a valid plan quickly (greedy heuristics), then searches for a better one
/// within `options.budget`. With `options.capacity`, stops at the first plan that fits.
///
/// # Errors
/// [`Error::CapacityExceeded`] when a capacity is given and no plan within it was found;
/// the error carries the best peak found and whether infeasibility is proven.
///
/// # Examples
/// ```
/// use memplan_core::{pack, Buffer, Problem, PackOptions};
/// let p = Problem::from_buffers([
///     Buffer::new("a", 0, 2, 4),
///     Buffer::new("b", 1, 3, 4),
///     Buffer::new("c", 2, 4, 4),
/// ])?;
/// let s = pack(&p, PackOptions::default())?;
/// assert_eq!(s.peak, 8);
/// assert!(s.optimal);
/// memplan_core::check::verify(p.buffers(), &s.placements(&p), None).unwrap();
/// # Ok::<(), memplan_core::Error>(())
/// ```
pub fn pack(problem: &Problem, options: PackOptions<'_>) -> Result<Solution> {
    let items = problem.items();
    let max_load = problem.max_load();
    let mut ctrl = Control::new(options.budget);
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
            // Too large for the exact search: improve the heuristics' plan locally.
            let before = leaf.peak;
            let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
            let goal = match capacity {
                Some(c) => c.max(floor),
                None => floor,
            };
            leaf.peak = repack::repack(&local, leaf.base, &mut leaf.offsets, goal, &mut ctrl);
            if leaf.peak == before {
                break; // stalled, or out of budget
            }
            continue;
        }
        let target = capacity.unwrap_or(floor);
        let before = (leaf.peak, leaf.lb);
        search_leaf(&items, leaf, capacity, target, &mut ctrl);
        if (leaf.peak, leaf.lb) == before {
            break; // the budget ran out without progress
        }
    }
    let mut peak = peeled_peak;
    let mut lb = max_load;
    // The leaf that sets the peak is too large for the exact search.
    let mut too_large = false;
    for leaf in &leaves {
        if leaf.peak > peak || (leaf.peak == peak && !leaf.searchable) {
            too_large = !leaf.searchable;
        }
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
    let unproven = if optimal {
        None
    } else if too_large {
        Some(Unproven::LeafTooLarge)
    } else {
        Some(match ctrl.exhausted() {
            Some(Exhausted::Caller) => Unproven::TimeLimit,
            Some(Exhausted::Nodes) => Unproven::NodeLimit,
            None if capacity.is_some_and(|c| peak <= c) => Unproven::CapacityMet,
            // The exact search ends only with a proof or out of budget; only the heuristics
            // ran (e.g. the worst leaf is peeled stacks).
            None => Unproven::HeuristicOnly,
        })
    };
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
        nodes: ctrl.nodes(),
        unproven,
    })
}

/// Branch-and-bound on one leaf: with a capacity, looks for a plan within it; without,
/// minimises the peak down to `target`. Updates the leaf's plan and lower bound.
fn search_leaf(
    items: &[Item],
    leaf: &mut Leaf,
    capacity: Option<u64>,
    target: u64,
    ctrl: &mut Control<'_>,
) {
    let local: Vec<Item> = leaf.items.iter().map(|&i| items[i as usize]).collect();
    let out = search::improve(
        &local, leaf.base, leaf.peak, leaf.lb, capacity, target, ctrl,
    );
    if let Some(offs) = out.offsets {
        leaf.offsets = offs;
        leaf.peak = out.peak;
    }
    leaf.lb = leaf.lb.max(out.proven_lb);
}

//! The output: a [`Solution`] (one offset per buffer, its peak, the lower bound, whether it is
//! proven optimal) and its per-buffer view, [`PlacedBuffer`].
//!
//! Invariants of a [`Solution`] returned by the packer: `offsets.len()` is the problem's
//! number of buffers, `offsets[i]` is a multiple of buffer `i`'s alignment, no two buffers
//! alive at one moment share a byte, `peak` is the largest `offset + size` (0 for no buffers),
//! `max_load <= peak`, `optimal` is true only when no plan has a smaller peak, and
//! `unproven` is `None` exactly when `optimal` is true.

use alloc::string::String;
use alloc::vec::Vec;

use super::problem::Problem;

/// Where a buffer went: the buffer as planned and its offset. [`crate::check::verify`]
/// compares these against the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedBuffer {
    /// The buffer's id.
    pub id: String,
    /// Lifetime start, as planned.
    pub lower: u64,
    /// Lifetime end (exclusive), as planned.
    pub upper: u64,
    /// Size, as planned.
    pub size: u64,
    /// Offset in bytes from the start of the arena.
    pub offset: u64,
}

/// A plan: one offset per buffer, with its quality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// `offsets[i]` is the offset of `problem.buffers()[i]`.
    pub offsets: Vec<u64>,
    /// Largest `offset + size` (0 for an empty problem).
    pub peak: u64,
    /// The max-load lower bound.
    pub max_load: u64,
    /// True when no plan has a smaller peak: `peak == max_load`, or the exact search
    /// finished.
    pub optimal: bool,
    /// Search nodes expanded (exact-search nodes plus buffers re-placed by the improvement
    /// search on large leaves).
    pub nodes: u64,
    /// Why the plan is not proven optimal; `None` exactly when `optimal` is true.
    pub unproven: Option<Unproven>,
}

/// Why a [`Solution`] is not proven optimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unproven {
    /// The leaf that sets the peak has more buffers (or pairs of buffers alive together) than
    /// the exact search takes: it got heuristics and the improvement search, which prove
    /// nothing.
    LeafTooLarge,
    /// The caller's stop condition (`Budget::stop`: the CLI's `--time-limit`, the C API's
    /// `time_limit_ms`) ended the search first.
    TimeLimit,
    /// The node budget (`Budget::max_nodes`) ran out first.
    NodeLimit,
    /// With a capacity, the search stops at the first plan that fits.
    CapacityMet,
    /// No plan was searched for: [`greedy_by_size`](super::greedy_by_size) is a heuristic
    /// only.
    HeuristicOnly,
}

impl Unproven {
    /// A stable snake-case name (`"leaf_too_large"`, `"time_limit"`, `"node_limit"`,
    /// `"capacity_met"`, `"heuristic_only"`), as the CLI's JSON prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unproven::LeafTooLarge => "leaf_too_large",
            Unproven::TimeLimit => "time_limit",
            Unproven::NodeLimit => "node_limit",
            Unproven::CapacityMet => "capacity_met",
            Unproven::HeuristicOnly => "heuristic_only",
        }
    }
}

impl core::fmt::Display for Unproven {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Unproven::LeafTooLarge => "leaf too large for the exact search",
            Unproven::TimeLimit => "time limit reached",
            Unproven::NodeLimit => "node budget reached",
            Unproven::CapacityMet => "the search stops at the first plan that fits",
            Unproven::HeuristicOnly => "heuristic only",
        })
    }
}

impl Solution {
    /// The plan as [`PlacedBuffer`]s, in the problem's buffer order.
    pub fn placements(&self, problem: &Problem) -> Vec<PlacedBuffer> {
        problem
            .buffers()
            .iter()
            .zip(&self.offsets)
            .map(|(b, &offset)| PlacedBuffer {
                id: b.id.clone(),
                lower: b.lower,
                upper: b.upper,
                size: b.size,
                offset,
            })
            .collect()
    }

    /// `peak / max_load` (1.0 for an empty problem).
    pub fn ratio(&self) -> f64 {
        if self.max_load == 0 {
            1.0
        } else {
            self.peak as f64 / self.max_load as f64
        }
    }
}

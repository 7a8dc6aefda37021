//! The output: a [`Solution`] (one offset per buffer, its peak, the lower bound, whether it is
//! proven optimal) and its per-buffer view, [`PlacedBuffer`].
//!
//! Invariants of a [`Solution`] returned by the packer: `offsets.len()` is the problem's
//! number of buffers, `offsets[i]` is a multiple of buffer `i`'s alignment, no two buffers
//! alive at one moment share a byte, `peak` is the largest `offset + size` (0 for no buffers),
//! `max_load <= peak`, and `optimal` is true only when no plan has a smaller peak.

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
    /// Search nodes expanded.
    pub nodes: u64,
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

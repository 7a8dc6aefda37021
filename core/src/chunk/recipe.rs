//! The chunk training recipe, [`place_training`]: chunk-size search → [`Layout`] → one
//! iteration's [`Schedule::training`], repeated for N iterations → [`place`]. `memplan chunks`
//! and the C API's `mp_chunk_placement_new` both call it, so the two front ends plan the same
//! moves for the same model and options.
//!
//! Invariants of a [`TrainingPlacement`]: its schedule is `iterations` copies of one
//! iteration of `moments_per_iteration` moments, built from its layout; its placement is
//! [`place`]'s output for the layout's chunk sizes and that schedule.

use alloc::vec::Vec;

use super::error::ChunkError;
use super::layout::{Layout, SizeChoice, search_chunk_size};
use super::model::Tensor;
use super::placement::{Placement, PlacementOptions, place};
use super::schedule::Schedule;

/// Options of [`place_training`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingOptions {
    /// Chunk capacity in elements; `None`: the least-waste capacity between the largest tensor
    /// and twice it ([`search_chunk_size`]).
    pub chunk_numel: Option<u64>,
    /// Device bytes taken by non-model data (activations, workspace) at every moment.
    pub non_model: u64,
    /// Training iterations to plan (at least 1); every chunk starts off the device.
    pub iterations: u64,
    /// Tier capacities, eviction policy and prefetch.
    pub placement: PlacementOptions,
}

/// The result of [`place_training`]: the layout, the chunk size chosen, the schedule of all
/// iterations and the placement. See the module docs for the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingPlacement {
    layout: Layout,
    size_choice: Option<SizeChoice>,
    moments_per_iteration: usize,
    iterations: u64,
    schedule: Schedule,
    placement: Placement,
}

impl TrainingPlacement {
    /// The tensors' layout into chunks.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The size search's answer, or `None` when the options fixed the chunk size.
    pub fn size_choice(&self) -> Option<SizeChoice> {
        self.size_choice
    }

    /// Moments of one training iteration.
    pub fn moments_per_iteration(&self) -> usize {
        self.moments_per_iteration
    }

    /// Iterations planned.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Moments of all iterations (`moments_per_iteration × iterations`).
    pub fn moments(&self) -> u64 {
        self.schedule.moments.len() as u64
    }

    /// The schedule of all iterations, as placed (for an executor).
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The placement: initial tiers, moves and byte counts.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Byte size of every chunk, indexed by [`ChunkId::index`](super::model::ChunkId::index).
    pub fn chunk_sizes(&self) -> Vec<u64> {
        self.layout.chunk_sizes()
    }

    /// Bytes moved during the last iteration (moves at its moments, prefetches issued at its
    /// first moment included), `bytes[from][to]` by tier index: the steady state once the
    /// first iteration has warmed the device.
    pub fn last_iteration_bytes(&self) -> [[u64; 3]; 3] {
        // Cannot overflow: the schedule has at most `u32::MAX` moments (checked in `repeat`).
        let start = (self.moments_per_iteration as u64 * (self.iterations - 1)) as u32;
        let mut last = [[0u64; 3]; 3];
        for m in self.placement.moves.iter().filter(|m| m.moment >= start) {
            last[m.from as usize][m.to as usize] += m.bytes;
        }
        last
    }
}

/// Plans chunk placement for `options.iterations` training iterations of `tensors`: chooses
/// the chunk size (unless given), lays the tensors out, derives one iteration's schedule
/// (forward and backward moments from the tensors' uses with `options.non_model` bytes each,
/// then one optimizer moment per position), repeats it, and places the chunks.
///
/// # Errors
/// Checked in this order: [`ChunkError::ZeroIterations`]; the size search's and
/// [`Layout::new`]'s errors (no tensors, a zero chunk size, bad tensors, a tensor larger than
/// the chunk, sizes past `u64`); [`ChunkError::Overflow`] when all iterations together have
/// more than `u32::MAX` moments; then [`place`]'s errors (a tier too small).
///
/// # Complexity
/// The size search (O(n² log hi) for n tensors in the worst case, when searching), then O(M · (A + D · E)) for
/// the placement of M moments (see [`place`]).
pub fn place_training(
    tensors: &[Tensor],
    options: &TrainingOptions,
) -> Result<TrainingPlacement, ChunkError> {
    if options.iterations == 0 {
        return Err(ChunkError::ZeroIterations);
    }
    let (chunk_numel, size_choice) = match options.chunk_numel {
        Some(n) => (n, None),
        None => {
            let biggest = tensors.iter().map(|t| t.numel).max().unwrap_or(1).max(1);
            let choice = search_chunk_size(tensors, biggest, biggest.saturating_mul(2))?;
            (choice.chunk_numel, Some(choice))
        }
    };
    let layout = Layout::new(tensors, chunk_numel)?;
    let one = Schedule::training(&layout, tensors, |_| options.non_model)?;
    let moments_per_iteration = one.moments.len();
    let schedule = one.repeat(options.iterations)?;
    let placement = place(&layout.chunk_sizes(), &schedule, options.placement)?;
    Ok(TrainingPlacement {
        layout,
        size_choice,
        moments_per_iteration,
        iterations: options.iterations,
        schedule,
        placement,
    })
}

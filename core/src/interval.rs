//! Buffers with lifetimes, the max-load lower bound, and the packer.
//!
//! A [`Problem`] is a list of [`Buffer`]s, each alive over the half-open interval
//! `[lower, upper)` and needing `size` bytes at an offset that is a multiple of its
//! `alignment`. A plan gives every buffer an offset so that two buffers whose lifetimes
//! intersect never share a byte. Its *peak* is the largest `offset + size`; no plan can beat the
//! *max load*, the largest total size of buffers alive at one moment.
//!
//! [`pack`] first builds plans with fast greedy heuristics, then improves on the best with an
//! exact branch-and-bound search under a [`Budget`]. See `doc/PLANNER.md` for the design.
//!
//! Representation invariants kept by [`Problem`]: every buffer has `size > 0`,
//! `lower < upper`, a power-of-two `alignment`, a unique `id`, and the sum of all sizes (plus
//! the alignment slack of each) fits in `u64`, so no offset computed by the packer overflows.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// One buffer to place: an id, a lifetime `[lower, upper)` and a size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Buffer {
    /// Caller's name for the buffer; unique within a [`Problem`].
    pub id: String,
    /// First moment the buffer is alive (inclusive).
    pub lower: u64,
    /// First moment the buffer is no longer alive (exclusive); `upper > lower`.
    pub upper: u64,
    /// Bytes the buffer needs; `size > 0`.
    pub size: u64,
    /// The buffer's offset must be a multiple of this power of two (1 means no constraint).
    pub alignment: u64,
}

impl Buffer {
    /// A buffer with no alignment constraint (alignment 1).
    ///
    /// # Examples
    /// ```
    /// let b = memplan_core::Buffer::new("x", 0, 3, 4);
    /// assert_eq!(b.alignment, 1);
    /// ```
    pub fn new(id: impl Into<String>, lower: u64, upper: u64, size: u64) -> Self {
        Buffer {
            id: id.into(),
            lower,
            upper,
            size,
            alignment: 1,
        }
    }

    /// The same buffer with its offset required to be a multiple of `alignment`.
    pub fn with_alignment(mut self, alignment: u64) -> Self {
        self.alignment = alignment;
        self
    }

    /// True when the two lifetimes share a moment (half-open intervals).
    pub fn overlaps_in_time(&self, other: &Buffer) -> bool {
        self.lower < other.upper && other.lower < self.upper
    }
}

/// A validated set of buffers to plan. See the module docs for its invariants.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    buffers: Vec<Buffer>,
    ids: hashbrown::HashMap<String, u32>,
    /// Sum of `size + alignment - 1` over all buffers: no offset ever exceeds it.
    total: u64,
}

impl Problem {
    /// An empty problem.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a problem from buffers, validating each (see [`Problem::push`]).
    ///
    /// # Errors
    /// The first invalid buffer's error.
    pub fn from_buffers(buffers: impl IntoIterator<Item = Buffer>) -> Result<Self> {
        let mut p = Problem::new();
        for b in buffers {
            p.push(b)?;
        }
        Ok(p)
    }

    /// Adds a buffer and returns its index (its position in [`Problem::buffers`]).
    ///
    /// # Errors
    /// [`Error::ZeroSize`], [`Error::EmptyLifetime`], [`Error::BadAlignment`],
    /// [`Error::DuplicateId`], or [`Error::Overflow`] when the sizes no longer fit in `u64`
    /// (or the number of buffers exceeds `u32::MAX`). On error the problem is unchanged.
    pub fn push(&mut self, b: Buffer) -> Result<usize> {
        if b.size == 0 {
            return Err(Error::ZeroSize { id: b.id });
        }
        if b.upper <= b.lower {
            return Err(Error::EmptyLifetime {
                id: b.id,
                lower: b.lower,
                upper: b.upper,
            });
        }
        if !b.alignment.is_power_of_two() {
            return Err(Error::BadAlignment {
                id: b.id,
                alignment: b.alignment,
            });
        }
        if self.ids.contains_key(&b.id) {
            return Err(Error::DuplicateId { id: b.id });
        }
        let total = b
            .size
            .checked_add(b.alignment - 1)
            .and_then(|x| x.checked_add(self.total));
        let (Some(total), Ok(index)) = (total, u32::try_from(self.buffers.len())) else {
            return Err(Error::Overflow { id: b.id });
        };
        self.total = total;
        self.ids.insert(b.id.clone(), index);
        self.buffers.push(b);
        Ok(index as usize)
    }

    /// The buffers, in the order they were added.
    pub fn buffers(&self) -> &[Buffer] {
        &self.buffers
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// True when there are no buffers.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// Index of the buffer with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.get(id).map(|&i| i as usize)
    }

    /// The max-load lower bound: the largest total size of buffers alive at one moment.
    ///
    /// # Complexity
    /// O(n log n).
    pub fn max_load(&self) -> u64 {
        max_load(&self.buffers)
    }
}

/// The largest total size of buffers alive at one moment (0 for no buffers).
///
/// Saturates at `u64::MAX` instead of overflowing (a validated [`Problem`] never does).
pub fn max_load(buffers: &[Buffer]) -> u64 {
    max_load_of(buffers.iter().map(|b| (b.lower, b.upper, b.size)))
}

/// [`max_load`] over `(lower, upper, size)` triples.
pub(crate) fn max_load_of(lifetimes: impl Iterator<Item = (u64, u64, u64)>) -> u64 {
    let mut events: Vec<(u64, bool, u64)> = Vec::new();
    for (lower, upper, size) in lifetimes {
        // Ends sort before starts at the same moment (`false < true`): half-open lifetimes.
        events.push((lower, true, size));
        events.push((upper, false, size));
    }
    events.sort_unstable();
    let (mut live, mut best) = (0u64, 0u64);
    for (_, start, size) in events {
        if start {
            live = live.saturating_add(size);
            best = best.max(live);
        } else {
            live = live.saturating_sub(size);
        }
    }
    best
}

/// Where a buffer went: the buffer as planned and its offset. [`crate::check::verify`]
/// compares these against the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
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

/// How much search the packer may do beyond its heuristics.
///
/// The search stops at whichever limit comes first. With neither set, it runs until it proves
/// the best plan optimal — which may take a very long time on hard instances.
#[derive(Default)]
pub struct Budget<'a> {
    /// Most search nodes to expand (deterministic: the same input and the same node budget
    /// give the same plan). `Some(0)` means heuristics only.
    pub max_nodes: Option<u64>,
    /// Called now and then during the search; returning `true` stops it (e.g. a deadline read
    /// from a clock the caller owns, since `core` has none). Plans then depend on timing.
    pub stop: Option<&'a mut dyn FnMut() -> bool>,
}

impl core::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Budget")
            .field("max_nodes", &self.max_nodes)
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// Options for [`pack`].
#[derive(Debug, Default)]
pub struct SolveOptions<'a> {
    /// When set, the packer stops as soon as a plan with peak at most this many bytes is
    /// found, and fails with [`Error::CapacityExceeded`] when it cannot find one.
    pub capacity: Option<u64>,
    /// Search limits.
    pub budget: Budget<'a>,
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
    /// The plan as [`Placement`]s, in the problem's buffer order.
    pub fn placements(&self, problem: &Problem) -> Vec<Placement> {
        problem
            .buffers()
            .iter()
            .zip(&self.offsets)
            .map(|(b, &offset)| Placement {
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
/// use memplan_core::{pack, Buffer, Problem, SolveOptions};
/// let p = Problem::from_buffers([
///     Buffer::new("a", 0, 2, 4),
///     Buffer::new("b", 1, 3, 4),
///     Buffer::new("c", 2, 4, 4),
/// ])?;
/// let s = pack(&p, SolveOptions::default())?;
/// assert_eq!(s.peak, 8);
/// assert!(s.optimal);
/// memplan_core::check::verify(p.buffers(), &s.placements(&p), None).unwrap();
/// # Ok::<(), memplan_core::Error>(())
/// ```
pub fn pack(problem: &Problem, options: SolveOptions<'_>) -> Result<Solution> {
    crate::internal::pack::solve(problem, options)
}

/// The common baseline heuristic, greedy by size (as in TFLite and XLA): buffers in decreasing
/// size order, each at the lowest offset where it fits among those already placed. Provided
/// for comparisons; [`pack`] is never worse than it on problems without alignment constraints.
///
/// # Complexity
/// O(n²) in the worst case.
pub fn greedy_by_size(problem: &Problem) -> Solution {
    crate::internal::pack::greedy_by_size(problem)
}

//! The input: [`Buffer`]s with lifetimes, the validated [`Problem`], and the max-load lower
//! bound.
//!
//! Representation invariants kept by [`Problem`]: every buffer has `size > 0`,
//! `lower < upper`, a power-of-two `alignment`, a unique `id` (`ids` maps each id to its
//! index in `buffers`, and there are at most `u32::MAX` buffers), and `total`, the sum of
//! `size + alignment - 1` over all buffers, fits in `u64`, so no offset computed by the packer
//! overflows.

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

    /// The buffers as the packer sees them, in the same order.
    pub(super) fn items(&self) -> Vec<Item> {
        self.buffers
            .iter()
            .map(|b| Item {
                lower: b.lower,
                upper: b.upper,
                size: b.size,
                align: b.alignment,
            })
            .collect()
    }
}

/// A buffer as the packer sees it: its lifetime `[lower, upper)`, size and alignment, without
/// the id. Its index in the packer's slices is the buffer's index in [`Problem::buffers`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Item {
    pub(super) lower: u64,
    pub(super) upper: u64,
    pub(super) size: u64,
    pub(super) align: u64,
}

impl Item {
    /// True when the two lifetimes share a moment.
    pub(super) fn overlaps(&self, o: &Item) -> bool {
        self.lower < o.upper && o.lower < self.upper
    }
}

/// The largest total size of buffers alive at one moment (0 for no buffers).
///
/// Saturates at `u64::MAX` instead of overflowing (a validated [`Problem`] never does).
pub fn max_load(buffers: &[Buffer]) -> u64 {
    max_load_of(buffers.iter().map(|b| (b.lower, b.upper, b.size)))
}

/// [`max_load`] over `(lower, upper, size)` triples.
pub(super) fn max_load_of(lifetimes: impl Iterator<Item = (u64, u64, u64)>) -> u64 {
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

//! The live-overlap sweep: the one check, shared by every oracle, that no two blocks alive at
//! the same moment share a byte.
//!
//! Events are sorted by time, ends before starts at equal times (lifetimes are half-open), then
//! by index. The blocks alive at the current moment are kept in a `BTreeMap` ordered by
//! `(offset, index)`; since they never overlap (the sweep stops at the first overlap), a
//! starting block needs comparing only with its two neighbours in that order.
//!
//! # Complexity
//! O(n log n) time, O(n) memory.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A block of memory `[offset, offset + size)` alive over the moments `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First moment the block is alive.
    pub start: u64,
    /// First moment after `start` it is no longer alive (exclusive).
    pub end: u64,
    /// Its first byte.
    pub offset: u64,
    /// Its length in bytes. `offset + size` must not overflow: callers check that first.
    pub size: u64,
}

/// Two blocks alive at the same moment that share memory, as indices into the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collision {
    /// The block that was alive already.
    pub live: usize,
    /// The block whose start collided with it.
    pub new: usize,
    /// True when `live` is the lower of the two in its (offset, index) order.
    pub live_is_below: bool,
}

/// The first [`Collision`] the sweep meets, or `None` when no two spans alive at the same
/// moment share memory.
///
/// # Examples
/// ```
/// use memplan_core::check::sweep::{Span, first_collision};
/// let a = Span { start: 0, end: 2, offset: 0, size: 4 };
/// let b = Span { start: 1, end: 3, offset: 2, size: 4 };
/// let c = Span { start: 2, end: 4, offset: 0, size: 2 }; // starts as `a` ends
/// assert!(first_collision(&[a, c]).is_none());
/// assert_eq!(first_collision(&[a, b]).map(|x| (x.live, x.new)), Some((0, 1)));
/// ```
pub fn first_collision(spans: &[Span]) -> Option<Collision> {
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(spans.len().saturating_mul(2));
    for (i, s) in spans.iter().enumerate() {
        events.push((s.start, 1, i));
        events.push((s.end, 0, i));
    }
    events.sort_unstable();
    let mut live: BTreeMap<(u64, usize), u64> = BTreeMap::new();
    for (_, kind, i) in events {
        let s = &spans[i];
        if kind == 0 {
            live.remove(&(s.offset, i));
            continue;
        }
        let end = s.offset.saturating_add(s.size);
        if let Some((&(_, j), &prev_end)) = live.range(..(s.offset, i)).next_back() {
            if prev_end > s.offset {
                return Some(Collision {
                    live: j,
                    new: i,
                    live_is_below: true,
                });
            }
        }
        if let Some((&(next_offset, j), _)) = live.range((s.offset, i)..).next() {
            if next_offset < end {
                return Some(Collision {
                    live: j,
                    new: i,
                    live_is_below: false,
                });
            }
        }
        live.insert((s.offset, i), end);
    }
    None
}

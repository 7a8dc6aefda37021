//! [`GuidedCounters`]: what the guided allocator counts (a leaf: the [`Allocator`] trait
//! reports it through `guided_counters`).
//!
//! [`Allocator`]: crate::allocator::Allocator

/// Counters of a [`GuidedAllocator`](super::GuidedAllocator).
///
/// Invariants (checked by `check_invariants` in debug builds): `misses_in_room <= misses`,
/// `growths <= misses`, `replans <= laps`, `guided_laps <= laps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuidedCounters {
    /// Requests served from a slot.
    pub hits: u64,
    /// Requests not served from a slot.
    pub misses: u64,
    /// Misses placed where the plan leaves room (the rest took a planned slot's place or grew
    /// the arena).
    pub misses_in_room: u64,
    /// Times a miss grew the arena.
    pub growths: u64,
    /// Times the iteration was re-planned.
    pub replans: u64,
    /// Laps of the iteration begun (the first one when the prologue ends).
    pub laps: u64,
    /// Laps served by guided best fit because the lap before did not match the plan.
    pub guided_laps: u64,
}

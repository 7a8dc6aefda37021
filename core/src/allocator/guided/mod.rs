//! The plan-guided allocator (allocator name `"guided"`).
//!
//! [`Plan::from_trace`](crate::plan::Plan::from_trace) turns a profiled trace into a
//! [`Plan`](crate::plan::Plan): a *prologue* (warm-up and the first iteration, including the
//! allocations never freed) and one steady-state *iteration*. [`GuidedAllocator`] serves
//! requests in order from that plan.
//!
//! # Serving
//! - The prologue's slots are served first, then the iteration's, lap after lap. A request is
//!   compared with the next expected slot of the current list and, to survive a skipped or
//!   extra request, the [`LOOKAHEAD`]` - 1` slots after it (wrapping at the end of a lap). The
//!   first slot on the same stream, not occupied, whose memory is clear of every live
//!   allocation the plan does not protect (below), and whose *room* holds the request (a
//!   slot after the expected one: which the request fills at least half of, without room) is
//!   a **hit**: the request gets `base + slot.offset` and the cursor moves past that slot.
//! - A slot's *room* is the slot plus the space above it that no other slot uses while it is
//!   planned to be alive (precomputed). A request larger than its slot — a longer sequence, a
//!   busier expert — still hits when it fits that room.
//! - Anything else is a **miss**. When the next expected slot is on the same stream and the
//!   request is within a factor of 4 of it, the request is taken to be that slot's request
//!   with another size: the cursor moves past the slot and the size is remembered for
//!   re-planning. A miss is placed in the arena, in order of preference:
//!   1. where the plan leaves room at that moment: for a request taken to be slot `c`'s, the
//!      best-fitting gap clear of the slots still to come that are planned to be alive with
//!      `c` (and of every live allocation); for another request, above the highest address
//!      any slot still to come this lap will use (precomputed per position);
//!   2. else the best-fitting gap between live allocations, even where a slot still to come
//!      was planned (that slot's request will then miss in turn: in the worst case the arena
//!      is served best fit, like memplan's online allocator);
//!   3. else at the top of the arena, which grows (in pages; a reservation each time) up to
//!      the capacity.
//! - `free` releases the slot or the in-arena block.
//!
//! # Guided laps
//! Fixed offsets only pay while requests match the plan. When fewer than 95 % of a lap's
//! requests came in order and fill 7/8 to all of their slot (or, within a lap, once a quarter
//! of at least 16 requests missed), the next lap (the rest of this one) is *guided*: no hits;
//! each request is still matched to its position (for the counters and re-planning) and
//! placed best fit between live allocations — except a request planned to be short-lived
//! ([`SHORT_LIVED`]), which goes to the highest gap that holds it. The lap after a guided
//! one is served from the plan again if it matched.
//!
//! # Unprotected allocations
//! The plan guarantees that slots alive together do not overlap. A live allocation is
//! *protected* while it sits in its slot (room included) within its planned lifetime, or is
//! persistent. Every other live allocation in the arena — a planned one freed later than
//! planned or carried over into the next lap (*overdue*), a prologue allocation still live
//! when the laps start, an in-arena miss — is kept in an ordered map, and a hit is checked
//! against its neighbours there, so no hit ever overlaps live memory.
//!
//! # Re-planning
//! At the end of a lap that had more than `max(1, lap / 100)` misses, when some slot saw a
//! larger request than it holds, the iteration is re-planned from what the laps showed: each
//! slot takes the largest size seen at its position, and the slots are placed again (largest
//! first, each at the lowest offset clear of the persistent slots and of the slots already
//! placed that are alive with it). Live allocations are not moved: persistent ones are avoided
//! by construction, the rest are unprotected from then on and hits check against them. The
//! arena grows when the new iteration needs more (never beyond the capacity; then the old
//! plan stays).
//!
//! # Complexity
//! A planned request (hit) costs O(1) amortised when no unprotected allocation is live: a
//! bounded scan of [`LOOKAHEAD`] slots, one hash-map insert, and advancing a pointer over the
//! slots sorted by end, which moves at most once over every slot per lap (a lap has at least
//! `len / LOOKAHEAD` hits). With `k` unprotected allocations the check adds O(log k). The gap
//! searches of a miss read an ordered multiset of the `m` live arena ranges (persistent
//! slots, unprotected allocations, occupied slots), which misses and frees keep up to date
//! in O(log m) each; a hit only marks it stale, and the first miss after a hit rebuilds it in
//! O(m log m). A miss then costs O(m) (one pass over the gaps), plus, for a request taken to
//! be slot `c`'s outside guided laps, O(n + p log p) for the `p` slots still to come that
//! are alive with `c` (found by a scan of the slots after `c`). `free` is O(1) expected (plus
//! O(log k) when unprotected, and O(log m) while the index is kept, from a miss to the next
//! hit). Building the allocator and re-planning cost O(n²) in the slots of a list (the
//! rooms, and the greedy placement, which merges the slots placed, kept in order, with the
//! persistent ones instead of sorting them for every slot).
//!
//! # Stats
//! `allocated` is the requested bytes of live allocations; `reserved` is the arena rounded up
//! to whole pages, counted from the first request on (the arena only grows).
//!
//! # Representation invariants
//! Checked by `check_invariants` at the end of `new`, `alloc` and `free` in debug builds:
//!
//! 1. Every live allocation sits at `base + off`, inside the arena, takes its request rounded
//!    up to [`ALIGN`](crate::allocator::layout::ALIGN) (at least that), and overlaps no other
//!    live allocation.
//! 2. A live allocation in a slot is that slot's occupant, and every occupant is live in its
//!    slot; an in-arena miss is unprotected; every unprotected range is a live allocation's;
//!    while the index of live ranges is valid it holds exactly the live ranges of the list
//!    served.
//! 3. `allocated` is the sum of the live requests; the peaks are at least the current
//!    values; once started, the reserved pages are within the capacity.
//! 4. Each lane has one room, free-above height, `by_end` entry and occupant per slot of its
//!    list; rooms hold their slots; `by_end` is sorted by `(end, index)`; `occupied` lists
//!    exactly the occupied slots and `occupied_at` indexes it.
//! 5. The cursor is inside the list served; the prologue is served only while it has slots,
//!    and no lap slot is occupied during it; the blockers are the persistent slots.
//! 6. `misses_in_room <= misses`, `growths <= misses`, `replans <= laps`,
//!    `guided_laps <= laps`, and the arena was mapped `1 + growths` times.
//!
//! # Files
//! Each file is one concept of the above; all of them build on `state.rs`, and none imports
//! this file.
//!
//! - `state.rs`: [`GuidedConfig`], the [`GuidedAllocator`] fields, construction, stats.
//! - `counters.rs`: [`GuidedCounters`].
//! - `lane.rs`: per-list serving state (rooms, free-above heights, occupants).
//! - `serve.rs`: hits and misses ("Serving"), and the [`Allocator`](crate::allocator::Allocator)
//!   impl.
//! - `laps.rs`: the prologue's end, laps, guided laps.
//! - `unprotected.rs`: unprotected allocations and the index of live ranges.
//! - `gaps.rs`: the gap searches that place misses.
//! - `replan.rs`: re-planning.
//! - `invariants.rs`: `check_invariants`.

pub(crate) mod counters;
mod gaps;
mod invariants;
mod lane;
mod laps;
mod replan;
mod serve;
mod state;
mod unprotected;

#[cfg(test)]
mod tests;

pub use counters::GuidedCounters;
pub use laps::SHORT_LIVED;
pub use serve::LOOKAHEAD;
pub use state::{GuidedAllocator, GuidedConfig};

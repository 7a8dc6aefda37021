//! A plan-guided allocator (allocator name `"memplan-plan"`) and the plan builder.
//!
//! [`build_plan`] turns the lifetimes of one steady-state iteration into a [`Plan`]:
//! persistent allocations stacked at the bottom of the arena, per-iteration allocations packed
//! above them with [`crate::pack`]. [`PlannedAllocator`] then serves requests in order from
//! that plan and sends every request the plan did not foresee to a fallback
//! [`OnlineAllocator`] whose range starts above the arena.
//!
//! # Serving
//! - Persistent slots are matched first, in order (a cursor that never wraps).
//! - Otherwise the request is compared with the next expected iteration slot and, to survive
//!   a skipped or extra request, the [`LOOKAHEAD`]` - 1` slots after it (wrapping at the end of
//!   the iteration). The first slot with `size <= slot.size`, the same stream, and whose
//!   memory is not occupied by a live allocation is a *hit*: the request gets
//!   `arena_base + slot.offset` and the cursor moves past that slot.
//! - Anything else is a *miss*, served by the fallback; the cursor does not move.
//! - `free` releases the slot (or the fallback block).
//!
//! **No re-planning** in this version: the plan is fixed for the allocator's life, so a
//! workload that drifts from it is served more and more by the fallback.
//!
//! # Safety of hits
//! The plan guarantees that slots alive together (by request index) do not overlap. A live
//! planned allocation whose slot's planned end has passed (freed late, or carried over from a
//! previous lap of the iteration) is *overdue*; only overdue allocations can collide with a
//! new hit. They are kept in an ordered map, and a hit is checked against its neighbours there.
//!
//! # Complexity
//! A planned request (hit) costs O(1) amortised when nothing is overdue: a bounded scan of
//! [`LOOKAHEAD`] slots, one hash-map insert, and advancing a pointer over the slots sorted by
//! end, which moves at most once over every slot per lap (a lap has at least
//! `len / LOOKAHEAD` hits). With `k` overdue allocations the collision check adds O(log k).
//! A miss costs the fallback's O(log n). `free` of a planned address is O(1) expected
//! (O(log k) when it was overdue).
//!
//! # Stats
//! `allocated` is the requested bytes of live allocations (planned and fallback); `reserved`
//! is the whole arena, counted from the first request on, plus the fallback's reserved bytes.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::online::{ALIGN, OnlineAllocator, OnlineConfig};
use super::{Addr, AllocError, AllocStats, Allocator};
use crate::lifetime::Lifetime;
use crate::plan::{Plan, Slot};
use crate::{Budget, Buffer, Error, Problem, SolveOptions, pack};

/// How many iteration slots, from the next expected one on, a request is compared with.
pub const LOOKAHEAD: usize = 4;

/// `x` rounded up to a multiple of the power of two `g`; `None` on overflow.
fn round_up(x: u64, g: u64) -> Option<u64> {
    Some(x.checked_add(g - 1)? & !(g - 1))
}

/// Builds the plan of one iteration.
///
/// `lifetimes` are the allocations of one iteration (e.g. those of
/// [`crate::lifetime::analyze`] with `iteration == Some(k)`) plus the persistent ones
/// (`free_event == None`). Request indices are event indices relative to the earliest `Alloc`
/// event of a non-persistent lifetime; a slot lives over `[alloc, free)` in those indices.
/// Sizes are rounded up to [`ALIGN`] (at least [`ALIGN`] bytes) and offsets are
/// [`ALIGN`]-aligned. Persistent slots are stacked from offset 0 in the given order; the
/// per-iteration slots are packed above them with [`crate::pack`] under a node budget of
/// `max_nodes` (deterministic), and come out in request order.
///
/// # Errors
/// [`Error::Overflow`] when sizes overflow `u64` or request indices do not fit `u32`, and any
/// error of [`crate::pack`].
pub fn build_plan(lifetimes: &[Lifetime], max_nodes: u64) -> Result<Plan, Error> {
    let overflow = |l: &Lifetime| Error::Overflow {
        id: format!("{}", l.alloc_index),
    };
    let mut persistent = Vec::new();
    let mut bottom = 0u64;
    let mut temp: Vec<&Lifetime> = Vec::new();
    for l in lifetimes {
        if l.free_event.is_none() {
            let size = round_up(l.size.max(1), ALIGN).ok_or_else(|| overflow(l))?;
            persistent.push(Slot {
                size,
                stream: l.stream,
                offset: bottom,
                start: 0,
                end: u32::MAX,
            });
            bottom = bottom.checked_add(size).ok_or_else(|| overflow(l))?;
        } else {
            temp.push(l);
        }
    }
    temp.sort_by_key(|l| l.alloc_event);
    let origin = temp.first().map_or(0, |l| l.alloc_event);
    let mut problem = Problem::new();
    let mut slots = Vec::with_capacity(temp.len());
    for (i, l) in temp.iter().enumerate() {
        let free = l.free_event.unwrap_or(l.alloc_event + 1);
        let start = u32::try_from(l.alloc_event - origin).map_err(|_| overflow(l))?;
        let end = u32::try_from(free - origin).map_err(|_| overflow(l))?;
        let size = round_up(l.size.max(1), ALIGN).ok_or_else(|| overflow(l))?;
        problem.push(
            Buffer::new(format!("{i}"), u64::from(start), u64::from(end), size)
                .with_alignment(ALIGN),
        )?;
        slots.push(Slot {
            size,
            stream: l.stream,
            offset: 0,
            start,
            end,
        });
    }
    let mut arena_size = bottom;
    if !problem.is_empty() {
        let solution = pack(
            &problem,
            SolveOptions {
                capacity: None,
                budget: Budget {
                    max_nodes: Some(max_nodes),
                    stop: None,
                },
            },
        )?;
        for (s, &o) in slots.iter_mut().zip(&solution.offsets) {
            s.offset = bottom
                .checked_add(o)
                .ok_or(Error::Overflow { id: format!("{o}") })?;
        }
        arena_size = bottom.checked_add(solution.peak).ok_or(Error::Overflow {
            id: format!("{}", solution.peak),
        })?;
    }
    let plan = Plan {
        arena_size,
        persistent,
        iteration: slots,
    };
    debug_assert!(plan.validate().is_ok());
    Ok(plan)
}

/// What a live planned address holds.
#[derive(Debug, Clone, Copy)]
struct Live {
    /// `None` for a persistent slot, `Some(i)` for `plan.iteration[i]`.
    slot: Option<usize>,
    /// Bytes requested.
    requested: u64,
}

/// Serves requests from a [`Plan`], with an [`OnlineAllocator`] fallback above the arena.
/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct PlannedAllocator {
    plan: Plan,
    /// Address of arena offset 0.
    base: Addr,
    /// Next persistent slot to match.
    p_cursor: usize,
    /// Next expected iteration slot.
    cursor: usize,
    /// Iteration slot indices sorted by `(end, index)`.
    by_end: Vec<usize>,
    /// Position in `by_end`: every slot before it has had its planned end pass this lap.
    end_ptr: usize,
    /// Largest request index `by_end` has been advanced to this lap (`u32::MAX` after a lap
    /// ends): a slot hit with `end <= now` is overdue at once.
    now: u32,
    /// Iteration slot is occupied by a live allocation.
    live_slot: Vec<bool>,
    /// Iteration slot's live allocation is overdue (then it is in `overdue`).
    is_overdue: Vec<bool>,
    /// Overdue live allocations: arena offset -> (end offset, slot).
    overdue: BTreeMap<u64, (u64, usize)>,
    /// Live planned allocations by address.
    live: hashbrown::HashMap<Addr, Live>,
    fallback: OnlineAllocator,
    planned_allocated: u64,
    started: bool,
    hits: u64,
    misses: u64,
    peak_allocated: u64,
    peak_reserved: u64,
}

impl PlannedAllocator {
    /// An allocator serving `plan` with its arena at `base`; the fallback starts at
    /// `base + arena_size` rounded up to `fallback.page_size` (its `base` is replaced).
    ///
    /// # Panics
    /// If the plan is invalid ([`Plan::validate`]), the fallback's page size is not a power of
    /// two at least [`ALIGN`], or the addresses overflow.
    pub fn new(plan: Plan, base: Addr, fallback: OnlineConfig) -> Self {
        plan.validate().expect("a valid plan");
        let end = base.checked_add(plan.arena_size).expect("arena fits u64");
        let fb_base = round_up(end, fallback.page_size).expect("fallback base fits u64");
        let mut by_end: Vec<usize> = (0..plan.iteration.len()).collect();
        by_end.sort_by_key(|&i| (plan.iteration[i].end, i));
        let n = plan.iteration.len();
        PlannedAllocator {
            plan,
            base,
            p_cursor: 0,
            cursor: 0,
            by_end,
            end_ptr: 0,
            now: 0,
            live_slot: vec![false; n],
            is_overdue: vec![false; n],
            overdue: BTreeMap::new(),
            live: hashbrown::HashMap::new(),
            fallback: OnlineAllocator::new(OnlineConfig {
                base: fb_base,
                ..fallback
            }),
            planned_allocated: 0,
            started: false,
            hits: 0,
            misses: 0,
            peak_allocated: 0,
            peak_reserved: 0,
        }
    }

    /// The plan served.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Requests served from the plan.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Requests served by the fallback.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Marks every live slot in `by_end[end_ptr..]` whose end is at most `t` (all of them for
    /// `None`) as overdue.
    fn advance_ends(&mut self, t: Option<u32>) {
        self.now = self.now.max(t.unwrap_or(u32::MAX));
        while let Some(&j) = self.by_end.get(self.end_ptr) {
            let s = self.plan.iteration[j];
            if t.is_some_and(|t| s.end > t) {
                break;
            }
            if self.live_slot[j] && !self.is_overdue[j] {
                self.is_overdue[j] = true;
                self.overdue.insert(s.offset, (s.offset + s.size, j));
            }
            self.end_ptr += 1;
        }
    }

    /// Ends a lap: every live iteration slot becomes overdue.
    fn new_lap(&mut self) {
        self.advance_ends(None);
        self.end_ptr = 0;
        self.now = 0;
    }

    /// True when `[off, off + size)` meets no overdue allocation.
    fn clear_of_overdue(&self, off: u64, size: u64) -> bool {
        if self.overdue.is_empty() {
            return true;
        }
        let before = self.overdue.range(..=off).next_back();
        let after = self.overdue.range(off..).next();
        !(before.is_some_and(|(_, &(e, _))| e > off) || after.is_some_and(|(&o, _)| o < off + size))
    }

    fn try_hit(&mut self, size: u64, stream: u32) -> Option<Addr> {
        if let Some(s) = self.plan.persistent.get(self.p_cursor) {
            if size <= s.size && stream == s.stream {
                self.p_cursor += 1;
                let addr = self.base + s.offset;
                self.live.insert(
                    addr,
                    Live {
                        slot: None,
                        requested: size,
                    },
                );
                return Some(addr);
            }
        }
        let n = self.plan.iteration.len();
        for d in 0..LOOKAHEAD.min(n) {
            let k = (self.cursor + d) % n;
            let s = self.plan.iteration[k];
            if size > s.size || stream != s.stream || self.live_slot[k] {
                continue;
            }
            if k < self.cursor {
                // A new lap: everything still live from the last one is overdue.
                self.new_lap();
            }
            self.advance_ends(Some(s.start));
            if !self.clear_of_overdue(s.offset, s.size) {
                continue;
            }
            self.cursor = (k + 1) % n;
            self.live_slot[k] = true;
            if s.end <= self.now {
                // The pointer already passed this slot's end (a failed attempt further on).
                self.is_overdue[k] = true;
                self.overdue.insert(s.offset, (s.offset + s.size, k));
            }
            if self.cursor == 0 {
                self.new_lap();
            }
            let addr = self.base + s.offset;
            self.live.insert(
                addr,
                Live {
                    slot: Some(k),
                    requested: size,
                },
            );
            return Some(addr);
        }
        None
    }

    fn update_peaks(&mut self) {
        let s = self.stats_now();
        self.peak_allocated = self.peak_allocated.max(s.allocated);
        self.peak_reserved = self.peak_reserved.max(s.reserved);
    }

    fn stats_now(&self) -> AllocStats {
        let f = self.fallback.stats();
        let arena = if self.started {
            self.plan.arena_size
        } else {
            0
        };
        let arena_seg = u64::from(self.started && arena > 0);
        AllocStats {
            allocated: self.planned_allocated + f.allocated,
            peak_allocated: 0,
            reserved: arena + f.reserved,
            peak_reserved: 0,
            segments: arena_seg + f.segments,
            reservations: arena_seg + f.reservations,
        }
    }
}

impl Allocator for PlannedAllocator {
    fn alloc(&mut self, size: u64, stream: u32) -> Result<Addr, AllocError> {
        self.started = true;
        let addr = if let Some(addr) = self.try_hit(size, stream) {
            self.hits += 1;
            self.planned_allocated += size;
            addr
        } else {
            let addr = self.fallback.alloc(size, stream)?;
            self.misses += 1;
            addr
        };
        self.update_peaks();
        Ok(addr)
    }

    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        if let Some(l) = self.live.remove(&addr) {
            self.planned_allocated -= l.requested;
            if let Some(k) = l.slot {
                self.live_slot[k] = false;
                if self.is_overdue[k] {
                    self.is_overdue[k] = false;
                    self.overdue.remove(&self.plan.iteration[k].offset);
                }
            }
            Ok(())
        } else {
            self.fallback.free(addr)
        }
    }

    fn stats(&self) -> AllocStats {
        AllocStats {
            peak_allocated: self.peak_allocated,
            peak_reserved: self.peak_reserved,
            ..self.stats_now()
        }
    }

    fn name(&self) -> &'static str {
        "memplan-plan"
    }
}

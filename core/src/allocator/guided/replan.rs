//! Re-planning: at the end of a lap with many misses, the iteration's slots take the largest
//! sizes seen and are placed again around the persistent ones (the module docs'
//! "Re-planning").

use alloc::vec::Vec;

use super::gaps::merged;
use super::lane::Lane;
use super::state::GuidedAllocator;
use crate::allocator::layout::{ALIGN, rounded};
use crate::plan::Slot;
use crate::units::round_up;

impl GuidedAllocator {
    /// Re-plans the iteration from the largest sizes seen (see the module docs).
    pub(super) fn replan(&mut self) {
        let mut slots = self.plan.iteration.clone();
        for (s, &seen) in slots.iter_mut().zip(&self.seen) {
            if let Some(r) = rounded(seen) {
                s.size = s.size.max(r);
            }
        }
        let Some(top) = place_around(&mut slots, &self.blockers) else {
            return;
        };
        // Never grow the arena for a re-plan: growth only serves requests that came. A plan
        // that does not fit the arena as it is waits for misses to grow it.
        if top > self.plan.arena_size {
            return;
        }
        self.plan.iteration = slots;
        debug_assert_eq!(self.plan.validate(), Ok(()));
        let old = core::mem::take(&mut self.iteration);
        // Live allocations stay where they are: the occupants carry over.
        self.iteration = Lane {
            occupant: old.occupant,
            occupied: old.occupied,
            occupied_at: old.occupied_at,
            ..Lane::new(
                &self.plan.iteration,
                &self.blockers,
                self.plan.arena_size,
                true,
            )
        };
        self.seen.iter_mut().for_each(|x| *x = 0);
        self.grew = false;
        self.counters.replans += 1;
    }
}

/// Places `slots` greedily, largest first (ties: earlier start, lower index), each at the
/// lowest [`ALIGN`]-aligned offset clear of `blockers` (alive throughout) and of the slots
/// already placed that are alive with it. Returns the highest end (`None` on overflow).
/// O(n²) in the slots: the slots placed are kept in order of `(offset, end)`, so each
/// placement merges them with the sorted blockers instead of sorting.
fn place_around(slots: &mut [Slot], blockers: &[(u64, u64)]) -> Option<u64> {
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| (core::cmp::Reverse(slots[i].size), slots[i].start, i));
    let mut blockers = blockers.to_vec();
    blockers.sort_unstable();
    // (offset, end, start, slot end) of the slots placed, in order.
    let mut placed: Vec<(u64, u64, u32, u32)> = Vec::with_capacity(slots.len());
    let mut top = blockers.iter().map(|&(_, e)| e).max().unwrap_or(0);
    let mut busy: Vec<(u64, u64)> = Vec::new();
    for &i in &order {
        let s = slots[i];
        busy.clear();
        busy.extend(
            placed
                .iter()
                .filter(|&&(_, _, start, end)| start < s.end && s.start < end)
                .map(|&(o, e, _, _)| (o, e)),
        );
        let mut at = 0u64;
        for (o, e) in merged(blockers.iter().copied(), &busy) {
            if o >= at.checked_add(s.size)? {
                break;
            }
            at = at.max(round_up(e, ALIGN)?);
        }
        slots[i].offset = at;
        let end = at.checked_add(s.size)?;
        top = top.max(end);
        let p = (at, end, s.start, s.end);
        let k = placed.partition_point(|&(o, e, _, _)| (o, e) <= (at, end));
        placed.insert(k, p);
    }
    Some(top)
}

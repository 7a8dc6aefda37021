//! Gap searches: where a miss goes in the arena — beside the slots still to come, above
//! them, or best fit (or highest fit) between live allocations (the module docs' "Serving",
//! misses 1 to 3).

use alloc::vec::Vec;

use super::state::{GuidedAllocator, List};
use crate::allocator::layout::ALIGN;
use crate::units::round_up;

impl GuidedAllocator {
    /// The best-fitting gap between live allocations inside the arena, or else the lowest
    /// offset above all of them (the arena then grows). O(n) in the live ranges, plus
    /// rebuilding their index after a hit.
    pub(super) fn gap_between_live(&mut self, need: u64) -> u64 {
        self.ensure_index();
        let (best, top) = best_gap(self.index.keys().copied(), need, self.plan.arena_size);
        best.unwrap_or_else(|| round_up(top, ALIGN).unwrap_or(u64::MAX))
    }

    /// The best-fitting arena gap for a request taken to be slot `c`'s (the expected one):
    /// clear of the persistent slots, of every unprotected allocation, of the list's live
    /// allocations and of every slot still to come this lap that is planned to be alive
    /// together with slot `c` (so later hits are not blocked while it lives as planned).
    /// Slots whose turn has passed without being occupied leave their range to it. The
    /// smallest gap that holds `need`, the lowest among equal ones. O(n + p log p) in the
    /// live ranges and the `p` slots to come alive with slot `c` (the scan for them may
    /// visit every slot after `c`), plus rebuilding the index of live ranges after a hit.
    pub(super) fn gap_beside(&mut self, list: List, c: usize, need: u64) -> Option<u64> {
        self.ensure_index();
        let slots = self.slots(list);
        let s = slots[c];
        let mut busy = Vec::new();
        let lane = self.lane_of(list);
        for (j, t) in slots.iter().enumerate().skip(c + 1) {
            if lane.by_start && t.start >= s.end {
                break;
            }
            if lane.occupant[j].is_none() && t.start < s.end && s.start < t.end {
                // Still to come this lap, and planned to be alive together with slot c.
                busy.push((t.offset, t.offset + t.size));
            }
        }
        busy.sort_unstable();
        let live = self.index.keys().copied();
        best_gap(merged(live, &busy), need, self.plan.arena_size).0
    }

    /// Lowest offset in `[floor, arena_size)` where `need` bytes are clear of unprotected
    /// allocations (the plan uses none of that range for the rest of the lap).
    pub(super) fn gap_above(&self, floor: u64, need: u64) -> Option<u64> {
        let arena = self.plan.arena_size;
        let mut at = round_up(floor, ALIGN)?;
        if let Some((_, &e)) = self.outside.range(..at).next_back() {
            at = at.max(e);
        }
        for (&o, &e) in self.outside.range(at..) {
            if o >= at.checked_add(need)? {
                break;
            }
            at = e;
        }
        (at.checked_add(need)? <= arena).then_some(at)
    }
}

/// The sorted ranges `a` and `b` merged into one sorted sequence.
pub(super) fn merged<'a>(
    a: impl Iterator<Item = (u64, u64)> + 'a,
    b: &'a [(u64, u64)],
) -> impl Iterator<Item = (u64, u64)> + 'a {
    let mut a = a.peekable();
    let mut b = b.iter().copied().peekable();
    core::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The best-fitting gap for `need` bytes among the sorted `busy` ranges inside `[0, arena)`
/// (the smallest that holds it, the lowest among equal ones; gaps start at [`ALIGN`]-aligned
/// offsets), and the end of the highest busy range. Repeated ranges change nothing.
pub(super) fn best_gap(
    busy: impl IntoIterator<Item = (u64, u64)>,
    need: u64,
    arena: u64,
) -> (Option<u64>, u64) {
    let mut best: Option<(u64, u64)> = None; // (gap size, offset)
    let mut consider = |at: u64, until: u64| {
        let Some(at) = round_up(at, ALIGN) else {
            return;
        };
        if until > at && until - at >= need && best.is_none_or(|(g, _)| until - at < g) {
            best = Some((until - at, at));
        }
    };
    let mut at = 0u64;
    for (o, e) in busy {
        if o > at {
            consider(at, o.min(arena));
        }
        at = at.max(e);
    }
    consider(at, arena);
    (best.map(|(_, o)| o), at)
}

/// The highest place for `need` bytes among the sorted `busy` ranges inside `[0, arena)`:
/// the end of the highest gap that holds it, aligned down. Repeated ranges change nothing.
pub(super) fn high_gap(
    busy: impl IntoIterator<Item = (u64, u64)>,
    need: u64,
    arena: u64,
) -> Option<u64> {
    let mut best = None;
    let mut at = 0u64;
    let mut consider = |at: u64, until: u64| {
        if until >= need {
            let o = (until - need) & !(ALIGN - 1);
            if o >= at {
                best = Some(o);
            }
        }
    };
    for (o, e) in busy {
        if o > at {
            consider(at, o.min(arena));
        }
        at = at.max(e);
    }
    consider(at, arena);
    best
}

//! Unprotected allocations: live allocations the plan no longer keeps apart from the slots
//! still to come (overdue, carried over, grown into their room, or in-arena misses), kept in
//! an ordered map that every hit is checked against, and the multiset index of all live
//! ranges that the gap searches read (the module docs' "Unprotected allocations").

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::state::{GuidedAllocator, List};

impl GuidedAllocator {
    /// Marks every live slot of the current list whose planned end is at most `t` (all of
    /// them for `None`) as unprotected.
    pub(super) fn advance_ends(&mut self, t: Option<u32>) {
        self.now = self.now.max(t.unwrap_or(u32::MAX));
        let list = self.list;
        loop {
            let lane = self.lane_of(list);
            let Some(&j) = lane.by_end.get(self.end_ptr) else {
                break;
            };
            let s = self.slots(list)[j];
            if t.is_some_and(|t| s.end > t) {
                break;
            }
            if let Some((off, end)) = lane.occupant[j] {
                // Persistent prologue slots stay where every lap expects them; an iteration
                // slot is never persistent, whatever its end.
                if list == List::Iteration || !s.is_persistent() {
                    self.outside_insert(off, end);
                }
            }
            self.end_ptr += 1;
        }
    }

    /// True when `[off, end)` meets no unprotected allocation.
    pub(super) fn clear_of_outside(&self, off: u64, end: u64) -> bool {
        if self.outside.is_empty() {
            return true;
        }
        let before = self.outside.range(..=off).next_back();
        let after = self.outside.range(off..).next();
        !(before.is_some_and(|(_, &e)| e > off) || after.is_some_and(|(&o, _)| o < end))
    }

    /// Records an unprotected allocation (replacing any at the same offset), keeping the
    /// index of live ranges in step. O(log n).
    pub(super) fn outside_insert(&mut self, off: u64, end: u64) {
        let old = self.outside.insert(off, end);
        if self.index_valid {
            if let Some(old) = old {
                self.index_remove(off, old);
            }
            *self.index.entry((off, end)).or_insert(0) += 1;
        }
    }

    /// Takes one `(off, end)` out of the index of live ranges. O(log n).
    pub(super) fn index_remove(&mut self, off: u64, end: u64) {
        if let Some(n) = self.index.get_mut(&(off, end)) {
            *n -= 1;
            if *n == 0 {
                self.index.remove(&(off, end));
            }
        } else {
            debug_assert!(false, "index of live ranges out of step");
        }
    }

    /// Rebuilds the index of live ranges when a hit left it stale. O(n log n).
    pub(super) fn ensure_index(&mut self) {
        if self.index_valid {
            debug_assert!(self.index_in_step());
            return;
        }
        let mut index = core::mem::take(&mut self.index);
        index.clear();
        for r in self.live_ranges(self.list) {
            *index.entry(r).or_insert(0) += 1;
        }
        self.index = index;
        self.index_valid = true;
    }

    /// True when the index of live ranges holds exactly [`Self::live_ranges`] (debug checks).
    pub(super) fn index_in_step(&self) -> bool {
        let mut fresh: BTreeMap<(u64, u64), u32> = BTreeMap::new();
        for r in self.live_ranges(self.list) {
            *fresh.entry(r).or_insert(0) += 1;
        }
        fresh == self.index
    }

    /// Everything live in the arena, as `(offset, end)`: persistent slots (laps only),
    /// unprotected allocations and the list's occupied slots. Unsorted.
    pub(super) fn live_ranges(&self, list: List) -> Vec<(u64, u64)> {
        let mut busy: Vec<(u64, u64)> = Vec::new();
        if list == List::Iteration {
            busy.extend_from_slice(&self.blockers);
        }
        busy.extend(self.outside.iter().map(|(&o, &e)| (o, e)));
        let lane = self.lane_of(list);
        busy.extend(lane.occupied.iter().filter_map(|&j| lane.occupant[j]));
        busy
    }
}

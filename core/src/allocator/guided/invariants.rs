//! `check_invariants`: the representation invariants of the [module docs](super), checked at
//! the end of every mutating method in debug builds (as the online allocator does).

use alloc::vec::Vec;

use super::state::{GuidedAllocator, Kind, List};
use crate::allocator::layout::rounded;

impl GuidedAllocator {
    /// Checks the representation invariants of the module docs; a no-op in release builds.
    ///
    /// # Panics
    /// If an invariant is broken (a bug in this module).
    ///
    /// # Complexity
    /// O(m log m + n) in debug builds, for `m` live allocations and `n` slots, plus
    /// rebuilding the index of live ranges when it is valid.
    pub(super) fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.check_live();
        for list in [List::Prologue, List::Iteration] {
            self.check_lane(list);
        }
        self.check_position();
        self.check_counters();
    }

    /// Invariants 1–3: live allocations, their slots and unprotected entries, the stats.
    fn check_live(&self) {
        let (base, arena) = (self.config.base, self.plan.arena_size);
        let mut spans: Vec<(u64, u64)> = Vec::with_capacity(self.live.len());
        let mut allocated = 0u64;
        for (&addr, l) in &self.live {
            assert_eq!(addr, base + l.off, "live {addr:#x} not at base + offset");
            assert!(
                l.off < l.end && l.end <= arena,
                "live {addr:#x} outside the arena of {arena} bytes"
            );
            assert_eq!(
                Some(l.end - l.off),
                rounded(l.requested),
                "live {addr:#x} does not take its rounded size"
            );
            match l.kind {
                Kind::Slot(list, k) => assert_eq!(
                    self.lane_of(list).occupant.get(k),
                    Some(&Some((l.off, l.end))),
                    "live {addr:#x} is not its slot's occupant"
                ),
                Kind::InArena => assert_eq!(
                    self.outside.get(&l.off),
                    Some(&l.end),
                    "in-arena miss {addr:#x} is not unprotected"
                ),
            }
            allocated += l.requested;
            spans.push((l.off, l.end));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "live allocations overlap at offset {:#x}",
                w[1].0
            );
        }
        for (&o, &e) in &self.outside {
            assert!(
                self.live.get(&(base + o)).is_some_and(|l| l.end == e),
                "unprotected range {o:#x}..{e:#x} is not a live allocation"
            );
        }
        if self.index_valid {
            assert!(self.index_in_step(), "index of live ranges out of step");
        }
        assert_eq!(
            self.allocated, allocated,
            "allocated != sum of live requests"
        );
        let reserved = self.reserved_now();
        assert!(
            self.started || self.live.is_empty(),
            "live before the first request"
        );
        if self.started {
            assert!(
                self.config.capacity.is_none_or(|c| reserved <= c),
                "reserved {reserved} above the capacity"
            );
        }
        assert!(self.peak_allocated >= self.allocated, "peak allocated");
        assert!(self.peak_reserved >= reserved, "peak reserved");
    }

    /// Invariant 4: a lane's vectors match its slots, and `occupied` matches `occupant`.
    fn check_lane(&self, list: List) {
        let (lane, slots) = (self.lane_of(list), self.slots(list));
        let n = slots.len();
        assert!(
            lane.room.len() == n
                && lane.free_above.len() == n
                && lane.by_end.len() == n
                && lane.occupant.len() == n
                && lane.occupied_at.len() == n,
            "{list:?} lane does not match its {n} slots"
        );
        for (k, s) in slots.iter().enumerate() {
            assert!(
                lane.room[k] >= s.size,
                "{list:?} slot {k}: room below its size"
            );
        }
        assert!(
            lane.by_end.iter().all(|&j| j < n)
                && lane
                    .by_end
                    .windows(2)
                    .all(|w| (slots[w[0]].end, w[0]) < (slots[w[1]].end, w[1])),
            "{list:?} lane: by_end is not the slots sorted by (end, index)"
        );
        for (i, &k) in lane.occupied.iter().enumerate() {
            assert!(
                lane.occupant[k].is_some() && lane.occupied_at[k] == i,
                "{list:?} lane: occupied[{i}] = {k} out of step"
            );
        }
        for (k, occupant) in lane.occupant.iter().enumerate() {
            match occupant {
                None => assert_eq!(lane.occupied_at[k], usize::MAX, "{list:?} slot {k}"),
                Some((o, e)) => assert!(
                    self.live
                        .get(&(self.config.base + o))
                        .is_some_and(|l| l.kind == Kind::Slot(list, k) && l.end == *e),
                    "{list:?} slot {k}: its occupant is not live"
                ),
            }
        }
        assert_eq!(
            lane.occupied.len(),
            lane.occupant.iter().filter(|o| o.is_some()).count(),
            "{list:?} lane: occupied count"
        );
    }

    /// Invariant 5: the serving position.
    fn check_position(&self) {
        let n = self.slots(self.list).len();
        assert!(
            self.cursor < n.max(1),
            "cursor {} past {n} slots",
            self.cursor
        );
        assert!(self.end_ptr <= n, "end pointer past the slots");
        assert_eq!(self.seen.len(), self.plan.iteration.len(), "seen sizes");
        if self.list == List::Prologue {
            assert!(n > 0, "serving an empty prologue");
            assert!(
                self.iteration.occupied.is_empty(),
                "lap slot used in the prologue"
            );
        }
        let persistent = self.plan.prologue.iter().filter(|s| s.is_persistent());
        assert!(
            persistent
                .map(|s| (s.offset, s.offset + s.size))
                .eq(self.blockers.iter().copied()),
            "blockers are not the persistent slots"
        );
    }

    /// Invariant 6: the counters agree with each other.
    fn check_counters(&self) {
        let c = &self.counters;
        assert!(
            c.misses_in_room <= c.misses,
            "misses in room > misses: {c:?}"
        );
        assert!(c.growths <= c.misses, "growths > misses: {c:?}");
        assert!(
            c.replans <= c.laps && c.guided_laps <= c.laps,
            "laps: {c:?}"
        );
        assert_eq!(self.arena_maps, 1 + c.growths, "arena maps != 1 + growths");
        // The request during which a lap ends is counted among the new lap's misses (or exact
        // matches) but not among its requests: hence the + 1.
        assert!(
            self.lap_misses <= self.lap_requests + 1 && self.lap_exact <= self.lap_requests + 1,
            "lap counters: {} misses, {} exact of {} requests",
            self.lap_misses,
            self.lap_exact,
            self.lap_requests
        );
    }
}

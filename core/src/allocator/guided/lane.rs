//! Lanes: the per-list serving state of the guided allocator (one lane for the prologue, one
//! for the iteration), with each slot's precomputed *room* and *free-above* height and the
//! slots' occupants. A leaf.

use alloc::vec;
use alloc::vec::Vec;

use crate::plan::Slot;

/// Per-list serving state.
///
/// Invariants (checked by `check_invariants`): every vector has one entry per slot of the
/// list (`occupied` one per occupied slot); `by_end` is the slot indices sorted by
/// `(end, index)`; `occupied` holds exactly the `k` with `occupant[k].is_some()`, and
/// `occupied_at[k]` is `k`'s index in it (`usize::MAX` while `k` is free).
#[derive(Debug, Clone, Default)]
pub(super) struct Lane {
    /// Room of each slot: bytes from its offset that are free of other slots while it is
    /// planned to be alive.
    pub(super) room: Vec<u64>,
    /// For each position, the lowest arena offset above every slot alive at or after the
    /// position's start (and every persistent slot): free for the rest of the lap.
    pub(super) free_above: Vec<u64>,
    /// Slot indices sorted by `(end, index)`.
    pub(super) by_end: Vec<usize>,
    /// Arena offset and end of the live allocation in each slot (it may sit where an
    /// earlier plan put the slot); `None` when the slot is free.
    pub(super) occupant: Vec<Option<(u64, u64)>>,
    /// The occupied slots, in no order, and each slot's index in it (while occupied): the
    /// gap searches visit only live slots.
    pub(super) occupied: Vec<usize>,
    pub(super) occupied_at: Vec<usize>,
    /// The slots are in order of start (as [`Plan::from_trace`](crate::plan::Plan::from_trace)
    /// makes them): a scan for slots alive with one may stop at the first that starts after
    /// it ends.
    pub(super) by_start: bool,
}

impl Lane {
    /// A lane for `slots` with nothing occupied: rooms and free-above heights of `slots`,
    /// with `blockers` (offset, end) alive throughout. A persistent slot gets no room beyond
    /// its size unless `persistent_ok`. O(n²) in the slots.
    pub(super) fn new(
        slots: &[Slot],
        blockers: &[(u64, u64)],
        arena: u64,
        persistent_ok: bool,
    ) -> Lane {
        let n = slots.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (slots[i].start, i));
        let mut room = Vec::with_capacity(n);
        for (k, s) in slots.iter().enumerate() {
            if s.is_persistent() && !persistent_ok {
                room.push(s.size);
                continue;
            }
            let top = s.offset + s.size;
            let mut limit = arena;
            for &(o, _) in blockers {
                if o >= top {
                    limit = limit.min(o);
                }
            }
            // Slots alive together with k: start before k's end and end after k's start.
            let upto = order.partition_point(|&j| slots[j].start < s.end);
            for &j in &order[..upto] {
                let t = &slots[j];
                if j != k && t.end > s.start && t.offset >= top {
                    limit = limit.min(t.offset);
                }
            }
            room.push(limit - s.offset);
        }
        // free_above[k]: max top over slots with end > start_k, and over the blockers.
        let base_top = blockers.iter().map(|&(_, e)| e).max().unwrap_or(0);
        let mut by_end_desc: Vec<usize> = (0..n).collect();
        by_end_desc.sort_by_key(|&i| core::cmp::Reverse(slots[i].end));
        let mut prefix_max = Vec::with_capacity(n);
        let mut m = base_top;
        for &i in &by_end_desc {
            m = m.max(slots[i].offset + slots[i].size);
            prefix_max.push(m);
        }
        let free_above = slots
            .iter()
            .map(|s| {
                let c = by_end_desc.partition_point(|&i| slots[i].end > s.start);
                if c == 0 { base_top } else { prefix_max[c - 1] }
            })
            .collect();
        let mut by_end: Vec<usize> = (0..n).collect();
        by_end.sort_by_key(|&i| (slots[i].end, i));
        Lane {
            room,
            free_above,
            by_end,
            occupant: vec![None; n],
            occupied: Vec::new(),
            occupied_at: vec![usize::MAX; n],
            by_start: slots.windows(2).all(|w| w[0].start <= w[1].start),
        }
    }

    /// Sets slot `k`'s occupant, keeping `occupied` in step. O(1).
    pub(super) fn occupy(&mut self, k: usize, r: Option<(u64, u64)>) {
        let was = self.occupant[k].is_some();
        self.occupant[k] = r;
        match (was, r.is_some()) {
            (false, true) => {
                self.occupied_at[k] = self.occupied.len();
                self.occupied.push(k);
            }
            (true, false) => {
                let i = self.occupied_at[k];
                self.occupied.swap_remove(i);
                if let Some(&moved) = self.occupied.get(i) {
                    self.occupied_at[moved] = i;
                }
                self.occupied_at[k] = usize::MAX;
            }
            _ => {}
        }
    }
}

//! Serving: each request is a hit (a slot of the plan, within [`LOOKAHEAD`] of the next
//! expected one) or a miss (placed by the gap searches), and `free` releases the slot or the
//! in-arena block (the module docs' "Serving"). Also the [`Allocator`] impl, which checks the
//! invariants after every call in debug builds.

use super::counters::GuidedCounters;
use super::gaps::high_gap;
use super::laps::matches_slot;
use super::state::{GuidedAllocator, Kind, List, Live};
use crate::allocator::interface::{Addr, AllocError, AllocStats, Allocator};
use crate::allocator::layout::rounded;

/// How many slots, from the next expected one on, a request is compared with.
pub const LOOKAHEAD: usize = 4;

impl GuidedAllocator {
    /// Serves one request: a hit if the plan has a slot for it, else a miss.
    fn serve(&mut self, size: u64, stream: u32) -> Result<Addr, AllocError> {
        if !self.started && !self.can_grow_to(self.plan.arena_size) {
            // The plan's arena alone exceeds the capacity.
            return Err(AllocError::OutOfMemory { size, reserved: 0 });
        }
        self.started = true;
        let need = rounded(size).ok_or(AllocError::OutOfMemory {
            size,
            reserved: self.reserved_now(),
        })?;
        if self.list == List::Iteration {
            self.lap_requests += 1;
        }
        let hit = if self.guided {
            None
        } else {
            self.try_hit(size, need, stream)
        };
        let addr = if let Some(addr) = hit {
            self.counters.hits += 1;
            addr
        } else {
            let addr = self.serve_miss(size, need, stream)?;
            self.counters.misses += 1;
            if self.list == List::Iteration {
                self.lap_misses += 1;
                // Many misses already: the rest of this lap is guided too.
                if !self.guided && self.lap_misses >= 16 && self.lap_misses * 4 > self.lap_requests
                {
                    self.guided = true;
                    self.counters.guided_laps += 1;
                }
            }
            addr
        };
        self.allocated += size;
        self.update_peaks();
        Ok(addr)
    }

    /// Releases the allocation at `addr`.
    fn release(&mut self, addr: Addr) -> Result<(), AllocError> {
        let Some(l) = self.live.remove(&addr) else {
            return Err(AllocError::UnknownAddress { addr });
        };
        match l.kind {
            Kind::Slot(list, k) => {
                let lane = self.lane_mut(list);
                let occupant = lane.occupant[k];
                lane.occupy(k, None);
                if self.index_valid && list == self.list {
                    if let Some((o, e)) = occupant {
                        self.index_remove(o, e);
                    }
                }
            }
            Kind::InArena => {}
        }
        self.allocated -= l.requested;
        if self.outside.get(&l.off) == Some(&l.end) {
            self.outside.remove(&l.off);
            if self.index_valid {
                self.index_remove(l.off, l.end);
            }
        }
        Ok(())
    }

    fn try_hit(&mut self, size: u64, need: u64, stream: u32) -> Option<Addr> {
        let list = self.list;
        let n = self.slots(list).len();
        for d in 0..LOOKAHEAD.min(n) {
            let mut k = self.cursor + d;
            if k >= n {
                if list == List::Prologue {
                    break;
                }
                k -= n;
            }
            let s = self.slots(list)[k];
            let lane = self.lane_of(list);
            if stream != s.stream || lane.occupant[k].is_some() || need > lane.room[k] {
                continue;
            }
            if d > 0 && (need > s.size || s.size / 2 > need) {
                // Skipping ahead only for a request that looks like that slot's.
                continue;
            }
            if k < self.cursor {
                // Wrapped within the lookahead: the lap ends here.
                self.cursor = 0;
                self.new_lap();
                if self.slots(list).get(k) != Some(&s) || need > self.lane_of(list).room[k] {
                    return None; // re-planned under our feet: try again next request
                }
            }
            self.advance_ends(Some(s.start));
            if s.end <= self.now {
                // Its planned lifetime is over (a slot further on was served): the plan no
                // longer keeps its range apart from the live allocations.
                continue;
            }
            let end = s.offset + need;
            if !self.clear_of_outside(s.offset, end) {
                continue;
            }
            if list == List::Iteration {
                self.seen[k] = self.seen[k].max(size);
                self.lap_exact += u64::from(d == 0 && matches_slot(need, s.size));
            }
            // Hits do not keep the index of live ranges: the next miss rebuilds it.
            self.index_valid = false;
            self.lane_mut(list).occupy(k, Some((s.offset, end)));
            if need > s.size {
                // Grown into its room: in-arena misses must see it.
                self.outside_insert(s.offset, end);
            }
            self.step_past(k);
            let addr = self.config.base + s.offset;
            self.live.insert(
                addr,
                Live {
                    kind: Kind::Slot(list, k),
                    requested: size,
                    off: s.offset,
                    end,
                },
            );
            return Some(addr);
        }
        None
    }

    /// A miss: remembers the size when the request looks like the expected slot's, then
    /// places it in the arena (see the module docs for the order of preference).
    fn serve_miss(&mut self, size: u64, need: u64, stream: u32) -> Result<Addr, AllocError> {
        let (list, c) = (self.list, self.cursor);
        let mut room = None;
        let mut matched = false;
        if let Some(&s) = self.slots(list).get(c) {
            // Allocations past their planned end must be seen by the gap searches.
            self.advance_ends(Some(s.start));
            matched = s.stream == stream
                && self.lane_of(list).occupant[c].is_none()
                && need <= s.size.saturating_mul(4)
                && s.size <= need.saturating_mul(4);
            if matched {
                if list == List::Iteration {
                    self.seen[c] = self.seen[c].max(size);
                    if need > s.size {
                        self.grew = true;
                    }
                    self.lap_exact += u64::from(matches_slot(need, s.size));
                }
                room = if !self.guided {
                    self.gap_beside(list, c, need)
                } else if self.short_lived(&s) {
                    self.ensure_index();
                    high_gap(self.index.keys().copied(), need, self.plan.arena_size)
                } else {
                    None // best fit between live allocations, below
                };
            } else {
                room = self.gap_above(self.lane_of(list).free_above[c], need);
            }
        }
        let off = match room {
            Some(off) => {
                self.counters.misses_in_room += 1;
                off
            }
            None => self.gap_between_live(need),
        };
        let end = off.checked_add(need).ok_or(AllocError::OutOfMemory {
            size,
            reserved: self.reserved_now(),
        })?;
        if end > self.plan.arena_size {
            if !self.can_grow_to(end) {
                return Err(AllocError::OutOfMemory {
                    size,
                    reserved: self.reserved_now(),
                });
            }
            self.plan.arena_size = end;
            self.arena_maps += 1;
            self.counters.growths += 1;
        }
        if matched {
            // After the search: stepping past the last slot may end the lap and re-plan.
            self.step_past(c);
        }
        self.outside_insert(off, end);
        let addr = self.config.base + off;
        self.live.insert(
            addr,
            Live {
                kind: Kind::InArena,
                requested: size,
                off,
                end,
            },
        );
        Ok(addr)
    }
}

impl Allocator for GuidedAllocator {
    /// Serves `size` bytes on `stream` from the plan, or as a miss (see the module docs).
    ///
    /// # Errors
    /// [`AllocError::OutOfMemory`] when the plan's arena alone, or the growth a miss needs,
    /// exceeds the capacity or the address space.
    fn alloc(&mut self, size: u64, stream: u32) -> Result<Addr, AllocError> {
        let r = self.serve(size, stream);
        self.check_invariants();
        r
    }

    /// Frees the allocation at `addr`: its slot, or its place in the arena.
    ///
    /// # Errors
    /// [`AllocError::UnknownAddress`] when `addr` is not a live allocation (the allocator is
    /// unchanged then).
    fn free(&mut self, addr: Addr) -> Result<(), AllocError> {
        let r = self.release(addr);
        self.check_invariants();
        r
    }

    /// The counters; see the module docs.
    fn stats(&self) -> AllocStats {
        AllocStats {
            peak_allocated: self.peak_allocated,
            peak_reserved: self.peak_reserved,
            ..self.stats_now()
        }
    }

    /// `"guided"`.
    fn name(&self) -> &'static str {
        "guided"
    }

    /// [`GuidedAllocator::counters`].
    fn guided_counters(&self) -> Option<GuidedCounters> {
        Some(self.counters)
    }
}

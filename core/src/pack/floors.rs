//! The section floors of the exact search: for each section, the least key (minimum offset)
//! over the unplaced items alive in it, kept up to date as keys rise and undone on backtrack.
//!
//! Keys only rise while the search descends (an item's minimum offset rises, or it is placed
//! and its key becomes `u64::MAX`), so a floor can only change where an item leaving it held
//! it. Each section counts the items at its floor and is rescanned only when that count
//! drops to 0. The rescans were about half the search's time (challenging J); a rescan is two
//! branch-free passes (least key, then its count) over the section's members, where one pass
//! with a data-dependent branch per member mispredicted often. (Keeping a copy of the keys
//! contiguous per section, written to every section of an item whose key changes, made the
//! scans cheaper but the search slower: 20 to 40 % on the challenging instances.)
//!
//! Invariants of [`Floors`] after `settle` (checked against a naive scan in `floors/tests.rs`):
//! `floor[s]` is the least key over the items alive in section `s`
//! (`sec_items[sec_start[s]..sec_start[s + 1]]`) and `at_floor[s]` how many have it
//! (`(u64::MAX, 0)` when every key is `u64::MAX`).

use alloc::vec;
use alloc::vec::Vec;

use super::sections::Sections;

/// Per-section least key and its count. See the module docs for the invariants.
pub(super) struct Floors {
    /// Items alive in each section (CSR, as in [`Sections`]).
    sec_start: Vec<u32>,
    sec_items: Vec<u32>,
    /// Each item's key, and its sections `ls..us`.
    key: Vec<u64>,
    span: Vec<(u32, u32)>,
    /// `floor[s]`: least key in section `s`; `at_floor[s]`: how many items have it.
    floor: Vec<u64>,
    at_floor: Vec<u32>,
    /// Undo log: (section, floor, count) before each change.
    log: Vec<(u32, u64, u32)>,
    /// While an item is placed (`begin_place` to `end_place`): its top, and the sections
    /// it shares with the neighbours whose key is that top, as differences (`+1` at the first
    /// shared section, `-1` after the last; all 0 outside a placement).
    top: u64,
    at_top: Vec<i32>,
    /// Sections whose floor must be rescanned by `settle`, and a mark per section.
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
}

impl Floors {
    /// Floors over `sec`'s sections and items, every key `u64::MAX` (call `set` and
    /// `rescan_all` to start).
    pub(super) fn new(sec: &Sections) -> Self {
        let n = sec.items.len();
        Floors {
            sec_start: sec.sec_start.clone(),
            sec_items: sec.sec_items.clone(),
            key: vec![u64::MAX; n],
            span: sec.items.iter().map(|it| (it.ls, it.us)).collect(),
            floor: vec![u64::MAX; sec.nsec],
            at_floor: vec![0; sec.nsec],
            log: Vec::new(),
            top: 0,
            at_top: vec![0; sec.nsec + 1],
            dirty: Vec::new(),
            is_dirty: vec![false; sec.nsec],
        }
    }

    /// The floors, per section.
    pub(super) fn floors(&self) -> &[u64] {
        &self.floor
    }

    /// How many unplaced items in section `s` have their key at its floor.
    pub(super) fn at_floor(&self, s: usize) -> u32 {
        self.at_floor[s]
    }

    /// Item `j`'s key.
    pub(super) fn key(&self, j: usize) -> u64 {
        self.key[j]
    }

    /// Sets item `j`'s key without upkeep of the floors: for setting up (then `rescan_all`)
    /// and for undoing (with `undo`).
    pub(super) fn set(&mut self, j: usize, k: u64) {
        self.key[j] = k;
    }

    /// Rescans every floor, with an empty undo log.
    pub(super) fn rescan_all(&mut self) {
        self.log.clear();
        for s in 0..self.floor.len() {
            (self.floor[s], self.at_floor[s]) = self.scan(s);
        }
    }

    /// Raises item `j`'s key to `k` (above its key), logging the floors' changes; the
    /// floors are right again after `settle`. (The search raises keys only around a
    /// placement, with `raise_beside`.)
    #[cfg(test)]
    pub(super) fn raise(&mut self, j: usize, k: u64) {
        let old = self.key[j];
        debug_assert!(k > old, "keys only rise");
        self.key[j] = k;
        let (ls, us) = self.span[j];
        for s in ls as usize..us as usize {
            self.leave(s, old);
        }
    }

    /// Starts placing item `j`, whose top is `top` (its key becomes `u64::MAX`): the floors of
    /// its sections start afresh, and must then be given every other unplaced item alive in
    /// them (all neighbours of `j`, whose keys are now at least `top`), by `raise_beside` if
    /// its key rises and by `fold` if not, before `end_place`.
    ///
    /// Those floors are rebuilt from the neighbours rather than counted down and rescanned:
    /// placing `j` raises every neighbour below its top, so they nearly always dropped to 0
    /// and were rescanned, and a rescan reads every member, placed ones too (most of them,
    /// deep in the search), where the neighbours' pass reads only the unplaced ones. Most of
    /// them end at `top` exactly: those are counted as a difference at both ends of the
    /// sections they share with `j`, summed up by `end_place`, not section by section.
    pub(super) fn begin_place(&mut self, j: usize, top: u64) {
        self.key[j] = u64::MAX;
        self.top = top;
        let (ls, us) = self.span[j];
        for s in ls as usize..us as usize {
            self.log.push((s as u32, self.floor[s], self.at_floor[s]));
            (self.floor[s], self.at_floor[s]) = (u64::MAX, 0);
        }
    }

    /// Raises item `j`'s key to `k` while item `p` is placed (`begin_place(p)`), `j` alive
    /// with `p` and `k` above its key: counts it into the floors `p` shares with it, and as `raise` elsewhere.
    pub(super) fn raise_beside(&mut self, j: usize, k: u64, p: usize) {
        let old = self.key[j];
        debug_assert!(k > old, "keys only rise");
        self.key[j] = k;
        let (ls, us) = (self.span[j].0 as usize, self.span[j].1 as usize);
        let (pl, pu) = (self.span[p].0 as usize, self.span[p].1 as usize);
        // `j` and `p` are alive together: the shared sections are one range.
        let (a, b) = (ls.max(pl), us.min(pu));
        self.count_shared(a, b, k);
        for s in (ls..a).chain(b..us) {
            self.leave(s, old);
        }
    }

    /// An item alive in section `s` whose key was `old` no longer has it: updates the count
    /// at the floor (logged), and marks the section for a rescan when none is left there.
    fn leave(&mut self, s: usize, old: u64) {
        if self.floor[s] != old {
            return;
        }
        self.log.push((s as u32, self.floor[s], self.at_floor[s]));
        self.at_floor[s] -= 1;
        if self.at_floor[s] == 0 && !self.is_dirty[s] {
            self.is_dirty[s] = true;
            self.dirty.push(s as u32);
        }
    }

    /// Counts item `j`, alive with item `p` being placed and whose key does not change, into
    /// the floors they share.
    pub(super) fn fold(&mut self, j: usize, p: usize) {
        let k = self.key[j];
        let (ls, us) = self.span[j];
        let (pl, pu) = self.span[p];
        self.count_shared(ls.max(pl) as usize, us.min(pu) as usize, k);
    }

    /// Counts key `k` (at least the top) into the floors of sections `a..b`, which the item
    /// being placed spans.
    fn count_shared(&mut self, a: usize, b: usize, k: u64) {
        debug_assert!(k >= self.top, "neighbours end at or above the top");
        if k == self.top {
            self.at_top[a] += 1;
            self.at_top[b] -= 1;
        } else {
            for s in a..b {
                self.count_in(s, k);
            }
        }
    }

    /// Ends placing item `p`: its sections' floors are the top wherever a neighbour is at
    /// the top (no key is below it), else what `count_in` found.
    pub(super) fn end_place(&mut self, p: usize) {
        let (pl, pu) = (self.span[p].0 as usize, self.span[p].1 as usize);
        let mut run = 0i32;
        for s in pl..pu {
            run += self.at_top[s];
            self.at_top[s] = 0;
            if run > 0 {
                (self.floor[s], self.at_floor[s]) = (self.top, run as u32);
            }
        }
        self.at_top[pu] = 0;
    }

    /// Counts key `k` into section `s`'s floor (logged by `begin_place`).
    fn count_in(&mut self, s: usize, k: u64) {
        // Branch-free: most keys counted in are at the placed item's top, some above.
        let f = self.floor[s];
        let c = self.at_floor[s];
        self.at_floor[s] = if k < f { 1 } else { c + u32::from(k == f) };
        self.floor[s] = f.min(k);
    }

    /// Rescans the sections whose count at the floor dropped to 0 (their old floor and count
    /// were logged by `raise`).
    pub(super) fn settle(&mut self) {
        while let Some(s) = self.dirty.pop() {
            let s = s as usize;
            self.is_dirty[s] = false;
            (self.floor[s], self.at_floor[s]) = self.scan(s);
        }
    }

    /// A point to `undo` back to.
    pub(super) fn mark(&self) -> usize {
        self.log.len()
    }

    /// Restores the floors as they were at `mark` (keys are restored with `set`).
    pub(super) fn undo(&mut self, mark: usize) {
        while self.log.len() > mark {
            let (s, f, c) = self.log.pop().unwrap_or((0, 0, 0));
            self.floor[s as usize] = f;
            self.at_floor[s as usize] = c;
        }
    }

    /// The least key over the items alive in section `s`, and how many have it
    /// (`(u64::MAX, 0)` when all are `u64::MAX`): two branch-free passes.
    fn scan(&self, s: usize) -> (u64, u32) {
        let members = &self.sec_items[self.sec_start[s] as usize..self.sec_start[s + 1] as usize];
        let key = &self.key;
        let f = members
            .iter()
            .map(|&j| key[j as usize])
            .fold(u64::MAX, u64::min);
        if f == u64::MAX {
            return (f, 0);
        }
        let count = members
            .iter()
            .map(|&j| u32::from(key[j as usize] == f))
            .sum();
        (f, count)
    }
}

#[cfg(test)]
mod tests;

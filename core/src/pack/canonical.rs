//! One depth-first branch-and-bound run over canonical plans (after MiniMalloc, Moffitt,
//! ASPLOS'23): does a plan within a cap exist? The restarts and bisection that drive such runs
//! are in `search.rs`.
//!
//! A plan is *canonical* when every buffer sits as low as the buffers below it allow
//! (its offset is the aligned top of the highest buffer it overlaps in time, or the base), and
//! the buffers, taken in order of (offset, rank), are placed one after another. Every plan can be
//! turned into a canonical one with the same or a lower peak, so searching only canonical
//! plans loses nothing. The search places buffers in that order; each unplaced buffer keeps
//! its *minimum offset* (the top of what is already placed under it), and candidates are
//! tried lowest first.
//!
//! Pruning:
//! - **monotone order**: a buffer may not go below the last one placed (or level with it
//!   with a smaller rank): that plan is reached through another order;
//! - **dominance**: a buffer whose minimum offset is at or above the top of another unplaced
//!   buffer placed as low as it can go would leave a gap that buffer fits in: skip it;
//! - **dead buffers**: an unplaced buffer already below the last (offset, rank) placed can only
//!   be placed once its minimum offset rises, which needs an unplaced buffer alive with it;
//! - **section bound**: at every moment, the unplaced buffers alive then stack above the
//!   lowest of their minimum offsets (and above the last offset placed): if that stack
//!   cannot stay within the current cap, backtrack;
//! - **dynamic decomposition**: when no unplaced buffer crosses a section boundary any more,
//!   the parts on either side are solved one after another, each ranked afresh.
//!
//! Invariants of [`Search`] between calls of `place`/`unplace` (checked from scratch after each
//! in debug builds on small leaves, by `check_invariants`): `rem[s]` is the total size of the unplaced
//! items alive in section `s`; `cuts[s]` the number alive in both `s` and `s + 1`;
//! `min_off[j]` the aligned top of the placed items alive with `j` (or the aligned base);
//! `floors` holds key `min_off[j]` for unplaced items `j` and `u64::MAX` for placed ones, and
//! its floor of section `s` is the least `min_off` over the unplaced items alive in `s` (with
//! how many have it, 0 when none is alive: see `floors.rs`); `free_deg[j]` the number
//! of unplaced items alive with `j`.

use alloc::vec;
use alloc::vec::Vec;

use super::budget::Control;
use super::floors::Floors;
use super::problem::Item;
use super::sections::{NONE, SItem, Sections};
use crate::units::align_up_saturating as align_up;

/// The static rankings: each is a key to sort the unplaced items by (smaller first), which
/// fixes the canonical order among items at the same offset.
#[derive(Clone, Copy)]
pub(super) enum Ranking {
    /// Largest section total, then longest, then largest area.
    TotalWidthArea,
    /// Longest, then largest area, then largest section total.
    WidthAreaTotal,
    /// Largest section total, then largest area, then longest.
    TotalAreaWidth,
    /// Largest size, then longest.
    SizeWidth,
    /// Largest area, then largest section total.
    AreaTotal,
}

/// The rankings, in the order the restarts try them.
pub(super) const RANKINGS: [Ranking; 5] = [
    Ranking::TotalWidthArea,
    Ranking::WidthAreaTotal,
    Ranking::TotalAreaWidth,
    Ranking::SizeWidth,
    Ranking::AreaTotal,
];

/// How a run, or a part of it, ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Every buffer of the partition was placed within the cap (offsets in `sol`).
    Found,
    /// No plan within the cap below this node.
    NotFound,
    /// This run's node limit was hit, or the caller's budget ran out.
    Abort,
}

/// The search's state: the static [`Sections`] index and the incremental state that `place`
/// and `unplace` keep. See the module docs for the invariants.
pub(super) struct Search<'c, 'a> {
    items: Vec<SItem>,
    /// CSR adjacency of "alive at the same time".
    adj_start: Vec<u32>,
    adj: Vec<u32>,
    /// Rank of each item under the current ranking.
    rank: Vec<u32>,
    /// The current ranking.
    ranking: Ranking,
    /// Lifetime length and area of each item (ranking keys).
    width: Vec<u64>,
    area: Vec<u64>,
    min_off: Vec<u64>,
    /// Number of unplaced items alive at the same time as each item.
    free_deg: Vec<u32>,
    /// `twin[i]`: the previous item (by index) with the same sections, size and alignment, or
    /// `NONE`. Identical items are interchangeable, so each is placed only after its twin.
    twin: Vec<u32>,
    /// Total size of unplaced buffers per section.
    rem: Vec<u64>,
    /// The section floors, keyed by `min_off` for unplaced items and `u64::MAX` for placed
    /// ones.
    floors: Floors,
    /// Number of (section, item alive in it) pairs: the cost of setting up a run.
    nslots: u64,
    /// `cuts[s]`: unplaced buffers alive in both section `s` and `s + 1`. A zero splits the
    /// remaining problem into independent parts.
    cuts: Vec<u32>,
    placed: Vec<bool>,
    off: Vec<u64>,
    /// Offsets of the last plan found, per item.
    sol: Vec<u64>,
    /// Undo log of `min_off`.
    off_log: Vec<(u32, u64)>,
    /// Scratch, per depth.
    scratch: Vec<Vec<(u64, u32, u32)>>,
    /// Plans must peak at or below this.
    cap: u64,
    base: u64,
    /// Nodes in the current run.
    run_nodes: u64,
    /// The current run's limit, in nodes or (with `by_effort`) in effort.
    run_limit: u64,
    /// Effort over all runs: every node counts the items of its part it scans, every
    /// candidate tried the sections and neighbours that placing it touches. A time measure
    /// that does not read a clock: at a tight cap most candidates fail the section bound
    /// without opening a node, so one node can cost a hundred times another.
    effort: u64,
    /// `effort` when the current run started.
    run_start: u64,
    /// Whether run limits count effort instead of nodes.
    by_effort: bool,
    ctrl: &'c mut Control<'a>,
}

impl<'c, 'a> Search<'c, 'a> {
    /// The search over `local` (all at or above `base`), charging its nodes to `ctrl`.
    pub(super) fn new(local: &[Item], base: u64, cap: u64, ctrl: &'c mut Control<'a>) -> Self {
        let n = local.len();
        let sections = Sections::new(local);
        let floors = Floors::new(&sections);
        let Sections {
            items,
            nsec: _,
            rem,
            cuts,
            sec_start: _,
            sec_items,
            adj_start,
            adj,
            width,
            area,
            twin,
        } = sections;
        let free_deg: Vec<u32> = (0..n).map(|i| adj_start[i + 1] - adj_start[i]).collect();
        Search {
            ranking: Ranking::TotalWidthArea,
            width,
            area,
            items,
            adj_start,
            adj,
            rank: vec![0; n],
            min_off: vec![0; n],
            free_deg,
            twin,
            rem,
            floors,
            nslots: sec_items.len() as u64,
            cuts,
            placed: vec![false; n],
            off: vec![0; n],
            sol: vec![0; n],
            off_log: Vec::new(),
            scratch: Vec::new(),
            cap,
            base,
            run_nodes: 0,
            run_limit: 0,
            effort: 0,
            run_start: 0,
            by_effort: false,
            ctrl,
        }
    }

    /// Number of sections.
    pub(super) fn nsec(&self) -> usize {
        self.floors.floors().len()
    }

    /// Offsets of the last plan found (by a run that returned [`Status::Found`]), per item.
    pub(super) fn solution(&self) -> &[u64] {
        &self.sol
    }

    /// Whether later runs' limits count effort (`true`) or nodes (see `effort`).
    pub(super) fn limit_by_effort(&mut self, by_effort: bool) {
        self.by_effort = by_effort;
    }

    /// Effort spent over all runs so far (see `effort`).
    pub(super) fn effort(&self) -> u64 {
        self.effort
    }

    /// True once the current run has spent its limit.
    fn over_limit(&self) -> bool {
        if self.by_effort {
            self.effort - self.run_start > self.run_limit
        } else {
            self.run_nodes > self.run_limit
        }
    }

    /// True once the caller's budget has run out: every later run aborts at once.
    pub(super) fn stopped(&self) -> bool {
        self.ctrl.stopped()
    }

    /// One depth-first run from scratch with ranking `r`, cap `cap` and node limit `limit`.
    /// Returns the status, the plan's peak when found (the plan is in `sol`), and the nodes
    /// spent.
    pub(super) fn run(
        &mut self,
        all: &[u32],
        nsec: u32,
        r: Ranking,
        cap: u64,
        limit: u64,
    ) -> (Status, u64, u64) {
        self.cap = cap;
        self.ranking = r;
        self.assign_ranks(all);
        for &i in all {
            let i = i as usize;
            self.min_off[i] = align_up(self.base, self.items[i].align);
            self.floors.set(i, self.min_off[i]);
        }
        self.floors.rescan_all();
        // Setting up costs a pass over every section's members.
        self.effort += self.nslots + all.len() as u64;
        self.run_nodes = 0;
        self.run_start = self.effort;
        self.run_limit = limit;
        let status = self.dfs(0, all, 0, nsec, self.base, 0);
        let peak = if status == Status::Found {
            self.sol
                .iter()
                .zip(&self.items)
                .map(|(o, it)| o + it.size)
                .max()
                .unwrap_or(self.base)
        } else {
            0
        };
        let spent = if self.by_effort {
            self.effort - self.run_start
        } else {
            self.run_nodes
        };
        (status, peak, spent)
    }

    /// Ranks `ids` (unplaced items) under the current ranking, numbering from 0. The section
    /// total key is the largest current total of unplaced sizes over the item's sections.
    fn assign_ranks(&mut self, ids: &[u32]) {
        let mut keyed: Vec<((u64, u64, u64), u32)> = ids
            .iter()
            .map(|&i| {
                let iu = i as usize;
                let it = &self.items[iu];
                let total = self.rem[it.ls as usize..it.us as usize]
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0);
                let (t, w, a, z) = (
                    u64::MAX - total,
                    u64::MAX - self.width[iu],
                    u64::MAX - self.area[iu],
                    u64::MAX - it.size,
                );
                let key = match self.ranking {
                    Ranking::TotalWidthArea => (t, w, a),
                    Ranking::WidthAreaTotal => (w, a, t),
                    Ranking::TotalAreaWidth => (t, a, w),
                    Ranking::SizeWidth => (z, w, a),
                    Ranking::AreaTotal => (a, t, 0),
                };
                (key, i)
            })
            .collect();
        keyed.sort_unstable();
        for (k, &(_, i)) in keyed.iter().enumerate() {
            self.rank[i as usize] = k as u32;
        }
    }

    /// Places the unplaced items of partition `part` (sections `pl..pu`) above `o_cur`, in
    /// canonical order after rank `r_cur`.
    fn dfs(
        &mut self,
        depth: usize,
        part: &[u32],
        pl: u32,
        pu: u32,
        o_cur: u64,
        r_cur: u32,
    ) -> Status {
        if self.ctrl.tick() {
            return Status::Abort;
        }
        self.run_nodes += 1;
        self.effort += 1 + part.len() as u64;
        if self.over_limit() {
            return Status::Abort;
        }
        if self.scratch.len() <= depth {
            self.scratch.resize_with(depth + 1, Vec::new);
        }
        let mut order = core::mem::take(&mut self.scratch[depth]);
        order.clear();
        let mut min_height = u64::MAX;
        for &i in part {
            let i = i as usize;
            if self.placed[i] {
                continue;
            }
            let mo = self.min_off[i];
            let it = &self.items[i];
            if align_up(mo.max(o_cur), it.align) + it.size > self.cap {
                self.scratch[depth] = order;
                return Status::NotFound;
            }
            let rank = self.rank[i];
            if (mo, rank) < (o_cur, r_cur) && self.free_deg[i] == 0 {
                // It can no longer be placed in canonical order, and nothing unplaced can
                // ever raise it: dead end.
                self.scratch[depth] = order;
                return Status::NotFound;
            }
            min_height = min_height.min(mo + it.size);
            order.push((mo, rank, i as u32));
        }
        if order.is_empty() {
            self.scratch[depth] = order;
            for &i in part {
                self.sol[i as usize] = self.off[i as usize];
            }
            return Status::Found;
        }
        // Only the candidates below `min_height` are tried (dominance): sort just those.
        order.retain(|&(mo, _, _)| mo < min_height);
        order.sort_unstable();
        let mut status = Status::NotFound;
        let mut cutpoints: Vec<u32> = Vec::new();
        for &(mo, rank, i) in &order {
            if mo >= min_height {
                break; // dominated: some unplaced buffer fits entirely below
            }
            let t = self.twin[i as usize];
            if t != NONE && !self.placed[t as usize] {
                continue; // its identical twin goes first
            }
            if (mo, rank) < (o_cur, r_cur) {
                continue; // not canonical
            }
            let i = i as usize;
            if mo + self.items[i].size > self.cap {
                continue;
            }
            if self.ctrl.poll() {
                status = Status::Abort;
                break;
            }
            let it = &self.items[i];
            self.effort +=
                u64::from(it.us - it.ls) + u64::from(self.adj_start[i + 1] - self.adj_start[i]);
            if self.by_effort && self.over_limit() {
                status = Status::Abort;
                break;
            }
            let (off_mark, floor_mark) = (self.off_log.len(), self.floors.mark());
            cutpoints.clear();
            self.place(i, mo, pl, pu, &mut cutpoints);
            if self.bound_ok(pl, pu, mo) {
                status = if cutpoints.is_empty() {
                    self.dfs(depth + 1, part, pl, pu, mo, rank)
                } else {
                    self.split(depth + 1, part, pl, pu, &mut cutpoints)
                };
            }
            self.unplace(i, off_mark, floor_mark);
            if status != Status::NotFound {
                break;
            }
        }
        self.scratch[depth] = order;
        status
    }

    /// Solves the independent parts of `part` between `cutpoints` one after another.
    fn split(
        &mut self,
        depth: usize,
        part: &[u32],
        pl: u32,
        pu: u32,
        cutpoints: &mut Vec<u32>,
    ) -> Status {
        cutpoints.sort_unstable();
        cutpoints.dedup();
        let mut bounds = Vec::with_capacity(cutpoints.len() + 2);
        bounds.push(pl);
        bounds.extend_from_slice(cutpoints);
        bounds.push(pu);
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1]);
            let sub: Vec<u32> = part
                .iter()
                .copied()
                .filter(|&i| {
                    let it = &self.items[i as usize];
                    !self.placed[i as usize] && it.ls >= a && it.us <= b
                })
                .collect();
            if sub.is_empty() {
                continue;
            }
            // Rank the part afresh, with the section totals as they are now.
            let saved: Vec<u32> = sub.iter().map(|&i| self.rank[i as usize]).collect();
            self.assign_ranks(&sub);
            let st = self.dfs(depth, &sub, a, b, self.base, 0);
            for (k, &i) in sub.iter().enumerate() {
                self.rank[i as usize] = saved[k];
            }
            if st != Status::Found {
                return st;
            }
        }
        for &i in part {
            if self.placed[i as usize] {
                self.sol[i as usize] = self.off[i as usize];
            }
        }
        Status::Found
    }

    /// Places item `i` at `o`; pushes the section boundaries inside `pl..pu` that no unplaced
    /// buffer crosses any more onto `cutpoints`.
    fn place(&mut self, i: usize, o: u64, pl: u32, pu: u32, cutpoints: &mut Vec<u32>) {
        debug_assert_eq!(
            o, self.min_off[i],
            "items are placed at their minimum offset"
        );
        let (ls, us, size) = {
            let it = &self.items[i];
            (it.ls as usize, it.us as usize, it.size)
        };
        let top = o + size;
        self.placed[i] = true;
        self.off[i] = o;
        // The floors of `i`'s sections are rebuilt from its unplaced neighbours (every item
        // alive there); elsewhere a floor (a minimum over the unplaced) can only change where
        // an item whose minimum offset rises held that minimum.
        self.floors.begin_place(i, top);
        for s in ls..us {
            self.rem[s] -= size;
        }
        for s in ls..us - 1 {
            self.cuts[s] -= 1;
            if self.cuts[s] == 0 && (s as u32 + 1) > pl && (s as u32 + 1) < pu {
                cutpoints.push(s as u32 + 1);
            }
        }
        let (a, b) = (self.adj_start[i] as usize, self.adj_start[i + 1] as usize);
        for k in a..b {
            let j = self.adj[k] as usize;
            self.free_deg[j] -= 1;
            if self.placed[j] {
                continue;
            }
            if self.min_off[j] < top {
                let old = self.min_off[j];
                self.off_log.push((j as u32, old));
                self.min_off[j] = align_up(top, self.items[j].align);
                self.floors.raise_beside(j, self.min_off[j], i);
            } else {
                self.floors.fold(j, i);
            }
        }
        // Rescan the floors whose count dropped to 0.
        self.floors.end_place(i);
        self.floors.settle();
        self.check_invariants();
    }

    fn unplace(&mut self, i: usize, off_mark: usize, floor_mark: usize) {
        self.floors.undo(floor_mark);
        while self.off_log.len() > off_mark {
            let (j, v) = self.off_log.pop().unwrap_or((0, 0));
            self.min_off[j as usize] = v;
            self.floors.set(j as usize, v); // every logged item is unplaced
        }
        let (ls, us, size) = {
            let it = &self.items[i];
            (it.ls as usize, it.us as usize, it.size)
        };
        for s in ls..us {
            self.rem[s] += size;
        }
        for s in ls..us - 1 {
            self.cuts[s] += 1;
        }
        let (a, b) = (self.adj_start[i] as usize, self.adj_start[i + 1] as usize);
        for k in a..b {
            self.free_deg[self.adj[k] as usize] += 1;
        }
        self.placed[i] = false;
        self.floors.set(i, self.min_off[i]);
        self.check_invariants();
    }

    /// Recomputes the incremental state from scratch and compares (debug builds, small
    /// problems only: it costs O(items × sections)).
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) || self.items.len() > 10 {
            return;
        }
        let n = self.items.len();
        for s in 0..self.rem.len() {
            let alive = || {
                (0..n).filter(|&j| {
                    !self.placed[j]
                        && self.items[j].ls as usize <= s
                        && s < self.items[j].us as usize
                })
            };
            let rem: u64 = alive().map(|j| self.items[j].size).sum();
            assert_eq!(self.rem[s], rem, "rem[{s}]");
            let floor = alive().map(|j| self.min_off[j]).min().unwrap_or(u64::MAX);
            assert_eq!(self.floors.floors()[s], floor, "floor[{s}]");
            let at = alive().filter(|&j| self.min_off[j] == floor).count() as u32;
            assert_eq!(self.floors.at_floor(s), at, "at_floor[{s}]");
            let cuts = alive()
                .filter(|&j| s + 1 < self.items[j].us as usize)
                .count() as u32;
            assert_eq!(self.cuts[s], cuts, "cuts[{s}]");
        }
        for j in 0..n {
            let key = if self.placed[j] {
                u64::MAX
            } else {
                self.min_off[j]
            };
            assert_eq!(self.floors.key(j), key, "key[{j}]");
            let a = self.adj_start[j] as usize..self.adj_start[j + 1] as usize;
            let free = self.adj[a]
                .iter()
                .filter(|&&k| !self.placed[k as usize])
                .count() as u32;
            assert_eq!(self.free_deg[j], free, "free_deg[{j}]");
            if !self.placed[j] {
                let it = &self.items[j];
                let top = (0..n)
                    .filter(|&k| {
                        self.placed[k] && self.items[k].ls < it.us && it.ls < self.items[k].us
                    })
                    .map(|k| self.off[k] + self.items[k].size)
                    .max()
                    .unwrap_or(self.base);
                assert_eq!(
                    self.min_off[j],
                    align_up(top.max(self.base), it.align),
                    "min_off[{j}]"
                );
            }
        }
    }

    /// Section bound: the unplaced buffers alive in a section of `pl..pu` stack above the
    /// lowest of their minimum offsets (and above `o_cur`).
    fn bound_ok(&self, pl: u32, pu: u32, o_cur: u64) -> bool {
        let (pl, pu) = (pl as usize, pu as usize);
        self.rem[pl..pu]
            .iter()
            .zip(&self.floors.floors()[pl..pu])
            .all(|(&r, &f)| r == 0 || f.max(o_cur) + r <= self.cap)
    }
}

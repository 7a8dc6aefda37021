//! Exact branch-and-bound over canonical plans (after MiniMalloc, Moffitt, ASPLOS'23).
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
//! The search restarts with several rankings and a doubling node limit (round robin), since a
//! good ranking finds plans orders of magnitude faster than a bad one. Minimising bisects on
//! the cap. Design notes: `doc/PLANNER.md`.
//!
//! Invariants between calls of `place`/`unplace`: `rem[s]` is the total size of the unplaced
//! items alive in section `s`; `cuts[s]` the number alive in both `s` and `s + 1`;
//! `min_off[j]` the aligned top of the placed items alive with `j` (or the aligned base);
//! `floor[s]` the least `min_off` over the unplaced items alive in `s`; `free_deg[j]` the number
//! of unplaced items alive with `j`.

use alloc::vec;
use alloc::vec::Vec;

use super::pack::{Control, Item, align_up};

/// What a search on one leaf ended with.
pub(crate) struct Outcome {
    /// The best plan found below the incumbent (offsets parallel to the leaf's items).
    pub offsets: Option<Vec<u64>>,
    /// Its peak (or the incumbent's, when none was found).
    pub peak: u64,
    /// A proven lower bound on the peak of any plan (at least the caller's).
    pub proven_lb: u64,
}

/// Static rankings tried in turn; each is a key to sort by (smaller first).
#[derive(Clone, Copy)]
enum Ranking {
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

const RANKINGS: [Ranking; 5] = [
    Ranking::TotalWidthArea,
    Ranking::WidthAreaTotal,
    Ranking::TotalAreaWidth,
    Ranking::SizeWidth,
    Ranking::AreaTotal,
];

/// An item in compressed time: alive in sections `ls..us`.
struct SItem {
    ls: u32,
    us: u32,
    size: u64,
    align: u64,
}

/// No item.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Every buffer of the partition was placed within the cap (offsets in `sol`).
    Found,
    /// No plan within the cap below this node.
    NotFound,
    /// This run's node limit was hit, or the caller's budget ran out.
    Abort,
}

struct Search<'c, 'a> {
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
    /// `min_off` for unplaced items, `u64::MAX` for placed ones (what floors are minima of).
    key: Vec<u64>,
    /// Number of unplaced items alive at the same time as each item.
    free_deg: Vec<u32>,
    /// `twin[i]`: the previous item (by index) with the same sections, size and alignment, or
    /// `NONE`. Identical items are interchangeable, so each is placed only after its twin.
    twin: Vec<u32>,
    /// Total size of unplaced buffers per section.
    rem: Vec<u64>,
    /// Items alive in each section (CSR).
    sec_start: Vec<u32>,
    sec_items: Vec<u32>,
    /// `floor[s]`: lowest minimum offset among the unplaced items alive in section `s`
    /// (`u64::MAX` when none is).
    floor: Vec<u64>,
    /// Undo log of `floor`.
    floor_log: Vec<(u32, u64)>,
    /// Sections whose floor must be recomputed, and a mark per section.
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
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
    run_nodes: u64,
    run_limit: u64,
    ctrl: &'c mut Control<'a>,
}

/// Searches for a better plan of `local` (all at or above `base`) than the caller's, whose
/// peak is `incumbent`; `lb` is a proven lower bound on the peak.
///
/// With a `capacity`, looks for one plan within it. Without, bisects on the cap between the
/// bounds until a plan at or below `target` is found, optimality is proven, or the budget
/// runs out.
pub(crate) fn improve(
    local: &[Item],
    base: u64,
    incumbent: u64,
    lb: u64,
    capacity: Option<u64>,
    target: u64,
    ctrl: &mut Control<'_>,
) -> Outcome {
    let n = local.len();
    let mut times: Vec<u64> = local.iter().flat_map(|it| [it.lower, it.upper]).collect();
    times.sort_unstable();
    times.dedup();
    let sec = |t: u64| times.binary_search(&t).unwrap_or(0) as u32;
    let nsec = times.len().saturating_sub(1);
    let items: Vec<SItem> = local
        .iter()
        .map(|it| SItem {
            ls: sec(it.lower),
            us: sec(it.upper),
            size: it.size,
            align: it.align,
        })
        .collect();
    let mut rem = vec![0u64; nsec];
    let mut cuts = vec![0u32; nsec];
    for it in &items {
        for r in &mut rem[it.ls as usize..it.us as usize] {
            *r += it.size;
        }
        for c in &mut cuts[it.ls as usize..it.us as usize - 1] {
            *c += 1;
        }
    }
    // Members of each section.
    let mut sec_start = vec![0u32; nsec + 1];
    for it in &items {
        for s in it.ls as usize..it.us as usize {
            sec_start[s + 1] += 1;
        }
    }
    for s in 0..nsec {
        sec_start[s + 1] += sec_start[s];
    }
    let mut fill = sec_start.clone();
    let mut sec_items = vec![0u32; sec_start[nsec] as usize];
    for (i, it) in items.iter().enumerate() {
        for s in it.ls as usize..it.us as usize {
            sec_items[fill[s] as usize] = i as u32;
            fill[s] += 1;
        }
    }
    // Adjacency by a sweep over start order.
    let mut by_start: Vec<u32> = (0..n as u32).collect();
    by_start.sort_unstable_by_key(|&i| (items[i as usize].ls, i));
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (k, &i) in by_start.iter().enumerate() {
        let a = &items[i as usize];
        for &j in &by_start[k + 1..] {
            let b = &items[j as usize];
            if b.ls >= a.us {
                break;
            }
            lists[i as usize].push(j);
            lists[j as usize].push(i);
        }
    }
    let mut adj_start = Vec::with_capacity(n + 1);
    let mut adj = Vec::new();
    adj_start.push(0u32);
    for l in &mut lists {
        l.sort_unstable();
        adj.extend_from_slice(l);
        adj_start.push(adj.len() as u32);
    }
    // Ranking keys.
    let width: Vec<u64> = local.iter().map(|it| it.upper - it.lower).collect();
    let area: Vec<u64> = local
        .iter()
        .map(|it| it.size.saturating_mul(it.upper - it.lower))
        .collect();

    let free_deg: Vec<u32> = (0..n).map(|i| adj_start[i + 1] - adj_start[i]).collect();
    let mut twin = vec![NONE; n];
    let mut keyed: Vec<(u32, u32, u64, u64, u32)> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.ls, it.us, it.size, it.align, i as u32))
        .collect();
    keyed.sort_unstable();
    for w in keyed.windows(2) {
        if (w[0].0, w[0].1, w[0].2, w[0].3) == (w[1].0, w[1].1, w[1].2, w[1].3) {
            twin[w[1].4 as usize] = w[0].4;
        }
    }
    let mut s = Search {
        ranking: Ranking::TotalWidthArea,
        width,
        area,
        items,
        adj_start,
        adj,
        rank: vec![0; n],
        min_off: vec![0; n],
        key: vec![0; n],
        free_deg,
        twin,
        rem,
        sec_start,
        sec_items,
        floor: vec![u64::MAX; nsec],
        floor_log: Vec::new(),
        dirty: Vec::new(),
        is_dirty: vec![false; nsec],
        cuts,
        placed: vec![false; n],
        off: vec![0; n],
        sol: vec![0; n],
        off_log: Vec::new(),
        scratch: Vec::new(),
        cap: incumbent.saturating_sub(1),
        base,
        run_nodes: 0,
        run_limit: 0,
        ctrl,
    };
    let all: Vec<u32> = (0..n as u32).collect();
    let mut best: Option<Vec<u64>> = None;
    let mut best_peak = incumbent;
    let mut proven_lb = lb;
    // Peaks are sums of sizes and alignment padding: step caps by their common divisor.
    let g = local
        .iter()
        .fold(base, |g, it| gcd(gcd(g, it.size), it.align));
    let snap = |c: u64| if g > 1 { c - c % g } else { c };
    if let Some(cap) = capacity {
        // Rounds of runs at the capacity under a doubling node limit. Once the instance shows
        // itself hard, each round also spends one run's worth of nodes lowering the best peak
        // (a bisection step above the capacity), so that a miss reports a useful one.
        // Every canonical peak is a multiple of `g`: no plan within `snap(cap)` means none
        // within `cap`.
        let (cap, proven_if_none) = (snap(cap), cap + 1);
        let hard = (16 * n as u64).max(1024);
        let mut limit = (2 * n as u64).max(64);
        let mut soft = cap + 1;
        'rounds: loop {
            for r in RANKINGS {
                match s.run(&all, nsec as u32, r, cap, limit) {
                    (Status::Found, peak, _) => {
                        best = Some(s.sol.clone());
                        best_peak = peak;
                        break 'rounds;
                    }
                    (Status::NotFound, _, _) => {
                        proven_lb = proven_lb.max(proven_if_none);
                        break 'rounds;
                    }
                    (Status::Abort, _, _) if s.ctrl.stopped => break 'rounds,
                    (Status::Abort, _, _) => {}
                }
            }
            if limit >= hard && soft < best_peak {
                let c = snap(soft + (best_peak - 1 - soft) / 2).max(soft);
                match s.feasible(&all, nsec as u32, c, limit) {
                    (Status::Found, peak) => {
                        best = Some(s.sol.clone());
                        best_peak = peak;
                        if peak <= cap {
                            break 'rounds;
                        }
                    }
                    (Status::NotFound, _) => {
                        // No plan within `c` > capacity: the capacity is out of reach too.
                        proven_lb = proven_lb.max(c + 1);
                        break 'rounds;
                    }
                    (Status::Abort, _) if s.ctrl.stopped => break 'rounds,
                    (Status::Abort, _) => soft = c + 1,
                }
            }
            limit = limit.saturating_mul(2);
        }
    } else {
        // Bisect between the proven lower bound and the best peak. A try that runs out of
        // nodes only raises a soft bound; when the soft bound meets the best peak, the
        // budget per try grows and the soft bound falls back to the proven one.
        let mut soft_lb = proven_lb;
        let mut per_try = (64 * n as u64).max(4096);
        loop {
            if best_peak <= target.max(proven_lb) || s.ctrl.stopped {
                break;
            }
            if soft_lb >= best_peak {
                per_try = per_try.saturating_mul(4);
                soft_lb = proven_lb;
                continue;
            }
            let cap = snap(soft_lb + (best_peak - 1 - soft_lb) / 2).max(soft_lb);
            match s.feasible(&all, nsec as u32, cap, per_try) {
                (Status::Found, peak) => {
                    best = Some(s.sol.clone());
                    best_peak = peak;
                }
                (Status::NotFound, _) => {
                    proven_lb = cap + 1;
                    soft_lb = soft_lb.max(proven_lb);
                }
                (Status::Abort, _) => {
                    if s.ctrl.stopped {
                        break;
                    }
                    soft_lb = cap + 1;
                }
            }
        }
    }
    Outcome {
        offsets: best,
        peak: best_peak,
        proven_lb,
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Search<'_, '_> {
    /// Looks for a plan of `all` (sections `0..nsec`) within `cap`, restarting with each
    /// ranking under a doubling node limit, for at most `budget` nodes in all. Returns the
    /// status and, when found, the plan's peak (the plan is in `sol`). `NotFound` means no
    /// plan within `cap` exists.
    fn feasible(&mut self, all: &[u32], nsec: u32, cap: u64, budget: u64) -> (Status, u64) {
        let mut spent = 0u64;
        let mut limit = (2 * all.len() as u64).max(64);
        loop {
            for r in RANKINGS {
                if spent >= budget {
                    return (Status::Abort, 0);
                }
                let (status, peak, nodes) = self.run(all, nsec, r, cap, limit.min(budget - spent));
                spent += nodes;
                match status {
                    Status::Abort if !self.ctrl.stopped => {}
                    _ => return (status, peak),
                }
            }
            limit = limit.saturating_mul(2);
        }
    }

    /// One depth-first run from scratch with ranking `r`, cap `cap` and node limit `limit`.
    /// Returns the status, the plan's peak when found (the plan is in `sol`), and the nodes
    /// spent.
    fn run(
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
            self.key[i] = self.min_off[i];
        }
        for sec in 0..nsec as usize {
            let members =
                &self.sec_items[self.sec_start[sec] as usize..self.sec_start[sec + 1] as usize];
            self.floor[sec] = members
                .iter()
                .map(|&j| self.min_off[j as usize])
                .min()
                .unwrap_or(u64::MAX);
        }
        self.run_nodes = 0;
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
        (status, peak, self.run_nodes)
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
        if self.run_nodes > self.run_limit {
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
            let (off_mark, floor_mark) = (self.off_log.len(), self.floor_log.len());
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
        self.key[i] = u64::MAX;
        self.off[i] = o;
        // A floor (a minimum over the unplaced) can only change where the item leaving the
        // unplaced set, or an item whose minimum offset rises, held that minimum.
        for s in ls..us {
            self.rem[s] -= size;
            if self.floor[s] == o && !self.is_dirty[s] {
                self.is_dirty[s] = true;
                self.dirty.push(s as u32);
            }
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
            if !self.placed[j] && self.min_off[j] < top {
                let old = self.min_off[j];
                self.off_log.push((j as u32, old));
                self.min_off[j] = align_up(top, self.items[j].align);
                self.key[j] = self.min_off[j];
                let (jl, ju) = (self.items[j].ls as usize, self.items[j].us as usize);
                for s in jl..ju {
                    if self.floor[s] == old && !self.is_dirty[s] {
                        self.is_dirty[s] = true;
                        self.dirty.push(s as u32);
                    }
                }
            }
        }
        // Recompute the floors of the sections touched.
        while let Some(s) = self.dirty.pop() {
            let s = s as usize;
            self.is_dirty[s] = false;
            let members =
                &self.sec_items[self.sec_start[s] as usize..self.sec_start[s + 1] as usize];
            let key = &self.key;
            let f = members
                .iter()
                .map(|&j| key[j as usize])
                .min()
                .unwrap_or(u64::MAX);
            if f != self.floor[s] {
                self.floor_log.push((s as u32, self.floor[s]));
                self.floor[s] = f;
            }
        }
        self.check_invariants();
    }

    fn unplace(&mut self, i: usize, off_mark: usize, floor_mark: usize) {
        while self.floor_log.len() > floor_mark {
            let (s, v) = self.floor_log.pop().unwrap_or((0, 0));
            self.floor[s as usize] = v;
        }
        while self.off_log.len() > off_mark {
            let (j, v) = self.off_log.pop().unwrap_or((0, 0));
            self.min_off[j as usize] = v;
            self.key[j as usize] = v; // every logged item is unplaced
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
        self.key[i] = self.min_off[i];
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
            assert_eq!(self.floor[s], floor, "floor[{s}]");
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
            assert_eq!(self.key[j], key, "key[{j}]");
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
            .zip(&self.floor[pl..pu])
            .all(|(&r, &f)| r == 0 || f.max(o_cur) + r <= self.cap)
    }
}

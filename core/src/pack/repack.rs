//! The improvement search for leaves too large for the exact search: *window repacking*, a
//! local search that keeps a complete plan at every step.
//!
//! One *move* takes a buffer on the plan's peak, a time window around its lifetime, and a
//! few dozen to a thousand buffers alive in that window (the highest ones, or those that live
//! inside the window); it lifts them out and puts them back one at a time, in some order,
//! each at the lowest (first fit) or tightest (best fit) gap left by every other buffer alive
//! with it. The buffers that stay are obstacles, so the result is always a complete, valid
//! plan. The move is kept when the *potential* — (peak, number of buffers whose top is the
//! peak, sum of the moved buffers' tops) compared lexicographically — does not grow, and
//! undone otherwise. The window, the selection and the order are drawn from a fixed-seed
//! generator, so the same input and the same number of nodes give the same plan.
//!
//! Each placement counts as one search node ([`Control::tick`]), so `--max-nodes` bounds the
//! work and a time limit is honoured within 256 placements. A move cut short by the budget
//! is undone: the plan returned is always the best complete one.
//!
//! Invariants of a [`Repack`] between moves: `offsets` is a valid plan of the leaf (every
//! offset aligned and at or above `base`, no two buffers alive together share a byte);
//! `tops` counts `offsets[i] + size` over all items (a multiset, so its largest key is the
//! peak); `index` lists every item under each bucket of compressed time it is alive in.
//! During a move, `placed[i]` is false exactly for the lifted buffers not yet put back.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::budget::Control;
use super::problem::Item;
use crate::units::align_up_saturating as align_up;

/// Moves in a row without a strict drop of the potential after which the search gives up
/// (only reached without a node budget or time limit: it makes the search terminate).
const STALL_MOVES: u64 = 20_000;

/// Most buffers a window move lifts out.
const MAX_LIFT: usize = 1024;

/// Most buffers alive at the chosen moment a column move lifts out.
const MAX_COLUMN: usize = 4096;

/// Improves the plan `offsets` of the leaf `local` (every offset at or above `base`) in
/// place, until its peak reaches `floor`, the budget runs out, or [`STALL_MOVES`] moves in a
/// row bring nothing. Returns the new peak, never above the old one.
///
/// # Complexity
/// Each placement costs O(k log k) for the k buffers alive with the one placed.
pub(super) fn repack(
    local: &[Item],
    base: u64,
    offsets: &mut [u64],
    floor: u64,
    ctrl: &mut Control<'_>,
) -> u64 {
    let mut r = Repack::new(local, base, offsets);
    r.run(floor, ctrl);
    offsets.copy_from_slice(&r.offsets);
    r.peak()
}

/// Buffers bucketed by compressed time, so that the buffers alive during an interval are
/// found without scanning the leaf.
///
/// Invariants: `all[b]` lists (in index order) every item alive in some moment of bucket
/// `b`; `starts[b]` the items whose first bucket is `b`; `span[i]` is item `i`'s first and
/// last bucket. An item alive during an interval whose first bucket is `f` is then either in
/// `all[f]` or in exactly one `starts[b]` with `b > f`, so a query reports it once.
struct Index {
    /// Distinct lifetime endpoints, sorted.
    times: Vec<u64>,
    /// Number of buckets.
    buckets: usize,
    all: Vec<Vec<u32>>,
    starts: Vec<Vec<u32>>,
    span: Vec<(u32, u32)>,
}

impl Index {
    fn new(local: &[Item]) -> Self {
        let mut times: Vec<u64> = local.iter().flat_map(|it| [it.lower, it.upper]).collect();
        times.sort_unstable();
        times.dedup();
        // Slots are the gaps between consecutive endpoints; about 8 slots per bucket.
        let slots = times.len().saturating_sub(1).max(1);
        let buckets = (slots / 8).clamp(1, 4096);
        let mut idx = Index {
            times,
            buckets,
            all: vec![Vec::new(); buckets],
            starts: vec![Vec::new(); buckets],
            span: Vec::with_capacity(local.len()),
        };
        for (i, it) in local.iter().enumerate() {
            let (f, l) = idx.range(it.lower, it.upper);
            idx.span.push((f, l));
            idx.starts[f as usize].push(i as u32);
            for b in f..=l {
                idx.all[b as usize].push(i as u32);
            }
        }
        idx
    }

    /// First and last bucket of the interval `[lo, hi)` (`lo < hi`), clamped to the leaf.
    fn range(&self, lo: u64, hi: u64) -> (u32, u32) {
        let slots = self.times.len().saturating_sub(1).max(1);
        let slot = |t: u64| self.times.partition_point(|&x| x <= t).saturating_sub(1);
        let first = slot(lo).min(slots - 1);
        let last = slot(hi.saturating_sub(1).max(lo)).min(slots - 1);
        let b = |s: usize| (s * self.buckets / slots) as u32;
        (b(first), b(last))
    }

    /// Calls `f` once for every item whose lifetime intersects `[lo, hi)`.
    fn alive_during(&self, local: &[Item], lo: u64, hi: u64, mut f: impl FnMut(u32)) {
        let (first, last) = self.range(lo, hi);
        let hit = |j: u32| {
            let it = &local[j as usize];
            it.lower < hi && lo < it.upper
        };
        for &j in &self.all[first as usize] {
            if hit(j) {
                f(j);
            }
        }
        for b in first + 1..=last {
            for &j in &self.starts[b as usize] {
                if hit(j) {
                    f(j);
                }
            }
        }
    }
}

/// A small fixed-seed generator (xorshift64*): the search's only source of variety, so that
/// the same input and budget give the same moves.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The state of the local search. See the module docs for its invariants.
struct Repack<'a> {
    local: &'a [Item],
    base: u64,
    offsets: Vec<u64>,
    tops: BTreeMap<u64, u32>,
    index: Index,
    /// `load[k]`: total size alive at the moment `index.times[k]`.
    load: Vec<u64>,
    placed: Vec<bool>,
    rng: Rng,
    /// Scratch: (offset, top) of the obstacles of one placement.
    obstacles: Vec<(u64, u64)>,
}

/// How a move puts the lifted buffers back.
#[derive(Clone, Copy)]
enum Fit {
    /// Lowest gap.
    First,
    /// Tightest gap (the top when none fits).
    Best,
}

impl<'a> Repack<'a> {
    fn new(local: &'a [Item], base: u64, offsets: &[u64]) -> Self {
        let mut tops = BTreeMap::new();
        for (it, &o) in local.iter().zip(offsets) {
            *tops.entry(o + it.size).or_insert(0) += 1;
        }
        let index = Index::new(local);
        let rank = |t: u64| index.times.partition_point(|&x| x < t);
        let mut diff = vec![0i128; index.times.len() + 1];
        for it in local {
            diff[rank(it.lower)] += i128::from(it.size);
            diff[rank(it.upper)] -= i128::from(it.size);
        }
        let mut live = 0i128;
        let load = diff
            .iter()
            .map(|d| {
                live += d;
                live as u64
            })
            .collect();
        Repack {
            local,
            base,
            offsets: offsets.to_vec(),
            tops,
            index,
            load,
            placed: vec![true; local.len()],
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ local.len() as u64),
            obstacles: Vec::new(),
        }
    }

    fn peak(&self) -> u64 {
        self.tops.last_key_value().map_or(self.base, |(&t, _)| t)
    }

    /// (peak, number of buffers reaching it).
    fn head(&self) -> (u64, u32) {
        self.tops
            .last_key_value()
            .map_or((self.base, 0), |(&t, &c)| (t, c))
    }

    fn add_top(&mut self, t: u64) {
        *self.tops.entry(t).or_insert(0) += 1;
    }

    fn remove_top(&mut self, t: u64) {
        if let Some(c) = self.tops.get_mut(&t) {
            *c -= 1;
            if *c == 0 {
                self.tops.remove(&t);
            }
        }
    }

    fn run(&mut self, floor: u64, ctrl: &mut Control<'_>) {
        let mut stall = 0u64;
        while self.peak() > floor && stall < STALL_MOVES {
            match self.step(ctrl) {
                None => return, // out of budget; the move was undone
                Some(true) => stall = 0,
                Some(false) => stall += 1,
            }
        }
    }

    /// One move. `None` when the budget ran out (the move is undone), else whether the
    /// potential strictly dropped.
    fn step(&mut self, ctrl: &mut Control<'_>) -> Option<bool> {
        let local = self.local;
        let (peak, count) = self.head();
        // A buffer on the peak, chosen among all of them.
        let crit: Vec<u32> = (0..local.len() as u32)
            .filter(|&i| self.offsets[i as usize] + local[i as usize].size == peak)
            .collect();
        let c = crit[self.rng.below(crit.len() as u64) as usize];
        let (cands, order, fit) = match self.rng.below(2) {
            0 => self.column(c),
            _ => self.window(c),
        };
        let top_of = |j: u32| self.offsets[j as usize] + local[j as usize].size;
        let old_sum: u64 = cands.iter().map(|&j| top_of(j)).sum();
        let saved: Vec<u64> = cands.iter().map(|&j| self.offsets[j as usize]).collect();
        // The move re-solves the slab above the lowest lifted buffer: what lies wholly below
        // it cannot matter, and leaving it out keeps each placement cheap.
        let slab = saved.iter().copied().min().unwrap_or(self.base);
        // Lift them out.
        for &j in &cands {
            self.placed[j as usize] = false;
            self.remove_top(self.offsets[j as usize] + local[j as usize].size);
        }
        // Put them back.
        let mut done = 0;
        for &j in &order {
            if ctrl.tick() {
                break;
            }
            let o = self.place(j, fit, slab);
            self.offsets[j as usize] = o;
            self.placed[j as usize] = true;
            self.add_top(o + local[j as usize].size);
            done += 1;
        }
        if done < order.len() {
            self.undo(&cands, &saved, &order[..done]);
            return None;
        }
        let new_sum: u64 = cands
            .iter()
            .map(|&j| self.offsets[j as usize] + local[j as usize].size)
            .sum();
        let (new_peak, new_count) = self.head();
        let before = (peak, count, old_sum);
        let after = (new_peak, new_count, new_sum);
        if after > before {
            self.undo(&cands, &saved, &order);
            return Some(false);
        }
        Some(after < before)
    }

    /// A column move: at a busy moment `t` of the critical buffer `c`'s life, closes one of
    /// the gaps under the buffers alive at `t`. Lifted: the buffers alive at `t` from the gap
    /// up, which go back lowest first (first fit: they fall into the gap), then the buffers
    /// not alive at `t` that fill the gap's offsets at other times (why it is a gap), largest
    /// first, wherever they fit. Returns the lifted buffers, their order, and the fit.
    fn column(&mut self, c: u32) -> (Vec<u32>, Vec<u32>, Fit) {
        let local = self.local;
        let it = local[c as usize];
        let times = &self.index.times;
        // Slot `k` is the moment `times[k]` (up to `times[k + 1]`).
        let k0 = times.partition_point(|&x| x < it.lower);
        let k1 = times.partition_point(|&x| x < it.upper).max(k0 + 1);
        let k = if self.rng.below(2) == 0 {
            (k0..k1)
                .max_by_key(|&k| (self.load[k], core::cmp::Reverse(k)))
                .unwrap_or(k0)
        } else {
            k0 + self.rng.below((k1 - k0) as u64) as usize
        };
        let t = times[k];
        let off = &self.offsets;
        let mut alive: Vec<u32> = Vec::new();
        self.index
            .alive_during(local, t, t.saturating_add(1), |j| alive.push(j));
        alive.sort_by_key(|&j| (off[j as usize], j));
        // The gaps under the skyline at `t`: (length, start).
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        let mut cur = self.base;
        for &j in &alive {
            let o = off[j as usize];
            if o > cur {
                gaps.push((o - cur, cur));
            }
            cur = cur.max(o + local[j as usize].size);
        }
        if gaps.is_empty() {
            return self.window(c);
        }
        gaps.sort_by_key(|&(g, s)| (core::cmp::Reverse(g), s));
        let (g, g0) = gaps[self.rng.below(gaps.len().min(3) as u64) as usize];
        let g1 = g0 + g;
        let mut order: Vec<u32> = alive
            .iter()
            .copied()
            .filter(|&j| off[j as usize] >= g0)
            .take(MAX_COLUMN)
            .collect();
        let lo = order.iter().map(|&j| local[j as usize].lower).min();
        let hi = order.iter().map(|&j| local[j as usize].upper).max();
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let mut blockers: Vec<u32> = Vec::new();
            self.index.alive_during(local, lo, hi, |j| {
                let x = &local[j as usize];
                let o = off[j as usize];
                if !(x.lower <= t && t < x.upper) && o < g1 && o + x.size > g0 {
                    blockers.push(j);
                }
            });
            blockers.sort_by_key(|&j| (core::cmp::Reverse(local[j as usize].size), j));
            order.extend(blockers);
        }
        (order.clone(), order, Fit::First)
    }

    /// A window move around the critical buffer `c`: the highest of the buffers alive in a
    /// window around its lifetime (or of those living inside it), put back in a drawn order.
    /// Returns the lifted buffers, the order they go back in, and how.
    fn window(&mut self, c: u32) -> (Vec<u32>, Vec<u32>, Fit) {
        let local = self.local;
        let top_of = |j: u32| self.offsets[j as usize] + local[j as usize].size;
        let it = local[c as usize];
        // The window: the critical buffer's lifetime, widened by 0, 1/2, 1 or 2 lifetimes on
        // each side.
        let len = it.upper - it.lower;
        let widen = match self.rng.below(4) {
            0 => 0,
            1 => len / 2,
            2 => len,
            _ => len * 2,
        };
        let (lo, hi) = (
            it.lower.saturating_sub(widen),
            it.upper.saturating_add(widen),
        );
        let mut cands: Vec<u32> = Vec::new();
        self.index.alive_during(local, lo, hi, |j| cands.push(j));
        let inside = self.rng.below(3) == 0;
        if inside {
            // Only those that live inside the window (and the critical one).
            cands.retain(|&j| {
                let o = &local[j as usize];
                j == c || (lo <= o.lower && o.upper <= hi)
            });
        }
        // The highest `k` of them, the critical buffer always among them.
        let k = 8usize << self.rng.below(8);
        let k = k.min(MAX_LIFT);
        cands.sort_by_key(|&j| (core::cmp::Reverse(top_of(j)), j));
        cands.truncate(k);
        if !cands.contains(&c) {
            cands.push(c);
        }
        // The order they go back in.
        let mut order = cands.clone();
        match self.rng.below(5) {
            0 => order.sort_by_key(|&j| (core::cmp::Reverse(local[j as usize].size), j)),
            1 => order.sort_by_key(|&j| (self.offsets[j as usize], j)),
            2 => {
                let len = |j: u32| local[j as usize].upper - local[j as usize].lower;
                order.sort_by_key(|&j| (core::cmp::Reverse(len(j)), j));
            }
            3 => {
                // Decreasing size, each size scaled by a factor in [1/2, 1).
                let mut keyed: Vec<(u64, u32)> = order
                    .iter()
                    .map(|&j| {
                        let s = local[j as usize].size;
                        (s / 2 + (s / 2) / 64 * self.rng.below(64), j)
                    })
                    .collect();
                keyed.sort_by_key(|&(s, j)| (core::cmp::Reverse(s), j));
                order = keyed.into_iter().map(|(_, j)| j).collect();
            }
            _ => {
                // Fisher–Yates.
                for x in (1..order.len()).rev() {
                    let y = self.rng.below(x as u64 + 1) as usize;
                    order.swap(x, y);
                }
            }
        }
        let fit = if self.rng.below(3) == 0 {
            Fit::Best
        } else {
            Fit::First
        };
        (cands, order, fit)
    }

    /// Restores the lifted buffers `cands` to their `saved` offsets; `back` are those already
    /// put back (the others are still lifted).
    fn undo(&mut self, cands: &[u32], saved: &[u64], back: &[u32]) {
        let local = self.local;
        for &j in back {
            self.remove_top(self.offsets[j as usize] + local[j as usize].size);
        }
        for (&j, &o) in cands.iter().zip(saved) {
            self.offsets[j as usize] = o;
            self.placed[j as usize] = true;
            self.add_top(o + local[j as usize].size);
        }
    }

    /// The offset for item `j` at or above `slab` (at or above `base`) among the placed
    /// buffers alive with it.
    fn place(&mut self, j: u32, fit: Fit, slab: u64) -> u64 {
        let local = self.local;
        let it = local[j as usize];
        let mut obstacles = core::mem::take(&mut self.obstacles);
        obstacles.clear();
        let (offsets, placed) = (&self.offsets, &self.placed);
        self.index.alive_during(local, it.lower, it.upper, |q| {
            let o = offsets[q as usize];
            let t = o + local[q as usize].size;
            if placed[q as usize] && q != j && t > slab {
                obstacles.push((o, t));
            }
        });
        obstacles.sort_unstable();
        let mut cand = align_up(self.base.max(slab), it.align);
        let mut best: Option<(u64, u64)> = None; // (gap, offset)
        for &(o, t) in &obstacles {
            if o >= cand + it.size {
                let gap = o - cand;
                match fit {
                    Fit::First => {
                        best = Some((gap, cand));
                        break;
                    }
                    Fit::Best => {
                        if best.is_none_or(|(g, _)| gap < g) {
                            best = Some((gap, cand));
                        }
                    }
                }
            }
            cand = cand.max(align_up(t, it.align));
        }
        self.obstacles = obstacles;
        best.map_or(cand, |(_, o)| o)
    }
}

#[cfg(test)]
mod tests;

//! Allocation lifetimes, iteration boundaries and lifetime classes.
//!
//! Training loops repeat: the same tensors are requested in the same order with the same sizes,
//! iteration after iteration. [`analyze`] turns a [`Trace`] into one [`Lifetime`] per `Alloc`
//! event, finds the iteration boundaries and sorts every allocation into a [`Class`], which is
//! what a plan for one steady-state iteration needs to know.
//!
//! # Iteration boundaries
//! - When the trace has [`Marker::IterationStart`] markers, iteration `k` starts at the `k`-th
//!   such marker ([`Boundaries::Markers`]). Events before the first marker belong to no
//!   iteration (a prologue).
//! - Otherwise [`detect_period`] looks for the smallest period `p` with which the sequence of
//!   `(size, stream)` of allocations repeats after a warm-up prefix ([`Boundaries::Detected`]);
//!   iteration `k` then starts at the `Alloc` event of allocation `offset + k * p`, and the
//!   allocations before `offset` belong to no iteration. The last iteration may be partial.
//! - When neither applies, the whole trace is one iteration starting at event 0
//!   ([`Boundaries::None`]).
//!
//! # Classes
//! Checked in this order; the first rule that applies wins:
//! 1. [`Class::Persistent`]: the allocation is never freed in the trace.
//! 2. [`Class::Dynamic`], only when there are at least two iterations: the allocation lies
//!    outside every iteration (prologue or warm-up), or no other iteration has an allocation at
//!    the same position (its index within its iteration), or its `(size, stream)` differs from
//!    the *reference* at that position: the most frequent `(size, stream)` at that position
//!    over all iterations (ties broken towards the smallest `(size, stream)`).
//! 3. [`Class::CrossIteration`]: it is freed in a later iteration than the one it was
//!    allocated in.
//! 4. [`Class::PerIteration`]: it is allocated and freed in the same iteration (with a single
//!    iteration, every freed allocation is per-iteration: there is nothing to compare with).
//!
//! # Invariants of an [`Analysis`]
//! - `lifetimes[i].alloc_index == i`, and lifetimes are in allocation (event) order.
//! - `alloc_event < free_event` whenever `free_event` is `Some`, and both index `Alloc`/`Free`
//!   events of the same id.
//! - `iteration_starts` is strictly increasing; `iteration` of a lifetime is the index of the
//!   last start at or before its `alloc_event` (`None` before the first start).
//! - Everything is deterministic: only ordered collections and sorted vectors are used.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use crate::trace::{Event, Marker, Trace};

/// How an allocation lives relative to the iterations (see the module docs for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Never freed in the trace (weights, optimizer state).
    Persistent,
    /// Allocated and freed inside the same iteration.
    PerIteration,
    /// Freed in a later iteration than the one it was allocated in.
    CrossIteration,
    /// Its `(size, stream)` differs from the reference at its position in the iteration, or it
    /// has no counterpart in any other iteration, or it lies outside every iteration.
    Dynamic,
}

/// The lifetime of one allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Position among the allocations of the trace (0 for the first `Alloc`).
    pub alloc_index: usize,
    /// Index of the `Alloc` event in [`Trace::events`].
    pub alloc_event: usize,
    /// Index of the matching `Free` event; `None` iff the allocation is never freed.
    pub free_event: Option<usize>,
    /// Bytes requested.
    pub size: u64,
    /// Stream of the allocation.
    pub stream: u32,
    /// The iteration the allocation is made in; `None` iff it comes before the first
    /// iteration start (prologue or warm-up).
    pub iteration: Option<usize>,
    /// The class (see the module docs).
    pub class: Class,
}

/// A period detected in a sequence of allocation keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Allocations per iteration; at least 1.
    pub period: usize,
    /// Index of the first allocation of the first full iteration (allocations before it are
    /// warm-up).
    pub offset: usize,
    /// Number of full iterations from `offset` on (at least 2); a partial one may follow.
    pub iterations: usize,
    /// Fraction of the allocations in `offset + period ..` whose key equals the key `period`
    /// earlier; in `(0, 1]`, and exactly 1.0 iff the region repeats exactly.
    pub match_fraction: f64,
}

/// Where the iteration boundaries of an [`Analysis`] come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Boundaries {
    /// From the trace's [`Marker::IterationStart`] markers.
    Markers,
    /// Detected from the allocation sequence by [`detect_period`].
    Detected(Period),
    /// Neither markers nor a period: the whole trace is one iteration.
    None,
}

/// Lifetimes, iterations and classes of a trace (see the module docs for the invariants).
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// One lifetime per `Alloc` event, in allocation order.
    pub lifetimes: Vec<Lifetime>,
    /// Where the iteration boundaries come from.
    pub boundaries: Boundaries,
    /// Event index at which each iteration starts, strictly increasing (the marker's event
    /// for [`Boundaries::Markers`], the first allocation's `Alloc` event for
    /// [`Boundaries::Detected`], `[0]` for [`Boundaries::None`]).
    pub iteration_starts: Vec<usize>,
}

impl Analysis {
    /// Number of iterations (including a partial last one).
    pub fn iterations(&self) -> usize {
        self.iteration_starts.len()
    }

    /// Number of lifetimes of class `class`.
    pub fn count(&self, class: Class) -> usize {
        self.lifetimes.iter().filter(|l| l.class == class).count()
    }
}

/// Weight of a mismatch against a match when choosing the repeated region: the region is the
/// suffix maximising `matches - MISMATCH_WEIGHT * mismatches`, so it extends back only over
/// stretches where at least 3 in 4 allocations match.
const MISMATCH_WEIGHT: i64 = 3;
/// How many of the most frequent recurrence gaps are tried as candidate periods.
const GAP_CANDIDATES: usize = 32;
/// Among inexact candidates, the smallest period within this much of the best match fraction
/// wins.
const FRACTION_TOLERANCE: f64 = 0.02;

/// Finds the smallest period with which `keys` repeats after a warm-up prefix.
///
/// Candidates are (a) the smallest exact period of the longest suffix that holds at least two
/// full repetitions of it, from the prefix function of the reversed sequence, and (b) the
/// 32 most frequent gaps between consecutive occurrences of equal keys. For
/// each candidate `p`, the repeated region `offset..` is the suffix maximising
/// `matches - 3 * mismatches`, where position `i` matches when `keys[i] == keys[i - p]`.
/// A candidate is kept when its region holds at least two full periods and at least half of
/// `keys`. Among kept candidates, the smallest period whose region repeats exactly wins;
/// when none does, the smallest whose match fraction is within 0.02 of the best.
///
/// Returns `None` when no candidate is kept (fewer than two repetitions).
///
/// # Examples
/// ```
/// use memplan_core::lifetime::detect_period;
/// let keys = [9, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1];
/// let p = detect_period(&keys).unwrap();
/// assert_eq!((p.period, p.offset, p.iterations, p.match_fraction), (3, 1, 3, 1.0));
/// ```
///
/// # Complexity
/// O(n log n) for interning the keys and the gap histogram, O(n) for the prefix function, and
/// O(n) per candidate with at most 33 candidates: O(n log n + 33 n) time, O(n) space.
pub fn detect_period<T: Ord>(keys: &[T]) -> Option<Period> {
    let n = keys.len();
    if n < 2 {
        return None;
    }
    // Intern keys to dense ids (first occurrence order: deterministic).
    let mut intern: BTreeMap<&T, u32> = BTreeMap::new();
    let ids: Vec<u32> = keys
        .iter()
        .map(|k| {
            let next = intern.len() as u32;
            *intern.entry(k).or_insert(next)
        })
        .collect();

    let mut candidates: BTreeSet<usize> = BTreeSet::new();
    // (a) Prefix function of the reversed sequence: the suffix of length m has smallest
    // period m - pi[m - 1].
    let mut pi = vec![0usize; n];
    let rev = |i: usize| ids[n - 1 - i];
    for i in 1..n {
        let mut k = pi[i - 1];
        while k > 0 && rev(i) != rev(k) {
            k = pi[k - 1];
        }
        if rev(i) == rev(k) {
            k += 1;
        }
        pi[i] = k;
    }
    if let Some(m) = (2..=n).rev().find(|&m| m >= 2 * (m - pi[m - 1])) {
        candidates.insert(m - pi[m - 1]);
    }
    // (b) Gaps between consecutive occurrences of the same key.
    let mut last = vec![usize::MAX; intern.len()];
    let mut gaps: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let prev = core::mem::replace(&mut last[id as usize], i);
        if prev != usize::MAX && 2 * (i - prev) <= n {
            *gaps.entry(i - prev).or_insert(0) += 1;
        }
    }
    let mut by_count: Vec<(usize, usize)> = gaps.into_iter().collect();
    by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    candidates.extend(by_count.iter().take(GAP_CANDIDATES).map(|&(gap, _)| gap));

    let scored: Vec<(Period, bool)> = candidates
        .into_iter()
        .filter_map(|p| score(&ids, p))
        .collect();
    if let Some(&(exact, _)) = scored.iter().find(|(_, exact)| *exact) {
        return Some(exact);
    }
    let best = scored
        .iter()
        .map(|(s, _)| s.match_fraction)
        .fold(0.0f64, f64::max);
    scored
        .into_iter()
        .map(|(s, _)| s)
        .find(|s| s.match_fraction >= best - FRACTION_TOLERANCE)
}

/// Scores candidate period `p` (see [`detect_period`]); the flag is true iff the region
/// repeats exactly. O(n).
fn score(ids: &[u32], p: usize) -> Option<(Period, bool)> {
    let n = ids.len();
    if p == 0 || 2 * p > n {
        return None;
    }
    // Best suffix start j in p..n maximising the weighted sum (ties: the latest start, so
    // chance matches in the warm-up do not extend the region).
    let (mut sum, mut best, mut start) = (0i64, 0i64, n);
    for i in (p..n).rev() {
        sum += if ids[i] == ids[i - p] {
            1
        } else {
            -MISMATCH_WEIGHT
        };
        if sum > best {
            best = sum;
            start = i;
        }
    }
    if start == n {
        return None;
    }
    let offset = start - p;
    let iterations = (n - offset) / p;
    if iterations < 2 || 2 * (n - offset) < n {
        return None;
    }
    let region = n - start;
    let matches = (start..n).filter(|&i| ids[i] == ids[i - p]).count();
    let period = Period {
        period: p,
        offset,
        iterations,
        match_fraction: matches as f64 / region as f64,
    };
    Some((period, matches == region))
}

/// Computes lifetimes, iteration boundaries and classes of `trace` (see the module docs for
/// the rules).
///
/// # Examples
/// ```
/// use memplan_core::lifetime::{analyze, Boundaries, Class};
/// use memplan_core::trace::TraceBuilder;
/// let mut b = TraceBuilder::new();
/// b.alloc(0, 1 << 20, 0)?; // weights, never freed
/// for it in 0..4u64 {
///     b.alloc(10 + it, 4096, 0)?;
///     b.alloc(20 + it, 512, 0)?;
///     b.free(10 + it)?;
///     b.free(20 + it)?;
/// }
/// let a = analyze(&b.finish());
/// assert!(matches!(a.boundaries, Boundaries::Detected(p) if p.period == 2 && p.offset == 1));
/// assert_eq!(a.lifetimes[0].class, Class::Persistent);
/// assert_eq!(a.count(Class::PerIteration), 8);
/// # Ok::<(), memplan_core::Error>(())
/// ```
///
/// # Complexity
/// O(n log n) in the number of events (dominated by [`detect_period`], id matching and the
/// per-position reference keys), O(n) space.
pub fn analyze(trace: &Trace) -> Analysis {
    let events = trace.events();
    // Lifetimes without iterations and classes.
    let mut lifetimes: Vec<Lifetime> = Vec::new();
    let mut live: BTreeMap<u64, usize> = BTreeMap::new();
    let mut markers: Vec<usize> = Vec::new();
    for (e, ev) in events.iter().enumerate() {
        match ev {
            Event::Alloc { id, size, stream } => {
                live.insert(*id, lifetimes.len());
                lifetimes.push(Lifetime {
                    alloc_index: lifetimes.len(),
                    alloc_event: e,
                    free_event: None,
                    size: *size,
                    stream: *stream,
                    iteration: None,
                    class: Class::PerIteration,
                });
            }
            Event::Free { id } => {
                if let Some(i) = live.remove(id) {
                    lifetimes[i].free_event = Some(e);
                }
            }
            Event::Marker(Marker::IterationStart) => markers.push(e),
            Event::Marker(_) => {}
        }
    }

    let (boundaries, iteration_starts) = if !markers.is_empty() {
        (Boundaries::Markers, markers)
    } else {
        let keys: Vec<(u64, u32)> = lifetimes.iter().map(|l| (l.size, l.stream)).collect();
        match detect_period(&keys) {
            Some(p) => {
                let starts = (p.offset..lifetimes.len())
                    .step_by(p.period)
                    .map(|a| lifetimes[a].alloc_event)
                    .collect();
                (Boundaries::Detected(p), starts)
            }
            None => (Boundaries::None, vec![0]),
        }
    };
    let iteration_of = |event: usize| {
        iteration_starts
            .partition_point(|&s| s <= event)
            .checked_sub(1)
    };
    // First allocation index of each iteration.
    let first_alloc: Vec<usize> = iteration_starts
        .iter()
        .map(|&s| lifetimes.partition_point(|l| l.alloc_event < s))
        .collect();
    // (position, key, alloc index) of every allocation inside an iteration.
    let mut positions: Vec<(usize, (u64, u32), usize)> = Vec::new();
    for l in &mut lifetimes {
        l.iteration = iteration_of(l.alloc_event);
        if let Some(it) = l.iteration {
            positions.push((
                l.alloc_index - first_alloc[it],
                (l.size, l.stream),
                l.alloc_index,
            ));
        }
    }
    // Dynamic allocations (only meaningful with two iterations or more).
    let mut dynamic = vec![iteration_starts.len() >= 2; lifetimes.len()];
    if iteration_starts.len() >= 2 {
        positions.sort_unstable();
        for group in positions.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue; // no counterpart: stays dynamic
            }
            // Most frequent key; runs are in key order, so `>` keeps the smallest on ties.
            let mut reference = (group[0].1, 0usize);
            for run in group.chunk_by(|a, b| a.1 == b.1) {
                if run.len() > reference.1 {
                    reference = (run[0].1, run.len());
                }
            }
            for &(_, key, a) in group {
                dynamic[a] = key != reference.0;
            }
        }
    }
    for l in &mut lifetimes {
        l.class = match l.free_event {
            None => Class::Persistent,
            Some(_) if dynamic[l.alloc_index] => Class::Dynamic,
            Some(f) if iteration_of(f) > l.iteration => Class::CrossIteration,
            Some(_) => Class::PerIteration,
        };
    }
    Analysis {
        lifetimes,
        boundaries,
        iteration_starts,
    }
}

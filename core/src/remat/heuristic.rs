//! Eviction heuristics: which evictable storage goes first. A heuristic's name and its score
//! live here together; adding one is a variant of [`Heuristic`], its names, and its arm of
//! [`Scorer::score`] (plus `uses_regions` / `uses_eq_classes` when it needs the
//! neighbourhood state of `neighbourhoods.rs`).
//!
//! # Victim choice
//!
//! `simrd`'s exact rule ([`Scorer::choose`]): scan the pool in order, keep the *last* minimum
//! (`score ≤ best`), stop at the first score that is exactly 0. Scores are quotients of
//! integers rounded once to `f64` ([`div_round`]), like Python's `int / int`, so ties are the
//! same ties.
//!
//! Scanning the pool is linear, but each score is O(1) from cached numerators (O(degree) for
//! h_DTR^eq), so a whole run of the largest log takes milliseconds, not minutes. A priority
//! queue cannot reproduce the exact rule: staleness-based scores change their order as the
//! clock advances, and ties go to the later pool element.
//!
//! # Scoring state
//!
//! Besides the graph and the neighbourhoods, memplan's heuristic reads a [`Lookahead`]: the
//! caller's current time and each tensor's next use on that time scale (`None` = unknown).

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use super::graph::{Graph, Storage};
use super::ids::TensorId;
use super::neighbourhoods::Neighbourhoods;
use super::pool::Pool;

/// An eviction heuristic. Lower score = evicted first; see [`crate::remat`] for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Heuristic {
    /// h_DTR: `(c(S) + C_fwd(S) + C_bwd(S)) / (size · staleness)` over evicted neighbourhoods.
    Dtr,
    /// h_DTR^eq: `(c(S) + Σ value(K)) / (size · staleness)` over the union-find classes of the
    /// evicted neighbours.
    DtrEq,
    /// h_DTR^local: `c(S) / (size · staleness)`.
    DtrLocal,
    /// h_MSPS: `(c(S) + C_bwd(S)) / size`.
    Msps,
    /// Least recently used first.
    Lru,
    /// Largest storage first.
    Largest,
    /// memplan's own: `cost / (size · idle^k)` with `idle = a · staleness + b · distance to
    /// the next use` (DTR's look back plus Belady's lookahead over the known schedule), the
    /// cost and the constants given by [`MemplanParams`] (chosen by leave-one-log-out, see
    /// [`MemplanParams::DEFAULT`]); the next use comes from the caller
    /// ([`crate::remat::Runtime::set_next_use`]); staleness alone when none is known.
    Memplan,
}

impl Heuristic {
    /// Every heuristic, in the order of the command-line names.
    pub const ALL: [Heuristic; 7] = [
        Heuristic::Dtr,
        Heuristic::DtrEq,
        Heuristic::DtrLocal,
        Heuristic::Msps,
        Heuristic::Lru,
        Heuristic::Largest,
        Heuristic::Memplan,
    ];

    /// The command-line / JSON name (`dtr`, `dtr-eq`, `dtr-local`, `msps`, `lru`, `largest`,
    /// `memplan`).
    pub fn name(self) -> &'static str {
        match self {
            Heuristic::Dtr => "dtr",
            Heuristic::DtrEq => "dtr-eq",
            Heuristic::DtrLocal => "dtr-local",
            Heuristic::Msps => "msps",
            Heuristic::Lru => "lru",
            Heuristic::Largest => "largest",
            Heuristic::Memplan => "memplan",
        }
    }

    /// The class name in `simrd` (`DTR`, `DTREqClass`, ...); `None` for memplan's own.
    pub fn simrd_name(self) -> Option<&'static str> {
        Some(match self {
            Heuristic::Dtr => "DTR",
            Heuristic::DtrEq => "DTREqClass",
            Heuristic::DtrLocal => "DTRLocal",
            Heuristic::Msps => "MSPS",
            Heuristic::Lru => "LRU",
            Heuristic::Largest => "LargestStorage",
            Heuristic::Memplan => return None,
        })
    }

    /// Whether the runtime must maintain evicted-neighbourhood regions for it.
    pub(super) fn uses_regions(self) -> bool {
        matches!(self, Heuristic::Dtr | Heuristic::Msps | Heuristic::Memplan)
    }

    /// Whether the runtime must maintain union-find equivalence classes for it.
    pub(super) fn uses_eq_classes(self) -> bool {
        matches!(self, Heuristic::DtrEq)
    }
}

impl fmt::Display for Heuristic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A heuristic name that is not one of [`Heuristic::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownHeuristic;

impl fmt::Display for UnknownHeuristic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "unknown heuristic (expected dtr, dtr-eq, dtr-local, msps, lru, largest or memplan)",
        )
    }
}

impl FromStr for Heuristic {
    type Err = UnknownHeuristic;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Heuristic::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or(UnknownHeuristic)
    }
}

/// Which recomputation costs the numerator of memplan's score sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CostTerms {
    /// c(S) alone (h_DTR^local's numerator).
    Local,
    /// c(S) + C_bwd(S): the evicted ancestors a recomputation needs too (h_MSPS's).
    Backward,
    /// c(S) + C_fwd(S) + C_bwd(S): also the evicted descendants whose recomputation would
    /// need S (h_DTR's).
    Both,
}

impl CostTerms {
    /// `local`, `bwd` or `both`.
    pub fn name(self) -> &'static str {
        match self {
            CostTerms::Local => "local",
            CostTerms::Backward => "bwd",
            CostTerms::Both => "both",
        }
    }
}

/// The constants of memplan's heuristic: `cost / (size · (a · staleness + b · next-use
/// distance)^k)`. Every one is chosen from the small grid [`MemplanParams::grid`] by
/// leave-one-log-out over the six shared DTR logs (`memplan remat --leave-one-out`, README
/// "Rematerialization (DTR) simulator").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemplanParams {
    /// The numerator.
    pub cost: CostTerms,
    /// `a`: weight of the time since the last access.
    pub stale_weight: u32,
    /// `b`: weight of the time until the next use.
    pub next_use_weight: u32,
    /// `k`: 1 or 2.
    pub idle_exponent: u32,
}

impl MemplanParams {
    /// The constants `--heuristic memplan` uses: those the leave-one-out procedure selects
    /// when it may train on all six shared logs.
    pub const DEFAULT: MemplanParams = MemplanParams {
        cost: CostTerms::Backward,
        stale_weight: 1,
        next_use_weight: 2,
        idle_exponent: 1,
    };

    /// The candidates: 3 numerators × 5 weightings of the idle interval (staleness only,
    /// 2:1, 1:1, 1:2, next use only) × 2 exponents = 30.
    pub fn grid() -> Vec<MemplanParams> {
        let mut out = Vec::new();
        for cost in [CostTerms::Local, CostTerms::Backward, CostTerms::Both] {
            for (a, b) in [(1, 0), (2, 1), (1, 1), (1, 2), (0, 1)] {
                for k in [1, 2] {
                    out.push(MemplanParams {
                        cost,
                        stale_weight: a,
                        next_use_weight: b,
                        idle_exponent: k,
                    });
                }
            }
        }
        out
    }
}

impl Default for MemplanParams {
    fn default() -> Self {
        MemplanParams::DEFAULT
    }
}

impl fmt::Display for MemplanParams {
    /// `cost=bwd idle=1:1 k=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cost={} idle={}:{} k={}",
            self.cost.name(),
            self.stale_weight,
            self.next_use_weight,
            self.idle_exponent
        )
    }
}

/// `num / den` rounded once to the nearest `f64` (ties to even), as Python's `int / int`
/// does; `+∞` when `den == 0`. Exactness matters: `simrd` compares such quotients and
/// breaks ties by pool order, so a double rounding could pick a different victim.
pub(super) fn div_round(num: i128, den: u128) -> f64 {
    if den == 0 {
        return f64::INFINITY;
    }
    if num == 0 {
        return 0.0;
    }
    let neg = num < 0;
    let n = num.unsigned_abs();
    let q = if n < (1 << 53) && den < (1 << 53) {
        // Both exact as doubles: one IEEE division rounds once.
        n as f64 / den as f64
    } else {
        // Scale the numerator up so that the integer quotient carries at least 64 bits,
        // then round that (with a sticky bit for the remainder) to 53 bits.
        let shift = n.leading_zeros(); // n << shift keeps the top bit at 127.
        let scaled = n << shift;
        let mut q = scaled / den;
        let sticky = scaled % den != 0;
        let bits = 128 - q.leading_zeros();
        let mut exp = -(shift as i32);
        if bits > 53 {
            let drop = bits - 53;
            let rest = q & ((1u128 << drop) - 1);
            let half = 1u128 << (drop - 1);
            q >>= drop;
            exp += drop as i32;
            let round_up = rest > half || (rest == half && (sticky || q & 1 == 1));
            if round_up {
                q += 1;
            }
        }
        // q < 2^54 is exact in f64; scaling by a power of two is exact (no subnormals here).
        let mut v = q as f64;
        let mut e = exp;
        while e < -1000 {
            v *= f64::from_bits(((1023 - 1000) as u64) << 52);
            e += 1000;
        }
        while e > 1000 {
            v *= f64::from_bits(((1023 + 1000) as u64) << 52);
            e -= 1000;
        }
        v * f64::from_bits(((1023 + e) as u64) << 52)
    };
    if neg { -q } else { q }
}

/// The memplan heuristic's view of the future: the caller's clock and each tensor's next use
/// on it (index = tensor; `None` or missing = no known future use).
#[derive(Default)]
pub(super) struct Lookahead {
    pub(super) now: u64,
    next_use: Vec<Option<u64>>,
}

impl Lookahead {
    /// Sets the next use of the (known) tensor `t`.
    pub(super) fn set_next_use(&mut self, t: TensorId, at: Option<u64>) {
        let i = t.0 as usize;
        if self.next_use.len() <= i {
            if at.is_none() {
                return;
            }
            self.next_use.resize(i + 1, None);
        }
        self.next_use[i] = at;
    }

    fn next_use(&self, t: TensorId) -> Option<u64> {
        self.next_use.get(t.0 as usize).copied().flatten()
    }
}

/// Everything a score reads, borrowed from the runtime.
pub(super) struct Scorer<'a> {
    pub(super) heuristic: Heuristic,
    pub(super) graph: &'a Graph,
    pub(super) nbhd: &'a Neighbourhoods,
    pub(super) lookahead: &'a Lookahead,
    /// The runtime's clock.
    pub(super) clock: u64,
    /// memplan's constants.
    pub(super) params: MemplanParams,
}

impl Scorer<'_> {
    /// The score of resident storage `s` (lower = evicted first).
    pub(super) fn score(&self, s: usize) -> f64 {
        let st = &self.graph.storages[s];
        match self.heuristic {
            Heuristic::Dtr => self.staleness_score(
                i128::from(st.compute)
                    + i128::from(self.nbhd.fwd_compute(s))
                    + i128::from(self.nbhd.bwd_compute(s)),
                st,
            ),
            Heuristic::DtrLocal => self.staleness_score(i128::from(st.compute), st),
            Heuristic::DtrEq => {
                let classes = self.nbhd.classes.as_ref().expect("h_DTR^eq keeps classes");
                let mut roots: Vec<u32> = Vec::new();
                for n in self.graph.evicted_neighbors(s) {
                    if let Some(e) = classes.node(n as usize) {
                        roots.push(classes.root(e));
                    }
                }
                roots.sort_unstable();
                roots.dedup();
                let mut num = i128::from(st.compute);
                for r in roots {
                    num += classes.value(r);
                }
                self.staleness_score(num, st)
            }
            Heuristic::Msps => div_round(
                i128::from(st.compute) + i128::from(self.nbhd.bwd_compute(s)),
                u128::from(st.size),
            ),
            Heuristic::Lru => match st.last_access {
                None => f64::NEG_INFINITY,
                Some(l) => l as f64,
            },
            Heuristic::Largest => div_round(1, u128::from(st.size)),
            Heuristic::Memplan => self.memplan_score(s),
        }
    }

    /// `num / (size · staleness)`, staleness = clock − last access.
    fn staleness_score(&self, num: i128, st: &Storage) -> f64 {
        match st.last_access {
            // simrd: staleness = clock - (-inf) = inf; size * inf = inf (nan for size 0).
            None => {
                if st.size == 0 {
                    f64::INFINITY
                } else {
                    0.0
                }
            }
            Some(last) => {
                let stale = u128::from(self.clock - last.min(self.clock));
                div_round(num, u128::from(st.size) * stale)
            }
        }
    }

    /// memplan's score ([`MemplanParams`]): the chosen neighbourhood cost per byte, divided by
    /// the (weighted) length of the storage's idle interval around now — time since its last
    /// access (DTR's staleness) and time until its next use (Belady's lookahead) — raised to
    /// the chosen power. Staleness alone when no future is known.
    fn memplan_score(&self, s: usize) -> f64 {
        let st = &self.graph.storages[s];
        let p = &self.params;
        let mut num = i128::from(st.compute);
        if matches!(p.cost, CostTerms::Backward | CostTerms::Both) {
            num += i128::from(self.nbhd.bwd_compute(s));
        }
        if p.cost == CostTerms::Both {
            num += i128::from(self.nbhd.fwd_compute(s));
        }
        let mut next: Option<u64> = None;
        let mut known = false;
        for &t in &st.tensors {
            if let Some(n) = self.lookahead.next_use(t) {
                known = true;
                next = Some(next.map_or(n, |m: u64| m.min(n)));
            }
        }
        if !known {
            return self.staleness_score(num, st);
        }
        // Both distances in clock units (ns), +1 so that neither is ever 0; a storage never
        // accessed or never used again gets a huge distance (score ≈ 0: evicted first).
        // (Saturating: a next use at `u64::MAX` with `now == 0` must not wrap to 0.)
        let dist = next
            .map_or(u64::MAX / 4, |n| n.saturating_sub(self.lookahead.now))
            .saturating_add(1);
        let stale = st
            .last_access
            .map_or(u64::MAX / 4, |l| self.clock - l.min(self.clock))
            .saturating_add(1);
        let idle = u128::from(stale) * u128::from(p.stale_weight)
            + u128::from(dist) * u128::from(p.next_use_weight);
        if p.idle_exponent == 1 {
            div_round(num, u128::from(st.size).saturating_mul(idle))
        } else {
            // Past u128: one rounding per factor (memplan's own score, no simrd tie to keep).
            let idle = idle as f64;
            num as f64 / (st.size as f64 * idle * idle)
        }
    }

    /// The victim: the last minimum score of the pool, stopping at the first 0.
    ///
    /// # Panics
    /// If the pool is empty.
    pub(super) fn choose(&self, pool: &Pool) -> usize {
        let mut best = f64::INFINITY;
        let mut victim = None;
        for s in pool.iter() {
            let score = self.score(s as usize);
            if score <= best {
                best = score;
                victim = Some(s);
            }
            if score == 0.0 {
                break;
            }
        }
        // Only NaN scores (cannot happen with the formulas above): take the last.
        let victim = victim.or_else(|| pool.iter().next_back()).expect("pool");
        victim as usize
    }
}

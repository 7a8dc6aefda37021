//! The exact search on one leaf: drives runs of the branch-and-bound over canonical plans
//! (`canonical.rs`) to improve on the heuristics' plan, and proves lower bounds.
//!
//! A good ranking finds a plan orders of magnitude faster than a bad one, so every question
//! "is there a plan within this cap?" is asked with each ranking in turn, under a node limit
//! that doubles every round (round robin, as MiniMalloc does). A run that ends without
//! hitting its limit is a proof either way. Minimising bisects on the cap between the proven
//! lower bound and the best peak; fitting a capacity asks at the capacity, and once the
//! instance shows itself hard also spends nodes lowering the best peak, so that a miss
//! reports a useful one. Design notes: `doc/PACKER.md`.
//!
//! Invariants of an [`Improvement`]: `proven_lb` is at least the caller's bound and no plan
//! of the leaf peaks below it; `offsets`, when present, is a plan of the leaf whose peak is
//! `peak`, below the caller's incumbent.

use alloc::vec::Vec;

use super::budget::Control;
use super::canonical::{RANKINGS, Search, Status};
use super::problem::Item;

/// What the exact search on one leaf achieved. See the module docs for its invariants.
pub(super) struct Improvement {
    /// The best plan found below the incumbent (offsets parallel to the leaf's items).
    pub offsets: Option<Vec<u64>>,
    /// Its peak (or the incumbent's, when none was found).
    pub peak: u64,
    /// A proven lower bound on the peak of any plan (at least the caller's).
    pub proven_lb: u64,
}

/// Searches for a better plan of `local` (all at or above `base`) than the caller's, whose
/// peak is `incumbent`; `lb` is a proven lower bound on the peak.
///
/// With a `capacity`, looks for one plan within it. Without, bisects on the cap between the
/// bounds until a plan at or below `target` is found, optimality is proven, or the budget
/// runs out.
pub(super) fn improve(
    local: &[Item],
    base: u64,
    incumbent: u64,
    lb: u64,
    capacity: Option<u64>,
    target: u64,
    ctrl: &mut Control<'_>,
) -> Improvement {
    let n = local.len();
    let mut s = Search::new(local, base, incumbent.saturating_sub(1), ctrl);
    let nsec = s.nsec();
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
                        best = Some(s.solution().to_vec());
                        best_peak = peak;
                        break 'rounds;
                    }
                    (Status::NotFound, _, _) => {
                        proven_lb = proven_lb.max(proven_if_none);
                        break 'rounds;
                    }
                    (Status::Abort, _, _) if s.stopped() => break 'rounds,
                    (Status::Abort, _, _) => {}
                }
            }
            if limit >= hard && soft < best_peak {
                let c = snap(soft + (best_peak - 1 - soft) / 2).max(soft);
                match feasible(&mut s, &all, nsec as u32, c, limit) {
                    (Status::Found, peak) => {
                        best = Some(s.solution().to_vec());
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
                    (Status::Abort, _) if s.stopped() => break 'rounds,
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
            if best_peak <= target.max(proven_lb) || s.stopped() {
                break;
            }
            if soft_lb >= best_peak {
                per_try = per_try.saturating_mul(4);
                soft_lb = proven_lb;
                continue;
            }
            let cap = snap(soft_lb + (best_peak - 1 - soft_lb) / 2).max(soft_lb);
            match feasible(&mut s, &all, nsec as u32, cap, per_try) {
                (Status::Found, peak) => {
                    best = Some(s.solution().to_vec());
                    best_peak = peak;
                }
                (Status::NotFound, _) => {
                    proven_lb = cap + 1;
                    soft_lb = soft_lb.max(proven_lb);
                }
                (Status::Abort, _) => {
                    if s.stopped() {
                        break;
                    }
                    soft_lb = cap + 1;
                }
            }
        }
    }
    Improvement {
        offsets: best,
        peak: best_peak,
        proven_lb,
    }
}

/// Greatest common divisor (`gcd(a, 0) = a`).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Looks for a plan of `all` (sections `0..nsec`) within `cap`, restarting with each
/// ranking under a doubling node limit, for at most `budget` nodes in all. Returns the
/// status and, when found, the plan's peak (the plan is in `s.solution()`). `NotFound` means no
/// plan within `cap` exists.
fn feasible(
    s: &mut Search<'_, '_>,
    all: &[u32],
    nsec: u32,
    cap: u64,
    budget: u64,
) -> (Status, u64) {
    let mut spent = 0u64;
    let mut limit = (2 * all.len() as u64).max(64);
    loop {
        for r in RANKINGS {
            if spent >= budget {
                return (Status::Abort, 0);
            }
            let (status, peak, nodes) = s.run(all, nsec, r, cap, limit.min(budget - spent));
            spent += nodes;
            match status {
                Status::Abort if !s.stopped() => {}
                _ => return (status, peak),
            }
        }
        limit = limit.saturating_mul(2);
    }
}

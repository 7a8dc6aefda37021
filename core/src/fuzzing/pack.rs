//! The `pack` fuzz case: bytes → a packing instance → [`crate::pack()`] → checks.
//!
//! The plans are checked by [`check::verify`](crate::check::verify) and the optimum by the
//! brute-force [`oracle`](super::oracle), neither of which shares code with the packer.
//!
//! # Encoding (bytecode style: every byte is valid)
//! ```text
//! byte 0      budget:   [0, 1, 16, 200, 2000, unlimited][b % 6]  (unlimited only when n <= 7)
//! byte 1      capacity: [none, max load, max load + slack, max load - 1, greedy peak,
//!                        optimum, optimum - 1][b % 7]             (optimum only when n <= 6)
//! byte 2      alignment mode: even = all alignments 1, odd = each op picks 1 << (b % 8)
//! then ops, until the bytes run out or MAX_OPS were read; each op is one byte (op % 7) and
//! its arguments, missing bytes read as 0:
//!   0 fresh      lower, length, size (2 bytes)
//!   1 same life  as the previous buffer, new size
//!   2 nested     inside the previous buffer's lifetime, new size
//!   3 chain      starts just before the previous one ends, same size (equal sizes)
//!   4 huge       size 2^(40 + b % 24): sums of these overflow u64 (Problem::push must refuse)
//!   5 twin       an exact copy of the previous buffer under a new id
//!   6 invalid    zero size / empty lifetime / bad alignment / duplicate id (must be refused)
//! ```
//! Times stay small (< 64) so that lifetimes overlap often.

use alloc::format;
use alloc::vec::Vec;

use crate::check::verify;
use crate::error::Error;
use crate::fuzzing::oracle::{naive_max_load, optimal_peak};
use crate::fuzzing::reader::Reader;
use crate::pack::{Budget, Buffer, PackOptions, Problem, Solution, greedy_by_size, pack};

/// Most ops decoded from one input.
pub const MAX_OPS: usize = 24;
/// Largest instance on which [`check`] runs the brute-force oracle [`optimal_peak`].
pub const ORACLE_MAX_N: usize = 6;

/// How the capacity passed to `pack` is chosen, once the instance is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityMode {
    /// No capacity.
    None,
    /// The max-load lower bound.
    MaxLoad,
    /// The max load plus this much slack.
    MaxLoadPlus(u64),
    /// One byte below the max load: never feasible.
    BelowMaxLoad,
    /// The peak of `greedy_by_size`: always feasible.
    GreedyPeak,
    /// The optimum from [`optimal_peak`] (small instances; else no capacity).
    Optimum,
    /// One below the optimum: never feasible (small instances; else no capacity).
    BelowOptimum,
}

/// A decoded input: buffers to push (some possibly invalid) and the options to pack with.
#[derive(Debug, Clone)]
pub struct Case {
    /// Buffers in push order; invalid ones must be refused by `Problem::push`.
    pub buffers: Vec<Buffer>,
    /// Node budget (`None` = unlimited, used only on small instances).
    pub max_nodes: Option<u64>,
    /// How to pick the capacity.
    pub capacity: CapacityMode,
}

/// Decodes bytes into a [`Case`]. Every input decodes.
pub fn decode(data: &[u8]) -> Case {
    let mut r = Reader(data);
    let budget = r.byte() % 6;
    let capacity = match r.byte() % 7 {
        0 => CapacityMode::None,
        1 => CapacityMode::MaxLoad,
        2 => CapacityMode::MaxLoadPlus(u64::from(r.byte())),
        3 => CapacityMode::BelowMaxLoad,
        4 => CapacityMode::GreedyPeak,
        5 => CapacityMode::Optimum,
        _ => CapacityMode::BelowOptimum,
    };
    let aligned = r.byte() % 2 == 1;
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut ops = 0;
    while !r.0.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = r.byte() % 7;
        let align = if aligned { 1u64 << (r.byte() % 8) } else { 1 };
        let id = format!("b{}", buffers.len());
        // The last buffer with a usable lifetime (invalid ones may have none).
        let prev = buffers.iter().rev().find(|b| b.lower < b.upper).cloned();
        let fresh = |r: &mut Reader<'_>| {
            let lower = u64::from(r.byte() % 48);
            let len = 1 + u64::from(r.byte() % 16);
            (lower, lower + len)
        };
        let b = match (op, prev) {
            (1, Some(p)) => Buffer::new(id, p.lower, p.upper, 1 + u64::from(r.byte())),
            (2, Some(p)) => {
                let lower = p.lower + u64::from(r.byte()) % (p.upper - p.lower);
                let upper = lower + 1 + u64::from(r.byte()) % (p.upper - lower);
                Buffer::new(id, lower, upper, 1 + u64::from(r.byte()))
            }
            (3, Some(p)) => {
                let lower = p.upper - 1;
                Buffer::new(id, lower, lower + 1 + u64::from(r.byte() % 8), p.size)
            }
            (4, _) => {
                let (lower, upper) = fresh(&mut r);
                Buffer::new(id, lower, upper, 1u64 << (40 + r.byte() % 24))
            }
            (5, Some(p)) => Buffer { id, ..p },
            (6, prev) => {
                let (lower, upper) = fresh(&mut r);
                match (r.byte() % 4, prev) {
                    (0, _) => Buffer::new(id, lower, upper, 0),
                    (1, _) => Buffer::new(id, upper, lower + u64::from(r.byte() % 2), 1),
                    (2, _) => Buffer::new(id, lower, upper, 1).with_alignment(3),
                    (_, Some(p)) => Buffer::new(p.id, lower, upper, 1),
                    (_, None) => Buffer::new(id, lower, upper, 1).with_alignment(0),
                }
            }
            _ => {
                let (lower, upper) = fresh(&mut r);
                Buffer::new(id, lower, upper, 1 + u64::from(r.u16()))
            }
        };
        // Invalid alignments chosen above stay invalid; valid ones get this op's alignment.
        let b = if b.alignment == 1 {
            b.with_alignment(align)
        } else {
            b
        };
        buffers.push(b);
    }
    let max_nodes = [Some(0), Some(1), Some(16), Some(200), Some(2000), None][budget as usize];
    Case {
        buffers,
        max_nodes,
        capacity,
    }
}

/// Builds the problem from the case's buffers, checking that `Problem::push` accepts exactly
/// the valid ones and leaves the problem unchanged when it refuses one.
pub fn build(buffers: &[Buffer]) -> Problem {
    let mut p = Problem::new();
    let mut total: Option<u64> = Some(0); // sum of size + alignment - 1, as documented
    for b in buffers {
        let before = p.len();
        let dup = p.index_of(&b.id).is_some();
        let invalid = b.size == 0 || b.upper <= b.lower || !b.alignment.is_power_of_two() || dup;
        let new_total = total
            .and_then(|t| t.checked_add(b.size))
            .and_then(|t| t.checked_add(b.alignment.saturating_sub(1)));
        match p.push(b.clone()) {
            Ok(index) => {
                assert!(!invalid, "push accepted invalid buffer {b:?}");
                assert!(
                    new_total.is_some(),
                    "push accepted {b:?} although sizes overflow u64"
                );
                assert_eq!(index, before);
                assert_eq!(p.index_of(&b.id), Some(index));
                total = new_total;
            }
            Err(e) => {
                assert!(
                    invalid || (new_total.is_none() && matches!(e, Error::Overflow { .. })),
                    "push refused valid buffer {b:?}: {e}"
                );
                assert_eq!(p.len(), before, "refused push changed the problem");
            }
        }
    }
    p
}

/// Decodes `data`, packs the instance and checks everything that must hold. Panics on any
/// violation; this is the body of the `pack` fuzz target.
pub fn check(data: &[u8]) {
    let case = decode(data);
    let p = build(&case.buffers);
    let n = p.len();
    let max_load = p.max_load();
    assert_eq!(
        u128::from(max_load),
        naive_max_load(p.buffers()),
        "max_load"
    );
    let align1 = p.buffers().iter().all(|b| b.alignment == 1);
    let opt = (n <= ORACLE_MAX_N).then(|| optimal_peak(p.buffers()));

    let greedy = greedy_by_size(&p);
    check_plan(&p, &greedy, None);

    let capacity = match case.capacity {
        CapacityMode::None => None,
        CapacityMode::MaxLoad => Some(max_load),
        CapacityMode::MaxLoadPlus(k) => Some(max_load.saturating_add(k)),
        CapacityMode::BelowMaxLoad => max_load.checked_sub(1),
        CapacityMode::GreedyPeak => Some(greedy.peak),
        CapacityMode::Optimum => opt,
        CapacityMode::BelowOptimum => opt.and_then(|o| o.checked_sub(1)),
    };
    // Unlimited search only where it is cheap.
    let max_nodes = case.max_nodes.or(if n <= 7 { None } else { Some(2000) });
    let options = || PackOptions {
        capacity,
        budget: Budget {
            max_nodes,
            stop: None,
        },
    };
    let result = pack(&p, options());
    assert_eq!(result, pack(&p, options()), "pack is not deterministic");

    match result {
        Ok(s) => {
            check_plan(&p, &s, capacity);
            if let Some(m) = max_nodes {
                assert!(s.nodes <= m, "{} nodes expanded, budget {m}", s.nodes);
            }
            if capacity.is_none() && align1 {
                assert!(
                    s.peak <= greedy.peak,
                    "pack peak {} worse than greedy_by_size {}",
                    s.peak,
                    greedy.peak
                );
            }
            if let Some(opt) = opt {
                assert!(
                    s.peak >= opt,
                    "peak {} below the brute-force optimum {opt}",
                    s.peak
                );
                if capacity.is_none() {
                    assert!(
                        !s.optimal || s.peak == opt,
                        "optimal claimed: {} > {opt}",
                        s.peak
                    );
                    if max_nodes.is_none() && align1 {
                        assert!(s.optimal, "unlimited search did not prove optimality");
                        assert_eq!(s.peak, opt, "unlimited search missed the optimum");
                    }
                }
            }
        }
        Err(Error::CapacityExceeded {
            capacity: cap,
            best_peak,
            max_load: ml,
            proven,
        }) => {
            let c = capacity.expect("CapacityExceeded without a capacity");
            assert_eq!(cap, c);
            assert_eq!(ml, max_load);
            assert!(best_peak > c, "best peak {best_peak} fits capacity {c}");
            assert!(best_peak >= max_load);
            assert!(
                max_load <= c || proven,
                "max load > capacity but not proven"
            );
            assert!(
                c < greedy.peak || !align1,
                "no plan within {c}, but greedy_by_size peaks at {}",
                greedy.peak
            );
            if let Some(opt) = opt {
                assert!(
                    !proven || opt > c,
                    "infeasible claimed, yet optimum {opt} <= {c}"
                );
                if max_nodes.is_none() && align1 {
                    assert!(
                        opt > c,
                        "unlimited search missed a plan within {c} (opt {opt})"
                    );
                    assert!(proven, "unlimited search did not prove infeasibility");
                }
            }
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// What must hold of every plan: one offset per buffer, verified, peak and max load reported
/// truly, and `optimal` whenever the peak meets the lower bound.
fn check_plan(p: &Problem, s: &Solution, capacity: Option<u64>) {
    assert_eq!(s.offsets.len(), p.len());
    if let Err(e) = verify(p.buffers(), &s.placements(p), capacity) {
        panic!("invalid plan: {e}\n{p:?}\n{s:?}");
    }
    let peak = p
        .buffers()
        .iter()
        .zip(&s.offsets)
        .map(|(b, o)| o + b.size)
        .max()
        .unwrap_or(0);
    assert_eq!(s.peak, peak, "reported peak");
    assert_eq!(s.max_load, p.max_load(), "reported max load");
    assert!(s.peak >= s.max_load, "peak below the lower bound");
    assert!(
        s.peak != s.max_load || s.optimal,
        "peak == max load but not optimal"
    );
}

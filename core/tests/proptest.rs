//! Property tests of the packer against the independent verifier and a brute-force oracle.
//!
//! - the verifier itself, on hand-made plans (each rule, and the touching cases that are *not*
//!   overlaps);
//! - oracle: on tiny instances (n <= 7), an unlimited search equals the brute-force optimum of
//!   `memplan_core::fuzzing::oracle` and says so;
//! - laws that hold under any budget: plans verify, the reported numbers are true, the node
//!   budget holds, capacities are honoured or refused consistently;
//! - metamorphic relations: shuffling, removing a buffer, scaling sizes;
//! - determinism: the same input and node budget give the same result.
//!
//! Instances come in adversarial shapes (equal sizes, nested, one huge buffer, all alive at
//! one moment, chains, twins) as well as at random.

use memplan_core::check::{CheckError, verify};
use memplan_core::fuzzing::oracle::{naive_max_load, optimal_peak};
use memplan_core::{
    Budget, Buffer, Error, PackOptions, PlacedBuffer, Problem, Solution, greedy_by_size, pack,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Instances

#[derive(Debug, Clone, Copy)]
enum Shape {
    Random,
    /// Every buffer has the same size.
    EqualSizes,
    /// Lifetimes nested like parentheses: `[i, 2n - i)`.
    Nested,
    /// One buffer of 1 MiB among buffers of 1..=4 bytes.
    OneHuge,
    /// Every buffer is alive at moment 8.
    AllOverlapping,
    /// Each buffer overlaps only its neighbours in time.
    Chain,
    /// Three lifetimes and two sizes: many identical buffers.
    Twins,
    /// Sizes 1..=3, short lifetimes, few moments: dense.
    Dense,
    /// One of the [`HARD`] instances (optimum above the max load), mirrored or not in time,
    /// shifted, sizes scaled, order rotated; then random buffers if `n > 7`.
    Hard,
}

/// Seven buffers as `(lower, upper, size)`, their max load, their optimum.
type HardCase = ([(u64, u64, u64); 7], u64, u64);

/// Instances whose optimum exceeds the max load (found by random search, checked by the
/// oracle), so the exact search must run to prove optimality: `(buffers, max load, optimum)`.
const HARD: [HardCase; 4] = [
    (
        [
            (0, 4, 2),
            (2, 6, 1),
            (5, 7, 2),
            (1, 2, 2),
            (2, 5, 1),
            (4, 6, 1),
            (6, 7, 2),
        ],
        4,
        5,
    ),
    (
        [
            (4, 8, 3),
            (2, 6, 2),
            (1, 5, 2),
            (6, 8, 3),
            (0, 1, 3),
            (1, 3, 2),
            (0, 2, 3),
        ],
        7,
        8,
    ),
    (
        [
            (2, 6, 2),
            (3, 6, 1),
            (6, 7, 3),
            (4, 8, 3),
            (1, 3, 3),
            (0, 2, 3),
            (2, 4, 1),
        ],
        6,
        7,
    ),
    (
        [
            (0, 4, 1),
            (5, 7, 3),
            (1, 2, 3),
            (3, 7, 1),
            (2, 3, 2),
            (4, 5, 2),
            (2, 5, 1),
        ],
        4,
        5,
    ),
];

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        1 => Just(Shape::Random),
        1 => Just(Shape::EqualSizes),
        1 => Just(Shape::Nested),
        1 => Just(Shape::OneHuge),
        1 => Just(Shape::AllOverlapping),
        1 => Just(Shape::Chain),
        1 => Just(Shape::Twins),
        1 => Just(Shape::Dense),
        3 => Just(Shape::Hard),
    ]
}

/// Instances of 1..=max_n buffers; alignments are random powers of two up to 32 when
/// `aligned`, else 1.
fn instance(max_n: usize, aligned: bool) -> impl Strategy<Value = Vec<Buffer>> {
    let raw = (0u64..24, 1u64..10, 1u64..=64, 0u64..6);
    (shape(), proptest::collection::vec(raw, 1..=max_n)).prop_map(move |(shape, mut raw)| {
        if let Shape::Hard = shape {
            raw.resize(raw.len().max(7), raw[0]);
        }
        let n = raw.len() as u64;
        let (pick, mirror, shift, scale) = raw[0];
        let hard = &HARD[pick as usize % HARD.len()].0;
        let hard_at = |i: u64| {
            let (l, u, s) = hard[((i + pick) % 7) as usize];
            let (l, u) = if mirror % 2 == 1 {
                (10 - u, 10 - l)
            } else {
                (l, u)
            };
            (l + shift % 5, u + shift % 5, s * (1 + scale % 3))
        };
        raw.iter()
            .zip(0u64..)
            .map(|(&(a, len, size, al), i)| {
                let (lower, upper, size) = match shape {
                    Shape::Hard if i < 7 => hard_at(i),
                    Shape::Dense | Shape::Hard => (a % 7, a % 7 + 1 + len % 4, 1 + size % 3),
                    Shape::Random => (a, a + len, size),
                    Shape::EqualSizes => (a, a + len, 16),
                    Shape::Nested => (i, 2 * n - i, size),
                    Shape::OneHuge => (a, a + len, if i == 0 { 1 << 20 } else { 1 + size % 4 }),
                    Shape::AllOverlapping => (a % 8, 9 + len, size),
                    Shape::Chain => (2 * i, 2 * i + 3, size),
                    Shape::Twins => (a % 3 * 4, a % 3 * 4 + 6, 8 << (size % 2)),
                };
                let alignment = if aligned { 1 << al } else { 1 };
                Buffer::new(format!("b{i}"), lower, upper, size).with_alignment(alignment)
            })
            .collect()
    })
}

/// Any instance, aligned or not.
fn any_instance(max_n: usize) -> impl Strategy<Value = Vec<Buffer>> {
    prop_oneof![instance(max_n, false), instance(max_n, true)]
}

fn budget() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(10), Just(100), Just(1000)]
}

fn problem(buffers: &[Buffer]) -> Problem {
    Problem::from_buffers(buffers.iter().cloned()).expect("generated instances are valid")
}

fn options(capacity: Option<u64>, max_nodes: Option<u64>) -> PackOptions<'static> {
    PackOptions {
        capacity,
        budget: Budget {
            max_nodes,
            stop: None,
        },
    }
}

/// Checks what every plan must satisfy and returns it: valid (by the verifier), and the
/// reported peak, max load and `optimal` consistent with the offsets.
fn assert_sound(p: &Problem, s: &Solution, capacity: Option<u64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.offsets.len(), p.len());
    if let Err(e) = verify(p.buffers(), &s.placements(p), capacity) {
        return Err(TestCaseError::fail(format!("invalid plan: {e}; {s:?}")));
    }
    let peak = p
        .buffers()
        .iter()
        .zip(&s.offsets)
        .map(|(b, o)| o + b.size)
        .max()
        .unwrap_or(0);
    prop_assert_eq!(s.peak, peak, "reported peak");
    prop_assert_eq!(
        u128::from(s.max_load),
        naive_max_load(p.buffers()),
        "reported max load"
    );
    prop_assert!(s.peak >= s.max_load, "peak below the lower bound");
    prop_assert!(
        s.peak != s.max_load || s.optimal,
        "peak == max load but not optimal"
    );
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: if std::env::var("CI").is_ok() { 0 } else { 4096 },
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The verifier

fn place(b: &Buffer, offset: u64) -> PlacedBuffer {
    PlacedBuffer {
        id: b.id.clone(),
        lower: b.lower,
        upper: b.upper,
        size: b.size,
        offset,
    }
}

/// `a` alive [0, 4) and `b` alive [2, 6), 4 bytes each, `c` alive [4, 8) 8 bytes aligned to 8.
fn three() -> Vec<Buffer> {
    vec![
        Buffer::new("a", 0, 4, 4),
        Buffer::new("b", 2, 6, 4),
        Buffer::new("c", 4, 8, 8).with_alignment(8),
    ]
}

fn good_plan(input: &[Buffer]) -> Vec<PlacedBuffer> {
    vec![
        place(&input[0], 0),
        place(&input[1], 4),
        place(&input[2], 8),
    ]
}

#[test]
fn verify_accepts_a_valid_plan_in_any_order() {
    let input = three();
    let mut plan = good_plan(&input);
    assert_eq!(verify(&input, &plan, None), Ok(()));
    assert_eq!(verify(&input, &plan, Some(16)), Ok(()));
    plan.reverse();
    assert_eq!(verify(&input, &plan, Some(16)), Ok(()));
    assert_eq!(verify(&[], &[], Some(0)), Ok(()));
}

#[test]
fn verify_rejects_missing_extra_and_duplicate_placements() {
    let input = three();
    let plan = good_plan(&input);
    assert_eq!(
        verify(&input, &plan[..2], None),
        Err(CheckError::Missing { id: "c".into() })
    );
    let mut extra = plan.clone();
    extra.push(place(&Buffer::new("d", 0, 1, 1), 100));
    assert_eq!(
        verify(&input, &extra, None),
        Err(CheckError::Unexpected { id: "d".into() })
    );
    let mut dup = plan.clone();
    dup.push(plan[0].clone());
    assert_eq!(
        verify(&input, &dup, None),
        Err(CheckError::Unexpected { id: "a".into() })
    );
}

#[test]
fn verify_rejects_changed_buffers() {
    let input = three();
    for change in 0..3 {
        let mut plan = good_plan(&input);
        match change {
            0 => plan[0].size = 3, // shrinking would hide an overlap
            1 => plan[0].lower = 1,
            _ => plan[0].upper = 3,
        }
        assert_eq!(
            verify(&input, &plan, None),
            Err(CheckError::Changed { id: "a".into() }),
            "change {change}"
        );
    }
}

#[test]
fn verify_rejects_misaligned_offsets() {
    let input = three();
    let mut plan = good_plan(&input);
    plan[2].offset = 12; // a multiple of 4, not of 8
    assert_eq!(
        verify(&input, &plan, None),
        Err(CheckError::Misaligned {
            id: "c".into(),
            offset: 12,
            alignment: 8
        })
    );
}

#[test]
fn verify_rejects_overlaps_and_accepts_touching() {
    let input = three();
    // Same bytes, overlapping lifetimes: [0,4) and [2,6) at offsets 0 and 3.
    let mut plan = good_plan(&input);
    plan[1].offset = 3;
    assert!(matches!(
        verify(&input, &plan, None),
        Err(CheckError::Overlap { .. })
    ));
    // One byte nested inside the other's range.
    let mut plan = good_plan(&input);
    plan[0].offset = 5;
    plan[1].offset = 4;
    assert!(matches!(
        verify(&input, &plan, None),
        Err(CheckError::Overlap { .. })
    ));
    // Touching in space: offset + size == other offset is not an overlap.
    let plan = good_plan(&input);
    assert_eq!(plan[0].offset + plan[0].size, plan[1].offset);
    assert_eq!(verify(&input, &plan, None), Ok(()));
    // Touching in time: `a` ends at 4 when `c` starts; same bytes are fine.
    let mut plan = good_plan(&input);
    plan[2].offset = 0;
    plan[1].offset = 8;
    assert_eq!(verify(&input, &plan, None), Ok(()));
    // ... but not when `b` (alive until 6) shares bytes with `c` (from 4).
    plan[1].offset = 4;
    assert!(matches!(
        verify(&input, &plan, None),
        Err(CheckError::Overlap { .. })
    ));
    // Identical placements of two live buffers, found whatever the input order.
    let two = [Buffer::new("x", 0, 2, 1), Buffer::new("y", 1, 3, 1)];
    let plan = [place(&two[1], 7), place(&two[0], 7)];
    assert!(matches!(
        verify(&two, &plan, None),
        Err(CheckError::Overlap { .. })
    ));
}

#[test]
fn verify_rejects_overlap_hidden_behind_a_neighbour() {
    // Three buffers alive together; `z` overlaps `x` but its offset neighbour is `y`.
    let bs = [
        Buffer::new("x", 0, 5, 10),
        Buffer::new("y", 0, 5, 1),
        Buffer::new("z", 1, 5, 2),
    ];
    let plan = [place(&bs[0], 0), place(&bs[1], 20), place(&bs[2], 5)];
    assert!(matches!(
        verify(&bs, &plan, None),
        Err(CheckError::Overlap { .. })
    ));
}

#[test]
fn verify_rejects_plans_beyond_capacity_or_u64() {
    let input = three();
    let plan = good_plan(&input);
    assert_eq!(verify(&input, &plan, Some(16)), Ok(()));
    assert_eq!(
        verify(&input, &plan, Some(15)),
        Err(CheckError::OutOfBounds {
            id: "c".into(),
            end: 16
        })
    );
    let big = [Buffer::new("big", 0, 1, 2)];
    assert_eq!(
        verify(&big, &[place(&big[0], u64::MAX - 1)], None),
        Err(CheckError::OutOfBounds {
            id: "big".into(),
            end: u64::MAX
        })
    );
    assert_eq!(verify(&big, &[place(&big[0], u64::MAX - 2)], None), Ok(()));
}

#[test]
fn push_rejects_invalid_buffers_and_keeps_the_problem() {
    let mut p = Problem::new();
    p.push(Buffer::new("a", 0, 2, 1)).unwrap();
    let bad = [
        Buffer::new("z", 0, 2, 0),
        Buffer::new("e", 2, 2, 1),
        Buffer::new("r", 3, 2, 1),
        Buffer::new("al", 0, 2, 1).with_alignment(0),
        Buffer::new("al3", 0, 2, 1).with_alignment(3),
        Buffer::new("a", 5, 6, 1),
        Buffer::new("o", 0, 1, u64::MAX),
    ];
    for b in bad {
        assert!(p.push(b.clone()).is_err(), "accepted {b:?}");
        assert_eq!(p.len(), 1);
    }
    assert!(matches!(
        p.push(Buffer::new("o", 0, 1, u64::MAX)),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(p.push(Buffer::new("b", 0, 1, u64::MAX - 1)), Ok(1));
}

// ---------------------------------------------------------------------------------------------
// The oracle itself, on known answers (so that a broken oracle cannot pass silently)

#[test]
fn oracle_known_answers() {
    // Three 4-byte buffers in a chain: 8 (the example in the `pack` docs).
    let chain = [
        Buffer::new("a", 0, 2, 4),
        Buffer::new("b", 1, 3, 4),
        Buffer::new("c", 2, 4, 4),
    ];
    assert_eq!(optimal_peak(&chain), 8);
    // Five small buffers: the second oracle, trying every offset, agrees.
    let five = [
        Buffer::new("a", 0, 2, 2),
        Buffer::new("b", 1, 3, 1),
        Buffer::new("c", 2, 4, 2),
        Buffer::new("d", 0, 1, 1),
        Buffer::new("e", 3, 4, 1),
    ];
    assert_eq!(naive_max_load(&five), 3);
    assert_eq!(optimal_peak(&five), 3);
    assert_eq!(brute_force_offsets(&five), 3);
    // The hard instances: optimum above the max load.
    for (bs, ml, opt) in HARD {
        let bs: Vec<Buffer> = bs
            .iter()
            .enumerate()
            .map(|(i, &(l, u, s))| Buffer::new(format!("h{i}"), l, u, s))
            .collect();
        assert_eq!(naive_max_load(&bs), u128::from(ml));
        assert_eq!(optimal_peak(&bs), opt);
    }
    // Alignment: two 8-aligned bytes and a plain one, all alive together: 0, 8 and 1 → 9.
    let al = [
        Buffer::new("a", 0, 2, 1),
        Buffer::new("b", 0, 2, 1).with_alignment(8),
        Buffer::new("c", 1, 3, 1).with_alignment(8),
    ];
    assert_eq!(optimal_peak(&al), 9);
    assert_eq!(brute_force_offsets(&al), 9);
    assert_eq!(optimal_peak(&[]), 0);
}

/// A second, even more naive oracle to validate the first on small cases: every assignment
/// of aligned offsets below the best peak found so far, keeping the best valid one.
/// Exponential in n.
fn brute_force_offsets(bs: &[Buffer]) -> u64 {
    // Stacking every buffer (aligned) is a valid plan with this peak: the search starts there.
    let bound: u64 = bs.iter().map(|b| b.size + b.alignment - 1).sum();
    let mut best = bound + 1;
    let mut offs = vec![0u64; bs.len()];
    fn rec(bs: &[Buffer], k: usize, offs: &mut [u64], bound: u64, best: &mut u64) {
        if k == bs.len() {
            let peak = bs
                .iter()
                .zip(offs.iter())
                .map(|(b, o)| o + b.size)
                .max()
                .unwrap_or(0);
            *best = (*best).min(peak);
            return;
        }
        let mut o = 0;
        while o + bs[k].size <= bound.min(*best - 1) {
            let clash = (0..k).any(|j| {
                bs[j].lower < bs[k].upper
                    && bs[k].lower < bs[j].upper
                    && offs[j] < o + bs[k].size
                    && o < offs[j] + bs[j].size
            });
            if !clash {
                offs[k] = o;
                rec(bs, k + 1, offs, bound, best);
            }
            o += bs[k].alignment;
        }
    }
    rec(bs, 0, &mut offs, bound, &mut best);
    best
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn oracles_agree(bs in (instance(4, false), any::<bool>()).prop_map(|(mut bs, aligned)| {
        bs.truncate(4); // `Shape::Hard` gives 7
        for (k, b) in bs.iter_mut().enumerate() {
            b.size = 1 + b.size % 4;
            if aligned { b.alignment = 1 << (k % 3); }
        }
        bs
    })) {
        prop_assert_eq!(optimal_peak(&bs), brute_force_offsets(&bs));
    }
}

// ---------------------------------------------------------------------------------------------
// The packer against the oracle (tiny instances, unlimited search)

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn unlimited_search_finds_the_optimum(bs in instance(7, false)) {
        let p = problem(&bs);
        let opt = optimal_peak(&bs);
        let s = pack(&p, options(None, None)).expect("no capacity");
        assert_sound(&p, &s, None)?;
        prop_assert_eq!(s.peak, opt, "unlimited search is not optimal");
        prop_assert!(s.optimal, "optimum found but not claimed");
        prop_assert!(greedy_by_size(&p).peak >= opt);
        // The optimum as capacity fits; one byte less is refused, and provably so.
        let s = pack(&p, options(Some(opt), None)).expect("the optimum fits");
        assert_sound(&p, &s, Some(opt))?;
        match pack(&p, options(Some(opt - 1), None)) {
            Err(Error::CapacityExceeded { capacity, best_peak, max_load, proven }) => {
                prop_assert_eq!(capacity, opt - 1);
                prop_assert!(best_peak >= opt);
                prop_assert_eq!(max_load, p.max_load());
                prop_assert!(proven, "unlimited search did not prove infeasibility");
            }
            other => prop_assert!(false, "capacity below the optimum: {other:?}"),
        }
    }

    #[test]
    fn unlimited_search_finds_the_aligned_optimum(bs in instance(7, true)) {
        let p = problem(&bs);
        let opt = optimal_peak(&bs);
        let s = pack(&p, options(None, None)).expect("no capacity");
        assert_sound(&p, &s, None)?;
        prop_assert_eq!(s.peak, opt, "unlimited search misses the aligned optimum");
        prop_assert!(s.optimal, "aligned optimum found but not claimed");
        match pack(&p, options(Some(opt - 1), None)) {
            Err(Error::CapacityExceeded { proven, .. }) => {
                prop_assert!(proven, "unlimited search did not prove infeasibility");
            }
            other => prop_assert!(false, "capacity below the optimum: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Laws under any budget

proptest! {
    #![proptest_config(config(768))]

    #[test]
    fn budgeted_plans_are_sound(bs in any_instance(40), m in budget()) {
        let p = problem(&bs);
        let s = pack(&p, options(None, Some(m))).expect("no capacity");
        assert_sound(&p, &s, None)?;
        assert_sound(&p, &greedy_by_size(&p), None)?;
    }

    #[test]
    fn node_budget_is_respected(bs in any_instance(40), m in budget()) {
        let s = pack(&problem(&bs), options(None, Some(m))).expect("no capacity");
        prop_assert!(s.nodes <= m, "{} nodes expanded with max_nodes = {m}", s.nodes);
    }

    /// Documented on `greedy_by_size`: "pack is never worse than it on problems without
    /// alignment constraints" (for any budget, since the heuristics run first).
    #[test]
    fn never_worse_than_greedy_by_size(bs in instance(40, false), m in budget()) {
        let p = problem(&bs);
        let s = pack(&p, options(None, Some(m))).expect("no capacity");
        let g = greedy_by_size(&p);
        prop_assert!(s.peak <= g.peak, "pack {} > greedy_by_size {} (max_nodes {m})", s.peak, g.peak);
    }

    #[test]
    fn capacity_is_honoured_or_refused_consistently(
        bs in any_instance(40),
        m in budget(),
        pick in 0u8..4,
        frac in 0u64..=100,
    ) {
        let p = problem(&bs);
        let ml = p.max_load();
        let g = greedy_by_size(&p).peak;
        let cap = match pick {
            0 => ml,
            1 => ml - 1,
            2 => g,
            _ => ml + (g - ml) * frac / 100,
        };
        match pack(&p, options(Some(cap), Some(m))) {
            Ok(s) => {
                assert_sound(&p, &s, Some(cap))?;
                prop_assert!(s.peak <= cap);
            }
            Err(Error::CapacityExceeded { capacity, best_peak, max_load, proven }) => {
                prop_assert_eq!(capacity, cap);
                prop_assert_eq!(max_load, ml);
                prop_assert!(best_peak > cap && best_peak >= ml);
                prop_assert!(ml <= cap || proven, "max load {ml} > capacity {cap} but not proven");
                let aligned = bs.iter().any(|b| b.alignment > 1);
                prop_assert!(aligned || cap < g, "refused capacity {cap} >= greedy_by_size peak {g}");
            }
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    #[test]
    fn stopping_at_once_still_gives_a_sound_plan(bs in any_instance(40)) {
        let p = problem(&bs);
        let mut stop = || true;
        let s = pack(&p, PackOptions {
            capacity: None,
            budget: Budget { max_nodes: None, stop: Some(&mut stop) },
        }).expect("no capacity");
        assert_sound(&p, &s, None)?;
    }
}

/// Found by the `pack` fuzz target (`fuzz/regressions/pack/worse-than-greedy-by-size.bin`),
/// shrunk by hand. The lifetimes' lengths matter: with times compressed it passes.
#[test]
fn regression_heuristics_worse_than_greedy_by_size() {
    let p = Problem::from_buffers([
        Buffer::new("b0", 15, 23, 1),
        Buffer::new("b1", 7, 15, 2),
        Buffer::new("b2", 14, 22, 1),
        Buffer::new("b3", 21, 24, 2),
        Buffer::new("b4", 23, 31, 2),
    ])
    .unwrap();
    let g = greedy_by_size(&p);
    assert_eq!((g.peak, g.max_load), (4, 4));
    for m in [0, 1, 10] {
        let s = pack(&p, options(None, Some(m))).unwrap();
        assert!(
            s.peak <= g.peak,
            "max_nodes {m}: pack peak {} > greedy_by_size {} (offsets {:?})",
            s.peak,
            g.peak,
            s.offsets
        );
    }
    // A capacity that greedy_by_size meets must not be refused.
    assert!(pack(&p, options(Some(4), Some(0))).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Metamorphic relations

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn shuffling_keeps_the_optimum_feasible(
        (bs, perm) in instance(7, false).prop_flat_map(|bs| {
            let n = bs.len();
            (Just(bs), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
    ) {
        let p = problem(&bs);
        let s = pack(&p, options(None, None)).expect("no capacity");
        let shuffled: Vec<Buffer> = perm.iter().map(|&i| bs[i].clone()).collect();
        let q = problem(&shuffled);
        // The same plan, permuted, is valid for the shuffled input...
        let placements = s.placements(&p);
        let permuted: Vec<PlacedBuffer> = perm.iter().map(|&i| placements[i].clone()).collect();
        prop_assert_eq!(verify(q.buffers(), &permuted, Some(s.peak)), Ok(()));
        // ... so the packer must find a plan within the same peak.
        match pack(&q, options(Some(s.peak), None)) {
            Ok(t) => assert_sound(&q, &t, Some(s.peak))?,
            Err(e) => prop_assert!(false, "shuffled input does not fit in {}: {e}", s.peak),
        }
    }

    #[test]
    fn removing_a_buffer_never_raises_the_bounds(bs in any_instance(40), pick in any::<prop::sample::Index>()) {
        let p = problem(&bs);
        let mut fewer = bs.clone();
        fewer.remove(pick.index(bs.len()));
        let q = problem(&fewer);
        prop_assert!(q.max_load() <= p.max_load());
        prop_assert_eq!(u128::from(q.max_load()), naive_max_load(&fewer));
        if bs.len() <= 7 && bs.iter().all(|b| b.alignment == 1) {
            let before = pack(&p, options(None, None)).expect("no capacity").peak;
            let after = pack(&q, options(None, None)).expect("no capacity").peak;
            prop_assert!(after <= before, "removing a buffer raised the optimum {before} -> {after}");
        }
    }

    #[test]
    fn scaling_sizes_scales_the_bounds(bs in instance(40, false), k in 1u64..=1000) {
        let p = problem(&bs);
        let scaled: Vec<Buffer> = bs.iter().map(|b| Buffer { size: b.size * k, ..b.clone() }).collect();
        let q = problem(&scaled);
        prop_assert_eq!(q.max_load(), p.max_load() * k);
        if bs.len() <= 7 {
            let a = pack(&p, options(None, None)).expect("no capacity").peak;
            let b = pack(&q, options(None, None)).expect("no capacity").peak;
            prop_assert_eq!(b, a * k, "optimum does not scale with the sizes");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Determinism

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn same_input_same_budget_same_result(
        bs in any_instance(40),
        m in budget(),
        cap in proptest::option::of(0u64..2000),
    ) {
        // Two separately built problems: their hash maps have different random seeds.
        let a = pack(&problem(&bs), options(cap, Some(m)));
        let b = pack(&problem(&bs), options(cap, Some(m)));
        prop_assert_eq!(&a, &b);
        // A stop function that never fires changes nothing.
        let mut never = || false;
        let c = pack(&problem(&bs), PackOptions {
            capacity: cap,
            budget: Budget { max_nodes: Some(m), stop: Some(&mut never) },
        });
        prop_assert_eq!(&a, &c);
    }
}

#[test]
fn sizes_summing_to_u64_max_are_planned() {
    // Found by the `capi` fuzz target: a leaf whose only plan peaks at exactly u64::MAX was
    // left without offsets (the heuristics kept plans strictly below the initial peak).
    let p = problem(&[Buffer::new("a", 0, 2, u64::MAX)]);
    let s = pack(&p, options(None, Some(0))).expect("fits in u64");
    assert_eq!((s.offsets.as_slice(), s.peak), (&[0][..], u64::MAX));
    let p = problem(&[
        Buffer::new("a", 0, 2, u64::MAX - 7),
        Buffer::new("b", 1, 3, 7),
    ]);
    let s = pack(&p, options(None, None)).expect("fits in u64");
    assert_eq!(s.peak, u64::MAX);
    verify(p.buffers(), &s.placements(&p), None).expect("valid plan");
}

//! Unit tests of the exact search's drivers: minimising reaches the max load where a plan
//! within it exists (the upward probe from the lower bound), deterministically for a node
//! budget, and every plan it returns is valid.

use alloc::vec::Vec;

use super::super::budget::{Budget, Control};
use super::super::problem::{Item, max_load_of};
use super::improve;

/// A deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Cuts the box `[t0, t1) × [o0, o1)` (time × offset) into `pieces` rectangles by guillotine
/// cuts. Every moment is covered from 0 to `o1`, so the max load is the box's height and a
/// plan at exactly that peak exists (the tiling), while greedy plans rarely find it.
fn tiling(rng: &mut Lcg, t: (u64, u64), o: (u64, u64), pieces: u32, out: &mut Vec<Item>) {
    let (w, h) = (t.1 - t.0, o.1 - o.0);
    if pieces <= 1 || (w < 2 && h < 2) {
        out.push(Item {
            lower: t.0,
            upper: t.1,
            size: h,
            align: 1,
        });
        return;
    }
    let left = 1 + rng.below(u64::from(pieces - 1)) as u32;
    if (rng.below(2) == 0 && w >= 2) || h < 2 {
        let cut = t.0 + 1 + rng.below(w - 1);
        tiling(rng, (t.0, cut), o, left, out);
        tiling(rng, (cut, t.1), o, pieces - left, out);
    } else {
        let cut = o.0 + 1 + rng.below(h - 1);
        tiling(rng, t, (o.0, cut), left, out);
        tiling(rng, t, (cut, o.1), pieces - left, out);
    }
}

/// The max load of `items`.
fn max_load(items: &[Item]) -> u64 {
    max_load_of(items.iter().map(|it| (it.lower, it.upper, it.size)))
}

/// True when no two items alive together share a byte.
fn valid(items: &[Item], offsets: &[u64]) -> bool {
    items.iter().enumerate().all(|(i, a)| {
        items[i + 1..].iter().enumerate().all(|(k, b)| {
            let j = i + 1 + k;
            !a.overlaps(b) || offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i]
        })
    })
}

/// Minimises `items` from the trivial stacked plan under `max_nodes`.
fn minimise(items: &[Item], max_nodes: u64) -> (Option<Vec<u64>>, u64, u64) {
    let total: u64 = items.iter().map(|it| it.size).sum();
    let lb = max_load(items);
    let mut ctrl = Control::new(Budget {
        max_nodes: Some(max_nodes),
        stop: None,
    });
    let out = improve(items, 0, total + 1, lb, None, lb, &mut ctrl);
    (out.offsets, out.peak, out.proven_lb)
}

#[test]
fn minimising_reaches_the_max_load_of_tilings() {
    for seed in 0..8 {
        let mut rng = Lcg(seed);
        let mut items = Vec::new();
        tiling(&mut rng, (0, 40), (0, 4096), 48, &mut items);
        let lb = max_load(&items);
        assert_eq!(lb, 4096, "seed {seed}: a tiling's max load is its height");
        let (offsets, peak, proven) = minimise(&items, 200_000);
        let offsets = offsets.expect("a plan below the stacked one");
        assert!(valid(&items, &offsets), "seed {seed}: overlapping plan");
        assert_eq!(peak, lb, "seed {seed}: the tiling's peak is reachable");
        assert!(
            proven <= peak,
            "seed {seed}: bound {proven} above a plan {peak}"
        );
    }
}

#[test]
fn minimising_is_deterministic_for_a_node_budget() {
    let mut rng = Lcg(42);
    let mut items = Vec::new();
    tiling(&mut rng, (0, 60), (0, 1 << 20), 80, &mut items);
    for budget in [0, 100, 5_000, 50_000] {
        let a = minimise(&items, budget);
        let b = minimise(&items, budget);
        assert_eq!(a, b, "budget {budget}");
        if let Some(offsets) = &a.0 {
            assert!(valid(&items, offsets), "budget {budget}: overlapping plan");
        }
    }
}

#[test]
fn a_max_load_out_of_reach_is_proven_and_passed() {
    // A small instance: the unlimited-enough search ends with a proof either way.
    let it = |lower, upper| Item {
        lower,
        upper,
        size: 1,
        align: 1,
    };
    let items = [it(0, 2), it(1, 3), it(0, 1), it(2, 4), it(0, 4)];
    let lb = max_load(&items);
    let (offsets, peak, proven) = minimise(&items, 10_000);
    if let Some(offsets) = &offsets {
        assert!(valid(&items, offsets));
    }
    assert!(proven >= lb && proven <= peak);
    assert_eq!(proven, peak, "a tiny instance is solved to optimality");
}
